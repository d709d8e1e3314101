"""Amazon Selling Partner API connector: Orders v2026-01-01 (default) and v0, on python-amazon-sp-api."""

from __future__ import annotations

from connectors.amazon.config import AmazonStore
from connectors.amazon.streams import AmazonOrdersStream, OrdersStream, OrdersV0Stream
from connectors.base import Stream

STREAMS: list[type[Stream]] = [OrdersStream, OrdersV0Stream]


def streams_for(store_cfg: AmazonStore) -> list[Stream]:
    """The streams of one Amazon store: ``orders`` on the Orders API version the store is set to."""
    stream: type[AmazonOrdersStream] = OrdersV0Stream if store_cfg.orders_api == "v0" else OrdersStream
    return [stream(store_cfg)]
