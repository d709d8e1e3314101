"""A feed file server: static order files with ETag and Last-Modified, conditional GETs, a half-written-file fault.

``GET /feeds/{name}`` serves a file; ``If-None-Match`` (strong ETag, the body's sha256) or, without it,
``If-Modified-Since`` (RFC 9110 section 13.1.3: only when If-None-Match is absent) answer 304.
Besides files put by tests, an *export* is rendered on every request from a live order list
(:func:`market_export`: a marketplace's CSV export in its own column layout, every order in its
current state), as a shop's export job republishes its file; Last-Modified is the newest change in it.
The fault ``half_written`` serves the first part of the file cut in the middle of a line, as a
server does while the export job is still writing it, with that part's own ETag and length.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

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
        self._exports: dict[str, Callable[[], tuple[bytes, datetime]]] = {}
        self._files_lock = threading.Lock()
        self.conditional_hits = 0
        self.route("GET", r"/feeds/(?P<name>[^/]+)", self._get, "file")

    def export(self, name: str, render: Callable[[], tuple[bytes, datetime]]) -> None:
        """Serve ``name`` rendered on each request: ``render()`` gives the body and its last change."""
        with self._files_lock:
            self._exports[name] = render

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
            found, render = self._files.get(name), self._exports.get(name)
        if render is not None:
            body, changed = render()
            found = (body, changed.replace(microsecond=0))
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


# A marketplace's order export (one row per line item, its own headers): canonical feed column -> header.
# The sandbox's feed store maps it back with `mapping` and `statuses` (sandbox/server.py).
MARKET_COLUMNS = {
    "order_id": "Order ID", "created_at": "Purchase Date", "updated_at": "Last Updated", "status": "Order Status",
    "payment_status": "Payment Status", "currency": "Currency", "subtotal": "Item Subtotal",
    "discount": "Order Discount", "shipping": "Postage", "tax": "VAT", "total": "Order Total",
    "refunded": "Refunded", "customer_id": "Buyer ID", "email": "Buyer Email", "phone": "Buyer Phone",
    "buyer_name": "Buyer Name", "ship_name": "Recipient", "ship_line1": "Address 1", "ship_line2": "Address 2",
    "ship_city": "Town", "ship_region": "County", "ship_postal_code": "Postcode", "ship_country": "Country",
    "line_sku": "SKU", "line_title": "Item", "line_quantity": "Qty", "line_unit_price": "Item Price",
    "line_discount": "Item Discount", "line_tax": "Item VAT", "line_total": "Item Total",
}
MARKET_STATUSES = {"pending": "Awaiting Payment", "unfulfilled": "Awaiting Dispatch",
                   "partially_fulfilled": "Part Dispatched", "fulfilled": "Dispatched", "cancelled": "Cancelled"}


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def market_export(orders: Iterable[Any], now: datetime) -> tuple[bytes, datetime]:
    """The export of ``orders`` (sandbox.model.Order) as of ``now``: CSV bytes and the newest change in it.

    Every order created by ``now`` appears in its current version, sorted by order id. A malformed
    order (``order.defect``) shows its defect: no id, a total with a decimal comma, an impossible
    date, currency ``ZZZ``, a quantity of -1, or one row without an item.
    """
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(MARKET_COLUMNS.values())
    newest = datetime(1970, 1, 1, tzinfo=UTC)
    current = [(o, v) for o in orders if (v := o.version_at(now)) is not None]
    for order, version in sorted(current, key=lambda ov: ov[0].external_id):
        newest = max(newest, version.at)
        defect, ship = order.defect, order.ship_to
        head = {
            "order_id": "" if defect == "missing_id" else order.external_id,
            "created_at": "31/02/2024 25:61" if defect == "bad_date" else _iso(order.created_at),
            "updated_at": _iso(version.at), "status": MARKET_STATUSES[version.status],
            "payment_status": version.payment_status,
            "currency": "ZZZ" if defect == "unknown_currency" else order.currency,
            "subtotal": order.subtotal, "discount": order.discount, "shipping": order.shipping, "tax": order.tax,
            "total": str(order.total).replace(".", ",") if defect == "bad_total" else order.total,
            "refunded": version.refunded or "", "customer_id": order.channel_customer_id or "",
            "email": order.email or "", "phone": order.phone or "", "buyer_name": order.buyer_name or "",
            "ship_name": ship.name if ship else "", "ship_line1": ship.line1 if ship else "",
            "ship_line2": (ship.line2 or "") if ship else "", "ship_city": ship.city if ship else "",
            "ship_region": (ship.region or "") if ship else "", "ship_postal_code": ship.postal_code if ship else "",
            "ship_country": ship.country if ship else "",
        }
        lines = [] if defect == "missing_lines" else order.lines
        for n, line in enumerate(lines or [None]):
            item = {} if line is None else {
                "line_sku": line.sku, "line_title": line.title,
                "line_quantity": -1 if defect == "negative_quantity" and n == 0 else line.quantity,
                "line_unit_price": line.unit_price, "line_discount": line.discount, "line_tax": line.tax,
                "line_total": line.total}
            writer.writerow([{**head, **item}.get(col, "") for col in MARKET_COLUMNS])
    return buf.getvalue().encode("utf-8"), newest
