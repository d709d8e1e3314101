"""``orderhub status``: sync health per store and stream, from landing manifests and the last process runs.

It reads no warehouse: DuckDB admits no reader beside a running writer, and an operator must be
able to look while flows run. Processing leaves per-store counters in ``status.json`` instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.base import cursor_as_of
from orderhub import clock
from orderhub.config import Settings
from orderhub.ops import landing_store

STATUS_FILE = "status.json"


def _status_path(settings: Settings) -> Path:
    return settings.home / STATUS_FILE


def record_process_result(settings: Settings, result: Any) -> None:
    """Add one processing run's per-store counts to ``status.json`` (atomically)."""
    if result is None:
        return
    path = _status_path(settings)
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"stores": {}}
    for (channel, store), counts in result.by_store.items():
        entry = data["stores"].setdefault(f"{channel}:{store}", {"landed": 0, "loaded": 0, "quarantined": 0})
        entry["landed"] += counts.landed
        entry["loaded"] += counts.loaded
        entry["quarantined"] += counts.quarantined
    data["last_process"] = clock.now().isoformat()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def _behind(cursor: dict[str, Any] | None) -> str | None:
    as_of = cursor_as_of(cursor)
    if as_of is None:
        return None
    seconds = (clock.now() - as_of).total_seconds()
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def store_status(settings: Settings) -> list[dict[str, Any]]:
    """One row per (channel, store, stream) landed so far, plus configured stores never synced."""
    landing = landing_store(settings)
    processed = json.loads(_status_path(settings).read_text()) if _status_path(settings).exists() else {"stores": {}}
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for channel, store, stream in landing.streams():
        manifests = list(landing.manifests(channel, store, stream))
        api = [m for m in manifests if m.source == "api"]
        latest = (api or manifests)[-1] if manifests else None
        counts = processed["stores"].get(f"{channel}:{store}", {})
        rows.append({
            "channel": channel, "store": store, "stream": stream,
            "last_sync": latest.landed_at if latest else None,
            "cursor": as_of.isoformat() if latest and (as_of := cursor_as_of(latest.cursor)) else None,
            "behind": _behind(latest.cursor if latest else None),
            "batches": len(manifests),
            "landed": sum(m.records for m in manifests),
            "loaded": counts.get("loaded", ""),
            "quarantined": counts.get("quarantined", ""),
        })
        seen.add((channel, store))
    for s in settings.stores:
        if (s.channel, s.key) not in seen:
            rows.append({"channel": s.channel, "store": s.key, "stream": "orders", "last_sync": None, "cursor": None,
                         "behind": None, "batches": 0, "landed": 0, "loaded": "", "quarantined": ""})
    return rows
