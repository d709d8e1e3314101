"""Customer records of a synthetic population with their truth: identity resolution's input at scale, no orders.

Each person (from :func:`sandbox.people.make_people`: households, reused phone numbers) gets 1-4
records across the stores, each the identity one order in that store carries
(:meth:`sandbox.accounts.Accounts.show`: the store's account with its typos, nicknames, swapped
names, e-mail variants, phone formats and address spellings; Amazon relay e-mails and masked PII;
WooCommerce guests). Some records are gifts: the ship-to is a stranger or another person of the
population, the buyer fields stay the buyer's. ``person_id`` and ``is_gift`` are the truth.
"""

from __future__ import annotations

import bisect
import itertools
import random
from pathlib import Path

import polars as pl

from sandbox.accounts import Accounts
from sandbox.business import StoreSpec
from sandbox.generator import DEFAULT_STORES, FBA_RATE, GIFT_RATE, MASKED_RATE
from sandbox.people import Profile, make_people, recipient

__all__ = ["CSV_COLUMNS", "RECORD_SCHEMA", "people_records", "people_records_with_truth", "write_people_csv"]

RECORD_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "record_id": pl.String, "person_id": pl.String, "channel": pl.String, "store": pl.String,
    "store_country": pl.String, "channel_customer_id": pl.String, "name": pl.String, "email": pl.String,
    "phone": pl.String, "ship_name": pl.String, "line1": pl.String, "line2": pl.String, "city": pl.String,
    "region": pl.String, "postal_code": pl.String, "country": pl.String, "is_gift": pl.Boolean,
}
# The stand-alone dedupe input (dedupe.people.INPUT_COLUMNS).
CSV_COLUMNS = ("record_id", "first_name", "last_name", "name", "email", "phone", "line1", "line2", "city", "region",
               "postal_code", "country")
# Records per person: most people show up once or twice, a few on several accounts and guest checkouts.
_RECORDS = ((1, 0.45), (2, 0.30), (3, 0.15), (4, 0.10))
_AGAIN = 0.6  # share of further records in a store the person already used (same account, some drift)
_TWO_FIELD_FORMS = frozenset({"shopify", "woocommerce"})  # checkouts with separate first and last name fields


def _cumulative(weights: list[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    return bisect.bisect(cumulative, rng.random() * cumulative[-1])


def _store_tables(specs: list[StoreSpec], countries: list[str]) -> dict[str, list[float]]:
    """Per home country, cumulative store weights: home stores first, then the same region, others rarely."""
    eu = {"DE", "GB", "FR", "IT", "ES", "NL", "AT", "BE", "IE", "PL", "SE", "DK", "PT", "CH"}

    def region(country: str) -> str:
        return "NA" if country in ("US", "CA", "MX") else "EU" if country in eu else country

    return {country: _cumulative([s.weight * (1.0 if s.country == country else 0.06 if region(s.country) == region(
        country) else 0.01) for s in specs]) for country in countries}


def _persons_frame(profiles: list[Profile]) -> pl.DataFrame:
    def pid(index: int | None) -> str | None:
        return None if index is None else profiles[index - 1].person.person_id

    return pl.DataFrame({
        "person_id": [p.person.person_id for p in profiles],
        "first_name": [p.person.first_name for p in profiles],
        "last_name": [p.person.last_name for p in profiles],
        "country": [p.person.country for p in profiles],
        "line1": [p.person.address.line1 for p in profiles],
        "postal_code": [p.person.address.postal_code for p in profiles],
        # Lists built by polars from joined strings: a list column from Python lists costs GBs at scale.
        "phones": pl.Series([" ".join(p.person.phones) for p in profiles], dtype=pl.String).str.split(" "),
        "emails": pl.Series(["\t".join(p.person.emails) for p in profiles], dtype=pl.String).str.split("\t"),
        "housemate": [pid(p.housemate) for p in profiles],
        "phone_from": [pid(p.phone_from) for p in profiles],
    }, schema_overrides={"housemate": pl.String, "phone_from": pl.String})


def people_records_with_truth(persons: int, *, seed: int = 1,
                              stores: list[StoreSpec] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The records of ``persons`` people (see :func:`people_records`) and one truth row per person.

    The persons frame has ``person_id, first_name, last_name, country, line1, postal_code`` (the
    truth of the home), ``phones`` and ``emails`` (lists), ``housemate`` (the person_id sharing the
    home, or null) and ``phone_from`` (the person_id who held this person's first phone before, or null).
    """
    if persons < 0:
        raise ValueError(f"persons must be >= 0, got {persons}")
    specs = list(DEFAULT_STORES if stores is None else stores)
    if not specs:
        raise ValueError("people_records needs at least one store")
    rng = random.Random(seed)
    weights: dict[str, float] = {}
    for spec in specs:
        weights[spec.country] = weights.get(spec.country, 0.0) + spec.weight
    countries = rng.choices(list(weights), list(weights.values()), k=persons)
    profiles = make_people(rng, countries, seed)
    tables = _store_tables(specs, list(weights))
    counts_cum = _cumulative([w for _, w in _RECORDS])
    accounts = Accounts(rng)
    cols: dict[str, list[object]] = {name: [] for name in RECORD_SCHEMA if name != "record_id"}
    keys: list[tuple[int, object]] = []
    for profile in profiles:
        person = profile.person
        table = tables[person.country]
        used: list[int] = []
        for _ in range(_RECORDS[_pick(rng, counts_cum)][0]):
            store = used[0] if used and rng.random() < _AGAIN else _pick(rng, table)
            if store not in used:
                used.append(store)
            spec = specs[store]
            amazon = spec.channel == "amazon"
            masked = amazon and rng.random() < MASKED_RATE
            marketplace = amazon and rng.random() < FBA_RATE
            shown = accounts.show(profile, store, spec, masked=masked, marketplace=marketplace)
            ship_to = shown.ship_to
            gift = not masked and rng.random() < GIFT_RATE
            if gift:
                ship_to = recipient(rng, person.country, seed, profiles, profile)
            keys.append((store, shown.customer_key))
            cols["person_id"].append(person.person_id)
            cols["channel"].append(spec.channel)
            cols["store"].append(spec.key)
            cols["store_country"].append(spec.country)
            cols["name"].append(shown.name or None)
            cols["email"].append(shown.email)
            cols["phone"].append(shown.phone)
            cols["is_gift"].append(gift)
            if ship_to is None:
                for name in ("ship_name", "line1", "line2", "city", "region", "postal_code", "country"):
                    cols[name].append(None)
            else:
                # Amazon without the PII role withholds the name and street: null, not "".
                cols["ship_name"].append(ship_to.name or None)
                cols["line1"].append(ship_to.line1 or None)
                cols["line2"].append(ship_to.line2 or None)
                cols["city"].append(ship_to.city)
                cols["region"].append(ship_to.region)
                cols["postal_code"].append(ship_to.postal_code)
                cols["country"].append(ship_to.country)
    cols["channel_customer_id"] = _customer_ids(rng, specs, keys)
    # Record ids in a random order, so that neighbouring ids say nothing about who is who.
    numbers = list(range(1, len(keys) + 1))
    rng.shuffle(numbers)
    width = max(8, len(str(len(keys))))
    records = pl.DataFrame({"record_id": [f"R{n:0{width}d}" for n in numbers], **cols}, schema=RECORD_SCHEMA)
    return records, _persons_frame(profiles)


def _customer_ids(rng: random.Random, specs: list[StoreSpec], keys: list[tuple[int, object]]) -> list[object]:
    """Channel customer ids per store, numbered in first-seen order as the generator numbers them."""
    seen: dict[int, dict[object, None]] = {i: {} for i in range(len(specs))}
    for store, key in keys:
        if isinstance(key, tuple):
            seen[store].setdefault(key, None)
    ids: dict[tuple[int, object], str] = {}
    for store, first in seen.items():
        if specs[store].channel == "shopify":
            numbers = sorted(rng.sample(range(7_000_000_000_000, 8_000_000_000_000), len(first)))
        else:
            numbers = list(range(2, 2 + len(first)))  # WordPress user 1 is the shop admin
        ids.update({(store, key): str(n) for key, n in zip(first, numbers, strict=True)})
    return [ids[(store, key)] if isinstance(key, tuple) else key for store, key in keys]


def people_records(persons: int, *, seed: int = 1, stores: list[StoreSpec] | None = None) -> pl.DataFrame:
    """One row per channel identity record of ``persons`` synthetic people, with the truth.

    Args:
        persons: people in the population; each has 1-4 records (about 1.9 on average).
        seed: the only source of randomness; same seed and arguments give the same frame.
        stores: the stores records come from (default :data:`sandbox.generator.DEFAULT_STORES`).

    Returns:
        Columns :data:`RECORD_SCHEMA`: ``record_id`` (unique), ``person_id`` (truth), the store
        (``channel, store, store_country``), ``channel_customer_id`` (Shopify/WooCommerce/storefront/feed
        customer id, ``"0"`` for a WooCommerce guest, null on Amazon), the buyer as shown (``name, email,
        phone``), the ship-to (``ship_name, line1, line2, city, region, postal_code, country``) and
        ``is_gift`` (truth: the ship-to is someone else). Fields a channel withholds are null.

    Raises:
        ValueError: on a negative ``persons`` or an empty ``stores``.
    """
    return people_records_with_truth(persons, seed=seed, stores=stores)[0]


def _split(name: str | None, channel: str) -> tuple[str | None, str | None]:
    """(first, last) where the checkout has two name fields; what was typed first goes in the first field."""
    if not name or channel not in _TWO_FIELD_FORMS or "," in name or " " not in name.strip():
        return None, None
    first, _, last = name.strip().partition(" ")
    return first, last.strip()


def write_people_csv(path: str | Path, persons: int, seed: int = 1) -> tuple[Path, Path]:
    """Write ``persons`` people's records in the stand-alone dedupe input format, and their truth.

    The records file has :data:`CSV_COLUMNS` (``first_name``/``last_name`` only for checkouts with two
    name fields, else empty, with the whole name in ``name``); the truth file, next to it with the
    suffix ``.truth.csv``, has ``record_id, person_id``.

    Returns:
        (records path, truth path).
    """
    path = Path(path)
    truth_path = path.with_name(f"{path.stem}.truth.csv")
    records = people_records(persons, seed=seed)
    parts = [_split(name, channel) for name, channel in zip(records["name"], records["channel"], strict=True)]
    out = records.with_columns(
        pl.Series("first_name", [p[0] for p in parts], dtype=pl.String),
        pl.Series("last_name", [p[1] for p in parts], dtype=pl.String),
    ).select(CSV_COLUMNS)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.write_csv(path, quote_style="necessary")
    records.select("record_id", "person_id").write_csv(truth_path)
    return path, truth_path

