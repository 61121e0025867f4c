"""Run bookkeeping: source counts, extract-stage quarantine, reconciliation, summaries."""

from __future__ import annotations

import json

import pyarrow as pa

from warehouse.engine import Warehouse
from warehouse.ops import quarantine_summary, reconciliation, record_quarantine, record_source_runs

COUNTS = [
    {"source_system": "finance", "entity": "tiers", "rows_read": 10, "rows_loaded": 9, "rows_quarantined": 1},
    {"source_system": "family", "entity": "members", "rows_read": 5, "rows_loaded": 5},
    # A source that lost a row: read 4, stored 2, set aside 1.
    {"source_system": "assoc", "entity": "dirigeants", "rows_read": 4, "rows_loaded": 2, "rows_quarantined": 1},
]


def _extract_quarantine(system: str, n: int) -> pa.Table:
    return pa.Table.from_pylist([
        {"source_system": system, "entity": "tiers", "locator": f"tiers.csv:{i + 2}", "field": "ne_le",
         "reason_code": "bad_date", "reason": "ne_le is not a date", "payload": json.dumps({"id": f"T{i}"})}
        for i in range(n)
    ])


def test_reconciliation_flags_what_does_not_add_up(wh: Warehouse) -> None:
    record_source_runs(wh, "run-1", COUNTS)
    rec = {(r["source_system"], r["entity"]): r for r in reconciliation(wh, "run-1")}
    assert {k: r["ok"] for k, r in rec.items()} == {
        ("finance", "tiers"): True, ("family", "members"): True, ("assoc", "dirigeants"): False}
    assert rec[("family", "members")]["rows_quarantined"] == 0
    assert all(r["stage"] == "extract" for r in rec.values())
    assert reconciliation(wh, "another-run") == []


def test_source_runs_are_replaced_per_key(wh: Warehouse) -> None:
    record_source_runs(wh, "run-1", COUNTS)
    record_source_runs(wh, "run-1", [COUNTS[0] | {"rows_read": 11, "rows_loaded": 10}])
    rows = wh.rows("SELECT source_system, entity, rows_read, status FROM ops.source_run ORDER BY source_system")
    assert rows == [("assoc", "dirigeants", 4, "ok"), ("family", "members", 5, "ok"), ("finance", "tiers", 11, "ok")]


def test_record_quarantine_is_idempotent_per_run_and_silo(wh: Warehouse) -> None:
    record_quarantine(wh, "run-1", _extract_quarantine("finance", 3))
    record_quarantine(wh, "run-1", _extract_quarantine("finance", 3))
    record_quarantine(wh, "run-1", _extract_quarantine("family", 1))
    record_quarantine(wh, "run-2", _extract_quarantine("finance", 2))
    assert quarantine_summary(wh, "run-1") == [
        {"source_system": "family", "entity": "tiers", "stage": "extract", "reason_code": "bad_date", "count": 1},
        {"source_system": "finance", "entity": "tiers", "stage": "extract", "reason_code": "bad_date", "count": 3},
    ]
    # A re-run that quarantines nothing clears the silo when it is named.
    record_quarantine(wh, "run-1", _extract_quarantine("finance", 0), source_systems=["finance"])
    assert [s["source_system"] for s in quarantine_summary(wh, "run-1")] == ["family"]
    assert quarantine_summary(wh, "run-2")[0]["count"] == 2
    stamped = wh.scalar("SELECT count(*) FROM ops.quarantine WHERE quarantined_at IS NOT NULL AND stage = 'extract'")
    assert stamped == 3


def test_extract_and_quality_stages_reconcile_together(family_raw: Warehouse, models, gate) -> None:
    from warehouse.staging import build_canonical

    record_source_runs(family_raw, "run-1", [
        {"source_system": "family", "entity": "members", "rows_read": 5, "rows_loaded": 4, "rows_quarantined": 1}])
    record_quarantine(family_raw, "run-1", _extract_quarantine("family", 1))
    build_canonical(family_raw, {"person_record": models["person_record"]}, "run-1", gate=gate)
    rec = reconciliation(family_raw, "run-1")
    assert [(r["stage"], r["source_system"], r["entity"], r["rows_read"], r["ok"]) for r in rec] == [
        ("extract", "family", "members", 5, True),
        ("quality", "assoc", "person_record", 1, True),
        ("quality", "family", "person_record", 4, True),
        ("quality", "finance", "person_record", 2, True),
    ]
    # The gate's rebuild leaves the extract stage's quarantine alone.
    assert quarantine_summary(family_raw, "run-1")[0]["stage"] == "extract"
