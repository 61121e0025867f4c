"""What the Airflow DAGs in ``dags/`` call: each pipeline step under the run lock, with failures
sorted into transient (Airflow retries them with backoff) and permanent (failed at once), and the
failure notifier.

A permanent failure is one a retry cannot fix: a release the guard refused, a wrong setting,
credentials a source refuses (HTTP 401 / 403) or a request it rejects (400 / 404), personal data
the register does not map. It becomes :class:`airflow.sdk.exceptions.AirflowFailException`, which
skips the remaining retries. Anything else (a source down, a timeout, another run holding the
warehouse) is left for the retries.

Task logs and the notifier's messages carry run ids, counts, source names and the hub's own error
messages, which never quote a value. An unexpected exception's message may (a database error can
quote a row), so it is replaced by its type and where it was raised.
"""

from __future__ import annotations

import json
import logging
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

ALERTS_CONNECTION = "hub_alerts"  # an Airflow connection whose host is the webhook URL (optional)
# HTTP statuses from a source that no retry changes: refused credentials, a rejected request.
PERMANENT_HTTP = ("HTTP 400", "HTTP 401", "HTTP 403", "HTTP 404")


class StepFailed(RuntimeError):
    """An unexpected failure, named by its type and where it was raised (the message stays out of
    the logs: it may quote data). Transient: Airflow retries it."""


def permanent_reason(exc: BaseException) -> str | None:
    """Why ``exc`` is not worth a retry, or None when it may be transient."""
    from connectors.base import SourceError
    from hub.settings import SettingsError
    from warehouse.register_guard import UnmappedPersonalData
    from warehouse.resolution import ReleaseRefused

    if isinstance(exc, ReleaseRefused):
        return "release refused by the release guard (trigger again with confirm_release once it is understood)"
    if isinstance(exc, SettingsError):
        return "settings error"
    if isinstance(exc, UnmappedPersonalData):
        return "personal data not mapped by the register of processing"
    if isinstance(exc, SourceError) and exc.message.startswith(PERMANENT_HTTP):
        return "the source refused the credentials or the request"
    for name in ("connectors.files.mapping.MappingError", "schemas.register.RegisterError"):
        module, _, cls = name.rpartition(".")
        try:
            kind = getattr(__import__(module, fromlist=[cls]), cls)
        except (ImportError, AttributeError):
            continue
        if isinstance(exc, kind):
            return "configuration error"
    return None


def _safe_message(exc: BaseException) -> str:
    """The hub's own messages (written never to quote a value); other exceptions: type and place."""
    from connectors.base import SourceError
    from hub.pipeline import NothingToResolve
    from hub.runlock import RunLocked
    from hub.settings import SettingsError
    from warehouse.register_guard import UnmappedPersonalData
    from warehouse.resolution import ReleaseRefused

    own = (SourceError, SettingsError, ReleaseRefused, UnmappedPersonalData, NothingToResolve, RunLocked,
           StepFailed)
    if isinstance(exc, own) or type(exc).__module__.split(".")[0] == "airflow":
        return str(exc)
    return f"unexpected {type(exc).__name__}{_where(exc)}"


def _where(exc: BaseException) -> str:
    """' at file:line in function' for the innermost frame of the project's code (else the last)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    root = Path(__file__).resolve().parents[1]
    ours = [f for f in frames if f.filename.startswith(str(root)) and "/.venv/" not in f.filename]
    f = (ours or frames)[-1]
    try:
        name = str(Path(f.filename).resolve().relative_to(root))
    except ValueError:
        name = Path(f.filename).name
    return f" at {name}:{f.lineno} in {f.name}"


@contextmanager
def airflow_step(name: str) -> Iterator[None]:
    """Run a DAG task's body: permanent failures → ``AirflowFailException`` (no retry); other
    failures re-raised for Airflow's retries, unexpected ones without their message."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    try:
        yield
    except AirflowException:
        raise
    except Exception as e:
        reason = permanent_reason(e)
        message = _safe_message(e)
        if reason:
            log.error("%s failed, not retried (%s): %s", name, reason, message)
            raise AirflowFailException(f"{name}: {reason}: {message}") from None
        if isinstance(e, StepFailed) or message != str(e):
            log.error("%s failed (will be retried if retries are left): %s", name, message)
            raise StepFailed(f"{name}: {message}") from None
        raise


def begin_run(config: str, *, hub_run: str, dag_id: str, source: str | None = None) -> str:
    """The first task of a DAG run: records ``hub_run`` as running in ``ops.pipeline_run`` (as
    ``hub run`` does), under the run lock; the earlier run of the same DAG left ``running`` is
    marked aborted. Returns the run id (what the other tasks get through XCom)."""
    with airflow_step("start run"):
        from hub import runlock
        from hub.pipeline import _warehouse
        from hub.settings import load_settings
        from warehouse import ops

        settings = load_settings(config)
        with runlock.hold(settings, hub_run, source=source, what="start run"):
            with _warehouse(settings) as wh:
                ops.start_run(wh, hub_run, dag_id=dag_id)
        return hub_run


def run_step(step: str, config: str, *, hub_run: str, source: str | None = None,
             **kwargs: Any) -> dict[str, Any]:
    """One pipeline step for a DAG task, under the run lock: ``ingest`` (of ``source``),
    ``canonical`` or ``resolve``. Returns the step's summary of counts (what XCom carries).

    The step is recorded in the run's ``ops.pipeline_run`` row: its seconds when it succeeds, its
    error (as the logs may show it) when it fails; a refused release ends the run as ``refused``.
    ``resolve`` ends the run as ``ok`` before it publishes the readers' snapshot, which so carries
    the run's outcome."""
    name = f"{step} {source}" if source else step
    with airflow_step(name):
        from hub import pipeline, runlock
        from hub.settings import load_settings

        settings = load_settings(config)
        steps: dict[str, Callable[..., dict[str, Any]]] = {
            "ingest": lambda: pipeline.ingest(settings, source, hub_run),
            "canonical": lambda: pipeline.build_canonical(settings, hub_run),
            "resolve": lambda: pipeline.resolve(settings, hub_run, publish=False, **kwargs),
        }
        with runlock.hold(settings, hub_run, source=source, what=name):
            try:
                summary = steps[step]()
            except BaseException as e:
                _record(settings, hub_run, name, error=_safe_message(e),
                        status="refused" if _refused(e) else None)
                raise
            _record(settings, hub_run, name, seconds=float(summary.get("seconds") or 0.0),
                    status="ok" if step == "resolve" else None,
                    vetoes=_vetoes(summary) if step == "resolve" else None)
            if step == "resolve":
                summary.setdefault("timings", {})["snapshot"] = pipeline.publish_snapshot(settings)
            return counts_only(summary)


def _refused(exc: BaseException) -> bool:
    from warehouse.resolution import ReleaseRefused

    return isinstance(exc, ReleaseRefused)


def _vetoes(summary: dict[str, Any]) -> dict[str, Any] | None:
    matching = summary.get("matching")
    return matching.get("vetoes") if isinstance(matching, dict) else None


def _record(settings: Any, hub_run: str, step: str, *, seconds: float | None = None, error: str | None = None,
            status: str | None = None, vetoes: dict[str, Any] | None = None) -> None:
    """A step's outcome in the run's row. Never hides the step's own error: a failure to record is logged."""
    from hub.pipeline import _warehouse
    from warehouse import ops

    try:
        with _warehouse(settings) as wh:
            ops.record_step(wh, hub_run, step, seconds=seconds, error=error)
            if status is not None:
                run = ops.runs(wh, 1, hub_run)[0]
                ops.finish_run(wh, hub_run, status, failed=ops.failed_sources(wh, hub_run) or None,
                               timings=run.get("timings"), vetoes=vetoes,
                               message=None if status == "ok" else run.get("message"))
    except Exception as e:
        if error is None:
            raise
        log.error("run %s: the failure of %s could not be recorded (%s)", hub_run, step, type(e).__name__)


def end_run(config: str, *, hub_run: str, steps: list[str], source: str | None = None) -> dict[str, Any]:
    """The DAG run's teardown (it runs however the steps ended): records how the run ended, unless
    a step did already (``resolve``, a refused release). ``steps``: the tasks' step names the run
    needs (``ingest <source>``, ``canonical``, ``resolve``). Every step recorded its seconds: ok;
    a step recorded an error: failed, with it; none did (a task killed, timed out without a trace,
    or never run): aborted. Returns the run's status and counts (XCom)."""
    with airflow_step("finish run"):
        from hub import runlock
        from hub.pipeline import _warehouse
        from hub.settings import load_settings
        from warehouse import ops

        settings = load_settings(config)
        with runlock.hold(settings, hub_run, source=source, what="finish run"):
            with _warehouse(settings) as wh:
                found = ops.runs(wh, 1, hub_run)
                if not found:
                    raise LookupError(f"run {hub_run} was not started")
                run = found[0]
                failed = ops.failed_sources(wh, hub_run)
                if run["status"] == "running":
                    done = set(run.get("timings") or {})
                    if all(s in done for s in steps):
                        status, message = ("partial" if failed else "ok"), None
                    elif run.get("message"):
                        status, message = "failed", run["message"]
                    else:
                        missing = ", ".join(s for s in steps if s not in done)
                        status, message = "aborted", (f"{missing} ended without recording an outcome (the task was "
                                                      "killed, timed out or never ran): see its Airflow log")
                    ops.finish_run(wh, hub_run, status, failed=failed or None, timings=run.get("timings"),
                                   vetoes=run.get("vetoes"), message=message)
                    run = ops.runs(wh, 1, hub_run)[0]
        log.info("run %s ended %s", hub_run, run["status"])
        return {"run_id": hub_run, "status": run["status"], "failed_sources": len(failed)}


def counts_only(summary: dict[str, Any]) -> dict[str, Any]:
    """A step's summary as XCom may carry it: names, run ids, numbers (nested dicts of numbers
    flattened one level: the release report's counts); anything else is dropped."""
    out: dict[str, Any] = {}
    for k, v in summary.items():
        if isinstance(v, bool | int | float) or v is None:
            out[k] = v
        elif isinstance(v, str) and k in ("source", "mode", "model_version", "run_id", "hub_run", "status"):
            out[k] = v
        elif isinstance(v, list) and k == "sources" and all(isinstance(x, str) for x in v):
            out[k] = v
        elif isinstance(v, dict):
            for kk, vv in v.items():
                if isinstance(vv, bool | int | float) and not isinstance(vv, bool):
                    out[f"{k}_{kk}"] = vv
    return out


def failure_payload(context: dict[str, Any]) -> dict[str, Any]:
    """The notice for a failed task: where, which try, and the error as the logs may show it."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    return {
        "event": "hub_task_failed",
        "dag_id": getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "error_type": type(exc).__name__ if exc is not None else None,
        "error": _safe_message(exc) if isinstance(exc, BaseException) else None,
    }


def notify_failure(context: dict[str, Any], *, connection_id: str = ALERTS_CONNECTION,
                   post: Callable[[str, bytes], None] | None = None) -> dict[str, Any]:
    """Log the failure notice as one JSON line and, when the Airflow connection ``connection_id``
    exists, post it to the webhook URL in its host. Never raises: a notice must not fail a task."""
    payload = failure_payload(context)
    log.error("hub failure notice %s", json.dumps(payload, ensure_ascii=False))
    url = _webhook_url(connection_id)
    if url:
        try:
            (post or _post)(url, json.dumps(payload, ensure_ascii=False).encode())
        except Exception as e:  # the notice is logged already
            log.warning("hub failure notice not posted to the %s webhook (%s)", connection_id, type(e).__name__)
    return payload


def _webhook_url(connection_id: str) -> str | None:
    try:
        from airflow.sdk import Connection

        conn = Connection.get(connection_id)
    except Exception:
        return None
    host = (getattr(conn, "host", None) or "").strip()
    if not host:
        return None
    if "://" not in host:
        scheme = (conn.schema or "https").strip()
        host = f"{scheme}://{host}"
    return host


def _post(url: str, body: bytes) -> None:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


class HubFailureNotifier(BaseNotifier):
    """Airflow's notifier for ``on_failure_callback``: :func:`notify_failure` on the context (a
    JSON notice in the log, posted to the ``hub_alerts`` webhook when that connection exists)."""

    def __init__(self, connection_id: str = ALERTS_CONNECTION):
        super().__init__()
        self.connection_id = connection_id

    def notify(self, context: Any) -> None:
        notify_failure(context, connection_id=self.connection_id)


def triggered_by(events: Any) -> list[dict[str, Any]]:
    """The source runs behind an Asset-triggered run, from their events' extras: source name, hub
    run id, rows loaded (nothing else is kept). Empty for a run triggered by hand."""
    out: list[dict[str, Any]] = []
    if not events:
        return out
    for asset, evs in dict(events).items():
        for ev in evs or []:
            extra = getattr(ev, "extra", None) or {}
            out.append({"asset": str(getattr(asset, "uri", asset)),
                        "source": str(extra.get("source", "")) or None,
                        "hub_run": str(extra.get("hub_run", "")) or None,
                        "rows_loaded": int(extra.get("rows_loaded") or 0)})
    return out
