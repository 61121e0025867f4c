"""Erasure leaves nothing behind: a person carrying canary values (a unique name, e-mail, phone) seeded
into the finance silo, loaded by a real pipeline run, erased; then a byte search finds none of them
in the warehouse (the DuckDB file, every PostgreSQL table), the readers' snapshot, the marts (no row
under their pseudonyms, counted in no aggregate), dlt's working folder, logs and exports;
the next load, with the silo still holding the person, leaves them at zero (suppression list); the
invoices the register keeps are listed with their legal basis."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.demo import running_sandbox
from hub.pipeline import run
from tests.logged import log_query
from warehouse.engine import Warehouse

pytestmark = pytest.mark.slow

CANARY_NAME = "ZQXVCANARYNOM"
CANARY_GIVEN = "Kanaryette"
CANARY_EMAIL = "kanary.zqxv.71@example.invalid"
CANARY_PHONE = "+33 6 71 93 28 46"
NEEDLES = [CANARY_NAME.encode(), CANARY_GIVEN.encode(), CANARY_EMAIL.encode(), b"671932846"]


def _seed_canary(sandbox_root: Path) -> int:
    """Give one finance debtor with invoices the canary identity; returns its tiers id."""
    con = sqlite3.connect(sandbox_root / "finance.sqlite")
    try:
        tid = con.execute("SELECT tiers_id FROM factures GROUP BY tiers_id ORDER BY count(*) DESC, tiers_id "
                          "LIMIT 1").fetchall()[0][0]
        con.execute("UPDATE tiers SET nom = ?, nom_naissance = NULL, prenom = ?, email = ?, telephone = ?, "
                    "supprime = 0 WHERE id = ?", (CANARY_NAME, CANARY_GIVEN, CANARY_EMAIL, CANARY_PHONE, tid))
        con.commit()
    finally:
        con.close()
    return tid


def _touch(sandbox_root: Path, tid: int) -> None:
    """The silo changes the record again: the next incremental load re-reads it."""
    con = sqlite3.connect(sandbox_root / "finance.sqlite")
    try:
        con.execute("UPDATE tiers SET updated_at = ? WHERE id = ?",
                    (datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"), tid))
        con.commit()
    finally:
        con.close()


def _file_hits(root: Path, skip: Path) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        if not p.is_file() or skip in p.parents:
            continue
        data = p.read_bytes()
        hits += [f"{p.relative_to(root)}: {n.decode()}" for n in NEEDLES if n in data]
    return hits


def _mart_rows(url: str, pks: dict[str, str]) -> dict[str, int]:
    """Rows of each row-level mart under the citizen's pseudonym of that mart."""
    from schemas.marts import MARTS

    with Warehouse(url) as wh:
        return {f"{t.schema}.{t.name}": wh.scalar(f'SELECT count(*) FROM "{t.schema}"."{t.name}" WHERE citizen_pk = :p',
                                                  {"p": pks[m.name]})
                for m in MARTS if m.keyed for t in m.tables}


def _table_hits(wh: Warehouse) -> list[str]:
    """Every table of every non-system schema, every row as text: LIKE each canary."""
    tables = wh.rows("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                     "AND table_schema NOT IN ('information_schema', 'pg_catalog') AND table_schema NOT LIKE 'pg_%'")
    hits = []
    for schema, name in tables:
        cols = wh.columns_of(schema, name)
        text = " || '|' || ".join(f"coalesce(CAST(\"{c}\" AS VARCHAR), '')" for c in cols)
        for n in NEEDLES:
            found = wh.scalar(f'SELECT count(*) FROM "{schema}"."{name}" WHERE {text} LIKE :n',
                              {"n": f"%{n.decode()}%"})
            if found:
                hits.append(f"{schema}.{name}: {n.decode()}")
    return hits


def test_erasure_leaves_no_byte_and_the_person_does_not_come_back(tmp_path, warehouse_url, monkeypatch):
    from connectors.registry import staging_models
    from schemas.marts import KEYED_MARTS
    from warehouse.gdpr_erase import ErasureError, erase
    from warehouse.marts import keys_from_settings, pseudonyms

    var = tmp_path / "var"
    monkeypatch.setenv("HUB_SUPPRESSION_KEY_FILE", str(tmp_path / "secrets" / "suppression.key"))
    with running_sandbox(var, people=300, seed=7, warehouse_url=warehouse_url) as sr:
        settings, sb = sr.settings, sr.sandbox
        tid = _seed_canary(sb.root)
        run(settings)
        key = f"finance:tiers/{tid}"
        with Warehouse(settings.warehouse_url) as wh:
            cid = wh.scalar("SELECT citizen_id FROM golden.citizen_link WHERE record_key = :k", {"k": key})
            invoices = wh.scalar("SELECT count(*) FROM raw_finance.factures WHERE tiers_id = :t", {"t": tid})
            assert _table_hits(wh), "the canary was loaded"
        assert cid and invoices > 0
        exports = var / "exports"
        exports.mkdir()
        (exports / f"acces-{cid}.json").write_text(f'{{"citizen_id": "{cid}", "email": "{CANARY_EMAIL}"}}')

        models = staging_models([(s.name, s.kind, s.params) for s in settings.sources])
        with pytest.raises(ErasureError, match="marts' keys"):  # their mart rows could not be found
            erase(settings.warehouse_url, cid, reason="Art. 17 request", decided_by="dpo", models=models)
        keys = keys_from_settings(settings.marts, settings.var_dir)
        pks = {m: pseudonyms([cid], keys[m])[0] for m in KEYED_MARTS}
        mart_rows = _mart_rows(settings.warehouse_url, pks)
        assert mart_rows["marts.dim_citizen"] == 1 and mart_rows["marts.fct_invoice"] >= 1
        with Warehouse.reader(settings.warehouse_url) as published:  # what readers read: them, for now
            people = published.scalar("SELECT sum(people) FROM marts.agg_citizens WHERE age_band = '*' "
                                      "AND household_type = '*' AND commune_code = '*'")
            assert published.scalar("SELECT count(*) FROM golden.citizen WHERE citizen_id = :c", {"c": cid}) == 1
        report = erase(settings.warehouse_url, cid, reason="Art. 17 request", decided_by="dpo", models=models,
                       var_dir=var, pipelines_dir=settings.pipelines_dir, exports_dir=exports, marts_keys=keys)
        # the marts: no row under their pseudonyms, counted nowhere, in the warehouse and in what readers read
        assert set(_mart_rows(settings.warehouse_url, pks).values()) == {0}
        with Warehouse.reader(settings.warehouse_url) as published:
            assert published.scalar("SELECT count(*) FROM golden.citizen WHERE citizen_id = :c", {"c": cid}) == 0
            assert published.scalar("SELECT count(*) FROM marts.dim_citizen WHERE citizen_pk = :p",
                                    {"p": pks["citizen"]}) == 0
            assert published.scalar("SELECT sum(people) FROM marts.agg_citizens WHERE age_band = '*' "
                                    "AND household_type = '*' AND commune_code = '*'") == people - 1

        with Warehouse(settings.warehouse_url) as wh:
            assert _table_hits(wh) == []
            assert wh.scalar("SELECT count(*) FROM golden.citizen WHERE citizen_id = :c", {"c": cid}) == 0
            assert wh.scalar("SELECT count(*) FROM core.person_record WHERE record_key = :k", {"k": key}) == 0
            # the invoices the public-accounting rules keep are still there, and said so
            assert wh.scalar("SELECT count(*) FROM raw_finance.factures WHERE tiers_id = :t", {"t": tid}) == invoices
            assert wh.scalar("SELECT count(*) FROM gdpr.suppression") >= 3
            ops = [r[0] for r in log_query(wh, "rows", "SELECT operation FROM ops.access_log WHERE citizen_id = :c",
                                            {"c": cid})]
            assert "delete" in ops
        kept = {r["table"]: r for r in report.retained}
        assert kept["raw_finance.factures"]["rows"] == invoices
        assert "obligation légale" in kept["raw_finance.factures"]["legal_basis"]
        assert [w["record_key"] for w in report.worklists["finance"]] == [key]
        assert any(r["processing"] == "finance-facturation" for r in report.recipients)
        proof = {(p.table, p.column): p for p in report.proof}
        assert proof[("raw_finance.tiers", "email")].rows_before == 1
        assert proof[("raw_finance.tiers", "email")].rows_after == 0
        email_proof = proof[("core.person_record", "email")]
        assert email_proof.sha256_before != email_proof.sha256_after
        assert CANARY_EMAIL not in report.to_json() and CANARY_NAME not in report.to_json()
        # bytes: the warehouse file (DuckDB), its published snapshot and BI file, dlt's folder, logs,
        # exports, reports — not the silo itself
        assert _file_hits(var, skip=sb.root) == []

        # the silo still holds the person and changes the record: the next load keeps them out
        _touch(sb.root, tid)
        second = run(settings)
        assert sum(s["rows_loaded"] for s in second.ingested) >= 1
        with Warehouse(settings.warehouse_url) as wh:
            assert _table_hits(wh) == []
            assert wh.scalar("SELECT count(*) FROM core.person_record WHERE record_key = :k", {"k": key}) == 0
            assert wh.scalar("SELECT count(*) FROM ops.quarantine WHERE reason_code = 'suppressed' "
                             "AND payload IS NULL AND run_id = :r", {"r": second.run_id}) >= 1
        assert _file_hits(var, skip=sb.root) == []  # the reloaded rows' bytes went too (file rewritten)
