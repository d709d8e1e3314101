"""Amazon SP-API client: python-amazon-sp-api pointed at one store, errors mapped, one budget per operation."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import httpx
from sp_api.api.orders.orders_2026_01_01 import OrdersV20260101
from sp_api.api.orders.orders_v0 import OrdersV0
from sp_api.auth import AccessTokenClient
from sp_api.auth import access_token_client as lwa_module
from sp_api.auth._core import build_cache_key
from sp_api.auth.exceptions import AuthorizationError
from sp_api.base import ApiResponse, SellingApiException
from sp_api.base.exceptions import get_exception_for_code

from connectors.amazon.config import AmazonStore
from connectors.http import RetryPolicy, TokenBucket, call_with_retry
from orderhub.errors import AuthError, ConfigError, FatalError, OrderhubError, RetriableError

log = logging.getLogger(__name__)

CHANNEL = "amazon"


@dataclass(frozen=True)
class Budget:
    """A documented default usage plan: ``rate`` requests per second, ``burst`` saved up."""

    rate: float
    burst: float


# Default usage plans, as published in Amazon's models (the "Usage Plan" table of each operation):
# https://github.com/amzn/selling-partner-api-models/blob/main/models/orders-api-model/orders_2026-01-01.json
# https://github.com/amzn/selling-partner-api-models/blob/main/models/orders-api-model/ordersV0.json
# Each response's x-amzn-RateLimit-Limit header then sets the rate actually granted
# (https://developer-docs.amazon.com/sp-api/docs/usage-plans-and-rate-limits-in-the-sp-api).
BUDGETS: dict[str, Budget] = {
    "searchOrders": Budget(0.0056, 20),
    "getOrder": Budget(0.5, 30),
    "getOrders": Budget(0.0167, 20),
    "getOrderItems": Budget(0.5, 30),
}


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
    """Orders v2026-01-01 and v0 calls for one store, through the one retry layer.

    Credentials are resolved from their ``Secret`` references when the first call is made, and are
    handed to sp_api only; they never appear in a request record, an error or a log line.
    """

    def __init__(self, store: AmazonStore, *, policy: RetryPolicy | None = None, timeout: float = 20.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.policy = policy or RetryPolicy()
        self.timeout = timeout  # seconds per HTTP call; a stalled call is abandoned and retried
        self._sleep = sleep
        self.limits = {op: TokenBucket(b.rate, b.burst, sleep=sleep) for op, b in BUDGETS.items()}

    @cached_property
    def _apis(self) -> tuple[_Orders2026, _OrdersV0]:
        if self.store.endpoint and os.environ.get("SP_API_DEFAULT_MARKETPLACE"):
            raise ConfigError("unset SP_API_DEFAULT_MARKETPLACE: sp_api would use it instead of the store's endpoint")
        marketplace = SpMarketplace(self.store.api_endpoint.rstrip("/"), self.store.marketplace_id, self.store.region)
        credentials = {
            "refresh_token": self.store.refresh_token.get(),
            "lwa_app_id": self.store.lwa_client_id,
            "lwa_client_secret": self.store.lwa_client_secret.get(),
        }
        token_client = lwa_client_class(self.store.token_url)
        kwargs: dict[str, Any] = {"credentials": credentials, "timeout": self.timeout,
                                  "auth_token_client_class": token_client}
        return (_Orders2026(marketplace, **kwargs), _OrdersV0(marketplace, version="v0", **kwargs))

    def forget_access_token(self) -> None:
        """Drop this store's cached LWA access token (sp_api caches it per refresh token, process-wide)."""
        lwa_module.cache.pop(build_cache_key(self.store.refresh_token.get()), None)

    # -- operations ------------------------------------------------------------------------------
    def search_orders(self, params: dict[str, Any]) -> RawResponse:
        """Orders v2026-01-01 ``searchOrders``."""
        return self._call("searchOrders", "/orders/2026-01-01/orders", params,
                          lambda: self._apis[0].search_orders(**params))

    def get_order(self, order_id: str, params: dict[str, Any]) -> RawResponse:
        """Orders v2026-01-01 ``getOrder``."""
        return self._call("getOrder", f"/orders/2026-01-01/orders/{order_id}", params,
                          lambda: self._apis[0].get_order(order_id, **params))

    def get_orders_v0(self, params: dict[str, Any]) -> RawResponse:
        """Orders v0 ``getOrders``."""
        return self._call("getOrders", "/orders/v0/orders", params, lambda: self._apis[1].get_orders(**params))

    def get_order_items_v0(self, order_id: str, params: dict[str, Any]) -> RawResponse:
        """Orders v0 ``getOrderItems``."""
        return self._call("getOrderItems", f"/orders/v0/orders/{order_id}/orderItems", params,
                          lambda: self._apis[1].get_order_items(order_id, **params))

    # -- the call: budget, one token refresh, error mapping, retries -----------------------------
    def _call(self, operation: str, path: str, params: dict[str, Any], fn: Callable[[], ApiResponse]) -> RawResponse:
        bucket = self.limits[operation]
        url = self.store.api_endpoint.rstrip("/") + path
        request = {"method": "GET", "path": path, "params": dict(params)}

        def once() -> RawResponse:
            refreshed = False
            while True:
                bucket.acquire()
                try:
                    response = fn()
                except SellingApiException as exc:
                    self._adopt_rate(bucket, getattr(exc, "headers", None))
                    if exc.code == 403 and not refreshed and _is_token_problem(exc):
                        # sp_api keeps the access token in a module-wide TTL cache for ~53 minutes of real
                        # time; the server (or the sandbox clock) may have expired it sooner. Once.
                        log.info("amazon %s: access token refused; fetching a new one", operation)
                        self.forget_access_token()
                        refreshed = True
                        continue
                    raise map_error(exc, url) from None
                except (AuthorizationError, httpx.TransportError, json.JSONDecodeError) as exc:
                    raise map_error(exc, url) from None
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
