"""Fixtures of the CRM tests: a CRM store in a temp SQLite file and a temp DuckDB warehouse."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from crm import schema
from crm.store import CrmStore
from pipelines.schema import LINE_SCHEMA, ORDER_SCHEMA

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

# The warehouse tables this package reads and writes, as warehouse/migrations declares them
# (written here so these tests do not depend on the warehouse module).
_DUCK_TYPES = {pl.String: "VARCHAR", pl.Int32: "INTEGER", pl.Boolean: "BOOLEAN"}


def _duck_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Decimal):
        return "DECIMAL(18, 4)"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ"
    return _DUCK_TYPES[dtype.base_type()]


def _table_ddl(name: str, schema: dict[str, pl.DataType], pk: str) -> str:
    cols = ",\n".join(f"{col} {_duck_type(dtype)}" for col, dtype in schema.items())
    return f"CREATE TABLE {name} ({cols}, PRIMARY KEY ({pk}))"


WAREHOUSE_DDL = [
    _table_ddl("orders", ORDER_SCHEMA, "order_id"),
    _table_ddl("order_lines", LINE_SCHEMA, "order_id, line_no"),
    """CREATE TABLE customers (
        customer_id VARCHAR PRIMARY KEY, name VARCHAR, email VARCHAR, phone VARCHAR, country VARCHAR,
        first_order_at TIMESTAMPTZ, last_order_at TIMESTAMPTZ, orders_count INTEGER NOT NULL DEFAULT 0,
        total_spent_base DECIMAL(18, 4) NOT NULL DEFAULT 0, tags VARCHAR[] NOT NULL DEFAULT [],
        vip BOOLEAN NOT NULL DEFAULT false, at_risk BOOLEAN NOT NULL DEFAULT false, updated_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE customer_identities (
        identity_key VARCHAR PRIMARY KEY, channel VARCHAR NOT NULL, store VARCHAR NOT NULL,
        channel_customer_key VARCHAR, email VARCHAR, phone VARCHAR, name VARCHAR, line1 VARCHAR, city VARCHAR,
        postal_code VARCHAR, country VARCHAR, customer_id VARCHAR NOT NULL, rule VARCHAR NOT NULL, score DOUBLE,
        linked_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE export_ledger (order_id VARCHAR PRIMARY KEY, export_batch_id VARCHAR NOT NULL,
        exported_at TIMESTAMPTZ NOT NULL, target VARCHAR NOT NULL)""",
]


# Set to a PostgreSQL URL (e.g. postgresql+psycopg://user@/orderhub_test?host=/run/postgresql) to run
# these tests against PostgreSQL instead of SQLite; the database's CRM tables are dropped first.
CRM_URL = os.environ.get("ORDERHUB_TEST_CRM_URL")


def crm_url(tmp_path: Path) -> str:
    """The URL of a fresh, empty CRM store for one test."""
    if not CRM_URL:
        return f"sqlite:///{tmp_path / 'crm.sqlite'}"
    store = CrmStore(CRM_URL)
    schema.metadata.drop_all(store.engine)
    store.close()
    return CRM_URL


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[CrmStore]:
    """A created CRM store in a temp SQLite file (or the database of ORDERHUB_TEST_CRM_URL)."""
    store = CrmStore(crm_url(tmp_path))
    store.create_all()
    yield store
    store.close()


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A temp DuckDB warehouse with the tables the CRM reads."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    for ddl in WAREHOUSE_DDL:
        con.execute(ddl)
    yield con
    con.close()


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert dict rows (all with the same keys) into a warehouse table."""
    cols = list(rows[0])
    marks = ", ".join("?" for _ in cols)
    con.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", [[r[c] for c in cols] for r in rows])


@pytest.fixture
def wh_insert(wh: duckdb.DuckDBPyConnection) -> Callable[[str, list[dict[str, Any]]], None]:
    """Insert dict rows into the temp warehouse."""
    return lambda table, rows: insert_rows(wh, table, rows)


def order(order_id: str, customer_id: str | None, created_at: datetime, **over: Any) -> dict[str, Any]:
    """A CRM/warehouse order row with the columns the CRM keeps."""
    channel, store, external_id = order_id.split(":")
    row: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": customer_id,
        "channel": channel,
        "store": store,
        "external_id": external_id,
        "order_number": f"#{external_id}",
        "created_at": created_at,
        "updated_at": created_at,
        "status": "fulfilled",
        "payment_status": "paid",
        "currency": "USD",
        "total": Decimal("10.0000"),
        "total_base": Decimal("10.0000"),
        "duplicate_of": None,
        "ship_city": "Springfield",
        "ship_country": "US",
    }
    row.update(over)
    return row


ORDER_FRAME_SCHEMA: dict[str, Any] = {
    "order_id": pl.String,
    "customer_id": pl.String,
    "channel": pl.String,
    "store": pl.String,
    "external_id": pl.String,
    "order_number": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "updated_at": pl.Datetime("us", "UTC"),
    "status": pl.String,
    "payment_status": pl.String,
    "currency": pl.String,
    "total": pl.Decimal(18, 4),
    "total_base": pl.Decimal(18, 4),
    "duplicate_of": pl.String,
    "ship_city": pl.String,
    "ship_country": pl.String,
}


@pytest.fixture
def order_frame() -> Callable[[list[dict[str, Any]]], pl.DataFrame]:
    """Build a typed polars frame of order rows (see :func:`order`)."""
    return lambda rows: pl.DataFrame(rows, schema=ORDER_FRAME_SCHEMA)


@pytest.fixture
def make_order() -> Callable[..., dict[str, Any]]:
    """The :func:`order` row factory."""
    return order
