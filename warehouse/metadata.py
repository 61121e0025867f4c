"""The hub's own tables as SQLAlchemy ``MetaData``, from the same contract the runtime DDL reads.

:func:`metadata` turns :mod:`schemas.contract` tables (plus the few tables defined beside the code
that writes them, e.g. the access log's purge anchors) into SQLAlchemy tables: Alembic compares it
with a warehouse to write migrations (``warehouse/migrations``), and :func:`create_all` builds the
same tables on DuckDB, which has no Alembic dialect here, by compiling that metadata's DDL.

Logical types map as :data:`schemas.contract.SQL_TYPES` does, so a warehouse built by
``Warehouse.ensure_table`` and one built from this metadata are the same schema.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from schemas.contract import ALL_TABLES, Table

# logical type -> SQLAlchemy type (the PostgreSQL DDL they compile to is SQL_TYPES' second column)
SA_TYPES: dict[str, sa.types.TypeEngine] = {
    "text": sa.Text(),
    "int": sa.Integer(),
    "bigint": sa.BigInteger(),
    "double": sa.Double(),
    "bool": sa.Boolean(),
    "date": sa.Date(),
    "timestamptz": sa.DateTime(timezone=True),
    "money": sa.Numeric(14, 2),
    "json": sa.Text(),
}

# Indexes the readers need beyond the primary keys: row security scopes golden rows through
# citizen_link by citizen id; the citizen page (warehouse.citizen_view) looks a citizen's rows up by
# citizen id or record key (citizen_attribute needs none: its key starts with citizen_id); the access
# log appends after its last seq and the DPO reads it by citizen. PostgreSQL gets them by migration
# (0002, 0005), a DuckDB reader's published snapshot by :func:`create_indexes`.
INDEXES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "golden.citizen_link": (("ix_citizen_link_citizen_id", ("citizen_id",)),),
    "core.interaction": (("ix_interaction_record_key", ("record_key",)),),
    "core.household_membership": (("ix_household_membership_record_key", ("record_key",)),),
    "core.organisation_role": (("ix_organisation_role_record_key", ("record_key",)),),
    "golden.discrepancy": (("ix_discrepancy_citizen_id", ("citizen_id",)),),
    "golden.household_member": (("ix_household_member_citizen_id", ("citizen_id",)),),
    "ops.access_log": (("ix_access_log_seq", ("seq",)), ("ix_access_log_citizen_id", ("citizen_id",))),
}


def hub_tables() -> tuple[Table, ...]:
    """Every table the hub itself creates: the contract's, the marts, the access log's purge anchors
    and the register's access grants."""
    from schemas.marts import MART_TABLES
    from warehouse.access_log import ANCHOR
    from warehouse.roles import ACCESS_GRANT

    return (*ALL_TABLES, *MART_TABLES, ANCHOR, ACCESS_GRANT)


def metadata(tables: Iterable[Table] | None = None) -> sa.MetaData:
    """SQLAlchemy metadata for contract tables (default: :func:`hub_tables`)."""
    md = sa.MetaData()
    for t in tables if tables is not None else hub_tables():
        cols = [sa.Column(c.name, SA_TYPES[c.type], nullable=c.nullable and c.name not in t.key,
                          autoincrement=False) for c in t.columns]
        args: list[sa.SchemaItem] = list(cols)
        if t.key:
            args.append(sa.PrimaryKeyConstraint(*t.key, name=f"{t.name}_pkey"))
        for name, on in INDEXES.get(f"{t.schema}.{t.name}", ()):
            args.append(sa.Index(name, *on))
        sa.Table(t.name, md, *args, schema=t.schema)
    return md


def create_all(wh, tables: Iterable[Table] | None = None) -> list[str]:
    """Create the metadata's schemas, tables and indexes that are missing on the warehouse, and add the
    columns an older warehouse lacks (DuckDB's upgrade; PostgreSQL upgrades through Alembic).
    Returns what was done, one line each."""
    md = metadata(tables)
    done: list[str] = []
    dialect = postgresql.dialect()
    for schema in sorted({t.schema for t in md.tables.values() if t.schema}):
        wh.create_schema(schema)
    for table in md.sorted_tables:
        name = f"{table.schema}.{table.name}"
        if not wh.table_exists(table.schema, table.name):
            wh.execute(str(sa.schema.CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
            done.append(f"created {name}")
        else:
            have = set(wh.columns_of(table.schema, table.name))
            for col in table.columns:
                if col.name not in have:
                    sql_type = col.type.compile(dialect=dialect)
                    wh.execute(f'ALTER TABLE "{table.schema}"."{table.name}" ADD COLUMN "{col.name}" {sql_type}')
                    done.append(f"added {name}.{col.name}")
    # no secondary index on DuckDB: they serve PostgreSQL's row security, and DuckDB's would slow
    # the pipeline's delete-and-insert writes
    return done


def create_indexes(wh, tables: Iterable[Table] | None = None) -> list[str]:
    """Create the :data:`INDEXES` of the tables present on ``wh`` that it lacks (``IF NOT EXISTS``):
    a DuckDB snapshot for readers (ART indexes: a citizen's rows by point lookups instead of scans),
    or a PostgreSQL warehouse built without the migrations. Returns the indexes created."""
    md = metadata(tables)
    dialect = postgresql.dialect()
    done = []
    for table in md.sorted_tables:
        if not table.indexes or not wh.table_exists(table.schema, table.name):
            continue
        for index in sorted(table.indexes, key=lambda i: i.name):
            if _index_exists(wh, table.schema, index.name):
                continue
            wh.execute(str(sa.schema.CreateIndex(index, if_not_exists=True).compile(dialect=dialect)))
            done.append(f"{table.schema}.{index.name}")
    return done


def _index_exists(wh, schema: str, name: str) -> bool:
    if wh.kind == "duckdb":
        sql = "SELECT count(*) FROM duckdb_indexes() WHERE schema_name = :s AND index_name = :n"
    else:  # no CREATE privilege needed to find an index there (a migrated warehouse)
        sql = "SELECT count(*) FROM pg_indexes WHERE schemaname = :s AND indexname = :n"
    return bool(wh.scalar(sql, {"s": schema, "n": name}))
