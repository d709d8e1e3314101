"""One exception hierarchy, grouped by what the caller should do next."""

from __future__ import annotations

from typing import Any


class OrderhubError(Exception):
    """Base of every error orderhub raises on purpose."""


class ConfigError(OrderhubError):
    """The configuration is wrong or incomplete: a person must fix orderhub.toml or the environment."""


class ChannelError(OrderhubError):
    """A channel API call failed.

    Attributes:
        channel: the channel (``amazon``, ``shopify``, ...).
        status: HTTP status, when there was a response.
        url: the URL called, without credentials.
        body: the first part of the response body, for the log.
    """

    def __init__(
        self,
        message: str,
        *,
        channel: str = "",
        status: int | None = None,
        url: str = "",
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.channel = channel
        self.status = status
        self.url = url
        self.body = body[:500]


class RetriableError(ChannelError):
    """A transient failure (429, 5xx, timeout, truncated body): retry later; nothing was landed.

    Attributes:
        retry_after: seconds the server asked us to wait, when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class FatalError(ChannelError):
    """A failure that retrying cannot fix (bad credentials, missing scope, other 4xx)."""


class AuthError(FatalError):
    """The channel refused our credentials: renew or fix them in the configuration."""


class DataError(OrderhubError):
    """A record cannot be normalized; it goes to quarantine with its reasons.

    Attributes:
        reasons: every problem found in the record.
        record: the raw record.
    """

    def __init__(self, reasons: list[str], record: Any = None) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons
        self.record = record


class LockedError(OrderhubError):
    """Another process holds the warehouse writer lock."""
