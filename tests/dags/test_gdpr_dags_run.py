"""Airflow really runs the GDPR DAGs (dag.test()): gdpr_erasure erases a canary person loaded from the
finance silo, gdpr_purge (dry run, then for real) applies the register's retention; only ids and counts
reach XCom and the task logs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.logged import log_query

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
NEEDLES = [b"zqxgdprcanary", b"zqx.gdpr.canary"]

pytestmark = pytest.mark.slow

RUN = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(sys.argv[1])
assert not bag.import_errors, bag.import_errors
out = {}
for dag_id, conf in (("gdpr_erasure", {"citizen_id": sys.argv[2], "reason": "art. 17-1-a (test)"}),
                     ("gdpr_purge", {"dry_run": True}), ("gdpr_purge", {"dry_run": False})):
    run = bag.get_dag(dag_id).test(run_conf=conf)
    out.setdefault(dag_id, []).append({"state": str(run.state),
                                       "tasks": sorted((ti.task_id, str(ti.state)) for ti in run.get_task_instances())})
print(json.dumps(out))
"""


def test_erasure_and_purge_dags_run_and_keep_values_out_of_airflow(tmp_path, airflow_env):
    import sqlite3

    from hub.demo import running_sandbox
    from hub.pipeline import run
    from warehouse.engine import Warehouse

    env = airflow_env
    home = Path(env["AIRFLOW_HOME"])
    for cmd in (["db", "migrate"], ["pools", "import", str(REPO / "airflow_pools.json")]):
        proc = subprocess.run([AIRFLOW, *cmd], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    with running_sandbox(tmp_path / "var", people=200, seed=3) as sr:
        settings = sr.settings
        db = sqlite3.connect(sr.sandbox.finance_url.removeprefix("sqlite:///"))
        with db:
            tid = db.execute("SELECT id FROM tiers WHERE NOT supprime ORDER BY id LIMIT 1").fetchall()[0][0]
            db.execute("UPDATE tiers SET nom = 'ZQXGDPRCANARY', email = 'zqx.gdpr.canary@example.org' WHERE id = ?",
                       (tid,))
        db.close()
        run(settings)
        with Warehouse(settings.warehouse_url) as wh:
            cid = wh.scalar("SELECT citizen_id FROM golden.citizen_link WHERE record_key = :k",
                            {"k": f"finance:tiers/{tid}"})
        env["HUB_CONFIG"] = str(settings.config_path)
        proc = subprocess.run([sys.executable, "-c", RUN, str(REPO / "dags"), cid], env=env, capture_output=True,
                              text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for dag_id, runs in out.items():
        for r in runs:
            assert r["state"].endswith("success"), (dag_id, r)
    with Warehouse(settings.warehouse_url) as wh:
        assert wh.scalar("SELECT count(*) FROM golden.citizen WHERE citizen_id = :c", {"c": cid}) == 0
        assert wh.scalar("SELECT count(*) FROM gdpr.suppression") > 0
        ops = {r[0] for r in log_query(wh, "rows", "SELECT DISTINCT operation FROM ops.access_log")}
    assert "delete" in ops
    assert list((settings.var_dir / "gdpr" / "purges").glob("purge-*.json"))
    logs = [p for p in home.rglob("*") if p.is_file()]
    leaked = {str(p.relative_to(home)) for p in logs if any(n in p.read_bytes().lower() for n in NEEDLES)}
    assert leaked == set(), f"canary in Airflow's files: {leaked}"
    assert not any(n in (proc.stdout + proc.stderr).lower().encode() for n in NEEDLES)
