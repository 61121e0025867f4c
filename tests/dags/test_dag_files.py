"""DAG integrity: every file in dags/ parses without import errors (fast), each DAG is named after
its file, documented and tagged, every task retries with backoff and has a timeout, and nothing
heavy or project-specific is imported at module level. The pipeline's DAGs follow the settings:
one per source on its own schedule, publishing its Asset; the resolution scheduled on them."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
# standard library helpers a DAG file may need to read its schedule; nothing of the project
ALLOWED_MODULE_IMPORTS = {"airflow.sdk", "pendulum", "datetime", "__future__", "os", "tomllib"}
PARSE_BUDGET_S = 2.0

BAG = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
import airflow.sdk  # warm: the budget is the file's own cost, not Airflow's import
out = {"errors": {}, "dags": {}, "parse_s": {}}

def _uris(cond):
    if cond is None:
        return []
    if hasattr(cond, "objects"):
        return sorted(u for o in cond.objects for u in _uris(o))
    return [cond.uri]

for path in sys.argv[1:]:
    started = time.perf_counter()
    bag = DagBag(path)
    out["parse_s"][path] = time.perf_counter() - started
    out["errors"].update({k: str(v)[-600:] for k, v in bag.import_errors.items()})
    for dag_id, dag in bag.dags.items():
        tl = dag.timetable
        out["dags"][dag_id] = {
            "file": dag.fileloc, "doc": dag.doc_md or "", "tags": sorted(dag.tags),
            "schedule": getattr(tl, "expression", None) or getattr(tl, "_expression", None) or type(tl).__name__,
            "consumes": _uris(getattr(tl, "asset_condition", None)),
            "tasks": {t.task_id: {"retries": t.retries, "backoff": float(t.retry_exponential_backoff),
                                  "timeout_s": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                                  "pool": t.pool, "outlets": sorted(a.uri for a in t.outlets),
                                  "on_failure": bool(t.on_failure_callback)}
                      for t in dag.tasks},
        }
print(json.dumps(out))
"""


def _bag(env: dict[str, str], *paths: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", BAG, *map(str, paths)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_only_airflow_sdk_and_pendulum_at_module_level(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        assert set(names) <= ALLOWED_MODULE_IMPORTS, f"{path.name}: module-level import of {names}"


@pytest.fixture(scope="module")
def bag(module_airflow_env) -> dict:
    return _bag(module_airflow_env, *DAG_FILES)


def test_every_dag_file_parses_without_errors_within_budget(bag):
    assert bag["errors"] == {}
    slow = {Path(p).name: round(s, 2) for p, s in bag["parse_s"].items() if s > PARSE_BUDGET_S}
    assert not slow, f"DAG files over {PARSE_BUDGET_S} s to parse: {slow}"


def test_every_dag_is_named_after_its_file_documented_and_tagged(bag):
    stems = {Path(d["file"]).stem for d in bag["dags"].values()}
    assert stems == {p.stem for p in DAG_FILES}  # every file holds DAGs; no example DAG loaded
    for dag_id, d in bag["dags"].items():
        stem = Path(d["file"]).stem
        # one DAG per file named after it, or DAGs a file generates: <file>__<what>
        assert dag_id == stem or dag_id.startswith(f"{stem}__"), dag_id
        assert d["doc"].strip() and d["tags"], dag_id


def test_every_task_retries_and_has_a_timeout(bag):
    for dag_id, d in bag["dags"].items():
        for task_id, t in d["tasks"].items():
            where = f"{dag_id}.{task_id}"
            assert t["retries"] >= 2, where
            assert t["timeout_s"] and t["timeout_s"] > 0, f"{where}: no execution_timeout"
            if dag_id.startswith("citizen_hub"):
                # a multiplier since Airflow 3.2: True (== 1) would mean a constant delay
                assert t["backoff"] > 1.0, f"{where}: retry_exponential_backoff is not > 1"


def test_one_dag_per_source_on_its_schedule_publishing_its_asset(bag):
    dags = bag["dags"]
    ingest = {k: v for k, v in dags.items() if k.startswith("citizen_hub__ingest_")}
    assert set(ingest) == {"citizen_hub__ingest_finance", "citizen_hub__ingest_family",
                           "citizen_hub__ingest_archives"}
    assert ingest["citizen_hub__ingest_finance"]["schedule"] == "0 2 * * *"  # [sources.finance] schedule
    assert ingest["citizen_hub__ingest_family"]["schedule"] == "0 0 * * *"  # unset: @daily
    assert ingest["citizen_hub__ingest_archives"]["schedule"] == "NullTimetable"  # "manual"
    for name, d in ingest.items():
        source = name.removeprefix("citizen_hub__ingest_")
        assert d["tasks"]["ingest"]["outlets"] == [f"hub://raw/{source}"]
        assert d["tasks"]["ingest"]["pool"] == "hub_warehouse"
        assert f"source:{source}" in d["tags"]
        assert all(t["on_failure"] for t in d["tasks"].values())


def test_the_resolution_runs_when_any_source_changed_and_publishes_the_release(bag):
    d = bag["dags"]["citizen_hub__resolve"]
    assert d["schedule"] == "AssetTriggeredTimetable"
    assert d["consumes"] == ["hub://raw/archives", "hub://raw/family", "hub://raw/finance"]
    assert d["tasks"]["resolve"]["outlets"] == ["hub://golden/release"]
    assert {d["tasks"][t]["pool"] for t in ("canonical", "resolve")} == {"hub_warehouse"}
    assert all(t["on_failure"] for t in d["tasks"].values())


def test_without_settings_the_import_error_says_what_to_set(airflow_env, tmp_path):
    env = dict(airflow_env, HUB_CONFIG=str(tmp_path / "nowhere.toml"))
    out = _bag(env, REPO / "dags" / "citizen_hub.py")
    assert out["dags"] == {}
    (error,) = out["errors"].values()
    assert "nowhere.toml" in error and "set HUB_CONFIG" in error


def test_the_repository_declares_its_pools():
    pools = json.loads((REPO / "airflow_pools.json").read_text(encoding="utf-8"))
    assert pools["hub_warehouse"]["slots"] == 1  # DuckDB: a single writer
    source = (REPO / "dags" / "citizen_hub.py").read_text(encoding="utf-8")
    assert 'WRITER_POOL = "hub_warehouse"' in source
