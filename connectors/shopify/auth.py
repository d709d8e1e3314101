"""Shopify access tokens: a stored Admin API token, or the client-credentials grant of Dev Dashboard apps.

Shopify no longer issues legacy custom-app tokens; apps created in the Dev Dashboard get an access token
by the OAuth client-credentials grant (``POST /admin/oauth/access_token``), valid about 24 hours. The
token source hands out a live token for every request and fetches a new one ten minutes before the old
one expires (and once when Shopify answers 401), so a long sync never stops for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from connectors.http import HttpClient, parse_json
from connectors.shopify.config import ShopifyStore
from orderhub.errors import AuthError, ConfigError, FatalError, OrderhubError
from orderhub.log import register_secret

log = logging.getLogger(__name__)

REFRESH_MARGIN = 600.0  # seconds before expiry that a client-credentials token is replaced


class TokenSource(Protocol):
    """Where the ``X-Shopify-Access-Token`` of a request comes from."""

    def token(self) -> str:
        """A token that is valid now."""

    def invalidate(self) -> bool:
        """Forget the token after a 401; True when a new one can be fetched (so the call is worth repeating)."""


class StoredToken:
    """An Admin API access token from the store's config: it never expires, a 401 is final."""

    def __init__(self, store: ShopifyStore) -> None:
        if store.access_token is None:
            raise ConfigError(f"shopify store {store.key!r} has no access_token")
        self._value = store.access_token.get()

    def token(self) -> str:
        """The stored token."""
        return self._value

    def invalidate(self) -> bool:
        """A stored token cannot be renewed."""
        return False


class ClientCredentials:
    """The client-credentials grant: ``client_id`` + ``client_secret`` -> a token for about 24 hours.

    Args:
        store: the shop (its ``client_id``, ``client_secret`` and ``endpoint``).
        http: the HTTP client (timeouts, error mapping, retries).
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, store: ShopifyStore, http: HttpClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not store.client_id or store.client_secret is None:
            raise ConfigError(f"shopify store {store.key!r} needs client_id and client_secret for the "
                              f"client-credentials grant")
        self.store = store
        self.http = http
        self._clock = clock
        self._value: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.grants = 0  # tokens fetched, for tests and the call log

    @property
    def url(self) -> str:
        """``/admin/oauth/access_token`` of the shop (or of the sandbox endpoint, with the shop as Host)."""
        base = (self.store.endpoint or f"https://{self.store.domain}").rstrip("/")
        return f"{base}/admin/oauth/access_token"

    def token(self) -> str:
        """The current token, fetched or renewed when it is missing or expires within ten minutes."""
        with self._lock:
            if self._value is None or self._clock() >= self._expires - REFRESH_MARGIN:
                self._grant()
            assert self._value is not None
            return self._value

    def invalidate(self) -> bool:
        """Drop the token (Shopify refused it): the next :meth:`token` fetches a new one."""
        with self._lock:
            self._value = None
        return True

    def _grant(self) -> None:
        assert self.store.client_secret is not None
        form = {"grant_type": "client_credentials", "client_id": self.store.client_id,
                "client_secret": self.store.client_secret.get()}
        headers = {"Accept": "application/json"}
        if self.store.endpoint:
            headers["Host"] = self.store.domain
        try:
            resp = self.http.request("POST", self.url, data=form, headers=headers)
        except (AuthError, FatalError) as exc:
            if exc.status not in (400, 401, 403):
                raise
            raise AuthError(f"shopify refused the client-credentials grant for {self.store.domain} ({exc.status}): "
                            f"check client_id and client_secret of the Dev Dashboard app, and that it is installed "
                            f"on the shop", channel="shopify", status=exc.status) from None
        except OrderhubError:
            raise
        body = parse_json(resp, "shopify")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AuthError(f"shopify's token endpoint answered without an access_token for {self.store.domain}",
                            channel="shopify")
        register_secret(str(token))  # never logged from here on
        lifetime = float(body.get("expires_in") or 86399)
        self._value = str(token)
        self._expires = self._clock() + lifetime
        self.grants += 1
        log.info("shopify %s: new access token by client credentials, valid %.1f h", self.store.key, lifetime / 3600)


def token_source(store: ShopifyStore, http: HttpClient) -> TokenSource:
    """The store's token source: the stored token when configured, else the client-credentials grant.

    Raises:
        ConfigError: neither is configured.
    """
    if store.access_token is not None:
        return StoredToken(store)
    if store.client_id and store.client_secret is not None:
        return ClientCredentials(store, http)
    raise ConfigError(
        f"shopify store {store.key!r} has no credentials: set access_token = \"env:NAME\" (an Admin API token, "
        f"shpat_...) or, for an app created in the Dev Dashboard, client_id and client_secret = \"env:NAME\""
    )
