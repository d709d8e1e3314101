"""Helpers for the WooCommerce tests: hand-made orders, an emulator on loopback, one clock for both sides."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from connectors.base import SyncResult, sync_stream
from connectors.http import RetryPolicy, TokenBucket
from connectors.landing import LandingStore
from connectors.woocommerce.client import WooCommerceClient
from connectors.woocommerce.config import WooCommerceStore
from connectors.woocommerce.streams import OrdersStream
from orderhub import clock
from orderhub.config import Settings
from pipelines import woocommerce as _register  # noqa: F401 - registers the normalizer
from pipelines.common import Normalized, normalize_batches
from sandbox.emulators.base import EmulatorServer
from sandbox.emulators.woocommerce import WooCommerceEmulator
from sandbox.model import Address, Line, Order, Version

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real" / "woocommerce"
if not FIXTURES.exists():  # the repository may sit elsewhere than next to shared/
    FIXTURES = Path("/work/shared/fixtures/real/woocommerce")

SITES = {"shop-a": ("ck_test_shop_a", "cs_test_shop_a"), "shop-b": ("ck_test_shop_b", "cs_test_shop_b")}


def load_fixture(name: str) -> bytes:
    """A real WooCommerce payload, byte for byte."""
    return (FIXTURES / name).read_bytes()


def make_order(
    n: int,
    created: datetime,
    *,
    store: str = "shop-a",
    versions: list[tuple[timedelta, str, str]] | None = None,
    refunded: dict[int, Decimal] | None = None,
    defect: str | None = None,
    currency: str = "USD",
    customer: str | None = "0",
    ship: bool = True,
) -> Order:
    """Order number ``1000 + n``; ``versions`` are (offset from created, status, payment_status)."""
    addr = Address("Zoë Müller", f"{n} Market St", "Apt 2" if n % 2 else None, "San Francisco", "CA", "94103", "US")
    steps = versions or [(timedelta(0), "unfulfilled", "paid")]
    return Order(
        truth_id=f"T{n:07d}", person_id=f"P{n % 7}", channel="woocommerce", store=store,
        external_id=str(1000 + n), order_number=str(1000 + n), created_at=created, currency=currency,
        lines=[
            Line(f"SKU-{n % 5}", "Café mug, Salt & Pepper", 2, Decimal("7.50"), Decimal("1.00"), Decimal("0.98")),
            Line("SKU-T", "T-shirt", 1, Decimal("19.99"), tax=Decimal("1.60")),
        ],
        shipping=Decimal("4.95"), order_discount=Decimal("0"),
        email=f"Buyer{n}@Example.com", phone="+1 415-555-0132", buyer_name="Zoë Müller",
        ship_to=addr if ship else None, channel_customer_id=customer,
        defect=defect,
        versions=[
            Version(created + off, status, pay, (refunded or {}).get(i, Decimal("0")))
            for i, (off, status, pay) in enumerate(steps)
        ],
    )


class Source:
    """The order source the emulator reads."""

    def __init__(self, orders: list[Order]) -> None:
        self.orders = orders

    def orders_for(self, store_key: str) -> list[Order]:
        return sorted((o for o in self.orders if o.store == store_key), key=lambda o: o.created_at)

    def by_truth_id(self, truth_id: str) -> Order:
        return next(o for o in self.orders if o.truth_id == truth_id)


@dataclass
class WooEnv:
    """One emulator server with its orders, a store config pointing at it, a landing zone and the clock."""

    server: EmulatorServer
    emulator: WooCommerceEmulator
    source: Source
    landing: LandingStore
    settings: Settings
    clock_file: Path
    sleeps: list[float] = field(default_factory=list)

    def store(self, key: str = "shop-a", *, secret: str | None = None) -> WooCommerceStore:
        ck, cs = SITES[key]
        return WooCommerceStore(key=key, url=f"{self.server.url}/{key}", consumer_key=ck,
                                consumer_secret=secret or cs, currency="USD")

    def stream(self, key: str = "shop-a", *, secret: str | None = None, timeout: float = 2.0) -> OrdersStream:
        store = self.store(key, secret=secret)
        client = WooCommerceClient(store, timeout=timeout, policy=RetryPolicy(max_attempts=4, base_delay=0.01),
                                   sleep=self.sleeps.append, limiter=TokenBucket(1000, 1000))
        return OrdersStream(store, client=client)

    def sync(self, key: str = "shop-a", **kwargs: object) -> SyncResult:
        return sync_stream(self.stream(key, **kwargs), self.landing)  # type: ignore[arg-type]

    def advance(self, delta: timedelta) -> None:
        clock.set_offset(self.clock_file, clock.offset() + delta)

    def visible(self, key: str = "shop-a") -> set[str]:
        """Order ids the emulator shows now (every order in these tests sits far from the lag)."""
        now = clock.now()
        return {o.order_id for o in self.source.orders_for(key) if o.created_at <= now}

    def normalized(self, key: str = "shop-a") -> Normalized:
        batches = [(m, [(p, self.landing.read_part(m, p)) for p in m.parts])
                   for m in self.landing.manifests("woocommerce", key)]
        return normalize_batches(batches, self.settings)

    def landed_ids(self, key: str = "shop-a") -> list[str | None]:
        """Every landed record's id, duplicates kept."""
        out: list[str | None] = []
        for m in self.landing.manifests("woocommerce", key):
            for p in m.parts:
                out += [f"woocommerce:{key}:{r['id']}" if "id" in r else None
                        for r in json.loads(self.landing.read_part(m, p))]
        return out
