"""Shopify test fixtures: the emulator on loopback, a store pointed at it, and the sandbox clock both use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.landing import LandingStore
from connectors.shopify.config import ShopifyStore
from orderhub import clock
from orderhub.config import Settings
from orderhub.secrets import Secret
from sandbox.emulators.base import EmulatorServer
from sandbox.emulators.shopify import ShopifyEmulator
from tests.shopify.helpers import SHOP, STORE, TOKEN, Source, World, business


@pytest.fixture
def sandbox_clock(tmp_path: Path) -> Iterator[Callable[[timedelta], None]]:
    """The sandbox clock (offset file), shared by emulator and connector; restored afterwards."""
    path = tmp_path / "sandbox" / "clock.json"
    clock.set_offset(path, timedelta(0))
    clock.use_offset_file(path)

    def advance(by: timedelta) -> None:
        clock.set_offset(path, clock.offset() + by)

    yield advance
    clock.use_offset_file(None)


SHOPS = {SHOP: (STORE, TOKEN, "USD")}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    """One emulator server per module: stopping one waits out serve_forever's 0.5 s poll."""
    with EmulatorServer(ShopifyEmulator(Source([]), shops=SHOPS, speed=1000.0)) as running:
        yield running


@pytest.fixture
def world(tmp_path: Path, sandbox_clock: Callable[[timedelta], None], server: EmulatorServer) -> World:
    t0 = clock.now().replace(microsecond=0)
    orders = business(t0)
    source = Source(orders)
    emulator = server.emulator
    assert isinstance(emulator, ShopifyEmulator)
    # A fresh emulator state (source, buckets, faults) on the running server.
    emulator.__init__(source, shops=SHOPS, speed=1000.0)  # type: ignore[misc]
    # Paging tests page: a bulk operation would take over the 60-day windows (tests/shopify/test_backfill_auth_tags.py).
    store = ShopifyStore(key=STORE, shop="acme", access_token=Secret(TOKEN), endpoint=server.url, bulk_after_days=0)
    settings = Settings(home=tmp_path, rates={"EUR": Decimal("1.08")})
    return World(t0, orders, source, emulator, server, store, LandingStore(tmp_path / "landing"), settings,
                 sandbox_clock)


