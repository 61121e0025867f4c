"""
### gdpr_erasure — erase one citizen (GDPR Art. 17), with its proof

Triggered by the DPO with the citizen's id, the reason and (usually) the erasure request
(`hub gdpr request new --kind erasure …`): exactly what `hub gdpr erase` does
(`warehouse.gdpr_erase.erase`). The person goes from the golden record, links, foyers, the
canonical and raw layers, quarantine, the review queue, dlt's files and earlier exports; the DuckDB
file is rewritten (VACUUM FULL on PostgreSQL) so the bytes are gone. What the register archives
under a legal obligation (invoices) is kept and listed with its legal basis; a keyed-hash entry in
the suppression list keeps the person out of the next loads; each silo gets its worklist and the
register's recipients are listed for Art. 19. The report (hashes and counts, never values) is
written under `<var_dir>/gdpr/erasures/` and the request's history gets it with its sha256.

Params: `citizen_id` (required), `reason` (required), `request_id` (an erasure request, DSR-…),
`config` (default `$HUB_CONFIG`). Only ids and counts travel through XCom. The erasure takes the
`hub_warehouse` pool's slot and the hub's run lock; an unknown citizen or a request of another kind
fails at once, without retries.
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
    dag_id="gdpr_erasure",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Paris"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["gdpr", "dpo", "erasure-request"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=15),
        "execution_timeout": timedelta(hours=1),
        "on_failure_callback": _on_failure,
    },
    params={
        "citizen_id": Param(type="string", description="the citizen to erase (C…)"),
        "reason": Param(type="string", minLength=3, description="the Art. 17(1) ground, for the report"),
        "request_id": Param(None, type=["null", "string"], description="the erasure request (DSR-…)"),
        "config": Param(None, type=["null", "string"], description="settings file (default $HUB_CONFIG)"),
    },
)
def gdpr_erasure():
    @task(pool=WRITER_POOL)
    def erase(params=None) -> dict:
        """The erasure; returns its id and counts (no personal data)."""
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        from hub.gdpr_ops import run_erase
        from hub.orchestration import airflow_step
        from hub.settings import SettingsError
        from warehouse.dsr import RequestError
        from warehouse.gdpr_erase import ErasureError

        run = get_current_context()["dag_run"]
        actor = getattr(run, "triggering_user_name", None) or "airflow"
        with airflow_step("gdpr erasure"):
            try:
                return run_erase(params["config"] or None, params["citizen_id"], reason=params["reason"],
                                 actor=actor, request_id=params["request_id"] or None)
            except (ErasureError, RequestError, SettingsError, ValueError) as e:
                raise AirflowFailException(str(e)) from None

    erase()


gdpr_erasure()
