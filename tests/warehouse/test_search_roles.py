"""The desk's search on a migrated PostgreSQL warehouse (issue #14): the pipeline's writer role
refills the index without creating anything, and golden.search_citizens never lets the desk widen
the silo mask beyond the session's grants."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from schemas.contract import CITIZEN, CITIZEN_LINK, PERSON_RECORD, arrow_schema
from schemas.register import load_register
from tests.conftest import PG_HOST, PG_PORT, _pg_connect
from warehouse import roles as security
from warehouse.engine import Warehouse
from warehouse.search import SEARCH_FUNCTION_SIGNATURE, Scope, build_index, search

pytestmark = pytest.mark.slow

REGISTER = load_register()
NOW = datetime(2026, 6, 1, tzinfo=UTC)
EVERYTHING = Scope(fields=frozenset({"given_names", "birth_name", "usage_name", "birth_date", "email", "phone",
                                     "postcode", "city"}))
# the commune's billing service is granted the finance silo only (tests/warehouse/test_roles_rls.py)
COLLECTIVITE, SERVICE = "commune", "facturation"
# three Le Goffs: one known to finance, one to the family portal, one to both
PEOPLE = {"C-FIN": ["finance"], "C-FAM": ["family"], "C-BOTH": ["finance", "family"]}


@dataclass
class Migrated:
    url: str
    roles: security.Roles
    logins: dict[str, str]

    def login(self, kind: str) -> Warehouse:
        return Warehouse(f"postgresql://{self.logins[kind]}@{PG_HOST}:{PG_PORT}/{self.url.rsplit('/', 1)[1]}")


def _release(wh: Warehouse) -> None:
    """The published release of three citizens, written by the superuser as a resolution would."""
    records, links, citizens = [], [], []
    for n, (cid, systems) in enumerate(PEOPLE.items()):
        for system in systems:
            key = f"{system}:{cid}"
            records.append({c: None for c in PERSON_RECORD.column_names} | {
                "record_key": key, "source_system": system, "source_id": cid, "role": "personne",
                "given_names": "Anne", "usage_name": "LE GOFF", "birth_date": date(1980, 1, n + 1),
                "certification_level": 0, "updated_at": NOW})
            links.append({"record_key": key, "citizen_id": cid, "match_probability": 1.0,
                          "model_version": "test-model-1", "run_id": "res-1"})
        citizens.append({c: None for c in CITIZEN.column_names} | {
            "citizen_id": cid, "given_names": "Anne", "usage_name": "LE GOFF", "birth_date": date(1980, 1, n + 1),
            "record_count": len(systems), "source_systems": ",".join(sorted(systems)), "updated_at": NOW})
    wh.write(PERSON_RECORD, pa.Table.from_pylist(records, schema=arrow_schema(PERSON_RECORD)))
    wh.write(CITIZEN_LINK, pa.Table.from_pylist(links, schema=arrow_schema(CITIZEN_LINK)))
    wh.write(CITIZEN, pa.Table.from_pylist(citizens, schema=arrow_schema(CITIZEN)))


@pytest.fixture(scope="module")
def migrated() -> Iterator[Migrated]:
    """A fresh database upgraded by the migrations (roles of a prefix of its own), a release written
    by the superuser, the index built by the writer role."""
    from warehouse.migrate import upgrade

    tag = uuid.uuid4().hex[:8]
    name, roles = f"hub_test_search_roles_{tag}", security.Roles(f"s{tag}")
    logins = {k: f"s{tag}_login_{k}" for k in security.APPLICATION_KINDS}
    with _pg_connect() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    try:
        upgrade(url, roles=roles, register=REGISTER)
        with Warehouse(url) as wh:
            for kind, login in logins.items():
                wh.execute(f"CREATE ROLE {login} LOGIN IN ROLE {roles.name(kind)}")
            _release(wh)
        yield Migrated(url, roles, logins)
    finally:
        with _pg_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in [*logins.values(), *(roles.name(k) for k in security.ROLE_KINDS)]:
                admin.execute(f"DROP ROLE IF EXISTS {role}")


def _ddl_events(wh: Warehouse) -> tuple[str, str]:
    """(the search function's definition, its index definitions): what a build must leave as it was."""
    fn = wh.scalar(f"SELECT pg_get_functiondef(to_regprocedure('{SEARCH_FUNCTION_SIGNATURE}'))")
    indexes = wh.rows("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'golden' "
                      "AND tablename LIKE 'citizen_search%' ORDER BY 1")
    return fn, repr(indexes)


def test_the_writer_refills_the_index_and_creates_nothing(migrated: Migrated) -> None:
    with Warehouse(migrated.url) as wh:
        before = _ddl_events(wh)
        oid = wh.scalar(f"SELECT to_regprocedure('{SEARCH_FUNCTION_SIGNATURE}')::oid")
    assert before[0] and "citizen_search_variant_key" in before[1]
    with migrated.login("writer") as writer:
        # the writer may not create in golden: any DDL at run time would fail here
        assert not writer.scalar("SELECT has_schema_privilege('golden', 'CREATE')")
        assert build_index(writer) == len(PEOPLE)
        assert build_index(writer) == len(PEOPLE)  # twice: a refill, not an append
        assert writer.scalar('SELECT count(*) FROM "golden"."citizen_search"') == len(PEOPLE)
    with Warehouse(migrated.url) as wh:
        assert _ddl_events(wh) == before
        assert wh.scalar(f"SELECT to_regprocedure('{SEARCH_FUNCTION_SIGNATURE}')::oid") == oid  # not replaced
        owner = wh.scalar("SELECT pg_get_userbyid(c.relowner) FROM pg_class c "
                          "WHERE c.oid = 'golden.citizen_search_variant'::regclass")
    assert owner == migrated.roles.owner


def test_the_desk_cannot_widen_the_silo_mask(migrated: Migrated) -> None:
    with migrated.login("writer") as writer:
        build_index(writer)
    with migrated.login("desk") as desk:
        with security.session_context(desk, collectivite=COLLECTIVITE, service=SERVICE):
            # the desk passes no mask at all (every silo) or the family silo it is not granted
            widened = {h.citizen_id for h in search(desk, "le goff anne", scope=EVERYTHING).hits}
            family = {h.citizen_id for h in search(desk, "le goff anne", scope=Scope(
                fields=EVERYTHING.fields, source_systems=frozenset({"family"}))).hits}
            finance = {h.citizen_id for h in search(desk, "le goff anne", scope=Scope(
                fields=EVERYTHING.fields, source_systems=frozenset({"finance"}))).hits}
        # no session context: no grants, nobody
        nobody = {h.citizen_id for h in search(desk, "le goff anne", scope=EVERYTHING).hits}
        with security.session_context(desk, collectivite="commune", service="accueil-usager"):
            guichet = {h.citizen_id for h in search(desk, "le goff anne", scope=EVERYTHING).hits}
    assert widened == finance == {"C-FIN", "C-BOTH"}
    assert family == set() and nobody == set()
    assert guichet == set(PEOPLE)  # the guichet unique is granted every silo
