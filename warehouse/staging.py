"""Staging → quality gate → core: build the canonical tables from the silos' staging models.

A staging model is a SELECT over ``raw_<system>.*`` producing exactly one canonical table's
columns. It is named ``stg_<system>__<entity>`` and ``<system>`` must be the ``source_system``
its rows carry: the core tables are rebuilt per silo, so the name says which rows a model owns.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas.contract import (
    CANONICAL_TABLES,
    HOUSEHOLD_MEMBERSHIP,
    INTERACTION,
    ORGANISATION,
    ORGANISATION_ROLE,
    PERSON_RECORD,
    QUARANTINE,
    SQL_TYPES,
    STAGE_RUN,
    Table,
    arrow_schema,
)
from warehouse.engine import Warehouse, bind_list, conform, qualified
from warehouse.quality import (
    ROW,
    Failure,
    QualityGate,
    lineage_failures,
    reference_failures,
)

log = logging.getLogger(__name__)

STAGING_SCHEMA = "staging"
MODEL_NAME = re.compile(r"^stg_([a-z][a-z0-9]*(?:_[a-z0-9]+)*?)__([a-z][a-z0-9_]*)$")
# Referenced tables first, so references are checked against this run's core rows.
BUILD_ORDER = (PERSON_RECORD, ORGANISATION, HOUSEHOLD_MEMBERSHIP, INTERACTION, ORGANISATION_ROLE)
_TABLES = {t.name: t for t in CANONICAL_TABLES}
CHUNK_ROWS = 250_000  # staged rows read, gated and written at a time


class StagingError(ValueError):
    """A staging model is malformed (bad name, unknown table, a column of the wrong type)."""


@dataclass(frozen=True)
class StageCount:
    """Rows of one canonical table from one silo in one build: staged = passed + quarantined."""

    table: str
    source_system: str
    staged: int
    passed: int
    quarantined: int


def model_system(model_name: str) -> str:
    """The silo a staging model belongs to: ``stg_finance__tiers`` → ``finance``."""
    m = MODEL_NAME.match(model_name)
    if not m:
        raise StagingError(f"staging model name {model_name!r} is not stg_<system>__<entity>")
    return m.group(1)


def build_canonical(
    wh: Warehouse,
    models: dict[str, list[tuple[str, str]]],
    run_id: str,
    *,
    gate: QualityGate | None = None,
    today: date | None = None,
    suppression: Any = None,
) -> list[StageCount]:
    """Create the staging views, gate their rows, rebuild the core tables of the silos given.
    Every canonical table is created from the contract if missing, so one no model feeds is empty.

    ``models`` maps a canonical table name to ``[(model_name, select_sql), ...]``. Each model
    becomes the view ``staging.<model_name>``; a table's models are unioned and validated
    (:mod:`warehouse.quality`); passing rows replace ``core.<table>``'s rows of the silos named
    by the models, failing rows replace this run's ``ops.quarantine`` rows (stage ``quality``)
    of those silos, one quarantine row per (row, failed check). Counts go to ``ops.stage_run``.
    Running it twice on the same raw data leaves the same core and quarantine rows (only the
    bookkeeping timestamps move). Returns one :class:`StageCount` per (table, silo).
    ``suppression`` (:class:`warehouse.gdpr_suppression.Suppression`): rows of erased people are
    set aside as quarantined, reason ``suppressed``, without payload.
    """
    unknown = sorted(set(models) - set(_TABLES))
    if unknown:
        raise StagingError(f"not canonical tables: {', '.join(unknown)}")
    for entries in models.values():
        for name, _ in entries:
            model_system(name)
    gate = gate or QualityGate(today)
    wh.create_schema(STAGING_SCHEMA)
    # Every canonical table exists after a build, empty when no source feeds it (a person file
    # alone feeds no household or interaction): the golden build, the desk and the run report
    # read them all.
    wh.ensure_tables(CANONICAL_TABLES)
    now = datetime.now(UTC)
    counts: list[StageCount] = []
    for table in BUILD_ORDER:
        if table.name in models:
            counts.extend(_build_table(wh, table, models[table.name], run_id, gate, now, suppression))
    return counts


def _build_table(
    wh: Warehouse, table: Table, entries: list[tuple[str, str]], run_id: str, gate: QualityGate, now: datetime,
    suppression: Any = None,
) -> list[StageCount]:
    """One canonical table, :data:`CHUNK_ROWS` staged rows at a time: each model's rows are
    numbered into a temporary table of the warehouse (their position in the staged table: the
    models one after the other, each in key order); the checks that span rows (the key's
    uniqueness, references to other tables) run there and return only the failing positions; then
    each chunk is read, cast, gated, its passing rows appended to one temporary table and its
    quarantine rows to another. What Python holds does not grow with the table. The temporary
    tables are the connection's own and filled outside the table's transaction (DuckDB writes them
    out past its memory limit; appended inside a transaction, it would hold them until the commit);
    then ONE transaction replaces the silos' core rows and this run's quarantine rows by them (a
    DELETE and an INSERT … SELECT each) and records the counts: a failure before the commit leaves
    the previous table, and the temporary tables are dropped whatever happens."""
    systems = sorted({model_system(name) for name, _ in entries})
    in_systems, params = bind_list("s", systems)
    system_expr = (
        '"source_system"' if "source_system" in table.column_names else "split_part(\"organisation_key\", ':', 1)"
    )
    staged = dict.fromkeys(systems, 0)
    bad = dict.fromkeys(systems, 0)
    wh.ensure_tables((QUARANTINE, STAGE_RUN))
    passed, quarantined = _temporary(wh, table, "_hub_passed"), _temporary(wh, QUARANTINE, "_hub_quarantined")
    numbered: list[tuple[str, str, int, int]] = []  # (model, its numbered rows, first position, rows)
    try:
        start = 0
        for i, (name, sql) in enumerate(entries):
            rows = _number_model(wh, table, name, sql, f"_hub_staged_{i}", start)
            numbered.append((name, f"_hub_staged_{i}", start, rows))
            start += rows
        across = _failures_across_rows(wh, table, gate, numbered)
        for name, relation, first, rows in numbered:
            system = model_system(name)
            staged[system] += rows
            for at in range(first, first + rows, CHUNK_ROWS):
                n = min(CHUNK_ROWS, first + rows - at)
                chunk = _cast(wh.arrow(f'SELECT {_columns(table)} FROM {relation} WHERE "{ROW}" >= :a '
                                       f'AND "{ROW}" < :b ORDER BY "{ROW}"', {"a": at, "b": at + n}), table, name)
                failures = _chunk_failures(table, gate, chunk, at, system, across, suppression)
                bad_rows = sorted({f.row - at for f in failures})
                bad[system] += len(bad_rows)
                passing = chunk  # every row passed: no copy
                if bad_rows:
                    passing = chunk.filter(pc.invert(pc.is_in(pa.array(range(n), pa.int64()),
                                                              value_set=pa.array(bad_rows, pa.int64()))))
                _append(wh, passed, table, passing)
                _append(wh, quarantined, QUARANTINE,
                        _quarantine_rows(table, chunk, at, failures, name, system, run_id, now))
            wh.execute(f"DROP TABLE {relation}")
        counts = [StageCount(table.name, s, staged[s], staged[s] - bad[s], bad[s]) for s in systems]
        with wh.transaction():
            wh.execute(f"DELETE FROM {qualified(table)} WHERE {system_expr} IN ({in_systems})", params)
            wh.execute(f"INSERT INTO {qualified(table)} ({_columns(table)}) SELECT {_columns(table)} FROM {passed}")
            wh.execute(
                f"DELETE FROM {qualified(QUARANTINE)} WHERE run_id = :run AND stage = 'quality' AND entity = :entity "
                f"AND source_system IN ({in_systems})", {"run": run_id, "entity": table.name, **params})
            wh.execute(f"INSERT INTO {qualified(QUARANTINE)} ({_columns(QUARANTINE)}) "
                       f"SELECT {_columns(QUARANTINE)} FROM {quarantined}")
            wh.write(STAGE_RUN, _stage_run_rows(counts, run_id, now), delete_where=(
                f"run_id = :run AND table_name = :entity AND source_system IN ({in_systems})",
                {"run": run_id, "entity": table.name, **params},
            ))
    finally:
        for relation in (passed, quarantined, *(r for _, r, _, _ in numbered)):
            wh.execute(f"DROP TABLE IF EXISTS {relation}")
    for c in counts:
        log.info("core.%s from %s: %d staged, %d passed, %d quarantined",
                 c.table, c.source_system, c.staged, c.passed, c.quarantined)
    return counts


def _temporary(wh: Warehouse, table: Table, relation: str) -> str:
    """An empty temporary table ``relation`` of the connection, with ``table``'s columns and types
    (no key: the gate has checked it; the core table's key checks the rows again on insert)."""
    col = 0 if wh.kind == "duckdb" else 1
    types = ", ".join(f'"{c.name}" {SQL_TYPES[c.type][col]}' for c in table.columns)
    wh.execute(f"DROP TABLE IF EXISTS {relation}")
    wh.execute(f"CREATE TEMPORARY TABLE {relation} ({types})")
    return relation


def _append(wh: Warehouse, relation: str, table: Table, data: pa.Table) -> None:
    """Append rows in ``table``'s contract to the temporary table ``relation``, in a transaction of
    their own."""
    if not data.num_rows:
        return
    if wh.kind == "postgres":  # COPY, as every bulk write (pg_temp: the connection's own schema)
        wh.write(replace(table, schema="pg_temp", name=relation, key=()), data)
        return
    con = wh.connection  # DuckDB's temporary catalog has no schema name of its own to write through
    con.register("_hub_chunk", conform(data, table))
    try:
        con.execute(f"INSERT INTO {relation} ({_columns(table)}) SELECT {_columns(table)} FROM _hub_chunk")
    finally:
        con.unregister("_hub_chunk")


def _columns(table: Table) -> str:
    return ", ".join(f'"{c}"' for c in table.column_names)


def _number_model(wh: Warehouse, table: Table, name: str, sql: str, relation: str, start: int) -> int:
    """The model's view, and its rows in key order numbered from ``start`` (:data:`ROW`) into the
    temporary table ``relation`` of the warehouse (DuckDB spills it past its memory limit). Returns
    the model's row count."""
    view = f'"{STAGING_SCHEMA}"."{name}"'
    wh.execute(f"DROP VIEW IF EXISTS {view}")
    # Model SQL is project code (never user input): it is the view's definition.
    wh.execute(f"CREATE VIEW {view} AS {sql}")
    order = ", ".join(f'"{c}"' for c in table.key)
    wh.execute(f"DROP TABLE IF EXISTS {relation}")
    wh.execute(f'CREATE TEMPORARY TABLE {relation} AS SELECT {start} + row_number() OVER '
               f'({f"ORDER BY {order}" if order else ""}) - 1 AS "{ROW}", {_columns(table)} FROM {view} ORDER BY 1')
    if wh.kind == "postgres":  # DuckDB skips row groups by their min / max; PostgreSQL needs an index
        wh.execute(f'CREATE INDEX ON {relation} ("{ROW}")')
    return int(wh.scalar(f"SELECT count(*) FROM {relation}"))


def _failures_across_rows(
    wh: Warehouse, table: Table, gate: QualityGate, numbered: list[tuple[str, str, int, int]]
) -> dict[int, list[Failure]]:
    """The failures no chunk can see on its own, by position: the key's uniqueness (GE, on the
    rows sharing their key with another row, found by the warehouse) and references to the core
    tables (looked up in the warehouse)."""
    if not numbered:
        return {}
    key = ", ".join(f'"{c}"' for c in table.key)
    union = " UNION ALL ".join(f'SELECT "{ROW}", {key} FROM {relation}' for _, relation, _, _ in numbered)
    shared = _cast_keys(wh.arrow(
        f'SELECT "{ROW}", {key} FROM (SELECT "{ROW}", {key}, count(*) OVER (PARTITION BY {key}) AS n '
        f'FROM ({union}) u) d WHERE n > 1 ORDER BY 1'), table)
    failures = gate.validate_keys(table, shared)
    for _, relation, _, _ in numbered:
        failures.extend(reference_failures(wh, table, relation))
    by_row: dict[int, list[Failure]] = {}
    for f in failures:
        by_row.setdefault(f.row, []).append(f)
    return by_row


def _cast_keys(keys: pa.Table, table: Table) -> pa.Table:
    """The key columns in the contract's types (as the chunks are cast), positions as int64."""
    schema = arrow_schema(table)
    arrays = [keys.column(ROW).cast(pa.int64())]
    for c in table.key:
        col, t = keys.column(c), schema.field(c).type
        arrays.append(pa.nulls(len(col), t) if col.null_count == len(col) else col.cast(t))
    return pa.Table.from_arrays(arrays, names=[ROW, *table.key])


def _chunk_failures(
    table: Table, gate: QualityGate, chunk: pa.Table, at: int, system: str,
    across: dict[int, list[Failure]], suppression: Any,
) -> list[Failure]:
    """Every failure of the chunk's rows (positions in the staged table: the chunk starts at ``at``)."""
    failures = gate.validate_rows(table, chunk, at) + [
        replace(f, row=f.row + at) for f in lineage_failures(table, chunk, [system] * chunk.num_rows)]
    for i in range(at, at + chunk.num_rows):
        failures.extend(across.get(i, ()))
    suppressed = suppression.rows(table, chunk) if suppression is not None else set()
    if suppressed:  # an erased person: one `suppressed` row each, nothing else said about them
        rows = {at + i for i in suppressed}
        failures = [f for f in failures if f.row not in rows] + [
            Failure(i, None, "suppressed", "erased person (GDPR suppression list)") for i in sorted(rows)]
    return failures


def _cast(data: pa.Table, table: Table, model: str) -> pa.Table:
    """The model's rows in the contract's types; a failed cast names the column, never the value."""
    schema = arrow_schema(table)
    arrays = []
    for f in schema:
        col = data.column(f.name)
        if col.null_count == len(col):  # no value (a NULL column, or a chunk without one): nothing to convert
            arrays.append(pa.nulls(len(col), f.type))
            continue
        try:
            arrays.append(col.cast(f.type) if not col.type.equals(f.type) else col)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            # Arrow's message quotes the offending value: drop it (`from None`).
            raise StagingError(
                f"staging model {model}: column {f.name} ({col.type}) does not convert to {f.type}"
            ) from None
    return pa.Table.from_arrays(arrays, schema=pa.schema([f.with_nullable(True) for f in schema]))


def _stage_run_rows(counts: list[StageCount], run_id: str, now: datetime) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"run_id": run_id, "table_name": c.table, "source_system": c.source_system,
             "rows_staged": c.staged, "rows_passed": c.passed, "rows_quarantined": c.quarantined,
             "finished_at": now}
            for c in counts
        ],
        schema=arrow_schema(STAGE_RUN),
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _locator(model: str, row: dict[str, Any], key: tuple[str, ...]) -> str:
    return f"{model}:" + "|".join("null" if row[k] is None else str(row[k]) for k in key)


def _quarantine_rows(
    table: Table,
    chunk: pa.Table,
    at: int,
    failures: list[Failure],
    model: str,
    system: str,
    run_id: str,
    now: datetime,
) -> pa.Table:
    """One quarantine row per (row, failed check) of a chunk of one model's rows starting at ``at``."""
    rows = sorted({f.row for f in failures})
    by_row = (dict(zip(rows, chunk.take(pa.array([r - at for r in rows], pa.int64())).to_pylist(), strict=True))
              if rows else {})
    payloads = {i: json.dumps(r, default=_json_value, ensure_ascii=False) for i, r in by_row.items()}
    for f in failures:  # an erased person's row keeps neither its values nor its key
        if f.reason_code == "suppressed":
            payloads[f.row] = None
    records = [
        {
            "run_id": run_id,
            "source_system": system,
            "entity": table.name,
            "stage": "quality",
            "locator": model if f.reason_code == "suppressed" else _locator(model, by_row[f.row], table.key),
            "field": f.field,
            "reason_code": f.reason_code,
            "reason": f.reason,
            "payload": payloads[f.row],
            "quarantined_at": now,
        }
        for f in sorted(failures, key=lambda f: (f.row, f.reason_code, f.field or ""))
    ]
    return pa.Table.from_pylist(records, schema=arrow_schema(QUARANTINE))


__all__ = ["BUILD_ORDER", "StageCount", "StagingError", "build_canonical", "model_system"]
