"""The run summary an operator reads after ``orderhub demo`` / ``orderhub run``."""

from __future__ import annotations

from typing import Any

import duckdb
from rich.console import Group
from rich.table import Table
from rich.text import Text

from orderhub.config import Settings
from orderhub.ops import paths


def figures(settings: Settings) -> dict[str, Any]:
    """Cumulative figures of this home, read from the warehouse (call only when no flow writes it)."""
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        per_store = con.execute(
            """
            select channel, store, sum(records), sum(loaded), sum(quarantined)
            from processed_batches group by all order by all
            """
        ).fetchall()
        orders = con.execute(
            "select count(*), count(*) filter (where duplicate_of is not null) from orders"
        ).fetchone()
        customers = con.execute(
            "select count(*), count(*) filter (where vip), count(*) filter (where at_risk) from customers"
        ).fetchone()
        exported = con.execute("select count(*) from export_ledger").fetchone()
    finally:
        con.close()
    assert orders is not None and customers is not None and exported is not None
    return {
        "stores": [
            {"channel": c, "store": s, "landed": int(landed), "loaded": int(loaded), "quarantined": int(q)}
            for c, s, landed, loaded, q in per_store
        ],
        "orders": orders[0],
        "mirrors": orders[1],
        "customers": customers[0],
        "vip": customers[1],
        "at_risk": customers[2],
        "exported": exported[0],
    }


def render_summary(settings: Settings, summary: Any = None) -> Group:
    """A Rich renderable: per-store counts, the headline figures, and where every store lives."""
    f = figures(settings)
    table = Table(title="orders by channel and store")
    for col in ("channel", "store", "landed", "loaded", "quarantined"):
        table.add_column(col, justify="right" if col in ("landed", "loaded", "quarantined") else "left")
    for row in f["stores"]:
        table.add_row(row["channel"], row["store"], str(row["landed"]), str(row["loaded"]), str(row["quarantined"]))
    table.add_row("all", "", *(str(sum(r[k] for r in f["stores"])) for k in ("landed", "loaded", "quarantined")),
                  style="bold")
    exported_now = getattr(getattr(summary, "export", None), "orders", None)
    lines = [
        f"orders in the warehouse: {f['orders']} ({f['mirrors']} cross-channel mirrors merged, counted once)",
        f"customers: {f['customers']}   VIP: {f['vip']}   at risk: {f['at_risk']}",
        f"orders exported to fulfillment: {f['exported']}"
        + (f" ({exported_now} in this run)" if exported_now is not None else ""),
        "",
        *(f"{name:10s} {path}" for name, path in paths(settings).items()),
    ]
    report = getattr(summary, "report", None)
    if report is not None:
        lines.append(f"{'report':10s} {getattr(report, 'html', report)}")
    return Group(table, Text("\n".join(lines)))
