"""A REST and a GraphQL view of the same sandbox order normalize to the same canonical row and lines."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
import requests
from polars.testing import assert_frame_equal

from connectors.base import sync_stream
from connectors.landing import Part
from connectors.shopify.streams import ShopifyOrders
from pipelines.schema import LINE_SCHEMA, ORDER_SCHEMA
from tests.shopify.helpers import SHOP, TOKEN, World, latest, normalize_landed

PROVENANCE = ["batch_id", "landed_at", "record_hash"]


@pytest.mark.parametrize("days", [0, 3])  # at t0 and after more changes (shipped, cancelled+refunded)
def test_rest_and_graphql_give_the_same_rows(world: World, days: int) -> None:
    world.advance(timedelta(days=days))
    stream = ShopifyOrders(world.store, start=world.t0 - timedelta(days=60), client=world.client())
    sync_stream(stream, world.landing)
    graphql = normalize_landed(world.landing, world.settings)

    headers = {"Host": SHOP, "X-Shopify-Access-Token": TOKEN}
    base = f"{world.server.url}/admin/api/2026-01"
    listing = requests.get(f"{base}/orders.json", params={"status": "any", "limit": "250"}, headers=headers, timeout=5)
    single = requests.get(f"{base}/orders/5000000004.json", headers=headers, timeout=5)
    assert listing.status_code == single.status_code == 200
    # the REST copies go in a stream of their own
    world.landing.write_batch("shopify", "acme", "rest", [
        Part("shopify.rest.orders", listing.content, len(listing.json()["orders"])),
        Part("shopify.rest.orders", single.content, 1)], None)
    both = normalize_landed(world.landing, world.settings)
    assert both.quarantine.is_empty()
    rest_orders = both.orders.filter(pl.col("batch_id").str.contains("/rest/"))
    rest_lines = both.lines.filter(pl.col("batch_id").str.contains("/rest/")).select(list(LINE_SCHEMA))

    columns = [c for c in ORDER_SCHEMA if c not in PROVENANCE]
    expected = latest(graphql.orders).select(columns)
    got = latest(rest_orders).select(columns)
    assert got.height == len(world.visible()) == expected.height
    assert_frame_equal(got, expected)
    # the one order fetched twice by REST (list and single) is identical too
    twice = rest_orders.filter(pl.col("external_id") == "5000000004").select(columns)
    assert twice.height == 2 and twice.unique().height == 1

    key = ["order_id", "line_no"]
    graphql_lines = graphql.lines.select(list(LINE_SCHEMA))
    assert_frame_equal(rest_lines.unique(key).sort(key), graphql_lines.unique(key).sort(key))
    assert list(graphql.lines.columns) == [*LINE_SCHEMA, "batch_id"]  # the version a line set belongs to
    interesting = expected.filter(pl.col("refunded") > 0)["external_id"].to_list()
    assert "5000000004" in interesting  # a partially refunded order is part of the comparison
