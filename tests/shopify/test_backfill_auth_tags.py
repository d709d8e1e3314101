"""Backfills through bulk operations, the client-credentials grant, the read_all_orders scope, and tag push-back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from connectors.base import sync_stream
from connectors.shopify.bulk import KIND_BULK
from connectors.shopify.client import ShopifyClient
from connectors.shopify.streams import ShopifyOrders
from connectors.shopify.tags import PREFIX, TagLedger, customer_gid, push_tags
from orderhub import clock
from orderhub.errors import AuthError, ConfigError, RetriableError
from orderhub.secrets import Secret
from tests.shopify.conftest import SHOPS
from tests.shopify.helpers import FAST, SHOP, World
from tests.shopify.test_sync import _assert_matches_truth

CLIENT_ID, CLIENT_SECRET = "dev-dashboard-app", "shpss_app_secret"
BULK = r"/_bulk/"


def bulk_world(world: World, **emulator: Any) -> World:
    """The world's emulator with quick bulk operations, an app for the client-credentials grant, and more."""
    options: dict[str, Any] = {"bulk_seconds": 5.0, "apps": {SHOP: (CLIENT_ID, CLIENT_SECRET)}}
    options.update(emulator)
    world.emulator.__init__(world.source, shops=SHOPS, speed=1000.0, **options)  # type: ignore[misc]
    return world


def stream(world: World, **store: Any) -> ShopifyOrders:
    cfg = world.store.model_copy(update={"bulk_after_days": 7.0, "bulk_poll_s": 0.01, **store})
    out = ShopifyOrders(cfg, start=world.t0 - timedelta(days=30), client=ShopifyClient(cfg, timeout=1.0, policy=FAST))
    out.bulk.poll_max = 0.05
    return out


def assert_truth(world: World) -> None:
    """Normalized and deduped landing == the visible truth (as the paging tests check it)."""
    _assert_matches_truth(world)


def bulk_parts(world: World) -> list[bytes]:
    return [world.landing.read_part(m, p) for m in world.landing.manifests(channel="shopify") for p in m.parts
            if p.kind == KIND_BULK]


# -- bulk operations -------------------------------------------------------------------------------------
def test_a_backfill_runs_as_one_bulk_operation_and_matches_paging(world: World) -> None:
    bulk_world(world)
    result = sync_stream(stream(world), world.landing)
    [body] = bulk_parts(world)
    lines = [json.loads(line) for line in body.splitlines()]
    assert any("__parentId" in line for line in lines)  # line items came as child lines
    assert world.emulator.operations["bulkOperationRunQuery"] == 1
    assert world.emulator.operations.get("orders", 0) == 0  # nothing paged
    assert result.cursor is not None and "bulk" not in result.cursor
    assert_truth(world)
    again = sync_stream(stream(world), world.landing)  # a short window now: paging, nothing new
    assert again.records == 0 and world.emulator.operations["bulkOperationRunQuery"] == 1


@pytest.mark.parametrize("fault", ["bulk_failed", "bulk_expired", "bulk_slow", "truncate_bulk"])
def test_a_bulk_fault_once_still_lands_everything(world: World, fault: str) -> None:
    bulk_world(world)
    world.emulator.faults.add(fault, path=BULK if fault == "truncate_bulk" else ".*")
    sync_stream(stream(world), world.landing)
    assert [k for k, _ in world.emulator.faults.injected] == [fault]
    assert_truth(world)


def test_a_bulk_operation_failing_twice_stops_the_run_and_the_next_run_completes(world: World) -> None:
    bulk_world(world)
    world.emulator.faults.add("bulk_failed", times=2)
    with pytest.raises(RetriableError, match=r"ended FAILED .* twice"):
        sync_stream(stream(world), world.landing)
    state = world.landing.state("shopify", world.store.key, "orders")
    assert state and state["bulk"]["id"]  # the cursor did not move past the window
    sync_stream(stream(world), world.landing)
    assert_truth(world)


def test_a_run_stopped_while_shopify_builds_the_file_resumes_polling(world: World) -> None:
    bulk_world(world, bulk_seconds=100.0)  # 0.1 s at speed 1000
    pages = stream(world).pages(None)
    first = next(pages)
    assert not first.parts and first.cursor["bulk"]["id"].startswith("gid://shopify/BulkOperation/")
    world.landing.write_batch("shopify", world.store.key, "orders", first.parts, first.cursor)
    pages.close()  # the process dies while Shopify builds the file
    sync_stream(stream(world), world.landing)
    assert world.emulator.operations["bulkOperationRunQuery"] == 1  # polled the same operation, not a new one
    assert_truth(world)


def test_a_bulk_operation_that_outlives_the_timeout_is_resumed_by_the_next_run(world: World) -> None:
    # 1.5 s of real time at speed 1000: the first run's 0.02 s timeout ends long before, even on a busy
    # machine (at 0.3 s a slow first poll under load could find the operation already finished).
    bulk_world(world, bulk_seconds=1500.0)
    with pytest.raises(RetriableError, match=r"still (CREATED|RUNNING)"):
        sync_stream(stream(world, bulk_timeout_s=0.02), world.landing)
    sync_stream(stream(world), world.landing)
    assert world.emulator.operations["bulkOperationRunQuery"] == 1
    assert_truth(world)


# -- auth -------------------------------------------------------------------------------------------------
def test_the_client_credentials_grant_and_its_renewal_mid_sync(world: World) -> None:
    bulk_world(world)
    app = world.store.model_copy(update={"access_token": None, "client_id": CLIENT_ID,
                                         "client_secret": Secret(CLIENT_SECRET), "bulk_after_days": 0})
    client = ShopifyClient(app, timeout=1.0, policy=FAST)
    sync_stream(ShopifyOrders(app, start=world.t0 - timedelta(days=30), client=client), world.landing)
    assert client.tokens.grants == 1  # type: ignore[attr-defined]
    world.advance(timedelta(days=1, hours=1))  # the token (about 24 h) expired: a 401, then a new grant
    sync_stream(ShopifyOrders(app, client=client), world.landing)
    assert client.tokens.grants == 2  # type: ignore[attr-defined]
    assert_truth(world)


def test_bad_app_credentials_and_no_credentials_are_clear_errors(world: World) -> None:
    bulk_world(world)
    app = world.store.model_copy(update={"access_token": None, "client_id": CLIENT_ID,
                                         "client_secret": Secret("wrong")})
    with pytest.raises(AuthError, match="client-credentials grant"):
        ShopifyClient(app, policy=FAST).shop()
    with pytest.raises(ConfigError, match="client_id and client_secret"):
        ShopifyClient(world.store.model_copy(update={"access_token": None}))


def test_a_backfill_past_60_days_without_read_all_orders_says_so(world: World) -> None:
    bulk_world(world, scopes={SHOP: {"read_orders"}})
    deep = ShopifyOrders(world.store, start=clock.now() - timedelta(days=90), client=world.client())
    with pytest.raises(AuthError, match=r"read_all_orders.*backfill_days = 59"):
        sync_stream(deep, world.landing)
    assert not list(world.landing.manifests(channel="shopify"))  # nothing landed, the cursor did not move
    shallow = ShopifyOrders(world.store.model_copy(update={"backfill_days": 59}), client=world.client())
    sync_stream(shallow, world.landing)
    assert_truth(world)


# -- tags -------------------------------------------------------------------------------------------------
def _tags(world: World, customer: str) -> set[str]:
    data = ShopifyClient(world.store, policy=FAST).query(
        "query Tags($id: ID!) { customer(id: $id) { tags } }", {"id": customer_gid(customer)}, "Tags")
    return set((data.get("customer") or {}).get("tags") or [])


def test_tags_are_pushed_once_and_only_orderhub_tags_are_removed(world: World, tmp_path) -> None:
    bulk_world(world)
    client = ShopifyClient(world.store, policy=FAST)
    customers = sorted({str(o.channel_customer_id) for o in world.orders if o.channel_customer_id and
                        o.channel == "shopify"})[:3]
    ledger = TagLedger(tmp_path / "ledger.json")
    first = push_tags(client, {customers[0]: {"vip"}, customers[1]: {"vip", "at-risk"}}, ledger)
    assert (first.customers, first.added, first.removed) == (2, 3, 0)
    assert _tags(world, customers[1]) >= {PREFIX + "vip", PREFIX + "at-risk"}
    calls = dict(world.emulator.operations)
    again = push_tags(client, {customers[0]: {"vip"}, customers[1]: {"vip", "at-risk"}}, TagLedger(ledger.path))
    assert again.customers == 0 and dict(world.emulator.operations) == calls  # nothing to send
    client.tags(customer_gid(customers[0]), ["wholesale"], [])  # the merchant's own tag
    later = push_tags(client, {customers[1]: {"vip"}}, TagLedger(ledger.path))
    assert (later.added, later.removed) == (0, 2)
    assert _tags(world, customers[0]) == {"wholesale"} and PREFIX + "at-risk" not in _tags(world, customers[1])
    wrong = push_tags(client, {customers[1]: {"vip"}, "99999999": {"vip"}}, TagLedger(ledger.path))
    assert wrong.failed and wrong.customers == 0  # an unknown customer is reported, the rest goes on


@pytest.fixture(autouse=True)
def _no_leftover_faults(world: World) -> Iterator[None]:
    yield
    world.emulator.faults.clear()
