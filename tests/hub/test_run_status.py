"""`hub status`'s staleness rule, aborted runs found by the next start, and two runs started at the
same instant on PostgreSQL: one publishes, the other stops having written nothing."""

from __future__ import annotations

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
