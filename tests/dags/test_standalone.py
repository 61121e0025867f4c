"""`airflow standalone` with the repository's airflow.cfg: two sources' DAGs run, their Assets
schedule the resolution DAG, and the release is published. The test stops Airflow itself (its
whole process group) whatever happens."""

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")
SOURCES = ("finance", "family")  # a SQL silo and an HTTP API, each resolvable on its own

# Minutes of a whole Airflow on two shared cores, and under load it outlived CI's patience (a run
# stuck past 15 minutes): run it on purpose, HUB_TEST_AIRFLOW_STANDALONE=1 .venv/bin/python -m pytest <this file>
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("HUB_TEST_AIRFLOW_STANDALONE"),
                       reason="airflow standalone end to end: set HUB_TEST_AIRFLOW_STANDALONE=1 to run it"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _airflow(env: dict[str, str], *args: str) -> None:
    proc = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (args, proc.stderr[-2000:])


def _runs(db: Path) -> list[tuple[str, str, str]]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT dag_id, run_type, state FROM dag_run").fetchall()
    except sqlite3.Error:
        return []


def _stop(proc: subprocess.Popen) -> None:
    """Stop standalone and every process it started (they share its process group)."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 15)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)


def test_standalone_schedules_the_resolution_from_the_sources_assets(tmp_path, airflow_env):
    from hub.demo import running_sandbox
    from hub.settings import render_toml
    from warehouse.engine import Warehouse

    env = airflow_env
    home = Path(env["AIRFLOW_HOME"])
    with running_sandbox(tmp_path / "var", people=200, seed=13) as sr:
        full = sr.settings
        settings_path = tmp_path / "hub.toml"
        settings_path.write_text(render_toml({
            "hub": {"var_dir": str(full.var_dir)},
            "warehouse": {"url": full.warehouse_url},
            # "manual": the test triggers them (a cron schedule would also start a run at unpause)
            "sources": {s.name: {"kind": s.kind, **s.params, "schedule": "manual"}
                        for s in full.sources if s.name in SOURCES},
        }), encoding="utf-8")
        port = _free_port()
        # the simulators' credentials, which running_sandbox put in this process's environment
        env.update({k: v for k, v in os.environ.items() if k.startswith("HUB_") and k != "HUB_CONFIG"})
        env.update({"HUB_CONFIG": str(settings_path), "AIRFLOW__API__PORT": str(port),
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
                    # one secret for every component (else each makes its own and tasks get 403)
                    "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(24),
                    # standalone starts its components as `airflow …` from the PATH
                    "PATH": f"{Path(AIRFLOW).parent}{os.pathsep}{env.get('PATH', '')}"})
        _airflow(env, "db", "migrate")
        _airflow(env, "pools", "import", str(REPO / "airflow_pools.json"))
        _airflow(env, "dags", "reserialize")
        dags = [f"citizen_hub__ingest_{s}" for s in SOURCES] + ["citizen_hub__resolve"]
        for source in SOURCES:  # queued: the repository's airflow.cfg pauses new DAGs
            _airflow(env, "dags", "trigger", f"citizen_hub__ingest_{source}")

        log = (tmp_path / "standalone.log").open("w")
        proc = subprocess.Popen([AIRFLOW, "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        db = home / "var" / "airflow" / "airflow.db"
        try:
            # tasks report to the API server: unpause once it answers (it starts last, slowly)
            deadline = time.monotonic() + 300
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline and proc.poll() is None, "the API server never came up"
                    time.sleep(2)
            for dag_id in dags:
                _airflow(env, "dags", "unpause", dag_id)
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                runs = _runs(db)
                ingested = {d for d, _, s in runs if d.startswith("citizen_hub__ingest_") and s == "success"}
                resolved = [(t, s) for d, t, s in runs if d == "citizen_hub__resolve"]
                failed = [r for r in runs if r[2] == "failed"]
                if failed or (len(ingested) == len(SOURCES) and ("asset_triggered", "success") in resolved
                              and all(s in ("success", "failed") for _, s in resolved)):
                    break
                assert proc.poll() is None, "airflow standalone stopped"
                # a component that could not start: standalone itself keeps running
                assert "Exception in thread" not in (tmp_path / "standalone.log").read_text(errors="replace")
                time.sleep(5)
        finally:
            _stop(proc)
            log.close()
    runs = _runs(db)
    tail = (tmp_path / "standalone.log").read_text(errors="replace")[-3000:]
    assert not [r for r in runs if r[2] == "failed"], (runs, tail)
    assert {d for d, _, s in runs if s == "success"} == set(dags), (runs, tail)
    assert ("citizen_hub__resolve", "asset_triggered", "success") in runs, (runs, tail)
    with Warehouse(full.warehouse_url) as wh:
        sources = {r[0] for r in wh.rows("SELECT DISTINCT source_system FROM core.person_record")}
        citizens = wh.scalar("SELECT count(*) FROM golden.citizen")
    assert sources == set(SOURCES) and citizens > 0
