"""The certified fast path for phone keys: every certified row equals ``phone_e164`` exactly."""

from __future__ import annotations

import random

import phonenumbers
import polars as pl
import pytest

from dedupe.fastphone import _pattern_ok, phones_frame
from dedupe.normalize import phone_e164
from sandbox.people_records import people_records

FUZZ_REGIONS = ("US", "CA", "GB", "DE", "FR", "AT", "CH", "IT", "NL", "ES", "AU", "JP", None)
FUZZ_FALLBACKS = ("US", "GB", "DE", "CA", "AU", "JP", "uk", " el ", "XX", "", None)
FUZZ_PREFIXES = ("", "", "+", "+", "00", "011", "0011", "010", "0", "1", "44", "49", "+1", "+44", "+49",
                 "+0", "0049", "01149", "001", "+39")


def _mismatches(frame: pl.DataFrame, out: pl.DataFrame) -> pl.DataFrame:
    """The certified rows of ``frame`` (raw, region, fallback) whose fast key ``out`` differs from phone_e164's."""
    certified = pl.concat([frame, out], how="horizontal").filter(pl.col("certified"))
    expected = [phone_e164(raw, region, fallback) for raw, region, fallback in
                certified.select("raw", "region", "fallback").iter_rows()]
    checked = certified.with_columns(pl.Series("expected", expected, dtype=pl.String))
    return checked.filter(pl.col("n_phone").ne_missing(pl.col("expected")))


def _people_phones(persons: int, seed: int) -> pl.DataFrame:
    """The phones of generated people as normalize_people hands them to phone_e164 (same two expressions)."""
    records = people_records(persons, seed=seed).select(pl.col("phone").alias("_phone"), "country",
                                                         "store_country")
    # normalize_people: plain formats without "(0)" are squeezed; a "+" number drops both regions.
    plain = pl.col("_phone").str.contains(r"^[0-9+ ().\-/]+$") & ~pl.col("_phone").str.contains(r"\(0\)", literal=False)
    records = records.with_columns(
        pl.when(plain.fill_null(False)).then(pl.col("_phone").str.replace_all(r"[ ().\-/]", ""))
        .otherwise(pl.col("_phone")).alias("_phone"))
    international = pl.col("_phone").str.strip_chars().str.starts_with("+").fill_null(False)
    return records.select(
        pl.col("_phone").alias("raw"),
        pl.when(international).then(None).otherwise(pl.col("country")).alias("region"),
        pl.when(international).then(None).otherwise(pl.col("store_country")).alias("fallback"))


def test_people_phones_equal_phone_e164_and_most_are_certified() -> None:
    phones = _people_phones(8_000, seed=7)
    out = phones_frame(phones)
    assert out.height == phones.height
    assert out["certified"].null_count() == 0
    mismatches = _mismatches(phones, out)
    assert mismatches.height == 0, mismatches.head(10)
    share = out.filter(phones["raw"].is_not_null()).select(pl.col("certified").mean()).item()
    assert share >= 0.90
    # The fast path finds valid numbers too, not only "certainly invalid" ones.
    assert out.filter(pl.col("certified"))["n_phone"].null_count() < 0.5 * out.height


def _valid_examples() -> list[tuple[str, str]]:
    """Valid national significant numbers of the fuzz regions (phonenumbers' examples), with their codes."""
    examples = []
    for region in FUZZ_REGIONS[:-1]:
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
                     phonenumbers.PhoneNumberType.TOLL_FREE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                examples.append((str(number.country_code), phonenumbers.national_significant_number(number)))
    return examples


def _fuzz_rows(count: int, seed: int) -> pl.DataFrame:
    """``count`` seeded (raw, region, fallback) rows: random digits behind IDD/trunk/country prefixes,
    and example numbers of the fuzz regions with digits changed (so that many are valid)."""
    rng = random.Random(seed)
    examples = _valid_examples()
    rows = []
    for _ in range(count):
        if rng.random() < 0.4:  # near-valid: an example number, digits changed, some prefix
            code, nsn = rng.choice(examples)
            digits = list(nsn)
            for _ in range(rng.randrange(3)):
                digits[rng.randrange(len(digits))] = rng.choice("0123456789")
            body = "".join(digits)
            prefix = rng.choice(("", "0", "+" + code, "00" + code, "011" + code, code, "+" + code + "0",
                                 "0011" + code, "010" + code))
        else:
            body = "".join(rng.choice("0123456789") for _ in range(rng.randint(4, 16)))
            prefix = rng.choice(FUZZ_PREFIXES)
        raw = prefix + body
        if raw.startswith("+") and rng.random() < 0.15:  # "+44 (0)20 ..." style
            raw = f"{raw[:3]} (0){raw[3:6]} {raw[6:]}"
        elif rng.random() < 0.03:
            raw = f"  {raw} "
        rows.append((raw, rng.choice(FUZZ_REGIONS), rng.choice(FUZZ_FALLBACKS)))
    return pl.DataFrame(rows, schema={"raw": pl.String, "region": pl.String, "fallback": pl.String},
                        orient="row")


def test_fuzz_equals_phone_e164() -> None:
    rows = _fuzz_rows(60_000, seed=11).unique()
    out = phones_frame(rows)
    assert rows.height > 57_000
    assert out.select(pl.col("certified").mean()).item() > 0.99  # the fuzz exercises the fast path
    assert out.select(pl.col("n_phone").is_not_null().mean()).item() > 0.1  # and reaches valid numbers
    mismatches = _mismatches(rows, out)
    assert mismatches.height == 0, mismatches.head(10)


@pytest.mark.parametrize(("raw", "region", "fallback", "expected"), [
    (None, "US", "US", None),
    ("", "US", None, None),
    ("   ", None, None, None),
    ("4155550199", None, None, None),  # no region and no "+": nothing to read it with
    ("02079460958", "UK", None, "+442079460958"),
    ("02079460958", " uk ", None, "+442079460958"),
    ("02079460958", "us", "gb", "+442079460958"),  # the fallback region
    ("2101234567", "el", None, "+302101234567"),
    ("2101234567", "EL", None, "+302101234567"),
    ("02079460958", "GBR", None, None),  # not a two-letter code
    ("02079460958", "XX", "??", None),  # unknown regions
    ("+442079460958", "XX", None, "+442079460958"),
    ("0049301234567", "US", None, "+49301234567"),  # "00" is not the US exit code: the _IDD loop
    ("01149301234567", "US", None, "+49301234567"),
    ("+44 (0)20 7946 0958", None, None, "+442079460958"),
    (" 4155550199 ", "US", None, "+14155550199"),
])
def test_edge_cases(raw: str | None, region: str | None, fallback: str | None, expected: str | None) -> None:
    frame = pl.DataFrame({"raw": [raw], "region": [region], "fallback": [fallback]},
                         schema={"raw": pl.String, "region": pl.String, "fallback": pl.String})
    out = phones_frame(frame)
    assert phone_e164(raw, region, fallback) == expected
    assert out.row(0) == (expected, True)


def test_uncertain_inputs_are_left_to_phone_e164() -> None:
    frame = pl.DataFrame({
        "raw": ["+44 7911 123456 ext 12", "(415) 555-0199", "\uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff11\uff19\uff19",
                "++442079460958", "00021234", "4" * 41],
        "region": ["GB", "US", "US", None, "JP", "US"],  # JP "00021234": the national prefix transform rule
        "fallback": [None, None, None, None, None, None],
    })
    out = phones_frame(frame)
    assert out["certified"].to_list() == [False] * frame.height


def test_any_region_text_is_read_as_phone_e164_reads_it() -> None:
    frame = pl.DataFrame({
        "raw": ["4155550199"] * 5 + ["+14155550199"],
        "region": ["\tus\n", "\u00df", "U\u00dfS", "u k", "1A", "\u00df"],
        "fallback": [None, "us", None, "CA", "\u00a0ca\u00a0", None],
    })
    out = phones_frame(frame)
    assert out["certified"].all()
    assert out["n_phone"].to_list() == [phone_e164(*row) for row in frame.iter_rows()]


def test_order_height_and_duplicates_kept() -> None:
    frame = pl.DataFrame({
        "raw": ["02079460958", None, "02079460958", "+14155550199", "02079460958"],
        "region": ["GB", None, "DE", None, "GB"],
        "fallback": [None, None, None, None, None],
    }, schema={"raw": pl.String, "region": pl.String, "fallback": pl.String})
    out = phones_frame(frame)
    assert out.columns == ["n_phone", "certified"]
    assert out.schema == pl.Schema({"n_phone": pl.String, "certified": pl.Boolean})
    expected = [phone_e164(*row) for row in frame.iter_rows()]
    assert out["n_phone"].to_list() == expected
    assert out["certified"].to_list() == [True] * 5
    assert phones_frame(frame.clear()).height == 0


@pytest.mark.parametrize(("pattern", "safe"), [
    (r"[2-9]\d{9}|3\d{6}", True),
    (r"(?:0|90)(?:(1[245])(\d{10,11}))?", True),
    (r"([457]\d{6})$|1", True),
    (r"\d+?", True),
    (r"(?=1)\d", False),  # look-ahead: Rust regex has none
    (r"(\d)\1", False),  # back-reference
    (r"8~10", False),
    (r"[^0]\d", False),  # negated class
    (r"\d{,3}", False),  # "{,n}" differs between the engines
])
def test_only_patterns_both_engines_read_alike_are_used(pattern: str, safe: bool) -> None:
    assert _pattern_ok(pattern) is safe
