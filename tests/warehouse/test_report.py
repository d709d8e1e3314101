"""The daily report: DuckDB + HTML files, published atomically, revenue by the one rule."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from dedupe.identity import resolve_customers
from dedupe.mirrors import resolve_mirrors
from orderhub.config import Settings
from pipelines.schema import QUARANTINE_SCHEMA, conform
from tests.warehouse.factories import line_rows, order_rows
from warehouse.db import Warehouse
from warehouse.report import publish_daily_report

DAY = date(2026, 3, 10)
BERLIN = Settings(home=Path("/nonexistent"), timezone="Europe/Berlin", base_currency="EUR")


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


ROWS: list[dict[str, Any]] = [
    # On DAY (Berlin is UTC+1 in March before DST): 09:00 UTC and 22:30 UTC (= 23:30 local).
    {
        "channel": "amazon",
        "store": "us",
        "external_id": "111-1",
        "total": Decimal("19.99"),
        "currency": "USD",
        "total_base": Decimal("18.3908"),
        "created_at": _at(DAY, 9),
        "email": "a@example.com",
    },
    {
        "channel": "shopify",
        "store": "main",
        "external_id": "1",
        "total": Decimal("0.10"),
        "created_at": _at(DAY, 22, 30),
        "email": "a@example.com",
    },
    {
        "channel": "woocommerce",
        "store": "w",
        "external_id": "7",
        "total": Decimal("0.20"),
        "created_at": _at(DAY, 10),
        "email": "b@example.com",
    },
    # Excluded from revenue: a mirror, a cancelled order, and an order after DAY (23:30 UTC = next day local).
    {
        "channel": "shopify",
        "store": "main",
        "external_id": "2",
        "total": Decimal("19.99"),
        "created_at": _at(DAY, 9, 5),
        "mirror_of": "amazon:111-1",
    },
    {
        "channel": "woocommerce",
        "store": "w",
        "external_id": "8",
        "total": Decimal("500"),
        "status": "cancelled",
        "created_at": _at(DAY, 11),
    },
    {
        "channel": "woocommerce",
        "store": "w",
        "external_id": "9",
        "total": Decimal("700"),
        "created_at": _at(DAY, 23, 30),
    },
    # An order without a base amount counts as an order but not in revenue.
    {
        "channel": "amazon",
        "store": "us",
        "external_id": "111-2",
        "total": None,
        "total_base": None,
        "status": "pending",
        "created_at": _at(DAY, 12),
    },
    # Earlier days, for the trend.
    {
        "channel": "shopify",
        "store": "main",
        "external_id": "3",
        "total": Decimal("30"),
        "created_at": _at(DAY - timedelta(days=1), 12),
    },
    {
        "channel": "amazon",
        "store": "us",
        "external_id": "111-3",
        "total": Decimal("12.5"),
        "created_at": _at(DAY - timedelta(days=40), 12),
    },
]


def _eligible_revenue(until: datetime) -> Decimal:
    frame = order_rows(ROWS)
    eligible = frame.filter(
        pl.col("mirror_of").is_null() & (pl.col("status") != "cancelled") & (pl.col("created_at") < until)
    )
    return sum(eligible["total_base"].drop_nulls().to_list(), Decimal(0))


@pytest.fixture
def loaded(wh: Warehouse) -> Warehouse:
    orders = order_rows(ROWS)
    wh.merge_orders(orders, line_rows(orders, 2))
    resolve_mirrors(wh.con)
    resolve_customers(wh.con)
    wh.add_quarantine(
        conform(
            pl.DataFrame(
                {
                    "channel": ["woocommerce"],
                    "store": ["w"],
                    "external_id": ["10"],
                    "reason": ["total '12,34' is not a number; created_at missing"],
                    "payload": ["{}"],
                    "landed_at": [_at(DAY, 8)],
                    "batch_id": ["b1"],
                    "records": [1],
                }
            ),
            QUARANTINE_SCHEMA,
        )
    )
    wh.con.execute(
        "INSERT INTO export_ledger VALUES ('woocommerce:w:7', 'x1', ?, 'outbox'), ('shopify:main:1', 'x1', ?, 'outbox')",
        [_at(DAY, 13), _at(DAY, 13)],
    )
    return wh


def test_publishes_both_files_and_the_revenue_follows_the_rule(loaded: Warehouse, tmp_path: Path) -> None:
    paths = publish_daily_report(loaded.con, tmp_path / "reports", DAY, BERLIN)
    daily = tmp_path / "reports" / "daily"
    assert paths.duckdb == daily / "2026-03-10.duckdb"
    assert paths.html == daily / "2026-03-10.html"
    assert sorted(p.name for p in daily.iterdir()) == ["2026-03-10.duckdb", "2026-03-10.html"]  # no temp left

    html = paths.html.read_text(encoding="utf-8")
    assert "<svg" in html
    assert not re.search(r"<script|<link|src=\"http", html)
    assert "18.69" in html  # 18.3908 + 0.10 + 0.20: 22:30 UTC is 23:30 in Berlin, still DAY

    end_of_day = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # midnight in Berlin
    with duckdb.connect(str(paths.duckdb), read_only=True) as report:
        total = report.execute("SELECT sum(revenue_base) FROM sales_by_day").fetchall()[0][0]
        assert total == _eligible_revenue(end_of_day)
        head = report.execute(
            "SELECT revenue_base, orders, priced_orders, cancelled_on_day, mirrors_on_day, quarantined_on_day, "
            "exported_on_day, currency FROM headline"
        ).fetchall()[0]
        assert head == (Decimal("18.6908"), 4, 3, 1, 1, 1, 2, "EUR")
        reasons = dict(report.execute("SELECT reason, records FROM quarantine_by_reason").fetchall())
        assert reasons == {"total '12,34' is not a number": 1, "created_at missing": 1}
        tables = {r[0] for r in report.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert {
            "headline",
            "sales_by_day",
            "order_status",
            "top_customers",
            "customer_segments",
            "quarantine_by_reason",
            "exports",
            "report_info",
        } <= tables
        top = report.execute("SELECT orders, revenue_base, email FROM top_customers ORDER BY rank").fetchall()
        # a@example.com bought on Amazon and Shopify; its mirror and the order after DAY do not count.
        assert top[:2] == [(1, Decimal("30"), None), (2, Decimal("18.4908"), "a@example.com")]
    assert paths.headline["revenue_base"] == Decimal("18.6908")


def test_a_rerun_replaces_the_files_atomically(loaded: Warehouse, tmp_path: Path) -> None:
    first = publish_daily_report(loaded.con, tmp_path, DAY, BERLIN)
    before = (os.stat(first.duckdb).st_ino, os.stat(first.html).st_ino)
    with open(first.html, "rb") as old_reader:  # a reader holding the old page keeps reading it whole
        late = order_rows(
            [
                {
                    "channel": "shopify",
                    "store": "main",
                    "external_id": "99",
                    "total": Decimal("1"),
                    "created_at": _at(DAY, 15),
                }
            ]
        )
        loaded.merge_orders(late, line_rows(late))
        second = publish_daily_report(loaded.con, tmp_path, DAY, BERLIN)
        assert b"</html>" in old_reader.read()
    after = (os.stat(second.duckdb).st_ino, os.stat(second.html).st_ino)
    assert before[0] != after[0] and before[1] != after[1]  # new files renamed in, never rewritten in place
    assert second.headline["revenue_base"] == first.headline["revenue_base"] + 1


def test_a_read_only_connection_can_publish(loaded: Warehouse, tmp_path: Path) -> None:
    path = loaded.path
    loaded.close()
    with Warehouse.read_only(path) as reader:
        paths = publish_daily_report(reader.con, tmp_path, DAY, BERLIN)
    assert paths.duckdb.exists() and paths.html.exists()


def test_an_empty_warehouse_still_gives_a_report(wh: Warehouse, tmp_path: Path) -> None:
    paths = publish_daily_report(wh.con, tmp_path, DAY, Settings(home=tmp_path))
    assert paths.headline["revenue_base"] == 0
    assert "<svg" in paths.html.read_text(encoding="utf-8")
