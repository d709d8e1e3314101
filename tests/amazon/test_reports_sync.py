"""History through the Reports API, Restricted Data Tokens for v0, regions: connector against the emulator over HTTP."""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from connectors.amazon.config import AmazonStore
from connectors.amazon.importer import import_files
from connectors.amazon.reports import KIND_REPORT, REPORT_OVERLAP, inspect_report
from connectors.amazon.streams import AmazonOrdersStream
from connectors.base import sync_pages, sync_stream
from dedupe.versions import latest_versions
from orderhub.errors import AuthError, RetriableError
from pipelines.common import normalize_batches
from tests.amazon.conftest import World
from tests.amazon.helpers import (
    CA,
    CLIENT_ID,
    CLIENT_SECRET,
    JP,
    US,
    amazon_store,
    landed,
    make_order,
    normalized,
    settings,
    stream_for,
)

REPORT_DOC = r"/_documents/"


@pytest.fixture(autouse=True)
def quick_reports(world: World) -> Iterator[None]:
    """Reports finish within a few polls here; the emulator is shared, so its settings are put back."""
    saved = (world.emulator.report_seconds, world.emulator.gzip_reports)
    world.emulator.report_seconds = 30.0  # / SPEED: milliseconds
    yield
    world.emulator.report_seconds, world.emulator.gzip_reports = saved


def reports_stream(world: World, *, api: str = "2026-01-01", history: str = "reports", **update: object) -> AmazonOrdersStream:
    store = amazon_store(world.url, orders_api=api).model_copy(update={"history": history, **update})
    stream = stream_for(store)
    stream.reports.poll_initial = 0.01
    stream.reports.poll_max = 0.05
    return stream


def report_parts(world: World, store: str = "amz-us") -> list[bytes]:
    return [body for _, parts in landed(world.landing, store) for part, body in parts if part.kind == KIND_REPORT]


def assert_truth(world: World, store: str = "amz-us") -> None:
    """Every visible order once in the latest versions, each in its current state, nothing quarantined."""
    rows = normalized(world.landing, world.home, store)
    assert rows.quarantine.height == 0, rows.quarantine["reason"].to_list()
    latest = latest_versions(rows.orders)
    truth = world.visible(store)
    assert set(latest["order_id"]) == set(truth)
    for row in latest.iter_rows(named=True):
        version = truth[row["order_id"]].version_at(world.emulator.now())
        assert (row["status"], row["payment_status"]) == (version.status, version.payment_status), row["order_id"]


@pytest.mark.parametrize("api", ["2026-01-01", "v0"])
def test_a_backfill_through_reports_lands_every_order_and_the_overlap_dedupes(world: World, api: str) -> None:
    stream = reports_stream(world, api=api)
    result = sync_stream(stream, world.landing)
    calls = world.emulator.requests
    assert calls["createReport"] == 3  # 90 days in windows of at most 30
    assert calls.get("getReportDocument", 0) >= 1
    bodies = report_parts(world)
    assert bodies and all(b.startswith(b"amazon-order-id\t") for b in bodies)  # landed gunzipped, byte for byte
    assert sum(inspect_report(b, "utf-8") for b in bodies) >= 1
    assert result.cursor is not None and "report" not in result.cursor
    assert_truth(world)
    again = sync_stream(reports_stream(world, api=api), world.landing)
    assert again.records == 0  # a short window: Orders API only, nothing new


def recent(world: World, count: int, *, within: timedelta) -> None:
    """``count`` orders placed within the last ``within`` (but older than the two-minute lag)."""
    step = (within - timedelta(minutes=3)) / count
    world.source.orders.extend(
        make_order(5000 + i, "amz-us", world.start - timedelta(minutes=3) - step * i, [(timedelta(0), "unfulfilled", "paid")])
        for i in range(count))


def test_reports_land_the_history_and_the_orders_api_the_last_hour(world: World) -> None:
    recent(world, 3, within=timedelta(minutes=50))
    stream = reports_stream(world)
    sync_stream(stream, world.landing)
    requests = [p.request for _, parts in landed(world.landing) for p, _ in parts]
    report_windows = [(r["dataStartTime"], r["dataEndTime"]) for r in requests if "reportId" in r]
    api_windows = [r["params"].get("lastUpdatedAfter") for r in requests if "params" in r]
    assert report_windows
    tail = max(end for _, end in report_windows)
    assert api_windows and all(a is None or a >= tail for a in api_windows)
    span = world.emulator.now().replace(microsecond=0) - timedelta(minutes=2) - REPORT_OVERLAP
    assert tail[:16] == span.strftime("%Y-%m-%dT%H:%M")


def test_auto_reads_a_small_seller_through_the_orders_api_and_a_big_one_through_reports(world: World) -> None:
    small = reports_stream(world, history="auto")
    sync_stream(small, world.landing)
    assert world.emulator.requests.get("createReport", 0) == 0
    assert_truth(world)
    world.emulator.requests.clear()
    recent(world, 5, within=timedelta(hours=20))
    big = reports_stream(world, history="auto")
    big.page_size = 2  # a full probe page: at least a page a day, 90 pages > api_pages_max
    sync_stream(big, world.landing.__class__(world.home / "landing-big"))
    assert world.emulator.requests["createReport"] == 3


def test_an_unchanged_report_document_without_gzip_lands_the_same(world: World) -> None:
    world.emulator.gzip_reports = False
    sync_stream(reports_stream(world), world.landing)
    assert_truth(world)


@pytest.mark.parametrize("fault", ["document_expired", "truncate_document", "report_slow", "500"])
def test_a_report_fault_on_the_way_still_lands_everything(world: World, fault: str) -> None:
    path = {"document_expired": REPORT_DOC, "truncate_document": REPORT_DOC, "500": r"/reports/2021-06-30/"}.get(fault, ".*")
    world.emulator.faults.add(fault, path=path)
    sync_stream(reports_stream(world), world.landing)
    assert any(kind == fault for kind, _ in world.emulator.faults.injected)
    assert_truth(world)


def test_a_fatal_report_stops_with_the_cool_down_then_the_next_run_completes(world: World) -> None:
    world.emulator.faults.add("report_fatal", path=r"/reports/2021-06-30/reports$")
    with pytest.raises(RetriableError, match=r"FATAL.*wait before requesting it again") as caught:
        sync_stream(reports_stream(world), world.landing)
    assert caught.value.retry_after and caught.value.retry_after > 60
    state = world.landing.state("amazon", "amz-us", "orders")
    assert state and state["report"]["id"]  # the failed report is remembered with its window
    created = world.emulator.requests["createReport"]
    with pytest.raises(RetriableError, match="FATAL"):  # still cooling down: no new request
        sync_stream(reports_stream(world), world.landing)
    assert world.emulator.requests["createReport"] == created
    world.advance(timedelta(minutes=31))
    sync_stream(reports_stream(world), world.landing)
    assert world.emulator.requests["createReport"] > created
    assert_truth(world)


def test_a_cancelled_report_of_a_window_with_orders_is_not_taken_for_empty(world: World) -> None:
    world.emulator.faults.add("report_cancelled", path=r"/reports/2021-06-30/reports$", after=2)  # the window with orders
    with pytest.raises(RetriableError, match="CANCELLED although the Orders API shows orders"):
        sync_stream(reports_stream(world), world.landing)
    state = world.landing.state("amazon", "amz-us", "orders")
    assert state and "report" not in state
    sync_stream(reports_stream(world), world.landing)
    assert_truth(world)


def test_a_stuck_report_is_resumed_by_id_and_replaced_when_it_never_starts(world: World) -> None:
    world.emulator.faults.add("report_stuck", path=r"/reports/2021-06-30/reports$")
    with pytest.raises(RetriableError, match="still IN_QUEUE"):
        sync_stream(reports_stream(world, report_timeout_s=1.0), world.landing)
    stuck = world.landing.state("amazon", "amz-us", "orders")["report"]["id"]
    created = world.emulator.requests["createReport"]
    with pytest.raises(RetriableError, match="still IN_QUEUE"):
        sync_stream(reports_stream(world, report_timeout_s=1.0), world.landing)
    assert world.emulator.requests["createReport"] == created  # resumed polling the same report
    assert world.landing.state("amazon", "amz-us", "orders")["report"]["id"] == stuck
    world.advance(timedelta(minutes=5))  # queued far longer than the timeout: give up on it
    sync_stream(reports_stream(world, report_timeout_s=1.0), world.landing)
    assert world.emulator.requests["createReport"] > created
    assert_truth(world)


def test_a_run_stopped_while_amazon_builds_the_report_resumes_polling_it(world: World) -> None:
    stream = reports_stream(world)
    pages = stream.pages(None)
    first = next(pages)  # the cursor naming the requested report, landed before any waiting
    assert not first.parts and first.cursor["report"]["id"]
    world.landing.write_batch("amazon", "amz-us", "orders", first.parts, first.cursor)
    pages.close()  # the process dies here
    sync_stream(reports_stream(world), world.landing)
    assert world.emulator.requests["createReport"] == 3  # not 4: the first one was picked up again
    assert_truth(world)


def test_no_429_at_steady_state_within_the_published_budgets(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.source.orders.extend(
        make_order(3000 + i, "amz-us", world.start - timedelta(hours=3, minutes=i), [(timedelta(0), "unfulfilled", "paid")])
        for i in range(40))
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        stream = reports_stream(world, history="orders_api")
        stream.page_size = 1  # more calls than searchOrders' burst of 20
        sync_stream(stream, world.landing)
        world.advance(timedelta(minutes=15))
    assert world.emulator.requests["searchOrders"] > 40
    assert not [r for r in caplog.records if "429" in r.getMessage()]


# -- Orders v0: buyer data through Restricted Data Tokens -------------------------------------------
def test_v0_with_pii_roles_gets_buyer_data_through_one_restricted_data_token(world: World) -> None:
    store = amazon_store(world.url, orders_api="v0").model_copy(update={"has_pii_roles": True, "history": "orders_api"})
    stream = stream_for(store, page_size=5)
    sync_stream(stream, world.landing)
    assert world.emulator.requests["createRestrictedDataToken"] == 1  # one RDT for every page
    assert world.emulator.requests["getOrders"] > 2
    rows = normalized(world.landing, world.home)
    with_email = rows.orders.filter(rows.orders["email"].is_not_null())
    assert with_email.height == rows.orders.height > 0
    assert not rows.orders["pii_masked"].any()


def test_v0_without_pii_roles_lands_null_pii_with_the_flag(world: World) -> None:
    store = amazon_store(world.url, orders_api="v0").model_copy(update={"history": "orders_api"})
    sync_stream(stream_for(store), world.landing)
    assert world.emulator.requests.get("createRestrictedDataToken", 0) == 0
    rows = normalized(world.landing, world.home)
    assert rows.orders.height > 0
    assert rows.orders["pii_masked"].all()
    for column in ("email", "buyer_name", "ship_name", "ship_line1", "phone"):
        assert rows.orders[column].null_count() == rows.orders.height, column  # NULL, never a placeholder


def test_an_rdt_refused_for_an_app_without_the_roles_says_what_to_do(world: World, jp_orders: list) -> None:
    store = amazon_store(world.url, key="amz-jp", marketplace=JP, orders_api="v0",
                         refresh_token="Atzr|sandbox-amz-jp").model_copy(update={"has_pii_roles": True})
    with pytest.raises(AuthError, match=r"lacks the PII roles.*has_pii_roles = false"):
        sync_stream(stream_for(store), world.landing)


# -- regions -----------------------------------------------------------------------------------------
def test_a_store_never_mixes_regions() -> None:
    base = {"key": "amz", "seller_id": "A1", "refresh_token": "Atzr|x", "lwa_client_id": "c", "lwa_client_secret": "s"}
    with pytest.raises(ValidationError, match=r"several SP-API regions.*one \[\[stores\]\] entry per region"):
        AmazonStore(**base, marketplace_ids=[US, "A1PA6795UKMFR9"])
    with pytest.raises(ValidationError, match="set marketplace_id"):
        AmazonStore(**base)
    with pytest.raises(ValidationError, match='region = "NA", "EU" or "FE"'):
        AmazonStore(**base, marketplace_id="AXXXXXXXXXXXX")
    na = AmazonStore(**base, marketplace_ids=[US, "A2EUQ1WTGCTBG2"])
    assert (na.region, na.marketplaces, na.api_endpoint) == ("NA", [US, "A2EUQ1WTGCTBG2"],
                                                             "https://sellingpartnerapi-na.amazon.com")
    eu = AmazonStore(**base, marketplace_id="A1PA6795UKMFR9")
    assert eu.api_endpoint == "https://sellingpartnerapi-eu.amazon.com"
    fe = AmazonStore(**base, marketplace_id="ANEW000000", region="FE")
    assert fe.api_endpoint == "https://sellingpartnerapi-fe.amazon.com"


# -- import ------------------------------------------------------------------------------------------
def test_a_saved_report_imports_plain_or_gzipped(world: World, tmp_path: Path) -> None:
    sync_stream(reports_stream(world), world.landing)
    body = report_parts(world)[-1]
    plain, packed = tmp_path / "orders.tsv", tmp_path / "orders.tsv.gz"
    plain.write_bytes(body)
    packed.write_bytes(gzip.compress(body))
    for path in (plain, packed):
        [manifest] = import_files([path], "amz-us", world.landing)
        [part] = manifest.parts
        assert part.kind == KIND_REPORT and part.records == inspect_report(body, "utf-8")
        assert world.landing.read_part(manifest, part) == body
    cut = tmp_path / "cut.tsv"
    cut.write_bytes(body[: len(body) // 2].rsplit(b"\t", 1)[0])
    from orderhub.errors import ConfigError

    with pytest.raises(ConfigError, match="fields"):
        import_files([cut], "amz-us", world.landing)


# -- one order, three views --------------------------------------------------------------------------
IGNORED = {"batch_id", "landed_at", "record_hash", "partial"}
REPORT_CARRIES = ["order_id", "external_id", "order_number", "created_at", "updated_at", "status", "payment_status",
                  "currency", "subtotal", "discount", "shipping", "tax", "total", "total_base", "ship_city",
                  "ship_region", "ship_postal_code", "ship_country", "fulfilled_by", "source_name"]


def _synced(world: World, api: str, history: str) -> tuple:
    landing = world.landing.__class__(world.home / f"{api}-{history}")
    store = amazon_store(world.url, orders_api=api).model_copy(update={"has_pii_roles": True, "history": history})
    stream = stream_for(store)
    stream.reports.poll_initial = 0.01
    sync_stream(stream, landing)
    rows = normalize_batches(landed(landing), settings(world.home))
    assert rows.quarantine.height == 0
    return latest_versions(rows.orders).sort("order_id"), rows.lines.sort("order_id", "line_no")


def test_the_same_order_through_v0_and_v2026_gives_the_same_canonical_row(world: World) -> None:
    new, new_lines = _synced(world, "2026-01-01", "orders_api")
    old, old_lines = _synced(world, "v0", "orders_api")
    columns = [c for c in new.columns if c not in IGNORED]
    assert new.height == len(world.visible()) > 10
    assert new.select(columns).to_dicts() == old.select(columns).to_dicts()
    # One documented difference: while an order is Pending, v2026-01-01 shows the unit price and v0 no price.
    pending = new.filter(new["status"] == "pending").select("order_id")
    assert pending.height > 0
    assert (new_lines.join(pending, on="order_id", how="anti").drop("batch_id").to_dicts()
            == old_lines.join(pending, on="order_id", how="anti").drop("batch_id").to_dicts())
    assert old_lines.join(pending, on="order_id", how="semi")["unit_price"].null_count() == 2 * pending.height


def test_a_report_row_agrees_with_the_orders_api_on_everything_a_report_carries(world: World) -> None:
    api, api_lines = _synced(world, "2026-01-01", "orders_api")
    world.advance(timedelta(hours=1))  # reports show the state of 30 minutes ago: let every change settle
    report, report_lines = _synced(world, "2026-01-01", "reports")
    from_report = report.filter(report["partial"])
    assert from_report.height > 10 and from_report["email"].null_count() == from_report.height
    same = api.join(from_report.select("order_id"), on="order_id", how="semi")
    assert same.height == from_report.height
    assert from_report.select(REPORT_CARRIES).to_dicts() == same.select(REPORT_CARRIES).to_dicts()
    priced = from_report.filter(from_report["status"] != "pending").select("order_id")  # Pending: no prices in a report
    picked = report_lines.join(priced, on="order_id", how="semi")
    expected = api_lines.join(priced, on="order_id", how="semi")
    keep = ["order_id", "line_no", "sku", "title", "quantity", "unit_price", "discount", "tax", "total"]
    assert picked.select(keep).to_dicts() == expected.select(keep).to_dicts()


def test_one_store_reads_all_marketplaces_of_its_region_in_each_call(world: World) -> None:
    world.source.orders.extend(
        make_order(7000 + i, "amz-ca", world.start - timedelta(days=1, hours=i), [(timedelta(0), "unfulfilled", "paid")],
                   currency="CAD") for i in range(3))
    store = amazon_store(world.url).model_copy(update={"key": "amz-na", "marketplace_ids": [US, CA], "history": "auto"})
    sync_stream(stream_for(store), world.landing)
    requests = [p.request for _, parts in landed(world.landing, "amz-na") for p, _ in parts]
    assert requests and all(r["params"]["marketplaceIds"] == [US, CA] for r in requests)
    result = normalized(world.landing, world.home, "amz-na")
    rows = result.orders
    assert result.quarantine.height == 0
    assert set(rows["currency"].drop_nulls()) == {"USD", "CAD"}  # NULL: Pending, no totals yet
    assert rows.height == len(world.visible("amz-us")) + len(world.visible("amz-ca"))


def test_the_emulator_refuses_a_call_across_regions(world: World) -> None:
    import httpx

    token = httpx.post(f"{world.url}/auth/o2/token", data={
        "grant_type": "refresh_token", "refresh_token": "Atzr|sandbox-amz-us", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET}).json()["access_token"]
    before = (world.emulator.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    res = httpx.get(f"{world.url}/orders/2026-01-01/orders", headers={"x-amz-access-token": token},
                    params={"marketplaceIds": f"{US},{JP}", "lastUpdatedAfter": "2026-01-01T00:00:00Z",
                            "lastUpdatedBefore": before})
    assert res.status_code == 400 and "different regions" in res.text


@pytest.mark.parametrize("api", ["2026-01-01", "v0"])
def test_get_order_fetches_single_orders_without_moving_the_cursor(world: World, api: str) -> None:
    store = amazon_store(world.url, orders_api=api).model_copy(update={"history": "orders_api"})
    sync_stream(stream_for(store), world.landing)
    state = world.landing.state("amazon", "amz-us", "orders")
    wanted = sorted(world.visible())[:2]
    stream = stream_for(store)
    result = sync_pages(stream, world.landing, stream.refetch([w.rsplit(":", 1)[1] for w in wanted], state))
    assert result.records == 2 and world.landing.state("amazon", "amz-us", "orders") == state
    rows = normalized(world.landing, world.home)
    assert rows.quarantine.height == 0
    assert rows.orders.filter(rows.orders["order_id"].is_in(wanted)).height == 4  # the sync's and getOrder's
