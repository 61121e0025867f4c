"""Airflow really runs the pipeline's DAGs (dag.test()) on a small sandbox, on both warehouse
engines: every source's DAG, then the resolution DAG; each publishes its Asset. Canary values put
in a source reach the warehouse but none of them appears in XCom, Asset events, the metadata
database or any task log."""

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")

pytestmark = pytest.mark.slow

# A person in the finance silo written with canary values, and one whose malformed e-mail sends
# her to quarantine (quarantine payloads are the other place values could leak from).
CANARY_PERSON = {"nom": "ZQXCANARYNOM", "prenom": "Zqxcanaryprenom", "email": "zqx.canary.4711@example.org",
                 "telephone": "06 47 11 47 11", "adresse": "4711 rue Zqxcanaryvoie"}
CANARY_QUARANTINED = {"nom": "ZQXCANARYQUAR", "prenom": "Zqxcanaryprenom", "email": "zqx.canary.bad@@example"}
NEEDLES = [b"zqxcanary", b"zqx.canary", b"47114711", b"47 11 47 11"]

RUN_DAGS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent
from airflow.utils.session import create_session

bag = DagBag(sys.argv[1])
assert not bag.import_errors, bag.import_errors
ingest = sorted(d for d in bag.dags if d.startswith("citizen_hub__ingest_"))
out = {"runs": {}, "events": []}
for dag_id in ingest + ["citizen_hub__resolve"]:
    run = bag.get_dag(dag_id).test()
    out["runs"][dag_id] = {"state": str(run.state),
                           "tasks": sorted({(ti.task_id, str(ti.state)) for ti in run.get_task_instances()})}
with create_session() as session:
    out["events"] = sorted({(e.asset.uri, e.source_dag_id) for e in session.query(AssetEvent).all()})
print(json.dumps(out))
"""


def _plant_canaries(finance_url: str) -> None:
    db = sqlite3.connect(finance_url.removeprefix("sqlite:///"))
    with db:
        ids = [r[0] for r in db.execute("SELECT id FROM tiers WHERE NOT supprime ORDER BY id LIMIT 2")]
        for row_id, values in zip(ids, (CANARY_PERSON, CANARY_QUARANTINED), strict=True):
            cols = ", ".join(f"{c} = ?" for c in values)
            db.execute(f"UPDATE tiers SET {cols}, updated_at = CURRENT_TIMESTAMP WHERE id = ?",
                       [*values.values(), row_id])
    db.close()


def _leaks(blob: bytes) -> list[str]:
    low = blob.lower()
    return [n.decode() for n in NEEDLES if n in low]


def test_the_dags_run_the_pipeline_end_to_end_and_leak_no_canary(tmp_path, warehouse_url, airflow_env):
    from hub.demo import running_sandbox
    from warehouse import ops
    from warehouse.engine import Warehouse

    env = airflow_env
    home = Path(env["AIRFLOW_HOME"])
    for cmd in (["db", "migrate"], ["pools", "import", str(REPO / "airflow_pools.json")]):
        proc = subprocess.run([AIRFLOW, *cmd], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    with running_sandbox(tmp_path / "var", people=300, seed=7, warehouse_url=warehouse_url) as sr:
        settings = sr.settings
        _plant_canaries(sr.sandbox.finance_url)
        env["HUB_CONFIG"] = str(settings.config_path)
        # the simulators' credentials, which running_sandbox put in this process's environment
        env.update({k: v for k, v in os.environ.items() if k.startswith("HUB_") and k != "HUB_CONFIG"})
        proc = subprocess.run([sys.executable, "-c", RUN_DAGS, str(REPO / "dags")], env=env,
                              capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    sources = {s.name for s in settings.sources}
    assert set(out["runs"]) == {f"citizen_hub__ingest_{s}" for s in sources} | {"citizen_hub__resolve"}
    for dag_id, run in out["runs"].items():
        assert run["state"].endswith("success"), (dag_id, run)
        assert {t for t, s in run["tasks"] if not s.endswith("success")} == set(), (dag_id, run)
    assert {tuple(e) for e in out["events"]} == (
        {(f"hub://raw/{s}", f"citizen_hub__ingest_{s}") for s in sources}
        | {("hub://golden/release", "citizen_hub__resolve")})

    with Warehouse(settings.warehouse_url) as wh:
        loaded = {r[0] for r in wh.rows("SELECT DISTINCT source_system FROM core.person_record")}
        citizens = wh.scalar("SELECT count(*) FROM golden.citizen")
        linked = wh.scalar("SELECT count(*) FROM golden.citizen_link")
        records = wh.scalar("SELECT count(*) FROM core.person_record WHERE deleted_at IS NULL")
        canary_citizens = wh.scalar("SELECT count(*) FROM golden.citizen WHERE upper(birth_name) = 'ZQXCANARYNOM' "
                                    "OR upper(usage_name) = 'ZQXCANARYNOM'")
        canary_quarantined = wh.scalar("SELECT count(*) FROM ops.quarantine "
                                       "WHERE upper(payload) LIKE '%ZQXCANARYQUAR%'")
        runs = {r["dag_id"]: r for r in ops.runs(wh, 50)}
        reports = {dag_id: ops.run_report(wh, r["run_id"]) for dag_id, r in runs.items()}
    # every DAG run is a run in ops.pipeline_run, as `hub run`'s are: how it ended, its steps' seconds,
    # its rows per source, its release
    assert set(runs) == set(out["runs"])
    assert {r["status"] for r in runs.values()} == {"ok"}
    for source in sources:
        r, rep = runs[f"citizen_hub__ingest_{source}"], reports[f"citizen_hub__ingest_{source}"]
        assert set(r["timings"]) == {f"ingest {source}"} and r["finished_at"] >= r["started_at"]
        assert {x["source_system"] for x in rep["rows"] if x["stage"] == "extract"} == {source}
        assert all(x["ok"] for x in rep["rows"])
    resolved = reports["citizen_hub__resolve"]
    assert set(runs["citizen_hub__resolve"]["timings"]) == {"canonical", "resolve"}
    assert resolved["release"] is not None and resolved["release"]["citizens_after"] == citizens
    assert {x["stage"] for x in resolved["rows"]} == {"quality"}
    assert any(q["source_system"] == "finance" for q in reports["citizen_hub__ingest_finance"]["quarantine"]
               + resolved["quarantine"])
    # and `hub status` shows them
    from hub.status import status

    shown = status(settings, runs=20)
    assert {r["dag_id"] for r in shown["runs"]} == set(out["runs"]) and shown["in_progress"] is None
    assert loaded >= {"finance", "family", "associations", "salesforce", "servicenow"}
    assert 0 < citizens < records == linked
    # the canaries went all the way through: their absence below means something
    assert canary_citizens == 1 and canary_quarantined >= 1

    output = proc.stdout.encode() + proc.stderr.encode()
    logs = [p for p in home.rglob("*") if p.is_file() and p.suffix != ".db"]
    # the tasks' logs were captured (so finding nothing in them means something)
    everything = output + b"".join(p.read_bytes() for p in logs)
    assert b"ingested finance" in everything and b"citizen_hub__resolve" in everything
    assert _leaks(output) == [], "canary in the DAG runs' output"
    leaked = {str(p.relative_to(home)): found for p in logs if (found := _leaks(p.read_bytes()))}
    assert leaked == {}, f"canary in task logs: {leaked}"
    # XCom, Asset events, rendered fields, anything else Airflow kept: the metadata database itself
    meta = home / "var" / "airflow" / "airflow.db"
    assert meta.exists() and _leaks(meta.read_bytes()) == [], "canary in Airflow's metadata database"
    with sqlite3.connect(meta) as db:
        xcoms = db.execute("SELECT count(*) FROM xcom").fetchone()[0]
    assert xcoms > 0  # the steps' counts did travel
    assert not re.search(r"ZQXCANARY", json.dumps(out), re.I)
