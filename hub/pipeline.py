"""The pipeline runner: the steps `hub run` calls in-process and the Airflow DAG calls as tasks.

Each step takes its inputs explicitly (settings, run id), is idempotent, and returns a small
summary of counts — never rows — so it can travel through XCom.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import connectors  # noqa: F401  (sets dlt's environment: no telemetry, no Airflow Variables lookup)
from hub.settings import Settings, SettingsError, Source, secret

log = logging.getLogger(__name__)

CONFIRM_ENV = "HUB_CONFIRM_RELEASE"  # 1: publish an abnormal release (as --confirm-release)


Progress = Callable[[str, str], None]  # (step, message)


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: run_<UTC timestamp>_<6 hex>."""
    now = now or datetime.now(UTC)
    return f"run_{now:%Y%m%dT%H%M%S}_{secrets.token_hex(3)}"


BUSY_WAIT_SECONDS = 30.0

_Step = TypeVar("_Step", bound=Callable[..., Any])


def _limited(step: _Step) -> _Step:
    """The step with the settings' ``[resources]`` on every DuckDB connection it opens, the
    warehouse's and matching's (``matching.resources``): memory limit, threads, spill directory."""

    @functools.wraps(step)
    def limited(settings: Settings, *args: Any, **kwargs: Any) -> Any:
        from matching.resources import applied

        with applied(settings.duckdb_limits()):
            return step(settings, *args, **kwargs)

    return cast(_Step, limited)


def _warehouse(settings: Settings):
    """The warehouse for a step. Readers never open a DuckDB warehouse's file (they read the
    published snapshot), but a tool that does (a SQL client, `hub status`) may hold it for a moment
    between two steps: the step waits for it a little rather than failing the run."""
    from warehouse.engine import Warehouse, WarehouseBusy

    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        try:
            return Warehouse(settings.warehouse_url)
        except WarehouseBusy:
            if time.monotonic() >= deadline:
                raise
            log.warning("warehouse held by another process: waiting for it")
            time.sleep(0.2)


# ------------------------------------------------------------------------------------------ ingest
def _connector_params(source: Source, module: Any) -> dict[str, Any]:
    """The connector's keyword arguments from the source's settings (secrets from the environment)."""
    try:
        return module.configure(source.params, lambda key: secret(source.params, key, source.name))
    except KeyError as e:
        raise SettingsError(f"source {source.name!r} ({source.kind}): missing setting {e.args[0]!r}") from None


@_limited
def ingest(settings: Settings, source_name: str, run_id: str) -> dict[str, Any]:
    """Extract one source into raw_<system>, recording counts and quarantined rows.

    A failing source is recorded as failed (with a message naming the source and locator, no
    personal data) and raised; what earlier runs loaded stays in place.
    """
    started = time.perf_counter()  # imports included: they are part of what a step costs
    from connectors.base import SourceError, stored_as
    from connectors.registry import SYSTEMS
    from connectors.runner import run_source
    from warehouse import ops

    source = settings.source(source_name)
    module = SYSTEMS.get(source.kind)
    if module is None:
        raise SettingsError(f"source {source.name!r}: unknown kind {source.kind!r} (one of {', '.join(SYSTEMS)})")
    with _warehouse(settings) as wh:
        try:
            params = _connector_params(source, module)
            # the source's name, not its kind, is the system: raw_<name>, source_system, keys
            with stored_as(source.name):
                result = run_source(module, wh.dlt_destination(), run_id, pipelines_dir=settings.pipelines_dir,
                                    **params)
        except (SourceError, SettingsError) as e:
            ops.record_source_runs(wh, run_id, [_failed_count(source.name, str(e))])
            raise
        except Exception as e:
            # Unknown failures: keep the type and the source, not the message (it may quote data).
            msg = f"{source.name}: unexpected {type(e).__name__} while extracting"
            ops.record_source_runs(wh, run_id, [_failed_count(source.name, msg)])
            raise
        counts = [
            {
                "run_id": run_id,
                "source_system": result.source_system,
                "entity": c.entity,
                "rows_read": c.rows_read,
                "rows_loaded": c.rows_loaded,
                "rows_quarantined": c.rows_quarantined,
                "rows_deleted": c.rows_deleted,
                "rows_recovered": c.rows_recovered,
                "status": "ok",
                "error": None,
                "finished_at": datetime.now(UTC),
            }
            for c in result.counts
        ]
        ops.record_source_runs(wh, run_id, counts)
        ops.record_quarantine(wh, run_id, result.quarantine, source_systems=[result.source_system])
    summary = {
        "source": source.name,
        "rows_read": sum(c["rows_read"] for c in counts),
        "rows_loaded": sum(c["rows_loaded"] for c in counts),
        "rows_quarantined": sum(c["rows_quarantined"] for c in counts),
        "rows_deleted": sum(c["rows_deleted"] for c in counts),
        # rows of load packages an aborted run left (dlt had not loaded them), loaded first by this one
        "rows_recovered": sum(c["rows_recovered"] for c in counts),
        "recovered_from": result.recovered_from,
        "seconds": round(time.perf_counter() - started, 2),
    }
    log.info("ingested %s: %d read, %d loaded, %d quarantined", source.name,
             summary["rows_read"], summary["rows_loaded"], summary["rows_quarantined"])
    return summary


def _failed_count(source_name: str, error: str) -> dict[str, Any]:
    return {
        "source_system": source_name,
        "entity": "*",
        "rows_read": 0,
        "rows_loaded": 0,
        "rows_quarantined": 0,
        "status": "failed",
        "error": error,
        "finished_at": datetime.now(UTC),
    }


# ------------------------------------------------------------------------------------------ canonical
@_limited
def build_canonical(settings: Settings, run_id: str) -> dict[str, Any]:
    """Staging models → quality gate → core tables, for every source whose raw data exists.

    Then the register's completeness guard: a table or column holding personal data that the
    register of processing does not map raises ``warehouse.register_guard.UnmappedPersonalData``
    naming it, before anything is resolved or published."""
    started = time.perf_counter()  # imports included: they are part of what a step costs
    from connectors.registry import staging_models
    from warehouse import gdpr_suppression, register_guard
    from warehouse.staging import build_canonical as build

    with _warehouse(settings) as wh:
        present = [s for s in settings.sources if _has_raw(wh, s.name)]
        models = staging_models([(s.name, s.kind, s.params) for s in present])
        # erased people stay erased: the suppression list sets their rows aside (warehouse/gdpr_suppression.py)
        suppression = gdpr_suppression.load(wh, settings.var_dir)
        counts = build(wh, models, run_id, suppression=suppression)
        cleared: set[str] = set()
        if suppression is not None and suppression.dropped_records:
            from warehouse.gdpr_erase import clear_suppressed

            cleared = clear_suppressed(wh, models, suppression.dropped_records, settings.pipelines_dir)
        register_guard.check(wh)
    if cleared:  # the silo brought erased people back: their bytes go again (file rewrite / VACUUM FULL)
        from warehouse.gdpr_erase import reclaim

        reclaim(settings.warehouse_url, cleared)
    staged = sum(c.staged for c in counts)
    passed = sum(c.passed for c in counts)
    return {
        "sources": sorted(s.name for s in present),
        "staged": staged,
        "passed": passed,
        "quarantined": staged - passed,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _has_raw(wh, system: str) -> bool:
    return bool(
        wh.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s",
            {"s": f"raw_{system}"},
        )
    )


# ------------------------------------------------------------------------------------------ resolve
@_limited
def resolve(settings: Settings, run_id: str, *, confirm_release: bool | None = None,
            incremental: bool | None = None, publish: bool = True) -> dict[str, Any]:
    """Person records → links with persistent citizen ids (honouring human decisions) → golden
    citizens, published atomically — unless the release guard finds the release abnormal, in which
    case :class:`warehouse.resolution.ReleaseRefused` is raised and the previous publication stays.
    ``publish=False``: the readers' snapshot is left to the caller (:func:`publish_snapshot`), which
    records the run's outcome first so the snapshot carries it.

    ``incremental`` (default: ``[matching] incremental`` in the settings): only new and changed
    records are scored, with the last run's model, against the published citizens; untouched
    citizens keep their ids and records. Without a previous publication it runs in batch.
    ``[matching] spark_master`` (``local[2]``, ``spark://host:7077``…) scores a batch run's pairs
    with Splink on that Spark cluster (the ``spark`` extra); incremental runs stay on DuckDB."""
    started = time.perf_counter()  # imports included: they are part of what a step costs
    from matching.release import ReleaseGuard, compute_release
    from warehouse.marts import build_marts, keys_from_settings
    from warehouse.resolution import publish_release, read_inputs

    band = settings.extra.get("review_band")
    if incremental is None:
        incremental = bool(settings.extra.get("incremental", False))
    spark = None
    if settings.extra.get("spark_master") and not incremental:
        from matching.spark import spark_session

        spark = spark_session(settings.var_dir / "spark", master=str(settings.extra["spark_master"]))
    from warehouse.ops import Laps

    # read, compute, publish: the warehouse is not held while the release is computed
    clock = Laps(digits=2)
    with _warehouse(settings) as wh:
        inputs = read_inputs(wh, incremental=incremental)
    clock("read")
    models = settings.var_dir / "models"
    release = compute_release(
        inputs, run_id, now=datetime.now(UTC), model_json=_model(settings, models, inputs.previous_run, incremental),
        guard=ReleaseGuard.from_settings(settings.extra), confirmed_by=_confirmed_by(confirm_release),
        review_band=tuple(band) if band else None, incremental=incremental, spark=spark,
        train_sample=_train_sample(settings), **_locales(settings))
    clock("compute")
    del inputs  # the records read are not held while the release is published (the run's peak)
    path = models / f"{release.model_version}.json"
    if not path.exists():  # every link names its model: the file is kept, written once per version
        from matching.model import save_model

        save_model(release.model_json, path)
    with _warehouse(settings) as wh:
        clock("save model")
        publish_release(wh, release)
        clock("publish")
        summary = {k: v for k, v in release.run.items() if k != "finished_at"}
        summary["release"] = release.report
        summary["matching"] = release.matching
        summary["mode"] = release.mode
        computed = release.timings
        del release  # published: its tables are not held while the marts are built
        marts = build_marts(wh, keys=keys_from_settings(settings.marts, settings.var_dir))
        clock("marts")
    if publish:
        # readers (CLI, desk, GDPR exports) read a copy of what was just published, never this file
        publish_snapshot(settings)
        clock("snapshot")
    summary["marts"] = marts  # rows per marts table (counts only)
    # seconds per part of the step: read, compute (its own parts from the release), save model, publish…
    summary["timings"] = {**clock.parts, **{f"compute: {k}": round(v, 2) for k, v in computed.items()}}
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def publish_snapshot(settings: Settings) -> float:
    """Publish the warehouse for readers (``warehouse.snapshot``); the seconds it took."""
    from warehouse.snapshot import publish

    started = time.perf_counter()
    publish(settings.warehouse_url)
    return round(time.perf_counter() - started, 2)


def _model(settings: Settings, models: Path, last: Any, incremental: bool) -> dict | None:
    """The model to resolve with: the pinned one ([matching] model = path); for an incremental run,
    else the last run's (from ``models``); None: train afresh."""
    pinned = _pinned_model(settings)
    if pinned is not None or not incremental or last is None:
        return pinned
    path = models / f"{last['model_version']}.json"
    if not path.exists():
        log.warning("model %s of the last run not found in %s: resolving in batch", last["model_version"], models)
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _confirmed_by(confirm_release: bool | None) -> str | None:
    """Who confirms an abnormal release now: the signed-in reader when ``confirm_release`` (or
    HUB_CONFIRM_RELEASE=1) says so; None otherwise (a stored confirmation may still apply)."""
    if confirm_release is None:
        confirm_release = os.environ.get(CONFIRM_ENV, "").lower() in ("1", "true", "yes")
    if not confirm_release:
        return None
    from warehouse.access_log import signed_in_reader

    return signed_in_reader(os.environ.get("HUB_READER"))


def _locales(settings: Settings) -> dict[str, Any]:
    """Each source's identity standardisation (FR, BE or NEUTRAL): ``[sources.<name>] country``, else
    ``[matching] country`` for every source; a source neither sets is detected from its rows."""
    per_source = {s.name: str(s.params["country"]) for s in settings.sources if s.params.get("country")}
    default = settings.extra.get("country")
    return {"locales": per_source or None, "default_locale": str(default) if default else None}


def _train_sample(settings: Settings) -> int | None:
    """How many records a model trained by this run reads (``[matching] train_sample``): a positive
    number; 0 or false for every record; absent: :data:`matching.model.TRAIN_SAMPLE`."""
    from matching.model import TRAIN_SAMPLE

    value = settings.extra.get("train_sample", TRAIN_SAMPLE)
    if value is False or value == 0:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingsError(f"[matching] train_sample must be a number of records (0: all of them), not {value!r}")
    return value


def _pinned_model(settings: Settings) -> dict | None:
    """A pinned model file from the settings ([matching] model = path), else None: train afresh."""
    path = settings.extra.get("model")
    if not path:
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------ all
class NothingToResolve(Exception):
    """No source could be read in this run (or none is configured): nothing is built or published.
    ``failed`` lists ``{"source", "error"}`` per failed source; the message names each and why."""

    def __init__(self, failed: list[dict[str, str]], config: Path | None = None):
        self.failed = failed
        if failed:
            why = "; ".join(f"{f['source']}: {_without_prefix(f['error'], f['source'])}" for f in failed)
            msg = (f"every source failed, so nothing was built, resolved or published (the last publication "
                   f"stays in place). {why}. Fix these sources and run again.")
        else:
            msg = (f"no source is configured in {config or 'the settings'}: declare at least one "
                   "[sources.<name>] with its `kind` (see docs/connectors.md)")
        super().__init__(msg)


def _without_prefix(error: str, source: str) -> str:
    """A source's error without the source name it starts with (the message names it already)."""
    error = error.rstrip(". ")
    return error[len(source) + 2:] if error.startswith(f"{source}: ") else error


@dataclass
class RunReport:
    run_id: str
    ingested: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    canonical: dict[str, Any] = field(default_factory=dict)
    resolution: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    # ok, or partial: a source failed and the release used its last good data (ops.pipeline_run)
    status: str = "running"
    aborted: list[str] = field(default_factory=list)  # runs a dead process had left running
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step


def _ingested(summary: dict[str, Any]) -> str:
    """One source's progress line: rows loaded, and deleted or recovered ones when there are."""
    extra = ""
    if summary.get("rows_deleted"):
        extra += f", {summary['rows_deleted']:,} deleted (no longer in the full export)"
    if summary.get("rows_recovered"):
        extra += f", {summary['rows_recovered']:,} recovered from an aborted run's load"
    return f"{summary['rows_loaded']:,} rows loaded{extra} in {summary['seconds']} s"


def _last_good(settings: Settings, failed: list[dict[str, Any]]) -> None:
    """Each failed source's last good load (``last_good_load``: its time, None when never), whose
    data the release keeps using."""
    from warehouse import ops

    with _warehouse(settings) as wh:
        loads = ops.source_loads(wh)
    for f in failed:
        f["last_good_load"] = (loads.get(f["source"]) or {}).get("last_ok")


def _kept(failed: dict[str, Any]) -> str:
    at = failed.get("last_good_load")
    return (f"its data of the last good load ({at.astimezone(UTC):%Y-%m-%d %H:%M} UTC)" if at
            else "no data of it (never loaded)")


def _vetoes(resolution: dict[str, Any]) -> dict[str, Any] | None:
    matching = resolution.get("matching") or {}
    return matching.get("vetoes") if isinstance(matching, dict) else None


@_limited
def run(settings: Settings, *, run_id: str | None = None, progress: Progress | None = None,
        confirm_release: bool | None = None, incremental: bool | None = None) -> RunReport:
    """The whole job: ingest every source (one failing source does not stop the others), build the
    canonical layer, resolve identities and publish the golden records.

    Raises :class:`NothingToResolve` when no source could be read (or none is configured), and
    :class:`hub.runlock.RunLocked` (naming the other run) when another run is writing to the
    warehouse: then nothing is done."""
    from hub import runlock
    from warehouse import ops

    run_id = run_id or new_run_id()
    with runlock.hold(settings, run_id):
        # holding the whole warehouse: a run still marked running is one whose process died
        with _warehouse(settings) as wh:
            aborted = ops.start_run(wh, run_id)
        report = RunReport(run_id=run_id, aborted=aborted)
        try:
            _run(settings, report, progress=progress, confirm_release=confirm_release, incremental=incremental)
        except BaseException as e:
            # the hub's own errors say what happened without values; others by their type only
            from warehouse.resolution import ReleaseRefused

            status = "refused" if isinstance(e, ReleaseRefused) else "failed"
            own = isinstance(e, (ReleaseRefused, NothingToResolve, SettingsError))
            with _warehouse(settings) as wh:
                ops.finish_run(wh, run_id, status, failed=report.failed, timings=report.timings,
                               message=str(e) if own else f"unexpected {type(e).__name__}")
            raise
        report.status = "partial" if report.failed else "ok"
        # the outcome first, then the readers' snapshot, which so carries it (`hub status` during the next run)
        with _warehouse(settings) as wh:
            ops.finish_run(wh, run_id, report.status, failed=report.failed, timings=report.timings,
                           vetoes=_vetoes(report.resolution))
        try:
            # a part of the resolution's publication, timed with its other parts (bench/pipeline.py)
            report.resolution.setdefault("timings", {})["snapshot"] = publish_snapshot(settings)
        except BaseException as e:
            with _warehouse(settings) as wh:
                ops.finish_run(wh, run_id, "failed", failed=report.failed, timings=report.timings,
                               message=f"the release is published but the readers' snapshot could not be "
                                       f"written ({type(e).__name__}): readers still read the previous one")
            raise
        return report


def _run(settings: Settings, report: RunReport, *, progress: Progress | None = None,
         confirm_release: bool | None = None, incremental: bool | None = None) -> RunReport:
    from connectors.base import SourceError

    say = progress or (lambda step, msg: None)
    started = time.perf_counter()
    for source in settings.sources:
        say(f"ingest {source.name}", "running")
        try:
            summary = ingest(settings, source.name, report.run_id)
        except (SourceError, SettingsError) as e:
            report.failed.append({"source": source.name, "error": str(e)})
            say(f"ingest {source.name}", f"failed: {e}")
            continue
        except Exception as e:  # one source's bug does not stop the others (ingest recorded it by its type)
            log.exception("source %s: unexpected %s", source.name, type(e).__name__)
            report.failed.append({"source": source.name, "error": f"{source.name}: unexpected {type(e).__name__} "
                                  "while extracting"})
            say(f"ingest {source.name}", f"failed: unexpected {type(e).__name__}")
            continue
        report.ingested.append(summary)
        report.timings[f"ingest {source.name}"] = summary["seconds"]
        say(f"ingest {source.name}", _ingested(summary))
    if report.failed and report.ingested:
        _last_good(settings, report.failed)
        for f in report.failed:
            say(f"ingest {f['source']}", f"not loaded: the release uses {_kept(f)}")
    if not report.ingested:
        raise NothingToResolve(report.failed, settings.config_path)
    say("canonical", "running")
    report.canonical = build_canonical(settings, report.run_id)
    report.timings["canonical"] = report.canonical["seconds"]
    say("canonical", f"{report.canonical['passed']:,} rows passed the gate in {report.canonical['seconds']} s")
    say("resolve", "running")
    report.resolution = resolve(settings, report.run_id, confirm_release=confirm_release, incremental=incremental,
                                publish=False)
    report.timings["resolve"] = report.resolution["seconds"]
    say("resolve", f"{report.resolution['citizens']:,} citizens in {report.resolution['seconds']} s")
    report.seconds = round(time.perf_counter() - started, 2)
    return report
