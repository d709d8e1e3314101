"""Shopify normalizer: Admin GraphQL and REST order payloads to canonical rows, both views giving the same row.

Part kinds:
    ``shopify.graphql.orders``: a GraphQL response, orders under ``data.orders.edges[].node`` or ``.nodes``.
    ``shopify.rest.orders``: REST ``{"orders": [...]}`` (orders.json) or ``{"order": {...}}`` (orders/{id}.json).
    ``shopify.bulk.orders``: a bulk operation's JSON Lines result: one line per order, one per line item with
        ``"__parentId"`` naming its order. Each order is rebuilt into the paged node shape (``lineItems.nodes``,
        children in file order, wherever in the file they stand) and mapped exactly as ``shopify.graphql.orders``.
        A record is an object line without ``__parentId``, as the connector counts them (``connectors/shopify/
        bulk.py`` ``inspect_jsonl``). What cannot be rebuilt is quarantined line by line and the rest goes on:
        a line that is not JSON (counted as one record unless its text names ``__parentId``), a line that is
        not an object, a child whose order is not in the file, a child that is not a line item (these three
        stand for 0 records: they are not orders, so loaded + quarantined = landed still holds).
    ``shopify.webhook.orders.create`` / ``.orders.updated`` / ``.orders.cancelled``: a webhook delivery, the
        REST order object without the ``{"order": ...}`` wrapper, mapped exactly as ``shopify.rest.orders``.
    ``shopify.webhook.refunds.create``: 0 records, so no row and no quarantine. The refund payload names its
        order but not the order's new totals or status; it is a hint that the order changed, and the next
        poll (``updated_at`` moves with the refund) brings the whole order with the refund in it. The body
        is not even parsed: a malformed hint must not quarantine a record that was never counted.

Field mapping (GraphQL / REST):
    external_id      ``legacyResourceId`` (else the number in ``id``) / ``id``
    order_number     ``name`` ("#1001")
    currency         ``currencyCode`` / ``currency``: the shop currency, which every amount below is in
    presentment_*    ``presentmentCurrencyCode`` + ``totalPriceSet.presentmentMoney`` / ``presentment_currency``
                     + ``total_price_set.presentment_money`` (NULL when the payload has none)
    subtotal         merchandise before discounts: ``subtotalPriceSet + totalDiscountsSet`` (Shopify's subtotal
                     is after discounts) / ``total_line_items_price``
    discount, shipping, tax, total
                     ``totalDiscountsSet``, ``totalShippingPriceSet``, ``totalTaxSet``, ``totalPriceSet`` (shopMoney) /
                     ``total_discounts``, ``total_shipping_price_set`` (else the sum of ``shipping_lines``),
                     ``total_tax``, ``total_price``
    refunded         sum of ``refunds[].totalRefundedSet`` (else ``totalRefundedSet``) / sum of the successful
                     ``refund`` transactions of ``refunds[]``; NULL when the payload carries no refunds at all
    email            order ``email`` (REST also ``contact_email``), else the customer's
    phone            order ``phone``, else the customer's, else the shipping then billing address phone
    buyer_name       customer first + last name, else the billing then shipping address name
    channel_customer_key  the customer's numeric id
    ship_*           ``shippingAddress`` / ``shipping_address`` (region = province code, country = ISO alpha-2)
    ship_by          Shopify's orders carry no promise: ``created_at + ship_sla_days``
    mirror_of        ``amazon:<id>`` when the order was imported from Amazon by a marketplace app: a custom
                     attribute / note attribute ``amazon_order_id`` (any spelling of the key), or an Amazon
                     order id (``123-1234567-1234567``) in the note, tags or attributes of an order whose
                     source name or tags say ``amazon``
    lines            ``lineItems.nodes`` / ``line_items``: unit price ``originalUnitPriceSet`` / ``price``,
                     discount ``totalDiscountSet`` / sum of ``discount_allocations`` (else ``total_discount``),
                     tax the sum of ``taxLines`` / ``tax_lines``, total = quantity * unit price - discount + tax

Status (``displayFulfillmentStatus`` / ``fulfillment_status``, first matching rule wins):
    ``cancelledAt`` / ``cancelled_at`` set                       -> cancelled
    FULFILLED / fulfilled                                        -> fulfilled
    PARTIALLY_FULFILLED / partial                                -> partially_fulfilled
    anything else, null included (UNFULFILLED, OPEN, IN_PROGRESS, PENDING_FULFILLMENT, SCHEDULED, ON_HOLD,
    REQUEST_DECLINED, RESTOCKED / null, restocked, unfulfilled):
        payment still pending (PENDING, AUTHORIZED, PARTIALLY_PAID, EXPIRED) -> pending
        otherwise                                                            -> unfulfilled

Payment (``displayFinancialStatus`` / ``financial_status``, case-insensitive):
    PENDING, AUTHORIZED, PARTIALLY_PAID -> pending      PAID -> paid
    PARTIALLY_REFUNDED -> partially_refunded            REFUNDED -> refunded
    VOIDED, EXPIRED (authorization lapsed, nothing captured) -> voided
    any other value passes through lower-cased, so ``finish()`` quarantines it as unmapped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from connectors.landing import Manifest, PartInfo
from orderhub.config import Settings
from pipelines.common import BatchRows, base_row, money, register, text, ts, unreadable_part

GRAPHQL_KIND = "shopify.graphql.orders"
REST_KIND = "shopify.rest.orders"
BULK_KIND = "shopify.bulk.orders"
WEBHOOK_ORDER_KINDS = frozenset(
    {"shopify.webhook.orders.create", "shopify.webhook.orders.updated", "shopify.webhook.orders.cancelled"})
WEBHOOK_HINT_KINDS = frozenset({"shopify.webhook.refunds.create"})  # 0 records: see the module doc

PAYMENT = {"pending": "pending", "authorized": "pending", "partially_paid": "pending", "paid": "paid",
           "partially_refunded": "partially_refunded", "refunded": "refunded", "voided": "voided",
           "expired": "voided"}
FULFILLMENT = {"fulfilled": "fulfilled", "partially_fulfilled": "partially_fulfilled", "partial": "partially_fulfilled"}
UNPAID = {"pending", "authorized", "partially_paid", "expired"}
AMAZON_ORDER_ID = re.compile(r"\b\d{3}-\d{7}-\d{7}\b")
_GID_NUMBER = re.compile(r"/(\d+)$")
_GID_TYPE = re.compile(r"^gid://shopify/([A-Za-z]+)/")


def status_of(cancelled: bool, fulfillment: str | None, financial: str | None) -> str:
    """Canonical order status from Shopify's fulfillment and financial status (table in the module doc)."""
    if cancelled:
        return "cancelled"
    mapped = FULFILLMENT.get((fulfillment or "").strip().lower())
    if mapped:
        return mapped
    # Unpaid and unshipped is "pending", as Amazon's Pending and WooCommerce's pending/on-hold are:
    # one meaning of "pending" across channels (documented in docs/ARCHITECTURE.md).
    return "pending" if (financial or "").strip().lower() in UNPAID else "unfulfilled"


def payment_of(financial: str | None) -> str | None:
    """Canonical payment status (table in the module doc); unknown values pass through for quarantine."""
    value = (financial or "").strip().lower()
    return PAYMENT.get(value, value or None)


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _number(gid: Any) -> str | None:
    match = _GID_NUMBER.search(str(gid or ""))
    return match.group(1) if match else None


def _name(first: Any, last: Any) -> str | None:
    return text(" ".join(p for p in (text(first), text(last)) if p)) or None


def _sum(values: list[Any], name: str, problems: list[str]) -> Decimal | None:
    amounts = [money(v, name, problems) for v in values]
    return sum((a for a in amounts if a is not None), Decimal(0)) if None not in amounts else None


def _key(name: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(name or "").strip().lower())


# -- the two wire formats, read into one neutral shape ----------------------------------------------------
def _neutral_graphql(node: dict[str, Any]) -> dict[str, Any]:
    def shop(field: str, obj: Any = node) -> Any:
        return _get(obj, field, "shopMoney", "amount")

    conn = node.get("lineItems") or {}
    items: list[Any] = conn["nodes"] if isinstance(conn.get("nodes"), list) else [
        e.get("node") for e in conn.get("edges") or [] if isinstance(e, dict)]
    refunds = node.get("refunds")
    return {
        "external_id": node.get("legacyResourceId") or _number(node.get("id")),
        "order_number": node.get("name"), "created_at": node.get("createdAt"), "updated_at": node.get("updatedAt"),
        "cancelled_at": node.get("cancelledAt"), "currency": node.get("currencyCode"),
        "presentment_currency": node.get("presentmentCurrencyCode"),
        "presentment_total": _get(node, "totalPriceSet", "presentmentMoney", "amount"),
        "financial": node.get("displayFinancialStatus"), "fulfillment": node.get("displayFulfillmentStatus"),
        "subtotal": [shop("subtotalPriceSet"), shop("totalDiscountsSet") or "0"] if shop("subtotalPriceSet") else None,
        "discount": shop("totalDiscountsSet"), "shipping": shop("totalShippingPriceSet"), "tax": shop("totalTaxSet"),
        "total": shop("totalPriceSet"),
        "refunds": [shop("totalRefundedSet", r) for r in refunds] if isinstance(refunds, list)
        else [shop("totalRefundedSet")] if shop("totalRefundedSet") is not None else None,
        "email": node.get("email"), "phone": node.get("phone"), "customer": node.get("customer"),
        "customer_key": _get(node, "customer", "legacyResourceId") or _number(_get(node, "customer", "id")),
        "ship": node.get("shippingAddress"), "bill": node.get("billingAddress"),
        "source_name": node.get("sourceName"), "note": node.get("note"),
        "tags": [str(t) for t in node.get("tags") or []],
        "attributes": [(a.get("key"), a.get("value")) for a in node.get("customAttributes") or [] if isinstance(a, dict)],
        "lines": [{
            "sku": li.get("sku"), "title": li.get("title") or li.get("name"), "quantity": li.get("quantity"),
            "unit_price": shop("originalUnitPriceSet", li), "discount": shop("totalDiscountSet", li),
            "tax": [_get(t, "priceSet", "shopMoney", "amount") for t in li["taxLines"]]
            if isinstance(li.get("taxLines"), list) else None,
        } for li in items if isinstance(li, dict)],
        "lines_truncated": bool(_get(conn, "pageInfo", "hasNextPage")),
    }


def _neutral_rest(order: dict[str, Any]) -> dict[str, Any]:
    def shop(field: str, obj: Any = order) -> Any:
        amount = _get(obj, f"{field}_set", "shop_money", "amount")
        return amount if amount is not None else (obj.get(field) if isinstance(obj, dict) else None)

    refunds = order.get("refunds")
    refunded = None
    if isinstance(refunds, list):
        refunded = [_get(t, "amount_set", "shop_money", "amount") or t.get("amount")
                    for r in refunds if isinstance(r, dict) for t in r.get("transactions") or []
                    if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") == "success"]
    shipping = _get(order, "total_shipping_price_set", "shop_money", "amount")
    shipping_lines = order.get("shipping_lines")
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else None
    subtotal = order.get("total_line_items_price")

    def line_discount(li: dict[str, Any]) -> Any:
        allocations = li.get("discount_allocations")
        if allocations:
            return [_get(a, "amount_set", "shop_money", "amount") or a.get("amount") for a in allocations]
        return shop("total_discount", li)

    return {
        "external_id": order.get("id"), "order_number": order.get("name"), "created_at": order.get("created_at"),
        "updated_at": order.get("updated_at"), "cancelled_at": order.get("cancelled_at"),
        "currency": order.get("currency"), "presentment_currency": order.get("presentment_currency"),
        "presentment_total": _get(order, "total_price_set", "presentment_money", "amount"),
        "financial": order.get("financial_status"), "fulfillment": order.get("fulfillment_status"),
        "subtotal": [shop("total_line_items_price")] if subtotal is not None
        else [order.get("subtotal_price"), order.get("total_discounts") or "0"] if order.get("subtotal_price") else None,
        "discount": shop("total_discounts"), "tax": shop("total_tax"), "total": shop("total_price"),
        "shipping": shipping if shipping is not None else
        [shop("price", s) for s in shipping_lines if isinstance(s, dict)] if isinstance(shipping_lines, list) else None,
        "refunds": refunded,
        "email": order.get("email") or order.get("contact_email"), "phone": order.get("phone"),
        "customer": customer, "customer_key": customer.get("id") if customer else None,
        "ship": order.get("shipping_address"), "bill": order.get("billing_address"),
        "source_name": order.get("source_name"), "note": order.get("note"),
        "tags": [t.strip() for t in str(order.get("tags") or "").split(",") if t.strip()],
        "attributes": [(a.get("name"), a.get("value")) for a in order.get("note_attributes") or [] if isinstance(a, dict)],
        "lines": [{
            "sku": li.get("sku"), "title": li.get("title") or li.get("name"), "quantity": li.get("quantity"),
            "unit_price": shop("price", li), "discount": line_discount(li),
            "tax": [shop("price", t) for t in li["tax_lines"] if isinstance(t, dict)]
            if isinstance(li.get("tax_lines"), list) else None,
        } for li in order.get("line_items") or [] if isinstance(li, dict)],
        "lines_truncated": False,
    }


# -- one canonical row ------------------------------------------------------------------------------------
def _address(addr: Any) -> dict[str, Any]:
    if not isinstance(addr, dict):
        return {}
    return {
        "ship_name": text(addr.get("name")) or _name(addr.get("firstName") or addr.get("first_name"),
                                                     addr.get("lastName") or addr.get("last_name")),
        "ship_line1": text(addr.get("address1")), "ship_line2": text(addr.get("address2")),
        "ship_city": text(addr.get("city")),
        "ship_region": text(addr.get("provinceCode") or addr.get("province_code") or addr.get("province")),
        "ship_postal_code": text(addr.get("zip")),
        "ship_country": text(addr.get("countryCodeV2") or addr.get("country_code")),
    }


def _amount(value: Any, name: str, problems: list[str]) -> Decimal | None:
    return _sum(value, name, problems) if isinstance(value, list) else money(value, name, problems)


def _mirror(rec: dict[str, Any]) -> str | None:
    attributes = {_key(k): text(v) for k, v in rec["attributes"]}
    for key in ("amazon_order_id", "amazon_order", "amazon_id", "amazonorderid"):
        match = AMAZON_ORDER_ID.search(attributes.get(key) or "")
        if match:
            return f"amazon:{match.group(0)}"
    tags = [t.lower() for t in rec["tags"]]
    if (text(rec["source_name"]) or "").lower() == "amazon" or "amazon" in tags:
        for candidate in [rec["note"], *rec["tags"], *attributes.values()]:
            match = AMAZON_ORDER_ID.search(str(candidate or ""))
            if match:
                return f"amazon:{match.group(0)}"
    return None


def _row(manifest: Manifest, record: Any, rec: dict[str, Any], settings: Settings,
         lines_out: list[dict[str, Any]]) -> dict[str, Any]:
    row = base_row(manifest, None if rec["external_id"] is None else str(rec["external_id"]), record)
    problems: list[str] = row["_problems"]
    created = ts(rec["created_at"], "created_at", problems)
    customer = rec["customer"] if isinstance(rec["customer"], dict) else {}
    ship, bill = rec["ship"] if isinstance(rec["ship"], dict) else {}, rec["bill"] if isinstance(rec["bill"], dict) else {}
    refunds = rec["refunds"]
    row.update({
        "order_number": text(rec["order_number"]),
        "created_at": created, "updated_at": ts(rec["updated_at"], "updated_at", problems),
        "status": status_of(bool(text(rec["cancelled_at"])), rec["fulfillment"], rec["financial"]),
        "payment_status": payment_of(rec["financial"]),
        "currency": text(rec["currency"]), "presentment_currency": text(rec["presentment_currency"]),
        "subtotal": _amount(rec["subtotal"], "subtotal", problems),
        "discount": money(rec["discount"], "total_discounts", problems),
        "shipping": _amount(rec["shipping"], "shipping", problems),
        "tax": money(rec["tax"], "total_tax", problems),
        "total": money(rec["total"], "total_price", problems),
        "presentment_total": money(rec["presentment_total"], "presentment total", problems),
        "refunded": _sum(refunds, "refund", problems) if refunds is not None else None,
        "channel_customer_key": text(rec["customer_key"]),
        "email": text(rec["email"]) or text(customer.get("email")),
        "phone": text(rec["phone"]) or text(customer.get("phone")) or text(ship.get("phone")) or text(bill.get("phone")),
        "buyer_name": _name(customer.get("firstName") or customer.get("first_name"),
                            customer.get("lastName") or customer.get("last_name"))
        or _address(bill).get("ship_name") or _address(ship).get("ship_name"),
        "pii_masked": False,
        **_address(ship),
        "fulfilled_by": "merchant",
        "ship_by": created + timedelta(days=settings.ship_sla_days) if created else None,
        "mirror_of": _mirror(rec),
        "source_name": text(rec["source_name"]),
    })
    if rec["lines_truncated"]:
        problems.append("order has more line items than the query fetched: re-import it from REST "
                        "orders/{id}.json so no line is missing")
    for line_no, line in enumerate(rec["lines"], start=1):
        qty_raw = line["quantity"]
        quantity = qty_raw if isinstance(qty_raw, int) and not isinstance(qty_raw, bool) else None
        if quantity is None and isinstance(qty_raw, str) and re.fullmatch(r"-?\d+", qty_raw.strip()):
            quantity = int(qty_raw)
        if quantity is None and qty_raw is not None:
            problems.append(f"line {line_no} quantity {qty_raw!r} is not a whole number")
        unit = money(line["unit_price"], f"line {line_no} price", problems)
        discount = _amount(line["discount"], f"line {line_no} discount", problems)
        tax = _sum(line["tax"], f"line {line_no} tax", problems) if line["tax"] is not None else None
        total = quantity * unit - (discount or 0) + (tax or 0) if quantity is not None and unit is not None else None
        lines_out.append({"order_id": row["order_id"], "line_no": line_no, "sku": text(line["sku"]),
                          "title": text(line["title"]), "quantity": quantity, "unit_price": unit,
                          "discount": discount, "tax": tax, "total": total})
    return row


def records_of(kind: str, doc: Any) -> list[Any]:
    """The order records of a parsed body.

    Raises:
        ValueError: the body is not the kind it claims to be.
    """
    if kind == GRAPHQL_KIND:
        orders = _get(doc, "data", "orders")
        if not isinstance(orders, dict):
            errors = doc.get("errors") if isinstance(doc, dict) else None
            raise ValueError(f"no data.orders in the GraphQL response{f' (errors: {errors})' if errors else ''}")
        if orders.get("nodes") is not None:
            return list(orders["nodes"])
        return [e.get("node") if isinstance(e, dict) else None for e in orders.get("edges") or []]
    if kind == REST_KIND:
        if isinstance(doc, dict) and isinstance(doc.get("orders"), list):
            return list(doc["orders"])
        if isinstance(doc, dict) and isinstance(doc.get("order"), dict):
            return [doc["order"]]
        raise ValueError('expected {"orders": [...]} or {"order": {...}}')
    if kind in WEBHOOK_ORDER_KINDS:
        if isinstance(doc, dict):
            return [doc]
        raise ValueError(f"expected the order object of the webhook, got a {type(doc).__name__}")
    if kind in WEBHOOK_HINT_KINDS:
        return []
    raise ValueError(f"unknown part kind {kind}")


@dataclass(frozen=True)
class BulkProblem:
    """A line of a bulk result that cannot become part of an order.

    Attributes:
        line_no: the line's number in the file (1-based).
        reason: what is wrong and what to do.
        raw: the line as landed.
        records: landed records the line stands for (1 for an unreadable line that may have been an order).
        external_id: the order the line belongs to, when known.
    """

    line_no: int
    reason: str
    raw: bytes
    records: int
    external_id: str | None = None


def rebuild_bulk(body: bytes) -> tuple[list[Any], list[BulkProblem]]:
    """Orders of a bulk JSON Lines result in the paged node shape, and the lines that could not be placed.

    Each root line (an object without ``__parentId``) becomes an order; every line item naming it in
    ``__parentId`` goes to its ``lineItems.nodes`` in file order (without the ``__parentId`` key), whether
    it stands after its order, as Shopify writes them, or before. A root line that is not an object is
    returned as is, so the caller reports it like any malformed record.
    """
    roots: list[Any] = []
    children: list[tuple[int, bytes, dict[str, Any]]] = []
    problems: list[BulkProblem] = []
    for line_no, raw in enumerate(body.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            problems.append(BulkProblem(
                line_no, f"line {line_no} is not JSON ({exc}); the file was cut off or altered: run the backfill "
                "of this window again", raw, 0 if b'"__parentId"' in raw else 1))
            continue
        if not isinstance(obj, dict):
            problems.append(BulkProblem(
                line_no, f"line {line_no} is a JSON {type(obj).__name__}, not an object: not an order or a line item",
                raw, 0))
        elif "__parentId" in obj:
            children.append((line_no, raw, obj))
        else:
            roots.append(obj)
    by_id = {root.get("id"): root for root in roots if root.get("id") is not None}
    items: dict[Any, list[dict[str, Any]]] = {}
    for line_no, raw, child in children:
        parent = child["__parentId"]
        kind = _GID_TYPE.match(str(child.get("id") or ""))
        if parent not in by_id:
            problems.append(BulkProblem(
                line_no, f"line {line_no} is a child of {parent}, which is not in this file, so it belongs to no "
                f"order here; run the backfill of this window again or import the order from REST "
                f"orders/{_number(parent) or '{id}'}.json", raw, 0, _number(parent)))
        elif kind and kind.group(1) != "LineItem":
            problems.append(BulkProblem(
                line_no, f"line {line_no} is a {kind.group(1)} of {parent}: only line items are read from a bulk "
                "result (queries.bulk_orders asks for no other connection)", raw, 0, _number(parent)))
        else:
            items.setdefault(parent, []).append({k: v for k, v in child.items() if k != "__parentId"})
    orders: list[Any] = []
    for root in roots:
        node = {k: v for k, v in root.items() if k != "lineItems"}
        node["lineItems"] = {"nodes": items.get(root.get("id"), [])}
        orders.append(node)
    return orders, problems


def _bulk_quarantine(manifest: Manifest, part: PartInfo, problem: BulkProblem) -> dict[str, Any]:
    return {
        "channel": manifest.channel, "store": manifest.store, "external_id": problem.external_id,
        "reason": f"{part.file} ({part.kind}) {problem.reason}",
        "payload": problem.raw.decode("utf-8", errors="replace"),
        "landed_at": manifest.landed_at_dt, "batch_id": manifest.batch_id, "records": problem.records,
    }


@register("shopify")
def normalize(manifest: Manifest, parts: list[tuple[PartInfo, bytes]], settings: Settings) -> BatchRows:
    """Flat canonical rows of one landed Shopify batch (one order row per record; problems kept per row)."""
    rows = BatchRows()
    for part, body in parts:
        if part.kind in WEBHOOK_HINT_KINDS:
            continue  # a hint with 0 records: the next poll brings the order (module doc)
        if part.kind == BULK_KIND:
            records, problems = rebuild_bulk(body)
            rows.quarantine.extend(_bulk_quarantine(manifest, part, p) for p in problems)
        else:
            try:
                records = records_of(part.kind, json.loads(body))
            except (ValueError, UnicodeDecodeError) as exc:
                rows.quarantine.append(unreadable_part(manifest, part, body, str(exc)))
                continue
        graphql = part.kind in (GRAPHQL_KIND, BULK_KIND)
        for record in records:
            if not isinstance(record, dict):
                row = base_row(manifest, None, record)
                row["_problems"].append(f"the order record is a {type(record).__name__}, not an object")
                rows.orders.append(row)
                continue
            neutral = _neutral_graphql(record) if graphql else _neutral_rest(record)
            rows.orders.append(_row(manifest, record, neutral, settings, rows.lines))
    return rows
