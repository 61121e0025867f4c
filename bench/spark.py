"""Splink on Spark vs DuckDB with the same model JSON (run by hand, never by pytest; needs Java 17).

    .venv/bin/python bench/spark.py --people 2000

Trains the model on DuckDB, saves and reloads the JSON, resolves the sandbox records with
:func:`matching.resolve.resolve` (DuckDB) and :func:`matching.spark.resolve_on_spark` (local Spark),
then prints: pairs scored by each, the largest probability difference, pairs at or above the
threshold on one side only, records whose cluster differs, and the timings. Then the golden build
(citizen ids, survivorship, foyers from the silos' own groupings) from the Spark resolution's
clusters, as Spark SQL (:class:`matching.spark.SparkEngine`) and on DuckDB: seconds of each step
and whether every table is equal. Last, the two
jaro-winkler implementations (DuckDB's ``jaro_winkler_similarity``, the ``jaro_winkler`` of Splink's
Spark jar) on every pair of distinct prénoms and names of the sample: how many differ, and how
many fall on different sides of one of the model's jaro-winkler thresholds.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from pyspark.sql import SparkSession

from matching import model as mdl
from matching.households import build_households
from matching.identity import assign_citizen_ids
from matching.resolve import prepare, resolve
from matching.spark import SparkEngine, resolve_on_spark, spark_session
from matching.survivorship import survive
from sandbox.observations import observe, to_person_records
from sandbox.population import generate_population

try:
    from bench.golden import memberships
except ImportError:  # run as a script: bench/ is on the path
    from golden import memberships  # type: ignore[no-redef]


def _jw_thresholds(model: dict) -> list[float]:
    found = set()
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            found |= {float(x) for x in re.findall(r"jaro_winkler_similarity\([^)]*\) >= ([0-9.]+)",
                                                   level["sql_condition"])}
    return sorted(found)


def _jw_compare(spark: SparkSession, values: list[str], thresholds: list[float]) -> tuple[int, int, int, float]:
    """Both implementations on every pair of ``values`` (the jar's functions are registered by the
    SparkAPI of an earlier resolve_on_spark): compared, differing, crossing a threshold, largest gap."""
    pairs = pa.table(dict(zip(("a", "b"), zip(*itertools.combinations(values, 2), strict=True), strict=True)))
    con = duckdb.connect()
    con.register("p", pairs)
    duck = con.sql("SELECT a, b, jaro_winkler_similarity(a, b) AS jw FROM p").to_arrow_table()
    con.close()
    spark.createDataFrame(pairs).createOrReplaceTempView("jw_pairs")
    on_spark = spark.sql("SELECT a, b, jaro_winkler(a, b) AS jw FROM jw_pairs").toArrow()
    d = {(a, b): jw for a, b, jw in zip(*(duck[c].to_pylist() for c in ("a", "b", "jw")), strict=True)}
    s = {(a, b): jw for a, b, jw in zip(*(on_spark[c].to_pylist() for c in ("a", "b", "jw")), strict=True)}
    differ = [k for k in d if abs(d[k] - s[k]) > 1e-9]
    crossing = [k for k in differ if any((d[k] >= t) != (s[k] >= t) for t in thresholds)]
    return len(d), len(differ), len(crossing), max((abs(d[k] - s[k]) for k in d), default=0.0)


def _golden(records: pa.Table, groupings: pa.Table, res, engine) -> tuple[dict[str, pa.Table], dict[str, float]]:
    """The golden build from ``res``'s clusters on ``engine`` (None: DuckDB): its tables and seconds per step."""
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    seconds = {}
    t0 = time.perf_counter()
    links = assign_citizen_ids(res.links, engine=engine() if engine else None)
    seconds["ids"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    golden = survive(records, links, now=now, standardised=res.standardised, engine=engine() if engine else None)
    seconds["survivorship"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    households, members = build_households(groupings, links, golden.citizens, now=now, keys=golden.keys,
                                           engine=engine() if engine else None)
    seconds["foyers"] = time.perf_counter() - t0
    return ({"links": links, "citizens": golden.citizens, "attributes": golden.attributes,
             "discrepancies": golden.discrepancies, "households": households, "members": members}, seconds)


def _golden_rows(spark: SparkSession, records: pa.Table, groupings: pa.Table, res) -> list[tuple[str, str]]:
    duck, duck_s = _golden(records, groupings, res, None)
    engines: list[SparkEngine] = []

    def engine() -> SparkEngine:
        engines.append(SparkEngine(spark))
        return engines[-1]

    on_spark, spark_s = _golden(records, groupings, res, engine)
    for e in engines:
        e.close()
    equal = [n for n in duck if duck[n].equals(on_spark[n])]
    return [
        ("golden build: citizens, attributes, foyers", f"{duck['citizens'].num_rows:,}, "
         f"{duck['attributes'].num_rows:,}, {duck['households'].num_rows:,}"),
        ("golden build: tables equal on Spark and DuckDB", f"{len(equal)} of {len(duck)} "
         f"({', '.join(sorted(set(duck) - set(equal))) or 'all equal'} differ)" if len(equal) < len(duck)
         else f"{len(equal)} of {len(duck)}"),
        *((f"golden build {step}: DuckDB, Spark", f"{duck_s[step]:.2f} s, {spark_s[step]:.1f} s") for step in duck_s),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=2_000, help="people in the synthetic commune")
    ap.add_argument("--seed", type=int, default=42, help="sandbox seed")
    ap.add_argument("--names", type=int, default=400, help="distinct prénoms / names compared pairwise")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    obs = observe(generate_population(args.people, args.seed), args.seed)
    records = to_person_records(obs)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        duck = resolve(records, pair_floor=None)
        duck_s = time.perf_counter() - t0
        model = mdl.load_model(mdl.save_model(duck.model_json, Path(tmp) / "model.json"))
        t0 = time.perf_counter()
        duck = resolve(records, model_json=model, pair_floor=None)
        duck_scored_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        spark = spark_session(tmp)
        session_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        on_spark = resolve_on_spark(spark, records, model, pair_floor=None)
        spark_s = time.perf_counter() - t0

        d = {(r["record_key_l"], r["record_key_r"]): r["match_probability"] for r in duck.pairs.to_pylist()}
        s = {(r["record_key_l"], r["record_key_r"]): r["match_probability"] for r in on_spark.pairs.to_pylist()}
        common = d.keys() & s.keys()
        above_d = {k for k, p in d.items() if p >= duck.threshold}
        above_s = {k for k, p in s.items() if p >= on_spark.threshold}
        dc = dict(zip(duck.links["record_key"].to_pylist(), duck.links["cluster_id"].to_pylist(), strict=True))
        sc = dict(zip(on_spark.links["record_key"].to_pylist(), on_spark.links["cluster_id"].to_pylist(),
                      strict=True))
        rows = [
            ("people / live records", f"{args.people:,} / {on_spark.links.num_rows:,}"),
            ("model version (DuckDB, Spark)", f"{duck.model_version}, {on_spark.model_version}"),
            ("pairs scored (DuckDB, Spark)", f"{duck.pairs_scored:,}, {on_spark.pairs_scored:,}"),
            ("pairs scored by one side only", f"{len(d.keys() ^ s.keys()):,}"),
            ("largest probability difference", f"{max((abs(d[k] - s[k]) for k in common), default=0.0):.1e}"),
            (f"pairs >= {duck.threshold} (DuckDB, Spark, one side only)",
             f"{len(above_d):,}, {len(above_s):,}, {len(above_d ^ above_s):,}"),
            ("clusters (DuckDB, Spark)", f"{len(set(dc.values())):,}, {len(set(sc.values())):,}"),
            ("records in another cluster", f"{sum(dc[k] != sc.get(k) for k in dc):,}"),
            ("DuckDB: train + resolve, resolve with the saved model", f"{duck_s:.1f} s, {duck_scored_s:.1f} s"),
            ("Spark: session start, resolve with the saved model", f"{session_s:.1f} s, {spark_s:.1f} s "
             f"(predict {on_spark.timings['predict']:.1f} s)"),
        ]
        rows += _golden_rows(spark, records.drop_columns(["person_id"]), memberships(obs), on_spark)
        thresholds = _jw_thresholds(model)
        con = duckdb.connect()
        con.register("std", prepare(records))
        for column in ("first_name_std", "surname_std"):
            values = [r[0] for r in con.sql(f"SELECT DISTINCT {column} FROM std WHERE {column} IS NOT NULL "
                                            f"ORDER BY 1 LIMIT {args.names}").fetchall()]
            n, differ, crossing, largest = _jw_compare(spark, values, thresholds)
            rows.append((f"jaro-winkler on {column} pairs: compared, differ, cross a threshold, largest gap",
                         f"{n:,}, {differ:,}, {crossing:,}, {largest:.1e}"))
        con.close()
        spark.stop()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
