"""The storefront order stream: one crawl per run, landed as one JSON Lines part.

The cursor is ``{"last_updated": ISO UTC, "ids_at": [...], "as_of": ISO UTC}``: the newest
last-updated value seen on the order list, the orders listed at exactly that instant, and when the
crawl started (``orderhub status`` shows how far behind that is; a crawl that found nothing new lands
an empty batch that moves only ``as_of``). The next crawl walks the list
newest first and stops at rows older than ``last_updated``; rows at that instant are taken again
unless already in ``ids_at`` (an inclusive bound without re-landing, STYLE.md 3). The cursor only
moves with a landed batch, so a failed crawl (any error of runner.crawl) leaves it where it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from connectors.base import Page, Stream
from connectors.landing import Part
from connectors.storefront.config import StorefrontStore
from connectors.storefront.profile import load_profile
from connectors.storefront.runner import CHANNEL, CrawlResult, crawl
from orderhub import clock

KIND = "storefront.orders.jsonl"


def next_cursor(items: list[dict[str, Any]], state: dict[str, Any] | None) -> dict[str, Any]:
    """The cursor after landing ``items``: their newest last-updated and the ids listed at it."""
    newest = max(item["list_updated_utc"] for item in items)
    ids = {item["order_id"] for item in items if item["list_updated_utc"] == newest}
    if state and state.get("last_updated") == newest:
        ids |= set(state.get("ids_at") or [])
    return {"last_updated": newest, "ids_at": sorted(ids)}


class OrdersStream(Stream):
    """Every order changed since the cursor, scraped from the admin pages by the store's profile."""

    channel: ClassVar[str] = CHANNEL
    name = "orders"
    primary_key = "order_id"

    def __init__(self, store: StorefrontStore) -> None:
        super().__init__(store)
        self.profile = load_profile(store.profile)
        self.last: CrawlResult | None = None  # the last crawl, for its figures

    def spec(self, state: dict[str, Any] | None) -> dict[str, Any]:
        """What the child process needs (no password: it goes through the environment)."""
        s = self.store
        return {"url": s.url, "username": s.username, "profile": self.profile.model_dump(), "timezone": s.timezone,
                "cursor": state, "target_concurrency": s.target_concurrency, "start_delay": s.start_delay,
                "download_timeout": s.download_timeout, "retries": s.retries}

    def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
        """One page holding every changed order, or none when nothing changed."""
        as_of = clock.now().isoformat()  # every change before the crawl started is on the list it reads
        result = crawl(self.spec(state), self.store.password.get())
        self.last = result
        if not result.items:
            yield Page([], {**(state or {}), "as_of": as_of})
            return
        fmt = self.profile.format
        request = {"url": self.store.url, "profile": self.profile.name, "cursor": state,
                   "format": {"decimal": fmt.decimal, "thousands": fmt.thousands, "dates": fmt.dates,
                              "timezone": self.store.timezone, "currency": self.store.currency,
                              "statuses": fmt.statuses, "payment_statuses": fmt.payment_statuses}}
        part = Part(KIND, result.body, len(result.items), request, ext="jsonl")
        yield Page([part], {**next_cursor(result.items, state), "as_of": as_of})

    def check(self) -> None:
        """A crawl that stops at the list's first page (nothing is newer than now)."""
        crawl(self.spec({"last_updated": clock.now().isoformat(), "ids_at": []}), self.store.password.get())
