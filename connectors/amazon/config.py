"""Typed configuration of one Amazon store: a seller account on one marketplace."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


REGION_ENDPOINTS = {
    "NA": "https://sellingpartnerapi-na.amazon.com",
    "EU": "https://sellingpartnerapi-eu.amazon.com",
    "FE": "https://sellingpartnerapi-fe.amazon.com",
}


class AmazonStore(BaseModel):
    """One seller account in one SP-API region, on one or more of that region's marketplaces.

    NA, EU and FE are separate endpoints with separate authorizations: a seller on Amazon.com and
    Amazon.de configures two stores, each with that region's refresh token, and each keeps its own
    cursor. Marketplaces of one region share every call (``marketplaceIds`` lists them all).
    """

    model_config = ConfigDict(extra="forbid")

    channel: Literal["amazon"] = "amazon"
    key: str
    seller_id: str
    marketplace_id: str | None = None
    marketplace_ids: list[str] = Field(default_factory=list)
    region: Literal["NA", "EU", "FE"] | None = None  # needed only for marketplaces not in MARKETPLACES
    refresh_token: Secret
    lwa_client_id: str
    lwa_client_secret: Secret
    # None = Amazon's real endpoints; the sandbox sets its loopback URLs here.
    endpoint: str | None = None
    token_url: str | None = None
    orders_api: Literal["2026-01-01", "v0"] = "2026-01-01"
    has_pii_roles: bool = False
    # How history (a window longer than reports_after_hours: backfills, catching up) is read. "auto":
    # through order reports when one probe page says it would take more than api_pages_max Orders API
    # pages (searchOrders allows one call per ~3 minutes after a burst of 20), else through the Orders
    # API, which also brings buyer data; "reports" or "orders_api" force one way. The last hour is
    # always read through the Orders API (reports lag it by up to 30 minutes).
    history: Literal["auto", "reports", "orders_api"] = "auto"
    reports_after_hours: float = 6.0
    api_pages_max: int = 15
    # Seconds a report may take before the run stops (its id stays in the cursor; the next run resumes it).
    report_timeout_s: float = 1800.0
    # Seconds before the first getReport of a new report (then x1.5 per poll, at most 60).
    report_poll_s: float = 5.0
    # Minutes to wait after a FATAL report before requesting that window again.
    report_cooldown_min: float = 30.0
    enabled: bool = True

    @model_validator(mode="after")
    def _one_region(self) -> AmazonStore:
        ids = list(dict.fromkeys([*([self.marketplace_id] if self.marketplace_id else []), *self.marketplace_ids]))
        if not ids:
            raise ValueError(f"amazon store {self.key!r}: set marketplace_id (or marketplace_ids), e.g. "
                             f'marketplace_id = "ATVPDKIKX0DER" for Amazon.com')
        regions: dict[str, list[str]] = {}
        for mp in ids:
            region = MARKETPLACES[mp][0] if mp in MARKETPLACES else self.region
            if region is None:
                raise ValueError(f"amazon store {self.key!r}: marketplace {mp} is not one orderhub knows; add "
                                 f'region = "NA", "EU" or "FE" to the store')
            regions.setdefault(region, []).append(mp)
        if len(regions) > 1:
            listed = "; ".join(f"{r}: {', '.join(m)}" for r, m in regions.items())
            raise ValueError(f"amazon store {self.key!r} mixes marketplaces of several SP-API regions ({listed}). "
                             f"Regions are separate endpoints with their own authorization and never share a call: "
                             f"configure one [[stores]] entry per region, each with that region's refresh_token")
        region = next(iter(regions))
        if self.region is not None and self.region != region:
            raise ValueError(f"amazon store {self.key!r}: region {self.region} does not match its marketplaces ({region})")
        self.region = region  # type: ignore[assignment]
        self.marketplace_ids = ids
        self.marketplace_id = ids[0]
        return self

    @property
    def marketplaces(self) -> list[str]:
        """Every marketplace id of the store (all in its region)."""
        return list(self.marketplace_ids)

    @property
    def api_endpoint(self) -> str:
        """The SP-API base URL this store talks to."""
        return self.endpoint or REGION_ENDPOINTS[self.region or "NA"]
