"""Where the access log lives, so that writing it never makes a read or a run fail.

* **PostgreSQL**: ``ops.access_log`` in the warehouse (append-only trigger, row security).
* **DuckDB**: its own small file beside the warehouse, ``<stem>.access_log.duckdb``. Readers read a
  read-only published snapshot (warehouse/snapshot.py) they cannot write into, and the warehouse
  file itself is a run's for as long as it runs; the log file is opened for one append at a time
  (milliseconds), by readers and writers alike. When another process is appending, the open is
  retried for up to :data:`RETRY_SECONDS`; past that :class:`AccessLogUnavailable` is raised and the
  read is not shown: every read must be logged (CNIL deliberation 2021-122).

A log an earlier version kept inside the DuckDB warehouse is moved to the file, once, by the first
writer that opens the warehouse after the upgrade (:func:`move_out_of`; a run's publication does it
before any reader can append).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from warehouse.engine import Warehouse, WarehouseBusy, qualified

log = logging.getLogger(__name__)

RETRY_SECONDS = 10.0
_appending = threading.RLock()  # one appender per process: the chain is a sequence
F = TypeVar("F", bound=Callable[..., Any])


class AccessLogUnavailable(RuntimeError):
    """The access log could not be written in time: the read it records must not be shown."""

    def __init__(self, path: Path, seconds: float):
        self.file = path
        super().__init__(
            f"journal des accès indisponible / the access log {path} stayed locked by another process for "
            f"{seconds:.0f} s: nothing was shown, since every read must be logged (CNIL); retry in a moment")


def log_path(wh: Warehouse) -> Path | None:
    """The access log's own file for a DuckDB warehouse (None on PostgreSQL: ``ops.access_log``)."""
    if wh.kind != "duckdb" or wh.path is None:
        return None
    if getattr(wh, "is_access_log", False):
        return wh.path
    return wh.path.with_name(f"{wh.path.stem}.access_log.duckdb")


@contextmanager
def opened(wh: Warehouse) -> Iterator[Warehouse]:
    """The warehouse holding the log for ``wh`` (a writer's, a reader's, or the log's own): ``wh``
    itself on PostgreSQL; on DuckDB the log file, opened for this block only."""
    path = log_path(wh)
    if path is None or getattr(wh, "is_access_log", False):
        yield wh
        return
    with _appending:
        if not wh.read_only:
            move_out_of(wh)
        store = _open(path)
        try:
            yield store
        finally:
            store.close()


def on_log_store(fn: F) -> F:
    """Decorate a function whose first argument is a warehouse so that it runs on the log's store."""

    @functools.wraps(fn)
    def wrapper(wh: Warehouse, *args: Any, **kwargs: Any) -> Any:
        with opened(wh) as store:
            return fn(store, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _open(path: Path) -> Warehouse:
    deadline = time.monotonic() + RETRY_SECONDS
    pause = 0.01
    while True:
        try:
            store = Warehouse(f"duckdb:///{path}")
        except WarehouseBusy:
            if time.monotonic() >= deadline:
                raise AccessLogUnavailable(path, RETRY_SECONDS) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
            continue
        store.is_access_log = True  # type: ignore[attr-defined]
        return store


def move_out_of(wh: Warehouse) -> int:
    """Move the rows (and purge anchors) of a log kept inside a DuckDB warehouse ``wh`` (a writer's
    connection) to the log's own file, keeping their hashes; returns the rows moved. Idempotent: a
    move interrupted after the copy finds the rows there and only empties the warehouse's table."""
    from schemas.contract import ACCESS_LOG
    from warehouse.access_log import ANCHOR, _ensure_here

    path = log_path(wh)
    if path is None or wh.read_only or getattr(wh, "is_access_log", False):
        return 0
    if not wh.table_exists(ACCESS_LOG.schema, ACCESS_LOG.name):
        return 0
    has_anchor = wh.table_exists(ANCHOR.schema, ANCHOR.name)
    n = int(wh.scalar(f"SELECT count(*) FROM {qualified(ACCESS_LOG)}") or 0)
    anchors = int(wh.scalar(f"SELECT count(*) FROM {qualified(ANCHOR)}") or 0) if has_anchor else 0
    if not n and not anchors:
        return 0
    with _appending:
        _ensure_here(wh)  # an older log gains its columns and chain where it is, then moves whole
        rows = wh.arrow(f"SELECT {', '.join(ACCESS_LOG.column_names)} FROM {qualified(ACCESS_LOG)} ORDER BY seq")
        kept = (wh.arrow(f"SELECT {', '.join(ANCHOR.column_names)} FROM {qualified(ANCHOR)} "
                         "ORDER BY purged_through_seq") if has_anchor else None)
        store = _open(path)
        try:
            _ensure_here(store)
            there = store.rows(f"SELECT seq, row_hash FROM {qualified(ACCESS_LOG)} ORDER BY seq DESC LIMIT 1")
            last = rows.slice(rows.num_rows - 1).to_pylist()[0] if rows.num_rows else None
            if there and (last is None or int(there[0][0]) < int(last["seq"])):
                from warehouse.access_log import BrokenChain

                raise BrokenChain(None, f"two access logs: {path} and the warehouse's ops.access_log both hold "
                                        "rows; the warehouse's were not moved (nothing deleted)")
            if not there:
                with store.transaction():
                    store.write(ACCESS_LOG, rows)
                    if kept is not None and kept.num_rows:
                        store.write(ANCHOR, kept)
        finally:
            store.close()
        with wh.transaction():
            wh.execute(f"DELETE FROM {qualified(ACCESS_LOG)}")
            if has_anchor:
                wh.execute(f"DELETE FROM {qualified(ANCHOR)}")
    log.info("access log: %d row(s) moved from the warehouse to %s", n, path)
    return n
