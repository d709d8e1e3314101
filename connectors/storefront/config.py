"""Typed configuration of one storefront admin site scraped with its selector profile."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from orderhub.secrets import Secret


class StorefrontStore(BaseModel):
    """One self-built shop with admin pages only (connectors/storefront/README.md).

    Attributes:
        key: the store key.
        url: the site root, e.g. ``https://shop.example.com``.
        username: the admin login.
        password: the admin password (``env:NAME`` or ``prefect:block``).
        profile: a TOML or YAML profile path, a bundled profile name (``sample_shop``) or an inline table.
        currency: ISO 4217 currency of the shop's amounts.
        timezone: IANA zone the shop writes its dates in.
        locale: the shop's locale, e.g. ``de_DE`` (documentation; the profile's separators parse amounts).
        target_concurrency: AutoThrottle's target of parallel requests to the site.
        start_delay: AutoThrottle's first delay between requests, seconds.
        download_timeout: seconds before a request counts as timed out and is retried.
        retries: retries per request on 5xx, 429 and timeouts.
    """

    model_config = ConfigDict(extra="forbid")

    channel: Literal["storefront"] = "storefront"
    key: str
    url: str
    username: str
    password: Secret
    profile: str | dict[str, Any] = "sample_shop"
    currency: str
    timezone: str = "UTC"
    locale: str = "en_US"
    target_concurrency: float = 4.0
    start_delay: float = 0.25
    download_timeout: float = 30.0
    retries: int = 5
    enabled: bool = True
