"""Shopify streams: orders changed in a window, paged by GraphQL cursor and sized to the cost budget."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, ClassVar

from connectors.base import Page, Stream
from connectors.landing import Part
from connectors.shopify.bulk import BulkBackfill
from connectors.shopify.client import ShopifyClient
from connectors.shopify.config import ShopifyStore
from connectors.shopify.paging import CursorPaginator
from orderhub import clock
from orderhub.errors import AuthError

# Without read_all_orders an app sees orders created in the last 60 days only:
# https://shopify.dev/docs/api/usage/access-scopes#orders-permissions
ALL_ORDERS_AFTER = timedelta(days=60)


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
        self._scopes_checked = False

    def window(self, state: dict[str, Any] | None) -> tuple[datetime, datetime]:
        """``[since, until)``; a first sync reaches back ``backfill_days``."""
        if not (state and state.get("since")) and self.start is None:
            self.start = clock.now() - self.lag - timedelta(days=self.store.backfill_days)
        return super().window(state)

    def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
        """Every page of every backfill step of this run's window; the last one moves ``since`` to ``until``.

        A window longer than the store's ``bulk_after_days`` (a backfill, or catching up) is read with one
        bulk operation instead (:mod:`connectors.shopify.bulk`).
        """
        since, until = self.window(state)
        since, until = since.replace(microsecond=0), until.replace(microsecond=0)
        self._check_scopes(since)
        state = state or {}
        if isinstance(state.get("bulk"), dict) or (
                self.store.bulk_after_days > 0 and until - since > timedelta(days=self.store.bulk_after_days)):
            yield from self.bulk.pages(state, since, until, self._search(since, until))
            return
        lo = since
        while True:
            hi = min(lo + self.backfill_step, until)
            final = hi >= until
            yield from self._step(lo, hi, final=final)
            if final:
                return
            lo = hi

    @staticmethod
    def _search(lo: datetime, hi: datetime) -> str:
        return f"updated_at:>='{search_time(lo)}' AND updated_at:<'{search_time(hi)}'"

    @cached_property
    def bulk(self) -> BulkBackfill:
        """The store's bulk-operation runner (its polling schedule can be tuned by tests and benchmarks)."""
        return BulkBackfill(self.client, poll_initial=self.store.bulk_poll_s, timeout=self.store.bulk_timeout_s,
                            sleep=self.client.graphql._sleep)

    def _check_scopes(self, since: datetime) -> None:
        """Stop before a window reaching past 60 days when the app cannot see those orders (read_all_orders)."""
        horizon = clock.now() - ALL_ORDERS_AFTER
        if since >= horizon or self._scopes_checked:
            return
        if "read_all_orders" not in self.client.scopes():
            raise AuthError(
                f"shopify store {self.store.key!r}: this sync reaches back to {since:%Y-%m-%d}, but the app lacks the "
                f"read_all_orders scope, so Shopify shows it only orders created after {horizon:%Y-%m-%d} (60 days) "
                f"and older ones would be missing without a trace. Grant read_all_orders to the app (Shopify asks "
                f"why in the app's configuration), or set backfill_days = 59 for this store", channel="shopify")
        self._scopes_checked = True

    def _step(self, lo: datetime, hi: datetime, *, final: bool) -> Iterator[Page]:
        search = self._search(lo, hi)
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
