"""Malformed Shopify records (GraphQL and REST) are quarantined with a reason; the rest of the batch loads."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
import pytest
import requests

from connectors.base import sync_stream
from connectors.landing import Part
from connectors.shopify.streams import ShopifyOrders
from pipelines.common import finish
from pipelines.shopify import normalize
from tests.shopify.helpers import SHOP, STORE, TOKEN, Source, World, make_order, normalize_landed

DEFECTS = {
    "missing_id": "order id missing",
    "bad_total": "total_price '12,34' is not a decimal amount",
    "bad_date": "created_at '2024-02-30T25:61:00Z' is not an ISO 8601 timestamp",
    "unknown_currency": "no exchange rate for currency ZZZ",
    "negative_quantity": "line 1 has negative quantity -1",
    "missing_lines": "order has no line items",
    "gremlins": "total_price '12,34' is not a decimal amount",  # any other defect renders as bad_total
}


@pytest.fixture
def defective(world: World) -> World:
    orders = [make_order(20 + i, world.t0 - timedelta(days=5, hours=i), defect=d) for i, d in enumerate(DEFECTS)]
    orders += [make_order(40, world.t0 - timedelta(days=4)), make_order(41, world.t0 - timedelta(days=3))]
    world.source = Source(orders)
    world.emulator.__init__(world.source, shops={SHOP: (STORE, TOKEN, "USD")}, speed=1000.0)  # type: ignore[misc]
    return world


def _reasons(quarantine: pl.DataFrame) -> dict[str, str]:
    by_order: dict[str, str] = {}
    for row in quarantine.to_dicts():
        key = row["external_id"] or "<none>"
        by_order[key] = row["reason"]
    return by_order


def _check(out_quarantine: pl.DataFrame, loaded: pl.DataFrame) -> None:
    reasons = _reasons(out_quarantine)
    assert len(reasons) == len(DEFECTS)
    assert DEFECTS["missing_id"] in reasons["<none>"]
    for i, (defect, reason) in enumerate(DEFECTS.items()):
        if defect != "missing_id":
            assert reason in reasons[str(5_000_000_020 + i)], (defect, reasons)
    assert sorted(loaded["external_id"].to_list()) == ["5000000040", "5000000041"]


def test_graphql_defects_are_quarantined_with_reasons(defective: World) -> None:
    stream = ShopifyOrders(defective.store, start=defective.t0 - timedelta(days=30), client=defective.client())
    result = sync_stream(stream, defective.landing)
    out = normalize_landed(defective.landing, defective.settings)
    assert out.orders.height + int(out.quarantine["records"].sum()) == result.records == len(DEFECTS) + 2
    _check(out.quarantine, out.orders)


def test_rest_defects_are_quarantined_with_reasons(defective: World) -> None:
    resp = requests.get(f"{defective.server.url}/admin/api/2026-01/orders.json", params={"status": "any"},
                        headers={"Host": SHOP, "X-Shopify-Access-Token": TOKEN}, timeout=5)
    body = resp.content
    manifest = defective.landing.write_batch("shopify", STORE, "import", [
        Part("shopify.rest.orders", body, len(resp.json()["orders"]))], None, source="import")
    out = finish(normalize(manifest, [(manifest.parts[0], body)], defective.settings), defective.settings)
    _check(out.quarantine, out.orders)


def test_unreadable_body_is_quarantined_whole(world: World) -> None:
    body = b'{"data": {"orders": {"edges": [{"node": {"legacyResourceId": "1"'  # truncated
    manifest = world.landing.write_batch("shopify", STORE, "orders", [Part("shopify.graphql.orders", body, 3)], None)
    out = finish(normalize(manifest, [(manifest.parts[0], body)], world.settings), world.settings)
    row = out.quarantine.row(0, named=True)
    assert row["records"] == 3 and "could not be read" in row["reason"]
    assert out.orders.is_empty()


def test_truncated_line_items_are_quarantined(world: World) -> None:
    node = {"legacyResourceId": "9", "name": "#9", "createdAt": "2024-01-01T00:00:00Z",
            "updatedAt": "2024-01-01T00:00:00Z", "currencyCode": "USD", "displayFinancialStatus": "PAID",
            "displayFulfillmentStatus": "UNFULFILLED",
            "lineItems": {"pageInfo": {"hasNextPage": True}, "nodes": [
                {"sku": "A", "title": "A", "quantity": 1, "originalUnitPriceSet": {"shopMoney": {"amount": "1.0"}}}]}}
    body = json.dumps({"data": {"orders": {"nodes": [node]}}}).encode()
    manifest = world.landing.write_batch("shopify", STORE, "orders", [Part("shopify.graphql.orders", body, 1)], None)
    out = finish(normalize(manifest, [(manifest.parts[0], body)], world.settings), world.settings)
    assert "more line items than the query fetched" in out.quarantine["reason"][0]

