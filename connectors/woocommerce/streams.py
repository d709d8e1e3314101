"""WooCommerce streams: a base that owns client, windows and paging; each stream is a few class attributes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from connectors.base import Page, Stream
from connectors.landing import Part
from connectors.woocommerce.client import WooCommerceClient
from connectors.woocommerce.config import WooCommerceStore
from connectors.woocommerce.paging import WpPaginator


def wc_time(value: datetime) -> str:
    """A UTC time as WooCommerce filters take it with ``dates_are_gmt=true`` (whole seconds, no offset)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class WooCommerceStream(Stream):
    """An incremental ``modified_after``/``modified_before`` stream of one shop's REST v3 collection.

    Windows are whole seconds (WooCommerce stores ``date_modified`` to the second) and WordPress'
    date filters are exclusive on both ends, so a window ``[since, until)`` is asked as
    ``modified_after = since - 1s`` and ``modified_before = until``: consecutive windows tile
    exactly, and a second sync with nothing new lands nothing. ``modified_after`` and
    ``dates_are_gmt`` exist since WooCommerce 5.8 (https://woocommerce.github.io/woocommerce-rest-api-docs/#list-all-orders).
    """

    channel: ClassVar[str] = "woocommerce"
    path: ClassVar[str]
    kind: ClassVar[str]
    # orderby=modified is not accepted by every WooCommerce version; id order is stable and total.
    params: ClassVar[dict[str, str]] = {"orderby": "id", "order": "asc", "dates_are_gmt": "true"}
    # date_modified is taken when PHP saves the order and becomes visible when the request commits,
    # at most one PHP request later (max_execution_time defaults to 30 s:
    # https://www.php.net/manual/en/info.configuration.php#ini.max-execution-time).
    lag: ClassVar[timedelta] = timedelta(seconds=30)
    # Backfills go in windows of this size so a long first sync saves progress as it goes (STYLE.md 3).
    backfill_step: ClassVar[timedelta] = timedelta(days=30)

    def __init__(
        self, store: WooCommerceStore, *, start: datetime | None = None, client: WooCommerceClient | None = None
    ) -> None:
        super().__init__(store, start=start)
        self.client = client or WooCommerceClient(store)

    def window(self, state: dict[str, Any] | None) -> tuple[datetime, datetime]:
        """``[since, until)`` with ``until`` cut to whole seconds."""
        since, until = super().window(state)
        return since, max(until.replace(microsecond=0), since)

    def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
        """Every page of every backfill step of the window; the step's last page moves the cursor."""
        since, until = self.window(state)
        lo, cursor = since, None
        while lo < until:
            hi = min(lo + self.backfill_step, until)
            for part, last in self._fetch(lo, hi):
                cursor = {"since": (hi if last else lo).isoformat()}
                yield Page([part], cursor)
            lo = hi
        if cursor != {"since": until.isoformat()}:
            yield Page([], {"since": until.isoformat()})  # an empty window still moves the cursor

    def _fetch(self, lo: datetime, hi: datetime) -> Iterator[tuple[Part, bool]]:
        """Parts of one window ``[lo, hi)``, each with whether it is the window's last."""
        params: dict[str, Any] = {
            **self.params,
            "modified_after": wc_time(lo - timedelta(seconds=1)),
            "modified_before": wc_time(hi),
        }
        paginator = WpPaginator()
        paginator.init_request(params)
        while not paginator.done:
            asked = dict(params)
            resp, records = self.client.get(self.path, asked, check=paginator.check)
            if paginator.update_state(resp.headers, records) and records:
                part = Part(self.kind, resp.content, len(records), self.client.describe(self.path, asked))
                yield part, paginator.done
            paginator.update_request(params)

    def check(self) -> None:
        """One cheap authenticated call (``per_page=1``); raises AuthError when the keys are refused."""
        self.client.get(self.path, {"per_page": 1})


class OrdersStream(WooCommerceStream):
    """``GET /wp-json/wc/v3/orders``: every order modified in the window, any status."""

    name = "orders"
    primary_key = "id"
    path = "/orders"
    kind = "woocommerce.rest.orders"
