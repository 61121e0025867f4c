"""The access log as CNIL deliberation 2021-122 asks: append-only, every edit detectable.

Every create / read / update / delete / export of a citizen's data by a person is one row of
``ops.access_log``: who (``reader``), when (``read_at``), which citizen (``citizen_id``: a
reference, never the data), the ``operation``, the ``purpose`` (a processing of the register),
the ``recipient`` when the data left the reader, the channel and the field names.

Append-only, on both engines:

- **hash chain** (DuckDB and PostgreSQL): each row carries ``seq`` (its position),
  ``prev_hash`` (the previous row's ``row_hash``) and ``row_hash = sha256(prev_hash + content)``,
  the content being the row's other columns as canonical JSON. Editing, inserting or deleting a
  row breaks the chain at that row; :func:`verify` (``hub gdpr verify-log``) names the first
  broken row.
- **PostgreSQL**: a trigger refuses UPDATE and TRUNCATE always, and DELETE unless the retention
  purge asked for it in its own transaction and the row is past the log's retention (so the
  application's role cannot rewrite history, whatever its grants).

**Retention and re-anchoring.** The log keeps its own retention from the register (processing
``journal-acces``, default one year). :func:`purge_before` deletes the rows older than the cut
and records, in ``ops.access_log_anchor``, the ``seq`` and ``row_hash`` of the last row purged:
the first kept row's ``prev_hash`` must equal it, so the chain still verifies from the anchor on,
and the anchors themselves form a chain (each anchor's hash covers the previous anchor's). A purge
that removed rows without an anchor, or an anchor edited, breaks verification.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from schemas.contract import ACCESS_LOG, SQL_TYPES, Column, Table, arrow_schema
from warehouse.access_log_store import (  # noqa: F401
    AccessLogUnavailable,
    log_path,
    move_out_of,
    on_log_store,
    opened,
    write_grouped,
)
from warehouse.engine import Warehouse, qualified

log = logging.getLogger(__name__)
# On DuckDB the log has its own file (warehouse/access_log_store.py, re-exported here): every function
# below that takes the warehouse runs on that file, so readers, writers and runs never wait on it.

OPERATIONS = ("create", "read", "update", "delete", "export")
GENESIS = "0" * 64
LOG_PROCESSING = "journal-acces"
# The columns the hash covers, in this order (everything but the chain's own columns).
CONTENT = ("seq", "read_at", "reader", "purpose", "channel", "citizen_id", "fields", "operation", "recipient")
# Columns added after the chain existed: the hash covers them only where a row fills them, so rows
# written before them (null there) keep the hash they were written with.
OPTIONAL_CONTENT = ("collectivite", "service")
_CHAIN_COLUMNS = ("operation", "recipient", "seq", "prev_hash", "row_hash")
_ADDED_COLUMNS = (*_CHAIN_COLUMNS, *OPTIONAL_CONTENT)

ANCHOR = Table(
    "access_log_anchor",
    "ops",
    "Where the access log's hash chain restarts after a retention purge: the last purged row's seq and hash.",
    (
        Column("anchored_at", "timestamptz", "when the purge ran", nullable=False),
        Column("purged_through_seq", "bigint", "the last seq purged", nullable=False),
        Column("purged_rows", "bigint", "rows purged", nullable=False),
        Column("last_hash", "text", "row_hash of the last row purged: the next row's prev_hash", nullable=False),
        Column("prev_anchor_hash", "text", "anchor_hash of the anchor before (genesis: zeros)", nullable=False),
        Column("anchor_hash", "text", "sha256 over prev_anchor_hash and this anchor's content", nullable=False),
    ),
)

_TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION ops.access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('hub.access_log_purge', true) = 'on'
       AND OLD.read_at < now() - current_setting('hub.access_log_retention', true)::interval THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'ops.access_log is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$
"""


def signed_in_reader(declared: str | None = None) -> str:
    """Who is at the keyboard, for the log: the operating-system account this process runs as
    (``os.getuid()`` through the password database, not ``$USER`` / ``$LOGNAME``, which anyone can
    set). A ``declared`` name (``HUB_READER``, e.g. an agent behind a shared account) is recorded
    beside it, never instead of it: ``guichet1 (declared: marie.durand)``."""
    import os
    import pwd

    try:
        account = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (some containers): the uid itself
        account = f"uid:{os.getuid()}"
    name = " ".join("".join(ch for ch in (declared or "") if ch.isprintable()).split())[:64]
    return f"{account} (declared: {name})" if name and name != account else account


@dataclass(frozen=True)
class Entry:
    """One access: who did what to which citizen, for which purpose (no value, ever)."""

    reader: str
    citizen_id: str
    purpose: str
    operation: str = "read"
    channel: str = "cli"
    fields: tuple[str, ...] = ()
    recipient: str | None = None
    at: datetime | None = None
    collectivite: str | None = None
    service: str | None = None


class BrokenChain(RuntimeError):
    """The access log's hash chain does not verify: a row was edited, inserted or removed."""

    def __init__(self, seq: int | None, why: str):
        self.seq = seq
        super().__init__(f"access log broken at seq {seq}: {why}" if seq is not None else f"access log broken: {why}")


def _ts(value: Any) -> str:
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return str(value)


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """sha256(prev_hash + canonical JSON of the row's content columns; the optional ones only when set)."""
    content = {c: (_ts(row.get(c)) if c == "read_at" else row.get(c)) for c in CONTENT}
    content.update({c: row[c] for c in OPTIONAL_CONTENT if row.get(c) is not None})
    if content["seq"] is not None:
        content["seq"] = int(content["seq"])
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


def _anchor_hash(prev: str, row: Mapping[str, Any]) -> str:
    text = json.dumps({"anchored_at": _ts(row["anchored_at"]), "seq": int(row["purged_through_seq"]),
                       "rows": int(row["purged_rows"]), "last": row["last_hash"]}, sort_keys=True)
    return hashlib.sha256((prev + text).encode("utf-8")).hexdigest()


# Logs (by URL) this process ensured already: a desk appends on every read, opening the log each time
# on DuckDB, and the catalog queries cost more than the append.
_READY: set[str] = set()


@on_log_store
def ensure(wh: Warehouse) -> None:
    """The log table with the chain's and the desk's columns (added to a log created before them), the
    anchor table, and on PostgreSQL the append-only trigger."""
    with wh.transaction():
        if wh.kind == "postgres":
            # the desk's first reads arrive together: one creator at a time (CREATE ... IF NOT EXISTS
            # races on PostgreSQL's catalog)
            wh.execute("SELECT pg_advisory_xact_lock(hashtext('ops.access_log'))")
        wh.ensure_table(ACCESS_LOG)
        wh.ensure_table(ANCHOR)
        have = set(wh.columns_of(ACCESS_LOG.schema, ACCESS_LOG.name))
        for name in _ADDED_COLUMNS:
            if name not in have:
                sql_type = "BIGINT" if name == "seq" else ("VARCHAR" if wh.kind == "duckdb" else "TEXT")
                wh.execute(f'ALTER TABLE {qualified(ACCESS_LOG)} ADD COLUMN "{name}" {sql_type}')
        if "row_hash" not in have:
            _chain_existing(wh)
        if wh.kind == "postgres":
            # each append reads the chain's end by seq, the DPO reads by citizen: without these (a
            # warehouse not built by the migrations, where 0006 creates them) both scan the whole log
            from warehouse.metadata import create_indexes

            create_indexes(wh, [ACCESS_LOG])
            exists = wh.scalar("SELECT count(*) FROM pg_trigger WHERE tgname = 'access_log_append_only'")
            if not exists:
                wh.execute(_TRIGGER_SQL)
                wh.execute("CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON ops.access_log "
                           "FOR EACH ROW EXECUTE FUNCTION ops.access_log_append_only()")
                wh.execute("CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON ops.access_log "
                           "FOR EACH STATEMENT EXECUTE FUNCTION ops.access_log_append_only()")
    _READY.add(wh.url)


_ensure_here = ensure.__wrapped__  # type: ignore[attr-defined]  # in this very database (for the store)


def _chain_existing(wh: Warehouse) -> None:
    """A log written before the chain existed: its rows are chained once, in time order (before the
    PostgreSQL trigger is created), so the chain verifies from its first row on."""
    rid = "rowid" if wh.kind == "duckdb" else "ctid::text"
    rows = wh.dicts(f"SELECT {rid} AS rid, {', '.join(c for c in CONTENT if c != 'seq')} "
                    f"FROM {qualified(ACCESS_LOG)} ORDER BY read_at, {rid}")
    if not rows:
        return
    where = "rowid = :r" if wh.kind == "duckdb" else "ctid = CAST(:r AS tid)"
    prev = GENESIS
    with wh.transaction():
        for seq, r in enumerate(rows, start=1):
            r["seq"] = seq
            h = row_hash(prev, r)
            wh.execute(f"UPDATE {qualified(ACCESS_LOG)} SET seq = :s, prev_hash = :p, row_hash = :h WHERE {where}",
                       {"s": seq, "p": prev, "h": h, "r": r["rid"]})
            prev = h
    log.info("access log: %d row(s) written before the hash chain now chained", len(rows))


def _last(wh: Warehouse) -> tuple[int, str]:
    """(seq, row_hash) of the chain's last row, or of the last anchor, or (0, genesis)."""
    row = wh.rows(f"SELECT seq, row_hash FROM {qualified(ACCESS_LOG)} WHERE seq IS NOT NULL "
                  "ORDER BY seq DESC LIMIT 1")
    if row:
        return int(row[0][0]), row[0][1]
    anchor = wh.rows(f"SELECT purged_through_seq, last_hash FROM {qualified(ANCHOR)} "
                     "ORDER BY purged_through_seq DESC LIMIT 1")
    if anchor:
        return int(anchor[0][0]), anchor[0][1]
    return 0, GENESIS


def append(wh: Warehouse, entries: Iterable[Entry], *, apart: bool = False) -> int:
    """Append entries to the log, chained; returns the number of rows written, once committed (on
    DuckDB together with the entries other threads of this process append meanwhile: one commit).

    On PostgreSQL the rows are written in ``wh``'s transaction (an update and its log row commit
    together), or with ``apart`` on this process's own connection, grouped with the other threads'
    appends like DuckDB's: the desk's reads, whose request transactions then never hold the
    chain's lock (``warehouse.access_log_store.write_grouped``)."""
    entries = list(entries)
    if not entries:
        return 0
    for e in entries:
        if e.operation not in OPERATIONS:
            raise ValueError(f"access log: operation {e.operation!r} is not one of {', '.join(OPERATIONS)}")
        if not (e.reader and e.reader.strip()) or not (e.purpose and e.purpose.strip()):
            raise ValueError("an access-log entry needs a reader and a purpose")
    write_grouped(wh, entries, _append_here, apart=apart)
    log.info("access log: %d %s row(s) appended", len(entries), "/".join(sorted({e.operation for e in entries})))
    return len(entries)


# DuckDB: the rows as one list parameter per column, zipped by unnest: the same short statement
# whatever the rows (a VALUES list of rows x columns parameters cost 3.5 ms of CPU for 20 rows and
# 10 ms for 60, a desk's group of three searches; this, 2.0 and 2.5)
_DUCKDB_INSERT = "INSERT INTO {table} ({cols}) SELECT {lists}".format(
    table=qualified(ACCESS_LOG), cols=", ".join(f'"{c.name}"' for c in ACCESS_LOG.columns),
    lists=", ".join(f"unnest(CAST(${i} AS {SQL_TYPES[c.type][0]}[]))" for i, c in enumerate(ACCESS_LOG.columns, 1)))
_PG_INSERT = "INSERT INTO {table} ({cols}) SELECT {cols} FROM json_to_recordset(%s) AS r({typed})".format(
    table=qualified(ACCESS_LOG), cols=", ".join(f'"{c.name}"' for c in ACCESS_LOG.columns),
    typed=", ".join(f'"{c.name}" {SQL_TYPES[c.type][1]}' for c in ACCESS_LOG.columns))


def _append_here(wh: Warehouse, entries: list[Entry]) -> None:
    if wh.url not in _READY:
        ensure(wh)
    now = datetime.now(UTC)
    # on PostgreSQL one appender at a time, the chain being a sequence (the lock travels with BEGIN)
    lock = ("SELECT pg_advisory_xact_lock(hashtext('ops.access_log'))", {})
    pending = getattr(wh, "pending_rows", None)
    if pending is not None:
        # a DuckDB log file's group: durable in its pending file (access_log_store.Pending), folded
        # into the table later; the chain's end is this connection's last append, or the table's
        kept = getattr(wh, "_hub_last", None) or _last(wh)
        rows = _chained(entries, now, *kept)
        pending.append("".join(_json(r) + "\n" for r in rows).encode("utf-8"), len(rows))
        wh._hub_last = (rows[-1]["seq"], rows[-1]["row_hash"])  # type: ignore[attr-defined]
        return
    with wh.transaction(opening=lock if wh.kind == "postgres" else None):
        # the chain's end as the last append of this connection left it, on a DuckDB log file this
        # process holds (no other process can write it meanwhile; other uses here reset it)
        kept = getattr(wh, "_hub_last", None) if wh.kind == "duckdb" else None
        rows = _chained(entries, now, *(kept or _last(wh)))
        # a few rows into a table that is there (ensure): one INSERT statement, no catalog query, no
        # Arrow, and on PostgreSQL no COPY (which row security refuses: it went through a temporary
        # table) while the chain's lock is held
        if wh.kind == "postgres":
            # the rows as one JSON parameter: the same short statement whatever the rows (psycopg
            # parses it once and the server prepares it; a VALUES list of rows x columns parameters
            # was parsed anew at each append, a sixth of the desk's search time; column arrays were
            # dumped element by element in Python, a tenth)
            wh.connection.execute(_PG_INSERT, ["[" + ",".join(_json(r) for r in rows) + "]"])
        else:
            _insert_duckdb(wh, rows)
    wh._hub_last = (rows[-1]["seq"], rows[-1]["row_hash"])  # type: ignore[attr-defined]


def _chained(entries: list[Entry], now: datetime, seq: int, prev: str) -> list[dict[str, Any]]:
    """The log rows of ``entries``, chained after the row ``seq`` whose hash is ``prev``."""
    rows = []
    for e in entries:
        seq += 1
        row = {"read_at": e.at or now, "reader": e.reader, "purpose": e.purpose, "channel": e.channel,
               "collectivite": e.collectivite, "service": e.service, "citizen_id": e.citizen_id,
               "fields": json.dumps(list(e.fields)), "operation": e.operation,
               "recipient": e.recipient, "seq": seq, "prev_hash": prev}
        row["row_hash"] = prev = row_hash(prev, row)
        rows.append(row)
    return rows


def _json(row: dict[str, Any]) -> str:
    """A log row as JSON (its time in ISO 8601, UTC): the pending file's line, PostgreSQL's recordset's item."""
    return json.dumps({**row, "read_at": _ts(row["read_at"])}, ensure_ascii=False)


def _insert_duckdb(wh: Warehouse, rows: list[dict[str, Any]]) -> None:
    wh.connection.execute(_DUCKDB_INSERT, [[r[c] for r in rows] for c in ACCESS_LOG.column_names])


def fold_into(wh: Warehouse, rows: list[dict[str, Any]]) -> None:
    """Write a DuckDB log file's pending ``rows`` (chained, in order) into its table ``wh``, those
    after the chain's end only (a fold that committed before its pending file was emptied is not
    written twice), in one transaction."""
    with wh.transaction():
        top = _last(wh)[0]
        rows = [r for r in rows if int(r["seq"]) > top]
        if rows:
            _insert_duckdb(wh, rows)
    if rows:
        log.info("access log: %d pending row(s) folded into the log file", len(rows))


@on_log_store
def verify(wh: Warehouse) -> int:
    """Check the whole chain (anchors, then rows); returns the rows verified, raises
    :class:`BrokenChain` naming the first broken row."""
    if not wh.table_exists(ACCESS_LOG.schema, ACCESS_LOG.name):
        return 0
    cols = set(wh.columns_of(ACCESS_LOG.schema, ACCESS_LOG.name))
    if "row_hash" not in cols:
        raise BrokenChain(None, "the log has no hash chain yet (run any hub gdpr command to add it)")
    prev_anchor, seq, prev = GENESIS, 0, GENESIS
    if wh.table_exists(ANCHOR.schema, ANCHOR.name):
        for a in wh.dicts(f"SELECT * FROM {qualified(ANCHOR)} ORDER BY purged_through_seq"):
            if a["prev_anchor_hash"] != prev_anchor or _anchor_hash(prev_anchor, a) != a["anchor_hash"]:
                raise BrokenChain(int(a["purged_through_seq"]), "a purge anchor was edited or removed")
            prev_anchor, seq, prev = a["anchor_hash"], int(a["purged_through_seq"]), a["last_hash"]
    unchained = wh.scalar(f"SELECT count(*) FROM {qualified(ACCESS_LOG)} WHERE seq IS NULL OR row_hash IS NULL")
    if unchained:
        raise BrokenChain(None, f"{unchained} row(s) carry no seq / hash (written around the chain)")
    n = 0
    optional = tuple(c for c in OPTIONAL_CONTENT if c in cols)
    cols_sql = ", ".join(f'"{c}"' for c in (*CONTENT, *optional, "prev_hash", "row_hash"))
    # streamed in pages: the log can be large
    page = 50_000
    while True:
        rows = wh.dicts(f"SELECT {cols_sql} FROM {qualified(ACCESS_LOG)} WHERE seq > :s ORDER BY seq LIMIT :n",
                        {"s": seq, "n": page})
        if not rows:
            return n
        for r in rows:
            r_seq = int(r["seq"])
            if r_seq != seq + 1:
                raise BrokenChain(r_seq, f"expected seq {seq + 1}: rows removed or inserted")
            if r["prev_hash"] != prev:
                raise BrokenChain(r_seq, "prev_hash is not the previous row's hash")
            if row_hash(prev, r) != r["row_hash"]:
                raise BrokenChain(r_seq, "the row's content does not match its hash (edited)")
            seq, prev = r_seq, r["row_hash"]
            n += 1


def retention_interval(register: Any | None = None) -> tuple[int, str]:
    """The log's retention from the register (processing ``journal-acces``): (amount, unit);
    one year when the register does not say."""
    try:
        from schemas.register import load_register

        register = register or load_register()
        p = register.processing(LOG_PROCESSING)
        for d in p.data:
            if "ops.access_log" in d.columns:
                return d.retention.amount, d.retention.unit
    except (KeyError, ValueError):
        log.warning("access log retention not found in the register: one year")
    return 1, "years"


@on_log_store
def purge_before(wh: Warehouse, cut: datetime, *, dry_run: bool = False) -> int:
    """Delete the log rows read before ``cut`` (a prefix of the chain, by seq) and re-anchor the
    chain; returns the rows purged (or that would be)."""
    if not wh.table_exists(ACCESS_LOG.schema, ACCESS_LOG.name):
        return 0
    ensure(wh)
    # a prefix: the last seq read before the cut, every row up to it (rows are appended in time order)
    last = wh.rows(f"SELECT seq, row_hash FROM {qualified(ACCESS_LOG)} WHERE read_at < :cut AND seq IS NOT NULL "
                   "ORDER BY seq DESC LIMIT 1", {"cut": cut})
    if not last:
        return 0
    through, last_hash = int(last[0][0]), last[0][1]
    n = int(wh.scalar(f"SELECT count(*) FROM {qualified(ACCESS_LOG)} WHERE seq <= :s", {"s": through}))
    if dry_run:
        return n
    now = datetime.now(UTC)
    with wh.transaction():
        prev_anchor = wh.rows(f"SELECT anchor_hash FROM {qualified(ANCHOR)} ORDER BY purged_through_seq DESC LIMIT 1")
        prev = prev_anchor[0][0] if prev_anchor else GENESIS
        anchor = {"anchored_at": now, "purged_through_seq": through, "purged_rows": n, "last_hash": last_hash,
                  "prev_anchor_hash": prev}
        anchor["anchor_hash"] = _anchor_hash(prev, anchor)
        wh.write(ANCHOR, pa.Table.from_pylist([anchor], schema=arrow_schema(ANCHOR)))
        if wh.kind == "postgres":
            age = max(0, int((now - cut).total_seconds()))
            wh.execute("SELECT set_config('hub.access_log_purge', 'on', true)")
            wh.execute("SELECT set_config('hub.access_log_retention', :age, true)", {"age": f"{age} seconds"})
        wh.execute(f"DELETE FROM {qualified(ACCESS_LOG)} WHERE seq <= :s", {"s": through})
    log.info("access log: %d row(s) past retention purged, chain re-anchored at seq %d", n, through)
    return n
