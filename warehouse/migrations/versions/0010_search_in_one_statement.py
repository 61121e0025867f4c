"""The desk's search in one statement, on generic plans (issue #13).

``golden.search_citizens`` now takes the silos in scope by name (it reads their bits itself) and
the processings whose objections in force leave a citizen out (it reads ``gdpr.objection`` itself):
the desk's search was four statements (the objections' table looked up, the objections, the silos'
bits, the function), it is one. Its statements run on generic plans (``SET plan_cache_mode``):
PostgreSQL kept planning them afresh at each call, which cost more than a simple search's execution
(1.2 ms of 3.7 for an e-mail at 1M citizens).

The function alone is replaced, through ``warehouse.search.search_function_ddl()`` (which drops
every earlier signature; the index tables and their indexes are left as they are), then the
security model re-applied (the desk's ``EXECUTE``), by an admin login.

Revision ID: 0010_search_in_one_statement
Revises: 0009_desk_policies_by_probe
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from warehouse import roles as security

revision = "0010_search_in_one_statement"
down_revision = "0009_desk_policies_by_probe"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from warehouse.search import search_function_ddl

    for stmt in search_function_ddl():
        op.execute(stmt)
    security.reapply(op)


def downgrade() -> None:
    # the previous release's code calls the earlier signature: it recreates its function when it
    # next migrates; nothing here can rebuild that version
    pass
