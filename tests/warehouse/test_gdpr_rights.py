"""Rectification survives every later load and shows in the silos' worklists; an objection hides the
person from that processing's reads only; the retention purge applies the register's durations,
reports counts only, and leaves the access log's chain verifiable. On a real sandbox run, both engines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from hub.demo import running_sandbox
from hub.pipeline import run
from tests.logged import log_query
from warehouse.access_log import verify
from warehouse.citizen_view import prefill, search, show
from warehouse.engine import Warehouse
from warehouse.gdpr_rights import RightsError, object_to, rectify

pytestmark = pytest.mark.slow

GUICHET = "accueil et orientation des usagers"
DPO = "réponse aux demandes d'exercice des droits des personnes (RGPD art. 15 à 22)"


def test_rectification_objection_and_purge(tmp_path, warehouse_url):
    from connectors.registry import staging_models
    from warehouse.gdpr_purge import purge

    with running_sandbox(tmp_path / "var", people=300, seed=9, warehouse_url=warehouse_url) as sr:
        settings = sr.settings
        run(settings)
        url = settings.warehouse_url
        with Warehouse(url) as wh:
            cid, born, n = wh.rows(
                "SELECT citizen_id, birth_date, record_count FROM golden.citizen WHERE record_count >= 2 "
                "AND birth_date IS NOT NULL ORDER BY record_count DESC, citizen_id LIMIT 1")[0]
            corrected = (born if isinstance(born, date) else date.fromisoformat(str(born))) + timedelta(days=3)
            with pytest.raises(RightsError):
                rectify(wh, cid, "nir", "1", proof_level=2, proof="x", decided_by="dpo")
            rectify(wh, cid, "birth_date", corrected.isoformat(), proof_level=2,
                    proof="acte de naissance vu au guichet", decided_by="dpo")
            after = wh.rows("SELECT birth_date, record_count FROM golden.citizen WHERE citizen_id = :c", {"c": cid})[0]
            assert str(after[0])[:10] == corrected.isoformat() and after[1] == n  # not counted as a record
            rule = wh.rows("SELECT source_system, certification_level FROM golden.citizen_attribute "
                           "WHERE citizen_id = :c AND attribute = 'birth_date'", {"c": cid})[0]
            assert rule == ("rectification", 2)
            # every silo record holding the old date is on its silo's worklist, the correction as the value
            todo = wh.rows("SELECT record_key, silo_value, golden_value, golden_source_system FROM golden.discrepancy "
                           "WHERE citizen_id = :c AND attribute = 'birth_date'", {"c": cid})
            dated = wh.scalar("SELECT count(*) FROM core.person_record r JOIN golden.citizen_link l "
                              "ON l.record_key = r.record_key WHERE l.citizen_id = :c AND r.birth_date IS NOT NULL",
                              {"c": cid})
            assert dated >= 1 and len(todo) == dated and {t[3] for t in todo} == {"rectification"}
            assert {t[2] for t in todo} == {corrected.isoformat()}

        run(settings)  # a reload: the silos still hold the old value
        with Warehouse(url) as wh:
            assert str(wh.scalar("SELECT birth_date FROM golden.citizen WHERE citizen_id = :c",
                                 {"c": cid}))[:10] == corrected.isoformat()
            still = wh.scalar("SELECT count(*) FROM golden.discrepancy WHERE citizen_id = :c "
                              "AND attribute = 'birth_date' AND golden_source_system = 'rectification'", {"c": cid})
            assert still == dated

            # objection to the guichet unique: hidden from its reads, not from the DPO's
            name = wh.scalar("SELECT usage_name FROM golden.citizen WHERE citizen_id = :c", {"c": cid})
            assert show(wh, cid, reader="agent", purpose=GUICHET) is not None
            object_to(wh, cid, "guichet-unique", decided_by="dpo")
            assert show(wh, cid, reader="agent", purpose=GUICHET) is None
            assert show(wh, cid, reader="agent", purpose="guichet-unique") is None
            assert cid not in [r["citizen_id"] for r in search(wh, f"{name} {corrected:%d/%m/%Y}", reader="agent",
                                                                purpose=GUICHET)]
            assert show(wh, cid, reader="dpo", purpose=DPO) is not None
            assert prefill(wh, cid, service="accueil-usager", reader="agent") is None
            assert prefill(wh, cid, service="facturation", reader="agent") is not None
            with pytest.raises(RightsError):
                object_to(wh, cid, "no-such-processing", decided_by="dpo")
            ops = {r[0] for r in log_query(wh, "rows", "SELECT operation FROM ops.access_log WHERE citizen_id = :c",
                                            {"c": cid})}
            assert {"read", "update"} <= ops
            logged = log_query(wh, "scalar", "SELECT count(*) FROM ops.access_log")
            invoices = wh.scalar("SELECT count(*) FROM raw_finance.factures")

        models = staging_models([(s.name, s.kind, s.params) for s in settings.sources])
        later = datetime.now(UTC) + timedelta(days=366 * 11)  # past every retention of the register
        dry = purge(url, now=later, dry_run=True, models=models)
        by_table = {p["table"]: p for p in dry.purged}
        assert by_table["ops.access_log"]["rows"] == logged
        assert by_table["raw_finance.factures"]["rows"] == invoices
        assert by_table["raw_finance.factures"]["category"] == "economique"
        with Warehouse(url) as wh:
            assert wh.scalar("SELECT count(*) FROM raw_finance.factures") == invoices  # a dry run deletes nothing
        done = purge(url, now=later, models=models, pipelines_dir=settings.pipelines_dir)
        assert [(p["table"], p["rows"]) for p in done.purged] == [(p["table"], p["rows"]) for p in dry.purged]
        with Warehouse(url) as wh:
            assert wh.scalar("SELECT count(*) FROM raw_finance.factures") == 0
            assert wh.scalar("SELECT count(*) FROM core.interaction WHERE source_system = 'finance' "
                             "AND kind = 'facture'") == 0
            assert verify(wh) == 1  # the purge's own row, chained from the anchor
        # a second purge at the same date finds nothing more but the first purge's own log row
        assert [(p["table"], p["rows"]) for p in purge(url, now=later, dry_run=True, models=models).purged] == [
            ("ops.access_log", 1)]
