"""A server test skips with its reason when the server is absent — and fails instead under CI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = """
def test_needs_postgres(postgres_url):
    assert postgres_url

def test_needs_mariadb(mariadb_url):
    assert mariadb_url
"""


@pytest.mark.parametrize("ci", ["true", ""], ids=["under-CI", "locally"])
def test_absent_server_skips_locally_and_fails_under_ci(tmp_path, ci):
    probe = REPO / "tests" / f"test_probe_absent_{os.getpid()}_{ci or 'local'}.py"
    probe.write_text(PROBE, encoding="utf-8")
    try:
        env = dict(os.environ, CI=ci, HUB_TEST_PG_PORT="1", HUB_TEST_MARIADB_PORT="1")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                               str(probe)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    out = proc.stdout
    if ci:
        assert proc.returncode == 1 and ("2 errors" in out or "2 failed" in out), out[-1500:]
        assert "under CI a server test may not be skipped" in out
    else:
        assert proc.returncode == 0 and "2 skipped" in out, out[-1500:]
        assert "PostgreSQL on 127.0.0.1:1 is not reachable" in out


BROWSER_PROBE = """
def test_needs_a_browser(browser):
    assert browser
"""


@pytest.mark.parametrize("ci", ["true", ""], ids=["under-CI", "locally"])
def test_absent_chromium_skips_locally_and_fails_under_ci(ci):
    probe = REPO / "tests" / f"test_probe_no_browser_{os.getpid()}_{ci or 'local'}.py"
    probe.write_text(BROWSER_PROBE, encoding="utf-8")
    try:
        env = dict(os.environ, CI=ci, HUB_TEST_CHROMIUM="/nonexistent/chromium")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                               str(probe)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    out = proc.stdout
    assert "Chromium is not installed at /nonexistent/chromium" in out, out[-1500:]
    if ci:
        assert proc.returncode == 1 and "1 error" in out, out[-1500:]
    else:
        assert proc.returncode == 0 and "1 skipped" in out, out[-1500:]
