"""Search keys: how names, e-mails and order numbers are folded so that lookups find them."""

from __future__ import annotations

import unicodedata


def name_key(name: str | None) -> str | None:
    """The form a name is searched by: NFKD, accents dropped, case-folded, spaces collapsed.

    Customer service types "zoe angstrom" or "MÜSSIG" and expects "Zoë Ångström" and "Jürgen Müßig";
    SQLite's ``lower()`` folds only ASCII, so the key is computed here and stored next to the name,
    which itself is kept exactly as the channel sent it.
    """
    if name is None:
        return None
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = unicodedata.normalize("NFC", bare.casefold())
    return " ".join(folded.split()) or None


def email_key(email: str | None) -> str | None:
    """E-mail as stored and searched: trimmed and lower-cased (DESIGN.md normalizes it so)."""
    if email is None:
        return None
    return email.strip().lower() or None


def like_escape(text: str, escape: str = "\\") -> str:
    """``text`` with LIKE wildcards escaped, for a literal substring match."""
    return text.replace(escape, escape * 2).replace("%", escape + "%").replace("_", escape + "_")
