"""`hub run` on PostgreSQL as the pipeline's own login: a member of the writer and loader roles,
neither owner of the hub's tables nor BYPASSRLS, on a warehouse the migrations made (run by the
superuser here, as a DBA's admin login would). One database per module, roles under a prefix of
their own (the shared cluster never meets another test's roles).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from schemas.register import load_register
from tests.conftest import PG_HOST, PG_PORT, _pg_connect, _unavailable
from warehouse import roles as security
from warehouse.engine import Warehouse

pytestmark = pytest.mark.slow

REGISTER = load_register()


@dataclass
class Ran:
    url: str  # the superuser's
    login_url: str  # the pipeline's login
    login: str
    roles: security.Roles
    failed: list
    owners: set[tuple[str, str]]  # (layer, owner) of every table right after the run
    settings: object  # the run's hub.settings.Settings (var_dir, marts keys)


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Iterator[Ran]:
    from hub.demo import running_sandbox
    from hub.pipeline import run
    from warehouse.migrate import upgrade

    try:
        admin = _pg_connect()
    except Exception as e:
        _unavailable(f"PostgreSQL on {PG_HOST}:{PG_PORT}", e)
    tag = uuid.uuid4().hex[:8]
    name, roles = f"hub_test_pipeline_{tag}", security.Roles(f"p{tag}")
    login = f"p{tag}_pipeline"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    login_url = f"postgresql://{login}@{PG_HOST}:{PG_PORT}/{name}"
    try:
        upgrade(url, roles=roles, register=REGISTER)  # the DBA: every table, role and policy
        with Warehouse(url) as wh:
            for stmt in security.login_sql(roles, "pipeline", login):
                wh.execute(stmt)
        with running_sandbox(tmp_path_factory.mktemp("pipeline"), people=120, seed=5,
                             warehouse_url=login_url) as sr:
            failed = run(sr.settings).failed
            settings = sr.settings
        with Warehouse(url) as wh:
            owners = set(wh.rows(
                "SELECT DISTINCT CASE WHEN n.nspname LIKE 'raw\\_%' THEN 'raw' ELSE n.nspname END, "
                "pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v') AND (n.nspname IN ('core', 'golden', 'gdpr', 'ops', 'marts') "
                "OR n.nspname LIKE 'raw\\_%')"))
            # the raw tables the first load made get their row security, as after any new source
            security.apply(wh, REGISTER, roles)
        yield Ran(url, login_url, login, roles, failed, owners, settings)
    finally:
        with _pg_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            for role in [login, f"{roles.prefix}_dba", *(roles.name(k) for k in security.ROLE_KINDS)]:
                admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_hub_run_succeeds_as_the_pipeline_login(ran):
    assert ran.failed == []
    with Warehouse(ran.url) as wh:
        citizens = wh.scalar("SELECT count(*) FROM golden.citizen")
        marts = wh.scalar("SELECT count(*) FROM marts.dim_citizen")
        indexed = wh.scalar("SELECT count(*) FROM golden.citizen_search")
        login = wh.rows("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r", {"r": ran.login})
        secured = wh.scalar("SELECT bool_and(c.relrowsecurity AND c.relforcerowsecurity) FROM pg_class c "
                            "WHERE c.oid IN ('golden.citizen'::regclass, 'core.person_record'::regclass)")
    assert citizens > 50 and marts > 0 and indexed == citizens
    assert login == [(False, False)] and secured
    # the hub's layers stay the owner's; what the run created (the raw layer, dlt's own tables) is the
    # loader's, which the login acts as; the login itself owns nothing
    assert ran.owners == {("core", ran.roles.owner), ("golden", ran.roles.owner), ("gdpr", ran.roles.owner),
                          ("ops", ran.roles.owner), ("marts", ran.roles.owner), ("raw", ran.roles.loader)}


def test_the_pipeline_login_is_held_by_row_security(ran):
    with Warehouse(ran.login_url) as wh:
        active = {t: wh.scalar("SELECT row_security_active(CAST(:t AS regclass))", {"t": t})
                  for t in ("golden.citizen", "core.person_record", "raw_finance.tiers")}
    assert active == dict.fromkeys(active, True)


@pytest.mark.parametrize("sql", [
    "SELECT reader, citizen_id FROM ops.access_log",  # who read whom: the DPO's
    "UPDATE ops.access_log SET reader = 'x'",
    "INSERT INTO ops.access_grant VALUES ('commune', 'facturation', 'x', '*')",
    "ALTER TABLE golden.citizen ADD COLUMN x integer",
    "ALTER TABLE golden.citizen DISABLE ROW LEVEL SECURITY",
    "ALTER TABLE core.person_record NO FORCE ROW LEVEL SECURITY",
    "DROP POLICY golden_citizen_writer_select ON golden.citizen",
    "CREATE TABLE golden.x (n integer)",
    "CREATE TABLE gdpr.x (n integer)",
    "DROP TABLE marts.dim_citizen",
    "CREATE OR REPLACE FUNCTION ops.granted_systems() RETURNS SETOF text LANGUAGE sql AS $$ SELECT '*' $$",
], ids=["read-the-log", "update-the-log", "widen-grants", "alter-golden", "disable-rls",
        "unforce-rls", "drop-policy", "create-in-golden", "create-in-gdpr", "drop-a-mart", "replace-grant-fn"])
def test_the_pipeline_login_cannot_read_the_log_nor_change_the_schema(ran, sql):
    with Warehouse(ran.login_url) as wh, pytest.raises(psycopg.errors.InsufficientPrivilege):
        wh.execute(sql)


def test_an_erasure_runs_as_the_pipeline_login(ran):
    """Erasure (the DPO's decision, carried out on every layer) works under the same login."""
    from warehouse.gdpr_erase import erase
    from warehouse.marts import keys_from_settings

    with Warehouse(ran.url) as wh:
        citizen = wh.scalar("SELECT citizen_id FROM golden.citizen ORDER BY 1 LIMIT 1")
        keys = [r[0] for r in wh.rows("SELECT record_key FROM golden.citizen_link WHERE citizen_id = :c",
                                      {"c": citizen})]
    s = ran.settings
    erase(ran.login_url, citizen, reason="test", decided_by="dpo-test", var_dir=s.var_dir,
          pipelines_dir=s.pipelines_dir, marts_keys=keys_from_settings(s.marts, s.var_dir))
    with Warehouse(ran.url) as wh:
        left = {t: wh.scalar(f"SELECT count(*) FROM {t} WHERE {col} = ANY(:v)", {"v": v}) for t, col, v in (
            ("golden.citizen", "citizen_id", [citizen]), ("golden.citizen_link", "citizen_id", [citizen]),
            ("core.person_record", "record_key", keys))}
    assert keys and left == dict.fromkeys(left, 0)


def test_a_later_upgrade_runs_as_an_admin_login(ran):
    """The DBA's own login (a member of the admin role, no superuser, no ADMIN OPTION) re-runs the last
    revision: the security model re-applied without creating roles or granting memberships anew."""
    from alembic import command

    from warehouse.migrate import alembic_config, current, upgrade

    dba = f"{ran.roles.prefix}_dba"
    with Warehouse(ran.url) as wh:
        wh.execute(f"CREATE ROLE {dba} LOGIN NOSUPERUSER NOCREATEROLE IN ROLE {ran.roles.admin}")
    head = current(ran.url)
    command.downgrade(alembic_config(ran.url, roles=ran.roles, register=REGISTER), "-1")
    assert current(ran.url) != head
    dba_url = ran.login_url.replace(f"{ran.login}@", f"{dba}@")
    assert upgrade(dba_url, roles=ran.roles, register=REGISTER) == f"at {head}"
    with Warehouse(ran.url) as wh:
        loader_owns = wh.scalar("SELECT pg_get_userbyid(relowner) FROM pg_class "
                                "WHERE oid = 'raw_finance.tiers'::regclass")
    assert loader_owns == ran.roles.loader
