"""Amazon SP-API on loopback: Login with Amazon tokens and the Orders API v2026-01-01 and v0, from the sandbox truth."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

from orderhub import clock
from sandbox.emulators.base import Emulator, Request, Response, ServerBucket
from sandbox.model import Address, Line, Order, Version

# Default usage plans (rate per second, burst) from the "Usage Plan" table of each operation in
# https://github.com/amzn/selling-partner-api-models/blob/main/models/orders-api-model/orders_2026-01-01.json
# and .../ordersV0.json. Served rates are multiplied by ``speed``.
BUDGETS: dict[str, tuple[float, float]] = {
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "getOrders": (0.0167, 20),
    "getOrderV0": (0.5, 30),
    "getOrderItems": (0.5, 30),
}
# lastUpdatedBefore/createdBefore "must be ... at least two minutes before the time of the request"
# (the parameters of searchOrders in orders_2026-01-01.json, and of getOrders in ordersV0.json).
LAG = timedelta(minutes=2)
# SearchOrdersResponse.pagination in orders_2026-01-01.json: "The token will expire after 24 hours."
PAGE_TOKEN_TTL = timedelta(hours=24)
# LWA answers "expires_in": 3600: https://developer-docs.amazon.com/sp-api/docs/connecting-to-the-selling-partner-api
ACCESS_TOKEN_SECONDS = 3600
INCLUDED_DATA = {"BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT",
                 "PACKAGES", "TAX", "PAYMENT", "FULFILLMENT_ORDERS"}
MARKETPLACE_NAMES = {
    "ATVPDKIKX0DER": "Amazon.com", "A2EUQ1WTGCTBG2": "Amazon.ca", "A1AM78C64UM0Y8": "Amazon.com.mx",
    "A2Q3Y263D00KWC": "Amazon.com.br", "A1F83G8C2ARO7P": "Amazon.co.uk", "A1PA6795UKMFR9": "Amazon.de",
    "A13V1IB3VIYZZH": "Amazon.fr", "APJ6JRA9NG5V4": "Amazon.it", "A1RKKUPIHCS9HS": "Amazon.es",
    "A1VC38T7YXB528": "Amazon.co.jp", "A39IBJ37TRP1C6": "Amazon.com.au",
}
STATUS_2026 = {"pending": "PENDING", "unfulfilled": "UNSHIPPED", "partially_fulfilled": "PARTIALLY_SHIPPED",
               "fulfilled": "SHIPPED", "cancelled": "CANCELLED"}
STATUS_V0 = {"pending": "Pending", "unfulfilled": "Unshipped", "partially_fulfilled": "PartiallyShipped",
             "fulfilled": "Shipped", "cancelled": "Canceled"}
ZERO_DECIMAL = {"JPY", "KRW", "CLP", "VND", "ISK", "HUF"}
DEFECTS = {"missing_id", "bad_total", "bad_date", "unknown_currency", "negative_quantity", "missing_lines"}


class OrderSource(Protocol):
    """Where the emulator's orders come from (the sandbox business, or a test's list)."""

    def orders_for(self, store_key: str) -> list[Order]:
        """Orders of a store, sorted by ``created_at``."""
        ...

    def by_truth_id(self, truth_id: str) -> Order:
        """One order by its truth id."""
        ...


# -- rendering ----------------------------------------------------------------------------------------
def iso(moment: datetime) -> str:
    """Amazon's timestamp format: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def amount(value: Decimal, currency: str) -> str:
    """A decimal string with the currency's usual decimals (``"19940"`` for JPY, ``"11.01"`` for USD)."""
    exponent = Decimal(1) if currency in ZERO_DECIMAL else Decimal("0.01")
    quantized = value.quantize(exponent)
    return str(quantized if quantized == value else value)


class AmazonRenderer:
    """Turns an order's version into Amazon's JSON records (v2026-01-01 ``Order``, v0 ``Order``/``OrderItem``).

    Shapes follow Amazon's models and examples (``../shared/fixtures/real/amazon``). Quirks rendered: relay
    e-mails (``…@marketplace.amazon.<tld>``, derived when the truth has a plain address); ``pii_masked``
    orders, and every order of a store without the PII roles, without buyer name, e-mail, phone and street
    lines (city, region, postal code and country stay, as SP-API answers without a Restricted Data Token);
    FBA orders (``fulfilledBy`` AMAZON / v0 ``AFN``; no buyer phone; v0 without ``LatestShipDate``, "only
    returned for seller-fulfilled orders"); the latest ship date; replacement orders linking their
    original; v0 ``IsReplacementOrder`` as the string "true"/"false"; absent address fields written as the
    string "null" on about one order in four; Pending orders without totals (v0 Pending items without
    prices, as ``getOrderItems`` documents). Order-level shipping and discount are attributed to the first
    item, since Amazon attributes every charge to an item.
    """

    def __init__(self, source: OrderSource, marketplace_of: Callable[[str], str],
                 pii_stores: set[str] | None = None) -> None:
        self.source = source
        self.marketplace_of = marketplace_of
        self.pii_stores = pii_stores

    # -- shared facts ----------------------------------------------------------------------------
    def shows_pii(self, order: Order) -> bool:
        """Whether buyer and recipient PII appear: the order is not masked and its store holds the PII roles."""
        return not order.pii_masked and (self.pii_stores is None or order.store in self.pii_stores)

    def relay_email(self, order: Order) -> str | None:
        """The buyer's anonymized relay address, stable per buyer and store."""
        if not order.email:
            return None
        if "@marketplace.amazon." in order.email:
            return order.email
        domain = "marketplace." + MARKETPLACE_NAMES.get(self.marketplace_of(order.store), "Amazon.com").lower()
        local = base64.b32encode(bytes.fromhex(_digest(order.email.lower(), order.store)[:20])).decode().lower()
        return f"{local[:15]}@{domain}"

    @staticmethod
    def nullish(order: Order) -> bool:
        """About one order in four writes its absent address fields as the string "null" (an SP-API quirk)."""
        return int(_digest("null", order.external_id)[:8], 16) % 4 == 0

    def original_id(self, order: Order) -> str | None:
        """The Amazon order id of the order this one replaces."""
        return self.source.by_truth_id(order.related_to).external_id if order.related_to else None

    @staticmethod
    def defect(order: Order) -> str | None:
        """The order's defect, unknown kinds read as ``bad_total``."""
        if not order.defect:
            return None
        return order.defect if order.defect in DEFECTS else "bad_total"

    @staticmethod
    def item_id(order: Order, index: int) -> str:
        """A 14-digit order item id, stable per order line."""
        return str(int(_digest(order.external_id, index)[:15], 16))[-14:].rjust(14, "0")

    @staticmethod
    def asin(line: Line) -> str:
        """A stable 10-character ASIN per SKU."""
        return "B0" + _digest("asin", line.sku)[:8].upper()

    def _address(self, address: Address | None, phone: str | None, keys: dict[str, str], pii: bool,
                 nullish: bool) -> dict[str, Any]:
        if address is None:
            return {}
        values: dict[str, str | None] = {
            "name": address.name, "line1": address.line1, "line2": address.line2, "city": address.city,
            "region": address.region, "postal": address.postal_code, "country": address.country, "phone": phone,
        }
        if not pii:
            values = {k: v for k, v in values.items() if k in ("city", "region", "postal", "country")}
        out: dict[str, Any] = {}
        for field, key in keys.items():
            if field not in values:
                continue
            value = values[field]
            if value is not None:
                out[key] = value
            elif nullish:
                out[key] = "null"
        return out

    # -- v2026-01-01 -----------------------------------------------------------------------------
    def order_2026(self, order: Order, version: Version, included: set[str]) -> dict[str, Any]:
        """An ``Order`` of searchOrders/getOrder with the datasets in ``included``."""
        defect = self.defect(order)
        marketplace = self.marketplace_of(order.store)
        status = STATUS_2026[version.status]
        currency = "ZZZ" if defect == "unknown_currency" else order.currency
        pii = self.shows_pii(order)
        rec: dict[str, Any] = {
            "orderId": "" if defect == "missing_id" else order.external_id,
            "createdTime": "2024-13-45 25:61" if defect == "bad_date" else iso(order.created_at),
            "lastUpdatedTime": iso(version.at),
            "programs": [],
            "associatedOrders": [],
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": marketplace,
                             "marketplaceName": MARKETPLACE_NAMES.get(marketplace, "Amazon")},
        }
        original = self.original_id(order)
        if original:
            rec["associatedOrders"] = [{"orderId": original, "associationType": "REPLACEMENT_ORIGINAL_ID"}]
        if "BUYER" in included and pii:
            buyer = {"buyerName": order.buyer_name, "buyerEmail": self.relay_email(order)}
            rec["buyer"] = {k: v for k, v in buyer.items() if v}
        if "RECIPIENT" in included and order.ship_to is not None:
            phone = order.phone if order.fulfilled_by == "merchant" else None  # FBA: phone suppressed
            address = self._address(order.ship_to, phone, {
                "name": "name", "line1": "addressLine1", "line2": "addressLine2", "city": "city",
                "region": "stateOrRegion", "postal": "postalCode", "country": "countryCode", "phone": "phone"},
                pii, self.nullish(order))
            if pii:
                address["addressType"] = "RESIDENTIAL"
            rec["recipient"] = {"deliveryAddress": address}
        priced = status not in ("PENDING", "PENDING_AVAILABILITY") or defect in ("bad_total", "unknown_currency")
        items = [self._item_2026(order, version, i, line, currency, included, priced)
                 for i, line in enumerate(order.lines)]
        if defect == "negative_quantity" and items:
            items[0]["quantityOrdered"] = -1
        if "PROCEEDS" in included and priced:
            totals: dict[str, Decimal] = {}
            for i, line in enumerate(order.lines):
                for kind, value in self._item_breakdowns(order, i, line):
                    totals[kind] = totals.get(kind, Decimal(0)) + value
            grand = "12,34" if defect == "bad_total" else amount(order.total, order.currency)
            rec["proceeds"] = {
                "grandTotal": {"amount": grand, "currencyCode": currency},
                "breakdowns": [{"type": k, "subtotal": {"amount": amount(v, order.currency), "currencyCode": currency}}
                               for k, v in totals.items()],
            }
        if "FULFILLMENT" in included:
            fulfillment: dict[str, Any] = {
                "fulfillmentStatus": status,
                "fulfilledBy": "AMAZON" if order.fulfilled_by == "marketplace" else "MERCHANT",
                "fulfillmentServiceLevel": "STANDARD",
            }
            if order.ship_by is not None:
                fulfillment["shipByWindow"] = {"earliestDateTime": iso(order.created_at),
                                               "latestDateTime": iso(order.ship_by)}
            rec["fulfillment"] = fulfillment
        rec["orderItems"] = [] if defect == "missing_lines" else items
        if "PACKAGES" in included and version.tracking_number and version.status in ("fulfilled", "partially_fulfilled"):
            shipped = order.lines if version.status == "fulfilled" else order.lines[:1]
            rec["packages"] = [{
                "packageReferenceId": f"PKG-{_digest('pkg', order.external_id)[:10].upper()}",
                "createdTime": iso(version.at),
                "packageStatus": {"status": "SHIPPED", "detailedStatus": "SHIPPED"},
                "carrier": "UPS",
                "shipTime": iso(version.at),
                "shippingService": "UPS Ground",
                "trackingNumber": version.tracking_number,
                "packageItems": [{"orderItemId": self.item_id(order, i), "quantity": line.quantity}
                                 for i, line in enumerate(shipped)],
            }]
        return rec

    @staticmethod
    def _item_breakdowns(order: Order, index: int, line: Line) -> list[tuple[str, Decimal]]:
        # Amazon attributes every charge to an item; order-level shipping and discount go on the first.
        out = [("ITEM", line.quantity * line.unit_price)]
        shipping = order.shipping if index == 0 else Decimal(0)
        discount = line.discount + (order.order_discount if index == 0 else Decimal(0))
        if shipping:
            out.append(("SHIPPING", shipping))
        if discount:
            out.append(("DISCOUNT", -discount))
        if line.tax:
            out.append(("TAX", line.tax))
        return out

    def _item_2026(self, order: Order, version: Version, index: int, line: Line, currency: str,
                   included: set[str], priced: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "orderItemId": self.item_id(order, index),
            "quantityOrdered": line.quantity,
            "product": {
                "asin": self.asin(line), "title": line.title, "sellerSku": line.sku,
                "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                "price": {"unitPrice": {"amount": amount(line.unit_price, order.currency), "currencyCode": currency}},
            },
        }
        if "PROCEEDS" in included and priced:
            breakdowns = self._item_breakdowns(order, index, line)
            item["proceeds"] = {
                "proceedsTotal": {"amount": amount(sum((v for _, v in breakdowns), Decimal(0)), order.currency),
                                  "currencyCode": currency},
                "breakdowns": [{"type": k, "subtotal": {"amount": amount(v, order.currency), "currencyCode": currency}}
                               for k, v in breakdowns],
            }
        if "FULFILLMENT" in included:
            done = self._shipped_quantity(version, index, line)
            item["fulfillment"] = {"quantityFulfilled": done, "quantityUnfulfilled": line.quantity - done}
        return item

    @staticmethod
    def _shipped_quantity(version: Version, index: int, line: Line) -> int:
        if version.status == "fulfilled" or (version.status == "partially_fulfilled" and index == 0):
            return line.quantity
        return 0

    # -- v0 --------------------------------------------------------------------------------------
    def order_v0(self, order: Order, version: Version) -> dict[str, Any]:
        """A v0 ``Order`` as getOrders/getOrder answer it."""
        defect = self.defect(order)
        marketplace = self.marketplace_of(order.store)
        status = STATUS_V0[version.status]
        afn = order.fulfilled_by == "marketplace"
        currency = "ZZZ" if defect == "unknown_currency" else order.currency
        shipped = sum(self._shipped_quantity(version, i, line) for i, line in enumerate(order.lines))
        total_qty = sum(line.quantity for line in order.lines)
        rec: dict[str, Any] = {
            "AmazonOrderId": "" if defect == "missing_id" else order.external_id,
            "PurchaseDate": "2024-13-45 25:61" if defect == "bad_date" else iso(order.created_at),
            "LastUpdateDate": iso(version.at),
            "OrderStatus": status,
            "FulfillmentChannel": "AFN" if afn else "MFN",
            "SalesChannel": MARKETPLACE_NAMES.get(marketplace, "Amazon"),
            "ShipServiceLevel": "Std Dom",
        }
        if status != "Pending" or defect in ("bad_total", "unknown_currency"):
            rec["OrderTotal"] = {"CurrencyCode": currency,
                                 "Amount": "12,34" if defect == "bad_total" else amount(order.total, order.currency)}
        rec.update({
            "NumberOfItemsShipped": shipped,
            "NumberOfItemsUnshipped": 0 if status == "Canceled" else total_qty - shipped,
            "PaymentMethod": "Other",
            "PaymentMethodDetails": ["Standard"],
            "IsReplacementOrder": "true" if order.related_to else "false",  # a string on the wire, really
        })
        original = self.original_id(order)
        if original:
            rec["ReplacedOrderId"] = original
        rec.update({"MarketplaceId": marketplace, "ShipmentServiceLevelCategory": "Standard",
                    "OrderType": "StandardOrder", "EarliestShipDate": iso(order.created_at)})
        if order.ship_by is not None and not afn:  # "Only returned for seller-fulfilled orders."
            rec["LatestShipDate"] = iso(order.ship_by)
        rec.update({"IsBusinessOrder": False, "IsPrime": False, "IsGlobalExpressEnabled": False,
                    "IsPremiumOrder": False, "IsSoldByAB": False, "IsIBA": False, "IsISPU": False,
                    "IsAccessPointOrder": False})
        pii = self.shows_pii(order)
        if order.ship_to is not None:
            rec["ShippingAddress"] = self._address(order.ship_to, None if afn else order.phone, {
                "name": "Name", "line1": "AddressLine1", "line2": "AddressLine2", "city": "City",
                "region": "StateOrRegion", "postal": "PostalCode", "country": "CountryCode", "phone": "Phone"},
                pii, self.nullish(order))
        if pii:
            buyer = {"BuyerEmail": self.relay_email(order), "BuyerName": order.buyer_name}
            rec["BuyerInfo"] = {k: v for k, v in buyer.items() if v}
        return rec

    def items_v0(self, order: Order, version: Version) -> list[dict[str, Any]]:
        """The v0 ``OrderItem`` list (no prices, taxes or promotions while the order is Pending)."""
        defect = self.defect(order)
        if defect == "missing_lines":
            return []
        currency = "ZZZ" if defect == "unknown_currency" else order.currency
        priced = version.status != "pending"

        def money(value: Decimal) -> dict[str, str]:
            return {"CurrencyCode": currency, "Amount": amount(value, order.currency)}

        items = []
        for i, line in enumerate(order.lines):
            item: dict[str, Any] = {
                "ASIN": self.asin(line), "OrderItemId": self.item_id(order, i), "SellerSKU": line.sku,
                "Title": line.title, "QuantityOrdered": -1 if (defect == "negative_quantity" and i == 0) else line.quantity,
                "QuantityShipped": self._shipped_quantity(version, i, line), "ProductInfo": {"NumberOfItems": "1"},
            }
            if priced:
                item["ItemPrice"] = money(line.quantity * line.unit_price)  # v0 ItemPrice = unit price x quantity
                if i == 0 and order.shipping:
                    item["ShippingPrice"] = money(order.shipping)
                item["ItemTax"] = money(line.tax)
                item["PromotionDiscount"] = money(line.discount + (order.order_discount if i == 0 else Decimal(0)))
                item["IsGift"] = "false"
            item.update({"ConditionId": "New", "ConditionSubtypeId": "New", "IsTransparency": False,
                         "SerialNumberRequired": False})
            items.append(item)
        return items


# -- the emulator ---------------------------------------------------------------------------------------
@dataclass
class _Grant:
    refresh_token: str
    expires_at: datetime


def _error(status: int, code: str, message: str, details: str | None = None,
           headers: dict[str, str] | None = None) -> Response:
    error = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return Response.json({"errors": [error]}, status, headers)


def _encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


class AmazonEmulator(Emulator):
    """Login with Amazon + Orders v2026-01-01 and v0 for the stores in ``sellers``.

    Args:
        source: the orders (``orders_for(store_key)``, ``by_truth_id``).
        sellers: marketplace id -> store key served on that marketplace.
        client_id, client_secret: the LWA app credentials accepted by ``POST /auth/o2/token``.
        refresh_tokens: the refresh tokens accepted (any of them reaches every marketplace in ``sellers``).
        speed: rate limits are the published ones times ``speed``.
        now: the clock (visibility, token and page-token expiry, the two-minute rule).
        pii_stores: store keys whose app holds the PII roles; None = every store.
        items_page_size: v0 getOrderItems page size.

    Faults beyond the generic ones: ``expired_token`` (the next API call's access token has expired: 403),
    ``expired_page_token`` (the next request carrying a page token gets 400 InvalidInput),
    ``duplicate_page`` (the next request carrying a page token is answered with the previous page again).
    """

    name = "amazon"

    def __init__(self, source: OrderSource, *, sellers: dict[str, str], client_id: str, client_secret: str,
                 refresh_tokens: set[str], speed: float = 1.0, now: Callable[[], datetime] = clock.now,
                 pii_stores: set[str] | None = None, items_page_size: int = 100) -> None:
        super().__init__(speed=speed, now=now)
        self.source = source
        self.sellers = dict(sellers)
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_tokens = set(refresh_tokens)
        self.items_page_size = items_page_size
        self._marketplace_of = {store: mp for mp, store in self.sellers.items()}
        self.renderer = AmazonRenderer(source, lambda store: self._marketplace_of.get(store, "ATVPDKIKX0DER"), pii_stores)
        self._grants: dict[str, _Grant] = {}
        self._buckets: dict[tuple[str, str], ServerBucket] = {}
        self._issued: OrderedDict[str, bytes] = OrderedDict()  # next token -> the body that carried it
        self._state_lock = threading.Lock()
        self.route("POST", r"/auth/o2/token", self.lwa_token, "lwa_token")
        self.route("GET", r"/orders/2026-01-01/orders", self.search_orders, "searchOrders")
        self.route("GET", r"/orders/2026-01-01/orders/(?P<id>[^/]+)", self.get_order, "getOrder")
        self.route("GET", r"/orders/v0/orders", self.get_orders_v0, "getOrders")
        self.route("GET", r"/orders/v0/orders/(?P<id>[^/]+)", self.get_order_v0, "getOrderV0")
        self.route("GET", r"/orders/v0/orders/(?P<id>[^/]+)/orderItems", self.get_order_items_v0, "getOrderItems")

    # -- Login with Amazon -----------------------------------------------------------------------
    def lwa_token(self, req: Request, match: Any) -> Response:
        """``POST /auth/o2/token`` with ``grant_type=refresh_token``."""
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return Response.json({"error": "unsupported_grant_type",
                                  "error_description": "The authorization grant type is not supported"}, 400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Response.json({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        refresh = form.get("refresh_token", "")
        if refresh not in self.refresh_tokens:
            return Response.json({"error": "invalid_grant",
                                  "error_description": "The request has an invalid grant parameter : refresh_token"}, 400)
        access = "Atza|" + secrets.token_urlsafe(32)
        with self._state_lock:
            self._grants[access] = _Grant(refresh, self.now() + timedelta(seconds=ACCESS_TOKEN_SECONDS))
        return Response.json({"access_token": access, "refresh_token": refresh, "token_type": "bearer",
                              "expires_in": ACCESS_TOKEN_SECONDS})

    def revoke(self, refresh_token: str) -> None:
        """The seller withdraws the app's authorization: the refresh token and its access tokens stop working."""
        with self._state_lock:
            self.refresh_tokens.discard(refresh_token)
            for access in [a for a, g in self._grants.items() if g.refresh_token == refresh_token]:
                del self._grants[access]

    def _authorize(self, req: Request) -> str | Response:
        token = req.headers.get("x-amz-access-token", "")
        denied = "Access to requested resource is denied."
        with self._state_lock:
            grant = self._grants.get(token)
            expire = bool(token) and self.faults.take(req.path, {"expired_token"}) is not None
            if grant is not None and expire:
                grant.expires_at = self.now()  # it stays expired: the client must fetch a new one
        if expire:
            return _error(403, "Unauthorized", denied, "The access token you provided has expired.")
        if grant is None:
            details = "The access token you provided is revoked, malformed or invalid." if token else ""
            return _error(403, "Unauthorized", denied, details)
        if self.now() >= grant.expires_at:
            return _error(403, "Unauthorized", denied, "The access token you provided has expired.")
        return grant.refresh_token

    def _limit_headers(self, operation: str) -> dict[str, str]:
        return {"x-amzn-RateLimit-Limit": f"{BUDGETS[operation][0] * self.speed:g}", "x-amzn-RequestId": str(uuid.uuid4())}

    def _gate(self, req: Request, operation: str) -> Response | None:
        """Credentials, then the operation's usage plan; a Response means: answer this instead."""
        who = self._authorize(req)
        if isinstance(who, Response):
            return who
        with self._state_lock:
            bucket = self._buckets.get((operation, who))
            if bucket is None:
                rate, burst = BUDGETS[operation]
                bucket = self._buckets[(operation, who)] = ServerBucket(rate, burst, self.speed)
        if not bucket.try_take():
            return _error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.",
                          headers=self._limit_headers(operation))
        return None

    # -- what is visible -------------------------------------------------------------------------
    def _visible(self, marketplaces: list[str], field: str, after: datetime, before: datetime,
                 now: datetime) -> list[tuple[tuple[str, str], Order, Version]]:
        rows = []
        for marketplace in marketplaces:
            for order in self.source.orders_for(self.sellers[marketplace]):
                if order.created_at > now:
                    break
                version = order.version_at(now)
                if version is None:
                    continue
                moment = _second(order.created_at if field == "created" else version.at)
                if after <= moment < before:
                    rows.append(((iso(moment), order.external_id), order, version))
        rows.sort(key=lambda row: row[0])
        return rows

    def _find(self, order_id: str) -> tuple[Order, Version] | None:
        now = self.now()
        for store in self.sellers.values():
            for order in self.source.orders_for(store):
                if order.created_at > now:
                    break
                if order.external_id == order_id:
                    version = order.version_at(now)
                    return (order, version) if version is not None else None
        return None

    def _search(self, req: Request, *, operation: str, names: dict[str, str], render: Callable[[list[Any]], Any],
                wrap: Callable[[list[Any], str | None, str, str], Any]) -> Response:
        """searchOrders and getOrders share filtering, keyset paging by (updated, id), and the faults."""
        headers = self._limit_headers(operation)

        def bad(message: str) -> Response:
            return _error(400, "InvalidInput", message, headers=headers)

        marketplaces = req.args(names["marketplaces"])
        if not marketplaces:
            return bad(f"{names['marketplaces']} is required")
        unknown = [m for m in marketplaces if m not in self.sellers]
        if unknown:
            return bad(f"Invalid {names['marketplaces']}: {', '.join(unknown)}")
        try:
            size = int(req.arg(names["size"]) or 100)
        except ValueError:
            size = 0
        if not 1 <= size <= 100:
            return bad(f"{names['size']} must be between 1 and 100")
        now = self.now()
        token = req.arg(names["token"])
        if token:
            data = _decode_token(token) or {}
            try:
                field, after, before, key = data["field"], data["after"], data["before"], tuple(data["key"])
                expired = now - datetime.fromisoformat(data["issued"]) > PAGE_TOKEN_TTL
            except (KeyError, TypeError, ValueError):
                return bad(f"Invalid {names['token']}: the token is malformed")
            if expired or self.faults.take(req.path, {"expired_page_token"}):
                return bad(f"Invalid {names['token']}: the token has expired")
            if self.faults.take(req.path, {"duplicate_page"}):
                with self._state_lock:
                    previous = self._issued.get(token)
                if previous is not None:
                    return Response(200, previous, {"Content-Type": "application/json", **headers})
            if sorted(marketplaces) != data.get("marketplaces"):
                return bad(f"{names['token']} was issued for other parameters")
        else:
            created, updated = req.arg(names["created"]), req.arg(names["updated"])
            if bool(created) == bool(updated):
                return bad(f"Exactly one of {names['created']} and {names['updated']} is required")
            field = "created" if created else "updated"
            upper = req.arg(names["created_before"] if created else names["updated_before"])
            try:
                after_dt = datetime.fromisoformat(created or updated or "")
                before_dt = datetime.fromisoformat(upper) if upper else now - LAG
            except ValueError:
                return bad("Dates must be in ISO 8601 format")
            if after_dt.tzinfo is None or before_dt.tzinfo is None:
                return bad("Dates must carry a time zone")
            if before_dt > now - LAG:
                return bad("The before date must be at least two minutes before the time of the request")
            if before_dt < after_dt:
                return bad("The before date must be equal to or after the after date")
            after, before, key = iso(after_dt), iso(before_dt), ("", "")
        rows = self._visible(marketplaces, field, datetime.fromisoformat(after), datetime.fromisoformat(before), now)
        rows = [row for row in rows if row[0] > key]
        page, rest = rows[:size], rows[size:]
        next_token = None
        if rest:
            next_token = _encode_token({"key": list(page[-1][0]), "field": field, "after": after, "before": before,
                                        "marketplaces": sorted(marketplaces), "issued": now.isoformat()})
        body = wrap(render([(order, version) for _, order, version in page]), next_token, field, before)
        response = Response.json(body, headers=headers)
        if next_token:
            with self._state_lock:
                self._issued[next_token] = response.body
                while len(self._issued) > 1000:
                    self._issued.popitem(last=False)
        return response

    # -- Orders v2026-01-01 ----------------------------------------------------------------------
    def _included(self, req: Request) -> set[str] | Response:
        included = set(req.args("includedData"))
        if included - INCLUDED_DATA:
            return _error(400, "InvalidInput", f"Invalid includedData: {', '.join(sorted(included - INCLUDED_DATA))}")
        return included

    def search_orders(self, req: Request, match: Any) -> Response:
        """``GET /orders/2026-01-01/orders`` (searchOrders)."""
        gate = self._gate(req, "searchOrders")
        if gate is not None:
            return gate
        included = self._included(req)
        if isinstance(included, Response):
            return included
        datasets: set[str] = included

        def wrap(orders: list[Any], next_token: str | None, field: str, before: str) -> dict[str, Any]:
            body: dict[str, Any] = {"orders": orders}
            if next_token:
                body["pagination"] = {"nextToken": next_token}
            body["createdBefore" if field == "created" else "lastUpdatedBefore"] = before
            return body

        return self._search(
            req, operation="searchOrders", wrap=wrap,
            names={"marketplaces": "marketplaceIds", "size": "maxResultsPerPage", "token": "paginationToken",
                   "created": "createdAfter", "updated": "lastUpdatedAfter", "created_before": "createdBefore",
                   "updated_before": "lastUpdatedBefore"},
            render=lambda pairs: [self.renderer.order_2026(o, v, datasets) for o, v in pairs])

    def get_order(self, req: Request, match: Any) -> Response:
        """``GET /orders/2026-01-01/orders/{orderId}`` (getOrder)."""
        gate = self._gate(req, "getOrder")
        if gate is not None:
            return gate
        included = self._included(req)
        if isinstance(included, Response):
            return included
        found = self._find(unquote(match["id"]))
        headers = self._limit_headers("getOrder")
        if found is None:
            return _error(404, "NotFound", "The order was not found.", headers=headers)
        return Response.json({"order": self.renderer.order_2026(*found, included)}, headers=headers)

    # -- Orders v0 -------------------------------------------------------------------------------
    def get_orders_v0(self, req: Request, match: Any) -> Response:
        """``GET /orders/v0/orders`` (getOrders)."""
        gate = self._gate(req, "getOrders")
        if gate is not None:
            return gate

        def wrap(orders: list[Any], next_token: str | None, field: str, before: str) -> dict[str, Any]:
            payload: dict[str, Any] = {}
            if next_token:
                payload["NextToken"] = next_token
            payload["CreatedBefore" if field == "created" else "LastUpdatedBefore"] = before
            payload["Orders"] = orders
            return {"payload": payload}

        return self._search(
            req, operation="getOrders", wrap=wrap,
            names={"marketplaces": "MarketplaceIds", "size": "MaxResultsPerPage", "token": "NextToken",
                   "created": "CreatedAfter", "updated": "LastUpdatedAfter", "created_before": "CreatedBefore",
                   "updated_before": "LastUpdatedBefore"},
            render=lambda pairs: [self.renderer.order_v0(o, v) for o, v in pairs])

    def get_order_v0(self, req: Request, match: Any) -> Response:
        """``GET /orders/v0/orders/{orderId}`` (getOrder)."""
        gate = self._gate(req, "getOrderV0")
        if gate is not None:
            return gate
        found = self._find(unquote(match["id"]))
        headers = self._limit_headers("getOrderV0")
        if found is None:
            return _error(404, "NotFound", "The order was not found.", headers=headers)
        return Response.json({"payload": self.renderer.order_v0(*found)}, headers=headers)

    def get_order_items_v0(self, req: Request, match: Any) -> Response:
        """``GET /orders/v0/orders/{orderId}/orderItems`` (getOrderItems, paged by NextToken)."""
        gate = self._gate(req, "getOrderItems")
        if gate is not None:
            return gate
        order_id = unquote(match["id"])
        headers = self._limit_headers("getOrderItems")
        found = self._find(order_id)
        if found is None:
            return _error(404, "NotFound", "The order was not found.", headers=headers)
        items = self.renderer.items_v0(*found)
        token = req.arg("NextToken")
        start = 0
        if token:
            data = _decode_token(token)
            if data is None or data.get("order") != order_id:
                return _error(400, "InvalidInput", "Invalid NextToken", headers=headers)
            start = int(data["offset"])
        end = start + self.items_page_size
        payload: dict[str, Any] = {}
        if end < len(items):
            payload["NextToken"] = _encode_token({"order": order_id, "offset": end})
        payload["AmazonOrderId"] = order_id
        payload["OrderItems"] = items[start:end]
        return Response.json({"payload": payload}, headers=headers)
