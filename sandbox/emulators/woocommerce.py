"""WooCommerce REST API v3 emulator: several shops under path prefixes, OAuth 1.0a over HTTP, real paging; webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import requests

from orderhub import clock
from sandbox.emulators.base import Emulator, Request, Response, ServerBucket
from sandbox.model import Address, Order, Version

log = logging.getLogger(__name__)

# Not a WooCommerce limit (it documents none for the REST API); managed WordPress hosts put a WAF
# in front that throttles bursts. Generous, so it only bites a runaway client:
# https://developer.woocommerce.com/docs/apis/store-api/rate-limiting/ (the Store API's opt-in limiter).
HOST_RATE_PER_SECOND = 20.0
HOST_BURST = 40
# WooCommerce refuses OAuth timestamps older than 15 minutes and remembers nonces that long
# (WC_REST_Authentication::check_oauth_timestamp_and_nonce,
# https://github.com/woocommerce/woocommerce/blob/trunk/plugins/woocommerce/includes/class-wc-rest-authentication.php).
OAUTH_WINDOW = timedelta(minutes=15)
# WordPress rejects per_page above 100 with rest_invalid_param:
# https://developer.wordpress.org/rest-api/using-the-rest-api/pagination/
MAX_PER_PAGE = 100
WC_VERSION = "8.9.3"
ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "PYG"}  # wc_get_price_decimals() 0
ORDERBY = {"date", "id", "include", "title", "slug", "modified"}
STATUSES = {"pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed", "trash",
            "checkout-draft", "partial-shipped"}
PAYMENT_METHODS = [("stripe", "Credit Card (Stripe)"), ("paypal", "PayPal"), ("bacs", "Direct bank transfer"),
                   ("cod", "Cash on delivery")]
WIRE_TIME = "%Y-%m-%dT%H:%M:%S"
UTC_ZONE = ZoneInfo("UTC")


class OrderSource(Protocol):
    """What the emulator reads: each store's orders (sorted by created_at) and lookup by truth id."""

    def orders_for(self, store_key: str) -> list[Order]: ...

    def by_truth_id(self, truth_id: str) -> Order: ...


# -- rendering -------------------------------------------------------------------------------------
def _second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def _gmt(value: datetime | None) -> str | None:
    return _second(value).strftime(WIRE_TIME) if value else None


def _local(value: datetime | None, zone: ZoneInfo) -> str | None:
    return _second(value).astimezone(zone).strftime(WIRE_TIME) if value else None


def _money(value: Decimal, currency: str) -> str:
    exp = Decimal(1) if currency in ZERO_DECIMAL else Decimal("0.01")
    return f"{value.quantize(exp):f}"


def _digest(*parts: str) -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def _split_name(name: str | None) -> tuple[str, str]:
    first, _, last = (name or "").strip().partition(" ")
    return first, last.strip()


def _address(addr: Address | None) -> dict[str, str]:
    first, last = _split_name(addr.name if addr else None)
    return {
        "first_name": first, "last_name": last, "company": "",
        "address_1": addr.line1 if addr else "", "address_2": (addr.line2 or "") if addr else "",
        "city": addr.city if addr else "", "state": (addr.region or "") if addr else "",
        "postcode": addr.postal_code if addr else "", "country": addr.country if addr else "",
    }


def _history(order: Order, version: Version) -> list[Version]:
    return [v for v in order.versions if v.at <= version.at] or [version]


def wc_status(order: Order, version: Version) -> str:
    """The WooCommerce status that shows a canonical version (the normalizer's table, inverted).

    ``partially_fulfilled`` has no core status; the Advanced Shipment Tracking plugin's
    ``partial-shipped`` is the common one and the normalizer knows it.
    """
    if version.payment_status == "refunded":
        return "refunded"
    if version.status == "pending":
        return "on-hold" if _payment_method(order)[0] in ("bacs", "cod") else "pending"
    return {"unfulfilled": "processing", "partially_fulfilled": "partial-shipped", "fulfilled": "completed",
            "cancelled": "cancelled"}.get(version.status, "processing")


def _payment_method(order: Order) -> tuple[str, str]:
    return PAYMENT_METHODS[int(_digest(order.truth_id, "pay")[:4], 16) % len(PAYMENT_METHODS)]


def _refunds(order: Order, version: Version, total: Decimal, base_id: int) -> list[dict[str, Any]]:
    """One refund per increase of the refunded amount, newest first, totals negative as WooCommerce writes them."""
    amounts: list[Decimal] = []
    done = Decimal(0)
    for v in _history(order, version):
        if v.refunded > done:
            amounts.append(v.refunded - done)
            done = v.refunded
    if version.payment_status == "refunded" and done < total:
        amounts.append(total - done)
    elif version.payment_status == "partially_refunded" and done == 0:
        amounts.append((total / 2).quantize(Decimal("0.01")))
    # WooCommerce >= 4 names the reason field "reason"; the documented example (our fixture) says "refund".
    return [{"id": base_id + 80 + i, "refund": "", "total": "-" + _money(a, order.currency)}
            for i, a in reversed(list(enumerate(amounts)))]


def _price(value: Decimal) -> int | float:
    # WooCommerce computes line "price" in PHP floats and writes a JSON number (3, 12.5): shown, never summed.
    return int(value) if value == value.to_integral_value() else float(value)


def render_order(order: Order, version: Version, *, site_url: str, zone: ZoneInfo = UTC_ZONE) -> dict[str, Any]:
    """An order at one version, shaped exactly like ``GET /wp-json/wc/v3/orders/{id}``.

    Deterministic: the same order, version, site URL and zone give the same record. ``order.defect``
    makes the record malformed the way that defect names.
    """
    cur = "ZZZ" if order.defect == "unknown_currency" else order.currency
    m = lambda value: _money(value, order.currency)  # noqa: E731 - a local shorthand keeps the record readable
    oid: int | str = int(order.external_id) if order.external_id.isdigit() else order.external_id
    base_id = int(_digest(order.truth_id, "items")[:6], 16) * 100
    history = _history(order, version)
    status = wc_status(order, version)
    method, method_title = _payment_method(order)
    paid_at = next((v.at for v in history if v.payment_status in ("paid", "partially_refunded", "refunded")), None)
    shipped_at = next((v.at for v in history if v.status == "fulfilled"), None)
    completed_at = shipped_at if status == "completed" or (status == "refunded" and version.status == "fulfilled") \
        else None
    modified = max(version.at, order.created_at)
    customer = order.channel_customer_id or ""
    customer_id = int(customer) if customer.isdigit() else 0  # 0: a guest checkout
    country = order.ship_to.country if order.ship_to else ""
    billing = {**_address(order.ship_to), "email": order.email or "", "phone": order.phone or ""}
    billing["first_name"], billing["last_name"] = _split_name(order.buyer_name)

    lines = []
    for i, line in enumerate(order.lines, start=1):
        subtotal = line.quantity * line.unit_price
        total = subtotal - line.discount
        lines.append({
            "id": base_id + i, "name": line.title,
            "product_id": int(_digest(line.sku)[:4], 16) % 9000 + 10, "variation_id": 0,
            "quantity": line.quantity, "tax_class": "",
            "subtotal": m(subtotal), "subtotal_tax": m(line.tax), "total": m(total), "total_tax": m(line.tax),
            "taxes": [{"id": 1, "total": m(line.tax), "subtotal": m(line.tax)}] if line.tax else [],
            "meta_data": [], "sku": line.sku,
            "price": _price(total / line.quantity) if line.quantity else 0,
        })
    record: dict[str, Any] = {
        "id": oid, "parent_id": 0, "number": order.order_number,
        "order_key": f"wc_order_{_digest(order.truth_id)[:13]}", "created_via": "checkout",
        "version": WC_VERSION, "status": status, "currency": cur,
        "date_created": _local(order.created_at, zone), "date_created_gmt": _gmt(order.created_at),
        "date_modified": _local(modified, zone), "date_modified_gmt": _gmt(modified),
        "discount_total": m(order.discount), "discount_tax": m(Decimal(0)),
        "shipping_total": m(order.shipping), "shipping_tax": m(Decimal(0)),
        "cart_tax": m(order.tax), "total": m(order.total), "total_tax": m(order.tax),
        "prices_include_tax": False, "customer_id": customer_id,
        "customer_ip_address": "", "customer_user_agent": "", "customer_note": "",
        "billing": billing, "shipping": _address(order.ship_to),
        "payment_method": method, "payment_method_title": method_title,
        "transaction_id": f"ch_{_digest(order.truth_id, 'txn')[:24]}" if paid_at and method == "stripe" else "",
        "date_paid": _local(paid_at, zone), "date_paid_gmt": _gmt(paid_at),
        "date_completed": _local(completed_at, zone), "date_completed_gmt": _gmt(completed_at),
        "cart_hash": _digest(order.truth_id, "cart")[:32], "meta_data": [],
        "line_items": lines,
        "tax_lines": [{
            "id": base_id + 60, "rate_code": f"{country or 'US'}-TAX-1", "rate_id": 1, "label": "Tax",
            "compound": False, "tax_total": m(order.tax), "shipping_tax_total": m(Decimal(0)), "meta_data": [],
        }] if order.tax else [],
        "shipping_lines": [{
            "id": base_id + 50,
            "method_title": "Flat rate" if order.shipping else "Free shipping",
            "method_id": "flat_rate" if order.shipping else "free_shipping",
            "total": m(order.shipping), "total_tax": m(Decimal(0)), "taxes": [],
            # Checkout records what the package holds, entity and all, as in the documented example.
            "meta_data": [{"id": base_id + 51, "key": "Items",
                           "value": ", ".join(f"{line.title} &times; {line.quantity}" for line in order.lines)}],
        }] if order.ship_to is not None else [],
        "fee_lines": [],
        "coupon_lines": [{
            "id": base_id + 70, "code": "welcome10", "discount": m(order.discount),
            "discount_tax": m(Decimal(0)), "meta_data": [],
        }] if order.discount else [],
        "refunds": _refunds(order, version, order.total, base_id),
        "_links": {
            "self": [{"href": f"{site_url}/wp-json/wc/v3/orders/{oid}"}],
            "collection": [{"href": f"{site_url}/wp-json/wc/v3/orders"}],
            **({"customer": [{"href": f"{site_url}/wp-json/wc/v3/customers/{customer_id}"}]} if customer_id else {}),
        },
    }
    return _apply_defect(record, order.defect)


def _apply_defect(record: dict[str, Any], defect: str | None) -> dict[str, Any]:
    if defect is None or defect == "unknown_currency":
        return record
    if defect == "missing_id":
        del record["id"]
    elif defect == "bad_date":
        # MySQL's zero date: what a broken import leaves in wp_posts.post_date.
        record["date_created"] = record["date_created_gmt"] = "0000-00-00T00:00:00"
    elif defect == "negative_quantity" and record["line_items"]:
        record["line_items"][0]["quantity"] = -1
    elif defect == "missing_lines":
        record["line_items"] = []
    else:  # bad_total, and any defect this renderer does not know
        record["total"] = record["total"].replace(".", ",")
    return record


# -- the emulator ----------------------------------------------------------------------------------
def _error(code: str, message: str, status: int, **data: Any) -> Response:
    return Response.json({"code": code, "message": message, "data": {"status": status, **data}}, status)


def _invalid(param: str, why: str) -> Response:
    return _error("rest_invalid_param", f"Invalid parameter(s): {param}", 400, params={param: why})


def _pct(value: str) -> str:
    return quote(value, safe="-._~")  # PHP rawurlencode


class WooCommerceEmulator(Emulator):
    """WooCommerce REST API v3 of several shops on one server, each under ``/{store_key}``.

    A store's ``url`` is ``{server.url}/{store_key}``. Requests must be signed with OAuth 1.0a
    (HMAC-SHA1 or HMAC-SHA256, one-legged) in the query string, as WooCommerce requires over plain
    HTTP; HTTP Basic is ignored there, exactly as on a real shop without TLS.

    Args:
        source: the orders (``orders_for(store_key)``, ``by_truth_id``).
        sites: store key -> (consumer_key, consumer_secret).
        speed: rate-limit speed-up for tests.
        now: the clock (visibility, versions, OAuth timestamps).
        timezone: the sites' WordPress time zone (``date_created`` and friends are local time).

    Faults (besides the generic ones): ``expired_token`` (the key was revoked: 401),
    ``duplicate_page`` (page N>1 serves page N-1 again, as a stale page cache does).
    """

    name = "woocommerce"

    def __init__(
        self,
        source: OrderSource,
        *,
        sites: dict[str, tuple[str, str]],
        speed: float = 1.0,
        now: Callable[[], datetime] = clock.now,
        timezone: str = "America/New_York",
    ) -> None:
        super().__init__(speed=speed, now=now)
        self.source = source
        self.sites = dict(sites)
        self.zone = ZoneInfo(timezone)
        self._buckets = {key: ServerBucket(HOST_RATE_PER_SECOND, HOST_BURST, speed) for key in self.sites}
        self._nonces: dict[str, dict[str, datetime]] = {}
        self._nonce_lock = threading.Lock()
        self.route("GET", r"/(?P<store>[^/]+)/wp-json/wc/v3/orders", self._list, "orders")
        self.route("GET", r"/(?P<store>[^/]+)/wp-json/wc/v3/orders/(?P<id>\d+)", self._get, "order")

    # -- authentication (WC_REST_Authentication, OAuth 1.0a over HTTP) --------------------------
    def _authenticate(self, req: Request, store: str) -> Response | None:
        if store not in self.sites:
            return _error("rest_no_route", "No route was found matching the URL and request method.", 404)
        if self.faults.take(req.path, {"expired_token"}):
            return _error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        params = {k: v[-1] for k, v in req.query.items()}  # PHP's $_GET keeps the last value
        if "oauth_consumer_key" not in params:
            # No OAuth, and Basic auth is only honoured over HTTPS: the request is anonymous.
            return _error("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401)
        for name in ("oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method"):
            if not params.get(name):
                return _error("woocommerce_rest_authentication_error", f"{name} parameter is missing.", 401)
        key, secret = self.sites[store]
        if not hmac.compare_digest(params["oauth_consumer_key"], key):
            return _error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        algorithm = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}.get(params["oauth_signature_method"])
        if algorithm is None:
            return _error("woocommerce_rest_authentication_error", "Invalid signature - signature method is invalid.", 401)
        given = params.pop("oauth_signature").replace(" ", "+")
        pairs = sorted(params.items())  # uksort($params, 'strcmp')
        query = "%26".join(_pct(f"{_pct(k)}={_pct(v)}") for k, v in pairs)
        base = f"{req.method}&{_pct('http://' + req.headers.get('host', '') + req.path)}&{query}"
        expected = base64.b64encode(hmac.new(f"{secret}&".encode(), base.encode(), algorithm).digest()).decode()
        if not hmac.compare_digest(given, expected):
            return _error("woocommerce_rest_authentication_error",
                          "Invalid signature - provided signature does not match.", 401)
        now = self.now()
        try:
            stamp = datetime.fromtimestamp(int(params["oauth_timestamp"]), UTC)
        except (ValueError, OverflowError, OSError):
            stamp = datetime.min.replace(tzinfo=UTC)
        if stamp < now - OAUTH_WINDOW:
            return _error("woocommerce_rest_authentication_error", "Invalid timestamp.", 401)
        with self._nonce_lock:
            used = self._nonces.setdefault(key, {})
            for nonce, at in list(used.items()):
                if at < now - OAUTH_WINDOW:
                    del used[nonce]
            if params["oauth_nonce"] in used:
                return _error("woocommerce_rest_authentication_error",
                              "Invalid nonce - nonce has already been used.", 401)
            used[params["oauth_nonce"]] = stamp
        return None

    def _throttle(self, store: str) -> Response | None:
        if self._buckets[store].try_take():
            return None
        resp = _error("woocommerce_rest_too_many_requests", "Too many requests. Please slow down.", 429)
        resp.headers["Retry-After"] = "1"
        return resp

    # -- data --------------------------------------------------------------------------------------
    def _visible(self, store: str) -> list[tuple[Order, Version]]:
        t = self.now()
        out = []
        for order in self.source.orders_for(store):
            if order.created_at > t:
                break  # sorted by created_at
            version = order.version_at(t) or Version(at=order.created_at, status="pending", payment_status="pending")
            out.append((order, version))
        return out

    def _site_url(self, req: Request, store: str) -> str:
        return f"http://{req.headers.get('host', '127.0.0.1')}/{store}"

    def _render(self, req: Request, store: str, order: Order, version: Version) -> dict[str, Any]:
        return render_order(order, version, site_url=self._site_url(req, store), zone=self.zone)

    def _date(self, req: Request, name: str, gmt: bool) -> datetime | None:
        raw = req.arg(name)
        if raw is None or raw == "":
            return None
        value = datetime.fromisoformat(raw)  # ValueError -> 400
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC if gmt else self.zone)
        return value.astimezone(UTC)

    # -- routes ------------------------------------------------------------------------------------
    def _list(self, req: Request, match: re.Match[str]) -> Response:
        store = match["store"]
        refused = self._authenticate(req, store) or self._throttle(store)
        if refused is not None:
            return refused
        ints: dict[str, int | None] = {}
        for name, default, low, high in (("page", 1, 1, None), ("per_page", 10, 1, MAX_PER_PAGE),
                                         ("offset", None, 0, None)):
            raw = req.arg(name)
            try:
                value = int(raw) if raw not in (None, "") else default
            except ValueError:
                return _invalid(name, f"{name} is not of type integer.")
            if value is not None and (value < low or (high is not None and value > high)):
                bound = f"between {low} (inclusive) and {high} (inclusive)" if high else f"greater than or equal to {low}"
                return _invalid(name, f"{name} must be {bound}")
            ints[name] = value
        orderby, order_dir = req.arg("orderby", "date"), req.arg("order", "desc")
        if orderby not in ORDERBY:
            return _invalid("orderby", f"orderby is not one of {', '.join(sorted(ORDERBY))}.")
        if order_dir not in ("asc", "desc"):
            return _invalid("order", "order is not one of asc, desc.")
        statuses = set(req.args("status")) or {"any"}
        if not statuses <= STATUSES | {"any"}:
            return _invalid("status", "status is not one of any, " + ", ".join(sorted(STATUSES)) + ".")
        gmt = (req.arg("dates_are_gmt") or "").lower() in ("1", "true")
        bounds: dict[str, datetime | None] = {}
        for name in ("after", "before", "modified_after", "modified_before"):
            try:
                bounds[name] = self._date(req, name, gmt)
            except ValueError:
                return _invalid(name, "Invalid date.")
        include = {v for v in req.args("include")}
        customer = req.arg("customer")

        rows = []
        for order, version in self._visible(store):
            created, modified = _second(order.created_at), _second(max(version.at, order.created_at))
            status = wc_status(order, version)
            if ("any" in statuses and status == "trash") or ("any" not in statuses and status not in statuses):
                continue
            if (bounds["after"] and not created > bounds["after"]) or (bounds["before"] and not created < bounds["before"]):
                continue
            if (bounds["modified_after"] and not modified > bounds["modified_after"]) or (
                    bounds["modified_before"] and not modified < bounds["modified_before"]):
                continue
            if include and order.external_id not in include:
                continue
            if customer is not None and (order.channel_customer_id or "0") != customer:
                continue
            rows.append((order, version, created, modified))
        num = lambda o: int(o.external_id) if o.external_id.isdigit() else 0  # noqa: E731
        sort_key: Callable[[tuple[Order, Version, datetime, datetime]], Any] = {
            "date": lambda r: (r[2], num(r[0])), "modified": lambda r: (r[3], num(r[0])),
        }.get(orderby, lambda r: num(r[0]))
        rows.sort(key=sort_key, reverse=order_dir == "desc")

        per_page, page = ints["per_page"] or 10, ints["page"] or 1
        total, pages = len(rows), math.ceil(len(rows) / per_page)
        start = ints["offset"] if ints["offset"] is not None else (page - 1) * per_page
        if start >= per_page and self.faults.take(req.path, {"duplicate_page"}):
            start -= per_page  # a stale page cache answers with the previous page
        body = [self._render(req, store, o, v) for o, v, _, _ in rows[start:start + per_page]]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        link = self._links(req, store, page, pages)
        if link:
            headers["Link"] = link
        return Response.json(body, headers=headers)

    def _links(self, req: Request, store: str, page: int, pages: int) -> str:
        """WordPress' ``Link`` header: prev/next with the request's own parameters (never the OAuth ones)."""
        params = {k: v[-1] for k, v in req.query.items() if not k.startswith("oauth_") and k != "page"}
        base = f"{self._site_url(req, store)}/wp-json/wc/v3/orders"
        out = []
        if page > 1:
            out.append(f'<{base}?{urlencode({**params, "page": min(page - 1, pages) or 1})}>; rel="prev"')
        if pages > page:
            out.append(f'<{base}?{urlencode({**params, "page": page + 1})}>; rel="next"')
        return ", ".join(out)

    def _get(self, req: Request, match: re.Match[str]) -> Response:
        store = match["store"]
        refused = self._authenticate(req, store) or self._throttle(store)
        if refused is not None:
            return refused
        for order, version in self._visible(store):
            if order.external_id == match["id"]:
                return Response.json(self._render(req, store, order, version))
        return _error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)


# -- webhooks ----------------------------------------------------------------------------------------
WEBHOOK_FAULTS = {"webhook_forged", "webhook_redeliver", "webhook_lost"}
WEBHOOK_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")
# WC_Webhook::deliver sends this user agent (class-wc-webhook.php).
WEBHOOK_USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/6.5.3)"


class WebhookEvent(NamedTuple):
    """One webhook to send; ``delivery_id`` stays the same on a redelivery."""

    topic: str
    payload: dict[str, Any]
    delivery_id: str


def webhook_signature(body: bytes, secret: str) -> str:
    """``X-WC-Webhook-Signature``: base64 of the HMAC-SHA256 of the raw body with the webhook's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class WebhookSender:
    """WooCommerce's webhook deliveries of an emulator's sites, POSTed to subscribed delivery URLs.

    Topics ``order.created`` (an order's first version), ``order.updated`` (each later one), and, by
    ``deliver`` only, ``order.deleted`` (payload ``{"id": N}``, as WooCommerce sends) and ``order.restored``.
    Payloads are ``render_order`` records, the body of ``GET /orders/{id}``. Faults, from the emulator's
    plan with path ``webhook:{topic}``: ``webhook_forged`` (signed with a wrong secret),
    ``webhook_redeliver`` (the same delivery sent twice: same body, same ``X-WC-Webhook-Delivery-ID``),
    ``webhook_lost`` (not sent; reported with status 0).

    Args:
        emulator: whose sites, orders and fault plan.
        base_url: the emulator server's URL; a site's URL is ``{base_url}/{site_key}`` (``X-WC-Webhook-Source``
            and the records' links).
        timeout: seconds per POST (WooCommerce waits 5 s: ``woocommerce_webhook_timeout``).
    """

    def __init__(self, emulator: WooCommerceEmulator, *, base_url: str = "http://127.0.0.1",
                 timeout: float = 5.0) -> None:
        self.emu = emulator
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.subscriptions: dict[str, list[tuple[int, str, str]]] = {}  # site -> [(webhook id, url, secret)]
        self._next_id = 1

    def subscribe(self, site_key: str, url: str, secret: str) -> int:
        """Send every order topic of ``site_key`` to ``url``, signed with ``secret``.

        Returns:
            The webhook's id (``X-WC-Webhook-ID``).

        Raises:
            KeyError: the emulator serves no such site.
        """
        if site_key not in self.emu.sites:
            raise KeyError(f"no site {site_key!r} in the emulator")
        webhook_id, self._next_id = self._next_id, self._next_id + 1
        self.subscriptions.setdefault(site_key, []).append((webhook_id, url, secret))
        return webhook_id

    def site_url(self, site_key: str) -> str:
        """The site's URL, as a store's ``url`` names it."""
        return f"{self.base_url}/{site_key}"

    def ping(self, site_key: str) -> list[int]:
        """WooCommerce's ping on saving a webhook: form body ``webhook_id=N``, no signature; status per POST."""
        return [self._post(url, f"webhook_id={webhook_id}".encode(),
                           {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": WEBHOOK_USER_AGENT})
                for webhook_id, url, _ in self.subscriptions.get(site_key, [])]

    def deliver(self, site_key: str, topic: str, payload: dict[str, Any], *,
                delivery_id: str | None = None) -> list[tuple[str, str, int]]:
        """POST one webhook to each subscription of ``site_key``.

        Returns:
            ``(topic, delivery_id, status_code)`` per POST (status 0: lost, refused or timed out).
        """
        event = WebhookEvent(topic, payload, delivery_id or str(int(_digest(topic, repr(payload))[:10], 16)))
        return self._send(site_key, event)

    def deliver_changes(self, site_key: str, since: datetime, until: datetime) -> list[tuple[str, str, int]]:
        """Send the webhooks of every change of ``site_key``'s orders in ``[since, until)``, oldest first."""
        results: list[tuple[str, str, int]] = []
        for event in self.events(site_key, since, until):
            results += self._send(site_key, event)
        return results

    def events(self, site_key: str, since: datetime, until: datetime) -> list[WebhookEvent]:
        """The webhooks of the changes in ``[since, until)``: order.created for an order's first version,
        order.updated for each later one. Delivery ids are deterministic per (order, version, topic)."""
        out: list[tuple[tuple[Any, ...], WebhookEvent]] = []
        for order in self.emu.source.orders_for(site_key):
            if order.created_at >= until:
                break  # orders_for is sorted by created_at
            for index, version in enumerate(order.versions):
                if version.at >= until:
                    break
                if version.at < since:
                    continue
                topic = "order.created" if index == 0 else "order.updated"
                payload = render_order(order, version, site_url=self.site_url(site_key), zone=self.emu.zone)
                delivery = str(int(_digest(site_key, order.external_id, str(index), topic)[:10], 16))
                key = (version.at, int(order.external_id) if order.external_id.isdigit() else 0, index)
                out.append((key, WebhookEvent(topic, payload, delivery)))
        return [event for _, event in sorted(out, key=lambda pair: pair[0])]

    def _send(self, site_key: str, event: WebhookEvent) -> list[tuple[str, str, int]]:
        # wp_json_encode: ASCII with \u escapes, no spaces.
        body = json.dumps(event.payload, separators=(",", ":")).encode()
        results = []
        for webhook_id, url, secret in self.subscriptions.get(site_key, []):
            fault = self.emu.faults.take(f"webhook:{event.topic}", WEBHOOK_FAULTS)
            kind = fault.kind if fault else None
            if kind == "webhook_lost":
                results.append((event.topic, event.delivery_id, 0))
                continue
            signature = webhook_signature(body, secret + "-forged" if kind == "webhook_forged" else secret)
            resource, _, action = event.topic.partition(".")
            headers = {"Content-Type": "application/json", "User-Agent": WEBHOOK_USER_AGENT,
                       "X-WC-Webhook-Source": self.site_url(site_key) + "/", "X-WC-Webhook-Topic": event.topic,
                       "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": action,
                       "X-WC-Webhook-Signature": signature, "X-WC-Webhook-ID": str(webhook_id),
                       "X-WC-Webhook-Delivery-ID": event.delivery_id}
            for _ in range(2 if kind == "webhook_redeliver" else 1):
                results.append((event.topic, event.delivery_id, self._post(url, body, headers)))
        return results

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            return requests.post(url, data=body, headers=headers, timeout=self.timeout).status_code
        except requests.RequestException as exc:
            log.info("woocommerce webhook to %s not delivered: %s", url, exc)
            return 0
