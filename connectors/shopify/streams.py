"""Shopify streams: orders changed in a window, paged by GraphQL cursor and sized to the cost budget."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from connectors.base import Page, Stream
from connectors.landing import Part
from connectors.shopify.client import ShopifyClient
from connectors.shopify.config import ShopifyStore
from connectors.shopify.paging import CursorPaginator


def search_time(value: datetime) -> str:
    """A UTC time as Shopify's search syntax takes it (whole seconds, ``Z``)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ShopifyOrders(Stream):
    """Orders whose ``updatedAt`` falls in ``[since, until)``, oldest change first.

    The window goes to Shopify as ``updated_at:>='since' AND updated_at:<'until'`` in whole seconds
    (Shopify keeps ``updatedAt`` to the second), so consecutive windows tile exactly. Shopify's
    search may treat the edges inclusively; any overlap is removed downstream by order id. Each
    response body lands verbatim as one ``shopify.graphql.orders`` part.
    """

    channel: ClassVar[str] = "shopify"
    name: ClassVar[str] = "orders"
    primary_key: ClassVar[str] = "legacyResourceId"
    kind: ClassVar[str] = "shopify.graphql.orders"
    # The orders search index is updated asynchronously after a write, so an order changed a moment
    # ago may not match its updated_at filter yet; Shopify publishes no bound, we leave 30 s.
    # https://shopify.dev/docs/api/usage/search-syntax
    lag: ClassVar[timedelta] = timedelta(seconds=30)
    # Backfills go in windows of this size so a long first sync saves progress as it goes (STYLE.md 3).
    backfill_step: ClassVar[timedelta] = timedelta(days=30)

    def __init__(self, store: ShopifyStore, *, start: datetime | None = None,
                 client: ShopifyClient | None = None) -> None:
        super().__init__(store, start=start)
        self.client = client or ShopifyClient(store)

    def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
        """Every page of every backfill step of this run's window; the last one moves ``since`` to ``until``."""
        since, until = self.window(state)
        since, until = since.replace(microsecond=0), until.replace(microsecond=0)
        lo = since
        while True:
            hi = min(lo + self.backfill_step, until)
            final = hi >= until
            yield from self._step(lo, hi, final=final)
            if final:
                return
            lo = hi

    def _step(self, lo: datetime, hi: datetime, *, final: bool) -> Iterator[Page]:
        search = f"updated_at:>='{search_time(lo)}' AND updated_at:<'{search_time(hi)}'"
        paginator = CursorPaginator()
        while paginator.has_next:
            resp, variables = self.client.orders_page(search, paginator)
            records = len(paginator.update_state(resp.json))
            done = not paginator.has_next
            # Inside a step the cursor stays at the step's start: a crash re-fetches the step.
            cursor = {"since": (hi if done else lo).isoformat()}
            if records:
                request = {"method": "POST", "path": self.client.path, "shop": self.store.domain,
                           "operation": "Orders", "variables": variables}
                yield Page([Part(self.kind, resp.body, records, request)], cursor)
            elif done and final:
                yield Page([], cursor)  # nothing (more) changed: state still moves

    def check(self) -> None:
        """Ask for the shop's name: raises AuthError/FatalError when the token or shop is wrong."""
        self.client.shop()
