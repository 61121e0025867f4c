"""What the DAG tasks wrap around a step: permanent failures skip Airflow's retries, transient ones
are retried, unexpected messages (which may quote data) stay out of the logs, and the failure
notifier logs a structured notice and posts it to the webhook of the hub_alerts connection."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import ClassVar

import pytest
from airflow.sdk.exceptions import AirflowFailException

from connectors.base import SourceError
from hub.orchestration import (
    HubFailureNotifier,
    StepFailed,
    airflow_step,
    counts_only,
    failure_payload,
    triggered_by,
)
from hub.runlock import RunLocked
from hub.settings import SettingsError
from warehouse.register_guard import Gap, UnmappedPersonalData
from warehouse.resolution import ReleaseRefused

CANARY = "Zqxcanary Dupont-Canari zqx.canary@example.org"


def _unmapped() -> UnmappedPersonalData:
    return UnmappedPersonalData([Gap("raw_finance.tiers", ("nom",), "personal data, no processing")],
                                SimpleNamespace(path="schemas/register.toml"))


PERMANENT = {
    "refused release": ReleaseRefused("r1", "9 merged"),
    "settings error": SettingsError("var/hub.toml: [sources.x] needs a `kind`"),
    "HTTP 401": SourceError("family", "responsables /api/responsables", "HTTP 401: the portal refused the token"),
    "HTTP 403": SourceError("salesforce", "Contact /query", "HTTP 403: the org refused the session"),
    "unmapped personal data": _unmapped(),
}
TRANSIENT = {
    "source down": SourceError("family", "responsables", "cannot reach the portal (after retries)"),
    "HTTP 503 after retries": SourceError("servicenow", "sys_user", "load failed (HTTPError)"),
    "another run": RunLocked({"run_id": "run_x", "pid": 12, "host": "h"}, "var/run.lock"),
    "timeout": TimeoutError("read timed out"),
}


@pytest.mark.parametrize("exc", PERMANENT.values(), ids=PERMANENT.keys())
def test_permanent_failures_skip_the_retries(exc):
    with pytest.raises(AirflowFailException) as e:
        with airflow_step("resolve"):
            raise exc
    assert str(e.value).startswith("resolve: ")
    assert str(exc) in str(e.value)  # the hub's own message, which never quotes a value


@pytest.mark.parametrize("exc", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_failures_are_left_to_the_retries(exc):
    with pytest.raises(Exception) as e:
        with airflow_step("ingest family"):
            raise exc
    assert not isinstance(e.value, AirflowFailException)


def test_an_unexpected_message_never_reaches_the_log(caplog):
    caplog.set_level(logging.INFO)
    with pytest.raises(StepFailed) as e:
        with airflow_step("canonical"):
            raise ValueError(f"Conversion Error: could not convert {CANARY!r} to DATE")
    assert "unexpected ValueError at tests/hub/test_orchestration.py:" in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__
    assert "Zqxcanary" not in str(e.value) and "Zqxcanary" not in caplog.text


def test_xcom_gets_names_and_counts_only():
    summary = {"source": "finance", "rows_read": 3, "rows_loaded": 2, "seconds": 1.5, "mode": "batch",
               "release": {"new_citizens": 4, "guard_message": CANARY, "status": "accepted"},
               "sample": [CANARY], "note": CANARY}
    out = counts_only(summary)
    assert out == {"source": "finance", "rows_read": 3, "rows_loaded": 2, "seconds": 1.5, "mode": "batch",
                   "release_new_citizens": 4}


def test_triggered_by_keeps_the_source_and_run_only():
    from airflow.sdk import Asset

    asset = Asset("hub://raw/finance")
    event = SimpleNamespace(extra={"source": "finance", "hub_run": "run_1", "rows_loaded": 7, "x": CANARY})
    assert triggered_by({asset: [event]}) == [
        {"asset": "hub://raw/finance", "source": "finance", "hub_run": "run_1", "rows_loaded": 7}]
    assert triggered_by(None) == []


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _context(exc: BaseException) -> dict:
    ti = SimpleNamespace(dag_id="citizen_hub__resolve", task_id="resolve", run_id="scheduled__2026", try_number=3)
    return {"ti": ti, "dag_run": SimpleNamespace(run_id="scheduled__2026"), "exception": exc}


def test_the_notifier_logs_a_structured_notice_and_posts_it_to_the_webhook(monkeypatch, caplog):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    monkeypatch.setenv("AIRFLOW_CONN_HUB_ALERTS", json.dumps(
        {"conn_type": "http", "host": f"http://127.0.0.1:{server.server_port}/hooks/hub"}))
    caplog.set_level(logging.INFO)
    try:
        HubFailureNotifier()(_context(ValueError(f"duplicate key ({CANARY})")))
    finally:
        server.shutdown()
    (notice,) = _Hook.received
    assert notice["event"] == "hub_task_failed"
    assert (notice["dag_id"], notice["task_id"], notice["try_number"]) == ("citizen_hub__resolve", "resolve", 3)
    assert notice["error_type"] == "ValueError" and notice["error"].startswith("unexpected ValueError")
    assert "Zqxcanary" not in json.dumps(notice) and "Zqxcanary" not in caplog.text
    assert '"event": "hub_task_failed"' in caplog.text


def test_without_the_connection_the_notice_is_logged_only(monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_HUB_ALERTS", raising=False)
    caplog.set_level(logging.INFO)
    HubFailureNotifier()(_context(PERMANENT["HTTP 401"]))
    assert "HTTP 401: the portal refused the token" in caplog.text
    payload = failure_payload(_context(PERMANENT["HTTP 401"]))
    assert payload["error"] == str(PERMANENT["HTTP 401"])


def test_a_dag_step_meeting_another_run_is_retried_later_not_failed(tmp_path):
    """`hub run` holds the warehouse: the DAG's writing task stops before writing, and Airflow
    retries it with backoff (RunLocked is transient), naming the run it waited for."""
    import subprocess
    import sys

    from hub.orchestration import run_step
    from tests.hub.test_runlock import HOLDER

    var = tmp_path / "var"
    url = f"duckdb:///{var / 'hub.duckdb'}"
    config = tmp_path / "hub.toml"
    config.write_text(f'[warehouse]\nurl = "{url}"\n\n[hub]\nvar_dir = "{var}"\n', encoding="utf-8")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url, str(var), "run_hub_cli", ""],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"run_hub_cli .*pid {holder.pid}"):
            run_step("canonical", str(config), hub_run="run_dag")
    finally:
        holder.kill()
        holder.wait()
    assert not (var / "hub.duckdb").exists()  # nothing was written


def _config(tmp_path, url: str, sources: str = "") -> str:
    config = tmp_path / "hub.toml"
    config.write_text(f'[warehouse]\nurl = "{url}"\n\n[hub]\nvar_dir = "{tmp_path / "var"}"\n{sources}',
                      encoding="utf-8")
    return str(config)


def test_a_dag_run_is_recorded_like_hub_run_and_its_teardown_says_how_it_ended(tmp_path, warehouse_url,
                                                                               monkeypatch):
    """begin_run / run_step / end_run, as the DAG's setup, steps and teardown call them: a step that
    failed ends the run failed with the step's error, a source whose extraction failed is named, a
    run whose step left no trace is aborted, and a DAG's new run marks its dead earlier run aborted
    without touching another launcher's runs."""
    from hub.orchestration import begin_run, end_run, run_step
    from warehouse import ops
    from warehouse.engine import Warehouse

    # a source that cannot be reached: its step fails (transient) and records why
    monkeypatch.setenv("HUB_TEST_PORTAIL_TOKEN", "t")
    config = _config(tmp_path, warehouse_url, '\n[sources.portail]\nkind = "family"\nbase_url = "http://127.0.0.1:9"\n'
                                              'token_env = "HUB_TEST_PORTAIL_TOKEN"\n')
    begin_run(config, hub_run="run_a", dag_id="citizen_hub__ingest_portail", source="portail")
    with pytest.raises(SourceError, match="cannot reach the family portal"):
        run_step("ingest", config, hub_run="run_a", source="portail")
    ended = end_run(config, hub_run="run_a", steps=["ingest portail"], source="portail")
    assert ended == {"run_id": "run_a", "status": "failed", "failed_sources": 1}

    # a run whose task was killed before it recorded anything; then a hub run, untouched by the DAG's next start
    begin_run(config, hub_run="run_b", dag_id="citizen_hub__resolve")
    with Warehouse(warehouse_url) as wh:
        ops.start_run(wh, "run_cli")
    begin_run(config, hub_run="run_c", dag_id="citizen_hub__resolve")  # run_b left running: its DAG ran again
    assert end_run(config, hub_run="run_c", steps=["canonical", "resolve"])["status"] == "aborted"
    with Warehouse(warehouse_url) as wh:
        runs = {r["run_id"]: r for r in ops.runs(wh, 10)}
    a = runs["run_a"]
    assert a["dag_id"] == "citizen_hub__ingest_portail" and a["status"] == "failed"
    assert a["message"] == "ingest portail: portail: portal http://127.0.0.1:9: cannot reach the family portal"
    assert a["finished_at"] is not None
    assert [f["source"] for f in a["failed_sources"]] == ["portail"]
    assert runs["run_b"]["status"] == "aborted" and "run_c found it so" in runs["run_b"]["message"]
    assert runs["run_cli"]["status"] == "running" and runs["run_cli"]["dag_id"] is None
    assert "canonical, resolve ended without recording an outcome" in runs["run_c"]["message"]


def test_a_refused_release_ends_the_dag_run_refused_and_a_retried_step_that_succeeds_counts(tmp_path, monkeypatch):
    from hub import pipeline
    from hub.orchestration import begin_run, end_run, run_step
    from warehouse import ops
    from warehouse.engine import Warehouse

    url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    config = _config(tmp_path, url)
    begin_run(config, hub_run="run_r", dag_id="citizen_hub__resolve")
    tries = iter([TimeoutError("read timed out"), None])

    def canonical(settings, run_id):
        if (e := next(tries)) is not None:
            raise e
        return {"staged": 4, "passed": 4, "seconds": 1.25}

    monkeypatch.setattr(pipeline, "build_canonical", canonical)
    monkeypatch.setattr(pipeline, "resolve", lambda *a, **k: (_ for _ in ()).throw(ReleaseRefused("run_r", "9 merged")))
    with pytest.raises(StepFailed):
        run_step("canonical", config, hub_run="run_r")
    assert run_step("canonical", config, hub_run="run_r")["staged"] == 4  # Airflow's retry
    with pytest.raises(AirflowFailException):
        run_step("resolve", config, hub_run="run_r")
    assert end_run(config, hub_run="run_r", steps=["canonical", "resolve"])["status"] == "refused"
    with Warehouse(url) as wh:
        (run,) = ops.runs(wh, 10)
    assert run["timings"] == {"canonical": 1.25} and run["message"].startswith("resolve: ")
    assert "9 merged" in run["message"]
