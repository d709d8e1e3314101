"""People resolution (dedupe/people.py) on a generated population plus hand-made hard cases."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import polars as pl
import pytest

from dedupe.people import PeopleIndex, ResolveSettings, resolve_people
from orderhub.bench_identity import scores
from sandbox.generator import generate

COLUMNS = ["record_id", "channel", "store", "channel_customer_id", "name", "email", "phone", "ship_name", "line1",
           "line2", "city", "postal_code", "country"]


def _orders_as_records(orders: int, seed: int) -> pl.DataFrame:
    business = generate(seed=seed, orders=orders, days=90, start=datetime(2026, 11, 1, tzinfo=UTC), future_days=0)
    rows = []
    for o in business.orders:
        if o.person_id is None or o.pii_masked:
            continue
        a = o.ship_to
        rows.append({"record_id": o.order_id, "person_id": o.person_id, "channel": o.channel, "store": o.store,
                     "channel_customer_id": o.channel_customer_id, "name": o.buyer_name, "email": o.email,
                     "phone": o.phone, "ship_name": a.name if a else None, "line1": a.line1 if a else None,
                     "line2": a.line2 if a else None, "city": a.city if a else None,
                     "postal_code": a.postal_code if a else None, "country": a.country if a else None})
    return pl.DataFrame(rows)


@pytest.fixture(scope="module")
def population() -> pl.DataFrame:
    return _orders_as_records(6000, seed=11)


HARD = [  # record_id, truth, fields
    ("h-john", "P-john", dict(name="John Smith", email="john.smith@example.com", phone="+1 415 555 0101",
                              line1="12 Maple Avenue", line2="Apt 4B", city="Springfield", postal_code="62701",
                              country="US")),
    ("h-mary", "P-mary", dict(name="Mary Smith", email="mary.s@example.net", phone="+1 415 555 0101",  # household
                              line1="12 Maple Ave.", line2="Apartment 4B", city="Springfield", postal_code="62701",
                              country="US")),
    ("h-bill-1", "P-bill", dict(name="William Tanaka-Berg", email="wtb@example.org", phone="(415) 555-0199",
                                line1="77 Ocean Drive", city="Santa Cruz", postal_code="95060", country="US")),
    ("h-bill-2", "P-bill", dict(name="Bill Tanaka-Berg", email="billy.tb@mail.example", phone="+14155550199",
                                line1="77 Ocean Dr", city="Santa Cruz", postal_code="95060-1234", country="US")),
    ("h-gift", "P-ann", dict(name="Ann Gifford", email="ann.gifford@example.com", ship_name="Zoë Receiver",
                             line1="5 Rue Garnier", city="Québec", postal_code="G1R 1A1", country="CA")),
    ("h-zoe", "P-zoe", dict(name="Zoë Receiver", email="zoe.r@example.ca", line1="5 Rue Garnier", city="Québec",
                            postal_code="G1R1A1", country="CA")),
]
HUB = [(f"h-hub-{i}", f"P-hub-{i}", dict(name=name, email="orders@forwarder.example", line1="1 Depot Road",
                                          city="Dover", postal_code="DE19901", country="US"))
       for i, name in enumerate(["Ada Lovelace", "Bob Marley", "Chen Wei", "Dara Ó Briain", "Eve Online"])]


def _with(population: pl.DataFrame, cases: list[tuple[str, str, dict[str, str]]]) -> pl.DataFrame:
    rows = [{"record_id": rid, "person_id": truth, "channel": "woocommerce", "store": "woo-shop", **fields}
            for rid, truth, fields in cases]
    extra = pl.DataFrame(rows).with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in COLUMNS
                                            if c not in {k for r in rows for k in r})
    return pl.concat([population, extra.select(population.columns)], how="vertical_relaxed")


def _cluster(result, record_id: str) -> str:
    return result.clusters.filter(pl.col("record_id") == record_id)["cluster_id"].item()


def test_population_resolves_precisely_and_the_hard_cases_go_the_right_way(population) -> None:
    records = _with(population, HARD + HUB)
    result = resolve_people(records.drop("person_id"))
    assert result.clusters.height == records.height
    s = scores(result.clusters, records.select("record_id", "person_id"))
    assert s["pairwise_precision"] >= 0.99 and s["pairwise_recall"] >= 0.9, s
    c = {rid: _cluster(result, rid) for rid, _, _ in HARD + HUB}
    assert c["h-john"] != c["h-mary"]  # a household: same address and landline, another first name
    assert c["h-bill-1"] == c["h-bill-2"]  # nickname, phone formats, street abbreviation, ZIP+4
    assert c["h-gift"] != c["h-zoe"]  # a gift: the buyer never merges with the recipient
    assert len({c[rid] for rid, _, _ in HUB}) == len(HUB)  # a forwarder's address and inbox link nobody
    assert result.stats["hubs"].get("email", 0) >= 1
    why = result.links.filter(pl.col("left_id").is_in(["h-bill-1", "h-bill-2"])
                              | pl.col("right_id").is_in(["h-bill-1", "h-bill-2"]))
    assert why.height and set(why["rule"]) <= {"phone", "splink", "email"}


def test_must_link_and_cannot_link_are_honoured_over_every_rule(population) -> None:
    records = _with(population, HARD).drop("person_id")
    result = resolve_people(records, must_link=[("h-john", "h-mary")], cannot_link=[("h-bill-1", "h-bill-2")])
    assert _cluster(result, "h-john") == _cluster(result, "h-mary")
    assert _cluster(result, "h-bill-1") != _cluster(result, "h-bill-2")
    assert result.stats["refused_by_cannot_link"] >= 1
    with pytest.raises(ValueError, match="not in the input"):
        resolve_people(records, cannot_link=[("h-john", "nobody")])


def test_incremental_add_matches_a_full_run_and_keeps_cluster_ids(population) -> None:
    people = population["person_id"].unique(maintain_order=True)
    late = set(people.tail(150).to_list())
    old = population.filter(~pl.col("person_id").is_in(list(late)))
    new = population.filter(pl.col("person_id").is_in(list(late)))
    index = PeopleIndex(settings=ResolveSettings())
    first = index.resolve(old.drop("person_id"))
    before = dict(zip(first.clusters["record_id"], first.clusters["cluster_id"], strict=True))
    added = index.add(new.drop("person_id"))
    assert set(new["record_id"]) <= set(added.clusters["record_id"])
    every = pl.DataFrame(index.con.sql(
        "SELECT r.record_id, p.cluster_id FROM people_records r JOIN people_profiles p ON p.unique_id = r.profile"))
    assert every.height == population.height
    s = scores(every, population.select("record_id", "person_id"))
    assert s["pairwise_precision"] >= 0.99, s
    after = dict(zip(every["record_id"], every["cluster_id"], strict=True))
    moved = [r for r, c in before.items() if after[r] != c]
    # Only clusters a new record touched may change, and only by merging.
    assert len(moved) <= 0.02 * len(before)
    with pytest.raises(ValueError, match="already in the index"):
        index.add(new.head(1).drop("person_id"))


def test_a_probabilistic_link_holding_two_groups_together_is_flagged() -> None:
    from dedupe.people import _bridges

    clusters = pl.DataFrame({"profile": list(range(6)), "cluster_id": ["c"] * 6})
    triangle = [(0, 1, "email", 1.0), (1, 2, "phone", 1.0), (0, 2, "splink", 0.999),
                (3, 4, "email", 1.0), (4, 5, "email", 1.0)]
    bridged = _bridges([*triangle, (2, 3, "splink", 0.9971)], clusters)
    assert bridged.to_dicts() == [{"cluster_id": "c", "reason": "two groups of 3 and 3 profiles held together by one "
                                                               "probabilistic link (p=0.9971)"}]
    # A second, independent link between the groups: no single point of failure.
    assert _bridges([*triangle, (2, 3, "splink", 0.9971), (1, 4, "phone", 1.0)], clusters).height == 0
    # A lone record hanging on one link is not two groups.
    assert _bridges([(0, 1, "email", 1.0), (1, 2, "splink", 0.999)],
                    clusters.head(3)).height == 0


def test_blocking_rules_are_checked_by_their_comparison_counts(caplog: pytest.LogCaptureFixture) -> None:
    import duckdb

    from dedupe.people import BLOCKING_KEYS, blocking_counts

    con = duckdb.connect()
    con.execute("""CREATE TABLE rows AS SELECT * FROM (VALUES
        ('a@x.de', NULL, 'smith', '10115'), ('a@x.de', NULL, 'smith', '10115'), ('a@x.de', '+49301', 'smith', NULL),
        (NULL, '+49301', 'jones', '10115'), (NULL, NULL, NULL, '10115')) t(n_email, n_phone, n_last, n_postcode)""")
    for column in {c for rule in BLOCKING_KEYS for c in rule} - {"n_email", "n_phone", "n_last", "n_postcode"}:
        con.execute(f"ALTER TABLE rows ADD COLUMN {column} VARCHAR")
    counts = blocking_counts(con, "rows")
    # 3 rows share the e-mail (3 pairs), 2 the phone (1), 2 surname + postcode (1); NULLs pair with nothing.
    assert counts["n_email"] == 3 and counts["n_phone"] == 1 and counts["n_last+n_postcode"] == 1
    assert counts["n_line+n_postcode"] == 0 and len(counts) == len(BLOCKING_KEYS)

    # A rule over a placeholder value would score too many pairs: it is left out, with a warning.
    n = 400
    records = pl.DataFrame({"record_id": [str(i) for i in range(n)], "name": [f"Ann Lee{i}" for i in range(n)],
                            "email": [f"ann{i}@example.com" for i in range(n)],
                            "line1": ["1 Main St"] * n, "postal_code": ["10115"] * n, "country": ["DE"] * n})
    with caplog.at_level(logging.WARNING, logger="dedupe.people"):
        result = resolve_people(records, settings=ResolveSettings(max_block_pairs=1000, hub_names=10**6,
                                                                  max_key_profiles=10**6))
    assert result.stats["blocking_pairs"]["n_line+n_postcode"] == n * (n - 1) // 2
    assert any("n_line+n_postcode" in r.getMessage() and "left out" in r.getMessage() for r in caplog.records)
