"""The finance silo written to SQLite, MariaDB and PostgreSQL and read back."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from sandbox import Observations
from sandbox.finance_db import finance_tables, read_finance, write_finance


@pytest.fixture(scope="module")
def tables(observations: Observations) -> dict[str, pa.Table]:
    return finance_tables(observations)


@pytest.fixture(params=["sqlite", "mariadb", "postgres"])
def finance_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'finance.sqlite'}"
    if request.param == "mariadb":
        return request.getfixturevalue("mariadb_url")
    return request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg://", 1)


def test_written_tables_read_back_identical(finance_url: str, tables: dict[str, pa.Table]):
    counts = write_finance(finance_url, tables)
    back = read_finance(finance_url)
    for name in ("tiers", "factures", "paiements"):
        assert counts[name] == tables[name].num_rows == back[name].num_rows
    assert back["tiers"].to_pylist() == tables["tiers"].to_pylist()
    money_in = sum(tables["factures"].column("montant").to_pylist(), Decimal(0))
    money_out = sum((Decimal(str(m)) for m in back["factures"].column("montant").to_pylist()), Decimal(0))
    assert money_in == money_out


def test_rewriting_replaces_the_tables(tmp_path: Path, tables: dict[str, pa.Table]):
    url = f"sqlite:///{tmp_path / 'f.sqlite'}"
    write_finance(url, tables)
    write_finance(url, tables)
    assert read_finance(url)["tiers"].num_rows == tables["tiers"].num_rows


def test_invoices_per_debtor_and_payments(tables: dict[str, pa.Table]):
    per = Counter(tables["factures"].column("tiers_id").to_pylist())
    assert set(per) == set(tables["tiers"].column("id").to_pylist())
    assert min(per.values()) >= 1 and max(per.values()) <= 6
    statut = Counter(tables["factures"].column("statut").to_pylist())
    assert statut["payee"] > statut["emise"] > statut["annulee"] > 0
    paid = {i for i, s in zip(tables["factures"].column("id").to_pylist(),
                              tables["factures"].column("statut").to_pylist(), strict=True) if s == "payee"}
    assert set(tables["paiements"].column("facture_id").to_pylist()) == paid
    amount = dict(zip(tables["factures"].column("id").to_pylist(),
                      tables["factures"].column("montant").to_pylist(), strict=True))
    paid_sum: Counter = Counter()
    for f, m in zip(tables["paiements"].column("facture_id").to_pylist(),
                    tables["paiements"].column("montant").to_pylist(), strict=True):
        paid_sum[f] += m
    assert all(paid_sum[f] == amount[f] for f in paid)
    assert all(isinstance(m, Decimal) for m in tables["factures"].column("montant").to_pylist()[:10])
