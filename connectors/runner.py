"""One runner for every connector: it builds the dlt pipeline of a source and runs it.

A connector package exposes its dlt source (``source``, a ``@dlt.source`` function taking the
run's :class:`~connectors.base.Collector` and its configuration, the keyword arguments its
``configure`` returns) and, optionally:

* ``translate(error, config) -> SourceError``: a failure the source did not name itself, said
  the way its protocol speaks (never quoting driver or parser messages: they can hold row values);
  by default the kinds of error and the source's name;
* ``source_name(**config) -> str``: the name its rows are stored under, when it is not ``SYSTEM``
  (a files source is named by its mapping);
* ``STANDING_TABLES``: raw tables that must exist, empty, before a run brings them a row (deletion
  logs that staging joins): ``{table: {column: logical type}}``.

The runner, the same for all: the pipeline (``hub_<name>``, dataset ``raw_<name>``), the load
packages an aborted run left loaded first (:func:`complete_pending`), a first load into an empty
raw table appended rather than merged where the source says its keys are unique within a run
(:data:`UNIQUE_IN_RUN`), keys declared not null, Arrow's fast loader file format, every failure a
:class:`SourceError`, and the counts and quarantined rows of the run (:class:`ExtractResult`).
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from connectors.base import (
    Collector,
    ExtractResult,
    SourceError,
    exception_chain,
    load_failed,
    loader_file_format,
    system_name,
    with_keys_not_null,
)
from schemas.contract import SQL_TYPES

log = logging.getLogger(__name__)

# A table hint a source sets on a merged resource whose rows hold each primary key at most once
# within a run (a database table's own key, a file screened for duplicate keys): its first load
# into an empty raw table is then appended, which skips dlt's staging table and DELETE / INSERT
# (~3/4 of a 1M-row load's load step). A table holding rows always gets merge semantics.
UNIQUE_IN_RUN = "x-unique-in-run"


def unique_in_run(resource: Any) -> Any:
    """``resource`` marked :data:`UNIQUE_IN_RUN` (its keys are unique within one run's rows)."""
    return resource.apply_hints(additional_table_hints={UNIQUE_IN_RUN: True})


def run_source(connector: ModuleType, destination: Any, run_id: str, *, pipelines_dir: Path,
               **config: Any) -> ExtractResult:
    """Extract one source of kind ``connector`` (a connector package) into ``raw_<name>``.

    ``config``: the source's keyword arguments (what ``connector.configure`` returns). The name is
    the one the hub set (:func:`connectors.base.stored_as`), else the connector's. Any failure
    becomes a :class:`SourceError`: one the source raised is re-raised as is, any other goes through
    the connector's ``translate``. A failed run loads nothing; earlier loads stay.
    """
    name_of = getattr(connector, "source_name", None)
    system = system_name(name_of(**config) if name_of is not None else connector.SYSTEM)
    collector = Collector(run_id, system)
    try:
        pipeline = make_pipeline(system, destination, pipelines_dir)
        complete_pending(pipeline, collector)  # before the emptiness test: an aborted run's rows count
        # built here, inside the guard: a database that cannot be reached at reflection is reported too
        source = connector.source(collector, **config)
        appended = _first_loads(pipeline, source, collector)
        pipeline.run(with_keys_not_null(source), loader_file_format=loader_file_format(destination))
        record_merge(pipeline, source.schema.name, appended)
        for table, columns in getattr(connector, "STANDING_TABLES", {}).items():
            ensure_raw_table(pipeline, table, columns)
    except Exception as e:
        for x in exception_chain(e):
            if isinstance(x, SourceError):
                raise x from None
        translate = getattr(connector, "translate", None)
        raise (translate(e, config) if translate is not None else load_failed(system, "the source")(e)) from None
    result = collector.result()
    log.info("%s run %s: %s", system, run_id,
             ", ".join(f"{c.entity} {c.rows_loaded}/{c.rows_read}" for c in result.counts))
    return result


def _first_loads(pipeline: Any, source: Any, collector: Collector) -> list[str]:
    """Every table of the source gets its count line; the merged ones marked :data:`UNIQUE_IN_RUN`
    whose raw table is empty are appended this time. Returns those tables."""
    tables: dict[str, Any] = {}
    for r in source.resources.values():
        table = r.table_name if isinstance(r.table_name, str) else r.name
        collector.read.setdefault(table, 0)
        collector.quarantined.setdefault(table, 0)
        try:
            hints = r.compute_table_schema()
        except Exception:  # hints that depend on the items: not a table known ahead
            continue
        if hints.get(UNIQUE_IN_RUN) and hints.get("write_disposition") == "merge":
            tables[table] = r
    empty = empty_tables(pipeline, list(tables)) if tables else set()
    for table in sorted(empty):
        tables[table].apply_hints(write_disposition="append")
    return sorted(empty)


def make_pipeline(system: str, destination: Any, pipelines_dir: Path):
    """The dlt pipeline of one system: dataset ``raw_<system>``, state kept under pipelines_dir
    (``system`` is the configured source's name: :func:`connectors.base.system_name`)."""
    import dlt

    system = system_name(system)
    return dlt.pipeline(
        pipeline_name=f"hub_{system}",
        destination=destination,
        dataset_name=f"raw_{system}",
        pipelines_dir=str(pipelines_dir),
    )


def empty_tables(pipeline: Any, names: list[str]) -> set[str]:
    """The raw tables (of ``names``) that do not exist yet or hold no row in the destination."""
    empty: set[str] = set()
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            return set(names)
        schema = client.fully_qualified_dataset_name(quote=False)
        for name in names:
            exists = client.execute_sql(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                schema, name)[0][0]
            if not exists or not client.execute_sql(
                    f"SELECT 1 FROM {client.make_qualified_table_name(name)} LIMIT 1"):
                empty.add(name)
    return empty


def record_merge(pipeline: Any, schema_name: str, appended: list[str]) -> None:
    """Tables a first load appended to (into an empty raw table) are merged into from then on: say
    so in the source's dlt schema now, since a later run that brings a table no row leaves its hints
    as they were."""
    schema = pipeline.schemas[schema_name]
    changed = [name for name in appended if schema.tables.get(name, {}).get("write_disposition") == "append"]
    for name in changed:
        schema.tables[name]["write_disposition"] = "merge"
    if changed:
        pipeline.schemas.save_schema(schema)


def _job_rows(path: str, file_format: str) -> int:
    """Rows in one load job file: parquet from its footer, csv parsed (values may hold line breaks)."""
    import pyarrow.parquet as pq

    if file_format == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":  # dlt compresses job files without changing their name
        data = gzip.decompress(data)
    if file_format == "csv":
        return pacsv.read_csv(pa.BufferReader(data)).num_rows if data.strip() else 0
    return data.count(b"\n")  # jsonl: one record a line


def complete_pending(pipeline: Any, collector: Collector) -> None:
    """Load what an aborted run left (a process killed between dlt's extract or normalise and
    its load, or during it, leaves load packages on disk), before this run extracts anything,
    and count those rows per table as recovered: no run reported them.

    Left alone, dlt's ``run`` would load them and return without extracting this run's data."""
    if not [*pipeline.list_extracted_load_packages(), *pipeline.list_normalized_load_packages()]:
        return
    if pipeline.list_extracted_load_packages():
        pipeline.normalize()
    pending = list(pipeline.list_normalized_load_packages())
    for load_id in pending:
        info = pipeline.get_load_package_info(load_id)
        for jobs in info.jobs.values():
            for job in jobs:
                table = job.job_file_info.table_name
                if table.startswith("_dlt_") or job.job_file_info.file_format == "reference":
                    continue
                n = _job_rows(job.file_path, job.job_file_info.file_format)
                collector.recovered[table] = collector.recovered.get(table, 0) + n
    pipeline.load()
    collector.recovered_from.extend(pending)
    log.warning("%s: %d load package(s) an aborted run left were loaded first: %s", collector.source_system,
                len(pending), ", ".join(f"{t} {n}" for t, n in collector.recovered.items()) or "no row")


def ensure_raw_table(pipeline: Any, table: str, columns: Mapping[str, str]) -> None:
    """Create ``raw_<system>.<table>`` empty when no run has loaded a row into it yet.

    dlt creates a table with its first rows only; a table that only ever receives occasional rows
    (deletion logs) must still exist for staging SQL to join it. ``columns``: name → logical type
    of schemas.contract (text, bigint, timestamptz, ...), matching what dlt would create.
    """
    engine = 0 if pipeline.destination.destination_name == "duckdb" else 1
    cols = ", ".join(f'"{name}" {SQL_TYPES[kind][engine]}' for name, kind in columns.items())
    with pipeline.sql_client() as client:
        client.execute_sql(f"CREATE TABLE IF NOT EXISTS {client.make_qualified_table_name(table)} ({cols})")
