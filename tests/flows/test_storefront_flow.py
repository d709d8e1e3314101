"""The storefront sync flow runs again and again in one worker process (Twisted's reactor never restarts)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from prefect.testing.utilities import prefect_test_harness

from orderhub import clock
from orderhub.config import load_settings
from orderhub.ops import landing_store
from sandbox.emulators.base import EmulatorServer
from sandbox.emulators.storefront import StorefrontEmulator
from sandbox.model import Order, Version
from tests.storefront.helpers import make_orders
from warehouse.db import Warehouse

pytestmark = pytest.mark.xdist_group("prefect")

KEY = "shop-de"


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


class Shop:
    """The emulated admin site, its clock set by the test; every time is in the past of the real clock."""

    def __init__(self) -> None:
        self.base = clock.now().replace(second=0, microsecond=0) - timedelta(hours=6)
        self.now = self.base + timedelta(hours=2)
        self.pool = make_orders(15)  # 5000..5014; shown one batch at a time
        self.orders = [self.placed(i, self.base + timedelta(minutes=7 * i)) for i in range(10)]
        self.emu = StorefrontEmulator(self.orders, now=lambda: self.now)

    def placed(self, i: int, created: datetime) -> Order:
        """Order ``500i`` of the pool, created at ``created`` (whole minutes: the site shows no seconds)."""
        return replace(self.pool[i], created_at=created,
                       versions=[Version(created + timedelta(seconds=13), "unfulfilled", "paid")])

    def order(self, external_id: str) -> Order:
        return next(o for o in self.orders if o.external_id == external_id)


def _write_home(home, url: str) -> None:
    (home / "orderhub.toml").write_text(
        'base_currency = "EUR"\n'
        "[[stores]]\n"
        f'channel = "storefront"\nkey = "{KEY}"\nurl = "{url}"\nusername = "admin"\n'
        'password = "env:ORDERHUB_TEST_SHOP_PASSWORD"\nprofile = "sample_shop"\ncurrency = "EUR"\n'
        'timezone = "Europe/Berlin"\nlocale = "de_DE"\nstart_delay = 0.01\ndownload_timeout = 2.0\n',
        encoding="utf-8")


def _landed_since(landing, seen: set[str]) -> list[str]:
    """The order ids of the batches landed since ``seen`` (batch ids), which it then includes."""
    ids = []
    for m in landing.manifests("storefront", KEY):
        if m.batch_id not in seen:
            seen.add(m.batch_id)
            ids += [json.loads(line)["order_id"] for p in m.parts for line in landing.read_part(m, p).splitlines()]
    return sorted(ids)


def test_three_runs_in_one_process_land_only_what_is_new(harness, tmp_path, monkeypatch) -> None:
    from flows.orderhub_flows import sync_store_flow

    monkeypatch.setenv("ORDERHUB_TEST_SHOP_PASSWORD", "s3cret")
    modules_before = set(sys.modules)
    shop = Shop()
    base = shop.base
    expected_per_run = []
    with EmulatorServer(shop.emu) as server:
        _write_home(tmp_path, server.url)
        landing = landing_store(load_settings(tmp_path))
        seen: set[str] = set()

        def run(expected: list[str]) -> None:
            state = sync_store_flow(KEY, str(tmp_path), return_state=True)
            assert state.is_completed(), state
            counts = state.result().by_store[("storefront", KEY)]
            assert (counts.landed, counts.loaded, counts.quarantined) == (len(expected), len(expected), 0)
            assert _landed_since(landing, seen) == expected
            expected_per_run.append(expected)

        run([str(5000 + i) for i in range(10)])

        shop.now = base + timedelta(hours=3)  # two changed orders, three new ones
        shop.order("5003").versions.append(Version(base + timedelta(hours=2, minutes=30), "fulfilled", "paid"))
        shop.order("5007").versions.append(Version(base + timedelta(hours=2, minutes=31), "cancelled", "voided"))
        shop.orders += [shop.placed(i, base + timedelta(hours=2, minutes=10 + 7 * (i - 10))) for i in (10, 11, 12)]
        run(["5003", "5007", "5010", "5011", "5012"])

        shop.now = base + timedelta(hours=4)  # an order changed twice, one of the last run's new ones, two new
        shop.order("5003").versions.append(Version(base + timedelta(hours=3, minutes=30), "fulfilled", "refunded"))
        shop.order("5011").versions.append(Version(base + timedelta(hours=3, minutes=31), "fulfilled", "paid"))
        shop.orders += [shop.placed(i, base + timedelta(hours=3, minutes=10 + 7 * (i - 13))) for i in (13, 14)]
        run(["5003", "5011", "5013", "5014"])

    with Warehouse.read_only(tmp_path / "warehouse.duckdb") as wh:
        rows = wh.con.execute("SELECT external_id, status, payment_status, updated_at, created_at FROM orders "
                              "WHERE channel = 'storefront' AND store = ?", [KEY]).fetchall()
    assert len(rows) == len({r[0] for r in rows}) == len(shop.orders) == 15  # every order once
    newest = {o.external_id: (o.versions[-1].status, o.versions[-1].payment_status, o.versions[-1].at, o.created_at)
              for o in shop.orders}
    assert {r[0]: (r[1], r[2], r[3], r[4]) for r in rows} == newest
    assert newest["5003"][:2] == ("fulfilled", "refunded") and newest["5007"][:2] == ("cancelled", "voided")
    # Every crawl ran in its own child process: this one never imported Scrapy or installed the reactor
    # (which cannot restart). The delta is what these runs did, whatever other tests imported before.
    added = {name for name in set(sys.modules) - modules_before if name.split(".")[0] in ("twisted", "scrapy")}
    assert "twisted.internet.reactor" not in added and not added, sorted(added)
