"""Normalize scraped storefront orders (``storefront.orders.jsonl`` parts) into canonical rows.

Each line is one order as the spider extracted it: raw strings by profile field name. Amounts are
written in the shop's locale (``1.234,50 €``): currency symbols and spaces are dropped and the
profile's thousands and decimal separators decide the rest (babel is not a dependency; the
profile names the separators). Dates are naive in the shop's time zone and become UTC. Status and
payment labels map through the profile's ``statuses`` / ``payment_statuses``; an unmapped label,
a bad amount or date quarantines the order with every reason.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from connectors.landing import Manifest, PartInfo
from orderhub.config import Settings
from pipelines.common import BatchRows, base_row, register, text, unreadable_part

CHANNEL = "storefront"
KIND = "storefront.orders.jsonl"
_NOT_AMOUNT = re.compile(r"[^0-9.,'\-\u2212 \u00a0\u202f]")


class _Reader:
    """Parses one shop's amounts, dates and labels (the ``format`` landed with the part)."""

    def __init__(self, fmt: dict[str, Any]) -> None:
        self.decimal: str = fmt.get("decimal", ".")
        self.thousands: str = fmt.get("thousands", ",")
        self.dates: list[str] = fmt.get("dates") or []
        self.zone = ZoneInfo(fmt.get("timezone") or "UTC")
        self.statuses: dict[str, str] = fmt.get("statuses") or {}
        self.payments: dict[str, str] = fmt.get("payment_statuses") or {}

    def money(self, value: Any, name: str, problems: list[str]) -> Decimal | None:
        raw = text(value)
        if raw is None:
            return None
        digits = _NOT_AMOUNT.sub("", raw).replace("\u2212", "-")
        for sep in {self.thousands, " ", "\u00a0", "\u202f", "'"} - {self.decimal}:
            digits = digits.replace(sep, "")
        digits = digits.replace(self.decimal, ".").strip()
        try:
            amount = Decimal(digits)
        except InvalidOperation:
            problems.append(f"{name} {raw!r} is not an amount with decimal {self.decimal!r} and thousands {self.thousands!r}")
            return None
        return amount

    def ts(self, value: Any, name: str, problems: list[str]) -> datetime | None:
        raw = text(value)
        if raw is None:
            return None
        for fmt in self.dates:
            try:
                return datetime.strptime(raw, fmt).replace(tzinfo=self.zone).astimezone(UTC)
            except ValueError:
                continue
        problems.append(f"{name} {raw!r} matches none of the profile's format.dates {self.dates}")
        return None

    def label(self, value: Any, table: dict[str, str], name: str, problems: list[str]) -> str | None:
        raw = text(value)
        if raw is None:
            problems.append(f"{name} missing")
            return None
        if raw not in table:
            problems.append(f"{name} {raw!r} is not mapped: add it to format.{name}es of the site profile "
                            f"(known: {', '.join(sorted(table))})")
            return None
        return table[raw]


def _quantity(value: Any, line_no: int, problems: list[str]) -> int | None:
    raw = text(value)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        problems.append(f"line {line_no} quantity {raw!r} is not a whole number")
        return None


def flatten(manifest: Manifest, item: dict[str, Any], reader: _Reader, currency: str | None,
            settings: Settings) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One scraped order as a flat canonical order row plus its lines."""
    f: dict[str, Any] = item.get("fields") or {}
    row = base_row(manifest, f.get("order_id") or item.get("order_id"), item)
    problems: list[str] = row["_problems"]
    lines = []
    for n, raw in enumerate(item.get("lines") or [], start=1):
        lines.append({
            "order_id": row["order_id"], "line_no": n, "sku": text(raw.get("sku")), "master_sku": None,
            "title": text(raw.get("title")), "quantity": _quantity(raw.get("quantity"), n, problems),
            "unit_price": reader.money(raw.get("unit_price"), f"line {n} unit_price", problems),
            "discount": reader.money(raw.get("discount"), f"line {n} discount", problems),
            "tax": reader.money(raw.get("tax"), f"line {n} tax", problems),
            "total": reader.money(raw.get("total"), f"line {n} total", problems)})
    created = reader.ts(f.get("created_at"), "created_at", problems)
    total = reader.money(f.get("total"), "total", problems)
    refunded = reader.money(f.get("refunded"), "refunded", problems) or Decimal(0)
    row.update({
        "order_number": text(f.get("order_number")) or row["external_id"],
        "created_at": created,
        "updated_at": reader.ts(f.get("updated_at"), "updated_at", problems) or created,
        "status": reader.label(f.get("status"), reader.statuses, "status", problems),
        "payment_status": reader.label(f.get("payment_status"), reader.payments, "payment_status", problems),
        "currency": currency,
        "subtotal": reader.money(f.get("subtotal"), "subtotal", problems),
        "discount": reader.money(f.get("discount"), "discount", problems),
        "shipping": reader.money(f.get("shipping"), "shipping", problems),
        "tax": reader.money(f.get("tax"), "tax", problems),
        "total": total,
        "refunded": refunded,
        "channel_customer_key": None,
        "email": text(f.get("email")),
        "phone": text(f.get("phone")),
        "buyer_name": text(f.get("buyer_name")),
        "pii_masked": False,
        "ship_name": text(f.get("ship_name")) or text(f.get("buyer_name")),
        "ship_line1": text(f.get("ship_line1")),
        "ship_line2": text(f.get("ship_line2")),
        "ship_city": text(f.get("ship_city")),
        "ship_region": text(f.get("ship_region")),
        "ship_postal_code": text(f.get("ship_postal_code")),
        "ship_country": text(f.get("ship_country")),
        "fulfilled_by": "merchant",
        "ship_by": created + timedelta(days=settings.ship_sla_days) if created else None,
        "source_name": None,
    })
    return row, lines


@register(CHANNEL)
def normalize(manifest: Manifest, parts: list[tuple[PartInfo, bytes]], settings: Settings) -> BatchRows:
    """Flat rows of one landed crawl; unreadable lines and bad orders go to quarantine."""
    rows = BatchRows()
    store_cfg = settings.store(CHANNEL, manifest.store)
    for part, body in parts:
        if part.kind != KIND:
            rows.quarantine.append(unreadable_part(manifest, part, body, f"unknown part kind {part.kind!r}"))
            continue
        fmt = dict(part.request.get("format") or {})
        reader = _Reader(fmt)
        currency = fmt.get("currency") or getattr(store_cfg, "currency", None)
        for n, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                rows.quarantine.append({
                    "channel": manifest.channel, "store": manifest.store, "external_id": None,
                    "reason": f"{part.file} line {n} is not JSON ({exc})", "payload": line.decode("utf-8", "replace"),
                    "landed_at": manifest.landed_at_dt, "batch_id": manifest.batch_id, "records": 1})
                continue
            order, lines = flatten(manifest, item, reader, currency, settings)
            rows.orders.append(order)
            rows.lines.extend(lines)
    return rows
