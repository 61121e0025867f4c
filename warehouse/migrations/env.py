"""Alembic environment: the hub's MetaData (warehouse.metadata, from schemas.contract), the URL and
the role prefix handed by warehouse.migrate; online against the warehouse or offline (SQL for a DBA)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from warehouse.metadata import metadata

config = context.config
target_metadata = metadata()


def _include_object(obj, name, type_, reflected, compare_to) -> bool:
    # only the hub's own layers: raw_* belong to dlt, staging views are rebuilt each run
    schema = getattr(obj, "schema", None) or (obj.table.schema if hasattr(obj, "table") else None)
    return schema in {t.schema for t in target_metadata.tables.values()}


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, dialect_opts={"paramstyle": "named"},
                      include_schemas=True, include_object=_include_object)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url"), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          include_schemas=True, include_object=_include_object, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
