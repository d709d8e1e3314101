"""Identity resolution against the generator's truth: ``orderhub bench identity --persons N``.

The generator (``sandbox/people_records.py``) makes the customer records of ``N`` people as the
channels show them (typos, nicknames, swapped names, households, reused phones, gifts, relay
e-mails). Three runs, each in its own process so that its peak memory is its own:

- ``ours``: :func:`dedupe.people.resolve_people` over every record;
- ``baseline``: splink with near-default settings (its documented comparisons and blocking for
  people, minimal cleaning: lower-case, digits of phones, no nickname, household or gift handling);
- ``incremental``: ours over everyone but the last ``new`` people, then those people's records
  added to that index (:meth:`dedupe.people.PeopleIndex.add`); the add is timed on its own.

Scores (against ``person_id``): pairwise precision, recall and F1 over record pairs; cluster
precision (predicted clusters holding one person only), cluster recall (people whose records all
landed in one cluster) and their F1; over all records and over the records that carry any identity
(:func:`scored`); and wall time and peak RSS of each run.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console


def scores(clusters: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """Pairwise and cluster precision / recall / F1 of ``record_id, cluster_id`` against ``record_id, person_id``."""
    j = clusters.select("record_id", "cluster_id").join(truth.select("record_id", "person_id"), on="record_id")
    if j.height != truth.height:
        raise ValueError(f"{truth.height - j.height} records have no cluster")

    def pairs(*by: str) -> int:
        return int(j.group_by(list(by)).len().select((pl.col("len") * (pl.col("len") - 1) // 2).sum()).item())

    tp, found, true = pairs("cluster_id", "person_id"), pairs("cluster_id"), pairs("person_id")
    p = tp / found if found else 1.0
    r = tp / true if true else 1.0
    pure = j.group_by("cluster_id").agg(pl.col("person_id").n_unique().alias("people"))
    whole = j.group_by("person_id").agg(pl.col("cluster_id").n_unique().alias("clusters"))
    cp = pure.filter(pl.col("people") == 1).height / pure.height
    cr = whole.filter(pl.col("clusters") == 1).height / whole.height
    return {
        "pairwise_precision": round(p, 5), "pairwise_recall": round(r, 5),
        "pairwise_f1": round(2 * p * r / (p + r), 5) if p + r else 0.0,
        "cluster_precision": round(cp, 5), "cluster_recall": round(cr, 5),
        "cluster_f1": round(2 * cp * cr / (cp + cr), 5) if cp + cr else 0.0,
        "true_pairs": true, "found_pairs": found, "clusters": pure.height, "people": whole.height,
    }


def baseline_clusters(records: pl.DataFrame) -> pl.DataFrame:
    """Plain splink with near-default settings: ``record_id, cluster_id``."""
    import duckdb
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.internals.duckdb.database_api import DuckDBAPI

    con = duckdb.connect()
    con.register("raw", records)
    con.execute("""
        CREATE TABLE people AS SELECT record_id AS unique_id,
            nullif(lower(split_part(trim(name), ' ', 1)), '') AS first_name,
            nullif(lower(split_part(trim(name), ' ', -1)), '') AS surname,
            nullif(lower(trim(email)), '') AS email,
            nullif(regexp_replace(phone, '[^0-9]', '', 'g'), '') AS phone,
            nullif(lower(trim(line1)), '') AS line1,
            nullif(upper(replace(postal_code, ' ', '')), '') AS postcode,
            nullif(lower(trim(city)), '') AS city
        FROM raw""")
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[cl.NameComparison("first_name"), cl.NameComparison("surname"), cl.EmailComparison("email"),
                     cl.ExactMatch("phone"), cl.LevenshteinAtThresholds("line1", 2), cl.ExactMatch("postcode"),
                     cl.ExactMatch("city")],
        blocking_rules_to_generate_predictions=[block_on("email"), block_on("phone"), block_on("surname", "postcode"),
                                                block_on("first_name", "surname")],
    )
    db = DuckDBAPI(con)
    linker = Linker(db.register("people"), settings, log_level=40)
    linker.training.estimate_probability_two_random_records_match([block_on("email")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("surname", "postcode"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, 0.95)
    out = pl.DataFrame(clustered.as_duckdbpyrelation()).select(
        pl.col("unique_id").cast(pl.String).alias("record_id"), pl.col("cluster_id").cast(pl.String))
    con.close()
    return out


def scored(clusters: pl.DataFrame, records: pl.DataFrame) -> dict[str, Any]:
    """Scores over every record, and over the records that carry any identity (a name, an e-mail or a phone).

    An Amazon order read without the PII roles has none of these: nothing can link it, so the
    second set of scores is the one that measures the linking.
    """
    identified = records.filter(pl.col("name").is_not_null() | pl.col("email").is_not_null()
                                | pl.col("phone").is_not_null())
    keep = pl.col("record_id").is_in(identified["record_id"].implode())
    return {"all_records": scores(clusters, records.select("record_id", "person_id")),
            "identified_records": {"records": identified.height,
                                   **scores(clusters.filter(keep), identified.select("record_id", "person_id"))}}


def _child(mode: str, workdir: Path, new_people: int) -> dict[str, Any]:
    from dedupe.people import PeopleIndex, ResolveSettings

    records = pl.read_parquet(workdir / "records.parquet")
    truth = records.select("record_id", "person_id", "name", "email", "phone")
    inputs = records.drop("person_id", "is_gift", strict=False)
    started = time.perf_counter()
    out: dict[str, Any] = {"mode": mode}
    if mode == "ours":
        index = PeopleIndex(settings=ResolveSettings())
        result = index.resolve(inputs)
        out["seconds"] = round(time.perf_counter() - started, 2)
        out.update(scored(result.clusters, truth))
        out["stats"] = result.stats
    elif mode == "baseline":
        clusters = baseline_clusters(inputs)
        out["seconds"] = round(time.perf_counter() - started, 2)
        out.update(scored(clusters, truth))
    else:
        people = truth["person_id"].unique(maintain_order=True)
        newest = set(people.tail(new_people).to_list())
        is_new = pl.col("person_id").is_in(list(newest))
        old, new = records.filter(~is_new), records.filter(is_new)
        index = PeopleIndex(settings=ResolveSettings())
        index.resolve(old.drop("person_id", "is_gift", strict=False))
        full_s = time.perf_counter() - started
        added = time.perf_counter()
        result = index.add(new.drop("person_id", "is_gift", strict=False))
        out["add_seconds"] = round(time.perf_counter() - added, 2)
        out["full_seconds_before"] = round(full_s, 2)
        out["new_people"], out["new_records"] = len(newest), new.height
        every = pl.DataFrame(index.con.sql(
            "SELECT r.record_id, p.cluster_id FROM people_records r JOIN people_profiles p ON p.unique_id = r.profile"))
        out.update(scored(every, truth))
        out["stats"] = result.stats
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def identity_bench(persons: int, *, seed: int = 1, new_people: int = 5000, baseline: bool = True,
                   workdir: Path | None = None, keep: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Generate ``persons`` people's records, then run ours, the baseline and the incremental add."""
    from sandbox.people_records import people_records

    home = Path(workdir or tempfile.mkdtemp(prefix="orderhub-identity-"))
    home.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        records = people_records(persons, seed=seed)
        records.write_parquet(home / "records.parquet")
        result: dict[str, Any] = {"benchmark": "identity", "persons": persons, "records": records.height,
                                  "generate_s": round(time.perf_counter() - started, 1)}
        del records
        modes = ["ours", *(["baseline"] if baseline else []), *(["incremental"] if new_people else [])]
        for mode in modes:
            if console:
                console.print(f"{mode} …")
            proc = subprocess.run([sys.executable, "-m", "orderhub.bench_identity", mode, str(home), str(new_people)],
                                  check=True, capture_output=True, text=True)
            result[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
            if console:
                console.print_json(json.dumps(result[mode]))
        return result
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.stdout.write(json.dumps(_child(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))) + "\n")
