"""Amazon normalizer: Orders v2026-01-01 and v0 bodies to canonical order and line rows.

Status mapping (DESIGN.md), from v2026-01-01 ``fulfillment.fulfillmentStatus`` or v0 ``OrderStatus``:

=========================  ===========================  ====================  ==============
v2026-01-01                v0                           status                payment_status
=========================  ===========================  ====================  ==============
PENDING                    Pending                      pending               pending
PENDING_AVAILABILITY       PendingAvailability          pending               pending
UNSHIPPED                  Unshipped                    unfulfilled           paid
PARTIALLY_SHIPPED          PartiallyShipped             partially_fulfilled   paid
SHIPPED                    Shipped, InvoiceUnconfirmed  fulfilled             paid
CANCELLED                  Canceled                     cancelled             voided
UNFULFILLABLE              Unfulfillable                cancelled             voided
=========================  ===========================  ====================  ==============

Any other value is quarantined ("status ... is not mapped"). The Orders API reports no refunds, so
``refunded`` stays NULL. Other rules:

- ``order_id`` = ``amazon:{store}:{orderId}``, ``order_number`` = the Amazon order id; no
  ``channel_customer_key`` (Amazon gives no stable buyer id; the relay e-mail is the key).
- Money: ``total``/``currency`` from ``proceeds.grandTotal`` (v0 ``OrderTotal``); a Pending order has none,
  so both stay NULL (never 0). Subtotal, shipping, tax and discount come from the ``ITEM``, ``SHIPPING``,
  ``TAX`` and ``DISCOUNT`` proceeds breakdowns (order level, else summed over items; DISCOUNT is
  negative on the wire, positive here); v0 sums ``ItemPrice``, ``ShippingPrice - ShippingDiscount``,
  ``ItemTax + ShippingTax`` and ``PromotionDiscount`` over the items.
- Lines: ``unit_price`` = ``product.price.unitPrice`` (v0: ``ItemPrice / QuantityOrdered``, since v0
  ``ItemPrice`` is the price times the quantity); ``total`` = item price - discount + tax, NULL when
  Amazon gives no proceeds yet.
- ``pii_masked`` when no buyer name, e-mail, phone, recipient name or street line came; those fields
  are then NULL, never placeholders. v0 ``getOrderBuyerInfo``/``getOrderAddress`` bodies in the same batch
  fill what an order record lacks.
- ``fulfilled_by`` = marketplace for ``AMAZON``/``AFN``, merchant for ``MERCHANT``/``MFN``.
- ``ship_by`` = ``shipByWindow.latestDateTime`` (v0 ``LatestShipDate``), else created_at + the SLA.
- ``related_order`` = ``amazon:{store}:{original}`` for replacement/exchange orders
  (``associatedOrders`` / v0 ``IsReplacementOrder`` + ``ReplacedOrderId``; the flag may be a string).
- ``source_name`` = the marketplace name (``salesChannel.marketplaceName``, v0 ``SalesChannel``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.landing import Manifest, PartInfo
from orderhub.config import Settings
from pipelines.common import BatchRows, base_row, boolean, money, register, text, ts, unreadable_part

SEARCH_ORDERS = "amazon.orders.v2026.searchOrders"
GET_ORDER = "amazon.orders.v2026.getOrder"
V0_ORDERS = "amazon.orders.v0.getOrders"
V0_ORDER = "amazon.orders.v0.getOrder"
V0_ITEMS = "amazon.orders.v0.getOrderItems"
V0_BUYER = "amazon.orders.v0.getOrderBuyerInfo"
V0_ADDRESS = "amazon.orders.v0.getOrderAddress"

STATUS: dict[str, tuple[str, str]] = {
    "PENDING": ("pending", "pending"), "PENDING_AVAILABILITY": ("pending", "pending"),
    "UNSHIPPED": ("unfulfilled", "paid"), "PARTIALLY_SHIPPED": ("partially_fulfilled", "paid"),
    "SHIPPED": ("fulfilled", "paid"), "CANCELLED": ("cancelled", "voided"), "UNFULFILLABLE": ("cancelled", "voided"),
    "Pending": ("pending", "pending"), "PendingAvailability": ("pending", "pending"),
    "Unshipped": ("unfulfilled", "paid"), "PartiallyShipped": ("partially_fulfilled", "paid"),
    "Shipped": ("fulfilled", "paid"), "InvoiceUnconfirmed": ("fulfilled", "paid"),
    "Canceled": ("cancelled", "voided"), "Unfulfillable": ("cancelled", "voided"),
}
FULFILLED_BY = {"AMAZON": "marketplace", "AFN": "marketplace", "MERCHANT": "merchant", "MFN": "merchant"}
RELATED = ("REPLACEMENT_ORIGINAL_ID", "EXCHANGE_ORIGINAL_ID")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _quantity(value: Any, name: str, problems: list[str]) -> int | None:
    if value is None:
        problems.append(f"{name} missing")
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        problems.append(f"{name} {value!r} is not a whole number")
        return None


def _join(*parts: Any) -> str | None:
    values = [v for v in (text(p) for p in parts) if v]
    return ", ".join(values) if values else None


def _status(raw: Any, row: dict[str, Any], what: str) -> None:
    value = text(raw)
    if value is None:
        row["_problems"].append(f"{what} missing: the order status is unknown")
    row["status"], row["payment_status"] = STATUS.get(value or "", (value, None))


def _finish_row(row: dict[str, Any], settings: Settings, ship_by: datetime | None) -> None:
    created = row.get("created_at")
    row["ship_by"] = ship_by or (created + timedelta(days=settings.ship_sla_days) if created else None)
    row["pii_masked"] = not any(row.get(k) for k in ("email", "buyer_name", "phone", "ship_name", "ship_line1"))


# -- v2026-01-01 ----------------------------------------------------------------------------------------
def _breakdowns(entries: Any, name: str, problems: list[str]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for entry in _list(entries):
        kind = text(_dict(entry).get("type"))
        value = money(_dict(_dict(entry).get("subtotal")).get("amount"), f"{name} {kind} amount", problems)
        if kind and value is not None:
            totals[kind] = totals.get(kind, Decimal(0)) + value
    return totals


def _lines_2026(order_id: str | None, items: list[Any], problems: list[str]) -> tuple[list[dict[str, Any]], list[dict]]:
    lines, breakdowns = [], []
    for no, raw in enumerate(items, start=1):
        item = _dict(raw)
        product = _dict(item.get("product"))
        unit = money(_dict(_dict(product.get("price")).get("unitPrice")).get("amount"), f"item {no} unitPrice", problems)
        qty = _quantity(item.get("quantityOrdered"), f"item {no} quantityOrdered", problems)
        proceeds = _dict(item.get("proceeds"))
        parts = _breakdowns(proceeds.get("breakdowns"), f"item {no} proceeds", problems)
        breakdowns.append(parts)
        discount = tax = total = None
        if parts:
            discount, tax = -parts.get("DISCOUNT", Decimal(0)), parts.get("TAX", Decimal(0))
            gross = parts.get("ITEM", unit * qty if unit is not None and qty is not None else None)
            total = gross - discount + tax if gross is not None else None
        lines.append({"order_id": order_id, "line_no": no, "sku": text(product.get("sellerSku")),
                      "title": text(product.get("title")), "quantity": qty, "unit_price": unit,
                      "discount": discount, "tax": tax, "total": total})
    return lines, breakdowns


def order_2026(manifest: Manifest, rec: Any, settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One v2026-01-01 ``Order`` to a flat order row and its lines."""
    order = _dict(rec)
    row = base_row(manifest, order.get("orderId"), rec)
    p: list[str] = row["_problems"]
    if not isinstance(rec, dict):
        p.append("record is not a JSON object")
    row["order_number"] = row["external_id"]
    row["created_at"] = ts(order.get("createdTime"), "createdTime", p)
    row["updated_at"] = ts(order.get("lastUpdatedTime"), "lastUpdatedTime", p)
    fulfillment = _dict(order.get("fulfillment"))
    _status(fulfillment.get("fulfillmentStatus"), row, "fulfillment.fulfillmentStatus (includedData FULFILLMENT)")
    row["fulfilled_by"] = FULFILLED_BY.get(text(fulfillment.get("fulfilledBy")) or "")
    proceeds = _dict(order.get("proceeds"))
    grand = _dict(proceeds.get("grandTotal"))
    row["total"] = money(grand.get("amount"), "proceeds.grandTotal amount", p)
    row["currency"] = text(grand.get("currencyCode"))
    items = _list(order.get("orderItems"))
    lines, item_parts = _lines_2026(row["order_id"], items, p)
    totals = _breakdowns(proceeds.get("breakdowns"), "proceeds", p) if proceeds.get("breakdowns") else {}
    if not totals and any(item_parts):
        for parts in item_parts:
            for kind, value in parts.items():
                totals[kind] = totals.get(kind, Decimal(0)) + value
    if totals:
        row["subtotal"], row["shipping"] = totals.get("ITEM", Decimal(0)), totals.get("SHIPPING", Decimal(0))
        row["tax"], row["discount"] = totals.get("TAX", Decimal(0)), -totals.get("DISCOUNT", Decimal(0))
    buyer = _dict(order.get("buyer"))
    address = _dict(_dict(order.get("recipient")).get("deliveryAddress"))
    row.update({
        "email": text(buyer.get("buyerEmail")), "buyer_name": text(buyer.get("buyerName")),
        "phone": text(address.get("phone")), "ship_name": text(address.get("name")),
        "ship_line1": text(address.get("addressLine1")),
        "ship_line2": _join(address.get("addressLine2"), address.get("addressLine3")),
        "ship_city": text(address.get("city")) or text(address.get("municipality")),
        "ship_region": text(address.get("stateOrRegion")), "ship_postal_code": text(address.get("postalCode")),
        "ship_country": text(address.get("countryCode")),
    })
    row["related_order"] = None
    for assoc in _list(order.get("associatedOrders")):
        original = text(_dict(assoc).get("orderId"))
        if original and _dict(assoc).get("associationType") in RELATED:
            row["related_order"] = f"amazon:{manifest.store}:{original}"
    channel = _dict(order.get("salesChannel"))
    row["source_name"] = text(channel.get("marketplaceName")) or text(channel.get("channelName"))
    ship_by = ts(_dict(fulfillment.get("shipByWindow")).get("latestDateTime"), "shipByWindow.latestDateTime", p)
    _finish_row(row, settings, ship_by)
    return row, lines


# -- v0 ---------------------------------------------------------------------------------------------------
def _v0_money(item: dict[str, Any], key: str, name: str, problems: list[str]) -> Decimal | None:
    return money(_dict(item.get(key)).get("Amount"), f"{name} {key}", problems)


def lines_v0(order_id: str | None, items: list[Any], problems: list[str]) -> list[dict[str, Any]]:
    """v0 ``OrderItem`` records to line rows (``ItemPrice`` is the price of the whole quantity)."""
    lines = []
    for no, raw in enumerate(items, start=1):
        item = _dict(raw)
        name = f"item {no}"
        qty = _quantity(item.get("QuantityOrdered"), f"{name} QuantityOrdered", problems)
        price = _v0_money(item, "ItemPrice", name, problems)
        discount = _v0_money(item, "PromotionDiscount", name, problems)
        tax = _v0_money(item, "ItemTax", name, problems)
        unit = None
        if price is not None and qty:
            unit = price / qty
            if unit.as_tuple().exponent < -4:  # type: ignore[operator]  # the warehouse keeps 4 decimals
                unit = unit.quantize(Decimal("0.0001"))
        total = price - (discount or Decimal(0)) + (tax or Decimal(0)) if price is not None else None
        lines.append({"order_id": order_id, "line_no": no, "sku": text(item.get("SellerSKU")),
                      "title": text(item.get("Title")), "quantity": qty, "unit_price": unit,
                      "discount": discount, "tax": tax, "total": total})
    return lines


def order_v0(manifest: Manifest, rec: Any, items: list[Any] | None, buyer_info: dict[str, Any],
             address_info: dict[str, Any], settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One v0 ``Order`` plus its ``OrderItem`` list to a flat order row and its lines."""
    order = _dict(rec)
    row = base_row(manifest, order.get("AmazonOrderId"), {"order": rec, "orderItems": items})
    p: list[str] = row["_problems"]
    if not isinstance(rec, dict):
        p.append("record is not a JSON object")
    if items is None:
        p.append("no getOrderItems body for this order in the batch: land or import it together with the order")
    row["order_number"] = row["external_id"]
    row["created_at"] = ts(order.get("PurchaseDate"), "PurchaseDate", p)
    row["updated_at"] = ts(order.get("LastUpdateDate"), "LastUpdateDate", p)
    _status(order.get("OrderStatus"), row, "OrderStatus")
    row["fulfilled_by"] = FULFILLED_BY.get(text(order.get("FulfillmentChannel")) or "")
    if row["fulfilled_by"] is None:
        p.append(f"FulfillmentChannel {order.get('FulfillmentChannel')!r} is neither AFN nor MFN")
    total = _dict(order.get("OrderTotal"))
    row["total"] = money(total.get("Amount"), "OrderTotal Amount", p)
    row["currency"] = text(total.get("CurrencyCode"))
    item_list = _list(items)
    lines = lines_v0(row["order_id"], item_list, p)
    priced = [_dict(i) for i in item_list if _dict(i).get("ItemPrice") is not None]
    if priced:
        def total_of(*keys: str) -> Decimal:
            ignored: list[str] = []  # bad amounts were reported per line already
            return sum((money(_dict(i.get(k)).get("Amount"), k, ignored) or Decimal(0) for i in priced for k in keys),
                       Decimal(0))

        row["subtotal"] = total_of("ItemPrice")
        row["shipping"] = total_of("ShippingPrice") - total_of("ShippingDiscount")
        row["tax"] = total_of("ItemTax", "ShippingTax")
        row["discount"] = total_of("PromotionDiscount")
    buyer = {**buyer_info, **_dict(order.get("BuyerInfo")), **{k: v for k, v in order.items() if k.startswith("Buyer")}}
    address = _dict(order.get("ShippingAddress")) or {}
    address = {**_dict(address_info.get("ShippingAddress")), **{k: v for k, v in address.items() if text(v)}}
    row.update({
        "email": text(buyer.get("BuyerEmail")), "buyer_name": text(buyer.get("BuyerName")),
        "phone": text(address.get("Phone")), "ship_name": text(address.get("Name")),
        "ship_line1": text(address.get("AddressLine1")),
        "ship_line2": _join(address.get("AddressLine2"), address.get("AddressLine3")),
        "ship_city": text(address.get("City")) or text(address.get("Municipality")),
        "ship_region": text(address.get("StateOrRegion")), "ship_postal_code": text(address.get("PostalCode")),
        "ship_country": text(address.get("CountryCode")),
    })
    row["related_order"] = None
    if boolean(order.get("IsReplacementOrder")) and text(order.get("ReplacedOrderId")):
        row["related_order"] = f"amazon:{manifest.store}:{text(order.get('ReplacedOrderId'))}"
    row["source_name"] = text(order.get("SalesChannel"))
    _finish_row(row, settings, ts(order.get("LatestShipDate"), "LatestShipDate", p))
    return row, lines


# -- the batch --------------------------------------------------------------------------------------------
@register("amazon")
def normalize(manifest: Manifest, parts: list[tuple[PartInfo, bytes]], settings: Settings) -> BatchRows:
    """Flat rows of one Amazon batch; v0 orders are joined with the item bodies of the same batch."""
    rows = BatchRows()
    v0_orders: list[Any] = []
    v0_items: dict[str, list[Any]] = {}
    v0_buyers: dict[str, dict[str, Any]] = {}
    v0_addresses: dict[str, dict[str, Any]] = {}

    def unreadable(part: PartInfo, body: bytes, reason: str) -> None:
        row = unreadable_part(manifest, part, body, reason)
        row["records"] = part.records  # exactly what was landed (0 for a helper body): loaded + quarantined = landed
        rows.quarantine.append(row)

    def add(row: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        rows.orders.append(row)
        for line in lines:
            line["batch_id"] = manifest.batch_id  # lines belong to this version of the order
        rows.lines.extend(lines)

    for part, body in parts:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            unreadable(part, body, f"not valid JSON ({exc})")
            continue
        payload = _dict(_dict(data).get("payload"))
        if part.kind == SEARCH_ORDERS and isinstance(_dict(data).get("orders"), list):
            for rec in data["orders"]:
                add(*order_2026(manifest, rec, settings))
        elif part.kind == GET_ORDER and isinstance(_dict(data).get("order"), dict):
            add(*order_2026(manifest, data["order"], settings))
        elif part.kind == V0_ORDERS and isinstance(payload.get("Orders"), list):
            v0_orders.extend(payload["Orders"])
        elif part.kind == V0_ORDER and payload:
            v0_orders.append(payload)
        elif part.kind == V0_ITEMS and isinstance(payload.get("OrderItems"), list):
            v0_items.setdefault(str(payload.get("AmazonOrderId")), []).extend(payload["OrderItems"])
        elif part.kind == V0_BUYER and payload:
            v0_buyers[str(payload.get("AmazonOrderId"))] = payload
        elif part.kind == V0_ADDRESS and payload:
            v0_addresses[str(payload.get("AmazonOrderId"))] = payload
        else:
            unreadable(part, body, "the body is not the Amazon response its kind says (an error response?)")
    for rec in v0_orders:
        key = str(_dict(rec).get("AmazonOrderId"))
        add(*order_v0(manifest, rec, v0_items.get(key), v0_buyers.get(key, {}), v0_addresses.get(key, {}), settings))
    return rows
