"""The completeness guard (both engines): personal data the register of processing does not map
stops the pipeline, naming the table and the column; what the register maps passes."""

from __future__ import annotations

import tomllib

import pytest

from hub.pipeline import build_canonical
from hub.settings import settings_from_dict
from schemas.contract import ALL_TABLES
from schemas.register import DEFAULT_PATH, load_register, parse_register
from warehouse.engine import Warehouse
from warehouse.register_guard import UnmappedPersonalData, check, contract_gaps, warehouse_gaps

TIERS = ("id", "civilite", "nom", "nom_naissance", "prenom", "date_naissance", "adresse", "code_postal", "ville",
         "telephone", "email", "groupe_id", "updated_at", "supprime")


def _table(wh: Warehouse, name: str, columns: tuple[str, ...]) -> None:
    wh.create_schema(name.split(".")[0])
    wh.execute(f"CREATE TABLE {name} ({', '.join(f'{c} TEXT' for c in columns)})")


@pytest.fixture
def mapped(warehouse_url: str):
    """A warehouse as a run leaves it: contract tables, a silo's raw table and dlt's copy of it,
    dlt's bookkeeping, a staging view."""
    with Warehouse(warehouse_url) as wh:
        wh.ensure_tables(ALL_TABLES)
        _table(wh, "raw_finance.tiers", (*TIERS, "_dlt_load_id", "_dlt_id"))
        _table(wh, "raw_finance_staging.tiers", TIERS)
        _table(wh, "raw_finance._dlt_loads", ("load_id", "schema_name"))
        _table(wh, "raw_associations.associations", ("rna", "nom", "adresse"))
        wh.create_schema("staging")
        wh.execute("CREATE VIEW staging.stg_finance__tiers AS SELECT nom AS usage_name, prenom AS given_names "
                   "FROM raw_finance.tiers")
        yield wh


def test_a_warehouse_the_register_maps_passes(mapped: Warehouse):
    assert warehouse_gaps(mapped, load_register()) == []
    check(mapped)


def test_an_unmapped_table_with_personal_data_is_named_with_its_columns(mapped: Warehouse):
    _table(mapped, "raw_finance.contacts_urgence", ("id", "nom", "telephone"))
    with pytest.raises(UnmappedPersonalData) as e:
        check(mapped)
    message = str(e.value)
    assert "raw_finance.contacts_urgence (id, nom, telephone): table not in the register" in message
    assert [g.table for g in e.value.gaps] == ["raw_finance.contacts_urgence"]


def test_a_new_column_of_a_mapped_source_table_is_named(mapped: Warehouse):
    mapped.execute("ALTER TABLE raw_finance.tiers ADD COLUMN lieu_naissance TEXT")
    mapped.execute("ALTER TABLE raw_finance_staging.tiers ADD COLUMN lieu_naissance TEXT")
    with pytest.raises(UnmappedPersonalData) as e:
        check(mapped)
    assert {(g.table, g.columns) for g in e.value.gaps} == {
        ("raw_finance.tiers", ("lieu_naissance",)), ("raw_finance_staging.tiers", ("lieu_naissance",))}
    assert "not classified by the register" in str(e.value)


def test_a_column_added_to_a_contract_table_is_named(mapped: Warehouse):
    mapped.execute("ALTER TABLE golden.citizen ADD COLUMN nickname TEXT")
    with pytest.raises(UnmappedPersonalData, match=r"golden\.citizen \(nickname\): column not in the contract"):
        check(mapped)


def test_a_marts_table_is_checked_like_any_other(mapped: Warehouse):
    _table(mapped, "marts.frequentation", ("service", "mois", "usagers"))
    with pytest.raises(UnmappedPersonalData, match=r"marts\.frequentation \(service, mois, usagers\)"):
        check(mapped)


def test_a_contract_personal_column_no_processing_maps_is_named():
    data = tomllib.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    for p in data["processing"]:
        for d in p["data"]:
            cols = d.get("columns", {})
            if "golden.citizen" in cols:
                cols["golden.citizen"] = [c for c in cols["golden.citizen"] if c != "email"] or ["citizen_id"]
    assert [str(g) for g in contract_gaps(parse_register(data))] == [
        "golden.citizen (email): personal in the contract, mapped by no processing"]


def test_the_pipeline_stops_on_an_unmapped_table(mapped: Warehouse, monkeypatch):
    monkeypatch.delenv("HUB_WAREHOUSE_URL", raising=False)
    _table(mapped, "raw_finance.contacts_urgence", ("id", "nom", "telephone"))
    settings = settings_from_dict({"warehouse": {"url": mapped.url}})
    with pytest.raises(UnmappedPersonalData, match=r"raw_finance\.contacts_urgence \(id, nom, telephone\)"):
        build_canonical(settings, "run-guard")
    mapped.execute("DROP TABLE raw_finance.contacts_urgence")
    assert build_canonical(settings, "run-guard-2")["staged"] == 0
