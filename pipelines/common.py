"""Shared normalization: typed field parsing for channel flatteners, then one vectorized validate/finish step.

A channel module (``pipelines/amazon.py`` ...) turns one landed batch into *flat rows*: plain dicts
keyed by the canonical column names (``pipelines/schema.py``) with Python values already typed by
the helpers below (``money``, ``ts``, ``text``), plus ``_problems`` (every problem found while
reading the record) and ``_payload`` (the raw record as JSON text). :func:`finish` then does in
polars what is the same for every channel — NFC text, e-mail and E.164 phone normalization, status
checks, base-currency conversion, SKU mapping — and splits clean rows from quarantine, collecting
every reason of a record rather than stopping at the first (STYLE.md 11).

A reader of a columnar body (the Amazon order report, hundreds of thousands of rows) may instead
hand :func:`finish` ready frames in ``BatchRows.frames``: the same columns, typed by polars.
"""

from __future__ import annotations

import functools
import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import phonenumbers
import polars as pl

from connectors.landing import Manifest, PartInfo
from orderhub.config import Settings
from pipelines.schema import (
    LINE_SCHEMA,
    ORDER_SCHEMA,
    PAYMENT_STATUSES,
    QUARANTINE_SCHEMA,
    STATUSES,
    conform,
    empty,
)

NULL_STRINGS = {"", "null", "NULL", "None", "none"}  # SP-API sends the string "null" in address fields


# -- field helpers for flatteners ------------------------------------------------------------------
def text(value: Any) -> str | None:
    """A string field: None for absent/empty/"null", Unicode NFC, surrounding spaces trimmed."""
    if value is None:
        return None
    s = unicodedata.normalize("NFC", str(value)).strip()
    return None if s in NULL_STRINGS else s


def money(value: Any, name: str, problems: list[str]) -> Decimal | None:
    """An exact amount from a string/int (never a float); a bad value adds a problem and gives None."""
    if value is None or (isinstance(value, str) and value.strip() in NULL_STRINGS):
        return None
    if isinstance(value, float):
        value = repr(value)  # JSON numbers: keep the shortest exact decimal text, never binary float math
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        problems.append(f"{name} {value!r} is not a decimal amount")
        return None
    if not amount.is_finite():
        problems.append(f"{name} {value!r} is not a finite amount")
        return None
    return amount


def ts(value: Any, name: str, problems: list[str], *, naive_is_utc: bool = True) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text; a naive value is UTC only when the channel says so."""
    if value is None or (isinstance(value, str) and value.strip() in NULL_STRINGS):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        problems.append(f"{name} {value!r} is not an ISO 8601 timestamp")
        return None
    if parsed.tzinfo is None:
        if not naive_is_utc:
            problems.append(f"{name} {value!r} has no time zone")
            return None
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def boolean(value: Any) -> bool | None:
    """A boolean that may arrive as a string ("false", "true")."""
    if isinstance(value, bool) or value is None:
        return value
    s = str(value).strip().lower()
    if s in ("true", "1", "yes"):
        return True
    if s in ("false", "0", "no"):
        return False
    return None


def record_hash(record: Any) -> str:
    """sha256 of a record's canonical JSON: identical re-pulls hash the same."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def payload_text(record: Any) -> str:
    """The raw record as JSON text, Unicode kept as is."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


# -- what a channel normalizer returns ------------------------------------------------------------
@dataclass
class BatchRows:
    """Flat rows of one batch, before :func:`finish`."""

    orders: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)  # records that could not even be read
    # (orders, lines) read column-wise: ORDER_FRAME and LINE_FRAME columns, lines carrying their batch_id.
    frames: list[tuple[pl.DataFrame, pl.DataFrame]] = field(default_factory=list)

    def extend(self, other: BatchRows) -> None:
        """Append another batch's rows."""
        self.orders.extend(other.orders)
        self.lines.extend(other.lines)
        self.quarantine.extend(other.quarantine)
        self.frames.extend(other.frames)


ChannelNormalizer = Callable[[Manifest, list[tuple[PartInfo, bytes]], Settings], BatchRows]
NORMALIZERS: dict[str, ChannelNormalizer] = {}


def register(channel: str) -> Callable[[ChannelNormalizer], ChannelNormalizer]:
    """Register a channel's batch normalizer."""

    def deco(fn: ChannelNormalizer) -> ChannelNormalizer:
        @functools.wraps(fn)
        def tagged(manifest: Manifest, parts: list[tuple[PartInfo, bytes]], settings: Settings) -> BatchRows:
            rows = fn(manifest, parts, settings)
            for line in rows.lines:  # a line belongs to its order's version: (order_id, batch_id)
                line["batch_id"] = manifest.batch_id
            return rows

        NORMALIZERS[channel] = tagged
        return tagged

    return deco


def unreadable_part(manifest: Manifest, part: PartInfo, body: bytes, reason: str) -> dict[str, Any]:
    """A quarantine row for a body that did not parse: it stands for all the records it held."""
    return {
        "channel": manifest.channel,
        "store": manifest.store,
        "external_id": None,
        "reason": f"{part.file} ({part.kind}) could not be read: {reason}",
        "payload": body.decode("utf-8", errors="replace"),
        "landed_at": manifest.landed_at_dt,
        "batch_id": manifest.batch_id,
        "records": max(part.records, 1),
    }


def base_row(manifest: Manifest, external_id: str | None, record: Any) -> dict[str, Any]:
    """The provenance columns every flat order row starts with."""
    ext = text(external_id)
    # One serialization serves both the payload kept for quarantine and the version hash: keys in
    # the order the channel sent them (raw is sacred), which is stable for re-pulls of the same data.
    payload = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return {
        "order_id": f"{manifest.channel}:{manifest.store}:{ext}" if ext else None,
        "channel": manifest.channel,
        "store": manifest.store,
        "external_id": ext,
        "batch_id": manifest.batch_id,
        "landed_at": manifest.landed_at_dt,
        "record_hash": hashlib.sha256(payload.encode()).hexdigest(),
        "partial": False,  # a full record; a reader of partial versions (an order report) says so
        "_payload": payload,
        "_problems": [],
    }


# -- the shared finish step -----------------------------------------------------------------------
@lru_cache(maxsize=200_000)
def e164(raw: str | None, region: str | None) -> str | None:
    """A phone number in E.164, or None when it is not a valid number (any input format)."""
    if not raw:
        return None
    for hint in (region, "US", None):
        try:
            parsed = phonenumbers.parse(raw, hint)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None


# Normalized lines keep the batch of their order version, so dedupe picks the winner's lines exactly.
LINE_FRAME: dict[str, pl.DataType] = {**LINE_SCHEMA, "batch_id": pl.String}
# Flat order rows before finish(): the canonical columns, the raw record and the problems found reading it.
ORDER_FRAME: dict[str, pl.DataType] = {**ORDER_SCHEMA, "_payload": pl.String(), "_problems": pl.List(pl.String())}


@dataclass
class Normalized:
    """Canonical frames of some batches (``lines`` has LINE_SCHEMA plus ``batch_id``)."""

    orders: pl.DataFrame
    lines: pl.DataFrame
    quarantine: pl.DataFrame


def _frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType], extra: dict[str, pl.DataType]) -> pl.DataFrame:
    full = {**schema, **extra}
    cols = {name: [row.get(name) for row in rows] for name in full}
    return pl.DataFrame(cols, schema=full, strict=False)


def finish(rows: BatchRows, settings: Settings) -> Normalized:
    """Validate and complete flat rows; split them into clean canonical frames and quarantine."""
    if not rows.orders and not any(orders.height for orders, _ in rows.frames):
        quarantine = conform(pl.DataFrame(rows.quarantine, schema=QUARANTINE_SCHEMA), QUARANTINE_SCHEMA) \
            if rows.quarantine else empty(QUARANTINE_SCHEMA)
        return Normalized(empty(ORDER_SCHEMA), empty(LINE_FRAME), quarantine)

    orders = pl.concat([_frame(rows.orders, ORDER_FRAME, {}), *(conform(o, ORDER_FRAME) for o, _ in rows.frames)])
    orders = orders.with_columns(pl.col("partial").fill_null(False))
    # Lines belong to one version of an order: (order_id, batch_id). Two versions of one order in
    # the same batch (an import of overlapping files) keep the later record's lines.
    lines = pl.concat(
        [_frame(rows.lines, LINE_FRAME, {}), *(conform(ln, LINE_FRAME) for _, ln in rows.frames)]
    ).unique(subset=["order_id", "batch_id", "line_no"], keep="last", maintain_order=True)

    # Line checks roll up to their order: an order with one bad line is quarantined whole.
    line_problems = (
        lines.with_columns(
            pl.when(pl.col("quantity").is_null()).then(pl.lit("line quantity missing"))
            .when(pl.col("quantity") < 0).then(pl.format("line {} has negative quantity {}", "line_no", "quantity"))
            .otherwise(None).alias("p")
        )
        .filter(pl.col("p").is_not_null())
        .group_by("order_id", "batch_id").agg(pl.col("p").alias("_line_problems"))
    )
    has_lines = lines.select("order_id", "batch_id").unique().with_columns(pl.lit(True).alias("_has_lines"))

    rates = {cur: rate for cur, rate in settings.rates.items()}
    rates[settings.base_currency] = Decimal(1)
    rate_frame = pl.DataFrame(
        {"currency": list(rates), "_rate": list(rates.values())}, schema={"currency": pl.String, "_rate": pl.Decimal(18, 8)}
    )

    orders = (
        orders.with_columns(
            pl.col("email").str.strip_chars().str.to_lowercase().alias("email"),
            pl.col("ship_country").str.strip_chars().str.to_uppercase().alias("ship_country"),
            pl.col("currency").str.strip_chars().str.to_uppercase().alias("currency"),
        )
        .join(line_problems, on=["order_id", "batch_id"], how="left")
        .join(has_lines, on=["order_id", "batch_id"], how="left")
        .join(rate_frame, on="currency", how="left")
        .with_columns(
            pl.when(~pl.col("email").str.contains("@")).then(None).otherwise(pl.col("email")).alias("email"),
            pl.struct("phone", "ship_country")
            .map_elements(lambda s: e164(s["phone"], s["ship_country"]), return_dtype=pl.String)
            .alias("phone"),
            (pl.col("total") * pl.col("_rate")).round(4).cast(pl.Decimal(18, 4)).alias("total_base"),
        )
    )
    checks = [
        pl.when(pl.col("external_id").is_null()).then(pl.lit("order id missing: the record cannot be keyed")),
        pl.when(pl.col("created_at").is_null()).then(pl.lit("created_at missing")),
        pl.when(pl.col("updated_at").is_null()).then(pl.lit("updated_at missing")),
        pl.when(~pl.col("status").is_in(list(STATUSES)) | pl.col("status").is_null())
        .then(pl.format("status {} is not mapped: add it to the channel's status mapping", pl.col("status").fill_null("NULL"))),
        pl.when(~pl.col("payment_status").is_in(list(PAYMENT_STATUSES)) | pl.col("payment_status").is_null())
        .then(pl.format("payment status {} is not mapped", pl.col("payment_status").fill_null("NULL"))),
        pl.when(pl.col("currency").is_not_null() & pl.col("_rate").is_null())
        .then(pl.format("no exchange rate for currency {}: add it under [rates] in orderhub.toml if it is real",
                        "currency")),
        pl.when(pl.col("_has_lines").is_null() & pl.col("external_id").is_not_null())
        .then(pl.lit("order has no line items")),
    ]
    orders = orders.with_columns(
        pl.concat_list(
            [pl.col("_problems").fill_null([]), pl.col("_line_problems").fill_null([]),
             pl.concat_list([c.otherwise(None) for c in checks]).list.drop_nulls()]
        ).alias("_reasons")
    )
    bad = orders.filter(pl.col("_reasons").list.len() > 0)
    good = orders.filter(pl.col("_reasons").list.len() == 0)

    quarantine = pl.concat(
        [
            conform(
                bad.select(
                    "channel", "store", "external_id",
                    pl.col("_reasons").list.join("; ").alias("reason"),
                    pl.col("_payload").alias("payload"), "landed_at", "batch_id",
                    pl.lit(1, dtype=pl.Int32).alias("records"),
                ),
                QUARANTINE_SCHEMA,
            ),
            conform(pl.DataFrame(rows.quarantine, schema=QUARANTINE_SCHEMA), QUARANTINE_SCHEMA)
            if rows.quarantine else empty(QUARANTINE_SCHEMA),
        ]
    )
    sku_map = settings.sku_map
    clean_lines = lines.join(good.select("order_id", "batch_id"), on=["order_id", "batch_id"], how="semi").with_columns(
        pl.coalesce(
            pl.col("master_sku"),
            pl.col("sku").replace_strict(sku_map, default=pl.col("sku"), return_dtype=pl.String) if sku_map
            else pl.col("sku"),
        ).alias("master_sku")
    )
    return Normalized(conform(good, ORDER_SCHEMA), conform(clean_lines, LINE_FRAME), quarantine)


def normalize_batches(batches: Iterable[tuple[Manifest, list[tuple[PartInfo, bytes]]]], settings: Settings) -> Normalized:
    """Normalize landed batches of any channels into canonical frames plus quarantine."""
    rows = BatchRows()
    for manifest, parts in batches:
        normalizer = NORMALIZERS.get(manifest.channel)
        if normalizer is None:
            for part, body in parts:
                rows.quarantine.append(unreadable_part(manifest, part, body, f"no normalizer for channel {manifest.channel}"))
            continue
        rows.extend(normalizer(manifest, parts, settings))
    return finish(rows, settings)
