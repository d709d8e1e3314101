"""Shopify connector: Admin GraphQL orders with cost-based paging (ShopifyAPI session, requests transport)."""

from __future__ import annotations

from connectors.base import Stream
from connectors.shopify.config import ShopifyStore
from connectors.shopify.streams import ShopifyOrders

STREAMS: list[type[Stream]] = [ShopifyOrders]


def streams_for(store_cfg: ShopifyStore) -> list[Stream]:
    """The streams of one configured shop."""
    return [stream(store_cfg) for stream in STREAMS]
