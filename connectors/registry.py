"""Which streams a configured store has: the one place that knows every channel package."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from connectors.base import Stream
from orderhub.errors import ConfigError

CHANNELS = ("amazon", "shopify", "woocommerce", "feed", "storefront")
# Channels whose saved payloads `orderhub import` takes (a crawled storefront has no saved-response format).
IMPORTABLE = ("amazon", "shopify", "woocommerce", "feed")


def streams_for(store: Any) -> list[Stream]:
    """The streams of a configured store (its channel package's ``streams_for``)."""
    if store.channel not in CHANNELS:
        raise ValueError(f"no connector for channel {store.channel!r}")
    return import_module(f"connectors.{store.channel}").streams_for(store)


def importer(channel: str) -> Any:
    """The ``import_files`` function of a channel."""
    if channel not in IMPORTABLE:
        raise ConfigError(f"orderhub import takes saved payloads of {', '.join(IMPORTABLE)}, not {channel!r}"
                          + (" (a storefront is crawled: run `orderhub sync --store KEY`)" if channel == "storefront" else ""))
    return import_module(f"connectors.{channel}.importer").import_files
