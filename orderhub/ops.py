"""The plain functions behind every CLI command and Prefect task (tests call these directly)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from connectors.base import SyncResult, sync_stream
from connectors.landing import LandingStore
from connectors.registry import streams_for
from orderhub import clock
from orderhub.config import Settings
from orderhub.errors import ConfigError

log = logging.getLogger(__name__)


def landing_store(settings: Settings) -> LandingStore:
    """The landing zone of this home."""
    return LandingStore(settings.landing_root)


def enabled_stores(settings: Settings, only: str | None = None) -> list[Any]:
    """Configured, enabled stores (optionally one store key)."""
    stores = [s for s in settings.stores if s.enabled and (only is None or s.key == only)]
    if only and not stores:
        raise ConfigError(f"no enabled store {only!r} in {settings.home / 'orderhub.toml'}")
    return stores


def sync_store(settings: Settings, store_key: str) -> list[SyncResult]:
    """Sync every stream of one store into landing."""
    from connectors.http import SHARED_BUCKETS

    landing = landing_store(settings)
    SHARED_BUCKETS.persist_to(settings.home / "state" / "ratelimits")  # the next run resumes these levels
    results = []
    for store in enabled_stores(settings, store_key):
        for stream in streams_for(store):
            results.append(sync_stream(stream, landing, meta={"store": store.key}))
    return results


def refetch_orders(settings: Settings, store_key: str, order_ids: list[str]) -> list[SyncResult]:
    """Fetch named orders of one store again (Amazon getOrder) and land them; the cursor stays where it is."""
    from connectors.base import sync_pages

    landing = landing_store(settings)
    results = []
    for store in enabled_stores(settings, store_key):
        for stream in streams_for(store):
            refetch = getattr(stream, "refetch", None)
            if refetch is None:
                raise ConfigError(f"fetching single orders by id is not available for {store.channel} stores yet; "
                                  f"run `orderhub sync --store {store.key}` instead")
            state = landing.state(stream.channel, store.key, stream.name)
            results.append(sync_pages(stream, landing, refetch(order_ids, state), meta={"store": store.key}))
    return results


def process(settings: Settings, progress: Any = None) -> Any:
    """Normalize, dedupe and load everything landed and not yet processed."""
    from pipelines.process import process_landed
    from warehouse.db import Warehouse

    with Warehouse.open(settings.warehouse_path) as wh:
        return process_landed(settings, landing_store(settings), wh, progress=progress)


def update_crm(settings: Settings) -> Any:
    """Copy customers, identities and order history from the warehouse into the CRM store."""
    from crm.store import CrmStore
    from warehouse.db import Warehouse

    crm = CrmStore(settings.crm_database_url)
    crm.create_all()
    with Warehouse.open(settings.warehouse_path) as wh:
        return crm.sync_from_warehouse(wh.con)


def tag_customers(settings: Settings) -> Any:
    """RFM tags (VIP, at-risk) in the CRM store, mirrored into the warehouse customers table."""
    from crm.store import CrmStore
    from crm.tags import apply_rfm_tags, write_tags_to_warehouse
    from warehouse.db import Warehouse

    crm = CrmStore(settings.crm_database_url)
    crm.create_all()
    stats = apply_rfm_tags(crm, settings.thresholds, clock.now())
    with Warehouse.open(settings.warehouse_path) as wh:
        write_tags_to_warehouse(crm, wh.con)
    return stats


def push_shopify_tags(settings: Settings) -> list[Any]:
    """Push CRM tags to the customers of every Shopify store with ``push_tags = true`` (only the changes)."""
    from sqlalchemy import select

    from connectors.shopify.client import ShopifyClient
    from connectors.shopify.tags import TagLedger, push_tags
    from crm import schema
    from crm.store import CrmStore

    stores = [s for s in enabled_stores(settings, None) if s.channel == "shopify" and s.push_tags]
    if not stores:
        return []
    crm = CrmStore(settings.crm_database_url)
    crm.create_all()
    active = select(schema.tags.c.customer_id, schema.tags.c.tag).where(schema.tags.c.removed_at.is_(None))
    with crm.read() as conn:
        tags: dict[str, set[str]] = {}
        for customer_id, tag in conn.execute(active):
            tags.setdefault(customer_id, set()).add(tag)
        identities = conn.execute(
            select(schema.identities.c.store, schema.identities.c.channel_customer_key, schema.identities.c.customer_id)
            .where(schema.identities.c.channel == "shopify", schema.identities.c.channel_customer_key.is_not(None))
        ).all()
    results = []
    for store in stores:
        wanted: dict[str, set[str]] = {}
        for store_key, key, customer_id in identities:
            if store_key == store.key:
                wanted.setdefault(str(key), set()).update(tags.get(customer_id, set()))
        ledger = TagLedger(settings.home / "state" / "shopify-tags" / f"{store.key}.json")
        results.append(push_tags(ShopifyClient(store), wanted, ledger))
    return results


def export(settings: Settings) -> Any:
    """Export paid, unfulfilled, merchant-fulfilled originals to the outbox, each exactly once."""
    from fulfillment.export import export_orders
    from warehouse.db import Warehouse

    with Warehouse.open(settings.warehouse_path) as wh:
        return export_orders(wh.con, settings.outbox_dir, settings, now=clock.now())


def report(settings: Settings, day: date | None = None) -> Any:
    """Publish the daily report (DuckDB + HTML) for ``day`` (default: today in the configured zone)."""
    from warehouse.db import Warehouse
    from warehouse.report import publish_daily_report

    day = day or clock.now().astimezone(settings.zone).date()
    with Warehouse.open(settings.warehouse_path) as wh:
        return publish_daily_report(wh.con, settings.reports_dir, day, settings)


@dataclass
class RunSummary:
    """Everything one whole pipeline run did, for the operator."""

    syncs: list[SyncResult] = field(default_factory=list)
    process: Any = None
    crm: Any = None
    tags: Any = None
    pushed_tags: Any = None
    export: Any = None
    report: Any = None
    paths: dict[str, Path] = field(default_factory=dict)


def run_all(settings: Settings) -> RunSummary:
    """Sync every store → process → CRM → tags → export → report (what ``orderhub run`` and the demo do)."""
    summary = RunSummary()
    for store in enabled_stores(settings):
        summary.syncs.extend(sync_store(settings, store.key))
    summary.process = process(settings)
    summary.crm = update_crm(settings)
    summary.tags = tag_customers(settings)
    summary.pushed_tags = push_shopify_tags(settings)
    summary.export = export(settings)
    summary.report = report(settings)
    summary.paths = paths(settings)
    return summary


def paths(settings: Settings) -> dict[str, Path]:
    """Where each store of this home lives."""
    return {
        "warehouse": settings.warehouse_path,
        "crm": Path(settings.crm_database_url.removeprefix("sqlite:///")),
        "outbox": settings.outbox_dir,
        "reports": settings.reports_dir / "daily",
        "landing": Path(settings.landing_root),
    }
