"""RFM tagging: VIP and at-risk customers from their order history, with every tag's history kept."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select, type_coerce, update
from sqlalchemy.sql import bindparam

from crm import schema
from crm.store import CrmStore
from crm.types import Money, UtcDateTime
from orderhub.config import Thresholds

if TYPE_CHECKING:
    import duckdb

VIP = "vip"
AT_RISK = "at_risk"
AUTO_TAGS = (VIP, AT_RISK)


@dataclass(frozen=True)
class Rfm:
    """Recency, frequency and monetary value of one customer.

    Only original, non-cancelled orders count: a cross-channel mirror (``duplicate_of`` set) is the
    same purchase seen twice. Monetary is the sum of ``total_base`` in the base currency; orders
    whose total could not be converted (``total_base`` NULL) count for frequency only.

    Attributes:
        customer_id: the customer.
        orders: number of counted orders (frequency).
        monetary: their total in the base currency.
        last_order_at: the newest counted order (recency).
    """

    customer_id: str
    orders: int
    monetary: Decimal
    last_order_at: datetime | None


@dataclass(frozen=True)
class TagStats:
    """What :func:`apply_rfm_tags` did.

    Attributes:
        customers: customers scored (with at least one counted order).
        added: auto tags set now, per tag.
        removed: auto tags removed now, per tag.
        active: active auto tags after the run, per tag.
    """

    customers: int
    added: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)


def compute_rfm(crm: CrmStore) -> dict[str, Rfm]:
    """Recency, frequency and monetary value per customer, aggregated in the CRM database.

    Args:
        crm: the CRM store.

    Returns:
        ``customer_id`` → :class:`Rfm`, for every customer with at least one counted order.
    """
    o = schema.orders
    stmt = (
        select(
            o.c.customer_id,
            func.count().label("orders"),
            # Money sums exactly on both engines (integer 1/10000 units on SQLite, NUMERIC elsewhere).
            type_coerce(func.sum(o.c.total_base), Money()).label("monetary"),
            type_coerce(func.max(o.c.created_at), UtcDateTime()).label("last_order_at"),
        )
        .where(
            o.c.customer_id.is_not(None),
            o.c.duplicate_of.is_(None),
            or_(o.c.status.is_(None), o.c.status != "cancelled"),
        )
        .group_by(o.c.customer_id)
    )
    with crm.read() as conn:
        return {
            row.customer_id: Rfm(row.customer_id, int(row.orders), row.monetary or Decimal(0), row.last_order_at)
            for row in conn.execute(stmt)
        }


def wanted_tags(rfm: Rfm, thresholds: Thresholds, now: datetime) -> set[str]:
    """The auto tags a customer should carry.

    ``vip``: spent at least ``vip_min_spent`` or ordered at least ``vip_min_orders`` times.
    ``at_risk``: ordered at least ``at_risk_min_orders`` times, the last time more than
    ``at_risk_after_days`` ago. A lapsing VIP carries both: that is the customer to call first.
    """
    tags: set[str] = set()
    if rfm.monetary >= thresholds.vip_min_spent or rfm.orders >= thresholds.vip_min_orders:
        tags.add(VIP)
    lapsed_before = now - timedelta(days=thresholds.at_risk_after_days)
    if (
        rfm.orders >= thresholds.at_risk_min_orders
        and rfm.last_order_at is not None
        and rfm.last_order_at < lapsed_before
    ):
        tags.add(AT_RISK)
    return tags


def apply_rfm_tags(crm: CrmStore, thresholds: Thresholds, now: datetime) -> TagStats:
    """Set and remove the auto tags ``vip`` and ``at_risk`` from each customer's order history.

    Only the difference is written: a tag that stays is not touched (re-runs change nothing), a
    tag that no longer applies gets ``removed_at = now``, a tag that applies again gets a new row.
    Manual tags (``source='manual'``) are never read or written here.

    Args:
        crm: the CRM store (synced from the warehouse).
        thresholds: the RFM thresholds from the configuration.
        now: the time the tags are evaluated at and stamped with (time-zone aware).

    Returns:
        Counts of what was added, removed and is now active.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("apply_rfm_tags needs a time-zone-aware now")
    crm.create_all()
    scores = compute_rfm(crm)
    wanted = {(cid, tag) for cid, rfm in scores.items() for tag in wanted_tags(rfm, thresholds, now)}
    t = schema.tags
    with crm.write() as conn:
        # Read the current auto tags inside the write transaction: nothing can change them between
        # this read and the writes below.
        current = {
            (row.customer_id, row.tag)
            for row in conn.execute(
                select(t.c.customer_id, t.c.tag).where(
                    t.c.source == "auto", t.c.removed_at.is_(None), t.c.tag.in_(AUTO_TAGS)
                )
            )
        }
        to_add = sorted(wanted - current)
        to_remove = sorted(current - wanted)
        if to_add:
            conn.execute(
                t.insert(),
                [{"customer_id": c, "tag": g, "source": "auto", "set_at": now, "removed_at": None} for c, g in to_add],
            )
        if to_remove:
            conn.execute(
                update(t)
                .where(
                    t.c.customer_id == bindparam("cid"),
                    t.c.tag == bindparam("tg"),
                    t.c.source == "auto",
                    t.c.removed_at.is_(None),
                )
                .values(removed_at=now),
                [{"cid": c, "tg": g} for c, g in to_remove],
            )
    return TagStats(
        customers=len(scores),
        added=_count(to_add),
        removed=_count(to_remove),
        active=_count(wanted),
    )


def _count(pairs: list[tuple[str, str]] | set[tuple[str, str]]) -> dict[str, int]:
    counts = dict.fromkeys(AUTO_TAGS, 0)
    for _customer, tag in pairs:
        counts[tag] = counts.get(tag, 0) + 1
    return counts


def active_tags(crm: CrmStore) -> dict[str, list[str]]:
    """Every customer's active tags (auto and manual, each name once, sorted)."""
    t = schema.tags
    found: dict[str, set[str]] = defaultdict(set)
    with crm.read() as conn:
        for row in conn.execute(select(t.c.customer_id, t.c.tag).where(t.c.removed_at.is_(None))):
            found[row.customer_id].add(row.tag)
    return {cid: sorted(tags) for cid, tags in found.items()}


def write_tags_to_warehouse(crm: CrmStore, con: duckdb.DuckDBPyConnection) -> int:
    """Mirror the CRM's active tags into the warehouse ``customers`` (``tags``, ``vip``, ``at_risk``).

    One UPDATE statement (atomic) over every warehouse customer; rows already right are not
    rewritten. ``vip`` / ``at_risk`` are true when the tag is active from either source, so a VIP
    tag set by customer service counts in the report too.

    Args:
        crm: the CRM store.
        con: a writable warehouse connection.

    Returns:
        The number of warehouse customers whose tags changed.
    """
    tags = active_tags(crm)
    ids = list(tags)
    lists = [tags[cid] for cid in ids]
    result = con.execute(
        """
        UPDATE customers SET tags = u.tags, vip = u.vip, at_risk = u.at_risk
        FROM (
            SELECT c.customer_id,
                   coalesce(a.tags, []::VARCHAR[]) AS tags,
                   list_contains(coalesce(a.tags, []::VARCHAR[]), $vip) AS vip,
                   list_contains(coalesce(a.tags, []::VARCHAR[]), $at_risk) AS at_risk
            FROM customers c
            LEFT JOIN (SELECT unnest($ids::VARCHAR[]) AS customer_id, unnest($lists::VARCHAR[][]) AS tags) a
              USING (customer_id)
        ) u
        WHERE customers.customer_id = u.customer_id
          AND (customers.tags IS DISTINCT FROM u.tags
               OR customers.vip IS DISTINCT FROM u.vip
               OR customers.at_risk IS DISTINCT FROM u.at_risk)
        """,
        {"ids": ids, "lists": lists, "vip": VIP, "at_risk": AT_RISK},
    ).fetchall()
    return int(result[0][0]) if result else 0
