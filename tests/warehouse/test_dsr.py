"""The register of rights requests: deadlines as Art. 12(3) counts them (one calendar month, end of
month clamped, leap years; two more months only when told within the first), statuses, identity
checks, history; on both engines."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from warehouse import dsr
from warehouse.engine import Warehouse


@pytest.mark.parametrize(("received", "due"), [
    (date(2026, 1, 31), date(2026, 2, 28)),
    (date(2028, 1, 31), date(2028, 2, 29)),  # leap year
    (date(2100, 1, 31), date(2100, 2, 28)),  # not a leap year (century)
    (date(2000, 1, 30), date(2000, 2, 29)),  # leap year (400)
    (date(2026, 1, 15), date(2026, 2, 15)),
    (date(2026, 3, 31), date(2026, 4, 30)),
    (date(2026, 12, 31), date(2027, 1, 31)),  # across the year
    (date(2026, 2, 28), date(2026, 3, 28)),
], ids=lambda d: d.isoformat())
def test_due_one_calendar_month_after_receipt(received, due):
    assert dsr.due_date(received) == due


@pytest.mark.parametrize(("received", "extended"), [
    (date(2026, 1, 31), date(2026, 4, 30)),  # three months from receipt, not two from 28 February
    (date(2026, 11, 30), date(2027, 2, 28)),
    (date(2027, 11, 30), date(2028, 2, 29)),
    (date(2026, 10, 5), date(2027, 1, 5)),
], ids=lambda d: d.isoformat())
def test_an_extension_gives_two_further_months(received, extended):
    assert dsr.extended_due_date(received) == extended


def test_receipt_is_the_authoritys_calendar_day():
    late_evening = datetime(2026, 1, 30, 23, 30, tzinfo=UTC)  # 31 January, 00:30 in Paris
    assert dsr.due_date(late_evening) == date(2026, 2, 28)


def test_an_extension_must_be_notified_within_the_first_month():
    assert dsr.check_extension(date(2026, 1, 31), date(2026, 2, 28)) == date(2026, 4, 30)  # last day: fine
    with pytest.raises(dsr.RequestError, match="within the first month"):
        dsr.check_extension(date(2026, 1, 31), date(2026, 3, 1))


@pytest.fixture
def wh(warehouse_url: str):
    with Warehouse(warehouse_url) as w:
        yield w


NOW = datetime(2026, 2, 10, 9, 0, tzinfo=UTC)


def _new(wh: Warehouse, received: date, **kw):
    return dsr.new_request(wh, kind=kw.pop("kind", "access"), channel="courriel", actor="dpo.martin",
                           identity=dsr.Identity("Marie Dupont", birth_date=date(1982, 4, 12),
                                                 email="marie.dupont@example.fr"),
                           received_at=received, now=kw.pop("now", NOW), **kw)


def test_a_request_is_recorded_with_its_deadline_and_history(wh):
    req = _new(wh, date(2026, 1, 31), identity_check="coordonnees_connues",
               identity_evidence="courriel reçu de l'adresse connue du portail famille")
    assert req["request_id"].startswith("DSR-20260131-")
    assert req["due_date"] == date(2026, 2, 28) and req["extended_due_date"] is None
    assert req["status"] == "a_traiter" and req["created_by"] == "dpo.martin"
    assert [e["event"] for e in req["events"]] == ["created", "identity_checked"]
    pending = _new(wh, date(2026, 2, 2))
    assert pending["status"] == "attente_identite"


def test_an_identity_document_needs_a_written_doubt(wh):
    with pytest.raises(dsr.RequestError, match="reasonable doubt"):
        _new(wh, date(2026, 2, 1), identity_check="piece_identite")
    req = _new(wh, date(2026, 2, 1), identity_check="piece_identite",
               identity_doubt="courriel d'une adresse inconnue, nom courant")
    assert req["identity_doubt"]


def test_extension_within_the_first_month_and_refused_after(wh):
    req = _new(wh, date(2026, 1, 31), identity_check="guichet")
    rid = req["request_id"]
    extended = dsr.extend(wh, rid, "dpo.martin", reason="dossier réparti dans six services",
                          notified_at=date(2026, 2, 20), now=datetime(2026, 2, 20, 10, tzinfo=UTC))
    assert extended["extended_due_date"] == date(2026, 4, 30)
    assert extended["extension_reason"] == "dossier réparti dans six services"
    assert extended["events"][-1]["event"] == "extended"
    with pytest.raises(dsr.RequestError, match="already extended"):
        dsr.extend(wh, rid, "dpo.martin", reason="encore", now=datetime(2026, 2, 21, tzinfo=UTC))

    late = _new(wh, date(2026, 1, 31), identity_check="guichet", now=datetime(2026, 3, 2, tzinfo=UTC))
    # recorded after the first month: refused, even when a notification date inside it is claimed
    with pytest.raises(dsr.RequestError, match="within the first month"):
        dsr.extend(wh, late["request_id"], "dpo.martin", reason="trop tard", notified_at=date(2026, 2, 27),
                   now=datetime(2026, 3, 2, 9, tzinfo=UTC))
    assert dsr.get(wh, late["request_id"])["extended_due_date"] is None


def test_list_shows_overdue_then_due_within_7_days(wh):
    overdue = _new(wh, date(2026, 1, 5), identity_check="guichet")  # due 5 Feb
    soon = _new(wh, date(2026, 1, 14), identity_check="guichet")  # due 14 Feb: 4 days
    later = _new(wh, date(2026, 2, 9), identity_check="guichet")  # due 9 March
    done = _new(wh, date(2026, 1, 2), identity_check="guichet")
    dsr.close(wh, done["request_id"], "dpo.martin", answered_at=date(2026, 1, 20), now=NOW)
    rows = dsr.list_requests(wh, today=date(2026, 2, 10))
    assert [(r["request_id"], r["urgency"]) for r in rows] == [
        (overdue["request_id"], "overdue"), (soon["request_id"], "due_soon"), (later["request_id"], "open")]
    assert rows[0]["days_left"] == -5 and rows[1]["days_left"] == 4
    assert len(dsr.list_requests(wh, include_done=True, today=date(2026, 2, 10))) == 4


def test_update_close_and_refuse(wh):
    req = _new(wh, date(2026, 2, 1))
    rid = req["request_id"]
    with pytest.raises(dsr.RequestError, match="identity was never checked"):
        dsr.close(wh, rid, "dpo.martin", now=NOW)
    req = dsr.update(wh, rid, "dpo.martin", identity_check="element_du_dossier",
                     identity_evidence="numéro de facture F100 cité", citizen_id="C-MARIE",
                     proof="courrier-2026-0042.pdf", note="accusé de réception envoyé", now=NOW)
    assert req["status"] == "a_traiter" and req["citizen_id"] == "C-MARIE"
    assert [e["event"] for e in req["events"]][-3:] == ["identity_checked", "note", "proof"]
    req = dsr.update(wh, rid, "dpo.martin", status="attente_services", now=NOW)
    assert req["status"] == "attente_services"
    closed = dsr.close(wh, rid, "dpo.martin", answered_at=date(2026, 2, 12), proof="reponse.zip", now=NOW)
    assert closed["status"] == "clos" and closed["answered_at"] is not None
    with pytest.raises(dsr.RequestError, match="cannot change"):
        dsr.update(wh, rid, "dpo.martin", note="trop tard", now=NOW)

    other = _new(wh, date(2026, 2, 3), kind="erasure")
    with pytest.raises(dsr.RequestError, match="reason"):
        dsr.close(wh, other["request_id"], "dpo.martin", refused_reason=" ", now=NOW)
    refused = dsr.close(wh, other["request_id"], "dpo.martin", now=NOW,
                        refused_reason="factures conservées dix ans (obligation légale, CGCT L.1617-5)")
    assert refused["status"] == "refuse" and refused["events"][-1]["event"] == "refused"


def test_rules_refuse_bad_input(wh):
    with pytest.raises(dsr.RequestError, match="kind"):
        _new(wh, date(2026, 2, 1), kind="portability")
    with pytest.raises(dsr.RequestError, match="parent"):
        dsr.new_request(wh, kind="access", channel="guichet", actor="dpo",
                        identity=dsr.Identity("Léa Dupont", on_behalf_of_minor=True), now=NOW)
    with pytest.raises(dsr.RequestError, match="future"):
        _new(wh, date(2026, 3, 1))
