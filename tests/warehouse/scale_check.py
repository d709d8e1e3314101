"""By-hand scaling check (not a test): merge + mirrors + identity over N synthetic orders; prints time and peak RSS.

Run from the repository root::

    .venv/bin/python -m tests.warehouse.scale_check --orders 1000000
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from dedupe.identity import resolve_customers
from dedupe.mirrors import resolve_mirrors
from pipelines.schema import LINE_SCHEMA, MONEY, ORDER_SCHEMA, conform
from warehouse.db import Warehouse

START = datetime(2025, 1, 1, tzinfo=UTC)


def _money(cents: pl.Expr) -> pl.Expr:
    # Built as text so that nothing passes through a float.
    return pl.format("{}.{}", cents // 100, (cents % 100).cast(pl.String).str.zfill(2)).cast(MONEY)


def synthetic_orders(n: int, *, persons: int, seed_batch: str = "b0") -> tuple[pl.DataFrame, pl.DataFrame]:
    """N orders of ``persons`` people over three channels, with relays, guests, masked buyers and mirrors."""
    i = pl.int_range(0, n, dtype=pl.Int64, eager=True).alias("i")
    base = pl.DataFrame(i).with_columns(
        ((pl.col("i") * 7_919) % persons).alias("pid"),
        (pl.col("i") % 3).alias("ch"),
        ((pl.col("i") * 37) % 50_000 + 500).alias("cents"),
    )
    channel = (
        pl.when(pl.col("ch") == 0)
        .then(pl.lit("amazon"))
        .when(pl.col("ch") == 1)
        .then(pl.lit("shopify"))
        .otherwise(pl.lit("woocommerce"))
    )
    store = (
        pl.when(pl.col("ch") == 0)
        .then(pl.lit("us"))
        .when(pl.col("ch") == 1)
        .then(pl.lit("main"))
        .otherwise(pl.lit("shop"))
    )
    masked = (pl.col("ch") == 0) & (pl.col("i") % 20 == 0)
    email = (
        pl.when(masked)
        .then(None)
        .when(pl.col("ch") == 0)
        .then(pl.format("r{}@marketplace.amazon.com", "pid"))
        .otherwise(pl.format("p{}@example.com", "pid"))
    )
    phone = pl.when(~masked & (pl.col("pid") % 2 == 0)).then(
        pl.format("+1415{}", pl.col("pid").cast(pl.String).str.zfill(7))
    )
    ck = (
        pl.when(pl.col("ch") == 1)
        .then(pl.when(pl.col("pid") % 10 < 7).then(pl.col("pid").cast(pl.String)))
        .when(pl.col("ch") == 2)
        .then(pl.when(pl.col("pid") % 4 == 0).then(pl.lit("0")).otherwise(pl.format("w{}", "pid")))
    )
    created = pl.lit(START) + pl.duration(minutes=pl.col("i") // 2)
    frame = base.with_columns(
        channel.alias("channel"),
        store.alias("store"),
        pl.col("i").cast(pl.String).alias("external_id"),
        created.alias("created_at"),
        created.alias("updated_at"),
        pl.when(pl.col("i") % 25 == 0)
        .then(pl.lit("cancelled"))
        .otherwise(pl.lit("fulfilled"))
        .alias("status"),
        pl.lit("paid").alias("payment_status"),
        pl.lit("USD").alias("currency"),
        _money(pl.col("cents")).alias("total"),
        _money(pl.col("cents")).alias("total_base"),
        email.alias("email"),
        phone.alias("phone"),
        ck.alias("channel_customer_key"),
        masked.alias("pii_masked"),
        pl.format("Person {}", "pid").alias("buyer_name"),
        # 3% of Shopify orders mirror the Amazon order just before them.
        pl.when((pl.col("ch") == 1) & (pl.col("i") % 33 == 1))
        .then(pl.format("amazon:{}", pl.col("i") - 1))
        .alias("mirror_of"),
        pl.lit(seed_batch).alias("batch_id"),
        pl.lit(START).alias("landed_at"),
        pl.format("h{}", "i").alias("record_hash"),
    ).with_columns(pl.format("{}:{}:{}", "channel", "store", "external_id").alias("order_id"))
    orders = conform(frame, ORDER_SCHEMA)
    lines = (
        frame.select("order_id", "cents", (pl.col("i") % 3 + 1).alias("n"))
        .with_columns(pl.int_ranges(1, pl.col("n") + 1, dtype=pl.Int32).alias("line_no"))
        .explode("line_no")
        .with_columns(
            pl.format("SKU-{}", "line_no").alias("sku"),
            pl.lit(1, dtype=pl.Int32).alias("quantity"),
            _money(pl.col("cents")).alias("unit_price"),
            _money(pl.col("cents")).alias("total"),
        )
    )
    return orders, conform(lines, LINE_SCHEMA)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    """Run the check and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=0, help="default: orders / 2.5")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--basic", action="store_true", help="only the first load, mirrors and identities")
    args = parser.parse_args()
    persons = args.persons or int(args.orders / 2.5)
    folder = args.dir or Path(tempfile.mkdtemp(prefix="orderhub-scale-"))

    t = time.perf_counter()
    orders, lines = synthetic_orders(args.orders, persons=persons)
    print(f"generated {orders.height:,} orders, {lines.height:,} lines in {time.perf_counter() - t:.1f}s")
    print(f"RSS after generating the frames: {_rss_mb():,.0f} MB")
    timings: list[tuple[str, float, float]] = []
    with Warehouse.open(folder / "warehouse.duckdb") as wh:
        t, c = time.perf_counter(), time.process_time()
        stats = wh.merge_orders(orders, lines)
        timings.append(("merge (all new)", time.perf_counter() - t, time.process_time() - c))
        print(stats)

        if not args.basic:
            # An overlapping re-pull: every order again, a tenth of them with a newer version.
            newer = orders.with_columns(
                pl.when(pl.col("external_id").cast(pl.Int64) % 10 == 0)
                .then(pl.col("updated_at") + pl.duration(days=1))
                .otherwise(pl.col("updated_at"))
                .alias("updated_at"),
                pl.lit("b1").alias("batch_id"),
            )
            t, c = time.perf_counter(), time.process_time()
            stats = wh.merge_orders(pl.concat([orders, newer]), lines)
            timings.append(("merge (re-pull, 10% newer)", time.perf_counter() - t, time.process_time() - c))
            print(stats)

            # A typical scheduled run: one 50k-record chunk, 40k new orders and 10k new versions.
            more, more_lines = synthetic_orders(args.orders + 40_000, persons=persons, seed_batch="b2")
            chunk = pl.concat(
                [
                    more.slice(args.orders),
                    more.slice(0, 10_000).with_columns(pl.col("updated_at") + pl.duration(days=2)),
                ]
            )
            chunk_lines = more_lines.join(chunk.select("order_id"), on="order_id", how="semi")
            t, c = time.perf_counter(), time.process_time()
            stats = wh.merge_orders(chunk, chunk_lines)
            timings.append(("merge (50k chunk)", time.perf_counter() - t, time.process_time() - c))
            print(stats)

        t, c = time.perf_counter(), time.process_time()
        mirrors = resolve_mirrors(wh.con)
        timings.append(("resolve_mirrors", time.perf_counter() - t, time.process_time() - c))
        t, c = time.perf_counter(), time.process_time()
        identity = resolve_customers(wh.con)
        timings.append(("resolve_customers (first)", time.perf_counter() - t, time.process_time() - c))
        t, c = time.perf_counter(), time.process_time()
        again = resolve_customers(wh.con)
        timings.append(("resolve_customers (unchanged)", time.perf_counter() - t, time.process_time() - c))
        print(f"mirrors flagged: {mirrors:,}")
        print(identity)
        print(f"second run relinked {again.orders_relinked} orders")
    print(f"{'step':32s} {'wall':>7s} {'cpu':>7s}")
    for name, wall, cpu in timings:
        print(f"{name:32s} {wall:6.2f}s {cpu:6.2f}s")
    print(f"{'total':32s} {sum(t[1] for t in timings):6.2f}s {sum(t[2] for t in timings):6.2f}s")
    print(
        f"peak RSS {_rss_mb():,.0f} MB; warehouse file {(folder / 'warehouse.duckdb').stat().st_size / 1e6:,.0f} MB"
    )


if __name__ == "__main__":
    main()
