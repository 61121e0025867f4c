"""Rectifications (GDPR Art. 16) in survivorship: a candidate of their own, ranked by proof level."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from matching.survivorship import survive
from tests.matching.conftest import make_records

NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
OLD = datetime(2024, 1, 1, tzinfo=UTC)


def _rect(value: str, level: int, attribute: str = "birth_date", citizen: str = "C1") -> pa.Table:
    return pa.table({"rectification_id": ["R1"], "citizen_id": [citizen], "attribute": [attribute],
                     "value": [value], "certification_level": pa.array([level], pa.int32()),
                     "decided_at": pa.array([datetime(2026, 9, 1, tzinfo=UTC)], pa.timestamp("us", tz="UTC"))})


def _survive(records: pa.Table, rect: pa.Table):
    keys = records["record_key"].to_pylist()
    return survive(records, pa.table({"record_key": keys, "citizen_id": ["C1"] * len(keys)}), now=NOW,
                   rectifications=rect)


def test_a_proven_correction_wins_and_every_silo_record_is_on_the_worklist():
    records = make_records({"source_system": "finance", "birth_date": date(1984, 3, 12), "updated_at": OLD},
                           {"source_system": "family", "birth_date": date(1984, 3, 12), "updated_at": OLD})
    out = _survive(records, _rect("1984-03-21", 2))
    citizen = out.citizens.to_pylist()[0]
    assert citizen["birth_date"] == date(1984, 3, 21)
    assert citizen["record_count"] == 2 and citizen["source_systems"] == "family,finance"
    prov = {r["attribute"]: r for r in out.attributes.to_pylist()}["birth_date"]
    assert prov["source_system"] == "rectification" and prov["certification_level"] == 2
    todo = [d for d in out.discrepancies.to_pylist() if d["attribute"] == "birth_date"]
    assert sorted(d["source_system"] for d in todo) == ["family", "finance"]
    assert {d["silo_value"] for d in todo} == {"1984-03-12"} and {d["golden_value"] for d in todo} == {"1984-03-21"}


def test_a_declared_correction_does_not_beat_a_franceconnect_value():
    records = make_records({"source_system": "family", "birth_date": date(1984, 3, 12), "certification_level": 2,
                            "updated_at": OLD})
    out = _survive(records, _rect("1984-03-21", 0))
    assert out.citizens.to_pylist()[0]["birth_date"] == date(1984, 3, 12)


def test_a_correction_of_no_linked_citizen_is_ignored():
    records = make_records({"source_system": "finance", "email": "a@b.fr"})
    out = _survive(records, _rect("x@y.fr", 2, attribute="email", citizen="C9"))
    assert out.citizens.num_rows == 1 and out.citizens.to_pylist()[0]["email"] == "a@b.fr"
