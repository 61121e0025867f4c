"""The one runner (connectors.runner.run_source) on a toy connector: what it does for every source."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import dlt
import pyarrow as pa
import pytest

from connectors.base import Collector, SourceError
from connectors.runner import run_source, unique_in_run


def toy(rows: dict[str, list[dict[str, Any]]], *, fail: Exception | None = None, translate: bool = True
        ) -> ModuleType:
    """A connector package of kind ``toy``: two tables, ``keyed`` marked unique in a run, ``plain`` not."""
    module = ModuleType("toy")
    module.SYSTEM = "toy"
    module.STANDING_TABLES = {"log": {"id": "bigint", "at": "timestamptz"}}

    @dlt.source(name="toy")
    def source(collector: Collector, label: str) -> Any:
        def items(table: str) -> Any:
            if fail is not None:
                raise fail
            collector.add_read(table, len(rows[table]))
            yield pa.Table.from_pylist(rows[table]) if rows[table] else None

        keyed = unique_in_run(dlt.resource(items("keyed"), name="keyed", primary_key="id", write_disposition="merge"))
        plain = dlt.resource(items("plain"), name="plain", primary_key="id", write_disposition="merge")
        return [keyed, plain]

    module.source = source
    if translate:
        module.translate = lambda e, config: SourceError("toy", f"box {config['label']}", "could not be read")
    return module


def _tables(warehouse: Any, schema: str) -> set[str]:
    return {r[0] for r in warehouse.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s", {"s": schema})}


def test_a_first_load_into_an_empty_table_appends_and_later_loads_merge(warehouse, destination, tmp_path: Path):
    first = toy({"keyed": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], "plain": [{"id": 1, "v": "a"}]})
    result = run_source(first, destination, "r1", pipelines_dir=tmp_path / "p", label="one")

    assert [(c.entity, c.rows_read, c.rows_loaded) for c in result.counts] == [("keyed", 2, 2), ("plain", 1, 1)]
    # the unique-keyed table was appended (no staging copy), the other merged through dlt's staging table
    staged = _tables(warehouse, "raw_toy_staging")
    assert "plain" in staged and "keyed" not in staged
    assert "log" in _tables(warehouse, "raw_toy")  # standing table, created empty
    assert warehouse.scalar("SELECT count(*) FROM raw_toy.log") == 0

    again = toy({"keyed": [{"id": 2, "v": "B"}, {"id": 3, "v": "c"}], "plain": []})
    result = run_source(again, destination, "r2", pipelines_dir=tmp_path / "p", label="one")

    assert [(c.entity, c.rows_read) for c in result.counts] == [("keyed", 2), ("plain", 0)]
    # a table holding rows is merged on its key: id 2 replaced, not doubled
    assert warehouse.rows("SELECT id, v FROM raw_toy.keyed ORDER BY id") == [(1, "a"), (2, "B"), (3, "c")]
    assert "keyed" in _tables(warehouse, "raw_toy_staging")


@pytest.mark.parametrize("translate", [True, False], ids=["own-translation", "default"])
def test_a_failure_becomes_a_source_error_without_the_message(destination, tmp_path: Path, translate: bool):
    secret = "DUPONT Marie 1961-03-02"
    broken = toy({"keyed": [], "plain": []}, fail=ValueError(secret), translate=translate)
    with pytest.raises(SourceError) as caught:
        run_source(broken, destination, "r1", pipelines_dir=tmp_path / "p", label="two")
    assert secret not in str(caught.value)
    expected = "toy: box two: could not be read" if translate else "toy: the source: load failed ("
    assert str(caught.value).startswith(expected) and (translate or "ValueError" in str(caught.value))


def test_a_source_error_raised_by_the_source_passes_as_it_is(destination, tmp_path: Path):
    own = SourceError("toy", "page 3", "HTTP 401: the token was refused")
    broken = toy({"keyed": [], "plain": []}, fail=own)
    with pytest.raises(SourceError) as caught:
        run_source(broken, destination, "r1", pipelines_dir=tmp_path / "p", label="three")
    assert caught.value is own
