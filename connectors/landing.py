"""Landing: raw API payloads, verbatim and append-only, one batch per fetch, cursor in the manifest.

Layout under the landing root::

    {channel}/{store}/{stream}/{seq:08d}/part-0001.{ext}   raw response bodies, byte for byte
    {channel}/{store}/{stream}/{seq:08d}/manifest.json      written last: the batch exists iff it exists

Each file is written to a temporary name, fsynced and renamed, and the manifest goes last, so a
crash leaves either a whole batch or none. The newest manifest's ``cursor`` is the stream's
state: data and state can never disagree. Parts without a manifest (a crash mid-batch) are
ignored and overwritten by the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import fsspec

from orderhub import clock

MANIFEST = "manifest.json"
_SAFE = re.compile(r"^[A-Za-z0-9._@+-]+$")


@dataclass(frozen=True)
class Part:
    """One raw response body of a batch.

    Attributes:
        kind: what the body is, so pipelines know how to read it, e.g. ``amazon.orders.v2026.searchOrders``,
            ``amazon.orders.v0.getOrders``, ``amazon.orders.v0.getOrderItems``, ``shopify.graphql.orders``,
            ``shopify.rest.orders``, ``woocommerce.rest.orders``.
        body: the bytes exactly as received.
        records: how many order records the body holds (0 for a helper body such as getOrderItems).
        request: what was asked (method, path, params), never credentials.
        ext: file extension.
    """

    kind: str
    body: bytes
    records: int
    request: dict[str, Any] = field(default_factory=dict)
    ext: str = "json"


@dataclass(frozen=True)
class PartInfo:
    """A part as recorded in a manifest."""

    file: str
    kind: str
    records: int
    bytes: int
    sha256: str
    request: dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    """A landed batch. ``cursor`` is the stream's state after this batch."""

    batch_id: str
    channel: str
    store: str
    stream: str
    seq: int
    landed_at: str  # ISO 8601 UTC
    source: str  # api | import | webhook | bench
    cursor: dict[str, Any] | None
    records: int
    parts: list[PartInfo]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def landed_at_dt(self) -> datetime:
        """``landed_at`` as an aware datetime."""
        return datetime.fromisoformat(self.landed_at)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """Rebuild from the JSON file."""
        parts = [PartInfo(**p) for p in data.pop("parts")]
        return cls(parts=parts, **data)


def _check_name(kind: str, value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(f"{kind} {value!r} may hold only letters, digits and . _ @ + -")
    return value


class LandingStore:
    """Append-only landing zone on a local folder or any fsspec URL."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(root).rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.root)
        self._local = self.fs.protocol in ("file", ("file", "local")) or "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )

    # -- paths ---------------------------------------------------------------------------------
    def _stream_dir(self, channel: str, store: str, stream: str) -> str:
        return "/".join(
            [self._base, _check_name("channel", channel), _check_name("store", store), _check_name("stream", stream)]
        )

    def _write_atomic(self, path: str, data: bytes) -> None:
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        if self._local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            dir_fd = os.open(Path(path).parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        else:
            with self.fs.open(tmp, "wb") as fh:
                fh.write(data)
            self.fs.mv(tmp, path)

    # -- writing -------------------------------------------------------------------------------
    def write_batch(
        self,
        channel: str,
        store: str,
        stream: str,
        parts: list[Part],
        cursor: dict[str, Any] | None,
        *,
        source: str = "api",
        meta: dict[str, Any] | None = None,
    ) -> Manifest:
        """Land one batch atomically and return its manifest.

        Args:
            channel: channel name.
            store: store key.
            stream: stream name (``orders``, ``orders_report`` ...).
            parts: the raw bodies, in the order they were fetched.
            cursor: the stream's cursor after this batch (None keeps the previous one).
            source: ``api``, ``import``, ``webhook`` or ``bench``.
            meta: anything else worth keeping (e.g. the run id).
        """
        latest = self.latest_manifest(channel, store, stream)
        seq = (latest.seq + 1) if latest else 1
        if cursor is None and latest is not None:
            cursor = latest.cursor
        batch_dir = f"{self._stream_dir(channel, store, stream)}/{seq:08d}"
        infos: list[PartInfo] = []
        for i, part in enumerate(parts, start=1):
            name = f"part-{i:04d}.{part.ext}"
            self._write_atomic(f"{batch_dir}/{name}", part.body)
            infos.append(
                PartInfo(
                    file=name,
                    kind=part.kind,
                    records=part.records,
                    bytes=len(part.body),
                    sha256=hashlib.sha256(part.body).hexdigest(),
                    request=part.request,
                )
            )
        manifest = Manifest(
            batch_id=f"{channel}/{store}/{stream}/{seq:08d}",
            channel=channel,
            store=store,
            stream=stream,
            seq=seq,
            landed_at=clock.now().isoformat(),
            source=source,
            cursor=cursor,
            records=sum(p.records for p in parts),
            parts=infos,
            meta=meta or {},
        )
        body = json.dumps(asdict(manifest), indent=1, sort_keys=True, default=str).encode()
        self._write_atomic(f"{batch_dir}/{MANIFEST}", body)
        return manifest

    # -- reading -------------------------------------------------------------------------------
    def _seq_dirs(self, channel: str, store: str, stream: str) -> list[str]:
        base = self._stream_dir(channel, store, stream)
        if not self.fs.exists(base):
            return []
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(base, detail=False)]
        return [f"{base}/{n}" for n in sorted(n for n in names if n.isdigit())]

    def _read_manifest(self, batch_dir: str) -> Manifest | None:
        path = f"{batch_dir}/{MANIFEST}"
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as fh:
            return Manifest.from_json(json.loads(fh.read()))

    def latest_manifest(self, channel: str, store: str, stream: str) -> Manifest | None:
        """The newest complete batch of a stream, or None."""
        for batch_dir in reversed(self._seq_dirs(channel, store, stream)):
            manifest = self._read_manifest(batch_dir)
            if manifest is not None:
                return manifest
        return None

    def state(self, channel: str, store: str, stream: str) -> dict[str, Any] | None:
        """The stream's cursor: the newest manifest's ``cursor``."""
        latest = self.latest_manifest(channel, store, stream)
        return latest.cursor if latest else None

    def streams(self) -> list[tuple[str, str, str]]:
        """Every (channel, store, stream) that has a folder."""
        found: list[tuple[str, str, str]] = []
        if not self.fs.exists(self._base):
            return found
        for ch in sorted(self.fs.ls(self._base, detail=False)):
            for st in sorted(self.fs.ls(ch, detail=False)):
                for sm in sorted(self.fs.ls(st, detail=False)):
                    parts = sm.rstrip("/").rsplit("/", 3)[-3:]
                    found.append((parts[0], parts[1], parts[2]))
        return found

    def manifests(
        self, channel: str | None = None, store: str | None = None, stream: str | None = None
    ) -> Iterator[Manifest]:
        """Every complete batch, optionally filtered, in (channel, store, stream, seq) order."""
        for ch, st, sm in self.streams():
            if (channel and ch != channel) or (store and st != store) or (stream and sm != stream):
                continue
            for batch_dir in self._seq_dirs(ch, st, sm):
                manifest = self._read_manifest(batch_dir)
                if manifest is not None:
                    yield manifest

    def read_part(self, manifest: Manifest, part: PartInfo) -> bytes:
        """The raw bytes of one part of a batch."""
        path = f"{self._stream_dir(manifest.channel, manifest.store, manifest.stream)}/{manifest.seq:08d}/{part.file}"
        with self.fs.open(path, "rb") as fh:
            return fh.read()
