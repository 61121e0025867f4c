"""The published snapshot: what readers of a DuckDB warehouse open while a run builds the next release.

DuckDB lets one process open a file read-write and, meanwhile, no other process open it at all
(not even read-only). So readers — ``hub citizen …``, the desk, GDPR exports — never open the
writer's file: after a writer has committed (a run's published release, an erasure, a decision),
:func:`publish` copies the checkpointed warehouse file to a temporary name beside it, fsyncs it and
renames it over ``<stem>.published.duckdb`` (:func:`warehouse.engine.published_path`). A reader
that holds the previous snapshot keeps reading it (POSIX keeps a renamed-over file alive while it is
open); a reader opened afterwards reads the new one (:meth:`warehouse.engine.Warehouse.reader`).
Writers never wait for readers, readers never wait for writers.

On PostgreSQL there is nothing to publish: readers read the database, MVCC isolates them.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from warehouse.engine import Warehouse, published_path, qualified, table_ddl
from warehouse.ops import Laps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    """One publication: the snapshot's path, its size, how long it took, and its parts: the
    checkpoint, the file copy, the readers' indexes, the fsync and rename."""

    path: Path
    bytes: int
    seconds: float
    parts: dict[str, float]


def publish(url: str) -> Published | None:
    """Publish the DuckDB warehouse at ``url`` for readers (None on PostgreSQL: nothing to do).

    The caller is the warehouse's writer and has closed its own connections (it holds the run lock):
    the file is opened once more, checkpointed (the WAL folded in, so the file alone is the whole
    database) and copied while that connection keeps any other process from writing."""
    started = time.perf_counter()
    with Warehouse(url) as wh:
        if wh.kind != "duckdb":
            return None
        assert wh.path is not None
        from warehouse import access_log

        # a log written in the warehouse by an earlier version moves to its own file first: readers
        # of the snapshot append there (warehouse/access_log.py)
        access_log.move_out_of(wh)
        lap = Laps()
        wh.execute("CHECKPOINT")
        lap("checkpoint")
        target = published_path(wh.path)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        shutil.copyfile(wh.path, partial)
        lap("copy")
        _index_for_readers(partial)
        lap("indexes")
        _search_in_small_row_groups(partial)  # last: a checkpoint at the default size would merge them back
        lap("search row groups")
        fd = os.open(partial, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, target)
    _fsync_dir(target.parent)
    lap("fsync")
    done = Published(target, target.stat().st_size, round(time.perf_counter() - started, 3), lap.parts)
    log.info("published snapshot %s: %d bytes in %.2f s (%s)", done.path, done.bytes, done.seconds,
             ", ".join(f"{k} {v:.2f} s" for k, v in done.parts.items()))
    return done


# The search's vocabulary and variants (warehouse.search) are read by key ranges and equality
# lookups that DuckDB prunes by each row group's min / max: in the snapshot they are rewritten, in
# their stored order, in row groups of this many rows instead of 122,880, so a lookup reads a few
# thousand keys. Measured at 1M citizens: a name query's term lookups 9.7 -> 3.5 ms, its variants'
# 5.1 -> 3.0 ms (bench/desk_search.py's queries, one client).
READER_ROW_GROUP = 4096


def _search_in_small_row_groups(snapshot: Path) -> None:
    from schemas.contract import CITIZEN_SEARCH_TERM, CITIZEN_SEARCH_VARIANT

    with Warehouse.attached(snapshot, row_group_size=READER_ROW_GROUP) as snap:
        for table in (CITIZEN_SEARCH_TERM, CITIZEN_SEARCH_VARIANT):
            if not snap.table_exists(table.schema, table.name):
                continue
            old, new = qualified(table), f'"{table.schema}"."{table.name}_rewritten"'
            snap.execute(table_ddl(table, "duckdb", new))
            snap.execute(f"INSERT INTO {new} SELECT * FROM {old}")  # insertion order kept: the stored order
            snap.execute(f"DROP TABLE {old}")
            snap.execute(f'ALTER TABLE {new} RENAME TO "{table.name}"')
        snap.execute("CHECKPOINT")


def _index_for_readers(snapshot: Path) -> None:
    """The readers' secondary indexes (warehouse.metadata.INDEXES: a citizen's rows by point lookup)
    built in the snapshot only: the writer's file keeps none, they would slow the run's rewrites."""
    from warehouse.metadata import create_indexes

    with Warehouse(f"duckdb:///{snapshot}") as snap:
        done = create_indexes(snap)
        snap.execute("CHECKPOINT")
    log.info("snapshot indexes: %s", ", ".join(done) or "none to build")


def _fsync_dir(path: Path) -> None:
    # the rename is durable once the directory entry is
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
