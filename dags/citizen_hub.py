"""
### citizen_hub — one DAG per source, one resolution DAG scheduled on their Assets

Built from the hub's settings (`$HUB_CONFIG`, read when Airflow parses this file):

* `citizen_hub__ingest_<source>` for every `[sources.<source>]`: extracts that source into
  `raw_<source>` on the source's own schedule (`schedule = "0 2 * * *"` in its settings table, any
  cron or preset; `"@daily"` when unset; `"manual"` for none) and publishes the Asset
  `hub://raw/<source>` when it loaded.
* `citizen_hub__resolve`, scheduled on those Assets (any of them updated): builds the canonical
  layer through the quality gate, resolves identities and publishes the release, then updates the
  Asset `hub://golden/release` that readers (BI marts, the desk, GDPR exports) can be scheduled on.

The sources are configuration, not code, so their DAGs are generated here in one loop; the
producers' Assets and the consumer's schedule come from the same function and cannot drift apart.
Tasks call the library (`hub.orchestration` → `hub.pipeline`), the same steps as `hub run`, under
the same run lock. Retries with exponential backoff are for transient failures only: a refused
release, a settings error, credentials a source refuses and unmapped personal data fail at once.
Only run ids, source names and counts travel through XCom and Asset events — never rows.

Each DAG run is a hub run recorded in `ops.pipeline_run` like a `hub run` (`hub status` shows both):
a setup task `start_run` records it running, each step its seconds or its error, and a teardown
task `finish_run` — which runs however the steps ended — how it ended: ok, failed (with the step's
error), refused, or aborted (a task killed or timed out without a trace).
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetAny, Param, dag, setup, task, teardown

CONFIG = os.path.abspath(os.environ.get("HUB_CONFIG") or "var/hub.toml")
WRITER_POOL = "hub_warehouse"  # one slot on DuckDB (a single writer); see airflow_pools.json
DEFAULT_SCHEDULE = "@daily"
START = pendulum.datetime(2026, 1, 1, tz="Europe/Paris")
RELEASE = Asset("hub://golden/release")


def raw_asset(source: str) -> Asset:
    """The Asset a source's DAG updates once its rows are in raw_<source>."""
    return Asset(f"hub://raw/{source}")


def _on_failure(context) -> None:
    from hub.orchestration import HubFailureNotifier

    HubFailureNotifier()(context)


DEFAULT_ARGS = {
    "retries": 3,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,  # 2, 4, 8 min (a multiplier since Airflow 3.2, not a bool)
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
    "on_failure_callback": _on_failure,
}


def _sources() -> dict[str, dict]:
    """[sources.*] from the settings file; a missing or broken file is an import error naming it."""
    if not os.path.exists(CONFIG):
        raise FileNotFoundError(f"citizen_hub: no hub settings at {CONFIG}: set HUB_CONFIG (an absolute path) "
                                "in the environment of Airflow's DAG processor and workers")
    with open(CONFIG, "rb") as f:
        data = tomllib.load(f)
    return {name: spec for name, spec in (data.get("sources") or {}).items() if isinstance(spec, dict)}


def _run_record(dag_id: str, source: str | None = None):
    """The setup and teardown of a DAG run: a hub run id recorded as running in `ops.pipeline_run`
    (as `hub run` records its runs, so `hub status` shows both), and its outcome recorded however
    the tasks between them ended. Returns (start task's run id XComArg, finish task factory)."""

    @setup
    @task(pool=WRITER_POOL, execution_timeout=timedelta(minutes=10))
    def start_run() -> str:
        """A new hub run id (run_<UTC time>_<hex>), recorded as running: what the warehouse records this run under."""
        from hub.orchestration import begin_run
        from hub.pipeline import new_run_id

        return begin_run(CONFIG, hub_run=new_run_id(), dag_id=dag_id, source=source)

    @teardown
    @task(pool=WRITER_POOL, execution_timeout=timedelta(minutes=10))
    def finish_run(hub_run: str, steps: list[str]) -> dict:
        """How the run ended (ok, failed, refused, aborted), recorded in ops.pipeline_run."""
        from hub.orchestration import end_run

        return end_run(CONFIG, hub_run=hub_run, steps=steps, source=source)

    return start_run(), finish_run


def ingest_dag(name: str, spec: dict):
    asset = raw_asset(name)
    schedule = spec.get("schedule", DEFAULT_SCHEDULE)
    schedule = None if schedule in ("manual", "", None) else schedule
    timeout = timedelta(minutes=float(spec.get("timeout_minutes", 120)))

    @dag(
        dag_id=f"citizen_hub__ingest_{name}",
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["citizen-hub", "ingest", f"source:{name}", f"kind:{spec.get('kind', '?')}"],
        doc_md=f"""### Ingest `{name}` ({spec.get('kind', '?')} connector)

Extracts the source `{name}` into `raw_{name}` (merge on keys, quarantine of bad rows, counts in
`ops.source_run`), then updates the Asset `{asset.uri}`, which schedules `citizen_hub__resolve`.

Schedule: `{schedule or 'manual'}` (`[sources.{name}] schedule` in `{CONFIG}`). Retried with
backoff when the source is down or times out (timeout {timeout}); not retried when it refuses
the credentials or the settings are wrong. Only the run id and counts go to XCom.
""",
    )
    def ingest_source():
        @task(pool=WRITER_POOL, outlets=[asset], execution_timeout=timeout)
        def ingest(hub_run: str, outlet_events=None) -> dict:
            from hub.orchestration import run_step

            summary = run_step("ingest", CONFIG, hub_run=hub_run, source=name)
            outlet_events[asset].extra = {"hub_run": hub_run, "source": name,
                                          "rows_loaded": summary.get("rows_loaded", 0)}
            return summary

        hub_run, finish_run = _run_record(f"citizen_hub__ingest_{name}", source=name)
        ingest(hub_run) >> finish_run(hub_run, [f"ingest {name}"])

    return ingest_source()


def resolve_dag(sources: list[str]):
    assets = [raw_asset(s) for s in sources]
    schedule = AssetAny(*assets) if assets else None

    @dag(
        dag_id="citizen_hub__resolve",
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["citizen-hub", "identity-resolution"],
        params={
            "confirm_release": Param(False, type="boolean",
                                     description="publish even if the release guard finds the release abnormal"),
            "incremental": Param(None, type=["null", "boolean"],
                                 description="resolve only new and changed records (default: the settings)"),
        },
        doc_md=f"""### Resolve and publish the release

Runs when any source's Asset is updated ({', '.join(f'`{a.uri}`' for a in assets) or 'no source configured'}),
on the last good data of every source: builds the canonical layer through the quality gate, resolves
identities (honouring agents' decisions) and publishes the golden records in one transaction, then
updates `{RELEASE.uri}`.

An abnormal release (a jump in merges, a huge citizen) is refused at once, not retried; the previous
publication stays. Trigger this DAG with `confirm_release: true` once it is understood.
Personal data the register of processing does not map also stops it without retries.
""",
    )
    def resolve_release():
        @task(pool=WRITER_POOL, execution_timeout=timedelta(hours=2))
        def canonical(hub_run: str) -> dict:
            from hub.orchestration import run_step

            return run_step("canonical", CONFIG, hub_run=hub_run)

        @task(pool=WRITER_POOL, outlets=[RELEASE], execution_timeout=timedelta(hours=4))
        def resolve(hub_run: str, params=None, outlet_events=None) -> dict:
            from hub.orchestration import run_step

            summary = run_step("resolve", CONFIG, hub_run=hub_run,
                               confirm_release=params["confirm_release"] or None, incremental=params["incremental"])
            outlet_events[RELEASE].extra = {"hub_run": hub_run, "citizens": summary.get("citizens", 0)}
            return summary

        @task(execution_timeout=timedelta(minutes=5))
        def report(canonical: dict, resolution: dict, triggering_asset_events=None) -> dict:
            """The run's counts, and which source runs triggered it (names and run ids only)."""
            from hub.orchestration import triggered_by

            return {"triggered_by": triggered_by(triggering_asset_events), "staged": canonical.get("staged", 0),
                    "quarantined": canonical.get("quarantined", 0), "citizens": resolution.get("citizens", 0)}

        hub_run, finish_run = _run_record("citizen_hub__resolve")
        built = canonical(hub_run)
        resolved = resolve(hub_run)
        built >> resolved >> finish_run(hub_run, ["canonical", "resolve"])
        report(built, resolved)

    return resolve_release()


_SOURCES = _sources()
for _name, _spec in _SOURCES.items():
    ingest_dag(_name, _spec)
resolve_dag(list(_SOURCES))
