"""The pages' French formats (hub/desk/present.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from hub.desk.present import (
    attribute_value,
    certification,
    days_since,
    days_until,
    explanation,
    fr_date,
    fr_datetime,
    full_name,
    money,
    percent,
    sentence,
)

NOW = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize("amount, currency, shown", [
    (Decimal("1500"), "EUR", "1\u202f500,00\u00a0€"), ("45.5", "EUR", "45,50\u00a0€"),
    ("-12.3", None, "-12,30\u00a0€"),
    (None, "EUR", "—"), ("1234567.8", "CHF", "1\u202f234\u202f567,80\u00a0CHF"), ("abc", "EUR", "abc EUR"),
], ids=["thousands", "cents", "negative-default-currency", "none", "other-currency", "not-a-number"])
def test_money_the_french_way(amount, currency, shown):
    assert money(amount, currency) == shown


@pytest.mark.parametrize("value, shown", [
    ("1982-04-12", "12/04/1982"), (date(1982, 12, 4), "04/12/1982"), ("2024-04-10T09:00:00+00:00", "10/04/2024"),
    (None, ""), ("", ""), ("12/04/1982", "12/04/1982"),
], ids=["iso-date", "date", "timestamp", "none", "empty", "already-french"])
def test_dates_day_first(value, shown):
    assert fr_date(value) == shown


def test_a_timestamp_says_its_hour_and_zone():
    assert fr_datetime("2026-12-07T08:05:00+00:00") == "07/12/2026 à 08:05 UTC"


@pytest.mark.parametrize("due, until, since", [
    (datetime(2026, 12, 12, 0, 10, tzinfo=UTC), "dans 5 jours", "aujourd'hui"),
    (datetime(2026, 12, 8, 1, 0, tzinfo=UTC), "demain", "aujourd'hui"),
    (datetime(2026, 12, 7, 1, 0, tzinfo=UTC), "aujourd'hui", "aujourd'hui"),
    (datetime(2026, 12, 6, 12, 0, tzinfo=UTC), "aujourd'hui", "1 jour"),
    ("2024-04-10T09:00:00+00:00", "aujourd'hui", "971 jours"),
], ids=["five-days", "tomorrow", "today", "yesterday", "long-ago"])
def test_deadlines_count_calendar_days(due, until, since):
    assert days_until(due, NOW) == until
    assert days_since(due, NOW) == since


def test_a_links_explanation_says_what_agreed_and_what_differed():
    record = SimpleNamespace(explanation={"first_name": 9.1, "birth_date": -2.25, "email": 3.4},
                             match_probability=0.97, linked_via="finance:T1")
    assert explanation(record) == ("concordent : le prénom (+9,1), l'adresse électronique (+3,4) ; "
                                   "diffèrent : la date de naissance (-2,2) (rapprochée de finance:T1)")
    assert explanation(SimpleNamespace(explanation=None, match_probability=1.0, linked_via=None)) == \
        "fiche seule : rien à rapprocher"
    assert explanation(SimpleNamespace(explanation={"decision": "must-link"}, match_probability=1.0,
                                       linked_via=None)) == "décision d'un agent (must-link)"


def test_values_names_and_levels():
    assert attribute_value("birth_date", "1982-12-04") == "04/12/1982"
    assert attribute_value("sex", "F") == "féminin"
    assert attribute_value("email", None) == ""
    assert full_name({"given_names": "Marie Élodie", "usage_name": "Dupont", "birth_name": "Lefèvre"}) == \
        "Marie Élodie Dupont"
    assert full_name(SimpleNamespace(given_names="Léa", usage_name=None, birth_name="Martin")) == "Léa Martin"
    assert [certification(x) for x in (0, 1, 2, None, 7)] == \
        ["déclaratif", "justificatif vérifié par un agent", "FranceConnect", "inconnu", "inconnu"]
    assert percent(0.9731) == "97,3\u00a0%"
    assert sentence("exercice des droits RGPD") == "Exercice des droits RGPD"
