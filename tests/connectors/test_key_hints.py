"""Pages typed by the connectors agree with dlt's schema on their key: no "several column hints were
different" warning per page (at 1M people it was printed hundreds of times, burying the run report)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from connectors.base import Collector, add_page_steps


def test_typed_pages_of_a_keyed_resource_raise_no_hint_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    import dlt

    pages = [[{"id": f"{p}-{i}", "name": "x", "updated_at": "2026-01-01T00:00:00Z"} for i in range(3)]
             for p in range(4)]
    resource = dlt.resource(iter(pages), name="people", primary_key="id", write_disposition="merge")
    collector = Collector("run-1", "silo", ["people"])
    add_page_steps(resource, collector, "people", {"id": None, "name": None, "updated_at": None}, "id", "people page",
                   lambda row: f"people id={row.get('id')}")
    pipeline = dlt.pipeline("key_hints", destination=dlt.destinations.duckdb(str(tmp_path / "w.duckdb")),
                            pipelines_dir=str(tmp_path / "dlt"))
    dlt_log = logging.getLogger("dlt")  # dlt's own logger does not propagate: listen to it directly
    dlt_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="dlt"):
            pipeline.extract(resource)
    finally:
        dlt_log.removeHandler(caplog.handler)
    assert collector.read == {"people": 12}  # the pages went through the steps
    hints = [r.getMessage() for r in caplog.records if "hint" in r.getMessage()]
    assert hints == []
