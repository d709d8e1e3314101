"""Golden pairs: the real WooCommerce payloads → canonical rows written by reading them."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from connectors.landing import Manifest, PartInfo
from connectors.woocommerce.config import WooCommerceStore
from orderhub.config import Settings
from pipelines.common import Normalized, finish
from pipelines.woocommerce import LIST_KIND, ORDER_KIND, normalize
from tests.woocommerce.helpers import load_fixture

SETTINGS = Settings(base_currency="USD", rates={"BRL": Decimal("0.20")})


def run(body: bytes, kind: str, settings: Settings = SETTINGS, store: str = "demo") -> Normalized:
    part = PartInfo(file="part-0001.json", kind=kind, records=1, bytes=len(body), sha256="", request={})
    manifest = Manifest(batch_id=f"woocommerce/{store}/orders/00000001", channel="woocommerce", store=store,
                        stream="orders", seq=1, landed_at="2026-01-02T03:04:05+00:00", source="api", cursor=None,
                        records=1, parts=[part])
    return finish(normalize(manifest, [(part, body)], settings), settings)


def retrieve_record() -> dict[str, Any]:
    return json.loads(load_fixture("retrieve_order.v3.example.json"))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- retrieve_order.v3.example.json: order 727 ----------------------------------------------------
# What the payload holds: status "processing", guest (customer_id 0), created via the REST API,
# two line items (2 x "Woo Single #1" at 3.00 with 0.45 tax, no SKU; 1 x variation "Bar3" at 12.00
# with 0.90 tax and an &ndash; entity in its name), one tax line (US-CA-STATE TAX 1.35), one flat-rate
# shipping line 10.00, no coupons (discount_total "0.00"), no refunds. Local times are 3 h behind
# the *_gmt ones. Total 29.35 = 18.00 + 10.00 + 1.35.
def test_retrieve_order_727() -> None:
    out = run(load_fixture("retrieve_order.v3.example.json"), ORDER_KIND)
    assert out.quarantine.is_empty()
    [row] = out.orders.to_dicts()
    assert {k: row[k] for k in (
        "order_id", "channel", "store", "external_id", "order_number", "created_at", "updated_at", "status",
        "payment_status", "currency", "subtotal", "discount", "shipping", "tax", "total", "refunded", "total_base",
        "channel_customer_key", "email", "phone", "buyer_name", "ship_name", "ship_line1", "ship_line2", "ship_city",
        "ship_region", "ship_postal_code", "ship_country", "fulfilled_by", "ship_by", "source_name", "pii_masked",
    )} == {
        "order_id": "woocommerce:demo:727", "channel": "woocommerce", "store": "demo", "external_id": "727",
        "order_number": "727",
        "created_at": utc(2017, 3, 22, 19, 28, 2),  # date_created_gmt, not the local 16:28:02
        "updated_at": utc(2017, 3, 22, 19, 28, 8),
        "status": "unfulfilled", "payment_status": "paid", "currency": "USD",
        "subtotal": Decimal("18.00"), "discount": Decimal("0.00"), "shipping": Decimal("10.00"),
        "tax": Decimal("1.35"), "total": Decimal("29.35"), "refunded": Decimal("0"), "total_base": Decimal("29.35"),
        "channel_customer_key": None,  # customer_id 0: a guest
        "email": "john.doe@example.com",
        "phone": None,  # "(555) 555-5555" is a fictional number: no valid E.164
        "buyer_name": "John Doe", "ship_name": "John Doe", "ship_line1": "969 Market", "ship_line2": None,
        "ship_city": "San Francisco", "ship_region": "CA", "ship_postal_code": "94103", "ship_country": "US",
        "fulfilled_by": "merchant", "ship_by": utc(2017, 3, 24, 19, 28, 2),  # no promise: created + 2 SLA days
        "source_name": "rest-api", "pii_masked": False,
    }
    lines = [tuple(r.values()) for r in out.lines.drop("order_id", "batch_id").to_dicts()]
    assert lines == [
        # line_no, sku, master_sku, title, qty, unit_price, discount, tax, total (incl. tax)
        (1, None, None, "Woo Single #1", 2, Decimal("3.00"), Decimal("0.00"), Decimal("0.45"), Decimal("6.45")),
        (2, "Bar3", "Bar3", "Ship Your Idea \u2013 Color: Black, Size: M Test", 1, Decimal("12.00"),
         Decimal("0.00"), Decimal("0.90"), Decimal("12.90")),
    ]
    # The tax line (1.35) is the sum of the line taxes; lines + shipping add up to the total.
    assert sum(r[7] for r in lines) == row["tax"]
    assert sum(r[8] for r in lines) + row["shipping"] == row["total"]


# -- list_orders.v3.example.json: orders 727 and 723 ----------------------------------------------
# 727 as above (one more meta_data entry). 723: "completed", registered customer 26, created via
# checkout, two lines without SKU or tax (9.00 + 20.00), flat rate 10.00, total 39.00, no tax lines,
# no coupons, two refunds written negative ("-10.00", "-9.00"), Brazilian address with "João".
def test_list_orders() -> None:
    out = run(load_fixture("list_orders.v3.example.json"), LIST_KIND)
    assert out.quarantine.is_empty()
    rows = {r["external_id"]: r for r in out.orders.to_dicts()}
    assert set(rows) == {"727", "723"}
    single = run(load_fixture("retrieve_order.v3.example.json"), ORDER_KIND).orders.to_dicts()[0]
    skip = {"record_hash", "batch_id", "landed_at"}
    assert {k: v for k, v in rows["727"].items() if k not in skip} == {k: v for k, v in single.items() if k not in skip}

    row = rows["723"]
    assert (row["status"], row["payment_status"]) == ("fulfilled", "partially_refunded")  # 0 < 19.00 < 39.00
    assert row["refunded"] == Decimal("19.00")
    assert (row["subtotal"], row["discount"], row["shipping"], row["tax"], row["total"]) == (
        Decimal("29.00"), Decimal("0.00"), Decimal("10.00"), Decimal("0.00"), Decimal("39.00"))
    assert row["created_at"] == utc(2017, 3, 21, 19, 16, 0)
    assert row["updated_at"] == utc(2017, 3, 21, 19, 54, 51)
    assert row["channel_customer_key"] == "26"
    assert row["buyer_name"] == "Jo\u00e3o Silva" == unicodedata.normalize("NFC", row["buyer_name"])
    assert (row["ship_line1"], row["ship_city"], row["ship_region"], row["ship_postal_code"], row["ship_country"]) == (
        "Av. Brasil, 432", "Rio de Janeiro", "RJ", "12345-000", "BR")
    assert row["email"] == "joao.silva@example.com"
    assert row["source_name"] == "checkout"
    lines = out.lines.filter(out.lines["order_id"] == "woocommerce:demo:723").drop("order_id", "batch_id").rows()
    assert lines == [
        (1, None, None, "Woo Album #2", 1, Decimal("9.00"), Decimal("0.00"), Decimal("0.00"), Decimal("9.00")),
        (2, None, None, "Woo Ninja", 1, Decimal("20.00"), Decimal("0.00"), Decimal("0.00"), Decimal("20.00")),
    ]


# -- the status table ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "completed", "refunds", "expected"),
    [
        ("pending", None, [], ("pending", "pending")),
        ("on-hold", None, [], ("pending", "pending")),
        ("processing", None, [], ("unfulfilled", "paid")),
        ("completed", "2017-03-23T10:00:00", [], ("fulfilled", "paid")),
        ("wc-completed", "2017-03-23T10:00:00", [], ("fulfilled", "paid")),
        ("cancelled", None, [], ("cancelled", "voided")),
        ("failed", None, [], ("cancelled", "voided")),
        ("refunded", "2017-03-23T10:00:00", ["-29.35"], ("fulfilled", "refunded")),  # it shipped
        ("refunded", None, ["-29.35"], ("cancelled", "refunded")),  # never shipped
        ("processing", None, ["-5.00"], ("unfulfilled", "partially_refunded")),
        ("completed", "2017-03-23T10:00:00", ["-20.00", "-9.35"], ("fulfilled", "refunded")),
        ("partial-shipped", None, [], ("partially_fulfilled", "paid")),
        ("cancelled", None, ["-10.00"], ("cancelled", "partially_refunded")),
    ],
)
def test_status_table(status: str, completed: str | None, refunds: list[str], expected: tuple[str, str]) -> None:
    record = retrieve_record()
    record.update(status=status, date_completed_gmt=completed,
                  refunds=[{"id": 900 + i, "refund": "", "total": t} for i, t in enumerate(refunds)])
    out = run(json.dumps(record).encode(), ORDER_KIND)
    [row] = out.orders.to_dicts()
    assert (row["status"], row["payment_status"]) == expected
    assert row["refunded"] == sum((abs(Decimal(t)) for t in refunds), Decimal(0))


def _with_store(custom: dict[str, str]) -> Settings:
    store = WooCommerceStore(key="demo", url="https://shop.example", consumer_key="k", consumer_secret="s",
                             custom_statuses=custom)
    return Settings(rates=SETTINGS.rates, stores=[store])


def test_custom_status_mapped_through_the_store_config() -> None:
    record = retrieve_record() | {"status": "awaiting-shipment"}
    out = run(json.dumps(record).encode(), ORDER_KIND, _with_store({"wc-awaiting-shipment": "processing"}))
    assert out.orders.select("status", "payment_status").row(0) == ("unfulfilled", "paid")


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        (SETTINGS, "add it under [[stores]] in orderhub.toml with custom_statuses"),  # import without config
        (_with_store({}), "add it to custom_statuses of store 'demo' in orderhub.toml"),
        (_with_store({"awaiting-shipment": "shipped-ish"}), "which is not a WooCommerce status"),
    ],
)
def test_unknown_custom_status_is_quarantined_with_what_to_configure(settings: Settings, needle: str) -> None:
    record = retrieve_record() | {"status": "awaiting-shipment"}
    out = run(json.dumps(record).encode(), ORDER_KIND, settings)
    assert out.orders.is_empty()
    [q] = out.quarantine.to_dicts()
    assert q["external_id"] == "727" and needle in q["reason"] and "'awaiting-shipment'" in q["reason"]


# -- what cannot be read ---------------------------------------------------------------------------
def test_bad_money_and_dates_collect_every_reason() -> None:
    record = retrieve_record() | {"total": "29,35", "date_created_gmt": "0000-00-00T00:00:00"}
    out = run(json.dumps(record).encode(), ORDER_KIND)
    [q] = out.quarantine.to_dicts()
    assert "total '29,35' is not a decimal amount" in q["reason"]
    assert "date_created_gmt '0000-00-00T00:00:00' is not an ISO 8601 timestamp" in q["reason"]
    assert q["payload"] and json.loads(q["payload"])["id"] == 727


def test_shipping_falls_back_to_billing_for_virtual_orders() -> None:
    record = retrieve_record()
    record["shipping"] = dict.fromkeys(record["shipping"], "")
    [row] = run(json.dumps(record).encode(), ORDER_KIND).orders.to_dicts()
    assert (row["ship_name"], row["ship_line1"], row["ship_country"]) == ("John Doe", "969 Market", "US")


@pytest.mark.parametrize(
    ("body", "kind", "needle"),
    [
        (b'[{"id": 1, "status": "proc', LIST_KIND, "not valid JSON"),
        (b'{"id": 1}', LIST_KIND, "expected a JSON array of orders"),
        (b"[]", "woocommerce.rest.customers", "unknown part kind"),
    ],
)
def test_unreadable_parts_are_quarantined_whole(body: bytes, kind: str, needle: str) -> None:
    out = run(body, kind)
    assert out.orders.is_empty()
    [q] = out.quarantine.to_dicts()
    assert needle in q["reason"] and q["external_id"] is None and q["records"] == 1


def test_a_record_that_is_not_an_object_is_quarantined() -> None:
    body = json.dumps([retrieve_record(), "oops"]).encode()
    out = run(body, LIST_KIND)
    assert out.orders["external_id"].to_list() == ["727"]
    assert "not an order object" in out.quarantine["reason"][0]
