"""The register of rights requests (GDPR Art. 12 and 15-21): record, follow, extend, close.

One row per request in ``gdpr.dsr_request`` (its current state) and its history in
``gdpr.dsr_event`` (append-only: every step with who, when and the proof). Deadlines follow
Art. 12(3) counted as Regulation 1182/71 counts months: the answer is due one calendar month
after receipt, on the same day of the month, or on the month's last day when it has no such day
(received 31 January -> due 28 February, 29 in a leap year). The period may be extended by two
further months (three calendar months after receipt) when the person is told why within the
first month; an extension recorded after that is refused.

Identity is checked by proportionate means (the request comes from contact details the hub
already knows, a detail of the person's file, at the desk, FranceConnect); an identity document
is asked for only on a reasonable doubt, which must then be written down. Messages and logs
carry request ids, never the identity given.
"""

from __future__ import annotations

import calendar
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from schemas.contract import DSR_EVENT, DSR_KINDS, DSR_REQUEST, DSR_STATUSES, arrow_schema
from warehouse.engine import Warehouse, qualified

log = logging.getLogger(__name__)

# The authority's calendar: a request received at 23:30 UTC on 31 January is received on
# 1 February in Paris or Brussels.
LOCAL_TZ = ZoneInfo("Europe/Paris")
DUE_SOON_DAYS = 7
CHANNELS = ("courrier", "courriel", "guichet", "formulaire", "telephone")
IDENTITY_CHECKS = {
    "en_attente": "pas encore vérifiée",
    "coordonnees_connues": "demande reçue depuis des coordonnées déjà connues des services",
    "element_du_dossier": "la personne a donné un élément de son dossier (n° de facture, de dossier…)",
    "guichet": "présentation au guichet",
    "franceconnect": "authentification FranceConnect",
    "piece_identite": "pièce d'identité, demandée sur un doute raisonnable (non conservée)",
}
OPEN_STATUSES = ("a_traiter", "attente_identite", "attente_services")
KIND_LABELS = {"access": "accès (art. 15)", "erasure": "effacement (art. 17)",
               "rectification": "rectification (art. 16)", "objection": "opposition (art. 21)"}


class RequestError(ValueError):
    """A request cannot be recorded or changed as asked (the message names the rule, never the identity)."""


# ------------------------------------------------------------------------------------------ dates
def add_months(d: date, months: int) -> date:
    """``d`` plus calendar months, clamped to the month's last day (31 Jan + 1 -> 28/29 Feb)."""
    total = d.year * 12 + (d.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def local_day(moment: datetime | date) -> date:
    """The authority's calendar day of a moment (a date is taken as is)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("a naive datetime: give a timezone-aware one")
        return moment.astimezone(LOCAL_TZ).date()
    return moment


def due_date(received: datetime | date) -> date:
    """Art. 12(3): one calendar month after the day of receipt."""
    return add_months(local_day(received), 1)


def extended_due_date(received: datetime | date) -> date:
    """Art. 12(3) extended: two further months, i.e. three calendar months after the day of receipt."""
    return add_months(local_day(received), 3)


def check_extension(received: datetime | date, notified: datetime | date) -> date:
    """The extended due date, or :class:`RequestError` when the person was told after the first month."""
    first_month_end = due_date(received)
    told = local_day(notified)
    if told < local_day(received):
        raise RequestError("the extension cannot be notified before the request was received")
    if told > first_month_end:
        raise RequestError(f"an extension must be notified to the person within the first month (by "
                           f"{first_month_end.isoformat()}); notified {told.isoformat()}: refused")
    return extended_due_date(received)


def _aware(moment: datetime | date | None, default: datetime | None = None) -> datetime | None:
    if moment is None:
        return default
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("a naive datetime: give a timezone-aware one")
        return moment.astimezone(UTC)
    # a bare day: noon in the authority's calendar, so the day survives any conversion
    return datetime(moment.year, moment.month, moment.day, 12, tzinfo=LOCAL_TZ).astimezone(UTC)


# ------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class Identity:
    """The identity given with a request: the person concerned, and who asks when it is someone else."""

    name: str
    birth_date: date | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    citizen_id: str | None = None
    on_behalf_of_minor: bool = False
    requester_name: str | None = None
    requester_citizen_id: str | None = None


def ensure_tables(wh: Warehouse) -> None:
    wh.ensure_tables((DSR_REQUEST, DSR_EVENT))


def _event(wh: Warehouse, request_id: str, event: str, actor: str, *, detail: str | None = None,
           proof: str | None = None, proof_sha256: str | None = None, at: datetime | None = None) -> None:
    row = {"request_id": request_id, "event_at": at or datetime.now(UTC), "event": event, "actor": actor,
           "detail": detail, "proof": proof, "proof_sha256": proof_sha256}
    wh.write(DSR_EVENT, pa.Table.from_pylist([row], schema=arrow_schema(DSR_EVENT)))


def add_event(wh: Warehouse, request_id: str, event: str, actor: str, *, detail: str | None = None,
              proof: str | None = None, proof_sha256: str | None = None) -> None:
    """Append a step (a proof, a note, an export) to a request's history."""
    get(wh, request_id)
    _event(wh, request_id, event, actor, detail=detail, proof=proof, proof_sha256=proof_sha256)


def _check_identity_method(method: str, doubt: str | None) -> None:
    if method not in IDENTITY_CHECKS:
        raise RequestError(f"identity check {method!r} is not one of {', '.join(IDENTITY_CHECKS)}")
    if method == "piece_identite" and not (doubt and doubt.strip()):
        raise RequestError("an identity document may be asked for only on a reasonable doubt: write the doubt "
                           "down (--doubt)")


def new_request(wh: Warehouse, *, kind: str, channel: str, identity: Identity, actor: str,
                received_at: datetime | date | None = None, identity_check: str = "en_attente",
                identity_evidence: str | None = None, identity_doubt: str | None = None,
                acknowledged_at: datetime | date | None = None, details: str | None = None,
                now: datetime | None = None) -> dict[str, Any]:
    """Record a request; returns it (as :func:`get`). Its status is ``attente_identite`` until the
    identity is checked, else ``a_traiter``; the due date is one calendar month after receipt."""
    if kind not in DSR_KINDS:
        raise RequestError(f"kind {kind!r} is not one of {', '.join(DSR_KINDS)}")
    if channel not in CHANNELS:
        raise RequestError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    if not (identity.name and identity.name.strip()):
        raise RequestError("a request names the person concerned")
    if identity.on_behalf_of_minor and not (identity.requester_name and identity.requester_name.strip()):
        raise RequestError("a request for a minor names the parent (legal representative) who makes it")
    _check_identity_method(identity_check, identity_doubt)
    now = now or datetime.now(UTC)
    received = _aware(received_at, now)
    assert received is not None
    if local_day(received) > local_day(now) or (isinstance(received_at, datetime)
                                                 and received > now + timedelta(minutes=5)):
        raise RequestError("a request cannot be received in the future")
    received = min(received, now)  # "received today" given as a bare day: not later than now
    ensure_tables(wh)
    request_id = f"DSR-{local_day(received):%Y%m%d}-{secrets.token_hex(3)}"
    checked = identity_check != "en_attente"
    row = {
        "request_id": request_id, "kind": kind, "status": "a_traiter" if checked else "attente_identite",
        "channel": channel, "subject_name": identity.name.strip(), "subject_birth_date": identity.birth_date,
        "subject_email": identity.email, "subject_phone": identity.phone, "subject_address": identity.address,
        "citizen_id": identity.citizen_id, "on_behalf_of_minor": identity.on_behalf_of_minor,
        "requester_name": identity.requester_name, "requester_citizen_id": identity.requester_citizen_id,
        "identity_check": identity_check, "identity_evidence": identity_evidence, "identity_doubt": identity_doubt,
        "identity_checked_at": now if checked else None, "details": details, "received_at": received,
        "acknowledged_at": _aware(acknowledged_at), "due_date": due_date(received), "extended_due_date": None,
        "extension_reason": None, "extension_notified_at": None, "answered_at": None, "refusal_reason": None,
        "created_by": actor, "updated_at": now,
    }
    with wh.transaction():
        wh.write(DSR_REQUEST, pa.Table.from_pylist([row], schema=arrow_schema(DSR_REQUEST)))
        _event(wh, request_id, "created", actor, at=now,
               detail=f"demande d'{KIND_LABELS[kind]} reçue par {channel}"
                      + (" (représentant légal d'un mineur)" if identity.on_behalf_of_minor else ""))
        if checked:
            _event(wh, request_id, "identity_checked", actor, at=now, detail=IDENTITY_CHECKS[identity_check])
        if row["acknowledged_at"] is not None:
            _event(wh, request_id, "acknowledged", actor, at=now)
    log.info("rights request %s recorded (%s)", request_id, kind)
    return get(wh, request_id)


def get(wh: Warehouse, request_id: str) -> dict[str, Any]:
    """One request with its history (``events``), or :class:`RequestError` when unknown."""
    if not wh.table_exists(DSR_REQUEST.schema, DSR_REQUEST.name):
        raise RequestError(f"no request {request_id}")
    rows = wh.dicts(f"SELECT * FROM {qualified(DSR_REQUEST)} WHERE request_id = :r", {"r": request_id})
    if not rows:
        raise RequestError(f"no request {request_id}")
    req = rows[0]
    req["events"] = wh.dicts(
        f"SELECT event_at, event, actor, detail, proof, proof_sha256 FROM {qualified(DSR_EVENT)} "
        "WHERE request_id = :r ORDER BY event_at", {"r": request_id})
    return req


def effective_due(req: dict[str, Any]) -> date:
    return req.get("extended_due_date") or req["due_date"]


def urgency(req: dict[str, Any], today: date) -> str:
    """``overdue``, ``due_soon`` (within 7 days), ``open`` or ``done`` (closed or refused)."""
    if req["status"] not in OPEN_STATUSES:
        return "done"
    due = effective_due(req)
    if due < today:
        return "overdue"
    if due <= today + timedelta(days=DUE_SOON_DAYS):
        return "due_soon"
    return "open"


def list_requests(wh: Warehouse, *, include_done: bool = False, today: date | None = None) -> list[dict[str, Any]]:
    """Open requests (all with ``include_done``): overdue first, then due within 7 days, then the
    rest, each group by due date. Each row carries ``urgency`` and ``days_left``."""
    if not wh.table_exists(DSR_REQUEST.schema, DSR_REQUEST.name):
        return []
    today = today or local_day(datetime.now(UTC))
    rows = wh.dicts(
        "SELECT request_id, kind, status, channel, subject_name, citizen_id, on_behalf_of_minor, received_at, "
        f"due_date, extended_due_date, answered_at FROM {qualified(DSR_REQUEST)}")
    order = {"overdue": 0, "due_soon": 1, "open": 2, "done": 3}
    out = []
    for r in rows:
        r["urgency"] = urgency(r, today)
        if r["urgency"] == "done" and not include_done:
            continue
        r["days_left"] = (effective_due(r) - today).days
        out.append(r)
    return sorted(out, key=lambda r: (order[r["urgency"]], effective_due(r), r["request_id"]))


def _update(wh: Warehouse, request_id: str, changes: dict[str, Any], now: datetime) -> None:
    unknown = set(changes) - set(DSR_REQUEST.column_names)
    if unknown:
        raise ValueError(f"not columns of gdpr.dsr_request: {sorted(unknown)}")
    sets = ", ".join(f'"{c}" = :v_{c}' for c in changes)
    params = {f"v_{c}": v for c, v in changes.items()} | {"v_updated_at": now, "r": request_id}
    wh.execute(f'UPDATE {qualified(DSR_REQUEST)} SET {sets}, "updated_at" = :v_updated_at WHERE request_id = :r',
               params)


def _open(req: dict[str, Any]) -> None:
    if req["status"] not in OPEN_STATUSES:
        raise RequestError(f"request {req['request_id']} is {DSR_STATUSES[req['status']]}: it cannot change any more")


def update(wh: Warehouse, request_id: str, actor: str, *, status: str | None = None,
           citizen_id: str | None = None, requester_citizen_id: str | None = None,
           identity_check: str | None = None, identity_evidence: str | None = None,
           identity_doubt: str | None = None, acknowledged_at: datetime | date | None = None,
           proof: str | None = None, note: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Change an open request: status (not ``clos``/``refuse``: :func:`close`), the citizen it
    concerns, the identity check, the acknowledgement; add a proof or a note to its history."""
    now = now or datetime.now(UTC)
    req = get(wh, request_id)
    _open(req)
    changes: dict[str, Any] = {}
    events: list[tuple[str, str | None, str | None]] = []
    if identity_check is not None:
        _check_identity_method(identity_check, identity_doubt or req.get("identity_doubt"))
        changes |= {"identity_check": identity_check,
                    "identity_checked_at": None if identity_check == "en_attente" else now}
        if identity_evidence is not None:
            changes["identity_evidence"] = identity_evidence
        if identity_doubt is not None:
            changes["identity_doubt"] = identity_doubt
        events.append(("identity_checked", IDENTITY_CHECKS[identity_check], None))
        if identity_check != "en_attente" and req["status"] == "attente_identite" and status is None:
            changes["status"] = "a_traiter"
    if status is not None:
        if status not in OPEN_STATUSES:
            raise RequestError(f"status {status!r}: one of {', '.join(OPEN_STATUSES)} (close or refuse with "
                               "`close`)")
        changes["status"] = status
        events.append(("status", DSR_STATUSES[status], None))
    if citizen_id is not None:
        changes["citizen_id"] = citizen_id
        events.append(("note", "citoyen du hub identifié", None))
    if requester_citizen_id is not None:
        changes["requester_citizen_id"] = requester_citizen_id
    if acknowledged_at is not None:
        changes["acknowledged_at"] = _aware(acknowledged_at)
        events.append(("acknowledged", None, None))
    if proof is not None:
        events.append(("proof", note, proof))
    elif note is not None:
        events.append(("note", note, None))
    if not changes and not events:
        raise RequestError("nothing to change")
    with wh.transaction():
        if changes:
            _update(wh, request_id, changes, now)
        for event, detail, ref in events:
            _event(wh, request_id, event, actor, detail=detail, proof=ref, at=now)
    return get(wh, request_id)


def extend(wh: Warehouse, request_id: str, actor: str, *, reason: str,
           notified_at: datetime | date | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Extend by two months (Art. 12(3)): the reason, told to the person within the first month.
    Refused once the first month is over, or when already extended."""
    now = now or datetime.now(UTC)
    if not (reason and reason.strip()):
        raise RequestError("an extension needs the reason told to the person")
    req = get(wh, request_id)
    _open(req)
    if req["extended_due_date"] is not None:
        raise RequestError(f"request {request_id} is already extended (to {req['extended_due_date'].isoformat()})")
    notified = _aware(notified_at, now)
    assert notified is not None
    # recorded after the first month: refused, whatever date is claimed for the notification
    check_extension(req["received_at"], now)
    new_due = check_extension(req["received_at"], notified)
    with wh.transaction():
        _update(wh, request_id, {"extended_due_date": new_due, "extension_reason": reason.strip(),
                                 "extension_notified_at": notified}, now)
        _event(wh, request_id, "extended", actor, at=now,
               detail=f"prolongation de deux mois jusqu'au {new_due.isoformat()} : {reason.strip()}")
    return get(wh, request_id)


def close(wh: Warehouse, request_id: str, actor: str, *, refused_reason: str | None = None,
          answered_at: datetime | date | None = None, proof: str | None = None,
          now: datetime | None = None) -> dict[str, Any]:
    """Close a request as answered (``clos``) or refused with its reason (``refuse``, Art. 12(4))."""
    now = now or datetime.now(UTC)
    req = get(wh, request_id)
    _open(req)
    answered = _aware(answered_at, now)
    if refused_reason is not None and not refused_reason.strip():
        raise RequestError("a refusal needs its reason (told to the person, with the right to complain to the CNIL)")
    if answered is not None and answered < req["received_at"] - timedelta(days=1):
        raise RequestError("answered before the request was received")
    if refused_reason is None and req["identity_check"] == "en_attente":
        raise RequestError("the identity was never checked: check it (update --identity-check) or refuse with "
                           "the reason")
    status = "refuse" if refused_reason else "clos"
    with wh.transaction():
        _update(wh, request_id, {"status": status, "answered_at": answered, "refusal_reason": refused_reason}, now)
        _event(wh, request_id, "refused" if refused_reason else "closed", actor, at=now,
               detail=refused_reason, proof=proof)
    late = local_day(answered) > effective_due(req)
    if late:
        log.warning("rights request %s answered after its due date", request_id)
    return get(wh, request_id)
