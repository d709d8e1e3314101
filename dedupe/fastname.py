"""Vectorized name keys: the common names in polars, certified equal to the scalar ``_name_parts``.

Why: :func:`dedupe.normalize.name_key_parts` is pure Python (fold, regexes, token loops) and costs
about 18 µs per distinct ``(first_name, last_name, name)``; at 200,000+ distinct names identity
resolution spends seconds there. :func:`names_frame` computes the same five values for a whole frame
with polars string and list kernels, and says per row whether it may be trusted.

Certification contract: on every row with ``certified`` true, ``n_first, n_last, n_first_canon,
n_initial, n_name_tokens`` equal ``dedupe.normalize._name_parts(first_name, last_name, name)``
exactly. Rows that are not certified carry nulls and must be computed by the scalar function. A row is
certified when every character of the inputs it reads (first_name and last_name always; name when
both of those are blank) lies in :data:`CERTIFIED_CHARS`: the characters of ASCII, Latin-1
Supplement, Latin Extended-A/-B, the combining diacritical marks, Latin Extended Additional and the
typographic apostrophes/dashes of ``_FOLD`` whose :func:`~dedupe.normalize.fold` is lower-case ASCII
(without a comma, except the comma itself). Why that is exact:

* ``fold`` works character by character (``str.lower`` is context-free outside the Greek final
  sigma; NFKD decomposes each character and only reorders combining marks, which ``fold`` drops), so
  translating each certified character by :data:`FOLD_TABLE` (built from ``fold`` itself: every
  non-ASCII one, and the backtick) and lower-casing the ASCII result is ``fold``. A character outside
  the set is left as it is by the table and is not ASCII, so "the translated text is ASCII" (tested
  before lower-casing, which could turn e.g. the Kelvin sign into "k") is the same as "every
  character is certified". A test checks every certified code point against ``fold``.
* On ASCII, ``\\w`` is ``[A-Za-z0-9_]`` in Python and in Rust regex, so the punctuation, apostrophe,
  hyphen and digit rules of ``_name_tokens`` are plain ASCII patterns here, and "blank"
  (``not text.strip()``) is "only the ``isspace`` characters of the set".
* The token loops (honorifics at the front with the ``m`` rule, suffixes at the end, surname
  particles) are computed in closed form from a one-letter class per token (``h`` honorific, ``m``,
  ``s`` suffix, ``p`` particle, ``x`` other), the comma swap (``Last, First``), ``Smith,`` alone, and
  the first_name/last_name-versus-name choice follow ``name_key``/``name_key_parts`` branch by branch.
* The nickname canonical is :func:`~dedupe.normalize.first_name_canonical` itself, called once per
  distinct first token.

Use: ``keys = names_frame(distinct)``; take the certified rows as they are and run ``_name_parts``
on the others (other scripts, letters such as Ŀ or Ŋ whose fold is not ASCII, control characters beyond ASCII).

If the token classes of ``dedupe.normalize`` ever overlap (a word both honorific and particle), the
one-letter classes no longer describe the loops and no row is certified.
"""

from __future__ import annotations

import polars as pl

from dedupe.normalize import (
    _FOLD,
    _HONORIFIC_IF_MORE,
    _HONORIFICS,
    _PARTICLES,
    _SUFFIXES,
    first_name_canonical,
    fold,
)

__all__ = ["CERTIFIED_CHARS", "FOLD_TABLE", "OUTPUT_COLUMNS", "fold_expr", "names_frame"]

OUTPUT_COLUMNS = ("n_first", "n_last", "n_first_canon", "n_initial", "n_name_tokens")

# Candidate code points: ASCII, Latin-1 Supplement, Latin Extended-A and -B, combining diacritical
# marks (decomposed input), Latin Extended Additional (Vietnamese), and the _FOLD keys (’ – …).
_CANDIDATES = sorted({*range(0x250), *range(0x300, 0x370), *range(0x1E00, 0x1F00), *_FOLD})  # _FOLD: code point keys


def _certified_table() -> tuple[frozenset[str], dict[str, str]]:
    """(the certified characters, the translation that with ASCII lower-casing is ``fold`` on them).

    A candidate is certified when its fold is ASCII, has no upper-case letter and no comma (the comma
    itself excepted). The table maps every certified character whose fold is not its ASCII
    lower-case to its fold: every non-ASCII one, and the backtick (an apostrophe to ``fold``).
    """
    chars: set[str] = set()
    table: dict[str, str] = {}
    for point in _CANDIDATES:
        char = chr(point)
        folded = fold(char)
        if not folded.isascii() or folded != folded.lower() or ("," in folded and char != ","):
            continue
        chars.add(char)
        if not (char.isascii() and folded == char.lower()):
            table[char] = folded
    return frozenset(chars), table


CERTIFIED_CHARS, FOLD_TABLE = _certified_table()
# Python's str.strip() removes the isspace() characters; within the certified set these are exactly:
_BLANK = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(c for c in CERTIFIED_CHARS if c.isspace())) + "]*$"
_NON_ASCII = r"[^\x00-\x7f]"

# One letter per token class; the closed forms below assume the classes are disjoint.
_CLASS = {**dict.fromkeys(_PARTICLES, "p"), **dict.fromkeys(_SUFFIXES, "s"),
          **dict.fromkeys(_HONORIFIC_IF_MORE, "m"), **dict.fromkeys(_HONORIFICS, "h")}
_CLASSES_DISJOINT = len(_CLASS) == len(_PARTICLES) + len(_SUFFIXES) + len(_HONORIFIC_IF_MORE) + len(_HONORIFICS)

_I = pl.Int32
_EMPTY = pl.lit([], dtype=pl.List(pl.String))


def fold_expr(column: str) -> tuple[pl.Expr, pl.Expr]:
    """(``fold`` of a String column, whether that is exact): FOLD_TABLE, then ASCII lower-casing.

    The translation leaves a character outside CERTIFIED_CHARS as it is, and every non-ASCII one is
    outside: the translated text is ASCII exactly when all its characters are certified, and then
    the result equals ``fold`` (which is per character). Null stays null and counts as exact.
    """
    translated = pl.col(column).str.replace_many(list(FOLD_TABLE), list(FOLD_TABLE.values()))
    return translated.str.to_lowercase(), ~translated.str.contains(_NON_ASCII).fill_null(False)


def _tokens(text: pl.Expr) -> pl.Expr:
    """``_name_tokens`` of folded ASCII text as a list (null stays null)."""
    # Apostrophes out; then each run of separators (spaces and punctuation, _ too) with the hyphens on
    # both sides of it, and the hyphens at either end, to one space: strip("-") of every token at once
    # (a match always takes all of an adjacent hyphen run). "--" -> "-" inside a token.
    text = text.str.replace_all("'", "", literal=True)
    text = text.str.replace_all(r"-*[^A-Za-z0-9\-]+-*|^-+|-+$", " ").str.replace_all(r"-{2,}", "-")
    # Empty and all-digit tokens out (str.isdigit on ASCII).
    return text.str.split(" ").list.eval(pl.element().filter(pl.element().str.contains("[^0-9]")))


def _shape(tokens: pl.Expr) -> pl.Expr:
    """One class letter per token (h honorific, m, s suffix, p particle, x other)."""
    return tokens.list.eval(
        pl.element().replace_strict(list(_CLASS), list(_CLASS.values()), default="x", return_dtype=pl.String)
    ).list.join("")


def _lead(shape: pl.Expr, letters: str) -> pl.Expr:
    """Length of the leading run of ``letters`` in ``shape`` (ASCII: bytes are letters)."""
    return (shape.str.len_bytes() - shape.str.strip_chars_start(letters).str.len_bytes()).cast(_I)


def _trail(shape: pl.Expr, letters: str) -> pl.Expr:
    """Length of the trailing run of ``letters`` in ``shape``."""
    return (shape.str.len_bytes() - shape.str.strip_chars_end(letters).str.len_bytes()).cast(_I)


def _strip_counts(shape: pl.Expr, n: pl.Expr, *, front: bool) -> tuple[pl.Expr, pl.Expr]:
    """(tokens dropped at the front, at the end) by ``_strip_titles`` (front=False: the suffix loop only).

    The honorific loop drops token i while it is an honorific and i < n - 1, or "m" and i < n - 2:
    it stops at the first other token, at n - 1, or at n - 2 when token n - 2 is "m". The suffix
    loop then drops trailing suffixes while more than one token is left.
    """
    if front:
        m_stop = pl.when((n >= 2) & (shape.str.slice(-2, 1) == "m")).then(n - 2)
        head = pl.min_horizontal(_lead(shape, "hm"), n - 1, m_stop).clip(lower_bound=0)
    else:
        head = pl.lit(0, dtype=_I)
    tail = pl.min_horizontal(_trail(shape, "s"), (n - head - 1).clip(lower_bound=0))
    return head, tail


def _is_blank(column: str) -> pl.Expr:
    return pl.col(column).is_null() | pl.col(column).str.contains(_BLANK)


def _sorted_pair(ga: pl.Expr, gb: pl.Expr, count: pl.Expr, nv: pl.Expr) -> pl.Expr:
    """``" ".join(sorted(ga + gb[:nv]))`` for up to two tokens in all (null beyond).

    With two tokens in all they are the first of ``ga`` (or of ``gb`` when ``ga`` is empty) and the
    last of ``gb`` when it contributes, else the last of ``ga``.
    """
    one = pl.coalesce(ga.list.first(), gb.list.first())
    other = pl.when(nv > 0).then(gb.list.last()).otherwise(ga.list.last())
    return (pl.when(count == 0).then(pl.lit(""))
            .when(count == 1).then(one)
            .when(count == 2).then(pl.concat_str(pl.min_horizontal(one, other), pl.max_horizontal(one, other),
                                                 separator=" ")))


def names_frame(df: pl.DataFrame) -> pl.DataFrame:
    """The name keys of every row, with whether the vectorized result is certified.

    Args:
        df: columns ``first_name``, ``last_name``, ``name`` (String, nullable; a missing column
            counts as null).

    Returns:
        One row per input row, in order: ``n_first``, ``n_last``, ``n_first_canon``, ``n_initial``,
        ``n_name_tokens`` (String) and ``certified`` (Boolean, never null). Where ``certified`` is
        true the five values equal ``dedupe.normalize._name_parts(first_name, last_name, name)``;
        elsewhere they are null and the caller must use the scalar function.
    """
    schema = {**dict.fromkeys(OUTPUT_COLUMNS, pl.String), "certified": pl.Boolean}
    src = df.select(
        *((pl.col(c).cast(pl.String) if c in df.columns else pl.lit(None, dtype=pl.String)).alias(c)
          for c in ("first_name", "last_name", "name")))
    if src.height == 0:
        return pl.DataFrame(schema=schema)
    (f, f_ok), (last, l_ok), (n, n_ok) = fold_expr("first_name"), fold_expr("last_name"), fold_expr("name")
    split = ~(_is_blank("first_name") & _is_blank("last_name"))  # name_key_parts: first/last win
    parts = n.str.splitn(",", 2)  # fold maps no character but "," itself to a comma
    lf = src.lazy().select(
        split.alias("_split"),
        (f_ok & l_ok & (split | n_ok) & pl.lit(_CLASSES_DISJOINT)).alias("certified"),
        pl.col("name").str.contains(",", literal=True).fill_null(False).alias("_comma"),
        # Two token sources: first_name / last_name, or the name before / after its first comma.
        pl.when(split).then(f).otherwise(parts.struct.field("field_0")).alias("_a"),
        pl.when(split).then(last).otherwise(parts.struct.field("field_1")).alias("_b"),
    ).with_columns(
        _tokens(pl.when("certified").then("_a")).fill_null(_EMPTY).alias("_ta"),
        _tokens(pl.when("certified").then("_b")).fill_null(_EMPTY).alias("_tb"),
    ).with_columns(
        _shape(pl.col("_ta")).alias("_sa"), _shape(pl.col("_tb")).alias("_sb"),
        pl.col("_ta").list.len().cast(_I).alias("_na"), pl.col("_tb").list.len().cast(_I).alias("_nb"),
    )
    na, nb, sa, sb, split_col = pl.col("_na"), pl.col("_nb"), pl.col("_sa"), pl.col("_sb"), pl.col("_split")
    head_a, tail_a = _strip_counts(sa, na, front=True)
    head_b_full, tail_b_full = _strip_counts(sb, nb, front=True)
    _, tail_b_suffix = _strip_counts(sb, nb, front=False)
    head_b = pl.when(split_col).then(pl.lit(0, dtype=_I)).otherwise(head_b_full)  # last_name: suffixes only
    tail_b = pl.when(split_col).then(tail_b_suffix).otherwise(tail_b_full)
    lf = lf.with_columns(
        head_a.alias("_ha"), (na - head_a - tail_a).alias("_ma"),
        head_b.alias("_hb"), (nb - head_b - tail_b).alias("_mb"),
    ).with_columns(
        pl.col("_ta").list.slice("_ha", "_ma").alias("_ga"), pl.col("_tb").list.slice("_hb", "_mb").alias("_gb"),
        sa.str.slice(pl.col("_ha"), pl.col("_ma")).alias("_sa"),
    )
    ma, mb, ga, gb = pl.col("_ma"), pl.col("_mb"), pl.col("_ga"), pl.col("_gb")
    # name_key: "Last, First" when the part after the comma has a token that is no suffix/honorific.
    swap = ~split_col & pl.col("_comma") & (nb > 0) & sb.str.contains("[^hs]")
    surname_only = ~split_col & pl.col("_comma") & (nb == 0) & (na == 1)  # "Smith,"
    # _split_surname: the last token and the particles before it, leaving at least one given token.
    before_last = (ma - 1).clip(lower_bound=0)
    particles = _trail(pl.col("_sa").str.slice(0, before_last), "p")
    start = pl.when(ma >= 2).then(pl.max_horizontal(ma - 1 - particles, pl.lit(1, dtype=_I))).otherwise(ma)
    # given: ga (first/last fields), gb (swapped), nothing ("Smith,"), else ga[:start] (one token: all
    # of it); only its first token is used. surname: gb, ga (swapped, "Smith,"), else ga[start:].
    first = pl.when(swap).then(gb.list.first()).when(surname_only).then(None).otherwise(ga.list.first())
    surname = (pl.when(split_col).then(gb).when(swap | surname_only).then(ga)
               .otherwise(ga.list.slice(start)))
    both = split_col | swap  # the tokens are given + surname: both parts, or the stripped name alone
    nv = pl.when(both).then(mb).otherwise(pl.lit(0, dtype=_I))
    count = ma + nv
    out = lf.select(
        pl.when("certified").then(first).alias("n_first"),
        pl.when("certified").then(surname.list.join(" ")).replace("", None).alias("n_last"),
        pl.when("certified").then(_sorted_pair(ga, gb, count, nv)).alias("n_name_tokens"),
        pl.col("certified"),
        pl.when(pl.col("certified") & (count > 2)).then(ga).alias("_u"),
        pl.when(both).then(gb).alias("_v"),
    ).collect()
    many = out["_u"].is_not_null().arg_true()  # more than two tokens: sort the lists (few rows)
    tokens = out["n_name_tokens"]
    if len(many):
        sub = out[many].select(
            pl.concat_list("_u", pl.col("_v").fill_null(_EMPTY)).list.eval(pl.element().sort()).list.join(" "))
        tokens = tokens.scatter(many, sub.to_series())
    firsts = out["n_first"].drop_nulls().unique()
    canon = pl.Series([first_name_canonical(x) for x in firsts], dtype=pl.String)
    return out.select(
        "n_first", "n_last",
        pl.col("n_first").replace_strict(firsts, canon, default=None, return_dtype=pl.String).alias("n_first_canon"),
        pl.col("n_first").str.slice(0, 1).alias("n_initial"),
        tokens.alias("n_name_tokens"), "certified",
    )
