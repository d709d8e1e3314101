"""Fixtures of the fulfillment tests: a temp DuckDB warehouse with orders, lines and the export ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from orderhub.config import ExportConfig, Settings
from pipelines.schema import LINE_SCHEMA, ORDER_SCHEMA

T0 = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)


def _duck_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Decimal):
        return "DECIMAL(18, 4)"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ"
    return {pl.String: "VARCHAR", pl.Int32: "INTEGER", pl.Boolean: "BOOLEAN"}[dtype.base_type()]


def _ddl(name: str, schema: dict[str, pl.DataType], pk: str) -> str:
    cols = ", ".join(f"{col} {_duck_type(dtype)}" for col, dtype in schema.items())
    return f"CREATE TABLE {name} ({cols}, PRIMARY KEY ({pk}))"


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A temp warehouse: orders and order_lines (the canonical schemas) and export_ledger."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute(_ddl("orders", ORDER_SCHEMA, "order_id"))
    con.execute(_ddl("order_lines", LINE_SCHEMA, "order_id, line_no"))
    con.execute(
        "CREATE TABLE export_ledger (order_id VARCHAR PRIMARY KEY, export_batch_id VARCHAR NOT NULL, "
        "exported_at TIMESTAMPTZ NOT NULL, target VARCHAR NOT NULL)"
    )
    yield con
    con.close()


def _insert(con: duckdb.DuckDBPyConnection, table: str, row: dict[str, Any]) -> None:
    cols = list(row)
    con.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})", list(row.values()))


@pytest.fixture
def add_order(wh: duckdb.DuckDBPyConnection) -> Callable[..., str]:
    """Insert an order (eligible for export unless overridden) with ``lines`` line items; returns its id."""

    def add(external_id: str, *, lines: int = 1, channel: str = "shopify", store: str = "shop1", **over: Any) -> str:
        order_id = f"{channel}:{store}:{external_id}"
        row: dict[str, Any] = {
            "order_id": order_id, "channel": channel, "store": store, "external_id": external_id,
            "order_number": f"#{external_id}", "created_at": T0, "updated_at": T0,
            "status": "unfulfilled", "payment_status": "paid", "currency": "EUR",
            "total": Decimal("59.9000"), "total_base": Decimal("64.1300"), "customer_id": "c1",
            "email": "zoe@example.com", "phone": "+4930123456", "buyer_name": "Zoë Ångström",
            "ship_name": "Zoë Ångström", "ship_line1": "Müllerstraße 12", "ship_line2": None,
            "ship_city": "Köln", "ship_region": "NW", "ship_postal_code": "50667", "ship_country": "DE",
            "fulfilled_by": "merchant", "ship_by": T0 + timedelta(days=2), "duplicate_of": None,
            "landed_at": T0,
        }  # fmt: skip
        row.update(over)
        _insert(wh, "orders", row)
        for n in range(1, lines + 1):
            _insert(wh, "order_lines", {
                "order_id": order_id, "line_no": n, "sku": f"SKU-{n}", "master_sku": f"M-{n}",
                "title": f'Kaffeebohnen "Crème" №{n}, 250 g', "quantity": n,
                "unit_price": Decimal("19.9500"), "discount": Decimal("0"), "tax": Decimal("3.1900"),
                "total": Decimal("19.9500") * n,
            })  # fmt: skip
        return order_id

    return add


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings of a temp home (both export formats, a large batch size)."""
    return Settings(home=tmp_path, timezone="Europe/Berlin", export=ExportConfig())
