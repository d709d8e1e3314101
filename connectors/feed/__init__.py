"""Order feeds: CSV, JSON Lines or JSON files from a folder or HTTP(S) URLs (connectors/feed/README.md)."""

from __future__ import annotations

from connectors.base import Stream
from connectors.feed.config import FeedStore
from connectors.feed.streams import FolderStream, UrlStream


def streams_for(store_cfg: FeedStore) -> list[Stream]:
    """The one stream of a feed: its folder or its URLs."""
    if store_cfg.urls:
        return [UrlStream(store_cfg)]
    return [FolderStream(store_cfg)]
