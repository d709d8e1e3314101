"""The connector contract for feeds (check, first sync, second sync from state, crash mid-sync), plus config and CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.base import sync_stream
from connectors.feed.config import FeedStore
from connectors.landing import LandingStore
from connectors.registry import importer, streams_for
from orderhub.config import load_settings
from orderhub.errors import ConfigError, FatalError
from sandbox.emulators.base import EmulatorServer
from sandbox.emulators.feed import FeedEmulator
from tests.feed.helpers import ORDERS, normalized, settings_for, to_csv, to_json, to_jsonl

FILES = {"a.csv": to_csv(ORDERS[:1]), "b.jsonl": to_jsonl(ORDERS[1:2]), "c.json": to_json(ORDERS[2:])}
WANT = {"feed:{key}:F-1001", "feed:{key}:F-1002", "feed:{key}:F-1003"}


@pytest.fixture(params=["folder", "url"])
def feed(request, tmp_path) -> Iterator[FeedStore]:
    if request.param == "folder":
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        for name, body in FILES.items():
            (inbox / name).write_bytes(body)
        yield FeedStore(key="contract", source=str(inbox), settle_seconds=0)
        return
    emulator = FeedEmulator()
    for name, body in FILES.items():
        emulator.put(name, body)
    with EmulatorServer(emulator) as server:
        yield FeedStore(key="contract", source=[f"{server.url}/feeds/{n}" for n in FILES])


def _ids(landing: LandingStore, store: FeedStore, tmp_path: Path) -> list[str]:
    return normalized(landing, settings_for(tmp_path, store)).orders["order_id"].to_list()


def test_check(feed) -> None:
    for stream in streams_for(feed):
        stream.check()


def test_check_fails_clearly(tmp_path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        streams_for(FeedStore(key="x", source=str(tmp_path / "missing")))[0].check()
    emulator = FeedEmulator()
    with EmulatorServer(emulator) as server, pytest.raises(FatalError, match="404"):
        streams_for(FeedStore(key="x", source=f"{server.url}/feeds/none.csv"))[0].check()


def test_first_sync_then_second_sync_from_state(feed, tmp_path) -> None:
    landing = LandingStore(tmp_path / "landing")
    first = sum(sync_stream(s, landing).records for s in streams_for(feed))
    assert first == 3
    assert sorted(_ids(landing, feed, tmp_path)) == sorted(w.format(key="contract") for w in WANT)
    assert sum(sync_stream(s, landing).records for s in streams_for(feed)) == 0


def test_crash_mid_sync_loses_and_duplicates_nothing(feed, tmp_path) -> None:
    landing = LandingStore(tmp_path / "landing")
    for stream in streams_for(feed):
        pages = stream.pages(landing.state("feed", "contract", stream.name))
        first = next(pages)  # land one file, then the process dies before the next
        landing.write_batch("feed", "contract", stream.name, first.parts, first.cursor)
        pages.close()
    for stream in streams_for(feed):
        sync_stream(stream, landing)
    sources = [p.request["source"] for m in landing.manifests() for p in m.parts]
    assert len(sources) == len(set(sources)) == 3  # every file landed exactly once
    assert sorted(_ids(landing, feed, tmp_path)) == sorted(w.format(key="contract") for w in WANT)


def test_feed_store_in_orderhub_toml(tmp_path) -> None:
    (tmp_path / "orderhub.toml").write_text(
        '[[stores]]\nchannel = "feed"\nkey = "mp"\nsource = "/srv/feeds/mp"\nsettle_seconds = 10\n'
        'mapping = { order_id = "Order ID", line_sku = "Item SKU" }\n\n'
        '[[stores]]\nchannel = "feed"\nkey = "web"\nsource = ["https://example.com/a.csv", "https://example.com/b.json"]\n'
    )
    settings = load_settings(tmp_path)
    mp, web = settings.stores
    assert isinstance(mp, FeedStore) and mp.mapping["order_id"] == "Order ID" and mp.urls == []
    assert type(streams_for(mp)[0]).__name__ == "FolderStream" and type(streams_for(web)[0]).__name__ == "UrlStream"
    (tmp_path / "orderhub.toml").write_text('[[stores]]\nchannel = "feed"\nkey = "x"\nsource = ["/not/a/url"]\n')
    with pytest.raises(ConfigError, match="URLs only"):
        load_settings(tmp_path)


def test_importer_takes_each_file_once_and_refuses_a_broken_json(tmp_path) -> None:
    landing = LandingStore(tmp_path / "landing")
    path = tmp_path / "orders.csv"
    path.write_bytes(to_csv())
    (manifest,) = importer("feed")([path], "ops", landing)
    assert (manifest.stream, manifest.source, manifest.records) == ("import", "import", 3)
    assert importer("feed")([path], "ops", landing) == []
    broken = tmp_path / "broken.json"
    broken.write_bytes(to_json()[:100])
    with pytest.raises(ConfigError, match=r"broken\.json: not valid JSON"):
        importer("feed")([broken], "ops", landing)


def test_cli_import_channel_feed(tmp_path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(to_csv())
    env = {"ORDERHUB_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "PREFECT_HOME": str(tmp_path / "prefect")}
    run = subprocess.run([sys.executable, "-m", "orderhub", "import", "--channel", "feed", "--store", "ops", str(path)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "landed feed/ops/import/00000001: 3 records from 1 files" in run.stdout
    landing = LandingStore(tmp_path / "home" / "landing")
    out = normalized(landing, settings_for(tmp_path))
    assert sorted(out.orders["external_id"]) == ["F-1001", "F-1002", "F-1003"]
