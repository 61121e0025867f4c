"""Run bookkeeping: rows read / loaded / quarantined per run, and whether they add up.

Two stages count rows: ``extract`` (connectors: ``ops.source_run``, written by
:func:`record_source_runs`) and ``quality`` (the gate: ``ops.stage_run``, written by
``warehouse.staging.build_canonical``). Quarantined rows of either stage live in
``ops.quarantine``. Everything here is idempotent per run id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from schemas.contract import QUARANTINE, SOURCE_RUN, STAGE_RUN, arrow_schema
from warehouse.engine import Warehouse, bind_list, qualified

log = logging.getLogger(__name__)


def record_source_runs(wh: Warehouse, run_id: str, counts: list[dict[str, Any]]) -> int:
    """Store per-entity extraction counts (rows of ``SOURCE_RUN``) for a run; replaces the same keys.

    Each dict needs ``source_system``, ``entity``, ``rows_read``, ``rows_loaded``; ``rows_quarantined``
    defaults to 0, ``status`` to ``ok``, ``finished_at`` to now; ``run_id`` is always ``run_id``.
    Returns the number of rows stored.
    """
    now = datetime.now(UTC)
    rows = [
        {c: v for c, v in ({"rows_quarantined": 0, "status": "ok", "error": None, "finished_at": now}
                           | row | {"run_id": run_id}).items() if c in SOURCE_RUN.column_names}
        for row in counts
    ]
    if not rows:
        return 0
    table = pa.Table.from_pylist(rows, schema=arrow_schema(SOURCE_RUN))
    params: dict[str, Any] = {"run": run_id}
    pairs = []
    for i, r in enumerate(rows):
        params[f"s{i}"], params[f"e{i}"] = r["source_system"], r["entity"]
        pairs.append(f"(source_system = :s{i} AND entity = :e{i})")
    return wh.write(SOURCE_RUN, table, delete_where=(f"run_id = :run AND ({' OR '.join(pairs)})", params))


def record_quarantine(
    wh: Warehouse,
    run_id: str,
    quarantine: pa.Table,
    *,
    stage: str = "extract",
    source_systems: Iterable[str] = (),
) -> int:
    """Store a run's quarantined rows of one stage, replacing that run's rows of the same silos.

    ``quarantine`` has the columns of ``QUARANTINE``; ``run_id``, ``stage`` and (when missing)
    ``quarantined_at`` are filled in. The silos replaced are those present in the table plus
    ``source_systems`` — name a silo there to clear its rows when a re-run quarantines nothing.
    """
    n = quarantine.num_rows
    if n == 0:
        quarantine = arrow_schema(QUARANTINE).empty_table()
    for name, value in (("run_id", run_id), ("stage", stage)):
        if name in quarantine.column_names:
            quarantine = quarantine.drop_columns([name])
        quarantine = quarantine.append_column(name, pa.array([value] * n, pa.string()))
    if "quarantined_at" not in quarantine.column_names:
        quarantine = quarantine.append_column(
            "quarantined_at", pa.array([datetime.now(UTC)] * n, pa.timestamp("us", tz="UTC"))
        )
    systems = sorted((set(source_systems) | set(quarantine.column("source_system").to_pylist())) - {None})
    if not systems:
        return 0
    in_systems, params = bind_list("s", systems)
    written = wh.write(
        QUARANTINE,
        quarantine,
        delete_where=(f"run_id = :run AND stage = :stage AND source_system IN ({in_systems})",
                      {"run": run_id, "stage": stage, **params}),
    )
    log.info("run %s: %d %s-stage quarantine row(s) recorded for %d silo(s)", run_id, written, stage, len(systems))
    return written


def reconciliation(wh: Warehouse, run_id: str) -> list[dict[str, Any]]:
    """Per stage, silo and entity of a run: rows_read, rows_loaded, rows_quarantined and ``ok``.

    ``ok`` is ``rows_read == rows_loaded + rows_quarantined``: nothing was dropped silently.
    Stage ``extract`` comes from ``ops.source_run`` (entity = the source entity); stage ``quality``
    from ``ops.stage_run`` (entity = the canonical table, read = staged, loaded = passed).
    """
    out: list[dict[str, Any]] = []
    if wh.table_exists(SOURCE_RUN.schema, SOURCE_RUN.name):
        out += wh.dicts(
            f"SELECT 'extract' AS stage, source_system, entity, rows_read, rows_loaded, rows_quarantined "
            f"FROM {qualified(SOURCE_RUN)} WHERE run_id = :run",
            {"run": run_id},
        )
    if wh.table_exists(STAGE_RUN.schema, STAGE_RUN.name):
        out += wh.dicts(
            f"SELECT 'quality' AS stage, source_system, table_name AS entity, rows_staged AS rows_read, "
            f"rows_passed AS rows_loaded, rows_quarantined FROM {qualified(STAGE_RUN)} WHERE run_id = :run",
            {"run": run_id},
        )
    for r in out:
        for k in ("rows_read", "rows_loaded", "rows_quarantined"):
            r[k] = int(r[k])
        r["ok"] = r["rows_read"] == r["rows_loaded"] + r["rows_quarantined"]
    return sorted(out, key=lambda r: (r["stage"] != "extract", r["source_system"], r["entity"]))


def quarantine_summary(wh: Warehouse, run_id: str) -> list[dict[str, Any]]:
    """Quarantine rows of a run counted by (source_system, entity, stage, reason_code).

    A row failing several checks counts once per check it failed.
    """
    if not wh.table_exists(QUARANTINE.schema, QUARANTINE.name):
        return []
    rows = wh.dicts(
        f"SELECT source_system, entity, stage, reason_code, count(*) AS count FROM {qualified(QUARANTINE)} "
        "WHERE run_id = :run GROUP BY source_system, entity, stage, reason_code "
        "ORDER BY source_system, entity, stage, reason_code",
        {"run": run_id},
    )
    for r in rows:
        r["count"] = int(r["count"])
    return rows
