"""Fixtures of the customer service tests: a CRM store with a small multichannel business."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from crm import schema
from crm.store import CrmStore

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TS = pl.Datetime("us", "UTC")
MONEY = pl.Decimal(18, 4)


def _order(order_id: str, customer_id: str, number: str, days_ago: int, total: str, currency: str = "USD",
           **over: Any) -> dict[str, Any]:
    channel, store, external_id = order_id.split(":")
    row = {
        "order_id": order_id, "customer_id": customer_id, "channel": channel, "store": store,
        "external_id": external_id, "order_number": number, "created_at": T0 - timedelta(days=days_ago),
        "updated_at": T0 - timedelta(days=days_ago), "status": "fulfilled", "payment_status": "paid",
        "currency": currency, "total": Decimal(total), "total_base": Decimal(total), "duplicate_of": None,
        "duplicate_evidence": None, "ship_city": "San Francisco", "ship_country": "US",
    }  # fmt: skip
    row.update(over)
    return row


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrmStore]:
    """A CRM store holding Zoë (three channels, a mirrored order), Jürgen, and a namesake of Zoë.

    Built once per module: lookups only read it.
    """
    url = os.environ.get("ORDERHUB_TEST_CRM_URL") or f"sqlite:///{tmp_path_factory.mktemp('service') / 'crm.sqlite'}"
    store = CrmStore(url)
    schema.metadata.drop_all(store.engine)  # a PostgreSQL test database may hold an earlier run's rows
    store.create_all()
    store.upsert_customers(pl.DataFrame(
        [
            {"customer_id": "c-zoe", "name": "Zoë Ångström", "email": "zoe@example.com", "phone": "+14155550132",
             "country": "US", "first_order_at": T0 - timedelta(days=40), "last_order_at": T0 - timedelta(days=1),
             "orders_count": 3, "total_spent_base": Decimal("1234.5600")},
            {"customer_id": "c-jm", "name": "Jürgen Müßig", "email": "j.muessig@example.de", "phone": "+4930123456",
             "country": "DE", "first_order_at": T0, "last_order_at": T0, "orders_count": 1,
             "total_spent_base": Decimal("12.3000")},
            {"customer_id": "c-zoe2", "name": "Zoe Anderson", "email": "zanderson@example.com", "phone": None,
             "country": "GB", "first_order_at": None, "last_order_at": None, "orders_count": 0,
             "total_spent_base": Decimal("0")},
        ],
        schema={"customer_id": pl.String, "name": pl.String, "email": pl.String, "phone": pl.String,
                "country": pl.String, "first_order_at": TS, "last_order_at": TS, "orders_count": pl.Int32,
                "total_spent_base": MONEY},
    ))  # fmt: skip
    store.upsert_identities(pl.DataFrame(
        [
            {"identity_key": "shopify:shop1:77", "customer_id": "c-zoe", "channel": "shopify", "store": "shop1",
             "email": "zoe@example.com", "phone": "+14155550132", "name": "Zoë Ångström", "rule": "self",
             "linked_at": T0},
            {"identity_key": "amazon:na:relay", "customer_id": "c-zoe", "channel": "amazon", "store": "na",
             "email": "k3x9@marketplace.amazon.com", "phone": None, "name": "Z. Angstrom", "rule": "name+address",
             "linked_at": T0},
            {"identity_key": "woocommerce:site:5", "customer_id": "c-zoe", "channel": "woocommerce",
             "store": "site", "email": "zoe.work@corp.example", "phone": "+14155550199", "name": "Zoë Ångström",
             "rule": "phone", "linked_at": T0},
        ],
        schema={"identity_key": pl.String, "customer_id": pl.String, "channel": pl.String, "store": pl.String,
                "email": pl.String, "phone": pl.String, "name": pl.String, "rule": pl.String, "linked_at": TS},
    ))  # fmt: skip
    orders = [
        _order("amazon:na:113-1234567-1234567", "c-zoe", "113-1234567-1234567", 1, "59.9900"),
        # the same Amazon order imported into Shopify: a mirror, shown once
        _order("shopify:shop1:5550002", "c-zoe", "#1043", 1, "59.9900",
               duplicate_of="amazon:na:113-1234567-1234567", duplicate_evidence="mirror_of amazon:113-1234567-1234567"),
        _order("shopify:shop1:5550001", "c-zoe", "#1042", 10, "1150.5700", status="unfulfilled"),
        _order("woocommerce:site:88", "c-zoe", "88", 40, "24.0000", currency="EUR", status="cancelled",
               payment_status="voided"),
        _order("shopify:shop2:9001", "c-jm", "#1042", 0, "12.3000", currency="EUR"),  # same number, other shop
        _order("woocommerce:site:89", "c-jm", "89", 0, "0.1250", currency="KWD"),
    ]
    store.upsert_orders(pl.DataFrame(orders, schema={
        "order_id": pl.String, "customer_id": pl.String, "channel": pl.String, "store": pl.String,
        "external_id": pl.String, "order_number": pl.String, "created_at": TS, "updated_at": TS,
        "status": pl.String, "payment_status": pl.String, "currency": pl.String, "total": MONEY,
        "total_base": MONEY, "duplicate_of": pl.String, "duplicate_evidence": pl.String, "ship_city": pl.String,
        "ship_country": pl.String,
    }))  # fmt: skip
    store.add_tag("c-zoe", "vip", source="auto", now=T0)
    store.add_tag("c-zoe", "wholesale", now=T0)
    store.add_tag("c-zoe", "old-tag", now=T0 - timedelta(days=9))
    store.remove_tag("c-zoe", "old-tag", now=T0 - timedelta(days=8))
    store.add_note("c-zoe", "ann", "Asked about the Köln delivery.", now=T0 - timedelta(days=2))
    store.add_note("c-zoe", "bob", "Refund promised ✔", now=T0 - timedelta(days=1))
    yield store
    store.close()
