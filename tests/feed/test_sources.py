"""Folder and URL sources: each file once (across restarts), settling, new versions, 304s, half-written files."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from connectors.base import sync_stream
from connectors.feed.config import FeedStore
from connectors.feed.streams import FolderStream, UrlStream
from connectors.landing import LandingStore
from sandbox.emulators.base import EmulatorServer
from sandbox.emulators.feed import FeedEmulator
from tests.feed.helpers import ORDERS, normalized, settings_for, sync, to_csv, to_json, to_jsonl


def _age(path, seconds: float) -> None:
    """Make a file look last written ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def test_folder_takes_each_file_once_across_syncs_and_restarts(tmp_path, inbox) -> None:
    store = FeedStore(key="drop", source=str(inbox), settle_seconds=5)
    landing = LandingStore(tmp_path / "landing")
    (inbox / "a.csv").write_bytes(to_csv(ORDERS[:1]))
    (inbox / "b.jsonl").write_bytes(to_jsonl(ORDERS[1:2]))
    (inbox / "notes.txt").write_text("not a feed")
    (inbox / "c.csv.part").write_text("a writer's temp file")
    for f in inbox.iterdir():
        _age(f, 60)
    first = sync(store, landing)
    assert (first.batches, first.records) == (2, 2)
    assert sync(store, landing).batches == 0
    assert list(FolderStream(store).pages(landing.state("feed", "drop", "orders"))) == []  # a restart: new object
    (inbox / "d.json").write_bytes(to_json(ORDERS[2:]))
    _age(inbox / "d.json", 60)
    third = sync(store, landing)
    assert (third.batches, third.records) == (1, 1)
    sources = [p.request["source"] for m in landing.manifests() for p in m.parts]
    assert sorted(sources) == ["a.csv", "b.jsonl", "d.json"]
    assert set(landing.state("feed", "drop", "orders")["files"]) == {"a.csv", "b.jsonl", "d.json"}
    out = normalized(landing, settings_for(tmp_path, store))
    assert sorted(out.orders["external_id"].to_list()) == ["F-1001", "F-1002", "F-1003"]


def test_folder_waits_for_a_file_being_written_and_takes_a_changed_file_again(tmp_path, inbox) -> None:
    store = FeedStore(key="drop", source=str(inbox), settle_seconds=30)
    landing = LandingStore(tmp_path / "landing")
    path = inbox / "orders.csv"
    body = to_csv()
    path.write_bytes(body[: len(body) // 2])  # the export job is still writing
    assert sync(store, landing).batches == 0
    path.write_bytes(body)
    assert sync(store, landing).batches == 0  # just finished: not settled yet
    _age(path, 31)
    assert sync(store, landing).records == 3
    assert sync(store, landing).batches == 0
    changed = body.replace(b"Processing", b"shipped")
    path.write_bytes(changed)
    _age(path, 31)
    again = sync(store, landing)
    assert (again.batches, again.records) == (1, 3)
    shas = [p.request["sha256"] for m in landing.manifests() for p in m.parts]
    assert len(shas) == 2 and len(set(shas)) == 2
    path.unlink()
    assert sync(store, landing).batches == 0  # the cursor forgets it only when something new lands


def test_folder_half_written_file_lands_whole_rows_and_quarantines_the_cut_tail(tmp_path, inbox) -> None:
    store = FeedStore(key="drop", source=str(inbox), settle_seconds=0)
    landing = LandingStore(tmp_path / "landing")
    body = to_csv()
    cut = body.index(b"PEN-3") + 2  # in the middle of F-1002's only row
    path = inbox / "orders.csv"
    path.write_bytes(body[:cut])
    _age(path, 1)
    first = sync(store, landing)
    assert first.records == 2  # F-1001 and the cut F-1002
    settings = settings_for(tmp_path, store)
    out = normalized(landing, settings)
    assert out.orders["external_id"].to_list() == ["F-1001"]
    (tail,) = out.quarantine.to_dicts()
    assert tail["external_id"] == "F-1002" and tail["records"] == 1
    assert "last line is cut off" in tail["reason"] and "still being written" in tail["reason"]
    assert out.orders.height + sum(out.quarantine["records"]) == first.records
    path.write_bytes(body)  # the writer finishes: a new version, taken again, nothing lost
    _age(path, 1)
    assert sync(store, landing).records == 3
    assert set(normalized(landing, settings).orders["external_id"]) == {"F-1001", "F-1002", "F-1003"}


def test_cut_row_of_an_order_with_more_lines_quarantines_the_whole_order(tmp_path) -> None:
    store = FeedStore(key="drop", source=str(tmp_path), settle_seconds=0)
    body = to_csv()
    cut = body.index(b"TEA-9") + 2  # F-1001's second line item is cut
    landing = LandingStore(tmp_path / "landing")
    from connectors.feed.streams import feed_part
    landing.write_batch("feed", "drop", "orders", [feed_part("o.csv", body[:cut], store)], None)
    out = normalized(landing, settings_for(tmp_path, store))
    assert out.orders.height == 0 and out.lines.height == 0
    reasons = out.quarantine.sort("records")["reason"].to_list()
    assert "line items may be incomplete" in reasons[1] and "last line is cut off" in reasons[0]
    assert sum(out.quarantine["records"]) == 1 == next(landing.manifests()).records


def test_half_written_json_waits_in_the_folder_then_is_a_clear_error(tmp_path, inbox) -> None:
    store = FeedStore(key="drop", source=str(inbox), settle_seconds=30)
    landing = LandingStore(tmp_path / "landing")
    path = inbox / "orders.json"
    path.write_bytes(to_json()[:200])
    assert sync(store, landing).batches == 0  # younger than settle_seconds: not taken
    _age(path, 31)
    assert sync(store, landing).batches == 1  # it never completed: land it so the operator sees it
    out = normalized(landing, settings_for(tmp_path, store))
    (row,) = out.quarantine.to_dicts()
    assert "orders.json" in row["reason"] and "not valid JSON" in row["reason"] and "still being written" in row["reason"]


def test_jsonl_cut_tail_is_quarantined(tmp_path) -> None:
    from connectors.feed.streams import feed_part
    body = to_jsonl()
    cut = len(body) - 30
    landing = LandingStore(tmp_path / "landing")
    landing.write_batch("feed", "s", "orders", [feed_part("o.jsonl", body[:cut], None)], None)
    out = normalized(landing, settings_for(tmp_path))
    assert sorted(out.orders["external_id"]) == ["F-1001", "F-1002"]
    (tail,) = out.quarantine.to_dicts()
    assert tail["external_id"] == "F-1003" and "not valid JSON" in tail["reason"]


@pytest.fixture
def feed_server() -> Iterator[tuple[FeedEmulator, EmulatorServer]]:
    emulator = FeedEmulator()
    with EmulatorServer(emulator) as server:
        yield emulator, server


def test_url_304_lands_nothing_and_a_new_etag_lands_once(tmp_path, feed_server) -> None:
    emulator, server = feed_server
    emulator.put("orders.csv", to_csv(ORDERS[:2]))
    emulator.put("more.jsonl", to_jsonl(ORDERS[2:]))
    store = FeedStore(key="web", source=[f"{server.url}/feeds/orders.csv", f"{server.url}/feeds/more.jsonl"])
    landing = LandingStore(tmp_path / "landing")
    first = sync(store, landing)
    assert (first.batches, first.records) == (2, 3)
    part = next(landing.manifests()).parts[0]
    assert part.request["etag"] == FeedEmulator.etag(to_csv(ORDERS[:2])) and part.request["last_modified"]
    again = sync(store, landing)  # two 304s: no file lands, one empty batch records when they were checked
    assert again.records == 0 and [m.parts for m in again.manifests] == [[]]
    assert emulator.conditional_hits == 2
    emulator.put("orders.csv", to_csv(ORDERS))  # a new version: new ETag
    assert next(iter(UrlStream(store).pages(landing.state("feed", "web", "orders")))).parts[0].records == 3
    second = sync(store, landing)
    assert (second.batches, second.records) == (1, 3)
    assert sync(store, landing).records == 0


def test_url_without_etag_uses_if_modified_since(tmp_path, feed_server) -> None:
    emulator, server = feed_server
    emulator.put("o.csv", to_csv())
    store = FeedStore(key="web", source=f"{server.url}/feeds/o.csv")
    landing = LandingStore(tmp_path / "landing")
    sync(store, landing)
    state = landing.state("feed", "web", "orders")
    state["urls"][store.urls[0]]["etag"] = None  # as from a server that sends only Last-Modified
    assert [p.parts for p in UrlStream(store).pages(state)] == [[]]  # a 304: no file
    assert emulator.conditional_hits == 1


def test_url_half_written_file_then_the_whole_file(tmp_path, feed_server) -> None:
    emulator, server = feed_server
    emulator.put("o.csv", to_csv())
    emulator.faults.add("half_written")
    store = FeedStore(key="web", source=f"{server.url}/feeds/o.csv")
    landing = LandingStore(tmp_path / "landing")
    settings = settings_for(tmp_path, store)
    sync(store, landing)
    out = normalized(landing, settings)
    assert any("last line is cut off" in r for r in out.quarantine["reason"])
    assert sync(store, landing).batches == 1  # the whole file has another ETag
    assert set(normalized(landing, settings).orders["external_id"]) == {"F-1001", "F-1002", "F-1003"}


def test_url_5xx_and_a_stalled_server_are_retried_then_a_clear_error_lands_nothing(tmp_path, feed_server) -> None:
    from connectors.http import HttpClient, RetryPolicy
    from orderhub.errors import OrderhubError

    emulator, server = feed_server
    emulator.put("o.csv", to_csv())
    store = FeedStore(key="web", source=f"{server.url}/feeds/o.csv")
    landing = LandingStore(tmp_path / "landing")
    quick = RetryPolicy(max_attempts=3, base_delay=0.01)
    emulator.faults.add("503")
    emulator.faults.add("timeout", stall=1.0)
    stream = UrlStream(store, http=HttpClient("feed", timeout=0.3, policy=quick))
    result = sync_stream(stream, landing)  # a 503, then a stall past the timeout, then the file
    assert result.records == 3 and [kind for kind, _ in emulator.faults.injected] == ["503", "timeout"]
    emulator.put("o.csv", to_csv(ORDERS[:1]))
    emulator.faults.add("500", times=3)  # every attempt fails: a clear error, nothing lands, the cursor stays
    before = landing.state("feed", "web", "orders")
    with pytest.raises(OrderhubError, match="500"):
        sync_stream(UrlStream(store, http=HttpClient("feed", timeout=0.3, policy=quick)), landing)
    assert landing.state("feed", "web", "orders") == before
    assert sync(store, landing).records == 1  # the next run takes the new version
