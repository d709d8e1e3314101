"""Customer identities: one customer per real person, explained and stable across runs.

An *identity* is what one channel knows about a buyer in one store: the channel's customer key
when it has one, else the e-mail, else the phone, else just the order (a guest with nothing to go
by, or a masked Amazon buyer). Its key is ``{channel}:{store}:{ck|email|phone|order}:{value}``.

The identities, with every set of details each has shown, are the records of the people engine
(dedupe/people.py, explained in PEOPLE.md): normalized, linked by deterministic keys (an Amazon
relay address only among Amazon identities) and by splink, and clustered under must-links (a
mirror and its original are one purchase; a plugged-in :data:`Linker`'s pairs; a person's merges)
and cannot-links (a person's unmerges). A customer's id is ``"cus_" + sha256(smallest identity key
of its cluster)[:16]``: it stays the same on every run while the cluster does not change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from dedupe.people import ResolveSettings
from orderhub import clock
from warehouse.db import sync_table, transaction, update_in_storage_order
from warehouse.frames import query_frame, registered

RELAY_EMAIL = r"@marketplace\.amazon\.[a-z.]+$"  # Amazon buyer-seller messaging relay addresses
E164 = r"\+[1-9][0-9]{6,14}"  # ITU-T E.164: at most 15 digits after '+' (matched in full)
GUEST_KEYS = ("", "0")  # WooCommerce customer_id 0 = guest checkout; no channel uses 0 for a person

# A key shared by more identities than this is a placeholder ("noemail@shop.com", a marketplace's
# dummy phone, the one account an importing app books every marketplace order on), not a
# person: one person has at most a few identities per store.
MAX_KEY_IDENTITIES = 100

EDGE_SCHEMA: dict[str, pl.DataType] = {
    "left_key": pl.String(),
    "right_key": pl.String(),
    "rule": pl.String(),
    "score": pl.Float64(),
}

Linker = Callable[[pl.DataFrame], pl.DataFrame]
"""Extra evidence between identities, e.g. a splink model.

Called with the identities frame (``identity_key, channel, store, channel_customer_key, email,
phone, name, line1, city, postal_code, country``); returns :data:`EDGE_SCHEMA` rows: pairs of
identity keys to link, the rule name to record (e.g. ``"splink"``) and its match score.
"""

# "Most recent" as one number, so that arg_max stays cheap and still breaks ties the same way on
# every run: the time in the high 64 bits, a hash of the order id below it.
_RECENCY = "((coalesce(epoch_us({ts}), 0)::HUGEINT << 64) + hash(order_id))"

# One row per order: its normalized link values and the identity it belongs to.
_KEYED = f"""
CREATE OR REPLACE TEMP TABLE _oh_keyed AS
WITH base AS (
    SELECT order_id, channel, store, external_id, updated_at, created_at, duplicate_of,
           CASE WHEN trim(channel_customer_key) IN {GUEST_KEYS!r} THEN NULL
                ELSE trim(channel_customer_key) END AS ck,
           CASE WHEN contains(lower(trim(email)), '@') THEN lower(trim(email)) END AS em,
           CASE WHEN regexp_full_match(trim(phone), '{E164}') THEN trim(phone) END AS ph,
           coalesce(buyer_name, ship_name) AS name, buyer_name AS buyer, ship_name, nullif(trim(phone), '') AS raw_phone,
           ship_line1 AS line1, ship_line2 AS line2, ship_city AS city, ship_region AS region,
           ship_postal_code AS postal_code, ship_country AS country
    FROM orders
), kinds AS (
    SELECT *, coalesce(regexp_matches(em, '{RELAY_EMAIL}'), false) AS relay,
           {_RECENCY.format(ts="updated_at")} AS recency,
           CASE WHEN ck IS NOT NULL THEN 'ck' WHEN em IS NOT NULL THEN 'email'
                WHEN ph IS NOT NULL THEN 'phone' ELSE 'order' END AS kind
    FROM base
)
SELECT *, channel || ':' || store || ':' || kind || ':' || coalesce(ck, em, ph, external_id, order_id)
          AS identity_key
FROM kinds
"""

# One row per identity, with its attributes
# from its most recent order that has a value, column by column.
_IDENTITIES = """
CREATE OR REPLACE TEMP TABLE _oh_ident AS
SELECT identity_key,
       any_value(channel) AS channel, any_value(store) AS store, any_value(kind) AS kind,
       {latest}
FROM _oh_keyed GROUP BY identity_key
"""
_ATTRIBUTES = {
    "channel_customer_key": "ck",
    "email": "em",
    "phone": "ph",
    "raw_phone": "raw_phone",
    "name": "name",
    "buyer": "buyer",
    "ship_name": "ship_name",
    "line1": "line1",
    "line2": "line2",
    "city": "city",
    "region": "region",
    "postal_code": "postal_code",
    "country": "country",
}

# Identities with their customer, rule and score from the resolution (_oh_res), ready for customer_identities.
_CLUSTERS = """
CREATE OR REPLACE TEMP TABLE _oh_identities AS
WITH ruled AS (
    SELECT n.*, r.customer_id, r.cluster_size,
           CASE WHEN r.cluster_size > 1 AND r.rule IS NOT NULL THEN r.rule
                WHEN n.kind = 'ck' THEN 'channel_customer'
                WHEN n.kind = 'email' THEN 'email'
                WHEN n.kind = 'phone' THEN 'phone'
                ELSE 'self' END AS rule,
           CASE WHEN r.cluster_size > 1 AND r.rule NOT IN ('email', 'phone', 'channel_customer', 'mirror',
                                                           'identical', 'must_link') THEN r.score END AS score
    FROM _oh_ident n JOIN _oh_res r USING (identity_key)
)
SELECT n.identity_key, n.channel, n.store, n.channel_customer_key, n.email, n.phone, n.name, n.line1,
       n.city, n.postal_code, n.country, n.customer_id, n.rule, n.score,
       CASE WHEN old.customer_id = n.customer_id AND old.rule = n.rule THEN old.linked_at
            ELSE ?::TIMESTAMPTZ END AS linked_at,
       n.cluster_size
FROM ruled n LEFT JOIN customer_identities old USING (identity_key)
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
        by_rule: identities per rule that linked them.
        review_pairs: pairs waiting for a person (``customer_review``).
        flagged: clusters to look at (``customer_flags``).
        model: whether the probabilistic model was trained, or why not.
        mode: ``full`` (everything resolved), ``add`` (new identities added to the stored index) or
            ``unchanged`` (nothing new since the last run).
    """

    orders: int = 0
    identities: int = 0
    customers: int = 0
    linked_identities: int = 0
    orders_relinked: int = 0
    ignored_keys: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    review_pairs: int = 0
    flagged: int = 0
    model: str = ""
    mode: str = "full"


def customer_id_for(root_key: str) -> str:
    """The customer id of a cluster whose smallest identity key is ``root_key``."""
    return "cus_" + hashlib.sha256(root_key.encode("utf-8")).hexdigest()[:16]


def resolve_customers(
    con: duckdb.DuckDBPyConnection,
    *,
    linkers: Sequence[Linker] = (),
    max_key_identities: int = MAX_KEY_IDENTITIES,
    must_link: Sequence[tuple[str, str]] = (),
    cannot_link: Sequence[tuple[str, str]] = (),
    settings: ResolveSettings | None = None,
    index_path: Path | None = None,
) -> IdentityStats:
    """Resolve identities into customers (dedupe/PEOPLE.md), set ``orders.customer_id``, rebuild ``customers``.

    Identities are the people records: each with its latest name, e-mail, phone and address. A mirror
    and its original are one purchase, so their identities must link (rule ``mirror``); a linker's
    pairs link with the linker's rule and score; ``must_link`` / ``cannot_link`` are a person's
    corrections (identity key pairs, kept in the CRM store) and win over every rule. Every link is
    written to ``customer_links`` with its rule, probability and per-field weights; pairs for a person
    to decide to ``customer_review``; clusters to look at to ``customer_flags``.

    ``customers`` takes name, e-mail (a real address before an Amazon relay), phone and country
    from the most recent order with a value; first/last order, ``orders_count`` and
    ``total_spent_base`` count only originals (``duplicate_of IS NULL``) that are not cancelled.
    ``tags``, ``vip`` and ``at_risk`` are the CRM tagging step's: they are kept for every
    customer_id that survives. Only rows that change are rewritten: ``linked_at`` of an identity
    changes only when its customer or rule does, and a customer's ``updated_at`` only when its
    row does. A customer's id is ``"cus_" + sha256(smallest identity key of its cluster)[:16]``.

    Args:
        con: the warehouse writer's connection.
        linkers: extra evidence between identities (see :data:`Linker`).
        max_key_identities: a key shared by more identities is a placeholder: it links nobody.
        must_link, cannot_link: identity key pairs a person decided (pairs naming an identity that no
            longer exists are skipped).
        settings: resolution thresholds (dedupe/people.py ``ResolveSettings``).
        index_path: a DuckDB file keeping the people index between runs. With it, a run whose
            identities are the last run's plus new ones only adds the new ones (cost grows with
            them); a changed or vanished identity, or changed decisions, resolve everything again.
            Without it every run resolves everything.

    Returns:
        Counts of identities, customers and what changed.
    """

    now = clock.now()
    latest = ",\n       ".join(
        f"arg_max({src}, recency) FILTER (WHERE {src} IS NOT NULL) AS {out}"
        for out, src in _ATTRIBUTES.items()
    )
    con.execute(_KEYED)
    con.execute(_IDENTITIES.format(latest=latest))
    # One record per distinct set of details an identity has shown: a customer who moved keeps both
    # addresses as evidence, and a new order with new details is a new record, not a changed one (so a
    # stored index only grows). An identity's records are one person by construction.
    records = query_frame(con, f"""
        SELECT identity_key || chr(31) || left(md5(concat_ws(chr(31), {_DETAILS})), 16) AS record_id, identity_key,
               channel, store, ck AS channel_customer_id, coalesce(buyer, name) AS name, em AS email,
               coalesce(raw_phone, ph) AS phone, ship_name, line1, line2, city, region, postal_code, country
        FROM (SELECT DISTINCT identity_key, channel, store, ck, buyer, name, em, raw_phone, ph, ship_name, line1,
                              line2, city, region, postal_code, country FROM _oh_keyed)
        ORDER BY record_id""")
    identity_of = dict(zip(records["record_id"].to_list(), records["identity_key"].to_list(), strict=True))
    first: dict[str, str] = {}
    for record_id, identity_key in identity_of.items():
        first.setdefault(identity_key, record_id)
    # Internal links of an identity carry score 0, so that any real link names the rule instead.
    musts: list[tuple[object, ...]] = [(first[i], r, SAME_IDENTITY, 0.0) for r, i in identity_of.items()
                                       if first[i] != r]
    mirrors = query_frame(con, """
        SELECT DISTINCT m.identity_key AS a, o.identity_key AS b
        FROM _oh_keyed m JOIN _oh_keyed o ON o.order_id = m.duplicate_of WHERE m.identity_key <> o.identity_key""")
    extra = _linker_edges(con, linkers)
    musts += [(first[a], first[b], "mirror", 1.0) for a, b in mirrors.iter_rows()]
    musts += [(first[a], first[b], rule, score if score is not None else 1.0)
              for a, b, rule, score in extra.select("left_key", "right_key", "rule", "score").iter_rows()]
    musts += [(first[a], first[b], "must_link", 1.0) for a, b in must_link if a in first and b in first]
    cannots = [(first[a], first[b]) for a, b in cannot_link if a in first and b in first and a != b]
    cfg = settings or ResolveSettings(max_key_profiles=max_key_identities)
    result, every, mode = _resolve(records.drop("identity_key"), musts, cannots, cfg, index_path)
    # Per identity: its cluster, and the strongest rule any of its records was linked by.
    per_record = every.with_columns(
        pl.col("record_id").replace_strict(identity_of, default=None, return_dtype=pl.String).alias("identity_key"),
        pl.when(pl.col("rule") == SAME_IDENTITY).then(None).otherwise(pl.col("rule")).alias("rule"),
    ).filter(pl.col("identity_key").is_not_null())
    res = (
        per_record.sort(["identity_key", "match_probability", "rule"], descending=[False, True, False], nulls_last=True)
        .group_by("identity_key", maintain_order=True)
        .agg(pl.col("cluster_id").first(), pl.col("rule").drop_nulls().first(),
             pl.col("match_probability").filter(pl.col("rule").is_not_null()).first().alias("score"))
        .with_columns(pl.len().over("cluster_id").alias("cluster_size"))
    )
    # A customer is named by the smallest identity key of its cluster (stable while the cluster is).
    root = res.group_by("cluster_id").agg(pl.col("identity_key").min().alias("root"))
    customer_of = {c: customer_id_for(r) for c, r in root.iter_rows()}
    res = res.with_columns(pl.col("cluster_id").replace_strict(customer_of, return_dtype=pl.String).alias("customer_id"))
    customer_by_key = dict(zip(res["identity_key"].to_list(), res["customer_id"].to_list(), strict=True))

    def _keys(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(
            pl.col("left_id").replace_strict(identity_of, default=None, return_dtype=pl.String).alias("left_key"),
            pl.col("right_id").replace_strict(identity_of, default=None, return_dtype=pl.String).alias("right_key"),
        ).filter(pl.col("left_key").is_not_null() & pl.col("right_key").is_not_null()
                 & (pl.col("left_key") != pl.col("right_key")))

    links = _keys(result.links).filter(pl.col("rule") != SAME_IDENTITY).select(
        "left_key", "right_key", "rule", "probability", "weights",
        pl.col("left_key").replace_strict(customer_by_key, return_dtype=pl.String).alias("customer_id"))
    review = _keys(result.review).select(
        "left_key", "right_key", "probability", "weights",
        pl.col("left_key").replace_strict(customer_by_key, return_dtype=pl.String).alias("left_customer"),
        pl.col("right_key").replace_strict(customer_by_key, return_dtype=pl.String).alias("right_customer"))
    flags = result.flags.with_columns(
        pl.col("cluster_id").replace_strict(customer_of, default=None, return_dtype=pl.String).alias("customer_id")
    ).filter(pl.col("customer_id").is_not_null()).select("customer_id", "reason").unique()
    with transaction(con):
        with registered(con, "_oh_res", res.select("identity_key", "customer_id", "rule", "score", "cluster_size")):
            con.execute(_CLUSTERS, [now])
        sync_table(con, "customer_identities", "(SELECT * EXCLUDE (cluster_size) FROM _oh_identities)",
                   key="identity_key")  # fmt: skip
        relinked = update_in_storage_order(
            con,
            "orders",
            """
            SELECT k.order_id, i.customer_id
            FROM _oh_keyed k JOIN _oh_identities i USING (identity_key) JOIN orders o USING (order_id)
            WHERE o.customer_id IS DISTINCT FROM i.customer_id
            """,
            key="order_id",
            columns=["customer_id"],
        )
        customers = _rebuild_customers(con, now)
        for table, frame in (("customer_links", links), ("customer_review", review), ("customer_flags", flags)):
            if mode == "full":
                con.execute(f"DELETE FROM {table}")
            elif table == "customer_flags" and frame.height:
                with registered(con, "_oh_frame", frame):
                    con.execute("DELETE FROM customer_flags WHERE customer_id IN (SELECT customer_id FROM _oh_frame)")
            if frame.height:
                with registered(con, "_oh_frame", frame):
                    con.execute(f"INSERT INTO {table} SELECT * FROM _oh_frame")
        if mode == "add":  # clusters that merged renamed their customer: links and review pairs follow
            con.execute("""UPDATE customer_links l SET customer_id = i.customer_id FROM _oh_identities i
                           WHERE i.identity_key = l.left_key AND l.customer_id IS DISTINCT FROM i.customer_id""")
            con.execute("""UPDATE customer_review r SET left_customer = i.customer_id FROM _oh_identities i
                           WHERE i.identity_key = r.left_key AND r.left_customer IS DISTINCT FROM i.customer_id""")
            con.execute("""UPDATE customer_review r SET right_customer = i.customer_id FROM _oh_identities i
                           WHERE i.identity_key = r.right_key AND r.right_customer IS DISTINCT FROM i.customer_id""")
            con.execute("DELETE FROM customer_review WHERE left_customer = right_customer")
        counts = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE cluster_size > 1) FROM _oh_identities"
        ).fetchall()[0]
        by_rule = dict(con.execute("SELECT rule, count(*) FROM _oh_identities GROUP BY rule").fetchall())
        orders = con.execute("SELECT count(*) FROM _oh_keyed").fetchall()[0][0]
        con.execute("DROP TABLE _oh_keyed; DROP TABLE _oh_ident; DROP TABLE _oh_identities")
    return IdentityStats(
        orders=int(orders),
        identities=int(counts[0]),
        customers=customers,
        linked_identities=int(counts[1]),
        orders_relinked=relinked,
        ignored_keys=int(sum(result.stats.get("hubs", {}).values())),
        by_rule={rule: int(count) for rule, count in sorted(by_rule.items())},
        review_pairs=review.height,
        flagged=flags.height,
        model=str(result.stats.get("model", "")),
        mode=mode,
    )


SAME_IDENTITY = "same_identity"  # the internal link between the records of one identity
_DETAILS = ", ".join(f"coalesce({c}, '')" for c in ("ck", "buyer", "name", "em", "raw_phone", "ph", "ship_name", "line1",
                                                    "line2", "city", "region", "postal_code", "country"))
_INPUT_COLUMNS = ("channel", "store", "channel_customer_id", "name", "email", "phone", "ship_name", "line1", "line2",
                  "city", "region", "postal_code", "country")


def _resolve(records: pl.DataFrame, musts: list[tuple[object, ...]], cannots: list[tuple[str, str]],
             cfg: ResolveSettings, index_path: Path | None) -> tuple[Any, pl.DataFrame, str]:
    """Resolve in full, or add the new identities to the stored index; the run and every identity's cluster."""
    from dedupe.people import PeopleIndex

    if index_path is None:
        index = PeopleIndex(settings=cfg)
        try:
            result = index.resolve(records, must_link=musts, cannot_link=cannots)
        finally:
            index.con.close()
        return result, result.clusters, "full"
    index_path.parent.mkdir(parents=True, exist_ok=True)
    inputs = records.select("record_id", pl.concat_str([pl.col(c).fill_null("\x00") for c in _INPUT_COLUMNS],
                                                       separator="\x1f").alias("raw"))
    # Person decisions and linker pairs must be the same as when the index was built; mirror and
    # same-identity links only grow with new records (checked below).
    decided = sorted([list(map(str, m)) for m in musts if m[2] not in (SAME_IDENTITY, "mirror")])
    decisions = hashlib.sha256(json.dumps([decided, sorted(map(list, cannots))]).encode()).hexdigest()
    structural = pl.DataFrame([(str(m[0]), str(m[1])) for m in musts if m[2] in (SAME_IDENTITY, "mirror")],
                              schema={"a": pl.String, "b": pl.String}, orient="row")
    con = duckdb.connect(str(index_path))
    try:
        index = PeopleIndex(con, cfg)
        stored = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name IN "
                             "('people_inputs', 'people_rules', 'people_decisions', 'people_musts')").fetchall()[0][0] == 4
        mode, new = "full", pl.DataFrame()
        if stored and con.execute("SELECT decisions FROM people_decisions").fetchall() == [(decisions,)]:
            with registered(con, "_oh_inputs", inputs):
                diff = con.execute("""
                    SELECT count(*) FILTER (WHERE o.record_id IS NULL) AS new,
                           count(*) FILTER (WHERE i.record_id IS NULL
                                            OR (o.record_id IS NOT NULL AND i.raw IS DISTINCT FROM o.raw)) AS other
                    FROM _oh_inputs i FULL JOIN people_inputs o USING (record_id)""").fetchall()[0]
                new = query_frame(con, "SELECT record_id FROM _oh_inputs WHERE record_id NOT IN "
                                       "(SELECT record_id FROM people_inputs)")
            with registered(con, "_oh_structural", structural):
                # A mirror found between two known records since: the index cannot just grow.
                late = con.execute("""
                    SELECT count(*) FROM _oh_structural s
                    WHERE s.a IN (SELECT record_id FROM people_inputs) AND s.b IN (SELECT record_id FROM people_inputs)
                      AND (s.a, s.b) NOT IN (SELECT (a, b) FROM people_musts)""").fetchall()[0][0]
                # Too few records to train on last time (no model): everything again, it is small.
                trained = con.execute("SELECT count(*) FROM people_model").fetchall()[0][0] > 0
                if diff[1] == 0 and late == 0:
                    mode = "unchanged" if not diff[0] else "add" if trained else "full"
        if mode == "full":
            result = index.resolve(records, must_link=musts, cannot_link=cannots)
            con.execute("CREATE OR REPLACE TABLE people_rules "
                        "(record_id VARCHAR PRIMARY KEY, rule VARCHAR, match_probability DOUBLE)")
            con.execute("CREATE OR REPLACE TABLE people_inputs (record_id VARCHAR PRIMARY KEY, raw VARCHAR)")
            con.execute("CREATE OR REPLACE TABLE people_decisions (decisions VARCHAR)")
            con.execute("CREATE OR REPLACE TABLE people_musts (a VARCHAR, b VARCHAR)")
            con.execute("INSERT INTO people_decisions VALUES (?)", [decisions])
            changed = inputs
        elif mode == "add":
            fresh = set(new["record_id"].to_list())
            result = index.add(records.filter(pl.col("record_id").is_in(list(fresh))),
                               must_link=[m for m in musts if m[0] in fresh or m[1] in fresh],
                               cannot_link=[c for c in cannots if c[0] in fresh or c[1] in fresh])
            changed = inputs.filter(pl.col("record_id").is_in(list(fresh)))
        else:
            from dedupe.people import Resolution

            empty = pl.DataFrame(schema={"left_id": pl.String, "right_id": pl.String})
            result = Resolution(clusters=pl.DataFrame(), links=empty.with_columns(
                pl.lit(None, dtype=pl.String).alias("rule"), pl.lit(None, dtype=pl.Float64).alias("probability"),
                pl.lit(None, dtype=pl.String).alias("weights")), review=empty.with_columns(
                pl.lit(None, dtype=pl.Float64).alias("probability"), pl.lit(None, dtype=pl.String).alias("weights")),
                flags=pl.DataFrame(schema={"cluster_id": pl.String, "reason": pl.String}), stats={"model": "stored"})
            changed = inputs.clear()
        if mode != "unchanged":
            with registered(con, "_oh_structural", structural):
                con.execute("INSERT INTO people_musts SELECT a, b FROM _oh_structural EXCEPT SELECT a, b FROM people_musts")
            with registered(con, "_oh_changed", changed), registered(con, "_oh_rules", result.clusters.select(
                    "record_id", "rule", "match_probability")):
                con.execute("INSERT OR REPLACE INTO people_inputs SELECT record_id, raw FROM _oh_changed")
                # A record the add did not touch keeps its rule (the add reports it without one).
                con.execute("""INSERT OR REPLACE INTO people_rules
                               SELECT n.record_id, coalesce(n.rule, o.rule), coalesce(n.match_probability,
                                                                                    o.match_probability)
                               FROM _oh_rules n LEFT JOIN people_rules o USING (record_id)""")
        every = query_frame(con, """
            SELECT r.record_id, p.cluster_id, x.match_probability, x.rule
            FROM people_records r JOIN people_profiles p ON p.unique_id = r.profile
            LEFT JOIN people_rules x USING (record_id)""")
    finally:
        con.close()
    return result, every, mode


def _linker_edges(con: duckdb.DuckDBPyConnection, linkers: Sequence[Linker]) -> pl.DataFrame:
    """The pairs every plugged-in linker finds between the identities (:data:`EDGE_SCHEMA`)."""
    if not linkers:
        return pl.DataFrame(schema=EDGE_SCHEMA)
    view = query_frame(con, "SELECT identity_key, channel, store, channel_customer_key, email, phone, name, line1, "
                            "city, postal_code, country FROM _oh_ident")
    return pl.concat([linker(view).select(list(EDGE_SCHEMA)).cast(EDGE_SCHEMA) for linker in linkers])  # type: ignore[arg-type]


_CONTACT_COLUMNS = ("name", "email", "phone", "country", "first_order_at", "last_order_at", "orders_count",
                    "total_spent_base")  # fmt: skip


def _rebuild_customers(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    unchanged = " AND ".join(f"c.{c} IS NOT DISTINCT FROM old.{c}" for c in _CONTACT_COLUMNS)
    by = _RECENCY.format(ts="created_at")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _oh_customers AS
        WITH o AS (
            SELECT order_id, customer_id, created_at, total_base, nullif(lower(trim(email)), '') AS email, phone,
                   coalesce(buyer_name, ship_name) AS name,
                   ship_country AS country,
                   coalesce(regexp_matches(lower(email), '{RELAY_EMAIL}'), false) AS relay,
                   duplicate_of IS NULL AND status IS DISTINCT FROM 'cancelled' AS counts
            FROM orders WHERE customer_id IS NOT NULL
        ), agg AS (
            SELECT customer_id,
                   arg_max(name, {by}) FILTER (WHERE name IS NOT NULL) AS name,
                   coalesce(arg_max(email, {by}) FILTER (WHERE email IS NOT NULL AND NOT relay),
                            arg_max(email, {by}) FILTER (WHERE email IS NOT NULL)) AS email,
                   arg_max(phone, {by}) FILTER (WHERE phone IS NOT NULL) AS phone,
                   arg_max(country, {by}) FILTER (WHERE country IS NOT NULL) AS country,
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
