"""Order versions: of several versions of one order, the latest wins, deterministically."""

from __future__ import annotations

import polars as pl

from pipelines.schema import LINE_SCHEMA, conform

# Newest last: updated_at, then full before partial (a full version outranks a partial one of the
# same updated_at), then the content: of two versions with the same timestamp the one whose
# record_hash is greater wins, whenever and in whatever order they arrive, so replaying an old
# delivery (a webhook retry, a re-pulled window, an old saved response) is a no-op. landed_at and
# batch_id only order versions of identical content. NULL sorts as the oldest.
VERSION_ORDER = ("updated_at", "_full", "record_hash", "landed_at", "batch_id")

# What a partial version (an Amazon order report) lacks: a newer partial version takes these from
# the newest full version of the same order (connectors/amazon/README.md "Canonical rows from a report").
IDENTITY_FROM_FULL = (
    "email", "phone", "buyer_name", "pii_masked", "ship_name", "ship_line1", "ship_line2",
    "channel_customer_key", "ship_by", "related_order", "mirror_of",
)


def is_full() -> pl.Expr:
    """Whether a version is full: ``partial`` false or NULL (frames without the column are all full)."""
    return ~pl.col("partial").fill_null(False)


def _ranked(orders: pl.DataFrame) -> pl.DataFrame:
    """The versions sorted by order_id, then oldest to newest, with the ``_full`` flag."""
    flagged = orders.with_columns(is_full().alias("_full") if "partial" in orders.columns else pl.lit(True).alias("_full"))
    return flagged.sort(["order_id", *VERSION_ORDER], nulls_last=False)


def newest_full(orders: pl.DataFrame) -> pl.DataFrame:
    """The newest full version of each order that has one: ``order_id``, ``full_at`` (its updated_at) and
    the IDENTITY_FROM_FULL columns.

    Args:
        orders: ORDER_SCHEMA rows, possibly several per order_id.
    """
    return _newest_full(_ranked(orders))


def _newest_full(ranked: pl.DataFrame) -> pl.DataFrame:
    return ranked.filter(pl.col("_full")).unique(subset="order_id", keep="last", maintain_order=True).select(
        "order_id", pl.col("updated_at").alias("full_at"), *IDENTITY_FROM_FULL
    )


def latest_versions(orders: pl.DataFrame) -> pl.DataFrame:
    """Keep one row per ``order_id``: the one with the greatest ``updated_at``.

    Ties are broken by full before partial (``partial`` true loses to false/NULL), then by content
    (the greater ``record_hash``), then ``landed_at`` and ``batch_id`` (later wins), so overlapping
    batches (DESIGN.md: a crash re-fetches the last window) collapse to one version and a replayed
    old delivery never displaces what a run already chose. A partial winner takes IDENTITY_FROM_FULL from the newest
    full version of its order in the frame, when there is one; it stays partial.

    Args:
        orders: ORDER_SCHEMA rows, possibly several per order_id.

    Returns:
        The latest version of each order, in the order the winners appear after sorting.
    """
    if orders.height == 0 or orders["order_id"].n_unique() == orders.height:
        return orders
    ranked = _ranked(orders)
    winners = ranked.unique(subset="order_id", keep="last", maintain_order=True)
    if winners["_full"].all():
        return winners.drop("_full")
    full = _newest_full(ranked).drop("full_at").with_columns(pl.lit(True).alias("_carry"))
    carried = winners.join(full, on="order_id", how="left", suffix="_from_full", maintain_order="left")
    take = ~pl.col("_full") & pl.col("_carry").fill_null(False)
    return carried.with_columns(
        pl.when(take).then(pl.col(f"{c}_from_full")).otherwise(pl.col(c)).alias(c) for c in IDENTITY_FROM_FULL
    ).select(orders.columns)


def latest_lines(lines: pl.DataFrame, winners: pl.DataFrame) -> pl.DataFrame:
    """The line set of each winning version, one row per ``(order_id, line_no)``.

    With a ``batch_id`` column the lines of the winning version are picked exactly. Without it the
    line sets of an order are told apart by ``line_no`` restarting (normalizers number lines from
    1 per record) and the last set in the frame wins: frames are built in landing order, so that
    is the newest version.

    Args:
        lines: LINE_SCHEMA rows, optionally with ``batch_id``.
        winners: the output of :func:`latest_versions` (``order_id``, ``batch_id``).

    Returns:
        LINE_SCHEMA rows of the winning orders only.
    """
    if lines.height == 0:
        return conform(lines, LINE_SCHEMA)
    if "batch_id" in lines.columns:
        picked = lines.join(
            winners.select("order_id", "batch_id"),
            on=["order_id", "batch_id"],
            how="semi",
            maintain_order="left",
        )
    else:
        picked = lines.join(winners.select("order_id"), on="order_id", how="semi", maintain_order="left")
    repeated = picked.filter(pl.struct("order_id", "line_no").is_duplicated()).select("order_id").unique()
    if repeated.height == 0:
        return conform(picked, LINE_SCHEMA)
    several = picked.join(repeated, on="order_id", how="semi", maintain_order="left")
    if "batch_id" not in lines.columns:
        # Each order's lines in frame order (a stable sort), then a new set wherever line_no does
        # not grow; the last set of each order is the one to keep. No per-group window: fast.
        numbered = several.with_row_index("_row").sort("order_id", "_row")
        starts = (pl.col("order_id") != pl.col("order_id").shift(1)) | (
            pl.col("line_no") <= pl.col("line_no").shift(1)
        )
        numbered = numbered.with_columns(starts.fill_null(True).cast(pl.UInt32).cum_sum().alias("_set"))
        last = numbered.group_by("order_id").agg(pl.col("_set").max())
        several = numbered.join(last, on=["order_id", "_set"], how="semi").sort("_row").drop("_row", "_set")
    several = several.unique(["order_id", "line_no"], keep="last", maintain_order=True)
    return conform(pl.concat([picked.join(repeated, on="order_id", how="anti"), several]), LINE_SCHEMA)
