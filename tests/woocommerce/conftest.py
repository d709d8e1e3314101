"""Fixtures of the WooCommerce tests (helpers live in tests/woocommerce/helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.landing import LandingStore
from orderhub import clock
from orderhub.config import Settings
from sandbox.emulators.base import EmulatorServer
from sandbox.emulators.woocommerce import WooCommerceEmulator
from sandbox.model import Order
from tests.woocommerce.helpers import SITES, Source, WooEnv


@pytest.fixture
def woo(tmp_path: Path) -> Iterator[Callable[[list[Order]], WooEnv]]:
    """A factory: ``woo(orders)`` starts an emulator serving them; everything stops after the test."""
    clock_file = tmp_path / "clock.json"
    previous = clock.offset_file()  # restored afterwards: another fixture may be running a sandbox clock
    clock.use_offset_file(clock_file)
    envs: list[WooEnv] = []

    def build(orders: list[Order]) -> WooEnv:
        source = Source(orders)
        emulator = WooCommerceEmulator(source, sites=SITES, speed=1000.0)
        server = EmulatorServer(emulator).start()
        settings = Settings(home=tmp_path, rates={"EUR": Decimal("1.08")})
        env = WooEnv(server, emulator, source, LandingStore(tmp_path / f"landing{len(envs)}"), settings, clock_file)
        envs.append(env)
        return env

    yield build
    for env in envs:
        env.server.stop()
    clock.use_offset_file(previous)


@pytest.fixture
def now() -> datetime:
    """Real now, whole seconds (the sandbox offset starts at zero in every test)."""
    return clock.now().replace(microsecond=0)
