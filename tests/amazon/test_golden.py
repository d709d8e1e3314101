"""Golden pairs: Amazon's own payloads -> the canonical rows written by reading each payload."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from connectors.amazon.importer import import_files
from connectors.landing import LandingStore, Part
from pipelines.amazon import lines_v0, normalize
from pipelines.common import BatchRows, Normalized, finish
from tests.amazon.helpers import FIXTURES, settings

V26 = "orders-2026-01-01/"


def run(tmp_path: Path, *names: str, parts: list[Part] | None = None) -> tuple[BatchRows, Normalized]:
    """Import fixture files (or land ``parts``) as one batch of store amz-us and normalize it."""
    landing = LandingStore(tmp_path / "landing")
    if parts is None:
        [manifest] = import_files([FIXTURES / n for n in names], "amz-us", landing)
    else:
        manifest = landing.write_batch("amazon", "amz-us", "import", parts, None, source="import")
    bodies = [(p, landing.read_part(manifest, p)) for p in manifest.parts]
    rows = normalize(manifest, bodies, settings(tmp_path))
    out = finish(rows, settings(tmp_path))
    assert sum(p.records for p in manifest.parts) == out.orders.height + out.quarantine["records"].sum()
    return rows, out


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def row(df: pl.DataFrame, external_id: str) -> dict[str, Any]:
    found = df.filter(pl.col("external_id") == external_id)
    assert found.height >= 1, f"{external_id} not in {df['external_id'].to_list()}"
    return found.row(0, named=True)


def flat(rows: BatchRows, external_id: str) -> dict[str, Any]:
    return next(r for r in rows.orders if r["external_id"] == external_id)


def lines(out: Normalized, external_id: str) -> list[tuple]:
    frame = out.lines.filter(pl.col("order_id") == f"amazon:amz-us:{external_id}").sort("line_no")
    return [tuple(r) for r in frame.select("line_no", "sku", "title", "quantity", "unit_price", "discount", "tax",
                                            "total").unique(maintain_order=True).iter_rows()]


D = Decimal


def test_search_orders_example(tmp_path: Path) -> None:
    _, out = run(tmp_path, V26 + "searchOrders.example.200.json")
    r = row(out.orders, "123-4567890-1234567")
    assert r["order_id"] == "amazon:amz-us:123-4567890-1234567" and r["order_number"] == "123-4567890-1234567"
    assert (r["channel"], r["store"]) == ("amazon", "amz-us")
    assert (r["created_at"], r["updated_at"]) == (utc("2024-12-25T10:30:00Z"), utc("2024-12-25T14:45:00Z"))
    assert (r["status"], r["payment_status"]) == ("fulfilled", "paid")  # SHIPPED
    assert (r["currency"], r["total"], r["subtotal"], r["tax"], r["shipping"], r["discount"]) == (
        "USD", D("154.99"), D("149.97"), D("0.02"), D("0"), D("0"))  # the 5.00 DELIVERY_TIP is in the total only
    assert r["total_base"] == D("154.99") and r["refunded"] is None
    assert (r["email"], r["buyer_name"], r["phone"]) == ("buyer-email@marketplace.amazon.com", "John Smith", None)
    assert (r["ship_name"], r["ship_line1"], r["ship_line2"], r["ship_city"], r["ship_region"], r["ship_postal_code"],
            r["ship_country"]) == ("John Smith", "123 Main Street", "Suite 456", "Seattle", "WA", "98101", "US")
    assert r["fulfilled_by"] == "merchant" and r["ship_by"] == utc("2024-12-27T23:59:59Z")
    assert r["related_order"] == "amazon:amz-us:123-4567890-1234566"  # REPLACEMENT_ORIGINAL_ID
    assert r["source_name"] == "Amazon.com" and r["pii_masked"] is False and r["channel_customer_key"] is None
    assert lines(out, "123-4567890-1234567") == [
        (1, "ECHO-DOT-4-CHARCOAL", "Echo Dot (4th Gen) | Smart speaker with Alexa | Charcoal", 2, D("49.99"), D("0"),
         D("0.02"), D("100.00")),
        (2, "FIRE-TV-4K-2021", "Fire TV Stick 4K with Alexa Voice Remote", 1, D("49.99"), D("0"), D("0"), D("49.99")),
    ]


def test_search_orders_sandbox_jpy_gbp_brl(tmp_path: Path) -> None:
    _, out = run(tmp_path, V26 + "searchOrders.sandbox.200.json")
    assert out.quarantine.height == 0 and out.orders.height == 3
    jp = row(out.orders, "250-1234567-8901234")
    assert (jp["currency"], jp["total"], jp["subtotal"], jp["total_base"]) == ("JPY", D("19940"), D("19940"),
                                                                              D("133.598"))
    assert jp["fulfilled_by"] == "marketplace" and (jp["status"], jp["payment_status"]) == ("fulfilled", "paid")
    assert jp["ship_by"] == utc("2024-12-25T23:59:59Z") and jp["email"] == "buyer-email@marketplace.amazon.co.jp"
    assert (jp["ship_city"], jp["ship_region"], jp["ship_postal_code"], jp["ship_country"]) == ("Tokyo", None,
                                                                                                "150-0002", "JP")
    title = "Echo Dot (第4世代) スマートスピーカー with Alexa チャコール"
    assert lines(out, "250-1234567-8901234") == [
        (1, "ECHO-DOT-4-JP-CHARCOAL", title, 1, D("5980"), D("0"), D("0"), D("5980")),
        (2, "FIRE-TV-4K-MAX-JP", "Fire TV Stick 4K Max ストリーミングデバイス", 2, D("6980"), D("0"), D("0"), D("13960")),
    ]
    uk = row(out.orders, "202-7654321-1098765")
    assert (uk["currency"], uk["total"], uk["phone"], uk["ship_line2"], uk["ship_region"]) == (
        "GBP", D("34.99"), "+442079460958", "Flat 2A", "England")
    assert uk["created_at"] == utc("2024-12-24T14:20:00Z") and uk["ship_by"] == utc("2024-12-25T23:59:59Z")
    br = row(out.orders, "171-2345678-9012345")
    assert (br["status"], br["payment_status"], br["currency"], br["total"]) == ("unfulfilled", "paid", "BRL",
                                                                                 D("1599.90"))
    assert br["ship_city"] == unicodedata.normalize("NFC", "São Paulo") and br["phone"] == "+5511912345678"
    assert br["source_name"] == "Amazon.com.br" and br["buyer_name"] == "Carlos Oliveira"


def test_get_order_example_and_sandbox(tmp_path: Path) -> None:
    _, out = run(tmp_path, V26 + "getOrder.example.200.json", V26 + "getOrder.sandbox.200.json")
    assert out.quarantine.height == 0 and out.orders.height == 4
    uk = row(out.orders, "202-1234567-8901234")
    assert (uk["total"], uk["subtotal"], uk["shipping"], uk["tax"], uk["discount"]) == (
        D("103.97"), D("89.97"), D("10.00"), D("4.00"), D("0"))
    assert uk["phone"] == "+441611234567" and uk["ship_line2"] == "Unit 4B"
    assert lines(out, "202-1234567-8901234") == [
        (1, "ECHO-DOT-4-UK-CHARCOAL-3PACK", "Echo Dot (4th Gen) | Smart speaker with Alexa | Charcoal", 3,
         D("29.99"), D("0"), D("4.00"), D("93.97"))]  # item price - discount + tax; shipping stays on the order
    br = row(out.orders, "171-9876543-2109876")
    assert (br["status"], br["currency"], br["total"], br["phone"]) == ("unfulfilled", "BRL", D("299.90"),
                                                                        "+5511987654321")
    assert br["ship_by"] == utc("2024-12-27T23:59:59Z") and br["ship_city"] == "São Paulo"
    tr = row(out.orders, "028-1234567-8901234")
    assert (tr["status"], tr["currency"], tr["total"], tr["phone"], tr["source_name"]) == (
        "fulfilled", "TRY", D("125.00"), None, "Amazon.com.tr")
    assert lines(out, "028-1234567-8901234") == [
        (1, "FIRE-HD10-TR-BLK", "Fire HD 10 tablet | 10.1 inch, 1080p Full HD", 2, D("62.50"), D("0"), D("0"),
         D("125.00"))]
    pickup = row(out.orders, "114-9876543-1234567")  # asked without BUYER: no buyer, recipient given
    assert (pickup["email"], pickup["buyer_name"], pickup["ship_name"], pickup["phone"]) == (
        None, None, "Test Store #1234", "+12065550100")
    assert pickup["pii_masked"] is False and (pickup["subtotal"], pickup["tax"]) == (D("39.99"), D("10.00"))
    assert pickup["ship_by"] == utc("2025-03-12T14:00:00Z")  # no shipByWindow: created_at + 2-day SLA


def test_v0_get_orders_example_pending_without_total(tmp_path: Path) -> None:
    rows, out = run(tmp_path, "getOrders.example.json")
    r = flat(rows, "902-3159896-1390916")
    assert (r["status"], r["payment_status"], r["total"], r["currency"]) == ("pending", "pending", None, None)
    assert (r["created_at"], r["ship_by"]) == (utc("2017-01-20T19:49:35Z"), utc("2017-01-25T19:49:35Z"))
    assert (r["email"], r["buyer_name"], r["ship_name"], r["ship_line1"], r["ship_city"], r["ship_region"],
            r["ship_postal_code"], r["ship_country"]) == ("user@example.com", "John Doe", "Michigan address",
                                                          "1 Cross St.", "Canton", "MI", "48817", "US")
    assert r["fulfilled_by"] == "merchant" and r["related_order"] is None and r["pii_masked"] is False
    # Without its getOrderItems body the order cannot be loaded: it is quarantined, saying what to do.
    q = out.quarantine.row(0, named=True)
    assert q["external_id"] == "902-3159896-1390916" and "getOrderItems" in q["reason"]


def test_v0_sandbox_orders_items_buyer_and_address(tmp_path: Path) -> None:
    rows, out = run(tmp_path, "getOrders.sandbox.200.json", "getOrderItems.sandbox.200.json",
                    "getOrderBuyerInfo.sandbox.200.json", "getOrderAddress.sandbox.200.json")
    r = row(out.orders, "902-1845936-5435065")
    assert (r["status"], r["payment_status"], r["currency"], r["total"], r["subtotal"], r["tax"], r["shipping"],
            r["discount"]) == ("unfulfilled", "paid", "USD", D("11.01"), D("10.00"), D("1.01"), D("0"), D("0.00"))
    assert (r["email"], r["buyer_name"], r["phone"]) == ("fzyrv6gwkhbb15c@example.com", "MFNIntegrationTestMerchant",
                                                         "+14803860930")  # the "ext. 73824" is not part of E.164
    assert (r["ship_line1"], r["ship_city"], r["ship_region"], r["ship_postal_code"]) == (
        "2201 WESTLAKE AVE", "SEATTLE", "WA", "98121-2778")
    assert (r["created_at"], r["updated_at"], r["ship_by"]) == (
        utc("1970-01-19T03:58:30Z"), utc("1970-01-19T03:58:32Z"), utc("1970-01-19T04:05:13Z"))
    assert r["related_order"] is None and r["source_name"] == "Amazon.com" and r["pii_masked"] is False
    assert lines(out, "902-1845936-5435065") == [
        (1, "NABetaASINB00551Q3CS", "B00551Q3CS [Card Book]", 1, D("10.00"), D("0.00"), D("1.01"), D("11.01"))]
    assert flat(rows, "902-8745147-1934268")["pii_masked"] is True  # no BuyerInfo, no ShippingAddress, no RDT body
    assert sorted(out.quarantine["external_id"].to_list()) == [
        "902-3159896-1390916", "902-3159896-1390916", "902-8745147-1934268"]
    assert all("getOrderItems" in reason for reason in out.quarantine["reason"])


def test_v0_get_order_sandbox_fba_and_example_with_rdt_bodies(tmp_path: Path) -> None:
    rows, _ = run(tmp_path, "getOrder.sandbox.200.json", "getOrder.example.json", "getOrderBuyerInfo.example.json",
                  "getOrderAddress.example.json")
    iba = flat(rows, "921-3175655-0452641")
    assert (iba["fulfilled_by"], iba["status"], iba["payment_status"], iba["currency"], iba["total"]) == (
        "marketplace", "fulfilled", "paid", "EUR", D("100.00"))  # AFN, Shipped
    assert iba["created_at"] == datetime(2019, 5, 7, 15, 42, 57, 58000, tzinfo=UTC)
    assert iba["ship_by"] == utc("2019-05-08T21:59:59Z") and iba["source_name"] == "Amazon.de"
    example = flat(rows, "902-3159896-1390916")  # the order's own BuyerInfo/ShippingAddress win over RDT bodies
    assert (example["buyer_name"], example["ship_line1"], example["email"]) == ("John Doe", "1 Cross St.",
                                                                                "user@example.com")


def test_v0_items_example_jpy_and_string_booleans() -> None:
    items = json.loads((FIXTURES / "getOrderItems.example.json").read_text())["payload"]["OrderItems"]
    assert items[0]["BuyerRequestedCancel"]["IsBuyerRequestedCancel"] == "true"  # a string on the wire
    problems: list[str] = []
    got = [(r["line_no"], r["sku"], r["quantity"], r["unit_price"], r["discount"], r["tax"], r["total"])
           for r in lines_v0("amazon:amz-us:903-1671087-0812628", items, problems)]
    assert got == [(1, "CBA_OTF_1", 1, D("25.99"), None, None, D("25.99")),
                   (2, "CBA_OTF_5", 2, D("8.975"), None, None, D("17.95"))]  # ItemPrice covers both units
    assert problems == []


def _v0_quirky_order() -> dict[str, Any]:
    data = json.loads((FIXTURES / "getOrders.sandbox.200.json").read_text())
    order = data[0]["response"]["payload"]["Orders"][0]
    order.update({"OrderStatus": "InvoiceUnconfirmed", "IsReplacementOrder": "true",
                  "ReplacedOrderId": "902-0000000-0000001",
                  "ShippingAddress": {"Name": "Zoë Ångström", "AddressLine1": "1 Main St", "AddressLine2": "null",
                                      "City": "Seattle", "StateOrRegion": "null", "PostalCode": "98101",
                                      "CountryCode": "US", "Phone": "null"}})
    return order


def test_real_world_quirks_null_strings_string_booleans_invoice_unconfirmed(tmp_path: Path) -> None:
    """SOURCES.md's known SP-API quirks, applied to the sandbox order: "null" strings, "true" strings."""
    order = _v0_quirky_order()
    items = json.loads((FIXTURES / "getOrderItems.sandbox.200.json").read_text())[0]["response"]
    body = json.dumps({"payload": {"Orders": [order]}}, ensure_ascii=False).encode()
    _, out = run(tmp_path, parts=[Part("amazon.orders.v0.getOrders", body, 1),
                                  Part("amazon.orders.v0.getOrderItems", json.dumps(items).encode(), 0)])
    r = row(out.orders, "902-1845936-5435065")
    assert (r["status"], r["payment_status"]) == ("fulfilled", "paid")
    assert r["related_order"] == "amazon:amz-us:902-0000000-0000001"
    assert (r["ship_line2"], r["ship_region"], r["phone"]) == (None, None, None)
    assert r["ship_name"] == unicodedata.normalize("NFC", "Zoë Ångström")


def test_unmapped_status_and_unreadable_bodies_are_quarantined_with_reasons(tmp_path: Path) -> None:
    order = _v0_quirky_order()
    order["OrderStatus"] = "Teleported"
    items = json.loads((FIXTURES / "getOrderItems.sandbox.200.json").read_text())[0]["response"]
    rows, out = run(tmp_path, parts=[
        Part("amazon.orders.v0.getOrders", json.dumps({"payload": {"Orders": [order]}}).encode(), 1),
        Part("amazon.orders.v0.getOrderItems", json.dumps(items).encode(), 0),
        Part("amazon.orders.v2026.searchOrders", b'{"orders": [{"orderId": "1"', 3),
        Part("amazon.orders.v2026.searchOrders", b'{"errors": [{"code": "InvalidInput"}]}', 0),
    ])
    reasons = dict(zip(out.quarantine["external_id"].fill_null("-"), out.quarantine["reason"], strict=True))
    assert "status Teleported is not mapped" in reasons["902-1845936-5435065"]
    assert out.quarantine.filter(pl.col("reason").str.contains("not valid JSON"))["records"].to_list() == [3]
    assert out.quarantine.filter(pl.col("reason").str.contains("error response"))["records"].to_list() == [0]
    assert out.orders.height == 0 and len(rows.orders) == 1


@pytest.mark.parametrize("name", ["getOrders.sandbox.400.json", "getOrder.sandbox.400.json", "definitions.json",
                                  V26 + "parameters.json", V26 + "searchOrders.sandbox.400.json",
                                  "reports/GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL.columns.json"])
def test_import_refuses_what_is_not_an_order_response(tmp_path: Path, name: str) -> None:
    from orderhub.errors import ConfigError

    landing = LandingStore(tmp_path / "landing")
    with pytest.raises(ConfigError, match="expected searchOrders"):
        import_files([FIXTURES / "getOrders.example.json", FIXTURES / name], "amz-us", landing)
    assert list(landing.manifests()) == []  # nothing landed when one file is wrong


def test_import_every_amazon_fixture(tmp_path: Path) -> None:
    files = sorted(p for p in FIXTURES.rglob("*.json")
                   if ".400." not in p.name and p.name not in ("definitions.json", "parameters.json")
                   and "reports" not in p.parts)
    landing = LandingStore(tmp_path / "landing")
    [manifest] = import_files(files, "amz-us", landing)
    assert (manifest.stream, manifest.source, manifest.cursor, manifest.records) == ("import", "import", None, 16)
    assert landing.state("amazon", "amz-us", "orders") is None  # imports never move an API cursor
    kinds = {p.kind for p in manifest.parts}
    assert kinds == {"amazon.orders.v2026.searchOrders", "amazon.orders.v2026.getOrder", "amazon.orders.v0.getOrders",
                     "amazon.orders.v0.getOrder", "amazon.orders.v0.getOrderItems",
                     "amazon.orders.v0.getOrderBuyerInfo", "amazon.orders.v0.getOrderAddress"}
    example = next(p for p in manifest.parts if p.request.get("file") == "searchOrders.example.200.json")
    assert landing.read_part(manifest, example) == (FIXTURES / V26 / "searchOrders.example.200.json").read_bytes()
    out = finish(normalize(manifest, [(p, landing.read_part(manifest, p)) for p in manifest.parts],
                           settings(tmp_path)), settings(tmp_path))
    assert out.orders.height + out.quarantine["records"].sum() == 16
