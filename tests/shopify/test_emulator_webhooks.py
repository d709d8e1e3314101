"""The Shopify emulator's webhook sender against a small receiver on loopback: topics, payloads, headers, HMAC, faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from sandbox.emulators.shopify import ShopifyEmulator
from tests.shopify.conftest import SHOPS
from tests.shopify.helpers import SHOP, TOKEN, World, fixture_bytes

SECRET = "shpss_app_secret"
HEADERS = ("X-Shopify-Topic", "X-Shopify-Hmac-Sha256", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id",
           "X-Shopify-Event-Id", "X-Shopify-API-Version", "X-Shopify-Triggered-At")


@dataclass
class Delivery:
    """One POST the receiver got."""

    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def topic(self) -> str:
        return self.headers["X-Shopify-Topic"]

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """A webhook endpoint as an app runs one: checks the HMAC over the raw body, 401 if it does not match."""

    def __init__(self, secret: str) -> None:
        self.deliveries: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
                given = self.headers.get("X-Shopify-Hmac-Sha256") or ""
                verified = hmac.compare_digest(base64.b64encode(digest).decode(), given)
                receiver.deliveries.append(Delivery(dict(self.headers.items()), body, verified))
                self.send_response(200 if verified else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver(world: World) -> Iterator[Receiver]:
    world.emulator.__init__(world.source, shops=SHOPS, speed=1000.0)  # type: ignore[misc]
    running = Receiver(SECRET)
    world.emulator.webhooks.subscribe(SHOP, running.url, SECRET)
    yield running
    running.stop()
    world.emulator.faults.clear()


def sender(world: World) -> Any:
    emulator = world.emulator
    assert isinstance(emulator, ShopifyEmulator)
    return emulator.webhooks


# Topics of the acme orders of tests/shopify/helpers.business from 30 days before t0 to 2 days after.
EXPECTED = {"orders/create": 12, "orders/updated": 7, "orders/cancelled": 2, "refunds/create": 2}


def test_every_change_is_delivered_signed_with_shopifys_headers(world: World, receiver: Receiver) -> None:
    t0 = world.t0
    results = sender(world).deliver_changes(SHOP, t0 - timedelta(days=30), t0 + timedelta(days=2))
    assert Counter(topic for topic, _, _ in results) == EXPECTED
    assert {status for _, _, status in results} == {200}
    got = receiver.deliveries
    assert [d.topic for d in got] == [topic for topic, _, _ in results]
    assert [d.headers["X-Shopify-Webhook-Id"] for d in got] == [wid for _, wid, _ in results]
    assert all(d.verified for d in got)
    for d in got:
        assert set(HEADERS) <= set(d.headers)
        assert d.headers["X-Shopify-Shop-Domain"] == SHOP and d.headers["X-Shopify-API-Version"] == "2026-01"
        assert d.headers["Content-Type"] == "application/json"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", d.headers["X-Shopify-Triggered-At"])
    assert len({d.headers["X-Shopify-Webhook-Id"] for d in got}) == len(got)
    stamps = [d.headers["X-Shopify-Triggered-At"] for d in got]
    assert stamps == sorted(stamps)  # oldest change first


def test_payloads_are_the_rest_order_and_the_rest_refund(world: World, receiver: Receiver) -> None:
    t0 = world.t0
    sender(world).deliver_changes(SHOP, t0 - timedelta(days=30), t0)
    by_topic: dict[str, list[Delivery]] = {}
    for d in receiver.deliveries:
        by_topic.setdefault(d.topic, []).append(d)
    # The last delivery of an order carries what GET orders/{id}.json shows now.
    last = [d for d in receiver.deliveries if d.topic != "refunds/create" and d.payload["id"] == 5000000004][-1]
    shown = requests.get(world.server.url + "/admin/api/2026-01/orders/5000000004.json",
                         headers={"Host": SHOP, "X-Shopify-Access-Token": TOKEN}, timeout=5).json()["order"]
    assert last.payload == shown
    [cancelled] = by_topic["orders/cancelled"]  # order 5; order 7 cancels after t0
    assert cancelled.payload["id"] == 5000000005 and cancelled.payload["cancelled_at"] is not None
    [refund] = by_topic["refunds/create"]
    real = json.loads(fixture_bytes("refund.json"))["refund"]
    assert set(real) <= set(refund.payload) and refund.payload["order_id"] == 5000000004
    assert set(real["transactions"][0]) <= set(refund.payload["transactions"][0])
    assert refund.payload["transactions"][0]["amount"] == "7.99"
    # The refund and the update of one version are one event; the create of an order is another.
    update = next(d for d in by_topic["orders/updated"] if d.payload["id"] == 5000000004
                  and d.payload["financial_status"] == "partially_refunded")
    assert update.headers["X-Shopify-Event-Id"] == refund.headers["X-Shopify-Event-Id"]
    assert update.headers["X-Shopify-Webhook-Id"] != refund.headers["X-Shopify-Webhook-Id"]
    # The HMAC is over the raw UTF-8 bytes (order 3's buyer is Zoë Åberg-Núñez).
    zoe = next(d for d in by_topic["orders/create"] if d.payload["id"] == 5000000003)
    assert "Zoë".encode() in zoe.body and zoe.verified


def test_webhook_ids_are_stable_per_order_version_and_topic(world: World, receiver: Receiver) -> None:
    t0 = world.t0
    window = (t0 - timedelta(days=30), t0 + timedelta(days=2))
    first = sender(world).deliver_changes(SHOP, *window)
    again = sender(world).deliver_changes(SHOP, *window)
    assert first == again
    later = sender(world).deliver_changes(SHOP, t0, window[1])  # a window of its own: the same ids for its part
    assert set(later) < set(first)
    assert Counter(topic for topic, _, _ in later) == {"orders/create": 2, "orders/updated": 2,
                                                       "orders/cancelled": 1, "refunds/create": 1}


def test_webhook_forged_is_refused_by_the_receiver(world: World, receiver: Receiver) -> None:
    world.emulator.faults.add("webhook_forged", path="webhook:orders/create")
    results = sender(world).deliver_changes(SHOP, world.t0 - timedelta(days=30), world.t0)
    assert results[0][2] == 401 and {status for _, _, status in results[1:]} == {200}
    assert [d.verified for d in receiver.deliveries].count(False) == 1
    assert world.emulator.faults.injected == [("webhook_forged", "webhook:orders/create")]


def test_webhook_redeliver_sends_the_same_delivery_twice(world: World, receiver: Receiver) -> None:
    world.emulator.faults.add("webhook_redeliver", path="webhook:refunds/create")
    results = sender(world).deliver_changes(SHOP, world.t0 - timedelta(days=30), world.t0)
    refunds = [d for d in receiver.deliveries if d.topic == "refunds/create"]
    assert len(refunds) == 2 and refunds[0].body == refunds[1].body and refunds[0].headers == refunds[1].headers
    assert [r for r in results if r[0] == "refunds/create"] == [("refunds/create",
                                                                 refunds[0].headers["X-Shopify-Webhook-Id"], 200)] * 2


def test_webhook_lost_is_not_sent(world: World, receiver: Receiver) -> None:
    world.emulator.faults.add("webhook_lost", path="webhook:orders/cancelled")
    results = sender(world).deliver_changes(SHOP, world.t0 - timedelta(days=30), world.t0)
    assert [(topic, status) for topic, _, status in results if topic == "orders/cancelled"] == [
        ("orders/cancelled", 0)]
    assert not [d for d in receiver.deliveries if d.topic == "orders/cancelled"]
    assert len(receiver.deliveries) == len(results) - 1


def test_deliver_one_payload_and_a_dead_endpoint(world: World, receiver: Receiver) -> None:
    [(topic, webhook_id, status)] = sender(world).deliver(SHOP, "orders/updated", {"id": 1, "note": "ünïcode"},
                                                          webhook_id="fixed-id")
    assert (topic, webhook_id, status) == ("orders/updated", "fixed-id", 200)
    [d] = receiver.deliveries
    assert d.verified and d.payload == {"id": 1, "note": "ünïcode"} and d.body == '{"id":1,"note":"ünïcode"}'.encode()
    receiver.stop()
    assert sender(world).deliver(SHOP, "orders/updated", {"id": 1})[0][2] == 0  # nobody listens: status 0
    with pytest.raises(KeyError):
        sender(world).subscribe("nobody.myshopify.com", receiver.url, SECRET)
