"""Finance silo: a SQL database (SQLite, MariaDB or PostgreSQL) read with dlt's sql_database source.

Arrow end to end (``backend="pyarrow"``), merged on ``id``, incremental on ``updated_at``. Soft
deletes (``supprime``) are kept as the source has them; staging turns them into ``deleted_at``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dlt

from connectors.base import (
    Collector,
    Guard,
    SourceError,
    exception_chain,
    is_national_id_column,
    resource_name_of,
)
from connectors.runner import unique_in_run

log = logging.getLogger(__name__)

SYSTEM = "finance"
TABLES = ("tiers", "factures", "paiements")
_STAGING_DIR = Path(__file__).parent / "staging"
STAGING: dict[str, list[Path]] = {
    "person_record": [_STAGING_DIR / "stg_finance__tiers.sql"],
    "household_membership": [_STAGING_DIR / "stg_finance__groupes.sql"],
    "interaction": [_STAGING_DIR / "stg_finance__factures.sql", _STAGING_DIR / "stg_finance__paiements.sql"],
}


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the configured finance database"


def _drop_national_id_columns(table: Any) -> None:
    """Never select a column that carries a national id by name (sql_database table adapter)."""
    for col in list(table._columns):
        if is_national_id_column(col.name):
            table._columns.remove(col)


def configure(params: Mapping[str, Any], secret: Callable[[str], str]) -> dict[str, Any]:
    """:func:`source` keyword arguments from the source's settings (``url``: a SQLAlchemy URL).

    A password may be kept out of the settings file: ``password_env`` names its variable."""
    url = params["url"]
    if params.get("password_env"):
        from sqlalchemy.engine import make_url

        url = make_url(url).set(password=secret("password")).render_as_string(hide_password=False)
    return {"source_url": url}


@dlt.source(name=SYSTEM)
def source(collector: Collector, source_url: str, chunk_size: int = 50_000) -> Any:
    """Tiers, factures and paiements of the finance database, read with dlt's ``sql_database``
    (merge on id, incremental on updated_at; national-id columns never selected, rows holding one
    quarantined). ``source_url``: a SQLAlchemy URL (``sqlite:///…``, ``mysql+pymysql://…``,
    ``postgresql+psycopg://…``). Run it with :func:`connectors.runner.run_source`."""
    from dlt.sources.sql_database import sql_database

    keyed: set[str] = set()  # tables whose own primary key is id: one SELECT returns each id once

    def adapt(table: Any) -> None:
        _drop_national_id_columns(table)
        if [c.name for c in table.primary_key.columns] == ["id"]:
            keyed.add(table.name)

    tables = sql_database(
        credentials=source_url,
        table_names=list(TABLES),
        backend="pyarrow",
        chunk_size=chunk_size,
        reflection_level="full_with_precision",
        table_adapter_callback=adapt,
    )
    resources = []
    for name in TABLES:
        resource = tables.resources[name]
        resource.apply_hints(
            primary_key="id", write_disposition="merge",
            incremental=dlt.sources.incremental("updated_at", on_cursor_value_missing="include"),
        )
        if name in keyed:
            unique_in_run(resource)
        resource.add_step(Guard(collector, name, lambda row, t=name: f"{t}:id={row.get('id')}"))
        resources.append(resource)
    return resources


def translate(e: Exception, config: Mapping[str, Any]) -> SourceError:
    """A SourceError saying where it failed; driver messages can quote row values, so they are dropped."""
    return _translate(e, config["source_url"])


def _translate(e: Exception, source_url: str) -> SourceError:
    from sqlalchemy.exc import NoSuchTableError, OperationalError

    where = _redact(source_url)
    chain = exception_chain(e)
    table = resource_name_of(e)
    if any(isinstance(x, NoSuchTableError) for x in chain):
        return SourceError(SYSTEM, where, "a finance table is missing (expected tiers, factures, paiements)")
    if any(isinstance(x, OperationalError) for x in chain) and table is None:
        return SourceError(SYSTEM, where, "cannot connect to the finance database")
    kinds = ", ".join(sorted({type(x).__name__ for x in chain}))
    loc = f"{where} table {table}" if table else where
    return SourceError(SYSTEM, loc, f"extraction or load failed ({kinds})")
