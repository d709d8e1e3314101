"""CRM store: idempotent upserts, exact money, UTC times, Unicode, WAL concurrency, sync from the warehouse."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from crm import schema
from crm.store import CrmNotReadyError, CrmStore, CustomerNotFoundError

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SQLITE_ONLY = pytest.mark.skipif(
    not os.environ.get("ORDERHUB_TEST_CRM_URL", "sqlite").startswith("sqlite"),
    reason="SQLite-specific: WAL, busy timeout and file locking",
)

CUSTOMER_SCHEMA: dict[str, Any] = {
    "customer_id": pl.String,
    "name": pl.String,
    "email": pl.String,
    "phone": pl.String,
    "country": pl.String,
    "first_order_at": pl.Datetime("us", "UTC"),
    "last_order_at": pl.Datetime("us", "UTC"),
    "orders_count": pl.Int32,
    "total_spent_base": pl.Decimal(18, 4),
    "updated_at": pl.Datetime("us", "UTC"),
}


def customers_frame(*rows: dict) -> pl.DataFrame:
    base = {
        "name": None, "email": None, "phone": None, "country": "US", "first_order_at": T0, "last_order_at": T0,
        "orders_count": 1, "total_spent_base": Decimal("10.0000"), "updated_at": T0,
    }  # fmt: skip
    return pl.DataFrame([{**base, **r} for r in rows], schema=CUSTOMER_SCHEMA)


def fetch_customer(crm: CrmStore, customer_id: str) -> dict:
    with crm.read() as conn:
        row = conn.execute(select(schema.customers).where(schema.customers.c.customer_id == customer_id)).mappings()
        return dict(row.one())


@SQLITE_ONLY
def test_create_all_is_idempotent_and_uses_wal(crm: CrmStore) -> None:
    crm.create_all()
    crm.create_all()
    with crm.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 1000
        names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_customers_email", "ix_customers_phone", "ix_customers_name_search", "ix_orders_order_number",
            "ix_orders_customer", "ix_identities_customer_id", "ux_tags_active"} <= names  # fmt: skip


def test_a_store_never_created_says_what_to_do(tmp_path) -> None:
    store = CrmStore(f"sqlite:///{tmp_path / 'new' / 'crm.sqlite'}")
    with pytest.raises(CrmNotReadyError, match="orderhub tags"):
        store.ensure_ready()


def test_upsert_is_idempotent_and_updates_changed_rows(crm: CrmStore) -> None:
    frame = customers_frame({"customer_id": "c1", "name": "Ann"}, {"customer_id": "c2", "name": "Bob"})
    assert crm.upsert_customers(frame) == 2
    assert crm.upsert_customers(frame) == 2
    assert crm.count("customers") == 2
    crm.upsert_customers(customers_frame({"customer_id": "c2", "name": "Robert", "orders_count": 3}))
    assert crm.count("customers") == 2
    row = fetch_customer(crm, "c2")
    assert (row["name"], row["orders_count"], row["name_search"]) == ("Robert", 3, "robert")
    # The same key twice in one frame: the last row wins, no conflict error.
    crm.upsert_customers(customers_frame({"customer_id": "c1", "name": "A"}, {"customer_id": "c1", "name": "Ann B"}))
    assert fetch_customer(crm, "c1")["name"] == "Ann B"


def test_upsert_with_a_subset_of_columns_keeps_the_others(crm: CrmStore) -> None:
    crm.upsert_customers(customers_frame({"customer_id": "c1", "name": "Ann", "email": "ann@example.com"}))
    crm.upsert_customers(pl.DataFrame({"customer_id": ["c1"], "phone": ["+14155550132"]}))
    row = fetch_customer(crm, "c1")
    assert (row["name"], row["email"], row["phone"]) == ("Ann", "ann@example.com", "+14155550132")


def test_money_is_exact_decimal(crm: CrmStore) -> None:
    big = Decimal("12345678901234.5678")
    crm.upsert_customers(customers_frame({"customer_id": "c1", "total_spent_base": big}))
    value = fetch_customer(crm, "c1")["total_spent_base"]
    assert isinstance(value, Decimal) and value == big and str(value) == "12345678901234.5678"
    if crm.engine.dialect.name == "sqlite":  # an exact integer of 1/10000 units, never a REAL
        with crm.read() as conn:
            assert conn.exec_driver_sql("SELECT typeof(total_spent_base) FROM customers").scalar() == "integer"


def test_money_refuses_floats_and_rounding(crm: CrmStore) -> None:
    with pytest.raises(StatementError, match="never a float"):
        crm.upsert_customers(pl.DataFrame({"customer_id": ["c1"], "total_spent_base": [0.1]}))
    with pytest.raises(StatementError, match="more than 4 decimal places"):
        crm.upsert_customers(pl.DataFrame({"customer_id": ["c1"], "total_spent_base": [Decimal("0.12345")]},
                                          schema={"customer_id": pl.String, "total_spent_base": pl.Decimal(18, 5)}))
    assert crm.count("customers") == 0  # the failed transaction left nothing behind


def test_times_round_trip_as_aware_utc(crm: CrmStore) -> None:
    berlin = datetime(2025, 3, 30, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    frame = pl.DataFrame(
        {"customer_id": ["c1"], "first_order_at": [berlin]},
        schema={"customer_id": pl.String, "first_order_at": pl.Datetime("us", "Europe/Berlin")},
    )
    crm.upsert_customers(frame)
    value = fetch_customer(crm, "c1")["first_order_at"]
    assert value == berlin and value.utcoffset() == timedelta(0)
    assert value == datetime(2025, 3, 29, 23, 30, tzinfo=UTC)
    naive = pl.DataFrame({"customer_id": ["c2"], "first_order_at": [datetime(2025, 1, 1)]})  # deliberately naive
    with pytest.raises(StatementError, match="naive datetime"):
        crm.upsert_customers(naive)


def test_unicode_is_kept_exactly(crm: CrmStore) -> None:
    names = {"c1": "Zoë Ångström", "c2": "Jürgen Müßig", "c3": "李小龍", "c4": "Siobhán Ó Súilleabháin"}
    crm.upsert_customers(customers_frame(*({"customer_id": k, "name": v} for k, v in names.items())))
    for cid, name in names.items():
        assert fetch_customer(crm, cid)["name"] == name
    assert fetch_customer(crm, "c2")["name_search"] == "jurgen mussig"
    note_id = crm.add_note("c1", "Ann (CS)", "Rückruf erbeten 📞 — «dringend»")
    with crm.read() as conn:
        assert conn.execute(select(schema.notes.c.body).where(schema.notes.c.id == note_id)).scalar_one() == (
            "Rückruf erbeten 📞 — «dringend»"
        )


def test_reader_reads_while_a_writer_transaction_is_open(crm: CrmStore, tmp_path) -> None:
    crm.upsert_customers(customers_frame({"customer_id": "c1", "name": "Ann"}))
    other = CrmStore(crm.url)  # another process's view: its own engine and connections
    try:
        with crm.write() as writer:
            writer.execute(schema.customers.update().values(name="Ann (being edited)"))
            # The writer holds the write lock; a reader neither blocks nor sees uncommitted data.
            started = time.perf_counter()
            assert fetch_customer(other, "c1")["name"] == "Ann"
            assert time.perf_counter() - started < 1
        assert fetch_customer(other, "c1")["name"] == "Ann (being edited)"

        # And the reverse: a long read snapshot does not stop a writer from committing (WAL).
        with other.read() as reader:
            assert reader.execute(text("SELECT count(*) FROM notes")).scalar() == 0
            crm.add_note("c1", "Bob", "first")
            assert reader.execute(text("SELECT count(*) FROM notes")).scalar() == 0  # its snapshot
        assert other.count("notes") == 1
    finally:
        other.close()


@SQLITE_ONLY
def test_a_second_writer_waits_for_the_first(crm: CrmStore) -> None:
    crm.upsert_customers(customers_frame({"customer_id": "c1", "name": "Ann"}))
    other = CrmStore(crm.url)
    done = threading.Event()

    def note() -> None:
        other.add_note("c1", "Bob", "written while a sync held the lock")
        done.set()

    try:
        with crm.write() as writer:
            writer.execute(schema.customers.update().values(orders_count=2))
            thread = threading.Thread(target=note)
            thread.start()
            time.sleep(0.2)
            assert not done.is_set()  # waiting on busy_timeout, not failing
        thread.join(5)
        assert done.is_set() and crm.count("notes") == 1
    finally:
        other.close()


def test_notes_and_tags_need_a_known_customer(crm: CrmStore) -> None:
    with pytest.raises(CustomerNotFoundError):
        crm.add_note("nobody", "Ann", "hello")
    with pytest.raises(CustomerNotFoundError):
        crm.add_tag("nobody", "wholesale")
    crm.upsert_customers(customers_frame({"customer_id": "c1"}))
    with pytest.raises(ValueError, match="author and a body"):
        crm.add_note("c1", "Ann", "   ")
    with pytest.raises(ValueError, match="source"):
        crm.add_tag("c1", "x", source="robot")


def test_manual_tags_keep_history(crm: CrmStore) -> None:
    crm.upsert_customers(customers_frame({"customer_id": "c1"}))
    t1, t2, t3 = T0, T0 + timedelta(days=1), T0 + timedelta(days=2)
    assert crm.add_tag("c1", "wholesale", now=t1) is True
    assert crm.add_tag("c1", " wholesale ", now=t2) is False  # already active: untouched
    assert crm.remove_tag("c1", "wholesale", now=t2) is True
    assert crm.remove_tag("c1", "wholesale", now=t3) is False
    assert crm.add_tag("c1", "wholesale", now=t3) is True
    history = [(h["set_at"], h["removed_at"], h["source"]) for h in crm.tag_history("c1")]
    assert history == [(t1, t2, "manual"), (t3, None, "manual")]


# -- sync from the warehouse ---------------------------------------------------------------------
def _warehouse_business(wh_insert, make_order) -> None:
    wh_insert("customers", [
        {"customer_id": "c1", "name": "Zoë Ångström", "email": "zoe@example.com", "phone": "+14155550132",
         "country": "US", "first_order_at": T0, "last_order_at": T0, "orders_count": 2,
         "total_spent_base": Decimal("1234.5678"), "updated_at": T0},
        {"customer_id": "c2", "name": "Jürgen Müßig", "email": "jm@example.de", "phone": None,
         "country": "DE", "first_order_at": T0, "last_order_at": T0, "orders_count": 1,
         "total_spent_base": Decimal("0.1000"), "updated_at": T0},
    ])  # fmt: skip
    wh_insert("customer_identities", [
        {"identity_key": "i1", "channel": "shopify", "store": "shop1", "channel_customer_key": "77",
         "email": "zoe@example.com", "phone": "+14155550132", "name": "Zoë Ångström", "line1": "1 Main St",
         "city": "San Francisco", "postal_code": "94103", "country": "US", "customer_id": "c1", "rule": "self",
         "score": None, "linked_at": T0},
        {"identity_key": "i2", "channel": "amazon", "store": "na", "channel_customer_key": None,
         "email": "x1y2@marketplace.amazon.com", "phone": None, "name": "Zoe Angstrom", "line1": None,
         "city": "San Francisco", "postal_code": "94103", "country": "US", "customer_id": "c1", "rule": "name+address",
         "score": 0.93, "linked_at": T0},
    ])  # fmt: skip
    orders = [
        make_order("shopify:shop1:1001", "c1", T0, total=Decimal("1234.5678"), total_base=Decimal("1234.5678")),
        make_order("amazon:na:113-1", "c2", T0 - timedelta(days=1)),
    ]
    wh_insert("orders", [{**o, "landed_at": o["updated_at"]} for o in orders])


def test_sync_copies_the_warehouse_and_then_only_changes(crm: CrmStore, wh, wh_insert, make_order) -> None:
    _warehouse_business(wh_insert, make_order)
    first = crm.sync_from_warehouse(wh)
    assert (first.customers, first.identities, first.orders) == (2, 2, 2)
    assert fetch_customer(crm, "c1")["name"] == "Zoë Ångström"
    assert fetch_customer(crm, "c1")["total_spent_base"] == Decimal("1234.5678")

    second = crm.sync_from_warehouse(wh)
    assert (second.customers, second.identities, second.orders) == (0, 0, 0)

    # dedupe re-links an old order to another customer: neither updated_at nor landed_at changes.
    wh.execute("UPDATE orders SET customer_id = 'c1' WHERE order_id = 'amazon:na:113-1'")
    wh.execute("DELETE FROM customer_identities WHERE identity_key = 'i2'")
    wh.execute("DELETE FROM customers WHERE customer_id = 'c2'")
    third = crm.sync_from_warehouse(wh)
    assert (third.customers, third.identities, third.orders) == (0, 0, 1)
    assert third.tables["identities"].removed == 1
    assert third.tables["customers"].stale == 1  # kept: notes and tags may hang off it
    with crm.read() as conn:
        owner = conn.execute(
            select(schema.orders.c.customer_id).where(schema.orders.c.order_id == "amazon:na:113-1")
        ).scalar_one()
    assert owner == "c1"
    assert crm.count("identities") == 1

    state = crm.sync_state()
    assert set(state) == {"customers", "identities", "orders"}
    assert state["orders"]["rows"] == 2 and state["orders"]["changed"] == 1
    assert state["customers"]["watermark"] == T0

    full = crm.sync_from_warehouse(wh, full=True)
    assert full.orders == 2 and full.full


def test_a_hand_written_row_is_resynced(crm: CrmStore, wh, wh_insert, make_order) -> None:
    _warehouse_business(wh_insert, make_order)
    crm.sync_from_warehouse(wh)
    crm.upsert_customers(pl.DataFrame({"customer_id": ["c1"], "name": ["typo"]}))
    assert crm.sync_from_warehouse(wh).customers == 1
    assert fetch_customer(crm, "c1")["name"] == "Zoë Ångström"
