"""Fixtures for matching tests: person_record tables built from a few readable fields."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pytest

from schemas.contract import PERSON_RECORD, arrow_schema

SANDBOX_PEOPLE = 2_000

_DEFAULTS: dict[str, Any] = {
    "source_system": "finance",
    "role": "debiteur",
    "certification_level": 0,
    "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
}


def make_records(*rows: dict[str, Any]) -> pa.Table:
    """A canonical person_record table; unspecified columns are null (or a default)."""
    schema = arrow_schema(PERSON_RECORD)
    full = []
    for i, row in enumerate(rows):
        r = {**_DEFAULTS, **row}
        r.setdefault("source_id", str(i))
        r.setdefault("record_key", f"{r['source_system']}:{r['source_id']}")
        full.append({name: r.get(name) for name in schema.names})
    return pa.Table.from_pylist(full, schema=schema)


@pytest.fixture(scope="session")
def sandbox_records() -> pa.Table:
    """A 2,000-person sandbox commune's person records (with ground truth ``person_id``)."""
    from sandbox.observations import person_records

    return person_records(SANDBOX_PEOPLE, seed=42)


@pytest.fixture(scope="session")
def resolution(sandbox_records: pa.Table):
    """The sandbox resolved once (model trained): its model is reused by the other tests."""
    from matching.resolve import resolve

    return resolve(sandbox_records)


@pytest.fixture
def records():
    return make_records


__all__ = ["date", "make_records"]
