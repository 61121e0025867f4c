"""Readers and runs side by side on the embedded DuckDB warehouse (issue #15), with real processes.

A real `hub run` runs in a subprocess while this process reads: `hub citizen search` processes in a
loop (every stage boundary of the run passes under them), a reader held open on the published
snapshot and a BI connection on the marts file for the whole run. The run succeeds, every read
answers from the last published release, the access log the readers wrote verifies with one row
per citizen shown, and a writer command during a run stops with exit 75 and a sentence.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from hub.demo import running_sandbox
from hub.pipeline import run
from warehouse import access_log
from warehouse.engine import NoRelease, Warehouse, published_path
from warehouse.marts import bi_file_path

pytestmark = pytest.mark.slow

HUB = str(Path(sys.executable).parent / "hub")
LATEST_RUN = "SELECT run_id FROM golden.resolution_run ORDER BY finished_at DESC LIMIT 1"


def _env(settings) -> dict[str, str]:
    # the simulators' credentials are in this process's environment (start_simulators sets them)
    return {**os.environ, "HUB_CONFIG": str(settings.var_dir / "hub.toml"), "HUB_READER": "agent.test",
            "HUB_WAREHOUSE_URL": settings.warehouse_url}


def _hub(settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([HUB, *args], env=_env(settings), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    var = tmp_path_factory.mktemp("readers") / "var"
    with running_sandbox(var, people=400, seed=5, warehouse_url=f"duckdb:///{var / 'hub.duckdb'}") as sr:
        report = run(sr.settings)  # the first release, published for readers
        assert report.failed == []
        yield sr.settings


def _a_name(settings) -> str:
    with Warehouse.reader(settings.warehouse_url) as wh:
        return wh.scalar("SELECT usage_name FROM golden.citizen WHERE usage_name IS NOT NULL "
                         "ORDER BY record_count DESC, citizen_id LIMIT 1")


def test_no_release_yet_is_a_sentence_not_a_traceback(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text(f'[warehouse]\nurl = "duckdb:///{tmp_path / "hub.duckdb"}"\n', encoding="utf-8")
    out = subprocess.run([HUB, "citizen", "search", "dupont", "--config", str(config)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "no release published yet" in out.stderr and "hub run" in out.stderr
    assert "Traceback" not in out.stderr and "IOException" not in out.stderr
    with pytest.raises(NoRelease):
        Warehouse.reader(f"duckdb:///{tmp_path / 'hub.duckdb'}")


def test_reads_during_a_real_run_work_and_the_run_succeeds(sandbox):
    settings = sandbox
    url = settings.warehouse_url
    name = _a_name(settings)
    with Warehouse.reader(url) as wh:
        access_log.ensure(wh)
        with access_log.opened(wh) as lw:
            logged_before = lw.scalar("SELECT count(*) FROM ops.access_log")

    # held for the whole run: the hub's reader on the snapshot, a BI tool on the marts file
    held = Warehouse.reader(url)
    old_run = held.scalar(LATEST_RUN)
    old_citizens = held.scalar("SELECT count(*) FROM golden.citizen")
    bi = duckdb.connect(str(bi_file_path(Warehouse.reader(url))), read_only=True)
    bi_rows = bi.execute("SELECT count(*) FROM marts.agg_requests").fetchall()

    results: list[subprocess.CompletedProcess] = []
    stop = threading.Event()

    def read_in_a_loop() -> None:
        while not stop.is_set():
            results.append(_hub(settings, "citizen", "search", name, "--json"))

    the_run = subprocess.Popen([HUB, "run"], env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    reader = threading.Thread(target=read_in_a_loop)
    reader.start()
    try:
        _, errs = the_run.communicate(timeout=600)
    finally:
        stop.set()
        reader.join(timeout=120)
    assert the_run.returncode == 0, errs[-2000:]

    assert len(results) >= 2, "the run was too short for any read to overlap it"
    for r in results:
        assert "IOException" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-1500:]
        assert r.returncode == 0, r.stderr[-1500:]
    hits = [json.loads(r.stdout) for r in results]
    assert all(h and any(c.get("usage_name") == name for c in h) for h in hits)

    # after the run: a new reader reads the new release; the one held reads the old one still
    with Warehouse.reader(url) as fresh:
        new_run = fresh.scalar(LATEST_RUN)
        assert fresh.scalar("SELECT count(*) FROM golden.citizen") > 0
    assert new_run != old_run
    assert held.stale() and held.scalar(LATEST_RUN) == old_run
    assert held.scalar("SELECT count(*) FROM golden.citizen") == old_citizens
    assert bi.execute("SELECT count(*) FROM marts.agg_requests").fetchall() == bi_rows
    held.close()
    bi.close()

    # the readers' access log: one row per citizen shown, and the chain verifies
    with Warehouse.reader(url) as wh, access_log.opened(wh) as lw:
        logged = lw.scalar("SELECT count(*) FROM ops.access_log") - logged_before
        readers = {r[0] for r in lw.rows("SELECT DISTINCT reader FROM ops.access_log WHERE seq > :s",
                                         {"s": logged_before})}
    assert logged == sum(len(h) for h in hits)
    assert all(r.endswith("(declared: agent.test)") for r in readers), readers
    with Warehouse.reader(url) as wh:
        assert access_log.verify(wh) >= logged


HOLD_LIKE_A_RUN = """
import sys, time
from hub import runlock
from hub.settings import load_settings
from warehouse.engine import Warehouse
settings = load_settings(sys.argv[1])
with runlock.hold(settings, "run_test_holder"):
    with Warehouse(settings.warehouse_url) as wh:
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def a_run_holding_the_warehouse(sandbox):
    """A process holding the run lock and the warehouse file open, as `hub run` does in a stage."""
    settings = sandbox
    p = subprocess.Popen([sys.executable, "-c", HOLD_LIKE_A_RUN, str(settings.var_dir / "hub.toml"), "60"],
                         env=_env(settings), stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "holding"
    yield settings
    p.kill()
    p.wait()


@pytest.mark.parametrize("command", [
    pytest.param(["decide", "must-link", "finance:1", "finance:2", "--reason", "test"], id="hub-decide"),
    pytest.param(["gdpr", "rectify", "C000001", "--attribute", "email", "--value", "a@example.org",
                  "--proof-level", "1", "--proof", "x"], id="hub-gdpr-rectify"),
])
def test_a_command_opening_the_warehouse_during_a_run_says_so_and_exits_75(a_run_holding_the_warehouse, command):
    settings = a_run_holding_the_warehouse
    started = time.perf_counter()
    out = _hub(settings, *command)
    assert out.returncode == 75, (out.stdout, out.stderr)
    assert "run" in out.stderr and ("in progress" in out.stderr or "being written" in out.stderr), out.stderr
    assert "IOException" not in out.stderr and "Traceback" not in out.stderr
    assert time.perf_counter() - started < 30  # it did not wait for the run


def test_hub_status_while_a_run_holds_the_warehouse_shows_the_runs_and_the_run_in_progress(
        a_run_holding_the_warehouse):
    settings = a_run_holding_the_warehouse
    started = time.perf_counter()
    out = _hub(settings, "status", "--runs", "3")
    text = " ".join(out.stdout.split())
    assert out.returncode == 0, (out.stdout, out.stderr)  # the sandbox's run ended ok, its sources are fresh
    assert "A run is in progress since" in text and "run_test_holder" in text
    assert "Read from the published snapshot" in text and " ok " in text
    assert "IOException" not in out.stderr and "Traceback" not in out.stderr
    assert time.perf_counter() - started < 30  # it did not wait for the run


def test_a_search_while_a_run_holds_the_warehouse_answers_from_the_published_release(a_run_holding_the_warehouse):
    settings = a_run_holding_the_warehouse
    name = _a_name(settings)
    out = _hub(settings, "citizen", "search", name, "--json")
    assert out.returncode == 0, out.stderr
    assert any(c.get("usage_name") == name for c in json.loads(out.stdout))


def test_the_etats_report_while_a_run_holds_the_warehouse_reads_the_published_release(
        a_run_holding_the_warehouse, tmp_path):
    settings = a_run_holding_the_warehouse
    out = _hub(settings, "report", "etats", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "Impayés" in (tmp_path / "etats.html").read_text(encoding="utf-8")


def test_the_snapshot_is_a_whole_database_beside_the_warehouse(sandbox):
    settings = sandbox
    path = Path(settings.warehouse_url.split("duckdb:///", 1)[1])
    snap = published_path(path)
    assert snap.exists() and not snap.with_name(snap.name + ".partial").exists()
    assert not Path(str(snap) + ".wal").exists()
    con = duckdb.connect(str(snap), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM golden.citizen").fetchall()[0][0] > 0
    finally:
        con.close()
