"""The citizen read model: search and the 360° view, each read logged with reader and purpose."""

from __future__ import annotations

import json

import pytest

from schemas.register import UnknownPurpose, load_register
from tests.logged import log_query
from warehouse.citizen_view import check_read, fold, search, show
from warehouse.engine import Warehouse

READ = {"reader": "agent.martin", "purpose": "guichet-unique"}
GUICHET = load_register().processing("guichet-unique").purpose  # "accueil et orientation des usagers"
RIGHTS = load_register().processing("droits-rgpd").purpose


def _reads(wh: Warehouse) -> int:
    return log_query(wh, "scalar", "SELECT count(*) FROM ops.access_log")

SEARCHES = [
    ("elodie", {"C-MARIE"}),
    ("ÉLODIE dupont", {"C-MARIE"}),
    ("lefevre", {"C-MARIE"}),  # birth name, known to the family silo only, unaccented
    ("LÉA", {"C-LEA"}),
    ("dupont", {"C-MARIE", "C-JEAN", "C-LEA", "C-HUGO"}),
    ("dupont 30/09/1980", {"C-JEAN"}),
    ("1982-04-12", {"C-MARIE"}),
    ("12/04/1982 marie", {"C-MARIE"}),
    ("MARIE.DUPONT@EXAMPLE.FR", {"C-MARIE"}),
    ("06 12 34 56 78", {"C-MARIE"}),
    ("+33 6 12 34 56 78", {"C-MARIE"}),
    ("dupond", set()),
    ("31/02/1980 dupont", set()),
    ("upont", set()),  # tokens start a word
]


def test_search(family_hub: Warehouse) -> None:
    # One warehouse for all the cases (a fresh PostgreSQL database per case costs ~1.5 s);
    # every case that fails is reported, by its query.
    wrong = {}
    for text, expected in SEARCHES:
        got = {r["citizen_id"] for r in search(family_hub, text, **READ)}
        if got != expected:
            wrong[text] = (sorted(got), sorted(expected))
    assert wrong == {}


def test_search_result_fields_and_order(family_hub: Warehouse) -> None:
    results = search(family_hub, "dupont", **READ)
    assert [r["given_names"] for r in results] == ["Hugo", "Jean", "Léa", "Marie Élodie"]
    marie = results[-1]
    assert set(marie) == {"citizen_id", "given_names", "birth_name", "usage_name", "birth_date", "city",
                          "source_systems"}
    assert marie["birth_date"] == "1982-04-12"
    assert marie["source_systems"] == ["assoc", "family", "finance"]
    assert len(search(family_hub, "dupont", limit=2, **READ)) == 2


def test_search_logs_one_read_per_result(family_hub: Warehouse) -> None:
    search(family_hub, "dupont 30/09/1980", reader="agent.durand", purpose="guichet-unique", channel="desk")
    rows = log_query(family_hub, "rows", "SELECT reader, purpose, channel, citizen_id, fields FROM ops.access_log")
    assert [r[:4] for r in rows] == [("agent.durand", GUICHET, "desk", "C-JEAN")]
    assert "citizen.birth_date" in json.loads(rows[0][4])
    assert "1980" not in rows[0][4]


def test_search_without_terms_reads_nobody(family_hub: Warehouse) -> None:
    assert search(family_hub, "  ,; ", **READ) == []
    assert _reads(family_hub) == 0


def test_reads_need_reader_and_purpose(family_hub: Warehouse) -> None:
    with pytest.raises(ValueError, match="reader and a purpose"):
        search(family_hub, "dupont", reader="agent.martin", purpose=" ")
    with pytest.raises(ValueError, match="reader and a purpose"):
        show(family_hub, "C-MARIE", reader="", purpose="guichet-unique")


@pytest.mark.parametrize("purpose", ["accueil usager", "test", "instruction-aide", "guichet"])
def test_a_free_text_purpose_is_refused_before_anything_is_read(family_hub: Warehouse, purpose: str) -> None:
    with pytest.raises(UnknownPurpose, match="one of the register's processings") as refused:
        show(family_hub, "C-MARIE", reader="agent.martin", purpose=purpose)
    assert "guichet-unique (accueil et orientation des usagers)" in str(refused.value)  # the valid ones listed
    with pytest.raises(UnknownPurpose):
        search(family_hub, "dupont", reader="agent.martin", purpose=purpose)
    assert _reads(family_hub) == 0


def test_a_purpose_is_named_by_processing_id_or_purpose_text() -> None:
    assert check_read("agent", "guichet-unique").id == "guichet-unique"
    assert check_read("agent", "  Accueil et orientation  des usagers ").id == "guichet-unique"
    assert check_read("agent", RIGHTS).id == "droits-rgpd"


def test_show_the_family_mother(family_hub: Warehouse) -> None:
    view = show(family_hub, "C-MARIE", **READ)
    assert view is not None
    json.dumps(view)  # JSON-serialisable as it is

    assert view["citizen"]["citizen_id"] == "C-MARIE"
    assert view["citizen"]["birth_date"] == "1982-04-12"
    assert view["citizen"]["source_systems"] == ["assoc", "family", "finance"]

    records = {r["record_key"]: r for r in view["records"]}
    assert set(records) == {"finance:T1", "family:P1", "assoc:R1"}
    assert {r["source_system"] for r in view["records"]} == {"finance", "family", "assoc"}
    assert records["family:P1"]["birth_name"] == "Lefèvre"
    assert records["finance:T1"]["address"] == {"address_line": "3 rue des Lilas", "postcode": "69003",
                                                 "city": "Lyon", "country": "FR"}
    assert records["finance:T1"]["match_probability"] == pytest.approx(0.99)

    households = {h["household_id"]: h for h in view["households"]}
    assert set(households) == {"finance:G1", "family:FAM1"}
    family = households["family:FAM1"]
    assert family["role"] == "responsable" and family["source_system"] == "family"
    assert sorted((m["citizen_id"], m["role"]) for m in family["members"]) == [
        ("C-HUGO", "enfant"), ("C-JEAN", "conjoint"), ("C-LEA", "enfant")]
    assert [(m["citizen_id"], m["role"]) for m in households["finance:G1"]["members"]] == [("C-JEAN", "conjoint")]

    assert [(o["name"], o["rna"], o["role"]) for o in view["organisations"]] == [
        ("Les Amis du Parc", "W691234567", "presidente")]

    interactions = view["interactions"]
    # her own, and the foyer's bill addressed to her conjoint (finance bills one of the two)
    assert [i["interaction_key"] for i in interactions] == ["finance:F101", "family:D3", "finance:F100", "assoc:S1"]
    assert [i["foyer"] for i in interactions] == [view["foyers"][0]["household_id"], None, None, None]
    assert [i["opened_at"] for i in interactions] == sorted(i["opened_at"] for i in interactions)
    assert [i["source_system"] for i in interactions] == ["finance", "family", "finance", "assoc"]
    assert interactions[2]["amount"] == "45.50" and interactions[2]["currency"] == "EUR"
    assert interactions[1]["due_at"].startswith("2024-04-10T09:00:00")


def test_a_foyer_bill_shows_on_each_responsable(family_hub: Warehouse) -> None:
    jean = show(family_hub, "C-JEAN", **READ)
    assert jean is not None
    # F100 is addressed to Marie only; Jean, responsable of the same foyer, owes it too
    assert "finance:F100" in [i["interaction_key"] for i in jean["interactions"]]
    assert "finance:F100" in jean["unpaid"]["invoices"]
    assert jean["unpaid"]["totals"] == {"EUR": "45.50"}
    # a child of the foyer is not billed
    lea = show(family_hub, "C-LEA", **READ)
    assert lea is not None and lea["unpaid"]["count"] == 0


def test_show_a_child(family_hub: Warehouse) -> None:
    view = show(family_hub, "C-LEA", **READ)
    assert view is not None
    assert [r["record_key"] for r in view["records"]] == ["family:E1"]
    (household,) = view["households"]
    assert household["role"] == "enfant"
    assert sorted(m["citizen_id"] for m in household["members"]) == ["C-HUGO", "C-JEAN", "C-MARIE"]
    assert view["organisations"] == []
    assert [(i["kind"], i["service"]) for i in view["interactions"]] == [("inscription", "cantine")]


def test_show_appends_to_the_access_log(family_hub: Warehouse) -> None:
    show(family_hub, "C-MARIE", reader="dpo.leroy", purpose="droits-rgpd", channel="gdpr-export")
    show(family_hub, "C-MARIE", **READ)
    rows = log_query(family_hub, "rows", "SELECT reader, purpose, channel, citizen_id, fields, read_at "
                     "FROM ops.access_log ORDER BY read_at")
    # the log holds the register's purpose text, whichever way the read named it
    assert [r[:4] for r in rows] == [("dpo.leroy", RIGHTS, "gdpr-export", "C-MARIE"),
                                     ("agent.martin", GUICHET, "cli", "C-MARIE")]
    fields = json.loads(rows[0][4])
    assert {"citizen.given_names", "records", "households", "organisations", "interactions"} <= set(fields)
    assert rows[0][5].tzinfo is not None


def test_show_unknown_citizen_reads_nothing(family_hub: Warehouse) -> None:
    assert show(family_hub, "C-NOBODY", **READ) is None
    assert _reads(family_hub) == 0


def test_show_before_any_resolution(wh: Warehouse) -> None:
    assert show(wh, "C-MARIE", **READ) is None
    assert search(wh, "marie", **READ) == []
    assert _reads(wh) == 0


FOLDS = [("Élodie", "elodie"), ("LŒTITIA", "loetitia"), ("D'Artagnan-Dupré", "d artagnan dupre"),
         ("Łukasz Øster", "lukasz oster")]


@pytest.mark.parametrize(("raw", "folded"), FOLDS, ids=[f[0] for f in FOLDS])
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded
