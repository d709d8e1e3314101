"""Partial versions (Amazon order reports) against full ones: who wins, and what a newer partial keeps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import polars as pl
import pytest

from dedupe.versions import IDENTITY_FROM_FULL, latest_versions
from tests.warehouse.factories import T0, order_rows

FULL_IDENTITY: dict[str, Any] = {
    "email": "b1x7k2q@marketplace.amazon.com", "phone": "+12065550101", "buyer_name": "Zoë O’Brien",
    "pii_masked": False, "ship_name": "Zoë O’Brien", "ship_line1": "1 Pike St", "ship_line2": "Apt 2",
    "channel_customer_key": "ck-1", "ship_by": T0 + timedelta(days=3), "related_order": "amazon:us:111-0000000-0000000",
    "mirror_of": "amazon:111-0000001-0000001",
}
REPORT_IDENTITY: dict[str, Any] = {c: None for c in IDENTITY_FROM_FULL} | {
    "pii_masked": True, "ship_by": T0 + timedelta(days=2)}


def version(batch: str, updated_hours: float, *, partial: bool | None, **fields: Any) -> dict[str, Any]:
    identity = REPORT_IDENTITY if partial else FULL_IDENTITY
    return {"channel": "amazon", "store": "us", "external_id": "111-0000001-0000001", "batch_id": batch,
            "updated_at": T0 + timedelta(hours=updated_hours), "partial": partial, **identity, **fields}


@pytest.mark.parametrize("full_flag", [False, None])  # NULL partial (a frame from before the column) is full
def test_equal_updated_at_full_beats_partial_in_both_orders_of_arrival(full_flag: bool | None) -> None:
    full = version("b1", 1, partial=full_flag, status="unfulfilled", landed_at=T0)
    partial = version("b2", 1, partial=True, status="fulfilled", landed_at=T0 + timedelta(hours=9))
    for rows in ([full, partial], [partial, full]):
        [winner] = latest_versions(order_rows(rows)).iter_rows(named=True)
        assert (winner["batch_id"], winner["status"], winner["partial"]) == ("b1", "unfulfilled", full_flag)
        assert winner["email"] == FULL_IDENTITY["email"]


def test_a_newer_partial_wins_and_takes_the_identity_of_the_newest_full_version() -> None:
    rows = [
        version("b1", 1, partial=False, email="old@marketplace.amazon.com", status="unfulfilled"),
        version("b2", 2, partial=False, status="partially_fulfilled"),
        version("b3", 3, partial=True, status="fulfilled", ship_city="Seattle"),
        version("b0", 2.5, partial=True, status="cancelled"),
    ]
    for frame in (order_rows(rows), order_rows(rows[::-1])):
        [winner] = latest_versions(frame).iter_rows(named=True)
        assert (winner["batch_id"], winner["status"], winner["ship_city"], winner["partial"]) == (
            "b3", "fulfilled", "Seattle", True)
        assert {c: winner[c] for c in IDENTITY_FROM_FULL} == FULL_IDENTITY  # b2's, not b1's


def test_a_partial_without_a_full_version_keeps_its_own_and_others_are_untouched() -> None:
    frame = order_rows([
        version("b1", 1, partial=True), version("b2", 2, partial=True, status="fulfilled"),
        version("b3", 1, partial=False, external_id="111-0000002-0000002"),
        version("b4", 2, partial=False, external_id="111-0000002-0000002", status="fulfilled"),
    ])
    winners = latest_versions(frame)
    assert winners.columns == frame.columns and winners.schema == frame.schema
    by_id = {r["external_id"]: r for r in winners.iter_rows(named=True)}
    assert {c: by_id["111-0000001-0000001"][c] for c in IDENTITY_FROM_FULL} == REPORT_IDENTITY
    assert (by_id["111-0000001-0000001"]["batch_id"], by_id["111-0000002-0000002"]["batch_id"]) == ("b2", "b4")
    assert {c: by_id["111-0000002-0000002"][c] for c in IDENTITY_FROM_FULL} == FULL_IDENTITY


def test_a_frame_without_the_partial_column_ranks_as_before() -> None:
    frame = order_rows([version("b1", 1, partial=None), version("b2", 2, partial=None)]).drop("partial")
    assert latest_versions(frame)["batch_id"].to_list() == ["b2"]
    assert "partial" not in latest_versions(frame).columns


def test_many_orders_stay_vectorized_and_deterministic() -> None:
    rows = []
    for n in range(300):
        eid = f"111-{n:07d}-0000001"
        rows.append(version("b1", 1, partial=False, external_id=eid))
        rows.append(version("b2", 1 + n % 3, partial=True, external_id=eid, status="fulfilled"))
    frame = order_rows(rows)
    winners = latest_versions(frame)
    assert winners.height == 300
    assert winners.filter(pl.col("partial"))["external_id"].len() == 200  # n % 3 in (1, 2): the partial is newer
    assert winners.filter(pl.col("partial"))["email"].to_list() == [FULL_IDENTITY["email"]] * 200
    assert latest_versions(frame.sample(fraction=1.0, shuffle=True, seed=7)).sort("order_id").equals(
        winners.sort("order_id"))
