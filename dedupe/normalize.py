"""Normalize customer identity fields (e-mail, phone, name, address) into comparison keys for record linkage."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import re
import unicodedata
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import polars as pl
from nicknames import NickNamer

# -- text folding -------------------------------------------------------------------------------------
# Letters NFKD does not decompose into base + combining mark (umlauts do: ä -> a, which the fuzzy
# comparisons downstream accept, Mueller vs Muller).
_FOLD = str.maketrans({"ß": "ss", "ẞ": "ss", "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "ł": "l", "Ł": "l",
                       "đ": "d", "Đ": "d", "œ": "oe", "Œ": "oe", "ı": "i", "þ": "th", "Þ": "th", "ð": "d",
                       "’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "–": "-", "—": "-", "‐": "-"})


@lru_cache(maxsize=1 << 18)
def fold(text: str) -> str:
    """Lower-case ASCII-ish form of ``text``: accents removed (René -> rene, Straße -> strasse)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD).lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).translate(_FOLD)


# -- e-mail -------------------------------------------------------------------------------------------
_EMAIL = re.compile(r"^[^@\s]+@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z]{2,}|xn--[a-z0-9-]+)$")
_RELAY = re.compile(r"@marketplace\.amazon\.(?:[a-z]{2,3})(?:\.[a-z]{2})?$")
# A provider's own public suffixes: hotmail.com, hotmail.co.uk, live.de, outlook.com.au (not live.acme.com).
_PROVIDER_SUFFIX = re.compile(r"^(?:[a-z]{2,3}|(?:co|com)\.[a-z]{2})$")

# How each mailbox provider treats the local part. A rule strips only what the provider itself ignores,
# so two keys are equal exactly when the mail reaches one inbox.
#   dots: "j.smith" and "jsmith" are one Gmail inbox (Gmail Help, "Dots don't matter in Gmail
#         addresses", https://support.google.com/mail/answer/7436150).
#   plus: "name+tag" delivers to "name" (sub-addressing, RFC 5233).
_GMAIL = ("dots", "plus")  # plus: Gmail Help, "Create task-specific email addresses"
# Providers that deliver "name+tag" to "name" but keep dots significant, keyed by the provider's domain
# label (any of its country suffixes: hotmail.co.uk, live.de, outlook.fr):
_PLUS_ONLY_LABELS = {
    # Microsoft consumer mail (Outlook.com/Hotmail/Live/MSN) delivers +tag; Microsoft documents plus
    # addressing for Exchange Online, which runs these mailboxes:
    # https://learn.microsoft.com/exchange/recipients-in-exchange-online/plus-addressing-in-exchange-online
    "outlook": ("plus",), "hotmail": ("plus",), "live": ("plus",),
    "protonmail": ("plus",),  # Proton Help, "Addresses and aliases" (+ aliases reach the address)
    "fastmail": ("plus",),  # https://www.fastmail.help/hc/en-us/articles/360060591053 (plus addressing)
}
# Providers with exact domains (no country variants).
_PROVIDER_DOMAINS = {
    "gmail.com": _GMAIL,
    "msn.com": ("plus",),  # Microsoft consumer mail, same rule as outlook.com
    # iCloud Mail delivers name+tag to name; me.com and mac.com are the same accounts (Apple's
    # "iCloud Mail" help: addresses @icloud.com, @me.com and @mac.com reach one account).
    "icloud.com": ("plus",), "me.com": ("plus",), "mac.com": ("plus",),
    "proton.me": ("plus",), "pm.me": ("plus",),  # Proton Mail's short domains
}
# Every other provider keeps the local part as typed (Yahoo uses "-" disposable addresses that are
# separate mailboxes; GMX/web.de/T-Online have no sub-addressing on free accounts; a company server's
# rules are unknown), so "j.smith@acme.com" and "jsmith@acme.com" stay two keys.
_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}  # Google's UK/DE brand, one account namespace


def _provider_rule(domain: str) -> tuple[str, ...]:
    rule = _PROVIDER_DOMAINS.get(domain)
    if rule is not None:
        return rule
    label, _, suffix = domain.partition(".")
    if label in _PLUS_ONLY_LABELS and _PROVIDER_SUFFIX.match(suffix):
        return _PLUS_ONLY_LABELS[label]
    return ()


@lru_cache(maxsize=1 << 18)
def email_key(raw: str | None) -> str | None:
    """The mailbox an address reaches: trimmed, lower-cased, provider-ignored dots and ``+tags`` removed.

    Args:
        raw: the e-mail address as typed (any case, surrounding blanks, ``mailto:``).

    Returns:
        ``local@domain`` or None when ``raw`` does not look like ``local@domain.tld``.
    """
    if raw is None:
        return None
    text = raw.strip().lower()
    text = text.removeprefix("mailto:").strip("<>").strip()
    if not _EMAIL.match(text):
        return None
    local, _, domain = text.rpartition("@")
    domain = _DOMAIN_ALIASES.get(domain, domain)
    rule = _provider_rule(domain)
    if "plus" in rule:
        local = local.split("+", 1)[0]
    if "dots" in rule:
        local = local.replace(".", "")
    if not local:
        return None
    return f"{local}@{domain}"


def is_relay_email(raw: str | None) -> bool:
    """Whether ``raw`` is an Amazon buyer-seller relay address (``...@marketplace.amazon.<tld>``)."""
    return raw is not None and _RELAY.search(raw.strip().lower()) is not None


# -- phone --------------------------------------------------------------------------------------------
# International call prefixes a number may be written with instead of "+" (ITU-T E.164 Annex, operational
# bulletin "Dialling procedures"): 00 in most of the world, 011 in the NANP, 0011 in Australia, 010 in Japan.
_IDD = ("0011", "011", "010", "00")
_REGION_ALIASES = {"UK": "GB", "EL": "GR"}  # ISO 3166 says GB; the EU writes EL for Greece


def _region(code: str | None) -> str | None:
    if not code:
        return None
    code = code.strip().upper()
    code = _REGION_ALIASES.get(code, code)
    return code if len(code) == 2 and code.isalpha() else None


def _valid_e164(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=1 << 19)
def phone_e164(raw: str | None, region: str | None, fallback_region: str | None = None) -> str | None:
    """The phone in E.164 (``+4930123456``), or None when no reading of it is a valid number.

    Parsed with ``region`` (the ship-to country) as the default region, then with ``fallback_region``
    (the store's country, whose dialling prefix the checkout may have written: ``011 49 ...`` in a US
    shop), then, if it starts with an international call prefix (00, 011, 0011, 010), as ``+`` and the
    rest. Only numbers phonenumbers calls *valid* are kept (NORMALIZE.md says why not *possible*).

    Args:
        raw: the phone as typed.
        region: ISO 3166 alpha-2 country of the ship-to address ("UK" is read as GB).
        fallback_region: ISO country to try next (the store's country).
    """
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    tried: list[str | None] = []
    for candidate in (_region(region), _region(fallback_region)):
        if candidate is not None and candidate not in tried:
            tried.append(candidate)
    if text.startswith("+") and not tried:
        tried.append(None)
    for candidate in tried:
        found = _valid_e164(text, candidate)
        if found is not None:
            return found
    digits = re.sub(r"[^\d+]", "", text)
    for prefix in _IDD:  # every prefix that fits: "0011 44 ..." is Australian, "00 1 ..." is not "0011"
        found = _valid_e164("+" + digits[len(prefix):], None) if digits.startswith(prefix) else None
        if found is not None:
            return found
    return None


# -- names --------------------------------------------------------------------------------------------
_HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "herr", "frau", "hr", "fr",
                         "mme", "mlle", "monsieur", "madame"})
_SUFFIXES = frozenset({"jr", "jnr", "sr", "snr", "ii", "iii", "iv", "esq", "phd", "md"})
# "M." is French "Monsieur" only before a full name ("M. Jean Dupont"); "M. Dupont" keeps M as an initial.
_HONORIFIC_IF_MORE = frozenset({"m"})
# Surname particles kept with the surname ("Ludwig van Beethoven" -> last "van beethoven").
_PARTICLES = frozenset({"van", "von", "der", "den", "de", "la", "le", "du", "des", "del", "della", "di", "da",
                        "dos", "das", "ten", "ter", "zu", "mac", "st", "bin", "al", "el"})

# Which canonical name a nickname stands for, where the nicknames library lists several (its
# alphabetical first is often wrong: "bill" -> "robert"), also lists the nickname as a name of its
# own ("bob"), or the canonical has another initial (peggy -> margaret). Every target is one of NickNamer().canonicals_of(nickname) (a test checks it): this table
# only chooses among the library's answers.
_PREFERRED_CANONICAL = {
    "bill": "william", "billy": "william", "will": "william", "willy": "william", "bob": "robert",
    "bobby": "robert", "rob": "robert", "beth": "elizabeth", "betty": "elizabeth",
    "liz": "elizabeth", "lizzie": "elizabeth", "kate": "katherine", "kathy": "katherine", "cathy": "catherine",
    "mike": "michael", "jim": "james", "jimmy": "james", "jamie": "james", "rick": "richard",
    "rich": "richard", "dick": "richard", "tom": "thomas", "tommy": "thomas", "joe": "joseph",
    "joey": "joseph", "chris": "christopher", "dan": "daniel", "danny": "daniel", "matt": "matthew",
    "jenny": "jennifer", "maggie": "margaret", "peggy": "margaret", "meg": "margaret", "alex": "alexander",
    "tony": "anthony", "nick": "nicholas", "sue": "susan", "susie": "susan", "ed": "edward", "eddie": "edward",
    "ted": "edward", "ben": "benjamin", "sam": "samuel", "jon": "jonathan", "johnny": "john", "jack": "john",
    "andy": "andrew", "steve": "steven", "tim": "timothy", "charlie": "charles", "chuck": "charles",
    "deb": "deborah", "debbie": "deborah", "kim": "kimberly", "jeff": "jeffrey", "ken": "kenneth",
    "ron": "ronald", "larry": "lawrence", "jerry": "gerald", "fred": "frederick", "al": "albert",
    "nate": "nathan", "abby": "abigail", "steph": "stephanie", "mel": "melissa", "cindy": "cynthia",
    "sandy": "sandra", "phil": "philip", "harry": "harold", "hal": "harold", "hank": "henry", "walt": "walter",
    "frank": "francis", "nikki": "nicole", "mandy": "amanda", "terry": "terence", "randy": "randall",
    "ollie": "oliver", "pat": "patricia", "val": "valerie", "geoff": "geoffrey", "gabe": "gabriel",
    "jess": "jessica", "ray": "raymond", "tina": "christina", "trish": "patricia", "art": "arthur",
}
# German and French short forms the (English) library does not know; targets are the given names.
_NICKNAME_SUPPLEMENT = {
    "hans": "johannes", "sepp": "josef", "seppi": "josef", "jupp": "josef", "fritz": "friedrich",
    "kathi": "katharina", "heinz": "heinrich", "uli": "ulrich", "achim": "joachim", "jochen": "joachim",
    "basti": "sebastian", "steffi": "stefanie", "gabi": "gabriele", "resi": "theresa", "willi": "wilhelm", "bernd": "bernhard", "hubsi": "hubert",
    "rudi": "rudolf", "grete": "margarete", "franzi": "franziska", "manu": "emmanuel", "seb": "sebastien",
    "isa": "isabelle",
}


@lru_cache(maxsize=1)
def _nicknamer() -> NickNamer:
    """The nicknames library's table (it reads its CSV on construction: once, lazily)."""
    return NickNamer()


@lru_cache(maxsize=1 << 16)
def first_name_canonical(first: str) -> str:
    """The given name a (folded, lower-case) first name stands for: bill -> william, sepp -> josef.

    Preference table first, then the German/French supplement; a name the nicknames library knows as
    a name of its own (it has nicknames) or does not know is its own canonical; otherwise the
    alphabetically first of the library's canonicals that start with the same letter (the library
    also lists loose associations, leah -> ashley, erin -> aaron, which would make two members of a
    household one person; the well-known nicknames with another initial are in the preference table).
    """
    if first in _PREFERRED_CANONICAL:
        return _PREFERRED_CANONICAL[first]
    if first in _NICKNAME_SUPPLEMENT:
        return _NICKNAME_SUPPLEMENT[first]
    if len(first) < 2:
        return first
    if _nicknamer().nicknames_of(first):
        return first
    canonicals = [c for c in _nicknamer().canonicals_of(first) if c[:1] == first[:1]]
    return min(canonicals) if canonicals else first


@dataclass(frozen=True)
class NameKey:
    """A person's name as comparison keys (folded, lower-case ASCII-ish).

    Attributes:
        first: the first given name (one letter for an initial), None when unknown.
        last: the surname with its particles ("van beethoven", "smith-jones"), None when unknown.
        first_canon: the canonical given name behind a nickname (bill -> william).
        initial: the first letter of ``first``.
        tokens: every name token, sorted, so "Smith John" and "John Smith" compare equal.
    """

    first: str | None
    last: str | None
    first_canon: str | None
    initial: str | None
    tokens: tuple[str, ...]


_EMPTY_NAME = NameKey(None, None, None, None, ())
_NAME_JUNK = re.compile(r"[^\w'\- ]+|_")  # letters of every script stay (山田, Иванов): only punctuation goes


def _name_tokens(text: str) -> list[str]:
    """Folded tokens: punctuation out, apostrophes dropped (o'brien -> obrien), inner hyphens kept."""
    text = _NAME_JUNK.sub(" ", fold(text).replace(".", " "))
    out = []
    for token in text.replace("'", "").split():
        token = re.sub(r"-{2,}", "-", token).strip("-")
        if token and not token.isdigit():
            out.append(token)
    return out


def _strip_titles(tokens: list[str]) -> list[str]:
    while len(tokens) > 1 and (tokens[0] in _HONORIFICS or (tokens[0] in _HONORIFIC_IF_MORE and len(tokens) > 2)):
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in _SUFFIXES:
        tokens = tokens[:-1]
    return tokens


def _split_surname(tokens: list[str]) -> tuple[list[str], list[str]]:
    """(given tokens, surname tokens): the last token plus the particles before it is the surname."""
    start = len(tokens) - 1
    while start > 1 and tokens[start - 1] in _PARTICLES:
        start -= 1
    return tokens[:start], tokens[start:]


def _make_name(given: list[str], surname: list[str], tokens: list[str]) -> NameKey:
    first = given[0] if given else None
    last = " ".join(surname) or None
    return NameKey(
        first=first,
        last=last,
        first_canon=first_name_canonical(first) if first else None,
        initial=first[0] if first else None,
        tokens=tuple(sorted(tokens)),
    )


@lru_cache(maxsize=1 << 18)
def name_key(raw: str | None) -> NameKey:
    """Split and standardize a full name ("Dr. Jürgen Müller", "Smith, John", "J. Smith").

    Args:
        raw: the name as typed; "Last, First" is swapped back, titles and suffixes are dropped.

    Returns:
        The comparison keys; one token is a first name with no surname.
    """
    if raw is None or not raw.strip():
        return _EMPTY_NAME
    text = raw
    if "," in text:
        before, _, after = text.partition(",")
        after_tokens = _name_tokens(after)
        if after_tokens and not all(t in _SUFFIXES or t in _HONORIFICS for t in after_tokens):
            given, surname = _strip_titles(after_tokens), _strip_titles(_name_tokens(before))
            return _make_name(given, surname, given + surname) if given or surname else _EMPTY_NAME
        if not after_tokens and len(_name_tokens(before)) == 1:  # "Smith," is a surname alone
            surname = _name_tokens(before)
            return _make_name([], surname, surname)
        text = before
    tokens = _strip_titles(_name_tokens(text))
    if not tokens:
        return _EMPTY_NAME
    if len(tokens) == 1:
        return _make_name(tokens, [], tokens)
    given, surname = _split_surname(tokens)
    return _make_name(given, surname, tokens)


@lru_cache(maxsize=1 << 18)
def name_key_parts(first_name: str | None, last_name: str | None, name: str | None) -> NameKey:
    """Name keys from separate first/last fields when any is given, else from the full ``name``."""
    if (first_name is None or not first_name.strip()) and (last_name is None or not last_name.strip()):
        return name_key(name)
    given = _strip_titles(_name_tokens(first_name or ""))
    surname = _name_tokens(last_name or "")
    while len(surname) > 1 and surname[-1] in _SUFFIXES:
        surname = surname[:-1]
    return _make_name(given, surname, given + surname)


def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity (prefix scale 0.1, up to 4 characters), as DuckDB's jaro_winkler_similarity."""
    if a == b:
        return 1.0
    la, lb = len(a), len(b)
    if not la or not lb:
        return 0.0
    window = max(max(la, lb) // 2 - 1, 0)
    used_a, used_b = [False] * la, [False] * lb
    matches = 0
    for i, ch in enumerate(a):
        for j in range(max(0, i - window), min(lb, i + window + 1)):
            if not used_b[j] and b[j] == ch:
                used_a[i] = used_b[j] = True
                matches += 1
                break
    if not matches:
        return 0.0
    half_transpositions, k = 0, 0
    for i in range(la):
        if used_a[i]:
            while not used_b[k]:
                k += 1
            half_transpositions += a[i] != b[k]
            k += 1
    jaro = (matches / la + matches / lb + (matches - half_transpositions / 2) / matches) / 3
    prefix = 0
    for x, y in zip(a[:4], b[:4], strict=False):
        if x != y:
            break
        prefix += 1
    return jaro + prefix * 0.1 * (1 - jaro)


def edit_distance(a: str, b: str) -> int:
    """Edits from ``a`` to ``b``: insertions, deletions, substitutions and swaps of two neighbouring
    letters (optimal string alignment, DuckDB's ``damerau_levenshtein``): a keyboard slip is one edit.
    """
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i]
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            best = min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, rows[i - 2][j - 2] + 1)
            row.append(best)
        rows.append(row)
    return rows[-1][-1]


# German umlauts typed on another keyboard: ö/ü -> oe/ue before a consonant (Jörg/Joerg, Trüb/Trueb);
# folding gives jorg/trub, so "oe"/"ue" before a consonant is read as o/u when comparing. Not "ae"
# (Michael is not Michał) and not before a vowel or at the end (Joe is not Jo, Zoe not Zo).
_SPELLED_UMLAUT = re.compile(r"([ou])e(?=[bcdfghjklmnpqrstvwxz])")


def _same_spelling(a: str, b: str) -> bool:
    return a == b or _SPELLED_UMLAUT.sub(r"\1", a) == _SPELLED_UMLAUT.sub(r"\1", b)


def _surnames_compatible(a: str, b: str) -> bool:
    if _same_spelling(a, b) or a in b.split("-") or b in a.split("-"):
        return True
    return min(len(a), len(b)) >= 5 and (jaro_winkler(a, b) >= 0.92 or edit_distance(a, b) <= 1)


def _first_names_compatible(a: NameKey, b: NameKey) -> bool:
    if a.first is None or b.first is None:
        return False
    if _same_spelling(a.first, b.first) or (a.first_canon is not None and a.first_canon == b.first_canon):
        return True
    if (len(a.first) == 1 and a.first == b.initial) or (len(b.first) == 1 and b.first == a.initial):
        return True
    return min(len(a.first), len(b.first)) >= 5 and edit_distance(a.first, b.first) <= 1


def names_compatible(a: NameKey, b: NameKey) -> bool:
    """Whether two names can be one person.

    Compatible: the same name tokens in any order, or a compatible surname (equal, equal with umlauts
    spelled out, one part of a double name, or at length >= 5 Jaro-Winkler >= 0.92 or one edit) and a
    compatible first name (equal, equal with umlauts spelled out, the same canonical name, an initial,
    or one edit at length >= 5; a swap of two letters is one edit). A household (John and Mary
    Smith) is not compatible. ``dedupe.people.names_compatible_sql`` is the SQL form.
    """
    if a.tokens and a.tokens == b.tokens:
        return True
    if a.last is None or b.last is None:
        return False
    return _surnames_compatible(a.last, b.last) and _first_names_compatible(a, b)


# -- addresses ----------------------------------------------------------------------------------------
# Street types to one form (USPS Publication 28 Appendix C1 abbreviations for English; Canada Post's
# French abbreviations; German "Straße" spellings). Compared within a country, so "pl" for both place
# and Platz does no harm.
_STREET_TYPES = {
    "street": "st", "st": "st", "str": "str", "avenue": "ave", "ave": "ave", "av": "ave",
    "avn": "ave", "road": "rd", "rd": "rd", "boulevard": "blvd", "boul": "blvd", "blvd": "blvd", "bd": "blvd",
    "drive": "dr", "dr": "dr", "drv": "dr", "lane": "ln", "ln": "ln", "court": "ct", "ct": "ct",
    "place": "pl", "pl": "pl", "terrace": "ter", "terr": "ter", "ter": "ter", "crescent": "cres",
    "cres": "cres", "cresc": "cres", "close": "cl", "cl": "cl", "square": "sq", "sq": "sq", "gardens": "gdns",
    "gdns": "gdns", "way": "way", "wy": "way", "highway": "hwy", "hwy": "hwy", "parkway": "pkwy",
    "pkwy": "pkwy", "circle": "cir", "cir": "cir", "trail": "trl", "trl": "trl", "expressway": "expy",
    "freeway": "fwy", "mews": "mews", "grove": "gr", "gro": "gr", "gr": "gr", "park": "park", "row": "row",
    "walk": "walk", "hill": "hill", "chemin": "ch", "ch": "ch", "route": "rte", "rte": "rte", "rue": "rue",
    "strasse": "str", "weg": "weg", "platz": "pl", "allee": "allee", "gasse": "gasse", "ring": "ring",
    "damm": "damm", "ufer": "ufer",
}
# German compounds end in the street type ("Hauptstraße", "Hauptstr."): the suffix is standardized too.
_DE_SUFFIXES = (("strasse", "str"),)
_DIRECTIONS = {"north": "n", "south": "s", "east": "e", "west": "w", "northeast": "ne", "northwest": "nw",
               "southeast": "se", "southwest": "sw", "nord": "n", "sud": "s", "ouest": "w", "est": "e",
               "nordest": "ne", "nordouest": "nw", "sudest": "se", "sudouest": "sw"}
# Words that introduce a unit identifier (US "Apt 4B", UK "Flat 2", German "Whg. 5", French "app. 3").
_UNIT_MARKERS = frozenset({"apartment", "apt", "unit", "suite", "ste", "flat", "wohnung", "whg", "app", "appt",
                           "appartement", "bureau", "room", "rm", "#", "no", "nr", "lot", "bldg", "building"})
_UNIT_ID = re.compile(r"^(?:[a-z]?\d+[a-z]{0,2}|[a-z]|\d+-\d+)$")
_FLOORS = frozenset({"og", "eg", "ug", "dg", "floor", "fl", "etage", "stock"})  # "2. OG": second floor
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th|e|er)?$")
_ADDRESS_JUNK = re.compile(r"[^a-z0-9#\- ]+")
_CARE_OF = re.compile(r"\bc\s*/\s*o\b.*$")  # "c/o Schmidt" names a person, not a place


@dataclass(frozen=True)
class AddressKey:
    """A postal address as comparison keys (folded, lower-case, abbreviations standardized).

    Attributes:
        line: "number street" ("12 maple ave", "5 hauptstr"), the street line without the unit.
        number: the house number ("12", "5a").
        street: the street name with standardized type and directions ("maple ave").
        unit: the apartment/suite/flat identifier ("4b"), from line1 or line2.
        postcode: the postal code in the country's canonical form ("SW1A1AA", "02134").
        city: the folded city name.
        country: ISO 3166 alpha-2 country code.
    """

    line: str | None
    number: str | None
    street: str | None
    unit: str | None
    postcode: str | None
    city: str | None
    country: str | None


def _address_tokens(text: str | None) -> list[str]:
    if text is None:
        return []
    text = _CARE_OF.sub(" ", fold(text))
    text = re.sub(r"(?<!\d)-|-(?!\d)", " ", text)  # keep "12-14" together; other hyphens split words
    text = _ADDRESS_JUNK.sub(" ", text.replace("#", " # "))
    return text.split()


def _standard_word(token: str) -> str:
    if token in _STREET_TYPES:
        return _STREET_TYPES[token]
    if token in _DIRECTIONS:
        return _DIRECTIONS[token]
    for suffix, short in _DE_SUFFIXES:
        if token.endswith(suffix) and len(token) > len(suffix):
            return token[: -len(suffix)] + short
    return token


def _take_units(tokens: list[str]) -> tuple[list[str], list[str]]:
    """(tokens without unit designations, unit identifiers found): "apt 4b" -> ["4b"], "2 og" -> ["2og"]."""
    rest: list[str] = []
    units: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        # Only an identifier makes a unit: "Flat Rock Rd", "Ste-Foy" (Sainte-Foy) and "Unit Road" are streets.
        if token in _UNIT_MARKERS and nxt is not None and _UNIT_ID.match(nxt):
            if token in ("no", "nr") and rest:  # "Hauptstr. Nr. 5": the house number, not a unit
                rest.append(nxt)  # "Hauptstr. Nr. 5": the house number, not a unit
            else:
                units.append(nxt)
            i += 2
            continue
        floor = _ORDINAL.match(token)
        if floor and nxt in _FLOORS and rest:
            units.append(floor[1] + "og")  # every floor word is one key: "2. OG", "2nd floor" -> 2og
            i += 2
            continue
        rest.append(token)
        i += 1
    return rest, units


def _is_number(token: str) -> bool:
    return token[:1].isdigit()


@lru_cache(maxsize=1 << 18)
def street_key(line1: str | None, line2: str | None) -> tuple[str | None, str | None, str | None, str | None]:
    """(line, number, street, unit) from the two address lines."""
    tokens1, units1 = _take_units(_address_tokens(line1))
    tokens2, units2 = _take_units(_address_tokens(line2))
    # A line1 that is a company or building name with the street in line2: use line2 as the street line.
    if tokens2 and not any(_is_number(t) for t in tokens1) and any(_is_number(t) for t in tokens2) and len(tokens2) > 1:
        tokens1, tokens2 = tokens2, []
    units = units1 + units2
    number: str | None = None
    street: list[str] = []
    extra: list[str] = []
    if tokens1 and _is_number(tokens1[0]):
        number, after = tokens1[0], tokens1[1:]
        # A bare identifier after the street type is a unit written without a marker ("12 Maple Ave 4B").
        while len(after) > 1 and _UNIT_ID.match(after[-1]) and _standard_word(after[-2]) in _STREET_TYPES.values():
            extra.insert(0, after.pop())
        street = after
    else:
        at = next((i for i, t in enumerate(tokens1) if _is_number(t)), None)
        if at is None:
            street = tokens1
        else:
            street, number, after = tokens1[:at], tokens1[at], tokens1[at + 1:]
            if after and len(after[0]) == 1 and after[0].isalpha():  # "Hauptstr. 5 a" -> 5a
                number, after = number + after[0], after[1:]
            extra = after
    if extra:
        units.append("".join(extra))
    if tokens2:
        units.append("".join(tokens2))
    words = [_standard_word(t) for t in street]
    if len(words) > 2 and words[-1] == "o":  # Canada Post writes Ouest as a final "O" ("boul. René-Lévesque O")
        words[-1] = "w"
    street_text = " ".join(words) or None
    line = " ".join(part for part in (number, street_text) if part) or None
    unit = " ".join(dict.fromkeys(units)) or None
    return line, number, street_text, unit


_COUNTRY_NAMES = {
    "USA": "US", "UNITED STATES": "US", "UNITED STATES OF AMERICA": "US", "CANADA": "CA", "GERMANY": "DE",
    "DEUTSCHLAND": "DE", "UK": "GB", "UNITED KINGDOM": "GB", "GREAT BRITAIN": "GB", "ENGLAND": "GB",
    "SCOTLAND": "GB", "WALES": "GB", "NORTHERN IRELAND": "GB", "FRANCE": "FR", "AUSTRIA": "AT",
    "OSTERREICH": "AT", "SWITZERLAND": "CH", "SCHWEIZ": "CH", "EL": "GR",
}


@lru_cache(maxsize=4096)
def country_code(raw: str | None) -> str | None:
    """ISO 3166 alpha-2 code from a code or a common country name ("uk", "Deutschland" -> GB, DE)."""
    if raw is None:
        return None
    text = fold(raw).strip().upper().replace(".", "")
    text = _COUNTRY_NAMES.get(text, text)
    return text if len(text) == 2 and text.isalpha() else None


@lru_cache(maxsize=1 << 18)
def postcode_key(raw: str | None, country: str | None) -> str | None:
    """The postal code in its country's canonical form (US ZIP5, CA/GB no space, DE/FR 5 digits)."""
    if raw is None:
        return None
    text = re.sub(r"[^0-9A-Z]", "", fold(raw).upper())
    if not text:
        return None
    if country in ("US", "DE", "FR"):
        digits = re.sub(r"\D", "", text)
        if country == "US":
            digits = digits[:5]
        # Spreadsheets drop leading zeros: 2134 was the Boston ZIP 02134, 1067 the Dresden PLZ 01067.
        return digits.zfill(5) if len(digits) == 4 else digits or None
    return text


@lru_cache(maxsize=1 << 16)
def city_key(raw: str | None) -> str | None:
    """The folded city name, punctuation out ("Montréal" -> "montreal", "St. John's" -> "st johns")."""
    if raw is None:
        return None
    text = re.sub(r"[^a-z0-9 ]+", " ", fold(raw).replace("'", "")).split()
    return " ".join(text) or None


def address_key(line1: str | None, line2: str | None, city: str | None, postal_code: str | None,
                country: str | None) -> AddressKey:
    """Standardize a postal address for comparison.

    Args:
        line1: street line ("12 Maple Ave. Apt 4B", "Hauptstraße 5").
        line2: second line (unit, building, or the street when line1 is a company name).
        city: city as typed.
        postal_code: postal code as typed.
        country: ISO country code or common name.
    """
    line, number, street, unit = street_key(line1, line2)
    code = country_code(country)
    return AddressKey(line, number, street, unit, postcode_key(postal_code, code), city_key(city), code)


# -- frames -------------------------------------------------------------------------------------------
_NAME_COLUMNS = ("n_first", "n_last", "n_first_canon", "n_initial", "n_name_tokens")
_STREET_COLUMNS = ("n_line", "n_number", "n_street", "n_unit")
_OUTPUT_SCHEMA: dict[str, type[pl.DataType]] = {
    "n_email": pl.String, "n_email_relay": pl.Boolean, "n_phone": pl.String,
    **dict.fromkeys(_NAME_COLUMNS, pl.String), **dict.fromkeys(_STREET_COLUMNS, pl.String),
    "n_postcode": pl.String, "n_city": pl.String, "n_country": pl.String,
}
_SOURCES = ("first_name", "last_name", "name", "email", "phone", "line1", "line2", "city", "postal_code",
            "country", "store_country")


def _email_parts(raw: str | None) -> tuple[str | None, bool]:
    return email_key(raw), is_relay_email(raw)


def _phone_parts(raw: str | None, region: str | None, fallback: str | None) -> tuple[str | None]:
    return (phone_e164(raw, region, fallback),)


def _name_parts(first: str | None, last: str | None, full: str | None) -> tuple[str | None, ...]:
    key = name_key_parts(first, last, full)
    return key.first, key.last, key.first_canon, key.initial, " ".join(key.tokens)


def _postcode_parts(raw: str | None, country: str | None) -> tuple[str | None]:
    return (postcode_key(raw, country),)


def _city_parts(raw: str | None) -> tuple[str | None]:
    return (city_key(raw),)


def _apply(fn: Callable[..., tuple[object, ...]], rows: list[tuple[str | None, ...]]) -> list[tuple[object, ...]]:
    """``fn`` over ``rows`` (runs in a worker process)."""
    return [fn(*row) for row in rows]


# Below this many distinct values in all, starting worker processes (each imports phonenumbers and
# polars, ~1 s) costs more than it saves.
PARALLEL_MIN_VALUES = 50_000


def _twin(function: str, **columns: str) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """A stage's vectorized twin (``module.function``), given the stage's columns under its own names.

    Imported on first use: the twins import this module.
    """
    module, _, name = function.rpartition(".")

    def run(frame: pl.DataFrame) -> pl.DataFrame:
        return getattr(importlib.import_module(module), name)(frame.rename(columns))

    return run


_Stage = tuple[tuple[str, ...], Callable[..., tuple[object, ...]], tuple[str, ...],
               Callable[[pl.DataFrame], pl.DataFrame] | None]
# (input columns, scalar function, output columns, vectorized function) per field; phone and postcode
# need the country first. The vectorized function answers the common shapes at once (polars, Rust
# regexes) and marks them ``certified``; the scalar function, the reference, answers the rest.
_STAGES: tuple[_Stage, ...] = (
    (("_email",), _email_parts, ("n_email", "n_email_relay"),
     _twin("dedupe.fastaddress.emails_frame", _email="email")),
    (("_phone", "_phone_region", "_phone_fallback"), _phone_parts, ("n_phone",),
     _twin("dedupe.fastphone.phones_frame", _phone="raw", _phone_region="region", _phone_fallback="fallback")),
    (("_first_name", "_last_name", "_name"), _name_parts, _NAME_COLUMNS,
     _twin("dedupe.fastname.names_frame", _first_name="first_name", _last_name="last_name", _name="name")),
    (("_line1", "_line2"), street_key, _STREET_COLUMNS, _twin("dedupe.fastaddress.streets_frame", _line1="line1",
                                                              _line2="line2")),
    (("_postal_code", "n_country"), _postcode_parts, ("n_postcode",),
     _twin("dedupe.fastaddress.postcodes_frame", _postal_code="postal_code", n_country="country")),
    (("_city",), _city_parts, ("n_city",), None),
)


def _map_stages(work: pl.DataFrame, workers: int, vectorized: bool,
                stages: tuple[_Stage, ...] = _STAGES) -> list[pl.DataFrame]:
    """Per stage, its distinct input rows with the outputs as columns."""
    def vectorize(i: int) -> tuple[pl.DataFrame | None, pl.DataFrame]:
        keys, _, outputs, fast = stages[i]
        frame = work.select(keys).unique()
        if not vectorized or fast is None or not frame.height:
            return None, frame
        answered = pl.concat([frame, fast(frame).select(*outputs, "certified")], how="horizontal")
        return answered.filter("certified").drop("certified"), frame.filter(~answered["certified"])

    # The stages are independent and polars releases the GIL: two threads keep both cores busy.
    with ThreadPoolExecutor(max(1, min(workers, len(stages)))) as threads:
        split = list(threads.map(vectorize, range(len(stages))))
    done = [answered for answered, _ in split]
    todo = [rest for _, rest in split]
    rows = [frame.rows() for frame in todo]
    total = sum(len(r) for r in rows)
    if workers > 1 and total >= PARALLEL_MIN_VALUES and "fork" in multiprocessing.get_all_start_methods():
        chunk = max(1000, total // (workers * 4))
        jobs = [(i, fn, part[k:k + chunk]) for i, ((_, fn, _, _), part) in enumerate(zip(stages, rows, strict=True))
                for k in range(0, len(part), chunk)]
        results: list[list[tuple[object, ...]]] = [[] for _ in stages]
        # fork: a worker runs only the pure-Python functions above on plain tuples, never polars or
        # DuckDB, so their thread pools copied by the fork are never touched; spawn would re-import the
        # caller's __main__ (a script without a main guard would run again) and the libraries (~1 s).
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for (i, _, _), out in zip(jobs, pool.map(_apply, *zip(*[(fn, part) for _, fn, part in jobs], strict=True)),
                                      strict=True):
                results[i].extend(out)
    else:
        results = [_apply(fn, part) for (_, fn, _, _), part in zip(stages, rows, strict=True)]
    mapped = []
    for frame, values, answered, (_, _, outputs, _) in zip(todo, results, done, stages, strict=True):
        scalar = pl.concat([frame, pl.DataFrame(values, schema={c: _OUTPUT_SCHEMA[c] for c in outputs}, orient="row")],
                           how="horizontal")
        mapped.append(scalar if answered is None else pl.concat([answered, scalar], how="vertical_relaxed"))
    return mapped


def normalize_people(df: pl.DataFrame, *, workers: int | None = None, vectorized: bool = True) -> pl.DataFrame:
    """``df`` with the ``n_*`` identity keys of every row; the original columns are left as they are.

    Each field is normalized once per distinct input value (or combination) and joined back, so a value
    repeated over many orders costs one call: by its vectorized twin where the twin certifies the
    answer, else by the scalar function (many leftover values are spread over processes).

    Args:
        df: columns among record_id, first_name, last_name, name, email, phone, line1, line2, city,
            region, postal_code, country and store_country (fallback phone region); missing ones count
            as null. first_name/last_name win over splitting ``name`` on rows that have either.
        workers: processes for the distinct values (default: the CPU count; 1 = this process only).
        vectorized: answer the common shapes with the vectorized normalizers (``dedupe.fastphone``,
            ``dedupe.fastname``, ``dedupe.fastaddress``); False runs the scalar functions on every value.

    Returns:
        ``df`` plus n_email, n_email_relay, n_phone, n_first, n_last, n_first_canon, n_initial,
        n_name_tokens (sorted tokens joined by a space), n_line, n_number, n_street, n_unit,
        n_postcode, n_city, n_country.
    """
    work = df.select(
        pl.int_range(pl.len()).alias("_row"),  # keeps the height when no source column is present
        *((pl.col(c).cast(pl.String) if c in df.columns else pl.lit(None, dtype=pl.String)).alias(f"_{c}")
          for c in _SOURCES))
    codes = {c: country_code(c) for c in work["_country"].unique().drop_nulls().to_list()}
    work = work.with_columns(
        pl.col("_country").replace_strict(codes, default=None, return_dtype=pl.String).alias("n_country"))
    # Punctuation and spaces mean nothing to phonenumbers: "(415) 555-0199" and "415.555.0199" are one
    # parse. Only plain formats are squeezed (an "(0)" or letters such as "ext" are left to the parser).
    plain = pl.col("_phone").str.contains(r"^[0-9+ ().\-/]+$") & ~pl.col("_phone").str.contains(r"\(0\)", literal=False)
    work = work.with_columns(
        pl.when(plain.fill_null(False)).then(pl.col("_phone").str.replace_all(r"[ ().\-/]", ""))
        .otherwise(pl.col("_phone")).alias("_phone"))
    # A "+" number reads the same whatever the regions: dropping them makes one key per number.
    international = pl.col("_phone").str.strip_chars().str.starts_with("+").fill_null(False)
    work = work.with_columns(
        pl.when(international).then(None).otherwise(pl.col("n_country")).alias("_phone_region"),
        pl.when(international).then(None).otherwise(pl.col("_store_country")).alias("_phone_fallback"))
    for (keys, _, _, _), mapped in zip(_STAGES, _map_stages(work, workers or os.cpu_count() or 1, vectorized),
                                       strict=True):
        work = work.join(mapped, on=list(keys), how="left", nulls_equal=True, maintain_order="left")
    out = df.drop([c for c in _OUTPUT_SCHEMA if c in df.columns])
    return pl.concat([out, work.select(list(_OUTPUT_SCHEMA))], how="horizontal")


def name_keys(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` plus the name keys of :func:`normalize_people` (n_first ... n_name_tokens), and nothing else.

    Args:
        df: columns among first_name, last_name and name (missing ones count as null).
    """
    work = df.select(*((pl.col(c).cast(pl.String) if c in df.columns else pl.lit(None, dtype=pl.String)).alias(f"_{c}")
                       for c in ("first_name", "last_name", "name")))
    stage = next(stage for stage in _STAGES if stage[2] == _NAME_COLUMNS)
    mapped = _map_stages(work, 1, True, (stage,))[0]
    keys = work.join(mapped, on=list(stage[0]), how="left", nulls_equal=True, maintain_order="left")
    return pl.concat([df.drop([c for c in _NAME_COLUMNS if c in df.columns]), keys.select(_NAME_COLUMNS)],
                     how="horizontal")
