"""Cross-channel mirrors: an order imported into another channel points at its original, and counts once."""

from __future__ import annotations

import duckdb

from warehouse.db import transaction, update_in_storage_order

# Recomputed over the whole table on every run, because the original may land after its mirror
# and a new version of an order may drop or change its mirror_of. mirror_of is
# "{channel}:{external_id}" as the mirror carries it (e.g. a Shopify order imported from Amazon
# by a marketplace app); external ids may hold ':' themselves, so only the first ':' splits.
_CHANGES = """
WITH refs AS (
    SELECT order_id, channel,
           lower(trim(split_part(mirror_of, ':', 1))) AS ref_channel,
           trim(substr(mirror_of, strpos(mirror_of, ':') + 1)) AS ref_external_id
    FROM orders
    WHERE mirror_of IS NOT NULL AND strpos(mirror_of, ':') > 1
), matched AS (
    -- Any store of the referenced channel; min() keeps the choice deterministic should two match.
    SELECT r.order_id, min(o.order_id) AS original
    FROM refs r JOIN orders o
      ON o.channel = r.ref_channel AND o.external_id = r.ref_external_id AND o.channel <> r.channel
    GROUP BY r.order_id
)
SELECT o.order_id, matched.original AS duplicate_of
FROM orders o LEFT JOIN matched USING (order_id)
WHERE o.duplicate_of IS DISTINCT FROM matched.original
"""


def resolve_mirrors(con: duckdb.DuckDBPyConnection) -> int:
    """Set ``orders.duplicate_of`` from ``mirror_of`` across the whole table, set-based in SQL.

    An order whose ``mirror_of`` names ``{channel}:{external_id}`` of an order of another channel
    (any store of it) gets that order's ``order_id`` in ``duplicate_of``; a flag whose reference no
    longer matches is cleared. Every figure must then filter ``duplicate_of IS NULL`` so that a
    mirrored order counts once.

    Args:
        con: the warehouse writer's connection.

    Returns:
        How many orders are flagged as mirrors after the run.
    """
    with transaction(con):
        update_in_storage_order(con, "orders", _CHANGES, key="order_id", columns=["duplicate_of"])
    return int(con.execute("SELECT count(*) FROM orders WHERE duplicate_of IS NOT NULL").fetchall()[0][0])
