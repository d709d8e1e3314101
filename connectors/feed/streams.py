"""Feed streams: a folder of order files, or HTTP(S) URLs fetched with ETag / Last-Modified.

Every file lands verbatim as one part of its own batch, so a crash between two files loses
nothing and a restart goes on from the last landed cursor. The cursor remembers what was taken:

- folder: ``{"files": {name: sha256}}`` for the files still in the folder. A file is taken once
  per content: the same name with another sha256 (it was rewritten) is a new version and is taken
  again. Names that left the folder are dropped from the cursor, so it stays as small as the
  folder (every manifest repeats it); move taken files away to keep it short.
- URL: ``{"urls": {url: {"etag", "last_modified", "sha256", "as_of"}}}``: the validators of the
  version last landed, sent back as ``If-None-Match`` / ``If-Modified-Since``, and when the URL was
  last asked; a 304, or a 200 whose body has the sha256 already landed (a server without
  validators), lands no file, only an empty batch that moves ``as_of``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from connectors.base import Page, Stream
from connectors.feed.config import FeedStore
from connectors.feed.format import EXTENSIONS, KINDS, count_orders, detect_format, parse
from connectors.http import HttpClient, RetryPolicy
from connectors.landing import Part
from orderhub import clock
from orderhub.errors import ConfigError, FatalError

log = logging.getLogger(__name__)

CHANNEL = "feed"
SKIP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")  # writers' temporary names


def feed_part(source: str, body: bytes, store: FeedStore | None, *, etag: str | None = None,
              last_modified: str | None = None) -> Part:
    """One feed file as a landing part: the body verbatim, what it is and where it came from."""
    fmt = detect_format(source, body, store.format if store else "auto")
    mapping = dict(store.mapping) if store else {}
    parsed = parse(body, fmt)
    request = {"source": source, "sha256": hashlib.sha256(body).hexdigest(), "etag": etag,
               "last_modified": last_modified, "mapping": mapping}
    return Part(KINDS[fmt], body, count_orders(parsed, mapping), request, ext=fmt)


class FolderStream(Stream):
    """The order files of one folder, each taken once its size and mtime have settled."""

    channel: ClassVar[str] = CHANNEL
    name = "orders"
    primary_key = "order_id"

    def __init__(self, store: FeedStore, *, wall: Callable[[], float] = time.time) -> None:
        super().__init__(store)
        self.folder = Path(str(store.source)).expanduser()
        self._wall = wall  # mtimes are wall-clock seconds of the file system, not the orderhub clock

    def _candidates(self) -> list[os.DirEntry[str]]:
        if not self.folder.is_dir():
            raise ConfigError(f"feed {self.store.key}: source folder {self.folder} does not exist or is not a folder")
        entries = [e for e in os.scandir(self.folder) if e.is_file() and not e.name.startswith(".")
                   and not e.name.lower().endswith(SKIP_SUFFIXES)]
        if self.store.format == "auto":
            entries = [e for e in entries if Path(e.name).suffix.lower() in EXTENSIONS]
        return sorted(entries, key=lambda e: (e.stat().st_mtime, e.name))

    def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
        """One page per new or changed settled file, oldest first; the cursor is the taken set."""
        taken: dict[str, str] = dict((state or {}).get("files") or {})
        entries = self._candidates()
        present = {e.name for e in entries}
        taken = {name: sha for name, sha in taken.items() if name in present}
        for entry in entries:
            before = entry.stat()
            age = self._wall() - before.st_mtime
            if age < self.store.settle_seconds:
                log.info("feed %s: %s changed %.1fs ago; waiting until it has settled", self.store.key, entry.name, age)
                continue
            body = Path(entry.path).read_bytes()
            after = os.stat(entry.path)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or len(body) != after.st_size:
                log.info("feed %s: %s changed while it was read; next run", self.store.key, entry.name)
                continue
            sha = hashlib.sha256(body).hexdigest()
            if taken.get(entry.name) == sha:
                continue
            taken[entry.name] = sha
            yield Page([feed_part(entry.name, body, self.store)], {"files": dict(taken)})

    def check(self) -> None:
        """The folder exists and can be listed."""
        self._candidates()


class UrlStream(Stream):
    """HTTP(S) feed files, conditional GETs so an unchanged file costs a 304 and lands nothing."""

    channel: ClassVar[str] = CHANNEL
    name = "orders"
    primary_key = "order_id"

    def __init__(self, store: FeedStore, *, http: HttpClient | None = None) -> None:
        super().__init__(store)
        self.http = http or HttpClient(CHANNEL, timeout=60.0, policy=RetryPolicy())

    def pages(self, state: dict[str, Any] | None) -> Iterator[Page]:
        """One page per URL whose file changed since the version last landed."""
        seen: dict[str, dict[str, Any]] = {u: dict(v) for u, v in ((state or {}).get("urls") or {}).items()}
        landed = False
        for url in self.store.urls:
            last = seen.get(url, {})
            as_of = clock.now().isoformat()  # the file holds what its publisher had written by now
            headers = {}
            if last.get("etag"):
                headers["If-None-Match"] = last["etag"]
            if last.get("last_modified"):
                headers["If-Modified-Since"] = last["last_modified"]
            resp = self.http.request("GET", url, headers=headers)
            if resp.status_code == 304:
                seen[url] = {**last, "as_of": as_of}
                continue
            if resp.status_code != 200:
                raise FatalError(f"feed {self.store.key}: {url} answered {resp.status_code}, expected 200 or 304",
                                 channel=CHANNEL, status=resp.status_code, url=url)
            body = resp.content
            sha = hashlib.sha256(body).hexdigest()
            etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
            seen[url] = {"etag": etag, "last_modified": modified, "sha256": sha, "as_of": as_of}
            if last.get("sha256") == sha:
                continue  # same bytes under new validators: nothing new to land
            landed = True
            yield Page([feed_part(url, body, self.store, etag=etag, last_modified=modified)], {"urls": dict(seen)})
        if not landed and seen != (state or {}).get("urls"):
            yield Page([], {"urls": dict(seen)})  # nothing new: an empty batch records when that was checked

    def check(self) -> None:
        """Every URL answers (a HEAD would do, but not every static host allows it)."""
        for url in self.store.urls:
            self.http.request("GET", url, stream=True).close()
