"""Mapping files translate a silo's own values (a value map per feed field, with what to do with a
value it does not list), roles are optional, the household feed accepts the person feed's role
words, and a bad value in one column can null that field instead of quarantining the person —
on both warehouse engines, through the staging build and its quality gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import files
from connectors.files.mapping import MappingError, parse_mapping
from connectors.runner import run_source
from warehouse.engine import Warehouse
from warehouse.staging import build_canonical

ROLES = '{ responsable = "parent", OUDER = "parent", KIND = "enfant", eleve = "enfant" }'
SCHOOL = f"""
system = "ecole"

[defaults]
delimiter = ";"
date_formats = ["dd/mm/yyyy"]

[entities.eleves]
files = "eleves*.csv"
key = ["id"]

[entities.eleves.columns]
id = "text"
famille = "text"
qualite = "text"
nom = "text"
prenom = "text"
sexe = "text"
naissance = {{ type = "date", on_error = "null" }}
courriel = {{ type = "text", pattern = "[^@ ]+@[^@ ]+", on_error = "null" }}

[[entities.eleves.feeds]]
table = "person_record"
role = {{ column = "qualite", map = {ROLES}, unmapped = "quarantine" }}
usage_name = "nom"
given_names = "prenom"
sex = {{ column = "sexe", map = {{ Female = "F", Male = "M", V = "F" }}, unmapped = "null" }}
birth_date = "naissance"
email = "courriel"

[[entities.eleves.feeds]]
table = "household_membership"
household_id = "famille"
record_key = {{ ref = "eleves", column = "id" }}
role = {{ column = "qualite", map = {ROLES} }}
"""

HEADER = "id;famille;qualite;nom;prenom;sexe;naissance;courriel"
LINES = [
    "1;F1;responsable;Dupont;Marie;Female;02/03/1980;marie@example.org",
    "2;F1;Kind;Dupont;Léo;male;12/05/2015;",  # role and sex in another case: still mapped
    "3;F2;OUDER;Peeters;Jan;M;31/02/1975;jan@example.org",  # an impossible date: the field nulled
    "4;F2;KIND;Peeters;Lotte;X;01/01/2016;pas-un-mail",  # an unlisted sex: null; a bad e-mail: nulled
    "5;F2;voisin;Janssens;An;V;01/01/1990;",  # a role the map does not list: quarantined
    "6;F3;eleve;Martin;Noé;;99/99/2016;x",  # two bad fields, both nulled, the row loads
]


def _drop(tmp_path: Path, lines: list[str]) -> Path:
    d = tmp_path / "drop"
    d.mkdir(exist_ok=True)
    (d / "eleves.csv").write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return d


@pytest.fixture
def warehouse(warehouse_url: str):
    wh = Warehouse(warehouse_url)
    try:
        yield wh
    finally:
        wh.close()


def test_value_maps_roles_and_nulled_fields(tmp_path: Path, warehouse: Warehouse):
    mp = tmp_path / "ecole.toml"
    mp.write_text(SCHOOL, encoding="utf-8")
    mapping = files.load_mapping(mp)
    result = run_source(files, warehouse.dlt_destination(), "r1", pipelines_dir=tmp_path / "p", mapping=mapping,
                        drop_dir=_drop(tmp_path, LINES))
    c = result.count("eleves")
    # every row loaded or quarantined: only the unlisted role sets its person aside
    assert (c.rows_read, c.rows_loaded, c.rows_quarantined) == (6, 5, 1)
    q = sorted((r["locator"], r["field"], r["reason_code"]) for r in result.quarantine.to_pylist())
    assert q == [
        ("eleves.csv:4", "naissance", "nulled_bad_date"),
        ("eleves.csv:5", "courriel", "nulled_pattern"),
        ("eleves.csv:6", "qualite", "unmapped_value"),
        ("eleves.csv:7", "courriel", "nulled_pattern"),
        ("eleves.csv:7", "naissance", "nulled_bad_date"),
    ]
    # the note keeps the value as the file had it (what the DPO or the engineer checks)
    note = next(r for r in result.quarantine.to_pylist() if r["locator"] == "eleves.csv:4")
    assert '"naissance": "31/02/1975"' in note["payload"]

    counts = build_canonical(warehouse, files.staging_models(mapping), "r1")
    assert {(x.table, x.staged, x.passed) for x in counts} == {("person_record", 5, 5),
                                                              ("household_membership", 5, 5)}
    people = {r[0]: r[1:] for r in warehouse.rows(
        "SELECT source_id, role, sex, birth_date IS NULL, email FROM core.person_record")}
    assert people == {
        "eleves/1": ("parent", "F", False, "marie@example.org"),
        "eleves/2": ("enfant", "M", False, None),
        "eleves/3": ("parent", None, True, "jan@example.org"),
        "eleves/4": ("enfant", None, False, None),
        "eleves/6": ("enfant", None, True, None),
    }
    members = dict(warehouse.rows("SELECT record_key, role FROM core.household_membership"))
    assert members == {"ecole:eleves/1": "responsable", "ecole:eleves/2": "enfant", "ecole:eleves/3": "responsable",
                       "ecole:eleves/4": "enfant", "ecole:eleves/6": "enfant"}


def test_a_person_file_without_roles_loads_with_the_neutral_role(tmp_path: Path, warehouse: Warehouse):
    text = """
system = "liste"
[entities.personnes]
files = "p.csv"
key = ["id"]
[entities.personnes.columns]
id = "text"
nom = "text"
foyer = "text"
[[entities.personnes.feeds]]
table = "person_record"
usage_name = "nom"
[[entities.personnes.feeds]]
table = "household_membership"
household_id = "foyer"
record_key = { ref = "personnes", column = "id" }
"""
    mapping = parse_mapping(__import__("tomllib").loads(text), tmp_path / "liste.toml")
    d = tmp_path / "drop"
    d.mkdir()
    (d / "p.csv").write_text("id;nom;foyer\n1;Dupont;A\n2;Durand;A\n", encoding="utf-8")
    run_source(files, warehouse.dlt_destination(), "r1", pipelines_dir=tmp_path / "p", mapping=mapping, drop_dir=d)
    counts = build_canonical(warehouse, files.staging_models(mapping), "r1")
    assert all(x.quarantined == 0 for x in counts), counts
    assert {r[0] for r in warehouse.rows("SELECT role FROM core.person_record")} == {"personne"}
    assert {r[0] for r in warehouse.rows("SELECT role FROM core.household_membership")} == {"membre"}


@pytest.mark.parametrize("feed, message", [
    ('role = { column = "qualite", map = "parent" }', "map: a table"),
    ('role = { column = "qualite", map = { a = "parent" }, unmapped = "drop" }', "'drop' is not one of"),
    ('role = { column = "qualite", unmapped = "null" }', "only with a `map`"),
    ('role = { concat = ["qualite", "nom"], map = { a = "parent" }, unmapped = "quarantine" }',
     "needs a single `column`"),
    ('role = { column = "qualite", map = { a = "parent", A = "enfant" } }', "mapped differently"),
    ('role = { column = "qualite", mapp = { a = "parent" } }', "unknown setting(s) mapp"),
], ids=["map-not-a-table", "unmapped-choice", "unmapped-without-map", "quarantine-needs-column",
        "case-clash", "typo"])
def test_value_map_errors_name_the_key(tmp_path: Path, feed: str, message: str):
    import tomllib

    text = f"""
system = "x"
[entities.e]
files = "*.csv"
key = ["id"]
[entities.e.columns]
id = "text"
qualite = "text"
nom = "text"
[[entities.e.feeds]]
table = "person_record"
{feed}
"""
    with pytest.raises(MappingError) as e:
        parse_mapping(tomllib.loads(text), tmp_path / "x.toml")
    assert message in str(e.value) and "entities.e.feeds[0].role" in str(e.value), str(e.value)


def test_on_error_null_is_refused_on_a_key_or_a_required_column(tmp_path: Path):
    import tomllib

    base = 'system = "x"\n[entities.e]\nfiles = "*.csv"\nkey = ["id"]\n[entities.e.columns]\n'
    with pytest.raises(MappingError, match="a key column cannot be nulled"):
        parse_mapping(tomllib.loads(base + 'id = { type = "int", on_error = "null" }\n'), tmp_path / "x.toml")
    with pytest.raises(MappingError, match="a required column cannot be nulled"):
        parse_mapping(tomllib.loads(base + 'id = "text"\nd = { type = "date", required = true, on_error = "null" }\n'),
                      tmp_path / "x.toml")
