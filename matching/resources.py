"""DuckDB's resources for a job: memory limit, threads and the directory a query spills to.

Every DuckDB connection the job opens — the warehouse's (``warehouse.engine``) and matching's own
in-memory ones, Splink's included — is opened by :func:`connect`, which gives it the limits in
force; Splink's DuckDB API comes from :func:`splink_api`, which limits the side connection Splink
opens for itself. The hub hands them down (``hub.settings`` ``[resources]``, applied by
``hub.pipeline`` around each step with :func:`applied`); matching reads no settings nor environment. Without
limits a connection keeps DuckDB's defaults (80 % of the machine's memory, every core, spilling
beside a database file only).

A query needing more memory than the limit spills to the temp directory (sorts, joins,
aggregates, windows) instead of failing. The limit bounds DuckDB's buffers, not the Arrow tables
the Python process holds between steps (docs/scale.md).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DuckDBLimits:
    """What each DuckDB connection may use. None: DuckDB's default."""

    memory_limit: str | None = None  # "6GB", "200MB": DuckDB's own syntax
    threads: int | None = None
    temp_directory: Path | None = None  # each connection spills in its own subdirectory of it

    def settings(self) -> dict[str, str]:
        """The DuckDB settings these limits set (the temp directory aside: per connection)."""
        out: dict[str, str] = {}
        if self.memory_limit:
            out["memory_limit"] = self.memory_limit
        if self.threads:
            out["threads"] = str(self.threads)
        return out


_NONE = DuckDBLimits()
_LIMITS: ContextVar[DuckDBLimits | None] = ContextVar("duckdb_limits", default=None)
_SEQ = itertools.count()


@contextmanager
def applied(limits: DuckDBLimits | None) -> Iterator[DuckDBLimits]:
    """Every connection :func:`connect` opens within (this thread or task) gets ``limits``
    (None: the limits already in force)."""
    token = _LIMITS.set(limits or current())
    try:
        yield current()
    finally:
        _LIMITS.reset(token)


def current() -> DuckDBLimits:
    """The limits in force."""
    return _LIMITS.get() or _NONE


def connect(database: str = ":memory:", **kwargs: Any) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect(database, **kwargs)`` with the limits in force applied to the connection."""
    con = duckdb.connect(database, **kwargs)
    try:
        return limit(con)
    except BaseException:
        con.close()
        raise


def limit(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con``, opened elsewhere, with the limits in force applied."""
    limits = current()
    for name, value in limits.settings().items():
        # values from DuckDBLimits (a size string, an int): DuckDB's SET takes no bound parameter
        con.execute(f"SET {name} = '{_literal(value)}'")
    root = limits.temp_directory.resolve() if limits.temp_directory is not None else None
    in_use = Path(con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0])
    if root is not None and in_use.parent != root:
        # a directory of its own, which DuckDB creates when it first spills and removes on close:
        # two connections never share spill files. The setting is the DuckDB instance's: a side
        # connection of an instance already limited (Splink's, on matching's connection) keeps its
        # directory — DuckDB cannot switch it once spilled into (the 3.6M-people run's clustering)
        root.mkdir(parents=True, exist_ok=True)
        own = root / f"{os.getpid()}-{next(_SEQ)}"
        con.execute(f"SET temp_directory = '{_literal(str(own))}'")
    if log.isEnabledFor(logging.DEBUG):
        mem, threads, tmp = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads'), current_setting('temp_directory')"
        ).fetchall()[0]
        log.debug("duckdb connection: memory_limit %s, threads %s, temp_directory %s", mem, threads, tmp)
    return con


def splink_api(con: duckdb.DuckDBPyConnection) -> Any:
    """Splink's ``DuckDBAPI`` on ``con``, the side connection it opens for itself (``duckdb_con``:
    parameter and term-frequency tables) limited too."""
    from splink import DuckDBAPI

    api = DuckDBAPI(connection=con)
    limit(api.duckdb_con)
    return api


def _literal(value: str) -> str:
    return value.replace("'", "''")
