"""Run reports: ops.pipeline_run (one row per `hub run`: how it ended, failed sources, timings,
vetoes) and ops.source_run's rows_deleted (rows a full export no longer lists) and rows_recovered
(an aborted run's rows loaded by the next run); then the security model re-applied so the new
table gets its grants.

From schemas.contract.PIPELINE_RUN and SOURCE_RUN through warehouse.metadata, with
``if_not_exists`` (``hub run`` may have added them already).

Revision ID: 0004_run_reports
Revises: 0003_search_and_marts
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from warehouse import roles as security

revision = "0004_run_reports"
down_revision = "0003_search_and_marts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from schemas.register import load_register

    op.add_column("source_run", sa.Column("rows_deleted", sa.BigInteger(), nullable=True), schema="ops",
                  if_not_exists=True)
    op.add_column("source_run", sa.Column("rows_recovered", sa.BigInteger(), nullable=True), schema="ops",
                  if_not_exists=True)
    op.create_table(
        "pipeline_run",
        sa.Column("run_id", sa.Text(), autoincrement=False, nullable=False),
        sa.Column("status", sa.Text(), autoincrement=False, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), autoincrement=False, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), autoincrement=False, nullable=True),
        sa.Column("pid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("host", sa.Text(), autoincrement=False, nullable=False),
        sa.Column("failed_sources", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("timings", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("vetoes", sa.Text(), autoincrement=False, nullable=True),
        sa.Column("message", sa.Text(), autoincrement=False, nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pipeline_run_pkey"),
        schema="ops", if_not_exists=True,
    )
    attrs = op.get_context().config.attributes if op.get_context().config else {}
    roles, register = attrs.get("roles") or security.roles_from_env(), attrs.get("register") or load_register()
    for stmt in security.security_sql(register, roles, guard=True):
        op.execute(stmt)


def downgrade() -> None:
    op.drop_table("pipeline_run", schema="ops")
    op.drop_column("source_run", "rows_recovered", schema="ops")
    op.drop_column("source_run", "rows_deleted", schema="ops")
