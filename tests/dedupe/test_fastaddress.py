"""The vectorized street, e-mail and postcode keys equal the scalar functions on every certified row."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import polars as pl
import pytest

import dedupe.fastaddress as fa
import dedupe.normalize as nz
from dedupe.fastaddress import emails_frame, postcodes_frame, streets_frame
from dedupe.normalize import country_code, email_key, is_relay_email, postcode_key, street_key

_STREET_KEYS = ["n_line", "n_number", "n_street", "n_unit"]


def _share(certified: pl.Series) -> float:
    return float(certified.cast(pl.Float64).sum()) / max(certified.len(), 1)


def _check_streets(pairs: Sequence[tuple[str | None, str | None]]) -> float:
    """Asserts every certified row equals ``street_key``; returns the certified share."""
    frame = pl.DataFrame(pairs, schema={"line1": pl.String, "line2": pl.String}, orient="row")
    out = streets_frame(frame)
    assert out.height == frame.height and out["line1"].equals(frame["line1"])
    assert out["certified"].dtype == pl.Boolean and out["certified"].null_count() == 0
    for line1, line2, *keys, certified in out.select("line1", "line2", *_STREET_KEYS, "certified").iter_rows():
        if certified:
            assert tuple(keys) == street_key(line1, line2), (line1, line2)
        else:
            assert keys == [None] * 4
    return _share(out["certified"])


def _check_emails(emails: Sequence[str | None]) -> float:
    out = emails_frame(pl.DataFrame({"email": emails}, schema={"email": pl.String}))
    assert out.height == len(emails) and out["certified"].null_count() == 0
    for raw, key, relay, certified in out.select("email", "n_email", "n_email_relay", "certified").iter_rows():
        if certified:
            assert (key, relay) == (email_key(raw), is_relay_email(raw)), raw
    return _share(out["certified"])


def _check_postcodes(rows: Sequence[tuple[str | None, str | None]]) -> float:
    frame = pl.DataFrame(rows, schema={"postal_code": pl.String, "country": pl.String}, orient="row")
    out = postcodes_frame(frame)
    assert out.height == frame.height and out["certified"].null_count() == 0
    for raw, country, key, certified in out.select("postal_code", "country", "n_postcode", "certified").iter_rows():
        if certified:
            assert key == postcode_key(raw, country), (raw, country)
    return _share(out["certified"])


# -- the scalar rules the fast path mirrors -------------------------------------------------------------


def test_mirrored_patterns_are_the_scalar_ones() -> None:
    # A change to one of these in normalize.py needs the same change in fastaddress.py.
    assert nz._UNIT_ID.pattern == "^" + fa._ID + "$"
    assert nz._ORDINAL.pattern == "^" + fa._ORD + "$"
    assert nz._CARE_OF.pattern == fa._CARE_OF
    assert nz._ADDRESS_JUNK.pattern == r"[^a-z0-9#\- ]+"
    assert nz._EMAIL.pattern == fa._EMAIL
    assert nz._RELAY.pattern == fa._RELAY
    assert nz._PROVIDER_SUFFIX.pattern == r"^(?:[a-z]{2,3}|(?:co|com)\.[a-z]{2})$"
    assert nz._DE_SUFFIXES == (("strasse", "str"),)
    assert nz._DOMAIN_ALIASES == {"googlemail.com": "gmail.com"}


def test_token_classes_do_not_overlap() -> None:
    # One pop of a trailing unit, markers never identifiers or floors, standard words idempotent.
    unit_id = re.compile("^" + fa._ID + "$")
    assert not [w for w in fa._TYPE_WORDS if unit_id.match(w)]
    assert not [w for w in nz._UNIT_MARKERS if unit_id.match(w) or w in nz._FLOORS]
    assert not [w for w in nz._FLOORS if unit_id.match(w)]
    assert "strasse" in fa._TYPE_WORDS and "hauptstrasse" not in fa._TYPE_WORDS


def test_fold_safe_characters() -> None:
    latin = [chr(c) for c in range(0xC0, 0x180) if chr(c).isalpha()]
    assert set(latin) <= set(fa.FOLD_SAFE_CHARS)
    assert {"ß", "ẞ", "’", "–", "`"} <= set(fa.FOLD_SAFE_CHARS)
    folded = pl.DataFrame({"c": list(fa.FOLD_SAFE_CHARS)}).select(fa._fold(pl.col("c")))["c"].to_list()
    assert folded == [nz.fold(ch) for ch in fa.FOLD_SAFE_CHARS]
    sample = "".join(random.Random(3).choices(fa.FOLD_SAFE_CHARS, k=4000))
    words = [sample[i:i + 40] for i in range(0, len(sample), 40)]
    got = pl.DataFrame({"w": words}).select(fa._fold(pl.col("w")))["w"].to_list()
    assert got == [nz.fold(w) for w in words]


# -- generated records ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def records() -> pl.DataFrame:
    from sandbox.people_records import people_records

    frame = people_records(8000, seed=7)
    return frame.with_columns(pl.Series("country", [country_code(c) for c in frame["country"]], dtype=pl.String))


def test_generated_records(records: pl.DataFrame) -> None:
    streets = records.select("line1", "line2").unique()
    assert _check_streets(list(streets.iter_rows())) >= 0.90
    assert _check_emails(records["email"].unique().to_list()) >= 0.98
    assert _check_postcodes(list(records.select("postal_code", "country").unique().iter_rows())) >= 0.98


# -- the scalar tests' inputs -------------------------------------------------------------------------

_NORMALIZE_STREETS = [
    ("12 Maple Avenue", "Apartment 4B"), ("12 Maple Ave. Apt 4B", None), ("12 Maple Ave", "#4B"),
    ("12 MAPLE AVE APT. 4B", None), ("12 Maple Av", "Apt 4B"), ("12 Maple Ave #4B", None),
    ("Apt 4B, 12 Maple Ave", None), ("12 Maple Ave 4B", None), ("Hauptstraße 5", None), ("Hauptstr. 5", None),
    ("Hauptstrasse 5", None), ("Berliner Straße 12a", None), ("Berliner Str. 12 a", None),
    ("Hauptstraße 5, 2. OG", None), ("Hauptstr. 5", "2. OG"), ("Hauptstraße 5", "c/o Schmidt"),
    ("1200 boulevard René-Lévesque", None), ("1200 boul. Rene-Levesque", None),
    ("1200 boulevard René-Lévesque Ouest", None), ("1200 boul. René-Lévesque O.", None),
    ("4570 chemin de la Côte-des-Neiges", "app. 12"), ("4570 ch. de la Cote-des-Neiges app 12", None),
    ("150 avenue du Parc", None), ("150 av. du Parc", None), ("10 Downing Street", "Flat 3"),
    ("Flat 3, 10 Downing St.", None), ("1 North Main Street", None), ("1 N Main St", None),
    ("Acme Ltd", "12 High Street"), ("12 High St", None), ("5 Park Lane", "Suite 200"), ("5 Park Ln Ste 200", None),
    ("Hauptstraße 5a", None), ("1 rue Sainte-Catherine", "Ste 200"), ("12 Flat Rock Road", None), (None, None),
    ("12 Maple Ave", "Apt 5B"), ("14 Maple Ave", "Apt 4B"), ("12 Maple St", "Apt 4B"), ("Hauptstr. 5, 2. OG", None),
    ("1200 boul. René-Lévesque O", None), ("Flat 3, 10 Downing St", None), ("Acme Ltd", None),
    ("12 Maple Avenue", "Apartment 4B"), ("Hauptstraße 5", "#4B"), ("12 Maple Ave. Apt 4B", "c/o Schmidt"),
]


def test_normalize_test_inputs() -> None:
    assert _check_streets(_NORMALIZE_STREETS) == 1.0
    emails = ["John.Smith@gmail.com", "  j.o.h.n.smith+amazon@Gmail.com ", "john.smith@googlemail.com",
              "JOHN.SMITH+SHOP@GOOGLEMAIL.COM", "jane.doe+orders@outlook.com", "jane.doe+promo@hotmail.co.uk",
              "jane+x@live.de", "jane+x@msn.com", "ann.lee+shop@icloud.com", "ann+shop@me.com", "kim+a@protonmail.ch",
              "kim+a@proton.me", "kim+a@fastmail.com", "j.smith@acme-corp.com", "j.smith+orders@acme-corp.com",
              "max.mustermann+shop@web.de", "jane.doe-shop@yahoo.com", "a+b@live.acme.com", "mailto:Jane@Example.org",
              None, "", "   ", "john", "john@", "@gmail.com", "john@gmail", "a b@c.com", "john@@gmail.com",
              "+tag@gmail.com", "...@gmail.com", "j.smith@gmail.com", "jsmith@gmail.com", "j.smith@acme.com",
              "jsmith@acme.com", "j.smith@outlook.com", "jsmith@outlook.com",
              "0t5nbz8xv2lnkx1@marketplace.amazon.com", "ABC123@Marketplace.Amazon.co.uk", "abc@marketplace.amazon.de",
              "abc@marketplace.amazon.com.mx", "abc@amazon.com", "marketplace.amazon.com@gmail.com",
              "J.Mueller+shop@GoogleMail.com", "jmueller@gmail.com", "not an e-mail", "x@marketplace.amazon.de"]
    assert _check_emails(emails) == 1.0
    postcodes = [("sw1a 1aa", "GB"), ("SW1A1AA", "GB"), ("SW1A 1AA", "GB"), ("h2x 1y4", "CA"), ("H2X-1Y4", "CA"),
                 ("02134-1234", "US"), ("021341234", "US"), ("2134", "US"), ("D-10115", "DE"), ("1067", "DE"),
                 ("75008", "FR"), ("1012 ab", "NL"), ("", "US"), (None, "GB"), ("h3b 4w8", "CA"), ("80331", "DE")]
    assert _check_postcodes(postcodes) == 1.0
    out = streets_frame(pl.DataFrame({"line1": ["12 Maple Ave. Apt 4B", "Hauptstraße 5, 2. OG"],
                                      "line2": [None, None]}))
    assert out.select(_STREET_KEYS).rows() == [("12 maple ave", "12", "maple ave", "4b"),
                                               ("5 hauptstr", "5", "hauptstr", "2og")]


# -- fuzz -----------------------------------------------------------------------------------------------

_NAMES = ["Maple", "Oak", "High", "Main", "Church", "René-Lévesque", "Côte-des-Neiges", "Müller", "Schloß",
          "Bahnhof", "Sainte-Catherine", "Flat Rock", "Unit", "Park", "Ste-Foy", "Łódź", "Ørsted", "St. John's",
          "Königin-Luise", "O'Connell", "Æbelø", "Hill", "North", "Lake", "Reinhilde-Ullmann", "du Parc", "de la Gare"]
_TYPES = ["Street", "St", "St.", "Avenue", "Ave", "Ave.", "Av", "Road", "Rd", "Boulevard", "Blvd", "boul.", "Drive",
          "Lane", "Court", "Place", "Crescent", "Close", "Way", "Terrace", "Gardens", "Parkway", "Chemin", "ch.",
          "Route", "Square", "Mews", "Row", "Expy", "Grove", "Circle"]
_DE_TYPES = ["straße", "str.", "strasse", "Straße", "Str.", " Straße", " Str.", "weg", "platz", "allee", "gasse",
             "ring", "-Weg", "-Platz", "damm"]
_DIRECTIONS = ["N", "North", "S", "East", "W", "West", "NE", "Southwest", "Nord", "Ouest", "O", "O.", "Est"]
_NUMBERS = ["12", "5", "1200", "12-14", "5a", "5 a", "7b", "3-5-7", "101", "9", "12A", "0"]
_UNITS = ["Apt 4B", "Apt. 4B", "Apartment 12", "#5", "# 5", "#4B", "Flat 2", "FLAT 11", "Whg. 3", "Wohnung 7",
          "Nr. 5", "No 9", "Suite 200", "Ste 200", "Unit 3", "Room 12", "app. 12", "Bldg 4", "2. OG", "3rd floor",
          "1 Etage", "EG", "Lot 7", "Apt 4", "Unit 5-6", "Suite A"]
_LINE2 = [None, None, None, "", "  ", "Apt 4B", "#4B", "Flat 2", "2. OG", "c/o Schmidt", "C/O Acme", "Hinterhaus",
          "Gebäude B", "Building 3", "12 High Street", "Acme Ltd", "Apt 4B #4B", "5 Park Lane", "Room 12, Floor 2",
          "Wohnung 3", "Unit 5 Apt 6", "Ste. 200", "Nr 5", "2nd Floor", "PO Box 12", "Κτίριο 2", "Büro 3"]
_COMPANIES = ["Acme Ltd", "Müller GmbH", "Café René", "The Old Mill", "c/o Schmidt", "Unit 5", "Flat Rock Farm"]


def _street_line(rng: random.Random) -> str:
    pick = rng.choice
    number = pick(_NUMBERS)
    if rng.random() < 0.35:  # German: the number after the street
        name = pick(_NAMES).replace(" ", "-")
        street = f"{name}{pick(_DE_TYPES)}" if rng.random() < 0.8 else f"{pick(_NAMES)} {pick(_DE_TYPES)}"
        line = f"{street} {number}" if rng.random() < 0.85 else f"{street}, Nr. {number}"
    else:
        words = [pick(_NAMES), pick(_TYPES)]
        if rng.random() < 0.2:
            words.insert(0, pick(_DIRECTIONS))
        if rng.random() < 0.2:
            words.append(pick(_DIRECTIONS))
        line = f"{number} {' '.join(words)}"
    roll = rng.random()
    if roll < 0.15:
        line = f"{line}{pick([' ', ', ', ' - '])}{pick(_UNITS)}"
    elif roll < 0.22:
        line = f"{pick(_UNITS)}{pick([', ', ' ', ' - '])}{line}"
    elif roll < 0.27:
        line = f"{line} {rng.choice(['4B', 'A', '12', '3-4'])}"
    elif roll < 0.32:
        line = f"{line}, c/o {pick(['Schmidt', 'X', 'Acme'])}"
    if rng.random() < 0.05:
        line = line.upper()
    if rng.random() < 0.04:
        line = f"  {line.replace(' ', '  ')} "
    if rng.random() < 0.03:
        line = line.replace("-", pick(["–", "‐", " - "]))
    return line


def _street_pairs(n: int, seed: int) -> list[tuple[str | None, str | None]]:
    rng = random.Random(seed)
    pairs: list[tuple[str | None, str | None]] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.08:  # a company or building in line1, the street in line2
            pairs.append((rng.choice(_COMPANIES), _street_line(rng)))
        elif roll < 0.10:
            pairs.append((rng.choice([None, "", "Acme Ltd", "Apt 4B", "2. OG", "Москва 5"]), rng.choice(_LINE2)))
        else:
            pairs.append((_street_line(rng), rng.choice(_LINE2)))
    return pairs


def test_fuzzed_streets() -> None:
    pairs = list(dict.fromkeys(_street_pairs(60_000, seed=11)))
    assert len(pairs) >= 50_000
    assert _check_streets(pairs) >= 0.80


_LOCALS = ["john.smith", "J.Smith", "jane+shop", "a.b.c+x+y", "max_mustermann", "x", "+tag", "...", ".a.", "j-d",
           "o'brien", "Ann.Lee+Orders", "a b", "üser", "tab\tbed"]
_DOMAINS = ["gmail.com", "GMAIL.COM", "googlemail.com", "hotmail.com", "hotmail.co.uk", "live.de", "outlook.com.au",
            "outlook.fr", "live.acme.com", "msn.com", "icloud.com", "me.com", "mac.com", "protonmail.ch", "proton.me",
            "pm.me", "fastmail.com", "yahoo.com", "web.de", "acme-corp.com", "marketplace.amazon.de",
            "marketplace.amazon.co.uk", "marketplace.amazon.com.mx", "xn--bcher-kva.de", "gmail", "-bad.com",
            "münchen.de", "example.c", "sub.example.org"]


def test_fuzzed_emails() -> None:
    rng = random.Random(5)
    emails: list[str | None] = [None, "", "  ", "mailto:", "<>", "@", "a@@b.com"]
    for _ in range(20_000):
        email = f"{rng.choice(_LOCALS)}@{rng.choice(_DOMAINS)}"
        if rng.random() < 0.1:
            email = email.upper()
        if rng.random() < 0.1:
            email = f"  {email} "
        if rng.random() < 0.05:
            email = f"mailto:{email}"
        if rng.random() < 0.05:
            email = f"<{email}>"
        if rng.random() < 0.02:
            email = email.replace("@", rng.choice(["", " @", "@@"]))
        if rng.random() < 0.01:
            email = email + rng.choice(["\x1c", "\n", "\u00a0"])
        emails.append(email)
    assert _check_emails(emails) >= 0.80  # non-ASCII and control characters are left to the scalar function


def test_fuzzed_postcodes() -> None:
    rng = random.Random(9)
    rows: list[tuple[str | None, str | None]] = [(None, None), ("", "DE"), ("  ", "US"), ("-", "FR"), ("ABC", "US")]
    forms = ["02134", "2134", "02134-1234", "021341234", "SW1A 1AA", "sw1a1aa", "H2X 1Y4", "h2x-1y4", "D-10115",
             "1067", "75008", "F-75008", "1012 ab", "123", "１２３４５", "Ø-1234", "1234 ß", " 80331 ", "A1B2C3D4"]
    for _ in range(5000):
        rows.append((rng.choice(forms), rng.choice(["US", "CA", "GB", "DE", "FR", "NL", None])))
    assert _check_postcodes(rows) >= 0.90


def test_character_soup() -> None:
    # Random runs of rule tokens, punctuation and odd characters: whatever is certified must be exact.
    rng = random.Random(42)
    tokens = [*sorted(nz._UNIT_MARKERS), *sorted(nz._FLOORS), "2", "2.", "2nd", "3e", "4b", "a", "12-14", "c/o",
              "C / O", "maple", "avenue", "hauptstrasse", "straße", "str.", "o", "O.", "ouest", "north", "#5", "-",
              "–", "nr.", "No.", "1er", "b12", "12abc", "ste-foy", "ÄÖÜ", "Øst", "`", "’s", "5-", "-5", "1-2-3", "\t"]
    seps = [" ", " ", ", ", "-", ". ", ""]

    def line() -> str | None:
        return None if rng.random() < 0.1 else "".join(
            rng.choice(tokens) + rng.choice(seps) for _ in range(rng.randint(0, 7)))

    assert _check_streets(list(dict.fromkeys((line(), line() if rng.random() < 0.5 else None)
                                             for _ in range(20_000)))) >= 0.5
    chars = "abcXYZ019.+-_@ <>:mailto\t\x1c\"'"
    ends = ["@gmail.com", "@live.co.uk", "@x.de", "", "@marketplace.amazon.fr", ">", "@googlemail.com ", "<"]
    assert _check_emails([">@x.de", "<a@b.com", "a@b.com<", "<<a@b.com>>", "mailto:<a@b.com>"] + [
        "".join(rng.choice(chars) for _ in range(rng.randint(0, 12))) + rng.choice(ends) for _ in range(20_000)]) >= 0.5
    assert _check_postcodes([("".join(rng.choice("0123456789ABab -–ßØ\t.") for _ in range(rng.randint(0, 11))),
                              rng.choice(["US", "DE", "FR", "GB", "CA", None, "NL"])) for _ in range(10_000)]) >= 0.5


# -- nulls, blanks and what is left to the scalar functions ------------------------------------------------


def test_null_and_blank_rows() -> None:
    out = streets_frame(pl.DataFrame({"line1": [None, "", "   ", None], "line2": [None, None, "  ", "Apt 4"]},
                                     schema={"line1": pl.String, "line2": pl.String}))
    assert out["certified"].to_list() == [True] * 4
    assert out.select(_STREET_KEYS).rows() == [(None,) * 4] * 3 + [(None, None, None, "4")]
    emails = emails_frame(pl.DataFrame({"email": [None, "", "  "]}, schema={"email": pl.String}))
    assert emails.select("n_email", "n_email_relay", "certified").rows() == [(None, False, True)] * 3
    codes = postcodes_frame(pl.DataFrame({"postal_code": [None, "", " "], "country": ["US", None, "DE"]}))
    assert codes.select("n_postcode", "certified").rows() == [(None, True)] * 3
    untyped = pl.DataFrame({"line1": [None], "line2": [None], "email": [None], "postal_code": [None], "country": [None]})
    assert streets_frame(untyped)["certified"].to_list() == [True]  # all-null columns of dtype Null
    assert emails_frame(untyped).row(0)[-3:] == (None, False, True)
    assert postcodes_frame(untyped).row(0)[-2:] == (None, True)
    empty = streets_frame(pl.DataFrame(schema={"line1": pl.String, "line2": pl.String}))
    assert empty.height == 0 and empty.columns == ["line1", "line2", *_STREET_KEYS, "certified"]


def test_what_is_not_certified() -> None:
    out = streets_frame(pl.DataFrame({
        "line1": ["Οδός Αθηνάς 5", "12 Maple Ave Apt 4 Unit 5", "Hauptstr. Nr. 5, 2. OG", "12\tMaple Ave", "12 Maple Ave"],
        "line2": [None, None, None, None, "Apt 4 # 5"]}))
    assert out["certified"].to_list() == [False] * 5
    assert out.select(_STREET_KEYS).null_count().row(0) == (5, 5, 5, 5)
    emails = emails_frame(pl.DataFrame({"email": ["jörg@web.de", "a\x1cb@gmail.com", "ann@gmail.com"]}))
    assert emails["certified"].to_list() == [False, False, True]
    codes = postcodes_frame(pl.DataFrame({"postal_code": ["１２３４５", "12345"], "country": ["US", "US"]}))
    assert codes.select("n_postcode", "certified").rows() == [(None, False), ("12345", True)]
