"""``orderhub import --channel feed FILE…``: land feed files the same way a folder source does."""

from __future__ import annotations

import hashlib
from pathlib import Path

from connectors.feed.format import detect_format, parse
from connectors.feed.streams import CHANNEL, feed_part
from connectors.landing import LandingStore, Manifest, Part
from orderhub.errors import ConfigError

STREAM = "import"


def import_files(paths: list[Path], store: str, landing: LandingStore) -> list[Manifest]:
    """Land feed files as one batch of the ``import`` stream; a file already imported to ``store`` is skipped.

    A file whose last line is cut lands, and the normalizer quarantines the cut tail with a reason;
    a JSON file that does not parse is refused here, since an operator can fix it and retry.
    The column mapping is the configured feed store's (``[[stores]]`` with ``channel = "feed"`` and
    this key), applied when the batch is processed.

    Raises:
        ConfigError: a file is unreadable or is not a feed file at all.
    """
    done = {p.sha256 for m in landing.manifests(CHANNEL, store, STREAM) for p in m.parts}
    parts: list[Part] = []
    for path in map(Path, paths):
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
        sha = hashlib.sha256(body).hexdigest()
        if sha in done:
            continue
        parsed = parse(body, detect_format(path.name, body))
        if parsed.error is not None:
            raise ConfigError(f"{path}: {parsed.error}; see connectors/feed/README.md for the feed format")
        done.add(sha)
        parts.append(feed_part(path.name, body, None))
    if not parts:
        return []
    return [landing.write_batch(CHANNEL, store, STREAM, parts, None, source="import",
                                meta={"files": [str(p) for p in paths]})]
