"""The run lock: a second writer stops at once naming the first; a killed holder leaves no stale lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from hub.runlock import RunLocked, hold

HOLDER = """
import sys, time
from types import SimpleNamespace
from hub.runlock import hold
settings = SimpleNamespace(warehouse_url=sys.argv[1], var_dir=sys.argv[2])
source = sys.argv[4] or None
with hold(settings, sys.argv[3], source=source):
    print("held", flush=True)
    time.sleep(600)
"""


def _settings(url: str, var: Path) -> SimpleNamespace:
    return SimpleNamespace(warehouse_url=url, var_dir=var)


def _start_holder(url: str, var: Path, run_id: str, source: str = "") -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(var), run_id, source],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "held", proc.stderr.read() if proc.poll() is not None else line
    return proc


def _kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture(params=["duckdb", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'hub.duckdb'}"
    return request.getfixturevalue("postgres_url")


def test_a_second_run_names_the_first_and_a_killed_holder_leaves_no_lock(tmp_path, url):
    settings = _settings(url, tmp_path / "var")
    holder = _start_holder(url, tmp_path / "var", "run_20261207T090000_abc123")
    try:
        with pytest.raises(RunLocked) as e:
            with hold(settings, "run_second"):
                pytest.fail("the second run got the lock")
        msg = str(e.value)
        assert "run_20261207T090000_abc123" in msg
        assert f"pid {holder.pid}" in msg
        assert socket.gethostname()[:20] in msg
        assert "started 20" in msg and "UTC" in msg
        assert "stopped before writing anything" in msg
    finally:
        _kill9(holder)
    # kill -9 released it: the next run takes the lock at once
    deadline = time.monotonic() + 10
    while True:
        try:
            with hold(settings, "run_third"):
                break
        except RunLocked:
            if time.monotonic() > deadline:  # the server notices a dead client within moments
                raise
            time.sleep(0.2)


def test_the_lock_is_reentrant_within_a_process(tmp_path, url):
    settings = _settings(url, tmp_path / "var")
    with hold(settings, "run_a"):
        with hold(settings, "run_a", what="resolve"):
            with hold(settings, "run_a", source="finance"):
                pass
    with hold(settings, "run_b"):  # released after the nesting
        pass


def test_on_postgres_sources_load_side_by_side_but_not_under_a_whole_run(tmp_path, postgres_url):
    settings = _settings(postgres_url, tmp_path / "var")
    finance = _start_holder(postgres_url, tmp_path / "var", "run_finance", "finance")
    try:
        with hold(settings, "run_family", source="family"):  # another source: allowed
            pass
        with pytest.raises(RunLocked, match="run_finance"):
            with hold(settings, "run_other_finance", source="finance"):
                pass
        with pytest.raises(RunLocked, match="run_finance"):
            with hold(settings, "run_whole", what="resolve"):
                pass
    finally:
        _kill9(finance)


def test_on_duckdb_a_source_is_as_exclusive_as_a_run(tmp_path):
    url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    settings = _settings(url, tmp_path / "var")
    finance = _start_holder(url, tmp_path / "var", "run_finance", "finance")
    try:
        with pytest.raises(RunLocked, match=r"run_finance \(ingest finance\)"):
            with hold(settings, "run_family", source="family"):
                pass
    finally:
        _kill9(finance)


def test_on_postgres_a_released_lock_is_free_the_moment_hold_returns(tmp_path, postgres_url):
    """The session's advisory locks are unlocked before it closes: a run starting right after
    another ended never finds the lock still held by a server process on its way out."""
    settings = _settings(postgres_url, tmp_path / "var")
    for n in range(40):
        with hold(settings, f"run_{n}"):
            pass
        with hold(settings, f"run_{n}_next"):  # at once, no retry
            pass
