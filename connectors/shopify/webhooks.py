"""Shopify webhook receiver: verified deliveries land verbatim on the store's ``webhooks`` stream, once each.

Contract: README.md "Webhooks". ``POST /webhooks/shopify`` answers

    200  landed, or a redelivery of a webhook id landed before (not landed again)
    400  a topic the receiver does not take, or no ``X-Shopify-Webhook-Id``
    401  a missing or wrong ``X-Shopify-Hmac-Sha256`` (checked in constant time)
    404  an unknown ``X-Shopify-Shop-Domain`` (or another path)
    411 / 413  no ``Content-Length`` / a body over ``MAX_BODY``
    500  the delivery could not be landed: Shopify retries it

Each delivery is one batch (``source="webhook"``, cursor None: the stream has no cursor, and None keeps
the previous one, which is None too), one part of kind ``shopify.webhook.{topic with / as .}``, body =
the raw body, request = the delivery's headers except the HMAC, and ``meta.webhook_id``.

Dedupe: the webhook ids landed for a store are kept in a small SQLite file, by default
``{landing root}/shopify/{store}/webhooks/seen.sqlite`` beside the batches (landing ignores files that
are not batch folders). Checking the id, landing the batch and recording the id happen under one lock:
a thread lock and SQLite's write lock (``BEGIN IMMEDIATE``), so two identical deliveries at once, from
threads or from two receiver processes on one host, land once. A crash between landing and recording
leaves the id unrecorded in at most the newest batch; opening the file reads it back from that batch's
manifest (and rebuilds the whole file from the manifests when it is missing).

Secrets: the HMAC key of a store is ``store.webhook_secret or store.client_secret`` (the app's client
secret), or the ``secrets`` argument keyed by shop domain, which wins. Neither the secret nor the
signature header is ever logged or echoed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import fsspec

from connectors.landing import LandingStore, Manifest, Part
from connectors.shopify.config import ShopifyStore
from orderhub.config import Settings
from orderhub.errors import ConfigError
from orderhub.log import register_secret

log = logging.getLogger(__name__)

CHANNEL = "shopify"
STREAM = "webhooks"
PATH = "/webhooks/shopify"
# Topic -> order records per delivery. refunds/create is a hint (0 records): pipelines/shopify.py says why.
TOPICS: dict[str, int] = {"orders/create": 1, "orders/updated": 1, "orders/cancelled": 1, "refunds/create": 0}
# Kept in the part's request (README.md "Webhooks"); the HMAC is proof, not data, and is never stored.
LANDED_HEADERS = ("X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id", "X-Shopify-Event-Id",
                  "X-Shopify-API-Version", "X-Shopify-Triggered-At")
HMAC_HEADER = "X-Shopify-Hmac-Sha256"
MAX_BODY = 16 * 1024 * 1024  # an order with hundreds of lines is well under 1 MiB
SEEN_FILE = "seen.sqlite"


def signature_of(body: bytes, secret: str) -> str:
    """``X-Shopify-Hmac-Sha256`` of a body: base64 of HMAC-SHA256 of the raw bytes with the app's secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode("ascii")


def verify_signature(body: bytes, signature: str | None, secret: str) -> bool:
    """Whether ``signature`` (the header's value) signs ``body`` with ``secret``, compared in constant time.

    https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook
    """
    if not signature or not secret:
        return False
    return hmac.compare_digest(signature_of(body, secret).encode("ascii"), signature.strip().encode("utf-8"))


def kind_of(topic: str) -> str:
    """The landing part kind of a topic: ``orders/updated`` -> ``shopify.webhook.orders.updated``."""
    return f"shopify.webhook.{topic.replace('/', '.')}"


@dataclass(frozen=True)
class Reply:
    """What the receiver answers: an HTTP status and a small JSON body."""

    status: int
    body: dict[str, Any]


class SeenDeliveries:
    """The delivery ids landed for one store (SQLite), and the lock under which a delivery lands.

    Args:
        path: the SQLite file.
        landing: where the store's ``webhooks`` batches are, to recover ids a crash left unrecorded.
        store_key: the store's key.
        channel: the store's channel (where its ``webhooks`` batches land).
        id_key: the manifest meta key that holds a batch's delivery id.
    """

    def __init__(self, path: Path, landing: LandingStore, store_key: str, *, channel: str = CHANNEL,
                 id_key: str = "webhook_id") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._landing = landing
        self._store = store_key
        self._channel = channel
        self._id_key = id_key
        self._lock = threading.Lock()
        # Used only under self._lock; isolation_level=None: transactions are explicit (BEGIN IMMEDIATE).
        self._con = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS deliveries (webhook_id TEXT PRIMARY KEY, topic TEXT, batch_id TEXT NOT NULL,"
            " seq INTEGER NOT NULL, landed_at TEXT NOT NULL)"
        )
        self._recover()

    def _record(self, webhook_id: str, manifest: Manifest) -> None:
        self._con.execute(
            "INSERT OR IGNORE INTO deliveries VALUES (?, ?, ?, ?, ?)",
            (webhook_id, manifest.meta.get("topic"), manifest.batch_id, manifest.seq, manifest.landed_at),
        )

    def _recover(self) -> None:
        """Record ids of landed batches the file misses: all of them when it is new, else the newest batch."""
        with self._lock, self._write():
            empty = self._con.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
            if empty:
                manifests: Iterable[Manifest] = self._landing.manifests(self._channel, self._store, STREAM)
            else:
                latest = self._landing.latest_manifest(self._channel, self._store, STREAM)
                manifests = [latest] if latest else []
            for manifest in manifests:
                if manifest.meta.get(self._id_key):
                    self._record(str(manifest.meta[self._id_key]), manifest)

    @contextmanager
    def _write(self) -> Iterator[None]:
        # BEGIN IMMEDIATE takes SQLite's write lock now, so another process checking the same id waits.
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    def land_once(self, webhook_id: str, land: Callable[[], Manifest]) -> Manifest | None:
        """Call ``land()`` (which returns the landed manifest) unless ``webhook_id`` was landed before.

        Returns:
            The new manifest, or None for a redelivery.
        """
        with self._lock:
            try:
                with self._write():
                    if self._con.execute("SELECT 1 FROM deliveries WHERE webhook_id = ?", (webhook_id,)).fetchone():
                        return None
                    manifest = land()
                    self._record(webhook_id, manifest)
                    return manifest
            except BaseException:
                # If the batch landed but the id did not commit, the newest manifest has it: read it back.
                try:
                    self._recover_unlocked()
                except (OSError, sqlite3.Error):
                    log.warning("%s %s: webhook ids could not be recovered now; they are on the next start",
                                self._channel, self._store)
                raise

    def _recover_unlocked(self) -> None:
        latest = self._landing.latest_manifest(self._channel, self._store, STREAM)
        if latest is not None and latest.meta.get(self._id_key):
            with self._write():
                self._record(str(latest.meta[self._id_key]), latest)

    def __contains__(self, webhook_id: object) -> bool:
        with self._lock:
            return self._con.execute("SELECT 1 FROM deliveries WHERE webhook_id = ?", (webhook_id,)).fetchone() is not None

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._con.close()


def _local_path(landing: LandingStore) -> Path | None:
    fs, base = fsspec.core.url_to_fs(landing.root)
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return Path(base) if {"file", "local"} & set(protocols) else None


class WebhookReceiver:
    """An HTTP server that verifies Shopify webhook deliveries and lands each one once.

    Use as a context manager, or ``start()``/``stop()`` (a background thread), or ``serve_forever()``.

    Args:
        stores: the Shopify stores whose deliveries are taken, told apart by ``X-Shopify-Shop-Domain``.
        landing: where deliveries land.
        host: the interface to listen on; Shopify needs HTTPS, so a TLS proxy sits in front.
        port: the port (0: a free one, see ``port``/``url``).
        secrets: the HMAC secret per shop domain; a store not in it uses
            ``store.webhook_secret or store.client_secret``.
        state_dir: where the seen-ids files go (``{state_dir}/{store}/seen.sqlite``); default beside the
            batches, which needs a local landing root.

    Raises:
        ConfigError: a store has no secret, two stores share a shop domain, or the landing root is not
            local and no ``state_dir`` was given.
    """

    channel = CHANNEL  # the channel whose deliveries land (a subclass for another channel sets its own)

    def __init__(
        self,
        stores: Iterable[ShopifyStore],
        landing: LandingStore,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        secrets: Mapping[str, str] | None = None,
        state_dir: str | Path | None = None,
    ) -> None:
        given = {domain.lower(): value for domain, value in (secrets or {}).items()}
        self._stores: dict[str, ShopifyStore] = {}
        self._prepare(landing, state_dir)
        try:
            for store in stores:
                domain = store.domain.lower()
                if domain in self._stores:
                    raise ConfigError(f"shopify stores {self._stores[domain].key} and {store.key} share the shop "
                                      f"domain {domain}; webhooks cannot tell them apart")
                ref = store.webhook_secret or store.client_secret
                secret = given.get(domain) or (ref.get() if ref else None)
                if not secret:
                    raise ConfigError(f"shopify store {store.key} has no secret to verify webhooks: set its "
                                      "webhook_secret (or client_secret) to the app's client secret")
                self._stores[domain] = store
                self._add_store(domain, store.key, secret, "webhook_id")
            self._serve_on(host, port, _Handler)
        except BaseException:
            self._close_seen()
            raise

    # -- shared by every channel's receiver ----------------------------------------------------------------
    def _prepare(self, landing: LandingStore, state_dir: str | Path | None) -> None:
        """Where the seen-ids files go: ``{state_dir}/{store}``, or beside the batches on a local landing."""
        self.landing = landing
        self._local = _local_path(landing)
        if state_dir is None and self._local is None:
            raise ConfigError(f"landing {landing.root} is not a local folder: give the webhook receiver a local "
                              "state_dir for the ids of landed deliveries")
        self._state = Path(state_dir) if state_dir is not None else None
        self._secrets: dict[str, str] = {}
        self._seen: dict[str, SeenDeliveries] = {}
        self._thread: threading.Thread | None = None

    def _add_store(self, name: str, store_key: str, secret: str, id_key: str) -> None:
        """Take deliveries for one store, told apart by ``name``: its secret and seen-ids file."""
        register_secret(secret)
        self._secrets[name] = secret
        # Default: beside the batches, {landing}/{channel}/{store}/webhooks/seen.sqlite.
        where = self._state / store_key if self._state is not None else Path(str(self._local)) / self.channel / store_key / STREAM
        self._seen[name] = SeenDeliveries(where / SEEN_FILE, self.landing, store_key, channel=self.channel,
                                          id_key=id_key)

    def _serve_on(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server((host, port), handler)
        self._server.receiver = self

    def _land_once(self, name: str, store_key: str, id_key: str, delivery_id: str, topic: str,
                   land: Callable[[], Manifest]) -> Reply:
        """Land a verified delivery unless its id landed before; the reply the sender gets."""
        try:
            manifest = self._seen[name].land_once(delivery_id, land)
        except Exception:  # whatever stopped the landing, the sender must retry the delivery
            log.exception("%s %s: delivery %s (%s) could not be landed", self.channel, store_key, delivery_id, topic)
            return Reply(500, {"error": "the delivery could not be landed; retry it"})
        if manifest is None:
            log.info("%s %s: delivery %s (%s) was landed before; not landed again", self.channel, store_key,
                     delivery_id, topic)
            return Reply(200, {"status": "duplicate", id_key: delivery_id})
        log.info("%s %s: delivery %s (%s) landed as %s", self.channel, store_key, delivery_id, topic, manifest.batch_id)
        return Reply(200, {"status": "landed", "batch_id": manifest.batch_id})

    # -- the delivery, apart from HTTP -------------------------------------------------------------------
    def receive(self, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Check, verify and land one delivery.

        Args:
            path: the request path (query string allowed).
            headers: the request headers, names in any case.
            body: the raw body.
        """
        lower = {k.lower(): v for k, v in headers.items()}
        if path.split("?", 1)[0].rstrip("/") != PATH:
            return Reply(404, {"error": f"no such path; Shopify webhooks are posted to {PATH}"})
        domain = (lower.get("x-shopify-shop-domain") or "").strip().lower()
        store = self._stores.get(domain)
        if store is None:
            log.warning("shopify webhook for unknown shop %r refused", domain[:100])
            return Reply(404, {"error": f"unknown shop domain {domain[:100]!r}: no enabled Shopify store has it"
                               if domain else "X-Shopify-Shop-Domain is missing"})
        signature = lower.get(HMAC_HEADER.lower())
        if not signature:
            log.warning("shopify %s: webhook without signature refused", store.key)
            return Reply(401, {"error": f"{HMAC_HEADER} is missing"})
        if not verify_signature(body, signature, self._secrets[domain]):
            log.warning("shopify %s: webhook with a wrong signature refused", store.key)
            return Reply(401, {"error": f"{HMAC_HEADER} does not match the body: the body was altered or signed "
                               "with another secret"})
        topic = (lower.get("x-shopify-topic") or "").strip()
        if topic not in TOPICS:
            return Reply(400, {"error": f"topic {topic[:100]!r} is not taken; subscribe only to {', '.join(TOPICS)}"})
        webhook_id = (lower.get("x-shopify-webhook-id") or "").strip()
        if not webhook_id:
            return Reply(400, {"error": "X-Shopify-Webhook-Id is missing: a delivery cannot be deduplicated without it"})
        request = {name: lower[name.lower()] for name in LANDED_HEADERS if name.lower() in lower}

        def land() -> Manifest:
            part = Part(kind_of(topic), body, TOPICS[topic], request)
            return self.landing.write_batch(CHANNEL, store.key, STREAM, [part], None, source="webhook",
                                            meta={"webhook_id": webhook_id, "topic": topic})

        return self._land_once(domain, store.key, "webhook_id", webhook_id, topic, land)

    # -- serving -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port listened on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The delivery URL, e.g. ``http://127.0.0.1:54321/webhooks/shopify``."""
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}{PATH}"

    def start(self) -> WebhookReceiver:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.channel}-webhooks", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop()`` is called from another one (or KeyboardInterrupt)."""
        self._server.serve_forever(poll_interval=0.5)

    def stop(self) -> None:
        """Stop serving, close the socket and the seen-ids files."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self._close_seen()

    def _close_seen(self) -> None:
        for seen in self._seen.values():
            seen.close()
        self._seen = {}

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    # stop() waits for requests in flight (server_close joins their threads) before closing the seen-ids files;
    # the handler's socket timeout keeps a stalled client from holding that up for long.
    daemon_threads = False
    block_on_close = True
    receiver: WebhookReceiver


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "orderhub-webhooks"
    sys_version = ""
    timeout = 30  # seconds a client may stall while sending; Shopify itself gives up after 5

    def _reply(self, reply: Reply, extra: Mapping[str, str] | None = None) -> None:
        data = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # http.server names handlers do_<METHOD>
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self._reply(Reply(411, {"error": "Content-Length is required"}))
            return
        size = int(length)
        if size > MAX_BODY:
            self.close_connection = True
            self._reply(Reply(413, {"error": f"body over {MAX_BODY} bytes"}))
            return
        body = self.rfile.read(size)
        if len(body) != size:
            self._reply(Reply(400, {"error": f"body ended after {len(body)} of {size} bytes"}))
            return
        self._reply(self.server.receiver.receive(self.path, dict(self.headers.items()), body))

    def do_GET(self) -> None:
        self._reply(Reply(405, {"error": f"POST Shopify webhooks to {PATH}"}), {"Allow": "POST"})

    do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        # The request line and status only: headers (the HMAC among them) never reach the log.
        log.debug("webhook request %s: " + format, self.address_string(), *args)


def serve_webhooks(settings: Settings, host: str = "127.0.0.1", port: int = 8081) -> None:
    """Receive webhooks for every enabled Shopify store of the configuration until interrupted (Ctrl-C).

    Stores without a webhook secret are skipped with a warning. A landing root that is not local keeps
    the seen-ids files under ``{home}/webhooks``.

    Raises:
        ConfigError: no enabled Shopify store has a secret to verify webhooks with.
    """
    stores = [s for s in settings.stores if isinstance(s, ShopifyStore) and s.enabled]
    usable = []
    for store in stores:
        if store.webhook_secret or store.client_secret:
            usable.append(store)
        else:
            log.warning("shopify %s: no webhook_secret or client_secret; its webhooks are not received", store.key)
    if not usable:
        raise ConfigError("no enabled Shopify store has a webhook_secret or client_secret in orderhub.toml: "
                          "nothing to receive webhooks for")
    landing = LandingStore(settings.landing_root)
    state_dir = None if _local_path(landing) is not None else settings.home / "webhooks"
    receiver = WebhookReceiver(usable, landing, host=host, port=port, state_dir=state_dir)
    log.info("receiving Shopify webhooks for %s at %s", ", ".join(s.key for s in usable), receiver.url)
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        log.info("webhook receiver stopped")
    finally:
        receiver.stop()
