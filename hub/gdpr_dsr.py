"""`hub gdpr request …` (the register of rights requests) and `hub gdpr access` (the access export).

Who acts is the signed-in user (``hub.terminal.agent``); the identity a request gives goes to the
warehouse only, never to logs. Exit status: 2 bad input or settings, 3 the register does not map
personal data the warehouse holds (nothing exported), 4 a request rule refused the change.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from hub.terminal import agent, config_option, console, err, settings_or_exit

_KINDS = ("access", "erasure", "rectification", "objection")
_CHANNELS = ("courrier", "courriel", "guichet", "formulaire", "telephone")
_CHECKS = ("en_attente", "coordonnees_connues", "element_du_dossier", "guichet", "franceconnect", "piece_identite")
_OPEN = ("a_traiter", "attente_identite", "attente_services")
_URGENCY = {"overdue": "[red]en retard[/red]", "due_soon": "[yellow]≤ 7 jours[/yellow]", "open": "", "done": ""}


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)")


def _moment(value: str | None) -> datetime | date | None:
    """A date (the day, in the authority's calendar) or an ISO timestamp with its offset."""
    if value is None:
        return None
    if "T" in value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an ISO 8601 timestamp") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return _day(value)


def _warehouse(config: Path | None):
    """The register of rights requests is the DPO's writes to the warehouse: under the run lock
    (during a run: exit 75 and a sentence, nothing written; hub/readers.py)."""
    from hub.readers import writer

    return writer(settings_or_exit(config), "gdpr request", publish=False)


def _fail(e: Exception, code: int = 4) -> None:
    err.print(f"[red]refused:[/red] {escape(str(e))}", soft_wrap=True)
    sys.exit(code)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, datetime | date):
            v = v.isoformat()
        elif isinstance(v, list):
            v = [_jsonable(x) if isinstance(x, dict) else x for x in v]
        out[k] = v
    return out


def _print_request(req: dict[str, Any]) -> None:
    from schemas.contract import DSR_STATUSES
    from warehouse.dsr import IDENTITY_CHECKS, KIND_LABELS, effective_due

    lines = [
        f"[bold]{req['request_id']}[/bold] — demande d'{KIND_LABELS[req['kind']]}, reçue le "
        f"{req['received_at']:%d/%m/%Y} par {req['channel']}",
        f"statut : {DSR_STATUSES[req['status']]}   échéance : {effective_due(req):%d/%m/%Y}"
        + (f" (prolongée ; échéance initiale {req['due_date']:%d/%m/%Y})" if req["extended_due_date"] else ""),
        f"personne : {escape(req['subject_name'])}"
        + (f", née le {req['subject_birth_date']:%d/%m/%Y}" if req["subject_birth_date"] else "")
        + (f" — citoyen {req['citizen_id']}" if req["citizen_id"] else " — citoyen pas encore identifié"),
        f"identité : {IDENTITY_CHECKS[req['identity_check']]}",
    ]
    if req["on_behalf_of_minor"]:
        lines.append(f"demande d'un représentant légal pour un mineur : {escape(req['requester_name'] or '')}")
    if req["extension_reason"]:
        lines.append(f"prolongation : {escape(req['extension_reason'])}")
    if req["refusal_reason"]:
        lines.append(f"motif du refus : {escape(req['refusal_reason'])}")
    console.print("\n".join(lines), soft_wrap=True)
    t = Table("quand", "étape", "qui", "détail", "preuve", title="Historique")
    for e in req["events"]:
        t.add_row(f"{e['event_at']:%d/%m/%Y %H:%M}", e["event"], escape(e["actor"]), escape(e["detail"] or ""),
                  escape(e["proof"] or "") + (f" sha256 {e['proof_sha256'][:12]}…" if e["proof_sha256"] else ""))
    console.print(t)


# ------------------------------------------------------------------------------------------ request
@click.group("request")
def request_group() -> None:
    """The register of rights requests: record, list (overdue first), show, update, extend, close."""


@request_group.command("new")
@click.option("--kind", type=click.Choice(_KINDS), required=True)
@click.option("--channel", type=click.Choice(_CHANNELS), required=True, help="How the request came in.")
@click.option("--name", required=True, help="The person concerned, as the request names them.")
@click.option("--birth-date", help="Their birth date (YYYY-MM-DD or DD/MM/YYYY).")
@click.option("--email")
@click.option("--phone")
@click.option("--address", help="Postal address, for an answer by post.")
@click.option("--citizen", "citizen_id", help="The hub's citizen id, when already identified.")
@click.option("--received", help="Date (or ISO timestamp) of receipt; default now.")
@click.option("--acknowledged", help="Date the receipt was acknowledged to the person.")
@click.option("--identity-check", type=click.Choice(_CHECKS), default="en_attente", show_default=True,
              help="How identity was checked (proportionate means; piece_identite only on a reasonable doubt).")
@click.option("--evidence", help="What was given and seen (never a copy of a document).")
@click.option("--doubt", help="The reasonable doubt justifying an identity document.")
@click.option("--on-behalf-of-minor", is_flag=True, help="A parent (legal representative) asks for their minor child.")
@click.option("--requester-name", help="Who asks, when not the person (the parent).")
@click.option("--requester-citizen", help="The requesting parent's citizen id, when known.")
@click.option("--details", help="The request as worded (scope, values to rectify, processing objected to).")
@click.option("--json", "as_json", is_flag=True)
@config_option
def request_new(kind: str, channel: str, name: str, birth_date: str | None, email: str | None, phone: str | None,
                address: str | None, citizen_id: str | None, received: str | None, acknowledged: str | None,
                identity_check: str, evidence: str | None, doubt: str | None, on_behalf_of_minor: bool,
                requester_name: str | None, requester_citizen: str | None, details: str | None, as_json: bool,
                config: Path | None) -> None:
    """Record a rights request; the due date is one calendar month after receipt."""
    from warehouse import dsr

    identity = dsr.Identity(name=name, birth_date=_day(birth_date), email=email, phone=phone, address=address,
                            citizen_id=citizen_id, on_behalf_of_minor=on_behalf_of_minor,
                            requester_name=requester_name, requester_citizen_id=requester_citizen)
    with _warehouse(config) as wh:
        try:
            req = dsr.new_request(wh, kind=kind, channel=channel, identity=identity, actor=agent(),
                                  received_at=_moment(received), identity_check=identity_check,
                                  identity_evidence=evidence, identity_doubt=doubt,
                                  acknowledged_at=_moment(acknowledged), details=details)
        except dsr.RequestError as e:
            _fail(e)
    if as_json:
        click.echo(json.dumps(_jsonable(req), ensure_ascii=False, indent=2))
    else:
        console.print(f"{req['request_id']} recorded: due {req['due_date']:%d/%m/%Y}")


@request_group.command("list")
@click.option("--all", "include_done", is_flag=True, help="Also closed and refused requests.")
@click.option("--today", help="Reference day (default: today).")
@click.option("--json", "as_json", is_flag=True)
@config_option
def request_list(include_done: bool, today: str | None, as_json: bool, config: Path | None) -> None:
    """Open requests: overdue first, then due within 7 days, then the rest by due date."""
    from schemas.contract import DSR_STATUSES
    from warehouse import dsr

    with _warehouse(config) as wh:
        rows = dsr.list_requests(wh, include_done=include_done, today=_day(today))
    if as_json:
        click.echo(json.dumps([_jsonable(r) for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        console.print("no open request")
        return
    t = Table("demande", "nature", "statut", "reçue", "échéance", "jours", "", "personne", title="Demandes de droits")
    for r in rows:
        t.add_row(r["request_id"], r["kind"], DSR_STATUSES[r["status"]], f"{r['received_at']:%d/%m/%Y}",
                  f"{dsr.effective_due(r):%d/%m/%Y}", str(r["days_left"]), _URGENCY[r["urgency"]],
                  escape(r["subject_name"]))
    console.print(t)


@request_group.command("show")
@click.argument("request_id")
@click.option("--json", "as_json", is_flag=True)
@config_option
def request_show(request_id: str, as_json: bool, config: Path | None) -> None:
    """A request with its history and proofs."""
    from warehouse import dsr

    with _warehouse(config) as wh:
        try:
            req = dsr.get(wh, request_id)
        except dsr.RequestError as e:
            _fail(e, 2)
    if as_json:
        click.echo(json.dumps(_jsonable(req), ensure_ascii=False, indent=2))
    else:
        _print_request(req)


@request_group.command("update")
@click.argument("request_id")
@click.option("--status", type=click.Choice(_OPEN))
@click.option("--citizen", "citizen_id", help="The hub's citizen the request concerns.")
@click.option("--requester-citizen", help="The requesting parent's citizen id.")
@click.option("--identity-check", type=click.Choice(_CHECKS))
@click.option("--evidence")
@click.option("--doubt")
@click.option("--acknowledged", help="Date the receipt was acknowledged.")
@click.option("--proof", help="Reference of a proof (letter, e-mail id, file) to keep with the request.")
@click.option("--note")
@config_option
def request_update(request_id: str, status: str | None, citizen_id: str | None, requester_citizen: str | None,
                   identity_check: str | None, evidence: str | None, doubt: str | None, acknowledged: str | None,
                   proof: str | None, note: str | None, config: Path | None) -> None:
    """Change an open request (status, citizen, identity check, acknowledgement) or add a proof / note."""
    from warehouse import dsr

    with _warehouse(config) as wh:
        try:
            req = dsr.update(wh, request_id, agent(), status=status, citizen_id=citizen_id,
                             requester_citizen_id=requester_citizen, identity_check=identity_check,
                             identity_evidence=evidence, identity_doubt=doubt, acknowledged_at=_moment(acknowledged),
                             proof=proof, note=note)
        except dsr.RequestError as e:
            _fail(e)
    console.print(f"{req['request_id']}: {req['status']}")


@request_group.command("extend")
@click.argument("request_id")
@click.option("--reason", required=True, help="Why (told to the person).")
@click.option("--notified", help="When the person was told (default now); must be within the first month.")
@config_option
def request_extend(request_id: str, reason: str, notified: str | None, config: Path | None) -> None:
    """Extend the deadline by two months (Art. 12(3)); refused after the first month."""
    from warehouse import dsr

    with _warehouse(config) as wh:
        try:
            req = dsr.extend(wh, request_id, agent(), reason=reason, notified_at=_moment(notified))
        except dsr.RequestError as e:
            _fail(e)
    console.print(f"{req['request_id']}: due {req['extended_due_date']:%d/%m/%Y}")


@request_group.command("close")
@click.argument("request_id")
@click.option("--refuse", "refusal", help="Refuse, with the reason told to the person.")
@click.option("--answered", help="When the answer was sent (default now).")
@click.option("--proof", help="Reference of the answer sent.")
@config_option
def request_close(request_id: str, refusal: str | None, answered: str | None, proof: str | None,
                  config: Path | None) -> None:
    """Close a request as answered, or refused with its reason."""
    from schemas.contract import DSR_STATUSES
    from warehouse import dsr

    with _warehouse(config) as wh:
        try:
            req = dsr.close(wh, request_id, agent(), refused_reason=refusal, answered_at=_moment(answered),
                            proof=proof)
        except dsr.RequestError as e:
            _fail(e)
    late = req["answered_at"] and dsr.local_day(req["answered_at"]) > dsr.effective_due(req)
    console.print(f"{req['request_id']}: {DSR_STATUSES[req['status']]}" + (" [red](after the due date)[/red]"
                                                                             if late else ""))


# ------------------------------------------------------------------------------------------ access
@click.command("access")
@click.argument("target")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="The zip to write.")
@click.option("--recipient", help="Who the export goes to (default: the person, or the parent for a minor).")
@click.option("--confirm", multiple=True, help="A record to include although uncertain (DPO's confirmation).")
@click.option("--exclude", multiple=True, help="A record to leave out (not the person's).")
@click.option("--on-behalf-of-minor", is_flag=True, help="A parent asks for their minor child (checked, logged).")
@click.option("--requester-citizen", help="The requesting parent's citizen id (checked against the foyers).")
@click.option("--register", "register_path", type=click.Path(path_type=Path),
              help="Register of processing (default: $HUB_REGISTER, else schemas/register.toml).")
@config_option
def access_command(target: str, out: Path, recipient: str | None, confirm: tuple[str, ...], exclude: tuple[str, ...],
                   on_behalf_of_minor: bool, requester_citizen: str | None, register_path: Path | None,
                   config: Path | None) -> None:
    """Access export (Art. 15) of a request (DSR-…), a citizen id, or an identity (name + birth date,
    e-mail, phone): a zip with JSON, one CSV per source and a French HTML report. Records in the
    uncertain band make it a draft until confirmed (--confirm) or set aside (--exclude)."""
    from connectors.registry import staging_models
    from hub.readers import writer
    from schemas.register import RegisterError, load_register
    from warehouse.access_export import ExportError, export_access
    from warehouse.dsr import RequestError
    from warehouse.register_guard import UnmappedPersonalData

    settings = settings_or_exit(config)
    try:
        register = load_register(register_path)
    except RegisterError as e:
        _fail(e, 2)
    models = staging_models([(s.name, s.kind, s.params) for s in settings.sources])
    # it reads, but its proof goes to the request (a DPO's write): under the run lock like them
    with writer(settings, "gdpr access", publish=False) as wh:
        try:
            result = export_access(wh, target, out, reader=agent(), models=models, register=register,
                                   recipient=recipient, confirm=confirm, exclude=exclude,
                                   on_behalf_of_minor=on_behalf_of_minor or None,
                                   requester_citizen_id=requester_citizen)
        except UnmappedPersonalData as e:
            err.print(f"[red]completeness guard:[/red] {escape(str(e))}", soft_wrap=True)
            sys.exit(3)
        except (ExportError, RequestError) as e:
            _fail(e)
    console.print(f"{out}: citizen {result.citizen_id}, {result.records} record(s), {result.raw_rows} raw row(s), "
                  f"{result.redacted_values} value(s) of other people redacted; sha256 {result.sha256[:16]}…")
    if result.draft:
        err.print(f"[yellow]draft: {result.to_confirm} uncertain record(s) for the DPO to confirm (--confirm KEY) "
                  "or set aside (--exclude KEY) before anything is sent:[/yellow]")
        for r in result.document["to_confirm"]:
            err.print(f"  {r['record']['record_key']}  {r['confidence']}  {escape(r['reason'])}", soft_wrap=True)
