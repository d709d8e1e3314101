"""Deterministic customer linking: keys, guests, relays, masked buyers, stable ids, customer figures."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from dedupe.identity import EDGE_SCHEMA, customer_id_for, resolve_customers
from dedupe.mirrors import resolve_mirrors
from tests.warehouse.factories import T0, line_rows, order_rows
from warehouse.db import Warehouse


def _load(wh: Warehouse, rows: list[dict[str, Any]]) -> None:
    orders = order_rows(rows)
    # Each order buys its own item: the same buyer, items and total in two channels would be one
    # purchase copied (dedupe.mirrors), which these tests are not about.
    lines = line_rows(orders).with_columns(pl.format("SKU-{}", pl.col("order_id")).alias("sku"))
    wh.merge_orders(orders, lines)
    resolve_mirrors(wh.con)


def _customers(wh: Warehouse) -> dict[str, str]:
    """order_id -> customer_id."""
    return dict(wh.con.execute("SELECT order_id, customer_id FROM orders").fetchall())


def _groups(wh: Warehouse) -> set[frozenset[str]]:
    by_customer: dict[str, set[str]] = {}
    for order_id, customer_id in _customers(wh).items():
        by_customer.setdefault(customer_id, set()).add(order_id)
    return {frozenset(v) for v in by_customer.values()}


def _rules(wh: Warehouse) -> dict[str, str]:
    return dict(wh.con.execute("SELECT identity_key, rule FROM customer_identities").fetchall())


def test_email_links_across_channels_whatever_its_case(wh: Warehouse) -> None:
    _load(
        wh,
        [
            {"channel": "shopify", "store": "main", "external_id": "1", "email": "Ann.Lee@Example.COM "},
            {"channel": "woocommerce", "store": "w", "external_id": "2", "email": "ann.lee@example.com"},
            {"channel": "woocommerce", "store": "w", "external_id": "3", "email": "bob@example.com"},
        ],
    )
    stats = resolve_customers(wh.con)
    assert _groups(wh) == {frozenset({"shopify:main:1", "woocommerce:w:2"}), frozenset({"woocommerce:w:3"})}
    assert (stats.orders, stats.identities, stats.customers, stats.linked_identities) == (3, 3, 2, 2)
    assert _rules(wh)["woocommerce:w:email:ann.lee@example.com"] == "email"
    assert wh.con.execute("SELECT email FROM customers WHERE orders_count = 2").fetchall() == [
        ("ann.lee@example.com",)
    ]


def test_relay_email_links_amazon_identities_only(wh: Warehouse) -> None:
    relay = "k3x9pq2mz8d7b5t@marketplace.amazon.com"
    _load(
        wh,
        [
            {"channel": "amazon", "store": "us", "external_id": "111-1", "email": relay},
            {"channel": "amazon", "store": "ca", "external_id": "702-2", "email": relay.upper()},
            # Same relay address on another channel, not a mirror: no link.
            {"channel": "shopify", "store": "main", "external_id": "9", "email": relay},
        ],
    )
    resolve_customers(wh.con)
    assert _groups(wh) == {frozenset({"amazon:us:111-1", "amazon:ca:702-2"}), frozenset({"shopify:main:9"})}


def test_phone_links_and_channel_customer_key_groups_one_store(wh: Warehouse) -> None:
    _load(
        wh,
        [
            {
                "channel": "shopify",
                "store": "main",
                "external_id": "1",
                "channel_customer_key": "7001",
                "email": "old@example.com",
            },
            {
                "channel": "shopify",
                "store": "main",
                "external_id": "2",
                "channel_customer_key": "7001",
                "email": "new@example.com",
                "phone": "+14155550123",
            },
            {"channel": "woocommerce", "store": "w", "external_id": "3", "phone": "+14155550123"},
            # Same customer key in another store is somebody else.
            {"channel": "shopify", "store": "other", "external_id": "4", "channel_customer_key": "7001"},
        ],
    )
    stats = resolve_customers(wh.con)
    assert _groups(wh) == {
        frozenset({"shopify:main:1", "shopify:main:2", "woocommerce:w:3"}),
        frozenset({"shopify:other:4"}),
    }
    rules = _rules(wh)
    assert rules["shopify:main:ck:7001"] == "phone"
    assert rules["woocommerce:w:phone:+14155550123"] == "phone"
    assert rules["shopify:other:ck:7001"] == "channel_customer"
    assert stats.by_rule == {"channel_customer": 1, "phone": 2}


def test_woocommerce_guest_zero_is_not_a_key(wh: Warehouse) -> None:
    _load(
        wh,
        [
            {
                "channel": "woocommerce",
                "store": "w",
                "external_id": "1",
                "channel_customer_key": "0",
                "email": "a@example.com",
            },
            {
                "channel": "woocommerce",
                "store": "w",
                "external_id": "2",
                "channel_customer_key": "0",
                "email": "b@example.com",
            },
            {"channel": "woocommerce", "store": "w", "external_id": "3", "channel_customer_key": "0"},
            {
                "channel": "woocommerce",
                "store": "w",
                "external_id": "4",
                "channel_customer_key": " 0 ",
                "email": "A@example.com",
            },
        ],
    )
    resolve_customers(wh.con)
    assert _groups(wh) == {
        frozenset({"woocommerce:w:1", "woocommerce:w:4"}),
        frozenset({"woocommerce:w:2"}),
        frozenset({"woocommerce:w:3"}),
    }
    assert _rules(wh)["woocommerce:w:order:3"] == "self"


def test_masked_orders_without_keys_stay_one_customer_each(wh: Warehouse) -> None:
    _load(
        wh,
        [
            {
                "channel": "amazon",
                "store": "us",
                "external_id": f"111-{i}",
                "pii_masked": True,
                "ship_postal_code": "98101",
                "ship_country": "US",
            }
            for i in range(3)
        ],
    )
    stats = resolve_customers(wh.con)
    assert stats.customers == 3
    assert stats.by_rule == {"self": 3}


def test_a_mirror_belongs_to_its_originals_customer_and_counts_once(wh: Warehouse) -> None:
    _load(
        wh,
        [
            {
                "channel": "amazon",
                "store": "us",
                "external_id": "111-1",
                "email": "x1@marketplace.amazon.com",
                "total": Decimal("40.10"),
                "buyer_name": "Zoë Quinn",
            },
            {
                "channel": "shopify",
                "store": "main",
                "external_id": "9",
                "email": "x1@marketplace.amazon.com",
                "mirror_of": "amazon:111-1",
                "total": Decimal("40.10"),
                "created_at": T0 + timedelta(hours=1),
            },
        ],
    )
    stats = resolve_customers(wh.con)
    assert len(_groups(wh)) == 1
    assert stats.by_rule == {"mirror": 2}
    assert wh.con.execute("SELECT name, orders_count, total_spent_base FROM customers").fetchall() == [
        ("Zoë Quinn", 1, Decimal("40.10"))
    ]


def test_customer_figures_count_originals_that_are_not_cancelled(wh: Warehouse) -> None:
    base = {"channel": "shopify", "store": "main", "email": "c@example.com"}
    _load(
        wh,
        [
            {**base, "external_id": "1", "total": Decimal("0.10"), "buyer_name": "Old Name"},
            {
                **base,
                "external_id": "2",
                "total": Decimal("0.20"),
                "created_at": T0 + timedelta(days=1),
                "buyer_name": "New Name",
                "phone": "+4930123456",
            },
            {
                **base,
                "external_id": "3",
                "total": Decimal("99"),
                "status": "cancelled",
                "created_at": T0 + timedelta(days=5),
            },
            {
                **base,
                "external_id": "4",
                "total": Decimal("5"),
                "created_at": T0 + timedelta(days=2),
                "buyer_name": None,
                "ship_country": "DE",
            },
        ],
    )
    resolve_customers(wh.con)
    row = wh.con.execute(
        "SELECT name, phone, country, orders_count, total_spent_base, first_order_at, last_order_at FROM customers"
    ).fetchall()
    assert row == [("New Name", "+4930123456", "DE", 3, Decimal("5.30"), T0, T0 + timedelta(days=2))]


def test_ids_are_stable_and_derived_from_the_smallest_identity_key(wh: Warehouse) -> None:
    _load(
        wh,
        [
            {"channel": "woocommerce", "store": "w", "external_id": "1", "email": "d@example.com"},
            {"channel": "amazon", "store": "us", "external_id": "2", "email": "d@example.com"},
        ],
    )
    resolve_customers(wh.con)
    wh.con.execute("UPDATE customers SET tags = ['vip'], vip = true")
    first = _customers(wh)
    linked = wh.con.execute("SELECT identity_key, linked_at FROM customer_identities ORDER BY 1").fetchall()
    assert set(first.values()) == {customer_id_for("amazon:us:email:d@example.com")}

    again = resolve_customers(wh.con)
    assert _customers(wh) == first
    assert again.orders_relinked == 0
    assert (
        wh.con.execute("SELECT identity_key, linked_at FROM customer_identities ORDER BY 1").fetchall()
        == linked
    )
    assert wh.con.execute("SELECT tags, vip FROM customers").fetchall() == [(["vip"], True)]


def test_a_placeholder_shared_by_too_many_identities_links_nobody(wh: Warehouse) -> None:
    _load(
        wh,
        [
            # A real-looking number a marketplace books every order under (a placeholder that parses).
            {"channel": "woocommerce", "store": f"w{i}", "external_id": "1", "phone": "+14155550123"}
            for i in range(4)
        ],
    )
    stats = resolve_customers(wh.con, max_key_identities=3)
    assert (stats.customers, stats.ignored_keys) == (4, 1)


def test_a_probabilistic_linker_plugs_in_with_its_rule_and_score(wh: Warehouse) -> None:
    _load(
        wh,
        [
            {
                "channel": "shopify",
                "store": "main",
                "external_id": "1",
                "email": "e@example.com",
                "buyer_name": "Eve Adams",
                "ship_postal_code": "10115",
            },
            {
                "channel": "woocommerce",
                "store": "w",
                "external_id": "2",
                "email": "eve.work@example.com",
                "buyer_name": "Eve Adams",
                "ship_postal_code": "10115",
            },
        ],
    )

    def same_name_and_postcode(identities: pl.DataFrame) -> pl.DataFrame:
        pairs = identities.join(identities, on=["name", "postal_code"], suffix="_r").filter(
            pl.col("identity_key") < pl.col("identity_key_r")
        )
        return pairs.select(
            pl.col("identity_key").alias("left_key"),
            pl.col("identity_key_r").alias("right_key"),
            pl.lit("splink").alias("rule"),
            pl.lit(0.97).alias("score"),
        ).cast(EDGE_SCHEMA)  # type: ignore[arg-type]

    stats = resolve_customers(wh.con, linkers=[same_name_and_postcode])
    assert stats.customers == 1
    assert set(wh.con.execute("SELECT rule, score FROM customer_identities").fetchall()) == {("splink", 0.97)}
