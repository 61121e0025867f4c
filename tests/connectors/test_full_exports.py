"""Full exports propagate deletions: a row the next export no longer lists stays in raw marked
deleted (``_deleted_at``), counted as deleted; listed again, it is alive again. A row set aside
for a bad value is still in the silo: not deleted. An empty export is refused rather than deleting
everything. Incremental sources are unaffected. On both engines."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from connectors import associations, files
from connectors.base import SourceError
from connectors.files.mapping import parse_mapping
from connectors.runner import run_source
from tests.connectors.conftest import ASSOC_HEADER, DEM_HEADER, DIR_HEADER, write_csv

DIRIGEANTS = {
    1: "1;W1;Président;M.;LEFÈVRE;Jérôme;02/03/1961;;;;;;05/01/2026",
    2: "2;W1;Trésorier;Mme;DURAND;Anaïs;04/05/1970;;;;;;05/01/2026",
    3: "3;W1;Secrétaire;Mme;MARTIN;Zoé;10/10/1990;;;;;;05/01/2026",
}


def export(d: Path, ids: list[int], bad_date: int | None = None) -> Path:
    d.mkdir(exist_ok=True)
    write_csv(d / "associations.csv", ASSOC_HEADER, ["W1;;Les Amis;3 rue Zola;75011;Paris;14/07/1998"])
    lines = [DIRIGEANTS[i].replace("05/01/2026", "31/02/2026") if i == bad_date else DIRIGEANTS[i] for i in ids]
    write_csv(d / "dirigeants.csv", DIR_HEADER, lines)
    write_csv(d / "demandes_subvention.csv", DEM_HEADER, [f"S{i};W1;{i};Objet;100;;15/01/2026;;déposée" for i in ids])
    return d


def deleted(warehouse, table: str = "dirigeants", key: str = "id") -> dict:
    return dict(warehouse.rows(f"SELECT {key}, _deleted_at IS NOT NULL FROM raw_associations.{table} ORDER BY {key}"))


def test_a_row_the_next_export_drops_is_marked_deleted_and_comes_back_when_listed(warehouse, destination, tmp_path):
    d, p = tmp_path / "drop", tmp_path / "p"
    first = run_source(associations, destination, "r1", pipelines_dir=p, drop_dir=export(d, [1, 2, 3]))
    assert first.count("dirigeants").rows_deleted == 0
    assert deleted(warehouse) == {1: False, 2: False, 3: False}

    second = run_source(associations, destination, "r2", pipelines_dir=p, drop_dir=export(d, [1, 3]))
    c = second.count("dirigeants")
    assert (c.rows_read, c.rows_loaded, c.rows_deleted) == (2, 2, 1)
    assert second.count("demandes_subvention").rows_deleted == 1
    assert deleted(warehouse) == {1: False, 2: True, 3: False}
    # what the silo last said of the person is kept, dated by the deletion (retention runs from it)
    assert warehouse.scalar("SELECT nom FROM raw_associations.dirigeants WHERE id = 2") == "DURAND"

    # the same export again: nothing read, nothing deleted again
    again = run_source(associations, destination, "r3", pipelines_dir=p, drop_dir=d)
    assert (again.count("dirigeants").rows_read, again.count("dirigeants").rows_deleted) == (0, 0)

    back = run_source(associations, destination, "r4", pipelines_dir=p, drop_dir=export(d, [1, 2, 3]))
    assert back.count("dirigeants").rows_deleted == 0
    assert deleted(warehouse) == {1: False, 2: False, 3: False}


def test_a_row_set_aside_for_a_bad_value_is_not_deleted(warehouse, destination, tmp_path):
    d, p = tmp_path / "drop", tmp_path / "p"
    run_source(associations, destination, "r1", pipelines_dir=p, drop_dir=export(d, [1, 2, 3]))
    second = run_source(associations, destination, "r2", pipelines_dir=p, drop_dir=export(d, [1, 2, 3], bad_date=2))
    c = second.count("dirigeants")
    assert (c.rows_quarantined, c.rows_deleted) == (1, 0)
    assert deleted(warehouse) == {1: False, 2: False, 3: False}


def test_an_empty_full_export_is_refused(warehouse, destination, tmp_path):
    d, p = tmp_path / "drop", tmp_path / "p"
    run_source(associations, destination, "r1", pipelines_dir=p, drop_dir=export(d, [1, 2, 3]))
    with pytest.raises(SourceError, match=r"dirigeants: the export lists no row, where 3 were loaded before"):
        run_source(associations, destination, "r2", pipelines_dir=p, drop_dir=export(d, []))
    assert deleted(warehouse) == {1: False, 2: False, 3: False}


def test_an_incremental_source_deletes_nothing(warehouse, destination, tmp_path):
    d, p = tmp_path / "drop", tmp_path / "p"
    run_source(associations, destination, "r1", pipelines_dir=p, drop_dir=export(d, [1, 2, 3]), export="incremental")
    second = run_source(associations, destination, "r2", pipelines_dir=p, drop_dir=export(d, [1]), export="incremental")
    assert second.count("dirigeants").rows_deleted == 0
    assert deleted(warehouse) == {1: False, 2: False, 3: False}


MAPPING = """
system = "aides"
[entities.beneficiaires]
files = "beneficiaires_*.csv"
export = "{export}"
key = "id"
[entities.beneficiaires.columns]
id = "text"
nom = "text"
prenom = "text"
[[entities.beneficiaires.feeds]]
table = "person_record"
usage_name = "nom"
given_names = "prenom"
"""


def people(d: Path, name: str, ids: list[int]) -> None:
    d.mkdir(exist_ok=True)
    (d / name).write_text("id;nom;prenom\n" + "".join(f"{i};NOM{i};Prénom{i}\n" for i in ids), encoding="utf-8")


@pytest.mark.parametrize("export_kind", ["full", "incremental"])
def test_a_mapped_full_export_spans_its_files(warehouse, destination, tmp_path, export_kind):
    d, p = tmp_path / "drop", tmp_path / "p"
    mapping = parse_mapping(tomllib.loads(MAPPING.format(export=export_kind)), tmp_path / "aides.toml")
    people(d, "beneficiaires_a.csv", [1, 2])
    people(d, "beneficiaires_b.csv", [3, 4])
    run_source(files, destination, "r1", pipelines_dir=p, mapping=mapping, drop_dir=d)
    # the next export: one file rewritten without 2, the other file gone (its rows with it)
    people(d, "beneficiaires_a.csv", [1])
    (d / "beneficiaires_b.csv").unlink()
    second = run_source(files, destination, "r2", pipelines_dir=p, mapping=mapping, drop_dir=d)
    marks = dict(warehouse.rows("SELECT id, _deleted_at IS NOT NULL FROM raw_aides.beneficiaires ORDER BY id")
                 if export_kind == "full" else
                 warehouse.rows("SELECT id, false FROM raw_aides.beneficiaires ORDER BY id"))
    if export_kind == "full":
        assert second.count("beneficiaires").rows_deleted == 3
        assert marks == {"1": False, "2": True, "3": True, "4": True}
    else:
        assert second.count("beneficiaires").rows_deleted == 0
        assert set(marks) == {"1", "2", "3", "4"}
        assert "_deleted_at" not in warehouse.columns_of("raw_aides", "beneficiaires")


def test_a_line_of_a_full_export_that_cannot_be_split_is_not_taken_for_a_deletion(warehouse, destination, tmp_path):
    d, p = tmp_path / "drop", tmp_path / "p"
    mapping = parse_mapping(tomllib.loads(MAPPING.format(export="full")), tmp_path / "aides.toml")
    people(d, "beneficiaires_a.csv", [1, 2, 3])
    run_source(files, destination, "r1", pipelines_dir=p, mapping=mapping, drop_dir=d)
    # the next export: 2's line has a field too many, 3 is gone
    (d / "beneficiaires_a.csv").write_text("id;nom;prenom\n1;NOM1;Prénom1\n2;NOM2;Prénom2;en trop\n",
                                           encoding="utf-8")
    second = run_source(files, destination, "r2", pipelines_dir=p, mapping=mapping, drop_dir=d)
    assert [(r["locator"], r["reason_code"]) for r in second.quarantine.to_pylist()] == [
        ("beneficiaires_a.csv:3", "wrong_column_count")]
    assert second.count("beneficiaires").rows_deleted == 1
    assert dict(warehouse.rows("SELECT id, _deleted_at IS NOT NULL FROM raw_aides.beneficiaires")) == {
        "1": False, "2": False, "3": True}
