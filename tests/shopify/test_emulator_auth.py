"""Auth of the Shopify emulator over HTTP: the client-credentials grant, token expiry, access scopes with the 60-day
limit, and customer tags (tagsAdd / tagsRemove)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from sandbox.emulators.shopify import DEFAULT_SCOPES, INVALID_TOKEN, MUTATION_COST, ShopifyEmulator
from tests.shopify.helpers import SHOP, STORE, TOKEN, Source, World, make_order

GRAPHQL = "/admin/api/2026-01/graphql.json"
REST = "/admin/api/2026-01/orders.json"
OTHER = "beta.myshopify.com"
SHOPS = {SHOP: (STORE, TOKEN, "USD"), OTHER: ("beta", "shpat_test_beta", "EUR")}
APP = ("dev-dashboard-app", "shpss_app_secret")
SCOPES = "{ currentAppInstallation { accessScopes { handle } } }"
TAGS = {"add": "mutation($id: ID!, $tags: [String!]!) { tagsAdd(id: $id, tags: $tags) { node { id } "
               "userErrors { field message } } }",
        "remove": "mutation($id: ID!, $tags: [String!]!) { tagsRemove(id: $id, tags: $tags) { node { id } "
                  "userErrors { field message } } }"}


def reset(world: World, **options: Any) -> ShopifyEmulator:
    options.setdefault("source", world.source)
    source = options.pop("source")
    world.emulator.__init__(source, shops=SHOPS, speed=1000.0, apps={SHOP: APP},  # type: ignore[misc]
                            public_url=world.server.url, **options)
    return world.emulator


@pytest.fixture
def app(world: World) -> Iterator[World]:
    reset(world)
    yield world
    world.emulator.faults.clear()


def grant(world: World, body: dict[str, str] | None = None, *, as_json: bool = False,
          host: str = SHOP) -> requests.Response:
    form = body if body is not None else {"grant_type": "client_credentials", "client_id": APP[0],
                                          "client_secret": APP[1]}
    url = world.server.url + "/admin/oauth/access_token"
    if as_json:
        return requests.post(url, json=form, headers={"Host": host}, timeout=5)
    return requests.post(url, data=form, headers={"Host": host}, timeout=5)


def post(world: World, query: str, variables: dict[str, Any] | None = None, *, token: str = TOKEN,
         host: str = SHOP) -> requests.Response:
    return requests.post(world.server.url + GRAPHQL, json={"query": query, "variables": variables or {}},
                         headers={"Host": host, "X-Shopify-Access-Token": token}, timeout=5)


def gql(world: World, query: str, variables: dict[str, Any] | None = None, *, token: str = TOKEN) -> dict[str, Any]:
    resp = post(world, query, variables, token=token)
    assert resp.status_code == 200, resp.text
    return resp.json()


def scopes(world: World, token: str = TOKEN) -> list[str]:
    return [s["handle"] for s in gql(world, SCOPES, token=token)["data"]["currentAppInstallation"]["accessScopes"]]


# -- the client-credentials grant --------------------------------------------------------------------------
@pytest.mark.parametrize("as_json", [False, True])
def test_the_grant_issues_a_token_that_works(app: World, as_json: bool) -> None:
    resp = grant(app, as_json=as_json)
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"access_token", "scope", "expires_in"}
    assert body["access_token"].startswith("shpat_") and body["expires_in"] == 86399
    assert body["scope"] == "read_orders,read_all_orders,read_customers,write_customers"
    assert gql(app, "{ shop { myshopifyDomain } }", token=body["access_token"])["data"]["shop"] == {
        "myshopifyDomain": SHOP}
    assert scopes(app, body["access_token"]) == list(DEFAULT_SCOPES)
    assert app.emulator.requests["access_token"] == 1


@pytest.mark.parametrize(("form", "error"), [
    ({"grant_type": "client_credentials", "client_id": APP[0], "client_secret": "wrong"}, "invalid_client"),
    ({"grant_type": "client_credentials", "client_id": "someone-else", "client_secret": APP[1]}, "invalid_client"),
    ({"grant_type": "client_credentials"}, "invalid_client"),
    ({"grant_type": "authorization_code", "client_id": APP[0], "client_secret": APP[1]}, "unsupported_grant_type"),
])
def test_bad_grants_are_400_with_an_oauth_error(app: World, form: dict[str, str], error: str) -> None:
    resp = grant(app, form)
    assert resp.status_code == 400
    assert resp.json()["error"] == error and resp.json()["error_description"]


def test_a_shop_without_the_app_or_unknown_refuses(app: World) -> None:
    assert grant(app, host=OTHER).json()["error"] == "invalid_client"  # beta has no app
    assert grant(app, host="nobody.myshopify.com").status_code == 404


def test_a_granted_token_expires_on_the_shop_clock_the_stored_one_never(app: World) -> None:
    token = grant(app).json()["access_token"]
    app.advance(timedelta(seconds=86398))
    assert post(app, "{ shop { name } }", token=token).status_code == 200
    app.advance(timedelta(seconds=1))
    expired = post(app, "{ shop { name } }", token=token)
    assert (expired.status_code, expired.json()) == (401, {"errors": INVALID_TOKEN})
    rest = requests.get(app.server.url + REST, headers={"Host": SHOP, "X-Shopify-Access-Token": token}, timeout=5)
    assert rest.status_code == 401
    fresh = grant(app).json()["access_token"]
    assert fresh != token and post(app, "{ shop { name } }", token=fresh).status_code == 200
    app.advance(timedelta(days=400))
    assert post(app, "{ shop { name } }").status_code == 200  # the stored Admin API token


def test_a_token_is_good_for_its_own_shop_only(app: World) -> None:
    token = grant(app).json()["access_token"]
    assert post(app, "{ shop { name } }", token=token, host=OTHER).status_code == 401
    assert post(app, "{ shop { name } }", token="shpat_test_beta", host=OTHER).status_code == 200


def test_a_shorter_token_life(world: World) -> None:
    reset(world, token_seconds=60)
    body = grant(world).json()
    assert body["expires_in"] == 60
    world.advance(timedelta(seconds=61))
    assert post(world, "{ shop { name } }", token=body["access_token"]).status_code == 401


# -- scopes and the 60-day limit ---------------------------------------------------------------------------
def _old_and_new(world: World) -> Source:
    """Orders created 90, 61, 59 and 1 days ago."""
    return Source([make_order(n, world.t0 - timedelta(days=days)) for n, days in ((21, 90), (22, 61), (23, 59),
                                                                                    (24, 1))])


def _order_ids(world: World, token: str = TOKEN) -> list[str]:
    body = gql(world, "{ orders(first: 50) { nodes { legacyResourceId } } }", token=token)
    return [n["legacyResourceId"] for n in body["data"]["orders"]["nodes"]]


def test_without_read_all_orders_only_the_last_60_days_are_visible(world: World) -> None:
    recent = ["5000000023", "5000000024"]
    reset(world, source=_old_and_new(world), scopes={SHOP: {"read_orders", "read_customers"}})
    assert scopes(world) == ["read_orders", "read_customers"]
    granted = grant(world).json()
    assert granted["scope"] == "read_orders,read_customers"
    for token in (TOKEN, granted["access_token"]):
        assert _order_ids(world, token) == recent
    order = "query($id: ID!) { order(id: $id) { id } }"
    assert gql(world, order, {"id": "gid://shopify/Order/5000000021"})["data"]["order"] is None
    assert gql(world, order, {"id": "gid://shopify/Order/5000000023"})["data"]["order"] is not None
    rest = requests.get(world.server.url + REST, params={"status": "any"},
                        headers={"Host": SHOP, "X-Shopify-Access-Token": TOKEN}, timeout=5).json()
    assert sorted(str(o["id"]) for o in rest["orders"]) == recent
    # Time moves: day 59 becomes day 61 and drops out.
    world.advance(timedelta(days=2))
    assert _order_ids(world) == ["5000000024"]


def test_the_60_day_limit_holds_in_bulk_queries(world: World) -> None:
    reset(world, source=_old_and_new(world), scopes={SHOP: {"read_orders"}}, bulk_seconds=10.0)
    run = "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } userErrors { message } } }"
    gid = gql(world, run, {"q": "{ orders { edges { node { legacyResourceId } } } }"})["data"][
        "bulkOperationRunQuery"]["bulkOperation"]["id"]
    poll = "query($id: ID!) { node(id: $id) { ... on BulkOperation { status url } } }"
    for _ in range(500):
        node = gql(world, poll, {"id": gid})["data"]["node"]
        if node["status"] == "COMPLETED":
            break
        time.sleep(0.01)
    lines = [json.loads(line) for line in requests.get(node["url"], timeout=5).content.splitlines()]
    assert [line["legacyResourceId"] for line in lines] == ["5000000023", "5000000024"]


def test_with_read_all_orders_every_order_is_visible(world: World) -> None:
    reset(world, source=_old_and_new(world))
    assert _order_ids(world) == ["5000000021", "5000000022", "5000000023", "5000000024"]


def test_a_missing_scope_is_access_denied(world: World) -> None:
    reset(world, scopes={SHOP: {"read_all_orders"}})
    body = gql(world, "{ orders(first: 1) { nodes { id } } }")
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "ACCESS_DENIED" and "`read_orders`" in error["message"]
    rest = requests.get(world.server.url + REST, headers={"Host": SHOP, "X-Shopify-Access-Token": TOKEN}, timeout=5)
    assert rest.status_code == 403 and "read_orders" in rest.json()["errors"]
    denied = gql(world, TAGS["add"], {"id": "gid://shopify/Customer/7000001", "tags": ["vip"]})
    assert denied["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
    assert gql(world, '{ customer(id: "gid://shopify/Customer/7000001") { id } }')["errors"][0]["extensions"][
        "code"] == "ACCESS_DENIED"
    run = "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } } }"
    gid = gql(world, run, {"q": "{ orders { edges { node { id } } } }"})["data"]["bulkOperationRunQuery"][
        "bulkOperation"]["id"]
    poll = "query($id: ID!) { node(id: $id) { ... on BulkOperation { status errorCode url } } }"
    for _ in range(500):
        node = gql(world, poll, {"id": gid})["data"]["node"]
        if node["status"] != "RUNNING" and node["status"] != "CREATED":
            break
        time.sleep(0.01)
    assert node == {"status": "FAILED", "errorCode": "ACCESS_DENIED", "url": None}


# -- customer tags ---------------------------------------------------------------------------------------
def _tags(world: World, customer: str) -> list[str]:
    body = gql(world, "query($id: ID!) { customer(id: $id) { id tags } }", {"id": customer})
    return body["data"]["customer"]["tags"]


def _change(world: World, kind: str, customer: str, tags: list[str] | str) -> dict[str, Any]:
    body = gql(world, TAGS[kind], {"id": customer, "tags": tags})
    assert body["extensions"]["cost"]["actualQueryCost"] == MUTATION_COST
    return body["data"]["tags" + kind.capitalize()]


def test_tags_add_and_remove_are_idempotent(app: World) -> None:
    customer = "gid://shopify/Customer/7000004"
    assert _tags(app, customer) == []
    ok = {"node": {"id": customer}, "userErrors": []}
    assert _change(app, "add", customer, ["vip", "at-risk, wholesale "]) == ok  # a comma list counts as tags
    assert _tags(app, customer) == ["at-risk", "vip", "wholesale"]
    assert _change(app, "add", customer, ["vip"]) == ok
    assert _tags(app, customer) == ["at-risk", "vip", "wholesale"]
    assert _change(app, "remove", customer, ["vip", "never-had"]) == ok
    assert _change(app, "remove", customer, ["vip"]) == ok
    assert _tags(app, customer) == ["at-risk", "wholesale"]
    assert _change(app, "add", customer, "vip") == ok  # one string: GraphQL coerces it to a list
    assert _tags(app, customer) == ["at-risk", "vip", "wholesale"]


def test_tags_show_in_orders_too(app: World) -> None:
    _change(app, "add", "gid://shopify/Customer/7000004", ["vip"])
    order = gql(app, '{ order(id: "gid://shopify/Order/5000000004") { tags customer { tags } } }')["data"]["order"]
    assert order == {"tags": [], "customer": {"tags": ["vip"]}}  # the order's own tags are another list
    rest = requests.get(app.server.url + "/admin/api/2026-01/orders/5000000004.json",
                        headers={"Host": SHOP, "X-Shopify-Access-Token": TOKEN}, timeout=5).json()
    assert rest["order"]["customer"]["tags"] == "vip"
    assert _tags(app, "gid://shopify/Customer/7000005") == []  # other customers are untouched


def test_tags_of_an_unknown_customer_are_a_user_error(app: World) -> None:
    missing = _change(app, "add", "gid://shopify/Customer/99999999", ["vip"])
    assert missing == {"node": None, "userErrors": [{"field": ["id"], "message": "Customer does not exist"}]}
    future = _change(app, "add", "gid://shopify/Customer/7000011", ["vip"])  # their first order comes later
    assert future["userErrors"] and future["node"] is None
    assert gql(app, '{ customer(id: "gid://shopify/Customer/99999999") { id } }')["data"]["customer"] is None
    assert app.emulator.operations == {"tagsAdd": 2, "customer": 1}
