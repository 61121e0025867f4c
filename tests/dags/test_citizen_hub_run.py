"""Airflow really runs the pipeline DAG (dag.test()) on a small sandbox, on both warehouse engines."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_dag_runs_the_pipeline_end_to_end(tmp_path, warehouse_url, airflow_env):
    from hub.demo import running_sandbox
    from warehouse.engine import Warehouse

    env = airflow_env
    migrate = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env,
                             capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    code = """
import json, sys
from airflow.models.dagbag import DagBag
dag = DagBag(sys.argv[1]).get_dag("citizen_hub")
run = dag.test(run_conf={"config": sys.argv[2]})
print(json.dumps({"state": str(run.state),
                  "tasks": sorted({(ti.task_id, str(ti.state)) for ti in run.get_task_instances()})}))
"""
    with running_sandbox(tmp_path / "var", people=300, seed=7, warehouse_url=warehouse_url) as sr:
        settings = sr.settings
        # the simulators' credentials, which running_sandbox put in this process's environment
        env.update({k: v for k, v in os.environ.items() if k.startswith("HUB_")})
        proc = subprocess.run([sys.executable, "-c", code, str(REPO / "dags"), str(settings.config_path)],
                              env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["state"].endswith("success"), out
    assert {t for t, s in out["tasks"] if not s.endswith("success")} == set()
    with Warehouse(settings.warehouse_url) as wh:
        sources = {r[0] for r in wh.rows("SELECT DISTINCT source_system FROM core.person_record")}
        citizens = wh.scalar("SELECT count(*) FROM golden.citizen")
        linked = wh.scalar("SELECT count(*) FROM golden.citizen_link")
        records = wh.scalar("SELECT count(*) FROM core.person_record WHERE deleted_at IS NULL")
    assert sources >= {"finance", "family", "associations", "salesforce", "servicenow"}
    assert 0 < citizens < records == linked
