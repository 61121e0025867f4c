"""Finance silo: a SQL database (SQLite, MariaDB or PostgreSQL) read with dlt's sql_database source.

Arrow end to end (``backend="pyarrow"``), merged on ``id``, incremental on ``updated_at``. Soft
deletes (``supprime``) are kept as the source has them; staging turns them into ``deleted_at``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from connectors.base import (
    Collector,
    ExtractResult,
    Guard,
    SourceError,
    complete_pending,
    empty_tables,
    exception_chain,
    is_national_id_column,
    loader_file_format,
    make_pipeline,
    record_merge,
    resource_name_of,
    with_keys_not_null,
)

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
    """``load`` keyword arguments from the source's settings (``url``: a SQLAlchemy URL).

    A password may be kept out of the settings file: ``password_env`` names its variable."""
    url = params["url"]
    if params.get("password_env"):
        from sqlalchemy.engine import make_url

        url = make_url(url).set(password=secret("password")).render_as_string(hide_password=False)
    return {"source_url": url}


def load(destination: Any, run_id: str, *, pipelines_dir: Path, source_url: str,
         chunk_size: int = 50_000) -> ExtractResult:
    """Extract tiers, factures and paiements into ``raw_finance`` (merge on id, incremental on updated_at).

    ``source_url`` is a SQLAlchemy URL (``sqlite:///…``, ``mysql+pymysql://…``, ``postgresql+psycopg://…``).
    Raises :class:`SourceError` when the database cannot be read; nothing already loaded is lost.
    """
    import dlt
    from dlt.sources.sql_database import sql_database

    collector = Collector(run_id, SYSTEM, TABLES)
    keyed: set[str] = set()  # tables whose own primary key is id: one SELECT returns each id once

    def adapt(table: Any) -> None:
        _drop_national_id_columns(table)
        if [c.name for c in table.primary_key.columns] == ["id"]:
            keyed.add(table.name)

    try:
        source = sql_database(
            credentials=source_url,
            table_names=list(TABLES),
            backend="pyarrow",
            chunk_size=chunk_size,
            reflection_level="full_with_precision",
            table_adapter_callback=adapt,
        )
        pipeline = make_pipeline(SYSTEM, destination, pipelines_dir)
        complete_pending(pipeline, collector)  # before the emptiness test: an aborted run's rows count
        empty = empty_tables(pipeline, list(TABLES))
        for name in TABLES:
            resource = source.resources[name]
            # A first load into an empty raw table needs no merge when ids are unique in the run:
            # append skips dlt's staging table and DELETE / INSERT (~3/4 of a 1M-row load's load
            # step here). A table holding rows always gets merge semantics.
            resource.apply_hints(
                primary_key="id",
                write_disposition="append" if name in empty and name in keyed else "merge",
                incremental=dlt.sources.incremental("updated_at", on_cursor_value_missing="include"),
            )
            resource.add_step(Guard(collector, name, lambda row, t=name: f"{t}:id={row.get('id')}"))
        pipeline.run(with_keys_not_null(source), loader_file_format=loader_file_format(destination))
        record_merge(pipeline, [n for n in TABLES if n in empty and n in keyed])
    except SourceError:
        raise
    except Exception as e:
        raise _translate(e, source_url) from None
    result = collector.result()
    log.info("finance run %s: %s", run_id,
             ", ".join(f"{c.entity} {c.rows_loaded}/{c.rows_read}" for c in result.counts))
    return result


def _translate(e: Exception, source_url: str) -> SourceError:
    """A SourceError saying where it failed; driver messages can quote row values, so they are dropped."""
    from sqlalchemy.exc import NoSuchTableError, OperationalError

    for x in exception_chain(e):
        if isinstance(x, SourceError):
            return x
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
