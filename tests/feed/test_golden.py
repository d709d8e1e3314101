"""Golden rows from the canonical feed format; the same orders as CSV, JSON Lines and JSON give the same rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from connectors.feed.config import FeedStore
from connectors.feed.streams import feed_part
from connectors.landing import LandingStore
from tests.feed.helpers import normalized, settings_for, to_csv, to_json, to_jsonl

VARYING = ["batch_id", "landed_at", "record_hash"]


def _land(tmp_path, name: str, body: bytes, store: FeedStore | None = None):
    landing = LandingStore(tmp_path / f"landing-{name}")
    landing.write_batch("feed", "shop", "orders", [feed_part(name, body, store)], None)
    return landing


def test_canonical_csv_golden_rows(tmp_path) -> None:
    landing = _land(tmp_path, "orders.csv", to_csv())
    (manifest,) = landing.manifests()
    assert manifest.parts[0].kind == "feed.csv" and manifest.records == 3
    assert manifest.parts[0].request["source"] == "orders.csv" and len(manifest.parts[0].request["sha256"]) == 64
    out = normalized(landing, settings_for(tmp_path))
    assert out.quarantine.height == 0
    rows = {r["external_id"]: r for r in out.orders.to_dicts()}
    a, b, c = rows["F-1001"], rows["F-1002"], rows["F-1003"]
    assert a["order_id"] == "feed:shop:F-1001" and a["order_number"] == "#1001"
    assert a["created_at"] == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert a["updated_at"] == datetime(2026, 11, 21, 8, 30, tzinfo=UTC)  # naive: Europe/Berlin (UTC+1)
    assert (a["status"], a["payment_status"]) == ("fulfilled", "paid")
    assert (a["subtotal"], a["discount"], a["shipping"], a["tax"], a["total"]) == (
        Decimal("59.90"), Decimal("5.00"), Decimal("4.90"), Decimal("9.56"), Decimal("59.80"))
    assert a["total_base"] == Decimal("64.5840")
    assert a["email"] == "zoë.müller@example.com" and a["buyer_name"] == "Zoë Müller"
    assert a["phone"] == "+49301234567" and a["ship_country"] == "DE" and a["ship_line1"] == "Straße des 17. Juni 1"
    assert a["channel_customer_key"] == "c-17" and a["fulfilled_by"] == "merchant"
    assert b["created_at"] == datetime(2026, 11, 22, 22, 15, tzinfo=UTC) and b["updated_at"] == b["created_at"]
    assert (b["status"], b["payment_status"], b["refunded"]) == ("unfulfilled", "partially_refunded", Decimal(2))
    assert b["buyer_name"] == "Łukasz Żółć" and b["ship_name"] == "Łukasz Żółć"
    assert (c["status"], c["payment_status"], c["currency"], c["order_number"]) == ("cancelled", "voided", None, "F-1003")
    assert c["subtotal"] == Decimal("7.00") and c["created_at"] == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    lines = out.lines.sort("order_id", "line_no").to_dicts()
    assert [(ln["order_id"], ln["line_no"], ln["sku"], ln["quantity"]) for ln in lines] == [
        ("feed:shop:F-1001", 1, "MUG-1", 2), ("feed:shop:F-1001", 2, "TEA-9", 1),
        ("feed:shop:F-1002", 1, "PEN-3", 4), ("feed:shop:F-1003", 1, "X", 1)]
    assert lines[0]["title"] == "Tasse „Kaffee“" and lines[0]["unit_price"] == Decimal("12.45")
    assert (lines[0]["discount"], lines[0]["tax"], lines[0]["total"]) == (Decimal(5), Decimal("3.18"), Decimal("23.08"))
    assert lines[3]["total"] == Decimal("7.00")  # computed from unit price and quantity when the feed gives none


@pytest.mark.parametrize(("name", "body"), [("orders.jsonl", to_jsonl()), ("orders.json", to_json()),
                                            ("export", to_jsonl()), ("export.txt", to_json())])
def test_jsonl_and_json_give_the_same_rows(tmp_path, name, body) -> None:
    settings = settings_for(tmp_path)
    want = normalized(_land(tmp_path, "orders.csv", to_csv()), settings)
    landing = _land(tmp_path, name, body)
    assert next(landing.manifests()).parts[0].kind in ("feed.jsonl", "feed.json")
    got = normalized(landing, settings)
    assert got.quarantine.height == 0
    key = ["order_id"]
    assert_frame_equal(got.orders.drop(VARYING).sort(key), want.orders.drop(VARYING).sort(key))
    assert_frame_equal(got.lines.drop("batch_id").sort("order_id", "line_no"),
                 want.lines.drop("batch_id").sort("order_id", "line_no"))


MARKETPLACE = (
    "Order ID;Purchase Date;Order Status;Buyer Email;Buyer;Country;Item SKU;Item Name;Qty;Item Price;Order Total;Whatever\n"
).replace(";", ",") + (
    "MP-1,27/11/2026 14:05,Shipped,a@b.example,Åsa Öberg,SE,SKU-1,Teekanne,1,20.00,30.00,x\n"
    "MP-1,27/11/2026 14:05,Shipped,a@b.example,Åsa Öberg,SE,SKU-2,Sieb,2,5.00,30.00,y\n"
    "MP-2,28/11/2026 09:00,Awaiting Fulfilment,c@d.example,Bo,SE,SKU-1,Teekanne,1,20.00,20.00,\n"
)


def test_mapping_reads_a_marketplace_export(tmp_path) -> None:
    store = FeedStore(
        key="mp", source=str(tmp_path), currency="SEK", timezone="Europe/Stockholm", date_format="%d/%m/%Y %H:%M",
        statuses={"Awaiting Fulfilment": "unshipped"},
        mapping={"order_id": "Order ID", "created_at": "Purchase Date", "status": "Order Status",
                 "email": "Buyer Email", "buyer_name": "Buyer", "ship_country": "Country", "line_sku": "Item SKU",
                 "line_title": "Item Name", "line_quantity": "Qty", "line_unit_price": "Item Price",
                 "total": "Order Total"},
    )
    landing = LandingStore(tmp_path / "landing")
    landing.write_batch("feed", "mp", "orders", [feed_part("export.csv", MARKETPLACE.encode(), store)], None)
    assert next(landing.manifests()).records == 2
    settings = settings_for(tmp_path, store).model_copy(update={"rates": {"SEK": Decimal("0.1")}})
    out = normalized(landing, settings)
    assert out.quarantine.height == 0
    rows = {r["external_id"]: r for r in out.orders.to_dicts()}
    assert rows["MP-1"]["created_at"] == datetime(2026, 11, 27, 13, 5, tzinfo=UTC)
    assert (rows["MP-1"]["status"], rows["MP-1"]["currency"], rows["MP-1"]["total"]) == ("fulfilled", "SEK", Decimal(30))
    assert rows["MP-1"]["subtotal"] == Decimal(30) and rows["MP-1"]["buyer_name"] == "Åsa Öberg"
    assert rows["MP-2"]["status"] == "unfulfilled"
    assert out.lines.filter(pl.col("order_id") == "feed:mp:MP-1")["sku"].to_list() == ["SKU-1", "SKU-2"]


def test_bad_rows_are_quarantined_with_reasons_and_the_batch_goes_on(tmp_path) -> None:
    body = (
        b"order_id,created_at,status,currency,total,line_sku,line_quantity,line_unit_price\n"
        b"G-1,2026-11-20T10:00:00Z,shipped,EUR,10.00,A,1,10.00\n"
        b"G-2,yesterday,teleported,EUR,1O.00,A,one,10.00\n"
        b"G-3,2026-11-20T10:00:00Z,shipped,EUR,10.00,A,1,10.00\n"
        b"G-3,2026-11-20T10:00:00Z,cancelled,EUR,10.00,B,1,10.00\n"
        b",2026-11-20T10:00:00Z,shipped,EUR,10.00,A,1,10.00\n"
        b"G-4,2026-11-20T10:00:00Z,shipped\n"
    )
    landing = _land(tmp_path, "bad.csv", body)
    out = normalized(landing, settings_for(tmp_path))
    assert out.orders["external_id"].to_list() == ["G-1"]
    reasons = dict(zip(out.quarantine["external_id"].to_list(), out.quarantine["reason"].to_list(), strict=True))
    assert "created_at 'yesterday' is not a date" in reasons["G-2"]
    assert "feed status 'teleported' is not mapped" in reasons["G-2"] and "statuses" in reasons["G-2"]
    assert "total '1O.00' is not a decimal amount" in reasons["G-2"]
    assert "quantity 'one' is not a whole number" in reasons["G-2"]
    assert "disagree on status" in reasons["G-3"]
    assert "order id missing" in reasons[None]
    assert "row 7 has 3 fields where the header has 8" in reasons["G-4"]
    assert out.orders.height + int(out.quarantine["records"].sum()) == next(landing.manifests()).records == 5
