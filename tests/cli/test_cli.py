"""The CLI as an operator meets it: import saved responses, process, status; clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "real"


def _orderhub(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"ORDERHUB_HOME": str(home), "PATH": "/usr/bin:/bin", "PREFECT_HOME": str(home / "prefect")}
    return subprocess.run([sys.executable, "-m", "orderhub", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_import_process_status(tmp_path) -> None:
    shopify = _orderhub(tmp_path, "import", "--channel", "shopify", "--store", "support",
                        str(FIXTURES / "shopify" / "orders.json"))
    assert shopify.returncode == 0, shopify.stderr
    woo = _orderhub(tmp_path, "import", "--channel", "woocommerce", "--store", "legacy",
                    str(FIXTURES / "woocommerce" / "list_orders.v3.example.json"))
    assert woo.returncode == 0, woo.stderr
    processed = _orderhub(tmp_path, "process")
    assert processed.returncode == 0, processed.stderr
    assert "quarantined" in processed.stdout
    status = _orderhub(tmp_path, "status", "--json")
    rows = json.loads(status.stdout)
    by_store = {(r["channel"], r["store"]): r for r in rows}
    assert by_store[("woocommerce", "legacy")]["landed"] == 2
    assert by_store[("shopify", "support")]["landed"] >= 1
    assert by_store[("woocommerce", "legacy")]["loaded"] + by_store[("woocommerce", "legacy")]["quarantined"] == 2


def test_bad_config_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "orderhub.toml").write_text('timezone = "Mars/Olympus"\n')
    result = _orderhub(tmp_path, "status")
    assert result.returncode == 2
    assert "unknown time zone" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_bench_api_time_runs_a_real_backfill_and_prices_its_calls(tmp_path) -> None:
    result = _orderhub(tmp_path, "bench", "api-time", "--channel", "amazon", "--orders-per-day", "300", "--days", "20",
                       "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= {"incremental_15min_s", "backfill_20d_s", "calls"}
    assert out["calls"]["createReport"] == 1  # 20 days of 300 a day: one report, not 60 searchOrders pages
    assert out["records_landed"]["backfill"] >= out["orders_in_history"] > 5000  # the overlap lands some twice
    assert out["steady_state_ok"] is True
    # The arithmetic: at 0.0056/s after a burst of 20, paging 60 pages would take over two hours.
    assert out["backfill_by_searchOrders_paging_s"] == round((-(-out["orders_in_history"] // 100) - 20) / 0.0056)
    wrong = _orderhub(tmp_path, "bench", "api-time", "--channel", "ebay")
    assert wrong.returncode == 2 and "amazon" in wrong.stdout


def test_bench_api_time_for_shopify_prices_paging_against_a_bulk_operation(tmp_path) -> None:
    result = _orderhub(tmp_path, "bench", "api-time", "--channel", "shopify", "--orders-per-day", "200", "--days", "8",
                       "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    n = out["orders_in_history"]
    assert {"incremental_15min_s", f"backfill_{n}_orders_paged_s", f"backfill_{n}_orders_bulk_s",
            "query_cost_per_100_orders", "calls"} <= set(out)
    assert out["records_landed"]["paged"] == out["records_landed"]["bulk"] == n > 1000
    assert out["calls"]["bulk"]["bulkOperationRunQuery"] == 1 and "orders" not in out["calls"]["bulk"]
    assert out["cost_points"]["bulk"] < out["cost_points"]["paged"] / 10  # the bulk file costs next to nothing
    assert out["query_cost_per_100_orders"] == round(out["cost_points"]["paged"] / n * 100, 1)


def test_bench_crawl_reports_the_crawl_speed_of_the_sample_site(tmp_path) -> None:
    result = _orderhub(tmp_path, "bench", "crawl", "--orders", "30", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["orders"] == 30 and out["requests"] > 30  # login, list pages and one detail page per order
    assert abs(out["orders_per_s"] - 30 / out["crawl_s"]) < 0.1 * out["orders_per_s"]  # crawl_s is rounded
    assert out["autothrottle"] == {"target_concurrency": 4.0, "start_delay_s": 0.25}


def test_customers_dedupe_writes_every_record_with_its_cluster(tmp_path) -> None:
    from sandbox.people_records import write_people_csv

    people, truth = write_people_csv(tmp_path / "people.csv", 1500, seed=4)
    out = tmp_path / "clusters.csv"
    result = _orderhub(tmp_path, "customers", "dedupe", "--input", str(people), "--output", str(out),
                       "--review", str(tmp_path / "review.csv"))
    assert result.returncode == 0, result.stderr
    import polars as pl

    from orderhub.bench_identity import scores

    clusters = pl.read_csv(out, infer_schema=False)
    given = pl.read_csv(people, infer_schema=False)
    assert clusters["record_id"].to_list() == given["record_id"].to_list()  # every input record, in order
    assert set(clusters.columns) == {"record_id", "cluster_id", "match_probability"}
    s = scores(clusters, pl.read_csv(truth, infer_schema=False))
    assert s["pairwise_precision"] >= 0.98 and s["clusters"] < given.height
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n1,Ann\n", encoding="utf-8")
    refused = _orderhub(tmp_path, "customers", "dedupe", "--input", str(bad), "--output", str(out))
    assert refused.returncode == 2 and "record_id" in refused.stdout + refused.stderr
