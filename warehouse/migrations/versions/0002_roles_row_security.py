"""Roles, grants and row-level security; ops.access_grant; the access log's desk columns.

The security model is rendered by warehouse.roles (version 1 of it): group roles, the owner role
owning every hub object, one policy per command and role on every table the register maps personal
columns in (raw tables only when loaded: guarded), the reader views, the function the policies call,
the grants per layer and the register's access rules as rows of ops.access_grant. A later change of
the model ships as a new revision; ``hub warehouse roles`` re-applies it after a register change.

Revision ID: 0002_roles_row_security
Revises: 0001_baseline
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from warehouse import roles as security

revision = "0002_roles_row_security"
down_revision = "0001_baseline"
branch_labels = None
depends_on = None


# The tables 0001 and this revision create: their policies are alembic_utils entities; any other
# personal table of the register (raw_* with their first load, tables of later revisions) is secured
# in a block that runs only when the table exists.
CREATED = frozenset({
    "core.household_membership", "core.interaction", "core.organisation", "core.organisation_role",
    "core.person_record", "gdpr.dsr_event", "gdpr.dsr_request", "gdpr.objection", "gdpr.rectification",
    "gdpr.suppression", "golden.citizen", "golden.citizen_alias", "golden.citizen_attribute",
    "golden.citizen_link", "golden.discrepancy", "golden.household", "golden.household_member",
    "golden.match_decision", "golden.resolution_release", "golden.resolution_run", "golden.review_queue",
    "ops.access_log", "ops.access_log_anchor", "ops.quarantine", "ops.source_run", "ops.stage_run",
    "ops.access_grant",
})


def upgrade() -> None:
    roles, register = security.migration_model(op)
    for stmt in security.role_sql(roles):
        op.execute(stmt)
    for schema in security.HUB_SCHEMAS:
        op.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

    grants = op.create_table(
        "access_grant",
        sa.Column("collectivite", sa.Text(), nullable=False),
        sa.Column("service", sa.Text(), nullable=False),
        sa.Column("processing_id", sa.Text(), nullable=False),
        sa.Column("source_system", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("collectivite", "service", "processing_id", "source_system",
                                name="access_grant_pkey"),
        schema="ops", if_not_exists=True,
    )
    # the desk's readers in the access log (added at run time by warehouse.access_log before this)
    op.add_column("access_log", sa.Column("collectivite", sa.Text(), nullable=True), schema="ops", if_not_exists=True)
    op.add_column("access_log", sa.Column("service", sa.Text(), nullable=True), schema="ops", if_not_exists=True)
    # golden rows are scoped through their citizen's links
    op.create_index("ix_citizen_link_citizen_id", "citizen_link", ["citizen_id"], schema="golden",
                    if_not_exists=True)

    for fn in security.functions():
        op.create_entity(fn)
    for view in security.views():
        op.create_entity(view)
    for stmt in security.view_options_sql():
        op.execute(stmt)
    for stmt in security.ownership_sql(roles):
        op.execute(stmt)
    for stmt in security.grant_sql(roles):
        op.execute(stmt)

    for table, cols in security.personal_tables(register).items():
        if table not in CREATED:
            op.execute(security.guarded(table, security.table_security_sql(table, cols, roles)))
            continue
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        for policy in security.policies(table, cols, roles):
            op.create_entity(policy.entity())
    for grant in security.column_grants(roles):
        op.create_entity(grant)

    op.execute("DELETE FROM ops.access_grant")
    op.bulk_insert(grants, [dict(zip(security.ACCESS_GRANT.column_names, row, strict=True))
                            for row in security.access_grants(register)])


def downgrade() -> None:
    roles, register = security.migration_model(op)
    for grant in security.column_grants(roles):
        op.drop_entity(grant)
    for table in security.personal_tables(register):
        op.execute(security.guarded(table, [
            f"""DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT policyname FROM pg_policies WHERE schemaname || '.' || tablename = '{table}' LOOP
        EXECUTE format('DROP POLICY %I ON {table}', r.policyname);
    END LOOP;
END $$""",
            f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"]))
    for view in security.views():
        op.drop_entity(view)
    for fn in security.functions():
        op.drop_entity(fn, cascade=True)
    op.drop_index("ix_citizen_link_citizen_id", table_name="citizen_link", schema="golden", if_exists=True)
    op.drop_table("access_grant", schema="ops")
    op.execute("DROP SCHEMA IF EXISTS desk")
