"""What every connector is: a stream that yields pages of raw bodies with the cursor after each page."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.landing import LandingStore, Manifest, Part
from orderhub import clock

log = logging.getLogger(__name__)

DEFAULT_START = timedelta(days=90)  # first sync reaches this far back unless configured


@dataclass
class Page:
    """One fetch: the raw bodies and the stream's cursor once they are landed."""

    parts: list[Part]
    cursor: dict[str, Any]

    @property
    def records(self) -> int:
        """Order records in this page."""
        return sum(p.records for p in self.parts)


@dataclass
class SyncResult:
    """What one stream sync did."""

    channel: str
    store: str
    stream: str
    batches: int = 0
    records: int = 0
    cursor: dict[str, Any] | None = None
    manifests: list[Manifest] = field(default_factory=list)


class Stream(ABC):
    """An incremental stream of one store.

    Cursor rules (STYLE.md 3): the window is ``[since, until)`` with ``until = now - lag``; pages
    inside a window carry the OLD ``since`` (a crash re-fetches the window; overlap dedupes
    downstream by primary key); only the window's last page moves ``since`` to ``until``.
    """

    channel: ClassVar[str]
    name: ClassVar[str] = "orders"
    primary_key: ClassVar[str] = "id"
    lag: ClassVar[timedelta] = timedelta(0)  # how far behind now the channel's data may still change

    def __init__(self, store: Any, *, start: datetime | None = None) -> None:
        self.store = store
        self.start = start

    def window(self, state: dict[str, Any] | None) -> tuple[datetime, datetime]:
        """``[since, until)`` of this run from the stream's state."""
        until = clock.now() - self.lag
        if state and state.get("since"):
            since = datetime.fromisoformat(state["since"])
        else:
            since = self.start or (until - DEFAULT_START)
        return since, max(until, since)

    @abstractmethod
    def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
        """Fetch from ``state`` on, yielding each page with the cursor to store once it is landed."""

    def check(self) -> None:
        """Make one cheap authenticated call; raise the typed error when it fails."""
        next(iter(self.pages({"since": clock.now().isoformat()})), None)


def cursor_as_of(cursor: dict[str, Any] | None) -> datetime | None:
    """The time up to which a stream's cursor says everything was read, or None when it cannot say.

    API streams keep it as ``since`` (their window's end); a crawl or a snapshot feed, which read
    whatever was there when they ran, keep ``as_of`` (per URL for a list of feed URLs: the oldest).
    """
    if not cursor:
        return None
    if cursor.get("since") or cursor.get("as_of"):
        return datetime.fromisoformat(cursor.get("since") or cursor["as_of"])
    urls = [u.get("as_of") for u in (cursor.get("urls") or {}).values()]
    if urls and all(urls):
        return min(datetime.fromisoformat(u) for u in urls)
    return None


def sync_stream(stream: Stream, landing: LandingStore, *, meta: dict[str, Any] | None = None) -> SyncResult:
    """Run one stream from its landed state, landing every page as one batch with its cursor."""
    state = landing.state(stream.channel, stream.store.key, stream.name)
    return sync_pages(stream, landing, stream.pages(state), meta=meta)


def sync_pages(stream: Stream, landing: LandingStore, pages: Iterable[Page], *,
               meta: dict[str, Any] | None = None) -> SyncResult:
    """Land ``pages`` of ``stream``, each as one batch with its cursor."""
    store_key = stream.store.key
    result = SyncResult(stream.channel, store_key, stream.name)
    for page in pages:
        manifest = landing.write_batch(stream.channel, store_key, stream.name, page.parts, page.cursor, meta=meta)
        result.batches += 1
        result.records += manifest.records
        result.cursor = manifest.cursor
        result.manifests.append(manifest)
        log.info("landed %s (%d records)", manifest.batch_id, manifest.records)
    return result
