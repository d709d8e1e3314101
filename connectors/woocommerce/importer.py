"""Land saved WooCommerce REST v3 responses as if fetched (replays, support cases, migrations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.landing import LandingStore, Manifest, Part
from orderhub.errors import ConfigError

LIST_KIND = "woocommerce.rest.orders"  # GET /wp-json/wc/v3/orders: a bare JSON array
ORDER_KIND = "woocommerce.rest.order"  # GET /wp-json/wc/v3/orders/{id}: one order object


def _is_order(value: Any) -> bool:
    # order_key is WooCommerce's own field; the pair below still recognizes a record missing it.
    return isinstance(value, dict) and ("order_key" in value or {"line_items", "date_created_gmt"} <= value.keys())


def detect_kind(path: Path, body: bytes) -> tuple[str, int]:
    """The part kind of a saved response and how many orders it holds.

    Raises:
        ConfigError: the file is not a WooCommerce REST v3 orders response; the message says what it looks like.
    """
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not JSON ({exc}); save the raw body of GET /wp-json/wc/v3/orders") from None
    if isinstance(data, list) and all(_is_order(r) for r in data):
        return LIST_KIND, len(data)
    if _is_order(data):
        return ORDER_KIND, 1
    if isinstance(data, dict) and {"code", "message"} <= data.keys():
        raise ConfigError(f"{path}: a WooCommerce error response ({data['code']}: {data['message']}), not orders")
    raise ConfigError(
        f"{path}: not a WooCommerce REST v3 orders response (expected the JSON array of "
        f"GET /wp-json/wc/v3/orders or the object of GET /wp-json/wc/v3/orders/{{id}}); "
        f"is it from another channel? Use --channel accordingly."
    )


def import_files(paths: list[Path], store: str, landing: LandingStore) -> list[Manifest]:
    """Land saved responses as one batch of the ``import`` stream (source ``import``, no cursor).

    Every file is checked before anything is landed, so a wrong file lands nothing.

    Args:
        paths: saved raw response bodies (JSON).
        store: store key to file them under.
        landing: the landing zone.

    Returns:
        The manifest of the landed batch (empty list when ``paths`` is empty).

    Raises:
        ConfigError: a file is unreadable or not a WooCommerce orders response.
    """
    parts: list[Part] = []
    for path in map(Path, paths):
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
        kind, records = detect_kind(path, body)
        parts.append(Part(kind, body, records, {"imported_from": path.name}))
    if not parts:
        return []
    return [landing.write_batch("woocommerce", store, "import", parts, None, source="import",
                                meta={"files": [str(p) for p in paths]})]
