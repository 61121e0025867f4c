"""The Great Expectations suites: each defect is flagged on its row and field, good rows pass."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from schemas.contract import (
    CANONICAL_TABLES,
    HOUSEHOLD_MEMBERSHIP,
    INTERACTION,
    ORGANISATION,
    ORGANISATION_ROLE,
    PERSON_RECORD,
    Table,
    arrow_schema,
)
from schemas.quality import suites
from warehouse.quality import QualityGate

GOOD: dict[str, dict[str, Any]] = {
    "person_record": {
        "record_key": "finance:T1", "source_system": "finance", "source_id": "T1", "role": "debiteur",
        "given_names": "Marie", "usage_name": "Dupont", "sex": "F", "birth_date": date(1982, 4, 12),
        "birth_date_precision": "day", "birth_place_code": "2A004", "birth_country_code": "FR",
        "email": "marie@example.fr", "phone": "+33612345678", "postcode": "69003", "city_code": "69383",
        "country": "FR", "certification_level": 2,
    },
    "household_membership": {
        "source_system": "family", "household_id": "family:FAM1", "record_key": "family:P1", "role": "responsable",
        "valid_from": date(2020, 1, 1), "valid_to": date(2024, 1, 1),
    },
    "interaction": {
        "interaction_key": "finance:F1", "source_system": "finance", "source_id": "F1",
        "record_key": "finance:T1", "kind": "facture", "opened_at": datetime(2024, 3, 1, tzinfo=UTC),
        "closed_at": datetime(2024, 3, 2, tzinfo=UTC), "amount": Decimal("45.50"), "currency": "EUR",
        "details": '{"ligne": 1}',
    },
    "organisation": {
        "organisation_key": "assoc:A1", "source_system": "assoc", "source_id": "A1", "name": "Les Amis",
        "rna": "W691234567", "siren": "123456789", "siret": "12345678900012", "postcode": "69003",
    },
    "organisation_role": {
        "organisation_key": "assoc:A1", "record_key": "assoc:R1", "role": "tresorier",
        "valid_from": date(2020, 1, 1),
    },
}

# (table, changes to the good row, field flagged, expectation expected)
DEFECTS = [
    ("person_record", {"role": None}, "role", "expect_column_values_to_not_be_null"),
    ("person_record", {"role": "chef"}, "role", "expect_column_values_to_be_in_set"),
    ("person_record", {"sex": "X"}, "sex", "expect_column_values_to_be_in_set"),
    ("person_record", {"birth_date": date(1899, 12, 31)}, "birth_date", "expect_column_values_to_be_between"),
    ("person_record", {"birth_date": date(2026, 6, 2)}, "birth_date", "expect_column_values_to_be_between"),
    ("person_record", {"birth_date_precision": "week"}, "birth_date_precision",
     "expect_column_values_to_be_in_set"),
    ("person_record", {"certification_level": 5}, "certification_level", "expect_column_values_to_be_in_set"),
    ("person_record", {"email": "marie.example.fr"}, "email", "expect_column_values_to_match_regex"),
    ("person_record", {"postcode": "6903", "country": "FR"}, "postcode", "expect_column_values_to_match_regex"),
    ("person_record", {"postcode": "69 003 !"}, "postcode", "expect_column_values_to_match_regex"),
    ("person_record", {"postcode": "69003", "country": "BE"}, "postcode", "expect_column_values_to_match_regex"),
    ("person_record", {"country": "FRA"}, "country", "expect_column_values_to_match_regex"),
    ("person_record", {"city_code": "693"}, "city_code", "expect_column_values_to_match_regex"),
    ("person_record", {"record_key": "T1"}, "record_key", "expect_column_values_to_match_regex"),
    ("household_membership", {"role": "pere"}, "role", "expect_column_values_to_be_in_set"),
    ("household_membership", {"valid_to": date(2019, 1, 1)}, "valid_to",
     "expect_column_pair_values_a_to_be_greater_than_b"),
    ("interaction", {"kind": "achat"}, "kind", "expect_column_values_to_be_in_set"),
    ("interaction", {"amount": Decimal("-1.00")}, "amount", "expect_column_values_to_be_between"),
    ("interaction", {"currency": "euro"}, "currency", "expect_column_values_to_match_regex"),
    ("interaction", {"closed_at": datetime(2024, 2, 1, tzinfo=UTC)}, "closed_at",
     "expect_column_pair_values_a_to_be_greater_than_b"),
    ("interaction", {"details": "{not json"}, "details", "expect_column_values_to_be_json_parseable"),
    ("interaction", {"opened_at": None}, "opened_at", "expect_column_values_to_not_be_null"),
    ("organisation", {"rna": "W12"}, "rna", "expect_column_values_to_match_regex"),
    ("organisation", {"siren": "12345"}, "siren", "expect_column_values_to_match_regex"),
    ("organisation_role", {"valid_to": date(2019, 1, 1)}, "valid_to",
     "expect_column_pair_values_a_to_be_greater_than_b"),
]

_TABLES = {t.name: t for t in CANONICAL_TABLES}


def _rows(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{c: r.get(c) for c in table.column_names} for r in rows],
                                schema=pa.schema([f.with_nullable(True) for f in arrow_schema(table)]))


def _with_key(table: Table, row: dict[str, Any], n: int) -> dict[str, Any]:
    """A copy of the row with its key made distinct (so only the defect under test fires)."""
    out = dict(row)
    for k in table.key:
        out[k] = f"{row[k]}-{n}" if k != "role" else row[k]
    return out


@pytest.mark.parametrize("table_name", sorted(GOOD))
def test_good_rows_pass(gate: QualityGate, table_name: str) -> None:
    table = _TABLES[table_name]
    data = _rows(table, [_with_key(table, GOOD[table_name], i) for i in range(3)])
    assert gate.validate(table, data) == []


@pytest.mark.parametrize(
    ("table_name", "changes", "field", "code"),
    DEFECTS,
    ids=[f"{t}-{'+'.join(f'{k}={v}' for k, v in c.items())}" for t, c, _, _ in DEFECTS],
)
def test_defect_flags_its_row_and_field(gate: QualityGate, table_name: str, changes: dict, field: str,
                                        code: str) -> None:
    table = _TABLES[table_name]
    good = [_with_key(table, GOOD[table_name], i) for i in range(3)]
    bad = _with_key(table, GOOD[table_name], 9) | changes
    failures = gate.validate(table, _rows(table, [good[0], bad, good[1], good[2]]))
    assert {(f.row, f.field, f.reason_code) for f in failures} == {(1, field, code)}
    assert all(f.reason and str(v) not in f.reason for f in failures for v in changes.values() if v)


@pytest.mark.parametrize("table_name", ["person_record", "household_membership", "organisation_role"])
def test_duplicate_key_flags_both_rows(gate: QualityGate, table_name: str) -> None:
    table = _TABLES[table_name]
    row = GOOD[table_name]
    failures = gate.validate(table, _rows(table, [row, _with_key(table, row, 1), row]))
    assert {(f.row, f.field) for f in failures} == {(0, ",".join(table.key)), (2, ",".join(table.key))}


def test_a_postcode_of_unknown_country_is_not_held_to_the_french_shape(gate: QualityGate) -> None:
    for postcode in ("2031", "90210-1234", "SW1A 1AA", "1012 AB"):
        row = GOOD["person_record"] | {"postcode": postcode, "country": None}
        assert gate.validate(PERSON_RECORD, _rows(PERSON_RECORD, [row])) == [], postcode


def test_belgian_postcode_passes_for_a_belgian_address(gate: QualityGate) -> None:
    row = GOOD["person_record"] | {"postcode": "1000", "country": "BE"}
    assert gate.validate(PERSON_RECORD, _rows(PERSON_RECORD, [row])) == []


def test_suites_follow_the_contract() -> None:
    built = suites(date(2026, 6, 1))
    assert set(built) == {t.name for t in CANONICAL_TABLES}
    for table in CANONICAL_TABLES:
        not_null = {e.column for e in built[table.name].expectations
                    if e.expectation_type == "expect_column_values_to_not_be_null"}
        assert not_null == {c.name for c in table.columns if not c.nullable}
        assert all(e.meta.get("reason") for e in built[table.name].expectations)


@pytest.mark.parametrize("table", [HOUSEHOLD_MEMBERSHIP, INTERACTION, ORGANISATION, ORGANISATION_ROLE],
                         ids=lambda t: t.name)
def test_empty_table_validates_to_nothing(gate: QualityGate, table: Table) -> None:
    assert gate.validate(table, arrow_schema(table).empty_table()) == []


def test_thirty_thousand_person_records_validate_in_seconds(gate: QualityGate) -> None:
    n = 30_000
    base = GOOD["person_record"]
    rows = {c: [base.get(c)] * n for c in PERSON_RECORD.column_names}
    rows["record_key"] = [f"finance:T{i}" for i in range(n)]
    rows["email"] = ["marie@example.fr"] * (n - 1) + ["nope"]
    data = pa.table(rows, schema=pa.schema([f.with_nullable(True) for f in arrow_schema(PERSON_RECORD)]))
    started = time.perf_counter()
    failures = gate.validate(PERSON_RECORD, data)
    elapsed = time.perf_counter() - started
    assert [(f.row, f.field) for f in failures] == [(n - 1, "email")]
    assert elapsed < 5, f"{elapsed:.1f}s for {n} rows"


def test_validated_dataframe_is_not_kept(gate: QualityGate) -> None:
    """GE caches every batch it loads in its execution engine, which its module-level project
    manager keeps alive: the gate drops each table's dataframe once validated (at 1M people the
    cached frames held 2.1 GB through the whole resolution)."""
    import gc
    import weakref

    import great_expectations.core.batch_definition as gx_batch

    frames: list[weakref.ref] = []
    real = gx_batch.BatchDefinition.get_batch

    def watched(self: Any, *args: Any, **kwargs: Any) -> Any:
        frames.append(weakref.ref(kwargs["batch_parameters"]["dataframe"]))
        return real(self, *args, **kwargs)

    gx_batch.BatchDefinition.get_batch = watched
    try:
        for name in ("person_record", "interaction"):
            table = _TABLES[name]
            bad = _with_key(table, GOOD[name], 2) | ({"sex": "X"} if name == "person_record" else {"kind": "achat"})
            failures = gate.validate(table, _rows(table, [_with_key(table, GOOD[name], 1), bad]))
            assert [f.row for f in failures] == [1]  # still validated
    finally:
        gx_batch.BatchDefinition.get_batch = real
    gc.collect()
    assert len(frames) == 4  # each table's rows and its key's uniqueness
    assert [f() is None for f in frames] == [True] * 4


def test_chunks_flag_rows_where_they_are_and_duplicates_across_chunks(gate: QualityGate,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows validated a chunk at a time: a defect is reported at its position in the whole table,
    and a key repeated in two chunks is still a duplicate (uniqueness runs on every row's key)."""
    import warehouse.quality as quality

    monkeypatch.setattr(quality, "CHUNK_ROWS", 2)
    row = GOOD["person_record"]
    rows = [_with_key(PERSON_RECORD, row, i) for i in range(7)]
    rows[3] = rows[3] | {"sex": "X"}          # second chunk
    rows[6] = rows[6] | {"email": "nope"}     # last chunk, alone
    rows[5] = rows[0] | {}                    # same key as row 0, two chunks apart
    failures = gate.validate(PERSON_RECORD, _rows(PERSON_RECORD, rows))
    assert {(f.row, f.field) for f in failures} == {(3, "sex"), (6, "email"), (0, "record_key"),
                                                    (5, "record_key")}
    assert gate.expectations(PERSON_RECORD) == len(suites(date.today())["person_record"].expectations)
