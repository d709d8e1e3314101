"""Helpers of the feed tests: one set of orders written as canonical CSV, JSON Lines and JSON."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.base import SyncResult, sync_stream
from connectors.feed import streams_for
from connectors.feed.config import FeedStore
from connectors.landing import LandingStore
from orderhub.config import Settings
from pipelines import feed as _register  # noqa: F401 - registers the normalizer
from pipelines.common import Normalized, normalize_batches

ORDER_COLS = ["order_id", "order_number", "created_at", "updated_at", "status", "payment_status", "currency",
              "subtotal", "discount", "shipping", "tax", "total", "refunded", "customer_id", "email", "phone",
              "buyer_name", "ship_line1", "ship_city", "ship_postal_code", "ship_country"]
LINE_COLS = ["sku", "title", "quantity", "unit_price", "discount", "tax", "total"]

ORDERS: list[dict[str, Any]] = [
    {"order_id": "F-1001", "order_number": "#1001", "created_at": "2026-11-20T10:00:00+01:00",
     "updated_at": "2026-11-21 09:30:00", "status": "shipped", "payment_status": "", "currency": "EUR",
     "subtotal": "59.90", "discount": "5.00", "shipping": "4.90", "tax": "9.56", "total": "59.80", "refunded": "",
     "customer_id": "c-17", "email": "Zoë.Müller@Example.com", "phone": "+49 30 1234567",
     "buyer_name": "Zoë Müller", "ship_line1": "Straße des 17. Juni 1", "ship_city": "Berlin",
     "ship_postal_code": "10623", "ship_country": "de", "extra_note": "gift wrap",
     "lines": [
         {"sku": "MUG-1", "title": "Tasse „Kaffee“", "quantity": "2", "unit_price": "12.45", "discount": "5.00",
          "tax": "3.18", "total": "23.08"},
         {"sku": "TEA-9", "title": "Grüner Tee 100 g", "quantity": "1", "unit_price": "35.00", "discount": "0",
          "tax": "6.38", "total": "41.38"},
     ]},
    {"order_id": "F-1002", "order_number": "#1002", "created_at": "2026-11-22 23:15:00",
     "updated_at": "", "status": "Processing", "payment_status": "paid", "currency": "EUR",
     "subtotal": "10.00", "discount": "0", "shipping": "0", "tax": "1.60", "total": "11.60", "refunded": "2.00",
     "customer_id": "", "email": "", "phone": "", "buyer_name": "Łukasz Żółć", "ship_line1": "ul. Długa 5",
     "ship_city": "Gdańsk", "ship_postal_code": "80-831", "ship_country": "PL", "extra_note": "",
     "lines": [{"sku": "PEN-3", "title": "Pen", "quantity": "4", "unit_price": "2.50", "discount": "0",
                "tax": "1.60", "total": "11.60"}]},
    {"order_id": "F-1003", "order_number": "", "created_at": "2026-11-23T08:00:00Z", "updated_at": "",
     "status": "cancelled", "payment_status": "", "currency": "", "subtotal": "", "discount": "", "shipping": "",
     "tax": "", "total": "7.00", "refunded": "", "customer_id": "", "email": "ann@example.com", "phone": "",
     "buyer_name": "Ann", "ship_line1": "", "ship_city": "", "ship_postal_code": "", "ship_country": "US",
     "extra_note": "", "lines": [{"sku": "X", "title": "Thing", "quantity": "1", "unit_price": "7.00",
                                  "discount": "", "tax": "", "total": ""}]},
]


def to_csv(orders: list[dict[str, Any]] = ORDERS) -> bytes:
    """Canonical CSV: one row per line item, order columns repeated (and one unknown column)."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*ORDER_COLS, "extra_note", *(f"line_{c}" for c in LINE_COLS)])
    for order in orders:
        for line in order["lines"]:
            writer.writerow([order[c] for c in ORDER_COLS] + [order["extra_note"]] + [line[c] for c in LINE_COLS])
    return buf.getvalue().encode()


def _nested(order: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in order.items() if v != "" and k != "lines"}
    out["lines"] = [{k: v for k, v in line.items() if v != ""} for line in order["lines"]]
    for line in out["lines"]:
        line["quantity"] = int(line["quantity"])
    return out


def to_jsonl(orders: list[dict[str, Any]] = ORDERS) -> bytes:
    """One order object with a ``lines`` list per line."""
    return "".join(json.dumps(_nested(o), ensure_ascii=False) + "\n" for o in orders).encode()


def to_json(orders: list[dict[str, Any]] = ORDERS) -> bytes:
    """A JSON array of order objects, money as JSON numbers."""
    data = [_nested(o) for o in orders]
    text = json.dumps(data, ensure_ascii=False, indent=1)
    return text.replace('"total": "59.80"', '"total": 59.80').encode()  # a JSON number keeps its exact digits


def settings_for(home: Path, *stores: FeedStore) -> Settings:
    """Settings in Berlin time with a EUR rate and the given feed stores."""
    return Settings(home=home, timezone="Europe/Berlin", rates={"EUR": Decimal("1.08")}, stores=list(stores))


def sync(store: FeedStore, landing: LandingStore) -> SyncResult:
    """One sync of the feed's stream from its landed state."""
    (stream,) = streams_for(store)
    return sync_stream(stream, landing)


def normalized(landing: LandingStore, settings: Settings, store: str | None = None) -> Normalized:
    """Every landed feed batch of ``store``, normalized."""
    batches = [(m, [(p, landing.read_part(m, p)) for p in m.parts]) for m in landing.manifests("feed", store)]
    return normalize_batches(batches, settings)
