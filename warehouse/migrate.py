"""Upgrading a warehouse's schema: Alembic on PostgreSQL, the same MetaData on DuckDB.

PostgreSQL: :func:`upgrade` runs the revisions of ``warehouse/migrations`` (tables, then roles, row
security, views, functions and grants); ``sql=True`` renders them as one SQL script for a DBA to
review instead (Alembic's offline mode), touching nothing. A warehouse built by the previous release
(``hub run``, no version table) is upgraded as it is: the baseline creates only what is missing.

DuckDB: no Alembic dialect and no roles (the file is single-user by design): the tables are created
from the same MetaData (:func:`warehouse.metadata.create_all`), missing columns added.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from urllib.parse import urlparse

from schemas.register import Register
from warehouse.roles import Roles

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlalchemy_url(url: str) -> str:
    """The warehouse URL for SQLAlchemy, with the psycopg (3) driver the engine uses."""
    scheme, rest = url.split("://", 1)
    if scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"Alembic migrations are for PostgreSQL warehouses, not {scheme!r}")
    return "postgresql+psycopg://" + rest


def alembic_config(url: str, *, roles: Roles | None = None, register: Register | None = None,
                   output: io.StringIO | None = None):
    """An Alembic ``Config`` for the hub's migrations on ``url`` (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config(output_buffer=output)
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", _sqlalchemy_url(url).replace("%", "%%"))
    if roles is not None:
        cfg.attributes["roles"] = roles
    if register is not None:
        cfg.attributes["register"] = register
    return cfg


def upgrade(url: str, *, sql: bool = False, revision: str = "head", roles: Roles | None = None,
            register: Register | None = None) -> str:
    """Upgrade the warehouse at ``url`` to ``revision``; with ``sql``, return the SQL instead of
    running it. Returns the SQL script (``sql``) or a summary of what was done."""
    kind = urlparse(url).scheme.split("+")[0]
    if kind == "duckdb":
        if sql:
            raise ValueError("offline SQL is PostgreSQL's (Alembic); a DuckDB file upgrades in place")
        from warehouse.engine import Warehouse
        from warehouse.metadata import create_all

        with Warehouse(url) as wh:
            done = create_all(wh)
        return "; ".join(done) or "up to date"
    from alembic import command

    out = io.StringIO()
    cfg = alembic_config(url, roles=roles, register=register, output=out)
    command.upgrade(cfg, revision, sql=sql)
    if sql:
        return out.getvalue()
    return f"at {current(url) or 'base'}"


def current(url: str) -> str | None:
    """The warehouse's Alembic revision (None before the first upgrade)."""
    import sqlalchemy as sa
    from alembic.runtime.migration import MigrationContext

    engine = sa.create_engine(_sqlalchemy_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as con:
            return MigrationContext.configure(con).get_current_revision()
    finally:
        engine.dispose()
