"""The DuckDB warehouse: one writer at a time, versioned migrations, bulk merges of canonical frames."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import filelock
import polars as pl

from dedupe.versions import IDENTITY_FROM_FULL, is_full, latest_lines, latest_versions, newest_full
from orderhub import clock
from orderhub.errors import LockedError, OrderhubError
from pipelines.schema import ORDER_SCHEMA, QUARANTINE_SCHEMA, TS, conform
from warehouse.frames import registered

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# The columns of processed_batches, as record_batches() accepts them.
BATCH_SCHEMA: dict[str, pl.DataType] = {
    "batch_id": pl.String(),
    "channel": pl.String(),
    "store": pl.String(),
    "stream": pl.String(),
    "seq": pl.Int64(),
    "source": pl.String(),
    "records": pl.Int64(),
    "loaded": pl.Int64(),
    "quarantined": pl.Int64(),
    "landed_at": TS,
    "processed_at": TS,
}

# Columns of `orders` that later steps own: an incoming NULL keeps what the warehouse has.
_DERIVED = ("customer_id", "duplicate_of", "duplicate_evidence")
# For each partial winner of an input: when the newest full version of its order in the input was updated.
_FULL_AT: dict[str, pl.DataType] = {"order_id": pl.String(), "full_at": TS}

# Writers open in this process, by resolved path: read_only() hands out cursors on them, because
# DuckDB refuses a second, differently configured connection to a file this process has open.
_open_writers: dict[Path, Warehouse] = {}


class SchemaVersionError(OrderhubError):
    """The warehouse file's schema does not match this version of orderhub."""


@dataclass(frozen=True)
class Migration:
    """One packaged ``NNNN_name.sql`` file."""

    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class MergeStats:
    """What :meth:`Warehouse.merge_orders` did.

    ``inserted + updated + unchanged`` is the number of distinct order_ids in the input.

    Attributes:
        inserted: orders new to the warehouse.
        updated: existing orders replaced by a newer version (their lines replaced too).
        unchanged: orders whose incoming version is not newer (identical re-pulls, older versions).
        superseded: versions dropped because the same input held a newer version of the order.
        lines: order lines written.
    """

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    superseded: int = 0
    lines: int = 0


def packaged_migrations() -> list[Migration]:
    """The migrations shipped in ``warehouse/migrations``, oldest first.

    Raises:
        SchemaVersionError: two files claim the same version (a packaging mistake).
    """
    found: dict[int, Migration] = {}
    for entry in resources.files("warehouse.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise SchemaVersionError(f"two warehouse migrations have version {version:04d}: rename one")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``con`` has an explicit transaction open.

    DuckDB has no API for this, and a failed ``BEGIN`` aborts the open transaction, so we ask for
    the transaction id twice: in autocommit mode every statement gets a new one.
    """
    first = con.execute("SELECT txid_current()").fetchall()[0][0]
    second = con.execute("SELECT txid_current()").fetchall()[0][0]
    return bool(first == second)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block atomically: inside the caller's open transaction if there is one, else in a new one.

    Callers such as pipelines/process.py wrap a merge, its quarantine and its batch bookkeeping in
    one transaction; the building blocks must then join it rather than commit half of it.

    Yields:
        The same connection.
    """
    if in_transaction(con):
        yield con
        return
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()


def update_in_storage_order(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source_sql: str,
    *,
    key: str,
    columns: Sequence[str],
    params: list[Any] | None = None,
) -> int:
    """``UPDATE table`` from the rows of ``source_sql`` (matched on ``key``), visiting rows in storage order.

    DuckDB updates rows far faster when it meets them in the order they are stored: with
    duckdb 2.0.1 the same 30k-row, 40-column update of a 300k-row table took 0.9 s in rowid order
    and 20 s in order_id order, and a later update over such out-of-order update chains took
    minutes. So the target rows' rowids are looked up first, sorted, and the update joins on them.

    Args:
        con: a writable connection (run it inside a transaction: rowids are stable within one).
        table: the table to update.
        source_sql: a SELECT yielding ``key`` and ``columns``.
        key: the column both sides are matched on.
        columns: the columns to set from the source.
        params: parameters of ``source_sql``.

    Returns:
        How many rows were updated.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _oh_update AS SELECT t.rowid AS _oh_rowid, s.* "
        f"FROM {table} t JOIN ({source_sql}) s USING ({key}) ORDER BY _oh_rowid",
        params or [],
    )
    assignments = ", ".join(f'"{c}" = s."{c}"' for c in columns)
    updated = con.execute(
        f"UPDATE {table} SET {assignments} FROM _oh_update s WHERE {table}.rowid = s._oh_rowid"
    ).fetchall()[0][0]
    con.execute("DROP TABLE _oh_update")
    return int(updated)


def sync_table(con: duckdb.DuckDBPyConnection, table: str, source: str, *, key: str) -> tuple[int, int]:
    """Make ``table`` hold exactly the rows of ``source``, rewriting only the rows that differ.

    For tables recomputed whole on every run (identities, customers): a full DELETE + INSERT
    would rewrite every row, and DuckDB's next checkpoint with it, even when one customer changed.

    Args:
        con: a writable connection (run it inside a transaction).
        table: the table to bring in line.
        source: a table or view with the same columns.
        key: the primary key column.

    Returns:
        ``(deleted, inserted)`` row counts; a changed row counts in both.
    """
    columns = [row[0] for row in con.execute(f"DESCRIBE {table}").fetchall() if row[0] != key]
    differs = " OR ".join(f't."{c}" IS DISTINCT FROM s."{c}"' for c in columns) or "false"
    deleted = con.execute(
        f"""
        DELETE FROM {table} WHERE {key} IN (
            SELECT t.{key} FROM {table} t LEFT JOIN {source} s USING ({key})
            WHERE s.{key} IS NULL OR {differs})
        """
    ).fetchall()[0][0]
    inserted = con.execute(
        f"INSERT INTO {table} BY NAME SELECT s.* FROM {source} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{key} = s.{key})"
    ).fetchall()[0][0]
    return int(deleted), int(inserted)


def _full_at(incoming: pl.DataFrame, latest: pl.DataFrame) -> pl.DataFrame:
    """``order_id, full_at``: for each partial winner, the updated_at of the newest full version of its order in
    the input (the identity ``latest_versions`` carried over), so the merge can tell it from the stored one's."""
    partial = latest.filter(~is_full()).select("order_id")
    if partial.height == 0:
        return pl.DataFrame(schema=_FULL_AT)
    versions = incoming.join(partial, on="order_id", how="semi")
    return newest_full(versions).select(list(_FULL_AT))


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    """Versions recorded in ``schema_migrations`` (empty for a new file)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = 'schema_migrations'"
    ).fetchall()[0][0]
    if not exists:
        return set()
    return {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}


def apply_migrations(con: duckdb.DuckDBPyConnection, migrations: list[Migration] | None = None) -> list[int]:
    """Apply every migration not yet recorded, each in its own transaction; idempotent.

    Args:
        con: a writable connection.
        migrations: the migrations to apply (default: the packaged ones).

    Returns:
        The versions applied now, in order.

    Raises:
        SchemaVersionError: the file was migrated by a newer orderhub.
    """
    migrations = packaged_migrations() if migrations is None else migrations
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    done = applied_versions(con)
    known = {m.version for m in migrations}
    unknown = sorted(done - known)
    if unknown:
        raise SchemaVersionError(
            f"the warehouse has schema version {unknown[-1]:04d}, newer than this orderhub knows "
            f"({max(known, default=0):04d}); upgrade orderhub before opening it"
        )
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        with transaction(con):
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                [migration.version, migration.name, clock.now()],
            )
        applied.append(migration.version)
    return applied


def _session(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    # TIMESTAMPTZ values then come back as UTC (polars "UTC", Python tzinfo UTC), not the host zone.
    con.execute("SET TimeZone = 'UTC'")
    return con


def _lock_holder(lock_path: Path) -> str:
    try:
        return lock_path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


class Warehouse:
    """The warehouse file, opened by its single writer (or by a one-shot reader).

    Use as a context manager::

        with Warehouse.open(settings.warehouse_path) as wh:
            stats = wh.merge_orders(orders, lines)

    Attributes:
        path: the DuckDB file.
        con: the DuckDB connection (run SQL on it; bulk-load frames with ``warehouse.frames.registered``).
        writable: True for the writer, False for :meth:`read_only` instances.
    """

    def __init__(
        self,
        path: Path,
        con: duckdb.DuckDBPyConnection,
        *,
        lock: filelock.BaseFileLock | None = None,
        writable: bool = True,
    ) -> None:
        self.path = path
        self.con = con
        self.writable = writable
        self._lock = lock
        self._closed = False

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, *, lock_timeout: float = 30.0) -> Warehouse:
        """Open ``path`` as its single writer: take the lock, connect, apply pending migrations.

        The lock is a ``filelock.FileLock`` on ``<path>.lock``; the OS releases it when the
        holding process exits, so a crashed run never leaves a stale lock behind.

        Args:
            path: the DuckDB file (created, with its folder, when missing).
            lock_timeout: seconds to wait for another writer to finish.

        Raises:
            LockedError: another process holds the writer lock (or has the file open in DuckDB).
            SchemaVersionError: the file was migrated by a newer orderhub.
        """
        path = Path(path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.with_name(path.name + ".lock")

        def _stamp(fd: int) -> None:
            # Who holds the lock, for the message another process shows when it has to wait.
            note = f"pid {os.getpid()} on {socket.gethostname()} since {clock.now().isoformat(timespec='seconds')}"
            os.ftruncate(fd, 0)
            os.pwrite(fd, note.encode(), 0)

        # Not thread-local: the Warehouse owns the lock, whichever thread (a Prefect task runner's)
        # ends up closing it.
        lock = filelock.FileLock(lock_path, timeout=lock_timeout, thread_local=False, on_acquired=_stamp)
        try:
            lock.acquire()
        except filelock.Timeout:
            holder = _lock_holder(lock_path)
            raise LockedError(
                f"the warehouse {path} is locked by another orderhub process"
                f"{f' ({holder})' if holder else ''}; waited {lock_timeout:g}s for {lock_path}. "
                "Wait for the running sync/backfill to finish (see the Prefect UI or `orderhub status`) and retry. "
                "The lock frees itself when that process exits: do not delete the lock file."
            ) from None
        try:
            try:
                con = duckdb.connect(str(path))
            except duckdb.IOException as exc:
                raise LockedError(
                    f"the warehouse {path} is open in another program, not an orderhub writer ({exc}). "
                    "Close that program (a BI tool or a DuckDB shell) and retry; read the published "
                    "reports in reports/daily/ instead of the warehouse file."
                ) from None
            try:
                _session(con)
                apply_migrations(con)
            except BaseException:
                con.close()
                raise
        except BaseException:
            lock.release()
            raise
        warehouse = cls(path, con, lock=lock)
        _open_writers[path] = warehouse
        return warehouse

    @classmethod
    def read_only(cls, path: Path) -> Warehouse:
        """Open ``path`` for one-shot reads (report, status) in the process or flow that writes it.

        DuckDB allows no reader in another process while a writer holds the file, so this is for
        reading before or after the writer's turn, or from the writer's own process: when this
        process has the writer open, the reader is a cursor on the writer's database (it sees
        committed data). Nothing interactive should read the warehouse; the CRM store and the
        published reports are there for that (DESIGN.md).

        Args:
            path: the DuckDB file.

        Raises:
            FileNotFoundError: there is no warehouse yet.
            LockedError: another process has the file open for writing.
            SchemaVersionError: migrations are pending (open it once as the writer) or newer than this orderhub.
        """
        path = Path(path).resolve()
        writer = _open_writers.get(path)
        if writer is not None:
            return cls(path, _session(writer.con.cursor()), writable=False)
        if not path.exists():
            raise FileNotFoundError(f"no warehouse at {path} yet: run a sync (`orderhub run`) first")
        try:
            con = duckdb.connect(str(path), read_only=True)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            raise LockedError(
                f"the warehouse {path} is being written by another process and DuckDB allows no reader "
                f"meanwhile ({exc}). Retry when the sync finishes, or read reports/daily/ or the CRM store."
            ) from None
        try:
            _session(con)
            known = {m.version for m in packaged_migrations()}
            done = applied_versions(con)
            if known - done or done - known:
                raise SchemaVersionError(
                    f"the warehouse {path} has schema versions {sorted(done)} but this orderhub expects "
                    f"{sorted(known)}: open it once as the writer (any sync does) or upgrade orderhub"
                )
        except BaseException:
            con.close()
            raise
        return cls(path, con, writable=False)

    def close(self) -> None:
        """Close the connection and release the writer lock (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.con.close()
        finally:
            if self._lock is not None:
                if _open_writers.get(self.path) is self:
                    del _open_writers[self.path]
                self._lock.release()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The newest applied migration."""
        return max(applied_versions(self.con), default=0)

    # -- loading -------------------------------------------------------------------------------
    def merge_orders(self, orders: pl.DataFrame, lines: pl.DataFrame) -> MergeStats:
        """Bulk-merge order versions and their lines (one set-based pass over Arrow, never row by row).

        The input may hold several versions of an order (overlapping batches): the latest wins
        (``dedupe.versions.latest_versions``). An existing row is then replaced only when the
        incoming ``updated_at`` is newer, or equal with a full version replacing a partial one, or
        equal, both full or both partial, with a greater ``record_hash`` (content decides a tie, as in
        ``dedupe.versions``, so replaying an old delivery changes nothing whenever it arrives);
        re-pulling identical data changes nothing, and a partial version never replaces a full one
        of the same ``updated_at``. A partial version replacing a row keeps that row's identity
        (``IDENTITY_FROM_FULL``): a full row's values, a partial row's where it has them, unless the
        input held a full version newer than the row, whose identity the partial version carries.
        The lines of a replaced order are replaced wholesale by the incoming ones (an order with no
        incoming lines keeps its lines). ``customer_id`` and ``duplicate_of`` of existing rows are
        kept unless the input gives them: dedupe recomputes them after the merge. Joins the
        caller's transaction when one is open, else runs in its own.

        Args:
            orders: ORDER_SCHEMA rows (extra columns are ignored).
            lines: LINE_SCHEMA rows of those orders; an optional ``batch_id`` column ties each
                line to its version, otherwise the last line set per order in the frame wins.

        Returns:
            The counts of inserted, updated and unchanged orders.
        """
        if orders.height == 0:
            return MergeStats()
        incoming = conform(orders, ORDER_SCHEMA)
        latest = latest_versions(incoming)
        new_lines = latest_lines(lines, latest)
        con = self.con
        replaced = ", ".join(f'coalesce(i."{c}", o."{c}") AS "{c}"' for c in _DERIVED)
        identity = ", ".join(
            f"CASE p.identity WHEN 'stored' THEN o.\"{c}\" WHEN 'coalesce' THEN coalesce(o.\"{c}\", i.\"{c}\") "
            f"ELSE i.\"{c}\" END AS \"{c}\"" for c in IDENTITY_FROM_FULL
        )
        with (
            transaction(con),
            registered(con, "_oh_src_orders", latest),
            registered(con, "_oh_src_lines", new_lines),
            registered(con, "_oh_src_full", _full_at(incoming, latest)),
        ):
            con.execute("CREATE OR REPLACE TEMP TABLE _oh_in_orders AS SELECT * FROM _oh_src_orders")
            con.execute("CREATE OR REPLACE TEMP TABLE _oh_in_lines AS SELECT * FROM _oh_src_lines")
            # '-infinity' makes a missing timestamp the oldest possible, so any real one beats it.
            # NULL partial = a full version. identity: where a replacing version's IDENTITY_FROM_FULL comes from.
            con.execute(
                """
                CREATE OR REPLACE TEMP TABLE _oh_plan AS
                SELECT i.order_id,
                       CASE
                         WHEN o.order_id IS NULL THEN 'insert'
                         WHEN coalesce(i.updated_at, '-infinity'::TIMESTAMPTZ)
                              > coalesce(o.updated_at, '-infinity'::TIMESTAMPTZ) THEN 'update'
                         WHEN i.updated_at IS NOT DISTINCT FROM o.updated_at
                              AND NOT coalesce(i.partial, false) AND coalesce(o.partial, false) THEN 'update'
                         WHEN i.updated_at IS NOT DISTINCT FROM o.updated_at
                              AND coalesce(i.partial, false) = coalesce(o.partial, false)
                              AND coalesce(i.record_hash, '') > coalesce(o.record_hash, '') THEN 'update'
                         ELSE 'unchanged'
                       END AS action,
                       CASE
                         WHEN NOT coalesce(i.partial, false) OR o.order_id IS NULL THEN 'incoming'
                         WHEN f.full_at > coalesce(o.updated_at, '-infinity'::TIMESTAMPTZ) THEN 'incoming'
                         WHEN coalesce(o.partial, false) THEN 'coalesce'
                         ELSE 'stored'
                       END AS identity
                FROM _oh_in_orders i LEFT JOIN orders o USING (order_id) LEFT JOIN _oh_src_full f USING (order_id)
                """
            )
            counts = dict(con.execute("SELECT action, count(*) FROM _oh_plan GROUP BY action").fetchall())
            con.execute(
                """
                DELETE FROM order_lines WHERE order_id IN (
                    SELECT p.order_id FROM _oh_plan p
                    WHERE p.action = 'update' AND p.order_id IN (SELECT order_id FROM _oh_in_lines))
                """
            )
            update_in_storage_order(
                con,
                "orders",
                f"""
                SELECT i.* REPLACE ({replaced}, {identity})
                FROM _oh_in_orders i JOIN _oh_plan p USING (order_id) JOIN orders o USING (order_id)
                WHERE p.action = 'update'
                """,
                key="order_id",
                columns=[c for c in ORDER_SCHEMA if c != "order_id"],
            )
            con.execute(
                """
                INSERT INTO orders BY NAME
                SELECT i.* FROM _oh_in_orders i JOIN _oh_plan p USING (order_id) WHERE p.action = 'insert'
                """
            )
            written = con.execute(
                """
                INSERT INTO order_lines BY NAME
                SELECT l.* FROM _oh_in_lines l JOIN _oh_plan p USING (order_id)
                WHERE p.action IN ('insert', 'update')
                """
            ).fetchall()[0][0]
            con.execute("DROP TABLE _oh_in_orders; DROP TABLE _oh_in_lines; DROP TABLE _oh_plan")
        return MergeStats(
            inserted=counts.get("insert", 0),
            updated=counts.get("update", 0),
            unchanged=counts.get("unchanged", 0),
            superseded=incoming.height - latest.height,
            lines=int(written),
        )

    def add_quarantine(self, df: pl.DataFrame) -> int:
        """Add quarantined records; a record already held (same batch, channel, store, external id, payload) is skipped.

        Args:
            df: QUARANTINE_SCHEMA rows.

        Returns:
            How many rows were new.
        """
        if df.height == 0:
            return 0
        frame = conform(df, QUARANTINE_SCHEMA)
        with transaction(self.con), registered(self.con, "_oh_src_quarantine", frame):
            added = self.con.execute(
                """
                INSERT INTO quarantine BY NAME
                WITH hashed AS (
                    SELECT q.*, sha256(coalesce(q.payload, '')) AS payload_sha256
                    FROM _oh_src_quarantine q
                ), keyed AS (
                    SELECT h.*, ? AS quarantined_at,
                           sha256(concat_ws(chr(31), coalesce(h.batch_id, ''), coalesce(h.channel, ''),
                                  coalesce(h.store, ''), coalesce(h.external_id, ''), h.payload_sha256))
                               AS quarantine_key
                    FROM hashed h
                )
                SELECT * REPLACE (coalesce(records, 1) AS records) FROM keyed k
                WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.quarantine_key = k.quarantine_key)
                QUALIFY row_number() OVER (PARTITION BY quarantine_key) = 1
                """,
                [clock.now()],
            ).fetchall()[0][0]
        return int(added)

    def record_batches(self, rows: Iterable[Mapping[str, Any]] | pl.DataFrame) -> int:
        """Record landed batches as processed (a batch recorded again is overwritten).

        Args:
            rows: one mapping (or frame row) per batch with the keys of :data:`BATCH_SCHEMA`;
                ``landed_at`` may be an ISO 8601 string; ``processed_at`` defaults to now.

        Returns:
            How many batches were recorded.
        """
        if isinstance(rows, pl.DataFrame):
            frame = rows
        else:
            now = clock.now()
            items = []
            for row in rows:
                item = {name: row.get(name) for name in BATCH_SCHEMA}
                if isinstance(item["landed_at"], str):
                    item["landed_at"] = datetime.fromisoformat(item["landed_at"])
                item["processed_at"] = item["processed_at"] or now
                items.append(item)
            frame = pl.DataFrame(items, schema=BATCH_SCHEMA) if items else pl.DataFrame(schema=BATCH_SCHEMA)
        if frame.height == 0:
            return 0
        frame = (
            conform(frame, BATCH_SCHEMA)
            .with_columns(
                pl.col("processed_at").fill_null(clock.now()),
                pl.col("records", "loaded", "quarantined").fill_null(0),
            )
            .unique("batch_id", keep="last", maintain_order=True)
        )
        with transaction(self.con), registered(self.con, "_oh_src_batches", frame):
            self.con.execute("INSERT OR REPLACE INTO processed_batches BY NAME SELECT * FROM _oh_src_batches")
        return frame.height

    def processed_batch_ids(self) -> set[str]:
        """The batch ids already processed (pipelines skip them)."""
        return {row[0] for row in self.con.execute("SELECT batch_id FROM processed_batches").fetchall()}
