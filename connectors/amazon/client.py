"""Amazon SP-API client: python-amazon-sp-api pointed at one store, errors mapped, one budget per operation."""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import httpx
from sp_api.api.orders.orders_2026_01_01 import OrdersV20260101
from sp_api.api.orders.orders_v0 import OrdersV0
from sp_api.api.reports.reports import Reports
from sp_api.api.tokens.tokens import Tokens
from sp_api.auth import AccessTokenClient
from sp_api.auth import access_token_client as lwa_module
from sp_api.auth._core import build_cache_key
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import ApiResponse, SellingApiException
from sp_api.base.exceptions import get_exception_for_code

from connectors.amazon.config import AmazonStore
from connectors.http import SHARED_BUCKETS, RetryPolicy, TokenBucket, call_with_retry
from orderhub.errors import AuthError, ConfigError, FatalError, OrderhubError, RetriableError

log = logging.getLogger(__name__)

CHANNEL = "amazon"


@dataclass(frozen=True)
class Budget:
    """A documented default usage plan: ``rate`` requests per second, ``burst`` saved up."""

    rate: float
    burst: float


# Default usage plans, as published in Amazon's models (the "Usage Plan" table of each operation), under
# https://github.com/amzn/selling-partner-api-models/blob/main/models/ :
# Each response's x-amzn-RateLimit-Limit header then sets the rate actually granted
# (https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits-in-the-sp-api).
BUDGETS: dict[str, Budget] = {
    "searchOrders": Budget(0.0056, 20),  # orders-api-model/orders_2026-01-01.json
    "getOrder": Budget(0.5, 30),  # orders-api-model/orders_2026-01-01.json
    "getOrders": Budget(0.0167, 20),  # orders-api-model/ordersV0.json
    "getOrderV0": Budget(0.5, 30),  # orders-api-model/ordersV0.json (getOrder of v0)
    "getOrderItems": Budget(0.5, 30),  # orders-api-model/ordersV0.json
    "getOrderBuyerInfo": Budget(0.5, 30),  # orders-api-model/ordersV0.json
    "getOrderAddress": Budget(0.5, 30),  # orders-api-model/ordersV0.json
    "createReport": Budget(0.0167, 15),  # reports-api-model/reports_2021-06-30.json
    "getReport": Budget(2.0, 15),  # reports-api-model/reports_2021-06-30.json
    "getReportDocument": Budget(0.0167, 15),  # reports-api-model/reports_2021-06-30.json
    "createRestrictedDataToken": Budget(1.0, 10),  # tokens-api-model/tokens_2021-03-01.json
}
# The restricted resource of v0 getOrders whose RDT brings buyer info and the full shipping address
# (Tokens API use case guide: https://developer-docs.amazon.com/sp-api/docs/tokens-api-use-case-guide).
V0_ORDERS_PATH = "/orders/v0/orders"
V0_PII_ELEMENTS = ["buyerInfo", "shippingAddress"]
RDT_MARGIN = 300.0  # seconds before an RDT's expiresIn that a new one is fetched


@dataclass(frozen=True)
class SpMarketplace:
    """What sp_api's ``Client`` reads from a marketplace (``sp_api/base/client.py``): endpoint, id, region."""

    endpoint: str
    marketplace_id: str
    region: str


@dataclass(frozen=True)
class RawResponse:
    """One SP-API response: the body byte for byte, its JSON, what was asked (never credentials), headers."""

    body: bytes
    data: Any
    request: dict[str, Any]
    headers: dict[str, str]


def lwa_client_class(token_url: str | None) -> type[AccessTokenClient]:
    """sp_api's LWA token client, aimed at ``token_url`` (None: Amazon's own ``https://api.amazon.com``).

    Raises:
        ConfigError: ``token_url`` is not an http(s) URL.
    """
    if not token_url:
        return AccessTokenClient
    parts = urlsplit(token_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"amazon token_url {token_url!r} must be an http(s) URL such as https://api.amazon.com/auth/o2/token")

    class StoreAccessTokenClient(AccessTokenClient):  # the library's own hook: scheme + host + path
        scheme = f"{parts.scheme}://"
        host = parts.netloc
        path = parts.path or AccessTokenClient.path

    return StoreAccessTokenClient


class _KeepsRawBody:
    """Keeps each body byte for byte (raw is sacred) and refuses bodies sp_api would silently read as ``{}``.

    ``sp_api.base._core.parse_response`` turns a body that is not JSON into an empty success, which
    would end paging early and lose orders: a truncated 2xx body is retriable here, and an error status
    whose body is not an SP-API error list still raises the library's exception for that status.
    """

    def _check_response(self, res: httpx.Response, *args: Any, **kwargs: Any) -> ApiResponse:
        status = res.status_code
        try:
            parsed = json.loads(res.content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = None
            if status < 400:
                raise RetriableError(
                    f"amazon sent a body that is not valid JSON ({len(res.content)} bytes, truncated?); will retry",
                    channel=CHANNEL, status=status, url=str(res.url).split("?", 1)[0],
                ) from None
        if status >= 400 and not (isinstance(parsed, dict) and parsed.get("errors")):
            exc = get_exception_for_code(status)([{"code": str(status), "message": res.text[:200]}], headers=res.headers)
            exc.status_code = status
            raise exc
        try:
            response = super()._check_response(res, *args, **kwargs)  # type: ignore[misc]
        except SellingApiException as exc:
            exc.status_code = status  # the library keeps no status for codes it has no class for
            raise
        response.raw_body = res.content
        response.raw_json = parsed
        return response


class _Orders2026(_KeepsRawBody, OrdersV20260101):
    """sp_api's Orders v2026-01-01 client, keeping raw bodies."""


class _OrdersV0(_KeepsRawBody, OrdersV0):
    """sp_api's Orders v0 client (what ``sp_api.api.Orders(version="v0")`` builds), keeping raw bodies."""


class _Reports(_KeepsRawBody, Reports):
    """sp_api's Reports 2021-06-30 client, keeping raw bodies."""


class _Tokens(_KeepsRawBody, Tokens):
    """sp_api's Tokens 2021-03-01 client, keeping raw bodies."""


@dataclass
class _Apis:
    """The sp_api clients of one store; ``orders_v0_pii`` carries a Restricted Data Token when one is held."""

    orders: _Orders2026
    orders_v0: _OrdersV0
    orders_v0_pii: _OrdersV0
    reports: _Reports
    tokens: _Tokens


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait after a 429: Retry-After when sent, else one request interval at the announced rate."""
    headers = headers or {}
    for name, invert in (("Retry-After", False), ("x-amzn-RateLimit-Limit", True)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if number > 0:
            return 1.0 / number if invert else number
    return None


def _is_token_problem(exc: SellingApiException) -> bool:
    """A 403 about the access token itself (expired, or revoked/malformed): a fresh token may fix it."""
    text = json.dumps(getattr(exc, "error", "")).lower()
    return "access token" in text


def map_error(exc: Exception, url: str) -> OrderhubError:
    """Map an sp_api / LWA / httpx exception to the orderhub error hierarchy."""
    if isinstance(exc, OrderhubError):
        return exc
    if isinstance(exc, SellingApiException):
        status = getattr(exc, "status_code", exc.code)
        body = json.dumps(getattr(exc, "error", ""), ensure_ascii=False)
        headers = getattr(exc, "headers", None)
        if status == 429 or status >= 500:
            return RetriableError(f"amazon answered {status} for {url}; will retry", retry_after=_retry_after(headers),
                                  channel=CHANNEL, status=status, url=url, body=body)
        if status in (401, 403):
            return AuthError(
                f"amazon refused access ({status}) for {url}: {body[:200]}. Check the store's refresh_token, "
                f"lwa_client_id/lwa_client_secret and the app's roles", channel=CHANNEL, status=status, url=url, body=body)
        return FatalError(f"amazon answered {status} for {url}: {body[:200]}", channel=CHANNEL, status=status,
                          url=url, body=body)
    if isinstance(exc, AuthorizationError):
        status = int(exc.status_code or 0)
        body = f"{exc.error_code}: {exc.message}"
        if status == 429 or status >= 500:
            return RetriableError(f"Login with Amazon answered {status}; will retry", channel=CHANNEL, status=status, body=body)
        return AuthError(f"Login with Amazon refused the store's credentials ({status} {body}): renew the refresh_token "
                         f"or fix lwa_client_id/lwa_client_secret", channel=CHANNEL, status=status, body=body)
    if isinstance(exc, httpx.TransportError | json.JSONDecodeError):
        return RetriableError(f"amazon: {type(exc).__name__} calling {url}; will retry", channel=CHANNEL, url=url)
    return FatalError(f"amazon: unexpected {type(exc).__name__} calling {url}: {exc}", channel=CHANNEL, url=url)


class AmazonClient:
    """Orders v2026-01-01 and v0, Reports and Tokens calls for one store, through the one retry layer.

    Credentials are resolved from their ``Secret`` references when the first call is made, and are
    handed to sp_api only; they never appear in a request record, an error or a log line. Restricted
    Data Tokens are fetched once and reused until shortly before they expire.
    """

    def __init__(self, store: AmazonStore, *, policy: RetryPolicy | None = None, timeout: float = 20.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.policy = policy or RetryPolicy()
        self.timeout = timeout  # seconds per HTTP call; a stalled call is abandoned and retried
        self._sleep = sleep
        # Amazon's limits are per selling partner and application in each region: one scope per those three.
        self._scope = f"amazon|{store.api_endpoint}|{store.seller_id}|{store.lwa_client_id}"
        self.limits = {op: SHARED_BUCKETS.bucket(self._scope, op, b.rate, b.burst, sleep=sleep)
                       for op, b in BUDGETS.items()}
        self._rdt_expires = 0.0  # time.monotonic() when the held RDT must be replaced
        self.calls: Counter[str] = Counter()  # SP-API calls made, by operation (retries included)

    @cached_property
    def _apis(self) -> _Apis:
        if self.store.endpoint and os.environ.get("SP_API_DEFAULT_MARKETPLACE"):
            raise ConfigError("unset SP_API_DEFAULT_MARKETPLACE: sp_api would use it instead of the store's endpoint")
        marketplace = SpMarketplace(self.store.api_endpoint.rstrip("/"), self.store.marketplaces[0], self.store.region or "NA")
        credentials = {
            "refresh_token": self.store.refresh_token.get(),
            "lwa_app_id": self.store.lwa_client_id,
            "lwa_client_secret": self.store.lwa_client_secret.get(),
        }
        token_client = lwa_client_class(self.store.token_url)
        kwargs: dict[str, Any] = {"credentials": credentials, "timeout": self.timeout,
                                  "auth_token_client_class": token_client}
        pii = _OrdersV0(marketplace, version="v0", **kwargs)
        pii.keep_restricted_data_token = True
        return _Apis(_Orders2026(marketplace, **kwargs), _OrdersV0(marketplace, version="v0", **kwargs), pii,
                     _Reports(marketplace, **kwargs), _Tokens(marketplace, **kwargs))

    def forget_access_token(self) -> None:
        """Drop this store's cached LWA access token (sp_api caches it per refresh token, process-wide)."""
        lwa_module.cache.pop(build_cache_key(self.store.refresh_token.get()), None)

    def forget_restricted_data_token(self) -> None:
        """Drop the held Restricted Data Token; the next PII call fetches a new one."""
        self._apis.orders_v0_pii.restricted_data_token = None
        self._rdt_expires = 0.0

    # -- Orders ----------------------------------------------------------------------------------
    def search_orders(self, params: dict[str, Any]) -> RawResponse:
        """Orders v2026-01-01 ``searchOrders``."""
        return self._call("searchOrders", "/orders/2026-01-01/orders", params,
                          lambda: self._apis.orders.search_orders(**params))

    def get_order(self, order_id: str, params: dict[str, Any]) -> RawResponse:
        """Orders v2026-01-01 ``getOrder``."""
        return self._call("getOrder", f"/orders/2026-01-01/orders/{order_id}", params,
                          lambda: self._apis.orders.get_order(order_id, **params))

    def get_orders_v0(self, params: dict[str, Any]) -> RawResponse:
        """Orders v0 ``getOrders``; with the store's PII roles, through a Restricted Data Token."""
        if self.store.has_pii_roles:
            return self._call("getOrders", V0_ORDERS_PATH, params, lambda: self._with_rdt().get_orders(**params),
                              restricted=True)
        return self._call("getOrders", V0_ORDERS_PATH, params, lambda: self._apis.orders_v0.get_orders(**params))

    def get_order_v0(self, order_id: str) -> RawResponse:
        """Orders v0 ``getOrder`` (without PII: the RDT held is for getOrders only)."""
        return self._call("getOrderV0", f"/orders/v0/orders/{order_id}", {},
                          lambda: self._apis.orders_v0.get_order(order_id))

    def get_order_items_v0(self, order_id: str, params: dict[str, Any]) -> RawResponse:
        """Orders v0 ``getOrderItems``."""
        return self._call("getOrderItems", f"/orders/v0/orders/{order_id}/orderItems", params,
                          lambda: self._apis.orders_v0.get_order_items(order_id, **params))

    def _with_rdt(self) -> _OrdersV0:
        """The v0 client holding a live RDT for getOrders' buyer info and shipping address."""
        api = self._apis.orders_v0_pii
        if api.restricted_data_token is None or time.monotonic() >= self._rdt_expires:
            body = {"restrictedResources": [{"method": "GET", "path": V0_ORDERS_PATH, "dataElements": V0_PII_ELEMENTS}]}
            try:
                response = self._call("createRestrictedDataToken", "/tokens/2021-03-01/restrictedDataToken", {},
                                      lambda: self._apis.tokens.create_restricted_data_token(**body), method="POST")
            except AuthError as exc:
                raise AuthError(
                    f"amazon refused a Restricted Data Token for store {self.store.key!r} ({exc.status}): the app "
                    f"lacks the PII roles for buyer info and shipping address. Grant them in Seller Central, or set "
                    f"has_pii_roles = false for this store (orders then land without PII, flagged pii_masked)",
                    channel=CHANNEL, status=exc.status) from None
            data = response.data if isinstance(response.data, dict) else {}
            token = data.get("restrictedDataToken")
            if not token:
                raise FatalError("amazon createRestrictedDataToken answered without a token", channel=CHANNEL)
            expires_in = float(data.get("expiresIn") or 3600)
            api.restricted_data_token = token
            self._rdt_expires = time.monotonic() + max(expires_in - RDT_MARGIN, expires_in / 2)
        return api

    # -- Reports ---------------------------------------------------------------------------------
    def create_report(self, body: dict[str, Any]) -> RawResponse:
        """Reports 2021-06-30 ``createReport``."""
        return self._call("createReport", "/reports/2021-06-30/reports", body,
                          lambda: self._apis.reports.create_report(**body), method="POST")

    def get_report(self, report_id: str) -> RawResponse:
        """Reports 2021-06-30 ``getReport``."""
        return self._call("getReport", f"/reports/2021-06-30/reports/{report_id}", {},
                          lambda: self._apis.reports.get_report(report_id))

    def get_report_document(self, document_id: str) -> RawResponse:
        """Reports 2021-06-30 ``getReportDocument``: the document's pre-signed URL (not its content)."""
        return self._call("getReportDocument", f"/reports/2021-06-30/documents/{document_id}", {},
                          lambda: self._apis.reports.get_report_document(document_id))

    def download(self, url: str) -> tuple[bytes, str | None]:
        """GET a pre-signed document URL at once (they expire minutes after issue): the bytes and their charset.

        Raises:
            RetriableError: a transport failure or a 5xx.
            FatalError: 403/404 (the URL expired or is wrong): ask getReportDocument for a new one.
        """
        shown = url.split("?", 1)[0]  # the query string is the signature: never logged
        try:
            with httpx.Client(timeout=self.timeout * 3) as http:
                res = http.get(url)
        except httpx.TransportError as exc:
            raise RetriableError(f"amazon report download: {type(exc).__name__} from {shown}; will retry",
                                 channel=CHANNEL, url=shown) from None
        if res.status_code >= 500 or res.status_code == 429:
            raise RetriableError(f"amazon report download answered {res.status_code}; will retry",
                                 channel=CHANNEL, status=res.status_code, url=shown)
        if res.status_code >= 400:
            raise FatalError(f"amazon report download answered {res.status_code} (the document URL expired?)",
                             channel=CHANNEL, status=res.status_code, url=shown)
        return res.content, res.charset_encoding

    # -- the call: budget, one token refresh, error mapping, retries -----------------------------
    def _call(self, operation: str, path: str, params: dict[str, Any], fn: Callable[[], ApiResponse], *,
              method: str = "GET", restricted: bool = False) -> RawResponse:
        bucket = self.limits[operation]
        url = self.store.api_endpoint.rstrip("/") + path
        request = {"method": method, "path": path, "params": dict(params)}

        def once() -> RawResponse:
            refreshed = False
            while True:
                bucket.acquire()
                SHARED_BUCKETS.save(self._scope)
                self.calls[operation] += 1
                try:
                    response = fn()
                except SellingApiException as exc:
                    bucket.after_call()
                    self._adopt_rate(bucket, getattr(exc, "headers", None))
                    if exc.code == 403 and not refreshed and _is_token_problem(exc):
                        # sp_api keeps the access token in a module-wide TTL cache for ~53 minutes of real
                        # time; the server (or the sandbox clock) may have expired it sooner. Once.
                        log.info("amazon %s: access token refused; fetching a new one", operation)
                        self.forget_access_token()
                        if restricted:
                            self.forget_restricted_data_token()
                        refreshed = True
                        continue
                    raise map_error(exc, url) from None
                except (AuthorizationError, httpx.TransportError, json.JSONDecodeError) as exc:
                    bucket.after_call()
                    raise map_error(exc, url) from None
                bucket.after_call()
                self._adopt_rate(bucket, response.headers)
                return RawResponse(response.raw_body, response.raw_json, request, dict(response.headers or {}))

        return call_with_retry(once, policy=self.policy, sleep=self._sleep, what=f"amazon {operation}")

    @staticmethod
    def _adopt_rate(bucket: TokenBucket, headers: Any) -> None:
        value = (headers or {}).get("x-amzn-RateLimit-Limit")
        if value:
            try:
                bucket.set_rate(float(value))
            except ValueError:
                log.debug("ignoring x-amzn-RateLimit-Limit %r", value)
