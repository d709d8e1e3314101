"""Prefect flows: thin chains of the plain functions in ``orderhub.ops`` (STYLE.md 7)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.concurrency.sync import concurrency

from orderhub import ops
from orderhub.config import Settings, load_settings
from orderhub.errors import RetriableError

WAREHOUSE_LIMIT = "orderhub-warehouse-writer"  # global concurrency limit (1): one warehouse writer at a time


def _settings(home: str | None) -> Settings:
    return load_settings(Path(home) if home else None)


def _retriable(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a task only when what escaped the HTTP layer is retriable (the channel was down for longer)."""
    try:
        state.result()
    except RetriableError:
        return True
    except Exception:  # noqa: BLE001 - anything else is not worth a retry
        return False
    return False


@contextmanager
def _warehouse_writer() -> Any:
    # The file lock in warehouse/db.py is the guarantee; the Prefect limit keeps runs queued in the
    # UI instead of failing on the lock when schedules overlap. Non-strict: runs without a server limit too.
    with concurrency(WAREHOUSE_LIMIT, occupy=1, strict=False):
        yield


@task(retries=2, retry_delay_seconds=60, retry_condition_fn=_retriable)
def sync_store_task(home: str | None, store: str) -> dict[str, int]:
    """Land new and changed orders of one store."""
    results = ops.sync_store(_settings(home), store)
    return {f"{r.stream}": r.records for r in results}


@task
def process_task(home: str | None) -> Any:
    """Normalize, dedupe and load what was landed."""
    with _warehouse_writer():
        return ops.process(_settings(home))


@task
def crm_task(home: str | None) -> Any:
    """Update the CRM store from the warehouse."""
    with _warehouse_writer():
        return ops.update_crm(_settings(home))


@task
def tags_task(home: str | None) -> Any:
    """Set VIP / at-risk tags."""
    with _warehouse_writer():
        return ops.tag_customers(_settings(home))


@task(retries=2, retry_delay_seconds=60)
def push_tags_task(home: str | None) -> Any:
    """Push customer tags to the Shopify stores that ask for it (only what changed)."""
    return ops.push_shopify_tags(_settings(home))


@task
def export_task(home: str | None) -> Any:
    """Export eligible orders to the outbox."""
    with _warehouse_writer():
        return ops.export(_settings(home))


@task
def report_task(home: str | None, day: date | None = None) -> Any:
    """Publish the daily report."""
    with _warehouse_writer():
        return ops.report(_settings(home), day)


@flow(name="sync-store")
def sync_store_flow(store: str, home: str | None = None) -> Any:
    """Sync one store, then process what it landed."""
    landed = sync_store_task(home, store)
    get_run_logger().info("store %s landed %s", store, landed)
    return process_task(home)


@flow(name="sync-all")
def sync_all_flow(home: str | None = None) -> Any:
    """Sync every enabled store concurrently, then process."""
    settings = _settings(home)
    futures = [sync_store_task.submit(home, s.key) for s in ops.enabled_stores(settings)]
    for future in futures:
        future.result(raise_on_failure=False)
    result = process_task(home)
    failed = [f for f in futures if f.state.is_failed()]
    if failed:
        raise RuntimeError(f"{len(failed)} store sync(s) failed; what the others landed was processed")
    return result


@flow(name="export")
def export_flow(home: str | None = None) -> Any:
    """Export clean orders for fulfillment (hourly)."""
    return export_task(home)


@flow(name="report")
def report_flow(home: str | None = None, day: date | None = None) -> Any:
    """Publish the CEO's daily report (06:00 in the configured time zone)."""
    return report_task(home, day)


@flow(name="tags")
def tags_flow(home: str | None = None) -> Any:
    """Refresh the CRM from the warehouse and re-tag customers (nightly)."""
    crm_task(home)
    tagged = tags_task(home)
    push_tags_task(home)
    return tagged


@flow(name="orderhub-pipeline")
def pipeline_flow(home: str | None = None) -> ops.RunSummary:
    """The whole pipeline once: sync every store → process → CRM → tags → export → report."""
    settings = _settings(home)
    summary = ops.RunSummary()
    futures = [sync_store_task.submit(home, s.key) for s in ops.enabled_stores(settings)]
    for future in futures:
        future.result()
    summary.process = process_task(home)
    summary.crm = crm_task(home)
    summary.tags = tags_task(home)
    summary.pushed_tags = push_tags_task(home)
    summary.export = export_task(home)
    summary.report = report_task(home)
    summary.paths = ops.paths(settings)
    return summary
