"""Bulk operation results (JSON Lines) → canonical rows: a golden pair, quarantine per line, and the paged equivalent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from connectors.landing import LandingStore, Part
from orderhub.config import Settings
from pipelines.process import process_landed
from pipelines.schema import LINE_SCHEMA, ORDER_SCHEMA
from pipelines.shopify import BULK_KIND, GRAPHQL_KIND, rebuild_bulk
from tests.shopify.helpers import STORE, normalize_landed
from warehouse.db import Warehouse

PROVENANCE = ["batch_id", "landed_at", "record_hash"]

# Two orders as Shopify writes a bulk result of queries.bulk_orders, plus what can go wrong: order 5002's line
# item stands before its order, line 5 is cut off (order 5003), line 6 is a line item of that unreadable
# order and line 7 one of an order that is in no line at all. Line 2's title is decomposed (e + U+0301).
JSONL = """\
{"id":"gid://shopify/Order/5001","legacyResourceId":"5001","name":"#1001","email":"Zoe@Example.com","phone":null,"createdAt":"2026-01-05T10:00:00Z","updatedAt":"2026-01-06T12:30:00Z","processedAt":"2026-01-05T10:00:00Z","cancelledAt":null,"cancelReason":null,"closedAt":null,"currencyCode":"USD","presentmentCurrencyCode":"EUR","displayFinancialStatus":"PAID","displayFulfillmentStatus":"UNFULFILLED","sourceName":"web","tags":["vip"],"note":null,"customAttributes":[],"customer":{"id":"gid://shopify/Customer/7001","legacyResourceId":"7001","email":"zoe@example.com","phone":"+14155552671","firstName":"Zoë","lastName":"Åberg-Núñez","displayName":"Zoë Åberg-Núñez"},"shippingAddress":{"name":"Zoë Åberg-Núñez","firstName":"Zoë","lastName":"Åberg-Núñez","company":null,"address1":"12 Rue de l’Église","address2":"App. 3","city":"Montréal","province":"Quebec","provinceCode":"QC","zip":"H2X 1Y4","country":"Canada","countryCodeV2":"CA","phone":null},"billingAddress":null,"subtotalPriceSet":{"shopMoney":{"amount":"30.00","currencyCode":"USD"},"presentmentMoney":{"amount":"27.60","currencyCode":"EUR"}},"totalDiscountsSet":{"shopMoney":{"amount":"2.00","currencyCode":"USD"},"presentmentMoney":{"amount":"1.84","currencyCode":"EUR"}},"totalShippingPriceSet":{"shopMoney":{"amount":"4.95","currencyCode":"USD"},"presentmentMoney":{"amount":"4.55","currencyCode":"EUR"}},"totalTaxSet":{"shopMoney":{"amount":"2.40","currencyCode":"USD"},"presentmentMoney":{"amount":"2.21","currencyCode":"EUR"}},"totalPriceSet":{"shopMoney":{"amount":"37.35","currencyCode":"USD"},"presentmentMoney":{"amount":"34.36","currencyCode":"EUR"}},"totalRefundedSet":{"shopMoney":{"amount":"0.00","currencyCode":"USD"},"presentmentMoney":{"amount":"0.00","currencyCode":"EUR"}},"refunds":[],"fulfillments":[]}
{"id":"gid://shopify/LineItem/9001","name":"Cafe\\u0301 Mug - Blue","title":"Cafe\\u0301 Mug","sku":"MUG-1","variantTitle":"Blue","quantity":2,"originalUnitPriceSet":{"shopMoney":{"amount":"12.50","currencyCode":"USD"},"presentmentMoney":{"amount":"11.50","currencyCode":"EUR"}},"totalDiscountSet":{"shopMoney":{"amount":"1.00","currencyCode":"USD"},"presentmentMoney":{"amount":"0.92","currencyCode":"EUR"}},"taxLines":[{"title":"GST","rate":0.05,"priceSet":{"shopMoney":{"amount":"1.20","currencyCode":"USD"},"presentmentMoney":{"amount":"1.10","currencyCode":"EUR"}}}],"__parentId":"gid://shopify/Order/5001"}
{"id":"gid://shopify/LineItem/9003","name":"Kaffeebecher groß","title":"Kaffeebecher groß","sku":"KB-3","variantTitle":null,"quantity":1,"originalUnitPriceSet":{"shopMoney":{"amount":"15.00","currencyCode":"USD"},"presentmentMoney":{"amount":"15.00","currencyCode":"USD"}},"totalDiscountSet":{"shopMoney":{"amount":"0.00","currencyCode":"USD"},"presentmentMoney":{"amount":"0.00","currencyCode":"USD"}},"taxLines":[],"__parentId":"gid://shopify/Order/5002"}
{"id":"gid://shopify/Order/5002","legacyResourceId":"5002","name":"#1002","email":null,"phone":null,"createdAt":"2026-01-07T23:59:59-05:00","updatedAt":"2026-01-09T08:00:00Z","processedAt":"2026-01-08T04:59:59Z","cancelledAt":"2026-01-09T08:00:00Z","cancelReason":"CUSTOMER","closedAt":null,"currencyCode":"USD","presentmentCurrencyCode":"USD","displayFinancialStatus":"REFUNDED","displayFulfillmentStatus":"UNFULFILLED","sourceName":"pos","tags":[],"note":"Rückgabe","customAttributes":[{"key":"gift","value":"no"}],"customer":null,"shippingAddress":null,"billingAddress":{"name":"Jürgen Groß","firstName":"Jürgen","lastName":"Groß","company":null,"address1":"Straße 1","address2":null,"city":"München","province":"Bayern","provinceCode":"BY","zip":"80331","country":"Germany","countryCodeV2":"DE","phone":null},"subtotalPriceSet":{"shopMoney":{"amount":"15.00","currencyCode":"USD"},"presentmentMoney":{"amount":"15.00","currencyCode":"USD"}},"totalDiscountsSet":{"shopMoney":{"amount":"0.00","currencyCode":"USD"},"presentmentMoney":{"amount":"0.00","currencyCode":"USD"}},"totalShippingPriceSet":{"shopMoney":{"amount":"0.00","currencyCode":"USD"},"presentmentMoney":{"amount":"0.00","currencyCode":"USD"}},"totalTaxSet":{"shopMoney":{"amount":"0.00","currencyCode":"USD"},"presentmentMoney":{"amount":"0.00","currencyCode":"USD"}},"totalPriceSet":{"shopMoney":{"amount":"15.00","currencyCode":"USD"},"presentmentMoney":{"amount":"15.00","currencyCode":"USD"}},"totalRefundedSet":{"shopMoney":{"amount":"15.00","currencyCode":"USD"},"presentmentMoney":{"amount":"15.00","currencyCode":"USD"}},"refunds":[{"id":"gid://shopify/Refund/8001","legacyResourceId":"8001","createdAt":"2026-01-09T08:00:00Z","totalRefundedSet":{"shopMoney":{"amount":"15.00","currencyCode":"USD"},"presentmentMoney":{"amount":"15.00","currencyCode":"USD"}}}],"fulfillments":[]}
{"id":"gid://shopify/Order/5003","legacyResourceId":"5003","name":"#10
{"id":"gid://shopify/LineItem/9004","title":"Teekanne","sku":"TK-4","quantity":1,"originalUnitPriceSet":{"shopMoney":{"amount":"20.00","currencyCode":"USD"}},"__parentId":"gid://shopify/Order/5003"}
{"id":"gid://shopify/LineItem/9999","title":"Lost","sku":"L-9","quantity":1,"originalUnitPriceSet":{"shopMoney":{"amount":"1.00","currencyCode":"USD"}},"__parentId":"gid://shopify/Order/5999"}
{"id":"gid://shopify/LineItem/9002","name":"Crème brûlée 🍮 set","title":"Crème brûlée 🍮 set","sku":"CB-2","variantTitle":null,"quantity":1,"originalUnitPriceSet":{"shopMoney":{"amount":"8.00","currencyCode":"USD"},"presentmentMoney":{"amount":"7.36","currencyCode":"EUR"}},"totalDiscountSet":{"shopMoney":{"amount":"1.00","currencyCode":"USD"},"presentmentMoney":{"amount":"0.92","currencyCode":"EUR"}},"taxLines":[{"title":"GST","rate":0.05,"priceSet":{"shopMoney":{"amount":"1.20","currencyCode":"USD"},"presentmentMoney":{"amount":"1.10","currencyCode":"EUR"}}}],"__parentId":"gid://shopify/Order/5001"}
"""
BODY = JSONL.encode()
# What the connector counts (bulk.inspect_jsonl): 2 object lines without __parentId; line 5 did not parse and
# names no __parentId, so it stands for one record too.
RECORDS = 3


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, ship_sla_days=2)


def _land(landing: LandingStore, stream: str, kind: str, body: bytes, records: int) -> None:
    landing.write_batch("shopify", STORE, stream, [Part(kind, body, records, {"bulkOperationId": "x"})], None)


def test_bulk_jsonl_gives_exact_rows_and_quarantines_line_by_line(settings: Settings) -> None:
    landing = LandingStore(settings.landing_root)
    _land(landing, "orders", BULK_KIND, BODY, RECORDS)
    out = normalize_landed(landing, settings)

    orders = {r["external_id"]: r for r in out.orders.to_dicts()}
    assert sorted(orders) == ["5001", "5002"]
    a = orders["5001"]
    assert {k: a[k] for k in ("order_id", "order_number", "created_at", "updated_at", "status", "payment_status",
                              "currency", "presentment_currency", "subtotal", "discount", "shipping", "tax", "total",
                              "presentment_total", "refunded", "total_base", "channel_customer_key", "email", "phone",
                              "buyer_name", "ship_name", "ship_line1", "ship_line2", "ship_city", "ship_region",
                              "ship_postal_code", "ship_country", "fulfilled_by", "ship_by", "mirror_of",
                              "source_name", "partial")} == {
        "order_id": "shopify:acme:5001", "order_number": "#1001",
        "created_at": datetime(2026, 1, 5, 10, tzinfo=UTC), "updated_at": datetime(2026, 1, 6, 12, 30, tzinfo=UTC),
        "status": "unfulfilled", "payment_status": "paid", "currency": "USD", "presentment_currency": "EUR",
        "subtotal": Decimal("32.00"),  # Shopify's subtotal is after discounts: 30.00 + 2.00
        "discount": Decimal("2.00"), "shipping": Decimal("4.95"), "tax": Decimal("2.40"), "total": Decimal("37.35"),
        "presentment_total": Decimal("34.36"), "refunded": Decimal("0"),  # refunds: [] -> nothing refunded
        "total_base": Decimal("37.35"), "channel_customer_key": "7001", "email": "zoe@example.com",
        "phone": "+14155552671",  # the order has none: the customer's
        "buyer_name": "Zoë Åberg-Núñez", "ship_name": "Zoë Åberg-Núñez", "ship_line1": "12 Rue de l’Église",
        "ship_line2": "App. 3", "ship_city": "Montréal", "ship_region": "QC", "ship_postal_code": "H2X 1Y4",
        "ship_country": "CA", "fulfilled_by": "merchant", "ship_by": datetime(2026, 1, 7, 10, tzinfo=UTC),
        "mirror_of": None, "source_name": "web", "partial": False,
    }
    b = orders["5002"]
    # created 23:59:59 at -05:00 is 04:59:59 UTC the next day; cancelled wins over the fulfillment status
    assert (b["created_at"], b["status"], b["payment_status"]) == (
        datetime(2026, 1, 8, 4, 59, 59, tzinfo=UTC), "cancelled", "refunded")
    assert (b["subtotal"], b["discount"], b["shipping"], b["tax"], b["total"], b["refunded"]) == (
        Decimal("15.00"), Decimal("0.00"), Decimal("0.00"), Decimal("0.00"), Decimal("15.00"), Decimal("15.00"))
    assert (b["email"], b["phone"], b["channel_customer_key"], b["ship_name"], b["ship_country"]) == (
        None, None, None, None, None)
    assert b["buyer_name"] == "Jürgen Groß"  # no customer: the billing address's name

    lines = out.lines.sort("order_id", "line_no").select(list(LINE_SCHEMA)).rows()
    assert lines == [
        # line items in file order; "Cafe\u0301" comes out NFC
        ("shopify:acme:5001", 1, "MUG-1", "MUG-1", "Caf\u00e9 Mug", 2, Decimal("12.50"), Decimal("1.00"),
         Decimal("1.20"), Decimal("25.20")),
        ("shopify:acme:5001", 2, "CB-2", "CB-2", "Crème brûlée 🍮 set", 1, Decimal("8.00"), Decimal("1.00"),
         Decimal("1.20"), Decimal("8.20")),
        # a line item before its order still belongs to it
        ("shopify:acme:5002", 1, "KB-3", "KB-3", "Kaffeebecher groß", 1, Decimal("15.00"), Decimal("0.00"),
         Decimal("0"), Decimal("15.00")),
    ]

    quarantine = out.quarantine.sort("reason").to_dicts()  # "... line 5", "... line 6", "... line 7"
    assert [(q["external_id"], q["records"]) for q in quarantine] == [(None, 1), ("5003", 0), ("5999", 0)]
    bad, orphan_of_bad, orphan = quarantine
    assert bad["reason"].startswith("part-0001.json (shopify.bulk.orders) line 5 is not JSON (")
    assert bad["payload"] == JSONL.splitlines()[4]
    assert orphan["reason"] == (
        "part-0001.json (shopify.bulk.orders) line 7 is a child of gid://shopify/Order/5999, which is not in this "
        "file, so it belongs to no order here; run the backfill of this window again or import the order from REST "
        "orders/5999.json")
    assert json.loads(orphan["payload"])["id"] == "gid://shopify/LineItem/9999"
    assert orphan_of_bad["reason"].startswith("part-0001.json (shopify.bulk.orders) line 6 is a child of "
                                              "gid://shopify/Order/5003, which is not in this file")
    # loaded + quarantined = landed: the children stand for no record
    assert out.orders.height + out.quarantine["records"].sum() == RECORDS


def test_bulk_batch_processes_with_consistent_counts(settings: Settings) -> None:
    landing = LandingStore(settings.landing_root)
    _land(landing, "orders", BULK_KIND, BODY, RECORDS)
    with Warehouse.open(settings.warehouse_path) as wh:
        result = process_landed(settings, landing, wh)
        assert (result.landed, result.quarantined, result.inserted) == (3, 1, 2)
        assert wh.con.execute("SELECT count(*), sum(records) FROM quarantine").fetchone() == (3, 1)


def _paged(jsonl: str) -> bytes:
    """The same orders as one page of queries.ORDERS, built by hand from the good lines."""
    objects = []
    for raw in jsonl.splitlines():
        try:
            objects.append(json.loads(raw))
        except ValueError:
            continue
    roots = [o for o in objects if "__parentId" not in o]
    edges = []
    for n, root in enumerate(roots):
        items = [{k: v for k, v in o.items() if k != "__parentId"} for o in objects
                 if o.get("__parentId") == root["id"]]
        node = {**root, "lineItems": {"pageInfo": {"hasNextPage": False}, "nodes": items}}
        edges.append({"cursor": f"c{n}", "node": node})
    doc = {"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": "c1"}, "edges": edges}},
           "extensions": {"cost": {"requestedQueryCost": 50, "actualQueryCost": 12}}}
    return json.dumps(doc, ensure_ascii=False).encode()


def test_bulk_and_paged_give_identical_rows(settings: Settings) -> None:
    landing = LandingStore(settings.landing_root)
    _land(landing, "bulk", BULK_KIND, BODY, RECORDS)
    _land(landing, "paged", GRAPHQL_KIND, _paged(JSONL), 2)
    out = normalize_landed(landing, settings)

    def orders(stream: str) -> pl.DataFrame:
        return out.orders.filter(pl.col("batch_id").str.contains(f"/{stream}/")).drop(PROVENANCE).sort("order_id")

    def lines(stream: str) -> pl.DataFrame:
        return (out.lines.filter(pl.col("batch_id").str.contains(f"/{stream}/")).select(list(LINE_SCHEMA))
                .sort("order_id", "line_no"))

    assert orders("bulk").height == 2
    assert_frame_equal(orders("bulk"), orders("paged"))
    assert_frame_equal(lines("bulk"), lines("paged"))
    assert set(orders("bulk").columns) == set(ORDER_SCHEMA) - set(PROVENANCE)
    # the paged body has nothing to quarantine; the bulk one its three lines
    assert out.quarantine["batch_id"].str.contains("/bulk/").all()


def test_rebuild_keeps_file_order_and_reports_what_it_cannot_place() -> None:
    body = b"\n".join([
        b'{"id":"gid://shopify/LineItem/2","title":"b","__parentId":"gid://shopify/Order/1"}',
        b'{"id":"gid://shopify/Order/1","name":"#1"}',
        b"",
        b'{"id":"gid://shopify/LineItem/3","title":"c","__parentId":"gid://shopify/Order/1"}',
        b'{"id":"gid://shopify/FulfillmentOrder/4","__parentId":"gid://shopify/Order/1"}',
        b'[1, 2]',
        b'{"title":"no id","__parentId":"gid://shopify/Order/1"}',
    ])
    orders, problems = rebuild_bulk(body)
    assert orders == [{"id": "gid://shopify/Order/1", "name": "#1", "lineItems": {"nodes": [
        {"id": "gid://shopify/LineItem/2", "title": "b"}, {"id": "gid://shopify/LineItem/3", "title": "c"},
        {"title": "no id"}]}}]
    assert [(p.line_no, p.records, p.external_id) for p in problems] == [(6, 0, None), (5, 0, "1")]
    assert "only line items are read" in problems[1].reason
