"""The pipeline's and the desk's logins: the loader role, the writer's grants for a whole `hub run`.

- ``<prefix>_loader`` (NOLOGIN, NOBYPASSRLS): CREATE on the database, owner of the ``raw_*`` schemas
  and tables (dlt creates and evolves them), under forced row security there with its own policies;
  the tables it creates are open to the writer by default privileges. The admin role is a member
  (it hands existing raw tables over).
- the writer refills the search index's tables (TRUNCATE), never creates them.
- the desk reads an objection's citizen, processing and revocation in ``gdpr.objection`` (Art. 21
  holds under its login), nothing else of that schema.

The security model of warehouse.roles re-applied as a whole (idempotent; raw tables guarded).
On a warehouse whose roles predate it, run it as the superuser or the database's owner with
CREATEROLE (it creates the loader and grants it CREATE on the database); later upgrades, and
re-runs, as an admin login.

Revision ID: 0008_pipeline_logins
Revises: 0007_search_variants
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from warehouse import roles as security

revision = "0008_pipeline_logins"
down_revision = "0007_search_variants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    security.reapply(op)


def downgrade() -> None:
    roles, _ = security.migration_model(op)
    op.execute(f"""DO $$ DECLARE r record; BEGIN
    FOR r IN SELECT n.nspname FROM pg_namespace n WHERE n.nspname LIKE 'raw\\_%' LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO {roles.owner}', r.nspname);
    END LOOP;
    FOR r IN SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname LIKE 'raw\\_%' AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE %I.%I OWNER TO {roles.owner}', r.nspname, r.relname);
    END LOOP;
END $$""")
    # the loader role, its CREATE on the database and its memberships stay, as every role does
    # (roles are the cluster's, and granting them back needs more than an admin login)
    op.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {roles.loader} REVOKE ALL ON TABLES FROM {roles.writer}")
    op.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {roles.loader} REVOKE ALL ON SCHEMAS FROM {roles.writer}")
    op.execute(f"REVOKE SELECT (citizen_id, processing_id, revoked_at) ON gdpr.objection FROM {roles.desk}")
    op.execute(f"REVOKE USAGE ON SCHEMA gdpr FROM {roles.desk}")
