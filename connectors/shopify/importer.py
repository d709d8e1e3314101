"""Land saved Shopify API responses (REST orders.json / order.json, GraphQL orders) as if they had been fetched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.landing import LandingStore, Manifest, Part
from orderhub.errors import ConfigError

CHANNEL = "shopify"
STREAM = "import"
GRAPHQL_KIND = "shopify.graphql.orders"
REST_KIND = "shopify.rest.orders"


def detect(body: bytes, name: str = "file") -> tuple[str, int]:
    """The part kind of a saved response and how many orders it holds.

    Raises:
        ConfigError: the file is not JSON, or not a Shopify orders response.
    """
    try:
        doc: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{name} is not JSON: save the Shopify API response body as it came") from None
    if isinstance(doc, dict):
        orders = (doc.get("data") or {}).get("orders") if isinstance(doc.get("data"), dict) else None
        if isinstance(orders, dict) and ("edges" in orders or "nodes" in orders):
            items = orders.get("nodes") if orders.get("nodes") is not None else orders.get("edges")
            return GRAPHQL_KIND, len(items or [])
        if isinstance(doc.get("orders"), list):
            return REST_KIND, len(doc["orders"])
        if isinstance(doc.get("order"), dict):
            return REST_KIND, 1
    raise ConfigError(
        f"{name} is not a Shopify orders response: expected REST {{\"orders\": [...]}} or {{\"order\": {{...}}}} "
        "(GET /admin/api/<version>/orders.json) or a GraphQL body with data.orders.edges/nodes"
    )


def import_files(paths: list[Path], store: str, landing: LandingStore) -> list[Manifest]:
    """Land each file byte for byte as one batch of stream ``import`` (source ``import``, no cursor).

    Every file is checked before any is landed, so a wrong file lands nothing.

    Raises:
        ConfigError: a file is missing or not a Shopify orders response.
    """
    parts: list[tuple[Path, Part]] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path} does not exist or is not a file")
        body = path.read_bytes()
        kind, records = detect(body, str(path))
        parts.append((path, Part(kind, body, records, {"source": "import", "file": path.name})))
    return [
        landing.write_batch(CHANNEL, store, STREAM, [part], None, source="import", meta={"file": str(path)})
        for path, part in parts
    ]
