"""Export batches for fulfillment: eligible orders to outbox files, each order exactly once.

A batch is ``outbox/YYYY-MM-DD/<batch_id>/`` (the day in the configured time zone) holding
``orders.csv`` (one row per line item), ``orders.jsonl`` (one object per order with its lines) and
``manifest.json``. Every file is written to a temp name, fsynced and renamed; the manifest comes
last, so **a consumer takes a batch only once its manifest exists**, and checks each file's sha256.

Exactly once, across crashes:

1. files, then the manifest, are written;
2. the batch's orders go into ``export_ledger`` in one statement.

A crash before (1) ends leaves a folder without a manifest: an aborted batch, deleted by the next
run, whose orders are still eligible and go out in a new batch. A crash between (1) and (2)
leaves a complete batch the ledger does not know: the next run records it from its manifest
*before* choosing orders, so they are not exported again. Export runs under the warehouse writer
lock (it writes the ledger), so no second exporter races it.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from fulfillment import ledger
from fulfillment.outbox import (
    MANIFEST,
    FileEntry,
    Manifest,
    batch_dirs,
    batch_id_for,
    make_batch_dir,
    remove_batch_dir,
    write_atomic,
)
from orderhub import clock
from orderhub.config import Settings

log = logging.getLogger(__name__)

CSV_COLUMNS = (
    "order_id", "order_number", "channel", "store", "created_at", "ship_by",
    "ship_name", "ship_line1", "ship_line2", "ship_city", "ship_region", "ship_postal_code", "ship_country",
    "line_no", "sku", "master_sku", "title", "quantity",
)  # fmt: skip

_ORDER_COLUMNS = (
    "order_id", "order_number", "channel", "store", "created_at", "ship_by",
    "ship_name", "ship_line1", "ship_line2", "ship_city", "ship_region", "ship_postal_code", "ship_country",
    "phone", "currency", "total",
)  # fmt: skip
_LINE_COLUMNS = ("line_no", "sku", "master_sku", "title", "quantity", "unit_price", "discount", "tax", "total")

# Eligible: paid, not yet shipped, shipped by us (never FBA/AFN), an original (a mirror is the same
# order seen twice), with something to ship, and not exported before. Most urgent first, so a
# backlog larger than one batch ships its oldest promises first.
_ELIGIBLE = """
    FROM orders o
    WHERE o.payment_status = 'paid'
      AND o.status = 'unfulfilled'
      AND o.fulfilled_by = 'merchant'
      AND o.duplicate_of IS NULL
      AND NOT EXISTS (SELECT 1 FROM export_ledger l WHERE l.order_id = o.order_id)
"""
_HAS_LINES = "EXISTS (SELECT 1 FROM order_lines li WHERE li.order_id = o.order_id)"


@dataclass(frozen=True)
class ExportBatch:
    """One batch written by this run.

    Attributes:
        batch_id: the batch id.
        path: its folder.
        order_ids: its orders, in file order.
        lines: its order lines.
        files: data file name → sha256.
    """

    batch_id: str
    path: Path
    order_ids: tuple[str, ...]
    lines: int
    files: dict[str, str]


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_orders` did.

    Attributes:
        batches: batches written now.
        orders: orders exported now (sum over batches).
        lines: order lines exported now.
        reconciled: orders of earlier complete batches that the ledger lacked (a crash), recorded now.
        aborted: batch folders without a manifest (a crash while writing), deleted now.
        held: eligible orders not exported because they have no line items (a data problem to fix).
    """

    batches: list[ExportBatch] = field(default_factory=list)
    orders: int = 0
    lines: int = 0
    reconciled: int = 0
    aborted: int = 0
    held: int = 0


@dataclass(frozen=True)
class ReconcileResult:
    """What :func:`reconcile` found in the outbox."""

    recorded: int = 0
    aborted: list[Path] = field(default_factory=list)


def reconcile(con: duckdb.DuckDBPyConnection, outbox_dir: Path) -> ReconcileResult:
    """Bring the ledger and the outbox back in step after a crash.

    A complete batch (it has a manifest) whose orders the ledger lacks is recorded; a batch folder
    without a manifest is deleted (its orders were never recorded, so they are exported again).

    Args:
        con: a writable warehouse connection.
        outbox_dir: the outbox folder.

    Returns:
        Orders recorded and folders deleted.
    """
    known = ledger.recorded_batches(con)
    recorded = 0
    aborted: list[Path] = []
    for path in batch_dirs(outbox_dir):
        manifest_path = path / MANIFEST
        if not manifest_path.exists():
            log.warning("removing aborted export batch %s (no manifest); its orders will be exported again", path)
            remove_batch_dir(path)
            aborted.append(path)
            continue
        if path.name in known:
            continue  # a batch is recorded in one statement: known id means every order is recorded
        manifest = Manifest.read(manifest_path)
        added = ledger.record(con, manifest.order_ids, manifest.batch_id, manifest.created_at, manifest.target)
        if added:
            log.warning("recorded %d orders of export batch %s that the ledger lacked", added, manifest.batch_id)
        recorded += added
    return ReconcileResult(recorded=recorded, aborted=aborted)


def export_orders(
    con: duckdb.DuckDBPyConnection,
    outbox_dir: Path,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> ExportResult:
    """Export every eligible order not exported before, in batches of at most ``export.max_batch``.

    Eligible: ``payment_status = 'paid'``, ``status = 'unfulfilled'``, ``fulfilled_by = 'merchant'``,
    ``duplicate_of IS NULL``, at least one line item, and not in ``export_ledger``.

    Args:
        con: a writable warehouse connection (reads ``orders`` and ``order_lines``, writes ``export_ledger``).
        outbox_dir: the outbox folder (``settings.outbox_dir`` in production).
        settings: ``export.formats``, ``export.max_batch``, ``export.target`` and the time zone of the day folders.
        now: the batch time (default: now); time-zone aware.

    Returns:
        The batches written and what the crash reconcile did.

    Raises:
        OutboxError: a batch folder in the outbox has a manifest that cannot be read.
        ValueError: ``now`` is naive.
    """
    now = now or clock.now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("export_orders needs a time-zone-aware now")
    now = now.astimezone(UTC)
    fixed = reconcile(con, outbox_dir)
    formats: list[str] = list(dict.fromkeys(settings.export.formats))
    batches: list[ExportBatch] = []
    while True:
        orders = _fetch(
            con,
            f"SELECT {', '.join('o.' + c for c in _ORDER_COLUMNS)} {_ELIGIBLE} AND {_HAS_LINES} "
            "ORDER BY o.ship_by NULLS LAST, o.created_at NULLS LAST, o.order_id LIMIT $limit",
            {"limit": settings.export.max_batch},
        )
        if not orders:
            break
        batch = _write_batch(con, outbox_dir, settings, orders, formats, now)
        batches.append(batch)
        if len(orders) < settings.export.max_batch:
            break
    held = int(con.execute(f"SELECT count(*) {_ELIGIBLE} AND NOT {_HAS_LINES}").fetchall()[0][0])
    if held:
        log.warning("%d paid, unfulfilled orders have no line items and were not exported; see the warehouse", held)
    return ExportResult(
        batches=batches,
        orders=sum(len(b.order_ids) for b in batches),
        lines=sum(b.lines for b in batches),
        reconciled=fixed.recorded,
        aborted=len(fixed.aborted),
        held=held,
    )


def _write_batch(
    con: duckdb.DuckDBPyConnection,
    outbox_dir: Path,
    settings: Settings,
    orders: list[dict[str, Any]],
    formats: list[str],
    now: datetime,
) -> ExportBatch:
    order_ids = [o["order_id"] for o in orders]
    lines = _fetch(
        con,
        f"SELECT order_id, {', '.join(_LINE_COLUMNS)} FROM order_lines "
        "WHERE order_id IN (SELECT unnest($ids::VARCHAR[])) ORDER BY order_id, line_no",
        {"ids": order_ids},
    )
    by_order: dict[str, list[dict[str, Any]]] = {oid: [] for oid in order_ids}
    for line in lines:
        by_order[line["order_id"]].append(line)

    batch_id = batch_id_for(now, secrets.token_hex(4))
    day = now.astimezone(settings.zone).date().isoformat()
    path = make_batch_dir(outbox_dir, day, batch_id)
    files: dict[str, FileEntry] = {}
    if "csv" in formats:
        data = _csv_bytes(orders, by_order)
        files["orders.csv"] = FileEntry(write_atomic(path / "orders.csv", data), len(data), len(lines))
    if "jsonl" in formats:
        data = _jsonl_bytes(orders, by_order)
        files["orders.jsonl"] = FileEntry(write_atomic(path / "orders.jsonl", data), len(data), len(orders))
    manifest = Manifest(
        batch_id=batch_id,
        created_at=now,
        target=settings.export.target,
        order_ids=order_ids,
        orders=len(orders),
        lines=len(lines),
        files=files,
    )
    write_atomic(path / MANIFEST, manifest.to_json())
    ledger.record(con, order_ids, batch_id, now, settings.export.target)
    log.info("exported %d orders (%d lines) in batch %s", len(orders), len(lines), path)
    return ExportBatch(
        batch_id=batch_id,
        path=path,
        order_ids=tuple(order_ids),
        lines=len(lines),
        files={name: entry.sha256 for name, entry in files.items()},
    )


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _text(value: Any) -> str:
    """A value as exported text: exact decimals, UTC ISO 8601 times, empty for NULL."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")  # never exponent notation ("0E-4")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _csv_bytes(orders: list[dict[str, Any]], by_order: dict[str, list[dict[str, Any]]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_COLUMNS)
    for order in orders:
        for line in by_order[order["order_id"]]:
            merged = {**order, **{k: line[k] for k in _LINE_COLUMNS}}
            writer.writerow([_text(merged[c]) for c in CSV_COLUMNS])
    return buffer.getvalue().encode("utf-8")


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal | datetime):
        return _text(value)  # Decimal as a string: JSON numbers are floats to most readers
    return value


def _jsonl_bytes(orders: list[dict[str, Any]], by_order: dict[str, list[dict[str, Any]]]) -> bytes:
    out = []
    for order in orders:
        obj = {k: _json_value(v) for k, v in order.items()}
        obj["lines"] = [{k: _json_value(line[k]) for k in _LINE_COLUMNS} for line in by_order[order["order_id"]]]
        out.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode("utf-8")
