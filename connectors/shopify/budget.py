"""Shopify's cost-based rate limit, seen from the client: pace requests and size pages to the bucket."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

# Standard-plan GraphQL Admin budget until the first response reports the shop's own
# (extensions.cost.throttleStatus); a single query may cost at most 1000 points.
# https://shopify.dev/docs/api/usage/limits#graphql-admin-api-rate-limits
DEFAULT_MAXIMUM = 2000.0
DEFAULT_RESTORE_RATE = 100.0
MAX_QUERY_COST = 1000.0
# Connections return at most 250 nodes: https://shopify.dev/docs/api/usage/pagination-graphql
MAX_PAGE = 250
CONNECTION_COST = 2.0  # a connection's own cost, on top of its nodes


class CostBudget:
    """The leaky bucket of calculated query cost, as the last response's ``throttleStatus`` described it.

    Between responses the bucket is assumed to refill at ``restoreRate``. :meth:`page_size` picks the
    largest ``first`` whose requested cost fits what is (or soon will be) available, and
    :meth:`wait_for` sleeps until a request's cost is there, so THROTTLED stays an exception.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 min_page: int = 25) -> None:
        self.maximum = DEFAULT_MAXIMUM
        self.restore_rate = DEFAULT_RESTORE_RATE
        self.max_query_cost = MAX_QUERY_COST
        self.min_page = min_page
        self._available = DEFAULT_MAXIMUM
        self._clock, self._sleep = clock, sleep
        self._at = clock()
        self._lock = threading.Lock()

    def update(self, cost: dict[str, Any] | None) -> None:
        """Adopt the ``extensions.cost`` of a response."""
        status = (cost or {}).get("throttleStatus") or {}
        with self._lock:
            try:
                self.maximum = float(status.get("maximumAvailable", self.maximum))
                self.restore_rate = float(status.get("restoreRate", self.restore_rate)) or self.restore_rate
                if "currentlyAvailable" in status:
                    self._available = float(status["currentlyAvailable"])
                    self._at = self._clock()
            except (TypeError, ValueError):
                pass  # a malformed status leaves the old estimate; THROTTLED still corrects it

    def available(self) -> float:
        """Points in the bucket now (estimated)."""
        with self._lock:
            return min(self.maximum, self._available + (self._clock() - self._at) * self.restore_rate)

    def seconds_until(self, cost: float) -> float:
        """How long until ``cost`` points are available."""
        return max(0.0, (min(cost, self.maximum) - self.available()) / self.restore_rate)

    def page_size(self, node_cost: float) -> int:
        """The ``first`` to ask for when each node costs ``node_cost`` points (1..250)."""
        ceiling = min(self.max_query_cost, self.maximum) - CONNECTION_COST
        full = max(1, min(MAX_PAGE, math.floor(ceiling / node_cost)))
        now = math.floor((min(self.available(), ceiling + CONNECTION_COST) - CONNECTION_COST) / node_cost)
        # Shrink pages while the bucket is low, but not below min_page: then waiting is cheaper than paging.
        return max(min(full, self.min_page), min(full, now))

    def wait_for(self, cost: float) -> float:
        """Sleep until ``cost`` points are available; returns the seconds slept."""
        wait = self.seconds_until(cost)
        if wait > 0:
            self._sleep(wait)
        return wait
