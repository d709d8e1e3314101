"""Shopify test helpers: a hand-built order source and business, and readers of what was landed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from connectors.http import RetryPolicy
from connectors.landing import LandingStore
from connectors.shopify.client import ShopifyClient
from connectors.shopify.config import ShopifyStore
from orderhub import clock
from orderhub.config import Settings
from pipelines import shopify as _normalizer  # noqa: F401 - registers the normalizer
from pipelines.common import Normalized, normalize_batches
from sandbox.emulators.base import EmulatorServer
from sandbox.emulators.shopify import ShopifyEmulator
from sandbox.model import Address, Line, Order, Version

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real" / "shopify"
SHOP = "acme.myshopify.com"
TOKEN = "shpat_test_acme"
STORE = "acme"
FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.2)


class Source:
    """The order-source protocol of the emulators over a list of orders."""

    def __init__(self, orders: list[Order]) -> None:
        self.orders = sorted(orders, key=lambda o: o.created_at)
        self._by_truth = {o.truth_id: o for o in self.orders}

    def orders_for(self, store_key: str) -> list[Order]:
        return [o for o in self.orders if o.store == store_key]

    def by_truth_id(self, truth_id: str) -> Order:
        return self._by_truth[truth_id]


def make_order(
    n: int,
    created: datetime,
    versions: list[tuple[timedelta, str, str]] | None = None,
    *,
    refunds: dict[int, Decimal] | None = None,
    tracking: str | None = None,
    defect: str | None = None,
    mirror_of: str | None = None,
    customer: bool = True,
    channel: str = "shopify",
    store: str = STORE,
    external_id: str | None = None,
    currency: str = "USD",
) -> Order:
    """A small order: two lines, shipping, a discount; ``versions`` as (offset from created, status, payment)."""
    versions = versions or [(timedelta(0), "unfulfilled", "paid")]
    refunds = refunds or {}
    name = "Zoë Åberg-Núñez" if n % 3 == 0 else f"Buyer {n} Smith"
    return Order(
        truth_id=f"T{n:07d}", person_id=f"P{n}", channel=channel, store=store,
        external_id=external_id or str(5_000_000_000 + n), order_number=f"#{1000 + n}",
        created_at=created, currency=currency,
        lines=[Line(f"SKU-{n}-A", "Café Mug", 2, Decimal("12.50"), Decimal("1.00"), Decimal("1.92")),
               Line(f"SKU-{n}-B", "Tea Towel", 1, Decimal("7.99"), Decimal("0"), Decimal("0.64"))],
        shipping=Decimal("4.95"), order_discount=Decimal("2.00"),
        email=f"Buyer{n}@Example.com", phone=f"(212) 555-01{n % 100:02d}" if n % 2 else "+1 415 555 2671",
        buyer_name=name,
        ship_to=Address(name, f"{n} Main St", "Apt 2" if n % 2 else None, "New York", "NY", "10001", "US"),
        channel_customer_id=str(7_000_000 + n) if customer else None,
        defect=defect, mirror_of=mirror_of,
        versions=[Version(created + off, status, payment, refunds.get(i, Decimal(0)),
                          tracking if status in ("fulfilled", "partially_fulfilled") else None)
                  for i, (off, status, payment) in enumerate(versions)],
    )


@dataclass
class World:
    """Everything a sync test needs."""

    t0: datetime
    orders: list[Order]
    source: Source
    emulator: ShopifyEmulator
    server: EmulatorServer
    store: ShopifyStore
    landing: LandingStore
    settings: Settings
    advance: Callable[[timedelta], None]

    def client(self, **kwargs: Any) -> ShopifyClient:
        kwargs.setdefault("timeout", 0.5)
        kwargs.setdefault("policy", FAST)
        return ShopifyClient(self.store, **kwargs)

    def visible(self) -> dict[str, Version]:
        """external_id -> the version visible now (the truth)."""
        now = clock.now()
        return {o.external_id: o.version_at(now) for o in self.source.orders_for(STORE)  # type: ignore[misc]
                if o.created_at <= now and o.version_at(now) is not None}


def business(t0: datetime) -> list[Order]:
    """Twelve Shopify orders of the last 20 days, some changing after t0, one Amazon mirror, two in the future."""
    d = timedelta(days=1)
    amazon = make_order(900, t0 - 10 * d, channel="amazon", store="amz-us", external_id="114-3941689-8772232")
    orders = [
        make_order(1, t0 - 20 * d),
        make_order(2, t0 - 18 * d, [(timedelta(0), "pending", "pending"), (d, "unfulfilled", "paid"),
                                    (2 * d, "fulfilled", "paid")], tracking="1Z999AA10123456784"),
        make_order(3, t0 - 15 * d, [(timedelta(0), "unfulfilled", "paid"), (16 * d, "fulfilled", "paid")],
                   tracking="1Z999AA10123456785"),  # ships one day after t0
        make_order(4, t0 - 12 * d, [(timedelta(0), "unfulfilled", "paid"), (3 * d, "partially_fulfilled", "paid"),
                                    (5 * d, "fulfilled", "partially_refunded")],
                   refunds={2: Decimal("7.99")}, tracking="1Z999AA10123456786"),
        make_order(5, t0 - 10 * d, [(timedelta(0), "unfulfilled", "paid"), (2 * d, "cancelled", "voided")]),
        make_order(6, t0 - 9 * d, mirror_of="T0000900"),
        make_order(7, t0 - 8 * d, [(timedelta(0), "unfulfilled", "paid"), (9 * d, "cancelled", "refunded")],
                   refunds={1: Decimal("43.57")}),  # cancelled and refunded 1 day after t0
        make_order(8, t0 - 6 * d, customer=False),
        make_order(9, t0 - 4 * d, currency="EUR"),
        make_order(10, t0 - 2 * d, [(timedelta(0), "pending", "pending")]),
        make_order(11, t0 + d / 2),  # created after t0
        make_order(12, t0 + d + timedelta(hours=3), [(timedelta(0), "unfulfilled", "paid")]),
    ]
    return [*orders, amazon]


def normalize_landed(landing: LandingStore, settings: Settings) -> Normalized:
    """Every landed Shopify batch, normalized."""
    batches = [(m, [(p, landing.read_part(m, p)) for p in m.parts]) for m in landing.manifests(channel="shopify")]
    return normalize_batches(batches, settings)


def latest(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per order: the latest version (what dedupe keeps)."""
    return frame.sort("updated_at").unique("order_id", keep="last").sort("order_id")


def landed_ids(landing: LandingStore) -> list[str]:
    """Every legacyResourceId landed, with repeats."""
    ids: list[str] = []
    for m in landing.manifests(channel="shopify"):
        for p in m.parts:
            body = json.loads(landing.read_part(m, p))
            ids.extend(e["node"]["legacyResourceId"] for e in body["data"]["orders"]["edges"])
    return ids


def fixture_bytes(name: str) -> bytes:
    """A real Shopify payload."""
    return (FIXTURES / name).read_bytes()
