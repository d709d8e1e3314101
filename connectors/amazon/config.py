"""Typed configuration of one Amazon store: a seller account on one marketplace."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from orderhub.secrets import Secret

# Marketplace id -> (region, SP-API endpoint, default currency).
# https://developer-docs.amazon.com/sp-api/docs/marketplace-ids and .../sp-api-endpoints
MARKETPLACES: dict[str, tuple[str, str, str]] = {
    "ATVPDKIKX0DER": ("NA", "https://sellingpartnerapi-na.amazon.com", "USD"),  # US
    "A2EUQ1WTGCTBG2": ("NA", "https://sellingpartnerapi-na.amazon.com", "CAD"),  # CA
    "A1AM78C64UM0Y8": ("NA", "https://sellingpartnerapi-na.amazon.com", "MXN"),  # MX
    "A1F83G8C2ARO7P": ("EU", "https://sellingpartnerapi-eu.amazon.com", "GBP"),  # UK
    "A1PA6795UKMFR9": ("EU", "https://sellingpartnerapi-eu.amazon.com", "EUR"),  # DE
    "A13V1IB3VIYZZH": ("EU", "https://sellingpartnerapi-eu.amazon.com", "EUR"),  # FR
    "APJ6JRA9NG5V4": ("EU", "https://sellingpartnerapi-eu.amazon.com", "EUR"),  # IT
    "A1RKKUPIHCS9HS": ("EU", "https://sellingpartnerapi-eu.amazon.com", "EUR"),  # ES
    "A1VC38T7YXB528": ("FE", "https://sellingpartnerapi-fe.amazon.com", "JPY"),  # JP
    "A39IBJ37TRP1C6": ("FE", "https://sellingpartnerapi-fe.amazon.com", "AUD"),  # AU
}


class AmazonStore(BaseModel):
    """One seller account on one marketplace. Region credentials and cursor are per store."""

    model_config = ConfigDict(extra="forbid")

    channel: Literal["amazon"] = "amazon"
    key: str
    seller_id: str
    marketplace_id: str
    refresh_token: Secret
    lwa_client_id: str
    lwa_client_secret: Secret
    # None = Amazon's real endpoints; the sandbox sets its loopback URLs here.
    endpoint: str | None = None
    token_url: str | None = None
    orders_api: Literal["2026-01-01", "v0"] = "2026-01-01"
    has_pii_roles: bool = False
    enabled: bool = True

    @property
    def region(self) -> str:
        """NA, EU or FE."""
        return MARKETPLACES.get(self.marketplace_id, ("NA", "", ""))[0]

    @property
    def api_endpoint(self) -> str:
        """The SP-API base URL this store talks to."""
        return self.endpoint or MARKETPLACES.get(self.marketplace_id, ("", "https://sellingpartnerapi-na.amazon.com", ""))[1]
