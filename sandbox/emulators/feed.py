"""A feed file server: static order files with ETag and Last-Modified, conditional GETs, a half-written-file fault.

``GET /feeds/{name}`` serves a file; ``If-None-Match`` (strong ETag, the body's sha256) or, without it,
``If-Modified-Since`` (RFC 9110 section 13.1.3: only when If-None-Match is absent) answer 304.
The fault ``half_written`` serves the first part of the file cut in the middle of a line, as a
server does while the export job is still writing it, with that part's own ETag and length.
"""

from __future__ import annotations

import hashlib
import re
import threading
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from orderhub import clock
from sandbox.emulators.base import Emulator, Request, Response

CONTENT_TYPES = {".csv": "text/csv; charset=utf-8", ".jsonl": "application/jsonl", ".json": "application/json"}


class FeedEmulator(Emulator):
    """Serves named feed files; tests put, replace and remove them while it runs.

    Attributes:
        conditional_hits: requests answered 304.
    """

    name = "feed"

    def __init__(self, *, speed: float = 1.0) -> None:
        super().__init__(speed=speed)
        self._files: dict[str, tuple[bytes, datetime]] = {}
        self._files_lock = threading.Lock()
        self.conditional_hits = 0
        self.route("GET", r"/feeds/(?P<name>[^/]+)", self._get, "file")

    def put(self, name: str, body: bytes, modified: datetime | None = None) -> None:
        """Publish (or replace) a file; its Last-Modified is ``modified`` or now, whole seconds."""
        when = (modified or clock.now()).replace(microsecond=0)
        with self._files_lock:
            self._files[name] = (body, when)

    def remove(self, name: str) -> None:
        """Take a file down (404 from now on)."""
        with self._files_lock:
            self._files.pop(name, None)

    @staticmethod
    def etag(body: bytes) -> str:
        """The strong ETag of a body."""
        return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'

    def _get(self, req: Request, match: re.Match[str]) -> Response:
        name = match["name"]
        with self._files_lock:
            found = self._files.get(name)
        if found is None:
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        body, modified = found
        if self.faults.take(req.path, {"half_written"}) is not None:
            cut = len(body) // 2
            body = body[:cut] if body[cut - 1:cut] != b"\n" else body[: cut - 1]  # never exactly at a line end
            modified = clock.now().replace(microsecond=0)
        etag = self.etag(body)
        headers = {"ETag": etag, "Last-Modified": format_datetime(modified, usegmt=True),
                   "Content-Type": CONTENT_TYPES.get(name[name.rfind("."):], "application/octet-stream")}
        if_none_match = req.headers.get("if-none-match")
        if if_none_match is not None:
            if etag in [t.strip() for t in if_none_match.split(",")] or if_none_match.strip() == "*":
                self.conditional_hits += 1
                return Response(304, b"", headers)
        elif req.headers.get("if-modified-since"):
            try:
                since = parsedate_to_datetime(req.headers["if-modified-since"])
            except (TypeError, ValueError):
                since = None
            if since is not None and modified <= since:
                self.conditional_hits += 1
                return Response(304, b"", headers)
        return Response(200, body, headers)
