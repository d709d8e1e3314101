"""The one place orderhub asks what time it is.

In production this is the system clock (UTC). A sandbox home carries ``sandbox/clock.json`` with
an offset that the sandbox advances to simulate days of business; every connector and emulator
reads time here, so both sides agree on "now".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

_offset_file: Path | None = None


def use_offset_file(path: Path | None) -> None:
    """Make ``now()`` add the offset stored in ``path`` (the sandbox clock); ``None`` restores real time."""
    global _offset_file
    _offset_file = path


def offset_file() -> Path | None:
    """The offset file in use (None: real time)."""
    return _offset_file


def offset() -> timedelta:
    """The current sandbox offset (zero outside the sandbox)."""
    if _offset_file is None or not _offset_file.exists():
        return timedelta(0)
    data = json.loads(_offset_file.read_text())
    return timedelta(seconds=float(data.get("offset_seconds", 0)))


def set_offset(path: Path, value: timedelta) -> None:
    """Write the sandbox clock offset atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"offset_seconds": value.total_seconds()}))
    tmp.replace(path)


def now() -> datetime:
    """Current time, UTC, time-zone aware."""
    return datetime.now(UTC) + offset()
