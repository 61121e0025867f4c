"""`hub status`: what a data engineer checks first — the last runs and how they ended, what failed,
and which source is stale (its last good load is older than its schedule allows).

Read from the warehouse alone (``ops.pipeline_run``, ``ops.source_run``): it works from any
machine that reaches the warehouse, whoever ran the pipeline (``hub run`` or Airflow). During a
run it works too: it names the run in progress (the run lock's holder) and, on DuckDB, where the
run's file cannot be opened, reads the readers' published snapshot instead.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from hub.settings import Settings
from hub.terminal import config_option, console, settings_or_exit

DEFAULT_SCHEDULE = "@daily"  # a source's schedule when its settings give none (as its DAG's)


def stale_since(schedule: str, last_ok: datetime | None, now: datetime) -> datetime | None:
    """When a source with this cron ``schedule`` became stale, or None while it is not: a load
    was due at the schedule's first time after the last good one, and half an interval of grace
    has passed since without a good load. Never loaded: stale. ``manual``: never stale."""
    from croniter import croniter

    if schedule == "manual":
        return None
    if last_ok is None:
        return now
    it = croniter(schedule, last_ok.astimezone(UTC))
    due = it.get_next(datetime)
    after = it.get_next(datetime)
    limit = due + (after - due) / 2
    return limit if now > limit else None


def source_status(settings: Settings, wh: Any | None, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per configured source: its schedule, last good load, last attempt (status, error) and
    ``stale_since`` (None when fresh)."""
    from warehouse import ops

    now = now or datetime.now(UTC)
    loads = ops.source_loads(wh) if wh is not None else {}
    out = []
    for s in settings.sources:
        seen = loads.get(s.name) or {}
        schedule = str(s.params.get("schedule", DEFAULT_SCHEDULE))
        out.append({"source": s.name, "kind": s.kind, "schedule": schedule, "last_ok": seen.get("last_ok"),
                    "last_at": seen.get("last_at"), "last_status": seen.get("last_status"),
                    "last_error": seen.get("last_error"),
                    "stale_since": stale_since(schedule, seen.get("last_ok"), now)})
    return out


def status(settings: Settings, *, runs: int = 5, now: datetime | None = None) -> dict[str, Any]:
    """The last ``runs`` runs (newest first), every configured source's state, and the run in
    progress (``in_progress``: who holds the run lock, None when nobody does).

    During a run on DuckDB the run's file cannot be opened: the runs and sources are read from the
    published snapshot (``read_from``: ``snapshot``, as of ``published_at``), which the run in
    progress and anything that ended after the last publication are not in yet."""
    from hub import runlock
    from warehouse import ops

    in_progress = runlock.holder(settings)
    wh, read_from = _open(settings, busy=in_progress is not None)
    out: dict[str, Any] = {"in_progress": in_progress, "read_from": read_from, "published_at": None,
                           "runs": [], "sources": source_status(settings, None, now)}
    if wh is None:
        return out
    with wh:
        out["runs"] = ops.runs(wh, runs)
        out["sources"] = source_status(settings, wh, now)
        if wh.snapshot is not None:
            out["published_at"] = datetime.fromtimestamp(wh.snapshot.stat().st_mtime, UTC)
    live = (in_progress or {}).get("run_id")
    for r in out["runs"]:
        if read_from == "snapshot" and r["status"] == "running" and r["run_id"] != live:
            # it was running when the snapshot was taken and has ended since: how is in the warehouse
            r["status"] = "unfinished at publication"
    return out


def _open(settings: Settings, *, busy: bool) -> tuple[Any, str]:
    """The warehouse itself when nobody writes it (it has every run, failed ones too), else what
    readers read: the published snapshot on DuckDB, the database on PostgreSQL (MVCC)."""
    from warehouse.engine import NoRelease, Warehouse, WarehouseBusy

    if not busy:
        try:
            return Warehouse(settings.warehouse_url), "warehouse"
        except WarehouseBusy:  # a tool holds the file (a SQL client): read what readers read
            pass
    try:
        wh = Warehouse.reader(settings.warehouse_url)
    except NoRelease:
        return None, "snapshot"
    return wh, "snapshot" if wh.snapshot is not None else "warehouse"


def _at(v: datetime | None) -> str:
    return f"{v.astimezone(UTC):%Y-%m-%d %H:%M}" if v else "—"


def _took(r: dict[str, Any]) -> str:
    if not r.get("finished_at") or r["status"] == "aborted":
        return ""
    return str(timedelta(seconds=round((r["finished_at"] - r["started_at"]).total_seconds())))


@click.command("status")
@click.option("--runs", "n_runs", default=5, show_default=True, help="How many of the last runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
def status_command(n_runs: int, as_json: bool, config: Path | None) -> None:
    """The last runs, what failed, which sources are stale (exit 1 when the last run did not end
    ok or a source is stale)."""
    settings = settings_or_exit(config)
    st = status(settings, runs=n_runs)
    if as_json:
        click.echo(json.dumps(st, ensure_ascii=False, indent=2, default=str))
    else:
        t = Table("run", "status", "started (UTC)", "took", "by", "failed sources", "why", title="Last runs",
                  box=None)
        for r in st["runs"]:
            colour = {"ok": "green", "partial": "yellow", "running": "cyan"}.get(r["status"], "red")
            failed = ", ".join(f["source"] for f in r.get("failed_sources") or [])
            t.add_row(r["run_id"], f"[{colour}]{r['status']}[/{colour}]", _at(r["started_at"]), _took(r),
                      r.get("dag_id") or "hub run", failed, escape(r.get("message") or ""))
        console.print(t if st["runs"] else "No run recorded yet.")
        h = st["in_progress"]
        if h is not None:
            who = ", ".join(str(x) for x in (h.get("run_id"), h.get("what"),
                                             f"pid {h['pid']}" if h.get("pid") else None, h.get("host")) if x)
            console.print(f"[cyan]A run is in progress since {h.get('started') or 'an unknown time'}[/cyan]"
                          f" ({escape(who) or 'holder unknown'}).", soft_wrap=True)
        if st["read_from"] == "snapshot" and st["published_at"] is not None:
            console.print(f"Read from the published snapshot of {_at(st['published_at'])} UTC: the warehouse is "
                          "being written; runs that ended since are not in it yet.", soft_wrap=True)
        s = Table("source", "schedule", "last good load (UTC)", "last attempt", "state", title="Sources", box=None)
        for src in st["sources"]:
            state = "[green]fresh[/green]"
            if src["stale_since"] is not None:
                state = (f"[red]stale since {_at(src['stale_since'])}[/red]" if src["last_ok"]
                         else "[red]never loaded[/red]")
            attempt = src["last_status"] or "—"
            if src["last_error"]:
                attempt = f"failed: {escape(src['last_error'])}"
            s.add_row(src["source"], src["schedule"], _at(src["last_ok"]), attempt, state)
        console.print(s)
    fine = ("ok", "running", "unfinished at publication")
    if not all(r["status"] in fine for r in latest_per_launcher(st["runs"])) or any(
            src["stale_since"] for src in st["sources"]):
        sys.exit(1)


def latest_per_launcher(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest run of each launcher (``hub run``, each Airflow DAG) among ``runs`` (newest first)."""
    seen: dict[Any, dict[str, Any]] = {}
    for r in runs:
        seen.setdefault(r.get("dag_id"), r)
    return list(seen.values())
