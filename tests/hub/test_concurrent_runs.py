"""Two `hub run` started at once: the second says which run is writing and exits 75 having done
nothing; the first completes and the warehouse is as one clean run leaves it. On both engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.cli import RUN_LOCKED_EXIT
from hub.demo import running_sandbox
from warehouse.engine import Warehouse

pytestmark = pytest.mark.slow

HUB = str(Path(sys.executable).parent / "hub")


def _holds_the_lock(settings, pid: int) -> bool:
    """Whether the process ``pid`` holds the run lock (read passively: the test never takes it)."""
    if settings.warehouse_url.startswith("duckdb"):
        lock = Path(settings.var_dir) / "run.lock"
        try:
            return json.loads(lock.read_text() or "{}").get("pid") == pid
        except (OSError, ValueError):
            return False
    import psycopg

    with psycopg.connect(settings.warehouse_url, autocommit=True) as con:
        apps = [r[0] for r in con.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()").fetchall()]
    return any(f" {pid}@" in (app or "") for app in apps)  # "hub <run> <what> <pid>@<host>"


def test_a_second_run_started_meanwhile_stops_and_says_who_is_running(tmp_path, warehouse_url):
    with running_sandbox(tmp_path / "var", people=300, seed=21, warehouse_url=warehouse_url) as sr:
        settings = sr.settings
        cmd = [HUB, "run", "--config", str(settings.config_path)]
        env = dict(os.environ)  # the simulators' credentials, which running_sandbox exported
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            while not _holds_the_lock(settings, first.pid):
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "the first run never took the lock"
                time.sleep(0.1)
            second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            _out, err = first.communicate(timeout=600)
        finally:
            if first.poll() is None:
                first.kill()
    assert second.returncode == RUN_LOCKED_EXIT, (second.stdout, second.stderr)
    message = " ".join(second.stderr.split())
    assert "another run is writing to the warehouse" in message
    assert f"pid {first.pid}" in message and os.uname().nodename[:10] in message
    assert "started 20" in message and "stopped before writing anything" in message
    assert "Traceback" not in second.stderr
    assert first.returncode == 0, err[-3000:]

    with Warehouse(settings.warehouse_url) as wh:
        runs = {r[0] for r in wh.rows("SELECT DISTINCT run_id FROM ops.source_run")}
        published = wh.scalar("SELECT count(*) FROM golden.resolution_run")
        citizens = wh.scalar("SELECT count(*) FROM golden.citizen")
        linked = wh.scalar("SELECT count(*) FROM golden.citizen_link")
        records = wh.scalar("SELECT count(*) FROM core.person_record WHERE deleted_at IS NULL")
    assert len(runs) == 1 and published == 1  # the second run recorded nothing
    assert runs.pop() in message  # and named the run that was writing
    assert 0 < citizens < records == linked
