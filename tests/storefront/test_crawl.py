"""Storefront: real HTTP to the emulated admin site, each crawl in a child process (STYLE.md 8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from connectors.base import sync_stream
from connectors.landing import LandingStore, Part
from connectors.registry import streams_for
from connectors.storefront.runner import LayoutChangedError
from orderhub.config import Settings
from orderhub.errors import AuthError
from pipelines import storefront  # noqa: F401 - registers the normalizer
from pipelines.common import normalize_batches
from sandbox.emulators.base import EmulatorServer
from sandbox.emulators.storefront import StorefrontEmulator
from sandbox.model import Version
from tests.storefront.helpers import make_orders, store_for

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Site:
    """The emulated shop with a settable clock."""

    def __init__(self, n: int = 45) -> None:
        self.now = NOW
        self.orders = make_orders(n)
        self.emu = StorefrontEmulator(self.orders, now=lambda: self.now)


@pytest.fixture
def site():
    s = Site()
    with EmulatorServer(s.emu) as server:
        s.url = server.url
        yield s


def _sync(store, landing: LandingStore) -> int:
    (stream,) = streams_for(store)
    return sync_stream(stream, landing).records


def _normalized(landing: LandingStore, store):
    settings = Settings(home=landing.root, rates={"EUR": Decimal("1.08")}, stores=[store])
    batches = [(m, [(p, landing.read_part(m, p)) for p in m.parts]) for m in landing.manifests("storefront")]
    return normalize_batches(batches, settings)


def _landed_ids(landing: LandingStore) -> list[str]:
    import json

    ids = []
    for m in landing.manifests("storefront"):
        for p in m.parts:
            ids += [json.loads(line)["order_id"] for line in landing.read_part(m, p).splitlines()]
    return ids


def test_first_crawl_lands_every_order_once_and_normalizes_to_truth(site, tmp_path) -> None:
    store = store_for(site.url)
    landing = LandingStore(tmp_path / "landing")
    assert _sync(store, landing) == 45
    assert sorted(_landed_ids(landing)) == sorted(o.external_id for o in site.orders)
    n = _normalized(landing, store)
    assert n.quarantine.height == 0
    rows = {r["external_id"]: r for r in n.orders.to_dicts()}
    lines = n.lines.to_dicts()
    for order in site.orders:
        row = rows[order.external_id]
        assert row["total"] == order.total and row["subtotal"] == order.subtotal
        assert row["shipping"] == Decimal("4.90") and row["discount"] == order.discount and row["tax"] == order.tax
        assert row["created_at"] == order.created_at
        assert row["updated_at"] == order.versions[-1].at
        assert (row["status"], row["payment_status"], row["currency"]) == ("unfulfilled", "paid", "EUR")
        assert row["buyer_name"] == order.buyer_name and row["ship_line1"] == order.ship_to.line1
        got = sorted((ln["sku"], ln["title"], ln["quantity"], ln["unit_price"], ln["total"])
                     for ln in lines if ln["order_id"] == row["order_id"])
        assert got == sorted((ln.sku, ln.title, ln.quantity, ln.unit_price, ln.total) for ln in order.lines)
    assert rows["5000"]["total"] == Decimal("1239.59")  # "1.239,59 €" on the page


def test_second_crawl_lands_only_changed_orders_and_the_reactor_restarts(site, tmp_path) -> None:
    store = store_for(site.url)
    landing = LandingStore(tmp_path / "landing")
    assert _sync(store, landing) == 45  # first crawl
    assert _sync(store, landing) == 0  # second crawl in the same process: nothing changed (an empty batch)
    site.now = NOW + timedelta(hours=1)
    for order in (site.orders[3], site.orders[30]):
        order.versions.append(Version(NOW + timedelta(minutes=30), "fulfilled", "paid"))
    assert _sync(store, landing) == 2  # third crawl: only the changed ones
    assert sorted(_landed_ids(landing)[45:]) == ["5003", "5030"]
    latest = _normalized(landing, store).orders
    third = list(landing.manifests("storefront", store.key))[-1].batch_id
    changed = latest.filter(latest["batch_id"] == third)
    assert sorted(changed["status"].to_list()) == ["fulfilled", "fulfilled"]


def test_session_expiry_mid_crawl_logs_in_again_and_loses_nothing(site, tmp_path) -> None:
    site.emu.faults.add("session_expired", path=r"/admin/orders/50\d+", after=10)
    site.emu.faults.add("session_expired", path=r"/admin/orders$", after=1)
    landing = LandingStore(tmp_path / "landing")
    assert _sync(store_for(site.url), landing) == 45
    assert sorted(_landed_ids(landing)) == sorted(o.external_id for o in site.orders)
    assert site.emu.logins >= 2
    assert [k for k, _ in site.emu.faults.injected].count("session_expired") == 2


def test_5xx_and_timeouts_are_retried_and_nothing_is_lost(site, tmp_path) -> None:
    site.emu.faults.add("500", path=r"/admin/orders/50\d+", times=3, after=4)
    site.emu.faults.add("503", path=r"/admin/orders$", times=1, after=1)
    site.emu.faults.add("timeout", path=r"/admin/orders/50\d+", times=1, after=8, stall=3.0)
    landing = LandingStore(tmp_path / "landing")
    assert _sync(store_for(site.url, download_timeout=1.0), landing) == 45
    assert sorted(_landed_ids(landing)) == sorted(o.external_id for o in site.orders)
    assert len(site.emu.faults.injected) == 5


def test_layout_change_is_a_clear_error_and_lands_nothing(site, tmp_path) -> None:
    store = store_for(site.url)
    landing = LandingStore(tmp_path / "landing")
    _sync(store, landing)
    cursor = landing.state("storefront", "shop-de", "orders")
    site.now = NOW + timedelta(hours=1)
    site.orders[7].versions.append(Version(NOW + timedelta(minutes=5), "cancelled", "voided"))
    site.emu.layout_changed = True
    with pytest.raises(LayoutChangedError) as err:
        _sync(store, landing)
    assert "list.row 'table.orders tr.order-row'" in str(err.value) and "update the profile" in str(err.value)
    site.emu.layout_changed = False
    site.emu.faults.add("layout_changed", path=r"/admin/orders/\d+")  # only the detail page changed
    with pytest.raises(LayoutChangedError) as err:
        _sync(store, landing)
    assert any(m.startswith("detail.fields.") for m in err.value.missing)
    assert len(list(landing.manifests("storefront"))) == 1
    assert landing.state("storefront", "shop-de", "orders") == cursor
    assert _sync(store, landing) == 1  # the site is back: the change lands


def test_wrong_password_is_an_auth_error(site, tmp_path) -> None:
    from orderhub.secrets import Secret

    with pytest.raises(AuthError):
        _sync(store_for(site.url, password=Secret("wrong")), LandingStore(tmp_path / "landing"))


def test_check_logs_in_and_reads_the_first_list_page(site) -> None:
    (stream,) = streams_for(store_for(site.url))
    stream.check()
    assert site.emu.logins == 1 and site.emu.requests.get("detail", 0) == 0


def test_unmapped_status_and_bad_amount_are_quarantined_with_every_reason(site, tmp_path) -> None:
    import json

    store = store_for(site.url)
    landing = LandingStore(tmp_path / "landing")
    _sync(store, landing)
    (m,) = landing.manifests("storefront")
    items = [json.loads(line) for line in landing.read_part(m, m.parts[0]).splitlines()]
    items[0]["fields"].update(status="Verloren", total="zwölf €")
    body = "\n".join(json.dumps(i, ensure_ascii=False) for i in items).encode()
    landing.write_batch("storefront", "shop-de", "orders",
                        [Part(m.parts[0].kind, body, len(items), m.parts[0].request, ext="jsonl")], m.cursor)
    n = _normalized(landing, store)
    (reason,) = n.quarantine["reason"].to_list()
    assert "status 'Verloren' is not mapped" in reason and "total 'zwölf €'" in reason


def test_malformed_orders_on_the_site_are_quarantined_and_the_crawl_goes_on(site, tmp_path) -> None:
    # A buggy shop: no items on one order (the items table is there, empty), an impossible date,
    # a total with two decimal parts, a quantity of -1. Each order is quarantined with its reason.
    for order, defect in zip(site.orders[:4], ("missing_lines", "bad_date", "bad_total", "negative_quantity"),
                             strict=True):
        order.defect = defect
    store = store_for(site.url)
    landing = LandingStore(tmp_path / "landing")
    assert _sync(store, landing) == 45
    n = _normalized(landing, store)
    reasons = dict(zip(n.quarantine["external_id"].to_list(), n.quarantine["reason"].to_list(), strict=True))
    ids = [o.external_id for o in site.orders[:4]]
    assert set(reasons) == set(ids) and n.orders.height == 41
    assert "no line items" in reasons[ids[0]]
    assert "31.02.2024 25:61" in reasons[ids[1]]
    assert "total" in reasons[ids[2]] and "decimal ','" in reasons[ids[2]]
    assert "quantity" in reasons[ids[3]]
