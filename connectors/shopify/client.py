"""Shopify Admin GraphQL client: ShopifyAPI's session for shop, version and token; requests (with a timeout) for the calls."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import shopify

from connectors.http import HttpClient, RetryPolicy, call_with_retry, parse_json
from connectors.shopify import queries
from connectors.shopify.auth import TokenSource, token_source
from connectors.shopify.budget import CONNECTION_COST, MAX_PAGE, CostBudget
from connectors.shopify.config import ShopifyStore
from connectors.shopify.paging import CursorPaginator
from orderhub.errors import AuthError, FatalError, RetriableError

log = logging.getLogger(__name__)
CHANNEL = "shopify"
# What one order node of queries.ORDERS costs before the first response tells us (about 1 point per
# object: the order and up to 100 line items, at Shopify's list rate of a tenth of a point each).
INITIAL_NODE_COST = 11.0
DEFAULT_POLICY = RetryPolicy()
SMALL_QUERY_COST = 10.0  # a mutation, or a query of a few fields: wait for this much before sending


class MaxCostExceeded(FatalError):
    """The query's requested cost is over Shopify's single-query limit (MAX_COST_EXCEEDED).

    Attributes:
        cost: the requested cost Shopify computed.
        max_cost: the limit.
    """

    def __init__(self, message: str, *, cost: float, max_cost: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.cost, self.max_cost = cost, max_cost


@dataclass(frozen=True)
class GraphQLResponse:
    """One GraphQL answer: the body exactly as received (for landing) and its parsed JSON."""

    body: bytes
    json: dict[str, Any]

    @property
    def cost(self) -> dict[str, Any]:
        """``extensions.cost`` (empty when absent)."""
        return (self.json.get("extensions") or {}).get("cost") or {}


def raise_for_graphql_errors(body: dict[str, Any], budget: CostBudget, url: str) -> None:
    """Map GraphQL ``errors`` (HTTP 200) to the exception hierarchy with Shopify's own message.

    Raises:
        RetriableError: THROTTLED (``retry_after`` from ``throttleStatus`` and the requested cost) or an
            internal error on Shopify's side.
        AuthError: ACCESS_DENIED (a missing access scope).
        MaxCostExceeded: the query asks for more than one query may cost.
        FatalError: anything else (an invalid query, ...).
    """
    errors = body.get("errors")
    if not errors:
        return
    if not isinstance(errors, list):
        raise FatalError(f"shopify answered an error: {errors}", channel=CHANNEL, url=url, body=json.dumps(body))
    codes = {str(((e.get("extensions") or {}) if isinstance(e, dict) else {}).get("code", "")) for e in errors}
    message = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
    kwargs: dict[str, Any] = {"channel": CHANNEL, "url": url, "body": json.dumps(body)[:500]}
    if "THROTTLED" in codes:
        requested = float((body.get("extensions") or {}).get("cost", {}).get("requestedQueryCost") or 0)
        raise RetriableError(f"shopify throttled the query ({message}); waiting for the cost bucket",
                             retry_after=budget.seconds_until(requested), **kwargs)
    if "INTERNAL_SERVER_ERROR" in codes:
        raise RetriableError(f"shopify had an internal error: {message}; will retry", **kwargs)
    for err in errors:
        ext = (err.get("extensions") or {}) if isinstance(err, dict) else {}
        if ext.get("code") == "MAX_COST_EXCEEDED":
            raise MaxCostExceeded(f"shopify refused the query: {message}", cost=float(ext.get("cost") or 0),
                                  max_cost=float(ext.get("maxCost") or 0), **kwargs)
    if "ACCESS_DENIED" in codes:
        raise AuthError(f"shopify denied access: {message}. Grant the app the read_orders scope "
                        "(and read_all_orders for orders older than 60 days)", **kwargs)
    raise FatalError(f"shopify GraphQL error: {message}", **kwargs)


class ShopifyGraphQL(shopify.GraphQL):
    """``shopify.GraphQL`` sent through :class:`HttpClient`: a timeout, typed errors, cost-aware retries.

    ShopifyAPI's ``execute`` uses urllib without a timeout and prints error bodies; this subclass keeps
    its endpoint and headers, built from a :class:`shopify.Session` (shop domain, API version path,
    ``X-Shopify-Access-Token``), and replaces the transport. With ``endpoint`` (the sandbox) the same
    path goes to that base URL with ``Host: {shop}.myshopify.com``, the way Shopify routes shops.
    """

    def __init__(self, session: shopify.Session, http: HttpClient, *, endpoint: str | None = None,
                 budget: CostBudget | None = None, sleep: Callable[[float], None] = time.sleep,
                 tokens: TokenSource | None = None) -> None:
        # super().__init__() would read the process-global ShopifyResource session: not thread-safe.
        self.session = session
        self.endpoint = f"{session.site}/graphql.json"
        self.headers = {"X-Shopify-Access-Token": session.token or "", "Accept": "application/json"}
        self.tokens = tokens
        self.url = self.endpoint
        if endpoint:
            self.url = endpoint.rstrip("/") + urlsplit(self.endpoint).path
            self.headers["Host"] = session.url
        self.http = http
        self.budget = budget or CostBudget(sleep=sleep)
        self._sleep = sleep

    def post(self, query: str, variables: dict[str, Any] | None = None,
             operation_name: str | None = None) -> GraphQLResponse:
        """One POST (one attempt, no retry): the response, or a typed error."""
        payload = {"query": query, "variables": variables or {}, "operationName": operation_name}
        if self.tokens is None:
            resp = self.http.send_once("POST", self.url, json=payload, headers=self.headers)
        else:
            try:
                resp = self.http.send_once("POST", self.url, json=payload,
                                           headers={**self.headers, "X-Shopify-Access-Token": self.tokens.token()})
            except AuthError as exc:
                if exc.status != 401 or not self.tokens.invalidate():
                    raise
                log.info("shopify: access token refused; fetching a new one")
                resp = self.http.send_once("POST", self.url, json=payload,
                                           headers={**self.headers, "X-Shopify-Access-Token": self.tokens.token()})
        body = parse_json(resp, CHANNEL)
        if not isinstance(body, dict):
            raise FatalError(f"shopify answered a {type(body).__name__}, not a GraphQL response", channel=CHANNEL,
                             url=self.endpoint)
        self.budget.update((body.get("extensions") or {}).get("cost"))
        raise_for_graphql_errors(body, self.budget, self.endpoint)
        return GraphQLResponse(resp.content, body)

    def call(self, attempt: Callable[[], GraphQLResponse], what: str) -> GraphQLResponse:
        """Run ``attempt`` under the one retry layer (THROTTLED, 429, 5xx, timeouts, truncated bodies)."""
        return call_with_retry(attempt, policy=self.http.policy, sleep=self._sleep, what=f"shopify {what}")

    def execute(self, query: str, variables: dict[str, Any] | None = None,
                operation_name: str | None = None) -> str:
        """ShopifyAPI's interface: the response body as text (errors raise instead of printing)."""
        return self.call(lambda: self.post(query, variables, operation_name), operation_name or "graphql").body.decode()


class ShopifyClient:
    """What the streams need from one shop: pages of orders and a cheap credentials check.

    Args:
        store: the shop's configuration.
        timeout: seconds per HTTP request.
        policy: the retry policy of the one retry layer.
        max_page: at most this many orders per page (the budget may ask for fewer).
        sleep: injectable for tests.
    """

    def __init__(self, store: ShopifyStore, *, timeout: float = 30.0, policy: RetryPolicy = DEFAULT_POLICY,
                 max_page: int = MAX_PAGE, sleep: Callable[[float], None] = time.sleep) -> None:
        # One retry loop: each attempt is HttpClient.send_once plus the GraphQL checks, under ShopifyGraphQL.call.
        http = HttpClient(CHANNEL, timeout=timeout, policy=policy, sleep=sleep)
        self.tokens = token_source(store, http)
        session = shopify.Session(store.domain, store.api_version, None)  # the token goes per request
        self.store = store
        self.graphql = ShopifyGraphQL(session, http, endpoint=store.endpoint, sleep=sleep, tokens=self.tokens)
        self.node_cost = INITIAL_NODE_COST
        self.max_page = max_page
        self.cost_spent = 0.0  # actual query cost of every call made (for the benchmark's call log)

    @property
    def path(self) -> str:
        """The API path every call goes to (``/admin/api/{version}/graphql.json``)."""
        return urlsplit(self.graphql.endpoint).path

    def orders_page(self, search: str, paginator: CursorPaginator) -> tuple[GraphQLResponse, dict[str, Any]]:
        """The next page of ``orders`` matching ``search``, sized to the cost budget.

        Returns:
            The response and the variables it was fetched with.
        """
        sent: dict[str, Any] = {}

        def attempt() -> GraphQLResponse:
            first = min(self.max_page, self.graphql.budget.page_size(self.node_cost))
            sent.clear()
            sent.update({"first": first, "after": paginator.after, "query": search})
            self.graphql.budget.wait_for(CONNECTION_COST + first * self.node_cost)
            try:
                resp = self.graphql.post(queries.ORDERS, dict(sent), "Orders")
            except MaxCostExceeded as exc:
                if first <= 1 or not exc.cost or not exc.max_cost:
                    raise
                # Adopt the server's figures and ask again with a page that fits.
                self.graphql.budget.max_query_cost = exc.max_cost
                self.node_cost = max(self.node_cost, (exc.cost - CONNECTION_COST) / first)
                raise RetriableError(f"{exc}; asking for a smaller page", retry_after=0.0, channel=CHANNEL) from exc
            requested = resp.cost.get("requestedQueryCost")
            self.cost_spent += float(resp.cost.get("actualQueryCost") or requested or 0)
            if isinstance(requested, int | float) and first:
                self.node_cost = max(0.1, (float(requested) - CONNECTION_COST) / first)
            paginator.check(resp.json)
            return resp

        return self.graphql.call(attempt, "orders"), sent

    def query(self, document: str, variables: dict[str, Any] | None, name: str) -> dict[str, Any]:
        """Any small query or mutation under the cost budget and the retry layer: its ``data``."""

        def attempt() -> GraphQLResponse:
            self.graphql.budget.wait_for(SMALL_QUERY_COST)
            return self.graphql.post(document, variables, name)

        resp = self.graphql.call(attempt, name)
        self.cost_spent += float(resp.cost.get("actualQueryCost") or resp.cost.get("requestedQueryCost") or 0)
        return resp.json.get("data") or {}

    def scopes(self) -> set[str]:
        """The access scopes the app holds on this shop."""
        data = self.query(queries.SCOPES, None, "Scopes")
        listed = ((data.get("currentAppInstallation") or {}).get("accessScopes")) or []
        return {str(s.get("handle")) for s in listed if isinstance(s, dict)}

    def run_bulk(self, document: str) -> dict[str, Any]:
        """``bulkOperationRunQuery``: the ``bulkOperationRunQuery`` payload (``bulkOperation``, ``userErrors``)."""
        return self.query(queries.RUN_BULK, {"query": document}, "RunBulk").get("bulkOperationRunQuery") or {}

    def bulk_status(self, operation_id: str) -> dict[str, Any]:
        """The BulkOperation node (status, errorCode, objectCount, url, ...)."""
        node = self.query(queries.BULK_STATUS, {"id": operation_id}, "BulkStatus").get("node")
        if not isinstance(node, dict) or "status" not in node:
            raise FatalError(f"shopify knows no bulk operation {operation_id}", channel=CHANNEL)
        return node

    def download(self, url: str) -> bytes:
        """GET a bulk result URL (pre-signed: no token). Transport problems and 5xx are retried.

        Raises:
            FatalError: 403/404 (the URL expired).
        """
        shown = url.split("?", 1)[0]  # the query string is the signature: never logged
        headers: dict[str, str] = {}
        shop_url = f"https://{self.store.domain}"
        if self.store.endpoint and url.startswith(shop_url + "/"):
            # The shop is served at ``endpoint`` (the sandbox): go there, with the shop as Host, as every call does.
            url = self.store.endpoint.rstrip("/") + url[len(shop_url):]
            headers["Host"] = self.store.domain
        resp = self.graphql.http.request("GET", url, headers=headers)
        log.info("shopify %s: downloaded %d bytes from %s", self.store.key, len(resp.content), shown)
        return resp.content

    def tags(self, customer_gid: str, add: list[str], remove: list[str]) -> None:
        """``tagsAdd`` / ``tagsRemove`` on one customer (both idempotent at Shopify).

        Raises:
            FatalError: Shopify answered userErrors (an unknown customer id, a bad tag).
        """
        for document, name, operation, tags in ((queries.TAGS_ADD, "tagsAdd", "TagsAdd", add),
                                                (queries.TAGS_REMOVE, "tagsRemove", "TagsRemove", remove)):
            if not tags:
                continue
            payload = self.query(document, {"id": customer_gid, "tags": tags}, operation).get(name) or {}
            errors = payload.get("userErrors") or []
            if errors:
                raise FatalError(f"shopify {name} on {customer_gid}: "
                                 + "; ".join(str(e.get("message")) for e in errors), channel=CHANNEL)

    def shop(self) -> dict[str, Any]:
        """The shop's name, domain, currency and time zone (a cheap authenticated call)."""
        resp = self.graphql.call(lambda: self.graphql.post(queries.SHOP, None, "Shop"), "shop")
        return (resp.json.get("data") or {}).get("shop") or {}
