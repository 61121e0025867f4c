"""Airflow runs in the run reports: ops.pipeline_run's dag_id (the DAG that ran a run; empty for
`hub run`), so a run only marks aborted the runs of its own launcher (schemas.contract.PIPELINE_RUN).

Revision ID: 0005_airflow_runs
Revises: 0004_run_reports
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_airflow_runs"
down_revision = "0004_run_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # if_not_exists: a `hub run` may have added it already (warehouse.ops adds new contract columns)
    op.add_column("pipeline_run", sa.Column("dag_id", sa.Text(), nullable=True), schema="ops", if_not_exists=True)


def downgrade() -> None:
    op.drop_column("pipeline_run", "dag_id", schema="ops")
