"""The WooCommerce webhook receiver over real HTTP: signatures, landing once (restarts, races), ping, the emulator."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
import requests
from polars.testing import assert_frame_equal

from connectors.landing import LandingStore, Manifest, Part
from connectors.woocommerce.config import WooCommerceStore
from connectors.woocommerce.webhooks import (
    SEEN_FILE,
    WooCommerceWebhookReceiver,
    serve_webhooks,
    signature_of,
)
from orderhub import clock
from orderhub.config import Settings
from orderhub.errors import ConfigError
from orderhub.secrets import Secret
from pipelines.common import Normalized, normalize_batches
from pipelines.schema import LINE_SCHEMA
from pipelines.woocommerce import LIST_KIND
from sandbox.emulators.woocommerce import WebhookSender
from tests.woocommerce.helpers import SITES, WooEnv, load_fixture, make_order

SECRET = "wc_webhook_secret_0815"
STORE = "demo"
SITE = "https://shop.example.com"
PROVENANCE = ["batch_id", "landed_at"]
DAY = timedelta(days=1)


@pytest.fixture
def store() -> WooCommerceStore:
    return WooCommerceStore(key=STORE, url=SITE, consumer_key=Secret("ck_x"), consumer_secret=Secret("cs_x"),
                            webhook_secret=Secret(SECRET))


@pytest.fixture
def settings(tmp_path: Path, store: WooCommerceStore) -> Settings:
    return Settings(home=tmp_path, stores=[store])


@pytest.fixture
def landing(settings: Settings) -> LandingStore:
    return LandingStore(settings.landing_root)


@pytest.fixture
def receiver(store: WooCommerceStore, landing: LandingStore) -> Iterator[WooCommerceWebhookReceiver]:
    with WooCommerceWebhookReceiver([store], landing) as running:
        yield running


def order_body() -> bytes:
    """The documented order 727, as WooCommerce posts it (the body of GET /orders/727)."""
    return load_fixture("retrieve_order.v3.example.json")


def deliver(receiver: WooCommerceWebhookReceiver, body: bytes, *, topic: str = "order.updated",
            delivery_id: str = "5001", secret: str | None = SECRET, store: str = STORE,
            signature: str | None = None, source: str | None = SITE + "/") -> requests.Response:
    headers = {"Content-Type": "application/json", "X-WC-Webhook-Topic": topic, "X-WC-Webhook-Resource": "order",
               "X-WC-Webhook-Event": topic.partition(".")[2], "X-WC-Webhook-ID": "12",
               "X-WC-Webhook-Delivery-ID": delivery_id}
    if source is not None:
        headers["X-WC-Webhook-Source"] = source
    if signature is not None:
        headers["X-WC-Webhook-Signature"] = signature
    elif secret is not None:
        headers["X-WC-Webhook-Signature"] = signature_of(body, secret)
    return requests.post(receiver.url_for(store), data=body, headers=headers, timeout=10)


def webhook_batches(landing: LandingStore, store: str = STORE) -> list[Manifest]:
    return list(landing.manifests("woocommerce", store, "webhooks"))


def normalized(landing: LandingStore, settings: Settings, store: str = STORE) -> Normalized:
    batches = [(m, [(p, landing.read_part(m, p)) for p in m.parts]) for m in landing.manifests("woocommerce", store)]
    return normalize_batches(batches, settings)


def by_stream(out: Normalized, stream: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The order rows (without provenance) and line rows of one stream, sorted."""
    orders = out.orders.filter(pl.col("batch_id").str.contains(f"/{stream}/")).drop(PROVENANCE).sort("order_id")
    lines = (out.lines.filter(pl.col("batch_id").str.contains(f"/{stream}/")).select(list(LINE_SCHEMA))
             .sort("order_id", "line_no"))
    return orders, lines


# -- landing once ----------------------------------------------------------------------------------
def test_signed_delivery_lands_once_and_normalizes_like_the_rest_list_record(receiver, landing, settings) -> None:
    body = order_body()
    first = deliver(receiver, body)
    assert first.status_code == 200 and first.json()["status"] == "landed"
    again = deliver(receiver, body)  # WooCommerce's redelivery: the same delivery id
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "delivery_id": "5001"}

    [manifest] = webhook_batches(landing)
    assert manifest.source == "webhook" and manifest.cursor is None and manifest.records == 1
    assert manifest.meta == {"delivery_id": "5001", "webhook_id": "12", "topic": "order.updated"}
    [part] = manifest.parts
    assert part.kind == "woocommerce.webhook.order" and landing.read_part(manifest, part) == body  # byte for byte
    assert "X-WC-Webhook-Signature" not in part.request and part.request["X-WC-Webhook-Delivery-ID"] == "5001"

    # The same order as one record of a REST list page.
    rest = json.dumps([json.loads(body)]).encode()
    landing.write_batch("woocommerce", STORE, "orders", [Part(LIST_KIND, rest, 1, {})], {"since": "x"})
    out = normalized(landing, settings)
    assert out.quarantine.is_empty()
    hook_orders, hook_lines = by_stream(out, "webhooks")
    rest_orders, rest_lines = by_stream(out, "orders")
    assert hook_orders["order_id"].to_list() == ["woocommerce:demo:727"] and hook_lines.height == 2
    assert_frame_equal(hook_orders, rest_orders)  # record_hash too: the same order object
    assert_frame_equal(hook_lines, rest_lines)


@pytest.mark.parametrize("how", ["missing", "wrong_secret", "garbage", "tampered_body"])
def test_forged_or_missing_signature_is_refused_and_nothing_lands(receiver, landing, how: str) -> None:
    body = order_body()
    if how == "missing":
        resp = deliver(receiver, body, secret=None)
    elif how == "wrong_secret":
        resp = deliver(receiver, body, secret=SECRET + "-forged")
    elif how == "garbage":
        resp = deliver(receiver, body, signature="not base64 at all")
    else:
        resp = deliver(receiver, body.replace(b'"29.35"', b'"0.01"'), signature=signature_of(body, SECRET))
    assert resp.status_code == 401 and "X-WC-Webhook-Signature" in resp.json()["error"]
    assert SECRET not in resp.text
    assert webhook_batches(landing) == []
    # A genuine delivery with the same id afterwards still lands: the refused one was not recorded.
    assert deliver(receiver, body).json()["status"] == "landed"


def test_redelivery_after_a_restart_lands_once(store, landing, tmp_path) -> None:
    body = order_body()
    with WooCommerceWebhookReceiver([store], landing) as first:
        assert deliver(first, body, delivery_id="77").json()["status"] == "landed"
    with WooCommerceWebhookReceiver([store], landing) as second:
        assert deliver(second, body, delivery_id="77").json()["status"] == "duplicate"
    # The seen-ids file lost: rebuilt from the landed manifests on start.
    seen = landing_dir(landing) / "woocommerce" / STORE / "webhooks" / SEEN_FILE
    assert seen.exists()
    seen.unlink()
    with WooCommerceWebhookReceiver([store], landing) as third:
        assert deliver(third, body, delivery_id="77").json()["status"] == "duplicate"
        assert deliver(third, body, delivery_id="78").json()["status"] == "landed"
    assert [m.meta["delivery_id"] for m in webhook_batches(landing)] == ["77", "78"]


def landing_dir(landing: LandingStore) -> Path:
    return Path(str(landing.root))


def test_concurrent_duplicates_land_once(store, landing) -> None:
    body = order_body()
    with WooCommerceWebhookReceiver([store], landing) as one, WooCommerceWebhookReceiver([store], landing) as two:
        statuses: list[str] = []
        lock = threading.Lock()

        def post(i: int) -> None:
            resp = deliver(one if i % 2 else two, body, delivery_id="race-1")
            with lock:
                statuses.append(resp.json()["status"])

        threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert Counter(statuses) == {"landed": 1, "duplicate": 7}
    assert len(webhook_batches(landing)) == 1


# -- the other answers -----------------------------------------------------------------------------
def test_ping_is_answered_and_lands_nothing(receiver, landing) -> None:
    resp = requests.post(receiver.url_for(STORE), data=b"webhook_id=12", timeout=10,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 200 and resp.json() == {"status": "pong"}
    assert webhook_batches(landing) == []
    # Anything else without a topic and a signature is no ping.
    assert requests.post(receiver.url_for(STORE), data=b"webhook_id=12&x=1", timeout=10).status_code == 401


def test_unknown_store_path_topic_source_and_missing_delivery_id(receiver, landing) -> None:
    body = order_body()
    assert deliver(receiver, body, store="nope").status_code == 404
    assert requests.post(receiver.url_for("nope"), data=b"webhook_id=1", timeout=10).status_code == 404
    assert requests.post(receiver.url, data=body, timeout=10).status_code == 404  # no store in the path
    assert requests.post(receiver.url_for(STORE) + "/x", data=body, timeout=10).status_code == 404
    assert requests.get(receiver.url_for(STORE), timeout=10).status_code == 405
    assert deliver(receiver, body, topic="product.updated").status_code == 400
    assert deliver(receiver, body, delivery_id="").status_code == 400
    wrong = deliver(receiver, body, source="https://other.example.com/")
    assert wrong.status_code == 403 and "other.example.com" in wrong.json()["error"]
    assert deliver(receiver, body, source=None).json()["status"] == "landed"  # the header is optional
    assert deliver(receiver, body, delivery_id="2", source="HTTPS://Shop.Example.com/").status_code == 200
    assert len(webhook_batches(landing)) == 2


def test_order_deleted_lands_as_a_hint_without_rows(receiver, landing, settings) -> None:
    body = b'{"id":727}'  # all WooCommerce sends for a deleted order
    assert deliver(receiver, body, topic="order.deleted").json()["status"] == "landed"
    [manifest] = webhook_batches(landing)
    assert manifest.records == 0 and manifest.parts[0].kind == "woocommerce.webhook.order.deleted"
    out = normalized(landing, settings)
    assert out.orders.is_empty() and out.quarantine.is_empty()


def test_stores_without_a_secret_are_refused(landing, tmp_path) -> None:
    bare = WooCommerceStore(key=STORE, url=SITE, consumer_key=Secret("ck"), consumer_secret=Secret("cs"))
    with pytest.raises(ConfigError, match="webhook_secret"):
        WooCommerceWebhookReceiver([bare], landing)
    with pytest.raises(ConfigError, match="webhook_secret"):
        serve_webhooks(Settings(home=tmp_path, stores=[bare]), port=0)


# -- end to end with the emulator's sender ---------------------------------------------------------
def test_emulator_webhooks_with_faults_then_polling_reconciles(woo, now, tmp_path) -> None:
    start = now - 2 * DAY
    orders = [make_order(i, start + timedelta(hours=i), versions=[
        (timedelta(0), "pending", "pending"), (timedelta(minutes=30), "unfulfilled", "paid"),
    ] + ([(timedelta(hours=5), "fulfilled", "paid")] if i % 3 == 0 else [])) for i in range(12)]
    env: WooEnv = woo(orders)
    store = env.store().model_copy(update={"webhook_secret": Secret(SECRET)})
    sender = WebhookSender(env.emulator, base_url=env.server.url)
    with WooCommerceWebhookReceiver([store], env.landing) as receiver:
        sender.subscribe("shop-a", receiver.url_for("shop-a"), SECRET)
        assert sender.ping("shop-a") == [200]
        env.emulator.faults.add("webhook_forged", path="^webhook:order.updated$", after=1)
        env.emulator.faults.add("webhook_redeliver", times=2, path="^webhook:order.created$", after=3)
        env.emulator.faults.add("webhook_lost", times=2, path="^webhook:order.updated$", after=5)
        results = sender.deliver_changes("shop-a", start - DAY, clock.now())
    events = sender.events("shop-a", start - DAY, clock.now())
    assert len(events) == 12 * 2 + 4
    statuses = Counter(status for _, _, status in results)
    assert statuses == {200: len(events) - 3 + 2, 401: 1, 0: 2}  # 2 redelivered, 1 forged, 2 lost
    assert [k for k, _ in env.emulator.faults.injected].count("webhook_redeliver") == 2

    batches = webhook_batches(env.landing, "shop-a")
    delivered = [m.meta["delivery_id"] for m in batches]
    assert len(delivered) == len(set(delivered)) == len(events) - 3  # each delivery once; forged and lost not
    refused = {d for _, d, s in results if s in (0, 401)}
    assert refused.isdisjoint(delivered)

    # Polling (a normal sync) brings every order's current version, the missed changes among them.
    assert env.sync().records == 12
    out = env.normalized()
    assert out.quarantine.is_empty()
    latest = out.orders.sort("updated_at", "batch_id").unique("order_id", keep="last")
    truth = {o.order_id: o.version_at(clock.now()) for o in env.source.orders_for("shop-a")}
    assert set(latest["order_id"]) == set(truth)
    for order_id, status, payment in latest.select("order_id", "status", "payment_status").rows():
        version = truth[order_id]
        assert version is not None and (status, payment) == (version.status, version.payment_status), order_id

    # A delivered webhook of an order's current version normalizes exactly like the REST record of it.
    hook_orders, _ = by_stream(out, "webhooks")
    rest_orders, _ = by_stream(out, "orders")
    current = hook_orders.join(rest_orders.select("order_id", "updated_at"), on=["order_id", "updated_at"])
    assert current.height >= 8
    assert_frame_equal(current.sort("order_id"),
                       rest_orders.filter(pl.col("order_id").is_in(current["order_id"])).sort("order_id"))


def test_sender_refuses_unknown_sites(woo) -> None:
    env: WooEnv = woo([])
    with pytest.raises(KeyError):
        WebhookSender(env.emulator).subscribe("nope", "http://127.0.0.1:9/x", SECRET)
    assert set(SITES) == set(env.emulator.sites)
