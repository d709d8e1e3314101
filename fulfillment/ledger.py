"""The export ledger (warehouse ``export_ledger``): which order went out in which batch, so none ships twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb


def record(
    con: duckdb.DuckDBPyConnection,
    order_ids: Sequence[str],
    batch_id: str,
    exported_at: datetime,
    target: str,
) -> int:
    """Record that ``order_ids`` went out in ``batch_id``, in one statement (all or nothing).

    An order already in the ledger keeps its first entry: recording a batch again (a crash
    reconcile re-reading its manifest) changes nothing.

    Args:
        con: a writable warehouse connection.
        order_ids: the batch's orders.
        batch_id: the export batch id (its outbox folder name).
        exported_at: when the batch was written (time-zone aware).
        target: where it went (``outbox``).

    Returns:
        The number of orders newly recorded.
    """
    if not order_ids:
        return 0
    if exported_at.tzinfo is None or exported_at.utcoffset() is None:
        raise ValueError("exported_at must be time-zone aware")
    result = con.execute(
        "INSERT INTO export_ledger (order_id, export_batch_id, exported_at, target) "
        "SELECT unnest($ids::VARCHAR[]), $batch, $at, $target ON CONFLICT DO NOTHING",
        {"ids": list(order_ids), "batch": batch_id, "at": exported_at, "target": target},
    ).fetchall()
    return int(result[0][0]) if result else 0


def recorded_batches(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every batch id the ledger knows."""
    return {row[0] for row in con.execute("SELECT DISTINCT export_batch_id FROM export_ledger").fetchall()}


def exported(con: duckdb.DuckDBPyConnection, order_ids: Sequence[str]) -> set[str]:
    """Those of ``order_ids`` that are already in the ledger."""
    if not order_ids:
        return set()
    rows = con.execute(
        "SELECT order_id FROM export_ledger WHERE order_id IN (SELECT unnest($ids::VARCHAR[]))",
        {"ids": list(order_ids)},
    ).fetchall()
    return {row[0] for row in rows}
