"""`hub review` and `hub decide` through the real command line (a subprocess), on a DuckDB warehouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.contract import PERSON_RECORD
from tests.golden import resolve_and_publish
from tests.warehouse.test_resolution import _records
from warehouse import decisions as store
from warehouse.access_log import signed_in_reader
from warehouse.engine import Warehouse

HUB = [sys.executable, "-m", "hub.cli"]


@pytest.fixture(scope="module")
def model() -> dict:
    from matching.model import train
    from matching.resolve import prepare
    from sandbox.observations import person_records

    return train(prepare(person_records(1_000, seed=7)))


def _publish(url: str, run_id: str, model: dict, tmp_path: Path) -> dict[str, str]:
    with Warehouse(url) as wh:
        resolve_and_publish(wh, run_id, model_dir=tmp_path / "models", model_json=model,
                            review_band=(0.0, 1.1))  # every scored pair queued: something to review
        return dict(wh.rows("SELECT record_key, citizen_id FROM golden.citizen_link"))


@pytest.fixture
def hub(tmp_path: Path, model: dict):
    url = f"duckdb:///{tmp_path}/hub.duckdb"
    with Warehouse(url) as wh:
        wh.write(PERSON_RECORD, _records())
    _publish(url, "run-1", model, tmp_path)
    config = tmp_path / "hub.toml"
    # its own var_dir: the run lock lives there, and tests in other workers take theirs
    config.write_text(f'[hub]\nvar_dir = "{tmp_path}"\n\n[warehouse]\nurl = "{url}"\n', encoding="utf-8")
    env = {**os.environ, "HUB_CONFIG": str(config), "HUB_READER": "agent.martin"}
    env.pop("HUB_WAREHOUSE_URL", None)

    def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*HUB, *args], env=env, capture_output=True, text=True, timeout=120,
                              cwd=Path(__file__).resolve().parents[2])
        assert (done.returncode == 0) is ok, done.stderr
        return done

    return url, cli


def test_accept_and_reject_from_the_queue_are_honoured_by_the_next_run(hub, model, tmp_path):
    url, cli = hub
    queue = json.loads(cli("review", "list", "--json").stdout)
    by_pair = {(q["record_key_l"], q["record_key_r"]): q["queue_id"] for q in queue}
    reject = by_pair[("family:r1", "finance:t1")]
    out = cli("review", "reject", reject, "--reason", "homonymes, dates vérifiées").stdout
    assert f"recorded by {signed_in_reader('agent.martin')}" in out  # the account, agent.martin only declared
    left = {q["queue_id"] for q in json.loads(cli("review", "list", "--json").stdout)}
    assert reject not in left and left
    ids = _publish(url, "run-2", model, tmp_path)
    assert ids["family:r1"] != ids["finance:t1"]
    decisions = json.loads(cli("decide", "list", "--json").stdout)
    assert [(d["kind"], d["decided_by"], d["reason"], d["queue_id"]) for d in decisions] == [
        ("cannot_link", signed_in_reader("agent.martin"), "homonymes, dates vérifiées", reject)]


def test_accept_records_a_must_link(hub):
    url, cli = hub
    queue = json.loads(cli("review", "list", "--json").stdout)
    cli("review", "accept", queue[0]["queue_id"], "--reason", "vu au guichet")
    with Warehouse(url) as wh:
        [d] = store.decisions(wh)
    assert (d["kind"], d["record_key_l"], d["record_key_r"]) == (
        "must_link", queue[0]["record_key_l"], queue[0]["record_key_r"])


def test_unknown_queue_id_and_missing_reason_are_refused(hub):
    _, cli = hub
    assert "no review-queue entry" in cli("review", "accept", "QNOPE", "--reason", "x", ok=False).stderr
    assert "--reason" in cli("review", "reject", "QNOPE", ok=False).stderr


def test_decide_split_and_revoke(hub, model, tmp_path):
    url, cli = hub
    with Warehouse(url) as wh:
        citizen = wh.scalar("SELECT citizen_id FROM golden.citizen_link WHERE record_key = 'family:r1'")
    out = cli("decide", "split", citizen, "--detach", "assoc:d1", "--reason", "homonyme").stdout
    decision_id = out.split()[1]
    ids = _publish(url, "run-2", model, tmp_path)
    assert ids["assoc:d1"] != ids["family:r1"] == citizen
    cli("decide", "revoke", decision_id, "--reason", "erreur")
    assert json.loads(cli("decide", "list", "--json").stdout) == []
    ids = _publish(url, "run-3", model, tmp_path)
    assert ids["assoc:d1"] == ids["family:r1"]


def test_releases_are_listed(hub):
    _, cli = hub
    out = cli("review", "releases").stdout
    assert "run-1" in out and "accepted" in out
