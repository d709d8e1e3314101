"""The outbox on disk: batch folders, atomic file writes, and the manifest that marks a batch complete."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orderhub.errors import OrderhubError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "orderhub-export/1"
_DAY_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BATCH_DIR = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")


class OutboxError(OrderhubError):
    """A batch in the outbox is damaged (unreadable manifest): a person must look at the folder named."""


@dataclass(frozen=True)
class FileEntry:
    """One data file of a batch, as its manifest lists it."""

    sha256: str
    bytes: int
    rows: int


@dataclass(frozen=True)
class Manifest:
    """What a complete batch holds. Written last: a batch folder without it is an aborted batch.

    Attributes:
        batch_id: the batch id (also the folder name).
        created_at: when the batch was written (UTC).
        target: where it goes (``outbox``).
        order_ids: the orders in the batch, in file order.
        orders: number of orders.
        lines: number of order lines.
        files: data file name → sha256, size and rows.
    """

    batch_id: str
    created_at: datetime
    target: str
    order_ids: list[str]
    orders: int
    lines: int
    files: dict[str, FileEntry] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The manifest file's bytes (UTF-8 JSON, stable key order)."""
        data: dict[str, Any] = {"format": MANIFEST_FORMAT, **asdict(self)}
        data["created_at"] = self.created_at.isoformat()
        return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Parse a manifest file.

        Raises:
            OutboxError: the file is not a manifest this version understands.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            return cls(
                batch_id=data["batch_id"],
                created_at=datetime.fromisoformat(data["created_at"]),
                target=data["target"],
                order_ids=list(data["order_ids"]),
                orders=int(data["orders"]),
                lines=int(data["lines"]),
                files={name: FileEntry(**entry) for name, entry in data["files"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OutboxError(f"{path} is not a readable export manifest ({exc}); inspect the batch by hand") from None


def batch_id_for(now: datetime, suffix: str) -> str:
    """A batch id: UTC time (sorts chronologically) plus 8 hex characters (unique within a second)."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{suffix}"


def batch_dirs(outbox: Path) -> Iterator[Path]:
    """Every batch folder in the outbox (``YYYY-MM-DD/<batch_id>``), oldest first; other entries are ignored."""
    if not outbox.is_dir():
        return
    for day in sorted(p for p in outbox.iterdir() if p.is_dir() and _DAY_DIR.match(p.name)):
        yield from sorted(p for p in day.iterdir() if p.is_dir() and _BATCH_DIR.match(p.name))


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> str:
    """Write ``data`` to ``path`` via a temp file, fsync and rename; readers never see half a file.

    Returns:
        The sha256 of ``data`` (hex).
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return hashlib.sha256(data).hexdigest()


def make_batch_dir(outbox: Path, day: str, batch_id: str) -> Path:
    """Create ``outbox/day/batch_id`` (the folder must not exist yet) and make the entries durable."""
    day_dir = outbox / day
    day_dir.mkdir(parents=True, exist_ok=True)
    fsync_dir(outbox)
    path = day_dir / batch_id
    path.mkdir()
    fsync_dir(day_dir)
    return path


def remove_batch_dir(path: Path) -> None:
    """Delete an aborted batch folder (one without a manifest)."""
    shutil.rmtree(path)
    fsync_dir(path.parent)
