"""The 360° timeline: a citizen's interactions across silos, with legal deadlines and unpaid invoices.

A pending request (a ``demande``, ``subvention`` or ``inscription`` not closed) carries its legal
answer deadline: the silo's own ``due_at`` when it gives one, else ``opened_at`` plus the
procedure's delay. In French administrative law silence keeps its meaning at the deadline
(CRPA L.231-1: *silence vaut acceptation* after two months by default; L.231-4: *silence vaut
rejet* for requests of a financial nature, among others), so each deadline says what silence
means. The procedures are data (:data:`PROCEDURES`): first matching entry wins, the
``default`` applies otherwise; ``months: null`` means no legal deadline (a report, a question).

Flags: ``overdue`` once the deadline has passed while the request is still pending;
``due_soon`` when it falls within :data:`DUE_SOON_DAYS` days. Invoices not paid (``emise``,
``impayee``) are listed with their total per currency.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

DUE_SOON_DAYS = 15
REQUEST_KINDS = ("demande", "subvention", "inscription")
# Statuses that end a request, whatever the silo (lower case, as staging writes them).
CLOSED_STATUSES = (
    "closed", "resolved", "canceled", "cancelled", "accepte", "refuse", "sans_suite", "accordée", "accordee",
    "refusée", "refusee", "terminee", "terminée", "active", "clos", "cloture", "clôturé",
)
UNPAID_STATUSES = ("emise", "impayee", "impayée", "unpaid")

# First match wins: keys other than months / silence / basis must equal the interaction's fields.
PROCEDURES: list[dict[str, Any]] = [
    {"kind": "subvention", "months": 2, "silence": "rejet",
     "basis": "CRPA L.231-4: demande à caractère financier"},
    {"kind": "demande", "service": "aides", "months": 2, "silence": "rejet",
     "basis": "CRPA L.231-4: demande à caractère financier"},
    {"kind": "demande", "service": "information", "months": None, "silence": None,
     "basis": "demande de renseignement: pas de décision attendue"},
    {"kind": "inscription", "months": 2, "silence": "acceptation", "basis": "CRPA L.231-1"},
]
DEFAULT_PROCEDURE: dict[str, Any] = {"months": 2, "silence": "acceptation", "basis": "CRPA L.231-1"}


def _add_months(when: datetime, months: int) -> datetime:
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    # the same day of the month, or the last one (31 January + 1 month = 28/29 February)
    for day in (when.day, 30, 29, 28):
        try:
            return when.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise ValueError("unreachable: every month has a 28th")


def procedure(interaction: dict[str, Any], procedures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The deadline rule of an interaction: ``{months, silence, basis}``."""
    for p in PROCEDURES if procedures is None else procedures:
        keys = {k: v for k, v in p.items() if k not in ("months", "silence", "basis")}
        if all((interaction.get(k) or "").lower() == str(v).lower() for k, v in keys.items()):
            return {"months": p.get("months"), "silence": p.get("silence"), "basis": p.get("basis")}
    return dict(DEFAULT_PROCEDURE)


def _ts(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value))


def is_pending(i: dict[str, Any], now: datetime) -> bool:
    """A request still waiting for an answer (an enrolment's ``closed_at`` may be its future end)."""
    closed = _ts(i.get("closed_at"))
    return (i.get("kind") in REQUEST_KINDS and (closed is None or closed > now)
            and (i.get("status") or "") not in CLOSED_STATUSES)


def annotate(interactions: list[dict[str, Any]], *, now: datetime,
             procedures: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Timeline of one citizen from its interactions (dicts with INTERACTION columns, any order).

    Returns ``{"events", "deadlines", "unpaid"}``: ``events`` ordered by ``opened_at`` (then key),
    each with ``pending``, ``deadline``, ``silence``, ``basis``, ``overdue``, ``due_soon`` added;
    ``deadlines`` the pending requests by deadline; ``unpaid`` ``{count, totals: {currency:
    Decimal}, invoices: [interaction_key]}``. Pure: ``now`` is given.
    """
    if now.tzinfo is None:
        raise ValueError("annotate needs a timezone-aware `now`")
    soon = now + timedelta(days=DUE_SOON_DAYS)
    events = []
    for i in sorted(interactions, key=lambda r: (_ts(r["opened_at"]), r["interaction_key"])):
        e = dict(i)
        e.update(pending=False, deadline=None, silence=None, basis=None, overdue=False, due_soon=False)
        if is_pending(i, now):
            rule = procedure(i, procedures)
            due = _ts(i.get("due_at"))
            if due is None and rule["months"] is not None:
                due = _add_months(_ts(i["opened_at"]), int(rule["months"]))
            e.update(pending=True, deadline=due, silence=rule["silence"], basis=rule["basis"])
            if due is not None:
                e.update(overdue=due < now, due_soon=now <= due <= soon)
        elif i.get("kind") == "facture" and (i.get("status") or "") in UNPAID_STATUSES:
            due = _ts(i.get("due_at"))
            e.update(deadline=due, overdue=due is not None and due < now,
                     due_soon=due is not None and now <= due <= soon)
        events.append(e)
    deadlines = sorted((e for e in events if e["pending"] and e["deadline"] is not None),
                       key=lambda e: (e["deadline"], e["interaction_key"]))
    unpaid = [e for e in events if e.get("kind") == "facture" and (e.get("status") or "") in UNPAID_STATUSES]
    totals: dict[str, Decimal] = {}
    for e in unpaid:
        if e.get("amount") is not None:
            cur = e.get("currency") or "EUR"
            totals[cur] = totals.get(cur, Decimal("0")) + Decimal(str(e["amount"]))
    return {"events": events, "deadlines": deadlines,
            "unpaid": {"count": len(unpaid), "totals": totals, "invoices": [e["interaction_key"] for e in unpaid]}}
