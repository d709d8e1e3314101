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
    # Verifies webhook signatures (the app's client secret); defaults to client_secret.
    webhook_secret: Secret | None = None
    # How far the first sync reaches back. Orders created more than 60 days ago need read_all_orders.
    backfill_days: float = 90.0
    # Windows longer than this many days are read with a bulk operation instead of paging (0: never).
    bulk_after_days: float = 7.0
    # Seconds before the first poll of a bulk operation (then x1.5 per poll, at most 30).
    bulk_poll_s: float = 2.0
    # Push orderhub's customer tags (VIP, at-risk, manual ones) to the shop as "orderhub:<tag>".
    push_tags: bool = False
    # Seconds a bulk operation may take before the run stops (its id stays in the cursor; resumed next run).
    bulk_timeout_s: float = 3600.0
    # None = https://{shop}.myshopify.com; the sandbox sets a loopback URL and the shop is sent as Host.
    endpoint: str | None = None
    enabled: bool = True

    @property
    def domain(self) -> str:
        """The shop's myshopify.com domain."""
        return self.shop if self.shop.endswith(".myshopify.com") else f"{self.shop}.myshopify.com"
