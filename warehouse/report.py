"""The daily report for the CEO: a DuckDB file any BI tool opens and an offline HTML page, published atomically."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import altair as alt
import duckdb
import jinja2
import vl_convert

from orderhub import clock
from orderhub.config import Settings

WINDOW_DAYS = 30  # the trend charts and "last 30 days" figures
TOP_CUSTOMERS = 20

# What counts as revenue, everywhere in the report: originals only (a mirror counts once, as its
# original) and never cancelled orders; money in the base currency (total_base).
ELIGIBLE = "duplicate_of IS NULL AND status IS DISTINCT FROM 'cancelled'"
REVENUE_RULE = (
    "revenue = sum of total_base (base currency) over orders with duplicate_of IS NULL "
    "and status <> 'cancelled', by order creation day in the report time zone"
)
_LOCAL_DAY = "(created_at AT TIME ZONE $tz)::DATE"
_OPEN = "('pending', 'unfulfilled', 'partially_fulfilled')"

# One CREATE TABLE AS per summary table, run against the warehouse with the new report file
# attached as {r}. Parameters: $day (local DATE), $start/$end (that day in UTC, end exclusive),
# $window_start (local DATE), $tz, $base, $now, $rule.
_TABLES: dict[str, str] = {
    "sales_by_day": f"""
        SELECT {_LOCAL_DAY} AS day, channel, store,
               count(*)::INTEGER AS orders,
               count(total_base)::INTEGER AS priced_orders,
               coalesce(sum(total_base), 0)::DECIMAL(18, 4) AS revenue_base,
               coalesce(sum(u.units), 0)::BIGINT AS units,
               $base AS currency
        FROM orders
        LEFT JOIN (SELECT order_id, sum(quantity) AS units FROM order_lines GROUP BY order_id) u USING (order_id)
        WHERE {ELIGIBLE} AND created_at < $end
        GROUP BY ALL ORDER BY day, channel, store
    """,
    "order_status": f"""
        SELECT channel, status, payment_status,
               count(*)::INTEGER AS orders,
               count(*) FILTER (WHERE {_LOCAL_DAY} >= $window_start)::INTEGER AS orders_last_{WINDOW_DAYS}_days,
               count(*) FILTER (WHERE created_at >= $start)::INTEGER AS orders_on_day,
               coalesce(sum(total_base), 0)::DECIMAL(18, 4) AS total_base
        FROM orders
        WHERE duplicate_of IS NULL AND created_at < $end
        GROUP BY ALL ORDER BY ALL
    """,
    "top_customers": f"""
        WITH spend AS (
            SELECT customer_id, count(*)::INTEGER AS orders,
                   coalesce(sum(total_base), 0)::DECIMAL(18, 4) AS revenue_base,
                   min(created_at) AS first_order_at, max(created_at) AS last_order_at
            FROM orders
            WHERE {ELIGIBLE} AND created_at < $end AND customer_id IS NOT NULL
            GROUP BY customer_id
        )
        SELECT row_number() OVER (ORDER BY s.revenue_base DESC, s.orders DESC, s.customer_id)::INTEGER AS rank,
               s.customer_id, c.name, c.email, c.country, s.orders, s.revenue_base,
               s.first_order_at, s.last_order_at, coalesce(c.vip, false) AS vip,
               coalesce(c.at_risk, false) AS at_risk, c.tags
        FROM spend s LEFT JOIN customers c USING (customer_id)
        QUALIFY rank <= {TOP_CUSTOMERS}
        ORDER BY rank
    """,
    "customer_segments": f"""
        SELECT 'customers' AS segment, count(*)::INTEGER AS customers
            FROM customers WHERE first_order_at < $end
        UNION ALL SELECT 'vip', count(*)::INTEGER FROM customers WHERE vip
        UNION ALL SELECT 'at_risk', count(*)::INTEGER FROM customers WHERE at_risk
        UNION ALL SELECT 'new_on_day', count(*)::INTEGER
            FROM customers WHERE first_order_at >= $start AND first_order_at < $end
        UNION ALL SELECT 'active_on_day', count(DISTINCT customer_id)::INTEGER
            FROM orders WHERE {ELIGIBLE} AND created_at >= $start AND created_at < $end
    """,
    # A record with several problems counts under each of its reasons.
    "quarantine_by_reason": """
        SELECT channel, store, trim(part) AS reason,
               count(*)::INTEGER AS rows, sum(records)::BIGINT AS records,
               count(*) FILTER (WHERE landed_at >= $start)::INTEGER AS rows_on_day,
               coalesce(sum(records) FILTER (WHERE landed_at >= $start), 0)::BIGINT AS records_on_day
        FROM (SELECT *, unnest(string_split(reason, '; ')) AS part FROM quarantine
              WHERE coalesce(landed_at, quarantined_at) < $end)
        GROUP BY ALL ORDER BY records DESC, channel, store, reason
    """,
    "exports": """
        SELECT (exported_at AT TIME ZONE $tz)::DATE AS day, target,
               count(*)::INTEGER AS orders, count(DISTINCT export_batch_id)::INTEGER AS batches
        FROM export_ledger WHERE exported_at < $end
        GROUP BY ALL ORDER BY day, target
    """,
    "headline": f"""
        WITH d AS (SELECT * FROM {{r}}.sales_by_day)
        SELECT $day::DATE AS day, $base AS currency,
          (SELECT coalesce(sum(revenue_base), 0) FROM d WHERE day = $day)::DECIMAL(18, 4) AS revenue_base,
          (SELECT coalesce(sum(orders), 0) FROM d WHERE day = $day)::INTEGER AS orders,
          (SELECT coalesce(sum(priced_orders), 0) FROM d WHERE day = $day)::INTEGER AS priced_orders,
          (SELECT coalesce(sum(units), 0) FROM d WHERE day = $day)::BIGINT AS units,
          (SELECT coalesce(sum(revenue_base), 0) FROM d WHERE day = $day::DATE - 1)::DECIMAL(18, 4)
              AS revenue_prev_day,
          (SELECT coalesce(sum(revenue_base), 0) / 7 FROM d
              WHERE day BETWEEN $day::DATE - 7 AND $day::DATE - 1)::DECIMAL(18, 4) AS revenue_avg_prev_7_days,
          (SELECT coalesce(sum(revenue_base), 0) FROM d
              WHERE day >= date_trunc('month', $day::DATE) AND day <= $day)::DECIMAL(18, 4) AS revenue_month_to_date,
          (SELECT coalesce(sum(orders), 0) FROM d
              WHERE day >= date_trunc('month', $day::DATE) AND day <= $day)::INTEGER AS orders_month_to_date,
          (SELECT coalesce(sum(revenue_base), 0) FROM d
              WHERE day >= $window_start AND day <= $day)::DECIMAL(18, 4) AS revenue_last_{WINDOW_DAYS}_days,
          (SELECT count(*) FROM orders WHERE duplicate_of IS NULL AND status = 'cancelled'
              AND created_at >= $start AND created_at < $end)::INTEGER AS cancelled_on_day,
          (SELECT count(*) FROM orders WHERE duplicate_of IS NOT NULL
              AND created_at >= $start AND created_at < $end)::INTEGER AS mirrors_on_day,
          (SELECT customers FROM {{r}}.customer_segments WHERE segment = 'new_on_day') AS new_customers,
          (SELECT customers FROM {{r}}.customer_segments WHERE segment = 'active_on_day') AS active_customers,
          (SELECT customers FROM {{r}}.customer_segments WHERE segment = 'vip') AS vip_customers,
          (SELECT customers FROM {{r}}.customer_segments WHERE segment = 'at_risk') AS at_risk_customers,
          (SELECT coalesce(sum(records), 0) FROM quarantine
              WHERE landed_at >= $start AND landed_at < $end)::BIGINT AS quarantined_on_day,
          (SELECT count(*) FROM export_ledger
              WHERE exported_at >= $start AND exported_at < $end)::INTEGER AS exported_on_day,
          (SELECT count(*) FROM orders o WHERE {ELIGIBLE} AND o.created_at < $end
              AND o.status IN ('unfulfilled', 'partially_fulfilled')
              AND o.fulfilled_by IS DISTINCT FROM 'marketplace'
              AND NOT EXISTS (SELECT 1 FROM export_ledger x WHERE x.order_id = o.order_id))::INTEGER
              AS awaiting_export,
          (SELECT count(*) FROM orders WHERE duplicate_of IS NULL AND status IN {_OPEN}
              AND fulfilled_by IS DISTINCT FROM 'marketplace' AND created_at < $end
              AND ship_by < $end)::INTEGER AS past_ship_by
    """,
    "report_info": """
        SELECT $day::DATE AS day, $tz AS timezone, $base AS base_currency, $now::TIMESTAMPTZ AS generated_at,
               $start::TIMESTAMPTZ AS day_start, $end::TIMESTAMPTZ AS day_end,
               $window_start::DATE AS window_start,
               (SELECT count(*) FROM orders WHERE created_at < $end)::BIGINT AS orders_in_warehouse,
               $rule AS revenue_rule
    """,
}


@dataclass(frozen=True)
class ReportPaths:
    """The published report files.

    Attributes:
        duckdb: ``reports/daily/YYYY-MM-DD.duckdb``.
        html: ``reports/daily/YYYY-MM-DD.html``.
        headline: the headline figures (as in the report's ``headline`` table), for logs and the CLI.
    """

    duckdb: Path
    html: Path
    headline: dict[str, Any] = field(default_factory=dict)


def day_bounds(day: date, settings: Settings) -> tuple[datetime, datetime]:
    """The UTC instants where ``day`` starts and ends (exclusive) in the configured time zone."""
    zone = settings.zone
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def publish_daily_report(
    con: duckdb.DuckDBPyConnection, reports_dir: Path, day: date, settings: Settings
) -> ReportPaths:
    """Build and publish the report of ``day`` as ``reports_dir/daily/YYYY-MM-DD.{duckdb,html}``.

    The DuckDB file holds the summary tables (``headline``, ``sales_by_day``, ``order_status``,
    ``top_customers``, ``customer_segments``, ``quarantine_by_reason``, ``exports``,
    ``report_info``), made by ``ATTACH`` + ``CREATE TABLE AS`` straight from the warehouse. The
    HTML page shows the headline figures and charts rendered to inline SVG, with no script or
    network access. Both are written under temporary names in the same folder and renamed into
    place, so a reader sees the old report or the new one, never half of one; a re-run for the
    same day replaces the files the same way.

    Revenue counts originals only (``duplicate_of IS NULL``), never cancelled orders, in the base
    currency (``total_base``); orders created after ``day`` are left out, so a re-run of a past
    day shows that day (with the orders' current state).

    Args:
        con: a warehouse connection (the writer's, or a read-only one).
        reports_dir: the reports folder (``settings.reports_dir``).
        day: the report day in the configured time zone.
        settings: base currency and time zone.

    Returns:
        The paths of the published files and the headline figures.
    """
    daily = Path(reports_dir) / "daily"
    daily.mkdir(parents=True, exist_ok=True)
    start, end = day_bounds(day, settings)
    params = {
        "day": day,
        "start": start,
        "end": end,
        "window_start": day - timedelta(days=WINDOW_DAYS - 1),
        "tz": settings.timezone,
        "base": settings.base_currency,
        "now": clock.now(),
        "rule": REVENUE_RULE,
    }
    token = secrets.token_hex(6)
    final_db, final_html = daily / f"{day.isoformat()}.duckdb", daily / f"{day.isoformat()}.html"
    tmp_db = daily / f".{final_db.name}.{token}.tmp"
    tmp_html = daily / f".{final_html.name}.{token}.tmp"
    try:
        with _attached(con, tmp_db, f"report_{token}") as alias:
            for name, sql in _TABLES.items():
                con.execute(f"CREATE TABLE {alias}.{name} AS {sql.format(r=alias)}", _used(sql, params))
            data = _page_data(con, alias, params)
        html = _render(data, settings)
        _write_synced(tmp_html, html.encode("utf-8"))
        _fsync(tmp_db)
        os.replace(tmp_db, final_db)
        os.replace(tmp_html, final_html)
        _fsync(daily)
    except BaseException:
        for leftover in (tmp_db, tmp_html, tmp_db.with_name(tmp_db.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    return ReportPaths(duckdb=final_db, html=final_html, headline=data["headline"])


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    # DuckDB rejects named parameters a statement does not use.
    return {k: v for k, v in params.items() if f"${k}" in sql}


@contextmanager
def _attached(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> Iterator[str]:
    # READ_WRITE explicitly: a read-only warehouse connection attaches read-only by default.
    quoted = str(path).replace("'", "''")
    con.execute(f"ATTACH '{quoted}' AS {alias} (READ_WRITE)")
    try:
        yield alias
        # Fold the write-ahead log into the file: only the file itself is renamed into place.
        con.execute(f"CHECKPOINT {alias}")
    finally:
        con.execute(f"DETACH {alias}")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _page_data(con: duckdb.DuckDBPyConnection, r: str, params: dict[str, Any]) -> dict[str, Any]:
    day, window_start = params["day"], params["window_start"]
    return {
        "headline": _rows(con, f"SELECT * FROM {r}.headline")[0],
        "trend": _rows(
            con,
            f"SELECT day, channel, sum(revenue_base) AS revenue_base, sum(orders) AS orders "
            f"FROM {r}.sales_by_day WHERE day >= ? AND day <= ? GROUP BY ALL ORDER BY day, channel",
            [window_start, day],
        ),
        "by_store": _rows(
            con,
            f"SELECT channel, store, sum(orders) FILTER (WHERE day = ?) AS orders_on_day, "
            f"coalesce(sum(revenue_base) FILTER (WHERE day = ?), 0) AS revenue_on_day, "
            f"sum(orders) AS orders_window, sum(revenue_base) AS revenue_window "
            f"FROM {r}.sales_by_day WHERE day >= ? AND day <= ? GROUP BY ALL ORDER BY revenue_window DESC",
            [day, day, window_start, day],
        ),
        "status": _rows(
            con,
            f"SELECT status, sum(orders_last_{WINDOW_DAYS}_days) AS orders FROM {r}.order_status "
            f"GROUP BY status ORDER BY orders DESC",
        ),
        "top_customers": _rows(con, f"SELECT * FROM {r}.top_customers ORDER BY rank LIMIT 10"),
        "quarantine": _rows(
            con,
            f"SELECT reason, sum(records) AS records, sum(records_on_day) AS records_on_day "
            f"FROM {r}.quarantine_by_reason GROUP BY reason ORDER BY records_on_day DESC, records DESC LIMIT 10",
        ),
        "exports": _rows(
            con,
            f"SELECT * FROM {r}.exports WHERE day >= ? AND day <= ? ORDER BY day DESC",
            [window_start, day],
        ),
        "info": _rows(con, f"SELECT * FROM {r}.report_info")[0],
        "days": [window_start + timedelta(days=i) for i in range((day - window_start).days + 1)],
    }


# -- the HTML page ------------------------------------------------------------------------------
def _svg(chart: alt.TopLevelMixin) -> str:
    # No base URL is allowed: the spec carries its data inline, and nothing may be fetched.
    return str(vl_convert.vegalite_to_svg(chart.to_dict(), allowed_base_urls=[]))


def _charts(data: dict[str, Any], currency: str) -> dict[str, str]:
    days = [d.isoformat() for d in data["days"]]
    trend = [
        {"day": row["day"].isoformat(), "channel": row["channel"], "revenue": float(row["revenue_base"])}
        for row in data["trend"]
    ]  # float only to draw: every figure printed on the page is the exact Decimal
    revenue = (
        alt.Chart(alt.Data(values=trend))
        .mark_bar()
        .encode(
            x=alt.X(
                "day:O",
                title=None,
                scale=alt.Scale(domain=days),
                axis=alt.Axis(labelAngle=-45, labelExpr="slice(datum.value, 5)"),
            ),
            y=alt.Y("sum(revenue):Q", title=f"Revenue ({currency})"),
            color=alt.Color("channel:N", title="Channel"),
            tooltip=["day:O", "channel:N", "sum(revenue):Q"],
        )
        .properties(width=720, height=260, title=f"Revenue per day and channel, last {len(days)} days")
    )
    status = [{"status": row["status"], "orders": int(row["orders"] or 0)} for row in data["status"]]
    statuses = (
        alt.Chart(alt.Data(values=status))
        .mark_bar()
        .encode(
            y=alt.Y("status:N", title=None, sort="-x"),
            x=alt.X("orders:Q", title="Orders", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color("status:N", legend=None),
        )
        .properties(width=720, height=140, title=f"Orders by status, last {len(days)} days (created)")
    )
    return {"revenue": _svg(revenue), "status": _svg(statuses)}


def _money(value: Decimal | None) -> str:
    if value is None:
        return "–"
    return f"{Decimal(value).quantize(Decimal('0.01')):,}"


def _change(now: Decimal | None, before: Decimal | None) -> str:
    if not before or now is None:
        return "–"
    pct = (Decimal(now) - Decimal(before)) / Decimal(before) * 100
    return f"{pct:+.1f} %"


def _environment(settings: Settings) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("warehouse", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["money"] = _money
    env.filters["local"] = lambda value, fmt="%Y-%m-%d %H:%M": value.astimezone(settings.zone).strftime(fmt)
    return env


def _render(data: dict[str, Any], settings: Settings) -> str:
    head = data["headline"]
    aov = head["revenue_base"] / head["priced_orders"] if head["priced_orders"] else None
    template = _environment(settings).get_template("daily_report.html.j2")
    return template.render(
        d=data,
        h=head,
        currency=settings.base_currency,
        timezone=settings.timezone,
        aov=aov,
        vs_prev_day=_change(head["revenue_base"], head["revenue_prev_day"]),
        vs_prev_7=_change(head["revenue_base"], head["revenue_avg_prev_7_days"]),
        charts=_charts(data, settings.base_currency),
        revenue_rule=REVENUE_RULE,
        window_days=WINDOW_DAYS,
    )


# -- durable files -----------------------------------------------------------------------------
def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
