"""A source that leaves ``updated_at`` empty loses nothing at load: the rows are extracted, staged
and pass the quality gate (what matching makes of a missing ``updated_at`` is matching's)."""

from __future__ import annotations

from pathlib import Path

from connectors import family
from connectors.registry import staging_models
from connectors.runner import run_source
from tests.connectors.conftest import family_data
from warehouse.staging import build_canonical

FAST = {"backoff_factor": 0.01, "max_retry_delay": 0.1, "max_attempts": 3, "timeout": 5.0}


def test_family_records_without_updated_at_load_and_pass_the_gate(portal, warehouse, destination, tmp_path: Path):
    data = family_data(3)
    for collection in data.values():
        for i, row in enumerate(collection):
            if i % 2 == 0:
                row["updated_at"] = None
    del data["enfants"][1]["updated_at"]  # absent, not only null
    portal.collections = data
    result = run_source(family, destination, "r1", pipelines_dir=tmp_path / "p", base_url=portal.base_url,
                        token=portal.token, per_page=2, **FAST)
    for c in result.counts:
        assert (c.rows_loaded, c.rows_quarantined) == (c.rows_read, 0), c
        assert c.rows_read == len(data[c.entity]), c
    counts = build_canonical(warehouse, staging_models([("family", {})]), "r1")
    assert all(c.quarantined == 0 for c in counts), counts
    people = warehouse.scalar("SELECT count(*) FROM core.person_record")
    assert people == len(data["responsables"]) + len(data["enfants"])
    assert warehouse.scalar("SELECT count(*) FROM core.person_record WHERE updated_at IS NULL") > 0
