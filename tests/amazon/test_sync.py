"""Emulator <-> connector over real HTTP: first sync, second sync, clock moves, both Orders API versions."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from connectors.amazon import STREAMS, streams_for
from connectors.amazon.streams import OrdersStream, OrdersV0Stream
from connectors.base import sync_stream
from connectors.landing import LandingStore
from orderhub import clock
from orderhub.errors import FatalError
from sandbox.emulators.amazon import iso
from tests.amazon.conftest import SPEED, World
from tests.amazon.helpers import (
    JP,
    amazon_store,
    landed,
    landed_order_ids,
    make_order,
    normalized,
    stream_for,
)


@pytest.mark.parametrize("api", ["2026-01-01", "v0"])
def test_first_sync_lands_every_visible_order_once_and_second_sync_nothing(world: World, api: str) -> None:
    store = amazon_store(world.url, orders_api=api)
    stream = stream_for(store)
    first = sync_stream(stream, world.landing)
    want = world.visible()
    ids = landed_order_ids(world.landing)
    assert len(ids) == len(set(ids)) == first.records == len(want) > 0
    assert {f"amazon:amz-us:{i}" for i in ids} == set(want)
    assert first.cursor is not None
    second = sync_stream(stream_for(store), world.landing)
    assert second.records == 0 and second.batches == 1  # one empty batch moves the cursor
    assert second.cursor["since"] >= first.cursor["since"]
    rows = normalized(world.landing, world.home)
    assert set(rows.orders["order_id"]) == set(want) and rows.quarantine.height == 0


@pytest.mark.parametrize("api", ["2026-01-01", "v0"])
def test_after_the_clock_moves_only_changed_orders_land(world: World, api: str) -> None:
    store = amazon_store(world.url, orders_api=api)
    sync_stream(stream_for(store), world.landing)
    before = world.visible()
    world.advance(timedelta(days=1))  # access tokens (1 h) expire too: the client must fetch a new one
    now = world.start + timedelta(days=1)
    changed = {oid for oid, o in world.visible().items()
               if oid not in before or o.version_at(now) is not o.version_at(world.start)}
    assert changed and len(changed) < len(before)
    result = sync_stream(stream_for(store), world.landing)
    assert result.records == len(changed)
    latest = landed_order_ids(world.landing)[-len(changed):]
    assert {f"amazon:amz-us:{i}" for i in latest} == changed
    rows = normalized(world.landing, world.home)
    current = rows.orders.sort("updated_at").unique("order_id", keep="last")
    truth = world.visible()
    for row in current.iter_rows(named=True):
        version = truth[row["order_id"]].version_at(now)
        assert (row["status"], row["payment_status"]) == (version.status, version.payment_status)


def test_paging_and_the_rate_limit_header(world: World) -> None:
    world.source.orders.extend(
        make_order(2000 + i, "amz-us", world.start - timedelta(days=3, minutes=i), [(timedelta(0), "unfulfilled", "paid")])
        for i in range(230))
    store = amazon_store(world.url)
    stream = stream_for(store)
    result = sync_stream(stream, world.landing)
    want = world.visible()
    assert len(want) > 200 and result.records == len(want) and result.batches == 3
    requests = [p.request for _, parts in landed(world.landing) for p, _ in parts]
    assert [r["params"].get("paginationToken") is None for r in requests] == [True, False, False]
    assert all(r["params"]["includedData"] == ["BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "PACKAGES"]
               and r["params"]["maxResultsPerPage"] == 100 for r in requests)
    # The bucket starts at the documented 0.0056/s and adopts x-amzn-RateLimit-Limit (0.0056 x speed).
    assert stream.client.limits["searchOrders"].rate == pytest.approx(0.0056 * SPEED)


def test_window_bounds_follow_amazons_two_minute_rule(world: World) -> None:
    store = amazon_store(world.url)
    result = sync_stream(stream_for(store), world.landing)
    params = [p.request["params"] for _, parts in landed(world.landing) for p, _ in parts]
    until = datetime.fromisoformat(result.cursor["since"])
    assert datetime.fromisoformat(params[-1]["lastUpdatedBefore"]) == until
    assert clock.now() - timedelta(minutes=3) < until <= clock.now() - timedelta(minutes=2)
    # A lastUpdatedBefore later than now - 2 min is refused, as Amazon does.
    client = stream_for(store).client
    with pytest.raises(FatalError) as refused:
        client.search_orders({"lastUpdatedAfter": iso(clock.now() - timedelta(hours=1)),
                              "lastUpdatedBefore": iso(clock.now()), "marketplaceIds": [store.marketplace_id]})
    assert refused.value.status == 400 and "two minutes" in refused.value.body


def test_v0_lands_items_with_their_page_and_string_booleans(world: World) -> None:
    original, replacement = world.source.orders[0], world.source.orders[1]
    replacement.related_to = original.truth_id
    store = amazon_store(world.url, orders_api="v0")
    sync_stream(stream_for(store), world.landing)
    kinds = Counter(p.kind for _, parts in landed(world.landing) for p, _ in parts)
    assert kinds["amazon.orders.v0.getOrderItems"] == len(world.visible())
    bodies = [json.loads(b) for _, parts in landed(world.landing) for p, b in parts if p.kind.endswith("getOrders")]
    flags = {o["AmazonOrderId"]: o["IsReplacementOrder"] for b in bodies for o in b["payload"]["Orders"]}
    assert flags[replacement.external_id] == "true" and flags[original.external_id] == "false"
    rows = normalized(world.landing, world.home).orders
    row = rows.filter(pl.col("external_id") == replacement.external_id).row(0, named=True)
    assert row["related_order"] == f"amazon:amz-us:{original.external_id}"


def test_jpy_fba_and_a_store_without_pii_roles(world: World, jp_orders) -> None:
    for api in ("2026-01-01", "v0"):  # one landing each: both APIs share the stream "orders" and its cursor
        store = amazon_store(world.url, key="amz-jp", marketplace=JP, orders_api=api, refresh_token="Atzr|sandbox-amz-jp")
        sync_stream(stream_for(store), LandingStore(world.home / api))
    rows = pl.concat([normalized(LandingStore(world.home / api), world.home, store="amz-jp").orders
                      for api in ("2026-01-01", "v0")])
    assert rows.height == 6
    for row in rows.iter_rows(named=True):
        truth = next(o for o in jp_orders if o.order_id == row["order_id"])
        assert row["currency"] == "JPY" and row["total"] == truth.total == Decimal("4810")
        assert row["pii_masked"] is True and row["email"] is row["buyer_name"] is row["phone"] is row["ship_line1"] is None
        assert (row["ship_city"], row["ship_postal_code"], row["ship_country"]) == ("Seattle", "98101", "US")
        assert row["fulfilled_by"] == ("marketplace" if truth is jp_orders[0] else "merchant")
    raw = [b for api in ("2026-01-01", "v0") for _, parts in landed(LandingStore(world.home / api), "amz-jp")
           for _, b in parts]
    assert any(b'"amount": "4810"' in b for b in raw) and any(b'"Amount": "4810"' in b for b in raw)


def test_streams_for_picks_the_orders_api_version_and_check_authenticates(world: World) -> None:
    assert [OrdersStream, OrdersV0Stream] == STREAMS
    assert isinstance(streams_for(amazon_store(world.url))[0], OrdersStream)
    assert isinstance(streams_for(amazon_store(world.url, orders_api="v0"))[0], OrdersV0Stream)
    for api in ("2026-01-01", "v0"):
        stream_for(amazon_store(world.url, orders_api=api)).check()
