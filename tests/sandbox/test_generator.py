"""The sandbox generator: reproducible, realistic and consistent with its own ground truth."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import unicodedata
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import phonenumbers
import polars as pl
import pytest

from sandbox.catalog import quantum
from sandbox.generator import DEFAULT_STORES, DEFECTS, Business, StoreSpec, generate

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
ORDERS = 3000
CANONICAL_STATUS = {"pending", "unfulfilled", "partially_fulfilled", "fulfilled", "cancelled"}
CANONICAL_PAYMENT = {"pending", "paid", "partially_refunded", "refunded", "voided"}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def business() -> Business:
    return generate(seed=42, orders=ORDERS, start=START)


def test_same_seed_same_business_other_seed_other_business() -> None:
    one = generate(seed=5, orders=400, start=START)
    two = generate(seed=5, orders=400, start=START)
    assert one.fingerprint() == two.fingerprint()
    assert [o.external_id for o in one.orders] == [o.external_id for o in two.orders]
    assert generate(seed=6, orders=400, start=START).fingerprint() != one.fingerprint()


def test_no_dependence_on_hash_seed() -> None:
    # Set iteration order changes with PYTHONHASHSEED; the business must not.
    code = ("from datetime import UTC, datetime; from sandbox.generator import generate; "
            "print(generate(seed=5, orders=200, start=datetime(2026, 3, 1, 12, tzinfo=UTC)).fingerprint())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == generate(seed=5, orders=200, start=START).fingerprint()


def test_size_and_window(business: Business) -> None:
    assert len(business.orders) == round(ORDERS * (90 + 30) / 90)
    assert business.horizon == START + timedelta(days=30)
    assert all(START - timedelta(days=90) <= o.created_at <= business.horizon for o in business.orders)
    visible_at_start = sum(1 for o in business.orders if o.created_at <= START)
    assert abs(visible_at_start - ORDERS) < 0.1 * ORDERS
    assert [o.created_at for o in business.orders] == sorted(o.created_at for o in business.orders)
    assert len({o.truth_id for o in business.orders}) == len(business.orders)
    assert 0.35 < len(business.persons) / len(business.orders) < 0.45


def test_default_stores_shape() -> None:
    keys = {s.key: s for s in DEFAULT_STORES}
    assert set(keys) == {"acme-us", "acme-eu", "amz-us", "amz-ca", "woo-shop", "laden-de", "market-gb"}
    assert keys["amz-us"].seller_id == keys["amz-ca"].seller_id == "A1SELLER"
    assert (keys["amz-us"].marketplace_id, keys["amz-ca"].marketplace_id) == ("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2")
    assert (keys["acme-eu"].currency, keys["woo-shop"].currency, keys["amz-ca"].currency) == ("EUR", "GBP", "CAD")


def test_orders_for_is_per_store_and_sorted(business: Business) -> None:
    total = 0
    for spec in business.stores:
        mine = business.orders_for(spec.key)
        assert mine and all(o.store == spec.key and o.channel == spec.channel for o in mine)
        assert [o.created_at for o in mine] == sorted(o.created_at for o in mine)
        total += len(mine)
    assert total == len(business.orders)
    assert business.orders_for("nope") == []
    some = business.orders[17]
    assert business.by_truth_id(some.truth_id) is some


def test_external_ids_unique_and_channel_shaped(business: Business) -> None:
    for spec in business.stores:
        mine = business.orders_for(spec.key)
        assert len({o.external_id for o in mine}) == len(mine)
        assert len({o.order_number for o in mine}) == len(mine)
        if spec.channel == "amazon":
            assert all(re.fullmatch(r"\d{3}-\d{7}-\d{7}", o.external_id) for o in mine)
            assert all(o.order_number == o.external_id for o in mine)
        elif spec.channel == "shopify":
            assert all(5_000_000_000 <= int(o.external_id) < 6_000_000_000 for o in mine)
            assert [o.order_number for o in mine] == [f"#{1001 + i}" for i in range(len(mine))]
            assert [int(o.external_id) for o in mine] == sorted(int(o.external_id) for o in mine)
        else:
            assert all(o.external_id.isdigit() and o.order_number == o.external_id for o in mine)
    assert len({o.order_id for o in business.orders}) == len(business.orders)


def test_versions_increase_and_stay_canonical(business: Business) -> None:
    for order in business.orders:
        versions = order.versions
        assert versions[0].at == order.created_at
        assert all(a.at < b.at for a, b in itertools.pairwise(versions))
        assert versions[-1].at <= business.horizon
        for v in versions:
            assert v.status in CANONICAL_STATUS and v.payment_status in CANONICAL_PAYMENT
            assert v.at.tzinfo is not None and v.at.utcoffset() == timedelta(0)
            assert Decimal(0) <= v.refunded <= order.total
            if v.status in ("fulfilled", "partially_fulfilled"):
                assert v.tracking_number and v.carrier
            if v.payment_status == "refunded":
                assert v.refunded == order.total
            if v.payment_status == "partially_refunded":
                assert 0 < v.refunded < order.total


def test_life_cycles_are_realistic(business: Business) -> None:
    final = Counter(o.versions[-1].status for o in business.orders if o.created_at < START - timedelta(days=20))
    done = sum(final.values())
    assert final["fulfilled"] / done > 0.85
    assert 0.01 < final["cancelled"] / done < 0.06
    refunds = sum(1 for o in business.orders if o.versions[-1].payment_status in ("refunded", "partially_refunded")
                  and o.versions[-1].status == "fulfilled")
    assert 0.015 < refunds / len(business.orders) < 0.07
    assert not any(v.refunded for o in business.orders if o.channel == "amazon" for v in o.versions)
    amazon = [o for o in business.orders if o.channel == "amazon" and not o.defect]
    assert sum(o.versions[0].status == "pending" for o in amazon) / len(amazon) > 0.6
    assert any(v.status == "partially_fulfilled" for o in business.orders for v in o.versions)
    # The sandbox clock moves into the future: changes after start must exist.
    assert any(v.at > START for o in business.orders if o.created_at <= START for v in o.versions[1:])


def test_amazon_orders(business: Business) -> None:
    amazon = [o for o in business.orders if o.channel == "amazon" and o.related_to is None]
    masked = [o for o in amazon if o.pii_masked]
    assert 0.15 < len(masked) / len(amazon) < 0.25
    assert all(o.email is None and o.buyer_name is None and o.phone is None for o in masked)
    assert all(o.ship_to is not None and o.ship_to.name == "" and o.ship_to.postal_code for o in masked)
    fba = [o for o in amazon if o.fulfilled_by == "marketplace"]
    assert 0.2 < len(fba) / len(amazon) < 0.3
    assert all(o.ship_by == o.created_at + timedelta(days=2) for o in amazon)
    relays = [o.email for o in amazon if o.email]
    assert relays and all(re.fullmatch(r"[a-z0-9]{13,16}@marketplace\.amazon\.com", e) for e in relays)
    # One relay per buyer per seller, the same in both marketplaces of that seller.
    by_person: dict[str, set[str]] = defaultdict(set)
    for o in amazon:
        if o.email:
            by_person[o.person_id or ""].add(o.email)
    assert all(len(emails) == 1 for emails in by_person.values())
    for pid, emails in by_person.items():
        assert business.persons[pid].relay_emails["A1SELLER"] in emails


def test_replacement_orders_point_at_their_original(business: Business) -> None:
    replacements = [o for o in business.orders if o.related_to]
    assert replacements
    for extra in replacements:
        original = business.by_truth_id(extra.related_to or "")
        assert original.channel == extra.channel == "amazon" and original.store == extra.store
        assert original.person_id == extra.person_id and extra.total == 0
        assert extra.created_at > next(v.at for v in original.versions if v.status == "fulfilled")


def test_mirrors_copy_an_amazon_order_into_shopify(business: Business) -> None:
    mirrors = [o for o in business.orders if o.mirror_of]
    eligible = [o for o in business.orders if o.store == "amz-us"]
    assert 0.03 < len(mirrors) / len(eligible) < 0.07
    for mirror in mirrors:
        original = business.by_truth_id(mirror.mirror_of or "")
        assert original.channel == "amazon" and original.store == "amz-us" and not original.mirror_of
        assert mirror.store == "acme-us" and mirror.channel == "shopify" and mirror.defect is None
        assert original.defect is None
        assert (mirror.total, mirror.currency, mirror.lines) == (original.total, original.currency, original.lines)
        assert timedelta(0) < mirror.created_at - original.created_at
        assert mirror.person_id == original.person_id and mirror.email == original.email
        # The import follows every change after payment, minutes later; the horizon may cut the tail.
        paid = [(v.status, v.payment_status, v.refunded) for v in original.versions if v.status != "pending"]
        copied = [(v.status, v.payment_status, v.refunded) for v in mirror.versions]
        assert copied == paid[: len(copied)]
        assert len(copied) == len(paid) or mirror.versions[-1].at > business.horizon - timedelta(days=2)


def test_defects_are_an_exact_deterministic_share(business: Business) -> None:
    defective = [o for o in business.orders if o.defect]
    assert len(defective) == round(0.01 * len(business.orders))
    kinds = Counter(o.defect for o in defective)
    assert set(kinds) == set(DEFECTS) and max(kinds.values()) - min(kinds.values()) <= 1
    originals = {o.mirror_of for o in business.orders} | {o.related_to for o in business.orders}
    assert all(len(o.versions) == 1 and o.truth_id not in originals and not o.mirror_of for o in defective)
    none = generate(seed=3, orders=300, start=START, defect_rate=0.0)
    assert not any(o.defect for o in none.orders)


def test_truth_counts_are_consistent(business: Business) -> None:
    for as_of in (START - timedelta(days=45), START, business.horizon):
        truth = business.truth(as_of)
        counts = truth.counts()
        assert counts["visible"] == sum(1 for o in business.orders if o.created_at <= as_of)
        assert counts["real"] + counts["mirrors"] + counts["defective"] == counts["visible"]
        assert len(truth.real_orders) == counts["real"]
        ids = {row["order_id"] for row in truth.orders}
        real_ids = {row["order_id"] for row in truth.real_orders}
        assert set(truth.mirrors.values()) <= real_ids and set(truth.mirrors) <= ids
        assert set(truth.defects.values()) <= set(DEFECTS)
        assert sum(p["orders_count"] for p in truth.persons.values()) == counts["real"]
    row = business.truth(START).orders[0]
    order = business.by_truth_id(row["truth_id"])
    assert (row["total"], row["subtotal"], row["tax"], row["discount"]) == (order.total, order.subtotal, order.tax,
                                                                         order.discount)
    with pytest.raises(ValueError, match="timezone-aware"):
        business.truth(datetime(2026, 3, 1))  # a naive datetime is the point


def test_truth_states_follow_the_clock(business: Business) -> None:
    changed = next(o for o in business.orders if len(o.versions) >= 3)
    early = business.truth(changed.versions[1].at)
    late = business.truth(changed.versions[-1].at)
    row_early = next(r for r in early.orders if r["truth_id"] == changed.truth_id)
    row_late = next(r for r in late.orders if r["truth_id"] == changed.truth_id)
    assert (row_early["status"], row_early["payment_status"]) == (changed.versions[1].status,
                                                                 changed.versions[1].payment_status)
    assert row_late["updated_at"] == changed.versions[-1].at


def test_people_buy_across_channels_under_different_identities(business: Business) -> None:
    truth = business.truth(business.horizon)
    multi_channel = [p for p in truth.persons.values() if len({c.split(":")[0] for c in p["channels"]}) > 1]
    assert len(multi_channel) > 0.05 * len(truth.persons)
    counts = Counter(p["orders_count"] for p in truth.persons.values())
    assert 0.5 < counts[1] / len(truth.persons) < 0.7
    assert max(counts) >= 10  # a VIP tail
    shown: dict[str, set[str]] = defaultdict(set)
    for order in business.orders:
        if order.email and not order.email.endswith("@marketplace.amazon.com"):
            assert order.email in business.persons[order.person_id or ""].emails
            shown[order.person_id or ""].add(order.email)
    assert sum(1 for emails in shown.values() if len(emails) > 1) > 20
    kinds = " ".join(e for p in business.persons.values() for e in p.emails[1:])
    assert "+" in kinds and any(ch.isupper() for ch in kinds)
    assert re.search(r"@(gmial\.com|gamil\.com|gmai\.com|gmail\.con|hotmial\.com|yaho\.com|outlok\.com)\b", kinds)
    phones = [o.phone for o in business.orders if o.phone]
    assert any(p.startswith("+1 ") for p in phones) and any(p.startswith("(") for p in phones)
    assert any(re.fullmatch(r"\d{10}", p) for p in phones) and any(p.startswith("00") for p in phones)
    lines = [o.ship_to.line1 for o in business.orders if o.ship_to]
    assert any(" St" in line1 or " Ave" in line1 for line1 in lines) and any("str." in line1 for line1 in lines)
    churned = [p for p in business.persons.values() if p.segment == "churned"]
    assert churned
    last = {pid: row["last_order_at"] for pid, row in truth.persons.items()}
    assert all(last[p.person_id] < START - timedelta(days=60) for p in churned if p.person_id in last)


def test_people_are_valid_unicode_and_phones(business: Business) -> None:
    names = [p.first_name + p.last_name + p.address.line1 + p.address.city for p in business.persons.values()]
    assert all(unicodedata.is_normalized("NFC", name) for name in names)
    assert any(ch in "".join(names) for ch in "äöüßéñçŞŁ")
    for person in business.persons.values():
        for phone in person.phones:
            assert phonenumbers.is_valid_number(phonenumbers.parse(phone)), phone
        assert person.emails and len({e.lower() for e in person.emails}) >= 1
    mains = [p.emails[0].lower() for p in business.persons.values()]
    assert len(set(mains)) == len(mains)
    phones = [ph for p in business.persons.values() for ph in p.phones]
    # Phones shown in any format parse back to the person's E.164: with the ship-to country as the
    # default region, else (dialling prefix of the store's country) with the store's country.
    checked = 0
    for order in business.orders:
        person = business.persons[order.person_id or ""]
        if order.phone and order.ship_to and order.ship_to.country == person.country:
            parsed = phonenumbers.parse(order.phone, order.ship_to.country)
            if not phonenumbers.is_valid_number(parsed):
                parsed = phonenumbers.parse(order.phone, business.store(order.store).country)
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            assert e164 in person.phones, (order.phone, e164)
            checked += 1
    assert checked > 500 and len(phones) >= len(business.persons)


def test_woocommerce_guests_and_shopify_customers(business: Business) -> None:
    woo = business.orders_for("woo-shop")
    assert 0.2 < sum(o.channel_customer_id == "0" for o in woo) / len(woo) < 0.4
    assert all(o.channel_customer_id and o.channel_customer_id.isdigit() for o in woo)
    shop = [o for o in business.orders_for("acme-us") if o.email]
    by_email: dict[str, set[str | None]] = defaultdict(set)
    for o in shop:
        by_email[(o.email or "").lower()].add(o.channel_customer_id)
    assert all(len(ids) == 1 and None not in ids for ids in by_email.values())


def test_money_is_decimal_in_minor_units(business: Business) -> None:
    for order in business.orders:
        q = quantum(order.currency)
        amounts = [order.shipping, order.order_discount, order.total, order.subtotal, order.tax]
        for line in order.lines:
            assert line.quantity > 0
            amounts += [line.unit_price, line.discount, line.tax, line.total]
        amounts += [v.refunded for v in order.versions]
        for amount in amounts:
            assert isinstance(amount, Decimal)
            assert amount == amount.quantize(q)
        assert order.total >= 0 and order.lines
        assert order.currency == business.store(order.store).currency


def test_tax_included_stores_charge_shelf_prices() -> None:
    b = generate(seed=9, orders=200, start=START, stores=[StoreSpec("shopify", "eu", "EUR", "DE")],
                 defect_rate=0)
    for order in b.orders:
        for line in order.lines:
            if line.discount == 0 and order.ship_to and order.ship_to.country == "DE":
                unit_gross = line.total / line.quantity
                assert str(unit_gross).endswith((".95", ".99")), unit_gross


def test_custom_stores_and_edge_cases() -> None:
    only_woo = generate(seed=1, orders=90, days=90, future_days=0, start=START,
                        stores=[StoreSpec("woocommerce", "shop", "GBP", "GB")])
    assert len(only_woo.orders) == 90 and not any(o.mirror_of for o in only_woo.orders)
    assert generate(seed=1, orders=0, start=START).orders == []
    tiny = generate(seed=1, orders=1, days=1, future_days=0, start=START)
    assert len(tiny.orders) == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        generate(start=datetime(2026, 3, 1))  # a naive datetime is the point
    with pytest.raises(ValueError, match="unique keys"):
        generate(start=START, stores=[DEFAULT_STORES[0], DEFAULT_STORES[0]])
    with pytest.raises(ValueError, match="channels"):
        generate(start=START, stores=[StoreSpec("ebay", "e", "USD", "US")])


def test_write_truth(business: Business, tmp_path: Path) -> None:
    folder = business.write_truth(tmp_path / "truth")
    summary = json.loads((folder / "summary.json").read_text())
    truth = business.truth(START)
    assert summary["counts"] == truth.counts() and summary["seed"] == 42
    orders = pl.read_parquet(folder / "orders.parquet")
    assert orders.height == len(truth.orders)
    assert orders.schema["total"] == pl.Decimal(20, 2)
    assert orders.filter(pl.col("kind") == "real").height == len(truth.real_orders)
    persons = pl.read_parquet(folder / "persons.parquet")
    assert persons.height == len(truth.persons)
    assert json.loads((folder / "mirrors.json").read_text()) == truth.mirrors
    assert json.loads((folder / "defects.json").read_text()) == truth.defects
