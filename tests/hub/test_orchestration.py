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
