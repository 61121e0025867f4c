"""The marts' data dictionary is generated from schemas/marts.py: every column of every marts table with
its meaning, types on both engines, source and privacy; docs/marts.md carries the current one; the CLI
writes it as Markdown, CSV (French spreadsheet) and HTML."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from schemas.contract import SQL_TYPES
from schemas.marts import AGG_TABLES, MART_TABLES, PSEUDONYMISED, MartColumn
from schemas.marts_dictionary import HEADERS, PRIVACY_FR, entries, render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "marts.md"


def test_every_column_of_every_mart_table_is_in_the_dictionary_with_both_engines_types():
    rows = entries()
    expected = [(f"marts.{t.name}", c.name) for t in MART_TABLES for c in t.columns]
    assert [(r["table"], r["column"]) for r in rows] == expected
    for r in rows:
        assert r["meaning"] and r["source"], r
        assert (r["DuckDB"], r["PostgreSQL"]) == SQL_TYPES[r["type (logical)"]]


def test_pseudonyms_are_personal_and_aggregates_are_not():
    by_key = {(r["table"], r["column"]): r for r in entries()}
    for t in MART_TABLES:
        for c in t.columns:
            assert isinstance(c, MartColumn)
            r = by_key[(f"marts.{t.name}", c.name)]
            if c.name == "citizen_pk":
                assert r["personal"] == "yes" and r["privacy"] == PRIVACY_FR[PSEUDONYMISED]
            if t in AGG_TABLES:
                assert r["personal"] == "no", r


def test_docs_carry_the_dictionary_as_generated():
    assert render("md", level=2) in DOCS.read_text(encoding="utf-8"), \
        "docs/marts.md is behind schemas/marts.py: paste `hub warehouse dictionary --format md` (level 2) again"


@pytest.mark.parametrize("fmt", ["md", "csv", "html"])
def test_the_cli_writes_the_dictionary(tmp_path, fmt):
    from hub.cli import main

    out = tmp_path / f"dictionnaire.{fmt}"
    result = CliRunner().invoke(main, ["warehouse", "dictionary", "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8-sig")
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
        assert list(rows[0]) == HEADERS and len(rows) == sum(len(t.columns) for t in MART_TABLES)
        assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # a French spreadsheet opens it as UTF-8
    elif fmt == "html":
        assert text.startswith('<!DOCTYPE html>\n<html lang="fr">') and "<script" not in text
        assert all(f'id="{t.name}"' in text for t in MART_TABLES)
    else:
        assert all(f"## marts.{t.name}" in text for t in MART_TABLES)
