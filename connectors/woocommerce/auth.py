"""WooCommerce REST authentication: HTTP Basic over HTTPS, OAuth 1.0a one-legged query signing over plain HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from orderhub import clock

# The query parameters that carry credentials; they never reach a landed manifest or a log line.
OAUTH_PARAMS = frozenset(
    {"oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature_method", "oauth_signature",
     "oauth_version", "consumer_key", "consumer_secret"}
)


def percent_encode(value: str) -> str:
    """RFC 3986 percent-encoding as OAuth 1.0a requires (only unreserved characters stay as they are)."""
    return quote(value, safe="-._~")


def base_string_uri(url: str) -> str:
    """The OAuth base string URI: scheme and host lower-cased, default port dropped, no query or fragment."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def signature_base_string(method: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``METHOD&enc(base URI)&enc(sorted enc(k)=enc(v) joined by &)``, RFC 5849 section 3.4.1.

    ``oauth_signature`` itself is excluded. WooCommerce builds the same string in
    ``WC_REST_Authentication::check_oauth_signature``.
    """
    pairs = sorted(
        (percent_encode(k), percent_encode(v)) for k, v in params if k != "oauth_signature"
    )
    normalized = "&".join(f"{k}={v}" for k, v in pairs)
    return "&".join([method.upper(), percent_encode(base_string_uri(url)), percent_encode(normalized)])


def hmac_sha1_signature(base_string: str, consumer_secret: str) -> str:
    """Base64 HMAC-SHA1 of the base string; the key is ``consumer_secret&`` (one-legged: no token secret)."""
    digest = hmac.new(f"{consumer_secret}&".encode(), base_string.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class OAuth1QuerySigner(AuthBase):
    """Sign each outgoing request in its query string, as WooCommerce requires over plain HTTP.

    The signature is computed when requests prepares the request, so every retry carries a fresh
    nonce and timestamp (WooCommerce refuses a reused nonce and a timestamp older than 15 minutes).
    See https://woocommerce.github.io/woocommerce-rest-api-docs/#authentication-over-http.
    """

    def __init__(
        self,
        consumer_key: str,
        consumer_secret: str,
        *,
        now: Callable[[], datetime] = clock.now,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self._key = consumer_key
        self._secret = consumer_secret
        self._now = now
        self._nonce = nonce

    def __repr__(self) -> str:
        return "OAuth1QuerySigner(<credentials hidden>)"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(r.url or "")
        params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in OAUTH_PARAMS]
        params += [
            ("oauth_consumer_key", self._key),
            ("oauth_timestamp", str(int(self._now().timestamp()))),
            ("oauth_nonce", self._nonce()),
            ("oauth_signature_method", "HMAC-SHA1"),
        ]
        base = signature_base_string(r.method or "GET", r.url or "", params)
        params.append(("oauth_signature", hmac_sha1_signature(base, self._secret)))
        r.url = urlunsplit(parts._replace(query=urlencode(params, quote_via=quote, safe="-._~")))
        return r


def auth_for(url: str, consumer_key: str, consumer_secret: str) -> AuthBase:
    """HTTP Basic over HTTPS; OAuth 1.0a query signing over plain HTTP (WooCommerce ignores Basic there)."""
    if urlsplit(url).scheme.lower() == "https":
        return HTTPBasicAuth(consumer_key, consumer_secret)
    return OAuth1QuerySigner(consumer_key, consumer_secret)
