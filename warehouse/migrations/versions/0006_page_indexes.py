"""The citizen page's lookups indexed (issue #13): a citizen's interactions, silo households and
organisation roles by record key, discrepancies and foyer memberships by citizen id, and the access
log by seq (each append reads the last one) and by citizen (the DPO's "who looked at me").
``golden.citizen_attribute`` needs none: its primary key starts with citizen_id. The same
definitions as warehouse.metadata.INDEXES (a DuckDB reader's snapshot gets them from there).

Revision ID: 0006_page_indexes
Revises: 0005_airflow_runs
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0006_page_indexes"
down_revision = "0005_airflow_runs"
branch_labels = None
depends_on = None

# (schema, table, index, column)
INDEXES = (
    ("core", "interaction", "ix_interaction_record_key", "record_key"),
    ("core", "household_membership", "ix_household_membership_record_key", "record_key"),
    ("core", "organisation_role", "ix_organisation_role_record_key", "record_key"),
    ("golden", "discrepancy", "ix_discrepancy_citizen_id", "citizen_id"),
    ("golden", "household_member", "ix_household_member_citizen_id", "citizen_id"),
    ("ops", "access_log", "ix_access_log_seq", "seq"),
    ("ops", "access_log", "ix_access_log_citizen_id", "citizen_id"),
)


def upgrade() -> None:
    for schema, table, name, column in INDEXES:
        op.create_index(name, table, [column], schema=schema, if_not_exists=True)


def downgrade() -> None:
    for schema, table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table, schema=schema, if_exists=True)
