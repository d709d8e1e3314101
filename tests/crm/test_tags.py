"""RFM tagging: VIP / at-risk with history, idempotent re-runs, manual tags untouched, mirrored into the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest

from crm.store import CrmStore
from crm.tags import apply_rfm_tags, compute_rfm, write_tags_to_warehouse
from orderhub.config import Thresholds

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TH = Thresholds(vip_min_spent=Decimal("1000"), vip_min_orders=5, at_risk_after_days=90, at_risk_min_orders=2)


@pytest.fixture
def shop(crm: CrmStore, order_frame, make_order) -> CrmStore:
    """Customers whose histories sit on both sides of every threshold."""
    crm.upsert_customers(pl.DataFrame({"customer_id": ["big", "almost", "many", "lapsed", "new", "mirrored", "manual"]}))
    rows = [
        # big: three orders summing to exactly vip_min_spent; almost: one ten-thousandth short
        *(make_order(f"shopify:s:big{i}", "big", NOW - timedelta(days=i), total_base=Decimal(amount))
          for i, amount in enumerate(["333.3333", "333.3333", "333.3334"])),
        *(make_order(f"shopify:s:alm{i}", "almost", NOW - timedelta(days=i), total_base=Decimal(amount))
          for i, amount in enumerate(["333.3333", "333.3333", "333.3333"])),
        # many: five cheap orders -> VIP by frequency
        *(make_order(f"woocommerce:w:m{i}", "many", NOW - timedelta(days=i)) for i in range(5)),
        # lapsed: two orders, the last 91 days ago -> at risk
        make_order("amazon:na:l1", "lapsed", NOW - timedelta(days=200)),
        make_order("amazon:na:l2", "lapsed", NOW - timedelta(days=91)),
        # new: one recent order -> nothing
        make_order("shopify:s:n1", "new", NOW - timedelta(days=1)),
        # mirrored: 2 originals + 3 Shopify mirrors + 1 cancelled: counts 2 orders, no VIP
        *(make_order(f"amazon:na:o{i}", "mirrored", NOW - timedelta(days=i)) for i in range(2)),
        *(make_order(f"shopify:s:mir{i}", "mirrored", NOW - timedelta(days=i), duplicate_of=f"amazon:na:o{i % 2}")
          for i in range(3)),
        make_order("amazon:na:c1", "mirrored", NOW, status="cancelled", total_base=Decimal("5000")),
        make_order("shopify:s:x1", "manual", NOW - timedelta(days=3)),
    ]  # fmt: skip
    crm.upsert_orders(order_frame(rows))
    return crm


def active(crm: CrmStore, customer_id: str) -> set[tuple[str, str]]:
    return {(h["tag"], h["source"]) for h in crm.tag_history(customer_id) if h["removed_at"] is None}


def test_rfm_counts_originals_only_and_sums_exactly(shop: CrmStore) -> None:
    scores = compute_rfm(shop)
    assert scores["big"].monetary == Decimal("1000.0000") and scores["big"].orders == 3
    assert scores["almost"].monetary == Decimal("999.9999")
    assert scores["many"].orders == 5
    assert scores["mirrored"].orders == 2 and scores["mirrored"].monetary == Decimal("20.0000")
    assert scores["lapsed"].last_order_at == NOW - timedelta(days=91)


def test_tags_are_set_from_the_thresholds(shop: CrmStore) -> None:
    stats = apply_rfm_tags(shop, TH, NOW)
    assert active(shop, "big") == {("vip", "auto")}
    assert active(shop, "many") == {("vip", "auto")}
    assert active(shop, "lapsed") == {("at_risk", "auto")}
    assert active(shop, "new") == set() and active(shop, "mirrored") == set() and active(shop, "almost") == set()
    assert stats.added == {"vip": 2, "at_risk": 1} and stats.removed == {"vip": 0, "at_risk": 0}


def test_a_rerun_changes_nothing(shop: CrmStore) -> None:
    apply_rfm_tags(shop, TH, NOW)
    before = {cid: shop.tag_history(cid) for cid in ("big", "many", "lapsed")}
    stats = apply_rfm_tags(shop, TH, NOW + timedelta(hours=1))
    assert stats.added == {"vip": 0, "at_risk": 0} and stats.removed == {"vip": 0, "at_risk": 0}
    assert {cid: shop.tag_history(cid) for cid in before} == before  # set_at untouched, no new rows


def test_removal_sets_removed_at_and_readding_adds_a_row(shop: CrmStore, order_frame, make_order) -> None:
    apply_rfm_tags(shop, TH, NOW)
    later = NOW + timedelta(days=1)
    shop.upsert_orders(order_frame([make_order("amazon:na:l3", "lapsed", later)]))  # came back
    stats = apply_rfm_tags(shop, TH, later)
    assert stats.removed["at_risk"] == 1
    (period,) = shop.tag_history("lapsed")
    assert (period["tag"], period["set_at"], period["removed_at"]) == ("at_risk", NOW, later)

    much_later = later + timedelta(days=120)
    apply_rfm_tags(shop, TH, much_later)  # lapsed again
    history = [(h["set_at"], h["removed_at"]) for h in shop.tag_history("lapsed")]
    assert history == [(NOW, later), (much_later, None)]


def test_manual_tags_are_never_touched(shop: CrmStore) -> None:
    shop.add_tag("manual", "vip", now=NOW - timedelta(days=30))  # CS decided; RFM would not
    shop.add_tag("big", "wholesale", now=NOW - timedelta(days=30))
    apply_rfm_tags(shop, TH, NOW)
    apply_rfm_tags(shop, TH, NOW + timedelta(days=400))  # everyone lapses; auto VIPs stay (spend)
    assert ("vip", "manual") in active(shop, "manual")
    assert ("wholesale", "manual") in active(shop, "big")
    manual_rows = [h for h in shop.tag_history("manual") if h["source"] == "manual"]
    assert len(manual_rows) == 1 and manual_rows[0]["removed_at"] is None


def test_naive_now_is_refused(shop: CrmStore) -> None:
    with pytest.raises(ValueError, match="aware"):
        apply_rfm_tags(shop, TH, datetime(2025, 6, 1))  # deliberately naive


def test_tags_are_mirrored_into_the_warehouse(shop: CrmStore, wh, wh_insert) -> None:
    wh_insert("customers", [
        {"customer_id": cid, "updated_at": NOW, "vip": cid == "new", "tags": ["vip"] if cid == "new" else []}
        for cid in ("big", "lapsed", "new", "manual", "absent_from_crm")
    ])  # fmt: skip
    apply_rfm_tags(shop, TH, NOW)
    shop.add_tag("manual", "vip")
    shop.add_tag("lapsed", "Stammkunde")
    assert write_tags_to_warehouse(shop, wh) == 4
    rows = {r[0]: r[1:] for r in wh.execute("SELECT customer_id, tags, vip, at_risk FROM customers").fetchall()}
    assert rows == {
        "big": (["vip"], True, False),
        "lapsed": (["Stammkunde", "at_risk"], False, True),
        "new": ([], False, False),  # a stale flag is cleared
        "manual": (["vip"], True, False),  # a manual VIP counts as VIP
        "absent_from_crm": ([], False, False),
    }
    assert write_tags_to_warehouse(shop, wh) == 0  # nothing rewritten when nothing changed
