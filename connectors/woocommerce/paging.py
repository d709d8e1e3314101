"""Page-number paging of the WordPress REST API (``X-WP-Total``), safe while records leave the result set."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orderhub.errors import FatalError, RetriableError

log = logging.getLogger(__name__)

# The REST API refuses per_page above 100 (rest_invalid_param):
# https://developer.wordpress.org/rest-api/using-the-rest-api/pagination/
MAX_PER_PAGE = 100


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


@dataclass
class WpPaginator:
    """``page``/``per_page`` paging with ``X-WP-Total`` / ``X-WP-TotalPages`` (dlt-style strategy object).

    The window's upper bound lies in the past, so while we page, records can only *leave* the
    result set (an order modified now moves past ``modified_before``); everything behind it shifts
    back and a plain ``page=N+1`` would skip what slid onto page N. When ``X-WP-Total`` drops by
    ``d`` between two pages, the page just fetched is discarded and re-read from ``offset - d``
    (WordPress' ``offset`` parameter): an overlap that may re-land a few records (deduped by id
    downstream) and never skips one. A page that repeats the previous page's ids while the total is
    unchanged is a stale/cached copy (the ``duplicate_page`` fault) and is fetched again.

    Attributes:
        per_page: page size (at most 100).
        offset: index in the current result set of the next record to read.
        total: ``X-WP-Total`` of the last accepted page (None when the host strips the header).
        done: no more pages in this window.
    """

    per_page: int = MAX_PER_PAGE
    offset: int = 0
    total: int | None = None
    done: bool = False
    _last_ids: tuple[Any, ...] = field(default=(), repr=False)

    def init_request(self, params: dict[str, Any]) -> None:
        """Start a new window at the first page."""
        self.offset, self.total, self.done, self._last_ids = 0, None, False, ()
        self.update_request(params)

    def update_request(self, params: dict[str, Any]) -> None:
        """Point ``params`` at the next page: ``page`` when aligned, else ``offset`` (which WordPress prefers)."""
        params["per_page"] = self.per_page
        if self.offset % self.per_page == 0:
            params["page"] = self.offset // self.per_page + 1
            params.pop("offset", None)
        else:
            params["offset"] = self.offset
            params.pop("page", None)

    def check(self, headers: Mapping[str, str], body: Any) -> None:
        """Validate a response before it is accepted; raising here makes the client fetch it again.

        Raises:
            FatalError: the body is not a JSON array (a plugin or proxy answered instead of WooCommerce).
            RetriableError: the server repeated the previous page (stale cache), so it is fetched again.
        """
        if not isinstance(body, list):
            raise FatalError(
                f"woocommerce answered a {type(body).__name__} where a JSON array of orders was expected; "
                f"check the store url and that no plugin rewrites /wp-json responses: {str(body)[:200]}",
                channel="woocommerce",
            )
        ids = tuple(r.get("id") if isinstance(r, dict) else None for r in body)
        if self.offset and ids and ids == self._last_ids and _int_header(headers, "X-WP-Total") == self.total:
            raise RetriableError("woocommerce repeated the previous page (stale cache?); fetching it again",
                                 channel="woocommerce")

    def update_state(self, headers: Mapping[str, str], records: list[Any]) -> bool:
        """Take a checked page; True when it is to be landed, False when it must be re-read from further back."""
        total = _int_header(headers, "X-WP-Total")
        if total is not None and self.total is not None and total < self.total:
            shrink = self.total - total
            log.info("woocommerce: %d records left the window while paging; re-reading %d back", shrink, shrink)
            self.offset, self.total = max(0, self.offset - shrink), total
            return False
        if total is None and self.total is None and self.offset == 0:
            log.warning("woocommerce: no X-WP-Total header (a proxy strips it?); paging until a short page")
        self.total = total
        self._last_ids = tuple(r.get("id") if isinstance(r, dict) else None for r in records)
        self.offset += len(records)
        pages = _int_header(headers, "X-WP-TotalPages")
        if total is not None:
            self.done = not records or self.offset >= total
        elif pages is not None:
            self.done = not records or self.offset >= pages * self.per_page or len(records) < self.per_page
        else:
            self.done = len(records) < self.per_page
        return True
