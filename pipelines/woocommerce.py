"""WooCommerce REST v3 orders (``woocommerce.rest.orders`` pages, ``woocommerce.rest.order`` bodies) to canonical rows.

Webhooks (connectors/woocommerce/webhooks.py): ``woocommerce.webhook.order`` is one order object, the body
of ``GET /orders/{id}``, and maps exactly like a REST record. ``woocommerce.webhook.order.deleted`` lands with
0 records and gives no row and no quarantine: WooCommerce sends only ``{"id": N}`` for a deleted (trashed)
order, too little for a row, and a ``trash`` order row with every other field empty would overwrite the
order's real one. The order's last full version stays; ``order.restored`` brings it back in full.

Status mapping (DESIGN.md), applied after the store's ``custom_statuses`` (orderhub.toml) and a
``wc-`` prefix are resolved:

============================  ======================  ===========================================
WooCommerce status            status                  payment_status
============================  ======================  ===========================================
pending, on-hold              pending                 pending
checkout-draft (blocks)       pending                 pending
processing                    unfulfilled             paid
partial-shipped (AST plugin)  partially_fulfilled     paid
shipped, delivered (plugins)  fulfilled               paid
completed                     fulfilled               paid
cancelled, failed, trash      cancelled               voided
refunded                      fulfilled when it       refunded
                              shipped (it has
                              ``date_completed_gmt``),
                              else cancelled
============================  ======================  ===========================================

Refunds: ``refunded`` is the sum of the absolute ``refunds[].total`` (WooCommerce writes them
negative). For any status but ``pending``/``refunded``, 0 < refunded < total makes the payment
``partially_refunded`` and refunded >= total makes it ``refunded``. A status that is neither in the
table nor mapped by the store's ``custom_statuses`` quarantines the record with a reason naming the
setting to add.

Fields: ``*_gmt`` times are UTC without an offset; ``currency`` is the record's (the store's configured
currency only when a record has none); money strings are parsed with Decimal; subtotal
is the sum of line subtotals (before discounts); discount ``discount_total``; shipping
``shipping_total``; tax ``total_tax``; fee lines are in ``total`` only. E-mail and phone come from
billing; the ship-to address from shipping, or from billing when shipping is empty (virtual
goods). ``customer_id`` 0 is a guest (no channel customer key). Line titles are HTML-unescaped
(WooCommerce returns product names with entities such as ``&ndash;``). A line's ``total`` is the
WooCommerce line total after discounts plus its tax; its discount is ``subtotal - total``. WooCommerce
promises no ship date, so ``ship_by`` is ``created_at + ship_sla_days``.
"""

from __future__ import annotations

import html
import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

from connectors.landing import Manifest, PartInfo
from orderhub.config import Settings
from pipelines.common import BatchRows, base_row, money, payload_text, register, text, ts, unreadable_part

CHANNEL = "woocommerce"
LIST_KIND = "woocommerce.rest.orders"
ORDER_KIND = "woocommerce.rest.order"
WEBHOOK_KIND = "woocommerce.webhook.order"  # order.created / .updated / .restored: one order object
WEBHOOK_HINT_KINDS = frozenset({"woocommerce.webhook.order.deleted"})  # 0 records: see the module doc
OBJECT_KINDS = frozenset({ORDER_KIND, WEBHOOK_KIND})
UNIT = Decimal("0.0001")  # MONEY's scale (pipelines/schema.py)

# WooCommerce status -> (status, payment_status); None status = decided by date_completed_gmt.
STATUS_TABLE: dict[str, tuple[str | None, str]] = {
    "pending": ("pending", "pending"),
    "on-hold": ("pending", "pending"),
    "checkout-draft": ("pending", "pending"),
    "processing": ("unfulfilled", "paid"),
    "completed": ("fulfilled", "paid"),
    "cancelled": ("cancelled", "voided"),
    "failed": ("cancelled", "voided"),
    "trash": ("cancelled", "voided"),
    "refunded": (None, "refunded"),
    # Widely installed plugins' statuses (Advanced Shipment Tracking and similar); a store's
    # custom_statuses in orderhub.toml takes precedence.
    "partial-shipped": ("partially_fulfilled", "paid"),
    "shipped": ("fulfilled", "paid"),
    "delivered": ("fulfilled", "paid"),
}


def _slug(status: str) -> str:
    return status.strip().lower().removeprefix("wc-")


def map_status(
    record: dict[str, Any], custom: dict[str, str] | None, store: str, refunded: Decimal, total: Decimal | None,
    problems: list[str],
) -> tuple[str | None, str | None]:
    """(status, payment_status) of a record, or (None, None) with a problem that says what to configure."""
    raw = text(record.get("status"))
    if raw is None:
        problems.append("status missing")
        return None, None
    slug = _slug(raw)
    mapping = {_slug(k): _slug(v) for k, v in (custom or {}).items()}
    wc = mapping.get(slug, slug)
    if wc not in STATUS_TABLE:
        if custom is None:
            problems.append(
                f"WooCommerce status {raw!r} is not a core status and store {store!r} is not configured: add it "
                f"under [[stores]] in orderhub.toml with custom_statuses = {{ {slug!r} = \"<a core status such as "
                f"processing or completed>\" }}"
            )
        elif slug in mapping:
            problems.append(f"custom_statuses of store {store!r} maps {raw!r} to {wc!r}, which is not a WooCommerce "
                            f"status; use one of {', '.join(sorted(STATUS_TABLE))}")
        else:
            problems.append(f"WooCommerce status {raw!r} is not mapped: add it to custom_statuses of store {store!r} "
                            f"in orderhub.toml, e.g. {slug!r} = \"completed\"")
        return None, None
    status, payment = STATUS_TABLE[wc]
    if status is None:  # refunded: did it ship before the money went back?
        status = "fulfilled" if text(record.get("date_completed_gmt")) else "cancelled"
    if wc != "refunded" and payment != "pending" and refunded > 0:
        payment = "refunded" if total is not None and refunded >= total else "partially_refunded"
    return status, payment


def _address(block: Any) -> dict[str, Any]:
    return block if isinstance(block, dict) else {}


def _name(block: dict[str, Any]) -> str | None:
    full = " ".join(p for p in (text(block.get("first_name")), text(block.get("last_name"))) if p)
    return text(full) or text(block.get("company"))


def _has_address(block: dict[str, Any]) -> bool:
    return any(text(block.get(k)) for k in ("address_1", "city", "postcode", "country"))


def _quantity(value: Any, line_no: int, problems: list[str]) -> int | None:
    if isinstance(value, bool) or value is None:
        problems.append(f"line {line_no} quantity {value!r} is not an integer")
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        problems.append(f"line {line_no} quantity {value!r} is not an integer")
        return None


def _lines(order_id: str | None, items: Any, problems: list[str]) -> tuple[list[dict[str, Any]], Decimal | None]:
    """Canonical lines and the order subtotal (sum of line subtotals; None when one is unreadable)."""
    if not isinstance(items, list):
        if items is not None:
            problems.append("line_items is not a list")
        return [], None
    rows: list[dict[str, Any]] = []
    subtotal: Decimal | None = Decimal(0)
    for line_no, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            problems.append(f"line {line_no} is not an object")
            subtotal = None
            continue
        qty = _quantity(item.get("quantity"), line_no, problems)
        line_sub = money(item.get("subtotal"), f"line {line_no} subtotal", problems)
        line_total = money(item.get("total"), f"line {line_no} total", problems)
        line_tax = money(item.get("total_tax"), f"line {line_no} total_tax", problems)
        name = item.get("name")
        rows.append({
            "order_id": order_id,
            "line_no": line_no,
            "sku": text(item.get("sku")),
            "master_sku": None,
            "title": text(html.unescape(name)) if isinstance(name, str) else text(name),
            "quantity": qty,
            "unit_price": (line_sub / qty).quantize(UNIT) if line_sub is not None and qty else None,
            "discount": line_sub - line_total if line_sub is not None and line_total is not None else None,
            "tax": line_tax,
            "total": line_total + (line_tax or 0) if line_total is not None else None,
        })
        subtotal = subtotal + line_sub if subtotal is not None and line_sub is not None else None
    return rows, subtotal


def _refunded(refunds: Any, problems: list[str]) -> Decimal:
    total = Decimal(0)
    for i, refund in enumerate(refunds if isinstance(refunds, list) else [], start=1):
        amount = money(refund.get("total") if isinstance(refund, dict) else None, f"refund {i} total", problems)
        total += abs(amount) if amount is not None else 0
    return total


def flatten(manifest: Manifest, record: dict[str, Any], settings: Settings) -> tuple[dict[str, Any], list[dict]]:
    """One WooCommerce order record as a flat canonical order row plus its lines."""
    store_cfg = settings.store(CHANNEL, manifest.store)
    raw_id = record.get("id")
    row = base_row(manifest, None if raw_id in (None, "", 0, "0") else raw_id, record)
    problems: list[str] = row["_problems"]
    lines, subtotal = _lines(row["order_id"], record.get("line_items"), problems)
    total = money(record.get("total"), "total", problems)
    refunded = _refunded(record.get("refunds"), problems)
    custom = getattr(store_cfg, "custom_statuses", None) if store_cfg is not None else None
    status, payment = map_status(record, custom, manifest.store, refunded, total, problems)

    billing, shipping = _address(record.get("billing")), _address(record.get("shipping"))
    ship = shipping if _has_address(shipping) else billing
    created = ts(record.get("date_created_gmt"), "date_created_gmt", problems, naive_is_utc=True)
    customer = text(record.get("customer_id"))
    row.update({
        "order_number": text(record.get("number")) or row["external_id"],
        "created_at": created,
        "updated_at": ts(record.get("date_modified_gmt"), "date_modified_gmt", problems, naive_is_utc=True),
        "status": status,
        "payment_status": payment,
        "currency": text(record.get("currency")) or getattr(store_cfg, "currency", None),
        "subtotal": subtotal,
        "discount": money(record.get("discount_total"), "discount_total", problems),
        "shipping": money(record.get("shipping_total"), "shipping_total", problems),
        "tax": money(record.get("total_tax"), "total_tax", problems),
        "total": total,
        "refunded": refunded,
        "channel_customer_key": None if customer in (None, "0") else customer,
        "email": text(billing.get("email")),
        "phone": text(billing.get("phone")),
        "buyer_name": _name(billing),
        "pii_masked": False,
        "ship_name": _name(ship),
        "ship_line1": text(ship.get("address_1")),
        "ship_line2": text(ship.get("address_2")),
        "ship_city": text(ship.get("city")),
        "ship_region": text(ship.get("state")),
        "ship_postal_code": text(ship.get("postcode")),
        "ship_country": text(ship.get("country")),
        "fulfilled_by": "merchant",
        "ship_by": created + timedelta(days=settings.ship_sla_days) if created else None,
        "source_name": text(record.get("created_via")),
    })
    return row, lines


def _records(kind: str, data: Any) -> list[Any] | None:
    if kind == LIST_KIND and isinstance(data, list):
        return data
    if kind in OBJECT_KINDS and isinstance(data, dict):
        return [data]
    return None


@register(CHANNEL)
def normalize(manifest: Manifest, parts: list[tuple[PartInfo, bytes]], settings: Settings) -> BatchRows:
    """Flat rows of one landed WooCommerce batch; unreadable bodies and non-object records go to quarantine."""
    rows = BatchRows()
    for part, body in parts:
        if part.kind in WEBHOOK_HINT_KINDS:
            continue
        if part.kind not in (LIST_KIND, *OBJECT_KINDS):
            rows.quarantine.append(unreadable_part(manifest, part, body, f"unknown part kind {part.kind!r}"))
            continue
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            rows.quarantine.append(unreadable_part(manifest, part, body, f"not valid JSON ({exc})"))
            continue
        records = _records(part.kind, data)
        if records is None:
            shape = "a JSON array of orders" if part.kind == LIST_KIND else "one order object"
            rows.quarantine.append(unreadable_part(manifest, part, body, f"expected {shape}, got {type(data).__name__}"))
            continue
        for record in records:
            if not isinstance(record, dict):
                rows.quarantine.append({
                    "channel": manifest.channel, "store": manifest.store, "external_id": None,
                    "reason": f"{part.file}: a record is a {type(record).__name__}, not an order object",
                    "payload": payload_text(record), "landed_at": manifest.landed_at_dt,
                    "batch_id": manifest.batch_id, "records": 1,
                })
                continue
            order, lines = flatten(manifest, record, settings)
            rows.orders.append(order)
            rows.lines.extend(lines)
    return rows
