"""Land saved Amazon Orders API responses (files) as if they had been fetched: stream ``import``, no cursor."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from connectors.amazon.reports import KIND_REPORT, inspect_report
from connectors.amazon.streams import (
    KIND_GET_ORDER,
    KIND_SEARCH_ORDERS,
    KIND_V0_ITEMS,
    KIND_V0_ORDER,
    KIND_V0_ORDERS,
)
from connectors.landing import LandingStore, Manifest, Part
from orderhub.errors import ConfigError, RetriableError

KIND_V0_BUYER = "amazon.orders.v0.getOrderBuyerInfo"
KIND_V0_ADDRESS = "amazon.orders.v0.getOrderAddress"
KNOWN = ("searchOrders or getOrder (v2026-01-01); getOrders, getOrder, getOrderItems, getOrderBuyerInfo or "
         "getOrderAddress (v0); or a GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL report (.tsv, .gz)")


def detect(body: Any) -> tuple[str, int] | None:
    """The part kind of a response body and how many order records it holds; None when not an order response."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("orders"), list):
        return KIND_SEARCH_ORDERS, len(body["orders"])
    if isinstance(body.get("order"), dict):
        return KIND_GET_ORDER, 1
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("Orders"), list):
        return KIND_V0_ORDERS, len(payload["Orders"])
    if isinstance(payload.get("OrderItems"), list):
        return KIND_V0_ITEMS, 0
    if "OrderStatus" in payload and "AmazonOrderId" in payload:
        return KIND_V0_ORDER, 1
    if "ShippingAddress" in payload and "AmazonOrderId" in payload:
        return KIND_V0_ADDRESS, 0
    if "AmazonOrderId" in payload and any(k.startswith("Buyer") for k in payload):
        return KIND_V0_BUYER, 0
    return None


def _code(error: Any) -> str:
    return str(error.get("code", "?")) if isinstance(error, dict) else "not an order response"


def _sandbox_entries(data: Any) -> list[dict[str, Any]] | None:
    """The request/response pairs of an SP-API sandbox file (``{"static": [...]}`` or a bare list)."""
    entries = data.get("static") if isinstance(data, dict) else data
    if isinstance(entries, list) and entries and all(isinstance(e, dict) and "response" in e for e in entries):
        return entries
    return None


def _report_part(path: Path, raw: bytes) -> Part | None:
    """A saved order report (TSV, optionally gzipped, UTF-8), or None when the file is not one."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ConfigError(f"{path} is a damaged gzip file ({exc}); download the report again") from None
    if b"amazon-order-id\t" not in raw.split(b"\n", 1)[0]:
        return None
    try:
        records = inspect_report(raw, "utf-8")
    except RetriableError as exc:
        raise ConfigError(f"{path}: {str(exc).replace('; will fetch it again', '')}; nothing was imported") from None
    return Part(KIND_REPORT, raw, records, {"file": path.name, "charset": "utf-8"})


def _parts_of(path: Path) -> list[Part]:
    raw = path.read_bytes()
    report = _report_part(path, raw)
    if report is not None:
        return [report]
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{path} is not JSON: expected a saved Amazon Orders API response ({KNOWN})") from None
    entries = _sandbox_entries(data)
    if entries is None:
        found = detect(data)
        if found is None:
            raise ConfigError(f"{path} is not an Amazon Orders API response: expected {KNOWN}")
        return [Part(found[0], raw, found[1], {"file": path.name})]
    parts: list[Part] = []
    errors: list[str] = []
    for index, entry in enumerate(entries):
        body = entry["response"]
        found = detect(body)
        if found is None:
            listed = body.get("errors") if isinstance(body, dict) else None
            errors.extend(_code(e) for e in (listed if isinstance(listed, list) else [None]))
            continue
        # A sandbox file wraps each response in its request; the response is re-serialized as JSON.
        text = json.dumps(body, ensure_ascii=False, indent=2).encode()
        request = {"file": path.name, "static_index": index, "parameters": entry.get("request", {}).get("parameters")}
        parts.append(Part(found[0], text, found[1], request))
    if not parts:
        raise ConfigError(f"{path} holds only SP-API error responses ({', '.join(errors) or 'unknown'}); "
                          f"nothing to import: expected {KNOWN}")
    return parts


def import_files(paths: list[Path], store: str, landing: LandingStore) -> list[Manifest]:
    """Land saved responses as one batch of the ``import`` stream (so v0 orders meet their items).

    Each file's kind is read from its content: a raw response body is landed byte for byte; an SP-API
    sandbox file (request/response pairs) lands each response it holds.

    Raises:
        ConfigError: a file is not JSON or not an Amazon Orders response; nothing is landed then.
    """
    parts: list[Part] = []
    for path in paths:
        parts.extend(_parts_of(Path(path)))
    if not parts:
        return []
    manifest = landing.write_batch("amazon", store, "import", parts, None, source="import",
                                   meta={"files": [Path(p).name for p in paths]})
    return [manifest]
