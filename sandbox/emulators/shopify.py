"""Shopify Admin API emulator: GraphQL orders on a real GraphQL engine with cost-based throttling, plus REST orders.json."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    get_operation_ast,
    parse,
    validate,
    value_from_ast_untyped,
)
from graphql.execution.values import get_variable_values

from orderhub import clock
from sandbox.emulators.base import Emulator, Request, Response, ServerBucket
from sandbox.model import Address, Order, Version

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
# REST Admin API, Standard plan: a bucket of 40 requests leaking 2 per second.
# https://shopify.dev/docs/api/admin-rest/usage/rate-limits
REST_BUCKET, REST_LEAK = 40.0, 2.0
REST_DEFAULT_LIMIT, REST_MAX_LIMIT = 50, 250  # https://shopify.dev/docs/api/admin-rest/latest/resources/order

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
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


class OrderView:
    """One order at one version, with everything both wire formats need (amounts exact, defects applied)."""

    def __init__(self, order: Order, version: Version, currency: str, amazon_id: str | None = None,
                 shop: str = "shop.myshopify.com") -> None:
        self.order, self.version, self.shop = order, version, shop
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


def _connection(items: list[dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A nested connection (lineItems) paged by index cursors."""

    def resolve(_info: Any, first: int | None = None, after: str | None = None, last: int | None = None,
                before: str | None = None, reverse: bool = False) -> dict[str, Any]:
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
    customer = None
    if o.channel_customer_id:
        first, last = _split_name(o.buyer_name)
        customer = {"id": _gid("Customer", o.channel_customer_id), "legacyResourceId": o.channel_customer_id,
                    "email": o.email, "phone": o.phone, "firstName": first, "lastName": last,
                    "displayName": o.buyer_name or o.email or ""}
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
                    "tax_exempt": False, "phone": o.phone, "tags": "", "currency": cur, "tax_exemptions": [],
                    "admin_graphql_api_id": _gid("Customer", o.channel_customer_id),
                    "default_address": {"id": numeric_id(o.channel_customer_id, "address"), "customer_id": cid,
                                        **(_address_rest(o.ship_to, o.phone) or {}), "default": True}
                    if o.ship_to else None}
    refunds = [{"id": rid, "order_id": order_id, "created_at": rest_time(at), "note": None, "restock": False,
                "refund_line_items": [], "order_adjustments": [],
                "transactions": [{"id": numeric_id(rid, "transaction"), "order_id": order_id, "amount": amt(amount),
                                  "kind": "refund", "status": "success", "currency": cur, "gateway": "manual",
                                  "created_at": rest_time(at)}]}
               for rid, at, amount in view.refunds]
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


def query_cost(document: Any, operation: OperationDefinitionNode, variables: dict[str, Any]) -> int:
    """The requested cost of a query (see ``COST_DIVISOR``): objects 1, connections 2 + sized objects / 10."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

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


# -- the emulator ---------------------------------------------------------------------------------------
class _Root:
    """QueryRoot resolvers of one shop at one instant."""

    def __init__(self, emulator: ShopifyEmulator, shop: str) -> None:
        self.emu, self.domain = emulator, shop
        self.store_key, _, self.currency = emulator.shops[shop]
        self.now = emulator.now()

    def orders(self, _info: Any, first: int | None = None, after: str | None = None, last: int | None = None,
               before: str | None = None, reverse: bool = False, sortKey: str = "ID", query: str | None = None,
               ) -> dict[str, Any]:
        if first is None and last is None:
            raise GraphQLError("you must provide one of first or last")
        size = first if first is not None else last
        if size is None or size < 0 or size > MAX_PAGE:
            raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE} (got {size}).")
        filters, _ = parse_search(query)
        rows = self.emu.visible(self.store_key, self.now)
        rows = [(o, v) for o, v in rows if all(_OPS[op](self._field(o, v, f), when) for f, op, when in filters)]
        rows.sort(key=lambda r: self._key(r, sortKey), reverse=reverse)
        if after is not None:
            mark = self._mark(_decode(after))
            rows = [r for r in rows if (self._key(r, sortKey) < mark if reverse else self._key(r, sortKey) > mark)]
        if before is not None:
            mark = self._mark(_decode(before))
            rows = [r for r in rows if (self._key(r, sortKey) > mark if reverse else self._key(r, sortKey) < mark)]
        page = rows[:first] if first is not None else rows[len(rows) - size:] if size else []
        edges = [{"cursor": self._cursor(r, sortKey), "node": render_graphql(self.emu.view(*r, self.domain))}
                 for r in page]
        return {"edges": edges, "nodes": [e["node"] for e in edges], "pageInfo": {
            "hasNextPage": first is not None and len(rows) > len(page),
            "hasPreviousPage": (last is not None and len(rows) > len(page)) or (first is not None and after is not None),
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None}}

    def order(self, _info: Any, id: str) -> dict[str, Any] | None:  # Shopify names the argument `id`
        ext = id.rsplit("/", 1)[-1]
        for o, v in self.emu.visible(self.store_key, self.now):
            if o.external_id == ext:
                return render_graphql(self.emu.view(o, v, self.domain))
        return None

    def shop(self, _info: Any) -> dict[str, Any]:
        return {"id": _gid("Shop", numeric_id(self.domain)), "name": self.store_key, "myshopifyDomain": self.domain,
                "currencyCode": self.currency, "ianaTimezone": "Etc/UTC"}

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

    Routes: ``POST /admin/api/{version}/graphql.json`` (orders, order, shop), ``GET
    /admin/api/{version}/orders.json`` and ``GET /admin/api/{version}/orders/{id}.json``. Faults beyond
    the generic ones: ``throttled`` (the next GraphQL call finds the bucket empty), ``expired_token``
    (401), ``duplicate_page`` (the next GraphQL call is answered with the previous call's ``$after``, so the
    previous page comes again).

    Args:
        source: the order source (``orders_for(store_key)``, ``by_truth_id(truth_id)``).
        shops: ``{"acme.myshopify.com": (store_key, access_token, shop_currency)}``.
        speed: rate-limit speed-up (1.0 = Shopify's Standard-plan budgets).
        now: the clock (the sandbox clock by default).
    """

    name = "shopify"

    def __init__(self, source: Any, *, shops: dict[str, tuple[str, str, str]], speed: float = 1.0,
                 now: Callable[[], datetime] = clock.now) -> None:
        super().__init__(speed=speed, now=now)
        self.source = source
        self.shops = dict(shops)
        self.cost_buckets = {shop: CostBucket(RESTORE_RATE, BUCKET_SIZE, speed) for shop in self.shops}
        self.rest_buckets = {shop: ServerBucket(REST_LEAK, REST_BUCKET, speed) for shop in self.shops}
        self._previous_after: dict[str, Any] = {}
        self._page_lock = threading.Lock()
        version = r"/admin/api/(?P<version>\d{4}-\d{2}|unstable)"
        self.route("POST", version + r"/graphql\.json", self.graphql, "graphql")
        self.route("GET", version + r"/orders\.json", self.rest_orders, "rest_orders")
        self.route("GET", version + r"/orders/(?P<id>\d+)\.json", self.rest_order, "rest_order")

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

    def view(self, order: Order, version: Version, shop: str) -> OrderView:
        """The order at a version as ``shop`` shows it, with the Amazon id of a mirrored order resolved."""
        amazon_id = self.source.by_truth_id(order.mirror_of).external_id if order.mirror_of else None
        return OrderView(order, version, self.shops[shop][2], amazon_id, shop)

    # -- auth ------------------------------------------------------------------------------------------
    def _shop(self, req: Request) -> tuple[str | None, Response | None]:
        shop = (req.headers.get("host") or "").split(":", 1)[0].lower()
        if shop not in self.shops:
            return None, Response.json({"errors": "Not Found"}, 404)
        token = req.headers.get("x-shopify-access-token")
        if token != self.shops[shop][1] or self.faults.take(req.path, {"expired_token"}):
            return None, Response.json({"errors": INVALID_TOKEN}, 401)
        return shop, None

    # -- GraphQL ---------------------------------------------------------------------------------------
    def graphql(self, req: Request, _match: re.Match[str]) -> Response:
        """POST graphql.json: parse, validate, cost, throttle, execute."""
        shop, denied = self._shop(req)
        if denied is not None or shop is None:
            return denied or Response.json({"errors": "Not Found"}, 404)
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
            return Response.json({"errors": [{"message": "No operation named in the document"}]})
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
        result = execute_sync(SCHEMA, document, root_value=_Root(self, shop), variable_values=variables,
                         operation_name=payload.get("operationName"))
        actual = actual_cost(result.data) if result.data else requested
        bucket.give_back(requested - actual)
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [e.formatted for e in result.errors]
        body["data"] = result.data
        cost = {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": bucket.status()}
        extensions: dict[str, Any] = {"cost": cost}
        _, warnings = parse_search(variables.get("query") if isinstance(variables.get("query"), str) else None)
        if warnings:
            extensions["search"] = [{"path": ["orders"], "query": variables.get("query"), "warnings": warnings}]
        body["extensions"] = extensions
        return Response.json(body)

    def _repeat_page(self, shop: str, path: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Remember each ``$after``; the ``duplicate_page`` fault answers the previous request's page again."""
        with self._page_lock:
            if self.faults.take(path, {"duplicate_page"}):
                return {**variables, "after": self._previous_after.get(shop)}
            self._previous_after[shop] = variables.get("after")
        return variables

    # -- REST ------------------------------------------------------------------------------------------
    def _rest_gate(self, req: Request) -> tuple[str | None, Response | None, dict[str, str]]:
        shop, denied = self._shop(req)
        if denied is not None or shop is None:
            return None, denied, {}
        bucket = self.rest_buckets[shop]
        if not bucket.try_take():
            wait = f"{2.0 / self.speed:g}"  # Shopify answers Retry-After: 2.0
            return None, Response.json({"errors": "Exceeded 2 calls per second for api client. Reduce request "
                                                  "rates to resume uninterrupted service."}, 429,
                                       {"Retry-After": wait}), {}
        used = math.ceil(bucket.burst - bucket.available())
        return shop, None, {"X-Shopify-Shop-Api-Call-Limit": f"{used}/{int(bucket.burst)}"}

    def rest_orders(self, req: Request, match: re.Match[str]) -> Response:
        """GET orders.json: status/updated_at/created_at/ids/since_id filters, ``Link`` paging with page_info."""
        shop, denied, headers = self._rest_gate(req)
        if denied is not None or shop is None:
            return denied or Response.json({"errors": "Not Found"}, 404)
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
        rows = self._rest_filter(self.visible(store_key, self.now()), params)
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
        shop, denied, headers = self._rest_gate(req)
        if denied is not None or shop is None:
            return denied or Response.json({"errors": "Not Found"}, 404)
        store_key = self.shops[shop][0]
        for o, v in self.visible(store_key, self.now()):
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
