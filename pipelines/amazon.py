"""Amazon normalizer: Orders v2026-01-01 and v0 bodies, and order reports, to canonical order and line rows.

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

Order reports (``GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL``, connectors/amazon/README.md):
a TSV document, one row per item, read by header name in polars (no per-cell Python: a 30-day report
of a big seller holds ~300k rows). ``order-status`` maps as v0 does:

=============================================================  ===================  ==============
report ``order-status``                                        status               payment_status
=============================================================  ===================  ==============
Pending, PendingAvailability                                   pending              pending
Unshipped                                                      unfulfilled          paid
PartiallyShipped                                               partially_fulfilled  paid
Shipped, every ``Shipped - …`` sub-status, InvoiceUnconfirmed  fulfilled            paid
Cancelled (the report's spelling), Canceled, Unfulfillable     cancelled            voided
=============================================================  ===================  ==============

- One order per distinct ``amazon-order-id`` cell (the connector's ``records``), in order of first
  appearance; order-level cells from its first row; lines in row order, ``line_no`` = the row's place
  in the order (a row without product-name, sku, asin and quantity is no line).
- Money (NULL while Pending, i.e. when every money cell of the order is empty): subtotal = Σ item-price;
  shipping = Σ (shipping-price + ship-promotion-discount); tax = Σ (item-tax + shipping-tax +
  gift-wrap-tax); discount = −Σ item-promotion-discount; total = Σ of the eight money columns.
  Lines: unit_price = item-price / quantity (NULL at quantity 0 or without a price), discount =
  −item-promotion-discount, tax = item-tax, total = item-price − discount + tax.
- ``fulfilled_by`` from fulfillment-channel (Amazon / Merchant), ``source_name`` = sales-channel,
  ``ship_*`` from ship-city/-state/-postal-code/-country, ``ship_by`` = created_at + the SLA;
  e-mail, phone, names and street lines NULL, ``pii_masked`` and ``partial`` true.
- Quarantined per order (every reason): a bad date, amount or quantity, an unknown status or
  fulfillment channel, rows disagreeing on the currency, and what :func:`pipelines.common.finish`
  checks. The payload is the order's raw rows under a header line; a document without
  amazon-order-id, purchase-date, last-updated-date or order-status, one that does not decode, or one
  with a row of another width than the header is quarantined whole.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from connectors.landing import Manifest, PartInfo
from orderhub.config import Settings
from pipelines.common import (
    LINE_FRAME,
    NULL_STRINGS,
    ORDER_FRAME,
    BatchRows,
    base_row,
    boolean,
    money,
    register,
    text,
    ts,
    unreadable_part,
)
from pipelines.schema import TS, conform

SEARCH_ORDERS = "amazon.orders.v2026.searchOrders"
GET_ORDER = "amazon.orders.v2026.getOrder"
V0_ORDERS = "amazon.orders.v0.getOrders"
V0_ORDER = "amazon.orders.v0.getOrder"
V0_ITEMS = "amazon.orders.v0.getOrderItems"
V0_BUYER = "amazon.orders.v0.getOrderBuyerInfo"
V0_ADDRESS = "amazon.orders.v0.getOrderAddress"
REPORT = "amazon.reports.GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"

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

# The order report's documented columns in their documented order
# (../shared/fixtures/real/amazon/reports/GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL.columns.json).
REPORT_COLUMNS = (
    "amazon-order-id", "merchant-order-id", "purchase-date", "last-updated-date", "order-status",
    "fulfillment-channel", "sales-channel", "order-channel", "ship-service-level", "product-name", "sku", "asin",
    "item-status", "quantity", "currency", "item-price", "item-tax", "shipping-price", "shipping-tax",
    "gift-wrap-price", "gift-wrap-tax", "item-promotion-discount", "ship-promotion-discount", "ship-city",
    "ship-state", "ship-postal-code", "ship-country", "promotion-ids", "is-business-order", "purchase-order-number",
    "price-designation",
)
REPORT_REQUIRED = ("amazon-order-id", "purchase-date", "last-updated-date", "order-status")
REPORT_MONEY = ("item-price", "item-tax", "shipping-price", "shipping-tax", "gift-wrap-price", "gift-wrap-tax",
                "item-promotion-discount", "ship-promotion-discount")
REPORT_ORDER = ("purchase-date", "last-updated-date", "order-status", "fulfillment-channel", "sales-channel",
                "ship-city", "ship-state", "ship-postal-code", "ship-country")  # read from an order's first row
REPORT_ITEM = ("product-name", "sku", "asin", "quantity")  # a row with none of them is no line item
_REPORT_STATUS = {name: STATUS[name] for name in ("Pending", "PendingAvailability", "Unshipped", "PartiallyShipped",
                                                  "Shipped", "InvoiceUnconfirmed", "Canceled", "Unfulfillable")}
_REPORT_STATUS["Cancelled"] = STATUS["Canceled"]  # the report's spelling
REPORT_STATUS = {name: pair[0] for name, pair in _REPORT_STATUS.items()}
REPORT_PAYMENT = {name: pair[1] for name, pair in _REPORT_STATUS.items()}
REPORT_FULFILLED_BY = {"Amazon": "marketplace", "Merchant": "merchant", **FULFILLED_BY}
WIDE = pl.Decimal(38, 8)  # report amounts while summing; finish() keeps MONEY
MONEY_LIMIT = Decimal(10) ** 14  # MONEY is Decimal(18, 4): 14 digits before the point


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


# -- the order report (Reports API 2021-06-30) ----------------------------------------------------------
class UnreadableReport(ValueError):
    """A report document that cannot be read at all: its part is quarantined whole."""


def read_report(body: bytes, charset: str | None) -> pl.DataFrame:
    """Every cell of an order report document as text, one column per header name, rows in file order.

    Args:
        body: the document bytes (after gunzip).
        charset: the download's charset (``part.request["charset"]``); UTF-8 when absent.

    Raises:
        UnreadableReport: the bytes do not decode, the header lacks a required column or repeats one,
            or a row has another number of fields than the header.
    """
    try:
        utf8 = codecs.lookup(charset or "utf-8").name == "utf-8"
    except LookupError:
        raise UnreadableReport(f"the document's charset {charset!r} is unknown") from None
    data = body.removeprefix(codecs.BOM_UTF8) if utf8 else _reencoded(body, charset)
    end = data.find(b"\n")
    first = data[: end if end >= 0 else len(data)].decode("utf-8", errors="replace")
    header = [name.strip() for name in first.split("\t")]
    missing = [name for name in REPORT_REQUIRED if name not in header]
    if missing:
        raise UnreadableReport(f"the header lacks the required column(s) {', '.join(missing)}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise UnreadableReport(f"the header repeats the column(s) {', '.join(repeated)}")
    cells = _read_fast(data, header)
    return cells if cells is not None else _read_exact(data, header)


def _reencoded(body: bytes, charset: str | None) -> bytes:
    """A document in another charset as UTF-8 bytes (what the TSV reader reads)."""
    try:
        return body.decode(charset or "utf-8").removeprefix("\ufeff").encode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableReport(f"the document is not {charset} text ({exc})") from None


def _read_fast(data: bytes, header: list[str]) -> pl.DataFrame | None:
    """The cells by polars' multi-threaded reader, or None when a row may be ragged, blank or not UTF-8.

    polars pads a short row with empty cells, so the check is the tab count: no row longer than the
    header (polars refuses those) and every row as long, exactly when the document holds rows x
    (columns - 1) tabs.
    """
    try:
        cells = pl.read_csv(data, separator="\t", quote_char=None, infer_schema=False, empty_string_is_null=False,
                            truncate_ragged_lines=False, raise_if_empty=False, new_columns=header)
    except pl.exceptions.PolarsError:
        return None
    return cells if data.count(b"\t") == (cells.height + 1) * (len(header) - 1) else None


def _read_exact(data: bytes, header: list[str]) -> pl.DataFrame:
    """The cells line by line: blank lines skipped, ``\\r\\n`` accepted, the first ragged row named."""
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableReport(f"the document is not utf-8 text ({exc})") from None
    rest = content.replace("\r\n", "\n").partition("\n")[2]
    lines = pl.DataFrame({"_line": rest.split("\n")}).with_row_index("_at", offset=2).filter(pl.col("_line") != "")
    fields = pl.col("_line").str.count_matches("\t", literal=True) + 1
    ragged = lines.filter(fields != len(header)).head(1).select("_at", fields)
    if ragged.height:
        at, found = ragged.row(0)
        raise UnreadableReport(f"row {at} has {found} fields, the header {len(header)} (a cut-off document?)")
    if lines.height == 0:
        return pl.DataFrame(schema=dict.fromkeys(header, pl.String()))
    cells = pl.col("_line").str.split_exact("\t", len(header) - 1).struct.rename_fields(header)
    return lines.select(cells).unnest("_line")


def report_frames(manifest: Manifest, cells: pl.DataFrame, settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Canonical order rows (``ORDER_FRAME``) and lines (``LINE_FRAME``) of the cells :func:`read_report` read.

    One order per distinct ``amazon-order-id`` cell, in order of first appearance. Its raw record
    (``_payload``, hashed into ``record_hash``) is a header line and the order's rows with the columns
    in a canonical order: documented ones as documented, then any others by name. A document with
    its columns in another order thus gives the same rows, payloads and hashes.
    """
    present = list(cells.columns)
    canonical = [c for c in REPORT_COLUMNS if c in present] + sorted(c for c in present if c not in REPORT_COLUMNS)
    rows = cells.with_columns(
        pl.concat_str(canonical, separator="\t").alias("_raw"),
        *(pl.lit("", dtype=pl.String).alias(c) for c in REPORT_COLUMNS if c not in present),
    ).with_columns(
        pl.any_horizontal(pl.col(c).str.strip_chars() != "" for c in REPORT_ITEM).alias("_is_item"),
        (pl.int_range(pl.len(), dtype=pl.Int32).over("amazon-order-id") + 1).alias("_line_no"),
        _text("amazon-order-id").alias("_external_id"),
    )
    rows = _report_rows(rows, manifest)
    lines = rows.filter("_is_item").select(
        "order_id", pl.col("_line_no").alias("line_no"), "sku", "title", "quantity", "unit_price",
        pl.col("_line_discount").alias("discount"), "tax", pl.col("_line_total").alias("total"),
        pl.lit(manifest.batch_id).alias("batch_id"),
    )
    return _report_orders(rows, manifest, "\t".join(canonical), settings), conform(lines, LINE_FRAME)


def _text(name: str) -> pl.Expr:
    """A cell read as :func:`pipelines.common.text` reads a field: NFC, trimmed, NULL for ``""``/``null``."""
    value = pl.col(name).str.normalize("NFC").str.strip_chars()
    return pl.when(value.is_in(list(NULL_STRINGS))).then(None).otherwise(value)


def _item(what: str, *args: pl.Expr) -> pl.Expr:
    """A row's problem, named after its item as the v0 reader names them (``item 2 ...``)."""
    return pl.format("item {} " + what, pl.col("_line_no"), *args)


def _amount(name: str) -> tuple[pl.Expr, pl.Expr]:
    """A money cell as an exact decimal (NULL when empty or bad), and the problem of a bad one."""
    raw = pl.col(name).str.strip_chars()
    wide = raw.cast(WIDE, strict=False)
    problem = (
        pl.when(~raw.is_in(list(NULL_STRINGS)) & wide.is_null()).then(_item(f"{name} '{{}}' is not a decimal amount", raw))
        .when(wide.abs() >= MONEY_LIMIT).then(_item(f"{name} '{{}}' is out of range", raw))
    )
    return pl.when(wide.abs() < MONEY_LIMIT).then(wide), problem


def _out_of_range(names: tuple[str, ...], what: Callable[[str], pl.Expr]) -> list[pl.Expr]:
    """Problems for computed amounts too large for MONEY (the cells were each in range)."""
    return [pl.when(pl.col(n).abs() >= MONEY_LIMIT).then(what(n)) for n in names]


def _report_rows(rows: pl.DataFrame, manifest: Manifest) -> pl.DataFrame:
    """Row-level typing: amounts, quantity, the line's money, and every problem found in the row."""
    amounts = {name: _amount(name) for name in REPORT_MONEY}
    raw_qty = pl.col("quantity").str.strip_chars()
    qty = raw_qty.cast(pl.Int32, strict=False)
    rows = rows.with_columns(
        *(value.alias(name) for name, (value, _) in amounts.items()),
        pl.when(pl.col("_is_item") & (raw_qty == "")).then(_item("quantity missing"))
        .when(pl.col("_is_item") & qty.is_null()).then(_item("quantity '{}' is not a whole number", raw_qty))
        .alias("_qty_problem"),
        qty.alias("quantity"),
        pl.when(pl.col("_external_id").is_not_null())
        .then(pl.format(f"amazon:{manifest.store}:{{}}", "_external_id")).alias("order_id"),
        _text("sku").alias("sku"),
        _text("product-name").alias("title"),
        pl.concat_list(*(problem for _, problem in amounts.values())).alias("_row_problems"),
    )
    price, discount, tax = pl.col("item-price"), pl.lit(0, dtype=WIDE) - pl.col("item-promotion-discount"), pl.col("item-tax")
    rows = rows.with_columns(
        pl.when((pl.col("quantity") != 0) & price.is_not_null()).then(price / pl.col("quantity")).alias("unit_price"),
        discount.alias("_line_discount"),
        tax.alias("tax"),
        pl.when(price.is_not_null()).then(price - discount.fill_null(0) + tax.fill_null(0)).alias("_line_total"),
    )
    checks = _out_of_range(("_line_discount", "_line_total"), lambda n: _item(f"{n.removeprefix('_line_')} is out of range"))
    return rows.with_columns(
        pl.concat_list("_row_problems", "_qty_problem", *checks).list.drop_nulls().alias("_row_problems")
    )


def _report_orders(rows: pl.DataFrame, manifest: Manifest, header: str, settings: Settings) -> pl.DataFrame:
    """One ``ORDER_FRAME`` row per ``amazon-order-id``: the first row's order cells, summed money, the raw rows."""
    money = [pl.col(c) for c in REPORT_MONEY]
    currency = pl.col("currency").str.strip_chars()
    orders = rows.group_by("amazon-order-id", maintain_order=True).agg(
        pl.col("_external_id", "order_id", *REPORT_ORDER).first(),
        currency.filter(currency != "").unique(maintain_order=True).alias("_currencies"),
        *(c.sum() for c in money),
        pl.any_horizontal(c.is_not_null() for c in money).any().alias("_priced"),
        pl.col("_row_problems").list.explode(keep_nulls=False, empty_as_null=False).alias("_problems"),
        pl.col("_raw").str.join("\n"),
    )
    created, created_problem = _times(orders["purchase-date"], "purchase-date")
    updated, updated_problem = _times(orders["last-updated-date"], "last-updated-date")
    orders = orders.with_columns(created.alias("created_at"), created_problem.alias("_created_problem"),
                                 updated.alias("updated_at"), updated_problem.alias("_updated_problem"))
    status, channel, priced = _text("order-status"), _text("fulfillment-channel"), pl.col("_priced")
    shipped = status.str.starts_with("Shipped - ")
    fulfilled_by = channel.replace_strict(REPORT_FULFILLED_BY, default=None, return_dtype=pl.String)
    totals = {
        "subtotal": pl.col("item-price"),
        "shipping": pl.col("shipping-price") + pl.col("ship-promotion-discount"),
        "tax": pl.col("item-tax") + pl.col("shipping-tax") + pl.col("gift-wrap-tax"),
        "discount": pl.lit(0, dtype=WIDE) - pl.col("item-promotion-discount"),
        "total": pl.sum_horizontal(money),
    }
    orders = orders.with_columns(
        pl.lit(manifest.channel).alias("channel"), pl.lit(manifest.store).alias("store"),
        pl.col("_external_id").alias("external_id"), pl.col("_external_id").alias("order_number"),
        pl.when(shipped).then(pl.lit("fulfilled"))
        .otherwise(status.replace_strict(REPORT_STATUS, default=status, return_dtype=pl.String)).alias("status"),
        pl.when(shipped).then(pl.lit("paid"))
        .otherwise(status.replace_strict(REPORT_PAYMENT, default=None, return_dtype=pl.String)).alias("payment_status"),
        pl.col("_currencies").list.first().alias("currency"),
        *(pl.when(priced).then(expr).alias(name) for name, expr in totals.items()),
        _text("ship-city").alias("ship_city"), _text("ship-state").alias("ship_region"),
        _text("ship-postal-code").alias("ship_postal_code"), _text("ship-country").alias("ship_country"),
        fulfilled_by.alias("fulfilled_by"),
        (pl.col("created_at") + timedelta(days=settings.ship_sla_days)).alias("ship_by"),
        _text("sales-channel").alias("source_name"),
        pl.lit(True).alias("pii_masked"), pl.lit(True).alias("partial"),
        pl.lit(manifest.batch_id).alias("batch_id"), pl.lit(manifest.landed_at_dt).alias("landed_at"),
        pl.concat_str(pl.lit(header + "\n"), "_raw").alias("_payload"),
        _hashes(header, orders["_raw"]),
        pl.concat_list(
            "_problems", "_created_problem", "_updated_problem",
            pl.when(status.is_null()).then(pl.lit("order-status missing: the order status is unknown")),
            pl.when(fulfilled_by.is_null()).then(
                pl.format("fulfillment-channel '{}' is neither Amazon nor Merchant", pl.col("fulfillment-channel"))),
            pl.when(pl.col("_currencies").list.len() > 1).then(
                pl.format("the order's rows disagree on the currency ({})", pl.col("_currencies").list.join(", "))),
        ).alias("_problems"),
    )
    checks = _out_of_range(tuple(totals), lambda n: pl.lit(f"{n} is out of range"))
    orders = orders.with_columns(pl.concat_list("_problems", *checks).list.drop_nulls().alias("_problems"))
    return conform(orders, ORDER_FRAME)


def _hashes(header: str, rows: pl.Series) -> pl.Series:
    """``record_hash`` of each order: sha256 of its ``_payload`` (the header line, then its raw rows)."""
    start = hashlib.sha256(f"{header}\n".encode())
    digests = []
    for order_rows in rows:
        digest = start.copy()
        digest.update(order_rows.encode())
        digests.append(digest.hexdigest())
    return pl.Series("record_hash", digests, dtype=pl.String)


def _times(raw: pl.Series, name: str) -> tuple[pl.Series, pl.Series]:
    """ISO 8601 cells as UTC datetimes and their problems: vectorized, :func:`ts` for what that did not read."""
    value = raw.str.strip_chars()
    fast = value.str.to_datetime("%+", strict=False, time_unit="us", time_zone="UTC")
    parsed: dict[str, datetime | None] = {}
    problems: dict[str, str] = {}
    for cell in value.filter(fast.is_null() & ~value.is_in(list(NULL_STRINGS))).unique():
        found: list[str] = []
        parsed[cell] = ts(cell, name, found)
        if found:
            problems[cell] = found[0]
    values = fast.fill_null(value.replace_strict(parsed, default=None, return_dtype=TS)) if parsed else fast
    return values, value.replace_strict(problems, default=None, return_dtype=pl.String)


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
        if part.kind == REPORT:
            try:
                cells = read_report(body, part.request.get("charset"))
            except UnreadableReport as exc:
                unreadable(part, body, str(exc))
                continue
            rows.frames.append(report_frames(manifest, cells, settings))
            continue
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
