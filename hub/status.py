"""`hub status`: what a data engineer checks first — the last runs and how they ended, what failed,
and which source is stale (its last good load is older than its schedule allows).

Read from the warehouse alone (``ops.pipeline_run``, ``ops.source_run``): it works from any
machine that reaches the warehouse, whoever ran the pipeline (``hub run`` or Airflow).
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


def source_status(settings: Settings, wh: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per configured source: its schedule, last good load, last attempt (status, error) and
    ``stale_since`` (None when fresh)."""
    from warehouse import ops

    now = now or datetime.now(UTC)
    loads = ops.source_loads(wh)
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
    """The last ``runs`` runs (newest first) and every configured source's state."""
    from warehouse import ops
    from warehouse.engine import Warehouse

    with Warehouse(settings.warehouse_url) as wh:
        return {"runs": ops.runs(wh, runs), "sources": source_status(settings, wh, now)}


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
        t = Table("run", "status", "started (UTC)", "took", "failed sources", "why", title="Last runs", box=None)
        for r in st["runs"]:
            colour = {"ok": "green", "partial": "yellow", "running": "cyan"}.get(r["status"], "red")
            failed = ", ".join(f["source"] for f in r.get("failed_sources") or [])
            t.add_row(r["run_id"], f"[{colour}]{r['status']}[/{colour}]", _at(r["started_at"]), _took(r), failed,
                      escape(r.get("message") or ""))
        console.print(t if st["runs"] else "No run recorded yet.")
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
    last = st["runs"][0]["status"] if st["runs"] else None
    if last not in (None, "ok", "running") or any(src["stale_since"] for src in st["sources"]):
        sys.exit(1)
