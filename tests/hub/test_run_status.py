"""`hub status`'s staleness rule, what it reads during a run, aborted runs found by the next start, and
two runs started at the same instant on PostgreSQL: one publishes, the other stops having written nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.cli import RUN_LOCKED_EXIT
from hub.status import stale_since
from warehouse import ops
from warehouse.engine import Warehouse

HUB = str(Path(sys.executable).parent / "hub")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("schedule", "last_ok", "now", "stale"), [
    ("@daily", "2026-12-06 02:00", "2026-12-07 11:59", None),  # due at midnight, half a day of grace
    ("@daily", "2026-12-06 02:00", "2026-12-07 12:01", "2026-12-07 12:00"),
    ("0 2 * * *", "2026-12-06 02:05", "2026-12-07 13:59", None),
    ("0 2 * * *", "2026-12-06 02:05", "2026-12-07 14:01", "2026-12-07 14:00"),
    ("0 * * * *", "2026-12-07 10:00", "2026-12-07 11:31", "2026-12-07 11:30"),
    ("manual", "2020-01-01 00:00", "2026-12-07 12:00", None),
], ids=["daily-within-grace", "daily-stale", "cron-within-grace", "cron-stale", "hourly-stale", "manual-never"])
def test_a_source_is_stale_when_a_due_load_and_half_an_interval_passed(schedule, last_ok, now, stale):
    assert stale_since(schedule, at(last_ok), at(now)) == (at(stale) if stale else None)


def test_a_source_never_loaded_is_stale_unless_manual():
    now = at("2026-12-07 12:00")
    assert stale_since("@daily", None, now) == now
    assert stale_since("manual", None, now) is None


def test_runs_left_running_are_marked_aborted_by_the_next_start(warehouse_url):
    with Warehouse(warehouse_url) as wh:
        assert ops.start_run(wh, "run_a") == []
        ops.finish_run(wh, "run_a", "ok", timings={"resolve": 1.5})
        assert ops.start_run(wh, "run_b") == []  # its process then dies: the row stays running
        assert ops.start_run(wh, "run_c") == ["run_b"]
        runs = {r["run_id"]: r for r in ops.runs(wh, 10)}
    assert runs["run_a"]["status"] == "ok" and runs["run_a"]["timings"] == {"resolve": 1.5}
    assert runs["run_b"]["status"] == "aborted" and "run_c found it so" in runs["run_b"]["message"]
    assert runs["run_b"]["finished_at"] is not None
    assert runs["run_c"]["status"] == "running"


@pytest.mark.slow
def test_two_runs_started_at_the_same_instant_cannot_both_publish(tmp_path, postgres_url):
    from hub.demo import running_sandbox

    with running_sandbox(tmp_path / "var", people=150, seed=31, warehouse_url=postgres_url) as sr:
        cmd = [HUB, "run", "--config", str(sr.settings.config_path)]
        env = dict(os.environ)  # the simulators' credentials, which running_sandbox exported
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outs = [p.communicate(timeout=900) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, RUN_LOCKED_EXIT], [o[1][-2000:] for o in outs]
    loser = outs[[p.returncode for p in procs].index(RUN_LOCKED_EXIT)][1]
    assert "another run is writing to the warehouse" in " ".join(loser.split())
    with Warehouse(postgres_url) as wh:
        releases = wh.rows("SELECT run_id, previous_run_id FROM golden.resolution_release")
        runs = ops.runs(wh, 10)
        source_runs = {r[0] for r in wh.rows("SELECT DISTINCT run_id FROM ops.source_run")}
    assert len(releases) == 1 and releases[0][1] is None  # one release, against no previous one
    assert [r["status"] for r in runs] == ["ok"] and source_runs == {releases[0][0]} == {runs[0]["run_id"]}


def test_hub_status_prints_runs_failures_and_stale_sources(tmp_path):
    from click.testing import CliRunner

    from hub.cli import main

    url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    config = tmp_path / "hub.toml"
    config.write_text(f'[warehouse]\nurl = "{url}"\n\n[sources.compta]\nkind = "finance"\nurl = "sqlite:///x"\n'
                      'schedule = "0 2 * * *"\n\n[sources.portail]\nkind = "family"\nbase_url = "http://x"\n'
                      'schedule = "manual"\n', encoding="utf-8")
    with Warehouse(url) as wh:
        ops.start_run(wh, "run_1")
        ops.record_source_runs(wh, "run_1", [
            {"source_system": "compta", "entity": "tiers", "rows_read": 3, "rows_loaded": 3},
            {"source_system": "portail", "entity": "*", "rows_read": 0, "rows_loaded": 0, "status": "failed",
             "error": "portail: http://x: cannot reach the family portal"}])
        ops.finish_run(wh, "run_1", "partial", failed=[{"source": "portail", "error": "cannot reach"}])
    result = CliRunner().invoke(main, ["status", "--config", str(config)], terminal_width=200)
    text = " ".join(result.output.split())
    assert result.exit_code == 1, result.output  # the last run was partial
    assert "run_1 partial" in text and "portail" in text
    assert "failed: portail: http://x: cannot reach the family portal" in text
    assert "compta 0 2 * * *" in text and "fresh" in text  # loaded just now
    assert "manual" in text and "never loaded" not in text  # a manual source is never stale


# A run in another process, as `hub run` holds things while it writes: the run lock, the warehouse
# open for writing (on DuckDB no other process can open that file), its own row recorded running.
RUN_IN_PROGRESS = """
import sys, time
from types import SimpleNamespace
from hub.runlock import hold
from warehouse import ops
from warehouse.engine import Warehouse
settings = SimpleNamespace(warehouse_url=sys.argv[1], var_dir=sys.argv[2])
with hold(settings, "run_live"):
    with Warehouse(sys.argv[1]) as wh:
        ops.start_run(wh, "run_live")
        print("held", flush=True)
        time.sleep(600)
"""


def test_hub_status_during_a_run_reads_what_readers_read_and_names_the_run(tmp_path, warehouse_url):
    from click.testing import CliRunner

    from hub.cli import main
    from warehouse.snapshot import publish

    var = tmp_path / "var"
    config = tmp_path / "hub.toml"
    config.write_text(f'[warehouse]\nurl = "{warehouse_url}"\n\n[hub]\nvar_dir = "{var}"\n\n'
                      '[sources.compta]\nkind = "finance"\nurl = "sqlite:///x"\n', encoding="utf-8")
    with Warehouse(warehouse_url) as wh:
        ops.start_run(wh, "run_done")
        ops.record_source_runs(wh, "run_done", [
            {"source_system": "compta", "entity": "tiers", "rows_read": 3, "rows_loaded": 3}])
        ops.finish_run(wh, "run_done", "ok")
    publish(warehouse_url)  # what the run that ended published for readers
    holder = subprocess.Popen([sys.executable, "-c", RUN_IN_PROGRESS, warehouse_url, str(var)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        result = CliRunner().invoke(main, ["status", "--config", str(config)], terminal_width=200)
        as_json = CliRunner().invoke(main, ["status", "--json", "--config", str(config)])
    finally:
        holder.kill()
        holder.wait()
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "run_done ok" in text and "compta" in text and "fresh" in text
    assert f"A run is in progress since {datetime.now(UTC):%Y-%m-%d}" in text
    assert f"run_live, run, pid {holder.pid}" in text
    st = json.loads(as_json.output)
    assert st["in_progress"]["run_id"] == "run_live" and str(st["in_progress"]["pid"]) == str(holder.pid)
    if warehouse_url.startswith("duckdb"):  # the run's file is held: the published snapshot is read
        assert st["read_from"] == "snapshot" and "Read from the published snapshot" in text
        assert [r["run_id"] for r in st["runs"]] == ["run_done"]
    else:  # PostgreSQL: the database itself (MVCC), the run in progress with its row
        assert st["read_from"] == "warehouse"
        assert [(r["run_id"], r["status"]) for r in st["runs"]] == [("run_live", "running"), ("run_done", "ok")]


def test_hub_status_after_a_run_reads_the_warehouse_and_no_run_is_in_progress(tmp_path):
    from hub.settings import load_settings
    from hub.status import status

    url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    config = tmp_path / "hub.toml"
    config.write_text(f'[warehouse]\nurl = "{url}"\n\n[hub]\nvar_dir = "{tmp_path}"\n', encoding="utf-8")
    with Warehouse(url) as wh:  # a failed run after the last publication: only the warehouse has it
        ops.start_run(wh, "run_failed")
        ops.finish_run(wh, "run_failed", "failed", message="canonical: unexpected KeyError")
    st = status(load_settings(config))
    assert st["in_progress"] is None and st["read_from"] == "warehouse"
    assert [(r["run_id"], r["status"]) for r in st["runs"]] == [("run_failed", "failed")]
