"""Storefront admin sites with no API, scraped with Scrapy by a per-site profile (connectors/storefront/README.md)."""

from __future__ import annotations

from connectors.base import Stream
from connectors.storefront.config import StorefrontStore
from connectors.storefront.streams import OrdersStream


def streams_for(store_cfg: StorefrontStore) -> list[Stream]:
    """The one stream of a storefront site: its orders."""
    return [OrdersStream(store_cfg)]
