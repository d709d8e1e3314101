"""Ground-truth helpers for end-to-end tests: what orderhub should have made of the sandbox business."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.base import cursor_as_of
from connectors.landing import LandingStore
from orderhub import clock

EPS = timedelta(microseconds=1)


def cutoffs(landing: LandingStore) -> dict[tuple[str, str], datetime]:
    """Per (channel, store): the end of the last synced window (exclusive)."""
    out = {}
    for channel, store, stream in landing.streams():
        if stream != "orders":
            continue
        as_of = cursor_as_of(landing.state(channel, store, stream))
        if as_of is not None:
            out[(channel, store)] = as_of
    return out


@dataclass
class Expected:
    """What must be in the warehouse, per the truth as of each store's cutoff."""

    real: dict[str, Any]  # order_id -> (order, version) for clean, non-mirror orders
    mirrors: dict[str, str]  # mirror order_id -> original order_id
    defective: dict[str, Any]  # order_id -> order for malformed records
    eligible: set[str]  # order ids that fulfillment must export
    inflight: set[str]  # changed at or after the cutoff (second-rounded): a sync may or may not hold them yet


def expected(business: Any, landing: LandingStore) -> Expected:
    """Build the expectation from the business and what was synced."""
    cut = cutoffs(landing)
    by_truth = {o.truth_id: o for o in business.orders}
    real, mirrors, defective, eligible, inflight = {}, {}, {}, set(), set()
    for order in business.orders:
        until = cut.get((order.channel, order.store))
        if until is None:
            continue
        # APIs serve an order's *current* version, filtered by its time in whole seconds: an order
        # that changed again after the window's end is served in the next window, not this one.
        edge = until.replace(microsecond=0)
        if any(v.at >= edge and v.at <= clock.now() for v in order.versions) or edge <= order.created_at < until:
            inflight.add(order.order_id)
        version = order.version_at(until - EPS)
        if version is None or order.created_at >= until:
            continue
        if order.defect:
            defective[order.order_id] = order
        elif order.mirror_of:
            original = by_truth[order.mirror_of]
            mirrors[order.order_id] = original.order_id
        else:
            real[order.order_id] = (order, version)
            if (version.status == "unfulfilled" and version.payment_status == "paid"
                    and order.fulfilled_by == "merchant"):
                eligible.add(order.order_id)
    return Expected(real, mirrors, defective, eligible, inflight)


def pairwise_precision_recall(assignments: list[tuple[str, str]]) -> tuple[float, float]:
    """Pairwise precision and recall of (person_id, customer_id) assignments, one per order."""
    import polars as pl

    from orderhub.bench_identity import scores

    frame = pl.DataFrame([(str(i), p, c) for i, (p, c) in enumerate(assignments)],
                         schema={"record_id": pl.String, "person_id": pl.String, "cluster_id": pl.String}, orient="row")
    s = scores(frame.select("record_id", "cluster_id"), frame.select("record_id", "person_id"))
    return s["pairwise_precision"], s["pairwise_recall"]
