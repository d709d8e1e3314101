"""Order versions (latest wins) and cross-channel mirrors (count once, whatever lands first)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import polars as pl

from dedupe.mirrors import resolve_mirrors
from dedupe.versions import latest_lines, latest_versions
from tests.warehouse.factories import T0, line_rows, order_rows
from warehouse.db import Warehouse


def _flags(wh: Warehouse) -> dict[str, str | None]:
    return dict(wh.con.execute("SELECT order_id, duplicate_of FROM orders").fetchall())


def test_latest_version_by_updated_at_then_content() -> None:
    frame = order_rows(
        [
            {"channel": "amazon", "store": "us", "external_id": "A", "updated_at": T0, "batch_id": "b9"},
            {"channel": "amazon", "store": "us", "external_id": "A", "updated_at": T0 + timedelta(hours=1),
             "batch_id": "b1"},
            # Same updated_at, different content: the greater record_hash wins, whichever landed last.
            {"channel": "amazon", "store": "us", "external_id": "B", "updated_at": T0, "batch_id": "b2",
             "landed_at": T0 + timedelta(hours=1), "record_hash": "1" * 64},
            {"channel": "amazon", "store": "us", "external_id": "B", "updated_at": T0, "batch_id": "b3",
             "record_hash": "f" * 64},
            # Same content twice: the later batch, which is the same order either way.
            {"channel": "amazon", "store": "us", "external_id": "C", "updated_at": T0, "batch_id": "b4",
             "record_hash": "c" * 64},
            {"channel": "amazon", "store": "us", "external_id": "C", "updated_at": T0, "batch_id": "b5",
             "record_hash": "c" * 64},
            {"channel": "amazon", "store": "us", "external_id": "D", "updated_at": None, "batch_id": "b7"},
            {"channel": "amazon", "store": "us", "external_id": "D", "updated_at": T0, "batch_id": "b6"},
        ]
    )
    winners = dict(latest_versions(frame).select("external_id", "batch_id").iter_rows())
    assert winners == {"A": "b1", "B": "b3", "C": "b5", "D": "b6"}
    # Order of the input does not matter.
    assert dict(latest_versions(frame.reverse()).select("external_id", "batch_id").iter_rows()) == winners


def test_a_replayed_delivery_of_the_same_instant_changes_nothing(wh: Warehouse) -> None:
    """Two versions with one updated_at: whichever arrives first or again, the same one is kept."""
    first = {"channel": "shopify", "store": "s", "external_id": "7", "updated_at": T0, "status": "unfulfilled",
             "batch_id": "b1", "landed_at": T0, "record_hash": "a" * 64}
    second = {**first, "status": "fulfilled", "batch_id": "b2", "landed_at": T0 + timedelta(minutes=5),
              "record_hash": "b" * 64}
    def deliver(*versions: dict) -> list[tuple]:
        rows = order_rows(list(versions))
        wh.merge_orders(rows, line_rows(rows))
        return wh.con.execute("SELECT status, batch_id FROM orders").fetchall()

    assert deliver(first) == [("unfulfilled", "b1")]
    for replay in ([second], [first], [second, first], [first, second], [first]):
        assert deliver(*replay) == [("fulfilled", "b2")]
    # The other arrival order ends the same.
    wh.con.execute("DELETE FROM order_lines")
    wh.con.execute("DELETE FROM orders")
    assert deliver(second) == [("fulfilled", "b2")]
    assert deliver(first) == [("fulfilled", "b2")]


def test_latest_versions_leaves_a_frame_without_duplicates_alone() -> None:
    frame = order_rows([{"channel": "amazon", "store": "us", "external_id": str(i)} for i in range(3)])
    assert latest_versions(frame).equals(frame)


def test_latest_lines_picks_the_winning_set() -> None:
    versions = order_rows(
        [
            {"channel": "shopify", "store": "s", "external_id": "1", "batch_id": "b1"},
            {
                "channel": "shopify",
                "store": "s",
                "external_id": "1",
                "batch_id": "b2",
                "updated_at": T0 + timedelta(hours=1),
            },
        ]
    )
    winners = latest_versions(versions)
    untagged = pl.concat([line_rows(versions[:1], 3, sku="v1"), line_rows(versions[1:], 1, sku="v2")])
    assert latest_lines(untagged, winners)["sku"].to_list() == ["v2"]
    # With batch_id on the lines the winner's lines are picked even when they come first.
    tagged = pl.concat(
        [
            line_rows(versions[1:], 1, sku="v2").with_columns(pl.lit("b2").alias("batch_id")),
            line_rows(versions[:1], 3, sku="v1").with_columns(pl.lit("b1").alias("batch_id")),
        ]
    )
    assert latest_lines(tagged, winners)["sku"].to_list() == ["v2"]


def test_a_mirror_is_flagged_even_when_its_original_lands_later(wh: Warehouse) -> None:
    mirror = order_rows(
        [
            {
                "channel": "shopify",
                "store": "main",
                "external_id": "5001",
                "mirror_of": "amazon:113-1234567-1234567",
            }
        ]
    )
    wh.merge_orders(mirror, line_rows(mirror))
    assert resolve_mirrors(wh.con) == 0
    original = order_rows([{"channel": "amazon", "store": "eu-de", "external_id": "113-1234567-1234567"}])
    wh.merge_orders(original, line_rows(original))
    assert resolve_mirrors(wh.con) == 1
    assert _flags(wh) == {
        "shopify:main:5001": "amazon:eu-de:113-1234567-1234567",
        "amazon:eu-de:113-1234567-1234567": None,
    }
    assert resolve_mirrors(wh.con) == 1  # idempotent


def test_only_another_channel_can_be_the_original(wh: Warehouse) -> None:
    orders = order_rows(
        [
            {"channel": "shopify", "store": "a", "external_id": "1"},
            {"channel": "shopify", "store": "b", "external_id": "2", "mirror_of": "shopify:1"},
            {"channel": "woocommerce", "store": "w", "external_id": "3", "mirror_of": "amazon:nope"},
            {"channel": "woocommerce", "store": "w", "external_id": "4", "mirror_of": "garbage"},
        ]
    )
    wh.merge_orders(orders, line_rows(orders))
    assert resolve_mirrors(wh.con) == 0


def test_a_flag_is_cleared_when_a_new_version_drops_the_reference(wh: Warehouse) -> None:
    orders = order_rows(
        [
            {"channel": "amazon", "store": "us", "external_id": "111"},
            {"channel": "shopify", "store": "main", "external_id": "9", "mirror_of": "Amazon:111"},
        ]
    )
    wh.merge_orders(orders, line_rows(orders))
    assert resolve_mirrors(wh.con) == 1
    fixed = order_rows(
        [{"channel": "shopify", "store": "main", "external_id": "9", "updated_at": T0 + timedelta(hours=1)}]
    )
    wh.merge_orders(fixed, line_rows(fixed))
    assert _flags(wh)["shopify:main:9"] == "amazon:us:111"  # kept by the merge until dedupe runs
    assert resolve_mirrors(wh.con) == 0
    assert _flags(wh)["shopify:main:9"] is None


def _purchase(channel: str, store: str, external_id: str, **extra: object) -> dict:
    return {"channel": channel, "store": store, "external_id": external_id, "email": "ann@example.com",
            "total": Decimal("59.90"), "currency": "EUR", "ship_name": "Ann Lee", "ship_postal_code": "10115",
            "ship_city": "Berlin", "ship_country": "DE", **extra}


def _load(wh: Warehouse, rows: list[dict], skus: dict[str, list[tuple[str, int]]] | None = None) -> None:
    orders = order_rows(rows)
    lines = pl.concat([
        line_rows(orders.filter(pl.col("order_id") == oid), sku=sku, quantity=qty, line_no=n)
        for oid in orders["order_id"].to_list()
        for n, (sku, qty) in enumerate((skus or {}).get(oid, [("MUG-1", 2), ("TEA-9", 1)]), start=1)
    ])
    wh.merge_orders(orders, lines)


def _evidence(wh: Warehouse) -> dict[str, tuple[str | None, str | None]]:
    return {oid: (dup, why) for oid, dup, why in wh.con.execute(
        "SELECT order_id, duplicate_of, duplicate_evidence FROM orders ORDER BY order_id").fetchall()}


def test_a_copy_without_a_reference_is_recognized_by_the_purchase(wh: Warehouse) -> None:
    _load(wh, [_purchase("amazon", "eu-de", "302-1"),
               _purchase("shopify", "main", "5001", created_at=T0 + timedelta(minutes=12))])
    assert resolve_mirrors(wh.con) == 1
    duplicate_of, evidence = _evidence(wh)["shopify:main:5001"]
    assert duplicate_of == "amazon:eu-de:302-1"
    assert evidence == ("same purchase: buyer (e-mail), items (MUG-1 x2 | TEA-9 x1; 3 units), "
                        "total 59.90 EUR, created 12 min after")
    assert _evidence(wh)["amazon:eu-de:302-1"] == (None, None)
    assert resolve_mirrors(wh.con) == 1  # idempotent


def test_a_reference_is_the_evidence_when_there_is_one(wh: Warehouse) -> None:
    _load(wh, [_purchase("amazon", "eu-de", "302-1"),
               _purchase("shopify", "main", "5001", email="other@example.com", mirror_of="amazon:302-1")])
    assert resolve_mirrors(wh.con) == 1
    assert _evidence(wh)["shopify:main:5001"] == ("amazon:eu-de:302-1", "mirror_of amazon:302-1")


def test_a_masked_buyer_is_matched_on_the_ship_to_postcode_and_city(wh: Warehouse) -> None:
    _load(wh, [_purchase("amazon", "eu-de", "302-1", email=None, ship_name=None, pii_masked=True),
               _purchase("shopify", "main", "5001", created_at=T0 + timedelta(hours=2))])
    assert resolve_mirrors(wh.con) == 1
    assert "buyer (ship-to postcode and city, buyer masked)" in _evidence(wh)["shopify:main:5001"][1]


def test_what_is_not_the_same_purchase_stays_an_order_of_its_own(wh: Warehouse) -> None:
    copy = "shopify:main:5001"
    cases: list[tuple[dict, dict[str, list[tuple[str, int]]] | None]] = [
        ({"total": Decimal("59.91")}, None),  # another amount
        ({"currency": "USD"}, None),  # another currency
        ({}, {copy: [("MUG-1", 1), ("TEA-9", 1)]}),  # another quantity
        ({"email": "bob@example.com", "ship_name": "Bob Lee"}, None),  # another buyer
        ({"created_at": T0 + timedelta(hours=73)}, None),  # outside the window
        ({"created_at": T0 - timedelta(minutes=5)}, None),  # before the only candidate: it is the original
    ]
    for change, skus in cases:
        wh.con.execute("DELETE FROM order_lines")
        wh.con.execute("DELETE FROM orders")
        _load(wh, [_purchase("amazon", "eu-de", "302-1"),
                   _purchase("shopify", "main", "5001", **{"created_at": T0 + timedelta(minutes=12), **change})],
              skus)
        flagged = {k: v for k, v in _evidence(wh).items() if v[0]} if resolve_mirrors(wh.con) else {}
        if change.get("created_at") == T0 - timedelta(minutes=5):
            # The Amazon order is then the later one: it "mirrors" the shop order, which is still one purchase.
            assert set(flagged) == {"amazon:eu-de:302-1"}
        else:
            assert flagged == {}, change


def test_same_channel_repeats_and_second_copies_are_not_mirrors(wh: Warehouse) -> None:
    _load(wh, [_purchase("amazon", "eu-de", "302-1"),
               _purchase("amazon", "eu-de", "302-2", created_at=T0 + timedelta(minutes=3)),  # a repeat purchase
               _purchase("shopify", "main", "5001", created_at=T0 + timedelta(minutes=12)),
               _purchase("shopify", "main", "5002", created_at=T0 + timedelta(minutes=40))])
    assert resolve_mirrors(wh.con) == 2
    flagged = {k: v[0] for k, v in _evidence(wh).items() if v[0]}
    # Each copy takes the closest earlier original of another channel, each original one copy per channel.
    assert flagged == {"shopify:main:5001": "amazon:eu-de:302-2", "shopify:main:5002": "amazon:eu-de:302-1"}
