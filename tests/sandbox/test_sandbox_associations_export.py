"""The associations export: cp1252, ';', CRLF, Excel-style quoting, French dates and amounts."""

from __future__ import annotations

import csv
import re
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from sandbox import Observations
from sandbox.associations_export import FILES, association_tables, fr_amount, write_associations, write_csv
from sandbox.observations import REFERENCE_TIME


@pytest.fixture(scope="module")
def export(observations: Observations, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("associations")
    return folder, write_associations(folder, association_tables(observations))


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="cp1252", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


@pytest.mark.parametrize("name", FILES)
def test_files_read_back_as_cp1252_with_crlf_and_row_counts(export, name: str):
    folder, counts = export
    raw = (folder / name).read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 0
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # accented French text in cp1252 is not valid UTF-8
    assert len(_read(folder / name)) == counts[name]
    frame = pd.read_csv(folder / name, sep=";", encoding="cp1252", dtype=str, keep_default_na=False)
    assert len(frame) == counts[name]


def test_dirigeants_match_the_observations(export, observations: Observations):
    folder, _ = export
    rows = _read(folder / "dirigeants.csv")
    assert [int(r["id"]) for r in rows] == observations.dirigeants.column("id").to_pylist()
    assert all(re.fullmatch(r"W\d{9}", r["rna"]) for r in rows)
    assert all(r["date_naissance"] == "" or re.fullmatch(r"\d\d/\d\d/\d{4}", r["date_naissance"]) for r in rows)
    assert {r["fonction"] for r in rows} == {"Président", "Trésorier", "Secrétaire"}


def test_value_with_semicolon_and_quotes_is_quoted_like_excel(tmp_path: Path):
    path = tmp_path / "x.csv"
    write_csv(path, ("a", "b"), [{"a": "solidarité; entraide", "b": 'Festival "Les Canuts"'}])
    assert path.read_bytes() == 'a;b\r\n"solidarité; entraide";"Festival ""Les Canuts"""\r\n'.encode("cp1252")
    assert _read(path) == [{"a": "solidarité; entraide", "b": 'Festival "Les Canuts"'}]


def test_export_contains_quoted_semicolons(export):
    folder, _ = export
    text = (folder / "associations.csv").read_text(encoding="cp1252")
    assert re.search(r'"[^"\r\n]*;[^"\r\n]*"', text)
    rows = _read(folder / "associations.csv")
    assert any(";" in r["nom"] for r in rows)
    assert all(len(r) == 7 and None not in r for r in rows)


@pytest.mark.parametrize(("cents", "nbsp", "expected"), [(123450, False, "1 234,50"), (5, False, "0,05"),
                                                         (123456789, True, "1\xa0234\xa0567,89")],
                         ids=["thousands-space", "cents-only", "no-break-space"])
def test_french_amounts(cents: int, nbsp: bool, expected: str):
    assert fr_amount(cents, nbsp) == expected


def test_subsidy_requests_have_consistent_decisions_and_some_overdue(export):
    folder, _ = export
    rows = _read(folder / "demandes_subvention.csv")
    assert rows
    today = REFERENCE_TIME.date()
    overdue = 0
    for r in rows:
        depot = datetime.strptime(r["date_depot"], "%d/%m/%Y").date()
        decided = r["statut"] in ("accordée", "refusée")
        assert bool(r["date_decision"]) == decided == bool(r["montant_accorde"])
        assert re.fullmatch(r"\d{1,3}([ \xa0]\d{3})*,\d\d", r["montant_demande"])
        if r["statut"] == "en instruction" and (today - depot).days > 61:
            overdue += 1
        assert depot <= today and (not decided or datetime.strptime(r["date_decision"], "%d/%m/%Y").date() >= depot)
    assert overdue >= 1
    assert isinstance(today, date)
