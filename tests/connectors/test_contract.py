"""One contract for every connector, parametrized over the configured sandbox stores (STYLE.md 10)."""

from __future__ import annotations

import pytest

from connectors.base import sync_stream
from connectors.landing import LandingStore
from connectors.registry import streams_for
from orderhub import clock
from orderhub.config import load_settings
from pipelines import amazon, feed, shopify, storefront, woocommerce  # noqa: F401 - register normalizers
from pipelines.common import normalize_batches
from sandbox.generator import DEFAULT_STORES
from sandbox.server import Sandbox
from tests.e2e.helpers import expected

pytestmark = pytest.mark.xdist_group("contract")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("contract")
    with Sandbox(home, orders=900, seed=3, speed=1000.0) as sb:
        yield sb, load_settings(home)
    clock.use_offset_file(None)


STORE_KEYS = [spec.key for spec in DEFAULT_STORES]  # every sandbox store: a new channel's store joins by itself


def _store(settings, key):
    store = next((s for s in settings.stores if s.key == key), None)
    assert store is not None, f"sandbox store {key} missing from the config"
    return store


def _landed_ids(landing: LandingStore, settings, channel: str, store: str) -> list[str]:
    batches = [(m, [(p, landing.read_part(m, p)) for p in m.parts]) for m in landing.manifests(channel, store)]
    n = normalize_batches(batches, settings)
    return n.orders["order_id"].to_list() + [
        f"{channel}:{store}:{e}" for e in n.quarantine["external_id"].to_list() if e
    ]


@pytest.mark.parametrize("key", STORE_KEYS)
def test_check_authenticates(sandbox, key) -> None:
    _, settings = sandbox
    for stream in streams_for(_store(settings, key)):
        stream.check()


@pytest.mark.parametrize("key", STORE_KEYS)
def test_first_sync_then_second_sync_from_state(sandbox, key, tmp_path) -> None:
    sb, settings = sandbox
    store = _store(settings, key)
    landing = LandingStore(tmp_path / "landing")
    first = sum(sync_stream(s, landing).records for s in streams_for(store))
    exp = expected(sb.business, landing)
    want = {oid for oid in [*exp.real, *exp.mirrors, *exp.defective] if oid.split(":")[1] == key}
    edge = {oid for oid in exp.inflight if oid.split(":")[1] == key}
    assert len(want - edge) <= first <= len(want | edge) and first > 0
    got = _landed_ids(landing, settings, store.channel, key)
    # An order that changed at the window's edge may or may not be in this sync (exp.inflight).
    assert set(got) <= want | edge and len(got) >= len(want - edge) - sum(
        1 for o in exp.defective.values() if o.store == key and o.defect == "missing_id"
    )
    second = sum(sync_stream(s, landing).records for s in streams_for(store))
    assert second == 0


@pytest.mark.parametrize("key", STORE_KEYS)
def test_crash_mid_sync_loses_and_duplicates_nothing(sandbox, key, tmp_path) -> None:
    sb, settings = sandbox
    store = _store(settings, key)
    landing = LandingStore(tmp_path / "landing")
    for stream in streams_for(store):
        pages = stream.pages(landing.state(store.channel, key, stream.name))
        first = next(pages)  # land one page, then the process dies before the next
        landing.write_batch(store.channel, key, stream.name, first.parts, first.cursor)
        pages.close()
    for stream in streams_for(store):
        sync_stream(stream, landing)
    exp = expected(sb.business, landing)
    want = {oid for oid in [*exp.real, *exp.mirrors] if oid.split(":")[1] == key}
    batches = [(m, [(p, landing.read_part(m, p)) for p in m.parts]) for m in landing.manifests(store.channel, key)]
    orders = normalize_batches(batches, settings).orders
    ids = set(orders["order_id"].to_list())
    assert ids - exp.inflight == want - exp.inflight  # nothing lost; duplicates across batches collapse by primary key downstream
