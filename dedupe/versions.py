"""Order versions: of several versions of one order, the latest wins, deterministically."""

from __future__ import annotations

import polars as pl

from pipelines.schema import LINE_SCHEMA, conform

# Newest last: updated_at, then landed_at, then batch_id (then record_hash, so that even two
# versions equal in all three pick the same winner on every run). NULL sorts as the oldest.
VERSION_ORDER = ("updated_at", "landed_at", "batch_id", "record_hash")


def latest_versions(orders: pl.DataFrame) -> pl.DataFrame:
    """Keep one row per ``order_id``: the one with the greatest ``updated_at``.

    Ties are broken by ``landed_at``, then ``batch_id`` (later wins), then ``record_hash``, so
    overlapping batches (DESIGN.md: a crash re-fetches the last window) collapse to one version.

    Args:
        orders: ORDER_SCHEMA rows, possibly several per order_id.

    Returns:
        The latest version of each order, in the order the winners appear after sorting.
    """
    if orders.height == 0 or orders["order_id"].n_unique() == orders.height:
        return orders
    return orders.sort(["order_id", *VERSION_ORDER], nulls_last=False).unique(
        subset="order_id", keep="last", maintain_order=True
    )


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
        restart = (pl.col("line_no") <= pl.col("line_no").shift(1)).fill_null(False).cast(pl.Int32).cum_sum()
        picked = (
            lines.join(winners.select("order_id"), on="order_id", how="semi", maintain_order="left")
            .with_columns(restart.over("order_id").alias("_set"))
            .filter(pl.col("_set") == pl.col("_set").max().over("order_id"))
        )
    return conform(picked.unique(["order_id", "line_no"], keep="last", maintain_order=True), LINE_SCHEMA)
