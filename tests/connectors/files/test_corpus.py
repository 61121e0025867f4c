"""The malformed-input corpus (tests/cases/malformed): every case is loaded as its manifest says, or
rejected with an error naming source, file (or page), row and field; nothing is lost or invented
(rows_read = rows_loaded + rows_quarantined) and no national id is stored anywhere."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from connectors import family, files
from connectors.base import ExtractResult, SourceError
from connectors.files.mapping import parse_mapping
from connectors.runner import run_source
from tests.connectors.files.conftest import BE, CASES, MANIFEST, NIR
from warehouse.engine import Warehouse

MAPPING = CASES / "mapping.toml"
NATIONAL_IDS = [NIR, NIR.replace(" ", ""), BE, re.sub(r"\D", "", BE)]


def _mapping(case: dict[str, Any]):
    data = tomllib.loads(MAPPING.read_text(encoding="utf-8"))
    data["entities"]["usagers"].update(case.get("options", {}))
    return parse_mapping(data, MAPPING)


def _run(case: dict[str, Any], wh: Warehouse, tmp_path: Path, page_server) -> ExtractResult:
    if case.get("family") == "json":
        page_server.body = (CASES / case["file"]).read_bytes()
        return run_source(family, wh.dlt_destination(), "corpus", pipelines_dir=tmp_path / "p",
                          base_url=page_server.base_url, token="t")
    drop = tmp_path / "drop"
    drop.mkdir()
    shutil.copy(CASES / case["file"], drop / ("usagers" + Path(case["file"]).suffix))
    return run_source(files, wh.dlt_destination(), "corpus", pipelines_dir=tmp_path / "p", mapping=_mapping(case),
                      drop_dir=drop)


def _raw_table(case: dict[str, Any]) -> str:
    return "raw_family.responsables" if case.get("family") == "json" else "raw_corpus.usagers"


def _stored_text(wh: Warehouse, tmp_path: Path, result: ExtractResult | None) -> str:
    """Everything the run stored: every text column of the raw schemas, quarantine payloads, and
    the bytes of dlt's working folder (load packages, state)."""
    parts = []
    for schema, table in wh.rows("SELECT table_schema, table_name FROM information_schema.tables "
                                 "WHERE table_schema LIKE 'raw_%'"):
        for row in wh.rows(f'SELECT * FROM {schema}."{table}"'):
            parts.extend(str(v) for v in row)
    if result is not None:
        parts.extend(p or "" for p in result.quarantine.column("payload").to_pylist())
    for f in (tmp_path / "p").rglob("*"):
        if f.is_file():
            parts.append(f.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


@pytest.mark.parametrize("case", MANIFEST, ids=[c["id"] for c in MANIFEST])
def test_case(case: dict[str, Any], duck: Warehouse, tmp_path: Path, page_server) -> None:
    source = "family" if case.get("family") == "json" else "corpus"
    if case["outcome"] == "rejected":
        with pytest.raises(SourceError) as err:
            _run(case, duck, tmp_path, page_server)
        e = err.value
        assert (e.source_system, e.locator, e.field or "") == (source, case["locator"], case["field"])
        assert str(e).startswith(f"{source}: {case['locator']}")
        # a rejected file loads nothing
        assert not duck.table_exists(*_raw_table(case).split(".")) or \
            duck.scalar(f"SELECT count(*) FROM {_raw_table(case)}") == 0
        result = None
    else:
        result = _run(case, duck, tmp_path, page_server)
        entity = "responsables" if source == "family" else "usagers"
        c = result.count(entity)
        assert c.rows_read == c.rows_loaded + c.rows_quarantined
        assert (c.rows_read, c.rows_loaded, c.rows_quarantined) == (
            case["rows_read"], case["rows_loaded"], case["rows_quarantined"])
        got = sorted((r["locator"], r["field"] or "", r["reason_code"]) for r in result.quarantine.to_pylist())
        assert got == sorted(tuple(q) for q in case["quarantine"])
        assert duck.scalar(f"SELECT count(*) FROM {_raw_table(case)}") == c.rows_loaded
        for r in result.quarantine.to_pylist():
            assert r["source_system"] == source and r["locator"] and r["reason"]
    stored = _stored_text(duck, tmp_path, result)
    for nid in NATIONAL_IDS:
        assert nid not in stored
