"""Typed configuration of one order feed: a folder of files or HTTP(S) URLs, with an optional column mapping."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FeedStore(BaseModel):
    """One order feed (connectors/feed/README.md describes the canonical feed format).

    Attributes:
        key: the store key.
        source: a folder path, an ``http(s)://`` URL, or a list of URLs.
        format: ``auto`` (by file extension, then by content), ``csv``, ``jsonl`` or ``json``.
        mapping: canonical column -> the column (or JSON key) of this feed's layout; unmapped
            columns keep their canonical names, unknown columns are ignored.
        currency: currency of orders whose rows carry none.
        timezone: IANA zone of dates without an offset; None = the home's ``timezone``.
        date_format: ``strptime`` format of dates that are not ISO 8601 (e.g. ``%d/%m/%Y %H:%M``).
        statuses: feed status value -> canonical status or a status of the feed status table.
        settle_seconds: a folder file is taken only once its size and mtime have not changed for this long.
    """

    model_config = ConfigDict(extra="forbid")

    channel: Literal["feed"] = "feed"
    key: str
    source: str | list[str]
    format: Literal["auto", "csv", "jsonl", "json"] = "auto"
    mapping: dict[str, str] = Field(default_factory=dict)
    currency: str | None = None
    timezone: str | None = None
    date_format: str | None = None
    statuses: dict[str, str] = Field(default_factory=dict)
    settle_seconds: float = 30.0
    enabled: bool = True

    @field_validator("source")
    @classmethod
    def _urls_in_list(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError("source is an empty list; give a folder path, a URL or a list of URLs")
            bad = [u for u in value if not is_url(u)]
            if bad:
                raise ValueError(f"a list source holds http(s) URLs only, not {bad[0]!r}")
        return value

    @property
    def urls(self) -> list[str]:
        """The URLs of a URL source (empty for a folder)."""
        if isinstance(self.source, list):
            return list(self.source)
        return [self.source] if is_url(self.source) else []


def is_url(value: str) -> bool:
    """Whether a source is an HTTP(S) URL rather than a folder."""
    return value.lower().startswith(("http://", "https://"))
