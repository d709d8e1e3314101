"""Configuration: typed, clear errors; secrets never printed."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from orderhub.config import load_settings
from orderhub.errors import ConfigError
from orderhub.log import RedactingFilter
from orderhub.secrets import Secret


def test_defaults_without_a_file(tmp_path) -> None:
    s = load_settings(tmp_path)
    assert s.base_currency == "USD"
    assert s.warehouse_path == tmp_path.resolve() / "warehouse.duckdb"
    assert s.rate("USD") == Decimal(1)


def test_stores_and_rates(tmp_path) -> None:
    (tmp_path / "orderhub.toml").write_text(
        'base_currency = "EUR"\n[rates]\nUSD = "0.92"\n'
        '[[stores]]\nchannel = "shopify"\nkey = "a"\nshop = "acme"\naccess_token = "env:ACME_TOKEN"\n'
    )
    s = load_settings(tmp_path)
    assert s.rate("USD") == Decimal("0.92")
    assert s.store("shopify", "a").domain == "acme.myshopify.com"


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('timezone = "Mars/Olympus"', "unknown time zone"),
        ('[[stores]]\nchannel = "ebay"\nkey = "x"', "stores"),
        ('[[stores]]\nchannel = "shopify"\nkey = "a"\nshop = "a"\n[[stores]]\nchannel = "shopify"\nkey = "a"\nshop = "b"',
         "configured twice"),
        ("base_currency = ", "not valid TOML"),
    ],
)
def test_bad_config_says_what_is_wrong(tmp_path, toml, needle) -> None:
    (tmp_path / "orderhub.toml").write_text(toml)
    with pytest.raises(ConfigError, match=needle):
        load_settings(tmp_path)


def test_secret_resolution_and_masking(monkeypatch, caplog) -> None:
    monkeypatch.setenv("ORDERHUB_TEST_TOKEN", "shpat_very_secret_123")
    secret = Secret("env:ORDERHUB_TEST_TOKEN")
    assert "very_secret" not in repr(secret) and "very_secret" not in str(secret)
    assert secret.get() == "shpat_very_secret_123"
    logger = logging.getLogger("orderhub.test")
    handler = logging.Handler()
    records: list[str] = []
    handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("calling with token %s", secret.get())
    finally:
        logger.removeHandler(handler)
    assert records == ["calling with token ***"]


def test_missing_env_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ORDERHUB_NOT_SET_ANYWHERE"):
        Secret("env:ORDERHUB_NOT_SET_ANYWHERE").get()
