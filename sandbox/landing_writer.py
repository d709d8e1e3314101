"""Land a generated business straight into landing, in each channel's wire format (benchmarks at scale).

The same renderers the emulators serve over HTTP write the pages here, so what the benchmark
processes is byte-for-byte what a sync would have landed, without paging millions of orders
through loopback first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.progress import Progress

from connectors.landing import LandingStore, Part
from sandbox.emulators.amazon import AmazonRenderer
from sandbox.emulators.shopify import OrderView, render_rest
from sandbox.emulators.woocommerce import render_order

PAGE = {"amazon": 100, "shopify": 250, "woocommerce": 100}  # each API's maximum page size  # each API's maximum page size
AMAZON_DATASETS = {"BUYER", "RECIPIENT", "PROCEEDS", "FULFILLMENT", "PACKAGES"}


class _Source:
    def __init__(self, business: Any) -> None:
        self.business = business

    def orders_for(self, store_key: str) -> list[Any]:
        return self.business.orders_for(store_key)

    def by_truth_id(self, truth_id: str) -> Any:
        return self.business.by_truth_id(truth_id)


def _visible(business: Any, store: str, as_of: datetime) -> Iterator[tuple[Any, Any]]:
    for order in business.orders_for(store):
        if order.created_at > as_of:
            break
        version = order.version_at(as_of)
        if version is not None:
            yield order, version


def _pages(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    page: list[Any] = []
    for item in items:
        page.append(item)
        if len(page) == size:
            yield page
            page = []
    if page:
        yield page


def land_business(business: Any, landing: LandingStore, *, as_of: datetime, console: Console | None = None) -> int:
    """Land every order visible at ``as_of`` as API pages with source ``bench``; returns records landed."""
    source = _Source(business)
    marketplaces = {s.key: s.marketplace_id for s in business.stores if s.channel == "amazon"}
    amazon = AmazonRenderer(source, lambda key: marketplaces[key], None)
    total = 0
    progress = Progress(console=console, transient=True, disable=console is None)
    with progress:
        task = progress.add_task("landing", total=len(business.orders))
        for spec in business.stores:
            cursor = {"since": as_of.isoformat()}
            for page in _pages(_visible(business, spec.key, as_of), PAGE[spec.channel]):
                if spec.channel == "amazon":
                    body: Any = {"orders": [amazon.order_2026(o, v, AMAZON_DATASETS) for o, v in page]}
                    kind = "amazon.orders.v2026.searchOrders"
                elif spec.channel == "shopify":
                    nodes = []
                    for o, v in page:
                        amazon_id = business.by_truth_id(o.mirror_of).external_id if o.mirror_of else None
                        nodes.append(render_rest(OrderView(o, v, spec.currency, amazon_id,
                                                           f"{spec.key}.myshopify.com")))
                    # REST orders.json pages: the GraphQL renderer yields resolver objects, not wire JSON.
                    body = {"orders": nodes}
                    kind = "shopify.rest.orders"
                else:
                    body = [render_order(o, v, site_url=f"https://{spec.key}.example") for o, v in page]
                    kind = "woocommerce.rest.orders"
                raw = json.dumps(body, ensure_ascii=False, default=str).encode()
                landing.write_batch(spec.channel, spec.key, "orders", [Part(kind, raw, len(page))], cursor,
                                    source="bench")
                total += len(page)
                progress.update(task, advance=len(page))
    return total
