"""The timeline's legal deadlines (silence vaut acceptation / rejet), alerts and unpaid invoices."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from warehouse.timeline import annotate, procedure

NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def _i(key: str, kind: str, opened: str, *, status: str | None = "new", service: str | None = None,
       closed: str | None = None, due: str | None = None, amount: str | None = None, system: str = "crm") -> dict:
    def ts(v):
        return (datetime.fromisoformat(v).replace(tzinfo=UTC) if v else None)
    return {"interaction_key": key, "source_system": system, "record_key": f"{system}:p", "kind": kind,
            "service": service, "title": key, "status": status, "opened_at": ts(opened), "closed_at": ts(closed),
            "due_at": ts(due), "amount": Decimal(amount) if amount else None, "currency": "EUR" if amount else None,
            "channel": None}


def _one(*args, **kwargs) -> dict:
    return annotate([_i(*args, **kwargs)], now=NOW)["events"][0]


def test_an_open_request_older_than_two_months_is_overdue_and_silence_means_acceptance():
    e = _one("r1", "demande", "2026-07-15T09:00:00", service="voirie")
    assert (e["pending"], e["deadline"], e["silence"], e["overdue"], e["due_soon"]) == (
        True, datetime(2026, 9, 15, 9, tzinfo=UTC), "acceptation", True, False)


def test_a_request_due_within_fifteen_days_is_flagged_not_overdue():
    e = _one("r1", "demande", "2026-08-10T09:00:00")
    assert (e["overdue"], e["due_soon"]) == (False, True)
    later = _one("r2", "demande", "2026-09-20T09:00:00")
    assert (later["overdue"], later["due_soon"]) == (False, False)


@pytest.mark.parametrize(("kind", "service", "silence", "has_deadline"), [
    ("subvention", "vie associative", "rejet", True),
    ("demande", "aides", "rejet", True),
    ("demande", "information", None, False),
    ("demande", "état civil", "acceptation", True),
    ("ticket", "voirie", None, False),
], ids=["subsidy-silence-refuses", "financial-aid-refuses", "information-no-deadline", "default-accepts",
        "ticket-not-a-request"])
def test_procedures_decide_what_silence_means(kind, service, silence, has_deadline):
    e = _one("r", kind, "2026-01-05T00:00:00", service=service)
    assert (e["silence"], e["deadline"] is not None) == (silence, has_deadline)


def test_the_silos_own_due_date_wins_over_the_default_delay():
    e = _one("r", "demande", "2026-07-01T00:00:00", due="2026-10-10T00:00:00")
    assert (e["deadline"], e["overdue"], e["due_soon"]) == (datetime(2026, 10, 10, tzinfo=UTC), False, True)


def test_month_arithmetic_keeps_the_last_day_of_a_short_month():
    e = _one("r", "demande", "2025-12-31T10:00:00")
    assert e["deadline"] == datetime(2026, 2, 28, 10, tzinfo=UTC)


@pytest.mark.parametrize(("status", "closed", "pending"), [
    ("closed", "2026-08-01T00:00:00", False),
    ("en_attente", "2027-07-04T00:00:00", True),  # an enrolment's end date is in the future
    ("accordée", None, False),
], ids=["closed", "enrolment-waiting", "decided"])
def test_only_requests_still_waiting_are_pending(status, closed, pending):
    e = _one("r", "inscription" if status == "en_attente" else "demande", "2026-06-01T00:00:00", status=status,
             closed=closed)
    assert e["pending"] is pending


def test_events_are_ordered_across_silos_and_unpaid_invoices_are_totalled():
    tl = annotate([
        _i("assoc:s1", "subvention", "2026-05-01T00:00:00", status="déposée", amount="1500.00", system="assoc"),
        _i("finance:f1", "facture", "2026-03-01T00:00:00", status="emise", due="2026-03-31T00:00:00",
           amount="45.50", system="finance"),
        _i("family:f2", "facture", "2026-09-01T00:00:00", status="impayee", due="2026-10-10T00:00:00",
           amount="12.25", system="family"),
        _i("family:f3", "facture", "2026-02-01T00:00:00", status="payee", amount="99.00", system="family"),
    ], now=NOW)
    assert [e["interaction_key"] for e in tl["events"]] == ["family:f3", "finance:f1", "assoc:s1", "family:f2"]
    assert tl["unpaid"] == {"count": 2, "totals": {"EUR": Decimal("57.75")}, "invoices": ["finance:f1", "family:f2"]}
    flags = {e["interaction_key"]: (e["overdue"], e["due_soon"]) for e in tl["events"]}
    assert flags["finance:f1"] == (True, False) and flags["family:f2"] == (False, True)
    assert [e["interaction_key"] for e in tl["deadlines"]] == ["assoc:s1"]


def test_procedures_are_data():
    rules = [{"kind": "demande", "service": "urbanisme", "months": 3, "silence": "acceptation", "basis": "x"}]
    assert procedure({"kind": "demande", "service": "Urbanisme"}, rules)["months"] == 3
    assert procedure({"kind": "demande", "service": "voirie"}, rules)["months"] == 2  # the default
