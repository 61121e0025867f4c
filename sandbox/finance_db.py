"""The finance silo: tables ``tiers``, ``factures``, ``paiements`` in a SQL database.

Any SQLAlchemy URL: a SQLite file (the default), ``mysql+pymysql://…`` or
``postgresql+psycopg://…``. Layout as in docs/silos.md.
"""

from __future__ import annotations

import logging
import warnings
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from sandbox.observations import _REF_S, Observations

log = logging.getLogger(__name__)

SERVICES = ("eau", "creche", "stationnement", "occupation_domaine_public")
_SERVICE_P = np.array([0.55, 0.12, 0.25, 0.08])
_LIBELLES = {
    "eau": "Facture d'eau",
    "creche": "Participation crèche",
    "stationnement": "Forfait post-stationnement",
    "occupation_domaine_public": "Redevance occupation du domaine public",
}
_AMOUNT_CENTS = {  # (low, high) per service
    "eau": (3_000, 45_000),
    "creche": (8_000, 90_000),
    "stationnement": (1_700, 3_500),
    "occupation_domaine_public": (5_000, 250_000),
}
CHUNK = 20_000

metadata = sa.MetaData()
tiers = sa.Table(
    "tiers", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("civilite", sa.String(4)),
    sa.Column("nom", sa.String(80)),
    sa.Column("nom_naissance", sa.String(80)),
    sa.Column("prenom", sa.String(80)),
    sa.Column("date_naissance", sa.Date),
    sa.Column("adresse", sa.String(200)),
    sa.Column("code_postal", sa.String(5)),
    sa.Column("ville", sa.String(80)),
    sa.Column("telephone", sa.String(30)),
    sa.Column("email", sa.String(120)),
    sa.Column("groupe_id", sa.Integer),
    sa.Column("updated_at", sa.DateTime),
    sa.Column("supprime", sa.Boolean, nullable=False),
)
factures = sa.Table(
    "factures", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tiers_id", sa.Integer, nullable=False, index=True),
    sa.Column("numero", sa.String(20), nullable=False),
    sa.Column("service", sa.String(40), nullable=False),
    sa.Column("libelle", sa.String(120)),
    sa.Column("date_emission", sa.Date, nullable=False),
    sa.Column("date_echeance", sa.Date, nullable=False),
    sa.Column("montant", sa.Numeric(10, 2), nullable=False),
    sa.Column("statut", sa.String(10), nullable=False),
    sa.Column("updated_at", sa.DateTime),
)
paiements = sa.Table(
    "paiements", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("facture_id", sa.Integer, nullable=False, index=True),
    sa.Column("date_paiement", sa.Date, nullable=False),
    sa.Column("montant", sa.Numeric(10, 2), nullable=False),
    sa.Column("mode", sa.String(12), nullable=False),
    sa.Column("updated_at", sa.DateTime),
)


def _money(cents: np.ndarray) -> pa.Array:
    return pa.array([Decimal(int(c)).scaleb(-2) for c in cents], type=pa.decimal128(10, 2))


def finance_tables(obs: Observations) -> dict[str, pa.Table]:
    """The three finance tables as Arrow (silo columns only, no ground truth)."""
    rng = np.random.default_rng([obs.seed, 2])
    t = obs.finance_tiers
    tiers_t = t.drop_columns(["person_id", "household_id"])
    n_t = t.num_rows
    per = rng.integers(1, 7, size=n_t)  # 1-6 invoices per débiteur
    tiers_id = np.repeat(t.column("id").to_numpy(), per)
    n_f = len(tiers_id)
    service = np.array(SERVICES, dtype=object)[rng.choice(len(SERVICES), size=n_f, p=_SERVICE_P)]
    lo = np.array([_AMOUNT_CENTS[s][0] for s in service])
    hi = np.array([_AMOUNT_CENTS[s][1] for s in service])
    cents = (lo + (hi - lo) * rng.random(n_f) ** 2).astype(np.int64)
    emission = (_REF_S - rng.integers(1, 2 * 365, size=n_f).astype("timedelta64[D]")).astype("datetime64[D]")
    echeance = emission + np.timedelta64(30, "D")
    r = rng.random(n_f)
    statut = np.where(r < 0.78, "payee", np.where(r < 0.95, "emise", "annulee")).astype(object)
    ids = np.arange(1, n_f + 1, dtype=np.int64)
    years = emission.astype("datetime64[Y]").astype(np.int64) + 1970
    f_updated = emission.astype("datetime64[s]") + rng.integers(0, 86400, size=n_f).astype("timedelta64[s]")
    factures_t = pa.table({
        "id": ids,
        "tiers_id": tiers_id,
        "numero": pa.array([f"F{y}-{i:06d}" for y, i in zip(years, ids, strict=True)]),
        "service": pa.array(service, type=pa.string()),
        "libelle": pa.array([_LIBELLES[s] for s in service], type=pa.string()),
        "date_emission": pa.array(emission, type=pa.date32()),
        "date_echeance": pa.array(echeance, type=pa.date32()),
        "montant": _money(cents),
        "statut": pa.array(statut, type=pa.string()),
        "updated_at": pa.array(f_updated, type=pa.timestamp("s")),
    })

    # One payment per paid invoice; a few are paid in two instalments.
    paid = np.flatnonzero(statut == "payee")
    split = rng.random(len(paid)) < 0.05
    fid = np.concatenate([paid, paid[split]])
    first_part = np.where(split, cents[paid] // 2, cents[paid])
    second_part = cents[paid][split] - first_part[split]
    p_cents = np.concatenate([first_part, second_part])
    delay = rng.integers(0, 45, size=len(fid)).astype("timedelta64[D]")
    delay[len(paid):] += np.timedelta64(30, "D")
    p_date = np.minimum(emission[fid] + delay, _REF_S.astype("datetime64[D]"))
    order = np.argsort(p_date, kind="stable")
    fid, p_cents, p_date = fid[order], p_cents[order], p_date[order]
    modes = np.array(["cb", "cheque", "prelevement", "especes"], dtype=object)
    paiements_t = pa.table({
        "id": np.arange(1, len(fid) + 1, dtype=np.int64),
        "facture_id": ids[fid],
        "date_paiement": pa.array(p_date, type=pa.date32()),
        "montant": _money(p_cents),
        "mode": pa.array(modes[rng.choice(4, size=len(fid), p=[0.45, 0.1, 0.4, 0.05])], type=pa.string()),
        "updated_at": pa.array(p_date.astype("datetime64[s]") + np.timedelta64(3600 * 20, "s"),
                               type=pa.timestamp("s")),
    })
    return {"tiers": tiers_t, "factures": factures_t, "paiements": paiements_t}


def _rows(table: pa.Table, start: int, stop: int) -> list[dict[str, Any]]:
    return table.slice(start, stop - start).to_pylist()


def write_finance(url: str, tables: dict[str, pa.Table]) -> dict[str, int]:
    """(Re)create ``tiers``, ``factures``, ``paiements`` at ``url`` and bulk-insert the tables.

    Returns rows written per table.
    """
    engine = sa.create_engine(url)
    counts: dict[str, int] = {}
    try:
        with engine.begin() as conn:
            metadata.drop_all(conn)
            metadata.create_all(conn)
        with warnings.catch_warnings():
            # SQLite has no DECIMAL type: SQLAlchemy warns that it stores floats. The silo is like that.
            warnings.filterwarnings("ignore", message=".*does \\*not\\* support Decimal.*")
            for name, sql_table in (("tiers", tiers), ("factures", factures), ("paiements", paiements)):
                data = tables[name]
                with engine.begin() as conn:
                    for start in range(0, data.num_rows, CHUNK):
                        conn.execute(sql_table.insert(), _rows(data, start, min(start + CHUNK, data.num_rows)))
                counts[name] = data.num_rows
                log.info("finance: wrote %d rows into %s", data.num_rows, name)
    finally:
        engine.dispose()
    return counts


def read_finance(url: str) -> dict[str, pa.Table]:
    """Read the three tables back (for tests and the demo report)."""
    engine = sa.create_engine(url)
    out: dict[str, pa.Table] = {}
    try:
        with engine.connect() as conn:
            for sql_table in (tiers, factures, paiements):
                rows = conn.execute(sa.select(sql_table).order_by(sql_table.c.id)).mappings().all()
                out[sql_table.name] = pa.Table.from_pylist([dict(r) for r in rows])
    finally:
        engine.dispose()
    return out
