"""Connector ↔ emulator over real HTTP: first/second/incremental syncs, faults, crashes, the cost budget."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from connectors.base import Page, sync_stream
from connectors.shopify import STREAMS, streams_for
from connectors.shopify.streams import ShopifyOrders
from orderhub import clock
from orderhub.errors import AuthError
from orderhub.secrets import Secret
from sandbox.emulators.shopify import CostBucket
from tests.shopify.helpers import SHOP, World, landed_ids, latest, normalize_landed


def _stream(world: World, **client: Any) -> ShopifyOrders:
    client.setdefault("max_page", 3)  # several pages even for a dozen orders
    return ShopifyOrders(world.store, start=world.t0 - timedelta(days=60), client=world.client(**client))


def _assert_matches_truth(world: World) -> None:
    """Normalized and deduped landing == the visible truth (ids, status, payment, refunds)."""
    out = normalize_landed(world.landing, world.settings)
    assert out.quarantine.is_empty(), out.quarantine["reason"].to_list()
    rows = {r["external_id"]: r for r in latest(out.orders).to_dicts()}
    truth = world.visible()
    assert set(rows) == set(truth)
    for ext, version in truth.items():
        row = rows[ext]
        assert (row["status"], row["payment_status"]) == (version.status, version.payment_status), ext
        assert row["refunded"] == version.refunded, ext
        assert row["updated_at"] == version.at, ext
        assert row["total"] == Decimal("37.50") and row["subtotal"] == Decimal("32.99"), ext


def test_registry_and_streams_for(world: World) -> None:
    assert [ShopifyOrders] == STREAMS
    (stream,) = streams_for(world.store)
    assert isinstance(stream, ShopifyOrders) and stream.channel == "shopify" and stream.name == "orders"


def test_first_second_and_incremental_sync(world: World) -> None:
    stream = _stream(world)
    first = sync_stream(stream, world.landing)
    ids = landed_ids(world.landing)
    assert Counter(ids) == Counter(list(world.visible()))  # every visible order, once
    assert first.records == len(ids) == 10 and first.batches >= 4
    until = (clock.now() - ShopifyOrders.lag).replace(microsecond=0)
    assert first.cursor is not None and datetime.fromisoformat(first.cursor["since"]) <= until
    _assert_matches_truth(world)

    second = sync_stream(stream, world.landing)
    assert (second.records, second.batches) == (0, 1)  # one empty page that moves the cursor
    assert second.manifests[0].parts == []

    before = clock.now() - ShopifyOrders.lag
    world.advance(timedelta(days=2))
    after = clock.now() - ShopifyOrders.lag
    third = sync_stream(stream, world.landing)
    new_ids = landed_ids(world.landing)[len(ids):]
    changed = {o.external_id for o in world.source.orders_for("acme")
               if o.created_at <= after and (v := o.version_at(after)) is not None and before - timedelta(seconds=1)
               < v.at <= after}
    assert Counter(new_ids) == Counter(changed)
    assert {"5000000003", "5000000007", "5000000011", "5000000012"} <= changed  # shipped, cancelled, 2 new
    assert third.records == len(changed)
    _assert_matches_truth(world)


def test_mirror_of_an_amazon_order(world: World) -> None:
    sync_stream(_stream(world), world.landing)
    rows = latest(normalize_landed(world.landing, world.settings).orders)
    mirror = rows.filter(rows["external_id"] == "5000000006").row(0, named=True)
    assert mirror["mirror_of"] == "amazon:114-3941689-8772232"
    assert mirror["source_name"] == "amazon"
    assert rows.filter(rows["mirror_of"].is_not_null()).height == 1


@pytest.mark.parametrize("kind", ["429", "429_bare", "500", "503", "truncate", "reset", "timeout", "throttled",
                                  "duplicate_page"])
def test_faults_lose_nothing_and_land_nothing_twice(world: World, kind: str) -> None:
    world.emulator.faults.add(kind, path="graphql", after=1, stall=1.0)
    result = sync_stream(_stream(world), world.landing)
    assert (kind, "/admin/api/2026-01/graphql.json") in world.emulator.faults.injected
    assert Counter(landed_ids(world.landing)) == Counter(list(world.visible()))
    assert result.records == len(world.visible())
    _assert_matches_truth(world)


def test_expired_token_is_a_clear_error_and_the_next_run_completes(world: World) -> None:
    # Calls: the read_all_orders scope check (the window reaches 60 days back), an empty first step, a page.
    world.emulator.faults.add("expired_token", path="graphql", after=3)
    with pytest.raises(AuthError, match="refused the credentials"):
        sync_stream(_stream(world), world.landing)
    partial = landed_ids(world.landing)
    assert 0 < len(partial) < len(world.visible())
    sync_stream(_stream(world), world.landing)
    assert set(landed_ids(world.landing)) == set(world.visible())
    _assert_matches_truth(world)


def test_wrong_token_fails_check(world: World) -> None:
    _stream(world).check()
    bad = world.store.model_copy(update={"access_token": Secret("shpat_nope")})
    with pytest.raises(AuthError):
        ShopifyOrders(bad, client=type(world.client())(bad, timeout=1)).check()


class _Crashing(ShopifyOrders):
    """Dies after landing ``n`` pages, like a killed worker."""

    def __init__(self, *args: Any, n: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n = n

    def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
        for i, page in enumerate(super().pages(state)):
            if i == self.n:
                raise RuntimeError("worker killed")
            yield page


def test_crash_mid_sync_then_rerun(world: World) -> None:
    crashing = _Crashing(world.store, start=world.t0 - timedelta(days=60), client=world.client(max_page=3), n=2)
    with pytest.raises(RuntimeError, match="worker killed"):
        sync_stream(crashing, world.landing)
    assert len(landed_ids(world.landing)) == 6
    state = world.landing.state("shopify", "acme", "orders")
    # still the start of the backfill step being paged (the 30-day step holding every order)
    assert state == {"since": (world.t0 - timedelta(days=30)).isoformat()}
    sync_stream(_stream(world), world.landing)
    assert set(landed_ids(world.landing)) == set(world.visible())  # at least once each
    _assert_matches_truth(world)


def test_pages_shrink_to_a_small_bucket(world: World) -> None:
    world.emulator.cost_buckets[SHOP] = CostBucket(100.0, 300.0, speed=50.0)  # a 300-point bucket
    stream = _stream(world, max_page=250)
    sync_stream(stream, world.landing)
    assert Counter(landed_ids(world.landing)) == Counter(list(world.visible()))
    assert stream.client.graphql.budget.maximum == 300.0
    # 2 + ceil(first * 101 / 10) <= 300 -> at most 29 orders per page
    assert stream.client.graphql.budget.page_size(stream.client.node_cost) <= 29


def test_page_size_adapts_after_max_cost_exceeded(world: World) -> None:
    stream = _stream(world, max_page=250)
    stream.client.node_cost = 0.5  # a wrong guess: 250 orders -> 2527 points, over the 1000-point limit
    sync_stream(stream, world.landing)
    assert Counter(landed_ids(world.landing)) == Counter(list(world.visible()))
    assert stream.client.node_cost == pytest.approx(10.1, rel=0.01)  # learned from requestedQueryCost


@pytest.mark.parametrize(("bucket", "restore"), [(2000.0, 100.0), (4000.0, 200.0), (20000.0, 1000.0),
                                                 (20000.0, 2000.0)])
def test_the_plans_budget_is_read_at_run_time(world: World, bucket: float, restore: float) -> None:
    # Standard, Advanced, Plus and Enterprise: the client adopts whatever throttleStatus says.
    world.emulator.cost_buckets[SHOP] = CostBucket(restore, bucket, speed=1.0)
    stream = _stream(world, max_page=250)
    sync_stream(stream, world.landing)
    budget = stream.client.graphql.budget
    assert (budget.maximum, budget.restore_rate) == (bucket, restore)
    _assert_matches_truth(world)
