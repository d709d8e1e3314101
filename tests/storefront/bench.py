"""Crawl speed against the emulated storefront with AutoThrottle on: ``python -m tests.storefront.bench [ORDERS]``."""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime

from connectors.base import sync_stream
from connectors.landing import LandingStore
from connectors.storefront.streams import OrdersStream
from sandbox.emulators.base import EmulatorServer
from sandbox.emulators.storefront import StorefrontEmulator
from tests.storefront.helpers import make_orders, store_for


def main(n: int = 500) -> None:
    """Crawl ``n`` orders with the store's default throttle settings and print orders per second."""
    emu = StorefrontEmulator(make_orders(n), now=lambda: datetime(2027, 6, 1, tzinfo=UTC))
    with EmulatorServer(emu) as server, tempfile.TemporaryDirectory() as tmp:
        store = store_for(server.url, start_delay=0.25, download_timeout=30.0)  # the config defaults
        stream = OrdersStream(store)
        result = sync_stream(stream, LandingStore(tmp))
        assert stream.last is not None
        crawl_s = stream.last.stats.get("elapsed_time_seconds") or 0.0
        sys.stdout.write(
            f"{result.records} orders; crawl {crawl_s:.2f}s = {result.records / crawl_s:.1f} orders/s "
            f"(child process wall {stream.last.seconds:.2f}s = {result.records / stream.last.seconds:.1f} orders/s), "
            f"{stream.last.stats.get('downloader/request_count')} requests, AutoThrottle target concurrency "
            f"{store.target_concurrency}\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
