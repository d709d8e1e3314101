"""The Shopify emulator speaks like Shopify: schema validation, auth, cost and THROTTLED, search, cursors, REST paging."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import requests

from connectors.shopify import queries
from sandbox.emulators.shopify import (
    COST_DIVISOR,
    INVALID_TOKEN,
    CostBucket,
    OrderView,
    parse_search,
    render_rest,
)
from tests.shopify.helpers import SHOP, TOKEN, World, fixture_bytes, make_order

GRAPHQL = "/admin/api/2026-01/graphql.json"
REST = "/admin/api/2026-01/orders.json"


def _post(world: World, query: str, variables: dict[str, Any] | None = None, *, token: str = TOKEN,
          host: str = SHOP) -> requests.Response:
    return requests.post(world.server.url + GRAPHQL, json={"query": query, "variables": variables or {}},
                         headers={"Host": host, "X-Shopify-Access-Token": token}, timeout=5)


def _orders(world: World, search: str = "", first: int = 50, after: str | None = None, sort: str = "UPDATED_AT"
            ) -> dict[str, Any]:
    query = ("query($first: Int!, $after: String, $q: String) { orders(first: $first, after: $after, "
             f"sortKey: {sort}, query: $q) {{ edges {{ cursor node {{ legacyResourceId updatedAt }} }} "
             "pageInfo { hasNextPage endCursor } } }")
    resp = _post(world, query, {"first": first, "after": after, "q": search})
    assert resp.status_code == 200
    return resp.json()


def test_unknown_field_fails_validation_like_shopify(world: World) -> None:
    body = _post(world, "{ orders(first: 1) { nodes { id financialStatus } } }").json()
    assert "data" not in body
    assert "financialStatus" in body["errors"][0]["message"]


def test_the_connector_query_is_valid_against_the_schema(world: World) -> None:
    body = _post(world, queries.ORDERS, {"first": 5, "query": ""}).json()
    assert "errors" not in body
    assert len(body["data"]["orders"]["edges"]) == 5


def test_wrong_token_is_401_with_shopifys_body(world: World) -> None:
    resp = _post(world, "{ shop { name } }", token="shpat_wrong")
    assert resp.status_code == 401
    assert resp.json() == {"errors": INVALID_TOKEN}


def test_unknown_shop_is_404(world: World) -> None:
    assert _post(world, "{ shop { name } }", host="other.myshopify.com").status_code == 404


def test_cost_extension_on_every_response(world: World) -> None:
    body = _orders(world, first=10)
    cost = body["extensions"]["cost"]
    # 10 orders, no nested connection in this query: 2 + ceil(10 * 1 / 10)
    assert cost["requestedQueryCost"] == 2 + -(-10 // COST_DIVISOR)
    assert cost["actualQueryCost"] <= cost["requestedQueryCost"]
    assert cost["throttleStatus"]["maximumAvailable"] == 2000.0
    assert cost["throttleStatus"]["restoreRate"] == 100.0 * world.emulator.speed


def test_throttled_when_the_bucket_lacks_the_cost(world: World) -> None:
    world.emulator.cost_buckets[SHOP] = CostBucket(100.0, 2000.0, speed=0.001)  # restores 0.1 point/s
    world.emulator.faults.add("throttled")
    resp = _post(world, queries.ORDERS, {"first": 50, "query": ""})
    assert resp.status_code == 200
    body = resp.json()
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert body["extensions"]["cost"]["requestedQueryCost"] == 2 + 50 * 101 // COST_DIVISOR
    assert body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 1


def test_max_cost_exceeded(world: World) -> None:
    body = _post(world, queries.ORDERS, {"first": 250, "query": ""}).json()
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert body["errors"][0]["extensions"]["maxCost"] == 1000


def test_search_bounds_and_cursor_paging(world: World) -> None:
    t0 = world.t0
    since, until = t0 - timedelta(days=13), t0 - timedelta(days=5)
    search = (f"updated_at:>='{since:%Y-%m-%dT%H:%M:%SZ}' AND updated_at:<'{until:%Y-%m-%dT%H:%M:%SZ}'")
    seen, after = [], None
    while True:
        body = _orders(world, search, first=2, after=after)
        seen += [e["node"] for e in body["data"]["orders"]["edges"]]
        if not body["data"]["orders"]["pageInfo"]["hasNextPage"]:
            break
        after = body["data"]["orders"]["pageInfo"]["endCursor"]
    expected = sorted(
        (v.at, o.external_id) for o in world.source.orders_for("acme")
        if (v := o.version_at(t0)) is not None and o.created_at <= t0 and since <= v.at < until)
    assert [n["legacyResourceId"] for n in seen] == [ext for _, ext in expected]
    assert [n["updatedAt"] for n in seen] == sorted(n["updatedAt"] for n in seen)


def test_search_parser() -> None:
    filters, warnings = parse_search("updated_at:>='2024-01-01T00:00:00Z' AND created_at:<2024-02-01 AND status:any")
    assert [(f, op) for f, op, _ in filters] == [("updated_at", ">="), ("created_at", "<")]
    assert warnings and warnings[0]["field"] == "status"


def test_rest_orders_link_paging_and_filters(world: World) -> None:
    headers = {"Host": SHOP, "X-Shopify-Access-Token": TOKEN}
    resp = requests.get(world.server.url + REST, params={"status": "any", "limit": "4", "order": "updated_at asc",
                                                        "updated_at_min": (world.t0 - timedelta(days=30)).isoformat()},
                        headers=headers, timeout=5)
    ids = [o["id"] for o in resp.json()["orders"]]
    while "Link" in resp.headers:
        link = resp.headers["Link"]
        assert link.startswith(f"<https://{SHOP}{REST}?") and link.endswith('>; rel="next"')
        page_info = link.split("page_info=", 1)[1].split(">", 1)[0]
        resp = requests.get(world.server.url + REST, params={"limit": "4", "page_info": page_info}, headers=headers,
                            timeout=5)
        ids += [o["id"] for o in resp.json()["orders"]]
    assert len(ids) == len(set(ids)) == len(world.visible())
    assert "X-Shopify-Shop-Api-Call-Limit" in resp.headers
    open_only = requests.get(world.server.url + REST, params={"limit": "250"}, headers=headers, timeout=5).json()
    assert all(o["cancelled_at"] is None for o in open_only["orders"])  # REST's default status is open


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    return type(value).__name__


def test_rest_render_is_shaped_like_the_real_fixture(world: World) -> None:
    real = json.loads(fixture_bytes("orders.json"))["orders"][0]
    order = make_order(4, world.t0 - timedelta(days=3))
    mine = render_rest(OrderView(order, order.versions[0], "USD", shop=SHOP))
    assert set(real) - set(mine) <= {"payment_details", "total_price_usd"}  # deprecated card data, USD-only field
    for key in ("total_price_set", "subtotal_price_set", "total_tax_set", "total_discounts_set",
                "total_line_items_price_set", "total_shipping_price_set", "shipping_address", "billing_address"):
        assert _types(mine[key]).keys() == _types(real[key]).keys(), key
    for key in ("id", "total_price", "created_at", "name", "order_number", "tags", "currency", "financial_status"):
        assert type(mine[key]) is type(real[key]), key
    assert set(real["customer"]) - set(mine["customer"]) <= {
        "orders_count", "total_spent", "last_order_id", "last_order_name", "accepts_marketing_updated_at",
        "marketing_opt_in_level"}


def test_refunds_fulfillments_and_mirror_attributes(world: World) -> None:
    world.advance(timedelta(days=6))
    query = """query($id: ID!) { order(id: $id) {
        displayFinancialStatus displayFulfillmentStatus cancelledAt sourceName tags customAttributes { key value }
        refunds { createdAt totalRefundedSet { shopMoney { amount currencyCode } } }
        fulfillments { status trackingInfo { company number url } } } }"""

    def order(ext: str) -> dict[str, Any]:
        return _post(world, query, {"id": f"gid://shopify/Order/{ext}"}).json()["data"]["order"]

    refunded = order("5000000004")
    assert (refunded["displayFinancialStatus"], refunded["displayFulfillmentStatus"]) == (
        "PARTIALLY_REFUNDED", "FULFILLED")
    assert [r["totalRefundedSet"]["shopMoney"] for r in refunded["refunds"]] == [
        {"amount": "7.99", "currencyCode": "USD"}]
    assert refunded["fulfillments"] == [{"status": "SUCCESS", "trackingInfo": [
        {"company": "UPS", "number": "1Z999AA10123456786",
         "url": "https://www.ups.com/track?tracknum=1Z999AA10123456786"}]}]
    cancelled = order("5000000007")
    assert cancelled["cancelledAt"] == f"{world.t0 + timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}"
    assert cancelled["displayFinancialStatus"] == "REFUNDED"
    mirror = order("5000000006")
    assert (mirror["sourceName"], mirror["tags"]) == ("amazon", ["amazon"])
    assert mirror["customAttributes"] == [{"key": "amazon_order_id", "value": "114-3941689-8772232"}]
    assert _post(world, query, {"id": "gid://shopify/Order/1"}).json()["data"]["order"] is None
