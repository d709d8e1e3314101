"""CRM store identity overrides: manual merge (must-link) and unmerge (cannot-link) with history."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest
from sqlalchemy import MetaData, inspect, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError, StatementError

from crm import schema
from crm.store import CrmNotReadyError, CrmStore
from tests.crm.conftest import crm_url

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
T1, T2, T3 = T0 + timedelta(hours=1), T0 + timedelta(hours=2), T0 + timedelta(hours=3)
SHOP = "shopify:acme-us:ck:7001234"
AMZ = "amazon:amz-us:email:x@y.com"  # sorts before SHOP: stored as the left key
WOO = "woocommerce:shop-eu:ck:42"


def test_a_pair_is_stored_once_in_key_order(crm: CrmStore) -> None:
    override_id = crm.add_override(SHOP, AMZ, "must_link", author="ann", note="same person, phoned in", now=T0)
    [row] = crm.overrides()
    assert row == {
        "override_id": override_id,
        "left_key": AMZ,
        "right_key": SHOP,
        "kind": "must_link",
        "note": "same person, phoned in",
        "author": "ann",
        "created_at": T0,
        "revoked_at": None,
        "revoked_by": None,
    }
    assert list(row) == [c.name for c in schema.identity_overrides.columns]  # keys in stored order
    # The same pair the other way round is the same pair: revoking either way finds it.
    assert crm.revoke_override(AMZ, SHOP, author="bob", now=T1) is True
    assert crm.overrides() == []


def test_a_new_decision_replaces_the_active_one_and_history_is_kept(crm: CrmStore) -> None:
    first = crm.add_override(AMZ, SHOP, "cannot_link", author="ann", now=T0)
    second = crm.add_override(SHOP, AMZ, "must_link", author="bob", note="merge after all", now=T1)
    assert second != first
    active = crm.overrides()
    assert [(o["override_id"], o["kind"], o["author"]) for o in active] == [(second, "must_link", "bob")]
    history = crm.overrides(active_only=False)
    assert [(o["override_id"], o["revoked_at"], o["revoked_by"]) for o in history] == [
        (second, None, None),  # newest first
        (first, T1, "bob"),  # revoked by whoever replaced it, when they did
    ]
    # The same kind again also replaces (a fresh note and author), never two active rows.
    third = crm.add_override(AMZ, SHOP, "must_link", author="cy", now=T2)
    assert [o["override_id"] for o in crm.overrides()] == [third]
    assert crm.count("identity_overrides") == 3


def test_revoke_says_whether_there_was_anything_to_revoke(crm: CrmStore) -> None:
    assert crm.revoke_override(AMZ, SHOP, author="ann", now=T0) is False
    override_id = crm.add_override(AMZ, SHOP, "cannot_link", author="ann", now=T0)
    crm.add_override(AMZ, WOO, "must_link", author="ann", now=T0)
    assert crm.revoke_override(SHOP, AMZ, author="bob", now=T1) is True
    assert crm.revoke_override(SHOP, AMZ, author="bob", now=T2) is False  # already revoked: untouched
    [revoked] = [o for o in crm.overrides(active_only=False) if o["override_id"] == override_id]
    assert (revoked["revoked_at"], revoked["revoked_by"]) == (T1, "bob")
    assert [(o["left_key"], o["right_key"]) for o in crm.overrides()] == [(AMZ, WOO)]  # other pairs untouched


def test_active_links_split_merges_from_unmerges(crm: CrmStore) -> None:
    assert crm.active_links() == ([], [])
    crm.add_override(SHOP, AMZ, "must_link", author="ann", now=T0)
    crm.add_override(WOO, SHOP, "cannot_link", author="ann", now=T1)
    crm.add_override("b:1", "a:1", "must_link", author="ann", now=T2)
    crm.add_override("c:1", "d:1", "cannot_link", author="ann", now=T2)
    crm.revoke_override("c:1", "d:1", author="ann", now=T3)
    must, cannot = crm.active_links()
    assert must == [(AMZ, SHOP), ("a:1", "b:1")]  # oldest decision first, each pair in key order
    assert cannot == [(SHOP, WOO)]
    crm.add_override(AMZ, SHOP, "cannot_link", author="bob", now=T3)  # unmerge after a merge
    assert crm.active_links() == ([("a:1", "b:1")], [(SHOP, WOO), (AMZ, SHOP)])


@pytest.mark.parametrize(
    ("left", "right", "kind", "author", "message"),
    [
        ("", SHOP, "must_link", "ann", "needs two identity keys"),
        (SHOP, "   ", "must_link", "ann", "needs two identity keys"),
        (SHOP, f" {SHOP} ", "must_link", "ann", "two different identity keys"),
        (SHOP, AMZ, "merge", "ann", r"override kind 'merge': use one of \('must_link', 'cannot_link'\)"),
        (SHOP, AMZ, "must_link", " ", "needs an author"),
    ],
)
def test_bad_input_is_refused_with_what_to_do(
    crm: CrmStore, left: str, right: str, kind: str, author: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        crm.add_override(left, right, kind, author=author)
    assert crm.count("identity_overrides") == 0


def test_revoke_validates_too(crm: CrmStore) -> None:
    with pytest.raises(ValueError, match="two different identity keys"):
        crm.revoke_override(SHOP, SHOP, author="ann")
    with pytest.raises(ValueError, match="needs an author"):
        crm.revoke_override(SHOP, AMZ, author="")


def test_keys_are_trimmed_but_otherwise_kept_exactly(crm: CrmStore) -> None:
    crm.add_override(f"  {SHOP}\n", "Amazon:AMZ-US:email:X@y.com", "must_link", author=" ann ", now=T0)
    [row] = crm.overrides()
    # Case is significant (identity keys match the warehouse exactly); code-point order: "A" < "s".
    assert (row["left_key"], row["right_key"], row["author"]) == ("Amazon:AMZ-US:email:X@y.com", SHOP, "ann")


def test_unicode_notes_are_kept_exactly_and_blank_notes_are_none(crm: CrmStore) -> None:
    note = "Zoë Ångström rief an 📞 — «même personne», 李小龍 ≠ 李小龙\n  zweite Zeile "
    crm.add_override(SHOP, AMZ, "must_link", author="Siobhán Ó Súilleabháin", note=note, now=T0)
    crm.add_override(SHOP, WOO, "cannot_link", author="ann", note="   ", now=T1)
    by_pair = {(o["left_key"], o["right_key"]): o for o in crm.overrides()}
    assert by_pair[(AMZ, SHOP)]["note"] == note
    assert by_pair[(AMZ, SHOP)]["author"] == "Siobhán Ó Súilleabháin"
    assert by_pair[(SHOP, WOO)]["note"] is None


def test_times_are_aware_utc_and_naive_times_are_refused(crm: CrmStore) -> None:
    berlin = datetime(2025, 3, 30, 3, 30, tzinfo=timezone(timedelta(hours=2)))
    crm.add_override(SHOP, AMZ, "must_link", author="ann", now=berlin)
    [row] = crm.overrides()
    assert row["created_at"] == berlin and row["created_at"].utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="naive datetime"):
        crm.add_override(SHOP, WOO, "must_link", author="ann", now=datetime(2025, 1, 1))  # deliberately naive
    # The failed transaction revoked nothing and added nothing.
    assert [o["right_key"] for o in crm.overrides()] == [SHOP]
    before = datetime.now(UTC)
    crm.add_override(SHOP, WOO, "cannot_link", author="ann")  # default: orderhub.clock.now()
    latest = crm.overrides()[0]
    assert latest["right_key"] == WOO and latest["created_at"] >= before - timedelta(seconds=1)


def test_the_database_allows_one_active_override_per_pair(crm: CrmStore) -> None:
    crm.add_override(SHOP, AMZ, "must_link", author="ann", now=T0)
    with pytest.raises(IntegrityError), crm.write() as conn:  # a writer that skipped add_override's revoke
        conn.execute(
            schema.identity_overrides.insert().values(
                left_key=AMZ, right_key=SHOP, kind="cannot_link", author="bob", created_at=T1
            )
        )
    with pytest.raises(IntegrityError), crm.write() as conn:
        conn.execute(
            schema.identity_overrides.insert().values(left_key="a", right_key="b", kind="merge", created_at=T1)
        )
    assert crm.count("identity_overrides") == 1


def test_the_pair_index_and_the_active_unique_index_exist(crm: CrmStore) -> None:
    found = inspect(crm.engine).get_indexes("identity_overrides")
    indexes = {ix["name"]: (ix["column_names"], bool(ix["unique"])) for ix in found}
    assert indexes["ix_identity_overrides_pair"] == (["left_key", "right_key"], False)
    assert indexes["ux_identity_overrides_active"] == (["left_key", "right_key"], True)


def test_agents_deciding_on_one_pair_at_once_leave_one_active_decision(crm: CrmStore) -> None:
    errors: list[SQLAlchemyError] = []

    def decide(agent: int) -> None:
        store = CrmStore(crm.url)  # another process's view: its own engine and connections
        try:
            for i in range(10):
                store.add_override(SHOP, AMZ, ("must_link", "cannot_link")[(agent + i) % 2], author=f"agent{agent}")
        except SQLAlchemyError as exc:  # e.g. the unique index refusing a second active row
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=decide, args=(agent,)) for agent in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert crm.count("identity_overrides") == 40
    assert len(crm.overrides()) == 1  # every earlier decision was revoked by the next one
    assert all(o["revoked_by"] for o in crm.overrides(active_only=False)[1:])


def _old_store(url: str) -> None:
    """A CRM store as created before identity_overrides existed, with a customer, a note and a tag."""
    old = MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name != "identity_overrides":
            table.to_metadata(old)
    store = CrmStore(url)
    try:
        old.create_all(store.engine)
        with store.read() as conn:
            assert not store.engine.dialect.has_table(conn, "identity_overrides")
        store.upsert_customers(pl.DataFrame({"customer_id": ["c1"], "name": ["Zoë Ångström"]}))
        store.add_note("c1", "ann", "VIP since 2019", now=T0)
        store.add_tag("c1", "wholesale", now=T0)
    finally:
        store.close()


def _assert_old_rows_intact(store: CrmStore) -> None:
    with store.read() as conn:
        assert conn.execute(select(schema.customers.c.name)).scalar_one() == "Zoë Ångström"
        assert conn.execute(select(schema.notes.c.body)).scalar_one() == "VIP since 2019"
    assert [(t["tag"], t["removed_at"]) for t in store.tag_history("c1")] == [("wholesale", None)]


@pytest.mark.parametrize("opened_with", ["create_all", "ensure_ready"])
def test_a_store_created_before_the_table_gets_it_with_its_rows_intact(tmp_path, opened_with: str) -> None:
    url = crm_url(tmp_path)
    _old_store(url)
    store = CrmStore(url)
    try:
        getattr(store, opened_with)()
        assert store.active_links() == ([], [])  # the read path creates the missing table, too
        store.add_override(SHOP, AMZ, "must_link", author="ann", now=T1)
        assert store.active_links() == ([(AMZ, SHOP)], [])
        with store.read() as conn:
            assert store.engine.dialect.has_table(conn, "identity_overrides")
        _assert_old_rows_intact(store)
    finally:
        store.close()
    reopened = CrmStore(url)  # another process later: the decision persisted
    try:
        reopened.create_all()  # idempotent on the upgraded store
        assert reopened.active_links() == ([(AMZ, SHOP)], [])
        _assert_old_rows_intact(reopened)
    finally:
        reopened.close()


def test_a_store_never_created_says_what_to_do(tmp_path) -> None:
    store = CrmStore(f"sqlite:///{tmp_path / 'new' / 'crm.sqlite'}")
    try:
        with pytest.raises(CrmNotReadyError, match="orderhub tags"):
            store.active_links()
        with pytest.raises(CrmNotReadyError, match="orderhub tags"):
            store.add_override(SHOP, AMZ, "must_link", author="ann")
    finally:
        store.close()
