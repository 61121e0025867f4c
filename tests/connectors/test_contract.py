"""The contract every connector keeps, checked the same way for each, against its real source.

Per connector (ids: the connector names) and per warehouse engine, on a small sandbox:

(a) keys: every raw table dlt created carries the primary key the connector declares, and the
    destination holds no two rows with the same key;
(b) write disposition: merge, on every raw table;
(c) incremental: a second run with no change loads 0 rows; a changed record is updated in place;
    a deleted one is marked deleted (where the source system has deletions);
(d) schema contract: a field the source starts sending unannounced never becomes a dlt variant
    column; it is ignored, rejected with an error naming it, or (SQL source, reflected each run)
    added under its own name — what each connector documents;
(e) no secrets: the token / password / client secret never appears in a log record (DEBUG) or in
    a file under pipelines_dir.

A case whose system has no deletions, or no secret, says why in its parametrisation.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
import pytest
import sqlalchemy as sa

from connectors import files
from connectors.base import ExtractResult, SourceError
from connectors.registry import SYSTEMS
from connectors.runner import run_source
from sandbox import DEFAULT_TOKEN, Sandbox, build_sandbox
from sandbox.demarches import DEFAULT_TOKEN as DEMARCHES_TOKEN
from sandbox.finance_db import read_finance, write_finance
from warehouse.engine import Warehouse

FAST = {"backoff_factor": 0.01, "max_retry_delay": 1.0, "max_attempts": 2, "timeout": 10.0}
NEW_FIELD = "champ_inattendu"
NEW_NAME = "Nouveau-Nom"
FINANCE_PASSWORD = "Fin4nce-Pa55word-never-logged"  # trust auth: accepted, never checked, must never leak


# ---------------------------------------------------------------------------- what a case provides
@dataclass
class Change:
    """A record changed at the source: after the next run raw.<table> row <key> has <column> = <value>."""

    table: str
    key_column: str
    key: Any
    column: str
    value: Any


@dataclass
class Deletion:
    """A record deleted at the source; ``marked`` is SQL counting the raw rows that say so (1 expected)."""

    marked: str
    params: dict[str, Any]


@dataclass
class Source:
    """A running source of one system: how to load it, change it, delete from it, drift its schema."""

    system: str  # dlt pipeline hub_<system>, dataset raw_<system>
    load: Callable[[Any, Path], ExtractResult]
    change: Callable[[], Change]
    delete: Callable[[], Deletion] | None
    new_field: Callable[[], Change]  # sends NEW_FIELD; the Change is the edit made alongside it
    secrets: Callable[[], list[str]] = list
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    name: str
    keys: dict[str, tuple[str, ...]]  # raw table -> primary key the connector declares
    open: Callable[[Sandbox, Path, pytest.FixtureRequest], AbstractContextManager[Source]]
    # documented behaviour on an unannounced field: "ignored" | "error" | "added"
    on_new_field: str
    no_deletions: str | None = None  # why (c)'s deletion step does not apply
    no_secrets: str | None = None  # why (e) has no secret to look for


# ---------------------------------------------------------------------------- finance (SQL database)
@contextmanager
def _finance(sb: Sandbox, tmp: Path, request: pytest.FixtureRequest) -> Iterator[Source]:
    # The source lives in PostgreSQL, reached with a password in its URL (trust auth ignores it):
    # the URL is the secret that must never leak.
    pg = sa.make_url(request.getfixturevalue("postgres_url"))
    url = pg.set(drivername="postgresql+psycopg", password=FINANCE_PASSWORD).render_as_string(hide_password=False)
    write_finance(url, read_finance(sb.finance_url))
    engine = sa.create_engine(url)
    with engine.connect() as con:
        ids = [r[0] for r in con.execute(sa.text("SELECT id FROM tiers WHERE NOT supprime ORDER BY id LIMIT 3"))]
        top = con.execute(sa.text("SELECT max(updated_at) FROM tiers")).scalar_one()
    later = iter(top + dt.timedelta(hours=h) for h in range(1, 100))

    def update(sql: str, **params: Any) -> None:
        with engine.begin() as con:
            con.execute(sa.text(sql), {"at": next(later), **params})

    def change() -> Change:
        update("UPDATE tiers SET nom = :v, updated_at = :at WHERE id = :i", v=NEW_NAME, i=ids[0])
        return Change("tiers", "id", ids[0], "nom", NEW_NAME)

    def delete() -> Deletion:
        update("UPDATE tiers SET supprime = true, updated_at = :at WHERE id = :i", i=ids[1])
        return Deletion("SELECT count(*) FROM raw_finance.tiers WHERE id = :i AND supprime", {"i": ids[1]})

    def new_field() -> Change:
        with engine.begin() as con:
            con.execute(sa.text(f"ALTER TABLE tiers ADD COLUMN {NEW_FIELD} VARCHAR(20)"))
        update(f"UPDATE tiers SET {NEW_FIELD} = 'x', nom = :v, updated_at = :at WHERE id = :i", v="Autre", i=ids[2])
        return Change("tiers", "id", ids[2], "nom", "Autre")

    try:
        yield Source("finance", lambda d, p: run_source(SYSTEMS["finance"], d, "contract", pipelines_dir=p,
                                                        source_url=url),
                     change, delete, new_field, lambda: [FINANCE_PASSWORD, url])
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------- family portal (REST)
@contextmanager
def _family(sb: Sandbox, tmp: Path, request: pytest.FixtureRequest) -> Iterator[Source]:
    with sb.family_portal() as portal:
        ids = [r["id"] for r in portal.records("responsables") if not r.get("deleted")][:3]

        def change() -> Change:
            portal.touch("responsables", ids[0], nom=NEW_NAME)
            return Change("responsables", "id", ids[0], "nom", NEW_NAME)

        def delete() -> Deletion:
            portal.delete("responsables", ids[1])
            return Deletion("SELECT count(*) FROM raw_family.responsables WHERE id = :i AND deleted", {"i": ids[1]})

        def new_field() -> Change:
            portal.touch("responsables", ids[2], nom="Autre", **{NEW_FIELD: "x"})
            return Change("responsables", "id", ids[2], "nom", "Autre")

        def load(d: Any, p: Path) -> ExtractResult:
            return run_source(SYSTEMS["family"], d, "contract", pipelines_dir=p, base_url=portal.url,
                              token=DEFAULT_TOKEN, **FAST)

        yield Source("family", load, change, delete, new_field, lambda: [DEFAULT_TOKEN])


# ---------------------------------------------------------------------------- associations (CSV drop)
def _rewrite_csv(path: Path, encoding: str, edit: Callable[[list[str], list[list[str]]], None]) -> None:
    text = path.read_bytes().decode(encoding)
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    header, body = rows[0], [r for r in rows[1:] if r]
    edit(header, body)
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows([header, *body])
    path.write_bytes(out.getvalue().encode(encoding))


@contextmanager
def _associations(sb: Sandbox, tmp: Path, request: pytest.FixtureRequest) -> Iterator[Source]:
    path = sb.associations_dir / "dirigeants.csv"
    first: dict[str, str] = {}

    def set_name(row: int, value: str, add_column: bool = False) -> Callable[[list[str], list[list[str]]], None]:
        def edit(header: list[str], body: list[list[str]]) -> None:
            body[row][header.index("nom")] = value
            first.setdefault("id", body[0][header.index("id")])
            first[str(row)] = body[row][header.index("id")]
            if add_column:
                header.append(NEW_FIELD)
                for r in body:
                    r.append("x")
        return edit

    def change() -> Change:
        _rewrite_csv(path, "cp1252", set_name(0, NEW_NAME))
        return Change("dirigeants", "id", int(first["0"]), "nom", NEW_NAME)

    def new_field() -> Change:
        _rewrite_csv(path, "cp1252", set_name(2, "Autre", add_column=True))
        return Change("dirigeants", "id", int(first["2"]), "nom", "Autre")

    yield Source("associations", lambda d, p: run_source(SYSTEMS["associations"], d, "contract", pipelines_dir=p,
                                                         drop_dir=sb.associations_dir),
                 change, None, new_field)


# ---------------------------------------------------------------------------- Salesforce (REST + OAuth)
@contextmanager
def _salesforce(sb: Sandbox, tmp: Path, request: pytest.FixtureRequest) -> Iterator[Source]:
    with sb.salesforce(batch_size=200) as org:
        ids = [r["Id"] for r in org.records("Contact") if not r["IsDeleted"]][:3]

        def change() -> Change:
            org.touch("Contact", ids[0], LastName=NEW_NAME)
            return Change("contacts", "id", ids[0], "last_name", NEW_NAME)

        def delete() -> Deletion:
            org.delete("Contact", ids[1])
            return Deletion("SELECT count(*) FROM raw_salesforce.contacts WHERE id = :i AND is_deleted", {"i": ids[1]})

        def new_field() -> Change:
            org.touch("Contact", ids[2], LastName="Autre", **{"Champ_Inattendu__c": "x"})
            return Change("contacts", "id", ids[2], "last_name", "Autre")

        def load(d: Any, p: Path) -> ExtractResult:
            return run_source(SYSTEMS["salesforce"], d, "contract", pipelines_dir=p, login_url=org.url,
                              client_id=org.client_id, client_secret=org.client_secret, **FAST)

        # the access tokens the org handed out are secrets too
        yield Source("salesforce", load, change, delete, new_field,
                     lambda: [org.client_secret, *org._tokens])


# ---------------------------------------------------------------------------- ServiceNow (Table API)
@contextmanager
def _servicenow(sb: Sandbox, tmp: Path, request: pytest.FixtureRequest) -> Iterator[Source]:
    with sb.servicenow() as desk:
        ids = [r["sys_id"] for r in desk.records("sys_user")][:3]

        def change() -> Change:
            desk.touch("sys_user", ids[0], last_name=NEW_NAME)
            return Change("sys_user", "sys_id", ids[0], "last_name", NEW_NAME)

        def delete() -> Deletion:
            desk.delete("sys_user", ids[1])
            # the Table API never lists deleted rows: the deletion arrives through sys_audit_delete
            return Deletion("SELECT count(*) FROM raw_servicenow.sys_audit_delete "
                            "WHERE documentkey = :i AND tablename = 'sys_user'", {"i": ids[1]})

        def new_field() -> Change:
            desk.touch("sys_user", ids[2], last_name="Autre", **{"u_" + NEW_FIELD: "x"})
            return Change("sys_user", "sys_id", ids[2], "last_name", "Autre")

        def load(d: Any, p: Path) -> ExtractResult:
            return run_source(SYSTEMS["servicenow"], d, "contract", pipelines_dir=p, instance_url=desk.url,
                              username=desk.username, password=desk.password, **FAST)

        yield Source("servicenow", load, change, delete, new_field, lambda: [desk.password])


# ---------------------------------------------------------------------------- Démarches simplifiées (GraphQL)
@contextmanager
def _demarches(sb: Sandbox, tmp: Path, request: pytest.FixtureRequest) -> Iterator[Source]:
    with sb.demarches() as ds:
        numbers = [d["number"] for n in ds.demarche_numbers for d in ds.dossiers(n)][:3]

        def change() -> Change:
            ds.touch(numbers[0], motivation=NEW_NAME)
            return Change("dossiers", "number", numbers[0], "motivation", NEW_NAME)

        def delete() -> Deletion:
            ds.delete(numbers[1])
            return Deletion("SELECT count(*) FROM raw_demarches.deleted_dossiers WHERE number = :i",
                            {"i": numbers[1]})

        def new_field() -> Change:
            ds.touch(numbers[2], motivation="Autre", champInattendu="x")
            return Change("dossiers", "number", numbers[2], "motivation", "Autre")

        def load(d: Any, p: Path) -> ExtractResult:
            return run_source(SYSTEMS["demarches"], d, "contract", pipelines_dir=p, base_url=ds.url,
                              token=DEMARCHES_TOKEN, demarches=ds.demarche_numbers, **FAST)

        yield Source("demarches", load, change, delete, new_field, lambda: [DEMARCHES_TOKEN])


# ---------------------------------------------------------------------------- files (mapping file)
MAPPING = """
system = "depot"

[entities.usagers]
files = "usagers_*.csv"
encoding = "cp1252"
delimiter = ";"
date_formats = ["dd/mm/yyyy"]
key = ["id"]
on_new_column = "error"

[entities.usagers.columns]
id = "text"
nom = "text"
prenom = "text"
"date de naissance" = "date"
commune = "text"

[[entities.usagers.feeds]]
table = "person_record"
role = { const = "usager" }
usage_name = "nom"
given_names = "prenom"
birth_date = "date de naissance"
city = "commune"
"""


@contextmanager
def _files(sb: Sandbox, tmp: Path, request: pytest.FixtureRequest) -> Iterator[Source]:
    drop = tmp / "drop"
    drop.mkdir()
    mapping = tmp / "depot.toml"
    mapping.write_text(MAPPING, encoding="utf-8")
    path = drop / "usagers_2026.csv"
    lines = ["id;nom;prenom;date de naissance;commune"]
    lines += [f"U{i:04d};NOM{i};Prénom{i};{1 + i % 28:02d}/{1 + i % 12:02d}/19{50 + i % 50};Lyon" for i in range(40)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))

    def change() -> Change:
        _rewrite_csv(path, "cp1252", lambda h, b: b[0].__setitem__(1, NEW_NAME))
        return Change("usagers", "id", "U0000", "nom", NEW_NAME)

    def new_field() -> Change:
        def edit(header: list[str], body: list[list[str]]) -> None:
            body[2][1] = "Autre"
            header.append(NEW_FIELD)
            for r in body:
                r.append("x")

        _rewrite_csv(path, "cp1252", edit)
        return Change("usagers", "id", "U0002", "nom", "Autre")

    yield Source("depot", lambda d, p: run_source(files, d, "contract", pipelines_dir=p, mapping=mapping,
                                                  drop_dir=drop),
                 change, None, new_field)


CASES = [
    Case("finance", {t: ("id",) for t in ("tiers", "factures", "paiements")}, _finance, on_new_field="added"),
    Case("family", {t: ("id",) for t in ("familles", "responsables", "enfants", "inscriptions", "factures")},
         _family, on_new_field="ignored"),
    Case("associations", {"associations": ("rna",), "dirigeants": ("id",), "demandes_subvention": ("numero",)},
         _associations, on_new_field="ignored",
         no_deletions="full exports: a record absent from the next export is not a deletion the office tool states",
         no_secrets="a local drop folder: no credential is involved"),
    Case("salesforce", {t: ("id",) for t in ("accounts", "contacts", "cases")}, _salesforce, on_new_field="ignored"),
    Case("servicenow", {t: ("sys_id",) for t in ("sys_user", "incident", "sys_audit_delete")}, _servicenow,
         on_new_field="ignored"),
    Case("demarches", {t: ("number",) for t in ("demarches", "dossiers", "deleted_dossiers")}, _demarches,
         on_new_field="ignored"),
    Case("files", {"usagers": ("id",)}, _files, on_new_field="error",
         no_deletions="a file drop carries rows, never deletions: a row missing from a new file is not deleted",
         no_secrets="a local drop folder: no credential is involved"),
]


# ---------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def built_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return build_sandbox(tmp_path_factory.mktemp("contract") / "sb", people=200, seed=11)


@pytest.fixture
def sandbox_copy(built_sandbox: Sandbox, tmp_path: Path) -> Sandbox:
    """A private copy: the tests edit the finance database and the drop files."""
    root = tmp_path / "sb"
    shutil.copytree(built_sandbox.root, root)
    return Sandbox(root=root, people=built_sandbox.people, seed=built_sandbox.seed,
                   finance_url=f"sqlite:///{root / 'finance.sqlite'}", family_dir=root / "family",
                   associations_dir=root / "associations", truth_path=root / "truth.parquet")


def _loaded(result: ExtractResult) -> int:
    return sum(c.rows_loaded for c in result.counts)


def _row_count(wh: Warehouse, system: str, table: str) -> int:
    return wh.scalar(f"SELECT count(*) FROM raw_{system}.{table}")


def _value(wh: Warehouse, system: str, ch: Change) -> list[Any]:
    rows = wh.rows(f"SELECT {ch.column} FROM raw_{system}.{ch.table} WHERE {ch.key_column} = :k", {"k": ch.key})
    return [r[0] for r in rows]


def _columns(wh: Warehouse, system: str, table: str) -> list[str]:
    return wh.arrow(f"SELECT * FROM raw_{system}.{table} WHERE 1 = 0").column_names


def _schema_tables(system: str, pdir: Path) -> dict[str, Any]:
    pipeline = dlt.attach(pipeline_name=f"hub_{system}", pipelines_dir=str(pdir))
    schema = pipeline.default_schema
    return {t: schema.tables[t] for t in schema.data_table_names()}


def _variant_columns(tables: dict[str, Any]) -> list[str]:
    return [f"{t}.{c}" for t, table in tables.items() for c in table["columns"] if "__v_" in c]


def _check_keys_and_merge(wh: Warehouse, case: Case, system: str, pdir: Path, merge: bool = True) -> dict[str, Any]:
    """Every raw table in dlt's schema has the declared primary key (and, with ``merge``, the merge
    disposition), and the destination holds no duplicate key. Returns the tables checked."""
    tables = _schema_tables(system, pdir)
    assert tables and set(tables) <= set(case.keys), f"undeclared raw tables: {set(tables) - set(case.keys)}"
    for name, table in tables.items():
        pk = tuple(c for c, col in table["columns"].items() if col.get("primary_key"))
        assert pk == case.keys[name], name
        if merge:
            assert table.get("write_disposition") == "merge", name
        key_sql = ", ".join(pk)
        dupes = wh.scalar(f"SELECT count(*) FROM (SELECT {key_sql} FROM raw_{system}.{name} "
                          f"GROUP BY {key_sql} HAVING count(*) > 1) d")
        assert dupes == 0, name
    return tables


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_connector_contract(case: Case, warehouse_url: str, sandbox_copy: Sandbox, tmp_path: Path,
                            request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pdir = tmp_path / "pipelines"
    with Warehouse(warehouse_url) as wh, case.open(sandbox_copy, tmp_path, request) as src:
        dest = wh.dlt_destination()
        first = src.load(dest, pdir)
        assert _loaded(first) > 0

        # (a) keys on what the first run created; (b) is checked once the tables hold rows: the
        # files connector appends a first load into an empty table (its keys are unique in a run)
        tables = _check_keys_and_merge(wh, case, src.system, pdir, merge=False)
        before = {t: _row_count(wh, src.system, t) for t in tables}

        # (c) incremental: nothing changed, nothing loaded
        assert _loaded(src.load(dest, pdir)) == 0
        assert {t: _row_count(wh, src.system, t) for t in tables} == before

        # (c) a change updates in place; a deletion is marked
        ch = src.change()
        gone = src.delete() if src.delete is not None else None
        assert (gone is None) == (case.no_deletions is not None)
        third = src.load(dest, pdir)
        assert _loaded(third) >= 1 + (gone is not None)
        assert _value(wh, src.system, ch) == [ch.value]
        assert _row_count(wh, src.system, ch.table) == before[ch.table]
        if gone is not None:
            assert wh.scalar(gone.marked, gone.params) == 1
        # (a) and (b) again: now every raw table exists (deletion logs included)
        assert set(_check_keys_and_merge(wh, case, src.system, pdir)) == set(case.keys)

        # (d) an unannounced field: never a variant column; ignored, an error naming it, or added
        drift = src.new_field()
        if case.on_new_field == "error":
            with pytest.raises(SourceError) as err:
                src.load(dest, pdir)
            assert NEW_FIELD in str(err.value)
            assert _value(wh, src.system, drift) != [drift.value]  # the run loaded nothing
        else:
            src.load(dest, pdir)
            assert _value(wh, src.system, drift) == [drift.value]
            added = [c for c in _columns(wh, src.system, drift.table) if NEW_FIELD in c.lower()]
            assert added == ([NEW_FIELD] if case.on_new_field == "added" else [])
        assert _variant_columns(_schema_tables(src.system, pdir)) == []

        # (e) no secret in any log record nor in dlt's working files
        secrets = [s for s in src.secrets() if s]
        assert bool(secrets) == (case.no_secrets is None)
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records  # the runs did log: the check below is not vacuous
    for secret in secrets:
        assert secret not in logged
        for path in pdir.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path.relative_to(pdir)
