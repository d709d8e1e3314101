"""The canonical tables as polars schemas: the contract between pipelines, dedupe and the warehouse.

Money is ``Decimal(18, 4)``: exact, and wide enough for three-decimal currencies. Times are
UTC-aware. Extend these schemas, never rename a column (DESIGN.md).
"""

from __future__ import annotations

import polars as pl

MONEY = pl.Decimal(18, 4)
TS = pl.Datetime("us", "UTC")

CHANNELS = ("amazon", "shopify", "woocommerce", "storefront", "feed")
STATUSES = ("pending", "unfulfilled", "partially_fulfilled", "fulfilled", "cancelled")
PAYMENT_STATUSES = ("pending", "paid", "partially_refunded", "refunded", "voided")

# One row per order *version* as normalized from one landed record. dedupe/ keeps the latest
# version per order_id and fills customer_id and duplicate_of; the warehouse `orders` table has
# exactly these columns.
ORDER_SCHEMA: dict[str, pl.DataType] = {
    "order_id": pl.String,  # {channel}:{store}:{external_id}
    "channel": pl.String,
    "store": pl.String,
    "external_id": pl.String,
    "order_number": pl.String,
    "created_at": TS,
    "updated_at": TS,
    "status": pl.String,
    "payment_status": pl.String,
    "currency": pl.String,
    "presentment_currency": pl.String,
    "subtotal": MONEY,
    "discount": MONEY,
    "shipping": MONEY,
    "tax": MONEY,
    "total": MONEY,
    "refunded": MONEY,
    "presentment_total": MONEY,
    "total_base": MONEY,
    "customer_id": pl.String,  # filled by dedupe/identity
    "channel_customer_key": pl.String,  # the channel's own customer id, when it has one
    "email": pl.String,
    "phone": pl.String,
    "buyer_name": pl.String,
    "pii_masked": pl.Boolean,  # the channel withheld buyer PII (Amazon without the PII roles)
    "ship_name": pl.String,
    "ship_line1": pl.String,
    "ship_line2": pl.String,
    "ship_city": pl.String,
    "ship_region": pl.String,
    "ship_postal_code": pl.String,
    "ship_country": pl.String,
    "fulfilled_by": pl.String,  # merchant | marketplace
    "ship_by": TS,
    "mirror_of": pl.String,  # "{channel}:{external_id}" of the original, as the mirror carries it
    "related_order": pl.String,  # e.g. the original of an Amazon replacement order (not a duplicate)
    "source_name": pl.String,  # Shopify sourceName / Woo created_via / Amazon salesChannel
    "duplicate_of": pl.String,  # filled by dedupe/mirrors
    "batch_id": pl.String,  # the landing batch this version came from
    "landed_at": TS,
    "record_hash": pl.String,  # sha256 of the raw record: identical re-pulls change nothing
    # A partial version lacks the buyer identity (an Amazon order report): a full version with the same
    # updated_at outranks it, and a newer one takes the identity columns from the newest full version
    # (dedupe/versions.py IDENTITY_FROM_FULL). Last, as migration 0002 appended it.
    "partial": pl.Boolean,
    # Why duplicate_of is set (dedupe/mirrors.py): the mirror_of reference, or the same-purchase
    # evidence. Last, as migration 0004 appended it.
    "duplicate_evidence": pl.String,
}

LINE_SCHEMA: dict[str, pl.DataType] = {
    "order_id": pl.String,
    "line_no": pl.Int32,
    "sku": pl.String,
    "master_sku": pl.String,
    "title": pl.String,
    "quantity": pl.Int32,
    "unit_price": MONEY,
    "discount": MONEY,
    "tax": MONEY,
    "total": MONEY,
}

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "channel": pl.String,
    "store": pl.String,
    "external_id": pl.String,  # NULL when the record has none (or the body did not parse)
    "reason": pl.String,  # every problem found, "; "-separated, each saying what to fix
    "payload": pl.String,  # the raw record (JSON text; a report order: its TSV rows under their header), or the raw body when it did not parse
    "landed_at": TS,
    "batch_id": pl.String,
    "records": pl.Int32,  # landed records this row stands for (1, or a whole unparsable part)
}


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame of a canonical schema."""
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Add missing columns as NULL, cast to the schema's types, and order columns as the schema does."""
    exprs = [
        (pl.col(name).cast(dtype) if name in df.columns else pl.lit(None, dtype=dtype)).alias(name)
        for name, dtype in schema.items()
    ]
    return df.select(exprs)
