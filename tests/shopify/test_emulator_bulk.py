"""Bulk operations of the Shopify emulator over HTTP: life cycle, JSON Lines that rebuild the paged orders, limits, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from sandbox.emulators.shopify import BULK_TERMINAL, MUTATION_COST, ShopifyEmulator
from tests.shopify.conftest import SHOPS
from tests.shopify.helpers import SHOP, TOKEN, World

GRAPHQL = "/admin/api/2026-01/graphql.json"
MONEY = "fragment Money on MoneyBag { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }"
ORDER_FIELDS = """id legacyResourceId name createdAt updatedAt cancelledAt displayFinancialStatus tags
  customAttributes { key value } customer { id email tags } totalPriceSet { ...Money }
  refunds { id createdAt totalRefundedSet { ...Money } } fulfillments { id trackingInfo { company number url } }"""
LINE_FIELDS = "id title sku quantity originalUnitPriceSet { ...Money } taxLines { title priceSet { ...Money } }"
RUN = """mutation Run($query: String!) { bulkOperationRunQuery(query: $query) {
  bulkOperation { id status } userErrors { field message code } } }"""
POLL = """query Poll($id: ID!) { node(id: $id) { ... on BulkOperation {
  id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl query type } } }"""


def bulk_query(search: str = "") -> str:
    """An orders bulk query as the README has it: edges/node, line items as a nested connection, no ``first``."""
    return (f'{{ orders(query: "{search}") {{ edges {{ node {{ {ORDER_FIELDS}\n'
            f"  lineItems {{ edges {{ node {{ {LINE_FIELDS} }} }} }} }} }} }} }}\n{MONEY}")


def paged_query(search: str = "") -> str:
    """The same fields, paged."""
    return (f'query Paged($after: String) {{ orders(first: 4, after: $after, query: "{search}") {{\n'
            f"  pageInfo {{ hasNextPage endCursor }} nodes {{ {ORDER_FIELDS}\n"
            f"  lineItems(first: 50) {{ nodes {{ {LINE_FIELDS} }} }} }} }} }}\n{MONEY}")


def gql(world: World, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = requests.post(world.server.url + GRAPHQL, json={"query": query, "variables": variables or {}},
                         headers={"Host": SHOP, "X-Shopify-Access-Token": TOKEN}, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()


def start(world: World, query: str) -> dict[str, Any]:
    """bulkOperationRunQuery's payload."""
    return gql(world, RUN, {"query": query})["data"]["bulkOperationRunQuery"]


def poll(world: World, gid: str) -> dict[str, Any]:
    return gql(world, POLL, {"id": gid})["data"]["node"]


def wait(world: World, gid: str, timeout: float = 10.0) -> tuple[dict[str, Any], list[str]]:
    """Poll until the operation ends: its last state and every status seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        operation = poll(world, gid)
        seen.append(operation["status"])
        if operation["status"] in BULK_TERMINAL:
            return operation, seen
        assert time.monotonic() < deadline, seen[-5:]
        time.sleep(0.01)


def download(url: str) -> requests.Response:
    return requests.get(url, timeout=5)


def rebuild(body: bytes) -> list[dict[str, Any]]:
    """Orders rebuilt from a bulk result as the normalizer does: children by ``__parentId``, in file order."""
    orders: list[dict[str, Any]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for raw in body.splitlines():
        obj = json.loads(raw)
        parent = obj.pop("__parentId", None)
        if parent is None:
            obj["lineItems"] = {"nodes": []}
            orders.append(obj)
            by_id[obj["id"]] = obj
        else:
            by_id[parent]["lineItems"]["nodes"].append(obj)
    return orders


def paged(world: World, search: str = "") -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = gql(world, paged_query(search), {"after": after})["data"]["orders"]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


@pytest.fixture
def bulk(world: World) -> Iterator[World]:
    """The world's emulator with bulk operations of 30 ms and result URLs on this server."""
    reset(world, bulk_seconds=30.0)
    yield world
    world.emulator.faults.clear()


def reset(world: World, **options: Any) -> ShopifyEmulator:
    world.emulator.__init__(world.source, shops=SHOPS, speed=1000.0, public_url=world.server.url,  # type: ignore[misc]
                            **options)
    return world.emulator


# -- the life cycle --------------------------------------------------------------------------------------
def test_created_running_completed_then_a_jsonl_that_rebuilds_the_paged_orders(world: World) -> None:
    reset(world, bulk_seconds=1000.0)  # one second at speed 1000
    started = start(world, bulk_query())
    assert started["userErrors"] == [] and started["bulkOperation"]["status"] == "CREATED"
    gid = started["bulkOperation"]["id"]
    assert gid.startswith("gid://shopify/BulkOperation/")
    done, seen = wait(world, gid)
    assert "RUNNING" in seen and seen[-1] == "COMPLETED"
    assert seen == sorted(seen, key=["CREATED", "RUNNING", "COMPLETED"].index)  # never back
    assert done["errorCode"] is None and done["type"] == "QUERY" and done["query"] == bulk_query()
    assert done["completedAt"] >= done["createdAt"]

    resp = download(done["url"])
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/jsonl"
    body = resp.content
    assert done["fileSize"] == str(len(body))
    lines = body.splitlines()
    assert done["objectCount"] == str(len(lines))
    orders = rebuild(body)
    assert done["rootObjectCount"] == str(len(orders)) == str(len(world.visible()))
    assert orders == paged(world)  # the same orders, fields and line items (in order) as paging gives
    assert world.emulator.requests["bulkDownload"] == 1


def test_the_jsonl_is_shaped_like_shopifys(bulk: World) -> None:
    gid = start(bulk, bulk_query())["bulkOperation"]["id"]
    done, _ = wait(bulk, gid)
    raw = download(done["url"]).content.decode()
    assert '"id":"gid:\\/\\/shopify\\/Order\\/' in raw  # Shopify escapes slashes; a JSON parser undoes it
    lines = [json.loads(line) for line in raw.splitlines()]
    parent = None
    for line in lines:
        if "__parentId" in line:
            assert list(line)[-1] == "__parentId" and line["__parentId"] == parent  # right after its order
            assert line["id"].startswith("gid://shopify/LineItem/") and "lineItems" not in line
        else:
            parent = line["id"]
            assert "lineItems" not in line and isinstance(line["refunds"], list)  # plain lists stay nested
            assert set(line["totalPriceSet"]) == {"shopMoney", "presentmentMoney"}


def test_a_search_window_and_an_empty_result(bulk: World) -> None:
    t0 = bulk.t0
    window = f"updated_at:>='{t0 - timedelta(days=13):%Y-%m-%dT%H:%M:%SZ}' AND updated_at:<'{t0:%Y-%m-%dT%H:%M:%SZ}'"
    done, _ = wait(bulk, start(bulk, bulk_query(window))["bulkOperation"]["id"])
    assert rebuild(download(done["url"]).content) == paged(bulk, window)
    empty = "updated_at:>='2001-01-01T00:00:00Z' AND updated_at:<'2001-01-02T00:00:00Z'"
    none, _ = wait(bulk, start(bulk, bulk_query(empty))["bulkOperation"]["id"])
    assert (none["status"], none["url"], none["objectCount"], none["fileSize"]) == ("COMPLETED", None, "0", None)


def test_current_bulk_operation_and_the_cost_of_starting_and_polling(bulk: World) -> None:
    assert gql(bulk, "{ currentBulkOperation { id } }")["data"]["currentBulkOperation"] is None
    body = gql(bulk, RUN, {"query": bulk_query()})
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == cost["actualQueryCost"] == MUTATION_COST
    gid = body["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
    current = gql(bulk, "{ currentBulkOperation(type: QUERY) { id status query } }")["data"]["currentBulkOperation"]
    assert current["id"] == gid and current["query"] == bulk_query()
    assert gql(bulk, "{ currentBulkOperation(type: MUTATION) { id } }")["data"]["currentBulkOperation"] is None
    polled = gql(bulk, POLL, {"id": gid})
    assert polled["extensions"]["cost"]["requestedQueryCost"] == 1  # a poll costs as the query it is
    wait(bulk, gid)
    ops = bulk.emulator.operations
    assert ops["bulkOperationRunQuery"] == 1 and ops["currentBulkOperation"] == 3 and ops["node"] >= 2
    assert "orders" not in ops  # the bulk query itself is not a call
    assert bulk.emulator.requests["graphql"] == sum(ops.values())


def test_node_resolves_orders_customers_and_only_this_shops_operations(bulk: World) -> None:
    query = """query($o: ID!, $c: ID!, $b: ID!) { o: node(id: $o) { id ... on Order { name } }
      c: node(id: $c) { ... on Customer { id } } b: node(id: $b) { id } }"""
    data = gql(bulk, query, {"o": "gid://shopify/Order/5000000001", "c": "gid://shopify/Customer/7000001",
                             "b": "gid://shopify/BulkOperation/99"})["data"]
    assert data == {"o": {"id": "gid://shopify/Order/5000000001", "name": "#1001"},
                    "c": {"id": "gid://shopify/Customer/7000001"}, "b": None}
    assert "Invalid global id" in gql(bulk, '{ node(id: "42") { id } }')["errors"][0]["message"]


# -- Shopify's rules ---------------------------------------------------------------------------------------
def test_one_bulk_query_at_a_time_then_cancel(world: World) -> None:
    reset(world, bulk_seconds=60_000.0)  # a minute
    gid = start(world, bulk_query())["bulkOperation"]["id"]
    refused = start(world, bulk_query())
    assert refused["bulkOperation"] is None
    assert refused["userErrors"] == [{"field": None, "code": "OPERATION_IN_PROGRESS", "message":
                                      f"A bulk query operation for this app and shop is already in progress: {gid}."}]
    cancel = "mutation($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { status } userErrors { message } } }"
    assert gql(world, cancel, {"id": gid})["data"]["bulkOperationCancel"] == {
        "bulkOperation": {"status": "CANCELING"}, "userErrors": []}
    assert poll(world, gid)["status"] == "CANCELED"
    again = gql(world, cancel, {"id": gid})["data"]["bulkOperationCancel"]
    assert again["userErrors"] == [{"message": "A bulk operation cannot be canceled when it is canceled"}]
    assert start(world, bulk_query())["userErrors"] == []  # the shop is free again


@pytest.mark.parametrize(("query", "message"), [
    ("{ orders { edges { node { id financialStatus } } } }", "Cannot query field 'financialStatus'"),
    ("{ orders { edges { node { id ", "Syntax Error"),
    ("{ shop { name } }", "Bulk queries take connection fields at the top level; shop is not one."),
    ('{ node(id: "gid://shopify/Order/1") { id } }', "The top-level node field can't be used in bulk queries."),
    ("{ orders { edges { node { name lineItems { edges { node { id } } } } } } }",
     "must select the 'id' field without an alias and must be of 'ID' return type. Connection fields without 'id': "
     "lineItems."),
    ("mutation { tagsAdd(id: \"gid://shopify/Customer/1\", tags: [\"x\"]) { node { id } } }", "run queries only"),
])
def test_an_invalid_bulk_query_is_a_user_error(bulk: World, query: str, message: str) -> None:
    payload = start(bulk, query)
    assert payload["bulkOperation"] is None
    [error] = payload["userErrors"][:1]
    assert error["code"] == "INVALID" and error["field"] == ["query"] and message in error["message"]
    assert bulk.emulator.bulk_operations == {}


def test_a_nested_connection_may_come_as_nodes_and_first_is_ignored(bulk: World) -> None:
    query = "{ orders(first: 1) { nodes { id lineItems(first: 1) { nodes { id sku } } } } }"
    done, _ = wait(bulk, start(bulk, query)["bulkOperation"]["id"])
    lines = [json.loads(line) for line in download(done["url"]).content.splitlines()]
    assert sum("__parentId" not in line for line in lines) == len(bulk.visible())
    assert sum("__parentId" in line for line in lines) == 2 * len(bulk.visible())  # two lines per order


# -- faults and expiry -------------------------------------------------------------------------------------
def test_bulk_failed_ends_failed_with_partial_data(bulk: World) -> None:
    bulk.emulator.faults.add("bulk_failed")
    done, _ = wait(bulk, start(bulk, bulk_query())["bulkOperation"]["id"])
    assert (done["status"], done["errorCode"], done["url"], done["completedAt"]) == (
        "FAILED", "INTERNAL_SERVER_ERROR", None, None)
    partial = download(done["partialDataUrl"]).content
    whole = [line for record in bulk.emulator.bulk_operations.values() if record.result
             for line in record.result.body.splitlines(keepends=True)]
    assert partial == b"".join(whole[: len(whole) // 2]) and partial  # the first half of the lines
    assert done["objectCount"] == str(len(partial.splitlines()))
    assert start(bulk, bulk_query())["userErrors"] == []  # a failed operation frees the shop


def test_bulk_expired_ends_expired_without_a_url(bulk: World) -> None:
    bulk.emulator.faults.add("bulk_expired")
    done, _ = wait(bulk, start(bulk, bulk_query())["bulkOperation"]["id"])
    assert (done["status"], done["url"], done["partialDataUrl"]) == ("EXPIRED", None, None)


def test_bulk_slow_stays_running_five_more_polls(bulk: World) -> None:
    bulk.emulator.faults.add("bulk_slow")
    gid = start(bulk, bulk_query())["bulkOperation"]["id"]
    [record] = bulk.emulator.bulk_operations.values()
    assert record.built.wait(5)  # the result is ready...
    time.sleep(0.05)  # ...and its 30 ms are over
    seen = [poll(bulk, gid)["status"] for _ in range(6)]
    assert seen == ["RUNNING"] * 5 + ["COMPLETED"]
    assert bulk.emulator.faults.injected == [("bulk_slow", GRAPHQL)]


def test_truncate_bulk_cuts_the_next_download_in_half(bulk: World) -> None:
    done, _ = wait(bulk, start(bulk, bulk_query())["bulkOperation"]["id"])
    bulk.emulator.faults.add("truncate_bulk", path=r"^/_bulk/")
    cut, whole = download(done["url"]).content, download(done["url"]).content
    assert len(cut) == len(whole) // 2 and whole.startswith(cut) and str(len(whole)) == done["fileSize"]
    with pytest.raises(json.JSONDecodeError):
        [json.loads(line) for line in cut.splitlines()]


def test_the_url_expires_seven_days_after_completion(bulk: World) -> None:
    done, _ = wait(bulk, start(bulk, bulk_query())["bulkOperation"]["id"])
    bulk.advance(timedelta(days=6, hours=23))
    assert download(done["url"]).status_code == 200
    bulk.advance(timedelta(hours=1, seconds=1))
    expired = download(done["url"])
    assert expired.status_code == 403 and b"expired" in expired.content
    later = poll(bulk, done["id"])
    assert (later["status"], later["url"]) == ("EXPIRED", None)
    tampered = done["url"].replace("Signature=", "Signature=0")
    assert download(tampered).status_code == 403
