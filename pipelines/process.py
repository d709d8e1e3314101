"""Process what was landed: normalize → dedupe → load the warehouse, batch by batch, exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from connectors.landing import LandingStore, Manifest
from dedupe.identity import resolve_customers
from dedupe.mirrors import resolve_mirrors
from orderhub import clock
from orderhub.config import Settings
from pipelines import amazon, feed, shopify, storefront, woocommerce  # noqa: F401 - importing registers the normalizers
from pipelines.common import normalize_batches
from warehouse.db import Warehouse

log = logging.getLogger(__name__)

CHUNK_RECORDS = 50_000  # records normalized and merged per transaction: bounded memory at any scale


@dataclass
class StoreCounts:
    """Per channel and store: what was landed, loaded and quarantined in this run."""

    landed: int = 0
    loaded: int = 0
    quarantined: int = 0


@dataclass
class ProcessResult:
    """What one processing run did."""

    batches: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    mirrors: int = 0
    customers: int = 0
    by_store: dict[tuple[str, str], StoreCounts] = field(default_factory=dict)

    @property
    def landed(self) -> int:
        """Records landed in the processed batches."""
        return sum(c.landed for c in self.by_store.values())

    @property
    def quarantined(self) -> int:
        """Records quarantined in this run."""
        return sum(c.quarantined for c in self.by_store.values())


def _chunks(manifests: list[Manifest]) -> Iterator[list[Manifest]]:
    chunk: list[Manifest] = []
    size = 0
    for manifest in manifests:
        chunk.append(manifest)
        size += manifest.records
        if size >= CHUNK_RECORDS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def pending_batches(landing: LandingStore, wh: Warehouse) -> list[Manifest]:
    """Landed batches the warehouse has not processed yet, oldest first per stream."""
    done = wh.processed_batch_ids()
    return [m for m in landing.manifests() if m.batch_id not in done]


def identity_overrides(settings: Settings) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The merges and unmerges customer service made (CRM store ``identity_overrides``), for every run."""
    from crm.store import CrmStore

    store = CrmStore(settings.crm_database_url)
    try:
        store.create_all()
        return store.active_links()
    finally:
        store.close()


def process_landed(
    settings: Settings,
    landing: LandingStore,
    wh: Warehouse,
    *,
    progress: Callable[[int, int], Any] | None = None,
) -> ProcessResult:
    """Normalize, dedupe and load every landed batch not processed yet.

    Each chunk of batches is merged in one warehouse transaction together with its
    ``processed_batches`` rows, so a crash never loads a batch twice or skips one. For every
    batch, loaded + quarantined = landed (checked; a mismatch is a bug and stops the run).

    Args:
        settings: configuration (rates, SKU map, SLA).
        landing: where the raw batches are.
        wh: the open warehouse (this process is its single writer).
        progress: optional ``callback(done_records, total_records)``.
    """
    result = ProcessResult()
    todo = pending_batches(landing, wh)
    total = sum(m.records for m in todo)
    done = 0
    for chunk in _chunks(todo):
        batches = [(m, [(p, landing.read_part(m, p)) for p in m.parts]) for m in chunk]
        normalized = normalize_batches(batches, settings)
        loaded = normalized.orders.group_by("batch_id").len("n")
        quarantined = normalized.quarantine.group_by("batch_id").agg(pl.col("records").sum().alias("n"))
        loaded_by = dict(zip(loaded["batch_id"].to_list(), loaded["n"].to_list(), strict=True))
        quar_by = dict(zip(quarantined["batch_id"].to_list(), quarantined["n"].to_list(), strict=True))
        rows = []
        for m in chunk:
            n_loaded, n_quar = loaded_by.get(m.batch_id, 0), quar_by.get(m.batch_id, 0)
            if n_loaded + n_quar != m.records:
                raise RuntimeError(
                    f"batch {m.batch_id}: landed {m.records} but loaded {n_loaded} + quarantined {n_quar}; "
                    "a normalizer dropped or invented records — nothing of this chunk was loaded"
                )
            rows.append({
                "batch_id": m.batch_id, "channel": m.channel, "store": m.store, "stream": m.stream, "seq": m.seq,
                "source": m.source, "records": m.records, "loaded": n_loaded, "quarantined": n_quar,
                "landed_at": m.landed_at_dt, "processed_at": clock.now(),
            })
            counts = result.by_store.setdefault((m.channel, m.store), StoreCounts())
            counts.landed += m.records
            counts.loaded += n_loaded
            counts.quarantined += n_quar
        wh.con.begin()
        try:
            stats = wh.merge_orders(normalized.orders, normalized.lines)
            wh.add_quarantine(normalized.quarantine)
            wh.record_batches(rows)
            wh.con.commit()
        except BaseException:
            wh.con.rollback()
            raise
        result.batches += len(chunk)
        result.inserted += stats.inserted
        result.updated += stats.updated
        result.unchanged += stats.unchanged
        done += sum(m.records for m in chunk)
        if progress:
            progress(done, total)
    result.mirrors = resolve_mirrors(wh.con)
    must, cannot = identity_overrides(settings)
    identity = resolve_customers(wh.con, must_link=must, cannot_link=cannot,
                                 index_path=settings.home / "state" / "people.duckdb")
    result.customers = getattr(identity, "customers", 0)
    log.info(
        "processed %d batches: %d new, %d updated, %d unchanged orders; %d quarantined",
        result.batches, result.inserted, result.updated, result.unchanged, result.quarantined,
    )
    return result
