"""A pipeline that reads files as they are, propagates deletions, survives a source down and a
killed run, and says so in the warehouse: end to end on the sandbox (real simulators, real files).

- a UTF-8 associations export (Excel's "CSV UTF-8", with its BOM) reaches the golden names letter
  for letter, no mojibake;
- a dirigeant the next full export no longer lists ends deleted: its record leaves the golden
  layer, a citizen left with no record is retired (aliased to nothing), counts add up and the run
  report says how many were deleted;
- the family portal down: the others load, the run is partial, the release keeps the portal's
  records (its last good data), ``hub status`` says which source failed;
- a run killed with SIGKILL is marked aborted by the next one;
- the same input twice gives the same warehouse content hash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.demo import running_sandbox
from hub.pipeline import run
from warehouse import ops
from warehouse.engine import Warehouse

pytestmark = pytest.mark.slow

HUB = str(Path(sys.executable).parent / "hub")


def _as_excel_utf8(folder: Path) -> dict[str, list[str]]:
    """Rewrite the sandbox's cp1252 associations export as Excel's "CSV UTF-8" (BOM, CRLF); returns
    each file's lines as text."""
    lines = {}
    for f in sorted(folder.glob("*.csv")):
        text = f.read_bytes().decode("cp1252")
        f.write_bytes(text.encode("utf-8-sig"))
        lines[f.name] = text.split("\r\n")
    return lines


def _golden_names(wh: Warehouse, system: str) -> dict[str, tuple[str, str]]:
    """record_key -> the golden (usage_name, given_names) of its citizen, for one silo's records."""
    return {k: (u, g) for k, u, g in wh.rows(
        "SELECT l.record_key, c.usage_name, c.given_names FROM golden.citizen_link l "
        "JOIN golden.citizen c ON c.citizen_id = l.citizen_id WHERE l.record_key LIKE :p", {"p": f"{system}:%"})}


def test_utf8_export_deletions_and_a_source_down_end_to_end(tmp_path):
    url = f"duckdb:///{tmp_path / 'var' / 'hub.duckdb'}"
    with running_sandbox(tmp_path / "var", people=300, seed=11, warehouse_url=url) as sr:
        settings = sr.settings
        export = sr.sandbox.associations_dir
        lines = _as_excel_utf8(export)
        first = run(settings)
        assert first.status == "ok" and first.failed == []

        with Warehouse(url) as wh:
            hash_first = ops.content_hash(wh)
            names = dict(wh.rows("SELECT record_key, usage_name FROM core.person_record "
                                 "WHERE source_system = 'associations'"))
            golden = _golden_names(wh, "associations")
            mojibake = wh.scalar("SELECT count(*) FROM golden.citizen WHERE usage_name LIKE '%Ã%' "
                                 "OR given_names LIKE '%Ã%' OR birth_name LIKE '%Ã%'")
        # the file's own letters, as the office tool wrote them
        header, *rows = [r.split(";") for r in lines["dirigeants.csv"] if r]
        nom = header.index("nom")
        written = {f"associations:dirigeant/{r[0]}": r[nom] for r in rows if r[0].isdigit()}
        accented = {k: v for k, v in written.items() if not v.isascii()}
        assert accented, "the sandbox export should hold accented names"
        assert mojibake == 0
        for key, name in accented.items():
            if key in names:
                assert names[key].upper() == name.upper()
        assert any(not (u or "").isascii() for u, _ in golden.values())

        # the same input again: nothing new, the same content
        again = run(settings)
        assert again.status == "ok"
        with Warehouse(url) as wh:
            assert ops.content_hash(wh) == hash_first

        # the next full export no longer lists one dirigeant who is a citizen of their own
        with Warehouse(url) as wh:
            alone = wh.rows(
                "SELECT l.record_key, l.citizen_id FROM golden.citizen_link l WHERE l.record_key LIKE "
                "'associations:dirigeant/%' AND l.citizen_id IN (SELECT citizen_id FROM golden.citizen_link "
                "GROUP BY citizen_id HAVING count(*) = 1) ORDER BY l.record_key LIMIT 1")
        (gone_key, gone_citizen), = alone
        gone_id = gone_key.rsplit("/", 1)[1]
        kept = [r for r in lines["dirigeants.csv"] if not r.startswith(f"{gone_id};")]
        (export / "dirigeants.csv").write_bytes("\r\n".join(kept).encode("utf-8-sig"))
        third = run(settings)
        [assoc] = [s for s in third.ingested if s["source"] == "associations"]
        assert assoc["rows_deleted"] == 1
        with Warehouse(url) as wh:
            report = ops.run_report(wh, third.run_id)
            deleted_at = wh.scalar("SELECT deleted_at FROM core.person_record WHERE record_key = :k", {"k": gone_key})
            linked = wh.scalar("SELECT count(*) FROM golden.citizen_link WHERE record_key = :k", {"k": gone_key})
            citizen = wh.scalar("SELECT count(*) FROM golden.citizen WHERE citizen_id = :c", {"c": gone_citizen})
            alias = wh.rows("SELECT new_id FROM golden.citizen_alias WHERE old_id = :c", {"c": gone_citizen})
        assert deleted_at is not None and linked == 0 and citizen == 0
        assert alias == [(None,)]  # retired: all its records were deleted
        rows = {(r["stage"], r["source_system"], r["entity"]): r for r in report["rows"]}
        assert rows[("extract", "associations", "dirigeants")]["rows_deleted"] == 1
        assert all(r["ok"] for r in report["rows"])  # counts add up
        assert report["run"]["status"] == "ok"

        # the family portal down: the others load, the release keeps the portal's records
        with Warehouse(url) as wh:
            family_before = wh.scalar("SELECT count(*) FROM golden.citizen_link WHERE record_key LIKE 'family:%'")
        sr.portal.stop()
        fourth = run(settings)
        assert fourth.status == "partial"
        assert [f["source"] for f in fourth.failed] == ["family"]
        assert fourth.failed[0]["last_good_load"] is not None
        with Warehouse(url) as wh:
            assert wh.scalar("SELECT count(*) FROM golden.citizen_link WHERE record_key LIKE 'family:%'") \
                == family_before > 0
            [last] = ops.runs(wh, 1)
        assert last["status"] == "partial" and last["failed_sources"][0]["source"] == "family"
        status = CliRunner().invoke(main, ["status", "--json", "--config", str(settings.config_path)])
        assert status.exit_code == 1  # the last run did not end ok
        st = json.loads(status.output)
        assert st["runs"][0]["status"] == "partial"
        family = next(s for s in st["sources"] if s["source"] == "family")
        assert family["last_status"] == "failed" and "cannot reach" in family["last_error"]


def test_a_killed_run_is_marked_aborted_and_its_loads_are_completed(tmp_path):
    """SIGKILL while dlt has normalised a source's package but not loaded it (the process dies at
    the load's first step): the next run loads that package first and counts its rows as
    recovered, then extracts as usual; the killed run shows as aborted."""
    url = f"duckdb:///{tmp_path / 'var' / 'hub.duckdb'}"
    with running_sandbox(tmp_path / "var", people=300, seed=12, warehouse_url=url) as sr:
        settings = sr.settings
        env = dict(os.environ, HUB_CONFIG=str(settings.config_path))
        # the child dies as a kill -9 would, exactly between dlt's normalise and load of finance
        killer = (
            "import importlib, os, signal\n"
            "p = importlib.import_module('dlt.pipeline.pipeline')\n"
            "load = p.Pipeline.load\n"
            "def die(self, *a, **k):\n"
            "    if self.pipeline_name == 'hub_finance':\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "    return load(self, *a, **k)\n"
            "p.Pipeline.load = die\n"
            "from hub.cli import main\n"
            "main(['run'])\n")
        child = subprocess.run([sys.executable, "-c", killer], env=env, capture_output=True, text=True, timeout=600)
        assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
        with Warehouse(url) as wh:
            [dead] = ops.runs(wh, 1)
            assert dead["status"] == "running"  # as the dead process left it
            assert not wh.table_exists("raw_finance", "tiers")  # extracted and normalised, never loaded
        pending = list((settings.pipelines_dir / "hub_finance").rglob("normalized"))
        assert pending

        started = time.monotonic()
        nxt = run(settings)
        assert time.monotonic() - started < 600
        assert nxt.aborted == [dead["run_id"]]
        assert not nxt.failed, nxt.failed
        [finance] = [s for s in nxt.ingested if s["source"] == "finance"]
        with Warehouse(url) as wh:
            tiers = wh.scalar("SELECT count(*) FROM raw_finance.tiers")
            runs = {r["run_id"]: r for r in ops.runs(wh, 5)}
            recovered = wh.scalar("SELECT sum(rows_recovered) FROM ops.source_run WHERE run_id = :r AND "
                                  "source_system = 'finance'", {"r": nxt.run_id})
        # the killed run's rows are counted where they were loaded, none twice, none as "0 loaded"
        assert finance["rows_recovered"] == recovered > 0
        assert tiers > 0
        assert runs[dead["run_id"]]["status"] == "aborted" and runs[dead["run_id"]]["finished_at"] is not None
        assert runs[nxt.run_id]["status"] == "ok"
