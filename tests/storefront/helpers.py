"""Sandbox orders for the storefront emulator and a store config pointing at it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from connectors.storefront.config import StorefrontStore
from orderhub.secrets import Secret
from sandbox.model import Address, Line, Order, Version

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NAMES = ["Jürgen Müller", "Zoë Brontë", "Ana Ñúñez", "Łukasz Żółć", "Søren Ærø"]


def make_orders(n: int = 45) -> list[Order]:
    """``n`` orders, one a minute apart, with Unicode, large amounts and several lines."""
    orders = []
    for i in range(n):
        created = T0 + timedelta(minutes=7 * i)
        lines = [Line(f"SKU-{i}-{j}", f"Kaffeebohnen „Crème“ Nr. {j} – {NAMES[(i + j) % 5]}", j + 1,
                      Decimal("1234.50") if j == 0 and i % 4 == 0 else Decimal(f"{9 + i}.{j}9"),
                      Decimal("1.00") if j == 1 else Decimal(0), Decimal("0.19") * (j + 1))
                 for j in range(1 + i % 3)]
        name = NAMES[i % 5]
        orders.append(Order(
            truth_id=f"T{i:05d}", person_id=None, channel="storefront", store="shop-de", external_id=str(5000 + i),
            order_number=f"#{5000 + i}", created_at=created, currency="EUR", lines=lines,
            shipping=Decimal("4.90"), order_discount=Decimal("0"), email=f"kunde{i}@example.de",
            phone="+49 30 1234567", buyer_name=name,
            ship_to=Address(name, f"Königstraße {i}", None, "München", None, "80331", "DE"),
            channel_customer_id=None,
            versions=[Version(created + timedelta(seconds=13), "unfulfilled", "paid")]))
    return orders


def store_for(url: str, **kw: object) -> StorefrontStore:
    """The store config of the emulated shop."""
    values = {"key": "shop-de", "url": url, "username": "admin", "password": Secret("s3cret"),
              "profile": "sample_shop", "currency": "EUR", "timezone": "Europe/Berlin", "locale": "de_DE",
              "start_delay": 0.01, "download_timeout": 2.0, **kw}
    return StorefrontStore(**values)
