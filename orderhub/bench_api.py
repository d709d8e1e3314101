"""``orderhub bench api-time``: the least wall time a channel's published rate limits allow for a sync.

A real run first: a generated seller (``orders_per_day`` for ``days``) is served by the channel's
emulator on loopback with its limits lifted (so the run itself is quick), the real connector backfills
the whole history, the clock moves 15 minutes, and the connector runs one incremental sync. The
emulator's call log of each phase is then priced with the channel's *published* budgets: an
operation called ``n`` times with rate ``r``/s and burst ``b`` needs at least ``max(0, n - b) / r``
seconds; operations have separate buckets and refill in parallel, so a phase needs at least the
largest of those. Amazon's own report generation time is not a rate limit and is not included
(it is minutes per report, and the reports of a backfill are requested back to back).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from orderhub import clock

US = "ATVPDKIKX0DER"
FAST = 1e6  # emulator speed-up during the run: the published budgets are applied afterwards, by arithmetic


@contextmanager
def _bench_home() -> Iterator[tuple[Path, Path, datetime]]:
    """A temporary home with its own sandbox clock at offset 0: (home, clock file, now in whole seconds)."""
    with tempfile.TemporaryDirectory(prefix="orderhub-api-time-") as tmp:
        home = Path(tmp)
        clock_file = home / "clock.json"
        clock.use_offset_file(clock_file)
        try:
            clock.set_offset(clock_file, timedelta(0))
            yield home, clock_file, clock.now().replace(microsecond=0)
        finally:
            clock.use_offset_file(None)


def least_seconds(calls: dict[str, int], budgets: dict[str, tuple[float, float]]) -> tuple[float, dict[str, float]]:
    """The least wall time the budgets allow for ``calls``, and each operation's share.

    Args:
        calls: operation -> number of calls.
        budgets: operation -> (rate per second, burst), the published defaults.
    """
    per_op = {op: max(0.0, n - budgets[op][1]) / budgets[op][0] for op, n in calls.items() if op in budgets}
    return (max(per_op.values(), default=0.0), {op: round(s, 1) for op, s in per_op.items()})


def _delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {op: n - before.get(op, 0) for op, n in sorted(after.items()) if n - before.get(op, 0) > 0}


def amazon_api_time(orders_per_day: int = 5000, *, days: int = 365, seed: int = 7, orders_api: str = "2026-01-01",
                    console: Console | None = None) -> dict[str, Any]:
    """Backfill ``days`` of an Amazon seller with ``orders_per_day``, then one 15-minute sync; price the calls."""
    from connectors.amazon.client import BUDGETS, AmazonClient
    from connectors.amazon.config import AmazonStore
    from connectors.amazon.streams import OrdersStream, OrdersV0Stream
    from connectors.base import sync_stream
    from connectors.http import RetryPolicy
    from connectors.landing import LandingStore
    from sandbox.business import StoreSpec
    from sandbox.emulators.amazon import AmazonEmulator
    from sandbox.emulators.base import EmulatorServer
    from sandbox.generator import generate
    from sandbox.server import AMAZON_REFRESH_TOKEN, LWA_CLIENT_ID, LWA_CLIENT_SECRET, _Source

    budgets = {op: (b.rate, b.burst) for op, b in BUDGETS.items()}
    say = console.print if console else (lambda *a, **k: None)
    with _bench_home() as (home, clock_file, now):
        spec = StoreSpec("amazon", "amz-bench", "USD", "US", marketplace_id=US, seller_id="A1BENCH")
        started = time.perf_counter()
        say(f"generating {orders_per_day:,} orders/day for {days} days (not timed) …")
        business = generate(seed=seed, orders=orders_per_day * days, days=days, stores=[spec], start=now,
                            future_days=1, defect_rate=0.0)
        generated = time.perf_counter() - started
        emulator = AmazonEmulator(_Source(business), sellers={US: spec.key}, client_id=LWA_CLIENT_ID,
                                  client_secret=LWA_CLIENT_SECRET, refresh_tokens={AMAZON_REFRESH_TOKEN},
                                  speed=FAST, report_seconds=0.0)
        with EmulatorServer(emulator) as server:
            store = AmazonStore(key=spec.key, seller_id="A1BENCH", marketplace_id=US,
                                refresh_token=AMAZON_REFRESH_TOKEN,  # type: ignore[arg-type]
                                lwa_client_id=LWA_CLIENT_ID, lwa_client_secret=LWA_CLIENT_SECRET,  # type: ignore[arg-type]
                                endpoint=server.url, token_url=f"{server.url}/auth/o2/token",
                                orders_api=orders_api, has_pii_roles=True)  # type: ignore[arg-type]
            landing = LandingStore(home / "landing")

            def sync() -> tuple[int, dict[str, int], float]:
                cls = OrdersV0Stream if orders_api == "v0" else OrdersStream
                client = AmazonClient(store, policy=RetryPolicy(max_attempts=3, base_delay=0.01), timeout=120)
                stream = cls(store, start=now - timedelta(days=days), client=client)
                stream.reports.poll_initial = 0.01
                before = dict(emulator.requests)
                t0 = time.perf_counter()
                result = sync_stream(stream, landing)
                return result.records, _delta(emulator.requests, before), time.perf_counter() - t0

            say("backfilling through the real connector (limits lifted; priced afterwards) …")
            back_records, back_calls, back_run = sync()
            clock.set_offset(clock_file, timedelta(minutes=15))
            inc_records, inc_calls, inc_run = sync()
        expected = sum(1 for o in business.orders
                       if o.created_at <= now - timedelta(minutes=2) and o.version_at(now) is not None)
    backfill_s, backfill_ops = least_seconds(back_calls, budgets)
    incremental_s, incremental_ops = least_seconds(inc_calls, budgets)
    calls = Counter(back_calls) + Counter(inc_calls)
    # Steady state: syncs every 15 minutes may spend per operation at most what 15 minutes refill.
    refill = {op: budgets[op][0] * 900 for op in inc_calls if op in budgets}
    steady = {op: {"calls": n, "refilled_per_15min": round(refill[op], 1)} for op, n in inc_calls.items() if op in refill}
    paging_pages = -(-expected // 100)
    return {
        "incremental_15min_s": round(incremental_s, 1),
        "backfill_365d_s" if days == 365 else f"backfill_{days}d_s": round(backfill_s, 1),
        "calls": dict(sorted(calls.items())),
        "backfill_calls": back_calls,
        "incremental_calls": inc_calls,
        "seconds_by_operation": {"backfill": backfill_ops, "incremental": incremental_ops},
        "steady_state_ok": all(v["calls"] <= v["refilled_per_15min"] for v in steady.values()),
        "steady_state": steady,
        # For comparison, by arithmetic only (not run): the same history paged through searchOrders.
        "backfill_by_searchOrders_paging_s": round(max(0, paging_pages - budgets["searchOrders"][1])
                                                   / budgets["searchOrders"][0]),
        "orders_per_day": orders_per_day,
        "days": days,
        "orders_api": orders_api,
        "records_landed": {"backfill": back_records, "incremental": inc_records},
        "orders_in_history": expected,
        "run_seconds": {"generate": round(generated, 1), "backfill": round(back_run, 1),
                        "incremental": round(inc_run, 1)},
    }


# Restore rates of Shopify's plans (points/s; https://shopify.dev/docs/api/usage/limits): the connector reads
# the shop's own from every response; the benchmark prices one run for each.
SHOPIFY_PLANS = {"standard": (2000.0, 100.0), "advanced": (4000.0, 200.0), "plus": (20000.0, 1000.0),
                 "enterprise": (20000.0, 2000.0)}


def _shopify_seconds(cost: float) -> dict[str, float]:
    return {plan: round(max(0.0, cost - bucket) / restore, 1) for plan, (bucket, restore) in SHOPIFY_PLANS.items()}


def shopify_api_time(orders_per_day: int = 5000, *, days: int = 20, seed: int = 7,
                     console: Console | None = None) -> dict[str, Any]:
    """Backfill ``days`` of a shop by paging and by a bulk operation, then one 15-minute sync; price the cost."""
    from connectors.base import sync_stream
    from connectors.http import RetryPolicy
    from connectors.landing import LandingStore
    from connectors.shopify.client import ShopifyClient
    from connectors.shopify.config import ShopifyStore
    from connectors.shopify.streams import ShopifyOrders
    from orderhub.secrets import Secret
    from sandbox.business import StoreSpec
    from sandbox.emulators.base import EmulatorServer
    from sandbox.emulators.shopify import ShopifyEmulator
    from sandbox.generator import generate
    from sandbox.server import _Source

    say = console.print if console else (lambda *a, **k: None)
    domain, token = "bench.myshopify.com", "shpat_bench"
    with _bench_home() as (home, clock_file, now):
        spec = StoreSpec("shopify", "bench", "USD", "US")
        started = time.perf_counter()
        say(f"generating {orders_per_day:,} orders/day for {days} days (not timed) …")
        business = generate(seed=seed, orders=orders_per_day * days, days=days, stores=[spec], start=now,
                            future_days=1, defect_rate=0.0)
        generated = time.perf_counter() - started
        # The emulator's clock stands still during each run: however long a run takes on a busy machine,
        # no order changes under it, so paging and the bulk operation read exactly the same history.
        instant = [now]
        emulator = ShopifyEmulator(_Source(business), shops={domain: ("bench", token, "USD")}, speed=FAST,
                                   bulk_seconds=0.0, now=lambda: instant[0])
        runs: dict[str, dict[str, Any]] = {}
        with EmulatorServer(emulator) as server:
            def sync(name: str, landing: LandingStore, bulk_after_days: float, at: datetime) -> None:
                # Every run starts at the same sandbox instant (``at``), however long the last one took,
                # so paging and the bulk operation read the same history.
                clock.set_offset(clock_file, at - datetime.now(UTC))
                instant[0] = at
                store = ShopifyStore(key="bench", shop=domain, access_token=Secret(token), endpoint=server.url,
                                     bulk_after_days=bulk_after_days, bulk_poll_s=0.01, backfill_days=days)
                client = ShopifyClient(store, timeout=300, policy=RetryPolicy(max_attempts=3, base_delay=0.01))
                stream = ShopifyOrders(store, client=client)
                before = dict(emulator.operations)
                t0 = time.perf_counter()
                result = sync_stream(stream, landing)
                calls = {op: n - before.get(op, 0) for op, n in sorted(emulator.operations.items())
                         if n - before.get(op, 0)}
                runs[name] = {"records": result.records, "cost": round(client.cost_spent), "calls": calls,
                              "run_s": round(time.perf_counter() - t0, 1)}

            say("backfilling by paging, then by a bulk operation (limits lifted; priced afterwards) …")
            sync("paged", LandingStore(home / "paged"), 0.0, now)
            bulk = LandingStore(home / "bulk")
            sync("bulk", bulk, 7.0, now)
            sync("incremental", bulk, 7.0, now + timedelta(minutes=15))
        expected = sum(1 for o in business.orders if o.created_at <= now and o.version_at(now) is not None)
    paged, bulk_run, inc = runs["paged"], runs["bulk"], runs["incremental"]
    per_100 = round(paged["cost"] / max(1, paged["records"]) * 100, 1)
    return {
        "incremental_15min_s": _shopify_seconds(inc["cost"])["standard"],
        f"backfill_{expected}_orders_paged_s": _shopify_seconds(paged["cost"])["standard"],
        f"backfill_{expected}_orders_bulk_s": _shopify_seconds(bulk_run["cost"])["standard"],
        "query_cost_per_100_orders": per_100,
        "calls": {name: run["calls"] for name, run in runs.items()},
        "cost_points": {name: run["cost"] for name, run in runs.items()},
        "seconds_by_plan": {name: _shopify_seconds(run["cost"]) for name, run in runs.items()},
        "records_landed": {name: run["records"] for name, run in runs.items()},
        "orders_in_history": expected,
        "orders_per_day": orders_per_day,
        "days": days,
        "run_seconds": {"generate": round(generated, 1), **{name: run["run_s"] for name, run in runs.items()}},
        "note": "bulk: Shopify's time to build the file is not a rate limit and is not included",
    }
