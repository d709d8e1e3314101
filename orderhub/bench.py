"""``orderhub bench pipeline``: land raw payloads at scale, then time normalize + dedupe + load.

Generation and landing are not timed. The measured phase runs in a child process so that its
peak memory (``ru_maxrss``) is its own, not the generator's.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from orderhub import clock

API_CHANNELS = ("amazon", "shopify", "woocommerce")


def _land(n_orders: int, home: Path, console: Console | None) -> dict[str, Any]:
    from connectors.landing import LandingStore
    from sandbox.generator import DEFAULT_STORES, generate
    from sandbox.landing_writer import land_business
    from sandbox.server import DEFAULT_RATES

    started = time.perf_counter()
    now = clock.now()
    # The API channels: a crawl's HTML and a feed's export layout need their store configs, not just landing.
    stores = [s for s in DEFAULT_STORES if s.channel in API_CHANNELS]
    business = generate(seed=1, orders=n_orders, days=365, stores=stores, start=now,
                        future_days=0)
    generated = time.perf_counter()
    landing = LandingStore(home / "landing")
    landed = land_business(business, landing, as_of=now + timedelta(seconds=1), console=console)
    (home / "orderhub.toml").write_text(
        'base_currency = "USD"\n[rates]\n' + "".join(f'{k} = "{v}"\n' for k, v in DEFAULT_RATES.items())
    )
    return {"generate_s": round(generated - started, 1), "land_s": round(time.perf_counter() - generated, 1),
            "records_landed": landed}


def _measure(home: Path) -> dict[str, Any]:
    """Run in the child: process everything landed and report time, rate and peak memory."""
    from orderhub import ops
    from orderhub.config import load_settings

    settings = load_settings(home)
    started = time.perf_counter()
    result = ops.process(settings)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    records = result.landed
    return {
        "records": records,
        "orders_loaded": result.inserted,
        "quarantined": result.quarantined,
        "seconds": round(seconds, 2),
        "orders_per_second": round(records / seconds) if seconds else None,
        "peak_rss_mib": round(peak_kib / 1024),
    }


def run_pipeline_bench(n_orders: int, *, workdir: Path | None = None, keep: bool = False,
                       console: Console | None = None) -> dict[str, Any]:
    """Generate ``n_orders`` landed orders, then time processing them in a fresh warehouse."""
    home = Path(workdir or tempfile.mkdtemp(prefix="orderhub-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    try:
        if console:
            console.print(f"generating and landing {n_orders:,} orders in {home} (not timed) …")
        setup = _land(n_orders, home, console)
        if console:
            console.print(f"generated in {setup['generate_s']}s, landed {setup['records_landed']:,} records in "
                          f"{setup['land_s']}s; now timing normalize + dedupe + load …")
        out = subprocess.run([sys.executable, "-m", "orderhub.bench", str(home)], check=True,
                             capture_output=True, text=True)
        measured = json.loads(out.stdout.strip().splitlines()[-1])
        result = {"benchmark": "pipeline", "orders_requested": n_orders, **setup, **measured,
                  "workdir": str(home) if keep else None}
        if console:
            console.print(
                f"[bold]{measured['records']:,} records → {measured['orders_loaded']:,} orders in "
                f"{measured['seconds']}s: {measured['orders_per_second']:,} records/s, peak RSS "
                f"{measured['peak_rss_mib']} MiB[/bold] (normalize + dedupe + load, one process)"
            )
        return result
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.stdout.write(json.dumps(_measure(Path(sys.argv[1]))) + "\n")
