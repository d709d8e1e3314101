"""The vectorized name keys (dedupe.fastname) equal the scalar ``_name_parts`` on every certified row."""

from __future__ import annotations

import random

import polars as pl
import pytest

import dedupe.normalize as nz
from dedupe.fastname import _CANDIDATES, CERTIFIED_CHARS, FOLD_TABLE, OUTPUT_COLUMNS, fold_expr, names_frame

Row = tuple[str | None, str | None, str | None]


def _frame(rows: list[Row]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"first_name": pl.String, "last_name": pl.String, "name": pl.String},
                        orient="row")


def _check(rows: list[Row]) -> pl.DataFrame:
    """names_frame of ``rows``; asserts every certified row equals the scalar function."""
    out = names_frame(_frame(rows))
    assert out.columns == [*OUTPUT_COLUMNS, "certified"]
    assert out.height == len(rows) and out["certified"].null_count() == 0
    bad = []
    for row, got in zip(rows, out.iter_rows(), strict=True):
        if got[-1]:
            want = nz._name_parts(*row)
            if got[:-1] != want:
                bad.append((row, got[:-1], want))
        else:
            assert got[:-1] == (None,) * 5, row
    assert not bad, bad[:10]
    return out


# -- folding ------------------------------------------------------------------------------------------


def test_every_certified_character_folds_like_fold() -> None:
    chars = sorted(CERTIFIED_CHARS)
    folded, ok = fold_expr("c")
    out = pl.DataFrame({"c": chars}).select(folded.alias("f"), ok.alias("ok"))
    assert out["ok"].all()
    assert out["f"].to_list() == [nz.fold(c) for c in chars]
    assert set(FOLD_TABLE) <= CERTIFIED_CHARS
    assert all(c in CERTIFIED_CHARS for c in map(chr, range(128)))


def test_characters_outside_the_set_are_not_certified() -> None:
    outside = [chr(p) for p in [*_CANDIDATES, *range(0x370, 0x3000, 7), 0x212A, 0xFF0C] if chr(p) not in CERTIFIED_CHARS]
    assert "山" not in CERTIFIED_CHARS and "\u212a" in outside  # Kelvin sign: lower-cases to ASCII "k"
    _, ok = fold_expr("c")
    assert not pl.DataFrame({"c": [f"ab{c}d" for c in outside]}).select(ok)["c"].any()


def test_folding_whole_strings_is_folding_each_character() -> None:
    rng = random.Random(3)
    pool = sorted(CERTIFIED_CHARS)
    texts = ["".join(rng.choices(pool, k=rng.randint(0, 12))) for _ in range(5000)]
    folded, ok = fold_expr("t")
    out = pl.DataFrame({"t": texts}).select(folded.alias("f"), ok.alias("ok"))
    assert out["ok"].all()
    assert out["f"].to_list() == [nz.fold(t) for t in texts]


def test_every_certified_character_in_names() -> None:
    rows: list[Row] = []
    for c in sorted(CERTIFIED_CHARS):
        rows += [(None, None, f"Jo{c}hn Sm{c}ith"), (None, None, c), (None, None, f"Smith,{c}John"),
                 (None, None, f"{c}{c} Dr{c} x"), (f"{c}", f"Ma{c}er", None)]
    out = _check(rows)
    assert out["certified"].all()


# -- equivalence --------------------------------------------------------------------------------------

# Every name input of tests/dedupe/test_normalize.py.
_NORMALIZE_TEST_NAMES = [
    "John Smith", "Smith, John", "JOHN SMITH", "J. Smith", "Mr. John Smith Jr.", "Smith, John, Jr.",
    "Dr. Jürgen Müller", "Herr Jürgen Müller", "Mme Hélène Côté", "M. Jean Dupont", "M. Dupont",
    "Łukasz Wiśniewski", "Ørjan Strøm", "Hans Groß", "Mary O'Brien", "Mary O’Brien-Jones",
    "Ludwig van Beethoven", "Bill Gates", "Bob Dylan", "Liz Taylor", "Sepp Maier", "Fritz Lang", "Madonna",
    "Smith,", "春香 山田", None, "", "  ", ",", "Mr.", "123", "William Smith", "Robert Smith", "John Smith",
    "Mary Smith", "Elizabeth Smith", "Jürgen Smith", "Katharina Smith", "Smith John", "Jonathan Miller",
    "Jonathon Miller", "Sarah Johnson", "Sarah Jonhson", "Emma Smith-Jones", "Emma Jones", "Jörg Trüb",
    "Joerg Trueb", "Joan Smith", "Leah Smith", "Ashley Smith", "Alan Chen", "Alan Chn", "Juergen Mueller",
    "Łukasz Wiśniewski-Nowak", "Dr. Ludwig van Beethoven", "ignored Name", "Hélène Côté", "Mr. Bob O'Brien",
]
_NORMALIZE_TEST_SPLIT: list[Row] = [
    ("Juergen", "Mueller", "ignored Name"), ("Sepp", None, "Bill Gates"), (None, "Maier", "Smith, John"),
    ("Kathi", "Maier", None), ("Sepp", "Maier", "Madonna"),
]


def test_the_names_of_the_normalize_tests() -> None:
    out = _check([(None, None, n) for n in _NORMALIZE_TEST_NAMES] + _NORMALIZE_TEST_SPLIT)
    assert out["certified"].sum() == len(_NORMALIZE_TEST_NAMES) + len(_NORMALIZE_TEST_SPLIT) - 1  # all but 山田


def test_generated_people() -> None:
    from sandbox.people_records import people_records

    records = people_records(8000, seed=7)
    names = pl.concat([records["name"], records["ship_name"]]).unique().sort(nulls_last=True).to_list()
    out = _check([(None, None, n) for n in names])
    assert out["certified"].mean() >= 0.95


_HONORIFICS = ["Mr.", "Mrs", "MS", "Dr.", "dr", "M.", "m", "Herr", "Frau", "Prof.", "Mme", "Sir", "Mx", "Hr.", "Madame"]
_FIRSTS = ["John", "Bill", "Sepp", "Kathi", "Jürgen", "Hélène", "Łukasz", "Ørjan", "Zoë", "J.", "A", "Bob", "Liz",
           "Peggy", "Jean-Luc", "Hans", "Al", "Ed", "Ray", "René", "Ðorđe", "Søren", "Ægir", "Ĳsbrand", "Maria"]
_PARTICLES = ["van", "de la", "von", "De", "der", "Mac", "St.", "al", "el", "di", "van der", "Da"]
_LASTS = ["Smith", "O'Brien", "O’Brien", "Smith-Jones", "Müller", "Groß", "Strøm", "Nguyễn", "Dupont", "Beethoven",
          "d'Arc", "MacDonald", "Cruz", "Lee", "Ŀlull", "Çelik", "Æsir", "O`Neil", "Wiśniewski–Nowak", "Jr", "Smith--Jones", "Ab---Cd"]
_SUFFIXES = ["Jr.", "Jr", "III", "Sr.", "PhD", "M.D.", "ii", "esq.", "jnr", "IV"]
_JUNK = ["--", "-", ".", "..", "123", "2nd", "#", "&", "(x)", "_", "`", "´", "\t", "\xa0", "'", "4", "x1", "--a--",
         "-b", "c-", "¹", "ª", "1989", "9"]
_FOREIGN = ["山田", "Иванов", "Ωmega", "\u2003", "Ŋ", "ǅ", "İlker", "\u212aarl"]


def _fuzz_name(rng: random.Random) -> str:
    parts = [rng.choice(_HONORIFICS) for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3]))]
    parts.append(rng.choice(_FIRSTS))
    if rng.random() < 0.2:
        parts.append(rng.choice(_FIRSTS))
    if rng.random() < 0.25:
        parts.append(rng.choice(_PARTICLES))
    last = rng.choice(_LASTS)
    parts.append(last)
    parts += [rng.choice(_SUFFIXES) for _ in range(rng.choice([0, 0, 0, 1, 1, 2]))]
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        parts.insert(rng.randint(0, len(parts)), rng.choice(_JUNK))
    if rng.random() < 0.03:
        parts.insert(rng.randint(0, len(parts)), rng.choice(_FOREIGN))
    if rng.random() < 0.15:  # punctuation and hyphens glued to a token
        i = rng.randrange(len(parts))
        glue = rng.choice([*_JUNK, "-.-", ".-", "-.", "--", "-_-", "'-", "-'"])
        parts[i] = glue + parts[i] if rng.random() < 0.5 else parts[i] + glue
    case = rng.random()
    parts = [p.upper() if case < 0.1 else p.lower() if case < 0.2 else p for p in parts]
    shape = rng.random()
    if shape < 0.15:  # "Last, First"
        cut = rng.randint(0, len(parts))
        return " ".join(parts[cut:]) + rng.choice([",", ", ", " ,", ",,"]) + " ".join(parts[:cut])
    if shape < 0.2:  # "John Smith, Jr." / "Smith," / ", John"
        return rng.choice([" ".join(parts) + ", " + rng.choice(_SUFFIXES + _HONORIFICS), last + ",",
                           ", " + parts[0], " ".join(parts) + ",", rng.choice(_HONORIFICS) + ", " + last])
    return rng.choice([" ", "  ", " . ", ". ", " - ", "- ", " -", ".-"]).join(parts) if rng.random() < 0.3 else " ".join(parts)


def _fuzz_rows(n: int, seed: int) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    blanks = [None, "", "  ", "\t", "\xa0"]
    for _ in range(n):
        full = _fuzz_name(rng)
        kind = rng.random()
        if kind < 0.65:
            rows.append((rng.choice(blanks), rng.choice(blanks), full))
        else:  # the two-field checkouts: a first and a last field, sometimes one of them blank or noisy
            words = full.replace(",", " ").split()
            cut = rng.randint(0, len(words))
            first = " ".join(words[:cut]) if rng.random() < 0.9 else rng.choice([*blanks, ".", "Dr."])
            last = " ".join(words[cut:]) if rng.random() < 0.9 else rng.choice([*blanks, "-", "Jr."])
            rows.append((first, last, rng.choice([None, full, "ignored"])))
    return rows


@pytest.mark.parametrize("seed", [11, 12])
def test_fuzzed_names(seed: int) -> None:
    rows = _fuzz_rows(25000, seed)
    out = _check(rows)
    certified = out["certified"].to_list()
    assert sum(certified) >= 0.85 * len(rows)
    # The certified rows cover the shapes the fast path claims: not a vacuous pass.
    done = [row for row, ok in zip(rows, certified, strict=True) if ok]
    assert sum(1 for f, _, n in done if not f and n and "," in n) > 1000
    assert sum(1 for f, l_, _ in done if (f or "").strip() or (l_ or "").strip()) > 5000
    assert sum(1 for _, _, n in done if n and n.lower().startswith("m. ")) > 100
    assert sum(1 for *_, n in done if n and any(s in n.split() for s in ("Jr.", "III"))) > 500


def test_null_and_blank_rows() -> None:
    rows: list[Row] = [(None, None, None), ("", " ", "\t"), (None, None, "  "), (" ", None, "\xa0"),
                       (".", None, "John Smith"), (None, "-", None), ("123", "456", None), (None, None, ".,.")]
    out = _check(rows)
    assert out["certified"].all()
    assert out.row(0) == (None, None, None, None, "", True)
    assert out.row(4) == (None, None, None, None, "", True)  # a non-blank first_name wins over name


def test_other_scripts_are_left_to_the_scalar_function() -> None:
    out = _check([(None, None, "春香 山田"), ("Иван", "Smith", "John Smith"), (None, None, "Ivan Иванов"),
                  ("John", "Smith", "Иван"), ("\u2003", None, "John Smith")])
    assert out["certified"].to_list() == [False, False, False, True, False]


def test_empty_frame() -> None:
    out = names_frame(_frame([]))
    assert out.height == 0 and out.columns == [*OUTPUT_COLUMNS, "certified"]
    assert out.schema["certified"] == pl.Boolean


def test_token_classes_are_disjoint() -> None:
    classes = [nz._HONORIFICS, nz._SUFFIXES, nz._HONORIFIC_IF_MORE, nz._PARTICLES]
    assert sum(map(len, classes)) == len(frozenset().union(*classes))
