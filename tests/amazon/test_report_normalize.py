"""Golden pairs for the order report: a hand-written TSV -> canonical partial rows; bad rows and parts quarantined."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from connectors.landing import LandingStore, Part
from pipelines.amazon import REPORT, V0_ITEMS, V0_ORDERS, normalize
from pipelines.common import Normalized, finish
from sandbox.emulators.amazon import REPORT_COLUMNS, AmazonRenderer
from tests.amazon.helpers import FIXTURES, US, ListSource, make_order, settings

D = Decimal
DOCUMENTED: list[str] = json.loads(
    (FIXTURES / "reports" / "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL.columns.json").read_text()
)["columns"]
# The documented header with columns real files carry besides, and one nobody knows, put in between.
HEADER = [*DOCUMENTED[:9], "signature-confirmation-recommended", *DOCUMENTED[9:14], "number-of-items",
          *DOCUMENTED[14:20], "x-unknown-column", *DOCUMENTED[20:]]
MONEY = ("item-price", "item-tax", "shipping-price", "shipping-tax", "gift-wrap-price", "gift-wrap-tax",
         "item-promotion-discount", "ship-promotion-discount")

A, B, C, E, J, P = ("111-0000001-0000001", "111-0000002-0000002", "111-0000003-0000003", "111-0000004-0000004",
                    "503-0000005-0000005", "111-0000006-0000006")


def cells(order_id: str, status: str, *, channel: str = "Merchant", currency: str = "USD", title: str = "Bürste Größe 3",
          sku: str = "SKU-3", qty: str = "1", purchased: str = "2026-11-20T14:03:11+00:00",
          updated: str = "2026-11-21T09:30:00+00:00", **money: str) -> dict[str, str]:
    """One report row; money cells default to 0.00 (empty when ``currency`` is empty: Pending)."""
    row = {
        "amazon-order-id": order_id, "purchase-date": purchased, "last-updated-date": updated,
        "order-status": status, "fulfillment-channel": channel, "sales-channel": "Amazon.com",
        "ship-service-level": "Standard", "signature-confirmation-recommended": "false", "product-name": title,
        "sku": sku, "asin": "B0" + sku[-1] * 8, "item-status": "Shipped", "quantity": qty, "number-of-items": "1",
        "currency": currency, "x-unknown-column": "whatever", "ship-city": "Seattle", "ship-state": "WA",
        "ship-postal-code": "98101", "ship-country": "US", "is-business-order": "false",
    }
    row.update({m: "0.00" if currency else "" for m in MONEY})
    row.update({k.replace("_", "-"): v for k, v in money.items()})
    return row


def tsv(rows: list[dict[str, str]], header: list[str] = HEADER, newline: str = "\n") -> bytes:
    """A report document: header, then one line per row, each cell by its column name."""
    lines = ["\t".join(header), *("\t".join(row.get(c, "") for c in header) for row in rows)]
    return (newline.join(lines) + newline).encode()


GOLDEN = [
    cells(A, "Shipped", qty="2", item_price="25.00", item_tax="2.20", shipping_price="4.99", shipping_tax="0.40",
          item_promotion_discount="-1.00", ship_promotion_discount="-0.99"),
    cells(B, "Shipped - Delivered to Buyer", channel="Amazon", title="Ｔシャツ", sku="SKU-X", item_price="5.00",
          item_tax="0.45", gift_wrap_price="3.00", gift_wrap_tax="0.24"),
    cells(A, "Shipped", title="Ｔシャツ", sku="SKU-X", item_price="5.00", item_tax="0.45"),
    cells(C, "Pending", currency="", qty="3"),
    cells(E, "Cancelled", qty="0"),
    cells(J, "Unshipped", currency="JPY", item_price="1980", shipping_price="350", item_promotion_discount="-100"),
    cells(P, "PartiallyShipped", qty="2", item_price="19.98", item_tax="1.60"),
    cells(P, "PartiallyShipped", sku="SKU-7", title="Bu\u0308rste  ", item_price="7.33"),  # NFD, trailing spaces
]


def run(tmp_path: Path, *bodies: bytes, request: dict[str, Any] | None = None,
        extra: list[Part] | None = None) -> Normalized:
    """Land report documents as one batch of store amz-us and normalize it; loaded + quarantined = landed."""
    landing = LandingStore(tmp_path / "landing")
    request = {"charset": "utf-8"} if request is None else request
    parts = [Part(REPORT, body, _distinct_ids(body), dict(request), ext="tsv") for body in bodies]
    manifest = landing.write_batch("amazon", "amz-us", "reports", [*parts, *(extra or [])], None, source="import")
    out = finish(normalize(manifest, [(p, landing.read_part(manifest, p)) for p in manifest.parts],
                           settings(tmp_path)), settings(tmp_path))
    assert sum(p.records for p in manifest.parts) == out.orders.height + out.quarantine["records"].sum()
    return out


def _distinct_ids(body: bytes) -> int:
    """What the connector records for a report part: distinct amazon-order-id cells (inspect_report's count)."""
    try:
        lines = body.decode("utf-8-sig").replace("\r\n", "\n").split("\n")
    except UnicodeDecodeError:
        lines = body.decode("latin-1").replace("\r\n", "\n").split("\n")
    header = lines[0].split("\t")
    if "amazon-order-id" not in header:
        return 1
    at = header.index("amazon-order-id")
    return len({line.split("\t")[at] for line in lines[1:] if line})


def order(out: Normalized, external_id: str) -> dict[str, Any]:
    found = out.orders.filter(pl.col("external_id") == external_id)
    assert found.height == 1, f"{external_id} not once in {out.orders['external_id'].to_list()}"
    return found.row(0, named=True)


def lines(out: Normalized, external_id: str) -> list[tuple]:
    frame = out.lines.filter(pl.col("order_id") == f"amazon:amz-us:{external_id}").sort("line_no")
    return list(frame.select("line_no", "sku", "title", "quantity", "unit_price", "discount", "tax", "total").iter_rows())


def money(row: dict[str, Any]) -> tuple:
    return tuple(row[k] for k in ("currency", "subtotal", "shipping", "tax", "discount", "total", "total_base"))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- golden ------------------------------------------------------------------------------------------------
def test_golden_report(tmp_path: Path) -> None:
    out = run(tmp_path, tsv(GOLDEN))
    assert out.quarantine.height == 0, out.quarantine["reason"].to_list()
    assert out.orders["external_id"].to_list() == [A, B, C, E, J, P]  # first appearance, A's rows regrouped

    a = order(out, A)
    assert (a["order_id"], a["order_number"], a["channel"], a["store"]) == (f"amazon:amz-us:{A}", A, "amazon", "amz-us")
    assert (a["created_at"], a["updated_at"]) == (utc("2026-11-20T14:03:11+00:00"), utc("2026-11-21T09:30:00+00:00"))
    assert (a["status"], a["payment_status"], a["fulfilled_by"], a["source_name"]) == (
        "fulfilled", "paid", "merchant", "Amazon.com")
    # subtotal 25 + 5; shipping 4.99 - 0.99; tax 2.20 + 0.40 + 0.45; discount 1.00; total = all eight cells
    assert money(a) == ("USD", D("30"), D("4"), D("3.05"), D("1"), D("36.05"), D("36.05"))
    assert (a["ship_city"], a["ship_region"], a["ship_postal_code"], a["ship_country"]) == ("Seattle", "WA", "98101", "US")
    assert a["ship_by"] == a["created_at"] + timedelta(days=2)  # created_at + the SLA: the report has no ship-by
    assert (a["partial"], a["pii_masked"]) == (True, True)
    for column in ("email", "phone", "buyer_name", "ship_name", "ship_line1", "ship_line2", "channel_customer_key",
                   "related_order", "mirror_of", "refunded", "presentment_total", "customer_id", "duplicate_of"):
        assert a[column] is None, column
    assert len(a["record_hash"]) == 64
    assert lines(out, A) == [
        (1, "SKU-3", "Bürste Größe 3", 2, D("12.5"), D("1"), D("2.2"), D("26.2")),
        (2, "SKU-X", "Ｔシャツ", 1, D("5"), D("0"), D("0.45"), D("5.45")),
    ]

    b = order(out, B)  # FBA, a shipped sub-status, gift wrap in the total and tax only
    assert (b["status"], b["payment_status"], b["fulfilled_by"]) == ("fulfilled", "paid", "marketplace")
    assert money(b) == ("USD", D("5"), D("0"), D("0.69"), D("0"), D("8.69"), D("8.69"))
    assert lines(out, B) == [(1, "SKU-X", "Ｔシャツ", 1, D("5"), D("0"), D("0.45"), D("5.45"))]

    c = order(out, C)  # Pending: no money, no currency; NULL, never 0
    assert (c["status"], c["payment_status"]) == ("pending", "pending")
    assert money(c) == (None,) * 7
    assert lines(out, C) == [(1, "SKU-3", "Bürste Größe 3", 3, None, None, None, None)]

    e = order(out, E)  # Cancelled (two l), its item at quantity 0: no unit price
    assert (e["status"], e["payment_status"]) == ("cancelled", "voided")
    assert money(e) == ("USD", D("0"), D("0"), D("0"), D("0"), D("0"), D("0"))
    assert lines(out, E) == [(1, "SKU-3", "Bürste Größe 3", 0, None, D("0"), D("0"), D("0"))]

    j = order(out, J)  # JPY: whole amounts, converted at the configured rate
    assert (j["status"], j["payment_status"]) == ("unfulfilled", "paid")
    assert money(j) == ("JPY", D("1980"), D("350"), D("0"), D("100"), D("2230"), D("14.941"))
    assert lines(out, J) == [(1, "SKU-3", "Bürste Größe 3", 1, D("1980"), D("100"), D("0"), D("1880"))]

    p = order(out, P)
    assert (p["status"], p["payment_status"]) == ("partially_fulfilled", "paid")
    assert money(p) == ("USD", D("27.31"), D("0"), D("1.6"), D("0"), D("28.91"), D("28.91"))
    assert lines(out, P) == [(1, "SKU-3", "Bürste Größe 3", 2, D("9.99"), D("0"), D("1.6"), D("21.58")),
                             (2, "SKU-7", "Bürste", 1, D("7.33"), D("0"), D("0"), D("7.33"))]


def test_columns_in_another_order_crlf_and_a_charset_give_the_same_rows(tmp_path: Path) -> None:
    base = run(tmp_path / "base", tsv(GOLDEN))
    shuffled = [*HEADER[::2], *HEADER[1::2]]
    assert shuffled[0] == HEADER[0] and shuffled != HEADER
    cases: list[tuple[str, bytes, dict[str, Any] | None]] = [
        ("shuffled", tsv(GOLDEN, shuffled), None),
        ("crlf", tsv(GOLDEN, newline="\r\n"), None),
        ("bom", b"\xef\xbb\xbf" + tsv(GOLDEN), None),
        ("no-charset", tsv(GOLDEN), {}),
    ]
    for name, body, request in cases:
        other = run(tmp_path / name, body, request=request)
        assert other.orders.drop("batch_id", "landed_at").equals(base.orders.drop("batch_id", "landed_at")), name
        assert other.lines.drop("batch_id").equals(base.lines.drop("batch_id")), name
    latin = [r for r in GOLDEN if r["product-name"] == "Bürste Größe 3"]
    utf8 = run(tmp_path / "utf8", tsv(latin))
    latin1 = run(tmp_path / "latin1", tsv(latin).decode().encode("iso-8859-1"), request={"charset": "ISO-8859-1"})
    assert latin1.lines.drop("batch_id").equals(utf8.lines.drop("batch_id"))
    assert latin1.orders["record_hash"].to_list() == utf8.orders["record_hash"].to_list()  # hashes of the text


def test_identical_rows_hash_the_same_and_a_changed_cell_does_not(tmp_path: Path) -> None:
    first = run(tmp_path / "1", tsv(GOLDEN)).orders
    again = run(tmp_path / "2", tsv(GOLDEN)).orders
    changed = [dict(r) for r in GOLDEN]
    changed[2]["item-tax"] = "0.46"  # A's second row
    other = run(tmp_path / "3", tsv(changed)).orders
    assert first["record_hash"].to_list() == again["record_hash"].to_list()
    assert first["record_hash"].n_unique() == first.height
    differs = dict(zip(first["external_id"], first["record_hash"] != other["record_hash"], strict=True))
    assert differs == {A: True, B: False, C: False, E: False, J: False, P: False}


# -- bad rows ----------------------------------------------------------------------------------------------
def test_bad_orders_are_quarantined_with_every_reason_and_the_rest_load(tmp_path: Path) -> None:
    bad = [
        cells("111-0000010-0000010", "Shipped", purchased="2024-13-45 25:61"),
        cells("111-0000011-0000011", "Teleported"),
        cells("111-0000012-0000012", "Shipped", item_price="12,34", item_tax="1e999"),
        cells("111-0000013-0000013", "Shipped", qty="-1", item_price="5.00"),
        cells("111-0000013-0000013", "Shipped", qty="two", sku="SKU-9"),
        cells("", "Shipped", item_price="1.00"),
        cells("", "Shipped", item_price="2.00"),
        cells("111-0000014-0000014", "Shipped", currency="ZZZ", item_price="1.00"),
        cells("111-0000015-0000015", "Shipped", channel="Drone"),
        cells("111-0000016-0000016", "", updated=""),
        cells("111-0000017-0000017", "Shipped", currency="USD", item_price="1.00"),
        cells("111-0000017-0000017", "Shipped", currency="EUR", item_price="1.00", sku="SKU-8"),
    ]
    out = run(tmp_path, tsv([*GOLDEN, *bad]))
    assert out.orders["external_id"].to_list() == [A, B, C, E, J, P]
    reasons = {r["external_id"]: r["reason"] for r in out.quarantine.iter_rows(named=True)}
    expected = {
        "111-0000010-0000010": ["purchase-date '2024-13-45 25:61' is not an ISO 8601 timestamp", "created_at missing"],
        "111-0000011-0000011": ["status Teleported is not mapped", "payment status NULL is not mapped"],
        "111-0000012-0000012": ["item 1 item-price '12,34' is not a decimal amount",
                                "item 1 item-tax '1e999' is not a decimal amount"],
        "111-0000013-0000013": ["item 2 quantity 'two' is not a whole number", "line 1 has negative quantity -1"],
        None: ["order id missing: the record cannot be keyed"],
        "111-0000014-0000014": ["no exchange rate for currency ZZZ"],
        "111-0000015-0000015": ["fulfillment-channel 'Drone' is neither Amazon nor Merchant"],
        "111-0000016-0000016": ["order-status missing: the order status is unknown", "updated_at missing"],
        "111-0000017-0000017": ["the order's rows disagree on the currency (USD, EUR)"],
    }
    assert set(reasons) == set(expected)
    for key, parts in expected.items():
        for part in parts:
            assert part in reasons[key], (key, reasons[key])
    assert out.quarantine["records"].to_list() == [1] * len(expected)  # the two id-less rows: one landed record
    payload = out.quarantine.filter(pl.col("external_id") == "111-0000013-0000013")["payload"].item()
    header, *rows = payload.split("\n")
    assert header.split("\t")[: len(DOCUMENTED)] == DOCUMENTED  # documented columns first, as documented
    assert header.split("\t")[len(DOCUMENTED):] == ["number-of-items", "signature-confirmation-recommended",
                                                    "x-unknown-column"]
    assert [dict(zip(header.split("\t"), r.split("\t"), strict=True))["quantity"] for r in rows] == ["-1", "two"]


def test_a_missing_required_column_quarantines_the_part(tmp_path: Path) -> None:
    for missing in ("order-status", "purchase-date"):
        body = tsv(GOLDEN, [c for c in HEADER if c != missing])
        out = run(tmp_path / missing, body)
        assert out.orders.height == 0 and out.lines.height == 0
        [row] = out.quarantine.iter_rows(named=True)
        assert f"the header lacks the required column(s) {missing}" in row["reason"]
        assert row["records"] == 6 and row["payload"] == body.decode()


@pytest.mark.parametrize(("body", "reason"), [
    (tsv(GOLDEN)[:-30], "fields, the header"),  # cut off mid-row
    (tsv(GOLDEN, [*HEADER, "sku"]), "repeats the column(s) sku"),
    (b"amazon-order-id\tpurchase-date\tlast-updated-date\torder-status\n\xff\xfe\t\t\t\n", "is not utf-8 text"),
])
def test_an_unreadable_document_quarantines_the_part(tmp_path: Path, body: bytes, reason: str) -> None:
    out = run(tmp_path, body)
    assert out.orders.height == 0
    assert reason in out.quarantine["reason"].item()


def test_an_empty_report_and_one_beside_orders_api_bodies(tmp_path: Path) -> None:
    empty = run(tmp_path / "empty", tsv([]))
    assert (empty.orders.height, empty.quarantine.height) == (0, 0)
    renderer, orders = _renderer()
    one = orders[0]
    version = one.versions[-1]
    v0 = Part(V0_ORDERS, json.dumps({"payload": {"Orders": [renderer.order_v0(one, version)]}}).encode(), 1)
    items = Part(V0_ITEMS, json.dumps({"payload": {"AmazonOrderId": one.external_id,
                                                   "OrderItems": renderer.items_v0(one, version)}}).encode(), 0)
    out = run(tmp_path / "mixed", tsv(GOLDEN), extra=[v0, items])
    assert out.orders.height == 7
    assert out.orders.filter(pl.col("external_id") == one.external_id)["partial"].to_list() == [False]
    assert out.orders.filter(pl.col("partial"))["external_id"].to_list() == [A, B, C, E, J, P]


# -- the same truth through v0 and through a report --------------------------------------------------------
def _renderer() -> tuple[AmazonRenderer, list]:
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    history = {
        "pending": [(timedelta(0), "pending", "pending")],
        "unfulfilled": [(timedelta(0), "pending", "pending"), (timedelta(minutes=30), "unfulfilled", "paid")],
        "partial": [(timedelta(0), "unfulfilled", "paid"), (timedelta(hours=3), "partially_fulfilled", "paid")],
        "fulfilled": [(timedelta(0), "unfulfilled", "paid"), (timedelta(hours=20), "fulfilled", "paid")],
        "cancelled": [(timedelta(0), "unfulfilled", "paid"), (timedelta(hours=2), "cancelled", "voided")],
    }
    orders = []
    for n in range(1, 21):
        kind = list(history)[n % len(history)]
        order = make_order(n, "amz-us", t0 + timedelta(minutes=41 * n), history[kind],
                           currency="JPY" if n % 4 == 0 else "USD",
                           fulfilled_by="marketplace" if n % 3 == 0 else "merchant",
                           order_discount=D("2.00") if n % 7 == 0 else D("0"))
        orders.append(order)
    return AmazonRenderer(ListSource(orders), lambda store: US), orders


def test_report_rows_agree_with_v0_where_the_report_carries_the_data(tmp_path: Path) -> None:
    renderer, orders = _renderer()
    rows = [order_rows for o in orders for order_rows in renderer.report_rows(o, o.versions[-1])]
    report = ("\n".join(["\t".join(REPORT_COLUMNS), *("\t".join(r) for r in rows)]) + "\n").encode()
    v0 = [renderer.order_v0(o, o.versions[-1]) for o in orders]
    parts = [Part(V0_ORDERS, json.dumps({"payload": {"Orders": v0}}).encode(), len(v0))]
    parts += [Part(V0_ITEMS, json.dumps({"payload": {"AmazonOrderId": o.external_id,
                                                     "OrderItems": renderer.items_v0(o, o.versions[-1])}}).encode(), 0)
              for o in orders]
    from_report = run(tmp_path / "report", report)
    from_v0 = run(tmp_path / "v0", extra=parts)
    assert from_report.quarantine.height == 0
    statuses = set()
    for o in orders:
        r, v = order(from_report, o.external_id), order(from_v0, o.external_id)
        same = ("created_at", "updated_at", "status", "payment_status", "currency", "subtotal", "shipping", "tax",
                "discount", "total", "total_base", "fulfilled_by", "source_name", "ship_city", "ship_region",
                "ship_postal_code", "ship_country", "order_number")
        assert {k: r[k] for k in same} == {k: v[k] for k in same}, o.external_id
        statuses.add(r["status"])
        line_cols: tuple[str, ...] = ("sku", "title", "quantity", "unit_price", "discount", "tax", "total")
        if r["status"] == "cancelled":  # the report zeroes a cancelled item's quantity, v0 keeps what was ordered
            line_cols = ("sku", "title", "discount", "tax", "total")
        assert _line_set(from_report, o.external_id, line_cols) == _line_set(from_v0, o.external_id, line_cols)
    assert statuses == {"pending", "unfulfilled", "partially_fulfilled", "fulfilled", "cancelled"}


def _line_set(out: Normalized, external_id: str, columns: tuple[str, ...]) -> list[tuple]:
    frame = out.lines.filter(pl.col("order_id") == f"amazon:amz-us:{external_id}").sort("line_no")
    return list(frame.select(columns).iter_rows())


def test_blank_lines_take_the_line_by_line_reader_and_read_the_same(tmp_path: Path) -> None:
    base = run(tmp_path / "base", tsv(GOLDEN))
    body = tsv(GOLDEN).replace(b"\n", b"\n\n", 3)  # blank lines: the fast reader's tab count refuses them
    other = run(tmp_path / "blank", body)
    assert other.orders.drop("batch_id", "landed_at").equals(base.orders.drop("batch_id", "landed_at"))
    assert other.lines.drop("batch_id").equals(base.lines.drop("batch_id"))


def test_an_unknown_charset_quarantines_the_part(tmp_path: Path) -> None:
    out = run(tmp_path, tsv(GOLDEN), request={"charset": "klingon-8"})
    assert out.orders.height == 0
    assert "the document's charset 'klingon-8' is unknown" in out.quarantine["reason"].item()
