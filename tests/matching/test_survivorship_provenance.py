"""Survivorship rules with provenance: which criterion decided, conflicts, worklists, rules as data."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from matching.survivorship import survive
from schemas.contract import CITIZEN_ATTRIBUTE, DISCREPANCY
from schemas.survivorship import RULES, validate
from tests.matching.conftest import make_records

NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
OLD = datetime(2024, 1, 1, tzinfo=UTC)
NEW = datetime(2026, 6, 1, tzinfo=UTC)


def _run(*rows, rules=None):
    records = make_records(*rows)
    links = pa.table({"record_key": records["record_key"], "citizen_id": ["C1"] * records.num_rows})
    out = survive(records, links, now=NOW, rules=rules)
    attrs = {r["attribute"]: r for r in out.attributes.to_pylist()}
    return out, attrs


def test_a_franceconnect_birth_name_beats_a_newer_declarative_one():
    out, attrs = _run(
        {"source_system": "family", "source_id": "r1", "birth_name": "Lefèvre", "certification_level": 2,
         "updated_at": OLD},
        {"source_system": "family", "source_id": "r2", "birth_name": "Lefebvre", "certification_level": 0,
         "updated_at": NEW},
    )
    assert out.citizens["birth_name"].to_pylist() == ["Lefèvre"]
    assert (attrs["birth_name"]["record_key"], attrs["birth_name"]["rule"],
            attrs["birth_name"]["certification_level"]) == ("family:r1", "certification", 2)


def test_source_priority_decides_between_equal_proof_levels_before_recency():
    out, attrs = _run(
        {"source_system": "finance", "address_line": "9 RUE DU LAC", "postcode": "69002", "updated_at": NEW},
        {"source_system": "family", "address_line": "3 rue des Lilas", "postcode": "69003", "updated_at": OLD},
    )
    assert out.citizens["address_line"].to_pylist() == ["3 rue des Lilas"]
    assert {a: attrs[a]["rule"] for a in ("address_line", "postcode")} == {
        "address_line": "source_priority", "postcode": "source_priority"}
    assert attrs["address_line"]["source_system"] == "family"


@pytest.mark.parametrize(("rows", "rule"), [
    ([{"email": "old@free.fr", "updated_at": OLD}, {"email": "new@free.fr", "updated_at": NEW}], "recency"),
    ([{"phone": "0611111111"}, {"phone": "0622222222"}, {"phone": "06 22 22 22 22"}], "frequency"),
    ([{"email": "zoe@free.fr"}, {"email": "ana@free.fr"}], "tie_break"),
    ([{"email": "ana@free.fr"}, {"email": "ANA@Free.fr "}], "unanimous"),
], ids=["recency", "frequency", "tie-break", "unanimous"])
def test_the_rule_names_the_criterion_that_decided(rows, rule):
    _, attrs = _run(*rows)
    key = "email" if "email" in rows[0] else "phone"
    assert attrs[key]["rule"] == rule


def test_ties_resolve_the_same_way_in_any_row_order():
    rows = [{"source_id": str(i), "email": e} for i, e in enumerate(["zoe@free.fr", "ana@free.fr", "max@free.fr"])]
    first, _ = _run(*rows)
    again, _ = _run(*reversed(rows))
    assert first.citizens.equals(again.citizens)
    assert first.attributes.equals(again.attributes)
    assert first.citizens["email"].to_pylist() == ["zoe@free.fr"]  # the smallest record key: finance:0


def test_a_placeholder_never_wins_and_is_not_a_candidate():
    out, attrs = _run(
        {"source_system": "family", "given_names": "INCONNU", "birth_date": date(1900, 1, 1),
         "certification_level": 2, "updated_at": NEW},
        {"given_names": "Anne", "birth_date": date(1980, 3, 4), "updated_at": OLD},
    )
    assert (out.citizens["given_names"].to_pylist(), out.citizens["birth_date"].to_pylist()) == (
        ["Anne"], [date(1980, 3, 4)])
    assert attrs["given_names"]["rule"] == "unanimous" and attrs["given_names"]["candidates"] == 1
    assert out.discrepancies.num_rows == 0  # a placeholder is nothing to fix against


def test_usage_name_stands_for_an_unknown_birth_name_but_never_beats_a_real_one():
    _, attrs = _run({"usage_name": "Martin", "certification_level": 2})
    assert (attrs["birth_name"]["value"], attrs["birth_name"]["rule"]) == ("Martin", "fallback")
    out, attrs = _run({"usage_name": "Martin", "certification_level": 2, "updated_at": NEW},
                      {"source_id": "9", "usage_name": "Martin", "birth_name": "Durand", "updated_at": OLD})
    assert out.citizens["birth_name"].to_pylist() == ["Durand"]
    assert (attrs["birth_name"]["record_key"], attrs["birth_name"]["rule"]) == ("finance:9", "unanimous")


def test_provenance_of_every_golden_attribute_points_at_a_record_holding_that_value():
    rows = [
        {"source_system": "family", "source_id": "p1", "given_names": "Marie Élodie", "birth_name": "Lefèvre",
         "usage_name": "Dupont", "sex": "F", "birth_date": date(1982, 4, 12), "email": "marie@free.fr",
         "certification_level": 1},
        {"source_system": "finance", "source_id": "t1", "given_names": "MARIE", "usage_name": "DUPONT",
         "phone": "06 12 34 56 78", "address_line": "3 R DES LILAS", "postcode": "69003", "city": "LYON"},
    ]
    out, attrs = _run(*rows)
    golden = out.citizens.to_pylist()[0]
    records = {r["record_key"]: r for r in make_records(*rows).to_pylist()}
    assert set(attrs) == {k for k, v in golden.items() if v is not None} - {
        "citizen_id", "record_count", "source_systems", "updated_at"}
    for attr, p in attrs.items():
        assert p["record_key"] in records, attr
        source = records[p["record_key"]]
        assert p["source_system"] == source["source_system"]
        assert p["certification_level"] == source["certification_level"]
        assert p["observed_at"] == source["updated_at"]
        assert p["value"] == str(golden[attr])
    assert out.attributes.schema.names == CITIZEN_ATTRIBUTE.column_names


def test_conflicts_are_flagged_and_each_silo_gets_its_worklist():
    out, attrs = _run(
        {"source_system": "family", "source_id": "p1", "email": "anne@free.fr", "given_names": "Anne Marie",
         "address_line": "3 rue des Lilas", "postcode": "69003", "city": "Lyon", "updated_at": NEW},
        {"source_system": "finance", "source_id": "t1", "email": "anne.old@free.fr", "given_names": "ANNE",
         "address_line": "9 RUE DU LAC", "postcode": "69002", "city": "LYON", "updated_at": OLD},
        {"source_system": "salesforce", "source_id": "c1", "email": "ANNE@free.fr",
         "address_line": "3 rue des lilas", "postcode": "69003", "city": "LYON", "updated_at": OLD},
    )
    assert (attrs["email"]["conflict"], attrs["email"]["candidates"]) == (True, 2)
    assert attrs["address_line"]["conflict"] is True
    assert attrs["given_names"]["conflict"] is False  # prénoms are not a tracked conflict
    work = [(d["record_key"], d["attribute"], d["silo_value"], d["golden_value"], d["golden_source_system"])
            for d in out.discrepancies.to_pylist()]
    assert work == [
        ("finance:t1", "address", "9 RUE DU LAC, 69002 LYON", "3 rue des Lilas, 69003 Lyon", "family"),
        ("finance:t1", "email", "anne.old@free.fr", "anne@free.fr", "family"),
    ]  # salesforce agrees once standardised: nothing to fix there
    assert out.discrepancies.schema.names == DISCREPANCY.column_names


def test_rules_are_data_a_different_order_changes_the_winner():
    rows = [{"source_system": "family", "email": "fam@free.fr", "updated_at": OLD},
            {"source_system": "finance", "email": "fin@free.fr", "updated_at": NEW}]
    default, _ = _run(*rows)
    recency_first = {**RULES, "email": {**RULES["email"], "order": ("recency", "certification")}}
    custom, attrs = _run(*rows, rules=recency_first)
    assert (default.citizens["email"].to_pylist(), custom.citizens["email"].to_pylist()) == (
        ["fam@free.fr"], ["fin@free.fr"])
    assert attrs["email"]["rule"] == "recency"


def test_unknown_criteria_are_refused():
    with pytest.raises(ValueError, match="unknown criteria"):
        validate({"email": {"order": ("loudness",)}})
