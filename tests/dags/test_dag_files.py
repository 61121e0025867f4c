"""DAG files follow the house rules: one DAG per file named after it, documented, tagged, retried,
and nothing heavy or project-specific imported at module level."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
ALLOWED_MODULE_IMPORTS = {"airflow.sdk", "pendulum", "datetime", "__future__"}


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


def test_dag_bag_parses_with_the_repository_config(airflow_env):
    code = """
import json, sys
from airflow.models.dagbag import DagBag
bag = DagBag(sys.argv[1])
out = {"errors": {k: str(v)[:300] for k, v in bag.import_errors.items()}, "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "file": dag.fileloc, "doc": bool(dag.doc_md), "tags": sorted(dag.tags),
        "retries": [t.retries for t in dag.tasks],
    }
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code, str(REPO / "dags")], env=airflow_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["errors"] == {}
    assert set(out["dags"]) == {p.stem for p in DAG_FILES}
    for dag_id, d in out["dags"].items():
        assert Path(d["file"]).stem == dag_id
        assert d["doc"] and d["tags"]
        assert min(d["retries"]) >= 2
