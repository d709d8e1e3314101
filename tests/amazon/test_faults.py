"""Faults: nothing lost, nothing landed twice, or a clear typed error after which the next run completes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
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
    make_order,
    normalized,
    stream_for,
)

SEARCH = r"/orders/2026-01-01/orders$"
V0_ORDERS = r"/orders/v0/orders$"
V0_ITEMS = r"/orderItems$"
TOKEN = r"/auth/o2/token$"


@pytest.fixture
def paged(world: World) -> World:
    """Enough orders for three pages."""
    world.source.orders.extend(
        make_order(3000 + i, "amz-us", world.start - timedelta(days=4, minutes=i), [(timedelta(0), "unfulfilled", "paid")])
        for i in range(230))
    return world


def _assert_complete_once(world: World) -> None:
    ids = landed_order_ids(world.landing)
    assert len(ids) == len(set(ids)), "an order was landed twice"
    assert {f"amazon:amz-us:{i}" for i in ids} == set(world.visible()), "an order was lost"


@pytest.mark.parametrize(("kind", "path"), [
    ("429", SEARCH), ("429_bare", SEARCH), ("500", SEARCH), ("503", SEARCH), ("truncate", SEARCH),
    ("reset", SEARCH), ("timeout", SEARCH), ("expired_token", SEARCH), ("duplicate_page", SEARCH),
    ("expired_page_token", SEARCH), ("500", TOKEN), ("truncate", TOKEN),
])
def test_searchorders_fault_loses_and_duplicates_nothing(paged: World, kind: str, path: str) -> None:
    store = amazon_store(paged.url)
    stream = stream_for(store, timeout=0.5)
    stream.client.forget_access_token()  # sp_api's token cache is process-wide: start from a known state
    paged.emulator.faults.add(kind, path=path, stall=1.0)
    result = sync_stream(stream, paged.landing)
    assert [k for k, _ in paged.emulator.faults.injected] == [kind], "the fault was served"
    _assert_complete_once(paged)
    assert result.records == len(paged.visible())
    if kind == "expired_token":
        assert paged.emulator.requests["lwa_token"] == 2  # the cached token was dropped and renewed once


@pytest.mark.parametrize(("kind", "path"), [
    ("500", V0_ITEMS), ("truncate", V0_ITEMS), ("429", V0_ORDERS), ("duplicate_page", V0_ORDERS),
    ("expired_page_token", V0_ORDERS), ("expired_token", V0_ITEMS),
])
def test_v0_fault_loses_and_duplicates_nothing(paged: World, kind: str, path: str) -> None:
    stream = stream_for(amazon_store(paged.url, orders_api="v0"))
    paged.emulator.faults.add(kind, path=path)
    sync_stream(stream, paged.landing)
    assert [k for k, _ in paged.emulator.faults.injected] == [kind]
    _assert_complete_once(paged)
    rows = normalized(paged.landing, paged.home)
    assert rows.quarantine.height == 0 and set(rows.orders["order_id"]) == set(paged.visible())


def test_persistent_5xx_is_a_typed_error_and_the_next_run_completes(paged: World) -> None:
    store = amazon_store(paged.url)
    paged.emulator.faults.add("503", path=SEARCH, times=20)
    with pytest.raises(RetriableError) as failed:
        sync_stream(stream_for(store), paged.landing)
    assert failed.value.status == 503 and failed.value.channel == "amazon"
    paged.emulator.faults.clear()
    sync_stream(stream_for(store), paged.landing)
    _assert_complete_once(paged)


@pytest.mark.parametrize(("override", "message"), [
    ({"secret": "wrong-secret"}, "invalid_client"),
    ({"refresh_token": "Atzr|revoked"}, "invalid_grant"),
])
def test_bad_credentials_are_an_auth_error_then_fixed_credentials_sync(world: World, override: dict[str, Any],
                                                                        message: str) -> None:
    bad = amazon_store(world.url, **override)
    with pytest.raises(AuthError, match=message):
        sync_stream(stream_for(bad), world.landing)
    with pytest.raises(AuthError):
        stream_for(bad).check()
    assert world.landing.state("amazon", "amz-us", "orders") is None
    sync_stream(stream_for(amazon_store(world.url)), world.landing)
    _assert_complete_once(world)


def test_revoked_refresh_token_is_an_auth_error_after_one_renewal(world: World) -> None:
    store = amazon_store(world.url)
    stream = stream_for(store)
    world.emulator.refresh_tokens.discard("Atzr|sandbox-amz-us")  # revoked while a cached token still works
    world.emulator._grants.clear()  # ... and the server forgot every access token
    with pytest.raises(AuthError, match="invalid_grant"):
        sync_stream(stream, world.landing)


class Crash(Exception):
    """The process dies."""


def test_crash_mid_sync_then_rerun_loses_nothing(paged: World) -> None:
    store = amazon_store(paged.url)

    class CrashingStream(OrdersStream):
        def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
            for n, page in enumerate(super().pages(state)):
                if n == 2:
                    raise Crash
                yield page

    crashing = CrashingStream(store, client=stream_for(store).client)
    with pytest.raises(Crash):
        sync_stream(crashing, paged.landing)
    kept = paged.landing.state("amazon", "amz-us", "orders")
    assert kept is not None and len(landed(paged.landing)) == 2  # pages inside a window keep the old since
    sync_stream(stream_for(store), paged.landing)
    rows = normalized(paged.landing, paged.home)
    assert set(rows.orders["order_id"]) == set(paged.visible())
    deduped = rows.orders.unique("record_hash")
    assert deduped.height == len(paged.visible())  # re-landed pages are identical records downstream


def test_no_secret_reaches_a_log_line_or_the_landing(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world.emulator.faults.add("expired_token", path=SEARCH)
    sync_stream(stream_for(amazon_store(world.url)), world.landing)
    manifests = "".join(p.read_text() for p in (world.home / "landing").rglob("manifest.json"))
    assert manifests and caplog.text
    for secret in ("Atzr|sandbox-amz-us", CLIENT_SECRET):
        assert secret not in caplog.text and secret not in manifests
