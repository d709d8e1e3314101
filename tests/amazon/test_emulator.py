"""The emulator speaks Amazon's wire format: Amazon's own schemas, LWA, limits, the two-minute rule, the quirks."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
import requests

from connectors.base import sync_stream
from sandbox.emulators.amazon import AmazonEmulator, iso
from sandbox.emulators.base import EmulatorServer
from tests.amazon.conftest import World
from tests.amazon.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    FIXTURES,
    US,
    ListSource,
    amazon_store,
    landed,
    make_order,
    normalized,
    stream_for,
)

DEFS_2026 = json.loads((FIXTURES / "orders-2026-01-01" / "definitions.json").read_text())["definitions"]
DEFS_V0 = json.loads((FIXTURES / "definitions.json").read_text())


def unknown_fields(value: Any, schema: dict[str, Any], defs: dict[str, Any], path: str = "") -> list[str]:
    """Field paths of ``value`` that Amazon's schema does not define (following $ref and array items)."""
    if "$ref" in schema:
        return unknown_fields(value, defs[schema["$ref"].rsplit("/", 1)[-1]], defs, path)
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_fields(v, schema.get("items", {}), defs, f"{path}[{i}]")]
    if isinstance(value, dict) and "properties" in schema:
        out = []
        for key, sub in value.items():
            if key not in schema["properties"]:
                out.append(f"{path}.{key}")
            else:
                out.extend(unknown_fields(sub, schema["properties"][key], defs, f"{path}.{key}"))
        return out
    return []


def _token(url: str, refresh: str = "Atzr|sandbox-amz-us", secret: str = CLIENT_SECRET) -> requests.Response:
    return requests.post(f"{url}/auth/o2/token", data={"grant_type": "refresh_token", "refresh_token": refresh,
                                                       "client_id": CLIENT_ID, "client_secret": secret}, timeout=5)


def _get(url: str, path: str, token: str, **params: Any) -> requests.Response:
    return requests.get(url + path, params=params, headers={"x-amz-access-token": token}, timeout=5)


def _window(days: int = 10) -> dict[str, str]:
    from orderhub import clock

    now = clock.now()
    return {"lastUpdatedAfter": iso(now - timedelta(days=days)), "lastUpdatedBefore": iso(now - timedelta(minutes=5))}


@pytest.fixture
def quirky(world: World) -> World:
    """A replacement, an FBA order, a masked order and a defect-free JPY-free US mix."""
    orders = world.source.orders
    orders[1].related_to = orders[0].truth_id
    orders[2].fulfilled_by = "marketplace"
    orders[3].pii_masked = True
    return world


def test_lwa_token_endpoint(world: World) -> None:
    ok = _token(world.url)
    body = ok.json()
    assert ok.status_code == 200 and set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and body["access_token"].startswith("Atza|")
    assert _token(world.url, secret="nope").json()["error"] == "invalid_client"
    assert _token(world.url, refresh="Atzr|unknown").json()["error"] == "invalid_grant"
    denied = _get(world.url, "/orders/2026-01-01/orders", "Atza|forged", marketplaceIds=US, **_window())
    assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "Unauthorized"
    world.advance(timedelta(hours=1, seconds=1))  # access tokens expire on the emulator's clock
    expired = _get(world.url, "/orders/2026-01-01/orders", body["access_token"], marketplaceIds=US, **_window())
    assert expired.status_code == 403
    assert expired.json()["errors"][0]["details"] == "The access token you provided has expired."


def test_search_orders_renders_amazons_schema_and_honours_included_data(quirky: World) -> None:
    token = _token(quirky.url).json()["access_token"]
    full = _get(quirky.url, "/orders/2026-01-01/orders", token, marketplaceIds=US,
                includedData="BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,PACKAGES", **_window())
    assert full.status_code == 200 and full.headers["x-amzn-RateLimit-Limit"] == "56"  # 0.0056/s x 10 000
    body = full.json()
    assert unknown_fields(body, DEFS_2026["SearchOrdersResponse"], DEFS_2026) == []
    assert {"buyer", "recipient", "proceeds", "fulfillment", "packages"} <= {k for o in body["orders"] for k in o}
    bare = _get(quirky.url, "/orders/2026-01-01/orders", token, marketplaceIds=US, **_window()).json()
    assert all(set(o) == {"orderId", "createdTime", "lastUpdatedTime", "programs", "associatedOrders", "salesChannel",
                          "orderItems"} for o in bare["orders"])
    for order in body["orders"]:
        assert order["salesChannel"] == {"channelName": "AMAZON", "marketplaceId": US, "marketplaceName": "Amazon.com"}
        for item in order["orderItems"]:
            assert set(item["product"]["price"]["unitPrice"]) == {"amount", "currencyCode"}
            assert isinstance(item["product"]["price"]["unitPrice"]["amount"], str)  # money is a decimal string
    by_id = {o["orderId"]: o for o in body["orders"]}
    orders = quirky.source.orders
    assert by_id[orders[1].external_id]["associatedOrders"] == [
        {"orderId": orders[0].external_id, "associationType": "REPLACEMENT_ORIGINAL_ID"}]
    fba = by_id[orders[2].external_id]
    assert fba["fulfillment"]["fulfilledBy"] == "AMAZON" and "phone" not in fba["recipient"]["deliveryAddress"]
    masked = by_id[orders[3].external_id]
    assert "buyer" not in masked and set(masked["recipient"]["deliveryAddress"]) <= {
        "city", "stateOrRegion", "postalCode", "countryCode"}
    pending = by_id[orders[10].external_id]  # n=11: still Pending
    assert pending["fulfillment"]["fulfillmentStatus"] == "PENDING" and "proceeds" not in pending
    assert any(o["buyer"]["buyerEmail"].endswith("@marketplace.amazon.com") for o in body["orders"] if "buyer" in o)


def test_v0_renders_amazons_schema_string_booleans_and_null_strings(quirky: World) -> None:
    access = _token(quirky.url).json()["access_token"]
    # v0 shows buyer info and the street address only to a Restricted Data Token (Tokens API).
    token = requests.post(f"{quirky.url}/tokens/2021-03-01/restrictedDataToken", headers={"x-amz-access-token": access},
                          json={"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders",
                                                         "dataElements": ["buyerInfo", "shippingAddress"]}]},
                          timeout=5).json()["restrictedDataToken"]
    window = {"LastUpdatedAfter": _window()["lastUpdatedAfter"], "LastUpdatedBefore": _window()["lastUpdatedBefore"]}
    resp = _get(quirky.url, "/orders/v0/orders", token, MarketplaceIds=US, **window)
    assert resp.status_code == 200 and resp.headers["x-amzn-RateLimit-Limit"] == "167"
    body = resp.json()
    assert unknown_fields(body, DEFS_V0["GetOrdersResponse"], DEFS_V0) == []
    by_id = {o["AmazonOrderId"]: o for o in body["payload"]["Orders"]}
    orders = quirky.source.orders
    assert {o["IsReplacementOrder"] for o in by_id.values()} == {"true", "false"}
    assert by_id[orders[1].external_id]["ReplacedOrderId"] == orders[0].external_id
    assert by_id[orders[2].external_id]["FulfillmentChannel"] == "AFN" and "LatestShipDate" not in by_id[
        orders[2].external_id]
    assert "OrderTotal" not in by_id[orders[10].external_id] and "BuyerInfo" not in by_id[orders[3].external_id]
    nullish = [o for o in by_id.values() if o.get("ShippingAddress", {}).get("AddressLine2") == "null"]
    assert nullish, "some orders write absent address fields as the string 'null'"
    items = _get(quirky.url, f"/orders/v0/orders/{orders[0].external_id}/orderItems", access)
    assert unknown_fields(items.json(), DEFS_V0["GetOrderItemsResponse"], DEFS_V0) == []
    first = items.json()["payload"]["OrderItems"][0]
    assert first["ItemPrice"] == {"CurrencyCode": "USD", "Amount": "25.00"} and first["IsGift"] == "false"
    pending_items = _get(quirky.url, f"/orders/v0/orders/{orders[10].external_id}/orderItems", access).json()
    assert all("ItemPrice" not in i for i in pending_items["payload"]["OrderItems"])


def test_get_order_both_versions(quirky: World) -> None:
    token = _token(quirky.url).json()["access_token"]
    order = quirky.source.orders[4]
    got = _get(quirky.url, f"/orders/2026-01-01/orders/{order.external_id}", token, includedData="PROCEEDS")
    assert got.status_code == 200 and unknown_fields(got.json(), DEFS_2026["GetOrderResponse"], DEFS_2026) == []
    assert got.json()["order"]["proceeds"]["grandTotal"] == {"amount": str(order.total), "currencyCode": "USD"}
    v0 = _get(quirky.url, f"/orders/v0/orders/{order.external_id}", token)
    assert v0.json()["payload"]["AmazonOrderId"] == order.external_id
    assert _get(quirky.url, "/orders/2026-01-01/orders/999-0000000-0000000", token).status_code == 404


def test_rendering_is_deterministic(quirky: World) -> None:
    token = _token(quirky.url).json()["access_token"]
    params = {"marketplaceIds": US, "includedData": "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,PACKAGES", **_window()}
    first = _get(quirky.url, "/orders/2026-01-01/orders", token, **params).content
    assert _get(quirky.url, "/orders/2026-01-01/orders", token, **params).content == first


@pytest.mark.parametrize(("params", "message"), [
    ({}, "marketplaceIds is required"),
    ({"marketplaceIds": "A1PA6795UKMFR9"}, "Invalid marketplaceIds"),
    ({"marketplaceIds": US, "maxResultsPerPage": "101"}, "between 1 and 100"),
    ({"marketplaceIds": US, "includedData": "ITEMS"}, "Invalid includedData"),
    ({"marketplaceIds": US, "lastUpdatedBefore": "later"}, "ISO 8601"),
    ({"marketplaceIds": US, "createdAfter": "2025-01-01T00:00:00Z"}, "Exactly one"),
    ({"marketplaceIds": US, "paginationToken": "garbage"}, "malformed"),
])
def test_search_orders_rejects_what_amazon_rejects(world: World, params: dict[str, str], message: str) -> None:
    token = _token(world.url).json()["access_token"]
    query = {"lastUpdatedAfter": _window()["lastUpdatedAfter"], **params}
    resp = _get(world.url, "/orders/2026-01-01/orders", token, **query)
    assert resp.status_code == 400 and message in resp.json()["errors"][0]["message"]
    assert resp.json()["errors"][0]["code"] == "InvalidInput"


def test_published_rate_limits_answer_429_when_the_bucket_is_empty() -> None:
    emulator = AmazonEmulator(ListSource(), sellers={US: "amz-us"}, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                              refresh_tokens={"Atzr|x"}, speed=1.0)
    with EmulatorServer(emulator) as server:
        token = _token(server.url, refresh="Atzr|x").json()["access_token"]
        answers = [_get(server.url, "/orders/2026-01-01/orders", token, marketplaceIds=US, **_window()).status_code
                   for _ in range(21)]
        assert answers == [200] * 20 + [429]  # searchOrders: burst 20, then 0.0056/s
        limited = _get(server.url, "/orders/2026-01-01/orders", token, marketplaceIds=US, **_window())
        assert limited.json()["errors"][0]["code"] == "QuotaExceeded"
        assert limited.headers["x-amzn-RateLimit-Limit"] == "0.0056"


@pytest.mark.parametrize("api", ["2026-01-01", "v0"])
def test_malformed_records_are_quarantined_with_reasons(world: World, api: str) -> None:
    defects = ["missing_id", "bad_total", "bad_date", "unknown_currency", "negative_quantity", "missing_lines", "odd"]
    t0 = world.start - timedelta(days=1)
    bad = [make_order(500 + i, "amz-us", t0 + timedelta(minutes=i), [(timedelta(0), "unfulfilled", "paid")], defect=d)
           for i, d in enumerate(defects)]
    world.source.orders.extend(bad)
    result = sync_stream(stream_for(amazon_store(world.url, orders_api=api)), world.landing)
    out = normalized(world.landing, world.home)
    assert out.orders.height + out.quarantine["records"].sum() == result.records  # loaded + quarantined = landed
    assert set(out.orders["order_id"]) == {oid for oid, o in world.visible().items() if not o.defect}
    reasons = dict(zip(out.quarantine["external_id"].fill_null("<none>"), out.quarantine["reason"], strict=True))
    expect = {
        "bad_total": "'12,34' is not a decimal amount", "bad_date": "is not an ISO 8601 timestamp",
        "unknown_currency": "no exchange rate for currency ZZZ", "negative_quantity": "negative quantity -1",
        "missing_lines": "order has no line items", "odd": "'12,34' is not a decimal amount",
    }
    for order, defect in zip(bad, defects, strict=True):
        if defect == "missing_id":
            assert "order id missing" in reasons["<none>"]
        else:
            assert expect[defect] in reasons[order.external_id], (defect, reasons[order.external_id])
    raw = [json.loads(b) for _, parts in landed(world.landing) for p, b in parts if p.records]
    assert raw, "malformed records were landed verbatim, as received"
    assert out.quarantine.filter(pl.col("payload").is_null()).height == 0


def test_pending_orders_have_no_total_and_jpy_money_is_exact(world: World, jp_orders) -> None:
    sync_stream(stream_for(amazon_store(world.url)), world.landing)
    rows = normalized(world.landing, world.home).orders
    pending = rows.filter(pl.col("status") == "pending")
    assert pending.height == 2 and pending["total"].is_null().all() and pending["currency"].is_null().all()
    shipped = rows.filter(pl.col("status") == "fulfilled").row(0, named=True)
    truth = next(o for o in world.source.orders if o.order_id == shipped["order_id"])
    assert (shipped["total"], shipped["subtotal"], shipped["shipping"], shipped["tax"], shipped["discount"]) == (
        truth.total, truth.subtotal, truth.shipping, truth.tax, truth.discount)
    assert shipped["ship_by"] == truth.ship_by and shipped["email"] == truth.email
    assert shipped["phone"] == "+1206555" + f"01{int(truth.external_id.split('-')[1]) % 100:02d}"
    assert shipped["buyer_name"] == truth.buyer_name and shipped["pii_masked"] is False
    assert isinstance(shipped["total"], Decimal)
