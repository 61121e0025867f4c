"""National ids through real loads: a CSV drop, a SQL database and an HTTP portal carrying NIRs and
Belgian numbers in every form, and a CSV with a US SSN column the settings forbid. Every such row is
quarantined with its payload masked, and a byte search of the DuckDB file (after a checkpoint), of
dlt's working folder and of the quarantine finds none of the numbers; the other rows and columns load."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors import family, files, finance
from connectors.base import ExtractResult, SourceError
from connectors.identifiers import MASK
from connectors.runner import run_source
from hub.settings import settings_from_dict
from tests.connectors.conftest import TIERS, build_finance, family_data
from tests.connectors.test_national_id import FIELDS, FORMS, NON_IDS
from warehouse import ops
from warehouse.engine import Warehouse

MAPPING = """
system = "guichet"

[entities.usagers]
files = "usagers*.csv"
encoding = "utf-8"
key = ["id"]

[entities.usagers.columns]
id = "text"
prenom = "text"
email = "text"
telephone = "text"
commune = "text"
objet = "text"
montant = "decimal"
"""
HEADER = "id;prenom;email;telephone;commune;objet;montant"
TEXT_FIELDS = {"prenom": "given_name", "email": "email", "telephone": "phone", "commune": "city",
               "objet": "subsidy_subject"}
CONTROL = "canary.control.4711@example.org"  # a value that is stored: proves the byte search sees text


def canaries(value: str) -> set[str]:
    """A number as written and as its bare digits (and letters, for 2A / 2B)."""
    return {value, re.sub(r"[^0-9A-Za-z]", "", value)}


def byte_hits(paths: list[Path], needles: set[str]) -> dict[str, int]:
    data = b"".join(p.read_bytes() for root in paths for p in ([root] if root.is_file() else root.rglob("*"))
                    if p.is_file())
    return {n: data.count(n.encode()) for n in needles if data.count(n.encode())}


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Warehouse]:
    wh = Warehouse(f"duckdb:///{tmp_path / 'hub.duckdb'}")
    try:
        yield wh
    finally:
        wh.close()


def _store_quarantine(wh: Warehouse, result: ExtractResult) -> None:
    ops.record_quarantine(wh, "run-1", result.quarantine, source_systems=[result.source_system])
    wh.execute("CHECKPOINT")


def test_csv_every_form_in_every_text_field_is_stored_nowhere(duck: Warehouse, tmp_path: Path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (tmp_path / "guichet.toml").write_text(MAPPING, encoding="utf-8")
    lines, n = [], 0
    for value in FORMS.values():
        for column, kind in TEXT_FIELDS.items():
            n += 1
            cells = {c: "" for c in TEXT_FIELDS} | {column: FIELDS[kind](value)}
            lines.append(f"U{n};{';'.join(cells.values())};")
    lines.append(f"N0;Anne;{CONTROL};06 12 34 56 78;Paris;Cantine;12,50")
    for i, other in enumerate(NON_IDS.values(), start=1):
        lines.append(f"N{i};Anne {i};a{i}@example.org;{other};{other};{other};1,00")
    lines.append(f"U{n + 1};Paul;p@example.org;;;;{'184127511542357'}")  # a decimal column holding a NIR
    (drop / "usagers_2026.csv").write_text(HEADER + "\n" + "\n".join(lines) + "\n", encoding="utf-8")

    result = run_source(files, duck.dlt_destination(), "run-1", pipelines_dir=tmp_path / "p",
                        mapping=tmp_path / "guichet.toml", drop_dir=drop)
    c = result.count("usagers")
    assert (c.rows_read, c.rows_loaded, c.rows_quarantined) == (len(lines), len(NON_IDS) + 1, n + 1)
    q = result.quarantine.to_pylist()
    assert {r["reason_code"] for r in q} == {"national_id"}
    assert sorted(duck.rows("SELECT id FROM raw_guichet.usagers")) == sorted(
        [("N0",)] + [(f"N{i}",) for i in range(1, len(NON_IDS) + 1)])
    for r in q:
        assert MASK in r["payload"], r["locator"]
    _store_quarantine(duck, result)
    assert duck.scalar("SELECT count(*) FROM ops.quarantine WHERE reason_code = 'national_id'") == n + 1
    needles = set().union(*(canaries(v) for v in FORMS.values()))
    stored = [tmp_path / "hub.duckdb", tmp_path / "p"]
    assert byte_hits(stored, {CONTROL})
    assert byte_hits(stored, needles) == {}
    assert not any(n in json.dumps(q, default=str, ensure_ascii=False) for n in needles)


SSNS = ["078-05-1120", "219-09-9999", "457-55-5462", "536-22-8726"]
SSN_MAPPING = MAPPING.replace('system = "guichet"', 'system = "intake"')


def _ssn_drop(tmp_path: Path) -> Path:
    drop = tmp_path / "drop"
    drop.mkdir()
    (tmp_path / "intake.toml").write_text(SSN_MAPPING, encoding="utf-8")
    header = "id;prenom;soc_sec_id;email;telephone;commune;objet;montant"
    lines = [f"P1;Ann;{SSNS[0]};{CONTROL};555 0100;Springfield;Housing aid;10,00",
             f"P2;Bob;{SSNS[1]};bob@example.org;555 0101;Shelbyville;School meals;",
             f"P3;Cy;{SSNS[2]};cy@example.org;555 0102;Springfield;SSN {SSNS[3]} given at the desk;",
             f"P4;Di;{SSNS[3]};di@example.org;555 0103;Springfield;a row;cut;short;too;many"]
    (drop / "usagers_1.csv").write_text(header + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return drop


@pytest.fixture
def us_privacy() -> Iterator[None]:
    settings_from_dict({"privacy": {
        "forbidden_id_columns": ["ssn", "soc_sec_id"],
        "forbidden_id_patterns": [{"name": "us_ssn", "regex": r"\b\d{3}-\d{2}-\d{4}\b", "min_digits": 9}]}})
    try:
        yield
    finally:
        settings_from_dict({})


def test_a_column_the_settings_forbid_is_never_read(us_privacy, duck: Warehouse, tmp_path: Path):
    drop = _ssn_drop(tmp_path)
    result = run_source(files, duck.dlt_destination(), "run-1", pipelines_dir=tmp_path / "p",
                        mapping=tmp_path / "intake.toml", drop_dir=drop)
    c = result.count("usagers")
    assert (c.rows_read, c.rows_loaded, c.rows_quarantined) == (4, 2, 2)
    assert duck.rows("SELECT id, prenom, email, commune FROM raw_intake.usagers ORDER BY id") == [
        ("P1", "Ann", CONTROL, "Springfield"), ("P2", "Bob", "bob@example.org", "Shelbyville")]
    assert "soc_sec_id" not in duck.columns_of("raw_intake", "usagers")
    q = {r["locator"]: r for r in result.quarantine.to_pylist()}
    # the SSN pasted in a free-text field is caught by the configured pattern, and masked
    assert q["usagers_1.csv:4"]["reason_code"] == "national_id" and q["usagers_1.csv:4"]["field"] == "objet"
    assert json.loads(q["usagers_1.csv:4"]["payload"])["objet"] == f"SSN {MASK} given at the desk"
    # a row that cannot be split keeps none of its text: its SSN column could not be cut out
    assert q["usagers_1.csv:5"]["reason_code"] == "wrong_column_count" and q["usagers_1.csv:5"]["payload"] is None
    _store_quarantine(duck, result)
    stored = [tmp_path / "hub.duckdb", tmp_path / "p"]
    assert byte_hits(stored, {CONTROL})
    needles = set().union(*(canaries(s) for s in SSNS))
    assert byte_hits(stored, needles) == {}


def test_without_the_setting_an_id_column_is_refused_not_suggested(duck: Warehouse, tmp_path: Path):
    drop = _ssn_drop(tmp_path)
    with pytest.raises(SourceError) as err:
        run_source(files, duck.dlt_destination(), "run-1", pipelines_dir=tmp_path / "p",
                   mapping=tmp_path / "intake.toml", drop_dir=drop)
    message = str(err.value)
    assert err.value.field == "soc_sec_id"
    assert "forbidden identifier" in message and "will not be loaded" in message
    assert "forbidden_id_columns" in message and "add it to the mapping" not in message
    assert not any(s in message for s in SSNS)


ISSUE_FORMS = ["1 84 12 75 115 423 57", "184127511542357", "1841275115423", "1-84-12-75-115-423-57",
               "1\u00a084\u00a012\u00a075\u00a0115\u00a0423\u00a057", "85.07.30-033.01"]


def test_sql_source_rows_carrying_any_form_are_quarantined(duck: Warehouse, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'finance.sqlite'}"
    engine = build_finance(url, n=12)
    columns = ["prenom", "email", "telephone", "ville", "adresse", "nom"]
    with engine.begin() as con:
        for i, value in enumerate(ISSUE_FORMS, start=2):
            column = columns[i % len(columns)]
            con.execute(sa.update(TIERS).where(TIERS.c.id == i).values({column: f"x {value} y"}))
    engine.dispose()
    result = run_source(finance, duck.dlt_destination(), "run-1", pipelines_dir=tmp_path / "p", source_url=url)
    assert result.count("tiers").rows_quarantined == len(ISSUE_FORMS)
    assert sorted(r["locator"] for r in result.quarantine.to_pylist()) == sorted(
        f"tiers:id={i}" for i in range(2, 2 + len(ISSUE_FORMS)))
    _store_quarantine(duck, result)
    needles = set().union(*(canaries(v) for v in ISSUE_FORMS))
    assert byte_hits([tmp_path / "hub.duckdb", tmp_path / "p"], needles) == {}


def test_http_source_rows_carrying_any_form_are_quarantined(portal, duck: Warehouse, tmp_path: Path):
    data = family_data(4)
    resp = data["responsables"]
    for r, value in zip(resp, ISSUE_FORMS, strict=False):
        r["prenoms"] = f"Marie {value}"
    resp[-1]["email"] = f"{ISSUE_FORMS[1]}@free.fr"
    portal.collections = data
    result = run_source(family, duck.dlt_destination(), "run-1", pipelines_dir=tmp_path / "p",
                        base_url=portal.base_url, token=portal.token)
    assert len(resp) == 8  # six with a number in the given names, the last one in the e-mail
    assert result.count("responsables").rows_quarantined == len(ISSUE_FORMS) + 1
    assert {r["reason_code"] for r in result.quarantine.to_pylist()} == {"national_id"}
    _store_quarantine(duck, result)
    needles = set().union(*(canaries(v) for v in ISSUE_FORMS))
    assert byte_hits([tmp_path / "hub.duckdb", tmp_path / "p"], needles) == {}


def test_a_mapping_declaring_a_forbidden_column_is_refused(us_privacy, tmp_path: Path):
    path = tmp_path / "intake.toml"
    path.write_text(SSN_MAPPING.replace('montant = "decimal"', 'montant = "decimal"\n"Soc Sec ID" = "text"'),
                    encoding="utf-8")
    with pytest.raises(files.MappingError) as err:
        files.load_mapping(path)
    assert "Soc Sec ID" in str(err.value)
