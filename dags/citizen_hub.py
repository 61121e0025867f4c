"""
### citizen_hub — silos in, golden citizens out

Every run: ingest each configured source (one mapped task per source, so one source down
does not stop the others and each retries on its own), build the canonical layer through the
quality gate, resolve identities (honouring agents' decisions) and publish the golden records,
then report. An abnormal release (a jump in merges, a huge citizen) is refused and the previous
publication stays: trigger again with `confirm_release: true` once it is understood.

The tasks call the same library functions as `hub run` (`hub.pipeline`). Settings come from
`$HUB_CONFIG` (or the `config` param). Only the hub's run id (`hub_run`) and counts travel through XCom — never rows.
On the DuckDB warehouse every writing task takes the single slot of pool `hub_warehouse`
(DuckDB allows one writer); on PostgreSQL raise the pool's slots.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

WRITER_POOL = "hub_warehouse"


def _settings(config: str | None):
    from hub.settings import load_settings

    return load_settings(config or None)


@dag(
    dag_id="citizen_hub",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Paris"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["citizen-hub", "ingest", "identity-resolution"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    params={
        "config": Param(None, type=["null", "string"], description="settings file (default $HUB_CONFIG)"),
        "confirm_release": Param(False, type="boolean",
                                 description="publish even if the release guard finds the release abnormal"),
        "incremental": Param(None, type=["null", "boolean"],
                             description="resolve only new and changed records (default: the settings)"),
    },
)
def citizen_hub():
    @task
    def start_run() -> str:
        from hub.pipeline import new_run_id

        return new_run_id()

    @task
    def list_sources(params=None) -> list[str]:
        return [s.name for s in _settings(params["config"]).sources]

    @task(pool=WRITER_POOL, map_index_template="{{ task.op_kwargs['source'] }}")
    def ingest(source: str, hub_run: str, params=None) -> dict:
        from hub.pipeline import ingest as run_ingest

        return run_ingest(_settings(params["config"]), source, hub_run)

    @task(pool=WRITER_POOL, trigger_rule="all_done")
    def build_canonical(hub_run: str, params=None) -> dict:
        from hub.pipeline import build_canonical as build

        return build(_settings(params["config"]), hub_run)

    @task(pool=WRITER_POOL)
    def resolve(hub_run: str, params=None) -> dict:
        from hub.pipeline import resolve as run_resolve

        return run_resolve(_settings(params["config"]), hub_run, confirm_release=params["confirm_release"] or None,
                           incremental=params["incremental"])

    @task
    def report(ingested: list[dict], canonical: dict, resolution: dict) -> dict:
        """Fails the run (after the golden layer is published) when a source failed upstream."""
        return {
            "rows_loaded": sum(i["rows_loaded"] for i in ingested),
            "rows_quarantined": sum(i["rows_quarantined"] for i in ingested) + canonical["quarantined"],
            "citizens": resolution["citizens"],
        }

    hub_run = start_run()
    ingested = ingest.partial(hub_run=hub_run).expand(source=list_sources())
    canonical = build_canonical(hub_run)
    ingested >> canonical
    resolution = resolve(hub_run)
    canonical >> resolution
    report(ingested, canonical, resolution)


citizen_hub()
