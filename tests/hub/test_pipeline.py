"""The whole job on a small sandbox, on both warehouse engines: counts add up, a rerun changes
nothing, a parent known to three silos is one citizen, and a failing source loses nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub.demo import accuracy, running_sandbox
from hub.pipeline import run
from sandbox.defects import FICTIONAL_NIR
from tests.logged import log_query
from warehouse.access_log import signed_in_reader
from warehouse.engine import Warehouse

pytestmark = pytest.mark.slow

HUB = str(Path(sys.executable).parent / "hub")


def _golden(url: str) -> tuple[list[tuple], list[tuple]]:
    with Warehouse(url) as wh:
        links = wh.rows("SELECT record_key, citizen_id, match_probability FROM golden.citizen_link ORDER BY 1")
        citizens = wh.rows("SELECT citizen_id, given_names, birth_name, usage_name, birth_date, email, phone, "
                           "address_line, record_count, source_systems FROM golden.citizen ORDER BY 1")
    return links, citizens


def test_pipeline_end_to_end_is_complete_reconciled_and_idempotent(tmp_path, warehouse_url):
    with running_sandbox(tmp_path / "var", people=600, seed=11, warehouse_url=warehouse_url,
                         with_demarches=True, defects=True) as sr:
        settings, sb = sr.settings, sr.sandbox
        first = run(settings)
        golden_1 = _golden(settings.warehouse_url)
        second = run(settings)
        golden_2 = _golden(settings.warehouse_url)
    assert first.failed == [] and second.failed == []

    with Warehouse(settings.warehouse_url) as wh:
        from warehouse.ops import reconciliation

        recon = reconciliation(wh, first.run_id)
        truth_keys = set(sb_truth_keys(sb.root))
        core_keys = {r[0] for r in wh.rows("SELECT record_key FROM core.person_record")}
        quarantined = wh.scalar("SELECT count(*) FROM ops.quarantine WHERE entity = 'person_record'") or 0
    # every source entity: read = loaded + quarantined
    assert recon and all(r["ok"] for r in recon), recon
    # the seeded defects: each quarantined with its reason, the NIR stored nowhere
    with Warehouse(settings.warehouse_url) as wh:
        reasons = {(r[0], r[1]) for r in wh.rows("SELECT source_system, reason_code FROM ops.quarantine "
                                                 "WHERE run_id = :r", {"r": first.run_id})}
        stored_nir = wh.scalar("SELECT count(*) FROM ops.quarantine WHERE payload LIKE :n",
                               {"n": "%" + FICTIONAL_NIR.replace(" ", "%") + "%"})
    assert {("associations", "bad_date"), ("associations", "wrong_column_count"),
            ("associations", "national_id")} <= reasons, reasons
    assert any(source == "family" for source, _ in reasons), reasons  # the malformed e-mail, at the gate
    assert stored_nir == 0
    # every person the silos hold is in the canonical layer or quarantined
    assert len(core_keys) + quarantined >= len(truth_keys)
    assert truth_keys - core_keys == set() or quarantined > 0

    # the second run on unchanged sources: nothing new loaded, identical citizens and ids
    assert sum(s["rows_loaded"] for s in second.ingested) == 0
    assert golden_1 == golden_2

    scores = accuracy(settings, sb.root)
    assert scores["precision"] >= 0.98 and scores["recall"] >= 0.9, scores


def sb_truth_keys(root: Path) -> list[str]:
    from sandbox import load_truth

    return load_truth(root).column("record_key").to_pylist()


def test_citizen_show_of_a_parent_spans_three_silos(tmp_path):
    url = f"duckdb:///{tmp_path / 'var' / 'hub.duckdb'}"
    with running_sandbox(tmp_path / "var", people=600, seed=5, warehouse_url=url) as sr:
        settings = sr.settings
        run(settings)
    with Warehouse(url) as wh:
        parent = wh.scalar(
            "SELECT l.citizen_id FROM golden.citizen_link l JOIN core.person_record p USING (record_key) "
            "WHERE p.source_system IN ('finance', 'family', 'associations') "
            "GROUP BY l.citizen_id HAVING count(DISTINCT p.source_system) = 3 "
            "AND sum(CASE WHEN p.role = 'parent' THEN 1 ELSE 0 END) > 0 ORDER BY 1 LIMIT 1"
        )
    assert parent, "the sandbox guarantees parents known to all three silos"
    env = dict(os.environ, HUB_CONFIG=str(settings.config_path), HUB_READER="agent.test")
    out = subprocess.run([HUB, "citizen", "show", parent, "--json", "--purpose", "guichet-unique"], env=env,
                         capture_output=True, text=True, check=True).stdout
    view = json.loads(out)
    assert view["citizen"]["citizen_id"] == parent
    assert {r["source_system"] for r in view["records"]} >= {"finance", "family", "associations"}
    kinds = {(i["source_system"], i["kind"]) for i in view["interactions"]}
    assert ("finance", "facture") in kinds
    assert any(h["source_system"] == "family" and h["members"] for h in view["households"])
    assert view["organisations"] and view["organisations"][0]["role"]
    dates = [i["opened_at"] for i in view["interactions"]]
    assert dates == sorted(dates)
    # the read was logged with who and why
    with Warehouse(url) as wh:
        logged = log_query(wh, "rows", "SELECT reader, purpose FROM ops.access_log WHERE citizen_id = :c",
                           {"c": parent})
    assert (signed_in_reader("agent.test"), "accueil et orientation des usagers") in logged

    # terminal rendering shows the three silos too
    text = subprocess.run([HUB, "citizen", "show", parent], env=env, capture_output=True, text=True,
                          check=True).stdout
    for silo in ("finance", "family", "associations"):
        assert silo in text


def test_a_failing_source_is_reported_by_name_and_loses_nothing(tmp_path):
    """An HTML error page (status 200) from the family portal, then the portal unreachable: each run
    names the source and the page, the other silos still load, and what was loaded before stays."""
    url = f"duckdb:///{tmp_path / 'var' / 'hub.duckdb'}"
    with running_sandbox(tmp_path / "var", people=300, seed=3, warehouse_url=url) as sr:
        first = run(sr.settings)
        with Warehouse(url) as wh:
            before = wh.scalar("SELECT count(*) FROM raw_family.responsables")
            citizens_before = wh.scalar("SELECT count(*) FROM golden.citizen")
        sr.portal.touch("responsables", 1, email="nouvelle.adresse@example.org")
        sr.portal.inject("html", collection="responsables")
        broken = run(sr.settings)
    assert first.failed == []
    assert [f["source"] for f in broken.failed] == ["family"]
    message = broken.failed[0]["error"]
    assert message.startswith("family: ") and "responsables page 1" in message
    assert "nouvelle.adresse" not in message
    assert {s["source"] for s in broken.ingested} == {"finance", "associations", "salesforce", "servicenow"}

    with Warehouse(url) as wh:
        assert wh.scalar("SELECT count(*) FROM raw_family.responsables") == before
        assert wh.scalar("SELECT count(*) FROM golden.citizen") == citizens_before
        failed = wh.rows("SELECT source_system, status, error FROM ops.source_run WHERE run_id = :r AND status <> 'ok'",
                         {"r": broken.run_id})
    assert [(s, st) for s, st, _ in failed] == [("family", "failed")]

    # the HTTP silos are gone altogether (servers stopped): clear errors naming each source, no traceback
    down = run(sr.settings)
    assert [f["source"] for f in down.failed] == ["family", "salesforce", "servicenow"]
    assert all(f["error"].startswith(f"{f['source']}: ") for f in down.failed)


def _free_port_block(n: int = 4) -> int:
    import socket

    for base in range(28000, 29000, 10):
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                s.bind(("127.0.0.1", base + i))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block")


def test_hub_run_after_the_demo_through_sandbox_serve(tmp_path):
    """`hub sandbox serve` brings the demo's silos back and rewrites the settings; `hub run --incremental`
    then runs the whole job from the command line: nothing changed, so no citizen changes."""
    import time

    var = tmp_path / "var"
    url = f"duckdb:///{var / 'hub.duckdb'}"
    with running_sandbox(var, people=300, seed=9, warehouse_url=url) as sr:
        run(sr.settings)
    env = dict(os.environ, HUB_CONFIG=str(var / "hub.toml"))
    port = _free_port_block()
    serve = subprocess.Popen([HUB, "sandbox", "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while f"127.0.0.1:{port}" not in (var / "hub.toml").read_text(encoding="utf-8"):
            assert serve.poll() is None and time.monotonic() < deadline, serve.stderr.read() if serve.stderr else ""
            time.sleep(0.2)
        done = subprocess.run([HUB, "run", "--incremental"], env=env, capture_output=True, text=True, timeout=300)
    finally:
        serve.terminate()
        serve.wait(timeout=10)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "source failed" not in done.stdout
    for silo in ("finance", "family", "associations", "salesforce", "servicenow"):
        assert silo in done.stdout
    assert "citizens" in done.stdout
    # nothing changed in the silos: the incremental run keeps every citizen as it was
    assert "incremental run" in done.stdout and " 0 new, 0 merged, 0 split" in done.stdout


def test_an_abnormal_release_is_refused_until_confirmed(tmp_path):
    """The guard (here: no citizen may hold more than one record) refuses the release: nothing is
    published, the CLI would exit 3; confirmed, the same run publishes."""
    import dataclasses

    from warehouse.resolution import ReleaseRefused

    url = f"duckdb:///{tmp_path / 'var' / 'hub.duckdb'}"
    with running_sandbox(tmp_path / "var", people=300, seed=4, warehouse_url=url) as sr:
        strict = dataclasses.replace(sr.settings, extra={"guard_max_citizen_records": 1})
        with pytest.raises(ReleaseRefused, match="refused"):
            run(strict)
        with Warehouse(url) as wh:
            published = wh.scalar("SELECT count(*) FROM golden.citizen") if wh.table_exists("golden", "citizen") \
                else 0
        assert published == 0
        confirmed = run(strict, confirm_release=True)
    assert confirmed.resolution["release"]["status"] == "confirmed"
    with Warehouse(url) as wh:
        assert wh.scalar("SELECT count(*) FROM golden.citizen") == confirmed.resolution["citizens"] > 0
