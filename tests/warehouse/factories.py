"""Canonical frames built from a few fields, for the warehouse and dedupe tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import polars as pl

from pipelines.schema import LINE_SCHEMA, ORDER_SCHEMA, conform

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def order_rows(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """ORDER_SCHEMA frame; each row needs channel, store, external_id, the rest has defaults."""
    full = []
    for row in rows:
        item = {
            "created_at": T0,
            "updated_at": row.get("created_at", T0),
            "status": "unfulfilled",
            "payment_status": "paid",
            "currency": "USD",
            "total": Decimal("10"),
            "fulfilled_by": "merchant",
            "batch_id": "b1",
            "landed_at": T0,
            **row,
        }
        item.setdefault("order_id", f"{item['channel']}:{item['store']}:{item['external_id']}")
        item.setdefault("total_base", item["total"])
        item.setdefault("record_hash", hashlib.sha256(repr(sorted(item.items())).encode()).hexdigest())
        full.append(item)
    return conform(pl.DataFrame(full, schema_overrides=_overrides(full), strict=False), ORDER_SCHEMA)


def line_rows(orders: pl.DataFrame, per_order: int = 1, **extra: Any) -> pl.DataFrame:
    """LINE_SCHEMA frame with ``per_order`` lines for each order row, in frame order."""
    rows = [
        {
            "order_id": oid,
            "line_no": n,
            "sku": f"SKU-{n}",
            "quantity": 1,
            "unit_price": Decimal("5"),
            "total": Decimal("5"),
            **extra,
        }
        for oid in orders["order_id"].to_list()
        for n in range(1, per_order + 1)
    ]
    return (
        conform(pl.DataFrame(rows, strict=False), LINE_SCHEMA) if rows else pl.DataFrame(schema=LINE_SCHEMA)
    )


def _overrides(rows: list[dict[str, Any]]) -> dict[str, pl.DataType]:
    names = {k for row in rows for k in row}
    return {k: v for k, v in ORDER_SCHEMA.items() if k in names}
