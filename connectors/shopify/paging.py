"""Relay cursor paging of a Shopify GraphQL connection (``pageInfo { hasNextPage endCursor }``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orderhub.errors import FatalError, RetriableError


@dataclass
class CursorPaginator:
    """Pages one connection with ``after: endCursor`` (dlt-style strategy object).

    Attributes:
        path: where the connection sits under ``data`` (``("orders",)``).
        after: the cursor to send next (None = first page).
        has_next: whether another page follows.
    """

    path: tuple[str, ...] = ("orders",)
    after: str | None = None
    has_next: bool = True

    def connection(self, body: dict[str, Any]) -> dict[str, Any]:
        """The connection object of a response body."""
        node: Any = body.get("data")
        for key in self.path:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get("pageInfo"), dict):
            raise FatalError(f"shopify answered without data.{'.'.join(self.path)}.pageInfo: {str(body)[:200]}",
                             channel="shopify")
        return node

    def check(self, body: dict[str, Any]) -> None:
        """Refuse a page that does not move forward (a repeated page): raising makes the client fetch it again.

        Raises:
            RetriableError: the page ends where the previous one ended while claiming more follow.
        """
        info = self.connection(body)["pageInfo"]
        if self.after is not None and info.get("endCursor") == self.after:
            raise RetriableError("shopify repeated the previous page; fetching it again", channel="shopify")

    def update_state(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Take a checked page: returns its nodes and moves the cursor."""
        conn = self.connection(body)
        nodes = conn.get("nodes")
        if nodes is None:
            nodes = [edge.get("node") for edge in conn.get("edges") or []]
        info = conn["pageInfo"]
        end = info.get("endCursor")
        self.has_next = bool(info.get("hasNextPage")) and bool(end)
        if end:
            self.after = end
        return nodes
