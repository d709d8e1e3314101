"""WooCommerce REST API v3 client on requests, through the shared retry layer."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from connectors.http import HttpClient, RetryPolicy, TokenBucket, call_with_retry, parse_json
from connectors.woocommerce.auth import OAUTH_PARAMS, auth_for
from connectors.woocommerce.config import WooCommerceStore

CHANNEL = "woocommerce"
API_PREFIX = "/wp-json/wc/v3"

# WooCommerce documents no rate limit for the REST API (only the Store API has an opt-in limiter:
# https://developer.woocommerce.com/docs/apis/store-api/rate-limiting/). A shop is one PHP host,
# often shared, so we stay polite on our own: 10 requests per second, no burst beyond that.
REQUESTS_PER_SECOND = 10.0

Check = Callable[[Mapping[str, str], Any], None]


class WooCommerceClient:
    """GETs against one shop's ``/wp-json/wc/v3``, signed, rate limited and retried in one place.

    Args:
        store: the shop's configuration (``url`` is the site root).
        timeout: seconds per request.
        policy: retry policy for 429/5xx/timeouts/truncated bodies.
        sleep: how to wait between retries (tests pass a recorder).
        limiter: client-side rate limiter; None disables it.
    """

    def __init__(
        self,
        store: WooCommerceStore,
        *,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        limiter: TokenBucket | None = None,
    ) -> None:
        self.store = store
        self.base_url = store.url.rstrip("/") + API_PREFIX
        self._sleep = sleep
        self.http = HttpClient(
            CHANNEL, timeout=timeout, policy=policy or RetryPolicy(), sleep=sleep,
            limiter=limiter if limiter is not None else TokenBucket(REQUESTS_PER_SECOND, REQUESTS_PER_SECOND),
        )
        self._auth = auth_for(store.url, store.consumer_key.get(), store.consumer_secret.get())

    def get(self, path: str, params: Mapping[str, Any], *, check: Check | None = None) -> tuple[requests.Response, Any]:
        """GET ``path`` (relative to ``/wp-json/wc/v3``) and parse the JSON body.

        Args:
            path: e.g. ``/orders``.
            params: query parameters (credentials are added when the request is sent, never here).
            check: validates ``(headers, body)``; a :class:`RetriableError` it raises re-fetches.

        Returns:
            The response (its ``content`` is the body byte for byte) and the parsed JSON.

        Raises:
            AuthError: the shop refused the consumer key/secret (401/403).
            FatalError: any other 4xx, or ``check`` found the body unusable.
            RetriableError: still failing after the retry policy.
        """
        url = self.base_url + path

        def once() -> tuple[requests.Response, Any]:
            resp = self.http.request("GET", url, params=dict(params), auth=self._auth)
            body = parse_json(resp, CHANNEL)
            if check is not None:
                check(resp.headers, body)
            return resp, body

        return call_with_retry(once, policy=self.http.policy, sleep=self._sleep, what=f"{CHANNEL} GET {path}")

    def describe(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """What a request asked for, to record in a landed part: never the key, secret or signature."""
        return {
            "method": "GET",
            "url": self.base_url + path,
            "params": {k: str(v) for k, v in params.items() if k not in OAUTH_PARAMS},
        }
