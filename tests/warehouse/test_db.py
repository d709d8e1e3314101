"""Warehouse: migrations, the single-writer lock, bulk merge semantics, quarantine and batch bookkeeping."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import filelock
import polars as pl
import pytest

from orderhub.errors import LockedError
from pipelines.schema import LINE_SCHEMA, ORDER_SCHEMA, QUARANTINE_SCHEMA, conform
from tests.warehouse.factories import T0, line_rows, order_rows
from warehouse.db import SchemaVersionError, Warehouse, apply_migrations, in_transaction, packaged_migrations

DUCK_TYPES = {
    pl.String: "VARCHAR",
    pl.Boolean: "BOOLEAN",
    pl.Int32: "INTEGER",
    pl.Decimal(18, 4): "DECIMAL(18,4)",
    pl.Datetime("us", "UTC"): "TIMESTAMP WITH TIME ZONE",
}


def _columns(wh: Warehouse, table: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in wh.con.execute(f"DESCRIBE {table}").fetchall()]


def _one(wh: Warehouse, sql: str) -> object:
    return wh.con.execute(sql).fetchall()[0][0]


# -- migrations --------------------------------------------------------------------------------
def test_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with Warehouse.open(path) as wh:
        assert wh.schema_version == packaged_migrations()[-1].version
        assert apply_migrations(wh.con) == []
    with Warehouse.open(path) as wh:
        rows = wh.con.execute("SELECT version, name FROM schema_migrations").fetchall()
        assert rows == [(m.version, m.name) for m in packaged_migrations()]
        tables = {r[0] for r in wh.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {
        "orders",
        "order_lines",
        "quarantine",
        "customers",
        "customer_identities",
        "processed_batches",
        "export_ledger",
        "sync_runs",
        "schema_migrations",
    } <= tables


def test_tables_hold_exactly_the_canonical_columns(wh: Warehouse) -> None:
    assert _columns(wh, "orders") == [(name, DUCK_TYPES[dtype]) for name, dtype in ORDER_SCHEMA.items()]
    assert _columns(wh, "order_lines") == [(name, DUCK_TYPES[dtype]) for name, dtype in LINE_SCHEMA.items()]
    quarantine = _columns(wh, "quarantine")
    assert quarantine[: len(QUARANTINE_SCHEMA)] == [(n, DUCK_TYPES[t]) for n, t in QUARANTINE_SCHEMA.items()]
    assert quarantine[len(QUARANTINE_SCHEMA)][0] == "quarantined_at"


def test_a_warehouse_from_a_newer_orderhub_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with Warehouse.open(path) as wh:
        wh.con.execute("INSERT INTO schema_migrations VALUES (9999, 'future', now())")
    with pytest.raises(SchemaVersionError, match="upgrade orderhub"):
        Warehouse.open(path)
    # The failed open released its lock.
    filelock.FileLock(str(path) + ".lock", timeout=0).acquire().lock.release()


# -- the single-writer lock --------------------------------------------------------------------
def test_a_held_lock_raises_locked_error_that_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    other = filelock.FileLock(str(path) + ".lock")
    with other, pytest.raises(LockedError) as err:
        Warehouse.open(path, lock_timeout=0.1)
    assert str(path) in str(err.value)
    assert "retry" in str(err.value)
    with Warehouse.open(path, lock_timeout=0.1):  # free again once the holder let go
        pass


def test_a_writer_in_another_process_blocks_the_writer_and_readers(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    child = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from warehouse.db import Warehouse
        with Warehouse.open(Path({str(path)!r})):
            print("ready", flush=True)
            sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        with pytest.raises(LockedError, match=f"pid {proc.pid}"):
            Warehouse.open(path, lock_timeout=0.2)
        with pytest.raises(LockedError, match="allows no reader"):
            Warehouse.read_only(path)
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(timeout=30)
    with Warehouse.open(path, lock_timeout=1):
        pass


def test_a_writer_closed_by_another_thread_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    wh = Warehouse.open(path)
    closer = threading.Thread(target=wh.close)
    closer.start()
    closer.join()
    with Warehouse.open(path, lock_timeout=0.5):
        pass


def test_read_only_in_the_writers_process_reads_committed_data(wh: Warehouse) -> None:
    wh.merge_orders(
        order_rows([{"channel": "shopify", "store": "s", "external_id": "1"}]),
        pl.DataFrame(schema=LINE_SCHEMA),
    )
    with Warehouse.read_only(wh.path) as reader:
        assert not reader.writable
        assert _one(reader, "SELECT count(*) FROM orders") == 1
    assert _one(wh, "SELECT count(*) FROM orders") == 1  # closing the reader left the writer open


def test_read_only_after_the_writer_closed(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with pytest.raises(FileNotFoundError, match="run a sync"):
        Warehouse.read_only(path)
    with Warehouse.open(path):
        pass
    with Warehouse.read_only(path) as reader:
        assert _one(reader, "SELECT count(*) FROM orders") == 0


# -- merge -------------------------------------------------------------------------------------
def _order(**fields: object) -> dict[str, object]:
    return {"channel": "shopify", "store": "main", "external_id": "1001", **fields}


def test_merge_inserts_then_an_identical_repull_changes_nothing(wh: Warehouse) -> None:
    orders = order_rows([_order(), _order(external_id="1002")])
    first = wh.merge_orders(orders, line_rows(orders, 2))
    assert (first.inserted, first.updated, first.unchanged, first.lines) == (2, 0, 0, 4)
    again = wh.merge_orders(orders.with_columns(pl.lit("b2").alias("batch_id")), line_rows(orders, 2))
    assert (again.inserted, again.updated, again.unchanged, again.lines) == (0, 0, 2, 0)
    assert _one(wh, "SELECT min(batch_id) FROM orders") == "b1"


def test_a_newer_version_wins_and_its_lines_replace_the_old_ones(wh: Warehouse) -> None:
    v1 = order_rows([_order(status="unfulfilled")])
    wh.merge_orders(v1, line_rows(v1, 3))
    v2 = order_rows([_order(status="fulfilled", updated_at=T0 + timedelta(hours=2), batch_id="b2")])
    stats = wh.merge_orders(v2, line_rows(v2, 2, sku="NEW"))
    assert (stats.inserted, stats.updated, stats.unchanged) == (0, 1, 0)
    assert _one(wh, "SELECT status FROM orders") == "fulfilled"
    assert wh.con.execute("SELECT line_no, sku FROM order_lines ORDER BY line_no").fetchall() == [
        (1, "NEW"),
        (2, "NEW"),
    ]


def test_an_older_version_is_ignored(wh: Warehouse) -> None:
    new = order_rows([_order(status="fulfilled", updated_at=T0 + timedelta(days=1))])
    wh.merge_orders(new, line_rows(new, 1))
    old = order_rows(
        [_order(status="unfulfilled", updated_at=T0, landed_at=T0 + timedelta(days=2), batch_id="b9")]
    )
    stats = wh.merge_orders(old, line_rows(old, 3))
    assert (stats.updated, stats.unchanged) == (0, 1)
    assert _one(wh, "SELECT status FROM orders") == "fulfilled"
    assert _one(wh, "SELECT count(*) FROM order_lines") == 1


def test_same_updated_at_with_other_content_is_decided_by_content_not_arrival(wh: Warehouse) -> None:
    base = order_rows([_order(record_hash="h2", landed_at=T0 + timedelta(hours=1))])
    wh.merge_orders(base, line_rows(base))
    # A smaller hash loses whenever it lands: replaying an old delivery changes nothing.
    for landed in (T0, T0 + timedelta(hours=5)):
        smaller = order_rows([_order(record_hash="h1", status="cancelled", landed_at=landed)])
        assert wh.merge_orders(smaller, line_rows(smaller)).unchanged == 1
    greater = order_rows([_order(record_hash="h3", status="cancelled", landed_at=T0)])
    assert wh.merge_orders(greater, line_rows(greater)).updated == 1
    assert _one(wh, "SELECT record_hash || status FROM orders") == "h3cancelled"


def test_several_versions_in_one_input_collapse_to_the_latest(wh: Warehouse) -> None:
    versions = order_rows(
        [
            _order(status="pending", updated_at=T0, batch_id="b1"),
            _order(status="fulfilled", updated_at=T0 + timedelta(hours=5), batch_id="b2"),
            _order(status="unfulfilled", updated_at=T0 + timedelta(hours=1), batch_id="b3"),
            # Same updated_at as the winner but landed earlier: loses the tie.
            _order(
                status="cancelled",
                updated_at=T0 + timedelta(hours=5),
                landed_at=T0 - timedelta(hours=1),
                batch_id="b4",
            ),
        ]
    )
    lines = pl.concat(
        [
            line_rows(versions[i : i + 1], n).with_columns(pl.lit(f"v{i}").alias("sku"))
            for i, n in enumerate([1, 3, 2, 1])
        ]
    )
    stats = wh.merge_orders(
        versions, lines.with_columns(pl.Series("batch_id", ["b1", "b2", "b2", "b2", "b3", "b3", "b4"]))
    )
    assert (stats.inserted, stats.superseded, stats.lines) == (1, 3, 3)
    assert _one(wh, "SELECT status FROM orders") == "fulfilled"
    assert {r[0] for r in wh.con.execute("SELECT sku FROM order_lines").fetchall()} == {"v1"}


def test_without_batch_id_on_lines_the_last_line_set_of_an_order_wins(wh: Warehouse) -> None:
    versions = order_rows(
        [_order(updated_at=T0, batch_id="b1"), _order(updated_at=T0 + timedelta(hours=1), batch_id="b2")]
    )
    lines = pl.concat([line_rows(versions[:1], 3, sku="old"), line_rows(versions[1:], 2, sku="new")])
    wh.merge_orders(versions, lines)
    assert wh.con.execute("SELECT line_no, sku FROM order_lines ORDER BY 1").fetchall() == [
        (1, "new"),
        (2, "new"),
    ]


def test_derived_columns_survive_a_merge_unless_given(wh: Warehouse) -> None:
    v1 = order_rows([_order()])
    wh.merge_orders(v1, line_rows(v1))
    wh.con.execute("UPDATE orders SET customer_id = 'cus_1', duplicate_of = 'amazon:x:1'")
    v2 = order_rows([_order(status="fulfilled", updated_at=T0 + timedelta(hours=1))])
    wh.merge_orders(v2, line_rows(v2))
    assert wh.con.execute("SELECT customer_id, duplicate_of, status FROM orders").fetchall() == [
        ("cus_1", "amazon:x:1", "fulfilled")
    ]
    v3 = order_rows([_order(customer_id="cus_2", updated_at=T0 + timedelta(hours=2))])
    wh.merge_orders(v3, line_rows(v3))
    assert _one(wh, "SELECT customer_id FROM orders") == "cus_2"


def test_an_update_without_incoming_lines_keeps_the_lines(wh: Warehouse) -> None:
    v1 = order_rows([_order()])
    wh.merge_orders(v1, line_rows(v1, 2))
    wh.merge_orders(
        order_rows([_order(updated_at=T0 + timedelta(hours=1))]), pl.DataFrame(schema=LINE_SCHEMA)
    )
    assert _one(wh, "SELECT count(*) FROM order_lines") == 2


def test_money_stays_exact_decimal(wh: Warehouse) -> None:
    orders = order_rows(
        [
            _order(external_id="1", total=Decimal("0.1")),
            _order(external_id="2", total=Decimal("0.2")),
            _order(external_id="3", total=Decimal("99999999999999.9999"), currency="KWD"),
        ]
    )
    wh.merge_orders(orders, line_rows(orders))
    assert _one(wh, "SELECT sum(total) FROM orders WHERE external_id IN ('1', '2')") == Decimal("0.3")
    assert _one(wh, "SELECT total FROM orders WHERE external_id = '3'") == Decimal("99999999999999.9999")
    back = pl.DataFrame(wh.con.sql("SELECT total FROM orders ORDER BY external_id"))
    assert back.schema["total"] == pl.Decimal(18, 4)
    assert back["total"].to_list()[:2] == [Decimal("0.1"), Decimal("0.2")]


def test_merge_joins_the_callers_transaction(wh: Warehouse) -> None:
    orders = order_rows([_order()])
    wh.con.begin()
    assert in_transaction(wh.con)
    wh.merge_orders(orders, line_rows(orders))
    wh.record_batches([{"batch_id": "b1", "channel": "shopify", "store": "main", "records": 1}])
    wh.con.rollback()
    assert not in_transaction(wh.con)
    assert _one(wh, "SELECT count(*) FROM orders") == 0
    assert wh.processed_batch_ids() == set()


# -- quarantine and batches --------------------------------------------------------------------
def test_quarantine_is_idempotent(wh: Warehouse) -> None:
    rows = conform(
        pl.DataFrame(
            {
                "channel": ["woocommerce", "woocommerce", "woocommerce"],
                "store": ["w", "w", "w"],
                "external_id": ["7", None, None],
                "reason": ["total '12,34' is not a number", "body did not parse", "body did not parse"],
                "payload": ['{"id": 7}', "<html>", "<html>oops"],
                "landed_at": [T0, T0, T0],
                "batch_id": ["b1", "b1", "b1"],
                "records": [1, 20, None],
            }
        ),
        QUARANTINE_SCHEMA,
    )
    assert wh.add_quarantine(rows) == 3
    assert wh.add_quarantine(rows) == 0
    assert wh.add_quarantine(pl.concat([rows, rows])) == 0
    assert _one(wh, "SELECT sum(records) FROM quarantine") == 22
    assert _one(wh, "SELECT count(*) FROM quarantine WHERE quarantined_at IS NULL") == 0


def test_record_batches_and_processed_ids(wh: Warehouse) -> None:
    row = {
        "batch_id": "shopify/main/orders/00000001",
        "channel": "shopify",
        "store": "main",
        "stream": "orders",
        "seq": 1,
        "source": "api",
        "records": 5,
        "loaded": 4,
        "quarantined": 1,
        "landed_at": T0.isoformat(),
    }
    assert wh.record_batches([row]) == 1
    assert wh.record_batches([{**row, "loaded": 5, "quarantined": 0}]) == 1
    assert wh.processed_batch_ids() == {"shopify/main/orders/00000001"}
    assert wh.con.execute(
        "SELECT loaded, quarantined, landed_at = ? FROM processed_batches", [T0]
    ).fetchall() == [(5, 0, True)]
    assert wh.record_batches([]) == 0
