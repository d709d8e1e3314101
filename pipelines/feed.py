"""Normalize order feeds (``feed.csv``, ``feed.jsonl``, ``feed.json`` parts) into canonical rows.

The canonical feed format is documented in connectors/feed/README.md. A record is either a flat row
(order columns plus ``line_*`` columns; one row per line item, order columns repeated) or an order
object with a ``lines`` list. A store's ``mapping`` renames a layout's columns to canonical ones;
columns nobody maps are ignored. Dates without an offset are in the store's ``timezone`` (else the
home's). Rows of one order that disagree on an order column quarantine the order; a cut last line
(a file taken while still being written) is quarantined with its reason, and so is the order it
may belong to, so no order loads with line items missing.

Status table (feed value, case and ``-``/space insensitive → status / payment_status):

======================================================  ====================  ==============
pending, new, on_hold, awaiting_payment, unpaid          pending               pending
unfulfilled, processing, open, unshipped, paid, confirmed unfulfilled          paid
partially_fulfilled, partially_shipped, partial          partially_fulfilled   paid
fulfilled, shipped, delivered, completed, complete       fulfilled             paid
cancelled, canceled, failed, voided, rejected            cancelled             voided
refunded                                                 cancelled             refunded
returned                                                 fulfilled             refunded
======================================================  ====================  ==============

A ``payment_status`` column, when present, wins (pending/unpaid/authorized → pending; paid/captured
→ paid; partially_refunded; refunded; voided/cancelled → voided). A paid order with ``refunded`` > 0
becomes partially_refunded or refunded. Other values: the store's ``statuses`` maps them to a row of
the table, else the order is quarantined with a reason naming that setting.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from connectors.feed.format import KINDS, order_key, parse
from connectors.landing import Manifest, PartInfo
from orderhub.config import Settings
from pipelines.common import BatchRows, base_row, money, payload_text, register, text, unreadable_part

CHANNEL = "feed"
UNIT = Decimal("0.0001")

ORDER_COLUMNS = (
    "order_id", "order_number", "created_at", "updated_at", "status", "payment_status", "currency", "subtotal",
    "discount", "shipping", "tax", "total", "refunded", "customer_id", "email", "phone", "buyer_name", "ship_name",
    "ship_line1", "ship_line2", "ship_city", "ship_region", "ship_postal_code", "ship_country", "ship_by",
    "fulfilled_by", "source_name",
)
LINE_COLUMNS = ("sku", "title", "quantity", "unit_price", "discount", "tax", "total")  # flat rows: line_<name>

_STATUS_GROUPS: dict[tuple[str, str], tuple[str, ...]] = {
    ("pending", "pending"): ("pending", "new", "on_hold", "awaiting_payment", "unpaid"),
    ("unfulfilled", "paid"): ("unfulfilled", "processing", "open", "unshipped", "paid", "confirmed"),
    ("partially_fulfilled", "paid"): ("partially_fulfilled", "partially_shipped", "partial"),
    ("fulfilled", "paid"): ("fulfilled", "shipped", "delivered", "completed", "complete"),
    ("cancelled", "voided"): ("cancelled", "canceled", "failed", "voided", "rejected"),
    ("cancelled", "refunded"): ("refunded",),
    ("fulfilled", "refunded"): ("returned",),
}
STATUS_TABLE = {name: pair for pair, names in _STATUS_GROUPS.items() for name in names}
PAYMENT_TABLE = {
    "pending": "pending", "unpaid": "pending", "authorized": "pending", "paid": "paid", "captured": "paid",
    "partially_refunded": "partially_refunded", "refunded": "refunded", "voided": "voided", "cancelled": "voided",
}


def _slug(value: str) -> str:
    return "_".join(value.strip().lower().replace("-", " ").split())


class _Reader:
    """Reads canonical fields out of raw records through a store's mapping and settings."""

    def __init__(self, store_cfg: Any, mapping: dict[str, str], settings: Settings) -> None:
        self.mapping = mapping
        self.zone = ZoneInfo(getattr(store_cfg, "timezone", None) or settings.timezone)
        self.date_format: str | None = getattr(store_cfg, "date_format", None)
        self.currency: str | None = getattr(store_cfg, "currency", None)
        self.statuses = {_slug(k): _slug(v) for k, v in (getattr(store_cfg, "statuses", None) or {}).items()}
        self.store_key: str = getattr(store_cfg, "key", "")

    def get(self, record: dict[str, Any], canonical: str, default_key: str | None = None) -> Any:
        return record.get(self.mapping.get(canonical, default_key or canonical))

    def ts(self, value: Any, name: str, problems: list[str]) -> datetime | None:
        raw = text(value)
        if raw is None:
            return None
        try:
            if self.date_format:
                parsed = datetime.strptime(raw, self.date_format)  # noqa: DTZ007 - zone applied below
            else:
                parsed = datetime.fromisoformat(raw)
        except ValueError:
            want = f"the format {self.date_format!r}" if self.date_format else "ISO 8601 (or set date_format)"
            problems.append(f"{name} {raw!r} is not a date in {want}")
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.zone)
        return parsed.astimezone(ZoneInfo("UTC"))

    def status(self, raw_status: Any, raw_payment: Any, problems: list[str]) -> tuple[str | None, str | None]:
        raw = text(raw_status)
        if raw is None:
            problems.append("status missing")
            return None, None
        slug = self.statuses.get(_slug(raw), _slug(raw))
        if slug not in STATUS_TABLE:
            problems.append(
                f"feed status {raw!r} is not mapped: add it to statuses of feed store {self.store_key or '<key>'!r} "
                f"in orderhub.toml, e.g. {{ {_slug(raw)!r} = \"shipped\" }} (values: {', '.join(sorted(STATUS_TABLE))})"
            )
            return None, None
        status, payment = STATUS_TABLE[slug]
        pay = text(raw_payment)
        if pay is not None:
            if _slug(pay) not in PAYMENT_TABLE:
                problems.append(f"payment_status {pay!r} is not one of {', '.join(sorted(PAYMENT_TABLE))}")
                return status, None
            payment = PAYMENT_TABLE[_slug(pay)]
        return status, payment


def _quantity(value: Any, line_no: int, problems: list[str]) -> int | None:
    raw = text(value)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        try:
            as_decimal = Decimal(raw)  # "2.0" from a spreadsheet
        except ArithmeticError:
            as_decimal = None
        if as_decimal is not None and as_decimal == as_decimal.to_integral_value():
            return int(as_decimal)
        problems.append(f"line {line_no} quantity {value!r} is not a whole number")
        return None


def _line(reader: _Reader, item: dict[str, Any], flat: bool, order_id: str | None, line_no: int,
          problems: list[str]) -> dict[str, Any] | None:
    """One canonical line from a flat row (``line_*`` columns) or a ``lines`` object; None when the row has none."""
    raw = {c: reader.get(item, f"line_{c}", f"line_{c}" if flat else c) for c in LINE_COLUMNS}
    if flat and all(text(v) is None for v in raw.values()):
        return None
    qty = _quantity(raw["quantity"], line_no, problems)
    unit = money(raw["unit_price"], f"line {line_no} unit_price", problems)
    discount = money(raw["discount"], f"line {line_no} discount", problems)
    tax = money(raw["tax"], f"line {line_no} tax", problems)
    total = money(raw["total"], f"line {line_no} total", problems)
    if total is None and unit is not None and qty is not None:
        total = unit * qty - (discount or 0) + (tax or 0)
    return {"order_id": order_id, "line_no": line_no, "sku": text(raw["sku"]), "master_sku": None,
            "title": text(raw["title"]), "quantity": qty, "unit_price": unit, "discount": discount, "tax": tax,
            "total": total}


def _group(records: list[tuple[dict[str, Any], str | None]], mapping: dict[str, str]) -> list[list[tuple[dict, str | None]]]:
    """Records of one order together, in the order of first appearance; a record without an id stands alone."""
    groups: dict[str, list[tuple[dict, str | None]]] = {}
    out: list[list[tuple[dict, str | None]]] = []
    for rec in records:
        key = order_key(rec[0], mapping)
        if key is None:
            out.append([rec])
        elif key in groups:
            groups[key].append(rec)
        else:
            groups[key] = [rec]
            out.append(groups[key])
    return out


def flatten(manifest: Manifest, group: list[tuple[dict[str, Any], str | None]], reader: _Reader,
            settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The records of one order as a flat canonical order row plus its lines."""
    first = group[0][0]
    payload = first if len(group) == 1 else {"rows": [r for r, _ in group]}
    row = base_row(manifest, order_key(first, reader.mapping), payload)
    problems: list[str] = row["_problems"]
    problems.extend(p for _, p in group if p)
    values: dict[str, Any] = {}
    for column in ORDER_COLUMNS:
        for record, _ in group:
            value = text(reader.get(record, column))
            if value is None:
                continue
            if column not in values:
                values[column] = value
            elif values[column] != value:
                problems.append(f"rows of order {row['external_id']} disagree on {column}: {values[column]!r} vs {value!r}")
                break
    lines: list[dict[str, Any]] = []
    for record, _ in group:
        nested = reader.get(record, "lines")
        if isinstance(nested, list):
            for item in nested:
                if not isinstance(item, dict):
                    problems.append(f"line {len(lines) + 1} is not an object")
                    continue
                line = _line(reader, item, False, row["order_id"], len(lines) + 1, problems)
                if line is not None:
                    lines.append(line)
        elif nested is not None:
            problems.append("lines is not a list")
        else:
            line = _line(reader, record, True, row["order_id"], len(lines) + 1, problems)
            if line is not None:
                lines.append(line)

    total = money(values.get("total"), "total", problems)
    refunded = money(values.get("refunded"), "refunded", problems) or Decimal(0)
    status, payment = reader.status(values.get("status"), values.get("payment_status"), problems)
    if payment == "paid" and refunded > 0:
        payment = "refunded" if total is not None and refunded >= total else "partially_refunded"
    subtotal = money(values.get("subtotal"), "subtotal", problems)
    if subtotal is None and lines and all(ln["unit_price"] is not None and ln["quantity"] is not None for ln in lines):
        subtotal = sum((ln["unit_price"] * ln["quantity"] for ln in lines), Decimal(0))
    created = reader.ts(values.get("created_at"), "created_at", problems)
    fulfilled_by = (text(values.get("fulfilled_by")) or "merchant").lower()
    if fulfilled_by not in ("merchant", "marketplace"):
        problems.append(f"fulfilled_by {fulfilled_by!r} is neither merchant nor marketplace")
    ship_by = reader.ts(values.get("ship_by"), "ship_by", problems)
    row.update({
        "order_number": values.get("order_number") or row["external_id"],
        "created_at": created,
        "updated_at": reader.ts(values.get("updated_at"), "updated_at", problems) or created,
        "status": status,
        "payment_status": payment,
        "currency": values.get("currency") or reader.currency,
        "subtotal": subtotal,
        "discount": money(values.get("discount"), "discount", problems),
        "shipping": money(values.get("shipping"), "shipping", problems),
        "tax": money(values.get("tax"), "tax", problems),
        "total": total,
        "refunded": refunded,
        "channel_customer_key": values.get("customer_id"),
        "email": values.get("email"),
        "phone": values.get("phone"),
        "buyer_name": values.get("buyer_name"),
        "pii_masked": False,
        "ship_name": values.get("ship_name") or values.get("buyer_name"),
        "ship_line1": values.get("ship_line1"),
        "ship_line2": values.get("ship_line2"),
        "ship_city": values.get("ship_city"),
        "ship_region": values.get("ship_region"),
        "ship_postal_code": values.get("ship_postal_code"),
        "ship_country": values.get("ship_country"),
        "fulfilled_by": fulfilled_by,
        "ship_by": ship_by or (created + timedelta(days=settings.ship_sla_days) if created else None),
        "source_name": values.get("source_name"),
    })
    return row, lines


@register(CHANNEL)
def normalize(manifest: Manifest, parts: list[tuple[PartInfo, bytes]], settings: Settings) -> BatchRows:
    """Flat rows of one landed feed batch; unreadable files, bad records and cut tails go to quarantine."""
    rows = BatchRows()
    store_cfg = settings.store(CHANNEL, manifest.store)
    formats = {kind: fmt for fmt, kind in KINDS.items()}
    for part, body in parts:
        fmt = formats.get(part.kind)
        if fmt is None:
            rows.quarantine.append(unreadable_part(manifest, part, body, f"unknown part kind {part.kind!r}"))
            continue
        source = part.request.get("source") or part.file
        landed_mapping = part.request.get("mapping")
        mapping = landed_mapping if landed_mapping else dict(getattr(store_cfg, "mapping", None) or {})
        reader = _Reader(store_cfg, mapping, settings)
        parsed = parse(body, fmt)
        if parsed.error is not None:
            rows.quarantine.append(unreadable_part(manifest, part, body, f"{source}: {parsed.error}"))
            continue
        groups = _group(parsed.records, mapping)
        tail_order: str | None = None
        if parsed.tail is not None:
            tail_order = order_key(parsed.tail_fields, mapping)
            if tail_order is None and groups:
                tail_order = order_key(groups[-1][0][0], mapping)  # the cut line may be this order's next item
        counted = False
        for group in groups:
            order, lines = flatten(manifest, group, reader, settings)
            if tail_order is not None and order["external_id"] == tail_order:
                order["_problems"].append(
                    f"{source}: the file's cut last line may belong to this order, so its line items may be "
                    f"incomplete; it loads from the file's next complete version")
                counted = True
            rows.orders.append(order)
            rows.lines.extend(lines)
        if parsed.tail is not None:
            rows.quarantine.append({
                "channel": manifest.channel, "store": manifest.store, "external_id": tail_order,
                "reason": f"{source}: the last line is cut off (no newline at the end and {parsed.tail_reason}): "
                          f"the file was taken while still being written; the order comes with its next version",
                "payload": payload_text({"source": source, "tail": parsed.tail}),
                "landed_at": manifest.landed_at_dt, "batch_id": manifest.batch_id,
                "records": 0 if counted or tail_order is None else 1,
            })
    return rows
