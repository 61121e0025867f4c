"""The same model JSON on Splink's Spark backend agrees with DuckDB on a sandbox sample.

The Spark linker reads the hub's comparison and blocking-rule definitions (Splink creators, which
Splink writes in each backend's SQL) with the model's trained parameters copied on
(:func:`matching.model.trained_settings`): written for DuckDB, they are the model JSON itself.

"Agree", precisely, for one model trained on DuckDB, saved with ``save_model`` and read back:

* blocking: Spark scores exactly the set of pairs DuckDB scores;
* scoring: each pair has the same comparison vector (every ``gamma_*``) and a match probability
  within 1e-9 — except "jaro-winkler edge" pairs, whose vectors differ only in a comparison with
  a jaro-winkler level (Splink's Spark jar and DuckDB implement it separately, so a similarity at
  a level's threshold may fall on either side); at most :data:`JW_EDGE_MAX_SHARE` of the pairs;
* pairs at or above the clustering threshold: the same set, jaro-winkler edge pairs aside;
* clusters: :func:`matching.resolve.resolve` and :func:`matching.spark.resolve_on_spark`, given
  the same human must-link (on a pair scored below the floor) and cannot-link, honour both and give
  every record the same cluster id, linking edge, explanation and match weight (within 1e-6),
  except records of a cluster holding a record of a pair scored differently;
* the model version of the JSON is on every Spark prediction and on the resolution;
* the identity step (:func:`matching.release.compute_release`) given the Spark session
  gives the same citizen to every record as without it.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from matching import model as mdl
from matching.resolve import DEFAULT_THRESHOLD, PAIR_FLOOR, Resolution, prepare, resolve, scoring_model
from sandbox.observations import person_records

REPO = Path(__file__).resolve().parents[2]
# the smallest commune (of 100, 150, ... 300 people at this seed) whose blocked pairs reach the
# jaro-winkler levels of both prénom and name
PEOPLE = 300
SEED = 7
JW_EDGE_MAX_SHARE = 0.01
PROBABILITY_TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    return person_records(PEOPLE, seed=SEED)


@pytest.fixture(scope="module")
def model(sample: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The model trained on DuckDB, as the public artefact: saved JSON, read back."""
    path = mdl.save_model(mdl.train(prepare(sample)), tmp_path_factory.mktemp("model") / "model.json")
    return mdl.load_model(path)


def _jw_gammas(model: dict[str, Any]) -> dict[str, set[int]]:
    """Comparison -> the gamma values of its jaro-winkler levels (Splink counts non-null levels from the last, 0)."""
    out: dict[str, set[int]] = {}
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        jw = {len(levels) - 1 - i for i, lv in enumerate(levels) if "jaro_winkler" in lv["sql_condition"]}
        if jw:
            out[comparison["output_column_name"]] = jw
    return out


def _by_pair(table: pa.Table) -> dict[tuple[str, str], dict[str, Any]]:
    return {(min(r["record_key_l"], r["record_key_r"]), max(r["record_key_l"], r["record_key_r"])): r
            for r in table.to_pylist()}


def _duckdb_predictions(sample: pa.Table, model: dict[str, Any]) -> pa.Table:
    con = duckdb.connect()
    try:
        return mdl.linker(con, prepare(sample), scoring_model(model)).inference.predict().as_pyarrow_table()
    finally:
        con.close()


def _edge_pairs(duck: dict, spark: dict, gammas: list[str], jw_comparisons: set[str]) -> set[tuple[str, str]]:
    """Pairs scored differently: asserted to differ only in jaro-winkler comparisons; returned."""
    edges = set()
    for key, d in duck.items():
        s = spark[key]
        differ = {g.removeprefix("gamma_") for g in gammas if d[g] != s[g]}
        if differ:
            assert differ <= jw_comparisons, (key, differ)
            edges.add(key)
        else:
            assert abs(d["match_probability"] - s["match_probability"]) <= PROBABILITY_TOLERANCE, key
    return edges


_LEVEL_KEYS = ("label_for_charts", "m_probability", "u_probability", "tf_adjustment_column", "tf_adjustment_weight")
_RULES = "blocking_rules_to_generate_predictions"


def _parameters(settings: dict[str, Any]) -> list[Any]:
    return [settings["probability_two_random_records_match"]] + [
        (c["output_column_name"], [({k: lv.get(k) for k in _LEVEL_KEYS}, bool(lv.get("fix_m_probability")),
                                    bool(lv.get("is_null_level"))) for lv in c["comparison_levels"]])
        for c in settings["comparisons"]]


def test_spark_settings_are_the_model_definitions_with_its_parameters(model):
    """No Java needed: the settings a Spark linker gets are the model JSON's definitions and trained
    parameters; written for DuckDB, the same SQL as the JSON; for Spark, no DuckDB SQL left."""
    duck = mdl.trained_settings(model).create_settings_dict("duckdb")
    assert _parameters(duck) == _parameters(model)
    assert [[lv["sql_condition"] for lv in c["comparison_levels"]] for c in duck["comparisons"]] == \
        [[lv["sql_condition"] for lv in c["comparison_levels"]] for c in model["comparisons"]]
    assert [r["blocking_rule"] for r in duck[_RULES]] == [r["blocking_rule"] for r in model[_RULES]]

    spark = mdl.trained_settings(model).create_settings_dict("spark")
    assert _parameters(spark) == _parameters(model)
    sql = [lv["sql_condition"] for c in spark["comparisons"] for lv in c["comparison_levels"]]
    sql += [r["blocking_rule"] for r in spark[_RULES]]
    duckdb_only = ('"', "jaro_winkler_similarity", "list_intersect", "list_has_any", "string_split", "strftime")
    assert not [s for s in sql if any(word in s for word in duckdb_only)]
    assert any("jaro_winkler(" in s for s in sql)  # the function of Splink's Spark jar


def test_a_model_of_other_definitions_is_refused_for_spark(model):
    """A model JSON whose levels are not this version's definitions (e.g. trained by an earlier
    version) is refused with a message, never scored with parameters on the wrong levels."""
    other = copy.deepcopy(model)
    other["comparisons"][0]["comparison_levels"][2]["sql_condition"] = \
        'damerau_levenshtein("first_name_std_l", "first_name_std_r") = 1'
    with pytest.raises(ValueError, match="retrain"):
        mdl.trained_settings(other)


# One test, so that one Spark session serves both checks whatever the xdist scheduling.
@pytest.mark.slow
def test_spark_agrees_with_duckdb(spark, sample, model, tmp_path):
    _assert_same_scores(spark, sample, model)
    _assert_same_clusters(spark, sample, model)
    _assert_same_publication(spark, sample, model, tmp_path)


def _assert_same_publication(spark: Any, sample: pa.Table, model: dict[str, Any], tmp_path: Path) -> None:
    from matching.release import compute_release
    from schemas.contract import PERSON_RECORD
    from warehouse.engine import Warehouse
    from warehouse.resolution import read_inputs

    def spark_tables() -> int:  # each Spark scoring registers the records under a name of its own
        return len(spark.catalog.listTables())

    citizens = {}
    before = spark_tables()
    for backend, session in (("duckdb", None), ("spark", spark)):
        with Warehouse(f"duckdb:///{tmp_path / backend}.duckdb") as wh:
            wh.write(PERSON_RECORD, sample.drop_columns(["person_id"]))
            result = compute_release(read_inputs(wh), "run-1", now=datetime.now(UTC), model_json=model,
                                     spark=session)
            assert result.model_version == mdl.model_version(model)
            citizens[backend] = dict(zip(result.links["record_key"].to_pylist(),
                                         result.links["citizen_id"].to_pylist(), strict=True))
    assert len(set(citizens["duckdb"].values())) < len(citizens["duckdb"])  # some records were linked
    assert spark_tables() > before  # the Spark run did score on Spark
    assert citizens["spark"] == citizens["duckdb"]


def _assert_same_scores(spark: Any, sample: pa.Table, model: dict[str, Any]) -> None:
    from matching.spark import score_on_spark

    predictions = score_on_spark(spark, prepare(sample), model).toArrow()
    duck, on_spark = _by_pair(_duckdb_predictions(sample, model)), _by_pair(predictions)

    assert set(predictions["model_version"].to_pylist()) == {mdl.model_version(model)}
    assert on_spark.keys() == duck.keys()
    jw = _jw_gammas(model)
    gammas = [c for c in predictions.column_names if c.startswith("gamma_")]
    edges = _edge_pairs(duck, on_spark, gammas, set(jw))
    assert len(edges) <= JW_EDGE_MAX_SHARE * len(duck)
    above = {k for k, r in duck.items() if r["match_probability"] >= DEFAULT_THRESHOLD}
    assert above - edges == {k for k, r in on_spark.items() if r["match_probability"] >= DEFAULT_THRESHOLD} - edges
    # not vacuous: the jaro-winkler levels of prénom and name (Splink's Spark jar) were reached
    for name in ("first_name", "surname"):
        assert any(r[f"gamma_{name}"] in jw[name] for r in on_spark.values()), name


def _decisions(plain: Resolution) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """A must-link on the least probable scored pair (below the floor) and a cannot-link inside the
    largest other citizen: human decisions both backends must honour alike."""
    weakest = min(plain.pairs.to_pylist(), key=lambda r: r["match_probability"])
    assert weakest["match_probability"] < PAIR_FLOOR
    must = [(weakest["record_key_l"], weakest["record_key_r"])]
    members: dict[str, list[str]] = {}
    for key, cid in zip(plain.links["record_key"].to_pylist(), plain.links["cluster_id"].to_pylist(), strict=True):
        members.setdefault(cid, []).append(key)
    largest = max((m for m in members.values() if not set(m) & set(must[0])), key=len)
    return must, [(largest[0], largest[1])]


def _assert_same_clusters(spark: Any, sample: pa.Table, model: dict[str, Any]) -> None:
    from matching.spark import resolve_on_spark

    must, cannot = _decisions(resolve(sample, model_json=model, pair_floor=None))
    duck = resolve(sample, model_json=model, must_links=must, cannot_links=cannot)
    on_spark = resolve_on_spark(spark, sample, model, must_links=must, cannot_links=cannot)

    assert on_spark.model_version == duck.model_version == mdl.model_version(model)
    assert on_spark.pairs_scored == duck.pairs_scored
    d_pairs, s_pairs = _by_pair(duck.pairs), _by_pair(on_spark.pairs)
    moved = d_pairs.keys() ^ s_pairs.keys()
    moved |= {k for k in d_pairs.keys() & s_pairs.keys()
              if abs(d_pairs[k]["match_probability"] - s_pairs[k]["match_probability"]) > PROBABILITY_TOLERANCE}
    assert len(moved) <= JW_EDGE_MAX_SHARE * duck.pairs_scored
    d_links = {r["record_key"]: r for r in duck.links.to_pylist()}
    s_links = {r["record_key"]: r for r in on_spark.links.to_pylist()}
    assert d_links.keys() == s_links.keys()
    for links in (d_links, s_links):
        assert links[must[0][0]]["cluster_id"] == links[must[0][1]]["cluster_id"]
        assert links[cannot[0][0]]["cluster_id"] != links[cannot[0][1]]["cluster_id"]
    touched = {k for pair in moved for k in pair}
    touched_clusters = {links[k]["cluster_id"] for links in (d_links, s_links) for k in touched}
    for key, d in d_links.items():
        s = s_links[key]
        if d["cluster_id"] in touched_clusters or s["cluster_id"] in touched_clusters:
            continue
        assert (s["cluster_id"], s["linked_via"], s["explanation"]) == (d["cluster_id"], d["linked_via"],
                                                                         d["explanation"]), key
        assert (s["match_weight"] is None) == (d["match_weight"] is None), key
        assert d["match_weight"] is None or abs(s["match_weight"] - d["match_weight"]) <= 1e-6, key
    # not vacuous: the sample has people known to several silos
    assert len({r["cluster_id"] for r in d_links.values()}) < len(d_links) - 20


PROBE = """
from tests.matching.conftest import require_java

def test_needs_java():
    require_java()
"""


@pytest.mark.parametrize("ci", ["true", ""], ids=["under-CI", "locally"])
def test_absent_java_skips_locally_and_fails_under_ci(ci):
    probe = REPO / "tests" / "matching" / f"test_probe_no_java_{os.getpid()}_{ci or 'local'}.py"
    probe.write_text(PROBE, encoding="utf-8")
    try:
        env = dict(os.environ, CI=ci, JAVA_HOME="/nonexistent-java-home")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(probe)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    out = proc.stdout
    if ci:
        assert proc.returncode == 1 and "1 failed" in out, out[-1500:]
        assert "under CI a server test may not be skipped" in out
    else:
        assert proc.returncode == 0 and "1 skipped" in out, out[-1500:]
        assert "Java (needed by Spark) is not reachable" in out
