"""The desk's search at 1M records (issue #13) and its objects made by the owner, not at run time
(issue #14).

- ``golden.citizen_search_variant`` replaces the trigram table and pg_trgm's GIN index: every name
  term under its key and one-letter deletions, hashed, so a word typed with one typo finds its
  term by B-tree equality (warehouse.search explains the lookup); ``citizen_search_term.trigrams``
  goes with them.
- The postings get a B-tree by (term_id, citizen_no) and one by citizen_no: the search reads the
  rarest word's postings, then probes the other words citizen by citizen.
- ``golden.search_citizens`` is replaced by the version that intersects the silo mask it is given
  with the session's grants (``ops.granted_systems()``): a caller cannot widen it.
- The pipeline's writer refills the index tables (``TRUNCATE``, ``INSERT``) and creates nothing:
  ``warehouse.search.build_index`` runs no DDL on a migrated warehouse.

The DDL is ``warehouse.search.search_ddl()`` (the same definitions build a warehouse no migration
made); the security model is re-applied after, as 0003 does, so the new table and function get
their owner, row security and grants.

Revision ID: 0007_search_variants
Revises: 0006_page_indexes
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from warehouse import roles as security

revision = "0007_search_variants"
down_revision = "0006_page_indexes"
branch_labels = None
depends_on = None

INDEX_TABLES = ("citizen_search", "citizen_search_term", "citizen_search_posting", "citizen_search_variant",
                "citizen_search_system")


def upgrade() -> None:
    from schemas.register import load_register
    from warehouse.search import SEARCH_FUNCTION_SIGNATURE, search_ddl

    for stmt in search_ddl():
        op.execute(stmt)
    attrs = op.get_context().config.attributes if op.get_context().config else {}
    roles, register = attrs.get("roles") or security.roles_from_env(), attrs.get("register") or load_register()
    for stmt in security.security_sql(register, roles, guard=True):
        op.execute(stmt)
    op.execute(f"REVOKE ALL ON FUNCTION {SEARCH_FUNCTION_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SEARCH_FUNCTION_SIGNATURE} TO {roles.desk}")
    op.execute(f"GRANT TRUNCATE ON {', '.join(f'golden.{t}' for t in INDEX_TABLES)} TO {roles.writer}")


def downgrade() -> None:
    from warehouse.search import SEARCH_FUNCTION_SIGNATURE

    # the previous release makes its own trigram objects when it next builds the index
    op.execute(f"DROP FUNCTION IF EXISTS {SEARCH_FUNCTION_SIGNATURE}")
    op.execute("DROP TABLE IF EXISTS golden.citizen_search_variant")
    op.execute("ALTER TABLE golden.citizen_search_term ADD COLUMN IF NOT EXISTS trigrams integer NOT NULL DEFAULT 0")
