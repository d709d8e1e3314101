"""Small hand-built Amazon businesses for the emulator, and the plumbing the Amazon tests share."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from connectors.amazon.client import AmazonClient
from connectors.amazon.config import AmazonStore
from connectors.amazon.streams import AmazonOrdersStream, OrdersStream, OrdersV0Stream
from connectors.http import RetryPolicy
from connectors.landing import LandingStore
from orderhub.config import Settings
from pipelines import amazon as _amazon  # noqa: F401 - registers the normalizer
from pipelines.common import Normalized, normalize_batches
from sandbox.model import Address, Line, Order, Version

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real" / "amazon"
CLIENT_ID = "amzn1.application-oa2-client.sandbox"
CLIENT_SECRET = "sandbox-lwa-secret"
US, JP, CA = "ATVPDKIKX0DER", "A1VC38T7YXB528", "A2EUQ1WTGCTBG2"
FAST = RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.2)
RATES = {"JPY": Decimal("0.0067"), "CAD": Decimal("0.73"), "GBP": Decimal("1.27"), "EUR": Decimal("1.08"), "BRL": Decimal("0.18"),
         "TRY": Decimal("0.03")}


def settings(home: Path) -> Settings:
    """Settings with the rates the fixtures need."""
    return Settings(home=home, base_currency="USD", rates=RATES)


@dataclass
class ListSource:
    """An order source over a plain list (what the generator's business offers)."""

    orders: list[Order] = field(default_factory=list)

    def orders_for(self, store_key: str) -> list[Order]:
        """Orders of a store, by creation time."""
        return sorted((o for o in self.orders if o.store == store_key), key=lambda o: o.created_at)

    def by_truth_id(self, truth_id: str) -> Order:
        """One order by truth id."""
        return next(o for o in self.orders if o.truth_id == truth_id)


def make_order(n: int, store: str, created: datetime, versions: Iterable[tuple[timedelta, str, str]], *,
               currency: str = "USD", **kw: object) -> Order:
    """An Amazon order with two lines, a relay e-mail and an address; versions are (offset, status, payment)."""
    order = Order(
        truth_id=f"T{n:07d}", person_id=f"P{n:05d}", channel="amazon", store=store,
        external_id=f"{100 + n % 900:03d}-{n:07d}-{(n * 7919) % 10_000_000:07d}", order_number="",
        created_at=created, currency=currency,
        lines=[Line(f"SKU-{n % 7}", f"Bürste Größe {n % 7}", 2, Decimal("12.50") if currency != "JPY" else Decimal("1980"),
                    tax=Decimal("1.10") if currency != "JPY" else Decimal("0")),
               Line("SKU-X", "Ｔシャツ", 1, Decimal("5.00") if currency != "JPY" else Decimal("500"),
                    discount=Decimal("1.00") if currency != "JPY" else Decimal("0"))],
        shipping=Decimal("4.99") if currency != "JPY" else Decimal("350"), order_discount=Decimal("0"),
        email=f"b{n}x7k2q@marketplace.amazon.com", phone=f"(206) 555-01{n % 100:02d}",
        buyer_name=f"Zoë O’Brien {n}",
        ship_to=Address(f"Zoë O’Brien {n}", f"{n} Pike St", None, "Seattle", "WA", "98101", "US"),
        channel_customer_id=None, ship_by=created + timedelta(days=3),
        versions=[Version(created + off, status, pay, tracking_number="1Z999" if status == "fulfilled" else None)
                  for off, status, pay in versions],
    )
    order.order_number = order.external_id
    for key, value in kw.items():
        setattr(order, key, value)
    return order


def amazon_store(url: str, key: str = "amz-us", marketplace: str = US, orders_api: str = "2026-01-01",
                 refresh_token: str = "Atzr|sandbox-amz-us", secret: str = CLIENT_SECRET) -> AmazonStore:
    """A store pointed at an emulator by configuration only."""
    return AmazonStore(key=key, seller_id="A3SANDBOXSELLER", marketplace_id=marketplace, refresh_token=refresh_token,
                       lwa_client_id=CLIENT_ID, lwa_client_secret=secret, endpoint=url,
                       token_url=f"{url}/auth/o2/token", orders_api=orders_api)  # type: ignore[arg-type]


def stream_for(store: AmazonStore, *, start: datetime | None = None, timeout: float = 2.0,
               page_size: int = 100) -> AmazonOrdersStream:
    """The store's stream with a fast retry policy."""
    cls = OrdersV0Stream if store.orders_api == "v0" else OrdersStream
    stream = cls(store, start=start, client=AmazonClient(store, policy=FAST, timeout=timeout, sleep=_sleep))
    stream.page_size = page_size
    return stream


def _sleep(seconds: float) -> None:
    import time

    time.sleep(min(seconds, 0.2))


def landed(landing: LandingStore, store: str = "amz-us", stream: str | None = None) -> list:
    """(manifest, [(part, bytes)]) of every batch of a store."""
    return [(m, [(p, landing.read_part(m, p)) for p in m.parts])
            for m in landing.manifests("amazon", store, stream)]


def normalized(landing: LandingStore, home: Path, store: str = "amz-us", stream: str | None = None) -> Normalized:
    """Every batch of a store, normalized."""
    return normalize_batches(landed(landing, store, stream), settings(home))


def landed_order_ids(landing: LandingStore, store: str = "amz-us") -> list[str]:
    """The order id of every landed order record (duplicates kept), from the raw bodies."""
    ids = []
    for _, parts in landed(landing, store):
        for part, body in parts:
            data = json.loads(body)
            if part.kind.endswith("searchOrders"):
                ids += [o["orderId"] for o in data["orders"]]
            elif part.kind.endswith("v0.getOrders"):
                ids += [o["AmazonOrderId"] for o in data["payload"]["Orders"]]
    return ids
