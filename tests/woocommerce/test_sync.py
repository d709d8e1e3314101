"""Emulator ↔ connector over real HTTP on loopback: syncs, cursors, faults, crashes."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from connectors.base import sync_stream
from orderhub import clock
from orderhub.errors import AuthError, RetriableError
from sandbox.model import Order
from tests.woocommerce.helpers import SITES, WooEnv, make_order

DAY = timedelta(days=1)


def catalogue(now: datetime, n: int = 250) -> list[Order]:
    """``n`` visible orders over the last 3 days, a few that change or appear within the next day."""
    start = now - 3 * DAY
    orders = [make_order(i, start + timedelta(minutes=15 * i)) for i in range(n)]
    for i in range(0, n, 25):  # shipped tomorrow (after the clock moves)
        orders[i].versions.append(orders[i].versions[0].__class__(now + DAY / 2, "fulfilled", "paid"))
    orders += [make_order(n + i, now + DAY / 3 + timedelta(minutes=i)) for i in range(3)]  # created tomorrow
    orders += [make_order(900 + i, start, store="shop-b") for i in range(4)]  # another shop on the same server
    return orders


def test_first_sync_lands_every_visible_order_once_then_nothing(woo, now) -> None:
    env: WooEnv = woo(catalogue(now))
    first = env.sync()
    assert first.records == 250 and first.batches == 3  # 100 + 100 + 50 per page
    ids = env.landed_ids()
    assert Counter(ids).most_common(1)[0][1] == 1 and set(ids) == env.visible() and len(ids) == 250
    until = datetime.fromisoformat(first.cursor["since"])
    assert until.microsecond == 0 and now - timedelta(seconds=40) <= until <= clock.now() - timedelta(seconds=30)

    second = env.sync()
    assert second.records == 0 and second.batches == 1  # one empty batch moves the cursor
    assert second.manifests[0].parts == [] and second.cursor["since"] >= first.cursor["since"]
    # The other shop on the same server is separate.
    assert env.sync("shop-b").records == 4


def test_first_sync_backfills_in_steps_that_each_save_progress(woo, now) -> None:
    orders = [make_order(i, now - timedelta(days=d)) for i, d in enumerate((80, 79, 50, 10))]
    env: WooEnv = woo(orders)
    result = env.sync()
    assert [m.records for m in result.manifests] == [2, 1, 1]  # one page per 30-day step, none empty
    cursors = [datetime.fromisoformat(m.cursor["since"]) for m in result.manifests]
    assert cursors == sorted(cursors) and cursors[-1] == datetime.fromisoformat(result.cursor["since"])
    assert cursors[1] - cursors[0] == timedelta(days=30)  # each step's last page moves the cursor to its end
    assert set(env.landed_ids()) == env.visible()


def test_clock_advance_lands_only_changed_and_new_orders(woo, now) -> None:
    env: WooEnv = woo(catalogue(now))
    env.sync()
    env.advance(DAY)
    changed = env.sync()
    assert changed.records == 10 + 3  # every 25th order shipped, three new ones
    out = env.normalized()
    latest = out.orders.sort("updated_at").unique("order_id", keep="last")
    assert latest.height == 253 and out.quarantine.is_empty()
    truth = {o.order_id: o.version_at(clock.now()) for o in env.source.orders_for("shop-a")}
    for order_id, status, payment in latest.select("order_id", "status", "payment_status").rows():
        assert (status, payment) == (truth[order_id].status, truth[order_id].payment_status), order_id


@pytest.mark.parametrize("fault", ["429", "429_bare", "500", "503", "truncate", "reset", "timeout", "duplicate_page"])
def test_fault_loses_and_duplicates_nothing(woo, now, fault: str) -> None:
    env: WooEnv = woo(catalogue(now))
    env.emulator.faults.add(fault, times=2, path="/shop-a/wp-json/wc/v3/orders$", stall=1.0)
    result = env.sync(timeout=0.4)
    assert [kind for kind, _ in env.emulator.faults.injected] == [fault, fault]
    ids = env.landed_ids()
    assert len(ids) == len(set(ids)) == result.records == 250 and set(ids) == env.visible()
    if fault == "429":
        assert env.sleeps[:2] == [1.0, 1.0]  # Retry-After honoured


def test_expired_key_is_a_clear_auth_error_and_the_next_run_completes(woo, now) -> None:
    env: WooEnv = woo(catalogue(now))
    stream = env.stream()
    pages = stream.pages(None)
    first = next(pages)
    env.landing.write_batch("woocommerce", "shop-a", "orders", first.parts, first.cursor)
    env.emulator.faults.add("expired_token")
    with pytest.raises(AuthError, match="refused the credentials"):
        next(pages)
    env.sync()
    ids = env.landed_ids()
    assert set(ids) == env.visible() and len(ids) == 350  # page 1 again: the window is re-read from its start
    assert set(env.normalized().orders.unique("order_id")["order_id"]) == env.visible()


def test_wrong_secret_is_refused(woo, now) -> None:
    env: WooEnv = woo(catalogue(now))
    with pytest.raises(AuthError):
        env.stream(secret="cs_wrong").check()
    env.stream().check()
    with pytest.raises(AuthError):  # shop-a's keys open nothing on shop-b
        env.stream("shop-b", secret=SITES["shop-a"][1]).check()


def test_persistent_5xx_raises_retriable_and_lands_nothing(woo, now) -> None:
    env: WooEnv = woo(catalogue(now))
    env.emulator.faults.add("503", times=50)
    with pytest.raises(RetriableError):
        env.sync()
    assert list(env.landing.manifests()) == []
    env.emulator.faults.clear()
    assert env.sync().records == 250


@pytest.mark.parametrize("crash_after", [1, 2])
def test_crash_mid_sync_then_rerun(woo, now, crash_after: int) -> None:
    env: WooEnv = woo(catalogue(now))
    stream = env.stream()
    for i, page in enumerate(stream.pages(None), start=1):
        env.landing.write_batch("woocommerce", "shop-a", "orders", page.parts, page.cursor)
        assert page.cursor["since"] == datetime.fromisoformat(page.cursor["since"]).isoformat()
        if i == crash_after:
            break  # the process dies here
    state = env.landing.state("woocommerce", "shop-a", "orders")
    assert datetime.fromisoformat(state["since"]) < now - DAY  # pages inside the window keep the old since
    env.sync()
    assert set(env.landed_ids()) == env.visible()
    deduped = env.normalized().orders.unique("order_id")
    assert set(deduped["order_id"]) == env.visible() and deduped.height == 250


def test_records_leaving_the_window_while_paging_are_not_skipped(woo, now) -> None:
    """Orders on page 1 change between page requests: the rest slides back and must still be read."""
    orders = catalogue(now)
    env: WooEnv = woo(orders)
    # Orders 0..19 (all on page 1) change 1 hour from now: after page 1 is fetched, the clock moves.
    for o in orders[:20]:
        o.versions.append(o.versions[0].__class__(now + timedelta(hours=1), "fulfilled", "paid"))
        o.versions.sort(key=lambda v: v.at)
    stream = env.stream()
    pages = stream.pages(None)
    first = next(pages)
    env.landing.write_batch("woocommerce", "shop-a", "orders", first.parts, first.cursor)
    env.advance(timedelta(hours=2))  # 20 orders leave [since, until): page 2 would start 20 records later
    for page in pages:
        env.landing.write_batch("woocommerce", "shop-a", "orders", page.parts, page.cursor)
    asked = [p.request["params"] for m in env.landing.manifests() for p in m.parts]
    assert any("offset" in params for params in asked)  # re-read from further back
    assert set(env.landed_ids()) == env.visible()
    env.sync()  # the next window brings the 20 new versions
    latest = env.normalized().orders.sort("updated_at").unique("order_id", keep="last")
    assert latest.height == 250
    assert latest.filter(latest["order_id"] == "woocommerce:shop-a:1000")["status"].item() == "fulfilled"


def test_landed_parts_are_verbatim_and_carry_no_credentials(woo, now) -> None:
    env: WooEnv = woo(catalogue(now, 30))
    result = env.sync()
    [manifest] = result.manifests
    [part] = manifest.parts
    assert part.kind == "woocommerce.rest.orders" and part.records == 30
    assert part.request["params"]["orderby"] == "id" and part.request["params"]["per_page"] == "100"
    text = json.dumps([part.request for m in env.landing.manifests() for part in m.parts])
    ck, cs = SITES["shop-a"]
    assert "oauth" not in text and ck not in text and cs not in text
    body = env.landing.read_part(manifest, part)
    assert json.loads(body)[0]["id"] == 1000  # id order, ascending


def test_malformed_records_are_quarantined_with_reasons(woo, now) -> None:
    start = now - 2 * DAY
    defects = ["missing_id", "bad_total", "bad_date", "unknown_currency", "negative_quantity", "missing_lines",
               "garbled"]
    orders = [make_order(i, start + timedelta(minutes=i)) for i in range(5)]
    orders += [make_order(100 + i, start + timedelta(hours=1, minutes=i), defect=d) for i, d in enumerate(defects)]
    env: WooEnv = woo(orders)
    assert env.sync().records == 12
    out = env.normalized()
    assert out.orders.height == 5
    reasons = {r["external_id"]: r["reason"] for r in out.quarantine.to_dicts()}
    assert len(reasons) == 7 and out.quarantine["records"].sum() == 7
    assert "order id missing" in reasons[None]
    assert "total '" in reasons["1101"] and "is not a decimal amount" in reasons["1101"]
    assert "date_created_gmt '0000-00-00T00:00:00' is not an ISO 8601 timestamp" in reasons["1102"]
    assert "no exchange rate for currency ZZZ" in reasons["1103"]
    assert "line 1 has negative quantity -1" in reasons["1104"]
    assert "order has no line items" in reasons["1105"]
    assert "is not a decimal amount" in reasons["1106"]  # unknown defects render as a bad total


def test_refunds_and_statuses_round_trip_through_the_wire(woo, now) -> None:
    start = now - 2 * DAY
    h = timedelta(hours=1)
    orders = [
        make_order(1, start, versions=[(0 * h, "pending", "pending")]),
        make_order(2, start, versions=[(0 * h, "unfulfilled", "paid"), (h, "partially_fulfilled", "paid")]),
        make_order(3, start, versions=[(0 * h, "unfulfilled", "paid"), (h, "fulfilled", "paid"),
                                       (2 * h, "fulfilled", "partially_refunded")], refunded={2: Decimal("5.00")}),
        make_order(4, start, versions=[(0 * h, "unfulfilled", "paid"), (h, "fulfilled", "paid"),
                                       (2 * h, "fulfilled", "refunded")]),
        make_order(5, start, versions=[(0 * h, "unfulfilled", "paid"), (h, "cancelled", "refunded")]),
        make_order(6, start, versions=[(0 * h, "pending", "pending"), (h, "cancelled", "voided")]),
        make_order(7, start, customer="42", ship=False),
    ]
    env: WooEnv = woo(orders)
    env.sync()
    out = env.normalized()
    assert out.quarantine.is_empty()
    rows = {r["external_id"]: r for r in out.orders.to_dicts()}
    for o in orders:
        v = o.version_at(clock.now())
        assert (rows[o.external_id]["status"], rows[o.external_id]["payment_status"]) == (v.status, v.payment_status)
    assert rows["1003"]["refunded"] == Decimal("5.00")
    assert rows["1004"]["refunded"] == rows["1004"]["total"] == orders[3].total
    assert rows["1007"]["channel_customer_key"] == "42" and rows["1001"]["channel_customer_key"] is None
    assert rows["1007"]["ship_line1"] is None and rows["1007"]["buyer_name"] == "Zoë Müller"  # virtual goods
    assert rows["1001"]["phone"] == "+14155550132" and rows["1001"]["email"] == "buyer1@example.com"
    assert rows["1001"]["total"] == orders[0].total == Decimal("41.52")


def test_check_and_streams_for(woo, now) -> None:
    from connectors.woocommerce import STREAMS, streams_for

    env: WooEnv = woo(catalogue(now, 3))
    [stream] = streams_for(env.store())
    assert type(stream) is STREAMS[0] and stream.name == "orders" and stream.kind == "woocommerce.rest.orders"
    stream.check()
    assert sync_stream(stream, env.landing).records == 3
