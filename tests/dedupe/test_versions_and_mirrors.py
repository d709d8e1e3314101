"""Order versions (latest wins) and cross-channel mirrors (count once, whatever lands first)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from dedupe.mirrors import resolve_mirrors
from dedupe.versions import latest_lines, latest_versions
from tests.warehouse.factories import T0, line_rows, order_rows
from warehouse.db import Warehouse


def _flags(wh: Warehouse) -> dict[str, str | None]:
    return dict(wh.con.execute("SELECT order_id, duplicate_of FROM orders").fetchall())


def test_latest_version_by_updated_at_then_landed_at_then_batch_id() -> None:
    frame = order_rows(
        [
            {"channel": "amazon", "store": "us", "external_id": "A", "updated_at": T0, "batch_id": "b9"},
            {
                "channel": "amazon",
                "store": "us",
                "external_id": "A",
                "updated_at": T0 + timedelta(hours=1),
                "batch_id": "b1",
            },
            {
                "channel": "amazon",
                "store": "us",
                "external_id": "B",
                "updated_at": T0,
                "batch_id": "b2",
                "landed_at": T0 + timedelta(hours=1),
            },
            {"channel": "amazon", "store": "us", "external_id": "B", "updated_at": T0, "batch_id": "b3"},
            {"channel": "amazon", "store": "us", "external_id": "C", "updated_at": T0, "batch_id": "b4"},
            {"channel": "amazon", "store": "us", "external_id": "C", "updated_at": T0, "batch_id": "b5"},
            {"channel": "amazon", "store": "us", "external_id": "D", "updated_at": None, "batch_id": "b7"},
            {"channel": "amazon", "store": "us", "external_id": "D", "updated_at": T0, "batch_id": "b6"},
        ]
    )
    winners = dict(latest_versions(frame).select("external_id", "batch_id").iter_rows())
    assert winners == {"A": "b1", "B": "b2", "C": "b5", "D": "b6"}
    # Order of the input does not matter.
    assert dict(latest_versions(frame.reverse()).select("external_id", "batch_id").iter_rows()) == winners


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
