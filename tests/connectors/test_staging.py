"""Every staging model runs on both engines over raw data loaded by its connector and yields
exactly its canonical table's columns, in contract order."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connectors import associations, demarches, family, finance, salesforce, servicenow
from connectors.registry import SYSTEMS, staging_models
from connectors.runner import run_source
from sandbox import build_sandbox
from sandbox.demarches import DEFAULT_TOKEN as DEMARCHES_TOKEN
from schemas.contract import CANONICAL_TABLES
from tests.connectors.conftest import build_finance, family_data
from tests.connectors.test_associations import drop

CONTRACT = {t.name: t for t in CANONICAL_TABLES}


@pytest.fixture
def loaded(warehouse, destination, portal, tmp_path: Path):
    """Every system with static staging SQL loaded into raw_<system> of one warehouse."""
    url = f"sqlite:///{tmp_path / 'finance.sqlite'}"
    build_finance(url, n=6).dispose()
    run_source(finance, destination, "r", pipelines_dir=tmp_path / "p", source_url=url)
    portal.collections = family_data(2)
    run_source(family, destination, "r", pipelines_dir=tmp_path / "p", base_url=portal.base_url, token=portal.token)
    run_source(associations, destination, "r", pipelines_dir=tmp_path / "p", drop_dir=drop(tmp_path))
    sb = build_sandbox(tmp_path / "sb", people=150, seed=2)
    with sb.salesforce() as org:
        run_source(salesforce, destination, "r", pipelines_dir=tmp_path / "p", login_url=org.url,
                   client_id=org.client_id, client_secret=org.client_secret)
    with sb.servicenow() as desk:
        desk.delete("sys_user", desk.records("sys_user")[0]["sys_id"])
        run_source(servicenow, destination, "r", pipelines_dir=tmp_path / "p", instance_url=desk.url,
                   username=desk.username, password=desk.password)
    with sb.demarches() as ds:
        run_source(demarches, destination, "r", pipelines_dir=tmp_path / "p", base_url=ds.url, token=DEMARCHES_TOKEN,
                   demarches=ds.demarche_numbers)
    return warehouse


def test_models_are_named_and_filed_per_system():
    models = staging_models()
    assert set(models) <= set(CONTRACT)
    names = [n for entries in models.values() for n, _ in entries]
    assert len(names) == len(set(names))
    for system, module in SYSTEMS.items():
        for paths in module.STAGING.values():
            assert all(p.is_file() and p.stem.startswith(f"stg_{system}__") and p.stem.endswith("s") for p in paths)


def test_every_model_yields_the_contract_columns(loaded):
    seen = 0
    for table, entries in staging_models().items():
        for name, sql in entries:
            result = loaded.arrow(sql)
            assert result.column_names == CONTRACT[table].column_names, name
            assert result.num_rows > 0, name
            for col in CONTRACT[table].columns:
                if not col.nullable:
                    assert result.column(col.name).null_count == 0, f"{name}.{col.name}"
            seen += 1
    assert seen == sum(len(p) for m in SYSTEMS.values() for p in m.STAGING.values())


def test_mapped_values(loaded):
    def one(sql: str):
        return loaded.rows(sql)

    persons = {name: sql for name, sql in staging_models()["person_record"]}
    resp = loaded.dicts(f"SELECT * FROM ({persons['stg_family__responsables']}) AS s ORDER BY record_key")
    mother = next(r for r in resp if r["record_key"] == "family:responsable/10")
    assert (mother["certification_level"], mother["city"], mother["sex"]) == (2, "Lyon", "F")
    assert mother["birth_date"] == dt.date(1985, 3, 14)
    father = next(r for r in resp if r["record_key"] == "family:responsable/11")
    assert father["certification_level"] == 0 and father["birth_name"] is None

    tiers = loaded.dicts(f"SELECT * FROM ({persons['stg_finance__tiers']}) AS s")
    assert {r["role"] for r in tiers} == {"debiteur"} and all(r["deleted_at"] is None for r in tiers)

    inter = {name: sql for name, sql in staging_models()["interaction"]}
    pay = loaded.dicts(f"SELECT * FROM ({inter['stg_finance__paiements']}) AS s WHERE source_id = 'paiement/1002'")
    assert pay[0]["record_key"] == "finance:tiers/2" and pay[0]["kind"] == "paiement"
    sub = loaded.dicts(f"SELECT * FROM ({inter['stg_associations__demandes_subventions']}) AS s "
                       "WHERE source_id = 'demande_subvention/S2026-001'")
    assert (sub[0]["record_key"], sub[0]["service"], str(sub[0]["amount"]), sub[0]["due_at"]) == (
        "associations:dirigeant/1", "vie associative", "1234.50", None)
    roles = {name: sql for name, sql in staging_models()["organisation_role"]}
    assert ("president",) not in one(f"SELECT role FROM ({roles['stg_associations__fonctions']}) AS s")
    assert ("président",) in one(f"SELECT role FROM ({roles['stg_associations__fonctions']}) AS s")
