"""Customer identities: link every channel identity to one customer, deterministically and stably.

An *identity* is what one channel knows about a buyer in one store: the channel's customer key
when it has one, else the e-mail, else the phone, else just the order (a guest with nothing to go
by, or a masked Amazon buyer). Identities are linked when they share a *link key*:

- ``email``: the normalized e-mail (trimmed, lower-case). An Amazon relay address
  (``…@marketplace.amazon.<tld>``) is a key only among Amazon identities: by itself it never
  links to another channel;
- ``phone``: an E.164 number;
- ``mirror``: a mirror (``duplicate_of`` set by dedupe/mirrors.py) is the same purchase as its
  original, so the mirror's identity joins the original's (run resolve_mirrors first);
- ``channel_customer``: the channel's own customer key within one store is the identity itself
  (an empty key or ``"0"``, WooCommerce's guest, is no key).

Customers are the connected components of that graph, found by vectorized label propagation
with pointer jumping in polars (no Python loop per row). A customer's id is
``"cus_" + sha256(smallest identity key)[:16]``: it stays the same on every run while the cluster
does not change. Probabilistic matching (splink) plugs in as a :data:`Linker` that adds scored
edges between identities; the deterministic keys and the component search stay as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import duckdb
import polars as pl

from orderhub import clock
from warehouse.db import sync_table, transaction, update_in_storage_order
from warehouse.frames import query_frame, registered

RELAY_EMAIL = r"@marketplace\.amazon\.[a-z.]+$"  # Amazon buyer-seller messaging relay addresses
E164 = r"^\+[1-9][0-9]{6,14}$"  # ITU-T E.164: at most 15 digits after '+'
GUEST_KEYS = ("", "0")  # WooCommerce customer_id 0 = guest checkout

# A key shared by more identities than this is a placeholder ("noemail@shop.com", a marketplace's
# dummy phone), not a person: one person has at most a few identities per store.
MAX_KEY_IDENTITIES = 100

# Strongest evidence first: the rule recorded for an identity is the first it qualifies for.
# A shared key names the rule in a cluster of several identities; a lone identity is named by
# what keys it (its channel customer key, e-mail or phone), or "self" when nothing does.
RULES = ("email", "phone", "mirror", "channel_customer", "self")
_KEY_RULES = ("email", "phone", "mirror")

EDGE_SCHEMA: dict[str, pl.DataType] = {
    "left_key": pl.String,
    "right_key": pl.String,
    "rule": pl.String,
    "score": pl.Float64,
}

Linker = Callable[[pl.DataFrame], pl.DataFrame]
"""Extra evidence between identities, e.g. a splink model.

Called with the identities frame (``identity_key, channel, store, channel_customer_key, email,
phone, name, line1, city, postal_code, country``); returns :data:`EDGE_SCHEMA` rows: pairs of
identity keys to link, the rule name to record (e.g. ``"splink"``) and its match score.
"""

_ORDERS_SQL = """
SELECT order_id, channel, store, external_id, channel_customer_key, email, phone,
       buyer_name, ship_name, ship_line1, ship_city, ship_postal_code, ship_country,
       pii_masked, created_at, updated_at, duplicate_of
FROM orders
"""


@dataclass(frozen=True)
class IdentityStats:
    """What :func:`resolve_customers` found.

    Attributes:
        orders: orders linked to a customer.
        identities: channel identities.
        customers: resolved customers (connected components).
        linked_identities: identities that share their customer with at least one other identity.
        orders_relinked: orders whose customer_id changed in this run.
        ignored_keys: link keys too common to be a person's (see ``max_key_identities``).
        iterations: label-propagation rounds until the components were stable.
        by_rule: identities per rule that linked them.
    """

    orders: int = 0
    identities: int = 0
    customers: int = 0
    linked_identities: int = 0
    orders_relinked: int = 0
    ignored_keys: int = 0
    iterations: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Linking:
    """The result of :func:`link_identities`, before it is written anywhere.

    Attributes:
        identities: one row per identity with its attributes, ``root_key`` (the smallest identity
            key of its cluster), ``rule`` and ``score``.
        order_identity: ``order_id -> identity_key``.
        ignored_keys: link keys dropped as placeholders.
        iterations: label-propagation rounds.
    """

    identities: pl.DataFrame
    order_identity: pl.DataFrame
    ignored_keys: int
    iterations: int


def customer_id_for(root_key: str) -> str:
    """The customer id of a cluster whose smallest identity key is ``root_key``."""
    return "cus_" + hashlib.sha256(root_key.encode("utf-8")).hexdigest()[:16]


def keyed_orders(orders: pl.DataFrame) -> pl.DataFrame:
    """Normalize the link values of each order and name its identity.

    Args:
        orders: at least ``order_id, channel, store, external_id, channel_customer_key, email,
            phone``; the address columns and ``created_at``/``updated_at`` when present.

    Returns:
        The orders with ``_ck``, ``_email``, ``_relay``, ``_phone``, ``identity_kind`` (``ck``,
        ``email``, ``phone`` or ``order``) and ``identity_key`` (``{channel}:{store}:{kind}:{value}``) added.
    """
    ck = pl.col("channel_customer_key").str.strip_chars()
    email = pl.col("email").str.strip_chars().str.to_lowercase()
    phone = pl.col("phone").str.strip_chars()
    keyed = orders.with_columns(
        pl.when(ck.is_in(list(GUEST_KEYS))).then(None).otherwise(ck).alias("_ck"),
        pl.when(email.str.contains("@")).then(email).otherwise(None).alias("_email"),
        pl.when(phone.str.contains(E164)).then(phone).otherwise(None).alias("_phone"),
    ).with_columns(pl.col("_email").str.contains(RELAY_EMAIL).fill_null(False).alias("_relay"))
    kind = (
        pl.when(pl.col("_ck").is_not_null())
        .then(pl.lit("ck"))
        .when(pl.col("_email").is_not_null())
        .then(pl.lit("email"))
        .when(pl.col("_phone").is_not_null())
        .then(pl.lit("phone"))
        .otherwise(pl.lit("order"))
    )
    value = pl.coalesce("_ck", "_email", "_phone", "external_id", "order_id")
    return keyed.with_columns(kind.alias("identity_kind")).with_columns(
        pl.concat_str(
            "channel", pl.lit(":"), "store", pl.lit(":"), "identity_kind", pl.lit(":"), value
        ).alias("identity_key")
    )


def _identity_rows(keyed: pl.DataFrame) -> pl.DataFrame:
    # Attributes from the most recent order of the identity that has a value, column by column.
    order_by = [c for c in ("updated_at", "created_at", "order_id") if c in keyed.columns]
    name = pl.coalesce(
        *[pl.col(c) for c in ("buyer_name", "ship_name") if c in keyed.columns] or [pl.lit(None)]
    )

    def opt(column: str) -> pl.Expr:
        return pl.col(column) if column in keyed.columns else pl.lit(None, dtype=pl.String)

    latest = {
        "channel_customer_key": pl.col("_ck"),
        "email": pl.col("_email"),
        "phone": pl.col("_phone"),
        "name": name,
        "line1": opt("ship_line1"),
        "city": opt("ship_city"),
        "postal_code": opt("ship_postal_code"),
        "country": opt("ship_country"),
    }
    return (
        keyed.sort(order_by, nulls_last=False)
        .group_by("identity_key")
        .agg(
            pl.col("channel").first(),
            pl.col("store").first(),
            pl.col("identity_kind").first(),
            *[expr.cast(pl.String).drop_nulls().last().alias(out) for out, expr in latest.items()],
        )
        .sort("identity_key")
    )


def _link_keys(keyed: pl.DataFrame) -> pl.DataFrame:
    # (identity_key, link_key, kind); the channel customer key is part of the identity itself.
    email = keyed.filter(
        pl.col("_email").is_not_null() & (~pl.col("_relay") | (pl.col("channel") == "amazon"))
    )
    parts = [
        email.select(
            "identity_key",
            pl.concat_str(
                pl.when(pl.col("_relay")).then(pl.lit("relay:")).otherwise(pl.lit("email:")), "_email"
            ).alias("link_key"),
            pl.lit("email").alias("kind"),
        ),
        keyed.filter(pl.col("_phone").is_not_null()).select(
            "identity_key",
            pl.concat_str(pl.lit("phone:"), "_phone").alias("link_key"),
            pl.lit("phone").alias("kind"),
        ),
    ]
    if "duplicate_of" in keyed.columns:
        # A mirror is the same purchase as its original, so its buyer is the original's buyer: the
        # mirror's identity and the originals' identities share a key. A generic account the
        # importing app books every marketplace order on would then hold hundreds of identities,
        # and falls under max_key_identities like any placeholder.
        mirrors = keyed.filter(pl.col("duplicate_of").is_not_null()).select(
            "identity_key", pl.concat_str(pl.lit("mirror:"), "identity_key").alias("link_key"), "duplicate_of"
        )
        originals = mirrors.join(
            keyed.select(
                pl.col("order_id").alias("duplicate_of"), pl.col("identity_key").alias("original_identity")
            ),
            on="duplicate_of",
        )
        parts += [
            mirrors.select("identity_key", "link_key", pl.lit("mirror").alias("kind")),
            originals.select(
                pl.col("original_identity").alias("identity_key"), "link_key", pl.lit("mirror").alias("kind")
            ),
        ]
    return pl.concat(parts).unique()


def connected_components(n: int, edges: pl.DataFrame) -> tuple[pl.Series, int]:
    """Connected components of an undirected graph, labelled by their smallest node.

    Min-label propagation over all edges at once, followed by pointer jumping
    (``label = label[label]``) so that long chains collapse in a logarithmic number of rounds.

    Args:
        n: number of nodes, numbered ``0 .. n-1``.
        edges: ``src`` and ``dst`` node numbers (UInt32), in either direction.

    Returns:
        The label of every node (the smallest node of its component) and the rounds it took.
    """
    label = pl.int_range(0, n, dtype=pl.UInt32, eager=True).alias("label")
    if n == 0 or edges.height == 0:
        return label, 0
    both = pl.concat(
        [
            edges.select(pl.col("src").cast(pl.UInt32).alias("a"), pl.col("dst").cast(pl.UInt32).alias("b")),
            edges.select(pl.col("dst").cast(pl.UInt32).alias("a"), pl.col("src").cast(pl.UInt32).alias("b")),
        ]
    )
    rounds = 0
    while True:
        rounds += 1
        offers = (
            both.with_columns(label.gather(both["b"]).alias("offer")).group_by("a").agg(pl.col("offer").min())
        )
        current = label.gather(offers["a"])
        better = pl.select(pl.min_horizontal(current, offers["offer"])).to_series()
        new = label.clone().scatter(offers["a"], better)
        while True:  # pointer jumping: a label's label is in the same component and not larger
            jumped = new.gather(new)
            if jumped.equals(new):
                break
            new = jumped
        if new.equals(label):
            return label, rounds
        label = new


def link_identities(
    orders: pl.DataFrame,
    *,
    linkers: Sequence[Linker] = (),
    max_key_identities: int = MAX_KEY_IDENTITIES,
) -> Linking:
    """Find the identities in ``orders`` and the cluster each belongs to (pure polars, no I/O).

    Args:
        orders: the orders to link (columns as :func:`keyed_orders` reads them).
        linkers: extra evidence (e.g. splink), each returning :data:`EDGE_SCHEMA` edges.
        max_key_identities: a link key shared by more identities is ignored as a placeholder.

    Returns:
        The identities with their cluster root, rule and score, and each order's identity.
    """
    keyed = keyed_orders(orders)
    identities = _identity_rows(keyed).with_row_index("node")
    n = identities.height
    nodes = identities.select("identity_key", "node")

    links = _link_keys(keyed).join(nodes, on="identity_key")
    degree = links.group_by("link_key").agg(pl.len().alias("degree"))
    ignored = int(degree.filter(pl.col("degree") > max_key_identities).height)
    links = links.join(
        degree.filter((pl.col("degree") > 1) & (pl.col("degree") <= max_key_identities)).select("link_key"),
        on="link_key",
        how="semi",
    )
    # Each key becomes a star: every identity holding it points at the key's first identity.
    hubs = links.group_by("link_key").agg(pl.col("node").min().alias("hub"))
    edges = links.join(hubs, on="link_key").select(pl.col("node").alias("src"), pl.col("hub").alias("dst"))

    extra = _linker_edges(identities, linkers)
    if extra.height:
        extra_nodes = extra.join(
            nodes.rename({"identity_key": "left_key", "node": "src"}), on="left_key"
        ).join(nodes.rename({"identity_key": "right_key", "node": "dst"}), on="right_key")
        edges = pl.concat([edges, extra_nodes.select("src", "dst")])
    labels, rounds = connected_components(n, edges.filter(pl.col("src") != pl.col("dst")))

    keys = identities["identity_key"]
    identities = identities.with_columns(keys.gather(labels).alias("root_key"))
    size = identities.group_by("root_key").agg(pl.len().alias("_size"))
    shared = links.group_by("identity_key").agg(
        *[pl.col("kind").eq(kind).any().alias(f"_by_{kind}") for kind in _KEY_RULES]
    )
    by_linker = _linker_rules(extra)
    own = pl.col("identity_kind")
    identities = (
        identities.join(size, on="root_key", how="left")
        .join(shared, on="identity_key", how="left")
        .join(by_linker, on="identity_key", how="left")
        .with_columns(
            pl.when((pl.col("_size") > 1) & pl.col("_by_email").fill_null(False))
            .then(pl.lit("email"))
            .when((pl.col("_size") > 1) & pl.col("_by_phone").fill_null(False))
            .then(pl.lit("phone"))
            .when((pl.col("_size") > 1) & pl.col("_by_mirror").fill_null(False))
            .then(pl.lit("mirror"))
            .when((pl.col("_size") > 1) & pl.col("_linker_rule").is_not_null())
            .then(pl.col("_linker_rule"))
            .when(own == "ck")
            .then(pl.lit("channel_customer"))
            .when(own == "email")
            .then(pl.lit("email"))
            .when(own == "phone")
            .then(pl.lit("phone"))
            .otherwise(pl.lit("self"))
            .alias("rule"),
            pl.when(
                (pl.col("_size") > 1)
                & ~pl.any_horizontal(*[pl.col(f"_by_{kind}").fill_null(False) for kind in _KEY_RULES])
            )
            .then(pl.col("_linker_score"))
            .otherwise(None)
            .alias("score"),
            pl.col("_size").alias("cluster_size"),
        )
        .drop(
            "node",
            "identity_kind",
            "_size",
            *[f"_by_{kind}" for kind in _KEY_RULES],
            "_linker_rule",
            "_linker_score",
        )
        .sort("identity_key")
    )
    return Linking(
        identities=identities,
        order_identity=keyed.select("order_id", "identity_key"),
        ignored_keys=ignored,
        iterations=rounds,
    )


def _linker_edges(identities: pl.DataFrame, linkers: Sequence[Linker]) -> pl.DataFrame:
    if not linkers:
        return pl.DataFrame(schema=EDGE_SCHEMA)
    view = identities.drop("node")
    frames = [linker(view).select(list(EDGE_SCHEMA)).cast(EDGE_SCHEMA) for linker in linkers]  # type: ignore[arg-type]
    return pl.concat(frames)


def _linker_rules(extra: pl.DataFrame) -> pl.DataFrame:
    # The best-scored linker edge of each identity names its rule when no deterministic key linked it.
    ends = pl.concat(
        [
            extra.select(pl.col("left_key").alias("identity_key"), "rule", "score"),
            extra.select(pl.col("right_key").alias("identity_key"), "rule", "score"),
        ]
    )
    return (
        ends.sort("score", nulls_last=False)
        .group_by("identity_key")
        .agg(pl.col("rule").last().alias("_linker_rule"), pl.col("score").last().alias("_linker_score"))
    )


def resolve_customers(
    con: duckdb.DuckDBPyConnection,
    *,
    linkers: Sequence[Linker] = (),
    max_key_identities: int = MAX_KEY_IDENTITIES,
) -> IdentityStats:
    """Recompute identities, set ``orders.customer_id`` and rebuild ``customers``, in one transaction.

    ``customers`` takes name, e-mail (a real address before an Amazon relay), phone and country
    from the most recent order with a value; first/last order, ``orders_count`` and
    ``total_spent_base`` count only originals (``duplicate_of IS NULL``) that are not cancelled.
    ``tags``, ``vip`` and ``at_risk`` are the CRM tagging step's: they are kept for every
    customer_id that survives. ``linked_at`` of an identity changes only when its customer or
    rule does, and a customer's ``updated_at`` only when its row does.

    Args:
        con: the warehouse writer's connection.
        linkers: extra evidence between identities (see :data:`Linker`).
        max_key_identities: a link key shared by more identities is ignored as a placeholder.

    Returns:
        Counts of identities, customers and what changed.
    """
    orders = query_frame(con, _ORDERS_SQL)
    linking = link_identities(orders, linkers=linkers, max_key_identities=max_key_identities)
    now = clock.now()
    identity_cols = [
        "identity_key", "channel", "store", "channel_customer_key", "email", "phone", "name",
        "line1", "city", "postal_code", "country", "root_key", "rule", "score",
    ]  # fmt: skip
    with (
        transaction(con),
        registered(con, "_oh_src_identities", linking.identities.select(identity_cols)),
        registered(con, "_oh_src_order_identity", linking.order_identity),
    ):
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _oh_identities AS
            SELECT n.* EXCLUDE (root_key),
                   'cus_' || left(sha256(n.root_key), 16) AS customer_id,
                   CASE WHEN old.customer_id = 'cus_' || left(sha256(n.root_key), 16) AND old.rule = n.rule
                        THEN old.linked_at ELSE ?::TIMESTAMPTZ END AS linked_at
            FROM _oh_src_identities n LEFT JOIN customer_identities old USING (identity_key)
            """,
            [now],
        )
        sync_table(con, "customer_identities", "_oh_identities", key="identity_key")
        relinked = update_in_storage_order(
            con,
            "orders",
            """
            SELECT oi.order_id, i.customer_id
            FROM _oh_src_order_identity oi JOIN _oh_identities i USING (identity_key)
            JOIN orders o USING (order_id)
            WHERE o.customer_id IS DISTINCT FROM i.customer_id
            """,
            key="order_id",
            columns=["customer_id"],
        )
        customers = _rebuild_customers(con, now)
        con.execute("DROP TABLE _oh_identities")

    ids = linking.identities
    by_rule = dict(ids.group_by("rule").len().iter_rows())
    return IdentityStats(
        orders=linking.order_identity.height,
        identities=ids.height,
        customers=customers,
        linked_identities=int(ids.filter(pl.col("cluster_size") > 1).height),
        orders_relinked=int(relinked),
        ignored_keys=linking.ignored_keys,
        iterations=linking.iterations,
        by_rule={rule: int(count) for rule, count in sorted(by_rule.items())},
    )


_CONTACT_COLUMNS = ("name", "email", "phone", "country", "first_order_at", "last_order_at", "orders_count",
                    "total_spent_base")  # fmt: skip


def _rebuild_customers(con: duckdb.DuckDBPyConnection, now: object) -> int:
    unchanged = " AND ".join(f"c.{c} IS NOT DISTINCT FROM old.{c}" for c in _CONTACT_COLUMNS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _oh_customers AS
        WITH o AS (
            SELECT customer_id, created_at, total_base, nullif(lower(trim(email)), '') AS email, phone,
                   coalesce(buyer_name, ship_name) AS name,
                   ship_country AS country,
                   coalesce(regexp_matches(lower(email), '{RELAY_EMAIL}'), false) AS relay,
                   duplicate_of IS NULL AND status IS DISTINCT FROM 'cancelled' AS counts
            FROM orders WHERE customer_id IS NOT NULL
        ), agg AS (
            SELECT customer_id,
                   arg_max(name, created_at) FILTER (WHERE name IS NOT NULL) AS name,
                   coalesce(arg_max(email, created_at) FILTER (WHERE email IS NOT NULL AND NOT relay),
                            arg_max(email, created_at) FILTER (WHERE email IS NOT NULL)) AS email,
                   arg_max(phone, created_at) FILTER (WHERE phone IS NOT NULL) AS phone,
                   arg_max(country, created_at) FILTER (WHERE country IS NOT NULL) AS country,
                   min(created_at) FILTER (WHERE counts) AS first_order_at,
                   max(created_at) FILTER (WHERE counts) AS last_order_at,
                   count(*) FILTER (WHERE counts)::INTEGER AS orders_count,
                   coalesce(sum(total_base) FILTER (WHERE counts), 0)::DECIMAL(18, 4) AS total_spent_base
            FROM o GROUP BY customer_id
        )
        SELECT c.*,
               coalesce(old.tags, []::VARCHAR[]) AS tags,
               coalesce(old.vip, false) AS vip,
               coalesce(old.at_risk, false) AS at_risk,
               CASE WHEN old.customer_id IS NOT NULL AND {unchanged} THEN old.updated_at
                    ELSE ?::TIMESTAMPTZ END AS updated_at
        FROM agg c LEFT JOIN customers old USING (customer_id)
        """,
        [now],
    )
    sync_table(con, "customers", "_oh_customers", key="customer_id")
    count = con.execute("SELECT count(*) FROM _oh_customers").fetchall()[0][0]
    con.execute("DROP TABLE _oh_customers")
    return int(count)
