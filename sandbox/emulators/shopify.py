"""Shopify Admin API emulator: GraphQL (orders, bulk operations, tags) on a real GraphQL engine, REST orders, OAuth, webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, TypeGuard, cast
from urllib.parse import parse_qs, urlencode

import requests
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    build_schema,
    execute_sync,
    get_named_type,
    get_operation_ast,
    parse,
    validate,
    value_from_ast_untyped,
)
from graphql.execution.values import get_variable_values

from orderhub import clock
from sandbox.emulators.base import Emulator, Request, Response, ServerBucket
from sandbox.model import Address, Order, Version

log = logging.getLogger(__name__)

SCHEMA = build_schema(Path(__file__).with_name("shopify_schema.graphql").read_text(encoding="utf-8"))

# GraphQL Admin API budget of the Standard plan: a leaky bucket of 2000 points restored at 100
# points/second per app and store; one query may cost at most 1000 points.
# https://shopify.dev/docs/api/usage/limits#graphql-admin-api-rate-limits
BUCKET_SIZE = 2000.0
RESTORE_RATE = 100.0
MAX_QUERY_COST = 1000
# Connections return at most 250 nodes per page: https://shopify.dev/docs/api/usage/pagination-graphql
MAX_PAGE = 250
# Cost estimate (documented simplification of https://shopify.dev/docs/api/usage/limits#cost-calculation):
# a connection costs 2 plus one point per object it may return (``first`` times one plus the sizes of
# its nested connections), divided by 10. The divisor matches what Shopify reports for plain lists
# (``variants(first: 250)`` of objects is billed 25 points, https://community.shopify.dev/t/23101).
COST_DIVISOR = 10
# A mutation costs 10 points: https://shopify.dev/docs/api/usage/limits#cost-calculation
MUTATION_COST = 10
# REST Admin API, Standard plan: a bucket of 40 requests leaking 2 per second.
# https://shopify.dev/docs/api/admin-rest/usage/rate-limits
REST_BUCKET, REST_LEAK = 40.0, 2.0
REST_DEFAULT_LIMIT, REST_MAX_LIMIT = 50, 250  # https://shopify.dev/docs/api/admin-rest/latest/resources/order

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
# Client-credentials grant of Dev Dashboard apps: tokens live 86399 s (connectors/shopify/README.md, "Auth").
TOKEN_SECONDS = 86399
DEFAULT_SCOPES = ("read_orders", "read_all_orders", "read_customers", "write_customers")
SCOPE_DESCRIPTIONS = {"read_orders": "Read orders, transactions, and fulfillments",
                      "read_all_orders": "Read all orders, not only those of the last 60 days",
                      "read_customers": "Read customers", "write_customers": "Modify customers"}
# Without read_all_orders an app sees the orders of the last 60 days only:
# https://shopify.dev/docs/api/usage/access-scopes (read_all_orders)
RECENT_ORDERS = timedelta(days=60)
ACCESS_SCOPES_DOC = "https://shopify.dev/api/usage/access-scopes"
# Bulk operations (https://shopify.dev/docs/api/usage/bulk-operations/queries): at most five connections,
# nested at most two deep; ``url`` and ``partialDataUrl`` expire seven days after the operation ends.
BULK_MAX_CONNECTIONS, BULK_MAX_DEPTH = 5, 2
BULK_URL_TTL = timedelta(days=7)
BULK_SLOW_POLLS = 5  # extra polls a ``bulk_slow`` operation spends RUNNING
BULK_ACTIVE = ("CREATED", "RUNNING")
BULK_TERMINAL = ("COMPLETED", "CANCELED", "FAILED", "EXPIRED")
BULK_FAULTS = {"bulk_failed", "bulk_expired", "bulk_slow"}
JSONL_CONTENT_TYPE = "application/jsonl"
# Webhooks: https://shopify.dev/docs/apps/build/webhooks/subscribe/https (headers and the HMAC).
WEBHOOK_FAULTS = {"webhook_forged", "webhook_redeliver", "webhook_lost"}
WEBHOOK_API_VERSION = "2026-01"
THROTTLE_DOC = "https://shopify.dev/api/usage/rate-limits"
AMAZON_ID_ATTRIBUTE = "amazon_order_id"

_FINANCIAL = {"pending": "PENDING", "paid": "PAID", "partially_refunded": "PARTIALLY_REFUNDED",
              "refunded": "REFUNDED", "voided": "VOIDED"}
_FULFILLMENT = {"fulfilled": "FULFILLED", "partially_fulfilled": "PARTIALLY_FULFILLED"}
_REST_FULFILLMENT = {"FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}
_COUNTRY_NAMES = {"US": "United States", "CA": "Canada", "GB": "United Kingdom", "DE": "Germany", "FR": "France",
                  "ES": "Spain", "IT": "Italy", "NL": "Netherlands", "MX": "Mexico", "JP": "Japan",
                  "AU": "Australia", "BR": "Brazil", "IE": "Ireland", "AT": "Austria", "BE": "Belgium"}
_TRACKING_URLS = {"UPS": "https://www.ups.com/track?tracknum={}", "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
                  "FedEx": "https://www.fedex.com/fedextrack/?trknbr={}", "DHL": "https://www.dhl.com/en/express/tracking.html?AWB={}"}
_BAD_DATE = "2024-02-30T25:61:00Z"  # the `bad_date` defect: no such time
_CENT = Decimal("0.01")


# -- wire formatting ---------------------------------------------------------------------------------
def gql_amount(value: Decimal) -> str:
    """A ``Decimal`` scalar as Shopify writes it: shortest form, at least one decimal ("10.0", "409.94")."""
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def rest_amount(value: Decimal) -> str:
    """A REST money string: two decimals, more when the amount has them ("409.94", "0.00")."""
    exponent = value.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{value:.{places}f}"


def gql_time(value: datetime) -> str:
    """A ``DateTime`` scalar: UTC, whole seconds, ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rest_time(value: datetime) -> str:
    """A REST time: whole seconds with the offset (the sandbox shops keep UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def numeric_id(*parts: object) -> int:
    """A deterministic 12-digit id for sub-resources (line items, refunds, fulfillments)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()
    return 10**11 + int(digest[:12], 16) % (9 * 10**11)


def _gid(kind: str, value: object) -> str:
    return f"gid://shopify/{kind}/{value}" if value not in (None, "") else ""


def _split_name(name: str | None) -> tuple[str | None, str | None]:
    if not name:
        return None, None
    first, _, last = name.strip().partition(" ")
    return first or None, last.strip() or None


# -- the order as Shopify holds it at one version --------------------------------------------------
@dataclass(frozen=True)
class Fulfilled:
    """One fulfillment (parcel) of an order."""

    id: int
    name: str
    at: datetime
    number: str | None
    carrier: str  # Shopify's tracking company name; UPS when the truth names none

    @property
    def url(self) -> str | None:
        """The carrier's tracking page, as Shopify fills it in for the carriers it knows."""
        pattern = _TRACKING_URLS.get(self.carrier)
        return pattern.format(self.number) if self.number and pattern else None


def carries_reference(original_truth_id: str) -> bool:
    """Whether the Shopify copy of this Amazon order names it.

    Not every import app writes the Amazon order id into the copy: some create a plain web order.
    Three copies in ten carry no reference (chosen by the original's id, so the choice is stable),
    and orderhub must recognize them by the purchase itself (dedupe/mirrors.py).
    """
    return int(hashlib.sha256(original_truth_id.encode()).hexdigest()[:8], 16) % 10 >= 3


class OrderView:
    """One order at one version, with everything both wire formats need (amounts exact, defects applied)."""

    def __init__(self, order: Order, version: Version, currency: str, amazon_id: str | None = None,
                 shop: str = "shop.myshopify.com", customer_tags: Iterable[str] = ()) -> None:
        self.order, self.version, self.shop = order, version, shop
        self.customer_tags = sorted(customer_tags)  # the customer's tags now (Shopify lists them sorted)
        defect = order.defect
        self.ext = "" if defect == "missing_id" else order.external_id
        self.currency = "ZZZ" if defect == "unknown_currency" else (order.currency or currency)
        self.bad_total = defect is not None and defect not in (
            "missing_id", "bad_date", "unknown_currency", "negative_quantity", "missing_lines")
        self.bad_date = defect == "bad_date"
        self.lines = [] if defect == "missing_lines" else list(order.lines)
        self.quantities = [-1 if defect == "negative_quantity" and i == 0 else ln.quantity
                           for i, ln in enumerate(self.lines)]
        self.financial = _FINANCIAL.get(version.payment_status, "PENDING")
        self.fulfillment = _FULFILLMENT.get(version.status, "UNFULFILLED")
        history = [v for v in order.versions if v.at <= version.at]
        self.cancelled_at: datetime | None = None
        if version.status == "cancelled":
            start = len(history)  # the first version of the trailing cancelled run
            while start > 0 and history[start - 1].status == "cancelled":
                start -= 1
            self.cancelled_at = history[min(start, len(history) - 1)].at
        # One refund per increase of the cumulative refunded amount, dated when it happened.
        self.refunds: list[tuple[int, datetime, Decimal]] = []
        previous = Decimal(0)
        for v in history:
            if v.refunded > previous:
                self.refunds.append((numeric_id(order.external_id, "refund", len(self.refunds)), v.at,
                                     v.refunded - previous))
                previous = v.refunded
        # One fulfillment per parcel: each new tracking number of a (partially) fulfilled version.
        self.fulfillments: list[Fulfilled] = []
        for v in history:
            if v.status in _FULFILLMENT and (not self.fulfillments or (
                    v.tracking_number and v.tracking_number not in {f.number for f in self.fulfillments})):
                n = len(self.fulfillments)
                self.fulfillments.append(Fulfilled(numeric_id(order.external_id, "fulfillment", n),
                                                   f"{order.order_number}-F{n + 1}", v.at, v.tracking_number,
                                                   v.carrier or "UPS"))
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.source_name = "web"
        if amazon_id:
            # Marketplace apps (CedCommerce, Codisto) import Amazon orders with the Amazon order id
            # in a note attribute, an "amazon" tag and the channel as source name.
            self.tags, self.attributes, self.source_name = ["amazon"], [(AMAZON_ID_ATTRIBUTE, amazon_id)], "amazon"

    @property
    def discount(self) -> Decimal:
        """Line discounts plus the order discount."""
        return self.order.discount

    @property
    def total_text(self) -> str | None:
        """The malformed total of the ``bad_total`` defect (None when the record is clean)."""
        return "12,34" if self.bad_total else None


# -- GraphQL rendering ---------------------------------------------------------------------------------
def _bag(value: Decimal | str, currency: str) -> dict[str, Any]:
    amount = value if isinstance(value, str) else gql_amount(value)
    money = {"amount": amount, "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": dict(money)}


def _sliced(items: list[Any]) -> Callable[..., list[Any]]:
    def resolve(_info: Any, first: int | None = None, **_: Any) -> list[Any]:
        return items if first is None else items[:first]

    return resolve


class _BulkContext:
    """The execution context of a bulk query: connections return every node, ``first``/``last`` or not."""


BULK = _BulkContext()


def _in_bulk(info: Any) -> bool:
    return info is not None and getattr(info, "context", None) is BULK


def _connection(items: list[dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A nested connection (lineItems) paged by index cursors; whole in a bulk query."""

    def resolve(info: Any, first: int | None = None, after: str | None = None, last: int | None = None,
                before: str | None = None, reverse: bool = False) -> dict[str, Any]:
        if _in_bulk(info):
            first, after, last, before = len(items), None, None, None
        if first is None and last is None:
            raise GraphQLError("you must provide one of first or last")
        indexed = list(enumerate(items))
        if reverse:
            indexed.reverse()
        if after is not None:
            pos = next((p for p, (i, _) in enumerate(indexed) if str(i) == _decode(after).get("i")), -1)
            indexed = indexed[pos + 1:]
        if before is not None:
            pos = next((p for p, (i, _) in enumerate(indexed) if str(i) == _decode(before).get("i")), len(indexed))
            indexed = indexed[:pos]
        page = indexed[:first] if first is not None else indexed[-last:] if last else []
        edges = [{"cursor": _encode({"i": str(i)}), "node": node} for i, node in page]
        return {"edges": edges, "nodes": [e["node"] for e in edges], "pageInfo": {
            "hasNextPage": first is not None and len(indexed) > len(page),
            "hasPreviousPage": last is not None and len(indexed) > len(page),
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None}}

    return resolve


def _address_gql(addr: Address | None, phone: str | None, ext: str, name: str | None = None) -> dict[str, Any] | None:
    if addr is None:
        return None
    name = name or addr.name
    first, last = _split_name(name)
    return {"id": _gid("MailingAddress", numeric_id(ext, "address")), "name": name, "firstName": first,
            "lastName": last, "company": None, "address1": addr.line1, "address2": addr.line2, "city": addr.city,
            "province": addr.region, "provinceCode": addr.region, "zip": addr.postal_code,
            "country": _COUNTRY_NAMES.get(addr.country, addr.country), "countryCodeV2": addr.country,
            "phone": phone}


def customer_graphql(order: Order, tags: Iterable[str]) -> dict[str, Any] | None:
    """The ``Customer`` of an order (None for a guest), with the customer's tags now."""
    if not order.channel_customer_id:
        return None
    first, last = _split_name(order.buyer_name)
    return {"__typename": "Customer", "id": _gid("Customer", order.channel_customer_id),
            "legacyResourceId": order.channel_customer_id, "email": order.email, "phone": order.phone,
            "firstName": first, "lastName": last, "displayName": order.buyer_name or order.email or "",
            "tags": sorted(tags)}


def render_graphql(view: OrderView) -> dict[str, Any]:
    """An ``Order`` object as the GraphQL engine resolves it (connections resolve from their arguments)."""
    o, cur, ext = view.order, view.currency, view.ext
    lines: list[dict[str, Any]] = []
    for i, (ln, qty) in enumerate(zip(view.lines, view.quantities, strict=True)):
        line_id = numeric_id(o.external_id, "line", i)
        gross = qty * ln.unit_price
        unit_net = ((gross - ln.discount) / qty).quantize(_CENT, ROUND_HALF_EVEN) if qty else ln.unit_price
        lines.append({
            "id": _gid("LineItem", line_id), "name": ln.title, "title": ln.title, "sku": ln.sku,
            "variantTitle": None, "vendor": None, "quantity": qty, "currentQuantity": qty, "requiresShipping": True,
            "originalUnitPriceSet": _bag(ln.unit_price, cur), "discountedUnitPriceSet": _bag(unit_net, cur),
            "originalTotalSet": _bag(gross, cur), "discountedTotalSet": _bag(gross - ln.discount, cur),
            "totalDiscountSet": _bag(ln.discount, cur),
            "taxLines": _sliced([{"title": "Tax", "rate": None, "ratePercentage": None, "priceSet": _bag(ln.tax, cur)}]
                                if ln.tax else []),
            "customAttributes": [],
        })
    customer = customer_graphql(o, view.customer_tags)
    refunds = [{"id": _gid("Refund", rid), "legacyResourceId": str(rid), "createdAt": gql_time(at), "note": None,
                "totalRefundedSet": _bag(amount, cur)} for rid, at, amount in view.refunds]
    fulfillments = [{
        "id": _gid("Fulfillment", f.id), "legacyResourceId": str(f.id), "name": f.name, "status": "SUCCESS",
        "createdAt": gql_time(f.at), "updatedAt": gql_time(f.at),
        "trackingInfo": _sliced([{"company": f.carrier, "number": f.number, "url": f.url}] if f.number else []),
    } for f in view.fulfillments]
    created = _BAD_DATE if view.bad_date else gql_time(o.created_at)
    subtotal_net = o.subtotal - view.discount
    total: Decimal | str = view.total_text or o.total
    return {
        "id": _gid("Order", ext), "legacyResourceId": ext, "name": o.order_number, "email": o.email,
        "phone": o.phone, "createdAt": created, "updatedAt": gql_time(view.version.at), "processedAt": created,
        "cancelledAt": gql_time(view.cancelled_at) if view.cancelled_at else None,
        "cancelReason": "CUSTOMER" if view.cancelled_at else None, "closedAt": None, "closed": False,
        "confirmed": True, "test": False, "currencyCode": cur, "presentmentCurrencyCode": cur,
        "displayFinancialStatus": view.financial, "displayFulfillmentStatus": view.fulfillment,
        "sourceName": view.source_name, "tags": view.tags, "note": None,
        "customAttributes": [{"key": k, "value": v} for k, v in view.attributes],
        "customer": customer,
        "shippingAddress": _address_gql(o.ship_to, o.phone, o.external_id),
        "billingAddress": _address_gql(o.ship_to, o.phone, o.external_id, o.buyer_name),
        # Shopify's subtotal is after discounts: https://shopify.dev/docs/api/admin-graphql/latest/objects/Order#field-subtotalPriceSet
        "subtotalPriceSet": _bag(subtotal_net, cur), "totalDiscountsSet": _bag(view.discount, cur),
        "totalShippingPriceSet": _bag(o.shipping, cur), "totalTaxSet": _bag(o.tax, cur),
        "totalPriceSet": _bag(total, cur), "totalRefundedSet": _bag(view.version.refunded, cur),
        "currentTotalPriceSet": _bag(total if isinstance(total, str) else total - view.version.refunded, cur),
        "subtotalLineItemsQuantity": sum(view.quantities),
        "lineItems": _connection(lines), "refunds": _sliced(refunds), "fulfillments": _sliced(fulfillments),
    }


# -- REST rendering (shaped like the real orders.json of Shopify/shopify_python_api) --------------------
def _rest_set(value: Decimal | str, currency: str) -> dict[str, Any]:
    amount = value if isinstance(value, str) else rest_amount(value)
    return {"shop_money": {"amount": amount, "currency_code": currency},
            "presentment_money": {"amount": amount, "currency_code": currency}}


def _address_rest(addr: Address | None, phone: str | None, name: str | None = None) -> dict[str, Any] | None:
    if addr is None:
        return None
    name = name or addr.name
    first, last = _split_name(name)
    return {"first_name": first, "address1": addr.line1, "phone": phone, "city": addr.city,
            "zip": addr.postal_code, "province": addr.region, "country": _COUNTRY_NAMES.get(addr.country, addr.country),
            "last_name": last, "address2": addr.line2, "company": None, "latitude": None, "longitude": None,
            "name": name, "country_code": addr.country, "province_code": addr.region}


def _refund_rest(refund_id: int, at: datetime, amount: Decimal, order_id: int | str | None,
                 currency: str) -> dict[str, Any]:
    """A REST refund (as in an order's ``refunds`` and the ``refunds/create`` webhook), shaped like the real
    refund.json; the sandbox knows the amount only, so ``refund_line_items`` stays empty."""
    when = rest_time(at)
    return {"id": refund_id, "order_id": order_id, "created_at": when, "note": None, "restock": False,
            "user_id": None, "processed_at": when, "admin_graphql_api_id": _gid("Refund", refund_id),
            "refund_line_items": [], "order_adjustments": [],
            "transactions": [{"id": numeric_id(refund_id, "transaction"), "order_id": order_id,
                              "amount": rest_amount(amount), "kind": "refund", "gateway": "manual", "status": "success",
                              "message": None, "created_at": when, "test": False, "authorization": None,
                              "currency": currency, "location_id": None, "user_id": None,
                              "parent_id": None, "device_id": None, "receipt": {}, "error_code": None,
                              "source_name": "web"}]}


def render_rest(view: OrderView) -> dict[str, Any]:
    """An order of REST ``orders.json`` (same fields and types as the real fixture)."""
    o, cur, ext = view.order, view.currency, view.ext
    order_id = int(ext) if ext.isdigit() else (ext or None)
    amt = rest_amount
    total: Decimal | str = view.total_text or o.total
    created = _BAD_DATE if view.bad_date else rest_time(o.created_at)
    line_items = []
    for i, (ln, qty) in enumerate(zip(view.lines, view.quantities, strict=True)):
        line_id = numeric_id(o.external_id, "line", i)
        line_items.append({
            "id": line_id, "admin_graphql_api_id": _gid("LineItem", line_id), "fulfillment_service": "manual",
            "fulfillment_status": _REST_FULFILLMENT.get(view.fulfillment), "grams": 0, "name": ln.title,
            "price": amt(ln.unit_price), "price_set": _rest_set(ln.unit_price, cur), "product_exists": True,
            "product_id": numeric_id("product", ln.sku), "properties": [], "quantity": qty,
            "requires_shipping": True, "sku": ln.sku,
            "taxable": True, "title": ln.title, "total_discount": amt(ln.discount),
            "total_discount_set": _rest_set(ln.discount, cur), "variant_id": numeric_id("variant", ln.sku),
            "variant_title": None, "variant_inventory_management": "shopify",
            "discount_allocations": [{"amount": amt(ln.discount), "amount_set": _rest_set(ln.discount, cur),
                                      "discount_application_index": 0}] if ln.discount else [],
            "vendor": None,
            "tax_lines": [{"price": amt(ln.tax), "rate": None, "title": "Tax", "price_set": _rest_set(ln.tax, cur)}]
            if ln.tax else [],
        })
    customer: dict[str, Any] | None = None
    if o.channel_customer_id:
        first, last = _split_name(o.buyer_name)
        cid = int(o.channel_customer_id) if o.channel_customer_id.isdigit() else o.channel_customer_id
        customer = {"id": cid, "email": o.email, "accepts_marketing": False, "created_at": rest_time(o.created_at),
                    "updated_at": rest_time(o.created_at), "first_name": first, "last_name": last,
                    "state": "enabled", "note": None, "verified_email": True, "multipass_identifier": None,
                    "tax_exempt": False, "phone": o.phone, "tags": ", ".join(view.customer_tags), "currency": cur,
                    "tax_exemptions": [],
                    "admin_graphql_api_id": _gid("Customer", o.channel_customer_id),
                    "default_address": {"id": numeric_id(o.channel_customer_id, "address"), "customer_id": cid,
                                        **(_address_rest(o.ship_to, o.phone) or {}), "default": True}
                    if o.ship_to else None}
    refunds = [_refund_rest(rid, at, amount, order_id, cur) for rid, at, amount in view.refunds]
    fulfillments = [{
        "id": f.id, "order_id": order_id, "status": "success", "created_at": rest_time(f.at),
        "updated_at": rest_time(f.at), "service": "manual", "tracking_company": f.carrier if f.number else None,
        "tracking_number": f.number, "tracking_numbers": [f.number] if f.number else [], "tracking_url": f.url,
        "tracking_urls": [f.url] if f.url else [], "name": f.name, "line_items": [],
    } for f in view.fulfillments]
    number_digits = re.sub(r"\D", "", o.order_number or "")
    token = hashlib.sha256(f"token:{o.external_id}".encode()).hexdigest()[:32]
    return {
        "id": order_id, "admin_graphql_api_id": _gid("Order", ext), "email": o.email, "contact_email": o.email,
        "closed_at": None, "created_at": created, "updated_at": rest_time(view.version.at), "processed_at": created,
        "number": int(number_digits) - 1000 if number_digits else None, "note": None, "test": False,
        "total_price": total if isinstance(total, str) else amt(total),
        "subtotal_price": amt(o.subtotal - view.discount), "total_weight": 0, "total_tax": amt(o.tax),
        "taxes_included": False, "currency": cur, "financial_status": view.financial.lower(), "confirmed": True,
        "total_discounts": amt(view.discount), "total_line_items_price": amt(o.subtotal), "name": o.order_number,
        "cancelled_at": rest_time(view.cancelled_at) if view.cancelled_at else None,
        "cancel_reason": "customer" if view.cancelled_at else None, "phone": o.phone,
        "order_number": int(number_digits) if number_digits else None, "tags": ", ".join(view.tags),
        "source_name": view.source_name, "presentment_currency": cur,
        "token": token, "cart_token": None, "checkout_token": None, "checkout_id": None, "gateway": "manual",
        "payment_gateway_names": ["manual"], "processing_method": "manual", "browser_ip": None,
        "buyer_accepts_marketing": False, "client_details": None, "customer_locale": "en", "device_id": None,
        "app_id": None, "landing_site": None, "landing_site_ref": None, "referring_site": None, "reference": None,
        "source_identifier": None, "source_url": None, "location_id": None, "user_id": None,
        "order_status_url": f"https://{view.shop}/{numeric_id(view.shop)}/orders/{token}/authenticate",
        "discount_codes": [{"code": "SAVE", "amount": amt(o.order_discount), "type": "fixed_amount"}]
        if o.order_discount else [],
        "tax_lines": [{"price": amt(o.tax), "rate": None, "title": "Tax", "price_set": _rest_set(o.tax, cur)}]
        if o.tax else [],
        "fulfillment_status": _REST_FULFILLMENT.get(view.fulfillment),
        "note_attributes": [{"name": k, "value": v} for k, v in view.attributes],
        "total_line_items_price_set": _rest_set(o.subtotal, cur),
        "total_discounts_set": _rest_set(view.discount, cur),
        "total_shipping_price_set": _rest_set(o.shipping, cur),
        "subtotal_price_set": _rest_set(o.subtotal - view.discount, cur),
        "total_price_set": _rest_set(total, cur), "total_tax_set": _rest_set(o.tax, cur),
        "line_items": line_items,
        "shipping_lines": [{"code": "Standard", "price": amt(o.shipping), "price_set": _rest_set(o.shipping, cur),
                            "source": "shopify", "title": "Standard"}],
        "billing_address": _address_rest(o.ship_to, o.phone, o.buyer_name), "shipping_address": _address_rest(o.ship_to, o.phone),
        "customer": customer, "refunds": refunds, "fulfillments": fulfillments,
    }


# -- search syntax, sort keys and cursors -----------------------------------------------------------------
_TERM = re.compile(r"^(?P<field>\w+):(?P<op>>=|<=|>|<)?(?P<value>'[^']*'|\"[^\"]*\"|\S+)$")
_TIME_FIELDS = {"updated_at", "created_at", "processed_at"}
_OPS: dict[str, Callable[[datetime, datetime], bool]] = {
    ">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
    "": lambda a, b: a == b}


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip("'\""))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_search(query: str | None) -> tuple[list[tuple[str, str, datetime]], list[dict[str, str]]]:
    """Shopify search syntax, the subset the sandbox knows: ``updated_at:>='…' AND created_at:<'…'``.

    Returns:
        The time filters and Shopify-style warnings for terms that were ignored.
    """
    filters: list[tuple[str, str, datetime]] = []
    warnings: list[dict[str, str]] = []
    for term in re.split(r"\s+AND\s+", (query or "").strip(), flags=re.IGNORECASE):
        if not term:
            continue
        match = _TERM.match(term.strip())
        if not match or match["field"] not in _TIME_FIELDS:
            warnings.append({"field": match["field"] if match else term, "message": "Unsupported by the sandbox; ignored."})
            continue
        when = _parse_time(match["value"])
        if when is None:
            warnings.append({"field": match["field"], "message": "Invalid value."})
            continue
        filters.append((match["field"], match["op"] or "", when))
    return filters, warnings


def _encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {token}") from None
    if not isinstance(data, dict):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {token}")
    return data


def _id_key(external_id: str) -> tuple[int, int, str]:
    return (0, int(external_id), "") if external_id.isdigit() else (1, 0, external_id)


# -- cost ------------------------------------------------------------------------------------------------
def _fields(selection: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]) -> Iterable[FieldNode]:
    for node in selection.selections if selection else ():
        if isinstance(node, FieldNode):
            yield node
        elif isinstance(node, InlineFragmentNode):
            yield from _fields(node.selection_set, fragments)
        elif isinstance(node, FragmentSpreadNode) and node.name.value in fragments:
            yield from _fields(fragments[node.name.value].selection_set, fragments)


def _page_arg(field: FieldNode, variables: dict[str, Any]) -> int | None:
    for arg in field.arguments or ():
        if arg.name.value in ("first", "last"):
            value = value_from_ast_untyped(arg.value, variables)
            if isinstance(value, int):
                return value
    return None


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> list[str]:
    """The names of an operation's root fields (``orders``, ``node``, ``tagsAdd``...), aliases resolved."""
    return [f.name.value for f in _fields(operation.selection_set, _fragments(document))
            if not f.name.value.startswith("__")]


def query_cost(document: Any, operation: OperationDefinitionNode, variables: dict[str, Any]) -> int:
    """The requested cost (see ``COST_DIVISOR``): objects 1, connections 2 + sized objects / 10; a mutation 10
    per mutation field, whatever it selects (bulkOperationRunQuery too: the bulk query itself is not billed)."""
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * max(1, len(root_fields(document, operation)))
    fragments = _fragments(document)

    def sized(selection: SelectionSetNode | None) -> int:
        total = 0
        for field in _fields(selection, fragments):
            size = _page_arg(field, variables)
            total += size * (1 + sized(field.selection_set)) if size is not None else sized(field.selection_set)
        return total

    def cost(selection: SelectionSetNode | None) -> int:
        total = 0
        for field in _fields(selection, fragments):
            if field.name.value.startswith("__") or field.selection_set is None:
                continue
            size = _page_arg(field, variables)
            if size is not None:
                total += 2 + math.ceil(size * (1 + sized(field.selection_set)) / COST_DIVISOR)
            else:
                total += 1 + cost(field.selection_set)
        return total

    return max(1, cost(operation.selection_set))


def actual_cost(data: Any) -> int:
    """What a query really cost: the same rule counted on the objects returned."""

    def objects(value: Any) -> int:
        if isinstance(value, list):
            return sum(1 + objects(v) if isinstance(v, dict) else 0 for v in value)
        if isinstance(value, dict):
            return sum(objects(v) for k, v in value.items() if k != "edges" or "nodes" not in value)
        return 0

    total = 0
    for value in (data or {}).values():
        if isinstance(value, dict) and ("edges" in value or "nodes" in value):
            total += 2 + math.ceil(objects(value) / COST_DIVISOR)
        elif isinstance(value, dict):
            total += 1
    return max(1, total)


class CostBucket(ServerBucket):
    """The per-shop leaky bucket of query cost: take the requested cost, refund what was not used."""

    def give_back(self, points: float) -> None:
        """Refund points (requested minus actual cost)."""
        with self._lock:
            self._tokens = min(self.burst, self._tokens + max(points, 0.0))

    def drain(self) -> None:
        """Empty the bucket (the ``throttled`` fault)."""
        with self._lock:
            self._tokens = 0.0

    def status(self) -> dict[str, float]:
        """``throttleStatus`` as Shopify reports it."""
        return {"maximumAvailable": self.burst, "currentlyAvailable": float(math.floor(self.available())),
                "restoreRate": self.rate}


# -- bulk queries: Shopify's checks and the JSON Lines result ---------------------------------------------
def _merged(selections: Iterable[SelectionSetNode | None], fragments: dict[str, FragmentDefinitionNode]
            ) -> dict[str, list[FieldNode]]:
    """The fields of selection sets by response key (alias or name), as GraphQL merges them."""
    out: dict[str, list[FieldNode]] = {}
    for selection in selections:
        for node in _fields(selection, fragments):
            out.setdefault(node.alias.value if node.alias else node.name.value, []).append(node)
    return out


def _children(nodes: list[FieldNode]) -> list[SelectionSetNode | None]:
    return [n.selection_set for n in nodes]


def _is_connection(named: Any) -> TypeGuard[GraphQLObjectType]:
    return isinstance(named, GraphQLObjectType) and named.name.endswith("Connection") and "edges" in named.fields


def _field_type(parent: Any, name: str) -> Any:
    """The named type of ``parent.name`` (None for ``__typename`` and fields the parent lacks)."""
    fields = getattr(parent, "fields", None)
    definition = fields.get(name) if fields else None
    return get_named_type(definition.type) if definition is not None else None


@dataclass
class _Connection:
    """Where a connection's nodes sit in its value (``edges``/``node`` or ``nodes``, by response key) and what
    the query selects on them."""

    node_type: GraphQLObjectType
    path: tuple[str, ...] | None
    selections: list[SelectionSetNode | None]

    @classmethod
    def of(cls, nodes: list[FieldNode], connection: GraphQLObjectType,
           fragments: dict[str, FragmentDefinitionNode]) -> _Connection:
        path: tuple[str, ...] | None = None
        selections: list[SelectionSetNode | None] = []
        for key, inner in _merged(_children(nodes), fragments).items():
            if inner[0].name.value == "edges":
                for node_key, node in _merged(_children(inner), fragments).items():
                    if node[0].name.value == "node":
                        path = path or (key, node_key)
                        selections += _children(node)
            elif inner[0].name.value == "nodes":
                path = path or (key,)
                selections += _children(inner)
        return cls(get_named_type(connection.fields["nodes"].type), path, selections)

    def items(self, value: Any) -> list[dict[str, Any]]:
        """The node objects of the connection's value."""
        if not isinstance(value, dict) or self.path is None:
            return []
        items = value.get(self.path[0]) or []
        if len(self.path) == 2:
            items = [edge.get(self.path[1]) for edge in items if isinstance(edge, dict)]
        return [item for item in items if isinstance(item, dict)]


def check_bulk_query(query: str) -> tuple[DocumentNode | None, list[str]]:
    """Parse and check a bulk query as ``bulkOperationRunQuery`` does.

    Returns:
        The parsed document, and the problems (each a userError message; none when the query may run).
    """
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, [exc.message]
    errors = validate(SCHEMA, document)
    if errors:
        return None, [e.message for e in errors]
    operation = get_operation_ast(document)
    if operation is None:
        return None, ["The bulk query must hold exactly one operation."]
    if operation.operation != OperationType.QUERY:
        return None, ["Bulk queries run queries only; bulkOperationRunMutation runs mutations."]
    if operation.variable_definitions:
        return None, ["Bulk queries take no variables: write the values into the query."]
    return document, _bulk_shape_problems(document, operation)


def _bulk_shape_problems(document: DocumentNode, operation: OperationDefinitionNode) -> list[str]:
    """Shopify's operation restrictions: connections at the top (not ``node``/``nodes``), at most five
    connections nested at most two deep, and an unaliased ``id`` on the parent of a nested connection."""
    fragments = _fragments(document)
    problems: list[str] = []
    count = 0

    def visit(selections: list[SelectionSetNode | None], parent: Any, depth: int) -> None:
        nonlocal count
        fields = _merged(selections, fragments)
        nested = []
        for nodes in fields.values():
            named = _field_type(parent, nodes[0].name.value)
            if _is_connection(named):
                count += 1
                nested.append(nodes[0].name.value)
                if depth + 1 > BULK_MAX_DEPTH:
                    problems.append(f"Bulk queries cannot contain connections with a nesting depth greater than "
                                    f"{BULK_MAX_DEPTH}: {nodes[0].name.value}.")
                shape = _Connection.of(nodes, named, fragments)
                visit(shape.selections, shape.node_type, depth + 1)
            elif named is not None and getattr(named, "fields", None) is not None:
                visit(_children(nodes), named, depth)
        has_id = any(n.name.value == "id" and n.alias is None for ns in fields.values() for n in ns)
        if depth >= 1 and nested and not has_id:
            problems.append("The parent 'node' field for a nested connection must select the 'id' field without an "
                            f"alias and must be of 'ID' return type. Connection fields without 'id': {', '.join(nested)}.")

    for nodes in _merged([operation.selection_set], fragments).values():
        name = nodes[0].name.value
        named = _field_type(SCHEMA.query_type, name)
        if name in ("node", "nodes"):
            problems.append(f"The top-level {name} field can't be used in bulk queries.")
        elif named is not None and not _is_connection(named):
            problems.append(f"Bulk queries take connection fields at the top level; {name} is not one.")
        elif named is not None:
            count += 1
            shape = _Connection.of(nodes, named, fragments)
            visit(shape.selections, shape.node_type, 1)
    if count == 0:
        problems.append("Bulk queries must contain at least one connection.")
    elif count > BULK_MAX_CONNECTIONS:
        problems.append(f"Bulk queries cannot contain more than {BULK_MAX_CONNECTIONS} connections.")
    return problems


def bulk_lines(document: DocumentNode, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Flatten a bulk query's result to Shopify's JSONL objects: one per node of a connection, with its scalar
    fields, objects and plain lists; the nodes of a nested connection follow their parent as objects of their own
    that end with ``"__parentId"``."""
    operation = get_operation_ast(document)
    if operation is None:
        return []
    fragments = _fragments(document)
    lines: list[dict[str, Any]] = []
    for key, nodes in _merged([operation.selection_set], fragments).items():
        named = _field_type(SCHEMA.query_type, nodes[0].name.value)
        if _is_connection(named):
            _emit_connection(data.get(key), _Connection.of(nodes, named, fragments), None, lines, fragments)
    return lines


def _emit_connection(value: Any, shape: _Connection, parent_id: str | None, lines: list[dict[str, Any]],
                     fragments: dict[str, FragmentDefinitionNode]) -> None:
    fields = _merged(shape.selections, fragments)
    for item in shape.items(value):
        line: dict[str, Any] = {}
        nested: list[tuple[Any, _Connection]] = []
        for key, field_value in item.items():
            nodes = fields.get(key)
            named = _field_type(shape.node_type, nodes[0].name.value) if nodes else None
            if nodes and _is_connection(named):
                nested.append((field_value, _Connection.of(nodes, named, fragments)))
            else:
                line[key] = field_value
        if parent_id is not None:
            line["__parentId"] = parent_id
        lines.append(line)
        for field_value, inner in nested:
            _emit_connection(field_value, inner, item.get("id"), lines, fragments)


def jsonl_line(obj: dict[str, Any]) -> str:
    """One JSON Lines object as Shopify writes it: compact UTF-8 with ``/`` escaped (``"gid:\\/\\/shopify\\/..."``)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")


@dataclass(frozen=True)
class BulkResult:
    """A JSONL file of a bulk operation: its bytes, its objects, and the objects at the root (orders)."""

    body: bytes
    objects: int
    roots: int

    @classmethod
    def of(cls, lines: list[dict[str, Any]]) -> BulkResult:
        """The file of these objects."""
        body = "".join(jsonl_line(line) + "\n" for line in lines).encode()
        return cls(body, len(lines), sum(1 for line in lines if "__parentId" not in line))


@dataclass
class BulkRecord:
    """One bulk query operation and how far it has got.

    Attributes:
        number: the id's number (``gid://shopify/BulkOperation/{number}``).
        created: the emulator clock at ``bulkOperationRunQuery``; the query sees the shop as of then.
        submitted: ``time.monotonic()`` then (the operation runs on wall-clock time, like the rate limits).
        fault: the bulk fault it was started under (``bulk_failed``, ``bulk_expired``, ``bulk_slow``), or None.
        built: set once the result is built (in a background thread), or the build failed (``build_error``).
        ended: when it reached a terminal status; completed: when it COMPLETED.
    """

    number: int
    shop: str
    query: str
    document: DocumentNode
    scopes: frozenset[str]
    created: datetime
    submitted: float
    fault: str | None = None
    slow_polls: int = BULK_SLOW_POLLS
    status: str = "CREATED"
    error_code: str | None = None
    ended: datetime | None = None
    completed: datetime | None = None
    result: BulkResult | None = None
    partial: BulkResult | None = None
    build_error: str | None = None
    built: threading.Event = dataclass_field(default_factory=threading.Event)

    @property
    def gid(self) -> str:
        """The operation's global id."""
        return f"gid://shopify/BulkOperation/{self.number}"

    def counts(self, progress: float) -> tuple[int, int]:
        """``objectCount`` and ``rootObjectCount`` now (running totals while RUNNING)."""
        if self.status in ("COMPLETED", "EXPIRED") and self.result:
            return self.result.objects, self.result.roots
        if self.status == "FAILED" and self.partial:
            return self.partial.objects, self.partial.roots
        if self.status == "RUNNING" and self.result:
            return int(self.result.objects * progress), int(self.result.roots * progress)
        return 0, 0


def _split_gid(gid: str) -> tuple[str, str]:
    """``("Order", "5000000001")`` of ``gid://shopify/Order/5000000001``.

    Raises:
        GraphQLError: not a Shopify global id (Shopify's own message).
    """
    match = re.fullmatch(r"gid://shopify/(\w+)/([^/?]+)(?:\?.*)?", gid)
    if not match:
        raise GraphQLError(f"Invalid global id '{gid}'", extensions={"code": "argumentLiteralsIncompatible"})
    return match[1], match[2]


def _tag_list(tags: Iterable[str]) -> list[str]:
    """Tags as Shopify reads them: a list, each item possibly a comma-separated string; trimmed, no blanks."""
    return [t.strip() for item in tags for t in item.split(",") if t.strip()]


def _scope_text(scopes: Iterable[str]) -> str:
    """Scopes as the token endpoint lists them: the usual ones in their usual order, then the rest sorted."""
    held = set(scopes)
    return ",".join([s for s in DEFAULT_SCOPES if s in held] + sorted(held - set(DEFAULT_SCOPES)))


def _xml_error(status: int, code: str, message: str) -> Response:
    """A Cloud Storage error, as a signed bulk-result URL answers."""
    body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return Response(status, body.encode(), {"Content-Type": "application/xml; charset=UTF-8"})


@dataclass(frozen=True)
class _Grant:
    """An access token from the client-credentials grant."""

    shop: str
    expires: datetime
    scopes: frozenset[str]


# -- the emulator ---------------------------------------------------------------------------------------
class _Root:
    """QueryRoot and Mutation resolvers for one caller (shop and scopes) at one instant."""

    def __init__(self, emulator: ShopifyEmulator, shop: str, scopes: frozenset[str], *,
                 now: datetime | None = None, path: str = "") -> None:
        self.emu, self.domain, self.scopes, self.path = emulator, shop, scopes, path
        self.store_key, _, self.currency = emulator.shops[shop]
        self.now = now or emulator.now()
        self.search: list[dict[str, Any]] = []  # Shopify's search warnings (``extensions.search``)

    def _require(self, scope: str, field_name: str) -> None:
        if scope not in self.scopes:
            raise GraphQLError(f"Access denied for {field_name} field. Required access: `{scope}` access scope.",
                               extensions={"code": "ACCESS_DENIED", "documentation": ACCESS_SCOPES_DOC,
                                           "requiredAccess": f"`{scope}` access scope."})

    # -- queries (graphql-core's default resolver calls these by Shopify's field names) -------------------
    def orders(self, info: Any, first: int | None = None, after: str | None = None, last: int | None = None,
               before: str | None = None, reverse: bool = False, sortKey: str = "ID", query: str | None = None,
               ) -> dict[str, Any]:
        self._require("read_orders", "orders")
        bulk = _in_bulk(info)
        if bulk:
            first, after, last, before = None, None, None, None
        elif first is None and last is None:
            raise GraphQLError("you must provide one of first or last")
        size = first if first is not None else last
        if not bulk and (size is None or size < 0 or size > MAX_PAGE):
            raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE} (got {size}).")
        filters, warnings = parse_search(query)
        if warnings:
            self.search.append({"path": ["orders"], "query": query, "warnings": warnings})
        rows = self.emu.readable(self.store_key, self.now, self.scopes)
        rows = [(o, v) for o, v in rows if all(_OPS[op](self._field(o, v, f), when) for f, op, when in filters)]
        rows.sort(key=lambda r: self._key(r, sortKey), reverse=reverse)
        if after is not None:
            mark = self._mark(_decode(after))
            rows = [r for r in rows if (self._key(r, sortKey) < mark if reverse else self._key(r, sortKey) > mark)]
        if before is not None:
            mark = self._mark(_decode(before))
            rows = [r for r in rows if (self._key(r, sortKey) > mark if reverse else self._key(r, sortKey) < mark)]
        if bulk:
            page = rows
        else:
            page = rows[:first] if first is not None else rows[len(rows) - size:] if size else []
        edges = [{"cursor": self._cursor(r, sortKey), "node": render_graphql(self.emu.view(*r, self.domain))}
                 for r in page]
        return {"edges": edges, "nodes": [e["node"] for e in edges], "pageInfo": {
            "hasNextPage": first is not None and len(rows) > len(page),
            "hasPreviousPage": (last is not None and len(rows) > len(page)) or (first is not None and after is not None),
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None}}

    def order(self, _info: Any, id: str) -> dict[str, Any] | None:  # Shopify names the argument `id`
        self._require("read_orders", "order")
        ext = id.rsplit("/", 1)[-1]
        for o, v in self.emu.readable(self.store_key, self.now, self.scopes):
            if o.external_id == ext:
                return {**render_graphql(self.emu.view(o, v, self.domain)), "__typename": "Order"}
        return None

    def customer(self, _info: Any, id: str) -> dict[str, Any] | None:
        self._require("read_customers", "customer")
        kind, ext = _split_gid(id)
        return self.emu.customer(self.domain, ext, self.now) if kind == "Customer" else None

    def node(self, info: Any, id: str) -> dict[str, Any] | None:
        kind, ext = _split_gid(id)
        if kind == "BulkOperation":
            record = self.emu.bulk_operations.get(int(ext)) if ext.isdigit() else None
            return self.emu.bulk_json(record) if record is not None and record.shop == self.domain else None
        if kind == "Order":
            return self.order(info, id)
        if kind == "Customer":
            return self.customer(info, id)
        return None

    def shop(self, _info: Any) -> dict[str, Any]:
        return {"id": _gid("Shop", numeric_id(self.domain)), "name": self.store_key, "myshopifyDomain": self.domain,
                "currencyCode": self.currency, "ianaTimezone": "Etc/UTC"}

    def currentAppInstallation(self, _info: Any) -> dict[str, Any]:
        scopes = _scope_text(self.scopes).split(",") if self.scopes else []
        return {"id": _gid("AppInstallation", numeric_id(self.domain, "app")),
                "accessScopes": [{"handle": s, "description": SCOPE_DESCRIPTIONS.get(s, s)} for s in scopes]}

    def currentBulkOperation(self, _info: Any, type: str = "QUERY") -> dict[str, Any] | None:
        record = self.emu.current_bulk(self.domain) if type == "QUERY" else None
        return self.emu.bulk_json(record) if record is not None else None

    # -- mutations -----------------------------------------------------------------------------------------
    def bulkOperationRunQuery(self, _info: Any, query: str, groupObjects: bool = False) -> dict[str, Any]:
        # groupObjects changes nothing here: child lines always follow their parent.
        return self.emu.start_bulk(self.domain, query, self.scopes, self.path)

    def bulkOperationCancel(self, _info: Any, id: str) -> dict[str, Any]:
        return self.emu.cancel_bulk(self.domain, id)

    def tagsAdd(self, _info: Any, id: str, tags: list[str]) -> dict[str, Any]:
        self._require("write_customers", "tagsAdd")
        return self.emu.change_tags(self.domain, id, tags, add=True, now=self.now)

    def tagsRemove(self, _info: Any, id: str, tags: list[str]) -> dict[str, Any]:
        self._require("write_customers", "tagsRemove")
        return self.emu.change_tags(self.domain, id, tags, add=False, now=self.now)

    # -- sort keys and cursors -----------------------------------------------------------------------------
    @staticmethod
    def _field(order: Order, version: Version, name: str) -> datetime:
        return version.at if name == "updated_at" else order.created_at

    @staticmethod
    def _value(row: tuple[Order, Version], sort_key: str) -> datetime | None:
        order, version = row
        return {"UPDATED_AT": version.at, "CREATED_AT": order.created_at,
                "PROCESSED_AT": order.created_at}.get(sort_key)

    def _key(self, row: tuple[Order, Version], sort_key: str) -> tuple[Any, ...]:
        value = self._value(row, sort_key)
        return (value.timestamp() if value else 0.0, _id_key(row[0].external_id))

    def _cursor(self, row: tuple[Order, Version], sort_key: str) -> str:
        value = self._value(row, sort_key)
        return _encode({"last_id": row[0].external_id, "last_value": value.isoformat() if value else None})

    @staticmethod
    def _mark(data: dict[str, Any]) -> tuple[Any, ...]:
        value = data.get("last_value")
        when = _parse_time(value) if isinstance(value, str) else None
        return (when.timestamp() if when else 0.0, _id_key(str(data.get("last_id", ""))))


class ShopifyEmulator(Emulator):
    """Shopify Admin API for many shops on one port; the shop is chosen by the ``Host`` header, as Shopify does.

    Routes (names as counted in ``requests``): ``POST /admin/api/{version}/graphql.json`` (``graphql``: orders,
    order, customer, node, shop, currentAppInstallation, currentBulkOperation; mutations bulkOperationRunQuery,
    bulkOperationCancel, tagsAdd, tagsRemove), ``GET /admin/api/{version}/orders.json`` (``rest_orders``), ``GET
    /admin/api/{version}/orders/{id}.json`` (``rest_order``), ``POST /admin/oauth/access_token`` (``access_token``,
    the client-credentials grant) and ``GET /_bulk/{id}.jsonl`` (``bulkDownload``, a bulk result behind a signed
    URL, no token). ``operations`` counts GraphQL calls by root field (``orders``, ``node``, ``tagsAdd``...);
    ``webhooks`` (:class:`WebhookSender`) sends the shops' webhooks; ``bulk_operations`` holds every bulk operation.

    Faults beyond the generic ones: ``throttled`` (the next GraphQL call finds the bucket empty), ``expired_token``
    (401), ``duplicate_page`` (the next GraphQL call is answered with the previous call's ``$after``, so the
    previous page comes again). Taken by ``bulkOperationRunQuery`` (path: the GraphQL path): ``bulk_failed`` (the
    operation ends FAILED with errorCode INTERNAL_SERVER_ERROR and a ``partialDataUrl`` of the first half of its
    lines), ``bulk_expired`` (it ends EXPIRED, no url), ``bulk_slow`` (it stays RUNNING for 5 more polls). On the
    download (path ``/_bulk/{id}.jsonl``): ``truncate_bulk`` (the first half of the bytes). Webhook faults: see
    :class:`WebhookSender`.

    Args:
        source: the order source (``orders_for(store_key)``, ``by_truth_id(truth_id)``).
        shops: ``{"acme.myshopify.com": (store_key, access_token, shop_currency)}``; the stored token never expires.
        speed: rate-limit speed-up (1.0 = Shopify's Standard-plan budgets); bulk operations run as much faster.
        now: the clock (the sandbox clock by default): visibility, token and URL expiry.
        apps: shop -> ``(client_id, client_secret)`` of the app accepted by the client-credentials grant.
        scopes: shop -> the access scopes of its tokens (stored and granted); default ``DEFAULT_SCOPES``.
        token_seconds: lifetime of a granted token on the emulator clock.
        bulk_seconds: wall-clock seconds (divided by ``speed``) from CREATED to the end of a bulk operation;
            RUNNING after the first quarter.
        public_url: the base of bulk result URLs (this server's address); None = ``https://{shop}``, the shop's
            own origin, which a client with a sandbox endpoint maps to it as it does for the API.
    """

    name = "shopify"

    def __init__(self, source: Any, *, shops: dict[str, tuple[str, str, str]], speed: float = 1.0,
                 now: Callable[[], datetime] = clock.now, apps: dict[str, tuple[str, str]] | None = None,
                 scopes: dict[str, set[str]] | None = None, token_seconds: int = TOKEN_SECONDS,
                 bulk_seconds: float = 30.0, public_url: str | None = None) -> None:
        super().__init__(speed=speed, now=now)
        self.source = source
        self.shops = dict(shops)
        self.apps = dict(apps or {})
        self.scopes = {shop: frozenset(held) for shop, held in (scopes or {}).items()}
        self.token_seconds = token_seconds
        self.bulk_seconds = bulk_seconds
        self.public_url = public_url
        self.operations: dict[str, int] = {}
        self.cost_buckets = {shop: CostBucket(RESTORE_RATE, BUCKET_SIZE, speed) for shop in self.shops}
        self.rest_buckets = {shop: ServerBucket(REST_LEAK, REST_BUCKET, speed) for shop in self.shops}
        self.bulk_operations: dict[int, BulkRecord] = {}
        self.webhooks = WebhookSender(self)
        self._previous_after: dict[str, Any] = {}
        self._page_lock = threading.Lock()
        self._grants: dict[str, _Grant] = {}
        self._current_bulk: dict[str, BulkRecord] = {}
        self._bulk_lock = threading.Lock()
        self._url_key = secrets.token_bytes(16)  # signs bulk result URLs
        self._tags: dict[str, dict[str, set[str]]] = {}
        self._tags_lock = threading.Lock()
        version = r"/admin/api/(?P<version>\d{4}-\d{2}|unstable)"
        self.route("POST", version + r"/graphql\.json", self.graphql, "graphql")
        self.route("GET", version + r"/orders\.json", self.rest_orders, "rest_orders")
        self.route("GET", version + r"/orders/(?P<id>\d+)\.json", self.rest_order, "rest_order")
        self.route("POST", r"/admin/oauth/access_token(?:\.json)?", self.access_token, "access_token")
        self.route("GET", r"/_bulk/(?P<name>\d+(?:-partial)?)\.jsonl", self.bulk_download, "bulkDownload")

    # -- the data --------------------------------------------------------------------------------------
    def visible(self, store_key: str, now: datetime) -> list[tuple[Order, Version]]:
        """Every order of a store that exists at ``now``, with its current version."""
        out = []
        for order in self.source.orders_for(store_key):
            if order.created_at > now:
                break  # orders_for is sorted by created_at
            version = order.version_at(now)
            if version is not None:
                out.append((order, version))
        return out

    def readable(self, store_key: str, now: datetime, scopes: frozenset[str]) -> list[tuple[Order, Version]]:
        """The visible orders a token with ``scopes`` may read: without read_all_orders, the last 60 days'."""
        rows = self.visible(store_key, now)
        if "read_all_orders" in scopes:
            return rows
        cutoff = now - RECENT_ORDERS
        return [(o, v) for o, v in rows if o.created_at >= cutoff]

    def view(self, order: Order, version: Version, shop: str) -> OrderView:
        """The order at a version as ``shop`` shows it, with the Amazon id of a mirrored order resolved."""
        amazon_id = (self.source.by_truth_id(order.mirror_of).external_id
                     if order.mirror_of and carries_reference(order.mirror_of) else None)
        tags = self.customer_tags(shop, order.channel_customer_id) if order.channel_customer_id else set()
        return OrderView(order, version, self.shops[shop][2], amazon_id, shop, tags)

    # -- auth ------------------------------------------------------------------------------------------
    @staticmethod
    def _host(req: Request) -> str:
        return (req.headers.get("host") or "").split(":", 1)[0].lower()

    def scopes_of(self, shop: str) -> frozenset[str]:
        """The access scopes of the shop's tokens."""
        return self.scopes.get(shop, frozenset(DEFAULT_SCOPES))

    def _authorize(self, req: Request) -> tuple[str, frozenset[str]] | Response:
        """The shop and scopes of an Admin API call, or its 404/401."""
        shop = self._host(req)
        if shop not in self.shops:
            return Response.json({"errors": "Not Found"}, 404)
        token = req.headers.get("x-shopify-access-token") or ""
        if token == self.shops[shop][1]:
            scopes = self.scopes_of(shop)
        else:
            grant = self._grants.get(token)
            if grant is None or grant.shop != shop or self.now() >= grant.expires:
                return Response.json({"errors": INVALID_TOKEN}, 401)
            scopes = grant.scopes
        if self.faults.take(req.path, {"expired_token"}):
            return Response.json({"errors": INVALID_TOKEN}, 401)
        return shop, scopes

    def access_token(self, req: Request, _match: re.Match[str]) -> Response:
        """POST /admin/oauth/access_token: the client-credentials grant (form or JSON body)."""
        shop = self._host(req)
        if shop not in self.shops:
            return Response.json({"errors": "Not Found"}, 404)
        form = self._form(req)
        if form.get("grant_type") != "client_credentials":
            return Response.json({"error": "unsupported_grant_type",
                                  "error_description": "The authorization grant type is not supported by the "
                                                       "authorization server."}, 400)
        app = self.apps.get(shop)
        given = (str(form.get("client_id") or ""), str(form.get("client_secret") or ""))
        if app is None or not (hmac.compare_digest(given[0], app[0]) and hmac.compare_digest(given[1], app[1])):
            return Response.json({"error": "invalid_client",
                                  "error_description": "Client authentication failed due to unknown client, no "
                                                       "client authentication included, or unsupported "
                                                       "authentication method."}, 400)
        token = "shpat_" + secrets.token_hex(16)
        scopes = self.scopes_of(shop)
        with self._lock:
            self._grants[token] = _Grant(shop, self.now() + timedelta(seconds=self.token_seconds), scopes)
        return Response.json({"access_token": token, "scope": _scope_text(scopes), "expires_in": self.token_seconds})

    @staticmethod
    def _form(req: Request) -> dict[str, Any]:
        if "json" in req.headers.get("content-type", "") or req.body.lstrip().startswith(b"{"):
            try:
                body = req.json()
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}
        return {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}

    # -- GraphQL ---------------------------------------------------------------------------------------
    def graphql(self, req: Request, _match: re.Match[str]) -> Response:
        """POST graphql.json: parse, validate, cost, throttle, execute."""
        caller = self._authorize(req)
        if isinstance(caller, Response):
            return caller
        shop, scopes = caller
        try:
            payload = req.json()
            document = parse(payload["query"])
        except (ValueError, KeyError, TypeError, GraphQLError) as exc:
            message = exc.message if isinstance(exc, GraphQLError) else "Parameter 'query' is missing or not JSON"
            return Response.json({"errors": [{"message": message}]}, 200 if isinstance(exc, GraphQLError) else 400)
        errors = validate(SCHEMA, document)
        if errors:
            return Response.json({"errors": [e.formatted for e in errors]})
        operation = get_operation_ast(document, payload.get("operationName"))
        if operation is None:
            named = payload.get("operationName")
            message = (f'No operation named "{named}" in the document' if named
                       else "An operationName is required: the document holds several operations")
            return Response.json({"errors": [{"message": message}]})
        self._count(root_fields(document, operation))
        inputs = payload.get("variables") or {}
        values = get_variable_values(SCHEMA, operation.variable_definitions or (), inputs)
        if isinstance(values, list):
            return Response.json({"errors": [e.formatted for e in values]})
        # graphql-core 3.3 wraps the coerced values in VariableValues; 3.2 returns the dict itself
        coerced: dict[str, Any] = dict(values.coerced if hasattr(values, "coerced") else cast(Any, values))
        requested = query_cost(document, operation, coerced)
        bucket = self.cost_buckets[shop]
        if requested > MAX_QUERY_COST:
            return Response.json({"errors": [{
                "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
                           f"({MAX_QUERY_COST}). See {THROTTLE_DOC} for how the cost of a query is calculated. "
                           "To query larger amounts of data with fewer limits, use bulk operations.",
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST}}]})
        if self.faults.take(req.path, {"throttled"}):
            bucket.drain()
        if not bucket.try_take(requested):
            return Response.json({
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": THROTTLE_DOC}}],
                "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                        "throttleStatus": bucket.status()}}})
        variables = self._repeat_page(shop, req.path, coerced)
        root = _Root(self, shop, scopes, path=req.path)
        result = execute_sync(SCHEMA, document, root_value=root, variable_values=variables,
                              operation_name=payload.get("operationName"))
        if operation.operation == OperationType.MUTATION:
            actual = requested  # a mutation costs its 10 points whatever it returns
        else:
            actual = actual_cost(result.data) if result.data else requested
        bucket.give_back(requested - actual)
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        body["data"] = result.data
        cost = {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": bucket.status()}
        extensions: dict[str, Any] = {"cost": cost}
        if root.search:
            extensions["search"] = root.search
        body["extensions"] = extensions
        return Response.json(body)

    def _count(self, fields: list[str]) -> None:
        with self._lock:
            for name in fields:
                self.operations[name] = self.operations.get(name, 0) + 1

    def _repeat_page(self, shop: str, path: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Remember each ``$after``; the ``duplicate_page`` fault answers the previous request's page again."""
        with self._page_lock:
            if self.faults.take(path, {"duplicate_page"}):
                return {**variables, "after": self._previous_after.get(shop)}
            self._previous_after[shop] = variables.get("after")
        return variables

    # -- bulk operations -------------------------------------------------------------------------------
    def start_bulk(self, shop: str, query: str, scopes: frozenset[str], path: str) -> dict[str, Any]:
        """``bulkOperationRunQuery``: check the query, refuse a second one while one runs, start it.

        Returns:
            The ``BulkOperationRunQueryPayload``.
        """
        document, problems = check_bulk_query(query)
        if problems or document is None:
            return {"bulkOperation": None,
                    "userErrors": [{"code": "INVALID", "field": ["query"], "message": m} for m in problems]}
        with self._bulk_lock:
            current = self._current_bulk.get(shop)
            if current is not None:
                self._advance_bulk(current)
                if current.status in BULK_ACTIVE:
                    return {"bulkOperation": None, "userErrors": [{
                        "code": "OPERATION_IN_PROGRESS", "field": None,
                        "message": f"A bulk query operation for this app and shop is already in progress: "
                                   f"{current.gid}."}]}
            fault = self.faults.take(path, BULK_FAULTS)
            record = BulkRecord(len(self.bulk_operations) + 1, shop, query, document, scopes, self.now(),
                                time.monotonic(), fault.kind if fault else None)
            self.bulk_operations[record.number] = record
            self._current_bulk[shop] = record
            snapshot = self._bulk_dict(record)
        threading.Thread(target=self._build_bulk, args=(record,), name=f"shopify-bulk-{record.number}",
                         daemon=True).start()
        return {"bulkOperation": snapshot, "userErrors": []}

    def cancel_bulk(self, shop: str, gid: str) -> dict[str, Any]:
        """``bulkOperationCancel``: a CREATED or RUNNING operation goes CANCELING, then CANCELED.

        Returns:
            The ``BulkOperationCancelPayload``.
        """
        kind, number = _split_gid(gid)
        record = self.bulk_operations.get(int(number)) if kind == "BulkOperation" and number.isdigit() else None
        if record is None or record.shop != shop:
            return {"bulkOperation": None, "userErrors": [{"field": ["id"], "message": "Bulk operation does not exist"}]}
        with self._bulk_lock:
            self._advance_bulk(record)
            errors = []
            if record.status in BULK_ACTIVE:
                record.status = "CANCELING"
            else:
                errors = [{"field": None,
                           "message": f"A bulk operation cannot be canceled when it is {record.status.lower()}"}]
            return {"bulkOperation": self._bulk_dict(record), "userErrors": errors}

    def current_bulk(self, shop: str) -> BulkRecord | None:
        """The shop's latest bulk query operation."""
        return self._current_bulk.get(shop)

    def bulk_json(self, record: BulkRecord) -> dict[str, Any]:
        """The ``BulkOperation`` object now (each look moves the operation along)."""
        with self._bulk_lock:
            self._advance_bulk(record)
            return self._bulk_dict(record)

    def _progress(self, record: BulkRecord) -> float:
        return min(1.0, (time.monotonic() - record.submitted) / max(self.bulk_seconds / self.speed, 1e-9))

    def _advance_bulk(self, record: BulkRecord) -> None:
        """CREATED for the first quarter of ``bulk_seconds / speed``, RUNNING to its end (and until the result is
        built), then its end; a COMPLETED operation EXPIRES with its URL. Called with ``_bulk_lock`` held."""
        if record.status == "COMPLETED" and record.completed and self.now() >= record.completed + BULK_URL_TTL:
            record.status = "EXPIRED"
        if record.status in BULK_TERMINAL:
            return
        if record.status == "CANCELING":
            record.status, record.ended = "CANCELED", self.now()
            return
        progress = self._progress(record)
        if progress < 0.25:
            return
        record.status = "RUNNING"
        if progress < 1.0 or not record.built.is_set():
            return
        if record.fault == "bulk_slow" and record.slow_polls > 0:
            record.slow_polls -= 1
            return
        record.ended = self.now()
        if record.build_error or record.fault == "bulk_failed":
            record.status, record.error_code = "FAILED", record.build_error or "INTERNAL_SERVER_ERROR"
        elif record.fault == "bulk_expired":
            record.status = "EXPIRED"
        else:
            record.status, record.completed = "COMPLETED", record.ended

    def _build_bulk(self, record: BulkRecord) -> None:
        """Run the bulk query over the shop as of ``record.created`` and keep its JSONL (a background thread)."""
        try:
            root = _Root(self, record.shop, record.scopes, now=record.created)
            result = execute_sync(SCHEMA, record.document, root_value=root, context_value=BULK)
            if result.errors:
                codes = {(e.extensions or {}).get("code") for e in result.errors}
                record.build_error = "ACCESS_DENIED" if "ACCESS_DENIED" in codes else "INTERNAL_SERVER_ERROR"
                return
            lines = bulk_lines(record.document, result.data or {})
            record.result = BulkResult.of(lines)
            if record.fault == "bulk_failed":
                record.partial = BulkResult.of(lines[: len(lines) // 2])
        except Exception:
            log.exception("shopify bulk operation %s failed", record.gid)
            record.build_error = "INTERNAL_SERVER_ERROR"
        finally:
            record.built.set()

    def _bulk_dict(self, record: BulkRecord) -> dict[str, Any]:
        objects, roots = record.counts(self._progress(record))
        url = partial_url = file_size = None
        if record.status == "COMPLETED" and record.result and record.result.objects:
            url, file_size = self._bulk_url(record, partial=False), str(len(record.result.body))
        if record.status == "FAILED" and record.partial and record.partial.objects:
            partial_url = self._bulk_url(record, partial=True)
        return {"__typename": "BulkOperation", "id": record.gid, "status": record.status,
                "errorCode": record.error_code, "createdAt": gql_time(record.created),
                "completedAt": gql_time(record.completed) if record.completed else None,
                "objectCount": str(objects), "rootObjectCount": str(roots), "fileSize": file_size, "url": url,
                "partialDataUrl": partial_url, "query": record.query, "type": "QUERY"}

    def _bulk_url(self, record: BulkRecord, *, partial: bool) -> str:
        ended = record.ended or record.completed or self.now()
        expires = int((ended + BULK_URL_TTL).timestamp())
        name = f"{record.number}-partial" if partial else str(record.number)
        base = self.public_url.rstrip("/") if self.public_url else f"https://{record.shop}"
        return f"{base}/_bulk/{name}.jsonl?{urlencode({'Expires': expires, 'Signature': self._sign(name, expires)})}"

    def _sign(self, name: str, expires: int) -> str:
        return hmac.new(self._url_key, f"{name}|{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def bulk_download(self, req: Request, match: re.Match[str]) -> Response:
        """GET /_bulk/{id}.jsonl?Expires=&Signature=: a bulk result (pre-signed: no token, expires in 7 days)."""
        name = match["name"]
        record = self.bulk_operations.get(int(name.split("-", 1)[0]))
        result = None if record is None else record.partial if name.endswith("-partial") else record.result
        if result is None:
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        try:
            expires = int(req.arg("Expires") or "")
        except ValueError:
            return _xml_error(403, "AccessDenied", "Anonymous caller does not have storage.objects.get access.")
        if not hmac.compare_digest(req.arg("Signature") or "", self._sign(name, expires)):
            return _xml_error(403, "SignatureDoesNotMatch",
                              "The request signature we calculated does not match the signature you provided.")
        if self.now().timestamp() > expires:
            return _xml_error(403, "AccessDenied", "Request has expired")
        body = result.body
        if self.faults.take(req.path, {"truncate_bulk"}):
            body = body[: len(body) // 2]
        return Response(200, body, {"Content-Type": JSONL_CONTENT_TYPE})

    # -- customers and their tags ------------------------------------------------------------------------
    def customer_tags(self, shop: str, customer_id: str) -> set[str]:
        """The customer's tags now (empty until tagsAdd: the sandbox's customers start untagged)."""
        with self._tags_lock:
            return set(self._tags.get(shop, {}).get(customer_id, ()))

    def customer(self, shop: str, customer_id: str, now: datetime) -> dict[str, Any] | None:
        """The ``Customer`` with this numeric id, as of their latest order by ``now`` (None if unknown)."""
        latest = None
        for order, _version in self.visible(self.shops[shop][0], now):
            if order.channel_customer_id == customer_id:
                latest = order
        return customer_graphql(latest, self.customer_tags(shop, customer_id)) if latest else None

    def change_tags(self, shop: str, gid: str, tags: list[str], *, add: bool, now: datetime) -> dict[str, Any]:
        """``tagsAdd`` / ``tagsRemove`` on a customer; adding a tag it has or removing one it lacks changes nothing.

        Returns:
            The ``TagsAddPayload`` / ``TagsRemovePayload``.
        """
        kind, customer_id = _split_gid(gid)
        if kind != "Customer":
            return {"node": None, "userErrors": [{"field": ["id"],
                                                  "message": f"The sandbox tags customers only, not {kind}"}]}
        if self.customer(shop, customer_id, now) is None:
            return {"node": None, "userErrors": [{"field": ["id"], "message": "Customer does not exist"}]}
        with self._tags_lock:
            held = self._tags.setdefault(shop, {}).setdefault(customer_id, set())
            if add:
                held.update(_tag_list(tags))
            else:
                held.difference_update(_tag_list(tags))
        return {"node": {"__typename": "Customer", "id": gid}, "userErrors": []}

    # -- REST ------------------------------------------------------------------------------------------
    def _rest_gate(self, req: Request) -> tuple[tuple[str, frozenset[str]] | None, Response | None, dict[str, str]]:
        caller = self._authorize(req)
        if isinstance(caller, Response):
            return None, caller, {}
        shop, scopes = caller
        if "read_orders" not in scopes:
            return None, Response.json({"errors": "[API] This action requires merchant approval for read_orders "
                                                  "scope."}, 403), {}
        bucket = self.rest_buckets[shop]
        if not bucket.try_take():
            wait = f"{2.0 / self.speed:g}"  # Shopify answers Retry-After: 2.0
            return None, Response.json({"errors": "Exceeded 2 calls per second for api client. Reduce request "
                                                  "rates to resume uninterrupted service."}, 429,
                                       {"Retry-After": wait}), {}
        used = math.ceil(bucket.burst - bucket.available())
        return caller, None, {"X-Shopify-Shop-Api-Call-Limit": f"{used}/{int(bucket.burst)}"}

    def rest_orders(self, req: Request, match: re.Match[str]) -> Response:
        """GET orders.json: status/updated_at/created_at/ids/since_id filters, ``Link`` paging with page_info."""
        caller, denied, headers = self._rest_gate(req)
        if denied is not None or caller is None:
            return denied or Response.json({"errors": "Not Found"}, 404)
        shop, scopes = caller
        store_key = self.shops[shop][0]
        try:
            limit = min(int(req.arg("limit") or REST_DEFAULT_LIMIT), REST_MAX_LIMIT)
        except ValueError:
            return Response.json({"errors": {"limit": ["is not a number"]}}, 400)
        token = req.arg("page_info")
        if token:
            try:
                state = _decode(token)
            except GraphQLError:
                return Response.json({"errors": {"page_info": ["Invalid value."]}}, 400)
            params, last = state.get("params", {}), state.get("last")
        else:
            # The other filters may not be combined with page_info; they travel inside it.
            params = {k: v[0] for k, v in req.query.items() if k not in ("limit", "page_info", "fields")}
            last = None
        rows = self._rest_filter(self.readable(store_key, self.now(), scopes), params)
        if rows is None:
            return Response.json({"errors": {"updated_at_min": ["Invalid value."]}}, 400)
        field, _, direction = (params.get("order") or "id asc").partition(" ")
        desc = direction.strip().lower() == "desc"

        def key(row: tuple[Order, Version]) -> tuple[Any, ...]:
            value = {"updated_at": row[1].at, "created_at": row[0].created_at}.get(field)
            return (value.timestamp() if value else 0.0, _id_key(row[0].external_id))

        rows.sort(key=key, reverse=desc)
        if last is not None:
            mark = (float(last[0]), tuple(last[1]))
            rows = [r for r in rows if (key(r) < mark if desc else key(r) > mark)]
        page = rows[:limit]
        body = Response.json({"orders": [render_rest(self.view(o, v, shop)) for o, v in page]}, 200, headers)
        if len(rows) > limit:
            k = key(page[-1])
            nxt = _encode({"params": params, "last": [k[0], list(k[1])]})
            url = f"https://{shop}/admin/api/{match['version']}/orders.json?{urlencode({'limit': limit, 'page_info': nxt})}"
            body.headers["Link"] = f'<{url}>; rel="next"'
        return body

    def rest_order(self, req: Request, match: re.Match[str]) -> Response:
        """GET orders/{id}.json."""
        caller, denied, headers = self._rest_gate(req)
        if denied is not None or caller is None:
            return denied or Response.json({"errors": "Not Found"}, 404)
        shop, scopes = caller
        store_key = self.shops[shop][0]
        for o, v in self.readable(store_key, self.now(), scopes):
            if o.external_id == match["id"]:
                return Response.json({"order": render_rest(self.view(o, v, shop))}, 200, headers)
        return Response.json({"errors": "Not Found"}, 404, headers)

    @staticmethod
    def _rest_filter(rows: list[tuple[Order, Version]], params: dict[str, str]) -> list[tuple[Order, Version]] | None:
        bounds: list[tuple[str, str, datetime]] = []
        for name, op in (("updated_at_min", ">="), ("updated_at_max", "<="), ("created_at_min", ">="),
                         ("created_at_max", "<=")):
            if params.get(name):
                when = _parse_time(params[name])
                if when is None:
                    return None
                bounds.append((name.rsplit("_", 1)[0], op, when))
        status = params.get("status") or "open"  # REST's default is open orders only
        ids = {i for i in (params.get("ids") or "").split(",") if i}
        since_id = params.get("since_id")
        out = []
        for order, version in rows:
            cancelled = version.status == "cancelled"
            if (status == "open" and cancelled) or (status == "cancelled" and not cancelled) or status == "closed":
                continue
            if ids and order.external_id not in ids:
                continue
            if since_id and _id_key(order.external_id) <= _id_key(since_id):
                continue
            values = {"updated_at": version.at, "created_at": order.created_at}
            if all(_OPS[op](values[f], when) for f, op, when in bounds):
                out.append((order, version))
        return out


# -- webhooks ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookEvent:
    """One webhook to send; ``webhook_id`` stays the same on a redelivery, ``event_id`` across an event's topics."""

    topic: str
    payload: dict[str, Any]
    webhook_id: str
    event_id: str
    triggered_at: datetime


def webhook_signature(body: bytes, secret: str) -> str:
    """``X-Shopify-Hmac-Sha256``: base64 of the HMAC-SHA256 of the raw body with the app's client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class WebhookSender:
    """Shopify's webhook deliveries of an emulator's shops, POSTed to subscribed endpoints.

    Topics: ``orders/create``, ``orders/updated``, ``orders/cancelled`` (payload: the REST order) and
    ``refunds/create`` (payload: the REST refund). Faults, from the emulator's plan with path
    ``webhook:{topic}``: ``webhook_forged`` (signed with a wrong secret), ``webhook_redeliver`` (the same delivery
    sent twice: same body, same ``X-Shopify-Webhook-Id``), ``webhook_lost`` (not sent; reported with status 0).

    Args:
        emulator: whose shops, orders and fault plan.
        api_version: ``X-Shopify-API-Version``.
        timeout: seconds per POST (Shopify waits 5 s for an answer).
    """

    def __init__(self, emulator: ShopifyEmulator, *, api_version: str = WEBHOOK_API_VERSION,
                 timeout: float = 5.0) -> None:
        self.emu = emulator
        self.api_version = api_version
        self.timeout = timeout
        self.subscriptions: dict[str, list[tuple[str, str]]] = {}  # shop -> [(url, secret)]

    def subscribe(self, shop: str, url: str, secret: str) -> None:
        """Send every topic of ``shop`` to ``url``, signed with ``secret`` (the app's client secret).

        Raises:
            KeyError: the emulator serves no such shop.
        """
        if shop not in self.emu.shops:
            raise KeyError(f"no shop {shop!r} in the emulator")
        self.subscriptions.setdefault(shop, []).append((url, secret))

    def deliver(self, shop: str, topic: str, payload: dict[str, Any], *, webhook_id: str | None = None,
                event_id: str | None = None, triggered_at: datetime | None = None) -> list[tuple[str, str, int]]:
        """POST one webhook to each subscription of ``shop``.

        Returns:
            ``(topic, webhook_id, status_code)`` per POST (status 0: lost, refused or timed out).
        """
        event = WebhookEvent(topic, payload, webhook_id or str(uuid.uuid4()), event_id or str(uuid.uuid4()),
                             triggered_at or self.emu.now())
        return self._send(shop, event)

    def deliver_changes(self, shop: str, since: datetime, until: datetime) -> list[tuple[str, str, int]]:
        """Send the webhooks of every change of ``shop``'s orders in ``[since, until)``, oldest first."""
        results: list[tuple[str, str, int]] = []
        for event in self.events(shop, since, until):
            results += self._send(shop, event)
        return results

    def events(self, shop: str, since: datetime, until: datetime) -> list[WebhookEvent]:
        """The webhooks of the changes in ``[since, until)``: orders/create for a new order, orders/updated for
        each later version, orders/cancelled when a version cancels, refunds/create when one refunds."""
        out: list[tuple[tuple[Any, ...], WebhookEvent]] = []
        for order in self.emu.source.orders_for(self.emu.shops[shop][0]):
            if order.created_at >= until:
                break  # orders_for is sorted by created_at
            previous: Version | None = None
            for index, version in enumerate(order.versions):
                if version.at >= until:
                    break
                if version.at >= since:
                    for rank, event in enumerate(self._events_of(shop, order, index, version, previous)):
                        out.append(((version.at, _id_key(order.external_id), index, rank), event))
                previous = version
        return [event for _, event in sorted(out, key=lambda pair: pair[0])]

    def _events_of(self, shop: str, order: Order, index: int, version: Version,
                   previous: Version | None) -> list[WebhookEvent]:
        view = self.emu.view(order, version, shop)
        rest = render_rest(view)
        topics: list[tuple[str, dict[str, Any]]] = [("orders/create" if index == 0 else "orders/updated", rest)]
        if version.status == "cancelled" and (previous is None or previous.status != "cancelled"):
            topics.append(("orders/cancelled", rest))
        if version.refunded > (previous.refunded if previous else Decimal(0)) and rest["refunds"]:
            topics.append(("refunds/create", rest["refunds"][-1]))
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://{shop}/orders/{order.external_id}/versions/{index}"))
        return [WebhookEvent(topic, payload, str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://{shop}/orders/"
                                                                                 f"{order.external_id}/versions/{index}/{topic}")),
                             event_id, version.at) for topic, payload in topics]

    def _send(self, shop: str, event: WebhookEvent) -> list[tuple[str, str, int]]:
        body = json.dumps(event.payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        results = []
        for url, secret in self.subscriptions.get(shop, []):
            fault = self.emu.faults.take(f"webhook:{event.topic}", WEBHOOK_FAULTS)
            kind = fault.kind if fault else None
            if kind == "webhook_lost":
                results.append((event.topic, event.webhook_id, 0))
                continue
            signature = webhook_signature(body, secret + "-forged" if kind == "webhook_forged" else secret)
            headers = {"Content-Type": "application/json", "User-Agent": "Shopify-Captain-Hook",
                       "X-Shopify-Topic": event.topic, "X-Shopify-Hmac-Sha256": signature,
                       "X-Shopify-Shop-Domain": shop, "X-Shopify-Webhook-Id": event.webhook_id,
                       "X-Shopify-Event-Id": event.event_id, "X-Shopify-API-Version": self.api_version,
                       "X-Shopify-Triggered-At": event.triggered_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
            for _ in range(2 if kind == "webhook_redeliver" else 1):
                results.append((event.topic, event.webhook_id, self._post(url, body, headers)))
        return results

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            return requests.post(url, data=body, headers=headers, timeout=self.timeout).status_code
        except requests.RequestException as exc:
            log.info("shopify webhook to %s not delivered: %s", url, exc)
            return 0
