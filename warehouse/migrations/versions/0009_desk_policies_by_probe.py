"""The desk's row policies on citizen-scoped tables as a correlated EXISTS (issue #13).

``golden.citizen``, its attributes, discrepancies, foyer memberships, aliases and match decisions
let the desk see a citizen one of whose links is to a granted silo. The policy said
``citizen_id IN (SELECT citizen_id FROM golden.citizen_link)``, which PostgreSQL plans as a hashed
subplan: every link scanned at each query, whatever the citizen asked for (80 ms per citizen page
at 100,000 citizens, ten times that at 1M). It now says ``EXISTS (... WHERE l.citizen_id =
<table>.citizen_id)``: one probe of ``ix_citizen_link_citizen_id`` per row read. Same rows, same
meaning; ``golden.household`` likewise through ``household_member``'s primary key.

The security model of warehouse.roles re-applied as a whole (idempotent; raw tables guarded), as
0008 does, by an admin login.

Revision ID: 0009_desk_policies_by_probe
Revises: 0008_pipeline_logins
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from warehouse import roles as security

revision = "0009_desk_policies_by_probe"
down_revision = "0008_pipeline_logins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    security.reapply(op)


def downgrade() -> None:
    # the policies select the same rows either way: a downgrade keeps the probing form
    pass
