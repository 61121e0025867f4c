"""Roles, grants and row-level security of a PostgreSQL warehouse, derived from the register.

Group roles (NOLOGIN; login roles inherit them), named ``<prefix>_<kind>`` (prefix ``hub`` unless
``$HUB_ROLE_PREFIX`` says otherwise, so two warehouses can share a cluster):

- ``owner`` owns every hub schema, table and function; nobody logs in as it. Migrations act as it
  through an admin login. It alone holds BYPASSRLS.
- ``admin``: member of ``owner``, for the DBA's logins (``hub warehouse upgrade`` / ``roles``).
- ``loader``: the raw layer's loader (dlt creates the ``raw_<system>`` schemas and tables, and
  evolves them when a source adds a column, which takes their ownership): CREATE on the database,
  owner of ``raw_*`` and of nothing else, without BYPASSRLS; row security is forced on its raw
  tables like on every personal table, and its own policies let it load them.
- ``writer``: the pipeline (staging, resolution, publication, GDPR erasure and rectification):
  reads and writes every layer under its own policies, inserts into the access log, owns nothing
  but the staging views it rebuilds each run. The pipeline's login is a member of ``writer`` and
  ``loader`` (docs/warehouse.md, *Logins*).
- ``desk``: the agents' desk and API: reads ``raw_*``, ``core`` and ``golden`` only as far as the
  session's collectivité and service are granted (row security), appends to the access log.
- ``dpo``: reads every layer (access requests concern any silo), records rights requests.
- ``bi``: reads ``marts`` only.
- ``purge``: the access log's retention purge (the only role that may DELETE from it).

Row security: every table the register maps personal columns in gets ENABLE and FORCE ROW LEVEL
SECURITY and one policy per command and role (never FOR ALL: its USING would widen SELECT). The
desk's SELECT policy reads the session's context, set per transaction by :func:`session_context`
(``set_config(..., true)``: safe behind a transaction-mode pooler), against ``ops.access_grant``,
the register's ``[[processing.access]]`` rules materialised by :func:`sync_access_grants`:
a silo's rows are visible iff a grant of the session's (collectivité, service) names their
``source_system`` (a hub processing such as the guichet unique, which searches or reads across
silos, grants ``*``); a golden row iff its citizen is linked to such a record.

DuckDB has no roles and no row security: the DuckDB file is single-user by design.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from schemas.contract import ACCESS_LOG, ALL_TABLES, Column, Table
from schemas.register import ALL, Register

log = logging.getLogger(__name__)

CONTEXT_COLLECTIVITE = "hub.collectivite"
CONTEXT_SERVICE = "hub.service"
ALL_SYSTEMS = "*"
HUB_SCHEMAS = ("staging", "core", "golden", "gdpr", "ops", "marts", "desk")
ROLE_KINDS = ("owner", "admin", "loader", "writer", "desk", "dpo", "bi", "purge")
# the roles that own nothing (the loader owns the raw layer it creates: see the module docstring)
APPLICATION_KINDS = ("writer", "desk", "dpo", "bi", "purge")

ACCESS_GRANT = Table(
    "access_grant",
    "ops",
    "The register's access rules as rows the row-security policies read: which service of which "
    "collectivité reads which processing, and the silo it covers (* for the hub's cross-silo processings).",
    (
        Column("collectivite", "text", "the collectivité's code ([collectivites] of the register)", nullable=False),
        Column("service", "text", "the service id ([services] of the register)", nullable=False),
        Column("processing_id", "text", "the processing the service reads for", nullable=False),
        Column("source_system", "text", "the silo whose rows it covers, * for every silo", nullable=False),
    ),
    key=("collectivite", "service", "processing_id", "source_system"),
)

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Roles:
    """The warehouse's role names."""

    prefix: str = "hub"

    def __post_init__(self) -> None:
        if not _IDENT.match(self.prefix) or len(self.prefix) > 40:
            raise ValueError(f"role prefix {self.prefix!r}: lower-case letters, digits and _ (at most 40)")

    def name(self, kind: str) -> str:
        if kind not in ROLE_KINDS:
            raise KeyError(f"no role kind {kind!r} (one of {', '.join(ROLE_KINDS)})")
        return f"{self.prefix}_{kind}"

    @property
    def owner(self) -> str:
        return self.name("owner")

    @property
    def admin(self) -> str:
        return self.name("admin")

    @property
    def loader(self) -> str:
        return self.name("loader")

    @property
    def writer(self) -> str:
        return self.name("writer")

    @property
    def desk(self) -> str:
        return self.name("desk")

    @property
    def dpo(self) -> str:
        return self.name("dpo")

    @property
    def bi(self) -> str:
        return self.name("bi")

    @property
    def purge(self) -> str:
        return self.name("purge")

    @property
    def application(self) -> tuple[str, ...]:
        """The roles application logins inherit: neither owners nor BYPASSRLS."""
        return tuple(self.name(k) for k in APPLICATION_KINDS)


def roles_from_env() -> Roles:
    """The role names for ``$HUB_ROLE_PREFIX`` (default ``hub``)."""
    return Roles(os.environ.get("HUB_ROLE_PREFIX") or "hub")


def migration_model(op: Any) -> tuple[Roles, Register]:
    """The roles and register an Alembic migration applies: those ``warehouse.migrate.upgrade`` was
    given (its config's attributes), else ``$HUB_ROLE_PREFIX``'s roles and the register in force."""
    from schemas.register import load_register

    attrs = op.get_context().config.attributes if op.get_context().config else {}
    return attrs.get("roles") or roles_from_env(), attrs.get("register") or load_register()


def reapply(op: Any) -> None:
    """A migration's upgrade that re-applies the whole security model (idempotent; raw tables
    guarded): policies, grants and functions as this release defines them."""
    roles, register = migration_model(op)
    for stmt in security_sql(register, roles, guard=True):
        op.execute(stmt)


# ------------------------------------------------------------------------------- session context
@contextmanager
def session_context(wh, *, collectivite: str, service: str) -> Iterator:
    """One transaction in which the session acts for ``service`` of ``collectivite``: row security
    shows that service's rows only. The settings are transaction-local (``set_config(..., true)``),
    so a pooled connection never carries them to the next client. On DuckDB (no row security) it
    is a plain transaction."""
    if not collectivite or not service:
        raise ValueError("a session context needs a collectivité and a service")
    context = (f"SELECT set_config('{CONTEXT_COLLECTIVITE}', :c, true), set_config('{CONTEXT_SERVICE}', :s, true)",
               {"c": collectivite, "s": service})
    with wh.transaction(opening=context if wh.kind == "postgres" else None):  # one round trip with BEGIN
        yield wh


# ------------------------------------------------------------------------------- the register's grants
def access_grants(register: Register) -> list[tuple[str, str, str, str]]:
    """(collectivite, service, processing_id, source_system) for every access rule of the register.
    A source processing covers its silo; a hub processing that searches or reads (the 360° view)
    covers every silo (``*``); a prefill-only rule covers none (it reads the golden record of the
    person filling the form, not a silo)."""
    out: set[tuple[str, str, str, str]] = set()
    for p in register.processings:
        for a in p.access:
            if p.source_system:
                systems = [p.source_system]
            elif a.search or a.read:
                systems = [ALL_SYSTEMS]
            else:
                continue
            collectivites = list(register.collectivites) if ALL in a.collectivites else list(a.collectivites)
            for c in collectivites:
                for s in a.services:
                    for system in systems:
                        out.add((c, s, p.id, system))
    return sorted(out)


def sync_access_grants(wh, register: Register) -> int:
    """Replace ``ops.access_grant`` with the register's rules (one transaction); returns the rows."""
    import pyarrow as pa

    rows = access_grants(register)
    data = pa.table({c: [r[i] for r in rows] for i, c in enumerate(ACCESS_GRANT.column_names)})
    with wh.transaction():
        wh.write(ACCESS_GRANT, data, replace=True)
    log.info("access grants: %d rule(s) from the register", len(rows))
    return len(rows)


# ------------------------------------------------------------------------------- row scopes
_GRANTED = "(SELECT ops.granted_systems())"


def silo_visible(system_sql: str) -> str:
    """SQL true when the session's grants cover the silo ``system_sql`` evaluates to."""
    return f"({system_sql} IN {_GRANTED} OR '{ALL_SYSTEMS}' IN {_GRANTED})"


def _record_silo(col: str) -> str:
    return f"split_part({col}, ':', 1)"


def _linked(table: str, col: str) -> str:
    """A citizen the session may see: one of their links is (citizen_link's own policy keeps only
    links to granted silos). EXISTS, correlated on the row's own column: one index probe per row
    read. (``col IN (SELECT citizen_id FROM citizen_link)`` was planned as a hashed subplan: every
    link scanned for each query, 80 ms per citizen page at 100,000 citizens.)"""
    return f"EXISTS (SELECT 1 FROM golden.citizen_link l WHERE l.citizen_id = {table.split('.', 1)[1]}.{col})"


# Tables whose scope is not read off one column.
_SPECIAL_SCOPES = {
    "golden.household": ("EXISTS (SELECT 1 FROM golden.household_member m "
                         "WHERE m.household_id = household.household_id)"),
    "golden.citizen_alias": _linked("golden.citizen_alias", "new_id"),
    "golden.match_decision": (f"(record_key_l IS NULL OR {silo_visible(_record_silo('record_key_l'))}) AND "
                              f"(record_key_r IS NULL OR {silo_visible(_record_silo('record_key_r'))}) AND "
                              f"(citizen_id IS NULL OR {_linked('golden.match_decision', 'citizen_id')})"),
    "golden.review_queue": (f"{silo_visible(_record_silo('record_key_l'))} AND "
                            f"{silo_visible(_record_silo('record_key_r'))}"),
}
# Personal tables the desk never reads rows of: the DPO's, the marts (BI's), and the search index,
# which the desk reads only through golden.search_citizens (SECURITY DEFINER, index speed).
_DESK_NONE = ("gdpr.", "marts.", "golden.citizen_search")


def desk_scope(table: str, columns: Iterable[str]) -> str | None:
    """The desk's row filter on a personal table ("schema.name"), or None: no row for the desk.
    Raw tables are scoped by their schema's silo, others by their source system, record key or citizen."""
    schema = table.split(".", 1)[0]
    cols = set(columns)
    if table.startswith(_DESK_NONE):
        return None
    if schema.startswith("raw_"):
        return silo_visible(f"'{schema.removeprefix('raw_')}'")
    if table in _SPECIAL_SCOPES:
        return _SPECIAL_SCOPES[table]
    if "source_system" in cols:
        return silo_visible("source_system")
    if "record_key" in cols:
        return silo_visible(_record_silo("record_key"))
    if "citizen_id" in cols:
        return _linked(table, "citizen_id")
    return None


# ------------------------------------------------------------------------------- SQL of the model
@dataclass(frozen=True)
class Policy:
    name: str
    table: str  # schema.name
    command: str  # SELECT, INSERT, UPDATE, DELETE
    role: str
    using: str | None = None
    check: str | None = None

    @property
    def definition(self) -> str:
        sql = f"AS PERMISSIVE FOR {self.command} TO {self.role}"
        if self.using is not None:
            sql += f" USING ({self.using})"
        if self.check is not None:
            sql += f" WITH CHECK ({self.check})"
        return sql

    def entity(self):
        from alembic_utils.pg_policy import PGPolicy

        schema, _ = self.table.split(".", 1)
        return PGPolicy(schema=schema, signature=self.name, on_entity=self.table, definition=self.definition)


def _q(table: str) -> str:
    schema, name = table.split(".", 1)
    return f'"{schema}"."{name}"'


def policies(table: str, columns: Iterable[str], roles: Roles) -> list[Policy]:
    """The policies of one personal table: one per command and role, none FOR ALL."""
    cols = list(columns)
    short = table.replace(".", "_")
    out: list[Policy] = []

    def add(kind: str, command: str, role: str, using: str | None = None, check: str | None = None) -> None:
        out.append(Policy(f"{short}_{kind}_{command.lower()}", table, command, role, using, check))

    if table == f"{ACCESS_LOG.schema}.{ACCESS_LOG.name}":
        # insert-only for everyone; SELECT rows (their chain columns only, by column grants) so an
        # appender can continue the hash chain; DELETE for the purge role, past retention (trigger)
        for kind, role in (("writer", roles.writer), ("desk", roles.desk), ("dpo", roles.dpo)):
            add(kind, "SELECT", role, using="true")
            add(kind, "INSERT", role, check="true")
        add("purge", "SELECT", roles.purge, using="true")
        add("purge", "DELETE", roles.purge, using="true")
        return out
    commands = (("SELECT", "true", None), ("INSERT", None, "true"), ("UPDATE", "true", "true"),
                ("DELETE", "true", None))
    for command, using, check in commands:
        add("writer", command, roles.writer, using, check)
    if table.startswith("raw_"):
        # the loader owns its raw tables, and FORCE puts it under row security like any role
        for command, using, check in commands:
            add("loader", command, roles.loader, using, check)
    if table.startswith("marts."):
        # pseudonymised rows: read whole by BI (statistics), by nobody else
        add("bi", "SELECT", roles.bi, using="true")
        return out
    add("dpo", "SELECT", roles.dpo, using="true")
    if table.startswith("gdpr."):
        add("dpo", "INSERT", roles.dpo, check="true")
        add("dpo", "UPDATE", roles.dpo, using="true", check="true")
    scope = desk_scope(table, cols)
    if scope is not None:
        add("desk", "SELECT", roles.desk, using=scope)
    return out


GRANTED_SYSTEMS_FN = ("granted_systems()", """RETURNS SETOF text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT g.source_system FROM ops.access_grant g
    WHERE g.collectivite = current_setting('hub.collectivite', true)
      AND g.service = current_setting('hub.service', true)
$$""")


def functions():
    """The functions the policies call (alembic_utils entities)."""
    from alembic_utils.pg_function import PGFunction

    return [PGFunction(schema="ops", signature=GRANTED_SYSTEMS_FN[0], definition=GRANTED_SYSTEMS_FN[1])]


# Reader views: narrow, security_barrier (the view's filters run before a caller's leaky functions)
# and security_invoker (the caller's row security applies, not the owner's).
VIEWS = {
    "citizen_record": """SELECT l.citizen_id, p.record_key, p.source_system, p.role, p.given_names, p.birth_name,
       p.usage_name, p.birth_date, p.email, p.phone, p.address_line, p.postcode, p.city, l.match_probability
  FROM golden.citizen_link l JOIN core.person_record p ON p.record_key = l.record_key""",
    "citizen_interaction": """SELECT l.citizen_id, i.source_system, i.kind, i.service, i.title, i.status,
       i.opened_at, i.closed_at, i.due_at, i.amount, i.currency, i.channel
  FROM core.interaction i JOIN golden.citizen_link l ON l.record_key = i.record_key""",
}


def views():
    from alembic_utils.pg_view import PGView

    return [PGView(schema="desk", signature=name, definition=sql) for name, sql in VIEWS.items()]


def view_options_sql() -> list[str]:
    return [f'ALTER VIEW desk."{name}" SET (security_barrier = true, security_invoker = true)' for name in VIEWS]


def column_grants(roles: Roles):
    """Column-level grants (alembic_utils entities): the desk and the writer may read the access log's
    chain columns only, to continue the chain when they append; never who read whom."""
    from alembic_utils.pg_grant_table import PGGrantTable

    return [PGGrantTable(schema="ops", table="access_log", role=role, grant="SELECT",
                         columns=["seq", "prev_hash", "row_hash"]) for role in (roles.desk, roles.writer)]


def role_sql(roles: Roles) -> list[str]:
    """Create the group roles when missing (roles are cluster-wide: another database may have made
    them), each NOLOGIN; only the owner bypasses row security."""
    out = []
    for kind in ROLE_KINDS:
        attrs = "NOLOGIN BYPASSRLS" if kind == "owner" else "NOLOGIN NOBYPASSRLS"
        out.append(f"""DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{roles.name(kind)}') THEN
        BEGIN
            CREATE ROLE {roles.name(kind)} {attrs};
        EXCEPTION WHEN duplicate_object THEN NULL;  -- made meanwhile for another database
        END;
    END IF;
END $$""")
    # the DBA hands raw_* to the loader; the pipeline acts as the loader, which writes too. Granted
    # only when missing: an admin login (no ADMIN OPTION) re-applies the model in later upgrades
    for group, member in ((roles.owner, roles.admin), (roles.loader, roles.admin), (roles.writer, roles.loader)):
        out.append(f"""DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                   JOIN pg_roles r ON r.oid = m.member WHERE g.rolname = '{group}' AND r.rolname = '{member}') THEN
        GRANT {group} TO {member};
    END IF;
END $$""")
    return out


# The login each component connects as: a member of one group role. The pipeline's acts as the loader
# from its first statement (``SET role`` by default), so what dlt creates is the loader's, never the
# login's own.
LOGIN_KINDS = {"pipeline": "loader", "desk": "desk", "dpo": "dpo", "bi": "bi", "purge": "purge", "admin": "admin"}


def login_sql(roles: Roles, component: str, login: str) -> list[str]:
    """The DBA's statements making ``login`` the login of ``component`` (one of :data:`LOGIN_KINDS`):
    a member of its group role, neither superuser nor BYPASSRLS, and for the pipeline a default
    ``role`` of the loader. Its password is set apart (psql's ``\\password``), never in a script."""
    if component not in LOGIN_KINDS:
        raise KeyError(f"no component {component!r} (one of {', '.join(LOGIN_KINDS)})")
    if not _IDENT.match(login):
        raise ValueError(f"login {login!r}: lower-case letters, digits and _")
    group = roles.name(LOGIN_KINDS[component])
    out = [f"CREATE ROLE {login} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE IN ROLE {group}"]
    if component == "pipeline":
        out.append(f"ALTER ROLE {login} SET role = '{group}'")
    return out


def _in(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def ownership_sql(roles: Roles) -> list[str]:
    """Hand every hub schema, table and view to the owner role; the raw_* schemas and tables to the
    loader, which creates and evolves them; the staging views to the writer, which rebuilds them each
    run. A warehouse built by ``hub run`` has them owned by whoever ran it."""
    schemas = _in(HUB_SCHEMAS)
    return [f"""DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT n.nspname FROM pg_namespace n
             WHERE n.nspname IN ({schemas}) OR n.nspname LIKE 'raw\\_%' LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname,
                       CASE WHEN r.nspname LIKE 'raw\\_%' THEN '{roles.loader}' ELSE '{roles.owner}' END);
    END LOOP;
    FOR r IN SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE (n.nspname IN ({schemas}) OR n.nspname LIKE 'raw\\_%') AND c.relkind IN ('r', 'p', 'v', 'm') LOOP
        IF r.nspname LIKE 'raw\\_%' AND r.relkind IN ('r', 'p') THEN
            EXECUTE format('ALTER TABLE %I.%I OWNER TO {roles.loader}', r.nspname, r.relname);
        ELSIF r.relkind = 'v' AND r.nspname = 'staging' THEN
            EXECUTE format('ALTER VIEW %I.%I OWNER TO {roles.writer}', r.nspname, r.relname);
        ELSIF r.relkind = 'v' THEN
            EXECUTE format('ALTER VIEW %I.%I OWNER TO {roles.owner}', r.nspname, r.relname);
        ELSIF r.relkind = 'm' THEN
            EXECUTE format('ALTER MATERIALIZED VIEW %I.%I OWNER TO {roles.owner}', r.nspname, r.relname);
        ELSE
            EXECUTE format('ALTER TABLE %I.%I OWNER TO {roles.owner}', r.nspname, r.relname);
        END IF;
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname IN ({schemas}) LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO {roles.owner}', r.fn);
    END LOOP;
    -- Alembic's version table: later upgrades run as an admin login (a member of the owner)
    IF to_regclass('public.alembic_version') IS NOT NULL THEN
        EXECUTE 'ALTER TABLE public.alembic_version OWNER TO {roles.owner}';
    END IF;
END $$"""]


def grant_sql(roles: Roles) -> list[str]:
    """Privileges per layer (run in the transaction that secures the personal tables: a reader's
    SELECT never exists without the table's row security)."""
    o, w, d, p, b, g = roles.owner, roles.writer, roles.desk, roles.dpo, roles.bi, roles.purge
    ld = roles.loader
    out = [
        # the loader creates a raw_<system> schema with a source's first load; the pipeline's writer
        # reads and erases in what it creates (readers get their SELECT with the table's row security)
        f"""DO $$ BEGIN
    IF NOT has_database_privilege('{ld}', current_database(), 'CREATE') THEN
        EXECUTE format('GRANT CREATE ON DATABASE %I TO {ld}', current_database());
    END IF;
END $$""",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {ld} GRANT USAGE ON SCHEMAS TO {w}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {ld} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {w}",
        f"REVOKE ALL ON SCHEMA {', '.join(HUB_SCHEMAS)} FROM PUBLIC",
        "REVOKE ALL ON FUNCTION ops.granted_systems() FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION ops.granted_systems() TO {w}, {d}, {p}",
        f"GRANT USAGE ON SCHEMA staging, core, golden, gdpr, ops, marts TO {w}",
        f"GRANT CREATE ON SCHEMA staging TO {w}",  # the staging views, rebuilt each run
        f"GRANT USAGE ON SCHEMA core, golden, ops, desk TO {d}",
        f"GRANT USAGE ON SCHEMA core, golden, gdpr, ops, desk TO {p}",
        f"GRANT USAGE ON SCHEMA marts TO {b}",
        f"GRANT USAGE ON SCHEMA ops TO {g}",
        # the writer: every table of the hub's layers (the access log and the grants apart)
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA core, golden, gdpr, ops, marts TO {w}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON ops.access_log, ops.access_log_anchor FROM {w}",
        # who read whom is the DPO's: the writer appends (its chain columns, by column grants)
        f"REVOKE SELECT ON ops.access_log FROM {w}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ops.access_grant FROM {w}",
        # non-personal tables the desk and the DPO read whole (run bookkeeping, releases, grants)
        f"GRANT SELECT ON ops.access_grant, ops.access_log_anchor TO {d}, {p}",
        # the desk honours objections (Art. 21: the person is hidden from that processing's reads):
        # who objected to what, never by whom nor the request
        f"GRANT USAGE ON SCHEMA gdpr TO {d}",
        f"GRANT SELECT (citizen_id, processing_id, revoked_at) ON gdpr.objection TO {d}",
        f"GRANT INSERT ON ops.access_log TO {d}, {p}",
        f"GRANT SELECT ON ops.access_log TO {p}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA desk TO {d}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA ops TO {p}",
        f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA gdpr TO {p}",
        f"GRANT SELECT, DELETE ON ops.access_log TO {g}",
        f"GRANT SELECT, INSERT ON ops.access_log_anchor TO {g}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA marts TO {b}",
        # later tables: the writer writes them, BI reads marts; readers of personal layers wait
        # for `hub warehouse roles`, which grants together with row security
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA core, golden, gdpr, ops, marts "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {w}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA marts GRANT SELECT ON TABLES TO {b}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {w} IN SCHEMA marts GRANT SELECT ON TABLES TO {b}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {w}",
    ]
    out += [f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {d}, {p}" for s in ("core", "golden")]
    # the search index's tables (warehouse.search), when made: the writer refills them each
    # publication with TRUNCATE (it keeps their grants and indexes), never creates them
    out.append(f"""DO $$ DECLARE t regclass; BEGIN
    FOR t IN SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'golden' AND c.relname LIKE 'citizen\\_search%' AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('GRANT SELECT, INSERT, DELETE, TRUNCATE ON %s TO {w}', t);
    END LOOP;
END $$""")
    # the desk's search (warehouse.search), when built: EXECUTE for the desk alone
    out.append(f"""DO $$ DECLARE f regprocedure; BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'golden' AND p.proname = 'search_citizens' LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO {d}', f);
    END LOOP;
END $$""")
    return out


def raw_schema_sql(roles: Roles, raw_schemas: Iterable[str]) -> list[str]:
    w, d, p = roles.writer, roles.desk, roles.dpo
    out = []
    for s in sorted(raw_schemas):
        out += [f'GRANT USAGE ON SCHEMA "{s}" TO {w}, {d}, {p}',
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{s}" TO {w}']
    return out


def table_security_sql(table: str, columns: Iterable[str], roles: Roles) -> list[str]:
    """ENABLE + FORCE row security on one personal table, its policies (replaced), and the readers'
    SELECT, in that order."""
    q = _q(table)
    out = [f"ALTER TABLE {q} ENABLE ROW LEVEL SECURITY", f"ALTER TABLE {q} FORCE ROW LEVEL SECURITY"]
    # policies of an older model (or another role prefix) go first: only these remain
    out.append(f"""DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT policyname FROM pg_policies WHERE schemaname = '{table.split('.')[0]}'
             AND tablename = '{table.split('.')[1]}' LOOP
        EXECUTE format('DROP POLICY %I ON {q}', r.policyname);
    END LOOP;
END $$""")
    out += [str(pol.entity().to_sql_statement_create()) for pol in policies(table, columns, roles)]
    schema = table.split(".")[0]
    if schema.startswith("raw_"):
        out += [*raw_schema_sql(roles, [schema]), f"GRANT SELECT ON {q} TO {roles.desk}, {roles.dpo}"]
    return out


def guarded(table: str, statements: Iterable[str]) -> str:
    """The statements as one block that runs only when ``table`` exists: raw tables come with their
    silo's first load, so an offline script (or an upgrade before any load) must not assume them."""
    body = "\n".join(f"        EXECUTE $stmt${s}$stmt$;" for s in statements)
    return f"DO $guard$ BEGIN\n    IF to_regclass('{_q(table)}') IS NOT NULL THEN\n{body}\n    END IF;\nEND $guard$"


def personal_tables(register: Register) -> dict[str, list[str]]:
    """"schema.table" -> its columns, for every table the register maps personal columns in
    (the contract's columns for hub tables, the register's personal ones for raw tables)."""
    contract = {f"{t.schema}.{t.name}": t.column_names for t in ALL_TABLES}
    return {t: contract.get(t, sorted(cols)) for t, cols in sorted(register.personal_columns().items())}


def security_sql(register: Register, roles: Roles, *, present: set[str] | None = None,
                 guard: bool = False) -> list[str]:
    """Every statement of the security model, in order: roles, ownership, functions, views, grants,
    row security of each personal table (only those in ``present`` when given: raw tables appear
    with their first load; with ``guard``, each in a block that runs only if the table exists, for
    a migration's offline script), column grants. Idempotent."""
    tables = {t: c for t, c in personal_tables(register).items() if present is None or t in present}
    out = role_sql(roles)
    # created only when missing: CREATE SCHEMA IF NOT EXISTS wants CREATE on the database even then,
    # which an admin login re-applying the model does not hold
    out += [f"""DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '{s}') THEN CREATE SCHEMA "{s}"; END IF;
END $$""" for s in HUB_SCHEMAS]
    out += ownership_sql(roles)
    for e in functions():
        out += [str(s) for s in e.to_sql_statement_create_or_replace()]
    for v in views():
        out += [f'DROP VIEW IF EXISTS desk."{v.signature}"', str(v.to_sql_statement_create()).rstrip(";")]
    out += view_options_sql()
    out += ownership_sql(roles)  # the functions and views just made
    out += grant_sql(roles)
    for table, cols in tables.items():
        stmts = table_security_sql(table, cols, roles)
        out += [guarded(table, stmts)] if guard else stmts
    out += [str(g.to_sql_statement_create()) for g in column_grants(roles)]
    return out


def present_tables(wh) -> set[str]:
    """"schema.table" of every table in the warehouse (catalog, whatever the caller's privileges)."""
    return {f"{s}.{t}" for s, t in wh.rows(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p')")}


def apply(wh, register: Register, roles: Roles | None = None) -> int:
    """Apply the security model to a PostgreSQL warehouse (after its migrations), in one transaction,
    and refresh ``ops.access_grant`` from the register. Run by the owner or an admin; idempotent.
    Returns the personal tables secured."""
    if wh.kind != "postgres":
        raise ValueError("roles and row security are PostgreSQL's: the DuckDB file is single-user by design")
    roles = roles or roles_from_env()
    present = present_tables(wh)
    missing = [t for t in personal_tables(register) if t not in present and not t.startswith("raw_")]
    if missing:
        raise RuntimeError(f"tables of the register missing from the warehouse: {', '.join(missing)} "
                           "(run hub warehouse upgrade first)")
    with wh.transaction():
        for stmt in security_sql(register, roles, present=present):
            wh.execute(stmt)
        sync_access_grants(wh, register)
    n = sum(1 for t in personal_tables(register) if t in present)
    log.info("row security on %d personal table(s), roles %s_*", n, roles.prefix)
    return n
