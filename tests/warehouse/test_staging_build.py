"""build_canonical on both engines: staging views, the gate's quarantine, idempotent rebuilds."""

from __future__ import annotations

import json

import pytest

from schemas.contract import INTERACTION, PERSON_RECORD
from warehouse.engine import Warehouse
from warehouse.ops import quarantine_summary, reconciliation
from warehouse.quality import QualityGate
from warehouse.staging import StagingError, build_canonical

BAD_FINANCE = [
    "CREATE SCHEMA raw_fin",
    "CREATE TABLE raw_fin.tiers (id TEXT, systeme TEXT, nom TEXT, ne_le DATE, courriel TEXT, cp TEXT, role TEXT)",
    "INSERT INTO raw_fin.tiers VALUES "
    "('T1', 'fin', 'Dupont', '1982-04-12', 'marie@example.fr', '69003', 'debiteur'), "  # good
    "('T2', 'fin', 'Martin', '1981-01-01', NULL, NULL, 'debiteur'), "  # good
    "('T3', 'fin', 'Bernard', '1850-01-01', 'paul@example.fr', '69003', 'debiteur'), "  # too old
    "('T4', 'fin', 'Petit', '1990-01-01', 'petit.example.fr', '6900', 'chef'), "  # 3 defects
    "('T5', 'crm', 'Robert', '1990-01-01', NULL, NULL, 'usager'), "  # claims another silo
    "('T6', 'fin', 'Richard', NULL, NULL, NULL, NULL)",  # role missing
    "CREATE TABLE raw_fin.factures (num TEXT, tiers TEXT, emise TIMESTAMPTZ, montant DECIMAL(14,2), devise TEXT)",
    "INSERT INTO raw_fin.factures VALUES "
    "('F1', 'T1', '2024-03-01 08:00:00+00', 45.50, 'EUR'), "  # good
    "('F2', 'T9', '2024-03-01 08:00:00+00', 10.00, 'EUR'), "  # unknown person
    "('F3', 'T3', '2024-03-01 08:00:00+00', 10.00, 'EUR'), "  # person quarantined above
    "('F4', 'T2', '2024-03-01 08:00:00+00', -3.00, 'euro')",  # 2 defects
]

EXPECTED_QUARANTINE = {
    ("person_record", "stg_fin__tiers:fin:T3", "birth_date", "expect_column_values_to_be_between"),
    ("person_record", "stg_fin__tiers:fin:T4", "email", "expect_column_values_to_match_regex"),
    ("person_record", "stg_fin__tiers:fin:T4", "postcode", "expect_column_values_to_match_regex"),
    ("person_record", "stg_fin__tiers:fin:T4", "role", "expect_column_values_to_be_in_set"),
    ("person_record", "stg_fin__tiers:fin:T5", "source_system", "source_system_mismatch"),
    ("person_record", "stg_fin__tiers:fin:T6", "role", "expect_column_values_to_not_be_null"),
    ("interaction", "stg_fin__factures:fin:F2", "record_key", "reference_not_found"),
    ("interaction", "stg_fin__factures:fin:F3", "record_key", "reference_not_found"),
    ("interaction", "stg_fin__factures:fin:F4", "amount", "expect_column_values_to_be_between"),
    ("interaction", "stg_fin__factures:fin:F4", "currency", "expect_column_values_to_match_regex"),
}


@pytest.fixture
def bad_models(wh: Warehouse, staging_select) -> dict[str, list[tuple[str, str]]]:
    for sql in BAD_FINANCE:
        wh.execute(sql)
    return {
        "person_record": [("stg_fin__tiers", staging_select(
            PERSON_RECORD, "raw_fin.tiers", record_key="'fin:' || id", source_system="systeme", source_id="id",
            role="role", usage_name="nom", birth_date="ne_le", email="courriel", postcode="cp",
            country="'FR'", certification_level="0"))],
        "interaction": [("stg_fin__factures", staging_select(
            INTERACTION, "raw_fin.factures", interaction_key="'fin:' || num", source_system="'fin'",
            source_id="num", record_key="'fin:' || tiers", kind="'facture'", opened_at="emise",
            amount="montant", currency="devise"))],
    }


def _snapshot(wh: Warehouse) -> dict[str, list[tuple]]:
    return {
        "person_record": wh.rows("SELECT * FROM core.person_record ORDER BY record_key"),
        "interaction": wh.rows("SELECT * FROM core.interaction ORDER BY interaction_key"),
        "quarantine": wh.rows(
            "SELECT run_id, source_system, entity, stage, locator, field, reason_code, reason, payload "
            "FROM ops.quarantine ORDER BY locator, reason_code, field, payload"),
        "stage_run": wh.rows("SELECT run_id, table_name, source_system, rows_staged, rows_passed, rows_quarantined "
                             "FROM ops.stage_run ORDER BY table_name, source_system"),
    }


def test_gate_quarantines_exactly_the_bad_rows(wh: Warehouse, bad_models, gate: QualityGate) -> None:
    counts = build_canonical(wh, bad_models, "run-1", gate=gate)

    assert [r[0] for r in wh.rows("SELECT record_key FROM core.person_record ORDER BY 1")] == ["fin:T1", "fin:T2"]
    assert [r[0] for r in wh.rows("SELECT interaction_key FROM core.interaction ORDER BY 1")] == ["fin:F1"]
    got = set(wh.rows("SELECT entity, locator, field, reason_code FROM ops.quarantine "
                      "WHERE run_id = 'run-1' AND stage = 'quality'"))
    assert got == EXPECTED_QUARANTINE
    assert {(c.table, c.source_system, c.staged, c.passed, c.quarantined) for c in counts} == {
        ("person_record", "fin", 6, 2, 4),
        ("interaction", "fin", 4, 1, 3),
    }


def test_quarantine_payload_replays_the_row(wh: Warehouse, bad_models, gate: QualityGate) -> None:
    build_canonical(wh, bad_models, "run-1", gate=gate)
    payload, reason = wh.rows("SELECT payload, reason FROM ops.quarantine WHERE locator = 'stg_fin__tiers:fin:T3'")[0]
    row = json.loads(payload)
    assert row["birth_date"] == "1850-01-01" and row["record_key"] == "fin:T3"
    assert set(row) == set(PERSON_RECORD.column_names)
    assert "1850" not in reason


def test_counts_reconcile(wh: Warehouse, bad_models, gate: QualityGate) -> None:
    build_canonical(wh, bad_models, "run-1", gate=gate)
    rec = reconciliation(wh, "run-1")
    assert [(r["stage"], r["entity"], r["rows_read"], r["rows_loaded"], r["rows_quarantined"], r["ok"])
            for r in rec] == [("quality", "interaction", 4, 1, 3, True), ("quality", "person_record", 6, 2, 4, True)]
    distinct_quarantined = wh.scalar(
        "SELECT count(DISTINCT locator) FROM ops.quarantine WHERE run_id = 'run-1' AND entity = 'person_record'")
    assert distinct_quarantined == rec[1]["rows_quarantined"]
    summary = {(s["entity"], s["reason_code"]): s["count"] for s in quarantine_summary(wh, "run-1")}
    assert summary[("person_record", "expect_column_values_to_match_regex")] == 2
    assert summary[("interaction", "reference_not_found")] == 2
    assert sum(summary.values()) == len(EXPECTED_QUARANTINE)


def test_build_twice_leaves_the_same_warehouse(wh: Warehouse, bad_models, gate: QualityGate) -> None:
    build_canonical(wh, bad_models, "run-1", gate=gate)
    first = _snapshot(wh)
    again = build_canonical(wh, bad_models, "run-1", gate=gate)
    assert _snapshot(wh) == first
    assert sum(c.quarantined for c in again) == 7


def test_rebuild_follows_the_raw_data_and_spares_other_silos(family_raw: Warehouse, models,
                                                             gate: QualityGate) -> None:
    build_canonical(family_raw, models, "run-1", gate=gate)
    family_raw.execute("DELETE FROM raw_finance.tiers WHERE id = 'T2'")
    family_raw.execute("DELETE FROM raw_finance.factures WHERE tiers = 'T2'")
    finance_only = {t: [m for m in ms if m[0].startswith("stg_finance__")] for t, ms in models.items()}
    counts = build_canonical(family_raw, {t: ms for t, ms in finance_only.items() if ms}, "run-2", gate=gate)

    keys = [r[0] for r in family_raw.rows("SELECT record_key FROM core.person_record ORDER BY 1")]
    assert "finance:T2" not in keys and "finance:T1" in keys
    assert sum(k.startswith("family:") for k in keys) == 4 and "assoc:R1" in keys
    assert {(c.table, c.staged) for c in counts} == {("person_record", 1), ("household_membership", 1),
                                                     ("interaction", 1)}


def test_family_silos_load_whole(family_raw: Warehouse, models, gate: QualityGate) -> None:
    counts = build_canonical(family_raw, models, "run-1", gate=gate)
    assert {(c.table, c.source_system): (c.staged, c.passed) for c in counts} == {
        ("person_record", "finance"): (2, 2), ("person_record", "family"): (4, 4),
        ("person_record", "assoc"): (1, 1), ("organisation", "assoc"): (1, 1),
        ("household_membership", "finance"): (2, 2), ("household_membership", "family"): (4, 4),
        ("interaction", "finance"): (2, 2), ("interaction", "family"): (3, 3), ("interaction", "assoc"): (1, 1),
        ("organisation_role", "assoc"): (1, 1),
    }
    assert family_raw.scalar("SELECT count(*) FROM staging.stg_family__members") == 4
    amount = family_raw.scalar("SELECT amount FROM core.interaction WHERE interaction_key = 'finance:F100'")
    assert str(amount) == "45.50"


@pytest.mark.parametrize("name", ["finance_tiers", "stg_finance_tiers", "stg_Finance__tiers"])
def test_malformed_model_name_is_refused(wh: Warehouse, gate: QualityGate, name: str) -> None:
    with pytest.raises(StagingError, match="stg_<system>__<entity>"):
        build_canonical(wh, {"person_record": [(name, "SELECT 1")]}, "run-1", gate=gate)


def test_uncastable_column_names_the_column_not_the_value(wh: Warehouse, staging_select,
                                                          gate: QualityGate) -> None:
    wh.execute("CREATE SCHEMA raw_x")
    wh.execute("CREATE TABLE raw_x.t (id TEXT, born TEXT)")
    wh.execute("INSERT INTO raw_x.t VALUES ('1', '12 avril 1982')")
    sql = staging_select(PERSON_RECORD, "raw_x.t", record_key="'x:' || id", source_system="'x'",
                         source_id="id", role="'usager'", birth_date="born", certification_level="0")
    with pytest.raises(StagingError) as err:
        build_canonical(wh, {"person_record": [("stg_x__t", sql)]}, "run-1", gate=gate)
    assert "birth_date" in str(err.value) and "avril" not in str(err.value)
    assert err.value.__cause__ is None


def test_chunked_build_equals_the_whole_one_and_reads_a_chunk_at_a_time(
        wh: Warehouse, bad_models, gate: QualityGate, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows staged, gated and written two at a time (with a second finance model, so a key is
    repeated across models and chunks): the same core rows, quarantine and counts as one chunk,
    and no read from the warehouse returns more rows than a chunk or the rows sharing a key (the
    only rows the uniqueness check reads together) — the staged rows are never whole in Python
    (docs/scale.md)."""
    import warehouse.staging as staging

    wh.execute("CREATE TABLE raw_fin.tiers_bis AS SELECT * FROM raw_fin.tiers WHERE id IN ('T2', 'T6')")
    wh.execute("INSERT INTO raw_fin.tiers_bis VALUES ('T7', 'fin', 'Leroy', '1970-05-05', NULL, NULL, 'usager')")
    tiers_sql = bad_models["person_record"][0][1]
    bis = ("stg_fin__tiers_bis", tiers_sql.replace("raw_fin.tiers", "raw_fin.tiers_bis"))
    models = {**bad_models, "person_record": [*bad_models["person_record"], bis]}
    whole = build_canonical(wh, models, "run-1", gate=gate)
    expected = _snapshot(wh)

    largest = []
    arrow = wh.arrow
    monkeypatch.setattr(wh, "arrow", lambda *a, **k: largest.append(arrow(*a, **k).num_rows) or arrow(*a, **k))
    monkeypatch.setattr(staging, "CHUNK_ROWS", 2)
    chunked = build_canonical(wh, models, "run-1", gate=gate)

    assert max(largest) == 4  # T2 and T6 twice each; the first model alone is 6 rows
    assert chunked == whole and _snapshot(wh) == expected
    # T2 passes in one model, not twice: a key repeated across models quarantines both rows
    person = {(c.source_system, c.staged, c.passed, c.quarantined) for c in chunked if c.table == "person_record"}
    assert person == {("fin", 9, 2, 7)}
    dupes = wh.rows("SELECT locator FROM ops.quarantine WHERE reason_code = 'expect_column_values_to_be_unique' "
                    "ORDER BY 1")
    assert [r[0] for r in dupes] == ["stg_fin__tiers:fin:T2", "stg_fin__tiers:fin:T6",
                                     "stg_fin__tiers_bis:fin:T2", "stg_fin__tiers_bis:fin:T6"]
    # the reference check ran against this build's core rows: T2 is quarantined now, so is F4
    assert wh.scalar("SELECT count(*) FROM ops.quarantine WHERE locator = 'stg_fin__factures:fin:F4' "
                     "AND reason_code = 'reference_not_found'") == 1


def _temporary_tables(wh: Warehouse) -> list[str]:
    return [r[0] for r in wh.rows("SELECT table_name FROM information_schema.tables "
                                  "WHERE table_type = 'LOCAL TEMPORARY' ORDER BY 1")]


def test_chunks_are_written_outside_the_tables_transaction_and_a_failure_leaves_the_old_table(
        wh: Warehouse, bad_models, gate: QualityGate, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each chunk's rows go to temporary tables outside the table's transaction (DuckDB holds what
    a transaction appends in memory until the commit: docs/scale.md); the transaction then replaces
    the rows in one statement each. A failure while chunks are gated leaves the previous core rows,
    quarantine and counts, and no temporary table behind."""
    import warehouse.staging as staging

    build_canonical(wh, bad_models, "run-1", gate=gate)
    before = _snapshot(wh)
    assert _temporary_tables(wh) == []
    wh.execute("DELETE FROM raw_fin.tiers WHERE id = 'T1'")  # a rebuild would drop T1 and quarantine F1

    appends: list[bool] = []  # in a transaction?
    append = staging._append
    monkeypatch.setattr(staging, "_append", lambda w, *a: appends.append(w._in_tx) or append(w, *a))
    monkeypatch.setattr(staging, "CHUNK_ROWS", 2)
    calls = []

    def failing_quarantine(*a, **k):
        calls.append(1)
        if len(calls) == 4:  # the interactions' first chunk (person_record: three chunks of two)
            raise RuntimeError("gate broke")
        return quarantine_rows(*a, **k)

    quarantine_rows = staging._quarantine_rows
    monkeypatch.setattr(staging, "_quarantine_rows", failing_quarantine)
    with pytest.raises(RuntimeError, match="gate broke"):
        build_canonical(wh, bad_models, "run-1", gate=gate)
    after = _snapshot(wh)
    # person_record was rebuilt (T1 gone) in its own transaction; the interactions are untouched
    assert [r for r in after["person_record"] if r[0] == "fin:T1"] == []
    assert after["interaction"] == before["interaction"]
    assert [q for q in after["quarantine"] if q[2] == "interaction"] == [
        q for q in before["quarantine"] if q[2] == "interaction"]
    assert _temporary_tables(wh) == []
    assert len(appends) > 4 and not any(appends)
