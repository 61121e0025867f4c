"""One writer at a time: the lock a run (``hub run``, an Airflow task that writes) takes first.

A second run started while one is writing stops at once with :class:`RunLocked`, which names the
run holding the lock (run id, what it does, pid, host, start time); it has written nothing.

* DuckDB warehouse: an exclusive ``fcntl.flock`` on ``<var_dir>/run.lock``. The kernel releases
  it when the holder's process ends, however it ends (a ``kill -9`` leaves no stale lock); the
  file only keeps the last holder's description.
* PostgreSQL warehouse: session advisory locks (``pg_try_advisory_lock``) on a connection of their
  own, released by the server when that connection closes or its process dies. They hold across
  machines (Airflow workers on several hosts). A whole run, the canonical build and the
  resolution hold the warehouse key exclusively; ingesting one source holds it shared plus that
  source's key, so sources load side by side but never under a resolution.

The lock is re-entrant within a process: ``hub.pipeline.run`` holds it for the whole run and the
steps it calls may ask again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"
# Advisory lock keys: a fixed namespace (first int) and the warehouse or a source (second int).
_NAMESPACE = 0x6875_6221  # "hub!"
_WAREHOUSE_KEY = 0
CONTEND_SECONDS = 0.5  # how long a run retries a lock it finds taken before saying another run holds it


class RunLocked(RuntimeError):
    """Another run holds the warehouse. ``holder`` describes it (run_id, what, pid, host, started);
    values may be missing when the holder could not be read."""

    def __init__(self, holder: dict[str, Any], where: str):
        self.holder = holder
        self.where = where
        h = holder
        who = h.get("run_id") or "another run"
        what = f" ({h['what']})" if h.get("what") else ""
        pid = f"pid {h['pid']}" if h.get("pid") else "pid unknown"
        host = f" on {h['host']}" if h.get("host") else ""
        since = f", started {h['started']}" if h.get("started") else ""
        super().__init__(
            f"another run is writing to the warehouse: {who}{what}, {pid}{host}{since} (lock: {where}). "
            "This run stopped before writing anything; wait for that one to finish, then run again.")


# process-local re-entrancy: lock identity -> depth
_held: dict[str, int] = {}
_guard = threading.Lock()


def _holder(run_id: str, what: str) -> dict[str, Any]:
    return {"run_id": run_id, "what": what, "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}


@contextmanager
def hold(settings: Any, run_id: str, *, source: str | None = None, what: str | None = None) -> Iterator[None]:
    """Hold the run lock for ``settings``' warehouse while the block runs, or raise :class:`RunLocked`.

    ``source``: the block ingests only that source (on PostgreSQL other sources may load at the
    same time; on DuckDB, a single-writer file, it is exclusive like the rest). ``what`` says what
    the run does, for the message a contender prints (default "run" / "ingest <source>")."""
    url = settings.warehouse_url
    scheme = url.split("://", 1)[0].split("+")[0]
    what = what or (f"ingest {source}" if source else "run")
    if scheme in ("postgresql", "postgres"):
        base = f"pg:{url}"
        ident = f"{base}#{source}" if source else base
        cm = _pg_lock(url, run_id, what, source)
    else:
        path = Path(settings.var_dir) / LOCK_FILE
        base = ident = f"file:{path.resolve()}"  # one writer: a source's ask is the whole file's
        cm = _file_lock(path, run_id, what)
    with _guard:
        # held already by this process (a whole run covers the steps and sources it runs)
        covered = _held.get(base, 0) > 0 or _held.get(ident, 0) > 0
        if covered:
            _held[ident] = _held.get(ident, 0) + 1
    if covered:
        try:
            yield
        finally:
            with _guard:
                _held[ident] -= 1
        return
    with cm:
        with _guard:
            _held[ident] = _held.get(ident, 0) + 1
        try:
            yield
        finally:
            with _guard:
                _held[ident] -= 1


@contextmanager
def _file_lock(path: Path, run_id: str, what: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    # no O_TRUNC: the holder's description must survive a contender opening the file
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # a few tries: `hub status` probes the lock (holder()) for microseconds, a run must not
        # take that for another run
        deadline = time.monotonic() + CONTEND_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise RunLocked(_read_holder(fd), str(path)) from None
                time.sleep(0.02)
        info = json.dumps(_holder(run_id, what)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        os.fsync(fd)
        log.info("run lock %s taken by %s (%s)", path, run_id, what)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(settings: Any) -> dict[str, Any] | None:
    """Who holds the run lock of ``settings``' warehouse now (run_id, what, pid, host, started), or
    None when nobody does. Takes nothing a run would wait for: on DuckDB a shared ``flock`` tried and
    released at once (a run starting at that instant retries, ``CONTEND_SECONDS``); on PostgreSQL a
    look at ``pg_locks``."""
    url = settings.warehouse_url
    if url.split("://", 1)[0].split("+")[0] in ("postgresql", "postgres"):
        import psycopg

        with psycopg.connect("postgresql://" + url.split("://", 1)[1], autocommit=True) as con:
            key = con.execute("SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
                              "AND classid = %s::oid AND objsubid = 2 AND pid <> pg_backend_pid() "
                              "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                              "ORDER BY objid LIMIT 1", (_NAMESPACE,)).fetchone()
            return None if key is None else (_pg_holder(con, int(key[0])) or {})
    path = Path(settings.var_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data.decode()) if data else {}
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


def _source_key(source: str) -> int:
    # crc32 is stable across processes and Python versions (hash() is not); 0 is the warehouse's
    return (zlib.crc32(source.encode()) & 0x7FFF_FFFF) or 1


@contextmanager
def _pg_lock(url: str, run_id: str, what: str, source: str | None) -> Iterator[None]:
    import psycopg

    conninfo = "postgresql://" + url.split("://", 1)[1]
    holder = _holder(run_id, what)
    # who holds it is read back by a contender from pg_stat_activity (63 characters at most)
    app = f"hub {run_id} {what} {holder['pid']}@{holder['host']}"[:63]
    con = psycopg.connect(conninfo, autocommit=True, application_name=app)
    try:
        wanted = [("pg_try_advisory_lock_shared" if source else "pg_try_advisory_lock", _WAREHOUSE_KEY)]
        if source:
            wanted.append(("pg_try_advisory_lock", _source_key(source)))
        for fn, key in wanted:
            ok = con.execute(f"SELECT {fn}(%s::int, %s::int)", (_NAMESPACE, key)).fetchone()[0]
            if not ok:
                raise RunLocked(_pg_holder(con, key), f"PostgreSQL advisory lock ({_NAMESPACE}, {key})")
        log.info("run lock taken by %s (%s) on the PostgreSQL warehouse", run_id, what)
        yield
    finally:
        try:
            # released now: closing the session releases them too, but only once its server process
            # has exited, which a run started right after can beat (seen under load)
            con.execute("SELECT pg_advisory_unlock_all()")
        except psycopg.Error:
            log.debug("run lock: the session was gone; the server released its locks with it")
        con.close()


def _pg_holder(con: Any, key: int) -> dict[str, Any]:
    """The session holding the key, from its application_name ("hub <run> <what…> <pid>@<host>")."""
    row = con.execute(
        "SELECT a.application_name, a.backend_start, a.client_addr::text FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid AND l.objid = %s::oid "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.pid <> pg_backend_pid() ORDER BY a.backend_start LIMIT 1",
        (_NAMESPACE, key)).fetchone()
    if row is None:
        return {}
    app, started, addr = row
    parts = (app or "").split(" ")
    holder: dict[str, Any] = {"started": started.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
    if len(parts) >= 4 and parts[0] == "hub":
        holder["run_id"] = parts[1]
        holder["what"] = " ".join(parts[2:-1])
        pid, _, host = parts[-1].partition("@")
        holder["pid"] = pid
        holder["host"] = host or addr
    else:
        holder["host"] = addr
        holder["run_id"] = app or None
    return holder
