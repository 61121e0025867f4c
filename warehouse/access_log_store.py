"""Where the access log lives, so that writing it never makes a read or a run fail.

* **PostgreSQL**: ``ops.access_log`` in the warehouse (append-only trigger, row security).
* **DuckDB**: its own small file beside the warehouse, ``<stem>.access_log.duckdb``. Readers read a
  read-only published snapshot (warehouse/snapshot.py) they cannot write into, and the warehouse
  file itself is a run's for as long as it runs. A process keeps the log file open while it is
  logging reads (one connection per process, :class:`_Store`) and closes it once no read was logged
  for :data:`IDLE_SECONDS`, and at least every :data:`HOLD_SECONDS` under load, so that the other
  processes (the CLI, a run's publication, another desk) get their turn. Concurrent appends of one
  process are written together (group commit): each caller waits until its rows are committed, so
  every read is logged before it is shown. A group is made durable in the file's **pending file**
  (``<log file>.pending``: one JSON line per row, already chained, written and ``fdatasync``-ed —
  what DuckDB's own commit does with its write-ahead log) and folded into the log file's table in
  one statement every :data:`FOLD_ROWS` rows, before any other use of the log (a report, a purge,
  an export: :func:`opened`) and before the file is closed or handed over; a process that opens the
  file folds what a crashed holder left (rows already in the table are not written twice, a torn
  last line — never confirmed to its caller — is dropped). A DuckDB statement and commit cost 3–5 ms
  of CPU whatever the rows, the desk's whole search budget; the pending file's write, a tenth of it.
  When another process holds the file, the open is retried
  for up to :data:`RETRY_SECONDS`; past that :class:`AccessLogUnavailable` is raised and the read is
  not shown: every read must be logged (CNIL deliberation 2021-122).

A log an earlier version kept inside the DuckDB warehouse is moved to the file, once, by the first
writer that opens the warehouse after the upgrade (:func:`move_out_of`; a run's publication does it
before any reader can append).
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from warehouse.engine import Warehouse, WarehouseBusy, qualified

log = logging.getLogger(__name__)

RETRY_SECONDS = 10.0
IDLE_SECONDS = 0.25  # the file is closed once no read was logged for this long
HOLD_SECONDS = 0.5  # held at least this long; past it, handed over as soon as another process waits
RETRY_PAUSE = 0.02
FOLD_ROWS = 5_000  # rows the pending file takes before they are folded into the log file's table
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


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


class _Batch:
    """One caller's rows, waiting for the group they are committed with."""

    __slots__ = ("done", "error", "items")

    def __init__(self, items: list[Any]):
        self.items = items
        self.done = False
        self.error: BaseException | None = None


class _Grouping:
    """This process's one connection to a log, shared by its threads one group of appends at a time
    (``lock``; ``pending``: the batches waiting for the next group)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # one user of the connection at a time; the chain is a sequence
        self.wh: Warehouse | None = None
        self.pending: list[_Batch] = []
        self.pending_lock = threading.Lock()

    def acquire(self) -> Warehouse:  # each store opens its own kind of connection
        raise NotImplementedError

    def release(self) -> None:
        pass

    def close(self) -> None:
        with self.lock:
            if self.wh is not None:
                wh, self.wh = self.wh, None
                wh.close()


class Pending:
    """A DuckDB log file's pending rows: chained rows made durable (one JSON line each, written then
    ``fdatasync``-ed) before they reach the file's table; only the process holding the file writes it."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with open(path, "rb") as f:  # rows not folded yet (a last one cut short counts: it is dropped then)
            data = f.read()
        self.count = data.count(b"\n") + (not data.endswith(b"\n") if data else 0)

    def append(self, lines: bytes, count: int) -> None:
        """Append ``count`` rows (``lines``: one JSON object and a newline each); returns once they are
        on disk."""
        size = os.fstat(self.fd).st_size
        try:
            view = memoryview(lines)
            while view:
                view = view[os.write(self.fd, view):]
            os.fdatasync(self.fd)
        except BaseException:
            # a write that failed (a full disk) is not left half-written before the next group's
            os.ftruncate(self.fd, size)
            raise
        self.count += count

    def rows(self) -> list[dict[str, Any]]:
        """The rows written so far. A last line cut short (a crash while writing it: its caller was
        never told it was logged, so its read was not shown) is dropped; any other unreadable line
        raises, naming the file and the line."""
        import json

        with open(self.path, "rb") as f:
            data = f.read()
        lines = data.split(b"\n")
        out = []
        for n, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                if n == len(lines):  # no newline after it: the write that was cut short
                    log.warning("access log: %s ends with a row cut short by a crash; dropped (its read "
                                "was never shown)", self.path)
                    continue
                raise RuntimeError(f"{self.path}, line {n}: not a row of the access log (the file was "
                                   "edited?); nothing was folded") from None
        return out

    def clear(self) -> None:
        os.ftruncate(self.fd, 0)
        os.fsync(self.fd)
        self.count = 0

    def close(self) -> None:
        os.close(self.fd)


def pending_path(path: Path) -> Path:
    """The pending file of the log file ``path``."""
    return path.with_name(path.name + ".pending")


class _Store(_Grouping):
    """This process's connection to one log file: opened on first use, closed when idle or held too
    long (:data:`IDLE_SECONDS`, :data:`HOLD_SECONDS`), with the file's :class:`Pending` rows."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.opened_at = self.used_at = 0.0
        self.closer: threading.Thread | None = None
        self.pending_rows: Pending | None = None

    def acquire(self) -> Warehouse:
        """The open connection (the caller holds ``lock``)."""
        if self.wh is not None and time.monotonic() - self.opened_at > HOLD_SECONDS and _waiting(self.path):
            self.close()
            _hand_over(self.path)
        if self.wh is None:
            self.wh = _open(self.path)
            self.pending_rows = Pending(pending_path(self.path))
            self.fold()  # what a holder that crashed left
            self.opened_at = self.used_at = time.monotonic()
            if self.closer is None:
                self.closer = threading.Thread(target=self._close_when_idle, name="access-log-closer", daemon=True)
                self.closer.start()
        return self.wh

    def release(self) -> None:
        self.used_at = time.monotonic()

    def fold(self) -> None:
        """Write the pending rows into the log file's table (those it does not hold yet), then empty
        the pending file (the caller holds ``lock``; the connection is open)."""
        if self.pending_rows is None or not self.pending_rows.count:
            return
        from warehouse.access_log import fold_into

        fold_into(self.wh, self.pending_rows.rows())
        self.pending_rows.clear()

    def close(self) -> None:
        with self.lock:
            try:
                if self.wh is not None:
                    self.fold()
            finally:
                if self.pending_rows is not None:
                    self.pending_rows.close()
                    self.pending_rows = None
                super().close()

    def _close_when_idle(self) -> None:
        while True:
            time.sleep(IDLE_SECONDS / 2)
            with self.lock:
                if self.wh is not None and time.monotonic() - self.used_at >= IDLE_SECONDS:
                    self.close()
                if self.wh is None:
                    self.closer = None
                    return


_stores: dict[Path, _Store] = {}
_stores_lock = threading.Lock()
_inherited: list[_Store] = []  # a forked child's copies of its parent's stores: never used, never closed


def _store(path: Path) -> _Store:
    key = path.resolve()
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = _Store(key)
        return store


def _forget_after_fork() -> None:
    # the parent's DuckDB connections are the parent's: a child that closed them would checkpoint
    # into a file the parent writes
    global _stores_lock
    _inherited.extend(_stores.values())
    _stores.clear()
    _database_stores.clear()  # a connection is its process's: the child opens its own
    _stores_lock = threading.Lock()


def close_all() -> None:
    """Close every log file this process holds open (at exit; tests)."""
    for store in [*_stores.values(), *_database_stores.values()]:
        store.close()


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(close_all)


def _is_log(wh: Warehouse) -> bool:
    return bool(getattr(wh, "is_access_log", False))


@contextmanager
def opened(wh: Warehouse) -> Iterator[Warehouse]:
    """The warehouse holding the log for ``wh`` (a writer's, a reader's, or the log's own): ``wh``
    itself on PostgreSQL; on DuckDB this process's connection to the log file, held for this block."""
    path = log_path(wh)
    if path is None or _is_log(wh):
        yield wh
        return
    store = _store(path)
    with store.lock:
        if not wh.read_only:
            move_out_of(wh)
        try:
            lw = store.acquire()
            store.fold()  # every row logged so far is in the table this block reads
            lw._hub_last = None  # type: ignore[attr-defined]  # used outside appends: the chain's end is re-read
            yield lw
        finally:
            store.release()


class _DatabaseStore(_Grouping):
    """This process's own connection to a PostgreSQL warehouse's ``ops.access_log``, for the appends
    made apart from their caller's transaction (the desk's reads): the same login as the caller's,
    opened on first use, reopened when it broke."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url

    def acquire(self) -> Warehouse:
        if self.wh is not None and self.wh.connection.closed:
            self.wh = None
        if self.wh is None:
            self.wh = Warehouse(self.url)
        return self.wh


_database_stores: dict[str, _DatabaseStore] = {}


def _database_store(url: str) -> _DatabaseStore:
    with _stores_lock:
        store = _database_stores.get(url)
        if store is None:
            store = _database_stores[url] = _DatabaseStore(url)
        return store


def write_grouped(wh: Warehouse, items: list[T], write: Callable[[Warehouse, list[T]], Any], *,
                  apart: bool = False) -> None:
    """``write(log, items)`` on the log for ``wh``, returning once it is committed.

    On a DuckDB log file, and on PostgreSQL when ``apart`` (the write is not part of the caller's
    transaction), the items of the threads waiting meanwhile are written with them, in one call on
    this process's own connection to the log (one transaction: a commit per group, not per read,
    and the chain's lock taken once per group); a failure is raised in every caller of the group.
    Otherwise (PostgreSQL) the items are written on ``wh``, in its transaction."""
    path = log_path(wh)
    if path is None:
        if not apart:
            write(wh, items)
            return
        store: _Grouping = _database_store(wh.url)
    elif _is_log(wh):
        write(wh, items)
        return
    else:
        store = _store(path)
    batch = _Batch(items)
    with store.pending_lock:
        store.pending.append(batch)
    with store.lock:
        if not batch.done:
            with store.pending_lock:
                group, store.pending = store.pending, []
            try:
                if path is not None and not wh.read_only:
                    move_out_of(wh)
                try:
                    lw = store.acquire()
                    pending = getattr(store, "pending_rows", None)  # a log file's (not PostgreSQL's)
                    lw.pending_rows = pending  # type: ignore[attr-defined]  # where write puts the rows
                    try:
                        write(lw, [item for b in group for item in b.items])
                    finally:
                        lw.pending_rows = None  # type: ignore[attr-defined]
                    if pending is not None and pending.count >= FOLD_ROWS:
                        store.fold()
                finally:
                    store.release()
            except BaseException as e:
                for b in group:
                    b.error = e
                raise
            finally:
                for b in group:
                    b.done = True
    if batch.error is not None:
        raise batch.error


def on_log_store(fn: F) -> F:
    """Decorate a function whose first argument is a warehouse so that it runs on the log's store."""

    @functools.wraps(fn)
    def wrapper(wh: Warehouse, *args: Any, **kwargs: Any) -> Any:
        with opened(wh) as store:
            return fn(store, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _want_file(path: Path) -> Path:
    return path.with_name(path.name + ".want")


def _waiting(path: Path) -> bool:
    """Whether another process is waiting to open the log file (it holds a shared lock on the
    ``.want`` file beside it while it waits: :func:`_open`)."""
    try:
        fd = os.open(_want_file(path), os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the lock
    return False


def _hand_over(path: Path) -> None:
    """After closing the log file for a waiting process: wait until it has opened it (its shared
    lock released), at most half the retry window, so this process does not take the file back first."""
    deadline = time.monotonic() + RETRY_SECONDS / 2
    while _waiting(path) and time.monotonic() < deadline:
        time.sleep(0.005)


def _open(path: Path) -> Warehouse:
    # announced to the process holding the file (a desk logging reads without pause): it hands over
    want = os.open(_want_file(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(want, fcntl.LOCK_SH)
        return _open_retrying(path)
    finally:
        os.close(want)


def _open_retrying(path: Path) -> Warehouse:
    deadline = time.monotonic() + RETRY_SECONDS
    pause = 0.01
    while True:
        try:
            store = Warehouse(f"duckdb:///{path}")
        except WarehouseBusy:
            if time.monotonic() >= deadline:
                raise AccessLogUnavailable(path, RETRY_SECONDS) from None
            time.sleep(pause)
            pause = min(pause * 2, RETRY_PAUSE)
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
    store = _store(path)
    with store.lock:
        _ensure_here(wh)  # an older log gains its columns and chain where it is, then moves whole
        rows = wh.arrow(f"SELECT {', '.join(ACCESS_LOG.column_names)} FROM {qualified(ACCESS_LOG)} ORDER BY seq")
        kept = (wh.arrow(f"SELECT {', '.join(ANCHOR.column_names)} FROM {qualified(ANCHOR)} "
                         "ORDER BY purged_through_seq") if has_anchor else None)
        log_wh = store.acquire()
        try:
            _ensure_here(log_wh)
            there = log_wh.rows(f"SELECT seq, row_hash FROM {qualified(ACCESS_LOG)} ORDER BY seq DESC LIMIT 1")
            last = rows.slice(rows.num_rows - 1).to_pylist()[0] if rows.num_rows else None
            if there and (last is None or int(there[0][0]) < int(last["seq"])):
                from warehouse.access_log import BrokenChain

                raise BrokenChain(None, f"two access logs: {path} and the warehouse's ops.access_log both hold "
                                        "rows; the warehouse's were not moved (nothing deleted)")
            if not there:
                with log_wh.transaction():
                    log_wh.write(ACCESS_LOG, rows)
                    if kept is not None and kept.num_rows:
                        log_wh.write(ANCHOR, kept)
        finally:
            store.release()
        with wh.transaction():
            wh.execute(f"DELETE FROM {qualified(ACCESS_LOG)}")
            if has_anchor:
                wh.execute(f"DELETE FROM {qualified(ANCHOR)}")
    log.info("access log: %d row(s) moved from the warehouse to %s", n, path)
    return n
