"""Fixtures of the Amazon tests: one clock for connector and emulator, a small business, a served emulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from connectors.landing import LandingStore
from orderhub import clock
from sandbox.emulators.amazon import AmazonEmulator
from sandbox.emulators.base import EmulatorServer
from sandbox.model import Order
from tests.amazon.helpers import CA, CLIENT_ID, CLIENT_SECRET, JP, US, ListSource, make_order

SPEED = 10_000.0  # rate limits x10 000: searchOrders 56/s, so tests never wait on the real 1-per-3-minutes


@dataclass
class World:
    """A served emulator over a hand-built business, and the shared clock."""

    emulator: AmazonEmulator
    server: EmulatorServer
    source: ListSource
    clock_file: Path
    start: datetime  # real time when the world was built
    landing: LandingStore
    home: Path

    @property
    def url(self) -> str:
        """The emulator's base URL."""
        return self.server.url

    def advance(self, delta: timedelta) -> None:
        """Move the shared clock (connector and emulator both read it)."""
        clock.set_offset(self.clock_file, clock.offset() + delta)

    def visible(self, store: str = "amz-us") -> dict[str, Order]:
        """Orders the emulator shows now whose current version is older than the two-minute lag."""
        now = clock.now()
        until = now - timedelta(minutes=2)
        out = {}
        for order in self.source.orders_for(store):
            version = order.version_at(now)
            if order.created_at <= now and version is not None and version.at < until:
                out[order.order_id] = order
        return out


def business(start: datetime, count: int = 24) -> list[Order]:
    """US orders over the last five days (some pending, some shipped later, some changing tomorrow)."""
    t0 = start - timedelta(days=5)
    orders = []
    for n in range(1, count + 1):
        created = t0 + timedelta(minutes=97 * n)
        versions = [(timedelta(0), "pending", "pending"), (timedelta(minutes=30), "unfulfilled", "paid")]
        if n % 3 == 0:
            versions.append((timedelta(hours=20), "fulfilled", "paid"))
        if n % 5 == 0:  # changes tomorrow: lands again only after the clock moves
            versions.append((start - created + timedelta(hours=12), "cancelled", "voided"))
        if n % 11 == 0:
            versions = versions[:1]  # still Pending: no totals yet
        orders.append(make_order(n, "amz-us", created, versions))
    # Orders placed tomorrow.
    for n in range(count + 1, count + 4):
        orders.append(make_order(n, "amz-us", start + timedelta(hours=6), [(timedelta(0), "unfulfilled", "paid")]))
    return orders


REFRESH_TOKENS = {"Atzr|sandbox-amz-us", "Atzr|sandbox-amz-jp"}


@pytest.fixture(scope="session")
def served() -> Iterator[tuple[AmazonEmulator, EmulatorServer]]:
    """One emulator server for the whole session (each test resets it): stores amz-us (US, PII roles), amz-jp (JP)."""
    emulator = AmazonEmulator(
        ListSource(), sellers={US: "amz-us", JP: "amz-jp", CA: "amz-ca"}, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        refresh_tokens=set(REFRESH_TOKENS), speed=SPEED, pii_stores={"amz-us"},
    )
    with EmulatorServer(emulator) as server:
        yield emulator, server


@pytest.fixture
def world(tmp_path: Path, served: tuple[AmazonEmulator, EmulatorServer]) -> Iterator[World]:
    """The served emulator over a fresh business, with a fresh clock, faults and credentials."""
    emulator, server = served
    clock_file = tmp_path / "clock.json"
    clock.use_offset_file(clock_file)
    clock.set_offset(clock_file, timedelta(0))
    start = clock.now().replace(microsecond=0)
    source = emulator.source
    assert isinstance(source, ListSource)
    source.orders[:] = business(start)
    emulator.faults.clear()
    emulator.faults.injected.clear()
    emulator.requests.clear()
    emulator.refresh_tokens = set(REFRESH_TOKENS)
    yield World(emulator, server, source, clock_file, start, LandingStore(tmp_path / "landing"), tmp_path)
    clock.use_offset_file(None)


@pytest.fixture
def jp_orders(world: World) -> list[Order]:
    """A few JPY orders on the JP store (whose app has no PII roles), one of them FBA."""
    t0 = world.start - timedelta(days=2)
    orders = [make_order(900 + i, "amz-jp", t0 + timedelta(hours=i), [(timedelta(0), "unfulfilled", "paid")],
                         currency="JPY") for i in range(3)]
    orders[0].fulfilled_by = "marketplace"
    world.source.orders.extend(orders)
    return orders
