"""The CRM store: customers, identities, tags, notes and order history behind SQLAlchemy Core."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    delete,
    event,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from crm import schema
from crm.schema import OVERRIDE_KINDS, TAG_SOURCES
from crm.search import email_key, name_key
from orderhub import clock
from orderhub.errors import ConfigError, OrderhubError

if TYPE_CHECKING:  # polars and DuckDB load only where a sync needs them: lookups start faster
    import duckdb
    import polars as pl

# Rows per executemany call: bounded memory for the parameter lists, few round trips.
CHUNK_ROWS = 5_000
# Rows per transaction when a sync writes a large table: SQLite has one writer at a time, so a
# customer-service note waits for at most one slice, never for a whole million-row initial sync.
SYNC_SLICE_ROWS = 50_000
# How long a SQLite writer waits for the lock before "database is locked" (milliseconds).
BUSY_TIMEOUT_MS = 15_000


class CustomerNotFoundError(OrderhubError, LookupError):
    """No customer with this id in the CRM store: check the id, or sync the CRM from the warehouse."""


class CrmNotReadyError(OrderhubError):
    """The CRM store has no tables yet: run ``orderhub tags`` (or ``CrmStore.create_all()``) first."""


@dataclass(frozen=True)
class TableSync:
    """What one table's sync did.

    Attributes:
        rows: rows in the warehouse table.
        changed: rows new or different in the warehouse, written to the CRM.
        removed: CRM rows no longer in the warehouse, deleted (identities only).
        stale: CRM rows no longer in the warehouse, kept because people's notes and tags hang off them.
    """

    rows: int = 0
    changed: int = 0
    removed: int = 0
    stale: int = 0


@dataclass(frozen=True)
class SyncStats:
    """What :meth:`CrmStore.sync_from_warehouse` did.

    Attributes:
        customers: customers written (new or changed).
        identities: identities written.
        orders: orders written.
        full: every row was rewritten, not only the changed ones.
        tables: per-table detail (rows, changed, removed, stale).
        seconds: wall time of the sync.
    """

    customers: int
    identities: int
    orders: int
    full: bool
    tables: dict[str, TableSync]
    seconds: float


@dataclass(frozen=True)
class _SyncSpec:
    name: str  # CRM table
    source: str  # warehouse table
    columns: tuple[str, ...]  # warehouse columns copied (those the warehouse has)
    watermark: str | None  # warehouse column whose max is remembered for the operator
    delete_gone: bool  # whether CRM rows missing from the warehouse are deleted


_SYNC_SPECS = (
    _SyncSpec(
        "customers",
        "customers",
        ("customer_id", "name", "email", "phone", "country", "first_order_at", "last_order_at",
         "orders_count", "total_spent_base", "updated_at"),
        "updated_at",
        False,  # notes and tags of a merged-away customer must survive until someone moves them
    ),
    _SyncSpec(
        "identities",
        "customer_identities",
        ("identity_key", "customer_id", "channel", "store", "channel_customer_key", "email", "phone", "name",
         "line1", "city", "postal_code", "country", "rule", "score", "linked_at"),
        "linked_at",
        True,
    ),
    _SyncSpec(
        "orders",
        "orders",
        ("order_id", "customer_id", "channel", "store", "external_id", "order_number", "created_at",
         "updated_at", "status", "payment_status", "currency", "total", "total_base", "duplicate_of",
         "duplicate_evidence", "ship_city", "ship_country"),
        "updated_at",
        True,
    ),
)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (see _sqlite_begin): the sqlite3 module's legacy mode would
    # not begin a transaction for SELECTs, so a multi-query read would not see one snapshot.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers never block the writer and the writer never blocks readers, so customer
        # service keeps reading while a sync writes. https://www.sqlite.org/wal.html
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # NORMAL is durable across application crashes in WAL mode and avoids an fsync per commit.
        # https://www.sqlite.org/pragma.html#pragma_synchronous
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers start with BEGIN IMMEDIATE: they take the write lock up front (waiting up to
    # busy_timeout) instead of failing with SQLITE_BUSY when a deferred read upgrades to a write.
    mode = conn.get_execution_options().get("crm_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class CrmStore:
    """The CRM store at a SQLAlchemy URL (``sqlite:///…/crm.sqlite`` or ``postgresql+psycopg://…``).

    Customer service reads and writes it (notes, manual tags) while syncs run: on SQLite the file is
    in WAL mode with a busy timeout, readers see one consistent snapshot per call, and writers take
    the lock up front.

    Attributes:
        url: the database URL.
        engine: the SQLAlchemy engine.
    """

    def __init__(self, url: str) -> None:
        """Open (lazily) the store at ``url``; the folder of a SQLite file is created when missing.

        Raises:
            ConfigError: the URL names a database other than SQLite or PostgreSQL.
        """
        self.url = url
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend not in ("sqlite", "postgresql"):
            raise ConfigError(f"crm_url {parsed.render_as_string()!r}: the CRM store runs on sqlite or postgresql")
        if backend == "sqlite" and parsed.database and parsed.database != ":memory:" and "mode=memory" not in url:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(url)
        if backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._ready = False

    # -- lifecycle ---------------------------------------------------------------------------------
    def create_all(self) -> None:
        """Create every table and index that does not exist yet, and add the columns a newer orderhub
        added to existing tables (idempotent)."""
        schema.metadata.create_all(self.engine)
        self._upgrade()
        self._ready = True

    def _upgrade(self) -> None:
        """Bring a store made by an earlier orderhub up to ``crm.schema``: the tables added since (such as
        ``identity_overrides``), then each nullable column a table lacks (such as
        ``orders.duplicate_evidence``, filled by the next sync). Nothing is written when nothing is
        missing; another process doing the same at the same moment is fine.
        """
        inspector = inspect(self.engine)
        tables = [t for t in schema.metadata.sorted_tables if not inspector.has_table(t.name)]
        if tables:
            try:
                schema.metadata.create_all(self.engine, tables=tables)
            except DBAPIError:
                if any(not inspect(self.engine).has_table(t.name) for t in tables):
                    raise
            inspector = inspect(self.engine)
        missing = []
        for table in schema.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            missing += [(table.name, column) for column in table.columns
                        if column.name not in present and column.nullable and not column.primary_key]
        for name, column in missing:
            kind = column.type.compile(dialect=self.engine.dialect)
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(f'ALTER TABLE {name} ADD COLUMN "{column.name}" {kind}'))
            except DBAPIError:
                if column.name not in {c["name"] for c in inspect(self.engine).get_columns(name)}:
                    raise

    def ensure_ready(self) -> None:
        """Check that the tables exist and bring a store made by an earlier orderhub up to date (once per
        store object).

        Raises:
            CrmNotReadyError: the store was never created.
        """
        if self._ready:
            return
        with self.read() as conn:
            if not self.engine.dialect.has_table(conn, schema.customers.name):
                raise CrmNotReadyError(
                    f"the CRM store at {make_url(self.url).render_as_string()} has no tables yet; "
                    "run `orderhub tags` to create and fill it"
                )
        self._upgrade()
        self._ready = True

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> CrmStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection whose queries all see one snapshot; nothing it does is committed."""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "postgresql":
                # READ COMMITTED (the default) gives each statement a new snapshot; a lookup's five
                # queries must agree with each other. Read-only, so it never fails to serialize.
                conn.execution_options(isolation_level="REPEATABLE READ")
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back when it raises."""
        with self.engine.connect() as conn:
            conn.execution_options(crm_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    # -- bulk upserts ------------------------------------------------------------------------------
    def upsert_customers(self, df: pl.DataFrame) -> int:
        """Insert or update customers from a frame of warehouse ``customers`` columns.

        Columns the CRM does not keep (``tags``, ``vip``...) are ignored; columns absent from the
        frame are left as they are on existing rows.

        Args:
            df: at least ``customer_id``; money as Decimal, times time-zone aware.

        Returns:
            The number of distinct customers in the frame (all written in one transaction).
        """
        return self._upsert(schema.customers, df, _derive_person)

    def upsert_identities(self, df: pl.DataFrame) -> int:
        """Insert or update channel identities from a frame of warehouse ``customer_identities`` columns.

        Args:
            df: at least ``identity_key``.

        Returns:
            The number of distinct identities in the frame (one transaction).
        """
        return self._upsert(schema.identities, df, _derive_person)

    def upsert_orders(self, df: pl.DataFrame) -> int:
        """Insert or update order history rows from a frame of warehouse ``orders`` columns.

        Args:
            df: at least ``order_id``.

        Returns:
            The number of distinct orders in the frame (one transaction).
        """
        return self._upsert(schema.orders, df, None)

    def _insert(self, table: Table) -> Any:
        # Both dialects' INSERT have on_conflict_do_update with the same signature: one code path.
        if self.engine.dialect.name == "postgresql":
            return pg_insert(table)
        return sqlite_insert(table)

    def _upsert(
        self,
        table: Table,
        df: pl.DataFrame,
        derive: Callable[[dict[str, Any]], None] | None,
    ) -> int:
        (key,) = (col.name for col in table.primary_key.columns)
        if key not in df.columns:
            raise ValueError(f"upsert into {table.name} needs a {key!r} column; got {df.columns}")
        if df.is_empty():
            return 0
        if df[key].null_count():
            raise ValueError(f"{df[key].null_count()} rows have no {key}; {table.name} rows need one")
        cols = [c for c in df.columns if c in table.c and c != "name_search"]
        frame = df.select(cols).unique(subset=[key], keep="last", maintain_order=True)
        rows = frame.to_dicts()
        # A row written by hand no longer matches its warehouse fingerprint: clearing the stored
        # one makes the next sync compare it afresh.
        forget_hash = "sync_hash" in table.c and "sync_hash" not in cols
        for row in rows:
            if derive is not None:
                derive(row)
            if forget_hash:
                row["sync_hash"] = None
        written = list(rows[0])
        stmt = self._insert(table)
        changing = [c for c in written if c != key]
        if changing:
            stmt = stmt.on_conflict_do_update(
                index_elements=[key],
                set_={c: stmt.excluded[c] for c in changing},
                # An identical row is not rewritten: a re-sync leaves the file (and WAL) untouched.
                where=or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in changing)),
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[key])
        with self.write() as conn:
            for chunk in _chunks(rows, CHUNK_ROWS):
                conn.execute(stmt, chunk)
        self._ready = True
        return len(rows)

    # -- sync from the warehouse -------------------------------------------------------------------
    def sync_from_warehouse(self, con: duckdb.DuckDBPyConnection, *, full: bool = False) -> SyncStats:
        """Copy customers, identities and orders from the warehouse, writing only what changed.

        Each warehouse row is fingerprinted in DuckDB (``hash`` of the copied columns) and compared
        with the fingerprint stored at its last sync, so a change is found whatever caused it:
        dedupe re-linking an old order to another customer or marking it a mirror changes neither
        its ``updated_at`` nor its ``landed_at``, so a timestamp watermark would miss it. The last
        sync time and the newest timestamp seen are kept in ``sync_state`` for the operator.

        Identities and orders that left the warehouse are deleted; customers are kept (reported as
        ``stale``) because notes and manual tags hang off them.

        Args:
            con: a connection to the warehouse (read only is enough).
            full: rewrite every row, not only changed ones (after a CRM schema change, say).

        Returns:
            Rows written per table.
        """
        self.create_all()
        started = time.perf_counter()
        results = {spec.name: self._sync_table(con, spec, full=full) for spec in _SYNC_SPECS}
        return SyncStats(
            customers=results["customers"].changed,
            identities=results["identities"].changed,
            orders=results["orders"].changed,
            full=full,
            tables=results,
            seconds=round(time.perf_counter() - started, 3),
        )

    def _sync_table(self, con: duckdb.DuckDBPyConnection, spec: _SyncSpec, *, full: bool) -> TableSync:
        import polars as pl

        from warehouse.frames import query_frame, registered

        table = schema.metadata.tables[spec.name]
        key = spec.columns[0]
        present = {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = 'main'",
                [spec.source],
            ).fetchall()
        }
        if key not in present:
            raise OrderhubError(f"the warehouse has no {spec.source}.{key}; open it with warehouse.db first")
        cols = [c for c in spec.columns if c in present]
        col_list = ", ".join(f'"{c}"' for c in cols)
        # hash() is a UBIGINT; halved so it fits the signed 64-bit integers both CRM engines store.
        fingerprint = f"CAST(hash({col_list}) >> 1 AS BIGINT)"
        with self.read() as conn:
            known_rows = conn.execute(select(table.c[key], table.c.sync_hash)).all()
        known = pl.DataFrame(known_rows, schema={"key": pl.String, "sync_hash": pl.Int64}, orient="row")
        mark = f', max("{spec.watermark}")' if spec.watermark in present else ", NULL"
        with registered(con, "_crm_known", known):
            source = f"(SELECT {col_list}, {fingerprint} AS sync_hash FROM {spec.source}) w"
            unchanged = (
                "" if full else
                f' WHERE NOT EXISTS (SELECT 1 FROM _crm_known k WHERE k.key = w."{key}" AND k.sync_hash = w.sync_hash)'
            )
            changed = query_frame(con, f"SELECT * FROM {source}{unchanged}")
            gone = [
                row[0]
                for row in con.execute(
                    f'SELECT k.key FROM _crm_known k WHERE NOT EXISTS (SELECT 1 FROM {spec.source} w WHERE w."{key}" = k.key)'
                ).fetchall()
            ]
        total, watermark = con.execute(f"SELECT count(*){mark} FROM {spec.source}").fetchall()[0]
        for start in range(0, changed.height, SYNC_SLICE_ROWS):
            self._upsert(table, changed.slice(start, SYNC_SLICE_ROWS), _derive_person if spec.name != "orders" else None)
        removed = 0
        if spec.delete_gone and gone:
            with self.write() as conn:
                for start in range(0, len(gone), CHUNK_ROWS):
                    chunk = gone[start : start + CHUNK_ROWS]
                    removed += conn.execute(delete(table).where(table.c[key].in_(chunk))).rowcount
        with self.write() as conn:
            values = {"synced_at": clock.now(), "watermark": watermark, "rows": int(total), "changed": changed.height}
            stmt = self._insert(schema.sync_state).values(name=spec.name, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))
        return TableSync(
            rows=int(total),
            changed=changed.height,
            removed=removed,
            stale=0 if spec.delete_gone else len(gone),
        )

    def sync_state(self) -> dict[str, dict[str, Any]]:
        """Per synced table: when it was last synced, its newest timestamp, rows and rows changed."""
        with self.read() as conn:
            rows = conn.execute(select(schema.sync_state)).mappings().all()
        return {row["name"]: dict(row) for row in rows}

    # -- customer service writes -------------------------------------------------------------------
    def _require_customer(self, conn: Connection, customer_id: str) -> None:
        found = conn.execute(
            select(schema.customers.c.customer_id).where(schema.customers.c.customer_id == customer_id)
        ).first()
        if found is None:
            raise CustomerNotFoundError(f"no customer {customer_id!r} in the CRM store")

    def add_note(self, customer_id: str, author: str, body: str, *, now: datetime | None = None) -> int:
        """Add a note to a customer's record.

        Args:
            customer_id: the customer.
            author: who wrote it (a CS agent's name or login).
            body: the note, kept exactly as typed.
            now: the note's time (default: now).

        Returns:
            The new note's id.

        Raises:
            CustomerNotFoundError: no such customer.
            ValueError: empty author or body.
        """
        if not author.strip() or not body.strip():
            raise ValueError("a note needs an author and a body")
        with self.write() as conn:
            self._require_customer(conn, customer_id)
            result = conn.execute(
                schema.notes.insert().values(
                    customer_id=customer_id, author=author.strip(), body=body, created_at=now or clock.now()
                )
            )
            inserted = result.inserted_primary_key
            if inserted is None or inserted[0] is None:
                raise OrderhubError("the CRM store did not return the new note's id")
            return int(inserted[0])

    def add_tag(
        self, customer_id: str, tag: str, source: str = "manual", *, now: datetime | None = None
    ) -> bool:
        """Set a tag on a customer; nothing happens when it is already set by the same source.

        Args:
            customer_id: the customer.
            tag: the tag (trimmed, Unicode NFC).
            source: ``manual`` (customer service) or ``auto`` (the RFM tagger).
            now: when it was set (default: now).

        Returns:
            True when a new active tag row was added.

        Raises:
            CustomerNotFoundError: no such customer.
            ValueError: empty tag or unknown source.
        """
        tag = _clean_tag(tag, source)
        try:
            with self.write() as conn:
                self._require_customer(conn, customer_id)
                if conn.execute(_active_tag(customer_id, tag, source)).first() is not None:
                    return False
                conn.execute(
                    schema.tags.insert().values(
                        customer_id=customer_id, tag=tag, source=source, set_at=now or clock.now(), removed_at=None
                    )
                )
                return True
        except IntegrityError:
            # PostgreSQL: another agent set the same tag between our check and insert; the partial
            # unique index kept one active row, which is the outcome asked for.
            return False

    def remove_tag(
        self, customer_id: str, tag: str, source: str = "manual", *, now: datetime | None = None
    ) -> bool:
        """Remove an active tag: its row gets ``removed_at`` (history is kept, never deleted).

        Args:
            customer_id: the customer.
            tag: the tag.
            source: which source's tag to remove (``manual`` by default).
            now: when it was removed (default: now).

        Returns:
            True when an active tag was removed, False when it was not set.
        """
        tag = _clean_tag(tag, source)
        t = schema.tags
        with self.write() as conn:
            result = conn.execute(
                update(t)
                .where(t.c.customer_id == customer_id, t.c.tag == tag, t.c.source == source, t.c.removed_at.is_(None))
                .values(removed_at=now or clock.now())
            )
            return bool(result.rowcount)

    def tag_history(self, customer_id: str) -> list[dict[str, Any]]:
        """Every tag period of a customer, oldest first (``removed_at`` None while active)."""
        t = schema.tags
        with self.read() as conn:
            rows = conn.execute(select(t).where(t.c.customer_id == customer_id).order_by(t.c.set_at, t.c.id))
            return [dict(r) for r in rows.mappings()]

    # -- identity overrides (manual merge / unmerge) ------------------------------------------------
    def add_override(
        self,
        left_key: str,
        right_key: str,
        kind: str,
        *,
        author: str,
        note: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """Record a person's decision on two identity keys: merge them or keep them apart.

        The pair is stored once whatever the argument order. An active decision on the same pair
        (of either kind) is revoked first, with ``author`` and ``now``: a merge after an unmerge
        replaces it, and the history keeps both.

        Args:
            left_key: one identity key (``channel:store:...``, as in ``identities.identity_key``).
            right_key: the other identity key.
            kind: ``must_link`` (merge) or ``cannot_link`` (keep apart).
            author: who decided (a CS agent's name or login).
            note: why, kept exactly as typed (a blank note is stored as None).
            now: when (default: now).

        Returns:
            The new override's id.

        Raises:
            ValueError: an empty or repeated key, an unknown kind, or no author.
            CrmNotReadyError: the store was never created.
        """
        left, right = _override_pair(left_key, right_key)
        if kind not in OVERRIDE_KINDS:
            raise ValueError(f"override kind {kind!r}: use one of {OVERRIDE_KINDS} (merge / keep apart)")
        author = _override_author(author)
        when = now or clock.now()
        self.ensure_ready()
        with self.write() as conn:
            self._lock_pair(conn, left, right)
            conn.execute(_revoke_pair(left, right, author, when))
            result = conn.execute(
                schema.identity_overrides.insert().values(
                    left_key=left,
                    right_key=right,
                    kind=kind,
                    note=note if note and note.strip() else None,
                    author=author,
                    created_at=when,
                )
            )
            inserted = result.inserted_primary_key
            if inserted is None or inserted[0] is None:
                raise OrderhubError("the CRM store did not return the new override's id")
            return int(inserted[0])

    def _lock_pair(self, conn: Connection, left: str, right: str) -> None:
        # Decisions on one pair run one after the other, so the later one revokes the earlier. SQLite
        # writers are already serial (BEGIN IMMEDIATE). On PostgreSQL, READ COMMITTED would let two
        # agents both find no active row and the second insert hit the unique index; a transaction
        # advisory lock per pair makes the second wait and then see the first's row.
        # A hash collision between two pairs only makes one wait for the other.
        # https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
        if self.engine.dialect.name == "postgresql":
            conn.execute(
                select(func.pg_advisory_xact_lock(func.hashtextextended(f"identity_overrides {left} {right}", 0)))
            )

    def revoke_override(
        self, left_key: str, right_key: str, *, author: str, now: datetime | None = None
    ) -> bool:
        """Revoke the active decision on a pair (either argument order): the resolver decides again.

        The row is kept with ``revoked_at`` and ``revoked_by``, never deleted.

        Args:
            left_key: one identity key.
            right_key: the other identity key.
            author: who revoked it.
            now: when (default: now).

        Returns:
            True when an active override was revoked, False when the pair had none.

        Raises:
            ValueError: an empty or repeated key, or no author.
        """
        left, right = _override_pair(left_key, right_key)
        author = _override_author(author)
        self.ensure_ready()
        with self.write() as conn:
            self._lock_pair(conn, left, right)
            return bool(conn.execute(_revoke_pair(left, right, author, now or clock.now())).rowcount)

    def overrides(self, *, active_only: bool = True) -> list[dict[str, Any]]:
        """Identity overrides as dicts (columns in table order), newest first.

        Args:
            active_only: only the decisions in force (default); False adds the revoked ones.
        """
        self.ensure_ready()
        o = schema.identity_overrides
        query = select(o).order_by(o.c.created_at.desc(), o.c.override_id.desc())
        if active_only:
            query = query.where(o.c.revoked_at.is_(None))
        with self.read() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def active_links(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The decisions in force, for the identity resolver, oldest first.

        Returns:
            ``(must_links, cannot_links)``: ``(left_key, right_key)`` pairs with ``left_key < right_key``.
        """
        self.ensure_ready()
        o = schema.identity_overrides
        query = (
            select(o.c.left_key, o.c.right_key, o.c.kind)
            .where(o.c.revoked_at.is_(None))
            .order_by(o.c.created_at, o.c.override_id)
        )
        must: list[tuple[str, str]] = []
        cannot: list[tuple[str, str]] = []
        with self.read() as conn:
            for left, right, kind in conn.execute(query):
                (must if kind == "must_link" else cannot).append((left, right))
        return must, cannot

    def count(self, table: str) -> int:
        """Rows in one CRM table (for the operator and tests)."""
        with self.read() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.metadata.tables[table])).scalar_one())


def _active_tag(customer_id: str, tag: str, source: str) -> Any:
    t = schema.tags
    return select(t.c.id).where(
        t.c.customer_id == customer_id, t.c.tag == tag, t.c.source == source, t.c.removed_at.is_(None)
    )


def _clean_tag(tag: str, source: str) -> str:
    if source not in TAG_SOURCES:
        raise ValueError(f"tag source {source!r}: use one of {TAG_SOURCES}")
    clean = unicodedata.normalize("NFC", tag).strip()
    if not clean:
        raise ValueError("a tag cannot be empty")
    return clean


def _derive_person(row: dict[str, Any]) -> None:
    # Search keys live next to the exact values: lookups compare folded text, people see the original.
    if "name" in row:
        row["name_search"] = name_key(row["name"])
    if "email" in row:
        row["email"] = email_key(row["email"])


def _override_pair(left_key: str, right_key: str) -> tuple[str, str]:
    # Keys are compared as stored in the warehouse; only stray surrounding blanks are dropped.
    left, right = (left_key or "").strip(), (right_key or "").strip()
    if not left or not right:
        raise ValueError(
            f"an identity override needs two identity keys, got {left_key!r} and {right_key!r}; "
            "`orderhub customer QUERY` shows a customer's identity keys"
        )
    if left == right:
        raise ValueError(f"an identity override needs two different identity keys, got {left!r} twice")
    return (left, right) if left < right else (right, left)


def _override_author(author: str) -> str:
    clean = (author or "").strip()
    if not clean:
        raise ValueError("an identity override needs an author: who decided (a CS agent's name or login)")
    return clean


def _revoke_pair(left: str, right: str, author: str, when: datetime) -> Any:
    o = schema.identity_overrides
    return (
        update(o)
        .where(o.c.left_key == left, o.c.right_key == right, o.c.revoked_at.is_(None))
        .values(revoked_at=when, revoked_by=author)
    )
