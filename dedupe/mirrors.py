"""Cross-channel mirrors: an order imported into another channel points at its original, and counts once.

Two rules, recomputed over the whole table on every run (the original may land after its mirror,
and a new version of an order may drop or change what made it a mirror):

- **reference**: the mirror carries the original's id (``mirror_of`` = ``{channel}:{external_id}``,
  e.g. a Shopify order imported from Amazon by a marketplace app). External ids may hold ``:``
  themselves, so only the first ``:`` splits.
- **same purchase**: the mirror carries no reference, but another channel's order has the same
  buyer, the same items (SKU and quantity, as a multiset) and the same total in the same currency,
  created at most :data:`MIRROR_WINDOW` earlier. The buyer is the same when the e-mail, the phone, or
  the ship-to name and postcode agree; when the earlier order's buyer is masked (Amazon without the
  PII roles), when its ship-to postcode, city and country do. Each order mirrors at most one original
  (the closest in time that is free), and an original has at most one mirror per channel.

``duplicate_evidence`` says which rule flagged the order and on what.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import polars as pl

from warehouse.db import transaction, update_in_storage_order
from warehouse.frames import registered

# How long after its original a copy may be created: Amazon orders are copied once paid, which is
# minutes to hours after they are placed and, for a bank transfer or payment check, up to three days.
MIRROR_WINDOW = timedelta(hours=72)

# Candidate same-purchase pairs, a copy's candidates in the order _choose considers them.
_PAIRS = """
WITH items AS (
    SELECT order_id, string_agg(coalesce(master_sku, sku, title) || ' x' || quantity, ' | '
                                ORDER BY coalesce(master_sku, sku, title), quantity) AS items,
           sum(quantity) AS units
    FROM order_lines GROUP BY order_id
), candidates AS MATERIALIZED (
    -- Orders that may be one side of a same-purchase pair: a reference decides for those that carry one.
    SELECT o.order_id, o.channel, o.created_at, o.currency, o.total, i.items, i.units, o.email, o.phone,
           nullif(lower(trim(o.ship_name)), '') AS ship_name,
           nullif(upper(replace(o.ship_postal_code, ' ', '')), '') AS postcode,
           nullif(lower(trim(o.ship_city)), '') AS city, o.ship_country AS country,
           coalesce(o.pii_masked, false) AS masked
    FROM orders o JOIN items i USING (order_id)
    WHERE o.mirror_of IS NULL AND o.total IS NOT NULL AND o.currency IS NOT NULL AND o.created_at IS NOT NULL
), buyers AS (
    -- Each way of being the same buyer as a key; the masked-buyer key only counts for the earlier order.
    SELECT c.order_id, k.rank, k.buyer, k.key, c.currency, c.total, c.items, c.masked
    FROM candidates c, LATERAL (VALUES
        (0, 'e-mail', c.email),
        (1, 'phone', c.phone),
        (2, 'ship-to name and postcode', c.ship_name || '|' || c.postcode),
        (3, 'ship-to postcode and city, buyer masked', c.postcode || '|' || c.city || '|' || c.country)
    ) k(rank, buyer, key)
    WHERE k.key IS NOT NULL
), matches AS (
    -- One equi-join on buyer key, currency, total and items: only orders sharing all of them are paired.
    SELECT m.order_id AS mirror, o.order_id AS original, m.rank, m.buyer
    FROM buyers m JOIN buyers o USING (rank, key, currency, total, items)
    WHERE m.rank < 3 OR o.masked
), pairs AS (
    SELECT DISTINCT ON (x.mirror, x.original)
           m.order_id AS mirror, m.channel AS mirror_channel, m.created_at AS mirror_created, o.order_id AS original,
           m.created_at - o.created_at AS apart,
           'same purchase: buyer (' || x.buyer || '), items (' || m.items || '; ' || m.units
           || CASE WHEN m.units = 1 THEN ' unit' ELSE ' units' END || '), total '
           || CASE WHEN m.total = round(m.total, 2) THEN round(m.total, 2)::DECIMAL(18, 2)::VARCHAR
                   ELSE m.total::VARCHAR END || ' ' || m.currency
           || ', created ' || (epoch(m.created_at - o.created_at) // 60)::BIGINT || ' min after' AS evidence
    FROM matches x JOIN candidates m ON m.order_id = x.mirror JOIN candidates o ON o.order_id = x.original
    WHERE m.channel <> o.channel
      AND (m.created_at > o.created_at OR (m.created_at = o.created_at AND m.order_id > o.order_id))
      AND m.created_at - o.created_at <= ?::INTERVAL
    ORDER BY x.mirror, x.original, x.rank
)
SELECT mirror, mirror_channel, original, evidence FROM pairs ORDER BY mirror_created, mirror, apart, original
"""
# The flags to hold: every resolved reference, and the same purchases chosen (``_oh_purchases``).
_CHANGES = """
WITH refs AS (
    SELECT order_id, channel,
           lower(trim(split_part(mirror_of, ':', 1))) AS ref_channel,
           trim(substr(mirror_of, strpos(mirror_of, ':') + 1)) AS ref_external_id
    FROM orders
    WHERE mirror_of IS NOT NULL AND strpos(mirror_of, ':') > 1
), referenced AS (
    -- Any store of the referenced channel; min() keeps the choice deterministic should two match.
    SELECT r.order_id, min(o.order_id) AS original, 'mirror_of ' || any_value(r.ref_channel) || ':'
           || any_value(r.ref_external_id) AS evidence
    FROM refs r JOIN orders o
      ON o.channel = r.ref_channel AND o.external_id = r.ref_external_id AND o.channel <> r.channel
    GROUP BY r.order_id
), flagged AS (
    SELECT order_id, original, evidence FROM referenced
    UNION ALL
    SELECT order_id, original, evidence FROM _oh_purchases
)
SELECT o.order_id, f.original AS duplicate_of, f.evidence AS duplicate_evidence
FROM orders o LEFT JOIN flagged f USING (order_id)
WHERE o.duplicate_of IS DISTINCT FROM f.original OR o.duplicate_evidence IS DISTINCT FROM f.evidence
"""


def _choose(pairs: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str]]:
    """The same purchases to flag, from candidate pairs ordered by the copy's creation, then closeness.

    Each copy, earliest first, takes its closest candidate original that is not itself a copy and has
    no copy in this copy's channel yet: an Amazon order copied into a shop and then into another shop
    has two mirrors; an order bought twice has two originals.
    """
    copies: dict[str, tuple[str, str]] = {}
    taken: set[tuple[str, str]] = set()
    for mirror, channel, original, evidence in pairs:
        if mirror in copies or original in copies or (original, channel) in taken:
            continue
        copies[mirror] = (original, evidence)
        taken.add((original, channel))
    return [(mirror, original, evidence) for mirror, (original, evidence) in copies.items()]


def resolve_mirrors(con: duckdb.DuckDBPyConnection, *, window: timedelta = MIRROR_WINDOW) -> int:
    """Set ``orders.duplicate_of`` and ``duplicate_evidence`` across the whole table.

    An order whose ``mirror_of`` names ``{channel}:{external_id}`` of an order of another channel
    (any store of it) gets that order's ``order_id``; an order without a reference gets the order of
    another channel it repeats (same buyer, items, total and currency, created within ``window``
    before it; see the module docstring). A flag whose grounds are gone is cleared. Every figure
    must then filter ``duplicate_of IS NULL`` so that a mirrored order counts once.

    Args:
        con: the warehouse writer's connection.
        window: how much later than its original a mirror may be created.

    Returns:
        How many orders are flagged as mirrors after the run.
    """
    with transaction(con):
        chosen = pl.DataFrame(_choose(con.execute(_PAIRS, [window]).fetchall()),
                              schema={"order_id": pl.String, "original": pl.String, "evidence": pl.String},
                              orient="row")
        with registered(con, "_oh_purchases", chosen):
            update_in_storage_order(con, "orders", _CHANGES, key="order_id",
                                    columns=["duplicate_of", "duplicate_evidence"])
    return int(con.execute("SELECT count(*) FROM orders WHERE duplicate_of IS NOT NULL").fetchall()[0][0])
