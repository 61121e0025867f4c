"""Files are read as what they are: exports written the way Excel writes them — "CSV UTF-8" (UTF-8
with a BOM), a UTF-8 file without BOM, the plain "CSV (point-virgule)" (cp1252) and "Texte Unicode"
(UTF-16 with a BOM, tab-separated) — load the same letters; a declared encoding that does not fit
the bytes is refused naming the file, line, column and byte, never loaded as mojibake."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import associations, files
from connectors.base import SourceError
from connectors.files.mapping import parse_mapping
from connectors.runner import run_source
from tests.connectors.conftest import ASSOC_HEADER, DEM_HEADER, DIR_HEADER

NAMES = [("MASSONÉ", "Anaïs"), ("LEFÈVRE", "Jérôme"), ("ŒUVRARD", "Zoé"), ("GARÇON", "Noël")]
# What Excel's "Save as" writes: (encoding, line break, delimiter)
EXCEL = {
    "csv-utf8-bom": ("utf-8-sig", "\r\n", ";"),
    "utf8-no-bom": ("utf-8", "\r\n", ";"),
    "csv-cp1252": ("cp1252", "\r\n", ";"),
    "unicode-text-utf16": ("utf-16", "\r\n", "\t"),
}


def excel_file(path: Path, header: str, lines: list[str], kind: str) -> Path:
    encoding, eol, delimiter = EXCEL[kind]
    text = eol.join([header, *lines]) + eol
    path.write_bytes(text.replace(";", delimiter).encode(encoding))  # utf-16 writes its BOM (FF FE here)
    return path


def associations_drop(root: Path, kind: str) -> Path:
    d = root / "drop"
    d.mkdir()
    excel_file(d / "associations.csv", ASSOC_HEADER, ["W751000001;;Les Amis;3 rue Émile Zola;75011;Paris;14/07/1998"],
               kind)
    excel_file(d / "dirigeants.csv", DIR_HEADER, [
        f"{i};W751000001;Président;M.;{nom};{prenom};02/03/1961;;;;;;05/01/2026"
        for i, (nom, prenom) in enumerate(NAMES, 1)], kind)
    excel_file(d / "demandes_subvention.csv", DEM_HEADER,
               ["S1;W751000001;1;Fête de quartier;1 234,50;;15/01/2026;;accordée"], kind)
    return d


@pytest.mark.parametrize("kind", ["csv-utf8-bom", "utf8-no-bom", "csv-cp1252"])
def test_associations_exports_load_their_letters_whatever_excel_wrote(warehouse, destination, tmp_path, kind):
    d = associations_drop(tmp_path, kind)
    result = run_source(associations, destination, "run-1", pipelines_dir=tmp_path / "p", drop_dir=d)
    assert result.count("dirigeants").rows_loaded == len(NAMES)
    assert result.quarantine.num_rows == 0
    got = warehouse.rows("SELECT nom, prenom FROM raw_associations.dirigeants ORDER BY id")
    assert got == NAMES
    assert warehouse.scalar("SELECT objet FROM raw_associations.demandes_subvention") == "Fête de quartier"
    assert warehouse.scalar("SELECT rna FROM raw_associations.associations") == "W751000001"  # no BOM in it


@pytest.mark.parametrize("kind", ["csv-utf8-bom", "utf8-no-bom"])
def test_a_utf8_export_declared_cp1252_is_refused_not_garbled(warehouse, destination, tmp_path, kind):
    d = associations_drop(tmp_path, kind)
    with pytest.raises(SourceError) as e:
        run_source(associations, destination, "run-1", pipelines_dir=tmp_path / "p", drop_dir=d, encoding="cp1252")
    message = str(e.value)
    assert message.startswith("associations: associations.csv:1: the file ")
    assert "declares cp1252" in message and '"auto"' in message
    assert not warehouse.table_exists("raw_associations", "dirigeants")  # nothing loaded


def test_a_cp1252_export_declared_utf8_names_file_line_column_and_byte(destination, tmp_path):
    d = associations_drop(tmp_path, "csv-cp1252")
    with pytest.raises(SourceError) as e:
        run_source(associations, destination, "run-1", pipelines_dir=tmp_path / "p", drop_dir=d, encoding="utf-8")
    # line 2 of associations.csv holds "Émile" (0xC9 in cp1252) in its adresse column
    assert str(e.value).startswith("associations: associations.csv:2, field adresse: byte 0xC9 (offset ")
    assert "is not valid utf-8" in str(e.value)


MAPPING = """
system = "personnes"
[entities.personnes]
files = "personnes*.txt"
encoding = "{encoding}"
delimiter = "{delimiter}"
key = "id"
[entities.personnes.columns]
id = "text"
nom = "text"
prenom = "text"
[[entities.personnes.feeds]]
table = "person_record"
usage_name = "nom"
given_names = "prenom"
"""


@pytest.mark.parametrize("kind", list(EXCEL))
def test_the_files_connector_detects_each_excel_encoding(warehouse, destination, tmp_path, kind):
    delimiter = EXCEL[kind][2]
    d = tmp_path / "drop"
    d.mkdir()
    excel_file(d / "personnes.txt", "id;nom;prenom", [f"{i};{n};{p}" for i, (n, p) in enumerate(NAMES, 1)], kind)
    import tomllib

    text = MAPPING.format(encoding="auto", delimiter="tab" if delimiter == "\t" else delimiter)
    mapping = parse_mapping(tomllib.loads(text), tmp_path / "personnes.toml")
    result = run_source(files, destination, "run-1", pipelines_dir=tmp_path / "p", mapping=mapping, drop_dir=d)
    assert result.count("personnes").rows_loaded == len(NAMES)
    assert warehouse.rows("SELECT nom, prenom FROM raw_personnes.personnes ORDER BY id") == NAMES


def test_a_utf16_file_declared_utf8_is_refused_with_its_first_byte(destination, tmp_path):
    import tomllib

    d = tmp_path / "drop"
    d.mkdir()
    excel_file(d / "personnes.txt", "id;nom;prenom", ["1;MASSONÉ;Anaïs"], "unicode-text-utf16")
    mapping = parse_mapping(tomllib.loads(MAPPING.format(encoding="utf-8", delimiter="tab")), tmp_path / "m.toml")
    with pytest.raises(SourceError, match=r"^personnes: personnes.txt:1: the file starts with a byte order mark of "
                                          r"UTF-16, but the source declares utf-8: .*\"auto\" \(or \"utf-16\"\)"):
        run_source(files, destination, "run-1", pipelines_dir=tmp_path / "p", mapping=mapping, drop_dir=d)
