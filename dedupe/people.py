"""Resolve people: one cluster per real person over customer records from any source.

The pipeline (dedupe/PEOPLE.md explains each choice):

1. **Normalize** every record (:func:`dedupe.normalize.normalize_people`). A gift record (the ship-to
   name is not compatible with the buyer's) keeps its buyer but not the address: that belongs to the
   recipient, so buyer and recipient never link through it.
2. **Profiles**: records with the same normalized name, e-mail, phone, address and platform id are
   one *profile* (rule ``identical``); everything after works on profiles, so a person's hundred
   identical orders cost one row. A record with too little to go by stays its own profile.
3. **Hub guard**: an e-mail, phone, platform id or address held by profiles with more than
   ``hub_names`` distinct surnames (a warehouse, a company inbox, a placeholder phone) is evidence, not
   a link: it makes no deterministic link and is left out of the probabilistic model.
4. **Deterministic links**: the same normalized e-mail (an Amazon relay address only between Amazon
   records) or the same platform customer id, unless the names say otherwise; the same phone with a
   compatible name (a household's shared landline does not link two people).
5. **Probabilistic links** with splink (Fellegi–Sunter, u by random sampling, m by EM, term-frequency
   adjusted, DuckDB backend). One comparison per kind of evidence, so correlated fields are not
   counted twice: the whole name (swapped order, nicknames, initials and typos as levels; "same
   surname, other first name" is a level of its own), e-mail, phone, and the whole address
   (street line, number, postcode and city in one comparison).
6. **Decisions**: a pair at or above ``auto_merge`` links, unless its names are not compatible (a
   household at one address is not a person) or nothing but the name and a similar e-mail agree
   (an exact e-mail, phone or street address must back the name); pairs between ``review`` and ``auto_merge`` go to the
   review queue, with their per-field match weights.
7. **Clusters**: must-links first, then deterministic links, then probabilistic links strongest first,
   each merge refused if it would put a cannot-link pair into one cluster. Clusters with more profiles than
   ``max_cluster_size``, or two groups held together by one probabilistic link (a bridge), are flagged.

Every link carries its rule, its probability and the per-field match weights, so a cluster can be
explained (``orderhub customers why``) and undone (cannot-link).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl

from dedupe.normalize import name_keys, normalize_people
from warehouse.frames import query_frame, registered

log = logging.getLogger(__name__)

# The input columns a record may have (record_id is required; the rest may be missing or null).
INPUT_COLUMNS = ("record_id", "first_name", "last_name", "name", "email", "phone", "line1", "line2", "city",
                 "region", "postal_code", "country")
# Optional context columns orderhub passes (a stand-alone list has none).
CONTEXT_COLUMNS = ("channel", "store", "store_country", "channel_customer_id", "ship_name")

# Pairs two names must satisfy to be the same person: the same surname (exact, a typo, or one part
# of a double name) and a compatible first name (equal, the same canonical name, an initial, a typo),
# or the same set of name tokens in another order. {l}/{r} are the two sides' column prefixes.
_NAMES_COMPATIBLE = """(
    ({l}n_name_tokens = {r}n_name_tokens AND {l}n_name_tokens <> '')
    OR ({same_last} AND ({same_first} OR {typo_first}))
    OR ({typo_last} AND {same_first})
)"""
# The pieces, over {a} and {b} name columns (so that a swapped order can be tried with the same rules).
_SAME_LAST = """({a}last = {b}last OR list_contains(string_split({a}last, '-'), {b}last)
     OR list_contains(string_split({b}last, '-'), {a}last))"""
_TYPO_LAST = """(least(length({a}last), length({b}last)) >= 3 AND damerau_levenshtein({a}last, {b}last) <= 1
     OR (least(length({a}last), length({b}last)) >= 5 AND jaro_winkler_similarity({a}last, {b}last) >= 0.92))"""
_SAME_FIRST = """({a}first = {b}first OR {a}canon = {b}canon
     OR (length({a}first) = 1 AND {a}first = {b}initial) OR (length({b}first) = 1 AND {b}first = {a}initial))"""
# A one-letter slip in a first name counts only for longer names: Mark and Mary are two people.
_TYPO_FIRST = """(greatest(length({a}first), length({b}first)) >= 5 AND damerau_levenshtein({a}first, {b}first) <= 1)"""


def names_compatible_sql(left: str = "a.", right: str = "b.") -> str:
    """The SQL condition "these two normalized names can be one person" over two row prefixes.

    The same surname (exact, one part of a double name) with a compatible first name (equal, the same
    nickname canonical, an initial, or a one-letter slip in a name of five letters or more); or a
    surname slip (one edit, or Jaro-Winkler >= 0.92 for long names) with the same first name; or the
    same name tokens in any order; each also tried with one side's first and last name swapped.
    """
    def cols(prefix: str, swapped: bool) -> dict[str, str]:
        first, last = ("n_last", "n_first") if swapped else ("n_first", "n_last")
        return {"first": f"{prefix}{first}", "last": f"{prefix}{last}", "canon": f"{prefix}n_first_canon"
                if not swapped else f"{prefix}n_last", "initial": f"{prefix}n_initial" if not swapped
                else f"left({prefix}n_last, 1)"}

    def rules(a: dict[str, str], b: dict[str, str]) -> str:
        def fill(template: str) -> str:
            out = template
            for key in ("first", "last", "canon", "initial"):
                out = out.replace("{a}" + key, a[key]).replace("{b}" + key, b[key])
            return out
        return _NAMES_COMPATIBLE.format(
            l=left, r=right, same_last=fill(_SAME_LAST), same_first=fill(_SAME_FIRST),
            typo_first=fill(_TYPO_FIRST), typo_last=fill(_TYPO_LAST))

    straight = rules(cols(left, False), cols(right, False))
    swapped = rules(cols(left, False), cols(right, True))
    # Most pairs have the same tokens, or the same surname and first name: CASE decides those without
    # evaluating the string distances (an OR would compute every branch for every pair).
    quick = (f"({left}n_name_tokens = {right}n_name_tokens AND {left}n_name_tokens <> '') OR "
             f"({left}n_last = {right}n_last AND ({left}n_first = {right}n_first "
             f"OR {left}n_first_canon = {right}n_first_canon))")
    return f"(CASE WHEN {quick} THEN true ELSE ({straight} OR {swapped}) END)"


@dataclass(frozen=True)
class ResolveSettings:
    """Thresholds and limits of one resolution run.

    Attributes:
        auto_merge: match probability at or above which a probabilistic pair links by itself.
        review: match probability from which a pair that does not link goes to the review queue.
        hub_names: a value shared by profiles with more distinct surnames than this is a hub.
        max_key_profiles: a deterministic key shared by more profiles than this is a placeholder.
        max_cluster_size: clusters with more distinct profiles than this are flagged.
        u_max_pairs: random pairs sampled to estimate the u probabilities.
        em_sample: share of records EM trains on (splink's record_sample_proportion).
        threads: DuckDB threads (None = DuckDB's default, all cores).
        min_profiles: fewer profiles than this train no model (too little to learn from): exact keys only.
        max_block_pairs: a blocking rule that would pair more profiles than this is left out of scoring
            (a placeholder value in a blocking column would otherwise make it quadratic), with a warning.
    """

    auto_merge: float = 0.995
    review: float = 0.80
    hub_names: int = 3
    max_key_profiles: int = 100
    max_cluster_size: int = 12
    u_max_pairs: float = 1e6
    em_sample: float = 1.0
    threads: int | None = None
    min_profiles: int = 200
    max_block_pairs: int = 20_000_000


@dataclass
class Resolution:
    """What a resolution found.

    Attributes:
        clusters: ``record_id, cluster_id, match_probability, rule`` for every input record; the
            probability is that of the strongest link holding the record in its cluster (1.0 for a
            deterministic link, null alone).
        links: ``left_id, right_id, rule, probability, weights`` of every link used or found
            (record ids of each profile's first record; ``weights`` is JSON of per-field match weights).
        review: ``left_id, right_id, probability, weights`` of pairs for a person to decide.
        flags: ``cluster_id, reason`` of clusters to look at.
        stats: counts and timings.
        model: the trained splink model (settings JSON), for incremental runs.
    """

    clusters: pl.DataFrame
    links: pl.DataFrame
    review: pl.DataFrame
    flags: pl.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] | None = None


LINK_SCHEMA = {"left_id": pl.String, "right_id": pl.String, "rule": pl.String, "probability": pl.Float64,
               "weights": pl.String}


def read_people_csv(path: Any) -> pl.DataFrame:
    """A stand-alone people list (``orderhub customers dedupe --input``): every column read as text.

    Raises:
        ValueError: the file has no ``record_id`` column, or a record id is empty or repeated.
    """
    frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    if "record_id" not in frame.columns:
        raise ValueError(f"{path}: the first line must name the columns and one of them must be record_id "
                         f"(found: {', '.join(frame.columns[:12])})")
    empty = frame.filter(pl.col("record_id").is_null() | (pl.col("record_id").str.strip_chars() == ""))
    if empty.height:
        raise ValueError(f"{path}: {empty.height} rows have no record_id; every row needs one")
    repeated = frame.filter(pl.col("record_id").is_duplicated())["record_id"].unique().head(5).to_list()
    if repeated:
        raise ValueError(f"{path}: record_id must be unique; repeated: {repeated}")
    return frame.select([c for c in frame.columns if c in INPUT_COLUMNS])


def _with_columns(records: pl.DataFrame) -> pl.DataFrame:
    if "record_id" not in records.columns:
        raise ValueError("records need a record_id column")
    missing = [c for c in (*INPUT_COLUMNS, *CONTEXT_COLUMNS) if c not in records.columns]
    out = records.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in missing)
    return out.with_columns(pl.col("record_id").cast(pl.String))


def prepare(records: pl.DataFrame) -> pl.DataFrame:
    """Normalized records: input plus the ``n_*`` columns, gift addresses left out of linking."""
    base = _with_columns(records)
    if base["record_id"].n_unique() != base.height:
        dupes = base.filter(pl.col("record_id").is_duplicated())["record_id"].unique().head(5).to_list()
        raise ValueError(f"record_id must be unique; repeated: {dupes}")
    n = normalize_people(base)
    if "ship_name" in base.columns and base["ship_name"].null_count() < base.height:
        n = _drop_gift_addresses(n)
    return n


_ADDRESS_COLUMNS = ("n_line", "n_number", "n_street", "n_unit", "n_postcode", "n_city")


def _drop_gift_addresses(n: pl.DataFrame) -> pl.DataFrame:
    """A ship-to name incompatible with the buyer's marks a gift: its address is not the buyer's."""
    # Most orders ship to the buyer under the same spelling: only the others need a second look.
    differs = pl.col("ship_name").is_not_null() & (
        pl.col("ship_name").str.strip_chars().str.to_lowercase()
        != pl.col("name").str.strip_chars().str.to_lowercase()).fill_null(True)
    pending = n.filter(differs)
    ships = name_keys(pending.select("record_id", pl.col("ship_name").alias("name"))).select(
        "record_id", *(pl.col(c).alias(f"s_{c}") for c in ("n_first", "n_last", "n_first_canon", "n_initial",
                                                             "n_name_tokens")))
    con = duckdb.connect()
    try:
        con.register("a", pending.select("record_id", "n_first", "n_last", "n_first_canon", "n_initial", "n_name_tokens"))
        con.register("b", ships.rename({f"s_{c}": c for c in ("n_first", "n_last", "n_first_canon", "n_initial",
                                                              "n_name_tokens")}))
        gifts = query_frame(
            con, f"SELECT a.record_id FROM a JOIN b USING (record_id) WHERE b.n_last IS NOT NULL "
                 f"AND a.n_last IS NOT NULL AND NOT coalesce({names_compatible_sql()}, false)")
    finally:
        con.close()
    gift = pl.col("record_id").is_in(gifts["record_id"].implode())
    return n.with_columns(
        gift.alias("n_gift"),
        *(pl.when(gift).then(None).otherwise(pl.col(c)).alias(c) for c in _ADDRESS_COLUMNS),
    )


# -- profiles and keys ------------------------------------------------------------------------------
_PROFILE_COLUMNS = ("n_first", "n_last", "n_first_canon", "n_initial", "n_name_tokens", "n_email", "n_email_relay",
                    "n_phone", "n_line", "n_number", "n_street", "n_unit", "n_postcode", "n_city", "n_country")
_COLS = ", ".join(_PROFILE_COLUMNS)
# A record is grouped with identical ones only when it has a contact (e-mail or phone) or a name with
# a street line; otherwise its record id is part of its signature and it stays alone.
_SIGNATURE = f"""CASE WHEN n_email IS NOT NULL OR n_phone IS NOT NULL OR (n_last IS NOT NULL AND n_line IS NOT NULL)
    THEN hash({_COLS}, channel, store, channel_customer_id) ELSE hash(record_id) END"""
# One key of each kind at most per profile (one e-mail, phone, customer id and address each): no DISTINCT.
_KEYS = """
SELECT profile, key, kind FROM (
    SELECT unique_id AS profile, CASE WHEN n_email_relay THEN 'relay:' ELSE 'email:' END || n_email AS key,
           'email' AS kind
    FROM {src} WHERE n_email IS NOT NULL AND (NOT n_email_relay OR channel = 'amazon')
    UNION ALL
    SELECT unique_id, 'phone:' || n_phone, 'phone' FROM {src} WHERE n_phone IS NOT NULL
    UNION ALL
    SELECT unique_id, 'ck:' || channel || ':' || store || ':' || channel_customer_id, 'channel_customer'
    FROM {src} WHERE channel_customer_id IS NOT NULL AND trim(channel_customer_id) NOT IN ('', '0')
    UNION ALL
    SELECT unique_id, 'address:' || n_country || ':' || n_postcode || ':' || n_line || ':' || coalesce(n_unit, ''),
           'address'
    FROM {src} WHERE n_line IS NOT NULL AND n_postcode IS NOT NULL
)"""
# Keys held by more distinct names than a person has, or by too many profiles: evidence, not links.
_SHARED = """
CREATE OR REPLACE TEMP TABLE _pp_shared AS
SELECT key FROM people_keys WHERE {where} GROUP BY key HAVING count(*) > 1"""
_HUBS = """
SELECT k.key, any_value(k.kind) AS kind, count(DISTINCT k.profile) AS profiles,
       count(DISTINCT p.n_last) AS names
FROM people_keys k SEMI JOIN _pp_shared USING (key) JOIN people_profiles p ON p.unique_id = k.profile
GROUP BY k.key
HAVING names > ? OR profiles > ?"""
# Deterministic pairs among the keys of {keys} (all keys, or the new profiles' keys against all).
_DETERMINISTIC = """
WITH k AS (SELECT * FROM people_keys SEMI JOIN _pp_shared USING (key)
           WHERE kind <> 'address' AND key NOT IN (SELECT key FROM people_hubs)),
pairs AS MATERIALIZED (
    SELECT DISTINCT ON (l, r) l, r, rule FROM (
        SELECT least(x.profile, y.profile) AS l, greatest(x.profile, y.profile) AS r, x.kind AS rule
        FROM {keys} x JOIN k y ON x.key = y.key AND x.profile <> y.profile)
    ORDER BY l, r, CASE rule WHEN 'email' THEN 0 WHEN 'channel_customer' THEN 1 ELSE 2 END
)
SELECT l AS "left", r AS "right", rule
FROM pairs JOIN people_profiles a ON a.unique_id = l JOIN people_profiles b ON b.unique_id = r
WHERE a.n_last IS NULL OR b.n_last IS NULL
   OR (coalesce({compatible}, false) AND (rule <> 'phone' OR (length(a.n_first) > 1 AND length(b.n_first) > 1)))
ORDER BY l, r"""
# The model's view of profiles: hub values and Amazon relay addresses left out.
_MODEL_ROWS = """
SELECT p.unique_id, p.n_first, p.n_last, p.n_first_canon, p.n_initial, nullif(p.n_name_tokens, '') AS n_name_tokens,
       p.n_country, p.n_city,
       p.n_postcode, p.n_unit,
       CASE WHEN he.key IS NULL AND NOT coalesce(p.n_email_relay, false) THEN p.n_email END AS n_email,
       CASE WHEN he.key IS NULL AND NOT coalesce(p.n_email_relay, false) THEN split_part(p.n_email, '@', 1)
            END AS n_email_local,
       CASE WHEN hp.key IS NULL THEN p.n_phone END AS n_phone,
       CASE WHEN ha.key IS NULL THEN p.n_line END AS n_line,
       CASE WHEN ha.key IS NULL THEN p.n_number END AS n_number,
       CASE WHEN ha.key IS NULL THEN p.n_street END AS n_street
FROM people_profiles p
LEFT JOIN people_hubs he ON he.key = CASE WHEN p.n_email_relay THEN 'relay:' ELSE 'email:' END || p.n_email
LEFT JOIN people_hubs hp ON hp.key = 'phone:' || p.n_phone
LEFT JOIN people_hubs ha ON ha.key = 'address:' || p.n_country || ':' || p.n_postcode || ':' || p.n_line || ':'
                                    || coalesce(p.n_unit, '')
WHERE {where}"""


# -- the probabilistic model --------------------------------------------------------------------------
def _splink_settings(settings: ResolveSettings, keys: Sequence[tuple[str, ...]] | None = None) -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    name = cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.Or(cll.NullLevel("n_last"), cll.NullLevel("n_first")),
            cll.And(cll.ExactMatchLevel("n_first"), cll.ExactMatchLevel("n_last")).configure(
                tf_adjustment_column="n_last", label_for_charts="same first and last name"),
            cll.CustomLevel("n_name_tokens_l = n_name_tokens_r", "same names, another order"),
            cll.And(cll.ExactMatchLevel("n_last"), cll.Or(
                cll.ExactMatchLevel("n_first_canon"), cll.JaroWinklerLevel("n_first", 0.9),
                cll.CustomLevel("greatest(length(n_first_l), length(n_first_r)) >= 5 "
                                "AND damerau_levenshtein(n_first_l, n_first_r) <= 1"))).configure(
                tf_adjustment_column="n_last", label_for_charts="same surname, nickname or first-name typo"),
            # The exact test first: AND evaluates its right side only where its left side holds.
            cll.And(cll.ExactMatchLevel("n_first_canon"),
                    cll.Or(cll.JaroWinklerLevel("n_last", 0.92), cll.DamerauLevenshteinLevel("n_last", 1))).configure(
                label_for_charts="surname typo, same first name"),
            cll.And(cll.ExactMatchLevel("n_last"), cll.CustomLevel(
                "(length(n_first_l) = 1 AND n_first_l = n_initial_r) OR (length(n_first_r) = 1 AND n_first_r = n_initial_l)"
            )).configure(label_for_charts="same surname, initial"),
            cll.ExactMatchLevel("n_last").configure(label_for_charts="same surname, another first name"),
            cll.ElseLevel(),
        ],
    )
    # The same name-like local part at another domain (megan.smart@yahoo / megan.smart@btinternet) repeats
    # the name comparison's evidence: it counts as no e-mail evidence at all, not as a second agreement.
    name_like = ("n_email_local_l = n_email_local_r AND split_part(n_email_l, '@', 2) <> split_part(n_email_r, '@', 2) "
                 "AND NOT regexp_matches(n_email_local_l, '[0-9]') "
                 "AND contains(n_email_local_l, coalesce(n_last_l, '\x01'))")
    email = cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.Or(cll.NullLevel("n_email"), cll.CustomLevel(name_like)).configure(
                is_null_level=True, label_for_charts="no e-mail, or the same name-like local part elsewhere"),
            cll.ExactMatchLevel("n_email", term_frequency_adjustments=True),
            # The same local part at another domain says more when it is not just the name (jsmith1987)
            # than when it is (megan.smart@yahoo and megan.smart@btinternet are often two people).
            cll.ExactMatchLevel("n_email_local").configure(label_for_charts="same distinctive local part, other domain"),
            cll.CustomLevel("split_part(n_email_l, '@', 2) = split_part(n_email_r, '@', 2) "
                            "AND jaro_winkler_similarity(n_email_local_l, n_email_local_r) >= 0.92",
                            "same domain, local part slip"),
            cll.ElseLevel(),
        ],
    )
    phone = cl.CustomComparison(
        output_column_name="phone",
        comparison_levels=[
            cll.NullLevel("n_phone"),
            cll.ExactMatchLevel("n_phone", term_frequency_adjustments=True),
            cll.CustomLevel("right(n_phone_l, 7) = right(n_phone_r, 7)", "same last 7 digits"),
            cll.ElseLevel(),
        ],
    )
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_levels=[
            cll.Or(cll.NullLevel("n_line"), cll.NullLevel("n_postcode")),
            cll.And(cll.ExactMatchLevel("n_line"), cll.ExactMatchLevel("n_postcode"),
                    cll.CustomLevel("n_unit_l IS NOT DISTINCT FROM n_unit_r")).configure(
                label_for_charts="same street line, unit and postcode"),
            cll.And(cll.ExactMatchLevel("n_number"), cll.ExactMatchLevel("n_postcode"),
                    cll.JaroWinklerLevel("n_street", 0.88)).configure(
                label_for_charts="same number and postcode, similar street"),
            cll.And(cll.ExactMatchLevel("n_line"), cll.ExactMatchLevel("n_city")).configure(
                label_for_charts="same street line and city"),
            cll.ExactMatchLevel("n_postcode").configure(label_for_charts="same postcode"),
            cll.ExactMatchLevel("n_city").configure(label_for_charts="same city"),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[name, email, phone, address],
        blocking_rules_to_generate_predictions=blocking_rules(block_on, BLOCKING_KEYS if keys is None else keys),
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=False,
        probability_two_random_records_match=1e-6,
        max_iterations=20,
    )


# The columns each blocking rule requires equal, in order: these choose which profile pairs the model
# scores. Each rule's comparison count is measured before predicting (``blocking_counts``).
BLOCKING_KEYS: tuple[tuple[str, ...], ...] = (
    ("n_email",),
    ("n_phone",),
    ("n_email_local", "n_last"),
    ("n_last", "n_postcode"),
    ("n_first_canon", "n_postcode"),
    ("n_line", "n_postcode"),
    ("n_first_canon", "n_last", "n_city"),
    ("n_name_tokens", "n_city"),
)


def blocking_rules(block_on: Any, keys: Sequence[tuple[str, ...]] = BLOCKING_KEYS) -> list[Any]:
    """splink blocking rules for ``keys`` (default: all of :data:`BLOCKING_KEYS`)."""
    return [block_on(*columns) for columns in keys]


def blocking_counts(con: duckdb.DuckDBPyConnection, table: str = "people_model_rows") -> dict[str, int]:
    """How many profile pairs each blocking rule makes on its own, in one scan (``"n_last+n_postcode": 107483``).

    A pair agrees on every column of the rule, none of them NULL; pairs a rule shares with an
    earlier one are counted for both (splink scores each pair once).
    """
    columns = sorted({c for rule in BLOCKING_KEYS for c in rule})
    sets = ", ".join(f"({', '.join(rule)})" for rule in BLOCKING_KEYS)
    which = ", ".join(f"grouping({c}) AS g_{c}" for c in columns)
    rows = con.execute(f"""
        SELECT {", ".join(f"g_{c}" for c in columns)}, sum(n * (n - 1) // 2)::BIGINT FROM (
            SELECT {which}, {", ".join(columns)}, count(*) AS n FROM {table} GROUP BY GROUPING SETS ({sets}))
        WHERE {" AND ".join(f"(g_{c} = 1 OR {c} IS NOT NULL)" for c in columns)}
        GROUP BY ALL""").fetchall()
    counts = dict.fromkeys(("+".join(rule) for rule in BLOCKING_KEYS), 0)
    for *grouped, pairs in rows:
        used = tuple(c for c, g in zip(columns, grouped, strict=True) if g == 0)
        rule = next(r for r in BLOCKING_KEYS if sorted(r) == list(used))
        counts["+".join(rule)] = int(pairs or 0)
    return counts


def _train(linker: Any, settings: ResolveSettings) -> list[str]:
    """Train the model; returns what could not be trained (a step with no pairs to learn from is skipped)."""
    from splink import block_on
    from splink.internals.exceptions import SplinkException

    skipped: list[str] = []
    steps = [
        ("prior", lambda: linker.training.estimate_probability_two_random_records_match(
            [block_on("n_email"), block_on("n_phone")], recall=0.6)),
        # One chunk: splink's default ten chunks cost more in round trips than they save on this data.
        ("u", lambda: linker.training.estimate_u_using_random_sampling(max_pairs=settings.u_max_pairs, seed=1,
                                                                       num_chunks=1)),
        # EM twice, each blocked on what it does not train: names + address, then e-mail + phone. The
        # iterations run on the comparison vectors alone (term frequencies still weigh the predictions):
        # the same links at 300,000 people, and a tenth of the training time less.
        ("em_by_email", lambda: linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("n_email"), record_sample_proportion=settings.em_sample, estimate_without_term_frequencies=True)),
        ("em_by_surname_postcode", lambda: linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("n_last", "n_postcode"), record_sample_proportion=settings.em_sample,
            estimate_without_term_frequencies=True)),
    ]
    for name, step in steps:
        try:
            step()
        except (SplinkException, ValueError, ZeroDivisionError) as exc:
            log.info("linkage model: %s not trained (%s); splink's defaults stand in", name, str(exc).splitlines()[0])
            skipped.append(name)
    # With no e-mail or phone agreements at all the prior comes out 0, which no match weight can
    # overcome (and log(0) fails): keep it within what a customer list can be.
    settings_obj = linker._settings_obj
    prior = settings_obj._probability_two_random_records_match
    if not 1e-9 <= prior <= 0.5:
        settings_obj._probability_two_random_records_match = min(max(prior, 1e-7), 0.5)
        if "prior" not in skipped:
            skipped.append("prior")
    return skipped


# -- clusters -------------------------------------------------------------------------------------------
class _Clusters:
    """Union-find over the node ids ``0 .. size - 1`` that refuses a merge joining a cannot-link pair."""

    def __init__(self, size: int, cannot: Iterable[tuple[int, int]]) -> None:
        self.parent = list(range(size))
        self.weight = [1] * size
        self.cannot: dict[int, set[int]] = {}
        for a, b in cannot:
            self.cannot.setdefault(a, set()).add(b)
            self.cannot.setdefault(b, set()).add(a)
        self.refused = 0

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: int, b: int) -> bool:
        """Merge the clusters of ``a`` and ``b``; False when already one or when a cannot-link forbids it."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        ca, cb = self.cannot.get(ra), self.cannot.get(rb)
        if ca and any(self.find(x) == rb for x in ca):
            self.refused += 1
            return False
        if self.weight[ra] < self.weight[rb]:
            ra, rb, ca, cb = rb, ra, cb, ca
        self.parent[rb] = ra
        self.weight[ra] += self.weight[rb]
        if cb:
            self.cannot.setdefault(ra, set()).update(cb)
        return True


_WEIGHT_COLUMNS = ("mw_name", "mw_email", "mw_phone", "mw_address")
_EDGE_SCHEMA = {"unique_id_l": pl.UInt32, "unique_id_r": pl.UInt32, "rule": pl.String, "probability": pl.Float64}
TF_COLUMNS = ("n_last", "n_email", "n_phone")  # the columns whose levels are term-frequency adjusted
_PROFILE_TABLE = f"""
CREATE TABLE IF NOT EXISTS people_profiles (
    unique_id UINTEGER, signature UBIGINT, first_record VARCHAR, records BIGINT, channel VARCHAR,
    store VARCHAR, channel_customer_id VARCHAR, {", ".join(f"{c} {'BOOLEAN' if c == 'n_email_relay' else 'VARCHAR'}"
                                                          for c in _PROFILE_COLUMNS)},
    cluster_id VARCHAR)"""
_TABLES = (
    _PROFILE_TABLE,
    "CREATE TABLE IF NOT EXISTS people_records (record_id VARCHAR, profile UINTEGER)",
    "CREATE TABLE IF NOT EXISTS people_keys (profile UINTEGER, key VARCHAR, kind VARCHAR)",
    "CREATE TABLE IF NOT EXISTS people_hubs (key VARCHAR PRIMARY KEY, kind VARCHAR, profiles BIGINT, names BIGINT)",
    "CREATE TABLE IF NOT EXISTS people_model (model VARCHAR)",
)
_DROP = ("people_profiles", "people_records", "people_keys", "people_hubs", "people_model", "people_model_rows",
         *(f"people_tf_{c}" for c in ("n_last", "n_email", "n_phone")))


class PeopleIndex:
    """Resolved people in DuckDB tables (``people_*``), resolved in full or grown by new records.

    ``resolve`` clusters a whole population and trains the model; ``add`` resolves new records
    against it with the trained model: deterministic keys are looked up, the model scores only pairs
    with a new record, and only clusters that a new record touches can change, so its cost grows
    with the new records, not with the history.

    Args:
        con: where the tables live (a DuckDB file keeps the index between runs; default: in memory).
        settings: thresholds and limits.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None, settings: ResolveSettings | None = None) -> None:
        self.con = con if con is not None else duckdb.connect()
        self.settings = settings or ResolveSettings()
        if self.settings.threads:
            self.con.execute(f"SET threads = {int(self.settings.threads)}")

    # -- full ---------------------------------------------------------------------------------------
    def resolve(self, records: pl.DataFrame, *, must_link: Sequence[tuple[Any, ...]] = (),
                cannot_link: Sequence[tuple[str, str]] = ()) -> Resolution:
        """Cluster ``records`` from scratch (replacing the index) and train the model on them.

        ``must_link`` holds ``(record_id, record_id)`` pairs, optionally with a rule name and a score
        (``(a, b, "mirror", 1.0)``) recorded on the link; ``cannot_link`` holds record id pairs.
        """
        from splink import Linker
        from splink.internals.duckdb.database_api import DuckDBAPI

        con, cfg = self.con, self.settings
        timings: dict[str, float] = {}
        started = time.perf_counter()
        n = prepare(records)
        timings["normalize_s"] = time.perf_counter() - started
        t = time.perf_counter()
        for table in _DROP:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        for ddl in _TABLES:
            con.execute(ddl)
        with registered(con, "_pp_in", n):
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _pp_sig AS
                SELECT record_id, channel, store, channel_customer_id, {_COLS}, {_SIGNATURE} AS signature FROM _pp_in
            """)
        # One profile per signature, numbered in signature order, holding its first record's values (every
        # record of a profile has the same ones: they make the signature); then each record points at it.
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _pp_ids AS
            SELECT (row_number() OVER (ORDER BY signature) - 1)::UINTEGER AS unique_id, signature, first_record,
                   first_row, records
            FROM (SELECT signature, min(record_id) AS first_record, arg_min(rowid, record_id) AS first_row,
                         count(*) AS records
                  FROM _pp_sig GROUP BY signature)
        """)
        con.execute(f"""
            INSERT INTO people_profiles
            SELECT i.unique_id, i.signature, i.first_record, i.records, s.channel, s.store, s.channel_customer_id,
                   {", ".join(f"s.{c}" for c in _PROFILE_COLUMNS)}, NULL
            FROM _pp_ids i JOIN _pp_sig s ON s.rowid = i.first_row""")
        con.execute("INSERT INTO people_records SELECT s.record_id, i.unique_id FROM _pp_sig s JOIN _pp_ids i USING (signature)")
        con.execute("DROP TABLE _pp_ids")
        con.execute("DROP TABLE _pp_sig")
        con.execute("INSERT INTO people_keys " + _KEYS.format(src="people_profiles"))
        con.execute(_SHARED.format(where="true"))
        con.execute("INSERT INTO people_hubs " + _HUBS, [cfg.hub_names, cfg.max_key_profiles])
        det = query_frame(con, _DETERMINISTIC.format(keys="people_keys", compatible=names_compatible_sql()))
        con.execute("DROP TABLE _pp_shared")
        timings["deterministic_s"] = time.perf_counter() - t
        t = time.perf_counter()
        con.execute("CREATE TABLE people_model_rows AS " + _MODEL_ROWS.format(where="true"))
        n_profiles = int(con.execute("SELECT count(*) FROM people_model_rows").fetchall()[0][0])
        model: dict[str, Any] | None = None
        untrained: list[str] = []
        block_pairs: dict[str, int] = {}
        if n_profiles >= cfg.min_profiles:
            # Each blocking rule's comparison count, checked before anything is scored.
            block_pairs = blocking_counts(con)
            keys = [rule for rule in BLOCKING_KEYS if block_pairs["+".join(rule)] <= cfg.max_block_pairs]
            for rule in BLOCKING_KEYS:
                if rule not in keys:
                    log.warning("blocking rule %s would score %d pairs (max_block_pairs %d): left out",
                                "+".join(rule), block_pairs["+".join(rule)], cfg.max_block_pairs)
            db = DuckDBAPI(con)
            linker = Linker(db.register("people_model_rows"), _splink_settings(cfg, keys), log_level=logging.ERROR)
            untrained = _train(linker, cfg)
            model = linker.misc.save_model_to_json()
            con.execute("INSERT INTO people_model VALUES (?)", [json.dumps(model)])
            for column in TF_COLUMNS:  # kept, so that adding records does not recount the history
                tf = linker.table_management.compute_tf_table(column)
                con.execute(f"CREATE OR REPLACE TABLE people_tf_{column} AS SELECT * FROM {tf.physical_name}")
            timings["train_s"] = time.perf_counter() - t
            t = time.perf_counter()
            pairs = _frame(linker.inference.predict(threshold_match_probability=min(cfg.review, 0.5)))
            timings["predict_s"] = time.perf_counter() - t
        else:
            log.info("%d profiles are too few to train a linkage model on (min_profiles %d): exact keys only",
                     n_profiles, cfg.min_profiles)
            pairs = pl.DataFrame()
        result = self._decide(det, pairs, must_link, cannot_link, incremental=False)
        result.model = model
        result.stats["model"] = (("trained" + (f" (not: {', '.join(untrained)})" if untrained else "")) if model
                                 else f"skipped: {n_profiles} profiles (min_profiles {cfg.min_profiles})")
        result.stats["blocking_pairs"] = block_pairs
        self._stats(result, n.height, det.height, pairs.height, timings, started)
        return result

    # -- incremental --------------------------------------------------------------------------------
    def add(self, records: pl.DataFrame, *, must_link: Sequence[tuple[Any, ...]] = (),
            cannot_link: Sequence[tuple[str, str]] = ()) -> Resolution:
        """Resolve new records against the index with its trained model (see the class docstring).

        Returns the clusters of the new records and of every existing record whose cluster changed.
        """
        from splink import Linker
        from splink.internals.duckdb.database_api import DuckDBAPI

        con, cfg = self.con, self.settings
        stored = con.execute("SELECT model FROM people_model").fetchall() if _exists(con, "people_model") else []
        if not stored:
            raise ValueError("the people index is empty: resolve a population in full before adding to it")
        model = json.loads(stored[0][0])
        timings: dict[str, float] = {}
        started = time.perf_counter()
        n = prepare(records)
        known = query_frame(con, "SELECT record_id FROM people_records WHERE record_id IN (SELECT unnest(?))",
                            [n["record_id"].to_list()])
        if known.height:
            raise ValueError(f"records already in the index: {known['record_id'].head(5).to_list()}")
        timings["normalize_s"] = time.perf_counter() - started
        t = time.perf_counter()
        base = int(con.execute("SELECT coalesce(max(unique_id) + 1, 0) FROM people_profiles").fetchall()[0][0])  # type: ignore[index]
        with registered(con, "_pp_in", n):
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE _pp_sig AS
                SELECT record_id, channel, store, channel_customer_id, {_COLS}, {_SIGNATURE} AS signature FROM _pp_in
            """)
        # Same signature as a known profile: that profile; else a new one, numbered after the known ones.
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _pp_new_records AS
            WITH known AS (SELECT signature, min(unique_id) AS unique_id FROM people_profiles
                           WHERE signature IN (SELECT signature FROM _pp_sig) GROUP BY signature),
            fresh AS (SELECT signature, ({base} + dense_rank() OVER (ORDER BY signature) - 1)::UINTEGER AS unique_id
                      FROM (SELECT DISTINCT signature FROM _pp_sig WHERE signature NOT IN (SELECT signature FROM known)))
            SELECT s.record_id, coalesce(k.unique_id, f.unique_id) AS profile, k.unique_id IS NULL AS is_new
            FROM _pp_sig s LEFT JOIN known k USING (signature) LEFT JOIN fresh f USING (signature)
        """)
        con.execute("INSERT INTO people_records SELECT record_id, profile FROM _pp_new_records")
        con.execute(f"""
            INSERT INTO people_profiles
            SELECT r.profile, any_value(s.signature), min(s.record_id), count(*), any_value(s.channel),
                   any_value(s.store), any_value(s.channel_customer_id),
                   {", ".join(f"any_value(s.{c})" for c in _PROFILE_COLUMNS)}, NULL
            FROM _pp_sig s JOIN _pp_new_records r USING (record_id) WHERE r.is_new GROUP BY r.profile""")
        con.execute("""UPDATE people_profiles p SET records = p.records + x.n
                       FROM (SELECT profile, count(*) AS n FROM _pp_new_records WHERE NOT is_new GROUP BY profile) x
                       WHERE p.unique_id = x.profile""")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _pp_new AS SELECT * FROM people_profiles WHERE unique_id >= {base}")
        con.execute("CREATE OR REPLACE TEMP TABLE _pp_new_keys AS " + _KEYS.format(src="_pp_new"))
        con.execute("INSERT INTO people_keys SELECT * FROM _pp_new_keys")
        # Hubs again for the keys the new profiles hold (a key can become one now).
        con.execute("DELETE FROM people_hubs WHERE key IN (SELECT key FROM _pp_new_keys)")
        con.execute(_SHARED.format(where="key IN (SELECT key FROM _pp_new_keys)"))
        con.execute("INSERT INTO people_hubs " + _HUBS, [cfg.hub_names, cfg.max_key_profiles])
        det = query_frame(con, _DETERMINISTIC.format(keys="_pp_new_keys", compatible=names_compatible_sql()))
        timings["deterministic_s"] = time.perf_counter() - t
        t = time.perf_counter()
        con.execute("CREATE OR REPLACE TEMP TABLE _pp_new_rows AS " + _MODEL_ROWS.format(where=f"p.unique_id >= {base}"))
        db = DuckDBAPI(con)
        linker = Linker(db.register("people_model_rows"), model, log_level=logging.ERROR)
        for column in TF_COLUMNS:
            linker.table_management.register_term_frequency_lookup(db.register(f"people_tf_{column}"), column)
        threshold = min(cfg.review, 0.5)
        new_rows, old_rows = db.register("_pp_new_rows"), db.register("people_model_rows")
        pairs = pl.concat([
            _frame(linker.inference.predict_between(new_rows, old_rows, threshold_match_probability=threshold)),
            _frame(linker.inference.predict_within(new_rows, threshold_match_probability=threshold)),
        ], how="diagonal_relaxed")
        con.execute("INSERT INTO people_model_rows SELECT * FROM _pp_new_rows")
        timings["predict_s"] = time.perf_counter() - t
        result = self._decide(det, pairs, must_link, cannot_link, incremental=True)
        for table in ("_pp_sig", "_pp_new_records", "_pp_new", "_pp_new_keys", "_pp_new_rows", "_pp_shared"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        self._stats(result, n.height, det.height, pairs.height, timings, started)
        return result

    # -- decisions ----------------------------------------------------------------------------------
    def _decide(self, det: pl.DataFrame, pairs: pl.DataFrame, must_link: Sequence[tuple[Any, ...]],
                cannot_link: Sequence[tuple[str, str]], *, incremental: bool) -> Resolution:
        con, cfg = self.con, self.settings
        scored = _scored(con, pairs)
        accept = (pl.col("match_probability") >= cfg.auto_merge) & pl.col("compatible") & pl.col("corroborated")
        auto = scored.filter(accept).sort("match_probability", descending=True)
        review = scored.filter(~accept & (pl.col("match_probability") >= cfg.review))
        must = self._profile_pairs([(m[0], m[1]) for m in must_link], "must_link")
        cannot = self._profile_pairs(cannot_link, "cannot_link")
        # A must-link may name its rule and score (a mirror, a plugged-in linker); else "must_link", 1.0.
        # Edges in the order union-find takes them: must-links, deterministic links, probabilistic ones.
        used = pl.concat([
            pl.DataFrame([(a, b, str(m[2]) if len(m) > 2 else "must_link", float(m[3]) if len(m) > 3 else 1.0)  # type: ignore[misc]
                          for (a, b), m in zip(must, must_link, strict=True)], schema=_EDGE_SCHEMA, orient="row"),
            det.select(pl.col("left").alias("unique_id_l"), pl.col("right").alias("unique_id_r"), "rule",
                       pl.lit(1.0).alias("probability")).cast(_EDGE_SCHEMA),  # type: ignore[arg-type]
            auto.select("unique_id_l", "unique_id_r", pl.lit("splink").alias("rule"),
                        pl.col("match_probability").alias("probability")).cast(_EDGE_SCHEMA),  # type: ignore[arg-type]
        ])
        lefts, rights = used["unique_id_l"].to_list(), used["unique_id_r"].to_list()
        size = int(con.execute("SELECT coalesce(max(unique_id) + 1, 0) FROM people_profiles").fetchall()[0][0])  # type: ignore[index]
        anchor: dict[int, int] = {}
        if incremental:
            fresh = query_frame(con, "SELECT unique_id FROM people_profiles WHERE cluster_id IS NULL")["unique_id"]
            members = sorted(set(lefts) | set(rights) | {x for pair in cannot for x in pair} | set(fresh.to_list()))
            # Existing clusters as they are: each profile of a known cluster starts joined to its cluster.
            if members:
                known = query_frame(con, """
                    SELECT p.unique_id, min(q.unique_id) AS anchor
                    FROM people_profiles p JOIN people_profiles q USING (cluster_id)
                    WHERE p.unique_id IN (SELECT unnest(?)) AND p.cluster_id IS NOT NULL GROUP BY p.unique_id
                """, [members])
                anchor = dict(zip(known["unique_id"].to_list(), known["anchor"].to_list(), strict=True))
        else:
            members = list(range(size))
        node = anchor.get
        uf = _Clusters(size, [(node(a, a), node(b, b)) for a, b in cannot])
        union = uf.union
        joined = ([union(node(a, a), node(b, b)) for a, b in zip(lefts, rights, strict=True)] if anchor
                  else [union(a, b) for a, b in zip(lefts, rights, strict=True)])
        # Each profile's strongest link among those that joined it (the first one on a tie).
        ends = used.with_row_index("edge").filter(pl.Series(joined, dtype=pl.Boolean))
        best = (pl.concat([ends.select("edge", pl.col(side).alias("unique_id"), "rule", "probability")
                           for side in ("unique_id_l", "unique_id_r")])
                .sort(["probability", "edge"], descending=[True, False])
                .group_by("unique_id", maintain_order=True).first()
                .select("unique_id", "rule", pl.col("probability").alias("link_probability")))
        frame = pl.DataFrame({"unique_id": members, "root": [uf.find(node(x, x)) for x in members]},
                             schema={"unique_id": pl.UInt32, "root": pl.UInt32}).join(best, on="unique_id", how="left")
        with registered(con, "_pp_roots", frame):
            # A cluster keeps the smallest id among the known clusters it holds; a new one is named by its
            # smallest record id. Every profile of a known cluster that merged follows it.
            con.execute("""
                CREATE OR REPLACE TEMP TABLE _pp_assign AS
                WITH named AS (
                    SELECT r.unique_id, r.root, r.rule, r.link_probability, p.cluster_id AS old, p.first_record
                    FROM _pp_roots r JOIN people_profiles p USING (unique_id)
                ), roots AS (
                    SELECT root, coalesce(min(old), min(first_record)) AS cluster_id FROM named GROUP BY root
                )
                SELECT n.unique_id, n.old, r.cluster_id, n.rule, n.link_probability
                FROM named n JOIN roots r USING (root)
            """)
        if incremental:
            con.execute("""
                UPDATE people_profiles p SET cluster_id = a.cluster_id
                FROM (SELECT DISTINCT old, cluster_id FROM _pp_assign WHERE old IS NOT NULL AND old <> cluster_id) a
                WHERE p.cluster_id = a.old""")
        # A full run assigns every profile (none has a cluster yet); an incremental one those it touched.
        con.execute("""UPDATE people_profiles p SET cluster_id = a.cluster_id FROM _pp_assign a
                       WHERE p.unique_id = a.unique_id AND p.cluster_id IS DISTINCT FROM a.cluster_id""")
        # The records to report: all (full run) or those of the clusters that changed (incremental).
        scope = "true" if not incremental else "p.cluster_id IN (SELECT cluster_id FROM _pp_assign)"
        clusters = query_frame(con, f"""
            SELECT r.record_id, p.cluster_id,
                   CASE WHEN a.link_probability IS NOT NULL THEN a.link_probability
                        WHEN p.records > 1 THEN 1.0 END AS match_probability,
                   coalesce(a.rule, CASE WHEN p.records > 1 THEN 'identical' END) AS rule, p.unique_id AS profile
            FROM people_records r JOIN people_profiles p ON p.unique_id = r.profile
            LEFT JOIN _pp_assign a ON a.unique_id = p.unique_id
            WHERE {scope}
        """)
        con.execute("DROP TABLE _pp_assign")
        # Known profiles a new record touched are already connected inside their cluster: an edge to the
        # cluster's anchor stands for that, so bridge finding sees them as one group.
        structure = pl.concat([used, pl.DataFrame([(x, a, "known", 1.0) for x, a in anchor.items() if x != a],
                                                  schema=_EDGE_SCHEMA, orient="row")])
        flags = _flags(clusters, cfg, _bridges(structure, clusters))
        named = _first_records(con, pl.concat([used["unique_id_l"], used["unique_id_r"], scored["unique_id_l"],
                                               scored["unique_id_r"]]))

        def _named(frame: pl.DataFrame) -> pl.DataFrame:
            """``unique_id_l/_r`` as the record ids ``left_id/right_id`` (each profile's first record)."""
            return (frame.join(named.rename({"uid": "unique_id_l", "rid": "left_id"}), on="unique_id_l", how="left")
                    .join(named.rename({"uid": "unique_id_r", "rid": "right_id"}), on="unique_id_r", how="left"))

        links = _named(used).join(_named(auto).select("left_id", "right_id", "weights"),
                                  on=["left_id", "right_id"], how="left")
        review_out = _named(review).select("left_id", "right_id", pl.col("match_probability").alias("probability"),
                                           "weights")
        stats = {"clusters": int(clusters["cluster_id"].n_unique()), "auto_links": auto.height,
                 "review_pairs": review_out.height, "refused_by_cannot_link": uf.refused, "flagged": flags.height}
        return Resolution(clusters=clusters.drop("profile"), links=links.select(list(LINK_SCHEMA)),
                          review=review_out, flags=flags, stats=stats)

    def _profile_pairs(self, ids: Sequence[tuple[str, str]], what: str) -> list[tuple[int, int]]:
        if not ids:
            return []
        flat = sorted({r for pair in ids for r in pair})
        found = query_frame(self.con, "SELECT record_id, profile FROM people_records WHERE record_id IN (SELECT unnest(?))",
                            [flat])
        profile_of = dict(zip(found["record_id"].to_list(), found["profile"].to_list(), strict=True))
        unknown = [r for r in flat if r not in profile_of]
        if unknown:
            raise ValueError(f"{what} names record ids that are not in the input: {unknown[:5]}")
        pairs = [(profile_of[a], profile_of[b]) for a, b in ids]
        if what == "cannot_link" and any(a == b for a, b in pairs):
            same = [(a, b) for a, b in ids if profile_of[a] == profile_of[b]]
            raise ValueError(f"cannot_link pairs whose records are identical in every field cannot be told apart: {same[:3]}")
        return pairs

    def _stats(self, result: Resolution, records: int, det: int, scored: int, timings: dict[str, float],
               started: float) -> None:
        hubs = dict(self.con.execute("SELECT kind, count(*) FROM people_hubs GROUP BY kind").fetchall())
        profiles = int(self.con.execute("SELECT count(*) FROM people_profiles").fetchall()[0][0])  # type: ignore[index]
        timings["total_s"] = time.perf_counter() - started
        result.stats.update({"records": records, "profiles_in_index": profiles, "deterministic_pairs": det,
                             "scored_pairs": scored, "hubs": hubs, **{k: round(v, 2) for k, v in timings.items()}})


def resolve_people(records: pl.DataFrame, *, settings: ResolveSettings | None = None,
                   must_link: Sequence[tuple[Any, ...]] = (), cannot_link: Sequence[tuple[str, str]] = ()) -> Resolution:
    """Cluster ``records`` into people in a throw-away in-memory index (see :class:`PeopleIndex`)."""
    index = PeopleIndex(settings=settings)
    try:
        return index.resolve(records, must_link=must_link, cannot_link=cannot_link)
    finally:
        index.con.close()


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()[0][0])  # type: ignore[index]


def _frame(sdf: Any) -> pl.DataFrame:
    """The pairs of a splink prediction, their probability and per-comparison match weights, as polars."""
    relation = sdf.as_duckdbpyrelation()
    wanted = [c for c in ("unique_id_l", "unique_id_r", "match_probability", *_WEIGHT_COLUMNS) if c in relation.columns]
    return pl.DataFrame(relation.select(*wanted))


def _scored(con: duckdb.DuckDBPyConnection, pairs: pl.DataFrame) -> pl.DataFrame:
    """Scored pairs with their per-field weights (JSON) and whether their names can be one person."""
    schema = {"unique_id_l": pl.UInt32, "unique_id_r": pl.UInt32, "match_probability": pl.Float64,
              "weights": pl.String, "compatible": pl.Boolean, "corroborated": pl.Boolean}
    if pairs.height == 0:
        return pl.DataFrame(schema=schema)
    weights = [pl.format('"{}": {}', pl.lit(c[3:]), pl.col(c).round(2)) for c in _WEIGHT_COLUMNS if c in pairs.columns]
    scored = pairs.select(
        pl.col("unique_id_l").cast(pl.UInt32), pl.col("unique_id_r").cast(pl.UInt32), "match_probability",
        (pl.lit("{") + pl.concat_str(weights, separator=", ") + pl.lit("}")).alias("weights"),
    )
    # A pair whose names are not compatible (a household at one address, a gift) never links by itself.
    with registered(con, "_pp_scored", scored.select("unique_id_l", "unique_id_r")):
        compatible = query_frame(con, f"""
            SELECT s.unique_id_l, s.unique_id_r, coalesce({names_compatible_sql()}, false) AS compatible,
                   coalesce({_CORROBORATED}, false) AS corroborated
            FROM _pp_scored s JOIN people_profiles a ON a.unique_id = s.unique_id_l
                              JOIN people_profiles b ON b.unique_id = s.unique_id_r""")
    return scored.join(compatible, on=["unique_id_l", "unique_id_r"], how="left").select(list(schema))


# Besides the name, a pair must agree exactly on something a stranger with the same name would not
# have: the e-mail, the phone, or the street address (line or number, with the postcode). Name plus a
# similar e-mail alone (the same local part at another provider) goes to review instead.
_CORROBORATED = """(a.n_email = b.n_email OR a.n_phone = b.n_phone
    OR (a.n_postcode = b.n_postcode AND (a.n_line = b.n_line OR a.n_number = b.n_number)))"""


def _first_records(con: duckdb.DuckDBPyConnection, profiles: pl.Series) -> pl.DataFrame:
    """``uid, rid``: each of ``profiles`` with its first record id."""
    wanted = pl.DataFrame({"uid": profiles.unique()}, schema={"uid": pl.UInt32})
    with registered(con, "_pp_wanted", wanted):
        return query_frame(con, """SELECT p.unique_id AS uid, p.first_record AS rid
                                   FROM people_profiles p SEMI JOIN _pp_wanted w ON w.uid = p.unique_id""").cast(
            {"uid": pl.UInt32, "rid": pl.String})


def _flags(clusters: pl.DataFrame, cfg: ResolveSettings, bridges: pl.DataFrame) -> pl.DataFrame:
    """Clusters to look at: too many distinct profiles, or two groups held together by one probabilistic link."""
    # Size in profiles: one person's hundred identical orders are one profile, not a big cluster.
    sizes = clusters.group_by("cluster_id").agg(pl.col("profile").n_unique().alias("profiles"))
    big = sizes.filter(pl.col("profiles") > cfg.max_cluster_size).select(
        "cluster_id", pl.format("{} distinct profiles (more than {})", pl.col("profiles"),
                                pl.lit(cfg.max_cluster_size)).alias("reason"))
    return pl.concat([big, bridges]).cast({"cluster_id": pl.String, "reason": pl.String})


def _bridges(edges: pl.DataFrame | list[tuple[int, int, str, float]], clusters: pl.DataFrame) -> pl.DataFrame:
    """Probabilistic links whose removal splits their cluster into two groups of two or more profiles.

    Such a link is the only thing holding two groups together: if it is wrong, two people are merged.
    Bridges are found per cluster by depth-first search with low links (Tarjan), iteratively.

    Args:
        edges: ``unique_id_l, unique_id_r, rule, probability`` (a frame, or rows in that order).
        clusters: ``profile, cluster_id`` of the profiles the edges join.
    """
    if not isinstance(edges, pl.DataFrame):
        edges = pl.DataFrame(edges, schema=_EDGE_SCHEMA, orient="row")
    # Two groups of two or more need four profiles: smaller clusters cannot hold such a bridge. Only
    # clusters with a probabilistic link can have one.
    profiles = clusters.select(pl.col("profile").cast(pl.UInt32), "cluster_id").unique(subset="profile")
    large = profiles.filter(pl.len().over("cluster_id") >= 4)
    placed = edges.filter(pl.col("unique_id_l") != pl.col("unique_id_r")).join(
        large.rename({"profile": "unique_id_l"}), on="unique_id_l")
    suspect = placed.filter(pl.col("rule") == "splink")["cluster_id"].unique()
    placed = placed.filter(pl.col("cluster_id").is_in(suspect.implode()))
    cluster_of = dict(zip(placed["unique_id_l"].to_list(), placed["cluster_id"].to_list(), strict=True))
    graph: dict[int, list[tuple[int, int]]] = {}
    kept = placed.select("unique_id_l", "unique_id_r", "rule", "probability").rows()
    for i, (a, b, _, _) in enumerate(kept):
        graph.setdefault(a, []).append((b, i))
        graph.setdefault(b, []).append((a, i))
    order: dict[int, int] = {}
    low: dict[int, int] = {}
    size: dict[int, int] = {}
    found: list[tuple[str, str]] = []
    for root in graph:
        if root in order:
            continue
        # Iterative DFS: (node, edge index it came by, iterator over its neighbours).
        stack = [(root, -1, iter(graph[root]))]
        order[root] = low[root] = len(order)
        size[root] = 1
        component = [root]
        while stack:
            node, via, neighbours = stack[-1]
            step = next(neighbours, None)
            if step is None:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[node])
                    size[parent] += size[node]
                continue
            nxt, edge = step
            if edge == via:
                continue
            if nxt in order:
                low[node] = min(low[node], order[nxt])
            else:
                order[nxt] = low[nxt] = len(order)
                size[nxt] = 1
                component.append(nxt)
                stack.append((nxt, edge, iter(graph[nxt])))
        total = len(component)
        for node in component:
            for nxt, edge in graph[node]:
                a, b, rule, p = kept[edge]
                # A tree edge node -> nxt is a bridge when nothing below nxt reaches above it.
                if rule == "splink" and order[nxt] > order[node] and low[nxt] > order[node]:
                    below = size[nxt]
                    if below >= 2 and total - below >= 2:
                        found.append((str(cluster_of[a]), f"two groups of {total - below} and {below} profiles held "
                                                          f"together by one probabilistic link (p={p:.4f})"))
    return pl.DataFrame(found, schema={"cluster_id": pl.String, "reason": pl.String}, orient="row").unique()
