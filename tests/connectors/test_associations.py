"""Associations connector against real cp1252 CSV drops with bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors import associations
from connectors.base import SourceError
from connectors.runner import run_source
from tests.connectors.conftest import ASSOC_HEADER, DEM_HEADER, DIR_HEADER, write_csv

NIR = "1 85 05 78 006 084 " + f"{97 - int('1850578006084') % 97:02d}"


def drop(tmp_path: Path) -> Path:
    d = tmp_path / "drop"
    d.mkdir()
    write_csv(d / "associations.csv", ASSOC_HEADER, [
        "W751000001;12345678900011;Les Amis du Quartier;3 rue Émile Zola;75011;Paris;14/07/1998",
        "W751000002;;Club Sportif;1 place de la Mairie;75011;Paris;01/09/2005",
    ])
    write_csv(d / "dirigeants.csv", DIR_HEADER, [
        # line 2: good
        "1;W751000001;Président;M.;LEFÈVRE;Jérôme;02/03/1961;j@example.org;0612345678;3 r Zola;75011;Paris;05/01/2026",
        # line 3: bad date
        "2;W751000001;Trésorier;Mme;DURAND;Anaïs;31/02/2020;a@example.org;;1 rue X;75011;Paris;05/01/2026",
        "3;W751000002;Secrétaire;Mme;MARTIN;Zoé;10/10/1990;z@example.org",  # 4 wrong count
        ";W751000002;Secrétaire;M.;PETIT;Léo;10/10/1991;;;;;;05/01/2026",  # 5 missing key
        "1;W751000002;Président;M.;AUTRE;Paul;10/10/1992;;;;;;05/01/2026",  # 6 duplicate of line 2
        f"6;W751000002;Trésorier;M.;NIRMAN;Ugo;10/10/1993;{NIR};;;;;05/01/2026",  # 7 national id
        "",  # 8 blank line: not a row
        "7;W751000002;Président;Mme;ROUX;Inès;11/11/1980;;;;;;05/01/2026",  # 9
    ])
    write_csv(d / "demandes_subvention.csv", DEM_HEADER, [
        "S2026-001;W751000001;1;Fête de quartier;1 234,50;1\u00a0000,00;15/01/2026;20/02/2026;accordée",
        "S2026-002;W751000002;7;Matériel;12,3x;;16/01/2026;;déposée",  # 3 bad decimal
        "S2026-003;W751000002;7;Tournoi;250;;17/01/2026;;en instruction",
    ])
    return d


def test_good_rows_load_and_bad_rows_are_quarantined(warehouse, destination, tmp_path: Path):
    result = run_source(associations, destination, "run-a", pipelines_dir=tmp_path / "p", drop_dir=drop(tmp_path))

    q = {(r["locator"], r["field"], r["reason_code"]) for r in result.quarantine.to_pylist()}
    assert q == {
        ("dirigeants.csv:3", "date_naissance", "bad_date"),
        ("dirigeants.csv:4", None, "wrong_column_count"),
        ("dirigeants.csv:5", "id", "missing_key"),
        ("dirigeants.csv:6", "id", "duplicate_key"),
        ("dirigeants.csv:7", "email", "national_id"),
        ("demandes_subvention.csv:3", "montant_demande", "bad_decimal"),
    }
    for c in result.counts:
        assert c.rows_read == c.rows_loaded + c.rows_quarantined
    d = result.count("dirigeants")
    assert (d.rows_read, d.rows_loaded, d.rows_quarantined) == (7, 2, 5)
    assert sorted(r[0] for r in warehouse.rows("SELECT id FROM raw_associations.dirigeants")) == [1, 7]
    # the first occurrence of a duplicate key wins
    assert warehouse.scalar("SELECT nom FROM raw_associations.dirigeants WHERE id = 1") == "LEFÈVRE"
    assert str(warehouse.scalar(
        "SELECT montant_accorde FROM raw_associations.demandes_subvention WHERE numero = 'S2026-001'")) == "1000.00"
    payloads = " ".join(r["payload"] or "" for r in result.quarantine.to_pylist())
    assert NIR not in payloads and NIR.replace(" ", "") not in payloads
    bad_date = next(r for r in result.quarantine.to_pylist() if r["reason_code"] == "bad_date")
    assert json.loads(bad_date["payload"])["nom"] == "DURAND"


def test_unchanged_files_load_nothing_and_a_changed_file_merges_on_keys(warehouse, destination, tmp_path: Path):
    d = drop(tmp_path)
    run_source(associations, destination, "run-1", pipelines_dir=tmp_path / "p", drop_dir=d)
    again = run_source(associations, destination, "run-2", pipelines_dir=tmp_path / "p", drop_dir=d)
    assert [(c.entity, c.rows_read, c.rows_loaded) for c in again.counts] == [
        ("associations", 0, 0), ("dirigeants", 0, 0), ("demandes_subvention", 0, 0)]
    # a new export of one file: that file is read again and merged on its key, the others skipped
    write_csv(d / "associations.csv", ASSOC_HEADER, [
        "W751000001;12345678900011;Les Amis du Quartier (nouveau nom);3 rue Émile Zola;75011;Paris;14/07/1998",
        "W751000002;;Club Sportif;1 place de la Mairie;75011;Paris;01/09/2005",
    ])
    changed = run_source(associations, destination, "run-3", pipelines_dir=tmp_path / "p", drop_dir=d)
    assert [(c.entity, c.rows_loaded) for c in changed.counts] == [
        ("associations", 2), ("dirigeants", 0), ("demandes_subvention", 0)]
    assert warehouse.scalar("SELECT count(*) FROM raw_associations.associations") == 2
    assert warehouse.scalar("SELECT nom FROM raw_associations.associations WHERE rna = 'W751000001'") == \
        "Les Amis du Quartier (nouveau nom)"
    assert warehouse.scalar("SELECT count(*) FROM raw_associations.demandes_subvention") == 2


def test_missing_file_names_it(destination, tmp_path: Path):
    d = drop(tmp_path)
    (d / "dirigeants.csv").unlink()
    with pytest.raises(SourceError, match=r"^associations: dirigeants.csv: file missing"):
        run_source(associations, destination, "run", pipelines_dir=tmp_path / "p", drop_dir=d)
