"""Run bookkeeping: rows read / loaded / quarantined per run, and whether they add up.

Two stages count rows: ``extract`` (connectors: ``ops.source_run``, written by
:func:`record_source_runs`) and ``quality`` (the gate: ``ops.stage_run``, written by
``warehouse.staging.build_canonical``). Quarantined rows of either stage live in
``ops.quarantine``. Each run — a ``hub run``, an Airflow DAG run — has one row in
``ops.pipeline_run`` (:func:`start_run`, :func:`record_step` per Airflow task, :func:`finish_run`):
how it ended, failed sources, timings; :func:`run_report` reads all of a run's bookkeeping together.
Everything here is idempotent per run id.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from schemas.contract import (
    PIPELINE_RUN,
    QUARANTINE,
    RESOLUTION_RELEASE,
    SOURCE_RUN,
    SQL_TYPES,
    STAGE_RUN,
    Table,
    arrow_schema,
)
from warehouse.engine import Warehouse, bind_list, qualified

log = logging.getLogger(__name__)


class Laps:
    """Seconds of a step's consecutive parts: ``laps("name")`` ends the part begun when the last one
    ended (or at creation); ``parts`` maps each name to its seconds, in order."""

    def __init__(self, digits: int = 3) -> None:
        self.parts: dict[str, float] = {}
        self._digits = digits
        self._last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.parts[name] = round(now - self._last, self._digits)
        self._last = now


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
    _add_new_columns(wh, SOURCE_RUN)
    params: dict[str, Any] = {"run": run_id}
    pairs = []
    for i, r in enumerate(rows):
        params[f"s{i}"], params[f"e{i}"] = r["source_system"], r["entity"]
        pairs.append(f"(source_system = :s{i} AND entity = :e{i})")
    return wh.write(SOURCE_RUN, table, delete_where=(f"run_id = :run AND ({' OR '.join(pairs)})", params))


def _add_new_columns(wh: Warehouse, table: Table) -> None:
    """Columns the contract gained since the table was created (nullable ones), added in place."""
    if not wh.table_exists(table.schema, table.name):
        return
    have = set(wh.columns_of(table.schema, table.name))
    col = 0 if wh.kind == "duckdb" else 1
    for c in table.columns:
        if c.name not in have:
            wh.execute(f'ALTER TABLE {qualified(table)} ADD COLUMN "{c.name}" {SQL_TYPES[c.type][col]}')


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
        _add_new_columns(wh, SOURCE_RUN)
        out += wh.dicts(
            f"SELECT 'extract' AS stage, source_system, entity, rows_read, rows_loaded, rows_quarantined, "
            f"COALESCE(rows_deleted, 0) AS rows_deleted, COALESCE(rows_recovered, 0) AS rows_recovered "
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
        for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_deleted", "rows_recovered"):
            r[k] = int(r.get(k) or 0)
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


# ---------------------------------------------------------------------------- runs
def start_run(wh: Warehouse, run_id: str, *, dag_id: str | None = None, now: datetime | None = None) -> list[str]:
    """Record ``run_id`` as running, first marking ``aborted`` the runs of the same launcher a dead
    process left ``running``: ``hub run`` (``dag_id`` None) holds the run lock for the whole warehouse
    and its whole run, so no other ``hub run`` is alive then; an Airflow DAG (``dag_id``) runs one
    run at a time (``max_active_runs=1``), so its earlier run has ended whatever its row says.
    Returns the run ids so marked."""
    now = now or datetime.now(UTC)
    wh.ensure_table(PIPELINE_RUN)
    _add_new_columns(wh, PIPELINE_RUN)
    with wh.transaction():
        dead = [r[0] for r in wh.rows(f"SELECT run_id FROM {qualified(PIPELINE_RUN)} WHERE status = 'running' "
                                      "AND run_id <> :run AND COALESCE(dag_id, '') = :dag ORDER BY run_id",
                                      {"run": run_id, "dag": dag_id or ""})]
        if dead:
            in_dead, params = bind_list("d", dead)
            why = (f"its process ended before the run finished (killed or crashed); run {run_id} found it so and "
                   "completed what it had left to load")
            wh.execute(f"UPDATE {qualified(PIPELINE_RUN)} SET status = 'aborted', finished_at = :now, message = :why "
                       f"WHERE run_id IN ({in_dead})", {"now": now, "why": why, **params})
        row = {"run_id": run_id, "status": "running", "started_at": now, "finished_at": None, "pid": os.getpid(),
               "host": socket.gethostname(), "failed_sources": None, "timings": None, "vetoes": None,
               "message": None, "dag_id": dag_id}
        wh.write(PIPELINE_RUN, pa.Table.from_pylist([row], schema=arrow_schema(PIPELINE_RUN)),
                 delete_where=("run_id = :run", {"run": run_id}))
    for d in dead:
        log.warning("run %s was left running by a process that ended: marked aborted", d)
    return dead


def record_step(wh: Warehouse, run_id: str, step: str, *, seconds: float | None = None,
                error: str | None = None, status: str | None = None) -> None:
    """One step of a run that is recorded step by step (an Airflow DAG's tasks): its ``seconds`` in
    the run's timings when it succeeded, else the ``error`` (no personal data) as the run's message;
    ``status`` ends the run at once (``refused``: no retry will change it)."""
    wh.ensure_table(PIPELINE_RUN)
    _add_new_columns(wh, PIPELINE_RUN)
    with wh.transaction():
        found = wh.rows(f"SELECT timings FROM {qualified(PIPELINE_RUN)} WHERE run_id = :run", {"run": run_id})
        if not found:
            raise LookupError(f"run {run_id} was not started (ops.start_run)")
        timings = json.loads(found[0][0]) if found[0][0] else {}
        sets, params = [], {"run": run_id}
        if seconds is not None:
            timings[step] = round(seconds, 2)
            sets.append("timings = :timings")
            params["timings"] = json.dumps(timings)
        if error is not None:
            sets.append("message = :message")
            params["message"] = f"{step}: {error}"
        if status is not None:
            sets += ["status = :status", "finished_at = :now"]
            params |= {"status": status, "now": datetime.now(UTC)}
        if sets:
            wh.execute(f"UPDATE {qualified(PIPELINE_RUN)} SET {', '.join(sets)} WHERE run_id = :run", params)


def failed_sources(wh: Warehouse, run_id: str) -> list[dict[str, str]]:
    """The sources whose extraction failed in ``run_id`` (``ops.source_run``): source and error."""
    if not wh.table_exists(SOURCE_RUN.schema, SOURCE_RUN.name):
        return []
    return [{"source": s, "error": e or ""} for s, e in wh.rows(
        f"SELECT DISTINCT source_system, error FROM {qualified(SOURCE_RUN)} WHERE run_id = :run "
        "AND status <> 'ok' ORDER BY source_system", {"run": run_id})]


def finish_run(wh: Warehouse, run_id: str, status: str, *, failed: list[dict[str, str]] | None = None,
               timings: dict[str, float] | None = None, vetoes: dict[str, Any] | None = None,
               message: str | None = None, now: datetime | None = None) -> None:
    """Record how ``run_id`` ended: ok, partial, failed, refused or aborted (see ``ops.pipeline_run``)."""
    wh.ensure_table(PIPELINE_RUN)
    wh.execute(
        f"UPDATE {qualified(PIPELINE_RUN)} SET status = :status, finished_at = :now, failed_sources = :failed, "
        "timings = :timings, vetoes = :vetoes, message = :message WHERE run_id = :run",
        {"status": status, "now": now or datetime.now(UTC), "run": run_id,
         "failed": json.dumps(failed, ensure_ascii=False, default=str) if failed else None,
         "timings": json.dumps(timings) if timings else None,
         "vetoes": json.dumps(vetoes, ensure_ascii=False, default=str) if vetoes else None, "message": message})


def runs(wh: Warehouse, limit: int = 10, run_id: str | None = None) -> list[dict[str, Any]]:
    """The last ``limit`` runs (or the run ``run_id``), newest first, JSON columns parsed."""
    if not wh.table_exists(PIPELINE_RUN.schema, PIPELINE_RUN.name):
        return []
    only = "WHERE run_id = :run " if run_id else ""
    rows = wh.dicts(f"SELECT * FROM {qualified(PIPELINE_RUN)} {only}ORDER BY started_at DESC, run_id DESC LIMIT :n",
                    {"n": limit, "run": run_id} if run_id else {"n": limit})
    for r in rows:
        for k in ("failed_sources", "timings", "vetoes"):
            r[k] = json.loads(r[k]) if isinstance(r.get(k), str) else r.get(k)
    return rows


def source_loads(wh: Warehouse) -> dict[str, dict[str, Any]]:
    """Per source: when it last loaded well (``last_ok``), and its last attempt (``last_at``,
    ``last_status``, ``last_error``)."""
    if not wh.table_exists(SOURCE_RUN.schema, SOURCE_RUN.name):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for source, status, error, at in wh.rows(
            f"SELECT source_system, status, error, max(finished_at) FROM {qualified(SOURCE_RUN)} "
            "GROUP BY source_system, status, error ORDER BY 4"):
        s = out.setdefault(source, {"last_ok": None, "last_at": None, "last_status": None, "last_error": None})
        if status == "ok":
            s["last_ok"] = at
        s.update(last_at=at, last_status=status, last_error=error if status != "ok" else None)
    return out


def run_report(wh: Warehouse, run_id: str) -> dict[str, Any]:
    """What a data engineer reads about one run, from the warehouse alone: the run (status,
    times, failed sources, timings, vetoes), rows per source and stage with whether they add up,
    quarantine reasons, and the release (what changed against the previous publication)."""
    run = next(iter(runs(wh, 1, run_id)), None)
    release = None
    if wh.table_exists(RESOLUTION_RELEASE.schema, RESOLUTION_RELEASE.name):
        found = wh.dicts(f"SELECT * FROM {qualified(RESOLUTION_RELEASE)} WHERE run_id = :run", {"run": run_id})
        release = found[0] if found else None
    return {"run": run, "rows": reconciliation(wh, run_id), "quarantine": quarantine_summary(wh, run_id),
            "release": release}


# ---------------------------------------------------------------------------- content hash
# Left out of the content hash: per-run bookkeeping (which run did what, and when), dlt's own
# tables and merge copies, and the release being built beside the live one.
_HISTORY = {("golden", "resolution_run"), ("golden", "resolution_release")}
_SKIP_SCHEMAS = {"ops", "staging", "information_schema", "pg_catalog", "pg_toast", "golden_next"}
_SKIP_COLUMNS = {"_dlt_load_id", "_dlt_id", "_dlt_parent_id", "_dlt_root_id"}


def _hashed_columns(wh: Warehouse, schema: str, table: str) -> list[tuple[str, str]]:
    """(column, SQL expression as text) of the columns a content hash reads: not dlt's ids, no run
    id, no timestamp (when something ran); doubles rounded to 9 places (the last bits of a float
    sum depend on the order Arrow or the engine added it in)."""
    cols = wh.rows("SELECT column_name, data_type FROM information_schema.columns "
                   "WHERE table_schema = :s AND table_name = :t ORDER BY column_name", {"s": schema, "t": table})
    out = []
    for name, kind in cols:
        kind = str(kind).lower()
        if name in _SKIP_COLUMNS or name == "run_id" or name.endswith("_run_id") or "timestamp" in kind:
            continue
        q = f'"{name}"'
        # (a double beyond 1e29 would overflow: the hub's doubles are probabilities and weights)
        expr = f"CAST({q} AS DECIMAL(38, 9))" if kind in ("double", "double precision", "real", "float") else q
        out.append((name, f"COALESCE(CAST({expr} AS VARCHAR), '<null>')"))
    return out


def content_hash(wh: Warehouse, *, detail: bool = False) -> str | dict[str, str]:
    """A SHA-256 of what the warehouse holds — raw, core, golden and marts tables — without load
    ids, run ids, timestamps and per-run bookkeeping (``ops``, resolution runs and releases): the
    same input loaded and resolved twice, or a run killed and rerun, gives the hash of one clean
    run. ``detail``: one hash per table instead (to see which table differs)."""
    import hashlib

    tables = wh.rows("SELECT table_schema, table_name FROM information_schema.tables "
                     "WHERE table_type = 'BASE TABLE' ORDER BY table_schema, table_name")
    per_table: dict[str, str] = {}
    for schema, table in tables:
        if (schema in _SKIP_SCHEMAS or (schema, table) in _HISTORY or table.startswith("_dlt_")
                or (schema.startswith("raw_") and schema.endswith("_staging"))):
            continue
        cols = _hashed_columns(wh, schema, table)
        if not cols:
            continue
        row = " || '|' || ".join(e for _, e in cols)
        digests = sorted(r[0] for r in wh.rows(f'SELECT md5({row}) FROM "{schema}"."{table}"'))
        h = hashlib.sha256(("|".join(n for n, _ in cols) + "\n").encode())
        for d in digests:
            h.update(d.encode())
        per_table[f"{schema}.{table}"] = h.hexdigest()
    if detail:
        return per_table
    total = hashlib.sha256()
    for name, digest in sorted(per_table.items()):
        total.update(f"{name}={digest}\n".encode())
    return total.hexdigest()
