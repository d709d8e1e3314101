"""Typed configuration of one WooCommerce shop."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orderhub.secrets import Secret


class WooCommerceStore(BaseModel):
    """One WooCommerce site (REST API v3)."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["woocommerce"] = "woocommerce"
    key: str
    url: str  # the site root, e.g. https://shop.example.com
    consumer_key: Secret
    consumer_secret: Secret
    currency: str | None = None
    # Custom order statuses (plugins add them) mapped to a canonical WooCommerce status.
    custom_statuses: dict[str, str] = Field(default_factory=dict)
    # The secret set on the shop's webhooks (WooCommerce > Settings > Advanced > Webhooks); each webhook has
    # its own, and WooCommerce does not fall back to the API keys, so neither do we.
    webhook_secret: Secret | None = None
    enabled: bool = True
