"""resolve_customers with a stored people index: new identities are added, anything else resolves in full."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dedupe.identity import resolve_customers
from dedupe.mirrors import resolve_mirrors
from sandbox.generator import generate
from tests.warehouse.factories import line_rows, order_rows
from warehouse.db import Warehouse


def _rows(business, orders) -> list[dict]:
    rows = []
    for o in orders:
        a = o.ship_to
        rows.append({"channel": o.channel, "store": o.store, "external_id": o.external_id, "email": o.email,
                     "phone": o.phone, "buyer_name": o.buyer_name, "channel_customer_key": o.channel_customer_id,
                     "ship_name": a.name if a else None, "ship_line1": a.line1 if a else None,
                     "ship_line2": a.line2 if a else None, "ship_city": a.city if a else None,
                     "ship_postal_code": a.postal_code if a else None, "ship_country": a.country if a else None,
                     "created_at": o.created_at, "updated_at": o.created_at, "pii_masked": o.pii_masked})
    return rows


@pytest.fixture(scope="module")
def business():
    return generate(seed=8, orders=2500, days=60, start=datetime(2026, 11, 1, tzinfo=UTC), future_days=0)


def _load(wh: Warehouse, rows: list[dict]) -> None:
    orders = order_rows(rows)
    wh.merge_orders(orders, line_rows(orders))
    resolve_mirrors(wh.con)


def _customers(wh: Warehouse) -> dict[str, str]:
    return dict(wh.con.execute("SELECT order_id, customer_id FROM orders").fetchall())


def test_new_identities_are_added_and_give_what_a_full_run_gives(business, tmp_path) -> None:
    orders = [o for o in business.orders if o.person_id and o.defect is None and o.mirror_of is None]
    cut = int(len(orders) * 0.9)
    index = tmp_path / "state" / "people.duckdb"
    with Warehouse.open(tmp_path / "a.duckdb") as wh, Warehouse.open(tmp_path / "b.duckdb") as full:
        _load(wh, _rows(business, orders[:cut]))
        first = resolve_customers(wh.con, index_path=index)
        assert first.mode == "full" and first.model.startswith("trained")
        assert resolve_customers(wh.con, index_path=index).mode == "unchanged"
        _load(wh, _rows(business, orders[cut:]))  # later orders: new customers and new accounts of known ones
        added = resolve_customers(wh.con, index_path=index)
        _load(full, _rows(business, orders))
        resolve_customers(full.con)
        got, want = _customers(wh), _customers(full)
        if added.mode == "full":
            pytest.fail("new orders changed a known identity's latest details; pick orders that do not")
        assert added.mode == "add"
        # The same partition of orders into customers as a full run (ids may differ where clusters merged).
        def groups(customer_of: dict[str, str]) -> set[frozenset[str]]:
            by: dict[str, set[str]] = {}
            for order, customer in customer_of.items():
                by.setdefault(customer, set()).add(order)
            return {frozenset(v) for v in by.values()}
        a, b = groups(got), groups(want)
        assert len(a ^ b) <= 0.01 * len(b)
        person = {o.order_id: o.person_id for o in orders}
        mixed = [g for g in a if len({person[x] for x in g}) > 1]
        assert len(mixed) <= 2
        links = wh.con.execute("SELECT count(*) FROM customer_links").fetchall()[0][0]
        assert links > 0


def test_a_changed_identity_or_decision_resolves_in_full(business, tmp_path) -> None:
    orders = [o for o in business.orders if o.person_id and o.defect is None and o.mirror_of is None][:800]
    index = tmp_path / "people.duckdb"
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        _load(wh, _rows(business, orders))
        resolve_customers(wh.con, index_path=index)
        keys = [k for (k,) in wh.con.execute("SELECT identity_key FROM customer_identities ORDER BY 1 LIMIT 2").fetchall()]
        again = resolve_customers(wh.con, index_path=index, cannot_link=[(keys[0], keys[1])])
        assert again.mode == "full"
        wh.con.execute("UPDATE orders SET ship_city = 'Elsewhere' WHERE order_id = ?", [orders[0].order_id])
        assert resolve_customers(wh.con, index_path=index, cannot_link=[(keys[0], keys[1])]).mode == "full"
