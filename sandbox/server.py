"""The running sandbox: the generated business, its emulators on loopback, and an orderhub.toml for them."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from orderhub import clock
from orderhub.config import CONFIG_NAME
from sandbox.emulators.base import EmulatorServer

log = logging.getLogger(__name__)

# Sandbox credentials. They open nothing but the local emulators, so they may sit in the config
# file; real stores reference secrets as env:NAME or prefect:BLOCK instead (README.md).
LWA_CLIENT_ID = "amzn1.application-oa2-client.sandbox"
LWA_CLIENT_SECRET = "sandbox-lwa-secret"
AMAZON_REFRESH_TOKEN = "Atzr|sandbox-refresh-token"
SHOPIFY_TOKEN_PREFIX = "shpat_sandbox_"
# The sandbox's Dev Dashboard app: client id/secret for the client-credentials grant, and the secret
# Shopify signs webhooks with. The first Shopify store uses a stored token, the others the grant.
SHOPIFY_CLIENT_ID = "sandbox-dev-dashboard-app"
SHOPIFY_CLIENT_SECRET = "shpss_sandbox_app_secret"
WOO_KEY_PREFIX = "ck_sandbox_"
WOO_SECRET_PREFIX = "cs_sandbox_"
STOREFRONT_USER = "admin"
STOREFRONT_PASSWORD = "sandbox-admin-password"  # opens only the local sample site

DEFAULT_RATES = {"EUR": "1.08", "GBP": "1.27", "CAD": "0.73", "MXN": "0.058", "JPY": "0.0067", "AUD": "0.66"}


def _toml(value: Any) -> str:
    """A TOML value: JSON's strings, numbers, booleans and arrays are TOML too; a dict is an inline table."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


class _Source:
    """The order-source protocol the emulators read: orders per store and lookup by truth id."""

    def __init__(self, business: Any) -> None:
        self.business = business
        self._by_truth = {o.truth_id: o for o in business.orders}

    def orders_for(self, store_key: str) -> list[Any]:
        return self.business.orders_for(store_key)

    def by_truth_id(self, truth_id: str) -> Any:
        return self._by_truth[truth_id]


@dataclass
class SandboxState:
    """What must survive between processes: the generation parameters and the sandbox's epoch."""

    seed: int
    orders: int
    days: int
    start: str  # ISO time the history ends at (the sandbox "now" at creation)

    @classmethod
    def load_or_create(cls, path: Path, *, seed: int, orders: int, days: int) -> SandboxState:
        """Reuse the saved state when the parameters match, so every process sees the same business."""
        if path.exists():
            data = json.loads(path.read_text())
            state = cls(**data)
            if (state.seed, state.orders, state.days) == (seed, orders, days):
                return state
        state = cls(seed, orders, days, clock.now().replace(microsecond=0).isoformat())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state.__dict__, indent=1))
        return state


class Sandbox:
    """Generate the business, serve every channel on loopback, and point ``orderhub.toml`` at it.

    Use as a context manager (tests, ``orderhub demo``) or via ``orderhub sandbox up``.

    Args:
        home: the orderhub home the sandbox serves (its clock and config live there).
        seed, orders, days: generator parameters.
        speed: rate-limit speed-up of the emulators (1.0 = the channels' real budgets).
        ports: fixed ports (amazon, shopify, woocommerce, feed, storefront) for a long-running sandbox;
            0 = free ports.
        write_config: write ``orderhub.toml`` for the sandbox stores (kept if it exists and is not a sandbox one).
    """

    def __init__(
        self,
        home: Path,
        *,
        seed: int = 42,
        orders: int = 3000,
        days: int = 90,
        speed: float = 1.0,
        ports: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0),
        write_config: bool = True,
    ) -> None:
        self.home = Path(home)
        self.seed, self.n_orders, self.days = seed, orders, days
        self.speed = speed
        self.ports = ports
        self.write_config = write_config
        self.servers: dict[str, EmulatorServer] = {}
        self.business: Any = None
        self.clock_file = self.home / "sandbox" / "clock.json"

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Generate (deterministically), start the emulators and write the config."""
        from sandbox.emulators.amazon import AmazonEmulator
        from sandbox.emulators.feed import FeedEmulator, market_export
        from sandbox.emulators.shopify import ShopifyEmulator
        from sandbox.emulators.storefront import StorefrontEmulator
        from sandbox.emulators.woocommerce import WooCommerceEmulator
        from sandbox.generator import DEFAULT_STORES, generate

        self.home.mkdir(parents=True, exist_ok=True)
        clock.use_offset_file(self.clock_file)
        state = SandboxState.load_or_create(
            self.home / "sandbox" / "sandbox.json", seed=self.seed, orders=self.n_orders, days=self.days
        )
        self.stores = list(DEFAULT_STORES)
        self.business = generate(
            seed=state.seed, orders=state.orders, days=state.days, stores=self.stores,
            start=datetime.fromisoformat(state.start),
        )
        source = _Source(self.business)
        amazon = [s for s in self.stores if s.channel == "amazon"]
        shopify = [s for s in self.stores if s.channel == "shopify"]
        woo = [s for s in self.stores if s.channel == "woocommerce"]
        [laden] = [s for s in self.stores if s.channel == "storefront"]  # the sample site serves one shop
        feed = FeedEmulator(speed=self.speed)
        for spec in self.stores:
            if spec.channel == "feed":
                orders = self.business.orders_for(spec.key)
                feed.export(f"{spec.key}.csv", lambda orders=orders: market_export(orders, clock.now()))
        emulators = {
            "amazon": AmazonEmulator(
                source,
                sellers={s.marketplace_id: s.key for s in amazon},
                client_id=LWA_CLIENT_ID,
                client_secret=LWA_CLIENT_SECRET,
                refresh_tokens={AMAZON_REFRESH_TOKEN},
                speed=self.speed,
            ),
            "shopify": ShopifyEmulator(
                source,
                shops={f"{s.key}.myshopify.com": (s.key, SHOPIFY_TOKEN_PREFIX + s.key, s.currency) for s in shopify},
                apps={f"{s.key}.myshopify.com": (SHOPIFY_CLIENT_ID, SHOPIFY_CLIENT_SECRET) for s in shopify},
                bulk_seconds=5.0,  # a small shop's bulk export takes seconds at Shopify
                speed=self.speed,
            ),
            "woocommerce": WooCommerceEmulator(
                source,
                sites={s.key: (WOO_KEY_PREFIX + s.key, WOO_SECRET_PREFIX + s.key) for s in woo},
                speed=self.speed,
            ),
            "feed": feed,
            "storefront": StorefrontEmulator(
                self.business.orders_for(laden.key), username=STOREFRONT_USER, password=STOREFRONT_PASSWORD,
                timezone="Europe/Berlin",
            ),
        }
        for (name, emulator), port in zip(emulators.items(), self.ports, strict=True):
            self.servers[name] = EmulatorServer(emulator, port=port).start()
        if self.write_config:
            self._write_config()
        return self

    def stop(self) -> None:
        """Stop every emulator (the clock file stays, so the home keeps its time)."""
        for server in self.servers.values():
            server.stop()
        self.servers.clear()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- controls ------------------------------------------------------------------------------
    def advance(self, days: float = 1.0) -> datetime:
        """Move the sandbox clock forward: new orders, status changes, refunds and cancellations appear."""
        clock.set_offset(self.clock_file, clock.offset() + timedelta(days=days))
        return clock.now()

    def emulator(self, channel: str) -> Any:
        """The emulator object of a channel (faults: ``sandbox.emulator('amazon').faults.add('429')``)."""
        return self.servers[channel].emulator

    def truth(self) -> Any:
        """Ground truth of what is visible now."""
        return self.business.truth(as_of=clock.now())

    # -- config --------------------------------------------------------------------------------
    def store_configs(self) -> list[dict[str, Any]]:
        """The ``[[stores]]`` tables for the sandbox stores."""
        out: list[dict[str, Any]] = []
        for spec in self.stores:
            url = self.servers[spec.channel].url
            if spec.channel == "amazon":
                out.append({
                    "channel": "amazon", "key": spec.key, "seller_id": spec.seller_id,
                    "marketplace_id": spec.marketplace_id, "refresh_token": AMAZON_REFRESH_TOKEN,
                    "lwa_client_id": LWA_CLIENT_ID, "lwa_client_secret": LWA_CLIENT_SECRET,
                    "endpoint": url, "token_url": f"{url}/auth/o2/token", "has_pii_roles": True,
                    # The emulator builds a report in 60 s / speed: poll as much sooner.
                    "report_poll_s": round(max(0.05, 5.0 / self.speed), 3),
                })
            elif spec.channel == "shopify":
                first = spec.key == next(s.key for s in self.stores if s.channel == "shopify")
                credentials = ({"access_token": SHOPIFY_TOKEN_PREFIX + spec.key} if first else
                               {"client_id": SHOPIFY_CLIENT_ID, "client_secret": SHOPIFY_CLIENT_SECRET})
                out.append({
                    "channel": "shopify", "key": spec.key, "shop": f"{spec.key}.myshopify.com",
                    **credentials, "webhook_secret": SHOPIFY_CLIENT_SECRET, "push_tags": True,
                    "bulk_poll_s": round(max(0.05, 2.0 / self.speed), 3), "endpoint": url,
                })
            elif spec.channel == "woocommerce":
                out.append({
                    "channel": "woocommerce", "key": spec.key, "url": f"{url}/{spec.key}",
                    "consumer_key": WOO_KEY_PREFIX + spec.key, "consumer_secret": WOO_SECRET_PREFIX + spec.key,
                    "currency": spec.currency,
                })
            elif spec.channel == "storefront":
                out.append({
                    "channel": "storefront", "key": spec.key, "url": url, "username": STOREFRONT_USER,
                    "password": STOREFRONT_PASSWORD, "profile": "sample_shop", "currency": spec.currency,
                    "timezone": "Europe/Berlin", "locale": "de_DE",
                    # A loopback site answers in milliseconds: AutoThrottle starts quicker than on the web.
                    "start_delay": 0.05,
                })
            elif spec.channel == "feed":
                from sandbox.emulators.feed import MARKET_COLUMNS, MARKET_STATUSES

                out.append({
                    "channel": "feed", "key": spec.key, "source": [f"{url}/feeds/{spec.key}.csv"],
                    "currency": spec.currency, "mapping": MARKET_COLUMNS,
                    "statuses": {label: status for status, label in MARKET_STATUSES.items()},
                })
        return out

    def _write_config(self) -> None:
        path = self.home / CONFIG_NAME
        if path.exists() and "[sandbox]" not in path.read_text(encoding="utf-8"):
            log.warning("%s is not a sandbox config; leaving it alone", path)
            return
        lines = [
            "# Written by the orderhub sandbox; `orderhub sandbox up` rewrites it with the emulator ports.",
            "# For real stores see README.md (Configuration reference) and keep secrets as env:NAME.",
            'base_currency = "USD"',
            'timezone = "America/New_York"',
            "",
            "[sandbox]",
            "enabled = true",
            f"seed = {self.seed}",
            f"orders = {self.n_orders}",
            f"days = {self.days}",
            "",
            "[thresholds]",
            "# The sandbox holds 90 days of history, so 'at risk' means quiet for 45 days here.",
            "at_risk_after_days = 45",
            "",
            "[rates]",
            *[f'{cur} = "{rate}"' for cur, rate in DEFAULT_RATES.items()],
            "",
        ]
        for store in self.store_configs():
            lines.append("[[stores]]")
            lines.extend(f"{key} = {_toml(value)}" for key, value in store.items())
            lines.append("")
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(lines), encoding="utf-8")
        tmp.replace(path)
