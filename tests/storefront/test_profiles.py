"""Storefront profiles in TOML or YAML load to the same Profile and drive the same crawl."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime

import pytest
import yaml

from connectors.base import sync_stream
from connectors.landing import LandingStore
from connectors.registry import streams_for
from connectors.storefront import profile as profile_module
from connectors.storefront.profile import PROFILES_DIR, load_profile
from orderhub.errors import ConfigError
from sandbox.emulators.base import EmulatorServer
from sandbox.emulators.storefront import StorefrontEmulator
from tests.storefront.helpers import make_orders, store_for

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

HAND_TOML = """
name = "shop-de"
[login]
form = "form#login"
csrf_field = "csrf_token"
error = "p.login-error"
[list]
row = "table.orders tr.order-row"
link = "td.order-no a::attr(href)"
order_id = "::attr(data-id)"
updated = "td.updated::text"
next = "a.next::attr(href)"
empty = "p.no-orders"
[detail]
required = ["order_id", "created_at", "status", "payment_status", "total"]
[detail.fields]
order_id = "div.order-detail::attr(data-order-id)"
total = "td.total strong::text"
[detail.lines]
row = "table.items tr.item"
container = "table.items"
required = ["sku", "quantity", "unit_price"]
[detail.lines.fields]
sku = "td.sku::text"
quantity = "td.qty::text"
unit_price = "td.price span.amount::text"
[format]
decimal = ","
thousands = "."
dates = ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M"]
[format.statuses]
"Versandt" = "fulfilled"
"In Bearbeitung" = "unfulfilled"
[format.payment_statuses]
"Bezahlt" = "paid"
"""

HAND_YAML = """
# written by hand, the way a site's profile would be
name: shop-de
login:
  form: "form#login"
  csrf_field: csrf_token
  error: p.login-error
list:
  row: table.orders tr.order-row
  link: "td.order-no a::attr(href)"
  order_id: "::attr(data-id)"
  updated: "td.updated::text"
  next: "a.next::attr(href)"
  empty: p.no-orders
detail:
  required: [order_id, created_at, status, payment_status, total]
  fields:
    order_id: "div.order-detail::attr(data-order-id)"
    total: "td.total strong::text"
  lines:
    row: table.items tr.item
    container: table.items   # present but empty: an order without line items
    required:
      - sku
      - quantity
      - unit_price
    fields:
      sku: "td.sku::text"
      quantity: "td.qty::text"
      unit_price: "td.price span.amount::text"
format:
  decimal: ","
  thousands: "."
  dates:
    - "%d.%m.%Y %H:%M:%S"
    - "%d.%m.%Y %H:%M"
  statuses:
    Versandt: fulfilled
    In Bearbeitung: unfulfilled
  payment_statuses:
    Bezahlt: paid
"""


def _sample_as_yaml(path):
    """The bundled sample_shop.toml written as YAML to ``path``."""
    data = tomllib.loads((PROFILES_DIR / "sample_shop.toml").read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_twin_of_the_sample_profile_loads_to_the_same_profile(tmp_path, suffix) -> None:
    toml_profile = load_profile("sample_shop")
    yaml_profile = load_profile(_sample_as_yaml(tmp_path / f"sample_shop{suffix}"))
    assert yaml_profile == toml_profile
    assert yaml_profile.detail.lines.container == "table.items"
    assert yaml_profile.format.statuses["Teilweise versandt"] == "partially_fulfilled"


def test_hand_written_yaml_equals_its_toml(tmp_path) -> None:
    (tmp_path / "shop-de.toml").write_text(HAND_TOML, encoding="utf-8")
    (tmp_path / "shop-de.yaml").write_text(HAND_YAML, encoding="utf-8")
    from_yaml = load_profile(str(tmp_path / "shop-de.yaml"))
    assert from_yaml == load_profile(tmp_path / "shop-de.toml")
    assert from_yaml.list.order_id == "::attr(data-id)" and from_yaml.format.decimal == ","
    assert from_yaml.login.path == "/login"  # defaults apply as with TOML


def test_bundled_names_find_toml_then_yaml_then_yml(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(profile_module, "PROFILES_DIR", tmp_path)
    (tmp_path / "only_yml.yml").write_text(HAND_YAML.replace("shop-de", "from-yml"), encoding="utf-8")
    (tmp_path / "both.yaml").write_text(HAND_YAML.replace("shop-de", "from-yaml"), encoding="utf-8")
    (tmp_path / "both.toml").write_text(HAND_TOML.replace("shop-de", "from-toml"), encoding="utf-8")
    assert load_profile("only_yml").name == "from-yml"
    assert load_profile("both").name == "from-toml"
    with pytest.raises(ConfigError, match="storefront profile nowhere not found"):
        load_profile("nowhere")


@pytest.mark.parametrize(("text", "wrong"), [
    ("name: shop\nlogin:\n  form: [unclosed\n", "is not valid YAML"),
    ("name: shop\n  login: indented wrong\n", "is not valid YAML"),
    ("format:\n  decimal: ,\n", "is not valid YAML"),  # YAML cannot start a plain value with ","
    ("- name: shop\n- login: {}\n", "must be a YAML mapping"),
    ("just a string\n", "must be a YAML mapping"),
    ("", "must be a YAML mapping"),
])
def test_bad_yaml_is_a_config_error_naming_the_file(tmp_path, text, wrong) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert str(path) in str(err.value) and wrong in str(err.value)


def test_yaml_that_parses_but_is_not_a_profile_names_file_and_field(tmp_path) -> None:
    path = tmp_path / "shop.yml"
    path.write_text(HAND_YAML.replace("    Bezahlt: paid", "    Yes: paid"), encoding="utf-8")  # YAML 1.1: a bool key
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert str(path) in str(err.value) and "payment_statuses" in str(err.value)


@pytest.fixture
def site():
    emu = StorefrontEmulator(make_orders(25), now=lambda: NOW)
    with EmulatorServer(emu) as server:
        yield server.url


def _crawl(store, landing: LandingStore) -> list[dict]:
    (stream,) = streams_for(store)
    assert sync_stream(stream, landing).records == 25
    return sorted((json.loads(line) for m in landing.manifests("storefront") for p in m.parts
                   for line in landing.read_part(m, p).splitlines()), key=lambda item: item["order_id"])


def test_a_yaml_profile_drives_the_same_crawl_as_the_toml_one(site, tmp_path) -> None:
    yaml_path = _sample_as_yaml(tmp_path / "shop-de.yaml")
    from_toml = _crawl(store_for(site), LandingStore(tmp_path / "toml"))
    from_yaml = _crawl(store_for(site, profile=str(yaml_path)), LandingStore(tmp_path / "yaml"))
    assert [item["order_id"] for item in from_toml] == [str(5000 + i) for i in range(25)]
    assert from_yaml == from_toml
