"""import_files lands saved Shopify responses byte for byte, detecting each file's kind from its content."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.landing import LandingStore
from connectors.registry import importer
from connectors.shopify.importer import import_files
from orderhub.config import Settings
from orderhub.errors import ConfigError
from tests.shopify.helpers import FIXTURES, normalize_landed


def test_import_the_real_fixtures(tmp_path: Path) -> None:
    landing = LandingStore(tmp_path / "landing")
    files = [FIXTURES / "order.json", FIXTURES / "orders.json"]
    manifests = import_files(files, "support-case", landing)
    assert importer("shopify") is import_files
    assert [(m.stream, m.source, m.cursor, m.records) for m in manifests] == [
        ("import", "import", None, 1), ("import", "import", None, 1)]
    assert [m.parts[0].kind for m in manifests] == ["shopify.rest.orders"] * 2
    for manifest, path in zip(manifests, files, strict=True):
        assert landing.read_part(manifest, manifest.parts[0]) == path.read_bytes()  # verbatim
    # Each file on its own (both hold order 450789469, and finish() checks lines per order_id):
    for path, loaded, quarantined in [(files[0], 1, []), (files[1], 0, ["order has no line items"])]:
        alone = LandingStore(tmp_path / path.stem)
        import_files([path], "support-case", alone)
        out = normalize_landed(alone, Settings(home=tmp_path))
        assert out.orders.height == loaded and out.quarantine["reason"].to_list() == quarantined
        assert set(out.orders["order_id"].to_list() + out.quarantine["external_id"].to_list()) <= {
            "shopify:support-case:450789469", "450789469"}


def test_import_a_saved_graphql_response(tmp_path: Path) -> None:
    body = {"data": {"orders": {"edges": [{"cursor": "c1", "node": {
        "legacyResourceId": "42", "name": "#1042", "createdAt": "2024-05-01T10:00:00Z",
        "updatedAt": "2024-05-02T10:00:00Z", "currencyCode": "EUR", "displayFinancialStatus": "PAID",
        "displayFulfillmentStatus": "FULFILLED", "totalPriceSet": {"shopMoney": {"amount": "10.5"}},
        "lineItems": {"nodes": [{"sku": "X", "title": "X", "quantity": 1,
                                 "originalUnitPriceSet": {"shopMoney": {"amount": "10.5"}}}]}}}],
        "pageInfo": {"hasNextPage": False, "endCursor": "c1"}}}}
    path = tmp_path / "graphql.json"
    path.write_text(json.dumps(body))
    landing = LandingStore(tmp_path / "landing")
    (manifest,) = import_files([path], "eu", landing)
    assert manifest.parts[0].kind == "shopify.graphql.orders" and manifest.records == 1
    out = normalize_landed(landing, Settings(home=tmp_path, rates={"EUR": Decimal("1.08")}))
    row = out.orders.row(0, named=True)
    assert (row["order_id"], row["status"], row["payment_status"], str(row["total"])) == (
        "shopify:eu:42", "fulfilled", "paid", "10.5000")


@pytest.mark.parametrize(("content", "message"), [
    (b"not json", "is not JSON"),
    (b'{"customer": {"id": 1}}', "is not a Shopify orders response"),
    (b"[1, 2]", "is not a Shopify orders response"),
])
def test_unrecognized_files_are_refused_and_nothing_lands(tmp_path: Path, content: bytes, message: str) -> None:
    good, bad = FIXTURES / "order.json", tmp_path / "bad.json"
    bad.write_bytes(content)
    landing = LandingStore(tmp_path / "landing")
    with pytest.raises(ConfigError, match=message):
        import_files([good, bad], "support", landing)
    assert list(landing.manifests()) == []
    with pytest.raises(ConfigError, match="does not exist"):
        import_files([tmp_path / "missing.json"], "support", landing)
