"""Typed configuration of one Shopify store."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from orderhub.secrets import Secret


class ShopifyStore(BaseModel):
    """One Shopify shop, with its own credentials, API version, currency and time zone."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["shopify"] = "shopify"
    key: str
    shop: str  # "acme" or "acme.myshopify.com"
    api_version: str = "2026-01"
    access_token: Secret | None = None
    client_id: str | None = None  # client-credentials grant of Dev Dashboard apps
    client_secret: Secret | None = None
    # None = https://{shop}.myshopify.com; the sandbox sets a loopback URL and the shop is sent as Host.
    endpoint: str | None = None
    enabled: bool = True

    @property
    def domain(self) -> str:
        """The shop's myshopify.com domain."""
        return self.shop if self.shop.endswith(".myshopify.com") else f"{self.shop}.myshopify.com"
