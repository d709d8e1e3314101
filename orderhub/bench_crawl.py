"""Crawl speed against the sample storefront admin site: ``orderhub bench crawl --orders N``.

The sandbox generator makes ``N`` orders of one German shop; the sample site serves them over
loopback HTTP; one crawl with the store's default AutoThrottle settings (target concurrency 4,
start delay 0.25 s) lands them all. Reported: orders per second of the crawl (Scrapy's own
``elapsed_time_seconds``) and of the whole child process (its start-up included), and the requests made.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from typing import Any

from orderhub import clock

USER, PASSWORD = "admin", "bench-admin-password"


def crawl_speed(n_orders: int) -> dict[str, Any]:
    """Generate, serve and crawl ``n_orders``; the figures as a dict."""
    from connectors.base import sync_stream
    from connectors.landing import LandingStore
    from connectors.storefront.config import StorefrontStore
    from connectors.storefront.streams import OrdersStream
    from orderhub.secrets import Secret
    from sandbox.business import StoreSpec
    from sandbox.emulators.base import EmulatorServer
    from sandbox.emulators.storefront import StorefrontEmulator
    from sandbox.generator import generate

    now = clock.now()
    business = generate(seed=1, orders=n_orders, days=30, stores=[StoreSpec("storefront", "laden-de", "EUR", "DE")],
                        start=now, future_days=0, defect_rate=0.0)
    orders = business.orders_for("laden-de")
    emulator = StorefrontEmulator(orders, username=USER, password=PASSWORD, now=lambda: now + timedelta(seconds=1))
    with EmulatorServer(emulator) as server, tempfile.TemporaryDirectory() as tmp:
        store = StorefrontStore(key="laden-de", url=server.url, username=USER, password=Secret(PASSWORD),
                                currency="EUR", timezone="Europe/Berlin", locale="de_DE")
        stream = OrdersStream(store)
        result = sync_stream(stream, LandingStore(tmp))
    crawl = stream.last
    assert crawl is not None
    crawl_s = float(crawl.stats.get("elapsed_time_seconds") or 0.0)
    return {
        "orders": result.records,
        "crawl_s": round(crawl_s, 2),
        "orders_per_s": round(result.records / crawl_s, 1) if crawl_s else None,
        "child_process_s": round(crawl.seconds, 2),
        "orders_per_s_with_startup": round(result.records / crawl.seconds, 1) if crawl.seconds else None,
        "requests": crawl.stats.get("downloader/request_count"),
        "autothrottle": {"target_concurrency": store.target_concurrency, "start_delay_s": store.start_delay},
    }
