"""Shopify's webhooks, sent by the emulator with real signatures, received and landed once; polling reconciles."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from connectors.base import sync_stream
from connectors.shopify.streams import ShopifyOrders
from connectors.shopify.webhooks import WebhookReceiver
from orderhub import clock
from orderhub.secrets import Secret
from tests.shopify.helpers import SHOP, World, latest, normalize_landed

SECRET = "shpss_app_secret"


def receiver(world: World) -> WebhookReceiver:
    store = world.store.model_copy(update={"webhook_secret": Secret(SECRET)})
    return WebhookReceiver([store], world.landing, port=0)


def delivered(world: World) -> list[str]:
    """The webhook id of every landed delivery (repeats kept)."""
    return [m.meta["webhook_id"] for m in world.landing.manifests(channel="shopify", stream="webhooks")]


def assert_latest_match_truth(world: World, subset: set[str] | None = None) -> None:
    out = normalize_landed(world.landing, world.settings)
    assert out.quarantine.is_empty(), out.quarantine["reason"].to_list()
    rows = {r["external_id"]: r for r in latest(out.orders).to_dicts()}
    truth = world.visible()
    want = subset if subset is not None else set(truth)
    assert want <= set(rows)
    for ext in want:
        version = truth[ext]
        assert (rows[ext]["status"], rows[ext]["payment_status"]) == (version.status, version.payment_status), ext


def test_signed_webhooks_land_once_each_and_give_the_orders_current_state(world: World) -> None:
    with receiver(world) as rx:
        world.emulator.webhooks.subscribe(SHOP, rx.url, SECRET)
        sent = world.emulator.webhooks.deliver_changes(SHOP, world.t0 - timedelta(days=30), clock.now())
    assert sent and all(status == 200 for _, _, status in sent)
    ids = delivered(world)
    assert Counter(ids) == Counter(webhook_id for _, webhook_id, _ in sent)  # one batch per delivery, none twice
    topics = Counter(topic for topic, _, _ in sent)
    assert topics["orders/create"] and topics["orders/updated"] and topics["refunds/create"]
    assert_latest_match_truth(world)


def test_forged_redelivered_and_lost_webhooks(world: World) -> None:
    since = world.t0 - timedelta(days=30)
    world.emulator.faults.add("webhook_forged", path="webhook:orders/create", times=2)
    world.emulator.faults.add("webhook_redeliver", path="webhook:orders/updated", times=3)
    world.emulator.faults.add("webhook_lost", path="webhook:orders/updated", times=2, after=3)
    with receiver(world) as rx:
        world.emulator.webhooks.subscribe(SHOP, rx.url, SECRET)
        sent = world.emulator.webhooks.deliver_changes(SHOP, since, clock.now())
    assert sum(1 for _, _, status in sent if status == 401) == 2  # forgeries refused
    ids = delivered(world)
    assert len(ids) == len(set(ids))  # a redelivery lands once
    accepted = {webhook_id for _, webhook_id, status in sent if status == 200}
    assert set(ids) == accepted
    # Webhooks get lost and forged ones are refused: the next poll reconciles everything.
    poll = ShopifyOrders(world.store, start=since, client=world.client())
    sync_stream(poll, world.landing)
    assert_latest_match_truth(world)


def test_the_receiver_refuses_a_store_it_does_not_know(world: World) -> None:
    import requests

    with receiver(world) as rx:
        res = requests.post(rx.url, data=b"{}", headers={"X-Shopify-Shop-Domain": "other.myshopify.com",
                                                         "X-Shopify-Topic": "orders/create",
                                                         "X-Shopify-Hmac-Sha256": "x", "X-Shopify-Webhook-Id": "1"},
                            timeout=5)
    assert res.status_code == 404 and not delivered(world)
