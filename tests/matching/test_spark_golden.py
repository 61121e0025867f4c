"""The golden build on Spark equals the DuckDB one on a sandbox sample.

:func:`matching.release.compute_release` given a Spark session scores the pairs with Splink on
Spark (:func:`matching.spark.resolve_on_spark`) and runs the golden build — citizen ids,
survivorship with provenance and worklists, foyers — as Spark SQL: the SQL each step generates
once from its rules, written for Spark by sqlglot (:func:`matching.sqlengine.to_spark`) and run by
:class:`matching.spark.SparkEngine`. Without a session every step runs on DuckDB.

On a sandbox commune (its records and the silos' own groupings as memberships), with one model
trained on DuckDB, the two releases are equal table by table, compared as Arrow tables sorted on
their keys: links (citizen ids), citizens, attributes with their provenance, discrepancies, foyers
and their members. Probabilities and match weights are compared to 1e-9 (the two backends' floating
point sums differ in the last digits), the links' explanations likewise after parsing.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from matching import model as mdl
from matching.release import Release, ResolutionInputs, compute_release
from matching.resolve import prepare
from matching.sqlengine import to_spark

PEOPLE = 2_000
SEED = 42
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DIGITS = 9

# each compared table and the columns that identify a row
KEYS = {
    "links": ["record_key"],
    "citizens": ["citizen_id"],
    "attributes": ["citizen_id", "attribute"],
    "discrepancies": ["source_system", "record_key", "attribute"],
    "households": ["household_id"],
    "members": ["household_id", "citizen_id"],
}


@pytest.fixture(scope="module")
def inputs() -> ResolutionInputs:
    """A sandbox commune's records and the silos' own groupings (finance groups, families,
    Salesforce household accounts) as ``core.household_membership``."""
    from bench.golden import memberships
    from sandbox.observations import observe, to_person_records
    from sandbox.population import generate_population

    obs = observe(generate_population(PEOPLE, SEED), SEED)
    return ResolutionInputs(records=to_person_records(obs).drop_columns(["person_id"]), memberships=memberships(obs))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, DIGITS) if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _comparable(table: pa.Table, keys: list[str]) -> pa.Table:
    """``table`` sorted on its keys, floats rounded to DIGITS, explanations parsed and rounded."""
    columns = {}
    for name in table.column_names:
        col = table[name]
        if pa.types.is_floating(col.type):
            col = pc.round(col, DIGITS)
        elif name == "explanation":
            col = pa.array([None if v is None else json.dumps(_rounded(json.loads(v)), sort_keys=True)
                            for v in col.to_pylist()], pa.string())
        columns[name] = col
    return pa.table(columns).sort_by([(k, "ascending") for k in keys])


def _diff(duck: pa.Table, spark: pa.Table, keys: list[str]) -> list[str]:
    """The first rows that differ, for the failure message (no personal data is logged by the hub;
    this is a test's synthetic sample)."""
    d, s = duck.to_pylist(), spark.to_pylist()
    out = [f"rows: DuckDB {len(d)}, Spark {len(s)}"]
    for a, b in zip(d, s, strict=False):
        if a != b:
            out.append(f"{[a[k] for k in keys]}: " + ", ".join(f"{c}: {a[c]!r} != {b[c]!r}" for c in a if a[c] != b[c]))
        if len(out) > 5:
            break
    return out


def test_to_spark_writes_what_sqlglot_leaves_to_us():
    """No Java needed: 128-bit keys become DECIMAL(38, 0) arithmetic, parameters typed literals,
    strip_accents a translate; what has no exact rewrite raises."""
    sql = to_spark("SELECT (CAST(x AS HUGEINT) << 32) + (k >> 120) + (k & 4294967295) AS key, "
                   "strip_accents(n) AS s, $now AS t, $today AS d FROM v",
                   {"now": NOW, "today": NOW.date()})
    assert "HUGEINT" not in sql.upper() and "INT128" not in sql.upper() and "SHIFT" not in sql.upper()
    assert "CAST(x AS DECIMAL(38, 0)) * CAST(4294967296 AS DECIMAL(38, 0))" in sql
    assert f"k DIV CAST({2 ** 120} AS DECIMAL(38, 0))" in sql and "k % CAST(4294967296 AS DECIMAL(38, 0))" in sql
    assert "TRANSLATE(n, '" in sql and "É" in sql
    assert "CAST('2026-12-07T12:00:00+00:00' AS TIMESTAMP)" in sql and "CAST('2026-12-07' AS DATE)" in sql
    with pytest.raises(ValueError, match="mask"):
        to_spark("SELECT k & 6 FROM v")
    with pytest.raises(KeyError, match=r"\$now"):
        to_spark("SELECT $now")
    with pytest.raises(ValueError, match="timezone-aware"):
        to_spark("SELECT $now", {"now": NOW.replace(tzinfo=None)})


@pytest.mark.slow
def test_the_spark_golden_build_equals_the_duckdb_one(spark, inputs, monkeypatch):
    from matching.spark import SparkEngine

    steps: list[str] = []
    create = SparkEngine.create

    def counted(self: SparkEngine, name: str, sql: str, params: dict[str, Any] | None = None) -> None:
        steps.append(name)
        create(self, name, sql, params)

    monkeypatch.setattr(SparkEngine, "create", counted)
    model = mdl.train(prepare(inputs.records))
    on_spark = compute_release(inputs, "run-1", now=NOW, model_json=model, spark=spark)
    # every step of the golden build ran on Spark: ids, survivorship, foyers
    assert {"clusters", "rec", "vals", "top", "contest", "winners", "m", "person", "mem"} <= set(steps)
    assert on_spark.status == "accepted" and on_spark.model_version == mdl.model_version(model)

    duck = _duckdb_build(inputs, on_spark)
    for name, keys in KEYS.items():
        released = getattr(on_spark, name).select(duck[name].column_names)
        d, s = _comparable(duck[name], keys), _comparable(released, keys)
        assert d.schema == s.schema, name
        assert d.equals(s), (name, *_diff(d, s, keys))
    _assert_not_vacuous(on_spark)


def _duckdb_build(inputs: ResolutionInputs, release: Release) -> dict[str, pa.Table]:
    """The golden build on DuckDB from the Spark resolution's clusters (the released links, one
    cluster per citizen), by the same functions without an engine."""
    from matching.households import build_households
    from matching.identity import assign_citizen_ids
    from matching.survivorship import survive

    clusters = release.links.select(["record_key", "citizen_id", "match_probability"]).rename_columns(
        ["record_key", "cluster_id", "match_probability"])
    ids = assign_citizen_ids(clusters)
    links = release.links.select(["record_key"]).join(ids, "record_key").sort_by("record_key")
    golden = survive(inputs.records, links, now=NOW, standardised=prepare(inputs.records))
    households, members = build_households(inputs.memberships, links, golden.citizens, now=NOW, keys=golden.keys)
    built = {"links": links, "citizens": golden.citizens, "attributes": golden.attributes,
             "discrepancies": golden.discrepancies, "households": households, "members": members}
    # the release's links carry the run's columns: compare the ids and what the build computed
    built["links"] = links.select(["record_key", "citizen_id", "match_probability"])
    return {n: t.cast(getattr(release, n).select(t.column_names).schema) for n, t in built.items()}


def _assert_not_vacuous(release: Release) -> None:
    """The sample exercises what the build decides: linked citizens, contested attributes decided
    by each kind of rule, worklists, foyers from silo groupings and from shared addresses."""
    assert release.citizens.num_rows < release.links.num_rows - 100
    rules = set(release.attributes["rule"].to_pylist())
    assert {"unanimous", "certification", "source_priority"} <= rules, rules
    assert release.discrepancies.num_rows > 0
    assert {"silo_grouping", "shared_address"} <= set(release.households["evidence"].to_pylist())
    assert release.members.num_rows > release.households.num_rows
