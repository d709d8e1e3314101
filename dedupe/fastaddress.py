"""Vectorized, certified fast paths for the street, e-mail and postcode keys of :mod:`dedupe.normalize`.

Why: the scalar functions (:func:`dedupe.normalize.street_key`, ``_email_parts``,
:func:`dedupe.normalize.postcode_key`) cost microseconds per distinct value in pure Python, seconds
for a few hundred thousand distinct addresses. The functions here compute the same keys with polars
string expressions (Rust regex, Aho-Corasick, Unicode normalization) over a whole column at once.

Certification contract: every function returns its input frame with the key columns and a Boolean
``certified`` column (never null). On a certified row the keys are *exactly* what the scalar
function returns for that row. A row is certified only when

* every character of its text is in :data:`FOLD_SAFE_CHARS`, the characters for which the vectorized
  folding was checked, one code point at a time, against :func:`dedupe.normalize.fold` when this module
  was imported (folding is a per-character map, so equal on every character means equal on every
  string of them), and the folded text is printable ASCII (where Python's ``re`` and Rust's regex
  agree on ``\\s``, ``\\d``, ``\\b`` and ``str.split``); and
* for streets, each line has one of the shapes reproduced here (see :func:`streets_frame`).

Every other row has null keys and ``certified`` false: the caller computes it with the scalar function.
The rule tables (street types, directions, unit markers, floors, e-mail providers, ``_FOLD``) are
read from :mod:`dedupe.normalize`, so they cannot drift apart; its regular expressions are mirrored
here and pinned by ``tests/dedupe/test_fastaddress.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import polars as pl

import dedupe.normalize as nz

__all__ = ["FOLD_SAFE_CHARS", "emails_frame", "postcodes_frame", "streets_frame"]

# -- folding ------------------------------------------------------------------------------------------
_FOLD_FROM = [chr(code) for code in nz._FOLD]
_FOLD_TO = [str(value) for value in nz._FOLD.values()]
_COMBINING = "[\u0300-\u036f]"  # the combining marks NFKD splits off Latin letters
_PRINTABLE_ASCII = r"^[\x20-\x7e]*$"


def _fold(expr: pl.Expr) -> pl.Expr:
    """``dedupe.normalize.fold`` as an expression (exact on :data:`FOLD_SAFE_CHARS`)."""
    expr = expr.str.replace_many(_FOLD_FROM, _FOLD_TO).str.to_lowercase().str.normalize("NFKD")
    return expr.str.replace_all(_COMBINING, "").str.replace_many(_FOLD_FROM, _FOLD_TO)


def _char_class(chars: Iterable[str]) -> str:
    """A regex character class of ``chars`` (every non-alphanumeric written as a hex escape)."""
    return "[" + "".join(ch if ch.isascii() and ch.isalnum() else f"\\x{{{ord(ch):x}}}" for ch in chars) + "]"


def _update(work: pl.DataFrame, rows: pl.Expr, compute: Callable[[pl.DataFrame], pl.DataFrame]) -> pl.DataFrame:
    """``work`` with the columns ``compute`` returns for the rows where ``rows`` holds, written over those rows.

    A column ``work`` does not have yet is null on the other rows. String kernels cost as much on the
    null slots of a masked column as on values, so the few rows a rule concerns are taken out, worked
    on and scattered back.
    """
    selected = work.select(rows.fill_null(False)).to_series()
    computed = compute(work.filter(selected))
    index = selected.arg_true()
    columns = []
    for column in computed.iter_columns():
        if column.name in work.columns:
            base = work.get_column(column.name).clone()
        else:
            base = pl.repeat(None, work.height, dtype=column.dtype, eager=True).alias(column.name)
        columns.append(base.scatter(index, column) if len(index) else base)
    return work.with_columns(columns)


def _fold_safe_chars() -> tuple[str, str]:
    """(characters ``_fold`` folds exactly, printable ASCII characters ``fold`` only lower-cases).

    The candidates are ASCII, Latin-1 Supplement, Latin Extended-A and ``_FOLD``'s keys.
    """
    candidates = sorted({chr(c) for c in range(0x20, 0x7F)} | {chr(c) for c in range(0xA0, 0x180)} | set(_FOLD_FROM))
    folded = pl.Series(candidates, dtype=pl.String).to_frame("c").select(_fold(pl.col("c")))["c"].to_list()
    safe = "".join(ch for ch, got in zip(candidates, folded, strict=True) if got == nz.fold(ch))
    lower = "".join(ch for ch in map(chr, range(0x20, 0x7F)) if ch in safe and nz.fold(ch) == ch.lower())
    return safe, lower


FOLD_SAFE_CHARS, _LOWER_ONLY_CHARS = _fold_safe_chars()
"""Every character a certified row may contain (checked against ``fold`` at import)."""
_SAFE_TEXT = f"^{_char_class(FOLD_SAFE_CHARS)}*$"
_NEEDS_FOLD = _char_class(_LOWER_ONLY_CHARS).replace("[", "[^", 1)  # a character ``lower()`` alone does not fold


def _with_fold(work: pl.DataFrame, raw: str, folded: str, ok: str) -> pl.DataFrame:
    """``work`` with ``folded`` (``fold`` of column ``raw``, null read as "") and ``ok`` (the fold is certified).

    Only the values with a character beyond plain ASCII go through the full fold and its checks; the
    others are only lower-cased, which is what ``fold`` does to them (checked at import).
    """
    text = pl.col(raw).fill_null("")
    work = work.with_columns(text.str.to_lowercase().alias(folded), pl.lit(True).alias(ok))
    return _update(work, text.str.contains(_NEEDS_FOLD), lambda rows: rows.with_columns(_fold(text).alias(folded)).select(
        folded, (text.str.contains(_SAFE_TEXT) & pl.col(folded).str.contains(_PRINTABLE_ASCII)).alias(ok)))


def _alternation(words: Iterable[str]) -> str:
    return "(?:" + "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w))) + ")"


# -- streets ------------------------------------------------------------------------------------------
# Mirrors of normalize's patterns, for whole tokens of a line of single-space-separated tokens.
_ID = r"(?:[a-z]?\d+[a-z]{0,2}|[a-z]|\d+-\d+)"  # nz._UNIT_ID
_ORD = r"(\d+)(?:st|nd|rd|th|e|er)?"  # nz._ORDINAL
_CARE_OF = r"\bc\s*/\s*o\b.*$"  # nz._CARE_OF
_MARKER = _alternation(nz._UNIT_MARKERS).replace(r"\#", "#")
_FLOOR = _alternation(nz._FLOORS)
# A unit rule fires somewhere: a marker before an identifier, or an ordinal before a floor word
# after some other token ("2 og" opening a line stays two street tokens).
_TRIGGER = rf"(?:^| ){_MARKER} {_ID}(?: |$)|\S {_ORD} {_FLOOR}(?: |$)"
_END_PAIR = rf"^(?:(.*) )?({_MARKER}) ({_ID})$"  # "12 maple ave apt 4b"
_START_PAIR = rf"^{_MARKER} ({_ID}) (.+)$"  # "flat 3 10 downing st"
_END_FLOOR = rf"^(.+) {_ORD} {_FLOOR}$"  # "hauptstr 5 2 og"
_ENDS_WITH_MARKER = rf"(?:^| ){_MARKER}$"
_HOUSE_NUMBER_MARKERS = ("no", "nr")  # _take_units: after other tokens these introduce the house number

_TYPE_VALUES = frozenset(nz._STREET_TYPES.values())
_SUFFIX, _SHORT = nz._DE_SUFFIXES[0]
# Every token whose standard word is a street type (the ones a trailing unit may follow).
_TYPE_WORDS = frozenset(
    t for t in {*nz._STREET_TYPES, *_TYPE_VALUES, *nz._DIRECTIONS, *nz._DIRECTIONS.values(),
                *(v[: -len(_SHORT)] + _SUFFIX for v in _TYPE_VALUES if v.endswith(_SHORT) and len(v) > len(_SHORT))}
    if nz._standard_word(t) in _TYPE_VALUES)
_STANDARD_FROM = [f" {k} " for k in {**nz._DIRECTIONS, **nz._STREET_TYPES}]
_STANDARD_TO = [f" {v} " for v in {**nz._DIRECTIONS, **nz._STREET_TYPES}.values()]


def _tokens_text(folded: pl.Expr) -> pl.Expr:
    """``_address_tokens`` of a folded line, joined by single blanks."""
    text = folded.str.replace(_CARE_OF, " ")
    # Hyphens split words except between two digits: mark those (twice, for chains like 1-2-3) first.
    text = text.str.replace_all(r"(\d)-(\d)", "${1}\x01${2}").str.replace_all(r"(\d)-(\d)", "${1}\x01${2}")
    text = text.str.replace_all("-", " ", literal=True).str.replace_all("#", " # ", literal=True)
    text = text.str.replace_all("[^a-z0-9#\x01]+", " ").str.replace_all("\x01", "-", literal=True)
    return text.str.strip_chars(" ")


def _address_text(work: pl.DataFrame, folded: str, tokens: str) -> pl.DataFrame:
    """``work`` with ``tokens``: ``_address_tokens`` of the folded line ``folded``, joined by single blanks."""
    work = work.with_columns(pl.col(folded).alias(tokens))  # letters, digits and single blanks: its own tokens
    return _update(work, pl.col(folded).str.contains("[^a-z0-9 ]|  |^ | $"),
                   lambda rows: rows.select(_tokens_text(pl.col(folded)).alias(tokens)))


def _non_empty(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr != "").then(expr)


def _free(expr: pl.Expr) -> pl.Expr:
    """Whether no unit rule fires in the token text ``expr`` (null stays null)."""
    return ~expr.str.contains(_TRIGGER)


def _take_units(work: pl.DataFrame, line: str) -> pl.DataFrame:
    """``_take_units`` of column ``line`` (token text): adds ``{line}_rest``, ``{line}_unit``, ``{line}_ok``.

    Certified shapes (X: tokens where no unit rule fires): X; X + marker + identifier; marker +
    identifier + X; X + ordinal + floor word ("2 og") when X does not end with a marker. The shapes
    are matched only on the lines where some rule fires (a few per cent).
    """
    t = pl.col(line)
    work = work.with_columns(t.alias(f"{line}_rest"), pl.lit(None, pl.String).alias(f"{line}_unit"),
                             pl.lit(True).alias(f"{line}_ok"))

    def shapes(rows: pl.DataFrame) -> pl.DataFrame:
        rows = rows.with_columns(t.str.extract_groups(_END_PAIR).alias("_end"),
                                 t.str.extract_groups(_START_PAIR).alias("_start"),
                                 t.str.extract_groups(_END_FLOOR).alias("_floor"))
        end, start, floor = pl.col("_end").struct, pl.col("_start").struct, pl.col("_floor").struct
        end_x = end[0].fill_null("")
        rows = rows.with_columns(
            (end[1].is_not_null() & _free(end_x)).fill_null(False).alias("_is_end"),
            (start[0].is_not_null() & _free(start[1])).fill_null(False).alias("_is_start"),
            (floor[0].is_not_null() & _free(floor[0]) & ~floor[0].str.contains(_ENDS_WITH_MARKER))
            .fill_null(False).alias("_is_floor"),
            (end[1].is_in(_HOUSE_NUMBER_MARKERS) & (end_x != "")).fill_null(False).alias("_number_marker"))
        is_end, is_start, is_floor = pl.col("_is_end"), pl.col("_is_start"), pl.col("_is_floor")
        number_marker = pl.col("_number_marker")
        rest = (pl.when(is_end & number_marker).then(pl.concat_str([end_x, end[2]], separator=" "))
                .when(is_end).then(end_x)
                .when(is_start).then(start[1])
                .when(is_floor).then(floor[0]))
        unit = (pl.when(is_end & ~number_marker).then(end[2])
                .when(is_start).then(start[0])
                .when(is_floor).then(floor[1] + "og"))
        return rows.select(rest.fill_null("").alias(f"{line}_rest"), unit.alias(f"{line}_unit"),
                           (is_end | is_start | is_floor).alias(f"{line}_ok"))

    return _update(work, ~_free(t), shapes)


def _standard_words(work: pl.DataFrame, column: str) -> pl.DataFrame:
    """``_standard_word`` on every token of ``column``, and a final Canadian "o" (Ouest) as "w" after two words."""
    street = pl.col(column)
    # Each token between its own two blanks, so the " word " patterns cannot overlap.
    padded = pl.lit(" ") + street.str.replace_all(" ", "  ", literal=True) + pl.lit(" ")
    padded = padded.str.replace_many(_STANDARD_FROM, _STANDARD_TO, leftmost=True)
    padded = padded.str.replace_all(rf"(\S){_SUFFIX} ", rf"${{1}}{_SHORT} ")
    work = work.with_columns(padded.str.strip_chars(" ").str.replace_all("  ", " ", literal=True).alias(column))
    ouest = street.str.ends_with(" o") & (street.str.count_matches(" ", literal=True) >= 2)
    return work.with_columns(pl.when(ouest).then(street.str.replace(" o$", " w")).otherwise(street).alias(column))


def streets_frame(df: pl.DataFrame) -> pl.DataFrame:
    """``street_key(line1, line2)`` for every row where the vectorized form is certified exact.

    Certified: both lines fold safely (see the module docstring) and each line, as tokens, is one of
    the shapes of ``_take_units`` reproduced here: no unit rule; a marker and identifier at its end
    ("apt 4b", "nr 5" as the house number after a street) or start ("flat 3, 10 downing st"); an
    ordinal and floor word at its end ("2. OG"). Everything after the unit rules (line2 as the street
    line, house number first or after the street, "5 a", a unit after the street type, line2 text as
    a unit, street types and directions, "-strasse", the final "O", de-duplicated units) is exact.
    Not certified: other characters (Greek, Cyrillic, CJK, control characters, ...), several unit
    rules in one line, or one in the middle of a line.

    Args:
        df: columns ``line1`` and ``line2`` (String, nullable); other columns are kept.

    Returns:
        ``df`` with ``n_line``, ``n_number``, ``n_street``, ``n_unit`` (null where not certified) and
        ``certified`` (Boolean, never null), same height and order.
    """
    work = _with_fold(_with_fold(df.select(pl.col("line1", "line2").cast(pl.String)), "line1", "_f1", "_ok1"), "line2", "_f2", "_ok2")
    work = _address_text(_address_text(work, "_f1", "_t1"), "_f2", "_t2")
    work = work.select(pl.all_horizontal("_ok1", "_ok2").alias("_ok"), "_t1", "_t2")
    work = _take_units(_take_units(work, "_t1"), "_t2")
    r1, r2 = pl.col("_t1_rest"), pl.col("_t2_rest")
    has_number = r"(?:^| )\d"
    swap = (r2 != "") & ~r1.str.contains(has_number) & r2.str.contains(has_number) & r2.str.contains(" ", literal=True)
    work = work.select(
        "_t1_unit", "_t2_unit",
        pl.all_horizontal("_ok", "_t1_ok", "_t2_ok").alias("_ok"),
        pl.when(swap).then(r2).otherwise(r1).alias("_l"),
        _non_empty(pl.when(swap).then(pl.lit("")).otherwise(r2).str.replace_all(" ", "", literal=True)).alias("_l2"))
    line = pl.col("_l")
    # The common case, the number first ("12 maple ave"): number, street.
    work = work.with_columns(line.str.splitn(" ", 2).alias("_split"))
    work = work.with_columns(pl.col("_split").struct[0].alias("_number"), pl.col("_split").struct[1].alias("_street"),
                             pl.lit(None, pl.String).alias("_extra"),
                             pl.col("_split").struct[0].str.contains(r"^\d").alias("_number_first")).drop("_split")
    street = pl.col("_street")
    # "12 maple ave 4b": a bare identifier after the street type is a unit.
    popped = street.str.extract_groups(rf"^((?:.* )?{_alternation(_TYPE_WORDS)}) ({_ID})$").struct
    work = _update(work, pl.col("_number_first") & street.str.contains(rf"(?:^| ){_alternation(_TYPE_WORDS)} {_ID}$"),
                   lambda rows: rows.select(popped[0].alias("_street"), popped[1].alias("_extra")))

    def number_inside(rows: pl.DataFrame) -> pl.DataFrame:
        """"hauptstr 5 a": street, number with a split letter, the rest as a unit; or no number at all."""
        rows = rows.with_columns(line.str.extract_groups(r"^(.*?) (\d\S*)(?: (.+))?$").alias("_inner"))
        inner = pl.col("_inner").struct
        rows = rows.with_columns(inner[2].str.extract_groups(r"^([a-z])(?: (.+))?$").alias("_letter"))
        letter = pl.col("_letter").struct
        return rows.select(
            pl.coalesce(inner[1] + letter[0], inner[1]).alias("_number"),
            pl.when(inner[1].is_not_null()).then(inner[0]).otherwise(_non_empty(line)).alias("_street"),
            pl.when(letter[0].is_not_null()).then(letter[1]).otherwise(inner[2])
            .str.replace_all(" ", "", literal=True).alias("_extra"))

    work = _update(work, ~pl.col("_number_first"), number_inside)
    distinct = work.get_column("_street").unique().drop_nulls()  # a few thousand: the standard words once each
    standard = _standard_words(pl.DataFrame({"_from": distinct, "_to": distinct}), "_to")
    work = work.with_columns(street.replace(standard["_from"], standard["_to"]))
    # The units in order, each once (every one is a single token): " ".join(dict.fromkeys(units)).
    sources = [pl.col(c) for c in ("_t1_unit", "_t2_unit", "_extra", "_l2")]
    work = work.with_columns(pl.concat_str(sources, separator=" ", ignore_nulls=True).alias("_unit"))

    def distinct_units(rows: pl.DataFrame) -> pl.DataFrame:
        units = [pl.when(pl.all_horizontal(u.ne_missing(s) for s in sources[:i])).then(u) if i else u
                 for i, u in enumerate(sources)]
        return rows.select(pl.concat_str(units, separator=" ", ignore_nulls=True).alias("_unit"))

    work = _update(work, pl.sum_horizontal(s.is_not_null() for s in sources) > 1, distinct_units)
    ok = pl.col("_ok")
    keys = [_non_empty(pl.concat_str("_number", "_street", separator=" ", ignore_nulls=True)).alias("n_line"),
            pl.col("_number").alias("n_number"), pl.col("_street").alias("n_street"),
            _non_empty(pl.col("_unit")).alias("n_unit")]
    if not work.get_column("_ok").all():
        keys = [pl.when(ok).then(key).alias(key.meta.output_name()) for key in keys]
    return df.with_columns(work.select(*keys, ok.alias("certified")))


# -- e-mail -------------------------------------------------------------------------------------------
_EMAIL = r"^[^@\s]+@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z]{2,}|xn--[a-z0-9-]+)$"  # nz._EMAIL
# The same on ASCII text without control characters (Python's \s also matches \x1c-\x1f, Rust's does not).
_EMAIL_ASCII = r"^[^@\x00-\x20\x7f]+@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:[a-z]{2,}|xn--[a-z0-9-]+)$"
_RELAY = r"@marketplace\.amazon\.(?:[a-z]{2,3})(?:\.[a-z]{2})?$"  # nz._RELAY


def _domain_rules(domains: pl.Series) -> tuple[list[str], list[str], list[bool], list[bool]]:
    """(domain, aliased domain, strips +tags, strips dots) per distinct domain, by the scalar tables themselves."""
    distinct: list[str] = domains.drop_nulls().unique().to_list()
    aliased = [nz._DOMAIN_ALIASES.get(domain, domain) for domain in distinct]
    rules = [nz._provider_rule(domain) for domain in aliased]
    return distinct, aliased, ["plus" in rule for rule in rules], ["dots" in rule for rule in rules]


def emails_frame(df: pl.DataFrame) -> pl.DataFrame:
    """``email_key(email)`` and ``is_relay_email(email)`` for every row where that is certified exact.

    Certified: null, or printable ASCII (any case, blanks, ``mailto:``, ``<...>``, invalid addresses).
    Not certified: any other character (the scalar function's Unicode ``lower``/``strip``/``\\s`` decide).

    Args:
        df: column ``email`` (String, nullable); other columns are kept.

    Returns:
        ``df`` with ``n_email`` (String), ``n_email_relay`` (Boolean, null where not certified) and
        ``certified`` (Boolean, never null), same height and order.
    """
    raw = pl.col("email").cast(pl.String)
    work = df.select(raw.alias("_raw"), (raw.str.len_bytes() == raw.str.len_chars()).fill_null(True).alias("_ok"),
                     raw.str.strip_chars(" ").str.to_lowercase().alias("_lowered"))
    lowered = pl.col("_lowered")
    # strip("<>") and strip() change nothing unless the text starts with "mailto:", "<" or ">" or ends with either.
    wrapped = pl.any_horizontal(lowered.str.starts_with("mailto:"),
                                *(end(bracket) for end in (lowered.str.starts_with, lowered.str.ends_with)
                                  for bracket in "<>"))
    work = work.select(
        "_raw", "_ok", lowered.str.contains(_RELAY).fill_null(False).alias("_relay"),
        pl.coalesce(pl.when(wrapped).then(lowered).str.strip_prefix("mailto:").str.strip_chars("<>")
                    .str.strip_chars(" "), lowered).alias("_text"))
    text = pl.col("_text")
    work = work.with_columns(pl.when(pl.col("_ok") & text.str.contains(_EMAIL_ASCII)).then(text).alias("_text"))
    # A valid address matched here has no control character left that Python's strip() or \s would
    # have seen differently; the other rows are certified (invalid) only without control characters.
    work = _update(work, pl.col("_text").is_null() & pl.col("_raw").is_not_null(), lambda rows: rows.select(
        (pl.col("_ok") & ~pl.col("_raw").str.contains(r"[\x00-\x1f\x7f]")).alias("_ok")))
    work = work.with_columns(text.str.split_exact("@", 1).alias("_parts"))
    work = work.select("_ok", "_relay", pl.col("_parts").struct[0].alias("_local"),
                       pl.col("_parts").struct[1].alias("_raw_domain"))
    domains, aliased, plus, dots = _domain_rules(work["_raw_domain"])
    raw_domain, old = pl.col("_raw_domain"), pl.Series(domains, dtype=pl.String)
    if domains:
        work = work.with_columns(
            raw_domain.replace_strict(old, pl.Series(aliased, dtype=pl.String)).alias("_domain"),
            raw_domain.replace_strict(old, pl.Series(plus, dtype=pl.Boolean)).alias("_plus"),
            raw_domain.replace_strict(old, pl.Series(dots, dtype=pl.Boolean)).alias("_dots"))
    else:  # no valid address (replace_strict with nothing to replace would keep the String dtype)
        work = work.with_columns(raw_domain.alias("_domain"), pl.lit(False).alias("_plus"), pl.lit(False).alias("_dots"))
    local = pl.col("_local")
    work = _update(work, pl.col("_plus") & local.str.contains("+", literal=True),
                   lambda rows: rows.select(local.str.splitn("+", 2).struct[0].alias("_local")))
    work = _update(work, pl.col("_dots") & local.str.contains(".", literal=True),
                   lambda rows: rows.select(local.str.replace_all(".", "", literal=True).alias("_local")))
    ok = pl.col("_ok")
    return df.with_columns(work.select(
        pl.when(local != "").then(pl.concat_str(local, pl.lit("@"), "_domain")).alias("n_email"),
        pl.when(ok).then(pl.col("_relay")).alias("n_email_relay"), ok.alias("certified")))


# -- postcodes ----------------------------------------------------------------------------------------
_DIGIT_COUNTRIES = ("US", "DE", "FR")  # postcode_key keeps their digits only
_ZIP5_COUNTRIES = ("US",)  # ... and the first five of them


def postcodes_frame(df: pl.DataFrame) -> pl.DataFrame:
    """``postcode_key(postal_code, country)`` for every row where that is certified exact.

    Certified: a null postcode, or one whose characters fold safely to printable ASCII (see the module
    docstring), whatever the country.

    Args:
        df: columns ``postal_code`` (String, nullable) and ``country`` (ISO code from
            :func:`dedupe.normalize.country_code`, or null); other columns are kept.

    Returns:
        ``df`` with ``n_postcode`` (null where not certified) and ``certified`` (Boolean, never null),
        same height and order.
    """
    work = _with_fold(df.select(pl.col("postal_code", "country").cast(pl.String)), "postal_code", "_folded", "_ok")
    country = pl.col("country")
    work = work.select(
        (pl.col("postal_code").is_null() | pl.col("_ok")).alias("_ok"), country.is_in(_DIGIT_COUNTRIES).alias("_digital"),
        country.is_in(_ZIP5_COUNTRIES).alias("_zip5"),
        _non_empty(pl.col("_folded").str.to_uppercase().str.replace_all("[^0-9A-Z]", "")).alias("_text"))
    digits = pl.col("_digits")
    work = work.with_columns(pl.when(pl.col("_digital")).then(pl.col("_text").str.replace_all(r"\D", "")).alias("_digits"))
    work = work.with_columns(pl.when(pl.col("_zip5")).then(digits.str.slice(0, 5)).otherwise(digits).alias("_digits"))
    key = (pl.when(pl.col("_text").is_null()).then(pl.lit(None, pl.String))
           .when(pl.col("_digital")).then(pl.when(digits.str.len_bytes() == 4).then(pl.lit("0") + digits)
                                          .otherwise(_non_empty(digits)))
           .otherwise(pl.col("_text")))
    ok = pl.col("_ok")
    return df.with_columns(work.select(pl.when(ok).then(key).alias("n_postcode"), ok.alias("certified")))
