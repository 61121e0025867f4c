"""
### gdpr_access — the access export (GDPR Art. 15) of one rights request

Triggered by the DPO with the request's id (`hub gdpr request new --kind access …` recorded it):
checks the request (an access request, identity checked, still open), then writes the export zip
— every record of every silo linked to the person through the golden record, raw and canonical,
a JSON validated by `schemas/access_export.schema.json`, one CSV per source and the French HTML
report — exactly as `hub gdpr access DSR-…` does (`warehouse.access_export`).

The export is refused while the warehouse holds personal data the register of processing does
not map (completeness guard), and it is written to the access log (operation `export`, who,
purpose, recipient) and to the request's history with the zip's sha256. Records linked with a
probability in the review band leave the export a **draft**: the task succeeds and reports how
many records wait; the DPO confirms or sets them aside (`confirm` / `exclude` params) and triggers
again. Only the request id, the output path and counts travel through XCom — never the identity.

Params: `request_id` (required), `out` (default `<var_dir>/exports/<request_id>.zip`),
`recipient`, `confirm`, `exclude`, `config` (default `$HUB_CONFIG`). Retries (with backoff) are
for transient failures; an unknown or refused request, an unchecked identity or unmapped personal
data fail at once. The export writes to the warehouse: it takes the `hub_warehouse` pool's slot.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

WRITER_POOL = "hub_warehouse"


def _on_failure(context) -> None:
    from hub.orchestration import HubFailureNotifier

    HubFailureNotifier()(context)


@dag(
    dag_id="gdpr_access",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Paris"),
    catchup=False,
    doc_md=__doc__,
    tags=["gdpr", "dpo", "access-request"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(minutes=30),
        "on_failure_callback": _on_failure,
    },
    params={
        "request_id": Param(type="string", pattern="^DSR-", description="the access request (DSR-…)"),
        "out": Param(None, type=["null", "string"], description="zip to write (default <var_dir>/exports/<id>.zip)"),
        "recipient": Param(None, type=["null", "string"], description="who the export goes to (default: the person)"),
        "confirm": Param([], type="array", description="uncertain records the DPO confirmed (record keys)"),
        "exclude": Param([], type="array", description="records the DPO set aside (record keys)"),
        "config": Param(None, type=["null", "string"], description="settings file (default $HUB_CONFIG)"),
    },
)
def gdpr_access():
    @task(execution_timeout=timedelta(minutes=5))
    def check_request(params=None) -> str:
        """Fail at once when the request cannot be exported: unknown, not an access request, closed,
        identity not checked."""
        from airflow.sdk.exceptions import AirflowFailException

        from hub.orchestration import airflow_step
        from hub.settings import load_settings
        from warehouse import dsr
        from warehouse.engine import Warehouse

        request_id = params["request_id"]
        with airflow_step("gdpr access check"):
            settings = load_settings(params["config"] or None)
            with Warehouse(settings.warehouse_url) as wh:
                try:
                    req = dsr.get(wh, request_id)
                except dsr.RequestError as e:
                    raise AirflowFailException(str(e)) from None
            if req["kind"] != "access":
                raise AirflowFailException(f"{request_id} is a {req['kind']} request, not an access request")
            if req["status"] not in dsr.OPEN_STATUSES:
                raise AirflowFailException(f"{request_id} is closed")
            if req["identity_check"] == "en_attente":
                raise AirflowFailException(f"{request_id}: identity not checked yet")
        return request_id

    @task(pool=WRITER_POOL)
    def export(request_id: str, params=None) -> dict:
        """The export zip; returns the request id, the zip's path and counts (no personal data)."""
        from pathlib import Path

        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        from connectors.registry import staging_models
        from hub.orchestration import airflow_step
        from hub.settings import load_settings
        from warehouse.access_export import ExportError, export_access
        from warehouse.dsr import RequestError
        from warehouse.engine import Warehouse

        with airflow_step("gdpr access export"):
            settings = load_settings(params["config"] or None)
            out = Path(params["out"] or Path(settings.var_dir) / "exports" / f"{request_id}.zip")
            run = get_current_context()["dag_run"]
            reader = getattr(run, "triggering_user_name", None) or "airflow"
            models = staging_models([(s.name, s.kind, s.params) for s in settings.sources])
            with Warehouse(settings.warehouse_url) as wh:
                try:
                    result = export_access(wh, request_id, out, reader=reader, models=models,
                                           recipient=params["recipient"], confirm=params["confirm"] or (),
                                           exclude=params["exclude"] or ())
                except (ExportError, RequestError) as e:
                    raise AirflowFailException(str(e)) from None
        return {"request_id": request_id, "path": str(result.path), "records": result.records,
                "raw_rows": result.raw_rows, "to_confirm": result.to_confirm, "draft": result.draft,
                "sha256": result.sha256}

    export(check_request())


gdpr_access()
