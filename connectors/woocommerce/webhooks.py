"""WooCommerce webhook receiver: verified order deliveries land verbatim on the store's ``webhooks`` stream, once each.

Built on the Shopify receiver (connectors/shopify/webhooks.py): the same HTTP server, seen-ids file and
serving. ``POST /webhooks/woocommerce/{store_key}`` answers

    200  landed; a redelivery of a delivery id landed before (not landed again); or WooCommerce's ping
    400  a topic the receiver does not take, or no ``X-WC-Webhook-Delivery-ID``
    401  a missing or wrong ``X-WC-Webhook-Signature`` (checked in constant time)
    403  a valid signature, but ``X-WC-Webhook-Source`` is another site than the store's ``url``
    404  an unknown store key (or another path)
    411 / 413  no ``Content-Length`` / a body over ``MAX_BODY``
    500  the delivery could not be landed: WooCommerce retries it

WooCommerce sends no reliable shop header, so the store is the path's last segment. A webhook's delivery
URL is therefore ``https://receiver/webhooks/woocommerce/{store_key}``, set per webhook in
WooCommerce > Settings > Advanced > Webhooks with the store's ``webhook_secret`` as its secret.

Each delivery is one batch (``source="webhook"``, cursor None), one part:

* ``order.created`` / ``order.updated`` / ``order.restored``: kind ``woocommerce.webhook.order``, 1 record, the
  body being the order exactly as ``GET /wp-json/wc/v3/orders/{id}`` returns it.
* ``order.deleted``: kind ``woocommerce.webhook.order.deleted``, 0 records (a hint). WooCommerce sends only
  ``{"id": N}`` for a deleted (trashed) order (``WC_Webhook::build_payload``), which is no order record.

The part's request keeps the delivery's ``X-WC-Webhook-*`` headers except the signature; the manifest's
meta has ``delivery_id``, ``webhook_id`` and ``topic``. Redeliveries are told apart by
``X-WC-Webhook-Delivery-ID`` (``X-WC-Webhook-ID`` names the webhook, the same on every delivery).

WooCommerce's ping (sent when a webhook is saved: a form body ``webhook_id=N``, no topic, no signature)
is answered 200 and lands nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from connectors.landing import LandingStore, Manifest, Part
from connectors.shopify import webhooks as shopify_webhooks
from connectors.shopify.webhooks import (
    SEEN_FILE,
    Reply,
    WebhookReceiver,
    signature_of,
    verify_signature,
)
from connectors.woocommerce.config import WooCommerceStore
from orderhub.config import Settings
from orderhub.errors import ConfigError

__all__ = ["PATH_PREFIX", "SEEN_FILE", "TOPICS", "WooCommerceWebhookReceiver", "kind_of", "serve_webhooks",
           "signature_of", "verify_signature"]

log = logging.getLogger(__name__)

CHANNEL = "woocommerce"
STREAM = "webhooks"
PATH_PREFIX = "/webhooks/woocommerce/"
ORDER_KIND = "woocommerce.webhook.order"
DELETED_KIND = "woocommerce.webhook.order.deleted"
# Topic -> order records per delivery; order.deleted carries only the id (see the module doc).
TOPICS: dict[str, int] = {"order.created": 1, "order.updated": 1, "order.restored": 1, "order.deleted": 0}
SIGNATURE_HEADER = "X-WC-Webhook-Signature"
DELIVERY_HEADER = "X-WC-Webhook-Delivery-ID"
LANDED_HEADERS = ("X-WC-Webhook-Source", "X-WC-Webhook-Topic", "X-WC-Webhook-Resource", "X-WC-Webhook-Event",
                  "X-WC-Webhook-ID", "X-WC-Webhook-Delivery-ID")
# WC_Webhook::deliver_ping posts exactly this form body, without any X-WC-Webhook-* header.
PING = re.compile(rb"webhook_id=\d+")


def kind_of(topic: str) -> str:
    """The landing part kind of a topic: ``order.deleted`` is a hint kind, every other one an order."""
    return DELETED_KIND if topic == "order.deleted" else ORDER_KIND


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url.strip())
    return parts.scheme.lower(), parts.netloc.lower()


class WooCommerceWebhookReceiver(WebhookReceiver):
    """An HTTP server that verifies WooCommerce webhook deliveries and lands each one once.

    Use as a context manager, or ``start()``/``stop()`` (a background thread), or ``serve_forever()``.

    Args:
        stores: the WooCommerce stores whose deliveries are taken, told apart by the path's store key.
        landing: where deliveries land.
        host: the interface to listen on (a TLS proxy sits in front for shops that need HTTPS).
        port: the port (0: a free one, see ``port``/``url``).
        secrets: the webhook secret per store key; a store not in it uses ``store.webhook_secret``.
        state_dir: where the seen-ids files go (``{state_dir}/{store}/seen.sqlite``); default beside the
            batches, which needs a local landing root.

    Raises:
        ConfigError: a store has no webhook secret, two stores share a key, or the landing root is not
            local and no ``state_dir`` was given.
    """

    channel = CHANNEL

    def __init__(
        self,
        stores: Iterable[WooCommerceStore],
        landing: LandingStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        secrets: Mapping[str, str] | None = None,
        state_dir: str | Path | None = None,
    ) -> None:
        # Not super().__init__: that one takes Shopify stores keyed by shop domain; the rest is shared.
        self._woo_stores: dict[str, WooCommerceStore] = {}
        self._prepare(landing, state_dir)
        try:
            for store in stores:
                if store.key in self._woo_stores:
                    raise ConfigError(f"two woocommerce stores have the key {store.key}")
                secret = (secrets or {}).get(store.key) or (store.webhook_secret.get() if store.webhook_secret else None)
                if not secret:
                    raise ConfigError(f"woocommerce store {store.key} has no webhook_secret: set it to the secret of "
                                      "the shop's webhooks (WooCommerce > Settings > Advanced > Webhooks)")
                self._woo_stores[store.key] = store
                self._add_store(store.key, store.key, secret, "delivery_id")
            self._serve_on(host, port, _Handler)
        except BaseException:
            self._close_seen()
            raise

    # -- the delivery, apart from HTTP -------------------------------------------------------------------
    def receive(self, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Check, verify and land one delivery.

        Args:
            path: the request path (query string allowed).
            headers: the request headers, names in any case.
            body: the raw body.
        """
        lower = {k.lower(): v for k, v in headers.items()}
        route = path.split("?", 1)[0].rstrip("/")
        if not route.startswith(PATH_PREFIX) or "/" in route[len(PATH_PREFIX):]:
            return Reply(404, {"error": f"no such path; WooCommerce webhooks are posted to {PATH_PREFIX}{{store}}"})
        key = route[len(PATH_PREFIX):]
        store = self._woo_stores.get(key)
        if store is None:
            log.warning("woocommerce webhook for unknown store %r refused", key[:100])
            return Reply(404, {"error": f"unknown store {key[:100]!r}: no enabled WooCommerce store has that key"})
        topic = (lower.get("x-wc-webhook-topic") or "").strip()
        if not topic and PING.fullmatch(body.strip()):
            log.info("woocommerce %s: webhook ping (%s) answered", store.key, body.strip()[:40].decode())
            return Reply(200, {"status": "pong"})
        signature = lower.get(SIGNATURE_HEADER.lower())
        if not signature:
            log.warning("woocommerce %s: webhook without signature refused", store.key)
            return Reply(401, {"error": f"{SIGNATURE_HEADER} is missing"})
        if not verify_signature(body, signature, self._secrets[store.key]):
            log.warning("woocommerce %s: webhook with a wrong signature refused", store.key)
            return Reply(401, {"error": f"{SIGNATURE_HEADER} does not match the body: the body was altered or signed "
                               "with another secret"})
        source = (lower.get("x-wc-webhook-source") or "").strip()
        if source and _origin(source) != _origin(store.url):
            log.warning("woocommerce %s: webhook from %s refused, the store is %s", store.key, source[:200], store.url)
            return Reply(403, {"error": f"X-WC-Webhook-Source {source[:200]!r} is not store {store.key}'s site: point "
                               f"that site's webhook at {PATH_PREFIX}{{its own store key}}"})
        if topic not in TOPICS:
            return Reply(400, {"error": f"topic {topic[:100]!r} is not taken; subscribe only to {', '.join(TOPICS)}"})
        delivery_id = (lower.get(DELIVERY_HEADER.lower()) or "").strip()
        if not delivery_id:
            return Reply(400, {"error": f"{DELIVERY_HEADER} is missing: a delivery cannot be deduplicated without it"})
        request = {name: lower[name.lower()] for name in LANDED_HEADERS if name.lower() in lower}
        meta = {"delivery_id": delivery_id, "webhook_id": lower.get("x-wc-webhook-id", "").strip(), "topic": topic}

        def land() -> Manifest:
            part = Part(kind_of(topic), body, TOPICS[topic], request)
            return self.landing.write_batch(CHANNEL, store.key, STREAM, [part], None, source="webhook", meta=meta)

        return self._land_once(store.key, store.key, "delivery_id", delivery_id, topic, land)

    # -- serving (the rest is the Shopify receiver's) ------------------------------------------------------
    @property
    def url(self) -> str:
        """The receiver's root, e.g. ``http://127.0.0.1:54321/webhooks/woocommerce``: append ``/{store_key}``."""
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}{PATH_PREFIX.rstrip('/')}"

    def url_for(self, store_key: str) -> str:
        """The delivery URL of one store's webhooks."""
        return f"{self.url}/{store_key}"

    def start(self) -> WooCommerceWebhookReceiver:
        """Serve in a background thread."""
        super().start()
        return self

    def __enter__(self) -> WooCommerceWebhookReceiver:
        return self.start()


class _Handler(shopify_webhooks._Handler):
    def do_GET(self) -> None:
        self._reply(Reply(405, {"error": f"POST WooCommerce webhooks to {PATH_PREFIX}{{store}}"}), {"Allow": "POST"})

    do_PUT = do_DELETE = do_PATCH = do_GET


def serve_webhooks(settings: Settings, host: str = "127.0.0.1", port: int = 8082) -> None:
    """Receive webhooks for every enabled WooCommerce store of the configuration until interrupted (Ctrl-C).

    Stores without a ``webhook_secret`` are skipped with a warning. A landing root that is not local keeps
    the seen-ids files under ``{home}/webhooks``. The default port is the Shopify receiver's plus one, so
    both can run side by side.

    Raises:
        ConfigError: no enabled WooCommerce store has a webhook_secret.
    """
    stores = [s for s in settings.stores if isinstance(s, WooCommerceStore) and s.enabled]
    usable = []
    for store in stores:
        if store.webhook_secret:
            usable.append(store)
        else:
            log.warning("woocommerce %s: no webhook_secret; its webhooks are not received", store.key)
    if not usable:
        raise ConfigError("no enabled WooCommerce store has a webhook_secret in orderhub.toml: nothing to receive "
                          "webhooks for")
    landing = LandingStore(settings.landing_root)
    state_dir = None if shopify_webhooks._local_path(landing) is not None else settings.home / "webhooks"
    receiver = WooCommerceWebhookReceiver(usable, landing, host=host, port=port, state_dir=state_dir)
    log.info("receiving WooCommerce webhooks for %s at %s/{store}", ", ".join(s.key for s in usable), receiver.url)
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        log.info("webhook receiver stopped")
    finally:
        receiver.stop()
