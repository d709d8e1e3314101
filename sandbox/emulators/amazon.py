"""Amazon SP-API on loopback: LWA, Orders v2026-01-01 and v0, Reports and Tokens, from the sandbox truth."""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
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
# https://github.com/amzn/selling-partner-api-models/blob/main/models/ (the file next to each entry).
# Served rates are multiplied by ``speed``.
BUDGETS: dict[str, tuple[float, float]] = {
    "searchOrders": (0.0056, 20),  # orders-api-model/orders_2026-01-01.json
    "getOrder": (0.5, 30),  # orders-api-model/orders_2026-01-01.json
    "getOrders": (0.0167, 20),  # orders-api-model/ordersV0.json
    "getOrderV0": (0.5, 30),  # orders-api-model/ordersV0.json
    "getOrderItems": (0.5, 30),  # orders-api-model/ordersV0.json
    "getOrderBuyerInfo": (0.5, 30),  # orders-api-model/ordersV0.json
    "getOrderAddress": (0.5, 30),  # orders-api-model/ordersV0.json
    "createReport": (0.0167, 15),  # reports-api-model/reports_2021-06-30.json
    "getReport": (2.0, 15),  # reports-api-model/reports_2021-06-30.json
    "getReportDocument": (0.0167, 15),  # reports-api-model/reports_2021-06-30.json
    "createRestrictedDataToken": (1.0, 10),  # tokens-api-model/tokens_2021-03-01.json
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
# SP-API regions (https://developer-docs.amazon.com/sp-api/docs/sp-api-endpoints): each region is its own
# endpoint, and one call never spans two of them.
REGIONS = {
    "ATVPDKIKX0DER": "NA", "A2EUQ1WTGCTBG2": "NA", "A1AM78C64UM0Y8": "NA", "A2Q3Y263D00KWC": "NA",
    "A1F83G8C2ARO7P": "EU", "A1PA6795UKMFR9": "EU", "A13V1IB3VIYZZH": "EU", "APJ6JRA9NG5V4": "EU",
    "A1RKKUPIHCS9HS": "EU", "A1VC38T7YXB528": "FE", "A39IBJ37TRP1C6": "FE",
}


def mixed_regions(marketplaces: list[str]) -> str | None:
    """An InvalidInput message when ``marketplaces`` span several SP-API regions, else None."""
    regions = sorted({REGIONS.get(m, "NA") for m in marketplaces})
    if len(regions) > 1:
        return (f"Marketplaces of different regions ({', '.join(regions)}) cannot be requested together: "
                f"each region has its own endpoint")
    return None


STATUS_2026 = {"pending": "PENDING", "unfulfilled": "UNSHIPPED", "partially_fulfilled": "PARTIALLY_SHIPPED",
               "fulfilled": "SHIPPED", "cancelled": "CANCELLED"}
STATUS_V0 = {"pending": "Pending", "unfulfilled": "Unshipped", "partially_fulfilled": "PartiallyShipped",
             "fulfilled": "Shipped", "cancelled": "Canceled"}
ZERO_DECIMAL = {"JPY", "KRW", "CLP", "VND", "ISK", "HUF"}
DEFECTS = {"missing_id", "bad_total", "bad_date", "unknown_currency", "negative_quantity", "missing_lines"}
BAD_DATE = "2024-13-45 25:61"  # what a bad_date defect writes instead of a purchase date

# -- Reports API 2021-06-30 (models/reports-api-model/reports_2021-06-30.json) --
REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
# createReport: this report type's dataStartTime..dataEndTime may span at most 30 days (connectors/amazon/README.md).
REPORT_MAX_SPAN = timedelta(days=30)
# Order reports lag the Orders API by up to 30 minutes (connectors/amazon/README.md, "Reports API").
REPORT_LAG = timedelta(minutes=30)
# getReportDocument: "the URL ... expires after 5 minutes" (ReportDocument.url in reports_2021-06-30.json).
DOCUMENT_URL_TTL = timedelta(minutes=5)
SLOW_POLLS = 5  # extra getReport polls a ``report_slow`` report spends IN_PROGRESS
REPORT_TERMINAL = {"DONE", "FATAL", "CANCELLED"}
TSV_CONTENT_TYPE = "text/tab-separated-values; charset=UTF-8"
# The documented columns (../shared/fixtures/real/amazon/reports/<REPORT_TYPE>.columns.json) with the two that
# real files carry besides, placed where they appear: ``signature-confirmation-recommended`` after
# ``ship-service-level``, ``number-of-items`` after ``quantity``.
REPORT_COLUMNS = (
    "amazon-order-id", "merchant-order-id", "purchase-date", "last-updated-date", "order-status",
    "fulfillment-channel", "sales-channel", "order-channel", "ship-service-level",
    "signature-confirmation-recommended", "product-name", "sku", "asin", "item-status", "quantity",
    "number-of-items", "currency", "item-price", "item-tax", "shipping-price", "shipping-tax", "gift-wrap-price",
    "gift-wrap-tax", "item-promotion-discount", "ship-promotion-discount", "ship-city", "ship-state",
    "ship-postal-code", "ship-country", "promotion-ids", "is-business-order", "purchase-order-number",
    "price-designation",
)
STATUS_REPORT = {"pending": "Pending", "unfulfilled": "Unshipped", "partially_fulfilled": "PartiallyShipped",
                 "fulfilled": "Shipped", "cancelled": "Cancelled"}

# -- Tokens API 2021-03-01 (models/tokens-api-model/tokens_2021-03-01.json) --
# An RDT lives one hour: https://developer-docs.amazon.com/sp-api/docs/tokens-api-use-case-guide
RDT_SECONDS = 3600
RDT_MAX_RESOURCES = 50  # CreateRestrictedDataTokenRequest.restrictedResources: "maxItems": 50
RDT_METHODS = {"GET", "PUT", "POST", "DELETE"}  # RestrictedResource.method enum
DATA_ELEMENTS = {"buyerInfo", "shippingAddress", "buyerTaxInformation"}  # RestrictedResource.dataElements
# The restricted operations served here: (method, path regex, whether dataElements are required). A
# ``{orderId}`` placeholder fits ``[^/]+`` too. dataElements "is required only when getting an RDT for use
# with the getOrder, getOrders, or getOrderItems operation" (RestrictedResource.dataElements).
RESTRICTED_OPERATIONS: dict[str, tuple[str, re.Pattern[str], bool]] = {
    "getOrders": ("GET", re.compile(r"/orders/v0/orders"), True),
    "getOrderV0": ("GET", re.compile(r"/orders/v0/orders/[^/]+"), True),
    "getOrderItems": ("GET", re.compile(r"/orders/v0/orders/[^/]+/orderItems"), True),
    "getOrderBuyerInfo": ("GET", re.compile(r"/orders/v0/orders/[^/]+/buyerInfo"), False),
    "getOrderAddress": ("GET", re.compile(r"/orders/v0/orders/[^/]+/address"), False),
}


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


def report_time(moment: datetime) -> str:
    """The order report's timestamp format: UTC, whole seconds, ``+00:00``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _cell(value: str) -> str:
    """A TSV cell: tabs and line breaks inside a value (a product title) become spaces."""
    return value.replace("\t", " ").replace("\r", " ").replace("\n", " ")


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
    item, since Amazon attributes every charge to an item. Order report rows (``report_rows``) follow the same
    money rules, carry no PII, and spell ``Cancelled`` and ``Shipped - Delivered to Buyer`` as reports do.
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
            "createdTime": BAD_DATE if defect == "bad_date" else iso(order.created_at),
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
    def order_v0(self, order: Order, version: Version, *, buyer_info: bool = False,
                 shipping_address: bool = False) -> dict[str, Any]:
        """A v0 ``Order`` as getOrders/getOrder answer it.

        Args:
            order: the order.
            version: its version being shown.
            buyer_info: the request's Restricted Data Token grants ``buyerInfo`` (buyer e-mail and name).
            shipping_address: the token grants ``shippingAddress`` (name, street lines, phone).
        """
        defect = self.defect(order)
        marketplace = self.marketplace_of(order.store)
        status = STATUS_V0[version.status]
        afn = order.fulfilled_by == "marketplace"
        currency = "ZZZ" if defect == "unknown_currency" else order.currency
        shipped = sum(self._shipped_quantity(version, i, line) for i, line in enumerate(order.lines))
        total_qty = sum(line.quantity for line in order.lines)
        rec: dict[str, Any] = {
            "AmazonOrderId": "" if defect == "missing_id" else order.external_id,
            "PurchaseDate": BAD_DATE if defect == "bad_date" else iso(order.created_at),
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
        if order.ship_to is not None:
            rec["ShippingAddress"] = self._address_v0(order, shipping_address)
        if buyer_info and self.shows_pii(order):
            rec["BuyerInfo"] = self._buyer_v0(order)
        return rec

    def _address_v0(self, order: Order, granted: bool) -> dict[str, Any]:
        """A v0 ``Address``: whole when the token grants it and the order shows PII, else the place only."""
        afn = order.fulfilled_by == "marketplace"
        return self._address(order.ship_to, None if afn else order.phone, {
            "name": "Name", "line1": "AddressLine1", "line2": "AddressLine2", "city": "City",
            "region": "StateOrRegion", "postal": "PostalCode", "country": "CountryCode", "phone": "Phone"},
            granted and self.shows_pii(order), self.nullish(order))

    def _buyer_v0(self, order: Order) -> dict[str, str]:
        buyer = {"BuyerEmail": self.relay_email(order), "BuyerName": order.buyer_name}
        return {k: v for k, v in buyer.items() if v}

    def buyer_info_v0(self, order: Order, granted: bool) -> dict[str, Any]:
        """The ``payload`` of getOrderBuyerInfo (``OrderBuyerInfo``): e-mail and name only with an RDT."""
        payload: dict[str, Any] = {"AmazonOrderId": order.external_id}
        if granted and self.shows_pii(order):
            payload.update(self._buyer_v0(order))
        return payload

    def address_v0(self, order: Order, granted: bool) -> dict[str, Any]:
        """The ``payload`` of getOrderAddress (``OrderAddress``): the full address only with an RDT."""
        payload: dict[str, Any] = {"AmazonOrderId": order.external_id}
        if order.ship_to is not None:
            payload["ShippingAddress"] = self._address_v0(order, granted)
        return payload

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

    # -- the order report ------------------------------------------------------------------------
    @staticmethod
    def delivered(order: Order) -> bool:
        """About one shipped order in four reads ``Shipped - Delivered to Buyer`` in reports."""
        return int(_digest("delivered", order.external_id)[:8], 16) % 4 == 0

    def report_rows(self, order: Order, version: Version) -> list[list[str]]:
        """The order's rows in a ``GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL`` report (``REPORT_COLUMNS``).

        One row per item; v0 money rules (item-price = unit price x quantity, order-level shipping and discount
        on the first item, discounts negative), no money and no currency while Pending, no PII columns.
        Defects render as in ``order_2026``: ``missing_lines`` is one row without item cells.
        """
        defect = self.defect(order)
        priced = version.status != "pending" or defect in ("bad_total", "unknown_currency")
        common = self._report_order_cells(order, version, defect, priced)
        if defect == "missing_lines":
            return [[_cell(common.get(c, "")) for c in REPORT_COLUMNS]]
        rows = []
        for i, line in enumerate(order.lines):
            cells = {**common, **self._report_item_cells(order, version, i, line)}
            if priced:
                cells.update(self._report_money(order, i, line))
            if defect == "bad_total" and i == 0:
                cells["item-price"] = "12,34"
            if defect == "negative_quantity" and i == 0:
                cells["quantity"] = "-1"
            rows.append([_cell(cells.get(c, "")) for c in REPORT_COLUMNS])
        return rows

    def _report_order_cells(self, order: Order, version: Version, defect: str | None,
                            priced: bool) -> dict[str, str]:
        status = STATUS_REPORT[version.status]
        if status == "Shipped" and self.delivered(order):
            status = "Shipped - Delivered to Buyer"
        ship = order.ship_to
        return {
            "amazon-order-id": "" if defect == "missing_id" else order.external_id,
            "purchase-date": BAD_DATE if defect == "bad_date" else report_time(order.created_at),
            "last-updated-date": report_time(version.at),
            "order-status": status,
            "fulfillment-channel": "Amazon" if order.fulfilled_by == "marketplace" else "Merchant",
            "sales-channel": MARKETPLACE_NAMES.get(self.marketplace_of(order.store), "Amazon"),
            "ship-service-level": "Standard",
            "signature-confirmation-recommended": "false",
            "currency": ("ZZZ" if defect == "unknown_currency" else order.currency) if priced else "",
            "ship-city": ship.city if ship else "",
            "ship-state": (ship.region or "") if ship else "",
            "ship-postal-code": ship.postal_code if ship else "",
            "ship-country": ship.country if ship else "",
            "is-business-order": "false",
        }

    def _report_item_cells(self, order: Order, version: Version, index: int, line: Line) -> dict[str, str]:
        cancelled = version.status == "cancelled"
        shipped = self._shipped_quantity(version, index, line)
        status = "Cancelled" if cancelled else "Shipped" if shipped and shipped == line.quantity else "Unshipped"
        return {"product-name": line.title, "sku": line.sku, "asin": self.asin(line), "item-status": status,
                "quantity": "0" if cancelled else str(line.quantity), "number-of-items": "1"}

    @staticmethod
    def _report_money(order: Order, index: int, line: Line) -> dict[str, str]:
        zero, first = Decimal(0), index == 0
        discount = line.discount + (order.order_discount if first else zero)
        values = {
            "item-price": line.quantity * line.unit_price, "item-tax": line.tax,
            "shipping-price": order.shipping if first else zero, "shipping-tax": zero,
            "gift-wrap-price": zero, "gift-wrap-tax": zero,
            "item-promotion-discount": zero - discount,  # 0 - x, never -0
            "ship-promotion-discount": zero,
        }
        return {column: amount(value, order.currency) for column, value in values.items()}


# -- the emulator ---------------------------------------------------------------------------------------
@dataclass
class _Grant:
    refresh_token: str
    expires_at: datetime


@dataclass(frozen=True)
class _Resource:
    """One restricted resource an RDT names: a method, a path (``{placeholder}`` = any one segment)."""

    method: str
    pattern: re.Pattern[str]
    elements: frozenset[str]

    @classmethod
    def of(cls, method: str, path: str, elements: list[str]) -> _Resource:
        """The resource of a ``RestrictedResource``."""
        segments = [r"[^/]+" if re.fullmatch(r"\{[^/{}]+\}", seg) else re.escape(seg) for seg in path.split("/")]
        return cls(method, re.compile("/".join(segments)), frozenset(elements))


@dataclass
class _Rdt:
    refresh_token: str
    expires_at: datetime
    resources: tuple[_Resource, ...]

    def elements_for(self, method: str, path: str) -> frozenset[str] | None:
        """The data elements granted for a request (None: the token does not cover it)."""
        matching = [r.elements for r in self.resources if r.method == method and r.pattern.fullmatch(path)]
        return frozenset().union(*matching) if matching else None


@dataclass
class ReportRecord:
    """One requested report and how far it has got.

    Attributes:
        fault: the report fault it was created under (``report_fatal``, ``report_cancelled``,
            ``report_stuck``, ``report_slow``), or None.
        submitted: ``time.monotonic()`` at createReport (processing runs on wall-clock time).
        slow_polls: getReport polls a ``report_slow`` report still spends IN_PROGRESS.
        rows: item rows of its document (DONE only).
    """

    report_id: str
    refresh_token: str
    marketplaces: list[str]
    start: datetime
    end: datetime
    created: datetime
    submitted: float
    fault: str | None = None
    slow_polls: int = SLOW_POLLS
    status: str = "IN_QUEUE"
    started: datetime | None = None
    ended: datetime | None = None
    document_id: str | None = None
    rows: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ``Report`` object of getReport."""
        out: dict[str, Any] = {
            "reportId": self.report_id, "reportType": REPORT_TYPE, "marketplaceIds": self.marketplaces,
            "dataStartTime": iso(self.start), "dataEndTime": iso(self.end), "createdTime": iso(self.created),
            "processingStatus": self.status,
        }
        if self.started is not None:
            out["processingStartTime"] = iso(self.started)
        if self.ended is not None:
            out["processingEndTime"] = iso(self.ended)
        if self.document_id is not None:
            out["reportDocumentId"] = self.document_id
        return out


@dataclass(frozen=True)
class ReportDocument:
    """A stored report document: ``body`` as downloaded (gzipped when ``compressed``)."""

    document_id: str
    refresh_token: str
    body: bytes
    content_type: str
    compressed: bool


def _error(status: int, code: str, message: str, details: str | None = None,
           headers: dict[str, str] | None = None) -> Response:
    error = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return Response.json({"errors": [error]}, status, headers)


def _s3_error(status: int, code: str, message: str) -> Response:
    """An S3-style XML error, as the pre-signed document URL answers."""
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>")
    return Response(status, body.encode(), {"Content-Type": "application/xml"})


def _parse_time(value: Any, name: str) -> datetime | str:
    """An ISO 8601 timestamp with a zone, or the message saying why it is not one."""
    if not isinstance(value, str) or not value:
        return f"{name} is required"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return f"{name} {value!r} is not an ISO 8601 date-time"
    if moment.tzinfo is None:
        return f"{name} {value!r} must carry a time zone"
    return moment


def _parse_resources(body: Any) -> tuple[_Resource, ...] | str:
    """The ``restrictedResources`` of a createRestrictedDataToken body, or what is wrong with them."""
    items = body.get("restrictedResources") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return "restrictedResources is required: a non-empty list of {method, path, dataElements}"
    if len(items) > RDT_MAX_RESOURCES:
        return f"restrictedResources holds at most {RDT_MAX_RESOURCES} resources"
    out = []
    for n, item in enumerate(items):
        where = f"restrictedResources[{n}]"
        if not isinstance(item, dict):
            return f"{where} must be an object with method, path and dataElements"
        method, path, elements = item.get("method"), item.get("path"), item.get("dataElements", [])
        if method not in RDT_METHODS:
            return f"{where}.method must be one of {', '.join(sorted(RDT_METHODS))}"
        if not isinstance(path, str):
            return f"{where}.path is required"
        operation = next((op for op, (m, pattern, _) in RESTRICTED_OPERATIONS.items()
                          if m == method and pattern.fullmatch(path)), None)
        if operation is None:
            return f"{where}: {method} {path} is not a restricted operation"
        if not isinstance(elements, list) or any(e not in DATA_ELEMENTS for e in elements):
            return f"{where}.dataElements must be a list of {', '.join(sorted(DATA_ELEMENTS))}"
        if RESTRICTED_OPERATIONS[operation][2] and not elements:
            return f"{where}.dataElements is required for {operation}"
        out.append(_Resource.of(method, path, elements))
    return tuple(out)


def _encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None
    return data if isinstance(data, dict) else None


class AmazonEmulator(Emulator):
    """Login with Amazon, Orders v2026-01-01 and v0, Reports 2021-06-30 and Tokens 2021-03-01 for ``sellers``.

    Args:
        source: the orders (``orders_for(store_key)``, ``by_truth_id``).
        sellers: marketplace id -> store key served on that marketplace.
        client_id, client_secret: the LWA app credentials accepted by ``POST /auth/o2/token``.
        refresh_tokens: the refresh tokens accepted (any of them reaches every marketplace in ``sellers``).
        speed: rate limits are the published ones times ``speed``; reports are built ``speed`` times faster.
        now: the clock (visibility, token, page-token, RDT and document-URL expiry, the two-minute rule).
        pii_stores: store keys whose app holds the PII roles; None = every store.
        items_page_size: v0 getOrderItems page size.
        report_seconds: wall-clock seconds (divided by ``speed``) a report takes from IN_QUEUE to its end.
        report_lag: how far reports trail the Orders API: a report shows each order as it was at its
            ``createdTime`` minus this.
        gzip_reports: report documents are gzipped (``compressionAlgorithm: GZIP``); else plain TSV.
        grant_stores: refresh token -> the store keys it was granted by (for the PII-role check of
            createRestrictedDataToken). A token not listed belongs to the store its name ends with
            (``Atzr|sandbox-amz-jp`` -> ``amz-jp``), else to every store.
        public_url: the base URL of document downloads; None = from the request's Host header.

    PII: v2026-01-01 shows it by the store's roles. v0 shows buyer info and whole addresses only to a
    Restricted Data Token (``Atz.sprdt|...``) naming the request's path with the data elements; with a plain
    access token v0 answers as for an app without the PII roles. An RDT is accepted on the restricted paths it
    names only (``{orderId}`` fits any id, a concrete id only itself) and expires on the emulator clock.

    Faults beyond the generic ones: ``429_rate`` (a quota 429 with ``x-amzn-RateLimit-Limit``, as Amazon sends it),
    ``expired_token`` (the next API call's access token, or RDT, has expired:
    403), ``expired_page_token`` (the next request carrying a page token gets 400 InvalidInput),
    ``duplicate_page`` (the next request carrying a page token is answered with the previous page again),
    ``out_of_order_page`` (the next searchOrders/getOrders page lists its records in reverse; paging stays
    right). On createReport: ``report_fatal`` (the report ends FATAL; its document is JSON ``{"errorDetails"}``),
    ``report_cancelled`` (it ends CANCELLED although it has rows), ``report_stuck`` (it stays IN_QUEUE),
    ``report_slow`` (it spends 5 extra getReport polls IN_PROGRESS). On the document download (path
    ``/_documents/{id}``): ``document_expired`` (403, as for an expired URL), ``truncate_document`` (the first
    half of the bytes: of a gzipped document, half a gzip stream; the generic ``truncate`` does the same).
    """

    name = "amazon"

    def __init__(self, source: OrderSource, *, sellers: dict[str, str], client_id: str, client_secret: str,
                 refresh_tokens: set[str], speed: float = 1.0, now: Callable[[], datetime] = clock.now,
                 pii_stores: set[str] | None = None, items_page_size: int = 100, report_seconds: float = 60.0,
                 report_lag: timedelta = REPORT_LAG, gzip_reports: bool = True,
                 grant_stores: dict[str, set[str]] | None = None, public_url: str | None = None) -> None:
        super().__init__(speed=speed, now=now)
        self.source = source
        self.sellers = dict(sellers)
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_tokens = set(refresh_tokens)
        self.items_page_size = items_page_size
        self.report_seconds = report_seconds
        self.report_lag = report_lag
        self.gzip_reports = gzip_reports
        self.grant_stores = dict(grant_stores or {})
        self.public_url = public_url
        self._marketplace_of = {store: mp for mp, store in self.sellers.items()}
        self.renderer = AmazonRenderer(source, lambda store: self._marketplace_of.get(store, "ATVPDKIKX0DER"), pii_stores)
        self.reports: dict[str, ReportRecord] = {}
        self.documents: dict[str, ReportDocument] = {}
        self._grants: dict[str, _Grant] = {}
        self._rdts: dict[str, _Rdt] = {}
        self._buckets: dict[tuple[str, str], ServerBucket] = {}
        self._issued: OrderedDict[str, bytes] = OrderedDict()  # next token -> the body that carried it
        self._url_key = secrets.token_bytes(16)  # signs document URLs
        self._state_lock = threading.Lock()
        self.route("POST", r"/auth/o2/token", self.lwa_token, "lwa_token")
        self.route("GET", r"/orders/2026-01-01/orders", self.search_orders, "searchOrders")
        self.route("GET", r"/orders/2026-01-01/orders/(?P<id>[^/]+)", self.get_order, "getOrder")
        self.route("GET", r"/orders/v0/orders", self.get_orders_v0, "getOrders")
        self.route("GET", r"/orders/v0/orders/(?P<id>[^/]+)", self.get_order_v0, "getOrderV0")
        self.route("GET", r"/orders/v0/orders/(?P<id>[^/]+)/orderItems", self.get_order_items_v0, "getOrderItems")
        self.route("GET", r"/orders/v0/orders/(?P<id>[^/]+)/buyerInfo", self.get_order_buyer_info, "getOrderBuyerInfo")
        self.route("GET", r"/orders/v0/orders/(?P<id>[^/]+)/address", self.get_order_address, "getOrderAddress")
        self.route("POST", r"/reports/2021-06-30/reports", self.create_report, "createReport")
        self.route("GET", r"/reports/2021-06-30/reports/(?P<id>[^/]+)", self.get_report, "getReport")
        self.route("GET", r"/reports/2021-06-30/documents/(?P<id>[^/]+)", self.get_report_document,
                   "getReportDocument")
        self.route("GET", r"/_documents/(?P<id>[^/]+)", self.download_document, "reportDocumentDownload")
        self.route("POST", r"/tokens/2021-03-01/restrictedDataToken", self.create_restricted_data_token,
                   "createRestrictedDataToken")

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
            for rdt in [t for t, r in self._rdts.items() if r.refresh_token == refresh_token]:
                del self._rdts[rdt]

    def _authorize(self, req: Request) -> str | Response:
        """The refresh token behind the request's access token (an LWA token, or an RDT covering the request)."""
        token = req.headers.get("x-amz-access-token", "")
        denied = "Access to requested resource is denied."
        with self._state_lock:
            holder: _Grant | _Rdt | None = self._grants.get(token) or self._rdts.get(token)
            expire = bool(token) and self.faults.take(req.path, {"expired_token"}) is not None
            if holder is not None and expire:
                holder.expires_at = self.now()  # it stays expired: the client must fetch a new one
        if expire:
            return _error(403, "Unauthorized", denied, "The access token you provided has expired.")
        if holder is None:
            details = "The access token you provided is revoked, malformed or invalid." if token else ""
            return _error(403, "Unauthorized", denied, details)
        if self.now() >= holder.expires_at:
            return _error(403, "Unauthorized", denied, "The access token you provided has expired.")
        if isinstance(holder, _Rdt) and holder.elements_for(req.method, req.path) is None:
            return _error(403, "Unauthorized", denied,
                          f"The Restricted Data Token does not name {req.method} {req.path}.")
        return holder.refresh_token

    def _granted(self, req: Request) -> frozenset[str] | None:
        """The data elements the request's RDT grants for its path (None: no RDT)."""
        with self._state_lock:
            rdt = self._rdts.get(req.headers.get("x-amz-access-token", ""))
        return rdt.elements_for(req.method, req.path) if rdt is not None else None

    def _limit_headers(self, operation: str) -> dict[str, str]:
        return {"x-amzn-RateLimit-Limit": f"{BUDGETS[operation][0] * self.speed:g}", "x-amzn-RequestId": str(uuid.uuid4())}

    def _gate(self, req: Request, operation: str) -> Response | None:
        """Credentials, then the operation's usage plan; a Response means: answer this instead."""
        who = self._admit(req, operation)
        return who if isinstance(who, Response) else None

    def _admit(self, req: Request, operation: str) -> str | Response:
        """Like ``_gate``, but the caller's refresh token when admitted."""
        who = self._authorize(req)
        if isinstance(who, Response):
            return who
        with self._state_lock:
            bucket = self._buckets.get((operation, who))
            if bucket is None:
                rate, burst = BUDGETS[operation]
                bucket = self._buckets[(operation, who)] = ServerBucket(rate, burst, self.speed)
        # ``429_rate``: a quota 429 as Amazon sends it, with x-amzn-RateLimit-Limit (the generic ``429``
        # fault carries Retry-After instead, ``429_bare`` neither).
        if self.faults.take(req.path, {"429_rate"}) is not None or not bucket.try_take():
            return _error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.",
                          headers=self._limit_headers(operation))
        return who

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
        mixed = mixed_regions(marketplaces)
        if mixed:
            return bad(mixed)
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
        pairs = [(order, version) for _, order, version in page]
        if self.faults.take(req.path, {"out_of_order_page"}):
            pairs.reverse()  # the records only: the next token still follows the last one in key order
        body = wrap(render(pairs), next_token, field, before)
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
        granted = self._granted(req) or frozenset()

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
            render=lambda pairs: [self.renderer.order_v0(o, v, buyer_info="buyerInfo" in granted,
                                                         shipping_address="shippingAddress" in granted)
                                  for o, v in pairs])

    def get_order_v0(self, req: Request, match: Any) -> Response:
        """``GET /orders/v0/orders/{orderId}`` (getOrder)."""
        gate = self._gate(req, "getOrderV0")
        if gate is not None:
            return gate
        found = self._find(unquote(match["id"]))
        headers = self._limit_headers("getOrderV0")
        if found is None:
            return _error(404, "NotFound", "The order was not found.", headers=headers)
        granted = self._granted(req) or frozenset()
        order = self.renderer.order_v0(*found, buyer_info="buyerInfo" in granted,
                                       shipping_address="shippingAddress" in granted)
        return Response.json({"payload": order}, headers=headers)

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

    def get_order_buyer_info(self, req: Request, match: Any) -> Response:
        """``GET /orders/v0/orders/{orderId}/buyerInfo`` (getOrderBuyerInfo): e-mail and name only with an RDT."""
        return self._order_pii(req, match, "getOrderBuyerInfo", self.renderer.buyer_info_v0)

    def get_order_address(self, req: Request, match: Any) -> Response:
        """``GET /orders/v0/orders/{orderId}/address`` (getOrderAddress): the full address only with an RDT."""
        return self._order_pii(req, match, "getOrderAddress", self.renderer.address_v0)

    def _order_pii(self, req: Request, match: Any, operation: str,
                   render: Callable[[Order, bool], dict[str, Any]]) -> Response:
        gate = self._gate(req, operation)
        if gate is not None:
            return gate
        headers = self._limit_headers(operation)
        found = self._find(unquote(match["id"]))
        if found is None:
            return _error(404, "NotFound", "The order was not found.", headers=headers)
        # These two paths need no dataElements: an RDT naming the path grants what it returns.
        return Response.json({"payload": render(found[0], self._granted(req) is not None)}, headers=headers)

    # -- Tokens 2021-03-01 -----------------------------------------------------------------------
    def stores_of(self, refresh_token: str) -> set[str]:
        """The store keys a refresh token was granted by (see ``grant_stores``)."""
        if refresh_token in self.grant_stores:
            return set(self.grant_stores[refresh_token])
        stores = set(self.sellers.values())
        named = {store for store in stores if refresh_token.endswith(f"-{store}")}
        return named or stores

    def create_restricted_data_token(self, req: Request, match: Any) -> Response:
        """``POST /tokens/2021-03-01/restrictedDataToken`` (createRestrictedDataToken), for the PII roles only."""
        who = self._admit(req, "createRestrictedDataToken")
        if isinstance(who, Response):
            return who
        headers = self._limit_headers("createRestrictedDataToken")
        try:
            body = req.json()
        except ValueError:
            body = None
        resources = _parse_resources(body)
        if isinstance(resources, str):
            return _error(400, "InvalidInput", resources, headers=headers)
        pii_stores = self.renderer.pii_stores
        if pii_stores is not None and not self.stores_of(who) <= pii_stores:
            elements = sorted({e for r in resources for e in r.elements})
            return _error(403, "Unauthorized", "Access to requested resource is denied.",
                          f"Application does not have access to one or more requested data elements: {elements}",
                          headers=headers)
        token = "Atz.sprdt|" + secrets.token_urlsafe(32)
        with self._state_lock:
            self._rdts[token] = _Rdt(who, self.now() + timedelta(seconds=RDT_SECONDS), resources)
        return Response.json({"restrictedDataToken": token, "expiresIn": RDT_SECONDS}, headers=headers)

    # -- Reports 2021-06-30 ----------------------------------------------------------------------
    def create_report(self, req: Request, match: Any) -> Response:
        """``POST /reports/2021-06-30/reports`` (createReport) for the order report type only: 202 ``{"reportId"}``."""
        who = self._admit(req, "createReport")
        if isinstance(who, Response):
            return who
        headers = self._limit_headers("createReport")
        try:
            body = req.json()
        except ValueError:
            body = None
        spec = self._report_spec(body)
        if isinstance(spec, str):
            return _error(400, "InvalidInput", spec, headers=headers)
        marketplaces, start, end = spec
        fault = self.faults.take(req.path, {"report_fatal", "report_cancelled", "report_stuck", "report_slow"})
        with self._state_lock:
            report_id = str(10**10 + secrets.randbelow(9 * 10**10))
            while report_id in self.reports:
                report_id = str(10**10 + secrets.randbelow(9 * 10**10))
            self.reports[report_id] = ReportRecord(report_id, who, marketplaces, start, end, _second(self.now()),
                                                   time.monotonic(), fault.kind if fault else None)
        return Response.json({"reportId": report_id}, 202, headers)

    def _report_spec(self, body: Any) -> tuple[list[str], datetime, datetime] | str:
        """The marketplaces and window of a createReport body, or what is wrong with it."""
        if not isinstance(body, dict):
            return "The request body must be a CreateReportSpecification object"
        if body.get("reportType") != REPORT_TYPE:
            return f"Invalid reportType {body.get('reportType')!r}: this endpoint serves {REPORT_TYPE} only"
        marketplaces = body.get("marketplaceIds")
        if not isinstance(marketplaces, list) or not marketplaces:
            return "marketplaceIds is required: a non-empty list"
        unknown = [str(m) for m in marketplaces if m not in self.sellers]
        if unknown:
            return f"Invalid marketplaceIds: {', '.join(unknown)} (not of this endpoint's region or not granted)"
        mixed = mixed_regions([str(m) for m in marketplaces])
        if mixed:
            return mixed
        start = _parse_time(body.get("dataStartTime"), "dataStartTime")
        end = _parse_time(body.get("dataEndTime"), "dataEndTime")
        if isinstance(start, str):
            return start
        if isinstance(end, str):
            return end
        if end < start:
            return "dataEndTime must not be before dataStartTime"
        if end > self.now():
            return "dataEndTime must not be in the future"
        if end - start > REPORT_MAX_SPAN:
            return f"The window from dataStartTime to dataEndTime may span at most {REPORT_MAX_SPAN.days} days"
        return [str(m) for m in marketplaces], start, end

    def get_report(self, req: Request, match: Any) -> Response:
        """``GET /reports/2021-06-30/reports/{reportId}`` (getReport); each poll moves the report along."""
        who = self._admit(req, "getReport")
        if isinstance(who, Response):
            return who
        headers = self._limit_headers("getReport")
        with self._state_lock:
            report = self.reports.get(unquote(match["id"]))
            if report is None or report.refresh_token != who:
                return _error(404, "NotFound", "The report was not found.", headers=headers)
            self._advance(report)
            body = report.to_json()
        return Response.json(body, headers=headers)

    def _advance(self, report: ReportRecord) -> None:
        """IN_QUEUE for the first quarter of ``report_seconds / speed``, IN_PROGRESS to its end, then finished.

        Called with ``_state_lock`` held.
        """
        if report.status in REPORT_TERMINAL or report.fault == "report_stuck":
            return
        duration = self.report_seconds / self.speed
        elapsed = time.monotonic() - report.submitted
        if elapsed < duration / 4:
            return
        if report.started is None:
            report.status, report.started = "IN_PROGRESS", _second(self.now())
        if elapsed < duration:
            return
        if report.fault == "report_slow" and report.slow_polls > 0:
            report.slow_polls -= 1
            return
        self._finish(report)

    def _finish(self, report: ReportRecord) -> None:
        """Render the report as of its ``createdTime`` minus the lag: DONE, CANCELLED (no rows) or FATAL."""
        report.ended = _second(self.now())
        if report.fault == "report_fatal":
            error = {"errorDetails": "The report could not be generated because of an internal error. "
                                     "Please request it again after the cool-down."}
            report.status = "FATAL"
            report.document_id = self._store_document(report.refresh_token, json.dumps(error).encode(),
                                                      "application/json; charset=UTF-8", compress=False)
            return
        rows = self._report_rows(report)
        if report.fault == "report_cancelled" or not rows:
            report.status = "CANCELLED"
            return
        text = "".join("\t".join(row) + "\n" for row in [list(REPORT_COLUMNS), *rows])
        report.status, report.rows = "DONE", len(rows)
        report.document_id = self._store_document(report.refresh_token, text.encode("utf-8"), TSV_CONTENT_TYPE,
                                                  compress=self.gzip_reports)

    def _report_rows(self, report: ReportRecord) -> list[list[str]]:
        """Rows of orders whose version at ``createdTime - report_lag`` was last updated in the window."""
        moment = report.created - self.report_lag
        keyed = []
        for marketplace in report.marketplaces:
            for order in self.source.orders_for(self.sellers[marketplace]):
                if order.created_at > moment:
                    break
                version = order.version_at(moment)
                if version is None or not report.start <= _second(version.at) <= report.end:
                    continue
                keyed.append(((iso(version.at), order.external_id), self.renderer.report_rows(order, version)))
        keyed.sort(key=lambda pair: pair[0])
        return [row for _, rows in keyed for row in rows]

    def _store_document(self, refresh_token: str, body: bytes, content_type: str, *, compress: bool) -> str:
        document_id = f"amzn1.spdoc.1.4.na.{uuid.uuid4()}"
        stored = gzip.compress(body, mtime=0) if compress else body
        self.documents[document_id] = ReportDocument(document_id, refresh_token, stored, content_type, compress)
        return document_id

    def get_report_document(self, req: Request, match: Any) -> Response:
        """``GET /reports/2021-06-30/documents/{reportDocumentId}`` (getReportDocument): a URL valid 5 minutes."""
        who = self._admit(req, "getReportDocument")
        if isinstance(who, Response):
            return who
        headers = self._limit_headers("getReportDocument")
        document_id = unquote(match["id"])
        with self._state_lock:
            document = self.documents.get(document_id)
        if document is None or document.refresh_token != who:
            return _error(404, "NotFound", "The report document was not found.", headers=headers)
        expires = int((self.now() + DOCUMENT_URL_TTL).timestamp())
        url = f"{self._base_url(req)}/_documents/{document_id}?expires={expires}&sig={self._sign(document_id, expires)}"
        body: dict[str, Any] = {"reportDocumentId": document_id, "url": url}
        if document.compressed:
            body["compressionAlgorithm"] = "GZIP"
        return Response.json(body, headers=headers)

    def _base_url(self, req: Request) -> str:
        """Where this server is reached: ``public_url``, else the Host header.

        python-amazon-sp-api sends ``host: endpoint[8:]`` (it cuts ``https://``), which drops the first
        character of an ``http://`` endpoint's host: from that client only the port is trusted, on loopback,
        where the emulator's server listens.
        """
        if self.public_url:
            return self.public_url.rstrip("/")
        host = req.headers.get("host", "127.0.0.1")
        if req.headers.get("user-agent", "").startswith("python-sp-api"):
            port = host.rsplit(":", 1)[1] if ":" in host else "80"
            host = f"127.0.0.1:{port}"
        return f"http://{host}"

    def _sign(self, document_id: str, expires: int) -> str:
        return hmac.new(self._url_key, f"{document_id}|{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def download_document(self, req: Request, match: Any) -> Response:
        """``GET /_documents/{id}?expires=&sig=``: the pre-signed download (no SP-API auth, no usage plan)."""
        document_id = unquote(match["id"])
        with self._state_lock:
            document = self.documents.get(document_id)
        if document is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        try:
            expires = int(req.arg("expires") or "")
        except ValueError:
            return _s3_error(403, "AccessDenied", "Query-string authentication requires the expires parameter")
        if not hmac.compare_digest(req.arg("sig") or "", self._sign(document_id, expires)):
            return _s3_error(403, "SignatureDoesNotMatch",
                             "The request signature we calculated does not match the signature you provided.")
        fault = self.faults.take(req.path, {"document_expired", "truncate_document"})
        if self.now().timestamp() > expires or (fault is not None and fault.kind == "document_expired"):
            return _s3_error(403, "AccessDenied", "Request has expired")
        body = document.body
        if fault is not None and fault.kind == "truncate_document":
            body = body[: len(body) // 2]
        # No Content-Encoding: the client receives the gzip stream itself, as from S3.
        return Response(200, body, {"Content-Type": document.content_type})
