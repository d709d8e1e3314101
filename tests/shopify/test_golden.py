"""Golden pairs: Shopify's own REST fixtures → canonical rows, expectations written by reading the payloads."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.landing import Manifest, PartInfo
from orderhub.config import Settings
from pipelines.common import finish
from pipelines.shopify import normalize, payment_of, status_of
from tests.shopify.helpers import fixture_bytes


def _batch(body: bytes, kind: str = "shopify.rest.orders", records: int = 1) -> tuple[Manifest, list]:
    manifest = Manifest("shopify/support/import/00000001", "shopify", "support", "import", 1,
                        "2026-01-02T03:04:05+00:00", "import", None, records, [])
    part = PartInfo("part-0001.json", kind, records, len(body), "0" * 64, {})
    return manifest, [(part, body)]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, ship_sla_days=2)


def test_order_json_single_rest_order(settings: Settings) -> None:
    manifest, parts = _batch(fixture_bytes("order.json"))
    out = finish(normalize(manifest, parts, settings), settings)
    assert out.quarantine.is_empty()
    row = out.orders.row(0, named=True)
    assert row["order_id"] == "shopify:support:450789469"
    assert row["external_id"] == "450789469"
    assert row["order_number"] == "#1001"
    # "2008-01-10T11:00:00-05:00" is 16:00 UTC
    assert row["created_at"] == datetime(2008, 1, 10, 16, 0, tzinfo=UTC)
    assert row["updated_at"] == datetime(2008, 1, 10, 16, 0, tzinfo=UTC)
    # financial_status "authorized", fulfillment_status null, not cancelled -> pending / pending
    assert (row["status"], row["payment_status"]) == ("pending", "pending")
    assert row["currency"] == "USD"
    assert row["presentment_currency"] is None and row["presentment_total"] is None  # no *_set in this payload
    assert row["subtotal"] == Decimal("398.00")  # total_line_items_price
    assert row["discount"] == Decimal("0.00")
    assert row["shipping"] == Decimal("0.00")  # shipping_lines: "Free Shipping" 0.00
    assert row["tax"] == Decimal("11.94")
    assert row["total"] == Decimal("409.94")
    assert row["total_base"] == Decimal("409.94")
    assert row["refunded"] is None  # the payload carries no refunds
    assert row["email"] == "bob.norman@hostmail.com"
    assert row["phone"] is None  # "555-625-1199" (a 555 number) is not a valid phone number
    assert row["buyer_name"] == "Bob Norman"
    assert row["channel_customer_key"] == "207119551"
    assert (row["ship_name"], row["ship_line1"], row["ship_line2"]) == ("Bob Norman", "Chestnut Street 92", None)
    assert (row["ship_city"], row["ship_region"], row["ship_postal_code"], row["ship_country"]) == (
        "Louisville", "KY", "40202", "US")
    assert row["fulfilled_by"] == "merchant"
    assert row["ship_by"] == datetime(2008, 1, 12, 16, 0, tzinfo=UTC)  # created_at + ship_sla_days
    assert row["mirror_of"] is None
    assert row["source_name"] == "web"
    lines = out.lines.sort("line_no").to_dicts()
    assert [(ln["line_no"], ln["sku"], ln["title"], ln["quantity"]) for ln in lines] == [
        (1, "IPOD2008GREEN", "IPod Nano - 8gb", 1), (2, "IPOD2008RED", "IPod Nano - 8gb", 1),
        (3, "IPOD2008BLACK", "IPod Nano - 8gb", 1)]
    assert all(ln["unit_price"] == Decimal("199.00") and ln["total"] == Decimal("199.00") for ln in lines)
    assert all(ln["discount"] is None and ln["tax"] is None for ln in lines)  # no per-line discount/tax given
    assert all(ln["order_id"] == "shopify:support:450789469" for ln in lines)


def test_orders_json_list_without_line_items(settings: Settings) -> None:
    manifest, parts = _batch(fixture_bytes("orders.json"))
    rows = normalize(manifest, parts, settings)
    row = rows.orders[0]
    assert row["external_id"] == "450789469" and row["order_number"] == "#1001"
    assert row["created_at"] == datetime(2008, 1, 10, 16, 0, tzinfo=UTC)
    # financial_status "partially_refunded", fulfillment_status absent -> unfulfilled / partially_refunded
    assert (row["status"], row["payment_status"]) == ("unfulfilled", "partially_refunded")
    assert (row["currency"], row["presentment_currency"]) == ("USD", "USD")
    assert row["presentment_total"] == Decimal("598.94")
    assert row["subtotal"] == Decimal("597.00")  # total_line_items_price_set (before the 10.00 discount)
    assert (row["discount"], row["shipping"], row["tax"], row["total"]) == (
        Decimal("10.00"), Decimal("0.00"), Decimal("11.94"), Decimal("598.94"))
    assert row["refunded"] is None  # partially refunded, but the list payload holds no refunds[]
    assert row["phone"] == "+557734881234"
    assert row["email"] == "bob.norman@hostmail.com"
    assert row["buyer_name"] == "Bob Norman" and row["channel_customer_key"] == "207119551"
    assert row["ship_country"] == "US" and row["ship_region"] == "KY"
    assert row["source_name"] is None and row["mirror_of"] is None
    assert rows.lines == []
    out = finish(rows, settings)
    assert out.orders.is_empty()
    quarantined = out.quarantine.row(0, named=True)
    assert quarantined["external_id"] == "450789469"
    assert quarantined["reason"] == "order has no line items"
    assert json.loads(quarantined["payload"])["id"] == 450789469


def test_names_come_out_nfc(settings: Settings) -> None:
    doc = json.loads(fixture_bytes("order.json"))
    decomposed = unicodedata.normalize("NFD", "Zoë Núñez")
    doc["order"]["customer"]["first_name"], doc["order"]["customer"]["last_name"] = decomposed.split(" ")
    doc["order"]["shipping_address"]["city"] = unicodedata.normalize("NFD", "Montréal")
    manifest, parts = _batch(json.dumps(doc).encode())
    row = finish(normalize(manifest, parts, settings), settings).orders.row(0, named=True)
    assert row["buyer_name"] == unicodedata.normalize("NFC", "Zoë Núñez") == "Zo\u00eb N\u00fa\u00f1ez"
    assert row["ship_city"] == "Montr\u00e9al"


def test_refunds_and_cancellation_in_rest(settings: Settings) -> None:
    doc = json.loads(fixture_bytes("order.json"))
    refund = json.loads(fixture_bytes("refund.json"))["refund"]
    doc["order"].update(refunds=[refund], cancelled_at="2008-01-11T09:00:00-05:00", financial_status="refunded")
    manifest, parts = _batch(json.dumps(doc).encode())
    row = finish(normalize(manifest, parts, settings), settings).orders.row(0, named=True)
    assert row["refunded"] == Decimal("209.00")  # the refund transaction of refund.json
    assert (row["status"], row["payment_status"]) == ("cancelled", "refunded")


@pytest.mark.parametrize(("cancelled", "fulfillment", "financial", "expected"), [
    (True, "FULFILLED", "PAID", "cancelled"),
    (False, "FULFILLED", "PAID", "fulfilled"),
    (False, "fulfilled", "paid", "fulfilled"),
    (False, "PARTIALLY_FULFILLED", "PENDING", "partially_fulfilled"),
    (False, "partial", "paid", "partially_fulfilled"),
    (False, None, "authorized", "pending"),
    (False, "UNFULFILLED", "PARTIALLY_PAID", "pending"),
    (False, "UNFULFILLED", "PAID", "unfulfilled"),
    (False, None, "refunded", "unfulfilled"),
    (False, "RESTOCKED", "VOIDED", "unfulfilled"),
])
def test_status_table(cancelled: bool, fulfillment: str | None, financial: str, expected: str) -> None:
    assert status_of(cancelled, fulfillment, financial) == expected


@pytest.mark.parametrize(("financial", "expected"), [
    ("PENDING", "pending"), ("AUTHORIZED", "pending"), ("PARTIALLY_PAID", "pending"), ("PAID", "paid"),
    ("PARTIALLY_REFUNDED", "partially_refunded"), ("REFUNDED", "refunded"), ("VOIDED", "voided"),
    ("EXPIRED", "voided"), ("authorized", "pending"), ("SOMETHING_NEW", "something_new"), (None, None),
])
def test_payment_table(financial: str | None, expected: str | None) -> None:
    assert payment_of(financial) == expected
