"""OAuth 1.0a signing checked against an independent implementation, auth choice by scheme, and the importer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPBasicAuth

from connectors.landing import LandingStore
from connectors.woocommerce.auth import (
    OAuth1QuerySigner,
    auth_for,
    hmac_sha1_signature,
    signature_base_string,
)
from connectors.woocommerce.importer import import_files
from orderhub.config import Settings
from orderhub.errors import ConfigError
from pipelines.common import normalize_batches
from tests.woocommerce.helpers import FIXTURES


def test_signature_matches_oauthlib() -> None:
    signature = pytest.importorskip("oauthlib.oauth1.rfc5849.signature")
    url = "http://127.0.0.1:8080/shop-a/wp-json/wc/v3/orders"
    params = [("modified_after", "2026-01-01T00:00:00"), ("per_page", "100"), ("status", "on-hold,processing"),
              ("oauth_consumer_key", "ck_x"), ("oauth_timestamp", "1767225600"), ("oauth_nonce", "abc"),
              ("oauth_signature_method", "HMAC-SHA1")]
    ours = hmac_sha1_signature(signature_base_string("GET", url, params), "cs_secret")
    base = signature.signature_base_string("GET", signature.base_string_uri(url),
                                           signature.normalize_parameters(params))
    assert ours == signature.sign_hmac_sha1(base, "cs_secret", None)


def test_signer_puts_everything_in_the_query_with_fresh_nonces() -> None:
    fixed = datetime(2026, 1, 1, tzinfo=UTC)
    signer = OAuth1QuerySigner("ck_x", "cs_secret", now=lambda: fixed)
    a = requests.Request("GET", "http://h/wp-json/wc/v3/orders", params={"page": 2}, auth=signer).prepare()
    b = requests.Request("GET", "http://h/wp-json/wc/v3/orders", params={"page": 2}, auth=signer).prepare()
    assert "oauth_signature=" in a.url and "oauth_timestamp=1767225600" in a.url and "page=2" in a.url
    assert a.url != b.url  # a retry is a new request: new nonce, new signature
    assert "Authorization" not in a.headers and "cs_secret" not in a.url
    assert "cs_secret" not in repr(signer)


def test_basic_over_https_oauth_over_http() -> None:
    assert isinstance(auth_for("https://shop.example.com", "ck", "cs"), HTTPBasicAuth)
    assert isinstance(auth_for("http://127.0.0.1:8080/shop-a", "ck", "cs"), OAuth1QuerySigner)


def test_import_the_real_fixtures(tmp_path: Path) -> None:
    landing = LandingStore(tmp_path)
    files = [FIXTURES / "retrieve_order.v3.example.json", FIXTURES / "list_orders.v3.example.json"]
    [manifest] = import_files(files, "imported", landing)
    assert (manifest.stream, manifest.source, manifest.cursor, manifest.records) == ("import", "import", None, 3)
    assert [(p.kind, p.records) for p in manifest.parts] == [("woocommerce.rest.order", 1),
                                                             ("woocommerce.rest.orders", 2)]
    assert [landing.read_part(manifest, p) for p in manifest.parts] == [f.read_bytes() for f in files]
    out = normalize_batches([(manifest, [(p, landing.read_part(manifest, p)) for p in manifest.parts])],
                            Settings(home=tmp_path))
    assert sorted(out.orders["order_id"].to_list()) == ["woocommerce:imported:723", "woocommerce:imported:727",
                                                        "woocommerce:imported:727"]
    assert landing.state("woocommerce", "imported", "orders") is None  # an import never moves the API cursor


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"not json", "not JSON"),
        (b'{"code": "woocommerce_rest_cannot_view", "message": "Sorry"}', "a WooCommerce error response"),
        ((FIXTURES.parent / "shopify" / "orders.json").read_bytes()
         if (FIXTURES.parent / "shopify" / "orders.json").exists() else b'{"orders": []}', "another channel"),
        (json.dumps([{"AmazonOrderId": "1"}]).encode(), "another channel"),
    ],
)
def test_unrecognized_files_land_nothing(tmp_path: Path, content: bytes, needle: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    landing = LandingStore(tmp_path / "landing")
    with pytest.raises(ConfigError, match=needle):
        import_files([FIXTURES / "retrieve_order.v3.example.json", bad], "imported", landing)
    assert list(landing.manifests()) == []
