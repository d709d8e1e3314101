"""Fulfillment export: eligibility, file contents, exactly once across runs and crashes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fulfillment import export as export_module
from fulfillment.export import CSV_COLUMNS, export_orders
from fulfillment.outbox import Manifest, OutboxError
from orderhub.config import ExportConfig, Settings

NOW = datetime(2025, 6, 1, 22, 30, tzinfo=UTC)  # already 2 June in Berlin


def ledger(wh) -> dict[str, str]:
    return dict(wh.execute("SELECT order_id, export_batch_id FROM export_ledger").fetchall())


def files_of(path: Path) -> set[str]:
    return {p.name for p in path.iterdir()}


def test_only_eligible_orders_are_exported(wh, add_order, settings, tmp_path) -> None:
    ok = add_order("1001", lines=2)
    add_order("1002", payment_status="pending")
    add_order("1003", status="fulfilled")
    add_order("1004", status="cancelled", payment_status="voided")
    add_order("113-0000001-0000001", channel="amazon", store="na", fulfilled_by="marketplace")  # FBA
    add_order("1005", duplicate_of="amazon:na:113-0000002-0000002")  # a mirror of an Amazon order
    amazon = add_order("113-0000002-0000002", channel="amazon", store="na")
    add_order("1006", status="partially_fulfilled")
    add_order("1007", lines=0)  # nothing to ship: held, reported

    result = export_orders(wh, tmp_path / "outbox", settings, now=NOW)

    assert sorted(o for b in result.batches for o in b.order_ids) == sorted([ok, amazon])
    assert (result.orders, result.lines, result.held) == (2, 3, 1)
    assert set(ledger(wh)) == {ok, amazon}


def test_batch_files_are_exact_and_the_manifest_checks_them(wh, add_order, settings, tmp_path) -> None:
    order_id = add_order("1001", lines=2)
    result = export_orders(wh, tmp_path / "outbox", settings, now=NOW)
    (batch,) = result.batches
    assert batch.path.parent == tmp_path / "outbox" / "2025-06-02"  # the day in the configured zone
    assert files_of(batch.path) == {"orders.csv", "orders.jsonl", "manifest.json"}  # no temp files left

    raw_csv = (batch.path / "orders.csv").read_bytes()
    rows = list(csv.DictReader(io.StringIO(raw_csv.decode("utf-8"), newline="")))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["line_no"], r["sku"], r["master_sku"], r["quantity"]) for r in rows] == [
        ("1", "SKU-1", "M-1", "1"), ("2", "SKU-2", "M-2", "2"),
    ]  # fmt: skip
    first = rows[0]
    assert first["order_id"] == order_id and first["order_number"] == "#1001"
    assert (first["ship_name"], first["ship_line1"], first["ship_city"]) == ("Zoë Ångström", "Müllerstraße 12", "Köln")
    assert first["title"] == 'Kaffeebohnen "Crème" №1, 250 g'
    assert first["created_at"] == "2025-06-01T09:30:00+00:00" and first["ship_by"] == "2025-06-03T09:30:00+00:00"
    assert first["ship_line2"] == ""

    (obj,) = [json.loads(line) for line in (batch.path / "orders.jsonl").read_text(encoding="utf-8").splitlines()]
    assert obj["order_id"] == order_id and obj["ship_name"] == "Zoë Ångström"
    assert obj["total"] == "59.9000" and obj["currency"] == "EUR"  # Decimal as a string, exact
    assert [(ln["line_no"], ln["quantity"], ln["total"]) for ln in obj["lines"]] == [(1, 1, "19.9500"), (2, 2, "39.9000")]

    manifest = Manifest.read(batch.path / "manifest.json")
    assert manifest.batch_id == batch.batch_id == batch.path.name
    assert manifest.order_ids == [order_id] and (manifest.orders, manifest.lines) == (1, 2)
    assert manifest.created_at == NOW
    for name, entry in manifest.files.items():
        data = (batch.path / name).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest() and entry.bytes == len(data)
    assert ledger(wh) == {order_id: batch.batch_id}


def test_each_order_is_exported_exactly_once(wh, add_order, settings, tmp_path) -> None:
    outbox = tmp_path / "outbox"
    first_id = add_order("1001")
    first = export_orders(wh, outbox, settings, now=NOW)
    assert first.orders == 1

    second = export_orders(wh, outbox, settings, now=NOW + timedelta(hours=1))
    assert (second.orders, second.batches) == (0, [])

    new_id = add_order("1002")
    third = export_orders(wh, outbox, settings, now=NOW + timedelta(hours=2))
    assert [b.order_ids for b in third.batches] == [(new_id,)]
    assert set(ledger(wh)) == {first_id, new_id}


def test_crash_between_manifest_and_ledger_never_ships_twice(wh, add_order, settings, tmp_path, monkeypatch) -> None:
    outbox = tmp_path / "outbox"
    ids = {add_order("1001"), add_order("1002")}

    def crash(*_args: object, **_kwargs: object) -> int:
        raise RuntimeError("killed between manifest and ledger")

    monkeypatch.setattr(export_module.ledger, "record", crash)
    with pytest.raises(RuntimeError, match="killed"):
        export_orders(wh, outbox, settings, now=NOW)
    monkeypatch.undo()
    (batch_dir,) = [p for day in outbox.iterdir() for p in day.iterdir()]
    assert (batch_dir / "manifest.json").exists() and ledger(wh) == {}

    rerun = export_orders(wh, outbox, settings, now=NOW + timedelta(hours=1))
    assert rerun.reconciled == 2 and rerun.orders == 0 and rerun.batches == []
    assert ledger(wh) == dict.fromkeys(ids, batch_dir.name)  # recorded under the batch that shipped them
    (at,) = {row[0] for row in wh.execute("SELECT exported_at FROM export_ledger").fetchall()}
    assert at == NOW
    assert len([p for day in outbox.iterdir() for p in day.iterdir()]) == 1


def test_an_aborted_batch_is_removed_and_its_orders_exported_again(wh, add_order, settings, tmp_path) -> None:
    outbox = tmp_path / "outbox"
    order_id = add_order("1001")
    aborted = outbox / "2025-06-01" / "20250601T100000Z-0badc0de"
    aborted.mkdir(parents=True)
    (aborted / "orders.csv").write_text("half a file", encoding="utf-8")
    (aborted / ".orders.jsonl.tmp").write_text("{", encoding="utf-8")
    (outbox / "README.txt").write_text("not a batch: left alone", encoding="utf-8")

    result = export_orders(wh, outbox, settings, now=NOW)

    assert result.aborted == 1 and not aborted.exists()
    assert [b.order_ids for b in result.batches] == [(order_id,)]
    assert (outbox / "README.txt").exists()


def test_formats_and_max_batch_are_respected(wh, add_order, tmp_path) -> None:
    settings = Settings(home=tmp_path, export=ExportConfig(formats=["jsonl"], max_batch=2))
    # ship_by decides the order: the most urgent promise goes out first
    ids = [add_order(f"10{n:02d}", ship_by=NOW + timedelta(hours=10 - n)) for n in range(5)]
    result = export_orders(wh, tmp_path / "outbox", settings, now=NOW)
    assert [len(b.order_ids) for b in result.batches] == [2, 2, 1]
    assert [o for b in result.batches for o in b.order_ids] == list(reversed(ids))
    assert len({b.batch_id for b in result.batches}) == 3
    for batch in result.batches:
        assert files_of(batch.path) == {"orders.jsonl", "manifest.json"}
    assert export_orders(wh, tmp_path / "outbox", settings, now=NOW).orders == 0


def test_an_unreadable_manifest_stops_the_export(wh, add_order, settings, tmp_path) -> None:
    outbox = tmp_path / "outbox"
    add_order("1001")
    damaged = outbox / "2025-06-01" / "20250601T100000Z-0badc0de"
    damaged.mkdir(parents=True)
    (damaged / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(OutboxError, match="inspect the batch by hand"):
        export_orders(wh, outbox, settings, now=NOW)
    assert ledger(wh) == {}
