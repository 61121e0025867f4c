"""The production warehouse on PostgreSQL: a warehouse built by the previous release (``hub run`` on
the sandbox) is upgraded by the migrations without losing a row, then read under each role.

One database per module (the build takes a while); the group roles get a prefix of their own, so
this module never meets another test's (or a real warehouse's) roles on the shared cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest

from schemas.register import load_register
from tests.conftest import PG_HOST, PG_PORT, _pg_connect, _unavailable
from warehouse import roles as security
from warehouse.engine import Warehouse

pytestmark = pytest.mark.slow

REGISTER = load_register()
PERSONAL = security.personal_tables(REGISTER)
# The desk reader of the tests: the commune's billing service, granted the finance silo only
# (its prefill processing grants no rows); the CCAS has no such service.
COLLECTIVITE, SERVICE, GRANTED = "commune", "facturation", {"finance"}
OTHER_COLLECTIVITE = "ccas"
LAYERS = ("raw_", "staging", "core", "golden", "gdpr", "ops")


@dataclass
class Built:
    url: str
    roles: security.Roles
    logins: dict[str, str]  # role kind -> login role name
    before: dict[str, tuple[int, str]]
    after: dict[str, tuple[int, str]]
    offline_sql: str

    def login_url(self, kind: str) -> str:
        return f"postgresql://{self.logins[kind]}@{PG_HOST}:{PG_PORT}/{self.url.rsplit('/', 1)[1]}"


def snapshot(wh: Warehouse) -> dict[str, tuple[int, str]]:
    """Per table of the warehouse: row count and a hash of its rows' content, in a stable order."""
    tables = wh.rows("SELECT table_schema, table_name FROM information_schema.tables "
                     "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') "
                     "AND table_name <> 'alembic_version'")
    out = {}
    for schema, name in tables:
        q = f'"{schema}"."{name}"'
        row = wh.rows(f"SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM {q} t")
        out[f"{schema}.{name}"] = (int(row[0][0]), row[0][1])
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[Built]:
    from hub.demo import running_sandbox
    from hub.pipeline import run
    from warehouse import access_log
    from warehouse.migrate import upgrade

    try:
        admin = _pg_connect()
    except Exception as e:
        _unavailable(f"PostgreSQL on {PG_HOST}:{PG_PORT}", e)
    tag = uuid.uuid4().hex[:8]
    name, roles = f"hub_test_rls_{tag}", security.Roles(f"t{tag}")
    logins = {k: f"t{tag}_login_{k}" for k in security.APPLICATION_KINDS}
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    try:
        # the previous release: hub run as its owner (here the superuser), a few reads logged
        with running_sandbox(tmp_path_factory.mktemp("rls"), people=300, seed=5, warehouse_url=url,
                             with_demarches=True) as sr:
            assert run(sr.settings).failed == []
        with Warehouse(url) as wh:
            ids = [r[0] for r in wh.rows("SELECT citizen_id FROM golden.citizen ORDER BY 1 LIMIT 3")]
            access_log.append(wh, [access_log.Entry("agent1", c, "accueil et orientation des usagers") for c in ids])
            before = snapshot(wh)
        offline_sql = upgrade(url, sql=True, roles=roles, register=REGISTER)
        upgrade(url, roles=roles, register=REGISTER)
        with Warehouse(url) as wh:
            after = snapshot(wh)
            for kind, login in logins.items():
                wh.execute(f"CREATE ROLE {login} LOGIN IN ROLE {roles.name(kind)}")
        yield Built(url, roles, logins, before, after, offline_sql)
    finally:
        with _pg_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in [*logins.values(), *(roles.name(k) for k in security.ROLE_KINDS)]:
                admin.execute(f"DROP ROLE IF EXISTS {role}")


def head_revision() -> str:
    """The newest revision of the migrations folder."""
    from alembic.script import ScriptDirectory

    from warehouse.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config("postgresql://unused/none")).get_current_head()


def as_role(built: Built, kind: str) -> Warehouse:
    return Warehouse(built.login_url(kind))


# ----------------------------------------------------------------------------------------- migrations
def test_upgrade_keeps_every_row_of_every_table(built):
    assert built.before, "the previous release built no table"
    assert sum(n for n, _ in built.before.values()) > 1000
    changed = {t: (built.before[t], built.after.get(t)) for t in built.before if built.after.get(t) != built.before[t]}
    assert changed == {}
    # what the upgrade adds: the grants table, filled from the register
    assert built.after["ops.access_grant"][0] == len(security.access_grants(REGISTER)) > 0


def test_the_upgraded_schema_is_the_contract_s(built):
    """Alembic's autogenerate finds nothing to do: the migrations and the contract agree."""
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from warehouse.metadata import metadata
    from warehouse.migrate import _sqlalchemy_url, current

    md = metadata()
    schemas = {t.schema for t in md.tables.values()}
    engine = sa.create_engine(_sqlalchemy_url(built.url))
    with engine.connect() as con:
        ctx = MigrationContext.configure(con, opts={
            "include_schemas": True, "compare_type": True,
            "include_name": lambda n, type_, parent: type_ != "schema" or n in schemas})
        diff = compare_metadata(ctx, md)
    engine.dispose()
    # tables, columns, types, keys and indexes (policies, views and grants are the next tests')
    # (the search index's own PostgreSQL indexes are warehouse.search's, made with the index)
    diff = [d for d in diff if not (isinstance(d, tuple) and (
        str(d[0]).endswith("_entity")
        or (d[0] == "remove_index" and d[1].table.name.startswith("citizen_search"))))]
    assert diff == []
    assert current(built.url) == head_revision()


def test_offline_sql_holds_every_policy_for_a_dba(built):
    sql = built.offline_sql
    assert "CREATE TABLE" in sql and "alembic_version" in sql
    for table in PERSONAL:
        assert (f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY" in sql
                or f"ALTER TABLE {security._q(table)} FORCE ROW LEVEL SECURITY" in sql), table
        assert f"CREATE POLICY {table.replace('.', '_')}_writer_select on {table}" in sql, table
    assert "FOR ALL" not in sql.upper()
    assert f"TO {built.roles.desk} USING" in sql


def test_duckdb_gets_the_same_tables_from_the_same_definitions(built, tmp_path):
    from warehouse.metadata import metadata
    from warehouse.migrate import upgrade

    duck = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    assert "created golden.citizen" in upgrade(duck)
    assert upgrade(duck) == "up to date"
    with Warehouse(duck) as d, Warehouse(built.url) as p:
        for t in metadata().tables.values():
            assert d.columns_of(t.schema, t.name) == [c.name for c in t.columns], t.fullname
            assert set(p.columns_of(t.schema, t.name)) == {c.name for c in t.columns}, t.fullname


# ----------------------------------------------------------------------------------------- the roles
def test_application_roles_are_neither_owners_nor_bypassrls(built):
    with Warehouse(built.url) as wh:
        app = list(built.roles.application) + list(built.logins.values())
        bypass = wh.rows("SELECT rolname FROM pg_roles WHERE rolbypassrls AND rolname = ANY(:r)", {"r": app})
        owned_tables = wh.rows(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND pg_get_userbyid(c.relowner) = ANY(:r)", {"r": app})
        owned_schemas = wh.rows("SELECT nspname FROM pg_namespace WHERE pg_get_userbyid(nspowner) = ANY(:r)",
                                {"r": app})
        groups = wh.rows("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(:r)",
                         {"r": [built.roles.name(k) for k in security.ROLE_KINDS]})
        hub_owner = wh.scalar("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'golden.citizen'::regclass")
        # the loader owns the raw layer it creates and evolves, nothing else, and bypasses nothing
        loader = wh.rows(
            "SELECT DISTINCT n.nspname LIKE 'raw\\_%' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND pg_get_userbyid(c.relowner) = :r", {"r": built.roles.loader})
        loader_bypass = wh.scalar("SELECT rolbypassrls OR rolsuper FROM pg_roles WHERE rolname = :r",
                                  {"r": built.roles.loader})
    assert bypass == [] and owned_tables == [] and owned_schemas == []
    assert loader == [(True,)] and loader_bypass is False
    assert len(groups) == len(security.ROLE_KINDS) and not any(login for _, login in groups)
    assert hub_owner == built.roles.owner


def test_the_search_function_is_the_desk_s_alone(built):
    """golden.search_citizens (warehouse.search), where the run built it: EXECUTE for the desk, not for
    BI nor PUBLIC; the desk reads no row of the index tables themselves (see the per-table test).
    The index is built as the pipeline builds it, then the roles re-applied as an admin would."""
    from warehouse.search import build_index

    with Warehouse(built.url) as wh:
        assert build_index(wh) > 0
        security.apply(wh, REGISTER, built.roles)
        fns = [r[0] for r in wh.rows("SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n "
                                     "ON n.oid = p.pronamespace WHERE n.nspname = 'golden' "
                                     "AND p.proname = 'search_citizens'")]
        rights = {(fn, role): wh.scalar("SELECT has_function_privilege(:r, :f, 'EXECUTE')", {"r": role, "f": fn})
                  for fn in fns for role in (built.logins["desk"], built.logins["bi"], "public")}
        owners = {wh.scalar("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE oid = CAST(:f AS regprocedure)",
                            {"f": fn}) for fn in fns}
    assert fns and all(v == (role == built.logins["desk"]) for (_, role), v in rights.items()), rights
    assert owners <= {built.roles.owner}


def test_row_security_is_enabled_and_forced_on_every_personal_table(built):
    with Warehouse(built.url) as wh:
        flags = {f"{s}.{t}": (e, f) for s, t, e, f in wh.rows(
            "SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'")}
        commands = wh.rows("SELECT DISTINCT cmd FROM pg_policies")
    loaded = [t for t in PERSONAL if t in flags]
    assert len(loaded) >= len(PERSONAL) - 5, sorted(set(PERSONAL) - set(flags))  # silos the sandbox loads
    assert {t: flags[t] for t in loaded if flags[t] != (True, True)} == {}
    assert "ALL" not in {c for (c,) in commands}


# ----------------------------------------------------------------------------------------- the desk
def _silo_sql(table: str, cols: list[str]) -> str | None:
    """The test's own statement of which silo a row belongs to (None: a golden row, by its citizen)."""
    schema = table.split(".")[0]
    if schema.startswith("raw_"):
        return f"'{schema[4:]}'"
    if "source_system" in cols:
        return "source_system"
    if "record_key" in cols:
        return "split_part(record_key, ':', 1)"
    if "record_key_l" in cols:
        return "split_part(record_key_l, ':', 1)"
    return None


def _expected_visible(wh: Warehouse, table: str, cols: list[str]) -> tuple[int, int]:
    """(rows of the table, rows the desk of the finance silo should see), read as the superuser."""
    q = security._q(table)
    total = int(wh.scalar(f"SELECT count(*) FROM {q}"))
    finance_citizens = ("SELECT l.citizen_id FROM golden.citizen_link l "
                        "WHERE split_part(l.record_key, ':', 1) = 'finance'")
    silo = _silo_sql(table, cols)
    if table == "golden.household":
        where = ("household_id IN (SELECT household_id FROM golden.household_member "
                 f"WHERE citizen_id IN ({finance_citizens}))")
    elif table == "golden.citizen_alias":
        where = f"new_id IN ({finance_citizens})"
    elif table == "golden.review_queue":
        where = "split_part(record_key_l, ':', 1) = 'finance' AND split_part(record_key_r, ':', 1) = 'finance'"
    elif silo:
        where = f"{silo} = 'finance'"
    else:
        where = f"citizen_id IN ({finance_citizens})"
    return total, int(wh.scalar(f"SELECT count(*) FROM {q} WHERE {where}"))


@pytest.mark.parametrize("table", sorted(PERSONAL))
def test_a_desk_reader_sees_only_its_service_s_silos(built, table):
    cols = PERSONAL[table]
    q = security._q(table)
    with Warehouse(built.url) as wh:
        if not wh.scalar("SELECT to_regclass(:t) IS NOT NULL", {"t": q}):
            pytest.skip(f"{table}: the sandbox loads no such table")
    with as_role(built, "desk") as desk:
        if table.startswith(("gdpr.", "marts.")) or table == "ops.quarantine":
            # the DPO's tables, BI's marts and the pipeline's quarantine: no privilege at all
            with pytest.raises(psycopg.errors.InsufficientPrivilege), \
                    security.session_context(desk, collectivite=COLLECTIVITE, service=SERVICE):
                desk.scalar(f"SELECT count(*) FROM {q}")
            return
        if table.startswith("golden.citizen_search"):
            # the search index: through golden.search_citizens only, never its rows
            with security.session_context(desk, collectivite=COLLECTIVITE, service=SERVICE):
                assert desk.scalar(f"SELECT count(*) FROM {q}") == 0
            return
        if table == "ops.access_log":
            # the chain's columns only (to append), never who read whom
            with pytest.raises(psycopg.errors.InsufficientPrivilege), \
                    security.session_context(desk, collectivite=COLLECTIVITE, service=SERVICE):
                desk.scalar(f"SELECT count(reader) FROM {q}")
            return
        with security.session_context(desk, collectivite=COLLECTIVITE, service=SERVICE):
            seen = int(desk.scalar(f"SELECT count(*) FROM {q}"))
        with security.session_context(desk, collectivite=OTHER_COLLECTIVITE, service=SERVICE):
            other_collectivite = int(desk.scalar(f"SELECT count(*) FROM {q}"))
        without_context = int(desk.scalar(f"SELECT count(*) FROM {q}"))
    with Warehouse(built.url) as wh:
        total, expected = _expected_visible(wh, table, cols)
    assert seen == expected, (table, seen, expected, total)
    assert other_collectivite == 0 and without_context == 0
    if total:  # every table with rows shows the scope bites: the other silos' rows are hidden
        assert expected < total or table.startswith("raw_finance"), (table, expected, total)


def test_the_guichet_unique_reads_across_silos_the_support_service_its_own(built):
    with as_role(built, "desk") as desk:
        with security.session_context(desk, collectivite="commune", service="accueil-usager"):
            all_silos = desk.rows("SELECT DISTINCT source_system FROM core.person_record ORDER BY 1")
            citizens = desk.scalar("SELECT count(*) FROM golden.citizen")
        with security.session_context(desk, collectivite="commune", service="inscription-scolaire"):
            family = desk.rows("SELECT DISTINCT source_system FROM core.person_record")
    with Warehouse(built.url) as wh:
        assert all_silos == wh.rows("SELECT DISTINCT source_system FROM core.person_record ORDER BY 1")
        assert citizens == wh.scalar("SELECT count(*) FROM golden.citizen")
    assert family == [("family",)]


LINK_SCOPED = sorted(t for t, cols in PERSONAL.items()  # (the access log has policies of its own)
                     if t != "ops.access_log" and "golden.citizen_link l" in (security.desk_scope(t, cols) or ""))


def test_the_citizen_keyed_tables_are_scoped_by_their_links():
    assert {"golden.citizen", "golden.citizen_alias", "golden.household_member"} <= set(LINK_SCOPED)


@pytest.mark.parametrize("table", LINK_SCOPED)
def test_a_citizen_s_rows_are_found_by_index_probes_under_the_desk_s_policy(built, table):
    """The desk's scope on a citizen-keyed table is checked per row read, through the links' index:
    reading one citizen never scans every link (which a policy ``citizen_id IN (SELECT ... FROM
    citizen_link)`` did, at each query)."""
    column = "new_id" if table.endswith("alias") else "citizen_id"
    with as_role(built, "desk") as desk, security.session_context(desk, collectivite="commune",
                                                                   service="accueil-usager"):
        desk.execute("SET LOCAL enable_seqscan = off")  # a few hundred rows: the plan an index allows at any size
        plan = "\n".join(r[0] for r in desk.rows(f"EXPLAIN SELECT * FROM {table} WHERE {column} = 'C-ANY'"))
    # the links probed for this row's citizen (correlated), not all read and hashed
    assert f"Index Cond: (citizen_id = {table.split('.')[1]}.{column})" in plan, plan
    with as_role(built, "desk") as desk, security.session_context(desk, collectivite="commune",
                                                                   service="accueil-usager"):
        seen = desk.scalar(f"SELECT count(*) FROM {table}")
    with Warehouse(built.url) as wh:  # the guichet unique reads every silo: the same rows as the owner
        assert seen == wh.scalar(f"SELECT count(*) FROM {table} t WHERE EXISTS "
                                 f"(SELECT 1 FROM golden.citizen_link l WHERE l.citizen_id = t.{column})")


def test_the_context_dies_with_its_transaction(built):
    with as_role(built, "desk") as desk:
        with security.session_context(desk, collectivite=COLLECTIVITE, service=SERVICE):
            inside = desk.scalar("SELECT count(*) FROM core.person_record")
        after = desk.scalar("SELECT count(*) FROM core.person_record")
        setting = desk.scalar("SELECT current_setting('hub.service', true)")
    assert inside > 0 and after == 0 and not setting


def test_reader_views_are_security_barrier_and_invoker(built):
    with Warehouse(built.url) as wh:
        opts = dict(wh.rows("SELECT c.relname, array_to_string(c.reloptions, ',') FROM pg_class c "
                            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'desk'"))
    assert set(opts) == set(security.VIEWS)
    assert all("security_barrier=true" in o and "security_invoker=true" in o for o in opts.values()), opts
    with as_role(built, "desk") as desk, security.session_context(desk, collectivite=COLLECTIVITE, service=SERVICE):
        silos = desk.rows("SELECT DISTINCT source_system FROM desk.citizen_record")
    assert silos == [("finance",)]


# ----------------------------------------------------------------------------------------- access log
@pytest.mark.parametrize("kind", ["desk", "dpo", "bi", "writer"])
def test_the_access_log_is_insert_only(built, kind):
    for sql in ("UPDATE ops.access_log SET reader = 'x'", "DELETE FROM ops.access_log", "TRUNCATE ops.access_log"):
        with as_role(built, kind) as wh, pytest.raises(psycopg.errors.InsufficientPrivilege):
            wh.execute(sql)
    with Warehouse(built.url) as wh:
        assert wh.scalar("SELECT count(*) FROM ops.access_log") >= 3


@pytest.mark.parametrize("kind", ["desk", "dpo", "writer"])
def test_readers_append_to_the_chain(built, kind):
    from warehouse import access_log

    with as_role(built, kind) as wh, security.session_context(wh, collectivite=COLLECTIVITE, service=SERVICE):
        access_log.append(wh, [access_log.Entry(f"agent-{kind}", "C-test", "facturation", channel="desk",
                                                collectivite=COLLECTIVITE, service=SERVICE)])
    with Warehouse(built.url) as wh:
        assert access_log.verify(wh) >= 4


def test_only_the_purge_role_deletes_and_only_past_retention(built):
    with as_role(built, "purge") as wh:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            wh.execute("DELETE FROM ops.access_log")  # the trigger: not asked for by a purge
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            wh.execute("UPDATE ops.access_log SET reader = 'x'")
        with wh.transaction():
            wh.execute("SELECT set_config('hub.access_log_purge', 'on', true), "
                       "set_config('hub.access_log_retention', '1 year', true)")
            wh.execute("DELETE FROM ops.access_log WHERE read_at < :cut", {"cut": datetime(2000, 1, 1, tzinfo=UTC)})


# ----------------------------------------------------------------------------------------- BI
def test_bi_reads_marts_and_nothing_else(built):
    with Warehouse(built.url) as wh:
        # a mart made later by the owner (a migration): the default privileges open it to BI
        wh.execute(f"SET ROLE {built.roles.owner}")
        wh.execute("CREATE TABLE IF NOT EXISTS marts.test_mart AS SELECT 1 AS n")
        wh.execute("RESET ROLE")
        marts = wh.rows("SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'")
        others = [f'"{s}"."{t}"' for s, t in wh.rows(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema LIKE 'raw\\_%' "
            "OR table_schema IN ('staging', 'core', 'golden', 'gdpr', 'ops', 'desk')")]
    assert marts and len(others) > 30
    with as_role(built, "bi") as bi:
        for (t,) in marts:
            bi.scalar(f'SELECT count(*) FROM marts."{t}"')
        denied = 0
        for q in others:
            try:
                bi.scalar(f"SELECT 1 FROM {q} LIMIT 1")
            except psycopg.errors.InsufficientPrivilege:
                denied += 1
    assert denied == len(others)


# ----------------------------------------------------------------------------------------- the writer
def test_the_writer_writes_through_row_security(built):
    """The pipeline's role is subject to row security like every application role: its writes (COPY
    through a temporary table) pass its policies."""
    import pyarrow as pa

    from schemas.contract import QUARANTINE, arrow_schema

    now = datetime.now(UTC)
    row = {"run_id": "rls-test", "source_system": "finance", "entity": "tiers", "stage": "extract",
           "locator": "t:1", "field": None, "reason_code": "test", "reason": "test", "payload": None,
           "quarantined_at": now}
    with as_role(built, "writer") as wh:
        assert wh.scalar("SELECT row_security_active('ops.quarantine')")
        n = wh.write(QUARANTINE, pa.Table.from_pylist([row], schema=arrow_schema(QUARANTINE)),
                     delete_where=("run_id = :r", {"r": "rls-test"}))
        assert n == 1 and wh.scalar("SELECT count(*) FROM ops.quarantine WHERE run_id = 'rls-test'") == 1
        wh.execute("DELETE FROM ops.quarantine WHERE run_id = 'rls-test'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            wh.execute("INSERT INTO ops.access_grant VALUES ('commune', 'facturation', 'x', '*')")


def test_roles_reapplied_from_the_register_is_idempotent(built):
    with Warehouse(built.url) as wh:
        policies = wh.rows("SELECT schemaname, tablename, policyname, qual FROM pg_policies ORDER BY 1, 2, 3")
        n = security.apply(wh, REGISTER, built.roles)
        again = wh.rows("SELECT schemaname, tablename, policyname, qual FROM pg_policies ORDER BY 1, 2, 3")
        grants = wh.scalar("SELECT count(*) FROM ops.access_grant")
    assert n >= len(PERSONAL) - 5 and again == policies
    assert grants == len(security.access_grants(REGISTER))


# ----------------------------------------------------------------------------------------- the desk app
@dataclass
class DeskApps:
    """The real desk app twice on the built warehouse: through the desk's own logins (desk reader for
    agents, DPO for the DPO), and through the owner's connection (the superuser here), with a
    signed-in client per (app, agent)."""

    clients: dict[tuple[str, str], object]

    def get(self, app: str, agent: str, path: str, **params):
        return self.clients[(app, agent)].get(path, params=params)


@pytest.fixture(scope="module")
def desk_apps(built, tmp_path_factory) -> Iterator[DeskApps]:
    from fastapi.testclient import TestClient

    from hub.desk.app import create_app
    from hub.desk.auth import OIDCConfig
    from sandbox.oidc_provider import ClientRegistration, OIDCProvider, hub_agents_toml, load_demo_agents
    from tests.hub.desk.signin import BASE, CLIENT_ID, CLIENT_SECRET, sign_in

    agents = tmp_path_factory.mktemp("agents") / "agents.toml"
    agents.write_text(hub_agents_toml(load_demo_agents().values()), encoding="utf-8")
    registration = ClientRegistration(CLIENT_ID, CLIENT_SECRET, redirect_uris=(f"{BASE}/auth/callback",),
                                      post_logout_redirect_uris=(f"{BASE}/deconnexion/retour",))
    with OIDCProvider(load_demo_agents(), [registration]) as provider:
        config = OIDCConfig(issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redirect_base=BASE, agents_file=agents)
        apps = {"logins": create_app(warehouse_url=built.login_url("desk"),
                                     dpo_warehouse_url=built.login_url("dpo"), oidc_config=config),
                "owner": create_app(warehouse_url=built.url, oidc_config=config)}
        clients = {}
        try:
            for name, app in apps.items():
                for agent in ("finances", "dpo"):
                    c = TestClient(app, raise_server_exceptions=False)
                    c.__enter__()
                    clients[(name, agent)] = c
                    assert sign_in(c, provider, agent).status_code == 303
            yield DeskApps(clients)
        finally:
            for c in clients.values():
                c.__exit__(None, None, None)


def _finance_citizen(built: Built) -> tuple[str, str, set[str]]:
    """A citizen the finance silo and at least one other silo know: (id, their finance record's birth
    name, every silo that knows them), read as the superuser."""
    with Warehouse(built.url) as wh:
        row = wh.rows(
            "SELECT l.citizen_id, max(CASE WHEN p.source_system = 'finance' THEN p.birth_name END), "
            "array_agg(DISTINCT p.source_system) FROM golden.citizen_link l "
            "JOIN core.person_record p ON p.record_key = l.record_key GROUP BY l.citizen_id "
            "HAVING bool_or(p.source_system = 'finance') AND count(DISTINCT p.source_system) >= 3 "
            "AND max(CASE WHEN p.source_system = 'finance' THEN p.birth_name END) IS NOT NULL "
            "ORDER BY 1 LIMIT 1")
    assert row, "the sandbox has no citizen known to finance and two other silos"
    return row[0][0], row[0][1], set(row[0][2])


def test_the_desk_api_reads_as_the_desk_login_under_the_agent_s_context(built, desk_apps):
    """An agent of the commune's billing service, through the API, sees the finance silo only; and it is
    PostgreSQL's row security that cuts: with the service's grant taken out of ops.access_grant (the
    register in Python unchanged) the desk's login finds nothing of the citizen, while the same request
    through the owner's connection still shows them."""
    citizen, name, silos = _finance_citizen(built)
    page = desk_apps.get("logins", "finances", f"/api/v1/citizens/{citizen}", purpose="finance-facturation")
    assert page.status_code == 200, page.text
    body = page.json()
    assert {r["source_system"] for r in body["records"]} == {"finance"} < silos
    assert {e["source_system"] for e in body["timeline"]} <= {"finance"}
    # the app's pooled connections are the desk login's, idle between requests (the context died
    # with each request's transaction)
    with Warehouse(built.url) as wh:
        sessions = wh.rows("SELECT state FROM pg_stat_activity WHERE usename = :u AND datname = current_database()",
                           {"u": built.logins["desk"]})
    assert sessions and {s for (s,) in sessions} == {"idle"}

    with Warehouse(built.url) as wh:
        wh.execute("DELETE FROM ops.access_grant WHERE collectivite = :c AND service = :s",
                   {"c": COLLECTIVITE, "s": SERVICE})
    try:
        cut = desk_apps.get("logins", "finances", f"/api/v1/citizens/{citizen}", purpose="finance-facturation")
        owner = desk_apps.get("owner", "finances", f"/api/v1/citizens/{citizen}", purpose="finance-facturation")
        found = desk_apps.get("logins", "finances", "/api/v1/citizens", q=name, purpose="finance-facturation")
        owner_found = desk_apps.get("owner", "finances", "/api/v1/citizens", q=name, purpose="finance-facturation")
        # the pages read through the same dependency
        html_cut = desk_apps.get("logins", "finances", f"/usager/{citizen}", motif="finance-facturation")
        html_owner = desk_apps.get("owner", "finances", f"/usager/{citizen}", motif="finance-facturation")
    finally:
        with Warehouse(built.url) as wh:
            security.sync_access_grants(wh, REGISTER)
    assert cut.status_code == 404, cut.text
    assert owner.status_code == 200 and {r["source_system"] for r in owner.json()["records"]} == {"finance"}
    assert found.status_code == 200 and found.json()["hits"] == [], found.text
    assert citizen in {h["citizen_id"] for h in owner_found.json()["hits"]}
    assert html_cut.status_code == 404 and html_owner.status_code == 200, (html_cut.status_code, html_owner.status_code)


def test_the_dpo_reads_the_access_log_through_the_dpo_login(built, desk_apps):
    """The DPO's requests go through the DPO's login: it reads who consulted a citizen, which the desk
    reader's login may not (its column grants stop at the log's chain)."""
    citizen, _, _ = _finance_citizen(built)
    assert desk_apps.get("logins", "finances", f"/api/v1/citizens/{citizen}",
                         purpose="finance-facturation").status_code == 200
    seen = desk_apps.get("logins", "dpo", f"/api/v1/citizens/{citizen}/consultations", purpose="droits-rgpd")
    assert seen.status_code == 200, seen.text
    assert any(c["service"] == SERVICE and c["collectivite"] == COLLECTIVITE for c in seen.json()["consultations"])
    with as_role(built, "desk") as desk, pytest.raises(psycopg.errors.InsufficientPrivilege):
        desk.rows("SELECT reader FROM ops.access_log LIMIT 1")


def test_an_objection_hides_the_citizen_from_the_desk_login(built, desk_apps):
    """Art. 21 holds under the desk's login: it reads who objected to which processing (three columns of
    gdpr.objection, nothing else of the DPO's schema), so the objector is not found by that processing."""
    citizen, name, _ = _finance_citizen(built)
    with Warehouse(built.url) as wh:
        wh.execute("INSERT INTO gdpr.objection (citizen_id, processing_id, decided_by, decided_at) "
                   "VALUES (:c, 'finance-facturation', 'dpo-test', now())", {"c": citizen})
    try:
        page = desk_apps.get("logins", "finances", f"/api/v1/citizens/{citizen}", purpose="finance-facturation")
        found = desk_apps.get("logins", "finances", "/api/v1/citizens", q=name, purpose="finance-facturation")
    finally:
        with Warehouse(built.url) as wh:
            wh.execute("DELETE FROM gdpr.objection WHERE decided_by = 'dpo-test'")
    assert page.status_code == 404, page.text
    assert found.status_code == 200 and citizen not in {h["citizen_id"] for h in found.json()["hits"]}
    with as_role(built, "desk") as desk:
        for sql in ("SELECT decided_by FROM gdpr.objection", "SELECT count(*) FROM gdpr.dsr_request"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                desk.rows(sql)
