"""The pure step: the same inputs give the same release, table for table (batch, then incremental)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from matching.release import Release, ReleaseGuard, ResolutionInputs, compute_release
from schemas.contract import HOUSEHOLD_MEMBERSHIP, PERSON_RECORD, arrow_schema

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
LAX = ReleaseGuard(min_citizens=10**9, max_citizen_records=10**9)


@pytest.fixture(scope="module")
def records(sandbox_records: pa.Table) -> pa.Table:
    return sandbox_records.select(arrow_schema(PERSON_RECORD).names).cast(arrow_schema(PERSON_RECORD))


def _same(a: Release, b: Release) -> None:
    assert (a.status, a.mode, a.report, a.run, a.model_json) == (b.status, b.mode, b.report, b.run, b.model_json)
    for table, data in a.tables().items():
        assert data.num_rows == b.tables()[table].num_rows, table.name
        assert data.equals(b.tables()[table]), table.name


def test_same_inputs_same_release(records: pa.Table, resolution) -> None:
    inputs = ResolutionInputs(records=records, memberships=arrow_schema(HOUSEHOLD_MEMBERSHIP).empty_table())
    first = compute_release(inputs, "r1", now=NOW, model_json=resolution.model_json, guard=LAX)
    _same(first, compute_release(inputs, "r1", now=NOW, model_json=resolution.model_json, guard=LAX))
    assert first.citizens.num_rows == first.report["citizens_after"] < records.num_rows
    assert first.attributes.num_rows and first.households.num_rows and first.review_queue.num_rows

    # the next run, handed the first one's publication and a decision, incrementally: same again
    keys = first.links["record_key"].to_pylist()
    decision = {"decision_id": "D1", "kind": "cannot_link", "record_key_l": keys[0], "record_key_r": keys[1],
                "groups": None, "revoked_at": None}
    changed = records.slice(0, 5).set_column(
        records.schema.get_field_index("updated_at"), "updated_at",
        pa.array([datetime(2026, 7, 1, tzinfo=UTC)] * 5, pa.timestamp("us", tz="UTC")))
    later = ResolutionInputs(
        records=pa.concat_tables([changed, records.slice(5)]), memberships=inputs.memberships,
        decisions=(decision,), previous_links=first.links, previous_run=first.run,
        previous_households=first.members.select(["household_id", "citizen_id"]),
        review_queue=tuple(first.review_queue.to_pylist()), retired=frozenset({"C-GONE"}))
    second = compute_release(later, "r2", now=NOW, model_json=resolution.model_json, guard=LAX, incremental=True)
    assert second.mode == "incremental" and second.report["previous_run_id"] == "r1"
    _same(second, compute_release(later, "r2", now=NOW, model_json=resolution.model_json, guard=LAX,
                                  incremental=True))
