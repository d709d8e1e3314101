"""The Prefect flows run whole, and the deployments carry the documented schedules."""

from __future__ import annotations

import pytest
from prefect.testing.utilities import prefect_test_harness

from orderhub import clock
from orderhub.config import load_settings
from sandbox.server import Sandbox

pytestmark = pytest.mark.xdist_group("prefect")


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_pipeline_flow_runs_every_stage(harness, tmp_path) -> None:
    from flows.orderhub_flows import pipeline_flow

    with Sandbox(tmp_path, orders=400, seed=5, speed=1000.0):
        state = pipeline_flow(str(tmp_path), return_state=True)
        assert state.is_completed()
        summary = state.result()
    clock.use_offset_file(None)
    assert summary.process.inserted > 0
    assert summary.export is not None and summary.report is not None
    assert (tmp_path / "warehouse.duckdb").exists()
    assert list((tmp_path / "reports" / "daily").glob("*.html"))


def test_deployments_have_the_documented_schedules(tmp_path) -> None:
    from flows.serve import deployments

    (tmp_path / "orderhub.toml").write_text(
        'timezone = "Europe/Berlin"\n'
        '[[stores]]\nchannel = "shopify"\nkey = "a"\nshop = "a"\naccess_token = "x"\n'
        '[[stores]]\nchannel = "woocommerce"\nkey = "w"\nurl = "https://w.example"\nconsumer_key = "k"\n'
        'consumer_secret = "s"\nenabled = false\n'
    )
    deps = {d.name: d for d in deployments(load_settings(tmp_path))}
    assert set(deps) == {"sync-shopify-a", "export", "report", "tags"}
    sync = deps["sync-shopify-a"].schedules[0].schedule
    assert sync.interval.total_seconds() == 900
    report = deps["report"].schedules[0].schedule
    assert (report.cron, report.timezone) == ("0 6 * * *", "Europe/Berlin")
    assert deps["export"].schedules[0].schedule.cron == "0 * * * *"
