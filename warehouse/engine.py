"""The warehouse engine: DuckDB (embedded default) or PostgreSQL, chosen by one URL.

``duckdb:///var/hub.duckdb`` or ``postgresql://user@host:5432/db``. SQL given to
:meth:`Warehouse.execute` / :meth:`Warehouse.arrow` is written once, portable across both
engines, with ``:name`` bound parameters (never string-built from input).
"""

from __future__ import annotations

import io
import logging
import os
import re
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.csv as pacsv

from schemas.contract import SQL_TYPES, Table, arrow_schema

T = TypeVar("T")

log = logging.getLogger(__name__)

DEFAULT_URL = "duckdb:///var/hub.duckdb"
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class WarehouseBusy(RuntimeError):
    """The DuckDB warehouse file is held by another process (a run, a DPO's write): DuckDB lets one
    process open a file read-write, and no other open it at all meanwhile. Readers use
    :meth:`Warehouse.reader` instead, which never opens that file."""

    def __init__(self, path: Path, pid: str | None = None):
        self.file = path
        holder = f"another process (pid {pid}: a run in progress?)" if pid else "another process (a run in progress?)"
        super().__init__(f"the warehouse {path} is being written by {holder}; retry when it has finished")


class NoRelease(RuntimeError):
    """No release has been published for readers yet (DuckDB: no published snapshot)."""

    def __init__(self, path: Path):
        self.file = path
        super().__init__(f"aucune publication pour l'instant / no release published yet ({path} does not "
                         "exist): run `hub run` first")


def published_path(path: Path) -> Path:
    """The published snapshot readers open, beside a DuckDB warehouse file: ``<stem>.published.duckdb``."""
    return path.with_name(f"{path.stem}.published.duckdb")


def warehouse_url_from_env() -> str:
    return os.environ.get("HUB_WAREHOUSE_URL", DEFAULT_URL)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    p = urlparse(url)
    if p.password:
        return url.replace(f":{p.password}@", ":***@")
    return url


class _SharedSnapshot:
    """This process's DuckDB instance on one published file, and how many readers use it."""

    def __init__(self, base: Any):
        self.base = base
        self.users = 0
        self.kept: dict[Hashable, Any] = {}  # Warehouse.shared's answers, let go with the instance
        self.loading: dict[Hashable, threading.Lock] = {}  # one lock per key being computed
        self.lock = threading.Lock()


_SNAPSHOTS: dict[tuple[str, int, int], _SharedSnapshot] = {}
_SNAPSHOTS_LOCK = threading.Lock()


def _release_snapshot(key: tuple[str, int, int]) -> None:
    """One reader fewer on a shared snapshot; the instance closes with its last reader."""
    with _SNAPSHOTS_LOCK:
        shared = _SNAPSHOTS.get(key)
        if shared is None:
            return
        shared.users -= 1
        if shared.users <= 0:
            del _SNAPSHOTS[key]
            shared.base.close()


_INHERITED: list[_SharedSnapshot] = []  # a forked child's copies of its parent's: never used, never closed


def _forget_snapshots_after_fork() -> None:
    # the parent's instances are the parent's: a child opens its own. They are kept referenced, not
    # dropped: destroying a DuckDB instance in a forked child (its threads were the parent's) crashes
    # it — a subprocess started with a preexec_fn (Spark's gateway) runs this hook before exec
    global _SNAPSHOTS_LOCK
    _INHERITED.extend(_SNAPSHOTS.values())
    _SNAPSHOTS.clear()
    _SNAPSHOTS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_snapshots_after_fork)


class Warehouse:
    """One connection to the warehouse. Use as a context manager or call :meth:`close`.

    ``Warehouse(url)`` is a writer's connection; :meth:`reader` opens the last published release."""

    def __init__(self, url: str | None = None, *, reader: bool = False):
        self.url = url or warehouse_url_from_env()
        self.read_only = reader
        self.snapshot: Path | None = None  # the published file a DuckDB reader reads
        self._snapshot_id: tuple[int, int] | None = None
        scheme = urlparse(self.url).scheme.split("+")[0]
        if scheme == "duckdb":
            import duckdb

            from matching import resources

            path = self.url.split("duckdb:///", 1)[1] if "duckdb:///" in self.url else ""
            if not path:
                raise ValueError(f"DuckDB warehouse URL needs a file path: {self.url!r}")
            self.kind = "duckdb"
            self._in_tx = False
            self.path: Path | None = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if reader:
                self._con = self._open_snapshot(duckdb)
            else:
                try:
                    # with the job's DuckDB limits in force (matching.resources, set by the hub)
                    self._con = resources.connect(str(self.path))
                except duckdb.IOException as e:
                    if "Could not set lock" in str(e):
                        pid = re.search(r"\(PID (\d+)\)", str(e))
                        raise WarehouseBusy(self.path, pid.group(1) if pid else None) from None
                    raise
            self._con.execute("SET TimeZone = 'UTC'")
        elif scheme in ("postgresql", "postgres"):
            import psycopg

            self.kind = "postgres"
            self._in_tx = False
            self.path = None
            try:
                self._con = psycopg.connect(_libpq_url(self.url), autocommit=True)
            except psycopg.OperationalError as e:
                raise ConnectionError(f"cannot reach the PostgreSQL warehouse at {redact(self.url)}") from e
            self._con.execute("SET TIME ZONE 'UTC'")
        else:
            raise ValueError(f"unsupported warehouse URL scheme {scheme!r} (use duckdb:/// or postgresql://)")

    @classmethod
    def reader(cls, url: str | None = None) -> Warehouse:
        """A read-only connection to the last published release, which a run never blocks nor is
        blocked by. DuckDB: the published snapshot (:func:`published_path`) a writer copies after it
        commits (``warehouse.snapshot.publish``); :class:`NoRelease` when there is none yet.
        PostgreSQL: the database itself (MVCC shows a reader the last committed release)."""
        return cls(url, reader=True)

    @classmethod
    def attached(cls, path: Path, *, row_group_size: int) -> Warehouse:
        """A writer's connection to a DuckDB file no other connection has open (a snapshot being
        published), attached with a storage option: the tables written through it are stored in row
        groups of ``row_group_size`` rows. The job's DuckDB limits apply, as to every connection."""
        from matching import resources

        wh = cls.__new__(cls)
        wh.url, wh.read_only, wh.kind, wh._in_tx, wh.path = f"duckdb:///{path}", False, "duckdb", False, Path(path)
        wh.snapshot, wh._snapshot_id = None, None
        con = resources.connect()
        try:
            literal = str(path).replace("'", "''")  # a path from the settings, as a SQL string literal
            con.execute(f"ATTACH '{literal}' AS attached (ROW_GROUP_SIZE {int(row_group_size)})")
            con.execute("USE attached")
            con.execute("SET TimeZone = 'UTC'")
        except BaseException:
            con.close()
            raise
        wh._con = con
        return wh

    def _open_snapshot(self, duckdb: Any) -> Any:
        """A connection (cursor) to this process's one DuckDB instance on the published file, which
        the process's readers of that release share: one buffer cache, not one per connection
        (eight pooled desk connections each caching the 1M snapshot held 4 GB)."""
        assert self.path is not None
        snap = published_path(self.path)
        try:
            st = os.stat(snap)
        except FileNotFoundError:
            raise NoRelease(snap) from None
        key = (str(snap), st.st_dev, st.st_ino)
        with _SNAPSHOTS_LOCK:
            shared = _SNAPSHOTS.get(key)
            if shared is None:
                # attached into a fresh in-memory database: duckdb.connect(path) would hand back an
                # instance this process already has open on that path, i.e. the file a newer
                # publication replaced
                base = duckdb.connect(":memory:")
                literal = str(snap).replace("'", "''")  # a path from the settings, as a SQL string literal
                try:
                    base.execute(f"ATTACH '{literal}' AS published (READ_ONLY)")
                except (FileNotFoundError, duckdb.IOException) as e:
                    base.close()
                    if isinstance(e, FileNotFoundError) or not snap.exists():
                        raise NoRelease(snap) from None
                    raise
                shared = _SNAPSHOTS[key] = _SharedSnapshot(base)
            shared.users += 1
        try:
            con = shared.base.cursor()
            con.execute("USE published")
        except BaseException:
            _release_snapshot(key)
            raise
        self.snapshot, self._snapshot_id, self._shared = snap, (st.st_dev, st.st_ino), key
        return con

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, kept for this connection's life when it reads a published DuckDB snapshot
        (a file no one writes: the answer cannot change under it); computed at each call otherwise."""
        if self.snapshot is None:
            return compute()
        memo = self.__dict__.setdefault("_memo", {})
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def shared(self, key: Hashable, compute: Callable[[], T]) -> T | None:
        """``compute()`` once for every reader of this process on the same published DuckDB snapshot
        (kept by the shared instance: let go when its last reader closes, so a release replaced is
        let go with its last reader); None for any other connection. Thread-safe: one reader
        computes, the others of that release wait for its answer (a failure is not kept)."""
        key_ = getattr(self, "_shared", None)
        if self.snapshot is None or key_ is None:
            return None
        with _SNAPSHOTS_LOCK:
            snap = _SNAPSHOTS.get(key_)
        if snap is None:
            return None
        with snap.lock:
            if key in snap.kept:
                return snap.kept[key]
            loading = snap.loading.setdefault(key, threading.Lock())
        with loading:
            with snap.lock:
                if key in snap.kept:
                    return snap.kept[key]
            value = compute()
            with snap.lock:
                snap.kept[key] = value
                snap.loading.pop(key, None)
            return value

    def stale(self) -> bool:
        """A DuckDB reader whose snapshot has been replaced by a newer publication since it opened
        (it still reads the release it opened: reopen to read the new one)."""
        if self.snapshot is None:
            return False
        try:
            st = os.stat(self.snapshot)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) != self._snapshot_id

    # ------------------------------------------------------------------ basics
    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()
        if getattr(self, "_shared", None) is not None:
            key, self._shared = self._shared, None
            _release_snapshot(key)

    @property
    def connection(self):
        """The native connection (duckdb or psycopg), for the few places that need it (dlt, Splink)."""
        return self._con

    def _sql(self, sql: str) -> str:
        if self.kind == "duckdb":
            return _PARAM.sub(r"$\1", sql)
        return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one statement (DDL or DML) and discard any result."""
        if self.kind == "duckdb":
            self._con.execute(self._sql(sql), dict(params or {})).fetchall()
        else:
            self._con.execute(self._sql(sql), dict(params or {}))

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        if self.kind == "duckdb":
            return self._con.execute(self._sql(sql), dict(params or {})).fetchall()
        with self._con.cursor() as cur:
            cur.execute(self._sql(sql), dict(params or {}))
            return cur.fetchall() if cur.description else []

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        r = self.rows(sql, params)
        return r[0][0] if r else None

    def dicts(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """A (small) query's rows as dicts, as the driver gives them (no Arrow table in between:
        converting a handful of rows to Arrow and back costs more than an indexed lookup); for bulk
        data use :meth:`arrow`."""
        if self.kind == "duckdb":
            return _as_dicts(self._con.execute(self._sql(sql), dict(params or {})))
        with self._con.cursor() as cur:
            cur.execute(self._sql(sql), dict(params or {}))
            return _as_dicts(cur)

    def arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """A query's result as an Arrow table."""
        if self.kind == "duckdb":
            return self._con.sql(self._sql(sql), params=dict(params or {})).to_arrow_table()
        with self._con.cursor() as cur:
            cur.execute(self._sql(sql), dict(params or {}))
            names = [d.name for d in cur.description]
            data = cur.fetchall()
        return pa.table({n: [r[i] for r in data] for i, n in enumerate(names)}) if data else pa.table(
            {n: pa.array([], pa.null()) for n in names}
        )

    # ------------------------------------------------------------------ schema
    def create_schema(self, schema: str) -> None:
        # PostgreSQL checks the CREATE privilege even when the schema exists: a role that may not
        # create (the pipeline's writer on a migrated warehouse) only looks
        if self.kind == "postgres" and self.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = :s",
                                                   {"s": schema}):
            return
        self.execute(f'CREATE SCHEMA IF NOT EXISTS "{_ident(schema)}"')

    def ensure_table(self, table: Table) -> None:
        """Create a contract table if it does not exist."""
        if self.kind == "postgres" and self.scalar("SELECT to_regclass(:t) IS NOT NULL", {"t": qualified(table)}):
            return  # as for schemas: no CREATE privilege needed for a table that is there
        self.create_schema(table.schema)
        self.execute(table_ddl(table, self.kind, qualified(table)))

    def ensure_tables(self, tables: Iterable[Table]) -> None:
        for t in tables:
            self.ensure_table(t)

    def table_exists(self, schema: str, name: str) -> bool:
        return self.memo(("table_exists", schema, name), lambda: bool(self.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s AND table_name = :n",
            {"s": schema, "n": name})))

    def columns_of(self, schema: str, name: str) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = :n ORDER BY ordinal_position",
                {"s": schema, "n": name},
            )
        ]

    # ------------------------------------------------------------------ bulk writes
    def write(self, table: Table, data: pa.Table, *, replace: bool = False,
              delete_where: tuple[str, Mapping[str, Any]] | None = None) -> int:
        """Write an Arrow table into a contract table, in one transaction.

        ``replace`` empties the table first; ``delete_where`` (SQL condition, params) deletes the
        rows a re-run would write again, so a step run twice leaves the same warehouse.
        """
        data = conform(data, table)
        target = qualified(table)
        cols = ", ".join(f'"{n}"' for n in table.column_names)
        with self.transaction():
            self.ensure_table(table)
            if replace:
                self.execute(f"DELETE FROM {target}")
            elif delete_where:
                self.execute(f"DELETE FROM {target} WHERE {delete_where[0]}", delete_where[1])
            if data.num_rows:
                if self.kind == "duckdb":
                    self._con.register("_hub_incoming", data)
                    try:
                        self._con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM _hub_incoming")
                    finally:
                        self._con.unregister("_hub_incoming")
                else:
                    self._copy_into(table, data)
        return data.num_rows

    @contextmanager
    def transaction(self, opening: tuple[str, Mapping[str, Any]] | None = None) -> Iterator[Warehouse]:
        """One transaction around the block: committed on success, rolled back on error.

        Nested use joins the outer transaction, so several :meth:`write` calls can be made atomic
        together (e.g. replacing two golden tables at once). ``opening``: the transaction's first
        statement (sql, params), whose result is not read; on PostgreSQL it travels with ``BEGIN``
        in one round trip (psycopg's pipeline).
        """
        if self._in_tx:
            if opening:
                self.execute(*opening)
            yield self
            return
        self._begin(opening)
        self._in_tx = True
        try:
            yield self
        except BaseException:
            self._in_tx = False
            self._rollback()
            raise
        self._in_tx = False
        self._commit()

    def _copy_into(self, table: Table, data: pa.Table) -> None:
        target = qualified(table)
        cols = ", ".join(f'"{n}"' for n in table.column_names)
        # pyarrow 26's CSV writer turns a string column whose first chunk is empty into NUL bytes
        # (a table built from a DuckDB result plus an added column has one): write no empty batch
        data = pa.Table.from_batches([b for b in data.to_batches() if b.num_rows], schema=data.schema)
        buf = io.BytesIO()
        pacsv.write_csv(data, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        # COPY FROM refuses a table whose row security applies to this role: copy into a temporary
        # table (no row security) and insert from it, so the policies check every row
        secured = bool(self.scalar("SELECT row_security_active(CAST(:t AS regclass))", {"t": target}))
        into = "pg_temp._hub_incoming" if secured else target
        if secured:
            # typed from the contract (LIKE would need SELECT on the target: the desk may only append)
            types = ", ".join(f'"{c.name}" {SQL_TYPES[c.type][1]}' for c in table.columns)
            self.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS _hub_incoming ({types}) ON COMMIT DROP")
        copy_sql = f"COPY {into} ({cols}) FROM STDIN WITH (FORMAT csv)"
        with self._con.cursor() as cur, cur.copy(copy_sql) as cp:
            cp.write(buf.getvalue())
        if secured:
            self.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {into}")
            self.execute(f"DROP TABLE {into}")

    def _begin(self, opening: tuple[str, Mapping[str, Any]] | None = None) -> None:
        if not opening:
            self._con.execute("BEGIN TRANSACTION" if self.kind == "duckdb" else "BEGIN")
            return
        try:
            if self.kind == "duckdb":
                self._con.execute("BEGIN TRANSACTION")
                self.execute(*opening)
            else:
                with self._con.pipeline():
                    self._con.execute("BEGIN")
                    self.execute(*opening)
        except BaseException:
            self._rollback()
            raise

    def _commit(self) -> None:
        self._con.execute("COMMIT")

    def _rollback(self) -> None:
        try:
            self._con.execute("ROLLBACK")
        except Exception:
            log.debug("rollback had nothing to undo")

    # ------------------------------------------------------------------ dlt
    def dlt_destination(self):
        """The dlt destination writing into this warehouse (raw_<system> datasets land as schemas)."""
        import dlt

        if self.kind == "duckdb":
            return dlt.destinations.duckdb(credentials=self._con)
        from dlt.destinations.impl.postgres.configuration import PostgresCredentials

        # dlt insists on a password; trust / peer / .pgpass setups have none in the URL.
        credentials = PostgresCredentials(_libpq_url(self.url))
        if credentials.password is None:
            credentials.password = ""
        return dlt.destinations.postgres(credentials=credentials)


def bind_list(prefix: str, values: Iterable[Any]) -> tuple[str, dict[str, Any]]:
    """An IN list as ``:p0, :p1, ...`` plus the values to bind: never values spliced into SQL."""
    params = {f"{prefix}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{k}" for k in params), params


def _as_dicts(cur: Any) -> list[dict[str, Any]]:
    """An executed DB-API cursor's rows as dicts (DuckDB's and psycopg's describe a column by its
    name first)."""
    if not cur.description:
        return []
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def table_ddl(table: Table, kind: str, target: str) -> str:
    """``CREATE TABLE IF NOT EXISTS <target>`` with a contract table's columns and key, in the SQL
    of ``kind`` (duckdb, postgres)."""
    col = 0 if kind == "duckdb" else 1
    cols = ", ".join(f'"{c.name}" {SQL_TYPES[c.type][col]}{"" if c.nullable else " NOT NULL"}' for c in table.columns)
    key = f', PRIMARY KEY ({", ".join(table.key)})' if table.key else ""
    return f"CREATE TABLE IF NOT EXISTS {target} ({cols}{key})"


def qualified(table: Table) -> str:
    return f'"{_ident(table.schema)}"."{_ident(table.name)}"'


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def _libpq_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme != "postgresql" else url


def conform(data: pa.Table, table: Table) -> pa.Table:
    """Arrow data with exactly the contract's columns, in order, cast to the contract's types.

    A missing column is an error naming it: staging must produce the whole contract.
    """
    schema = arrow_schema(table)
    missing = [n for n in schema.names if n not in data.column_names]
    if missing:
        raise ValueError(f"{table.schema}.{table.name}: missing column(s) {', '.join(missing)}")
    cols: Sequence[pa.Array] = []
    for f in schema:
        col = data.column(f.name)
        if not col.type.equals(f.type):
            try:
                col = col.cast(f.type) if col.type != pa.null() else pa.nulls(len(col), f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                # Arrow's message quotes the offending value, which may be personal: name the column only.
                raise ValueError(
                    f"{table.schema}.{table.name}: column {f.name} ({col.type}) does not convert to {f.type}"
                ) from None
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)
