"""The customers: Faker name pools per locale, real homes and phones, e-mail variants and channel identities.

Faker is called only to fill small pools (a few hundred names per locale, cached per seed); people are
combined from the pools with the generator's ``random.Random``. That keeps a million-order business
fast and still reproducible, and it yields namesakes the way real customer bases have them.

:func:`make_people` adds what makes identity resolution hard beyond per-record noise: households
(``HOUSEHOLD_RATE`` of people share a home with another person, spouses mostly with the same
surname, some with a shared landline), phone numbers a carrier gave to someone else before
(``REUSED_PHONE_RATE``), and gifts that ship to another customer (``KNOWN_RECIPIENT_RATE`` of gifts).
All of them are different persons in the truth.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import phonenumbers
from faker import Faker

from sandbox import noise, places
from sandbox.model import Address, Person
from sandbox.noise import Home, Phone

# Name locales per home country with their share of people (migrant names make the Unicode real:
# Şahin, Łukasz, Hélène, José).
NAME_LOCALES: dict[str, tuple[tuple[str, float], ...]] = {
    "US": (("en_US", 0.85), ("es_MX", 0.15)),
    "CA": (("en_CA", 0.72), ("fr_CA", 0.28)),
    "DE": (("de_DE", 0.86), ("tr_TR", 0.08), ("pl_PL", 0.06)),
    "GB": (("en_GB", 0.86), ("pl_PL", 0.06), ("fr_FR", 0.04), ("en_IN", 0.04)),
}
_COUNTRY_LOCALE = {"FR": "fr_FR", "ES": "es_ES", "IT": "it_IT", "NL": "nl_NL", "AT": "de_AT", "CH": "de_CH",
                   "AU": "en_AU", "NZ": "en_NZ", "IE": "en_IE", "MX": "es_MX", "JP": "ja_JP", "PL": "pl_PL",
                   "SE": "sv_SE", "DK": "da_DK", "BR": "pt_BR", "IN": "en_IN", "BE": "fr_BE", "PT": "pt_PT"}
# UK mobile number blocks (07xxx) in use; a fixed list keeps the one-off validity checks few.
# (07700 900xxx is Ofcom's drama range, which phonenumbers rightly rejects, so 7700 is left out).
_GB_MOBILE = ("7400", "7412", "7432", "7448", "7500", "7512", "7534", "7712", "7723", "7734", "7745", "7760",
              "7778", "7800", "7801", "7810", "7825", "7850", "7867", "7890", "7900", "7904", "7911", "7930",
              "7950", "7960", "7970", "7984", "7999")
_POOL = 500  # names per locale pool: enough variety, a bounded number of slow Faker calls
# About one adult in eight shares a home with another adult who shops on their own account.
HOUSEHOLD_RATE = 0.12  # share of persons living with another person of the business
HOUSEHOLD_SURNAME_RATE = 0.6  # share of households that are couples with one surname
HOUSEHOLD_LANDLINE_RATE = 0.4  # share of households that list one landline in both accounts
# US carriers recycle ~35M numbers a year (FCC Reassigned Numbers Database, 47 CFR 52.103): some
# customers hold a number an earlier customer gave.
REUSED_PHONE_RATE = 0.01
KNOWN_RECIPIENT_RATE = 0.35  # share of gifts shipped to someone who is a customer too


def locale_for(country: str) -> str:
    """The Faker locale of a country's addresses (en_US when Faker has none)."""
    return {"US": "en_US", "CA": "en_CA", "DE": "de_DE", "GB": "en_GB"}.get(country) or _COUNTRY_LOCALE.get(
        country, "en_US")


@dataclass(frozen=True)
class NamePool:
    """First names, last names and employer slugs drawn once from one Faker locale."""

    first: tuple[str, ...]
    last: tuple[str, ...]
    companies: tuple[str, ...]


@lru_cache(maxsize=32)
def name_pool(locale: str, seed: int) -> NamePool:
    """The name pool of ``locale`` (Faker seeded per instance; frequent names recur as in real life)."""
    fake = Faker(locale)
    fake.seed_instance(f"{seed}:{locale}")
    first = tuple(noise.nfc(fake.first_name()) for _ in range(_POOL))
    last = tuple(noise.nfc(fake.last_name()) for _ in range(_POOL))
    companies = tuple(
        re.sub(r"[^a-z0-9]+", "-", noise.ascii_fold(fake.company()).lower()).strip("-")[:24].strip("-") or "corp"
        for _ in range(_POOL // 4))
    return NamePool(first, last, companies)


@lru_cache(maxsize=32)
def _faker_places(country: str, seed: int) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Streets and (city, postcode) pairs from Faker, for countries without a curated city list."""
    fake = Faker(locale_for(country))
    fake.seed_instance(f"{seed}:places:{country}")
    streets = tuple(noise.nfc(fake.street_name()) for _ in range(_POOL // 2))
    cities = tuple((noise.nfc(fake.city()), str(fake.postcode())) for _ in range(_POOL // 4))
    return streets, cities


@lru_cache(maxsize=4096)
def _leads(cc: str, area: str, digits: int) -> tuple[str, ...]:
    """Leading subscriber digits that make valid numbers after ``+cc area`` (checked with phonenumbers)."""
    rng = random.Random(f"{cc}{area}{digits}")
    good = []
    for lead in "23456789":
        sample = f"+{cc}{area}{lead}{rng.randrange(10 ** (digits - 1)):0{digits - 1}d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(sample)):
            good.append(lead)
    return tuple(good)


def _number(rng: random.Random, cc: str, area: str, digits: int) -> Phone | None:
    leads = _leads(cc, area, digits)
    if not leads:
        return None
    return Phone(cc, area, rng.choice(leads) + f"{rng.randrange(10 ** (digits - 1)):0{digits - 1}d}")


@lru_cache(maxsize=64)
def _example_mobile(country: str) -> tuple[str, str]:
    """(calling code, national number) of the country's example mobile number in phonenumbers' metadata."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:  # a region phonenumbers does not know: fall back to a US mobile
        example = phonenumbers.parse("+12015550123")
    return str(example.country_code), phonenumbers.national_significant_number(example)


def make_phone(rng: random.Random, country: str, city: places.City | None) -> Phone:
    """A valid phone of someone living in ``city``: mostly mobiles in Europe, local area codes in North America."""
    for _ in range(20):
        phone: Phone | None
        if country in ("US", "CA"):
            home = city if city is not None and rng.random() < 0.8 else rng.choice(places.CITIES[country])
            phone = _number(rng, "1", rng.choice(home.area_codes), 7)
        elif country == "DE" and (city is None or rng.random() < 0.7):
            prefix, digits = rng.choice(places.MOBILE["DE"])
            phone = _number(rng, "49", prefix, digits)
        elif country == "GB" and (city is None or rng.random() < 0.75):
            phone = _number(rng, "44", rng.choice(_GB_MOBILE), 6)
        elif country in ("DE", "GB") and city is not None:
            area = rng.choice(city.area_codes)
            phone = _number(rng, "49" if country == "DE" else "44", area, 10 - len(area))
        else:
            cc, nsn = _example_mobile(country)
            phone = _number(rng, cc, nsn[:3], len(nsn) - 3)
        if phone is not None:
            return phone
    raise RuntimeError(f"no valid phone number pattern for {country}")  # only a broken metadata table


def _postal(rng: random.Random, country: str, stem: str) -> tuple[str, ...]:
    """A postal code with its other common spellings (the first is canonical)."""
    if country == "US":
        code = f"{stem}{rng.randrange(100):02d}"
        return code, f"{code}-{rng.randrange(10000):04d}"
    if country == "CA":
        letters = "ABCEGHJKLMNPRSTVWXYZ"  # Canada Post never uses D, F, I, O, Q, U
        code = f"{stem} {rng.randrange(10)}{rng.choice(letters)}{rng.randrange(10)}"
        return code, code.replace(" ", ""), code.lower()
    if country == "GB":
        code = f"{stem} {rng.randrange(10)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        return code, code.replace(" ", ""), code.lower()
    if country == "DE":
        return (f"{stem}{rng.randrange(10 ** (5 - len(stem))):0{5 - len(stem)}d}",)
    return (stem,)


def make_home(rng: random.Random, country: str, locale: str, seed: int) -> tuple[Home, places.City | None]:
    """A home address in ``country`` with the spellings people use for it."""
    if country in ("US", "CA"):
        number = str(rng.choice((rng.randrange(1, 200), rng.randrange(100, 9999), rng.randrange(1, 40))))
    else:
        number = str(1 + int(150 * rng.random() ** 2))  # European streets are numbered from 1, mostly low
    unit: tuple[str, ...] = ()
    city = None
    if country in places.CITIES:
        cities = places.CITIES[country]
        if country == "CA":
            # French-speaking Canadians mostly live in Quebec, the others mostly elsewhere.
            in_qc = [c for c in cities if c.region == "QC"]
            cities = in_qc if (locale == "fr_CA") == (rng.random() < 0.9) else [c for c in cities if c.region != "QC"]
        city = rng.choice(cities)
        postal = _postal(rng, country, rng.choice(city.stem.split()))
        city_names: tuple[str, ...] = (city.name, city.ascii_name) if city.ascii_name else (city.name,)
        if city.name == "Frankfurt am Main":
            city_names = (city.name, "Frankfurt", "Frankfurt a. M.")
        if country == "DE":
            street = rng.choice(_faker_places("DE", seed)[0])
            spellings = [street]
            if street.endswith("straße"):
                spellings += [street[:-6] + "str.", street[:-6] + "strasse"]
            elif street.endswith("Straße"):
                spellings += [street[:-6] + "Str.", street[:-6] + "Strasse"]
            number += rng.choice(("", "", "", "a", "b"))
            line1 = tuple(f"{s} {number}" for s in spellings)
            if rng.random() < 0.12:
                unit = (rng.choice(("2. OG", "Hinterhaus", "Whg. 5", "c/o Schmidt")),)
        elif locale == "fr_CA" and city.region == "QC":
            street = rng.choice(places.QC_STREETS)
            spellings = [street] + [street.replace(full, short) for full, short in places.QC_ABBREVIATIONS
                                    if street.startswith(full)]
            line1 = tuple(f"{number} {s}" for s in spellings)
        else:
            base = rng.choice(places.STREETS[country]) if rng.random() < 0.5 else rng.choice(
                name_pool(locale_for(country), seed).last)
            full, shorts = rng.choice(places.STREET_TYPES[country])
            line1 = tuple(f"{number} {base} {t}" for t in (full, *shorts))
        if country != "DE" and rng.random() < 0.2:
            n = f"{rng.randrange(1, 30)}{rng.choice(('', '', 'A', 'B'))}"
            if country == "GB":
                unit = (f"Flat {n}", f"Flat {n}".upper())
            else:
                unit = (f"Apt {n}", f"Apartment {n}", f"#{n}", f"Apt. {n}") if rng.random() < 0.8 else (
                    f"Suite {n}", f"Ste {n}", f"#{n}")
        return Home(country, line1, unit, city_names, city.region, postal), city
    streets, cities_pool = _faker_places(country, seed)
    name, code = rng.choice(cities_pool)
    return Home(country, (f"{rng.choice(streets)} {number}",), (), (name,), None, (code,)), None


@dataclass(slots=True)
class Profile:
    """What the generator knows about a person beyond the model: parts to render identities from."""

    index: int
    person: Person
    home: Home
    phone_parts: list[Phone]
    variants: list[tuple[str, str]]  # (kind, e-mail) with ("main", ...) first
    segment: str = "one_time"
    stores: list[int] = field(default_factory=list)  # store indexes: primary first
    city: places.City | None = None  # the curated city of ``home`` (phones get its area codes)
    housemate: int | None = None  # index of the person sharing ``home`` (truth of a household)
    phone_from: int | None = None  # index of the person who held ``phone_parts[0]`` before


def _canon(email: str) -> str:
    """The mailbox an address reaches (providers ignore case, +tags, and Gmail dots): for uniqueness."""
    local, _, domain = email.lower().partition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


_OTHER_DOMAINS = (("gmail.com", 60), ("outlook.com", 20), ("yahoo.com", 20))


@lru_cache(maxsize=256)
def _table(options: tuple[tuple[str, float], ...]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Values and cumulative weights, for a bisect draw (``random.choices`` is slow for one pick)."""
    values = tuple(value for value, _ in options)
    cumulative = tuple(itertools.accumulate(weight for _, weight in options))
    return values, cumulative


def make_person(rng: random.Random, index: int, country: str, seed: int, taken: set[str], *,
                housemate: Profile | None = None, same_surname: bool = False) -> Profile:
    """A person living in ``country`` with one main e-mail and the variants they also use.

    ``taken`` holds every mailbox already given to someone, so no two people share an inbox. A
    ``housemate`` gives the person that one's home (and, with ``same_surname``, their surname).
    """
    locales, locale_weights = _table(NAME_LOCALES.get(country, ((locale_for(country), 1.0),)))
    locale = locales[bisect.bisect(locale_weights, rng.random() * locale_weights[-1])]
    pool = name_pool(locale, seed)
    first, last = rng.choice(pool.first), rng.choice(pool.last)
    if housemate is None:
        home, city = make_home(rng, country, locale, seed)
    else:
        home, city = housemate.home, housemate.city
        if same_surname:
            last = housemate.person.last_name
    domains, domain_weights = _table(places.EMAIL_DOMAINS.get(country, _OTHER_DOMAINS))
    domain = domains[bisect.bisect(domain_weights, rng.random() * domain_weights[-1])]
    local = noise.local_part(rng, first, last)
    while _canon(f"{local}@{domain}") in taken:
        local = f"{local.rstrip('0123456789')}{rng.randrange(1, 9999)}"
    main = f"{local}@{domain}"
    taken.add(_canon(main))
    work = None
    if rng.random() < 0.3:
        work = noise.work_email(rng, first, last, rng.choice(pool.companies), places.WORK_TLD.get(country, "com"))
    variants = [("main", main)]
    for kind, email in noise.email_variants(rng, local, domain, work):
        canon = _canon(email)
        if kind in ("upper", "alias") or canon not in taken:
            variants.append((kind, email))
            taken.add(canon)
    phones = [make_phone(rng, country, city)]
    if rng.random() < 0.2:
        phones.append(make_phone(rng, country, city))
    person = Person(
        person_id=f"P{index:07d}",
        first_name=first,
        last_name=last,
        emails=[email for _, email in variants],
        phones=list(dict.fromkeys(p.e164 for p in phones)),
        address=home.truth(f"{first} {last}"),
        country=country,
    )
    return Profile(index, person, home, phones, variants, city=city)


def make_landline(rng: random.Random, country: str, city: places.City | None) -> Phone:
    """A fixed-line number of a home in ``city`` (the city's area codes; a mobile where none are known)."""
    if city is not None and city.area_codes and country in ("US", "CA", "DE", "GB"):
        for _ in range(20):
            area = rng.choice(city.area_codes)
            phone = _number(rng, "1", area, 7) if country in ("US", "CA") else _number(
                rng, "49" if country == "DE" else "44", area, 10 - len(area))
            if phone is not None:
                return phone
    return make_phone(rng, country, city)


def _set_phones(profile: Profile) -> None:
    profile.person.phones = list(dict.fromkeys(p.e164 for p in profile.phone_parts))


def make_people(rng: random.Random, countries: Sequence[str], seed: int) -> list[Profile]:
    """People living in ``countries`` (one each, indexes from 1), with households and reused phone numbers.

    A person joins the household of an earlier, still single person of the same country with a
    probability that puts ``HOUSEHOLD_RATE`` of everyone in a two-person household; a few take over
    the phone number of an earlier person of their country (``REUSED_PHONE_RATE``) who lives elsewhere.
    """
    taken: set[str] = set()
    profiles: list[Profile] = []
    single: dict[str, list[Profile]] = {}  # per country: people without a housemate yet
    everyone: dict[str, list[Profile]] = {}
    for i, country in enumerate(countries):
        open_ = single.setdefault(country, [])
        partner = None
        if open_ and rng.random() < HOUSEHOLD_RATE / 2:
            k = rng.randrange(len(open_))
            partner = open_[k]
            open_[k] = open_[-1]
            open_.pop()
        shared = partner is not None and rng.random() < HOUSEHOLD_SURNAME_RATE
        profile = make_person(rng, i + 1, country, seed, taken, housemate=partner, same_surname=shared)
        if partner is None:
            open_.append(profile)
        else:
            profile.housemate, partner.housemate = partner.index, profile.index
            if rng.random() < HOUSEHOLD_LANDLINE_RATE:
                landline = make_landline(rng, country, profile.city)
                for member in (partner, profile):
                    member.phone_parts.append(landline)
                    _set_phones(member)
        earlier = everyone.setdefault(country, [])
        if earlier and rng.random() < REUSED_PHONE_RATE:
            before = earlier[rng.randrange(len(earlier))]
            if before.home is not profile.home and before.person.last_name != profile.person.last_name:
                profile.phone_parts[0] = before.phone_parts[0]
                profile.phone_from = before.index
                _set_phones(profile)
        earlier.append(profile)
        profiles.append(profile)
    return profiles


def recipient(rng: random.Random, country: str, seed: int, known: Sequence[Profile] = (),
              buyer: Profile | None = None) -> Address:
    """Someone a gift is shipped to in ``country``: mostly a stranger, sometimes another of ``known`` (not ``buyer``'s home).

    A known recipient is shown the way a buyer would type a friend's name and address.
    """
    if known and rng.random() < KNOWN_RECIPIENT_RATE:
        for _ in range(8):
            other = known[rng.randrange(len(known))]
            if other.person.country == country and other is not buyer and (buyer is None or other.home is not buyer.home):
                person = other.person
                name = noise.render_name(rng, person.first_name, person.last_name, country)
                return noise.render_address(rng, other.home, name)
    options = NAME_LOCALES.get(country, ((locale_for(country), 1.0),))
    pool = name_pool(options[0][0], seed)
    home, _ = make_home(rng, country, options[0][0], seed)
    return noise.render_address(rng, home, f"{rng.choice(pool.first)} {rng.choice(pool.last)}")
