"""Finance connector: SQLite, MariaDB and PostgreSQL sources into DuckDB and PostgreSQL warehouses."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors import finance
from connectors.base import SourceError
from connectors.runner import run_source
from tests.connectors.conftest import TIERS, build_finance


@pytest.fixture(params=["sqlite", "mariadb", "postgres"])
def source_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'finance.sqlite'}"
    if request.param == "mariadb":
        return request.getfixturevalue("mariadb_url")
    return request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg://", 1)


def test_incremental_merge_and_soft_delete(source_url, warehouse, destination, tmp_path: Path):
    engine = build_finance(source_url, n=20)
    pdir = tmp_path / "pipelines"

    first = run_source(finance, destination, "run-1", pipelines_dir=pdir, source_url=source_url)
    assert first.count("tiers").rows_loaded == 20
    assert first.count("paiements").rows_loaded == 10
    assert warehouse.scalar("SELECT count(*) FROM raw_finance.tiers") == 20

    second = run_source(finance, destination, "run-2", pipelines_dir=pdir, source_url=source_url)
    assert [c.rows_loaded for c in second.counts] == [0, 0, 0]

    later = dt.datetime(2026, 3, 1, 8, 0)
    with engine.begin() as con:
        con.execute(sa.update(TIERS).where(TIERS.c.id == 3).values(nom="CHANGED", updated_at=later))
        con.execute(sa.update(TIERS).where(TIERS.c.id == 4).values(supprime=True, updated_at=later))
    third = run_source(finance, destination, "run-3", pipelines_dir=pdir, source_url=source_url)
    assert third.count("tiers").rows_loaded == 2
    assert warehouse.scalar("SELECT count(*) FROM raw_finance.tiers") == 20
    assert warehouse.scalar("SELECT nom FROM raw_finance.tiers WHERE id = 3") == "CHANGED"
    assert warehouse.scalar("SELECT CAST(supprime AS INTEGER) FROM raw_finance.tiers WHERE id = 4") == 1
    engine.dispose()


def test_nir_is_quarantined_and_stored_nowhere(warehouse, destination, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'finance.sqlite'}"
    engine = build_finance(url, n=5)
    nir = "2 84 05 75 111 222 " + f"{97 - int('284057511122' + '2') % 97:02d}"
    with engine.begin() as con:
        con.execute(sa.update(TIERS).where(TIERS.c.id == 2).values(email=f"nir {nir}"))
    result = run_source(finance, destination, "run-nir", pipelines_dir=tmp_path / "p", source_url=url)

    assert result.count("tiers") .rows_quarantined == 1
    assert result.count("tiers").rows_read == result.count("tiers").rows_loaded + 1
    q = result.quarantine.to_pylist()
    assert [(r["reason_code"], r["locator"], r["field"]) for r in q] == [("national_id", "tiers:id=2", "email")]
    assert nir not in q[0]["payload"] and json.loads(q[0]["payload"])["id"] == 2
    assert warehouse.scalar("SELECT count(*) FROM raw_finance.tiers WHERE id = 2") == 0
    digits = nir.replace(" ", "")
    for f in (tmp_path / "p").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert digits.encode() not in data and nir.encode() not in data, f


def test_unreachable_database_is_a_clear_error(destination, tmp_path: Path):
    url = "postgresql+psycopg://nobody:pw@127.0.0.1:1/none"
    with pytest.raises(SourceError) as err:
        run_source(finance, destination, "run-x", pipelines_dir=tmp_path / "p", source_url=url)
    assert err.value.source_system == "finance"
    assert "pw" not in str(err.value) and "127.0.0.1" in str(err.value)
