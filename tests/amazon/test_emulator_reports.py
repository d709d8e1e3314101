"""The emulator's Reports API, order report documents, Restricted Data Tokens and v0 PII, over real HTTP."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderhub import clock
from sandbox.emulators.amazon import AmazonEmulator, iso
from sandbox.emulators.base import EmulatorServer
from sandbox.model import Line, Order
from tests.amazon.conftest import SPEED, World
from tests.amazon.helpers import CLIENT_ID, CLIENT_SECRET, FIXTURES, JP, US, ListSource, make_order

REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
DOCUMENTED = json.loads((FIXTURES / "reports" / f"{REPORT_TYPE}.columns.json").read_text())["columns"]
REPORTS = "/reports/2021-06-30/reports"
RDT_PATH = "/tokens/2021-03-01/restrictedDataToken"
PLACE_ONLY = {"City", "StateOrRegion", "PostalCode", "CountryCode"}
MONEY = ["item-price", "item-tax", "shipping-price", "shipping-tax", "gift-wrap-price", "gift-wrap-tax",
         "item-promotion-discount", "ship-promotion-discount"]


@pytest.fixture(autouse=True)
def quick_reports(world: World) -> Iterator[None]:
    """Reports finish at the first poll unless a test slows them; the shared emulator's settings are put back."""
    emulator = world.emulator
    saved = (emulator.report_seconds, emulator.report_lag, emulator.gzip_reports, emulator.public_url)
    emulator.report_seconds = 0.0
    yield
    emulator.report_seconds, emulator.report_lag, emulator.gzip_reports, emulator.public_url = saved


@pytest.fixture
def http(world: World) -> Iterator[httpx.Client]:
    """An HTTP client on the emulator."""
    with httpx.Client(base_url=world.url, timeout=5) as client:
        yield client


def token(http: httpx.Client, refresh: str = "Atzr|sandbox-amz-us") -> str:
    """An LWA access token."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET}
    return str(http.post("/auth/o2/token", data=form).json()["access_token"])


def auth(access: str) -> dict[str, str]:
    """The SP-API access token header."""
    return {"x-amz-access-token": access}


def spec(start: datetime, end: datetime, marketplaces: list[str] | None = None) -> dict[str, Any]:
    """A createReport body for the order report."""
    return {"reportType": REPORT_TYPE, "marketplaceIds": marketplaces or [US], "dataStartTime": iso(start),
            "dataEndTime": iso(end)}


def create(http: httpx.Client, access: str, start: datetime | None = None, end: datetime | None = None) -> str:
    """createReport over the last ten days by default; the report's id."""
    now = clock.now()
    resp = http.post(REPORTS, json=spec(start or now - timedelta(days=10), end or now - timedelta(minutes=1)),
                     headers=auth(access))
    assert resp.status_code == 202, resp.text
    return str(resp.json()["reportId"])


def poll(http: httpx.Client, access: str, report_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """getReport until the report ends (or ``limit`` polls): every answer."""
    seen = []
    for _ in range(limit):
        resp = http.get(f"{REPORTS}/{report_id}", headers=auth(access))
        assert resp.status_code == 200, resp.text
        seen.append(resp.json())
        if seen[-1]["processingStatus"] in ("DONE", "FATAL", "CANCELLED"):
            break
        time.sleep(0.02)
    return seen


def document(http: httpx.Client, access: str, document_id: str) -> dict[str, Any]:
    """getReportDocument."""
    resp = http.get(f"/reports/2021-06-30/documents/{document_id}", headers=auth(access))
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def report_table(http: httpx.Client, access: str, report_id: str) -> tuple[list[str], list[dict[str, str]]]:
    """A finished report's header and rows (by column name)."""
    report = poll(http, access, report_id)[-1]
    assert report["processingStatus"] == "DONE", report
    meta = document(http, access, report["reportDocumentId"])
    body = httpx.get(meta["url"]).content
    text = (gzip.decompress(body) if meta.get("compressionAlgorithm") == "GZIP" else body).decode("utf-8")
    lines = text.split("\n")
    assert lines[-1] == ""
    header = lines[0].split("\t")
    return header, [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:-1]]


def expected_orders(world: World, created: datetime, start: datetime, end: datetime) -> dict[str, Order]:
    """Orders a report created at ``created`` holds: as of 30 minutes earlier, last updated in the window."""
    moment = created - timedelta(minutes=30)
    out = {}
    for order in world.source.orders_for("amz-us"):
        version = order.version_at(moment)
        if order.created_at <= moment and version is not None and start <= version.at.replace(microsecond=0) <= end:
            out[order.external_id] = order
    return out


# -- the report life cycle and its document ------------------------------------------------------------
def test_a_report_goes_through_its_states_to_a_gzipped_tsv_of_the_orders(world: World, http: httpx.Client) -> None:
    now = clock.now().replace(microsecond=0)
    recent = make_order(700, "amz-us", now - timedelta(hours=2),
                        [(timedelta(0), "pending", "pending"), (timedelta(minutes=110), "unfulfilled", "paid")])
    fresh = make_order(701, "amz-us", now - timedelta(minutes=10), [(timedelta(0), "unfulfilled", "paid")])
    world.source.orders.extend([recent, fresh])
    world.emulator.report_seconds = 0.6 * SPEED  # 0.6 s of wall clock
    access = token(http)
    start, end = now - timedelta(days=10), now - timedelta(minutes=1)
    report_id = create(http, access, start, end)
    states = poll(http, access, report_id, limit=200)
    names = [s["processingStatus"] for s in states]
    assert names[0] == "IN_QUEUE" and "IN_PROGRESS" in names and names[-1] == "DONE"
    assert names == sorted(names, key=["IN_QUEUE", "IN_PROGRESS", "DONE"].index)
    report = states[-1]
    assert set(report) == {"reportId", "reportType", "marketplaceIds", "dataStartTime", "dataEndTime", "createdTime",
                           "processingStatus", "processingStartTime", "processingEndTime", "reportDocumentId"}
    assert (report["reportType"], report["marketplaceIds"], report["dataStartTime"]) == (REPORT_TYPE, [US], iso(start))
    meta = document(http, access, report["reportDocumentId"])
    assert set(meta) == {"reportDocumentId", "url", "compressionAlgorithm"} and meta["compressionAlgorithm"] == "GZIP"
    assert meta["url"].startswith(f"{world.url}/_documents/{report['reportDocumentId']}?")
    download = httpx.get(meta["url"])
    assert download.status_code == 200 and download.headers["content-type"] == "text/tab-separated-values; charset=UTF-8"
    assert "content-encoding" not in download.headers  # the client gunzips, as after an S3 download
    header, rows = report_table(http, access, report_id)
    columns = list(DOCUMENTED)
    columns.insert(columns.index("quantity") + 1, "number-of-items")
    columns.insert(columns.index("ship-service-level") + 1, "signature-confirmation-recommended")
    assert header == columns
    created = datetime.fromisoformat(report["createdTime"])
    want = expected_orders(world, created, start, end)
    assert fresh.external_id not in want and recent.external_id in want  # within the 30-minute lag: not yet seen
    assert len(rows) == sum(len(o.lines) for o in want.values()) and {r["amazon-order-id"] for r in rows} == set(want)
    lagging = [r for r in rows if r["amazon-order-id"] == recent.external_id]
    assert {r["order-status"] for r in lagging} == {"Pending"}  # the version of 30 minutes ago
    assert all(r["currency"] == "" and all(r[c] == "" for c in MONEY) for r in lagging)
    text = json.dumps(rows, ensure_ascii=False)
    for order in want.values():  # no PII column, no PII anywhere
        assert str(order.buyer_name) not in text and order.ship_to is not None and order.ship_to.line1 not in text
        assert str(order.email) not in text and str(order.phone) not in text
    assert world.emulator.requests["createReport"] == 1 and world.emulator.requests["reportDocumentDownload"] == 2
    assert world.emulator.requests["getReportDocument"] == 2 and world.emulator.requests["getReport"] >= 3


def test_report_cells_follow_the_contract(world: World, http: httpx.Client) -> None:
    now = clock.now().replace(microsecond=0)
    t0 = now - timedelta(days=40)  # nothing else of the business is this old
    shipped = make_order(710, "amz-us", t0, [(timedelta(0), "unfulfilled", "paid"),
                                              (timedelta(hours=5), "fulfilled", "paid")], fulfilled_by="marketplace")
    cancelled = make_order(711, "amz-us", t0 + timedelta(hours=1), [(timedelta(0), "cancelled", "voided")])
    pending = make_order(712, "amz-us", t0 + timedelta(hours=2), [(timedelta(0), "pending", "pending")], ship_to=None)
    tabbed = make_order(713, "amz-us", t0 + timedelta(hours=3), [(timedelta(0), "unfulfilled", "paid")])
    tabbed.lines[0] = Line("SKU-T", "Tab\there\nand a line", 1, Decimal("3.00"))
    bad_date = make_order(714, "amz-us", t0 + timedelta(hours=4), [(timedelta(0), "unfulfilled", "paid")],
                          defect="bad_date")
    no_id = make_order(715, "amz-us", t0 + timedelta(hours=5), [(timedelta(0), "unfulfilled", "paid")],
                       defect="missing_id")
    world.source.orders.extend([shipped, cancelled, pending, tabbed, bad_date, no_id])
    world.emulator.gzip_reports = False
    access = token(http)
    report_id = create(http, access, t0 - timedelta(hours=1), t0 + timedelta(days=1))
    meta = document(http, access, poll(http, access, report_id)[-1]["reportDocumentId"])
    assert "compressionAlgorithm" not in meta  # plain TSV
    _, rows = report_table(http, access, report_id)
    assert len(rows) == 12
    by_id: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_id.setdefault(row["amazon-order-id"], []).append(row)
    first, second = by_id[shipped.external_id]
    assert first["order-status"] in ("Shipped", "Shipped - Delivered to Buyer") and first["item-status"] == "Shipped"
    assert (first["fulfillment-channel"], first["sales-channel"], first["ship-service-level"]) == (
        "Amazon", "Amazon.com", "Standard")
    assert (first["purchase-date"], first["last-updated-date"]) == (
        t0.strftime("%Y-%m-%dT%H:%M:%S+00:00"), (t0 + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    assert (first["quantity"], first["item-price"], first["item-tax"], first["shipping-price"]) == (
        "2", "25.00", "1.10", "4.99")
    assert (second["item-price"], second["shipping-price"], second["item-promotion-discount"]) == (
        "5.00", "0.00", "-1.00")
    assert first["item-promotion-discount"] == "0.00" and first["currency"] == "USD"
    assert sum(Decimal(r[c]) for r in (first, second) for c in MONEY) == shipped.total
    assert (first["ship-city"], first["ship-state"], first["ship-postal-code"], first["ship-country"]) == (
        "Seattle", "WA", "98101", "US")
    assert (first["is-business-order"], first["merchant-order-id"], first["number-of-items"]) == ("false", "", "1")
    assert all(r["order-status"] == "Cancelled" and r["item-status"] == "Cancelled" and r["quantity"] == "0"
               for r in by_id[cancelled.external_id])
    assert all(r["fulfillment-channel"] == "Merchant" for r in by_id[cancelled.external_id])
    for row in by_id[pending.external_id]:
        assert row["order-status"] == "Pending" and row["currency"] == "" and all(row[c] == "" for c in MONEY)
        assert row["ship-city"] == row["ship-country"] == ""  # no ship-to yet
    assert by_id[tabbed.external_id][0]["product-name"] == "Tab here and a line"
    assert {r["purchase-date"] for r in by_id[bad_date.external_id]} == {"2024-13-45 25:61"}
    assert len(by_id[""]) == 2  # missing_id: the rows are there, without an order id


@pytest.mark.parametrize(("change", "message"), [
    ({"dataStartTime": "2020-01-01T00:00:00Z"}, "at most 30 days"),
    ({"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA"}, "Invalid reportType"),
    ({"marketplaceIds": ["A1PA6795UKMFR9"]}, "Invalid marketplaceIds"),
    ({"marketplaceIds": []}, "marketplaceIds is required"),
    ({"dataStartTime": "2026-01-01T00:00:00"}, "time zone"),
    ({"dataEndTime": "yesterday"}, "ISO 8601"),
    ({"dataEndTime": "2999-01-01T00:00:00Z"}, "in the future"),
    ({"dataStartTime": None}, "dataStartTime is required"),
])
def test_create_report_refuses_what_amazon_refuses(world: World, http: httpx.Client, change: dict[str, Any],
                                                     message: str) -> None:
    now = clock.now()
    body = {**spec(now - timedelta(days=3), now - timedelta(hours=1)), **change}
    resp = http.post(REPORTS, json=body, headers=auth(token(http)))
    assert resp.status_code == 400, resp.text
    error = resp.json()["errors"][0]
    assert error["code"] == "InvalidInput" and message in error["message"]
    assert resp.headers["x-amzn-RateLimit-Limit"] == "167"  # 0.0167/s x 10 000


def test_a_report_without_data_is_cancelled_and_others_reports_are_not_found(world: World, http: httpx.Client) -> None:
    access = token(http)
    now = clock.now()
    report_id = create(http, access, now - timedelta(days=60), now - timedelta(days=40))
    report = poll(http, access, report_id)[-1]
    assert report["processingStatus"] == "CANCELLED" and "reportDocumentId" not in report
    other = http.get(f"{REPORTS}/{report_id}", headers=auth(token(http, "Atzr|sandbox-amz-jp")))
    assert other.status_code == 404 and other.json()["errors"][0]["code"] == "NotFound"
    assert http.get(f"{REPORTS}/{report_id}", headers=auth("Atza|forged")).status_code == 403


# -- faults ------------------------------------------------------------------------------------------
def test_report_fatal_leaves_an_error_document(world: World, http: httpx.Client) -> None:
    world.emulator.faults.add("report_fatal", path=r"/reports/2021-06-30/reports$")
    access = token(http)
    report = poll(http, access, create(http, access))[-1]
    assert report["processingStatus"] == "FATAL" and report["processingEndTime"]
    meta = document(http, access, report["reportDocumentId"])
    assert "compressionAlgorithm" not in meta
    error = httpx.get(meta["url"])
    assert error.status_code == 200 and set(error.json()) == {"errorDetails"}
    assert world.emulator.faults.injected == [("report_fatal", REPORTS)]


def test_report_cancelled_and_stuck_and_slow(world: World, http: httpx.Client) -> None:
    access = token(http)
    world.emulator.faults.add("report_cancelled", path=r"/reports/2021-06-30/reports$")
    assert poll(http, access, create(http, access))[-1]["processingStatus"] == "CANCELLED"  # although it has data
    world.emulator.faults.add("report_stuck", path=r"/reports/2021-06-30/reports$")
    stuck = poll(http, access, create(http, access), limit=5)
    assert [s["processingStatus"] for s in stuck] == ["IN_QUEUE"] * 5 and "processingStartTime" not in stuck[-1]
    world.emulator.faults.add("report_slow", path=r"/reports/2021-06-30/reports$")
    slow = poll(http, access, create(http, access))
    assert [s["processingStatus"] for s in slow] == ["IN_PROGRESS"] * 5 + ["DONE"]
    assert [k for k, _ in world.emulator.faults.injected] == ["report_cancelled", "report_stuck", "report_slow"]


@pytest.mark.parametrize("kind", ["truncate_document", "truncate"])
def test_a_truncated_download_is_half_a_gzip_stream(world: World, http: httpx.Client, kind: str) -> None:
    access = token(http)
    meta = document(http, access, poll(http, access, create(http, access))[-1]["reportDocumentId"])
    world.emulator.faults.add(kind, path=r"/_documents/")
    cut, whole = httpx.get(meta["url"]).content, httpx.get(meta["url"]).content
    assert len(cut) == len(whole) // 2 and whole.startswith(cut)
    with pytest.raises((EOFError, gzip.BadGzipFile)):
        gzip.decompress(cut)
    assert gzip.decompress(whole).startswith(b"amazon-order-id\t")


def test_document_urls_expire_after_five_minutes_of_emulator_time(world: World, http: httpx.Client) -> None:
    access = token(http)
    document_id = poll(http, access, create(http, access))[-1]["reportDocumentId"]
    url = document(http, access, document_id)["url"]
    world.emulator.faults.add("document_expired", path=r"/_documents/")
    refused = httpx.get(url)
    assert refused.status_code == 403 and b"Request has expired" in refused.content
    assert httpx.get(url).status_code == 200  # the fault was one download
    world.advance(timedelta(minutes=4, seconds=50))
    assert httpx.get(url).status_code == 200
    world.advance(timedelta(seconds=20))
    expired = httpx.get(url)
    assert expired.status_code == 403 and expired.headers["content-type"] == "application/xml"
    assert b"<Code>AccessDenied</Code>" in expired.content
    assert httpx.get(document(http, token(http), document_id)["url"]).status_code == 200  # a fresh URL works
    assert httpx.get(url.replace("sig=", "sig=0")).status_code == 403  # tampered


def test_report_budgets_are_per_grant_and_answer_429_with_the_rate_header() -> None:
    emulator = AmazonEmulator(ListSource(), sellers={US: "amz-us"}, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                              refresh_tokens={"Atzr|a", "Atzr|b"}, speed=1.0)
    with EmulatorServer(emulator) as server, httpx.Client(base_url=server.url, timeout=5) as http:
        now = clock.now()
        body = spec(now - timedelta(days=2), now - timedelta(days=1))
        first = auth(token(http, "Atzr|a"))
        answers = [http.post(REPORTS, json=body, headers=first) for _ in range(16)]
        assert [a.status_code for a in answers] == [202] * 15 + [429]  # createReport: burst 15, then 0.0167/s
        assert answers[-1].json()["errors"][0]["code"] == "QuotaExceeded"
        assert answers[-1].headers["x-amzn-RateLimit-Limit"] == "0.0167"
        assert http.post(REPORTS, json=body, headers=auth(token(http, "Atzr|b"))).status_code == 202
        rdt = {"restrictedResources": [{"method": "GET", "path": "/orders/v0/orders", "dataElements": ["buyerInfo"]}]}
        tokens = [http.post(RDT_PATH, json=rdt, headers=first).status_code for _ in range(11)]
        assert tokens == [200] * 10 + [429]  # createRestrictedDataToken: burst 10


# -- Restricted Data Tokens and v0 PII -----------------------------------------------------------------
def rdt(http: httpx.Client, access: str, path: str = "/orders/v0/orders",
        elements: list[str] | None = None) -> httpx.Response:
    """createRestrictedDataToken for one resource."""
    resource = {"method": "GET", "path": path, "dataElements": ["buyerInfo", "shippingAddress"] if elements is None
                else elements}
    return http.post(RDT_PATH, json={"restrictedResources": [resource]}, headers=auth(access))


def v0_orders(http: httpx.Client, access: str, **params: Any) -> list[dict[str, Any]]:
    """One page of v0 getOrders over the last ten days."""
    now = clock.now()
    query = {"MarketplaceIds": US, "LastUpdatedAfter": iso(now - timedelta(days=10)),
             "LastUpdatedBefore": iso(now - timedelta(minutes=5)), **params}
    resp = http.get("/orders/v0/orders", params=query, headers=auth(access))
    assert resp.status_code == 200, resp.text
    return list(resp.json()["payload"]["Orders"])


def test_an_rdt_brings_v0_pii_and_a_plain_token_does_not(world: World, http: httpx.Client) -> None:
    world.source.orders[3].pii_masked = True
    access = token(http)
    issued = rdt(http, access)
    assert issued.status_code == 200 and set(issued.json()) == {"restrictedDataToken", "expiresIn"}
    assert issued.json()["expiresIn"] == 3600 and issued.json()["restrictedDataToken"].startswith("Atz.sprdt|")
    restricted = issued.json()["restrictedDataToken"]
    with_pii = {o["AmazonOrderId"]: o for o in v0_orders(http, restricted)}
    masked = world.source.orders[3].external_id
    for order_id, order in with_pii.items():
        if order_id == masked:  # Amazon masks it whatever the token
            assert "BuyerInfo" not in order and set(order["ShippingAddress"]) <= PLACE_ONLY
            continue
        assert order["BuyerInfo"]["BuyerEmail"].endswith("@marketplace.amazon.com") and order["BuyerInfo"]["BuyerName"]
        assert order["ShippingAddress"]["AddressLine1"] and order["ShippingAddress"]["Name"]
    plain = v0_orders(http, access)
    assert plain and all("BuyerInfo" not in o and set(o["ShippingAddress"]) <= PLACE_ONLY for o in plain)
    address_only = rdt(http, access, elements=["shippingAddress"]).json()["restrictedDataToken"]
    partial = v0_orders(http, address_only)
    assert all("BuyerInfo" not in o for o in partial) and any("AddressLine1" in o["ShippingAddress"] for o in partial)
    assert world.emulator.requests["createRestrictedDataToken"] == 2


def test_an_rdt_is_refused_without_the_pii_roles_and_honoured_nowhere_else(world: World, http: httpx.Client,
                                                                             jp_orders: list[Order]) -> None:
    refused = rdt(http, token(http, "Atzr|sandbox-amz-jp"))
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "Unauthorized"
    assert "access token" not in refused.text  # not a token problem: a new access token would not help
    restricted = rdt(http, token(http)).json()["restrictedDataToken"]
    order_id = world.source.orders[0].external_id
    now = clock.now()
    elsewhere = [
        http.get("/orders/2026-01-01/orders", params={"marketplaceIds": US, "lastUpdatedAfter": iso(now - timedelta(days=1))},
                 headers=auth(restricted)),
        http.get(f"/orders/v0/orders/{order_id}", headers=auth(restricted)),
        http.get(f"/orders/v0/orders/{order_id}/buyerInfo", headers=auth(restricted)),
        http.post(REPORTS, json=spec(now - timedelta(days=2), now - timedelta(days=1)), headers=auth(restricted)),
        rdt(http, restricted),
    ]
    assert [r.status_code for r in elsewhere] == [403] * 5
    assert all(r.json()["errors"][0]["code"] == "Unauthorized" for r in elsewhere)
    world.advance(timedelta(hours=1, seconds=1))  # RDTs expire on the emulator clock
    expired = http.get("/orders/v0/orders", params={"MarketplaceIds": US}, headers=auth(restricted))
    assert expired.status_code == 403 and "expired" in expired.json()["errors"][0]["details"]


@pytest.mark.parametrize(("resources", "message"), [
    ([], "restrictedResources is required"),
    ([{"method": "PATCH", "path": "/orders/v0/orders", "dataElements": ["buyerInfo"]}], "method must be one of"),
    ([{"method": "GET", "path": "/reports/2021-06-30/reports", "dataElements": []}], "not a restricted operation"),
    ([{"method": "GET", "path": "/orders/v0/orders", "dataElements": ["creditCard"]}], "dataElements must be"),
    ([{"method": "GET", "path": "/orders/v0/orders"}], "dataElements is required for getOrders"),
    (["/orders/v0/orders"], "must be an object"),
])
def test_rdt_requests_are_validated(world: World, http: httpx.Client, resources: list[Any], message: str) -> None:
    resp = http.post(RDT_PATH, json={"restrictedResources": resources}, headers=auth(token(http)))
    assert resp.status_code == 400 and message in resp.json()["errors"][0]["message"]


def test_buyer_info_and_address_endpoints(world: World, http: httpx.Client) -> None:
    shapes = {name: set(json.loads((FIXTURES / f"{name}.example.json").read_text())["payload"])
              for name in ("getOrderBuyerInfo", "getOrderAddress")}
    order = world.source.orders[0]
    access = token(http)
    buyer_path, address_path = (f"/orders/v0/orders/{order.external_id}/{leaf}" for leaf in ("buyerInfo", "address"))
    plain_buyer = http.get(buyer_path, headers=auth(access))
    assert plain_buyer.status_code == 200 and plain_buyer.json() == {"payload": {"AmazonOrderId": order.external_id}}
    plain_address = http.get(address_path, headers=auth(access)).json()["payload"]
    assert set(plain_address["ShippingAddress"]) <= PLACE_ONLY
    generic = rdt(http, access, "/orders/v0/orders/{orderId}/buyerInfo", []).json()["restrictedDataToken"]
    buyer = http.get(buyer_path, headers=auth(generic)).json()["payload"]
    assert set(buyer) <= shapes["getOrderBuyerInfo"]
    assert (buyer["AmazonOrderId"], buyer["BuyerEmail"], buyer["BuyerName"]) == (
        order.external_id, order.email, order.buyer_name)
    other = world.source.orders[1].external_id
    assert "BuyerEmail" in http.get(f"/orders/v0/orders/{other}/buyerInfo", headers=auth(generic)).json()["payload"]
    concrete = rdt(http, access, address_path, []).json()["restrictedDataToken"]
    address = http.get(address_path, headers=auth(concrete)).json()["payload"]
    assert set(address) <= shapes["getOrderAddress"]
    assert address["ShippingAddress"]["AddressLine1"] == "1 Pike St" and address["ShippingAddress"]["City"] == "Seattle"
    assert http.get(f"/orders/v0/orders/{other}/address", headers=auth(concrete)).status_code == 403  # that id only
    assert http.get("/orders/v0/orders/999-0000000-0000000/buyerInfo", headers=auth(access)).status_code == 404
    calls = world.emulator.requests
    assert (calls["getOrderBuyerInfo"], calls["getOrderAddress"], calls.get("getOrderV0", 0)) == (4, 3, 0)


# -- paging faults -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "names"), [
    ("/orders/v0/orders", {"marketplaces": "MarketplaceIds", "size": "MaxResultsPerPage", "token": "NextToken",
                           "after": "LastUpdatedAfter", "before": "LastUpdatedBefore"}),
    ("/orders/2026-01-01/orders", {"marketplaces": "marketplaceIds", "size": "maxResultsPerPage",
                                   "token": "paginationToken", "after": "lastUpdatedAfter",
                                   "before": "lastUpdatedBefore"}),
])
def test_out_of_order_page_reverses_one_page_and_paging_stays_right(world: World, http: httpx.Client, path: str,
                                                                     names: dict[str, str]) -> None:
    access = token(http)
    now = clock.now()
    first: dict[str, Any] = {names["marketplaces"]: US, names["size"]: 3,
                             names["after"]: iso(now - timedelta(days=10)),
                             names["before"]: iso(now - timedelta(minutes=5))}

    def pages() -> list[list[dict[str, Any]]]:
        out, params = [], dict(first)
        while True:
            body = http.get(path, params=params, headers=auth(access)).json()
            body = body.get("payload", body)
            out.append(body.get("Orders", body.get("orders")))
            following = body.get("NextToken") or body.get("pagination", {}).get("nextToken")
            if not following:
                return out
            params = {names["marketplaces"]: US, names["size"]: 3, names["token"]: following}

    straight = pages()
    world.emulator.faults.add("out_of_order_page", path=f"{path}$", after=1)  # the second page
    shuffled = pages()
    assert len(straight) == len(shuffled) > 2
    assert shuffled[1] == list(reversed(straight[1])) and shuffled[1] != straight[1]
    assert [p for i, p in enumerate(shuffled) if i != 1] == [p for i, p in enumerate(straight) if i != 1]
    assert world.emulator.faults.injected == [("out_of_order_page", path)]


def test_jp_store_keeps_no_pii_through_v0_either_way(world: World, http: httpx.Client, jp_orders: list[Order]) -> None:
    access = token(http, "Atzr|sandbox-amz-jp")
    now = clock.now()
    resp = http.get("/orders/v0/orders", params={"MarketplaceIds": JP, "CreatedAfter": iso(now - timedelta(days=3))},
                    headers=auth(access))
    orders = resp.json()["payload"]["Orders"]
    assert len(orders) == 3 and all("BuyerInfo" not in o and set(o["ShippingAddress"]) <= PLACE_ONLY for o in orders)
