"""Customer records at scale: deterministic, shaped as dedupe's input, and as hard as real identity data."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import phonenumbers
import polars as pl
import pytest

from sandbox import noise
from sandbox.business import StoreSpec
from sandbox.generator import generate
from sandbox.people_records import (
    CSV_COLUMNS,
    RECORD_SCHEMA,
    people_records,
    people_records_with_truth,
    write_people_csv,
)

PERSONS = 6000


@pytest.fixture(scope="module")
def population() -> tuple[pl.DataFrame, pl.DataFrame]:
    return people_records_with_truth(PERSONS, seed=7)


def test_same_seed_same_records_other_seed_other_records() -> None:
    one = people_records(500, seed=3)
    assert one.equals(people_records(500, seed=3))
    assert not one.equals(people_records(500, seed=4))


def test_columns_and_shape(population: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    records, persons = population
    assert records.schema == pl.Schema(RECORD_SCHEMA)
    assert records["record_id"].n_unique() == records.height
    assert persons.height == PERSONS and set(records["person_id"]) == set(persons["person_id"])
    per_person = records.group_by("person_id").len()["len"]
    assert per_person.min() == 1 and per_person.max() == 4 and 1.6 < float(per_person.mean()) < 2.2  # type: ignore[arg-type]
    assert set(records["channel"]) == {"amazon", "shopify", "woocommerce", "storefront", "feed"}
    amazon = records.filter(pl.col("channel") == "amazon")
    assert amazon["channel_customer_id"].null_count() == amazon.height
    relays = amazon["email"].drop_nulls()
    assert relays.len() and all(re.fullmatch(r"[a-z0-9]{13,16}@marketplace\.amazon\.com", e) for e in relays)
    masked = amazon.filter(pl.col("email").is_null())
    assert 0.15 < masked.height / amazon.height < 0.25
    assert masked["name"].null_count() == masked["line1"].null_count() == masked.height
    assert masked["postal_code"].null_count() == 0
    woo = records.filter(pl.col("channel") == "woocommerce")
    assert 0.2 < (woo["channel_customer_id"] == "0").mean() < 0.4  # type: ignore[operator]
    assert records.filter(pl.col("channel") != "amazon")["channel_customer_id"].null_count() == 0


def test_households_share_a_home_but_not_a_person(population: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    records, persons = population
    pairs = persons.filter(pl.col("housemate").is_not_null()).join(
        persons, left_on="housemate", right_on="person_id", suffix="_mate")
    assert 0.09 < pairs.height / PERSONS < 0.15
    assert (pairs["person_id"] != pairs["housemate"]).all()
    assert (pairs["line1"] == pairs["line1_mate"]).all() and (pairs["postal_code"] == pairs["postal_code_mate"]).all()
    assert 0.5 < (pairs["last_name"] == pairs["last_name_mate"]).mean() < 0.7  # type: ignore[operator]
    shared = pairs.filter(pl.col("phones").list.set_intersection(pl.col("phones_mate")).list.len() > 0)
    assert 0.3 < shared.height / pairs.height < 0.5  # a landline both list
    # In the records: housemates ship to one address under two person ids.
    homes = records.filter(~pl.col("is_gift") & pl.col("line1").is_not_null()).join(
        pairs.select("person_id", "housemate"), on="person_id")
    mates = homes.join(homes, left_on=["housemate", "postal_code"], right_on=["person_id", "postal_code"])
    assert mates.height > 50 and (mates["person_id"] != mates["housemate"]).all()


def test_reused_phones_belong_to_different_people(population: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    records, persons = population
    reused = persons.filter(pl.col("phone_from").is_not_null())
    assert 0.005 < reused.height / PERSONS < 0.02
    before = reused.join(persons, left_on="phone_from", right_on="person_id", suffix="_before")
    assert (before["phones"].list.first() == before["phones_before"].list.first()).all()
    assert (before["last_name"] != before["last_name_before"]).all() and (before["line1"] != before["line1_before"]).all()
    # Records of two persons show one E.164 number.
    e164 = [None if p is None else phonenumbers.format_number(phonenumbers.parse(p, c or "US"),
                                                               phonenumbers.PhoneNumberFormat.E164)
            for p, c in zip(records["phone"], records["country"], strict=True)]
    owners = records.with_columns(pl.Series("e164", e164)).drop_nulls("e164").group_by("e164").agg(
        pl.col("person_id").n_unique().alias("people"))
    assert owners.filter(pl.col("people") > 1).height > 10


def test_nicknames_appear(population: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    records, persons = population
    shown = records.filter(pl.col("name").is_not_null()).join(persons, on="person_id")
    with_nicks = nicked = 0
    for name, first, country in shown.select("name", "first_name", "country").iter_rows():
        nicks = noise.nicknames(first, country)
        if nicks:
            with_nicks += 1
            tokens = set(re.split(r"[ ,]+", name.lower()))
            nicked += any(nick.lower() in tokens for nick in nicks) and first.lower() not in tokens
    assert with_nicks > 1000 and 0.02 < nicked / with_nicks < 0.08
    assert noise.nicknames("William", "US") and "Sepp" in noise.nicknames("Josef", "DE")
    assert noise.nicknames("Zzyzx", "US") == ()


def test_gift_records_ship_to_someone_else(population: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    records, persons = population
    gifts = records.filter(pl.col("is_gift"))
    assert 0.01 < gifts.height / records.height < 0.03
    assert (gifts["ship_name"] != gifts["name"]).all() and gifts["name"].null_count() == 0
    # Some gifts go to another person of the population: their home, under their name.
    homes = persons.select(pl.col("person_id").alias("recipient"), "line1", "postal_code")
    known = gifts.join(homes, on=["line1", "postal_code"])
    assert known.height > 5 and (known["recipient"] != known["person_id"]).all()


def test_custom_stores_and_edge_cases() -> None:
    only_woo = people_records(50, seed=1, stores=[StoreSpec("woocommerce", "shop", "GBP", "GB")])
    assert set(only_woo["store"]) == {"shop"} and set(only_woo["country"].drop_nulls()) == {"GB"}
    assert people_records(0).height == 0
    with pytest.raises(ValueError, match="persons"):
        people_records(-1)


def test_write_people_csv(tmp_path: Path) -> None:
    path, truth_path = write_people_csv(tmp_path / "people.csv", 300, seed=2)
    records = pl.read_csv(path, infer_schema=False)
    truth = pl.read_csv(truth_path, infer_schema=False)
    assert tuple(records.columns) == CSV_COLUMNS and truth.columns == ["record_id", "person_id"]
    assert records.height == truth.height and set(records["record_id"]) == set(truth["record_id"])
    split = records.filter(pl.col("first_name").is_not_null())
    assert split.height > 50
    assert all(name.startswith(first) and name.endswith(last)
               for first, last, name in split.select("first_name", "last_name", "name").iter_rows())
    assert records.filter(pl.col("first_name").is_null() & pl.col("name").is_not_null()).height > 50


def test_generated_business_has_the_same_hard_cases() -> None:
    business = generate(seed=11, orders=6000, start=datetime(2026, 3, 1, 12, tzinfo=UTC))
    persons = list(business.persons.values())
    homes: dict[tuple[str, str, str], list[str]] = {}
    phones: dict[str, set[str]] = {}
    for person in persons:
        a = person.address
        homes.setdefault((a.line1, a.postal_code, a.country), []).append(person.person_id)
        for phone in person.phones:
            phones.setdefault(phone, set()).add(person.person_id)
    in_households = sum(len(ids) for ids in homes.values() if len(ids) > 1)
    assert 0.08 < in_households / len(persons) < 0.16
    assert sum(len(ids) > 1 for ids in phones.values()) > 0.003 * len(persons)
    # A gift to another customer ships to that customer's home.
    known = [o for o in business.orders if o.ship_to and o.ship_to.name and o.person_id
             and o.ship_to.postal_code != business.persons[o.person_id].address.postal_code
             and (o.ship_to.line1, o.ship_to.postal_code, o.ship_to.country) in homes]
    assert known
