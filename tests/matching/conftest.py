"""Fixtures for matching tests: person_record tables built from a few readable fields."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from schemas.contract import PERSON_RECORD, arrow_schema
from tests.conftest import _unavailable

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


def require_java() -> None:
    """Skip (fail under CI) when there is no Java for Spark: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home, "bin", "java")) if home else shutil.which("java") or "java"
    try:
        subprocess.run([java, "-version"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        _unavailable("Java (needed by Spark)", e)


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Spark session for the module."""
    require_java()
    try:
        from matching.spark import spark_session
    except ImportError as e:
        _unavailable("pyspark (the spark extra)", e)
    session = spark_session(tmp_path_factory.mktemp("spark"))
    yield session
    session.stop()
