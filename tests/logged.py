"""Queries on the access log, wherever it lives (its own file on DuckDB: warehouse/access_log_store.py)."""

from __future__ import annotations

from typing import Any

from warehouse import access_log


def log_query(wh: Any, method: str, sql: str, params: dict[str, Any] | None = None) -> Any:
    """``wh.<method>(sql, params)`` run on the access log's store for ``wh`` (``rows``, ``scalar``, ``dicts``)."""
    with access_log.opened(wh) as lw:
        if not lw.table_exists("ops", "access_log"):
            access_log.ensure(lw)
        return getattr(lw, method)(sql, params)
