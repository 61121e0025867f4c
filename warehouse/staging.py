"""Staging → quality gate → core: build the canonical tables from the silos' staging models.

A staging model is a SELECT over ``raw_<system>.*`` producing exactly one canonical table's
columns. It is named ``stg_<system>__<entity>`` and ``<system>`` must be the ``source_system``
its rows carry: the core tables are rebuilt per silo, so the name says which rows a model owns.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
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
    STAGE_RUN,
    Table,
    arrow_schema,
)
from warehouse.engine import Warehouse, bind_list
from warehouse.quality import (
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
    parts: list[pa.Table] = []
    model_of_row: list[str] = []
    for name, sql in entries:
        parts.append(_stage_model(wh, table, name, sql))
        model_of_row.extend([name] * parts[-1].num_rows)
    staged = pa.concat_tables(parts) if parts else arrow_schema(table).empty_table()
    systems_of_row = [model_system(m) for m in model_of_row]

    failures = (
        gate.validate(table, staged)
        + lineage_failures(table, staged, systems_of_row)
        + reference_failures(wh, table, staged)
    )
    suppressed = suppression.rows(table, staged) if suppression is not None else set()
    if suppressed:  # an erased person: one `suppressed` row each, nothing else said about them
        failures = [f for f in failures if f.row not in suppressed] + [
            Failure(i, None, "suppressed", "erased person (GDPR suppression list)") for i in sorted(suppressed)]
    bad_rows = sorted({f.row for f in failures})
    passing = staged  # every row passed: no copy
    if bad_rows:
        passing = staged.filter(pc.invert(pc.is_in(pa.array(range(staged.num_rows), pa.int64()),
                                                   value_set=pa.array(bad_rows, pa.int64()))))
    quarantine = _quarantine_rows(table, staged, failures, model_of_row, systems_of_row, run_id, now)

    systems = sorted({model_system(name) for name, _ in entries})
    in_systems, params = bind_list("s", systems)
    system_expr = (
        '"source_system"' if "source_system" in table.column_names else "split_part(\"organisation_key\", ':', 1)"
    )
    counts = _counts(table, systems, systems_of_row, bad_rows)
    # the staged rows are not held beside their passing copy while it is written (the interactions
    # at 1M people: the canonical step's peak, docs/scale.md)
    del parts, staged, failures, model_of_row, systems_of_row
    with wh.transaction():
        wh.write(table, passing, delete_where=(f"{system_expr} IN ({in_systems})", params))
        wh.write(
            QUARANTINE,
            quarantine,
            delete_where=(
                f"run_id = :run AND stage = 'quality' AND entity = :entity AND source_system IN ({in_systems})",
                {"run": run_id, "entity": table.name, **params},
            ),
        )
        wh.write(STAGE_RUN, _stage_run_rows(counts, run_id, now), delete_where=(
            f"run_id = :run AND table_name = :entity AND source_system IN ({in_systems})",
            {"run": run_id, "entity": table.name, **params},
        ))
    for c in counts:
        log.info("core.%s from %s: %d staged, %d passed, %d quarantined",
                 c.table, c.source_system, c.staged, c.passed, c.quarantined)
    return counts


def _stage_model(wh: Warehouse, table: Table, name: str, sql: str) -> pa.Table:
    view = f'"{STAGING_SCHEMA}"."{name}"'
    wh.execute(f"DROP VIEW IF EXISTS {view}")
    # Model SQL is project code (never user input): it is the view's definition.
    wh.execute(f"CREATE VIEW {view} AS {sql}")
    cols = ", ".join(f'"{c}"' for c in table.column_names)
    order = ", ".join(f'"{c}"' for c in table.key)
    data = wh.arrow(f"SELECT {cols} FROM {view}" + (f" ORDER BY {order}" if order else ""))
    return _cast(data, table, name)


def _cast(data: pa.Table, table: Table, model: str) -> pa.Table:
    """The model's rows in the contract's types; a failed cast names the column, never the value."""
    schema = arrow_schema(table)
    arrays = []
    for f in schema:
        col = data.column(f.name)
        if col.type == pa.null():
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


def _counts(table: Table, systems: list[str], systems_of_row: list[str], bad_rows: list[int]) -> list[StageCount]:
    staged = dict.fromkeys(systems, 0)
    bad = dict.fromkeys(systems, 0)
    for s in systems_of_row:
        staged[s] += 1
    for i in bad_rows:
        bad[systems_of_row[i]] += 1
    return [StageCount(table.name, s, staged[s], staged[s] - bad[s], bad[s]) for s in systems]


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
    staged: pa.Table,
    failures: list[Failure],
    model_of_row: list[str],
    systems_of_row: list[str],
    run_id: str,
    now: datetime,
) -> pa.Table:
    rows = sorted({f.row for f in failures})
    by_row = dict(zip(rows, staged.take(pa.array(rows, pa.int64())).to_pylist(), strict=True)) if rows else {}
    payloads = {i: json.dumps(r, default=_json_value, ensure_ascii=False) for i, r in by_row.items()}
    for f in failures:  # an erased person's row keeps neither its values nor its key
        if f.reason_code == "suppressed":
            payloads[f.row] = None
    records = [
        {
            "run_id": run_id,
            "source_system": systems_of_row[f.row],
            "entity": table.name,
            "stage": "quality",
            "locator": (model_of_row[f.row] if f.reason_code == "suppressed"
                        else _locator(model_of_row[f.row], by_row[f.row], table.key)),
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
