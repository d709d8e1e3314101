"""WooCommerce REST API v3 connector."""

from __future__ import annotations

from connectors.base import Stream
from connectors.woocommerce.config import WooCommerceStore
from connectors.woocommerce.streams import OrdersStream

STREAMS: list[type[Stream]] = [OrdersStream]


def streams_for(store_cfg: WooCommerceStore) -> list[Stream]:
    """The streams of one configured shop."""
    return [cls(store_cfg) for cls in STREAMS]
