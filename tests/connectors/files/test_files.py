"""The mapping-file connector on both warehouse engines: incremental drops, merges, generated
staging SQL, SCDL subventions validated against its Table Schema, identifiers, mapping errors."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from connectors import files
from connectors.base import SourceError
from connectors.files.mapping import MappingError, parse_mapping
from connectors.identifiers import rna_valid, siren_valid, siret_valid
from connectors.runner import run_source
from schemas.contract import CANONICAL_TABLES
from warehouse.engine import Warehouse

STANDARD = Path("/work/shared/standards/scdl-subventions-2.1.1")
SCDL_EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "standards" / "scdl-subventions-2.1.1"
USAGERS = """
system = "portail"

[entities.usagers]
files = "usagers_*.csv"
encoding = "cp1252"
key = ["id"]

[entities.usagers.columns]
id = "text"
nom = "text"
prenom = "text"
"date de naissance" = "date"
solde = "decimal"

[[entities.usagers.feeds]]
table = "person_record"
role = { const = "usager" }
usage_name = { column = "nom", transforms = ["trim", "upper"] }
given_names = { column = "prenom", transforms = ["trim"] }
birth_date = "date de naissance"

[entities.demandes]
files = "demandes_*.csv"
key = ["numero"]

[entities.demandes.columns]
numero = "text"
usager = "text"
objet = "text"
depot = "date"
montant = "decimal"

[[entities.demandes.feeds]]
table = "interaction"
record_key = { ref = "usagers", column = "usager" }
kind = { const = "demande" }
title = "objet"
opened_at = "depot"
amount = "montant"
details = { json = ["objet", "usager"] }
"""
U_HEADER = "id;nom;prenom;date de naissance;solde"
D_HEADER = "numero;usager;objet;depot;montant"


def write(path: Path, header: str, lines: list[str], encoding: str = "cp1252") -> None:
    path.write_bytes(("\r\n".join([header, *lines]) + "\r\n").encode(encoding))


@pytest.fixture
def mapping(tmp_path: Path) -> files.Mapping:
    p = tmp_path / "portail.toml"
    p.write_text(USAGERS, encoding="utf-8")
    return files.load_mapping(p)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    d = tmp_path / "drop"
    d.mkdir()
    write(d / "usagers_2026-01.csv", U_HEADER,
          ["1; Lefèvre ;Jérôme;02/03/1961;1 234,50", "2;Durand;Anaïs;31/02/1985;0"])
    write(d / "demandes_2026-01.csv", D_HEADER, ['D1;1;Carte "Pass";15/01/2026;12,00'], encoding="utf-8")
    return d


def test_load_merge_and_incremental(warehouse: Warehouse, destination, mapping, drop: Path, tmp_path: Path):
    first = run_source(files, destination, "r1", pipelines_dir=tmp_path / "p", mapping=mapping, drop_dir=drop)
    u = first.count("usagers")
    assert (u.rows_read, u.rows_loaded, u.rows_quarantined) == (2, 1, 1)
    assert [(q["locator"], q["field"], q["reason_code"]) for q in first.quarantine.to_pylist()] == [
        ("usagers_2026-01.csv:3", "date de naissance", "bad_date")]
    assert warehouse.rows("SELECT id, nom, date_de_naissance, solde, _source_file, _source_line "
                          "FROM raw_portail.usagers") == [
        ("1", " Lefèvre ", dt.date(1961, 3, 2), Decimal("1234.50"),
         "usagers_2026-01.csv", 2)]
    # an unchanged drop reads nothing
    again = run_source(files, destination, "r2", pipelines_dir=tmp_path / "p", mapping=mapping, drop_dir=drop)
    assert [(c.entity, c.rows_read) for c in again.counts] == [("usagers", 0), ("demandes", 0)]
    # a new export (later name) updates a key in place; within the run the later file wins
    write(drop / "usagers_2026-02.csv", U_HEADER, ["1;LEFÈVRE-MARTIN;Jérôme;02/03/1961;0", "3;Roux;Inès;11/11/1980;"])
    write(drop / "usagers_2026-03.csv", U_HEADER, ["3;Roux;Inès Marie;11/11/1980;"])
    third = run_source(files, destination, "r3", pipelines_dir=tmp_path / "p", mapping=mapping, drop_dir=drop)
    u = third.count("usagers")
    assert (u.rows_read, u.rows_loaded, u.rows_quarantined) == (3, 2, 1)
    assert [(q["locator"], q["reason_code"]) for q in third.quarantine.to_pylist()] == [
        ("usagers_2026-02.csv:3", "duplicate_key")]
    assert warehouse.rows("SELECT id, nom, prenom FROM raw_portail.usagers ORDER BY id") == [
        ("1", "LEFÈVRE-MARTIN", "Jérôme"), ("3", "Roux", "Inès Marie")]


def test_generated_staging_yields_the_contract(warehouse: Warehouse, destination, mapping, drop: Path,
                                               tmp_path: Path):
    run_source(files, destination, "r1", pipelines_dir=tmp_path / "p", mapping=mapping, drop_dir=drop)
    models = files.staging_models(mapping)
    assert {t: [n for n, _ in m] for t, m in models.items()} == {
        "person_record": ["stg_portail__usagers"], "interaction": ["stg_portail__demandes"]}
    contract = {t.name: t for t in CANONICAL_TABLES}
    for table, entries in models.items():
        for _, sql in entries:
            got = warehouse.arrow(sql)
            assert got.column_names == contract[table].column_names
    person = warehouse.dicts(models["person_record"][0][1])[0]
    assert (person["record_key"], person["usage_name"], person["given_names"], person["role"],
            person["birth_date_precision"]) == ("portail:usagers/1", "LEFÈVRE", "Jérôme", "usager", "day")
    demande = warehouse.dicts(models["interaction"][0][1])[0]
    assert demande["record_key"] == "portail:usagers/1" and demande["currency"] == "EUR"
    assert json.loads(demande["details"]) == {"objet": 'Carte "Pass"', "usager": "1"}


def test_scdl_valid_example_loads_fully(warehouse: Warehouse, destination, tmp_path: Path):
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(STANDARD / "exemple_valide.csv", drop / "subventions_2017.csv")
    m = files.load_mapping(files.EXAMPLES / "scdl_subventions.toml")
    result = run_source(files, destination, "r", pipelines_dir=tmp_path / "p", mapping=m, drop_dir=drop)
    c = result.count("subventions")
    assert (c.rows_read, c.rows_loaded, c.rows_quarantined) == (29, 29, 0)
    orgs = warehouse.arrow(files.staging_models(m)["organisation"][0][1])
    assert orgs.num_rows == len(set(orgs.column("organisation_key").to_pylist())) == 29
    # the SIREN is read off the SIRET (its first 9 digits) when the mapping gives no SIREN of its own
    pairs = set(zip(orgs.column("siret").to_pylist(), orgs.column("siren").to_pylist(), strict=True))
    assert any(siret for siret, _ in pairs)
    assert all(siren == (siret[:9] if siret else None) for siret, siren in pairs), pairs


def test_scdl_invalid_examples_are_rejected(duck: Warehouse, tmp_path: Path):
    m = files.load_mapping(files.EXAMPLES / "scdl_subventions.toml")
    cells, columns = tmp_path / "cells", tmp_path / "columns"
    for d, f in ((cells, "exemple_invalide_erreurs_cellules.csv"), (columns, "exemple_invalide_erreurs_colonnes.csv")):
        d.mkdir()
        shutil.copy(STANDARD / f, d / "subventions_2017.csv")
    result = run_source(files, duck.dlt_destination(), "r", pipelines_dir=tmp_path / "p", mapping=m, drop_dir=cells)
    c = result.count("subventions")
    assert (c.rows_read, c.rows_loaded, c.rows_quarantined) == (29, 0, 29)
    q = {r["locator"]: (r["field"], r["reason_code"]) for r in result.quarantine.to_pylist()}
    assert q["subventions_2017.csv:5"] == ("dateConvention", "bad_date")
    assert q["subventions_2017.csv:7"] == ("idAttribuant", "pattern")
    assert q["subventions_2017.csv:8"] == ("notificationUE", "bad_boolean")
    assert q["subventions_2017.csv:10"] == ("montant", "required")
    with pytest.raises(SourceError) as e:
        run_source(files, duck.dlt_destination(), "r", pipelines_dir=tmp_path / "p2", mapping=m, drop_dir=columns)
    assert (e.value.locator, e.value.field) == ("subventions_2017.csv:1", "nomBeneficiaire")
    assert "NOM_Beneficiaire" in str(e.value)


def test_scdl_schema_copy_is_the_standard():
    assert (SCDL_EXAMPLES / "schema.json").read_bytes() == (STANDARD / "schema.json").read_bytes()


@pytest.mark.parametrize(("value", "siren", "siret"), [
    ("732829320", True, None), ("732829321", False, None),
    ("73282932000074", None, True), ("73282932000075", None, False),
    ("35600000049837", None, True),  # La Poste: digit sum 45, not Luhn
    ("35600000000048", None, False),  # La Poste, digit sum 26
    ("7328293200007", None, False), ("7328293200007A", None, False),
], ids=["siren-ok", "siren-bad-key", "siret-ok", "siret-bad-key", "la-poste-ok", "la-poste-bad", "short", "letter"])
def test_siren_siret(value: str, siren: bool | None, siret: bool | None):
    if siren is not None:
        assert siren_valid(pa.array([value])).to_pylist() == [siren]
    if siret is not None:
        assert siret_valid(pa.array([value])).to_pylist() == [siret]


def test_rna_and_nulls():
    values = pa.array(["W751000001", "W2A1000001", "W75100000", "0751234567", None])
    assert rna_valid(values).to_pylist() == [True, True, False, False, None]
    assert rna_valid(values, allow_old=True).to_pylist() == [True, True, False, True, None]
    assert siret_valid(pa.array([None, ""], pa.string())).to_pylist() == [None, False]


@pytest.mark.parametrize(("patch", "message"), [
    ({"system": "Portail"}, "`system`"),
    ({"entities": {"u": {"files": "*.csv", "columns": {"id": "text"}}}}, "`key`"),
    ({"entities": {"u": {"files": "*.csv", "key": "id", "columns": {"id": "texte"}}}}, "entities.u.columns.id.type"),
    ({"entities": {"u": {"files": "*.csv", "key": "id", "columns": {"id": "text", "nir": "text"}}}},
     "national identification number"),
    ({"entities": {"u": {"files": "*.csv", "key": "id", "columns": {"id": "text"},
                         "feeds": [{"table": "interaction"}]}}}, "interaction.record_key is required"),
    ({"entities": {"u": {"files": "*.csv", "key": "id", "columns": {"id": "text"},
                         "feeds": [{"table": "person_record", "role": {"const": "usager"}, "email": "mail"}]}}},
     "'mail' is not a declared column"),
], ids=["system-name", "no-key", "unknown-type", "national-id-column", "required-field", "unknown-column"])
def test_mapping_errors_name_the_key(tmp_path: Path, patch: dict, message: str):
    data = {"system": "portail", **patch}
    with pytest.raises(MappingError) as e:
        parse_mapping(data, tmp_path / "m.toml")
    assert str(e.value).startswith(str(tmp_path / "m.toml")) and message in str(e.value)


def test_duplicate_key_keeps_the_same_row_every_run(tmp_path: Path):
    kept = []
    for run in range(2):
        d = tmp_path / f"drop{run}"
        d.mkdir()
        write(d / "usagers_1.csv", U_HEADER, ["1;A;x;01/01/1990;0", "1;B;x;01/01/1990;0", "1;C;x;01/01/1990;0"])
        p = tmp_path / "m.toml"
        p.write_text(USAGERS, encoding="utf-8")
        with Warehouse(f"duckdb:///{tmp_path / f'w{run}.duckdb'}") as wh:
            run_source(files, wh.dlt_destination(), "r", pipelines_dir=tmp_path / f"p{run}", mapping=p, drop_dir=d)
            kept.append(wh.rows("SELECT nom FROM raw_portail.usagers"))
    assert kept == [[("A",)], [("A",)]]


def test_the_documented_mapping_is_valid():
    import re
    import tomllib

    doc = (Path(__file__).resolve().parents[3] / "docs" / "connectors.md").read_text(encoding="utf-8")
    # The full mapping the doc walks through is the one for system "aides"; other toml blocks are fragments.
    mapping = next(b for b in re.findall(r"```toml\n(.*?)```", doc, re.S)
                   if re.search(r'^system = "aides"', b, re.M))
    m = parse_mapping(tomllib.loads(mapping), Path("sources/aides.toml"))
    assert {t: [n for n, _ in v] for t, v in files.staging_models(m).items()} == {
        "person_record": ["stg_aides__usagers"], "interaction": ["stg_aides__demandes"]}
