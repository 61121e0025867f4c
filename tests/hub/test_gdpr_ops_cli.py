"""`hub gdpr erase | rectify | object | purge | verify-log` from the shell: clear refusals, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HUB = str(Path(sys.executable).parent / "hub")


@pytest.fixture
def config(tmp_path) -> Path:
    var = tmp_path / "var"
    var.mkdir()
    path = var / "hub.toml"
    path.write_text(f'[hub]\nvar_dir = "{var}"\n\n[warehouse]\nurl = "duckdb:///{var / "hub.duckdb"}"\n',
                    encoding="utf-8")
    return path


def _hub(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HUB, "gdpr", *args], capture_output=True, text=True, timeout=120)


def test_unknown_citizen_and_processing_are_refused(config):
    from warehouse.engine import Warehouse
    from warehouse.gdpr_rights import RECTIFIABLE

    with Warehouse(f"duckdb:///{config.parent / 'hub.duckdb'}") as wh:
        wh.execute("CREATE SCHEMA golden")
        wh.execute("CREATE TABLE golden.citizen (citizen_id VARCHAR)")
    erase = _hub("erase", "CNOBODY", "--reason", "test", "--config", str(config))
    assert erase.returncode == 1 and "no citizen CNOBODY" in erase.stderr
    obj = _hub("object", "CNOBODY", "--processing", "no-such", "--config", str(config))
    assert obj.returncode == 1 and "no processing 'no-such'" in obj.stderr
    rect = _hub("rectify", "CNOBODY", "--attribute", "nir", "--value", "1", "--proof-level", "2", "--proof", "x",
                "--config", str(config))
    assert rect.returncode == 1 and "cannot be rectified" in rect.stderr and RECTIFIABLE[0] in rect.stderr


def test_purge_dry_run_reports_counts_and_the_log_verifies(config):
    dry = _hub("purge", "--dry-run", "--json", "--config", str(config))
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True and report["total"] == 0
    ok = _hub("verify-log", "--config", str(config))
    assert ok.returncode == 0, ok.stderr


def test_a_request_of_another_kind_is_refused(config):
    from warehouse import dsr
    from warehouse.engine import Warehouse

    with Warehouse(f"duckdb:///{config.parent / 'hub.duckdb'}") as wh:
        req = dsr.new_request(wh, kind="access", channel="courriel", identity=dsr.Identity(name="Personne Test"),
                              actor="dpo")
    erase = _hub("erase", "CNOBODY", "--reason", "test", "--request", req["request_id"], "--config", str(config))
    assert erase.returncode == 1 and "of kind access, not erasure" in erase.stderr
    unknown = _hub("object", "CNOBODY", "--processing", "guichet-unique", "--request", "DSR-NOPE",
                   "--config", str(config))
    assert unknown.returncode == 1 and "DSR-NOPE" in unknown.stderr
