"""Survivorship rules: certification, recency, frequency, placeholders, deterministic ties."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from matching.survivorship import golden, survive
from schemas.contract import CITIZEN
from tests.matching.conftest import make_records

NOW = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
OLD = datetime(2024, 1, 1, tzinfo=UTC)
NEW = datetime(2026, 6, 1, tzinfo=UTC)


def _links(keys: list[str], citizen: str = "C1") -> pa.Table:
    return pa.table({"record_key": keys, "citizen_id": [citizen] * len(keys)})


def _golden(*rows) -> dict:
    records = make_records(*rows)
    out = golden(records, _links(records["record_key"].to_pylist()), now=NOW)
    assert out.num_rows == 1
    return out.to_pylist()[0]


def test_output_has_exactly_the_citizen_contract_columns():
    records = make_records({"given_names": "Anne"})
    out = golden(records, _links(["finance:0"]), now=NOW)
    assert out.schema.names == CITIZEN.column_names


def test_higher_certification_beats_a_newer_declarative_value():
    g = _golden(
        {"source_system": "family", "usage_name": "Durand", "certification_level": 2, "updated_at": OLD},
        {"source_system": "finance", "usage_name": "Durant", "certification_level": 0, "updated_at": NEW},
    )
    assert g["usage_name"] == "Durand"


def test_at_equal_certification_the_most_recent_wins():
    g = _golden(
        {"email": "old@free.fr", "updated_at": OLD},
        {"email": "new@free.fr", "updated_at": NEW},
    )
    assert g["email"] == "new@free.fr"


def test_then_the_most_frequent_value_wins():
    g = _golden(
        {"phone": "06 11 11 11 11"}, {"phone": "0622222222"}, {"phone": "+33 6 22 22 22 22"},
    )
    assert g["phone"] == "+33622222222"


def test_a_placeholder_never_wins_even_certified_and_recent():
    g = _golden(
        {"birth_date": date(1900, 1, 1), "given_names": "INCONNU", "address_line": "CCAS de Lyon",
         "postcode": "69001", "certification_level": 2, "updated_at": NEW},
        {"birth_date": date(1980, 3, 4), "given_names": "Anne", "address_line": "3 rue des Lilas",
         "postcode": "69003", "certification_level": 0, "updated_at": OLD},
    )
    assert (g["birth_date"], g["given_names"], g["address_line"], g["postcode"]) == (
        date(1980, 3, 4), "Anne", "3 rue des Lilas", "69003",
    )


def test_empty_values_never_win():
    g = _golden({"email": "   ", "updated_at": NEW}, {"email": "anne@free.fr", "updated_at": OLD})
    assert g["email"] == "anne@free.fr"


def test_ties_resolve_the_same_on_every_run_and_in_any_row_order():
    rows = [{"given_names": "Anne"}, {"given_names": "Annie"}]
    records = make_records(*rows)
    first = golden(records, _links(records["record_key"].to_pylist()), now=NOW)
    again = golden(records.take([1, 0]), _links(["finance:1", "finance:0"]), now=NOW)
    assert first.equals(again)
    assert first["given_names"].to_pylist() == ["Anne"]  # the smallest standardised value


def test_address_survives_as_one_block_from_one_record():
    g = _golden(
        {"address_line": "3 rue des Lilas", "postcode": "69003", "city": "Lyon", "updated_at": NEW},
        {"address_line": None, "postcode": "75001", "city": "Paris", "certification_level": 2},
    )
    assert (g["address_line"], g["postcode"], g["city"]) == ("3 rue des Lilas", "69003", "Lyon")


def test_record_count_and_sorted_source_systems():
    g = _golden({"source_system": "finance"}, {"source_system": "associations"},
                {"source_system": "finance"})
    assert (g["record_count"], g["source_systems"]) == (3, "associations,finance")


def test_records_without_a_link_are_ignored():
    records = make_records({"given_names": "Anne"}, {"given_names": "Deleted"})
    out = golden(records, _links(["finance:0"]), now=NOW)
    assert out["record_count"].to_pylist() == [1]
    assert out["given_names"].to_pylist() == ["Anne"]


def test_the_resolutions_standardised_records_give_the_same_golden_records():
    from matching.resolve import prepare

    records = make_records(
        {"given_names": "Anne", "usage_name": "Roux", "email": "anne@free.fr", "updated_at": OLD},
        {"given_names": "ANNE", "usage_name": "ROUX", "phone": "06 11 22 33 44", "updated_at": NEW},
        {"given_names": "Anne", "birth_date": date(1980, 3, 4), "address_line": "3 rue des Lilas",
         "postcode": "69003"},
    )
    links = _links(records["record_key"].to_pylist())
    fresh = survive(records, links, now=NOW)
    reused = survive(records, links, now=NOW, standardised=prepare(records))
    assert reused.citizens.equals(fresh.citizens)
    assert reused.attributes.equals(fresh.attributes)
    assert reused.citizens["email"].to_pylist() == ["anne@free.fr"]
