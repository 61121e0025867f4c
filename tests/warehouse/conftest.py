"""Shared cases for the warehouse tests: small raw silos made with SQL, their staging SELECTs, a family.

The connectors and matching parts are written in parallel, so these tests bring their own raw
tables and staging models (the shape connectors will produce) and hand-made golden links.

The family: Marie Dupont (née Lefèvre) and Jean Dupont, parents of Léa and Hugo. Finance knows the
two parents as debtors in one debtor group; the family portal knows all four in one household;
the associations silo knows Marie as présidente of an association.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from schemas.contract import CITIZEN, CITIZEN_LINK, Table, arrow_schema
from warehouse.engine import Warehouse
from warehouse.quality import QualityGate

TODAY = date(2026, 6, 1)

_PORTABLE = {"text": "TEXT", "json": "TEXT", "int": "INTEGER", "bigint": "BIGINT", "date": "DATE",
             "timestamptz": "TIMESTAMPTZ", "money": "DECIMAL(14,2)", "bool": "BOOLEAN"}


def select(table: Table, source: str, **exprs: str) -> str:
    """A staging SELECT producing every contract column: given expressions, typed NULL elsewhere."""
    unknown = set(exprs) - set(table.column_names)
    assert not unknown, unknown
    cols = [f"{exprs.get(c.name) or f'CAST(NULL AS {_PORTABLE[c.type]})'} AS {c.name}" for c in table.columns]
    return f"SELECT {', '.join(cols)} FROM {source}"


RAW_SQL = [
    "CREATE SCHEMA raw_finance",
    "CREATE TABLE raw_finance.tiers (id TEXT, nom TEXT, prenom TEXT, ne_le DATE, courriel TEXT, tel TEXT, "
    "adresse TEXT, cp TEXT, ville TEXT, groupe TEXT, rang TEXT)",
    "INSERT INTO raw_finance.tiers VALUES "
    "('T1', 'DUPONT', 'Marie', '1982-04-12', 'marie.dupont@example.fr', '+33612345678', '3 rue des Lilas', "
    "'69003', 'Lyon', 'G1', 'responsable'), "
    "('T2', 'DUPONT', 'Jean', '1980-09-30', NULL, NULL, '3 rue des Lilas', '69003', 'Lyon', 'G1', 'conjoint')",
    "CREATE TABLE raw_finance.factures (num TEXT, tiers TEXT, objet TEXT, emise TIMESTAMPTZ, echeance TIMESTAMPTZ, "
    "payee TIMESTAMPTZ, montant DECIMAL(14,2))",
    "INSERT INTO raw_finance.factures VALUES "
    "('F100', 'T1', 'Cantine mars', '2024-03-01 08:00:00+00', '2024-03-31 00:00:00+00', NULL, 45.50), "
    "('F101', 'T2', 'Eau 2023', '2024-01-15 08:00:00+00', '2024-02-15 00:00:00+00', '2024-02-01 10:00:00+00', "
    "120.00)",
    "CREATE SCHEMA raw_family",
    "CREATE TABLE raw_family.members (id TEXT, famille TEXT, lien TEXT, nom TEXT, nom_naissance TEXT, "
    "prenoms TEXT, sexe TEXT, naissance DATE, mail TEXT)",
    "INSERT INTO raw_family.members VALUES "
    "('P1', 'FAM1', 'responsable', 'Dupont', 'Lefèvre', 'Marie Élodie', 'F', '1982-04-12', "
    "'Marie.Dupont@Example.fr'), "
    "('P2', 'FAM1', 'conjoint', 'Dupont', NULL, 'Jean', 'M', '1980-09-30', NULL), "
    "('E1', 'FAM1', 'enfant', 'Dupont', NULL, 'Léa', 'F', '2012-05-03', NULL), "
    "('E2', 'FAM1', 'enfant', 'Dupont', NULL, 'Hugo', 'M', '2015-11-20', NULL)",
    "CREATE TABLE raw_family.dossiers (id TEXT, membre TEXT, nature TEXT, service TEXT, libelle TEXT, "
    "ouvert TIMESTAMPTZ, echeance TIMESTAMPTZ)",
    "INSERT INTO raw_family.dossiers VALUES "
    "('D1', 'E1', 'inscription', 'cantine', 'Cantine 2023-2024', '2023-09-01 07:30:00+00', NULL), "
    "('D2', 'E2', 'inscription', 'periscolaire', 'Garderie 2023-2024', '2023-09-04 07:30:00+00', NULL), "
    "('D3', 'P1', 'demande', 'etat civil', 'Attestation', '2024-02-10 09:00:00+00', '2024-04-10 09:00:00+00')",
    "CREATE SCHEMA raw_assoc",
    "CREATE TABLE raw_assoc.associations (id TEXT, nom TEXT, rna TEXT, cp TEXT, ville TEXT)",
    "INSERT INTO raw_assoc.associations VALUES ('A1', 'Les Amis du Parc', 'W691234567', '69003', 'Lyon')",
    "CREATE TABLE raw_assoc.dirigeants (id TEXT, asso TEXT, fonction TEXT, nom TEXT, prenom TEXT, "
    "naissance DATE, mail TEXT)",
    "INSERT INTO raw_assoc.dirigeants VALUES "
    "('R1', 'A1', 'presidente', 'Dupont', 'Marie', '1982-04-12', 'marie.dupont@example.fr')",
    "CREATE TABLE raw_assoc.subventions (id TEXT, dirigeant TEXT, objet TEXT, deposee TIMESTAMPTZ, "
    "montant DECIMAL(14,2))",
    "INSERT INTO raw_assoc.subventions VALUES ('S1', 'R1', 'Fête du parc', '2024-04-01 12:00:00+00', 1500.00)",
]


def family_models() -> dict[str, list[tuple[str, str]]]:
    """Staging models for the three silos, as connectors would declare them."""
    from schemas.contract import (
        HOUSEHOLD_MEMBERSHIP,
        INTERACTION,
        ORGANISATION,
        ORGANISATION_ROLE,
        PERSON_RECORD,
    )

    return {
        "person_record": [
            ("stg_finance__tiers", select(
                PERSON_RECORD, "raw_finance.tiers",
                record_key="'finance:' || id", source_system="'finance'", source_id="id", role="'debiteur'",
                given_names="prenom", usage_name="nom", birth_date="ne_le", birth_date_precision="'day'",
                email="courriel", phone="tel", address_line="adresse", postcode="cp", city="ville",
                country="'FR'", certification_level="0")),
            ("stg_family__members", select(
                PERSON_RECORD, "raw_family.members",
                record_key="'family:' || id", source_system="'family'", source_id="id",
                role="CASE WHEN lien = 'enfant' THEN 'enfant' ELSE 'parent' END",
                given_names="prenoms", birth_name="nom_naissance", usage_name="nom", sex="sexe",
                birth_date="naissance", birth_date_precision="'day'", email="mail", country="'FR'",
                certification_level="1")),
            ("stg_assoc__dirigeants", select(
                PERSON_RECORD, "raw_assoc.dirigeants",
                record_key="'assoc:' || id", source_system="'assoc'", source_id="id", role="'dirigeant'",
                given_names="prenom", usage_name="nom", birth_date="naissance", birth_date_precision="'day'",
                email="mail", certification_level="0")),
        ],
        "household_membership": [
            ("stg_finance__groupes", select(
                HOUSEHOLD_MEMBERSHIP, "raw_finance.tiers",
                source_system="'finance'", household_id="'finance:' || groupe", record_key="'finance:' || id",
                role="rang")),
            ("stg_family__foyers", select(
                HOUSEHOLD_MEMBERSHIP, "raw_family.members",
                source_system="'family'", household_id="'family:' || famille", record_key="'family:' || id",
                role="lien")),
        ],
        "interaction": [
            ("stg_finance__factures", select(
                INTERACTION, "raw_finance.factures",
                interaction_key="'finance:' || num", source_system="'finance'", source_id="num",
                record_key="'finance:' || tiers", kind="'facture'", service="'regie'", title="objet",
                status="CASE WHEN payee IS NULL THEN 'emise' ELSE 'payee' END", opened_at="emise",
                closed_at="payee", due_at="echeance", amount="montant", currency="'EUR'")),
            ("stg_family__dossiers", select(
                INTERACTION, "raw_family.dossiers",
                interaction_key="'family:' || id", source_system="'family'", source_id="id",
                record_key="'family:' || membre", kind="nature", service="service", title="libelle",
                status="'ouvert'", opened_at="ouvert", due_at="echeance", channel="'web'")),
            ("stg_assoc__subventions", select(
                INTERACTION, "raw_assoc.subventions",
                interaction_key="'assoc:' || id", source_system="'assoc'", source_id="id",
                record_key="'assoc:' || dirigeant", kind="'subvention'", service="'vie associative'",
                title="objet", status="'deposee'", opened_at="deposee", amount="montant", currency="'EUR'")),
        ],
        "organisation": [
            ("stg_assoc__associations", select(
                ORGANISATION, "raw_assoc.associations",
                organisation_key="'assoc:' || id", source_system="'assoc'", source_id="id", name="nom",
                rna="rna", postcode="cp", city="ville")),
        ],
        "organisation_role": [
            ("stg_assoc__roles", select(
                ORGANISATION_ROLE, "raw_assoc.dirigeants",
                organisation_key="'assoc:' || asso", record_key="'assoc:' || id", role="fonction")),
        ],
    }


# citizen_id -> the records resolved into it (what the matching step would compute)
FAMILY_CITIZENS = {
    "C-MARIE": ["finance:T1", "family:P1", "assoc:R1"],
    "C-JEAN": ["finance:T2", "family:P2"],
    "C-LEA": ["family:E1"],
    "C-HUGO": ["family:E2"],
}
FAMILY_GOLDEN = {
    "C-MARIE": ("Marie Élodie", "Lefèvre", "Dupont", "F", date(1982, 4, 12), "marie.dupont@example.fr"),
    "C-JEAN": ("Jean", None, "Dupont", "M", date(1980, 9, 30), None),
    "C-LEA": ("Léa", None, "Dupont", "F", date(2012, 5, 3), None),
    "C-HUGO": ("Hugo", None, "Dupont", "M", date(2015, 11, 20), None),
}


def family_golden(run_id: str = "res-1") -> tuple[pa.Table, pa.Table]:
    """(links, citizens) for the family, in the contract's columns."""
    links = [
        {"record_key": r, "citizen_id": c, "match_probability": 0.99 if len(rs) > 1 else 1.0,
         "model_version": "test-model-1", "run_id": run_id}
        for c, rs in FAMILY_CITIZENS.items() for r in rs
    ]
    citizens = []
    for c, (given, birth, usage, sex, born, email) in FAMILY_GOLDEN.items():
        systems = sorted({r.split(":")[0] for r in FAMILY_CITIZENS[c]})
        citizens.append({
            "citizen_id": c, "given_names": given, "birth_name": birth, "usage_name": usage, "sex": sex,
            "birth_date": born, "email": email, "phone": None, "address_line": "3 rue des Lilas",
            "postcode": "69003", "city": "Lyon", "record_count": len(FAMILY_CITIZENS[c]),
            "source_systems": ",".join(systems), "updated_at": datetime(2026, 6, 1, tzinfo=UTC),
        })
    return (pa.Table.from_pylist(links, schema=arrow_schema(CITIZEN_LINK)),
            pa.Table.from_pylist(citizens, schema=arrow_schema(CITIZEN)))




@pytest.fixture(scope="session")
def gate() -> QualityGate:
    """One Great Expectations context for the whole session, as a pipeline builds one per run."""
    return QualityGate(TODAY)


@pytest.fixture
def wh(warehouse_url: str) -> Iterator[Warehouse]:
    with Warehouse(warehouse_url) as w:
        yield w


@pytest.fixture
def family_raw(wh: Warehouse) -> Warehouse:
    """The three silos' raw tables, loaded."""
    for sql in RAW_SQL:
        wh.execute(sql)
    return wh


@pytest.fixture
def family_hub(family_raw: Warehouse) -> Warehouse:
    """Raw silos mapped into core and the family's golden records published.

    The staging SELECTs are loaded straight into core (the gate is tested elsewhere and costs
    ~0.5 s per table), then the hand-made resolution is published.
    """
    from schemas.contract import CANONICAL_TABLES
    from tests.golden import publish_hand_made

    tables = {t.name: t for t in CANONICAL_TABLES}
    for name, entries in family_models().items():
        for i, (_, sql) in enumerate(entries):
            family_raw.write(tables[name], family_raw.arrow(sql), replace=i == 0)
    links, citizens = family_golden()
    publish_hand_made(family_raw, "res-1", links=links, citizens=citizens,
                       run_row={"model_version": "test-model-1", "records": links.num_rows, "pairs_scored": 12,
                                "citizens": citizens.num_rows, "threshold": 0.9})
    return family_raw


@pytest.fixture
def staging_select() -> Callable[..., str]:
    """The helper writing a staging SELECT over every contract column."""
    return select


@pytest.fixture
def models() -> dict[str, list[tuple[str, str]]]:
    """The three silos' staging models."""
    return family_models()


@pytest.fixture
def family_citizens() -> dict[str, list[str]]:
    """citizen_id -> record keys, as the matching step resolved the family."""
    return {c: list(rs) for c, rs in FAMILY_CITIZENS.items()}


@pytest.fixture
def golden_tables() -> Callable[..., tuple[pa.Table, pa.Table]]:
    return family_golden
