"""Identity normalization: e-mail, phone, name and address keys, and the vectorized frame version."""

from __future__ import annotations

import random

import polars as pl
import pytest
from nicknames import NickNamer
from polars.testing import assert_frame_equal

import dedupe.normalize as nz
from dedupe.normalize import (
    AddressKey,
    NameKey,
    address_key,
    email_key,
    is_relay_email,
    name_key,
    names_compatible,
    normalize_people,
    phone_e164,
)

# -- e-mail -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "key"), [
    ("John.Smith@gmail.com", "johnsmith@gmail.com"),
    ("  j.o.h.n.smith+amazon@Gmail.com ", "johnsmith@gmail.com"),
    ("john.smith@googlemail.com", "johnsmith@gmail.com"),
    ("JOHN.SMITH+SHOP@GOOGLEMAIL.COM", "johnsmith@gmail.com"),
    ("jane.doe+orders@outlook.com", "jane.doe@outlook.com"),
    ("jane.doe+promo@hotmail.co.uk", "jane.doe@hotmail.co.uk"),
    ("jane+x@live.de", "jane@live.de"),
    ("jane+x@msn.com", "jane@msn.com"),
    ("ann.lee+shop@icloud.com", "ann.lee@icloud.com"),
    ("ann+shop@me.com", "ann@me.com"),
    ("kim+a@protonmail.ch", "kim@protonmail.ch"),
    ("kim+a@proton.me", "kim@proton.me"),
    ("kim+a@fastmail.com", "kim@fastmail.com"),
    # Providers and companies with unknown or other rules keep the local part as typed.
    ("j.smith@acme-corp.com", "j.smith@acme-corp.com"),
    ("j.smith+orders@acme-corp.com", "j.smith+orders@acme-corp.com"),
    ("max.mustermann+shop@web.de", "max.mustermann+shop@web.de"),
    ("jane.doe-shop@yahoo.com", "jane.doe-shop@yahoo.com"),
    ("a+b@live.acme.com", "a+b@live.acme.com"),  # not Microsoft's live.<tld>
    ("mailto:Jane@Example.org", "jane@example.org"),
])
def test_email_key(raw: str, key: str) -> None:
    assert email_key(raw) == key


@pytest.mark.parametrize("raw", [None, "", "   ", "john", "john@", "@gmail.com", "john@gmail", "a b@c.com",
                                 "john@@gmail.com", "+tag@gmail.com", "...@gmail.com"])
def test_email_key_rejects_what_is_not_an_address(raw: str | None) -> None:
    assert email_key(raw) is None


def test_gmail_dots_are_one_inbox_but_corporate_dots_are_not() -> None:
    assert email_key("j.smith@gmail.com") == email_key("jsmith@gmail.com")
    assert email_key("j.smith@acme.com") != email_key("jsmith@acme.com")
    assert email_key("j.smith@outlook.com") != email_key("jsmith@outlook.com")  # Outlook keeps dots


@pytest.mark.parametrize(("raw", "relay"), [
    ("0t5nbz8xv2lnkx1@marketplace.amazon.com", True),
    ("ABC123@Marketplace.Amazon.co.uk", True),
    ("abc@marketplace.amazon.de", True),
    ("abc@marketplace.amazon.com.mx", True),
    ("abc@amazon.com", False),
    ("marketplace.amazon.com@gmail.com", False),
    (None, False),
])
def test_is_relay_email(raw: str | None, relay: bool) -> None:
    assert is_relay_email(raw) is relay


# -- phone --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "region", "fallback", "e164"), [
    # US: national formats with the ship-to country, international with or without a region.
    ("(415) 555-2671", "US", None, "+14155552671"),
    ("415.555.2671", "US", None, "+14155552671"),
    ("1-415-555-2671", "US", None, "+14155552671"),
    ("+1 (415) 555-2671", None, None, "+14155552671"),
    ("+1 415-555-2671", "DE", None, "+14155552671"),
    ("001 415 555 2671", "DE", None, "+14155552671"),  # German shop's exit code, German ship-to
    ("001 415 555 2671", "US", "DE", "+14155552671"),  # German shop, US ship-to: the store's region decides
    ("011 1 415 555 2671", None, None, "+14155552671"),  # NANP exit code, no region at all
    # Canada (Montréal).
    ("514-872-1234", "CA", None, "+15148721234"),
    ("+1 514 872 1234", "CA", None, "+15148721234"),
    # Germany: landline and mobile, national and international.
    ("030 12345678", "DE", None, "+493012345678"),
    ("030/12345678", "DE", None, "+493012345678"),
    ("0151 12345678", "DE", None, "+4915112345678"),
    ("+49 (0)151 12345678", None, None, "+4915112345678"),
    ("0049 151 12345678", "GB", None, "+4915112345678"),
    ("011 49 30 12345678", "DE", "US", "+493012345678"),  # US shop's exit code, German ship-to
    ("011 49 30 12345678", "US", None, "+493012345678"),
    # United Kingdom.
    ("07911 123456", "GB", None, "+447911123456"),
    ("020 7123 4567", "GB", None, "+442071234567"),
    ("+44 (0)7911 123456", None, None, "+447911123456"),
    ("0044 7911 123456", "DE", None, "+447911123456"),
    ("07911 123456", "US", "GB", "+447911123456"),  # not a US number: the fallback region reads it
    ("07911 123456", "uk", None, "+447911123456"),  # "UK" is read as GB
    # Australia and Japan exit codes.
    ("0011 44 7911 123456", None, None, "+447911123456"),
    ("010 44 7911 123456", None, None, "+447911123456"),
])
def test_phone_e164(raw: str, region: str | None, fallback: str | None, e164: str) -> None:
    assert phone_e164(raw, region, fallback) == e164


@pytest.mark.parametrize(("raw", "region", "fallback"), [
    (None, "US", None),
    ("", "US", None),
    ("n/a", "US", None),
    ("123", "US", None),
    ("555-1234", "US", None),  # no area code
    ("+1 555 555 5555", None, None),  # 555 is not an area code
    ("(415) 555-2671", None, None),  # national format without any region
    ("0000000000", "DE", "US"),
    ("07911 123456", "US", None),  # a UK mobile read as US, and no fallback
])
def test_phone_e164_invalid_is_none(raw: str | None, region: str | None, fallback: str | None) -> None:
    assert phone_e164(raw, region, fallback) is None


# -- names --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "first", "last", "canon", "initial", "tokens"), [
    ("John Smith", "john", "smith", "john", "j", ("john", "smith")),
    ("Smith, John", "john", "smith", "john", "j", ("john", "smith")),
    ("JOHN SMITH", "john", "smith", "john", "j", ("john", "smith")),
    ("J. Smith", "j", "smith", "j", "j", ("j", "smith")),
    ("Mr. John Smith Jr.", "john", "smith", "john", "j", ("john", "smith")),
    ("Smith, John, Jr.", "john", "smith", "john", "j", ("john", "smith")),
    ("Dr. Jürgen Müller", "jurgen", "muller", "jurgen", "j", ("jurgen", "muller")),
    ("Herr Jürgen Müller", "jurgen", "muller", "jurgen", "j", ("jurgen", "muller")),
    ("Mme Hélène Côté", "helene", "cote", "helene", "h", ("cote", "helene")),
    ("M. Jean Dupont", "jean", "dupont", "jean", "j", ("dupont", "jean")),
    ("M. Dupont", "m", "dupont", "m", "m", ("dupont", "m")),  # M. alone before a surname is an initial
    ("Łukasz Wiśniewski", "lukasz", "wisniewski", "lukasz", "l", ("lukasz", "wisniewski")),
    ("Ørjan Strøm", "orjan", "strom", "orjan", "o", ("orjan", "strom")),
    ("Hans Groß", "hans", "gross", "johannes", "h", ("gross", "hans")),
    ("Mary O'Brien", "mary", "obrien", "mary", "m", ("mary", "obrien")),
    ("Mary O’Brien-Jones", "mary", "obrien-jones", "mary", "m", ("mary", "obrien-jones")),
    ("Ludwig van Beethoven", "ludwig", "van beethoven", "ludwig", "l", ("beethoven", "ludwig", "van")),
    ("Bill Gates", "bill", "gates", "william", "b", ("bill", "gates")),
    ("Bob Dylan", "bob", "dylan", "robert", "b", ("bob", "dylan")),
    ("Liz Taylor", "liz", "taylor", "elizabeth", "l", ("liz", "taylor")),
    ("Sepp Maier", "sepp", "maier", "josef", "s", ("maier", "sepp")),
    ("Fritz Lang", "fritz", "lang", "friedrich", "f", ("fritz", "lang")),
    ("Madonna", "madonna", None, "madonna", "m", ("madonna",)),
    ("Smith,", None, "smith", None, None, ("smith",)),
    ("春香 山田", "春香", "山田", "春香", "春", ("山田", "春香")),
])
def test_name_key(raw: str, first: str, last: str | None, canon: str, initial: str, tokens: tuple[str, ...]) -> None:
    assert name_key(raw) == NameKey(first, last, canon, initial, tokens)


@pytest.mark.parametrize("raw", [None, "", "  ", ",", "Mr.", "123"])
def test_name_key_empty(raw: str | None) -> None:
    key = name_key(raw)
    assert (key.first, key.last, key.tokens) in ((None, None, ()), ("mr", None, ("mr",)))


def test_canonical_names_are_the_given_name_itself() -> None:
    for name in ("William", "Robert", "John", "Mary", "Elizabeth", "Jürgen", "Katharina"):
        key = name_key(f"{name} Smith")
        assert key.first_canon == key.first


def test_preferred_canonicals_only_choose_among_the_library_answers() -> None:
    namer = NickNamer()
    for nickname, canonical in nz._PREFERRED_CANONICAL.items():
        assert canonical in namer.canonicals_of(nickname), nickname
    assert not set(nz._PREFERRED_CANONICAL) & set(nz._NICKNAME_SUPPLEMENT)


@pytest.mark.parametrize(("a", "b"), [
    ("John Smith", "Smith, John"),
    ("John Smith", "JOHN SMITH"),
    ("John Smith", "J. Smith"),
    ("John Smith", "Smith John"),  # surname first without a comma
    ("Jürgen Müller", "Juergen Mueller"),
    ("Jürgen Müller", "Jurgen Muller"),
    ("Juergen Mueller", "Jurgen Muller"),
    ("Bill Gates", "William Gates"),
    ("Bob Dylan", "Robert Dylan"),
    ("Sepp Maier", "Josef Maier"),
    ("Katharina Schmidt", "Kathi Schmidt"),
    ("Jonathan Miller", "Jonathon Miller"),  # first-name typo
    ("Sarah Johnson", "Sarah Jonhson"),  # surname typo
    ("Emma Smith-Jones", "Emma Jones"),  # one part of a double surname
    ("Hélène Côté", "Helene Cote"),
    ("Jörg Trüb", "Joerg Trueb"),  # umlauts spelled out in short names
    ("Étienne Richer", "Éteinne Richer"),  # two letters swapped is one slip
    ("Sarah Johnson", "Sarah Jonhson"),
    ("Arthur Lavallée", "art lavallée"),
    ("春香 山田", "山田, 春香"),  # other scripts keep their letters
])
def test_names_compatible(a: str, b: str) -> None:
    assert names_compatible(name_key(a), name_key(b))
    assert names_compatible(name_key(b), name_key(a))


@pytest.mark.parametrize(("a", "b"), [
    ("John Smith", "Mary Smith"),  # a household
    ("John Smith", "Joan Smith"),  # short names: one letter is another person
    ("John Smith", "John Smyth-Baker"),
    ("John Smith", "John Brown"),
    ("John Smith", "M. Smith"),
    ("John Smith", "Madonna"),  # one token: no surname to compare
    ("Harry Smith", "Henry Smith"),
    ("Leah Smith", "Ashley Smith"),  # loose associations in the nicknames data are not nicknames
    ("Erin Smith", "Aaron Smith"),
    ("Joe Smith", "Jo Smith"),  # "oe" at the end is no spelled-out umlaut
    ("Alan Chen", "Alan Chn"),  # a typo in a short surname is another family as often as a slip
    (None, "John Smith"),
])
def test_names_not_compatible(a: str | None, b: str) -> None:
    assert not names_compatible(name_key(a), name_key(b))
    assert not names_compatible(name_key(b), name_key(a))


# -- addresses ----------------------------------------------------------------------------------------


def _same(a: AddressKey, b: AddressKey) -> None:
    assert a == b
    assert a.line is not None


def test_unit_in_line2_or_line1_gives_one_key() -> None:
    spelled = address_key("12 Maple Avenue", "Apartment 4B", "Boston", "02134", "US")
    assert spelled == AddressKey("12 maple ave", "12", "maple ave", "4b", "02134", "boston", "US")
    for line1, line2 in [("12 Maple Ave. Apt 4B", None), ("12 Maple Ave", "#4B"), ("12 MAPLE AVE APT. 4B", None),
                         ("12 Maple Av", "Apt 4B"), ("12 Maple Ave #4B", None), ("Apt 4B, 12 Maple Ave", None),
                         ("12 Maple Ave 4B", None)]:
        _same(address_key(line1, line2, "BOSTON", "02134-1234", "US"), spelled)


@pytest.mark.parametrize(("a", "b"), [
    (("Hauptstraße 5", None, "München", "80331", "DE"), ("Hauptstr. 5", None, "München", "80331", "DE")),
    (("Hauptstraße 5", None, "Berlin", "10115", "DE"), ("Hauptstrasse 5", None, "Berlin", "10115", "DE")),
    (("Berliner Straße 12a", None, "Köln", "50667", "DE"), ("Berliner Str. 12 a", None, "Köln", "50667", "DE")),
    (("Hauptstraße 5, 2. OG", None, "Berlin", "10115", "DE"), ("Hauptstr. 5", "2. OG", "Berlin", "10115", "DE")),
    (("Hauptstraße 5", "c/o Schmidt", "Berlin", "10115", "DE"), ("Hauptstr. 5", None, "Berlin", "10115", "DE")),
    (("1200 boulevard René-Lévesque", None, "Montréal", "H3B 4W8", "CA"),
     ("1200 boul. Rene-Levesque", None, "Montreal", "h3b4w8", "CA")),
    (("1200 boulevard René-Lévesque Ouest", None, "Montréal", "H3B 4W8", "CA"),
     ("1200 boul. René-Lévesque O.", None, "Montréal", "H3B 4W8", "CA")),
    (("4570 chemin de la Côte-des-Neiges", "app. 12", "Montréal", "H3V 1E7", "CA"),
     ("4570 ch. de la Cote-des-Neiges app 12", None, "Montreal", "H3V1E7", "CA")),
    (("150 avenue du Parc", None, "Montréal", "H2X 1Y4", "CA"), ("150 av. du Parc", None, "Montréal", "H2X1Y4", "CA")),
    (("10 Downing Street", "Flat 3", "London", "sw1a 2aa", "GB"), ("Flat 3, 10 Downing St.", None, "LONDON", "SW1A2AA", "GB")),
    (("1 North Main Street", None, "Austin", "78701", "US"), ("1 N Main St", None, "Austin", "78701", "US")),
    (("Acme Ltd", "12 High Street", "Leeds", "LS1 4AP", "GB"), ("12 High St", None, "Leeds", "LS14AP", "GB")),
    (("5 Park Lane", "Suite 200", "Seattle", "98101", "US"), ("5 Park Ln Ste 200", None, "Seattle", "98101", "US")),
])
def test_address_spellings_give_one_key(a: tuple, b: tuple) -> None:
    _same(address_key(*a), address_key(*b))


def test_city_umlauts_fold_to_the_base_letter() -> None:
    # ü -> u like every accent; "Muenchen" stays apart and is left to the fuzzy comparison of cities.
    assert address_key(None, None, "München", None, "DE").city == address_key(None, None, "Munchen", None, "DE").city
    assert address_key(None, None, "Muenchen", None, "DE").city == "muenchen"


def test_address_parts() -> None:
    key = address_key("Hauptstraße 5a", None, "Frankfurt am Main", "60311", "Deutschland")
    assert key == AddressKey("5a hauptstr", "5a", "hauptstr", None, "60311", "frankfurt am main", "DE")
    key = address_key("1 rue Sainte-Catherine", "Ste 200", "Montréal", "H2X 1Y4", "ca")
    assert (key.street, key.unit, key.country) == ("rue sainte catherine", "200", "CA")  # "Sainte" is no suite
    assert address_key("12 Flat Rock Road", None, None, None, "US").line == "12 flat rock rd"  # no unit marker
    assert address_key(None, None, None, None, None) == AddressKey(None, None, None, None, None, None, None)


def test_different_units_or_numbers_stay_different() -> None:
    base = address_key("12 Maple Ave", "Apt 4B", "Boston", "02134", "US")
    assert address_key("12 Maple Ave", "Apt 5B", "Boston", "02134", "US") != base
    assert address_key("14 Maple Ave", "Apt 4B", "Boston", "02134", "US") != base
    assert address_key("12 Maple St", "Apt 4B", "Boston", "02134", "US") != base


@pytest.mark.parametrize(("raw", "country", "postcode"), [
    ("sw1a 1aa", "GB", "SW1A1AA"), ("SW1A1AA", "GB", "SW1A1AA"), ("SW1A 1AA", "UK", "SW1A1AA"),
    ("h2x 1y4", "CA", "H2X1Y4"), ("H2X-1Y4", "CA", "H2X1Y4"),
    ("02134-1234", "US", "02134"), ("021341234", "US", "02134"), ("2134", "US", "02134"),
    ("D-10115", "DE", "10115"), ("1067", "DE", "01067"), ("75008", "FR", "75008"),
    ("1012 ab", "NL", "1012AB"), ("", "US", None), (None, "GB", None),
])
def test_postcode(raw: str | None, country: str, postcode: str | None) -> None:
    assert address_key(None, None, None, raw, country).postcode == postcode


def test_uk_postcodes_compare_equal() -> None:
    a = address_key("10 Downing Street", None, "London", "sw1a 2aa", "GB")
    b = address_key("10 Downing Street", None, "London", "SW1A2AA", "GB")
    assert a == b


# -- frames -------------------------------------------------------------------------------------------

_ROWS = [
    {"record_id": "1", "first_name": None, "last_name": None, "name": "Jürgen Müller", "email": "J.Mueller+shop@GoogleMail.com",
     "phone": "0151 12345678", "line1": "Hauptstraße 5", "line2": None, "city": "München", "region": None,
     "postal_code": "80331", "country": "DE", "store_country": "DE"},
    {"record_id": "2", "first_name": "Juergen", "last_name": "Mueller", "name": "ignored Name", "email": "jmueller@gmail.com",
     "phone": "011 49 151 12345678", "line1": "Hauptstr. 5", "line2": None, "city": "Muenchen", "region": None,
     "postal_code": "80331", "country": "DE", "store_country": "US"},
    {"record_id": "3", "first_name": None, "last_name": None, "name": "Smith, John", "email": "abc@marketplace.amazon.com",
     "phone": "(415) 555-2671", "line1": "12 Maple Ave. Apt 4B", "line2": None, "city": "BOSTON",
     "region": "MA", "postal_code": "02134-1234", "country": "US", "store_country": "US"},
    {"record_id": "4", "first_name": None, "last_name": None, "name": "Hélène Côté", "email": "not an e-mail",
     "phone": "+1 514 872 1234", "line1": "1200 boulevard René-Lévesque", "line2": "app. 12", "city": "Montréal",
     "region": "QC", "postal_code": "h3b 4w8", "country": "CA", "store_country": "US"},
    {"record_id": "5", "first_name": None, "last_name": None, "name": None, "email": None, "phone": None, "line1": None,
     "line2": None, "city": None, "region": None, "postal_code": None, "country": None, "store_country": None},
]


def _expected(row: dict) -> dict:
    """What the scalar functions give for one row (the reference normalize_people must match)."""
    if row.get("first_name") or row.get("last_name"):
        name = nz.name_key_parts(row.get("first_name"), row.get("last_name"), None)
    else:
        name = name_key(row.get("name"))
    address = address_key(row.get("line1"), row.get("line2"), row.get("city"), row.get("postal_code"),
                          row.get("country"))
    return {
        "n_email": email_key(row.get("email")), "n_email_relay": is_relay_email(row.get("email")),
        "n_phone": phone_e164(row.get("phone"), address.country, row.get("store_country")),
        "n_first": name.first, "n_last": name.last, "n_first_canon": name.first_canon, "n_initial": name.initial,
        "n_name_tokens": " ".join(name.tokens), "n_line": address.line, "n_number": address.number,
        "n_street": address.street, "n_unit": address.unit, "n_postcode": address.postcode, "n_city": address.city,
        "n_country": address.country,
    }


def test_normalize_people_keys() -> None:
    out = normalize_people(pl.DataFrame(_ROWS))
    by_id = {r["record_id"]: r for r in out.iter_rows(named=True)}
    assert by_id["1"]["n_email"] == by_id["2"]["n_email"] == "jmueller@gmail.com"
    assert by_id["1"]["n_phone"] == by_id["2"]["n_phone"] == "+4915112345678"
    assert by_id["1"]["n_line"] == by_id["2"]["n_line"] == "5 hauptstr"
    assert (by_id["2"]["n_first"], by_id["2"]["n_last"]) == ("juergen", "mueller")  # first/last win over name
    assert by_id["3"]["n_email_relay"] is True and by_id["1"]["n_email_relay"] is False
    assert (by_id["3"]["n_first"], by_id["3"]["n_last"], by_id["3"]["n_unit"]) == ("john", "smith", "4b")
    assert (by_id["4"]["n_email"], by_id["4"]["n_postcode"], by_id["4"]["n_unit"]) == (None, "H3B4W8", "12")
    assert by_id["5"]["n_name_tokens"] == "" and by_id["5"]["n_email_relay"] is False
    assert out.columns == [*pl.DataFrame(_ROWS).columns, *nz._OUTPUT_SCHEMA]


def test_normalize_people_keeps_originals_exactly() -> None:
    frame = pl.DataFrame(_ROWS)
    out = normalize_people(frame)
    assert_frame_equal(out.select(frame.columns), frame)
    assert out.filter(pl.col("record_id") == "4").row(0, named=True)["line1"] == "1200 boulevard René-Lévesque"
    assert out.filter(pl.col("record_id") == "1").row(0, named=True)["name"] == "Jürgen Müller"


def test_normalize_people_with_few_columns() -> None:
    out = normalize_people(pl.DataFrame({"record_id": ["a", "b"], "name": ["Bill Gates", None]}))
    assert out["n_first_canon"].to_list() == ["william", None]
    assert out["n_email"].to_list() == [None, None] and out.schema["n_email_relay"] == pl.Boolean
    empty = normalize_people(pl.DataFrame({"record_id": []}, schema={"record_id": pl.String}))
    assert empty.height == 0 and "n_line" in empty.columns


def _mixed_rows(n: int, seed: int) -> list[dict]:
    """Noisy rows drawn from small pools, so values repeat the way a customer's orders do."""
    rng = random.Random(seed)
    pick = rng.choice
    names = ["Jürgen Müller", "Juergen Mueller", "Smith, John", "J. Smith", "JOHN SMITH", "Bill Gates", "Mr. Bob O'Brien",
             "Hélène Côté", "Madonna", None, "", "Łukasz Wiśniewski-Nowak", "Dr. Ludwig van Beethoven"]
    emails = ["j.smith+x@gmail.com", "JSmith@googlemail.com", "a.b+c@outlook.com", "j.smith@acme.com", "bad",
              None, "x@marketplace.amazon.de", "ann+shop@icloud.com"]
    phones = ["(415) 555-2671", "001 415 555 2671", "011 49 30 12345678", "07911 123456", "+44 7911 123456",
              "0151 12345678", "12", None, "+1 514 872 1234"]
    line1s = ["12 Maple Avenue", "12 Maple Ave. Apt 4B", "Hauptstraße 5", "Hauptstr. 5, 2. OG",
              "1200 boul. René-Lévesque O", "Flat 3, 10 Downing St", None, "Acme Ltd"]
    line2s = [None, None, "Apartment 4B", "#4B", "c/o Schmidt", "12 High Street"]
    countries = ["US", "CA", "DE", "GB", "uk", "Deutschland", None, "FR"]
    rows = []
    for i in range(n):
        rows.append({"record_id": str(i), "first_name": pick([None, None, None, "Sepp", "Kathi"]),
                     "last_name": pick([None, None, "Maier"]), "name": pick(names), "email": pick(emails),
                     "phone": pick(phones), "line1": pick(line1s), "line2": pick(line2s),
                     "city": pick(["Montréal", "BOSTON", "St. John's", None]), "region": None,
                     "postal_code": pick(["sw1a 1aa", "02134-1234", "1067", "H3B 4W8", None]),
                     "country": pick(countries), "store_country": pick(["US", "DE", None])})
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_normalize_people_matches_the_scalar_functions_row_by_row(seed: int) -> None:
    rows = _mixed_rows(400, seed)
    out = normalize_people(pl.DataFrame(rows), workers=1)
    for row, got in zip(rows, out.iter_rows(named=True), strict=True):
        assert {k: got[k] for k in nz._OUTPUT_SCHEMA} == _expected(row), row


def test_normalize_people_in_worker_processes_equals_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.DataFrame(_mixed_rows(3000, 9))
    monkeypatch.setattr(nz, "PARALLEL_MIN_VALUES", 0)
    assert_frame_equal(normalize_people(frame, workers=2), normalize_people(frame, workers=1))


def test_vectorized_normalizers_equal_the_scalar_ones_on_generated_people(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.people_records import people_records

    frame = pl.concat([people_records(3000, seed=11).drop("person_id", "is_gift"),
                       pl.DataFrame(_mixed_rows(500, 4)).with_columns(pl.lit("web").alias("channel"))],
                      how="diagonal_relaxed")
    scalar_values: list[int] = []
    apply = nz._apply
    monkeypatch.setattr(nz, "_apply", lambda fn, rows: scalar_values.append(len(rows)) or apply(fn, rows))
    fast = normalize_people(frame, workers=1)
    answered_by_scalar = sum(scalar_values)
    scalar_values.clear()
    assert_frame_equal(fast, normalize_people(frame, workers=1, vectorized=False))
    # The vectorized path answered nearly everything; the scalar functions only the odd values.
    assert answered_by_scalar < 0.05 * sum(scalar_values)
