"""orderhub.toml: the one configuration file, typed, loaded from ``$ORDERHUB_HOME``."""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.amazon.config import AmazonStore
from connectors.feed.config import FeedStore
from connectors.shopify.config import ShopifyStore
from connectors.storefront.config import StorefrontStore
from connectors.woocommerce.config import WooCommerceStore
from orderhub.errors import ConfigError

StoreConfig = Annotated[AmazonStore | ShopifyStore | WooCommerceStore | FeedStore | StorefrontStore, Field(discriminator="channel")]

CONFIG_NAME = "orderhub.toml"


def home_dir() -> Path:
    """The home folder: ``$ORDERHUB_HOME`` or ``./var``."""
    return Path(os.environ.get("ORDERHUB_HOME", "var")).resolve()


class Thresholds(BaseModel):
    """RFM thresholds for customer tags (money in the base currency)."""

    model_config = ConfigDict(extra="forbid")

    vip_min_spent: Decimal = Decimal("1000")
    vip_min_orders: int = 5
    at_risk_after_days: int = 90  # no order for this long ...
    at_risk_min_orders: int = 2  # ... by a customer who ordered at least this often


class ExportConfig(BaseModel):
    """Where clean orders go for fulfillment."""

    model_config = ConfigDict(extra="forbid")

    target: Literal["outbox"] = "outbox"
    formats: list[Literal["csv", "jsonl"]] = Field(default_factory=lambda: ["csv", "jsonl"])
    max_batch: int = 5000


class SandboxConfig(BaseModel):
    """Present when this home runs against the embedded sandbox."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    seed: int = 42
    orders: int = 3000
    days: int = 90


class Settings(BaseModel):
    """The whole configuration of one orderhub home."""

    model_config = ConfigDict(extra="forbid")

    home: Path = Field(default_factory=home_dir)
    base_currency: str = "USD"
    timezone: str = "UTC"
    # Units of the base currency per one unit of each currency. The base currency is 1.
    rates: dict[str, Decimal] = Field(default_factory=dict)
    ship_sla_days: int = 2  # ship_by when the channel promises none
    sku_map: dict[str, str] = Field(default_factory=dict)  # channel SKU -> master SKU
    thresholds: Thresholds = Field(default_factory=Thresholds)
    export: ExportConfig = Field(default_factory=ExportConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    crm_url: str | None = None  # SQLAlchemy URL; default sqlite:///$HOME/crm.sqlite
    landing_url: str | None = None  # fsspec URL; default $HOME/landing
    stores: list[StoreConfig] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name like 'Europe/Berlin'") from None
        return value

    @field_validator("stores")
    @classmethod
    def _unique_keys(cls, stores: list[StoreConfig]) -> list[StoreConfig]:
        seen: set[tuple[str, str]] = set()
        for store in stores:
            ident = (store.channel, store.key)
            if ident in seen:
                raise ValueError(f"store {store.channel}:{store.key} is configured twice")
            seen.add(ident)
        return stores

    # Paths of the stores (DESIGN.md: everything relative to ORDERHUB_HOME).
    @property
    def landing_root(self) -> str:
        """Landing location: a local folder or an fsspec URL."""
        return self.landing_url or str(self.home / "landing")

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse file."""
        return self.home / "warehouse.duckdb"

    @property
    def crm_database_url(self) -> str:
        """SQLAlchemy URL of the CRM store."""
        return self.crm_url or f"sqlite:///{self.home / 'crm.sqlite'}"

    @property
    def outbox_dir(self) -> Path:
        """Export batches for fulfillment."""
        return self.home / "outbox"

    @property
    def reports_dir(self) -> Path:
        """Published daily reports."""
        return self.home / "reports"

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone (reports, schedules)."""
        return ZoneInfo(self.timezone)

    def rate(self, currency: str | None) -> Decimal | None:
        """Units of the base currency per unit of ``currency``; None when unknown."""
        if currency is None:
            return None
        if currency == self.base_currency:
            return Decimal(1)
        return self.rates.get(currency)

    def store(self, channel: str, key: str) -> StoreConfig | None:
        """The configured store, or None (imports work without one)."""
        for store in self.stores:
            if store.channel == channel and store.key == key:
                return store
        return None


def load_settings(home: Path | None = None) -> Settings:
    """Read ``orderhub.toml`` from the home folder; defaults when the file does not exist.

    Raises:
        ConfigError: the file is not valid TOML or does not match the schema; the message names the key.
    """
    root = (home or home_dir()).resolve()
    path = root / CONFIG_NAME
    data: dict = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    data["home"] = root
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_input=False)
        )
        raise ConfigError(f"{path}: {problems}. See README.md, 'Configuration reference'.") from None
