"""
### gdpr_purge — the daily retention purge (register of processing)

Applies every processing's retention as `schemas/register.toml` declares it (duration, start
event, whether recent activity extends it) — exactly what `hub gdpr purge` does
(`warehouse.gdpr_purge.purge`):

* a silo's people the silo deleted, once their end (deletion, or last activity when activity
  extends the period) is past the longest retention of their raw table's data categories;
* a silo's pieces (invoices, payments, requests) past their own retention (emission, end of the
  fiscal year, closing);
* quarantine payloads and the suppression list past their category's duration;
* the access log past its own retention (default one year), purged as a prefix of its hash chain
  and re-anchored, so `hub gdpr verify-log` still verifies;
* dlt's load packages.

The purge writes its own access-log row. The `dry_run` param counts without deleting. Only counts
per table and data category travel through XCom — never values. It writes to the warehouse: it
takes the `hub_warehouse` pool's slot and the hub's run lock (no pipeline run at the same time).
Retried with backoff on transient failures; settings errors fail at once.
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
    dag_id="gdpr_purge",
    schedule="30 3 * * *",  # daily, after the night's loads
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Paris"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["gdpr", "dpo", "retention"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
        "on_failure_callback": _on_failure,
    },
    params={
        "dry_run": Param(False, type="boolean", description="count what is past retention, delete nothing"),
        "config": Param(None, type=["null", "string"], description="settings file (default $HUB_CONFIG)"),
    },
)
def gdpr_purge():
    @task(pool=WRITER_POOL)
    def purge(params=None) -> dict:
        """The purge; returns counts per table and data category (no personal data)."""
        from airflow.sdk.exceptions import AirflowFailException

        from hub.gdpr_ops import run_purge
        from hub.orchestration import airflow_step
        from hub.settings import SettingsError

        with airflow_step("gdpr retention purge"):
            try:
                return run_purge(params["config"] or None, dry_run=bool(params["dry_run"]), reader="airflow")
            except SettingsError as e:
                raise AirflowFailException(str(e)) from None

    purge()


gdpr_purge()
