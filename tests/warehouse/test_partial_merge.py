"""Warehouse merge of partial versions (Amazon order reports) against stored full and partial rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

from dedupe.versions import IDENTITY_FROM_FULL
from tests.warehouse.factories import T0, line_rows, order_rows
from warehouse.db import MergeStats, Warehouse

FULL_IDENTITY: dict[str, Any] = {
    "email": "b1x7k2q@marketplace.amazon.com", "phone": "+12065550101", "buyer_name": "Zoë O’Brien",
    "pii_masked": False, "ship_name": "Zoë O’Brien", "ship_line1": "1 Pike St", "ship_line2": "Apt 2",
    "channel_customer_key": "ck-1", "ship_by": T0 + timedelta(days=3), "related_order": "amazon:us:111-0000000-0000000",
    "mirror_of": "amazon:111-0000001-0000001",
}
NEWER_IDENTITY = FULL_IDENTITY | {"email": "new@marketplace.amazon.com", "ship_line1": "2 Pike St"}
REPORT_IDENTITY: dict[str, Any] = dict.fromkeys(IDENTITY_FROM_FULL) | {"pii_masked": True, "ship_by": T0 + timedelta(days=2)}


def version(batch: str, hours: float, *, partial: bool, identity: dict[str, Any] | None = None,
            **fields: Any) -> dict[str, Any]:
    base = REPORT_IDENTITY if partial else FULL_IDENTITY
    return {"channel": "amazon", "store": "us", "external_id": "111-0000001-0000001", "batch_id": batch,
            "updated_at": T0 + timedelta(hours=hours), "landed_at": T0 + timedelta(hours=10 + int(batch[1:])),
            "partial": partial, "record_hash": f"h-{batch}", **(identity or base), **fields}


def merge(wh: Warehouse, *rows: dict[str, Any], lines: int = 1, sku: str = "SKU") -> MergeStats:
    frame = order_rows(list(rows))
    tagged = pl.concat([line_rows(frame[i: i + 1], lines, sku=f"{sku}-{r['batch_id']}")
                        .with_columns(pl.lit(r["batch_id"]).alias("batch_id")) for i, r in enumerate(rows)])
    return wh.merge_orders(frame, tagged)


def stored(wh: Warehouse) -> dict[str, Any]:
    frame = pl.DataFrame(wh.con.sql("SELECT * FROM orders"))
    assert frame.height == 1
    return frame.row(0, named=True)


def identity(row: dict[str, Any]) -> dict[str, Any]:
    return {c: row[c] for c in IDENTITY_FROM_FULL}


def skus(wh: Warehouse) -> set[str]:
    return {r[0] for r in wh.con.execute("SELECT sku FROM order_lines").fetchall()}


def test_migration_adds_partial_and_rows_loaded_before_are_full(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        merge(wh, version("b1", 1, partial=False) | {"partial": None})
        assert wh.con.execute("SELECT partial FROM orders").fetchall() == [(None,)]  # NULL counts as full
        wh.con.execute("ALTER TABLE orders DROP COLUMN partial")
        wh.con.execute("DELETE FROM schema_migrations WHERE version = 2")
    with Warehouse.open(tmp_path / "w.duckdb") as wh:  # migration 0002 runs again on a table without the column
        assert wh.con.execute("SELECT partial FROM orders").fetchall() == [(False,)]


def test_incoming_partial_never_replaces_a_stored_full_of_the_same_updated_at(wh: Warehouse) -> None:
    merge(wh, version("b1", 1, partial=False, status="unfulfilled"))
    stats = merge(wh, version("b2", 1, partial=True, status="fulfilled"), sku="REPORT")
    assert (stats.updated, stats.unchanged, stats.lines) == (0, 1, 0)
    row = stored(wh)
    assert (row["batch_id"], row["status"], row["partial"]) == ("b1", "unfulfilled", False)
    assert skus(wh) == {"SKU-b1"}


def test_incoming_full_replaces_a_stored_partial_of_the_same_updated_at(wh: Warehouse) -> None:
    merge(wh, version("b2", 1, partial=True, status="fulfilled"))
    earlier_landed = version("b1", 1, partial=False, status="fulfilled")  # landed before the report: still wins
    stats = merge(wh, earlier_landed, sku="API")
    assert (stats.updated, stats.unchanged) == (1, 0)
    row = stored(wh)
    assert (row["batch_id"], row["partial"]) == ("b1", False)
    assert identity(row) == FULL_IDENTITY
    assert skus(wh) == {"API-b1"}


def test_a_newer_partial_replaces_a_stored_full_but_keeps_its_identity(wh: Warehouse) -> None:
    merge(wh, version("b1", 1, partial=False, status="unfulfilled", ship_city="Seattle"))
    wh.con.execute("UPDATE orders SET customer_id = 'cus_1'")
    stats = merge(wh, version("b2", 2, partial=True, status="fulfilled", ship_city="Tacoma"), lines=2, sku="REPORT")
    assert (stats.updated, stats.lines) == (1, 2)
    row = stored(wh)
    assert (row["batch_id"], row["status"], row["ship_city"], row["partial"], row["customer_id"]) == (
        "b2", "fulfilled", "Tacoma", True, "cus_1")
    assert identity(row) == FULL_IDENTITY
    assert skus(wh) == {"REPORT-b2"}


def test_a_newer_partial_over_a_stored_partial_keeps_the_identity_it_carried(wh: Warehouse) -> None:
    merge(wh, version("b1", 1, partial=False))
    merge(wh, version("b2", 2, partial=True, status="unfulfilled"))
    stats = merge(wh, version("b3", 3, partial=True, status="fulfilled"), sku="REPORT")
    assert stats.updated == 1
    row = stored(wh)
    assert (row["batch_id"], row["status"], row["partial"]) == ("b3", "fulfilled", True)
    assert identity(row) == FULL_IDENTITY
    assert skus(wh) == {"REPORT-b3"}


def test_a_newer_partial_over_a_partial_without_identity_is_the_report_row(wh: Warehouse) -> None:
    merge(wh, version("b1", 1, partial=True))
    merge(wh, version("b2", 2, partial=True, status="fulfilled"))
    row = stored(wh)
    assert (row["batch_id"], row["status"]) == ("b2", "fulfilled")
    assert identity(row) == REPORT_IDENTITY


def test_a_full_version_in_the_same_input_newer_than_the_stored_one_gives_the_identity(wh: Warehouse) -> None:
    merge(wh, version("b1", 1, partial=False))
    stats = merge(wh, version("b2", 2, partial=False, identity=NEWER_IDENTITY), version("b3", 3, partial=True))
    assert (stats.updated, stats.superseded) == (1, 1)
    row = stored(wh)
    assert (row["batch_id"], row["partial"]) == ("b3", True)
    assert identity(row) == NEWER_IDENTITY
    # An input full version older than the stored row does not: the stored identity is the newer one.
    merge(wh, version("b4", 4, partial=False, identity=NEWER_IDENTITY | {"email": "newest@marketplace.amazon.com"}))
    stats = merge(wh, version("b5", 2.5, partial=False), version("b6", 5, partial=True))
    row = stored(wh)
    assert (row["batch_id"], row["email"]) == ("b6", "newest@marketplace.amazon.com")


def test_identical_partial_repull_changes_nothing_and_a_changed_one_landed_later_updates(wh: Warehouse) -> None:
    merge(wh, version("b1", 1, partial=True, status="unfulfilled"))
    assert merge(wh, version("b1", 1, partial=True, status="unfulfilled")).unchanged == 1
    stats = merge(wh, version("b2", 1, partial=True, status="fulfilled"))
    assert stats.updated == 1 and stored(wh)["status"] == "fulfilled"
