"""The per-site selector profile of a storefront admin site: a new site needs a profile, not code.

A profile is TOML or YAML (connectors/storefront/README.md documents every key): where the login form
and its CSRF field are, how the order list pages (rows, detail link, last-updated column, next
page), which CSS selectors give each order field on the detail page, and how the shop writes
amounts, dates and statuses.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from orderhub.errors import ConfigError

PROFILES_DIR = Path(__file__).parent / "profiles"
SUFFIXES = (".toml", ".yaml", ".yml")  # a bundled name is looked up in this order: TOML wins a tie


class LoginProfile(BaseModel):
    """The login form."""

    model_config = ConfigDict(extra="forbid")

    path: str = "/login"
    form: str  # CSS selector of the <form>
    username_field: str = "username"
    password_field: str = "password"  # noqa: S105 - the form field name, not a password
    csrf_field: str  # name of the hidden input holding the CSRF token
    error: str | None = None  # selector present on the page when the login was refused


class ListProfile(BaseModel):
    """The paginated order list, newest updated first."""

    model_config = ConfigDict(extra="forbid")

    path: str = "/admin/orders"
    row: str  # one order per match
    link: str  # within a row: the detail page href
    order_id: str  # within a row: the order id
    updated: str  # within a row: the last-updated column
    next: str  # the next page's href; none on the last page
    empty: str  # present on a list page with no orders (so an empty shop is not a layout change)


class LinesProfile(BaseModel):
    """The line items table of the detail page."""

    model_config = ConfigDict(extra="forbid")

    row: str
    fields: dict[str, str]  # name -> selector within a row
    # The table (or list) holding the rows: when it is on the page but holds no row, the order has no
    # line items (data, quarantined downstream) rather than a changed layout. Without it, no row is a layout change.
    container: str | None = None
    required: list[str] = Field(default_factory=list)


class DetailProfile(BaseModel):
    """The order detail page."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, str]  # name -> selector (``::text`` / ``::attr()`` as in Scrapy)
    required: list[str] = Field(default_factory=list)
    lines: LinesProfile


class FormatProfile(BaseModel):
    """How the shop writes amounts, dates and statuses."""

    model_config = ConfigDict(extra="forbid")

    decimal: str = "."
    thousands: str = ","
    dates: list[str] = Field(default_factory=lambda: ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"])  # strptime, tried in order
    statuses: dict[str, str] = Field(default_factory=dict)  # shop label -> canonical status
    payment_statuses: dict[str, str] = Field(default_factory=dict)  # shop label -> canonical payment status


class Profile(BaseModel):
    """A whole site profile."""

    model_config = ConfigDict(extra="forbid")

    name: str
    login: LoginProfile
    list: ListProfile
    detail: DetailProfile
    format: FormatProfile = Field(default_factory=FormatProfile)


def load_profile(source: str | Path | dict[str, Any]) -> Profile:
    """A profile from an inline table, a TOML or YAML file path, or the name of a bundled profile (``sample_shop``).

    A ``.yaml`` / ``.yml`` file is read as YAML, any other file as TOML; a bare name without a suffix
    that is not a file is looked up in ``profiles/`` as ``NAME.toml``, ``NAME.yaml``, ``NAME.yml``.

    Raises:
        ConfigError: the file is missing, is not valid TOML / YAML, or the profile is invalid.
    """
    if isinstance(source, dict):
        data, where = source, "inline profile"
    else:
        path = Path(source).expanduser()
        if not path.suffix and not path.exists():
            path = next((p for p in (PROFILES_DIR / f"{source}{suffix}" for suffix in SUFFIXES) if p.is_file()), path)
        if not path.is_file():
            raise ConfigError(f"storefront profile {source!s} not found: give a TOML or YAML file path, the name of "
                              f"a profile in {PROFILES_DIR}, or an inline table")
        data = _read(path)
        where = str(path)
    try:
        return Profile.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"storefront profile ({where}) is invalid: {exc}") from None


def _read(path: Path) -> dict[str, Any]:
    """The profile file's table: YAML by its suffix, TOML otherwise."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() not in (".yaml", ".yml"):
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"storefront profile {path} is not valid TOML: {exc}") from None
    try:
        data = yaml.safe_load(text)  # plain data only: a profile never builds Python objects
    except yaml.YAMLError as exc:
        raise ConfigError(f"storefront profile {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"storefront profile {path} must be a YAML mapping with the sections name, login, list, "
                          f"detail and format at its top level, not {type(data).__name__}")
    return data
