"""Faults: nothing lost, nothing landed twice, or a clear typed error after which the next run completes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.amazon.streams import OrdersStream
from connectors.base import Page, sync_stream
from orderhub.errors import AuthError, RetriableError
from tests.amazon.conftest import World
from tests.amazon.helpers import (
    CLIENT_SECRET,
    amazon_store,
    landed,
    landed_order_ids,
    normalized,
    stream_for,
)

SEARCH = r"/orders/2026-01-01/orders$"
V0_ORDERS = r"/orders/v0/orders$"
V0_ITEMS = r"/orderItems$"
TOKEN = r"/auth/o2/token$"


PAGE = 8  # small pages, so that page-token faults have pages to hit


def _assert_complete_once(world: World) -> None:
    ids = landed_order_ids(world.landing)
    assert len(ids) == len(set(ids)), "an order was landed twice"
    assert {f"amazon:amz-us:{i}" for i in ids} == set(world.visible()), "an order was lost"


@pytest.mark.parametrize(("kind", "path"), [
    ("429", SEARCH), ("429_bare", SEARCH), ("429_rate", SEARCH), ("500", SEARCH), ("503", SEARCH), ("truncate", SEARCH),
    ("reset", SEARCH), ("timeout", SEARCH), ("expired_token", SEARCH), ("duplicate_page", SEARCH),
    ("expired_page_token", SEARCH), ("out_of_order_page", SEARCH), ("500", TOKEN), ("truncate", TOKEN),
])
def test_searchorders_fault_loses_and_duplicates_nothing(world: World, kind: str, path: str) -> None:
    store = amazon_store(world.url)
    stream = stream_for(store, timeout=0.5, page_size=PAGE)
    stream.client.forget_access_token()  # sp_api's token cache is process-wide: start from a known state
    world.emulator.faults.add(kind, path=path, stall=0.8)
    result = sync_stream(stream, world.landing)
    if kind == "timeout":
        time.sleep(0.8)  # let the stalled handler finish here, not in the next test
    assert [k for k, _ in world.emulator.faults.injected] == [kind], "the fault was served"
    _assert_complete_once(world)
    assert result.records == len(world.visible())
    if kind == "expired_token":
        assert world.emulator.requests["lwa_token"] == 2  # the cached token was dropped and renewed once


@pytest.mark.parametrize(("kind", "path"), [
    ("500", V0_ITEMS), ("truncate", V0_ITEMS), ("429", V0_ORDERS), ("duplicate_page", V0_ORDERS),
    ("expired_page_token", V0_ORDERS), ("expired_token", V0_ITEMS), ("out_of_order_page", V0_ORDERS),
])
def test_v0_fault_loses_and_duplicates_nothing(world: World, kind: str, path: str) -> None:
    del world.source.orders[12:]  # v0 asks getOrderItems once per order: keep it short
    stream = stream_for(amazon_store(world.url, orders_api="v0"), page_size=4)
    world.emulator.faults.add(kind, path=path)
    sync_stream(stream, world.landing)
    assert [k for k, _ in world.emulator.faults.injected] == [kind]
    _assert_complete_once(world)
    rows = normalized(world.landing, world.home)
    assert rows.quarantine.height == 0 and set(rows.orders["order_id"]) == set(world.visible())


def test_persistent_5xx_is_a_typed_error_and_the_next_run_completes(world: World) -> None:
    store = amazon_store(world.url)
    world.emulator.faults.add("503", path=SEARCH, times=20)
    with pytest.raises(RetriableError) as failed:
        sync_stream(stream_for(store), world.landing)
    assert failed.value.status == 503 and failed.value.channel == "amazon"
    world.emulator.faults.clear()
    sync_stream(stream_for(store), world.landing)
    _assert_complete_once(world)


@pytest.mark.parametrize(("override", "message"), [
    ({"secret": "wrong-secret"}, "invalid_client"),
    ({"refresh_token": "Atzr|revoked"}, "invalid_grant"),
])
def test_bad_credentials_are_an_auth_error_then_fixed_credentials_sync(world: World, override: dict[str, Any],
                                                                        message: str) -> None:
    bad = amazon_store(world.url, **override)
    stream = stream_for(bad)
    stream.client.forget_access_token()  # a new process: sp_api has no cached token for it yet
    with pytest.raises(AuthError, match=message):
        sync_stream(stream, world.landing)
    with pytest.raises(AuthError):
        stream_for(bad).check()
    assert world.landing.state("amazon", "amz-us", "orders") is None
    sync_stream(stream_for(amazon_store(world.url)), world.landing)
    _assert_complete_once(world)


def test_revoked_refresh_token_is_an_auth_error_after_one_renewal(world: World) -> None:
    store = amazon_store(world.url)
    stream = stream_for(store)
    stream.check()  # a valid access token is cached
    world.emulator.revoke("Atzr|sandbox-amz-us")  # the seller removes the app's authorization
    with pytest.raises(AuthError, match="invalid_grant"):
        sync_stream(stream, world.landing)


class Crash(Exception):
    """The process dies."""


def test_crash_mid_sync_then_rerun_loses_nothing(world: World) -> None:
    store = amazon_store(world.url)

    class CrashingStream(OrdersStream):
        def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
            for n, page in enumerate(super().pages(state)):
                if n == 2:
                    raise Crash
                yield page

    crashing = CrashingStream(store, client=stream_for(store).client)
    crashing.page_size = PAGE
    with pytest.raises(Crash):
        sync_stream(crashing, world.landing)
    kept = world.landing.state("amazon", "amz-us", "orders")
    assert kept is not None and len(landed(world.landing)) == 2  # pages inside a window keep the old since
    sync_stream(stream_for(store), world.landing)
    rows = normalized(world.landing, world.home)
    assert set(rows.orders["order_id"]) == set(world.visible())
    deduped = rows.orders.unique("record_hash")
    assert deduped.height == len(world.visible())  # re-landed pages are identical records downstream


def test_no_secret_reaches_a_log_line_or_the_landing(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world.emulator.faults.add("expired_token", path=SEARCH)
    sync_stream(stream_for(amazon_store(world.url)), world.landing)
    manifests = "".join(p.read_text() for p in (world.home / "landing").rglob("manifest.json"))
    assert manifests and caplog.text
    for secret in ("Atzr|sandbox-amz-us", CLIENT_SECRET):
        assert secret not in caplog.text and secret not in manifests


@pytest.mark.parametrize(("kind", "path"), [("expired_token", V0_ORDERS), ("500", r"/restrictedDataToken$"),
                                            ("429", r"/restrictedDataToken$")])
def test_v0_with_pii_survives_faults_of_its_restricted_data_token(world: World, kind: str, path: str) -> None:
    del world.source.orders[12:]
    store = amazon_store(world.url, orders_api="v0").model_copy(update={"has_pii_roles": True})
    stream = stream_for(store, page_size=4)
    world.emulator.faults.add(kind, path=path)
    sync_stream(stream, world.landing)
    assert [k for k, _ in world.emulator.faults.injected] == [kind]
    _assert_complete_once(world)
    rows = normalized(world.landing, world.home)
    assert rows.orders["email"].null_count() == 0  # every page came with buyer data
    if kind == "expired_token":
        assert world.emulator.requests["createRestrictedDataToken"] == 2  # the refused RDT was replaced once
