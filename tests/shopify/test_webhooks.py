"""The webhook receiver over real HTTP: signatures, landing once (also across restarts and races), normalizing."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import requests
from polars.testing import assert_frame_equal

from connectors.landing import LandingStore, Manifest, Part
from connectors.shopify.config import ShopifyStore
from connectors.shopify.webhooks import (
    LANDED_HEADERS,
    SEEN_FILE,
    WebhookReceiver,
    serve_webhooks,
    signature_of,
    verify_signature,
)
from orderhub.config import Settings
from orderhub.errors import ConfigError
from orderhub.secrets import Secret
from pipelines.common import Normalized, normalize_batches
from pipelines.process import process_landed
from pipelines.schema import LINE_SCHEMA
from tests.shopify.helpers import SHOP, STORE, TOKEN, fixture_bytes, normalize_landed
from warehouse.db import Warehouse

SECRET = "shpss_webhook_test_secret_4711"
PROVENANCE = ["batch_id", "landed_at"]


@pytest.fixture
def store() -> ShopifyStore:
    return ShopifyStore(key=STORE, shop="acme", access_token=Secret(TOKEN), client_secret=Secret(SECRET))


@pytest.fixture
def settings(tmp_path: Path, store: ShopifyStore) -> Settings:
    return Settings(home=tmp_path, stores=[store])


@pytest.fixture
def landing(settings: Settings) -> LandingStore:
    return LandingStore(settings.landing_root)


@pytest.fixture
def receiver(store: ShopifyStore, landing: LandingStore) -> Iterator[WebhookReceiver]:
    with WebhookReceiver([store], landing) as running:
        yield running


def order_body() -> bytes:
    """The REST order of order.json without its wrapper, as Shopify posts it."""
    return json.dumps(json.loads(fixture_bytes("order.json"))["order"], ensure_ascii=False, indent=2).encode()


def deliver(receiver: WebhookReceiver, body: bytes, *, topic: str = "orders/updated", webhook_id: str = "wh-1",
            secret: str | None = SECRET, shop: str = SHOP, signature: str | None = None) -> requests.Response:
    headers = {"Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Shop-Domain": shop,
               "X-Shopify-Webhook-Id": webhook_id, "X-Shopify-Event-Id": f"ev-{webhook_id}",
               "X-Shopify-API-Version": "2026-01", "X-Shopify-Triggered-At": "2026-01-02T03:04:05.123Z"}
    if signature is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature
    elif secret is not None:
        headers["X-Shopify-Hmac-Sha256"] = signature_of(body, secret)
    return requests.post(receiver.url, data=body, headers=headers, timeout=10)


def webhook_batches(landing: LandingStore) -> list[Manifest]:
    return list(landing.manifests("shopify", STORE, "webhooks"))


def test_signature_matches_a_known_hmac_sha256_vector() -> None:
    # RFC-style vector: HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog")
    digest = bytes.fromhex("f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    body = b"The quick brown fox jumps over the lazy dog"
    assert signature_of(body, "key") == base64.b64encode(digest).decode()
    assert verify_signature(body, base64.b64encode(digest).decode(), "key")
    assert not verify_signature(body + b" ", base64.b64encode(digest).decode(), "key")
    assert not verify_signature(body, base64.b64encode(digest).decode(), "other")
    assert not verify_signature(body, None, "key") and not verify_signature(body, "", "key")
    assert not verify_signature(body, "not base64 at all ✓", "key")


def test_a_signed_order_lands_once_and_normalizes_like_rest(
    receiver: WebhookReceiver, landing: LandingStore, settings: Settings
) -> None:
    body = order_body()
    resp = deliver(receiver, body, topic="orders/updated", webhook_id="wh-order-1")
    assert resp.status_code == 200 and resp.json() == {"status": "landed",
                                                       "batch_id": "shopify/acme/webhooks/00000001"}
    (manifest,) = webhook_batches(landing)
    assert (manifest.source, manifest.cursor, manifest.records) == ("webhook", None, 1)
    assert manifest.meta == {"webhook_id": "wh-order-1", "topic": "orders/updated"}
    (part,) = manifest.parts
    assert (part.kind, part.records) == ("shopify.webhook.orders.updated", 1)
    assert landing.read_part(manifest, part) == body  # byte for byte
    assert set(part.request) == set(LANDED_HEADERS)  # every header but the HMAC
    assert part.request["X-Shopify-Webhook-Id"] == "wh-order-1"
    assert part.request["X-Shopify-Shop-Domain"] == SHOP

    # The same order through the existing REST path, in a stream of its own.
    landing.write_batch("shopify", STORE, "rest", [Part("shopify.rest.orders", fixture_bytes("order.json"), 1)], None)
    out = normalize_landed(landing, settings)
    assert out.quarantine.is_empty()

    def orders(stream: str) -> pl.DataFrame:
        return out.orders.filter(pl.col("batch_id").str.contains(f"/{stream}/")).drop(PROVENANCE)

    def lines(stream: str) -> pl.DataFrame:
        return (out.lines.filter(pl.col("batch_id").str.contains(f"/{stream}/")).select(list(LINE_SCHEMA))
                .sort("line_no"))

    assert orders("webhooks")["order_id"].to_list() == ["shopify:acme:450789469"]
    assert_frame_equal(orders("webhooks"), orders("rest"))  # record_hash too: the same order object
    assert_frame_equal(lines("webhooks"), lines("rest"))
    assert lines("webhooks").height == 3


@pytest.mark.parametrize("topic", ["orders/create", "orders/cancelled"])
def test_each_order_topic_has_its_kind(receiver: WebhookReceiver, landing: LandingStore, settings: Settings,
                                       topic: str) -> None:
    assert deliver(receiver, order_body(), topic=topic).status_code == 200
    (manifest,) = webhook_batches(landing)
    assert manifest.parts[0].kind == f"shopify.webhook.{topic.replace('/', '.')}"
    assert normalize_landed(landing, settings).orders.height == 1


@pytest.mark.parametrize(("how", "signature"), [
    ("missing", None),
    ("wrong secret", signature_of(b"x", "another-secret")),
    ("altered body", "body-signed-before-change"),
    ("garbage", "%%%not-base64%%%"),
])
def test_forged_or_missing_signatures_get_401_and_land_nothing(
    receiver: WebhookReceiver, landing: LandingStore, how: str, signature: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = order_body()
    if how == "wrong secret":
        signature = signature_of(body, "another-secret")
    elif how == "altered body":
        signature = signature_of(body, SECRET)
        body = body.replace(b"409.94", b"0.01")
    with caplog.at_level(logging.DEBUG):
        resp = deliver(receiver, body, secret=None, signature=signature)
    assert resp.status_code == 401
    assert "X-Shopify-Hmac-Sha256" in resp.json()["error"]
    assert SECRET not in resp.text and SECRET not in caplog.text
    if signature:
        assert signature not in resp.text and signature not in caplog.text
    assert webhook_batches(landing) == []


def test_logs_never_show_the_secret_or_the_signature(receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture) -> None:
    body = order_body()
    with caplog.at_level(logging.DEBUG):
        assert deliver(receiver, body).status_code == 200
    assert "wh-1" in caplog.text  # the delivery is logged...
    assert SECRET not in caplog.text and signature_of(body, SECRET) not in caplog.text  # ...its proof is not


def test_unknown_shop_404_unknown_topic_400_and_no_id_400(receiver: WebhookReceiver, landing: LandingStore) -> None:
    body = order_body()
    resp = deliver(receiver, body, shop="other.myshopify.com")
    assert resp.status_code == 404 and "other.myshopify.com" in resp.json()["error"]
    resp = deliver(receiver, body, topic="products/update")
    assert resp.status_code == 400 and "products/update" in resp.json()["error"]
    resp = deliver(receiver, body, webhook_id="")
    assert resp.status_code == 400 and "X-Shopify-Webhook-Id" in resp.json()["error"]
    assert requests.post(receiver.url.replace("/webhooks/shopify", "/other"), data=body, timeout=5).status_code == 404
    assert requests.get(receiver.url, timeout=5).status_code == 405
    assert webhook_batches(landing) == []


def test_a_redelivery_lands_once_also_after_a_restart(store: ShopifyStore, landing: LandingStore) -> None:
    body = order_body()
    with WebhookReceiver([store], landing) as first:
        assert deliver(first, body, webhook_id="wh-7").json()["status"] == "landed"
        again = deliver(first, body, webhook_id="wh-7")
        assert again.status_code == 200 and again.json() == {"status": "duplicate", "webhook_id": "wh-7"}
    with WebhookReceiver([store], landing, port=0) as second:
        assert deliver(second, body, webhook_id="wh-7").json()["status"] == "duplicate"
        # a new delivery of the same order (another webhook id) is a new event and lands
        assert deliver(second, body, webhook_id="wh-8").json()["status"] == "landed"
    assert [m.meta["webhook_id"] for m in webhook_batches(landing)] == ["wh-7", "wh-8"]
    assert (Path(landing.root) / "shopify" / STORE / "webhooks" / SEEN_FILE).exists()


def test_ids_a_crash_left_unrecorded_are_read_back_from_the_manifests(store: ShopifyStore,
                                                                      landing: LandingStore) -> None:
    body = order_body()
    with WebhookReceiver([store], landing) as running:
        assert deliver(running, body, webhook_id="wh-1").json()["status"] == "landed"
    # As if the receiver died after landing wh-2 and before recording it.
    part = Part("shopify.webhook.orders.updated", body, 1, {"X-Shopify-Webhook-Id": "wh-2"})
    landing.write_batch("shopify", STORE, "webhooks", [part], None, source="webhook",
                        meta={"webhook_id": "wh-2", "topic": "orders/updated"})
    with WebhookReceiver([store], landing) as running:
        assert deliver(running, body, webhook_id="wh-2").json()["status"] == "duplicate"
    # A lost seen-ids file is rebuilt from every manifest.
    (Path(landing.root) / "shopify" / STORE / "webhooks" / SEEN_FILE).unlink()
    with WebhookReceiver([store], landing) as running:
        assert deliver(running, body, webhook_id="wh-1").json()["status"] == "duplicate"
        assert deliver(running, body, webhook_id="wh-2").json()["status"] == "duplicate"
    assert len(webhook_batches(landing)) == 2


def test_identical_deliveries_at_the_same_time_land_once(receiver: WebhookReceiver, landing: LandingStore) -> None:
    body = order_body()
    n = 8
    start = threading.Barrier(n)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def send(webhook_id: str) -> None:
        start.wait()
        resp = deliver(receiver, body, webhook_id=webhook_id)
        with lock:
            answers.append(resp)

    threads = [threading.Thread(target=send, args=("wh-race",)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200] * n
    assert sorted(a.json()["status"] for a in answers) == ["duplicate"] * (n - 1) + ["landed"]
    assert len(webhook_batches(landing)) == 1

    # Different deliveries at the same time all land, each in its own batch.
    answers.clear()
    start = threading.Barrier(n)
    threads = [threading.Thread(target=send, args=(f"wh-{i}",)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.json()["status"] for a in answers) == ["landed"] * n
    batches = webhook_batches(landing)
    assert [m.seq for m in batches] == list(range(1, n + 2))
    assert len({m.meta["webhook_id"] for m in batches}) == n + 1


def test_two_receivers_on_one_landing_land_a_delivery_once(store: ShopifyStore, landing: LandingStore) -> None:
    body = order_body()
    with WebhookReceiver([store], landing) as one, WebhookReceiver([store], landing) as two:
        start = threading.Barrier(2)
        statuses: list[str] = []

        def send(receiver: WebhookReceiver) -> None:
            start.wait()
            statuses.append(deliver(receiver, body, webhook_id="wh-both").json()["status"])

        threads = [threading.Thread(target=send, args=(r,)) for r in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(statuses) == ["duplicate", "landed"]
    assert len(webhook_batches(landing)) == 1


def test_refunds_create_lands_with_0_records_and_normalizes_to_nothing(
    receiver: WebhookReceiver, landing: LandingStore, settings: Settings
) -> None:
    refund = json.dumps(json.loads(fixture_bytes("refund.json"))["refund"]).encode()
    resp = deliver(receiver, refund, topic="refunds/create", webhook_id="wh-refund")
    assert resp.status_code == 200 and resp.json()["status"] == "landed"
    assert deliver(receiver, order_body(), topic="orders/updated", webhook_id="wh-order").status_code == 200
    refund_batch, order_batch = webhook_batches(landing)
    assert (refund_batch.records, refund_batch.parts[0].kind, refund_batch.parts[0].records) == (
        0, "shopify.webhook.refunds.create", 0)

    only_refund = normalize_landed_batch(landing, settings, refund_batch)
    assert only_refund.orders.is_empty() and only_refund.lines.is_empty() and only_refund.quarantine.is_empty()

    with Warehouse.open(settings.warehouse_path) as wh:
        result = process_landed(settings, landing, wh)  # raises if loaded + quarantined != landed for a batch
        assert (result.batches, result.landed, result.quarantined, result.inserted) == (2, 1, 0, 1)
        rows = wh.con.execute(
            "SELECT batch_id, records, loaded, quarantined FROM processed_batches ORDER BY batch_id").fetchall()
    assert rows == [(refund_batch.batch_id, 0, 0, 0), (order_batch.batch_id, 1, 1, 0)]


def normalize_landed_batch(landing: LandingStore, settings: Settings, manifest: Manifest) -> Normalized:
    return normalize_batches([(manifest, [(p, landing.read_part(manifest, p)) for p in manifest.parts])], settings)


def test_secrets_argument_and_webhook_secret(landing: LandingStore) -> None:
    bare = ShopifyStore(key=STORE, shop="acme", access_token=Secret(TOKEN))
    with pytest.raises(ConfigError, match="webhook_secret"):
        WebhookReceiver([bare], landing)
    body = order_body()
    with WebhookReceiver([bare], landing, secrets={SHOP: "from-the-caller"}) as running:
        assert deliver(running, body, secret="from-the-caller").status_code == 200
        assert deliver(running, body, secret=SECRET, webhook_id="wh-2").status_code == 401
    both = ShopifyStore(key=STORE, shop="acme", client_secret=Secret(SECRET), webhook_secret=Secret("whsec-1"))
    with WebhookReceiver([both], landing) as running:
        assert deliver(running, body, secret="whsec-1", webhook_id="wh-3").status_code == 200
        assert deliver(running, body, secret=SECRET, webhook_id="wh-4").status_code == 401


def test_serve_webhooks_needs_a_store_with_a_secret(tmp_path: Path) -> None:
    bare = ShopifyStore(key=STORE, shop="acme", access_token=Secret(TOKEN))
    with pytest.raises(ConfigError, match="no enabled Shopify store"):
        serve_webhooks(Settings(home=tmp_path, stores=[bare]), "127.0.0.1", 0)
