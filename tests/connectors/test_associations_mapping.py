"""The associations exports through the generic files connector (connectors/files/examples/associations.toml)
and through the associations package: the same quarantine, counts and staging rows, first load and
full re-export (a row gone, a line that cannot be split)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connectors import associations, files
from connectors.registry import staging_models
from connectors.runner import run_source
from tests.connectors.conftest import DIR_HEADER, write_csv
from tests.connectors.test_associations import drop
from warehouse.engine import Warehouse

MAPPING = files.EXAMPLES / "associations.toml"


def _dated(row: dict[str, Any]) -> dict[str, Any]:
    """A deletion's date is the run's clock: compared as deleted or not."""
    return {**row, "deleted_at": row["deleted_at"] is not None} if "deleted_at" in row else row


def _outcome(wh: Warehouse, result: Any, models: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    rows = {table: sorted(tuple(str(v) for v in _dated(r).values()) for _, sql in entries
                          for r in wh.arrow(sql).to_pylist())
            for table, entries in models.items()}
    return {
        "quarantine": sorted((q["locator"], q["field"], q["reason_code"]) for q in result.quarantine.to_pylist()),
        "counts": [(c.entity, c.rows_read, c.rows_loaded, c.rows_quarantined, c.rows_deleted) for c in result.counts],
        "staging": rows,
    }


def test_the_mapping_serves_the_associations_exports_as_the_package_does(tmp_path: Path):
    d = drop(tmp_path)
    ways = {
        "package": (associations, {"drop_dir": d}, staging_models([("associations", {})])),
        "mapping": (files, {"mapping": MAPPING, "drop_dir": d}, files.staging_models(MAPPING)),
    }
    warehouses = {way: Warehouse(f"duckdb:///{tmp_path / way}.duckdb") for way in ways}
    try:
        def run(run_id: str) -> dict[str, Any]:
            return {way: _outcome(warehouses[way], run_source(module, warehouses[way].dlt_destination(), run_id,
                                                              pipelines_dir=tmp_path / f"p_{way}", **config), models)
                    for way, (module, config, models) in ways.items()}

        first = run("r1")
        assert first["package"] == first["mapping"]
        assert first["mapping"]["staging"]["organisation"] and first["mapping"]["staging"]["organisation_role"]

        # the next full export: dirigeant 7 gone, dirigeant 1's line with a field too many
        write_csv(d / "dirigeants.csv", DIR_HEADER, [
            "1;W751000001;Président;M.;LEFÈVRE;Jérôme;02/03/1961;j@example.org;0612345678;3 r Zola;75011;Paris;"
            "05/01/2026;en trop"])
        second = run("r2")
        assert second["package"] == second["mapping"]
        assert ("dirigeants", 1, 0, 1, 1) in second["mapping"]["counts"]
    finally:
        for wh in warehouses.values():
            wh.close()
