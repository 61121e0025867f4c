"""`hub review` (the queue of uncertain pairs, release reports) and `hub decide` (identity decisions).

Every decision is recorded with the agent's OS account (``HUB_READER`` only declared beside it), the
time and the reason given, and is honoured by every later `hub run` until revoked. Output names
records by key and citizens by id; it shows no personal value.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from hub.terminal import agent, config_option, console, err, settings_or_exit

_reason = click.option("--reason", required=True, help="Why: recorded with your login and the time.")


def _warehouse(config: Path | None) -> Any:
    """The last published release, for the lists (a run never blocks them)."""
    from hub.readers import reader

    return reader(settings_or_exit(config))


def _decide(config: Path | None, action: Any) -> None:
    """A decision under the run lock (during a run: exit 75, nothing written), published after."""
    from hub.readers import writer
    from warehouse.decisions import DecisionError

    with writer(settings_or_exit(config), "hub decide") as wh:
        try:
            decision_id = action(wh)
        except DecisionError as e:
            err.print(f"[red]refused:[/red] {e}")
            sys.exit(1)
    if decision_id:
        console.print(f"decision {decision_id} recorded by {agent()}; the next `hub run` honours it")


# ------------------------------------------------------------------------------------------ review
@click.group()
def review() -> None:
    """Pairs the model is unsure about, for an agent to accept or reject; release reports."""


@review.command("list")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
def review_list(limit: int, as_json: bool, config: Path | None) -> None:
    """The queue, most uncertain pairs first."""
    from warehouse.decisions import review_queue

    with _warehouse(config) as wh:
        rows = review_queue(wh, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        console.print("The review queue is empty.")
        return
    t = Table("id", "record", "record", "probability", "weight", "citizens", "why", box=None)
    for q in rows:
        citizens = q["citizen_id_l"] if q["citizen_id_l"] == q["citizen_id_r"] else (
            f"{q['citizen_id_l']} / {q['citizen_id_r']}")
        t.add_row(q["queue_id"], q["record_key_l"], q["record_key_r"], f"{q['match_probability']:.2f}",
                  f"{q['match_weight']:+.1f}", citizens, _why(q["explanation"]))
    console.print(t)


def _why(explanation: str | None) -> str:
    if not explanation:
        return ""
    return ", ".join(f"{k} {v:+.1f}" for k, v in json.loads(explanation).items())


@review.command("accept")
@click.argument("queue_id")
@_reason
@config_option
def review_accept(queue_id: str, reason: str, config: Path | None) -> None:
    """The two records are one person (a must-link)."""
    from warehouse.decisions import settle_review

    _decide(config, lambda wh: settle_review(wh, queue_id, accept=True, decided_by=agent(), reason=reason))


@review.command("reject")
@click.argument("queue_id")
@_reason
@config_option
def review_reject(queue_id: str, reason: str, config: Path | None) -> None:
    """The two records are two people (a cannot-link)."""
    from warehouse.decisions import settle_review

    _decide(config, lambda wh: settle_review(wh, queue_id, accept=False, decided_by=agent(), reason=reason))


@review.command("releases")
@click.option("--limit", default=5, show_default=True)
@config_option
def review_releases(limit: int, config: Path | None) -> None:
    """The latest resolution releases: what changed, and the guard's verdict."""
    from warehouse.decisions import releases

    with _warehouse(config) as wh:
        rows = releases(wh, limit=limit)
    t = Table("run", "status", "citizens", "new", "merged", "split", "unchanged", "retired", "largest",
              "sizes", "queued", box=None)
    for r in rows:
        t.add_row(r["run_id"], r["status"], f"{r['citizens_before']:,} → {r['citizens_after']:,}",
                  f"{r['new_citizens']:,}", f"{r['merged_citizens']:,}", f"{r['split_citizens']:,}",
                  f"{r['unchanged_citizens']:,}", f"{r['retired_ids']:,}",
                  f"{r['largest_before']} → {r['largest_after']}", r["size_histogram"], f"{r['review_queued']:,}")
    console.print(t)
    for r in rows:
        if r["guard_message"]:
            console.print(f"{r['run_id']}: {r['guard_message']}")


@review.command("confirm-release")
@click.argument("run_id")
@config_option
def review_confirm_release(run_id: str, config: Path | None) -> None:
    """Confirm a refused release: the next `hub run` publishes even if the guard finds it abnormal."""
    from warehouse.decisions import confirm_release

    def act(wh: Any) -> None:
        confirm_release(wh, run_id, confirmed_by=agent())
        console.print(f"release {run_id} confirmed by {agent()}: the next `hub run` will publish")

    _decide(config, act)


# ------------------------------------------------------------------------------------------ decide
@click.group()
def decide() -> None:
    """Human identity decisions between source records, honoured by every later run."""


@decide.command("must-link")
@click.argument("record_key_1")
@click.argument("record_key_2")
@_reason
@config_option
def decide_must_link(record_key_1: str, record_key_2: str, reason: str, config: Path | None) -> None:
    """The two records are one person, whatever the model says."""
    from warehouse.decisions import record_decision

    _decide(config, lambda wh: record_decision(wh, "must_link", record_keys=(record_key_1, record_key_2),
                                               decided_by=agent(), reason=reason))


@decide.command("cannot-link")
@click.argument("record_key_1")
@click.argument("record_key_2")
@_reason
@config_option
def decide_cannot_link(record_key_1: str, record_key_2: str, reason: str, config: Path | None) -> None:
    """The two records are two people: never in one citizen."""
    from warehouse.decisions import record_decision

    _decide(config, lambda wh: record_decision(wh, "cannot_link", record_keys=(record_key_1, record_key_2),
                                               decided_by=agent(), reason=reason))


@decide.command("split")
@click.argument("citizen_id")
@click.option("--group", "groups", multiple=True, help="Comma-separated record keys kept together (repeat).")
@click.option("--detach", help="One record key to detach from the rest.")
@_reason
@config_option
def decide_split(citizen_id: str, groups: tuple[str, ...], detach: str | None, reason: str,
                 config: Path | None) -> None:
    """Unmerge a citizen: the largest part keeps the id, the others get their own."""
    from warehouse.decisions import split_citizen

    parsed = [[k.strip() for k in g.split(",") if k.strip()] for g in groups] or None
    _decide(config, lambda wh: split_citizen(wh, citizen_id, groups=parsed, detach=detach,
                                             decided_by=agent(), reason=reason))


@decide.command("revoke")
@click.argument("decision_id")
@_reason
@config_option
def decide_revoke(decision_id: str, reason: str, config: Path | None) -> None:
    """End a decision (it stays on record, with who revoked it and why)."""
    from warehouse.decisions import revoke_decision

    def act(wh: Any) -> None:
        revoke_decision(wh, decision_id, revoked_by=agent(), reason=reason)
        console.print(f"decision {decision_id} revoked by {agent()}")

    _decide(config, act)


@decide.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked decisions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
def decide_list(include_revoked: bool, as_json: bool, config: Path | None) -> None:
    """The decisions in force (and revoked ones with --all)."""
    from warehouse.decisions import decisions

    with _warehouse(config) as wh:
        rows = decisions(wh, include_revoked=include_revoked)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    t = Table("id", "kind", "records", "citizen", "by", "at", "reason", "revoked", box=None)
    for d in rows:
        records = (f"{d['record_key_l']} / {d['record_key_r']}" if d["record_key_l"]
                   else " | ".join(",".join(g) for g in json.loads(d["groups"])))
        t.add_row(d["decision_id"], d["kind"], records, d["citizen_id"] or "", d["decided_by"],
                  f"{d['decided_at']:%Y-%m-%d %H:%M}", d["reason"],
                  "" if d["revoked_at"] is None else f"{d['revoked_at']:%Y-%m-%d} by {d['revoked_by']}")
    console.print(t)
