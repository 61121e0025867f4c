"""The DuckDB access log's file under load: a process keeps it open while it logs reads and commits
the reads of its threads together, yet every read is one chained row, committed before the caller
returns, and another process still gets its turn while this one keeps logging."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.logged import log_query
from warehouse import access_log_store
from warehouse.access_log import Entry, append, verify
from warehouse.engine import Warehouse
from warehouse.snapshot import publish

ROOT = Path(__file__).resolve().parents[2]


def _published(tmp_path: Path) -> str:
    url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    with Warehouse(url) as wh:
        wh.execute("CREATE SCHEMA IF NOT EXISTS golden")
    publish(url)
    return url


def _read(i: int, k: int) -> Entry:
    return Entry(reader=f"agent{i}", citizen_id=f"C{i:02d}-{k:03d}", purpose="accueil", channel="api")


def test_eight_threads_logging_at_once_write_one_chained_row_per_read(tmp_path):
    url = _published(tmp_path)
    seen_before_return: list[bool] = []

    def agent(i: int) -> None:
        with Warehouse.reader(url) as wh:
            for k in range(40):
                append(wh, [_read(i, k)])
                if k % 10 == 0:  # committed before append returned: visible at once
                    seen_before_return.append(bool(log_query(
                        wh, "scalar", "SELECT count(*) FROM ops.access_log WHERE citizen_id = :c",
                        {"c": f"C{i:02d}-{k:03d}"})))

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Warehouse.reader(url) as wh:
        ids = [r[0] for r in log_query(wh, "rows", "SELECT citizen_id FROM ops.access_log ORDER BY seq")]
        assert sorted(ids) == sorted(f"C{i:02d}-{k:03d}" for i in range(8) for k in range(40))
        assert verify(wh) == 320
    assert seen_before_return == [True] * 32


def test_another_process_logs_while_this_one_keeps_logging(tmp_path):
    url = _published(tmp_path)
    stop = threading.Event()
    done: list[int] = []

    def desk() -> None:  # logs reads without pause for longer than the file is ever held
        with Warehouse.reader(url) as wh:
            k = 0
            while not stop.is_set():
                append(wh, [_read(0, k % 1000)])
                k += 1
            done.append(k)

    t = threading.Thread(target=desk)
    t.start()
    try:
        time.sleep(0.5)
        cli = subprocess.run(
            [sys.executable, "-c",
             "import sys, time; from warehouse.engine import Warehouse; "
             "from warehouse.access_log import Entry, append; "
             "wh = Warehouse.reader(sys.argv[1]); t = time.monotonic(); "
             "append(wh, [Entry(reader='cli', citizen_id='C-CLI', purpose='accueil', channel='cli')]); "
             "print(time.monotonic() - t)", url],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        time.sleep(0.5)  # the desk keeps logging after the other process's turn
    finally:
        stop.set()
        t.join()
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert float(cli.stdout.split()[-1]) < access_log_store.RETRY_SECONDS  # its append waited its turn only
    with Warehouse.reader(url) as wh:
        cli_seq = log_query(wh, "scalar", "SELECT seq FROM ops.access_log WHERE reader = 'cli'")
        assert log_query(wh, "scalar", "SELECT count(*) FROM ops.access_log WHERE seq < :s", {"s": cli_seq}) > 0
        assert log_query(wh, "scalar", "SELECT count(*) FROM ops.access_log WHERE seq > :s", {"s": cli_seq}) > 0
        assert verify(wh) == done[0] + 1


def test_postgres_reads_logged_apart_commit_in_groups_outside_the_callers_transaction(postgres_url):
    """The desk's reads on PostgreSQL (``apart``): eight threads, each inside its own open request
    transaction, append at once; every row is committed (seen by another connection) before its
    append returns, survives the request's rollback, and the chain verifies. Without ``apart`` the
    row belongs to the caller's transaction and goes with its rollback."""
    with Warehouse(postgres_url) as wh:
        append(wh, [_read(99, 0)])  # the log exists
    seen: list[bool] = []

    def agent(i: int) -> None:
        with Warehouse(postgres_url) as wh, Warehouse(postgres_url) as other:
            for k in range(25):
                try:
                    with wh.transaction():
                        append(wh, [_read(i, k), _read(i, k + 100)], apart=True)
                        seen.append(bool(other.scalar("SELECT count(*) FROM ops.access_log WHERE citizen_id = :c",
                                                      {"c": f"C{i:02d}-{k:03d}"})))
                        raise RuntimeError("the request fails after its read was logged")
                except RuntimeError:
                    pass

    threads = [threading.Thread(target=agent, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with Warehouse(postgres_url) as wh:
        assert wh.scalar("SELECT count(*) FROM ops.access_log") == 1 + 8 * 25 * 2
        assert verify(wh) == 1 + 8 * 25 * 2
        try:
            with wh.transaction():
                append(wh, [_read(98, 0)])
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        assert wh.scalar("SELECT count(*) FROM ops.access_log WHERE citizen_id = 'C98-000'") == 0
    assert seen == [True] * 200
    access_log_store.close_all()


# ------------------------------------------------------------------ the log file's pending rows
def _log_file(url: str) -> Path:
    return Path(url.removeprefix("duckdb:///")).with_name("hub.access_log.duckdb")


def _table_count(log_file: Path) -> int:
    import duckdb

    with duckdb.connect(str(log_file), read_only=True) as con:
        return con.execute("SELECT count(*) FROM ops.access_log").fetchone()[0]


def test_a_group_is_on_disk_in_the_pending_file_when_append_returns_and_a_crash_loses_none_of_it(tmp_path):
    url = _published(tmp_path)
    log_file = _log_file(url)
    # a desk process logs 30 reads and is killed before anything folds them into the table
    crashed = subprocess.run(
        [sys.executable, "-c",
         "import os, sys; from warehouse.engine import Warehouse; from warehouse.access_log import Entry, append\n"
         "wh = Warehouse.reader(sys.argv[1])\n"
         "for k in range(30):\n"
         "    append(wh, [Entry(reader='a', citizen_id=f'C-{k:03d}', purpose='accueil', channel='api')])\n"
         "os._exit(9)", url],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 9, crashed.stderr[-2000:]
    pending = access_log_store.pending_path(log_file)
    assert len(pending.read_bytes().splitlines()) == 30  # durable before each append returned ...
    assert _table_count(log_file) == 0  # ... and not yet in the table
    with Warehouse.reader(url) as wh:  # the next process to open the log folds them, in order, chained
        ids = [r[0] for r in log_query(wh, "rows", "SELECT citizen_id FROM ops.access_log ORDER BY seq")]
        assert ids == [f"C-{k:03d}" for k in range(30)]
        assert verify(wh) == 30
    assert pending.read_bytes() == b""
    access_log_store.close_all()


def test_a_fold_interrupted_before_the_pending_file_was_emptied_writes_no_row_twice(tmp_path):
    url = _published(tmp_path)
    log_file = _log_file(url)
    with Warehouse.reader(url) as wh:
        append(wh, [_read(0, k) for k in range(5)])
        pending = access_log_store.pending_path(log_file)
        kept = pending.read_bytes()
        access_log_store.close_all()  # folds: the table holds the 5 rows, the pending file is empty
        assert _table_count(log_file) == 5 and pending.read_bytes() == b""
        pending.write_bytes(kept)  # as if the process died between the fold's commit and the emptying
        append(wh, [_read(1, 0)])
        assert log_query(wh, "scalar", "SELECT count(*) FROM ops.access_log") == 6
        assert verify(wh) == 6
    access_log_store.close_all()


def test_a_row_cut_short_at_the_end_is_dropped_and_an_edited_pending_file_is_refused(tmp_path):
    url = _published(tmp_path)
    log_file = _log_file(url)
    with Warehouse.reader(url) as wh:
        append(wh, [_read(0, 0)])
        access_log_store.close_all()
        pending = access_log_store.pending_path(log_file)
        pending.write_bytes(b'{"seq": 2, "reader": "ag')  # a crash while writing a row never confirmed
        assert log_query(wh, "scalar", "SELECT count(*) FROM ops.access_log") == 1
        assert verify(wh) == 1
        access_log_store.close_all()
        pending.write_bytes(b'not a row\n{"seq": 2}\n')
        try:
            log_query(wh, "scalar", "SELECT count(*) FROM ops.access_log")
        except RuntimeError as e:
            assert "line 1" in str(e) and str(pending) in str(e)
        else:
            raise AssertionError("an unreadable pending row was ignored")
        store = access_log_store._store(log_file)
        with store.lock:
            assert store.wh.scalar("SELECT count(*) FROM ops.access_log") == 1  # nothing folded
            store.wh.close()  # the store stays refused until the file is repaired: let it go
            store.wh = None
            store.pending_rows.close()
            store.pending_rows = None


def test_rows_are_folded_into_the_table_every_fold_rows_while_the_file_stays_open(tmp_path, monkeypatch):
    monkeypatch.setattr(access_log_store, "FOLD_ROWS", 10)
    url = _published(tmp_path)
    log_file = _log_file(url)
    with Warehouse.reader(url) as wh:
        for k in range(25):
            append(wh, [_read(0, k)])
        pending = access_log_store.pending_path(log_file)
        assert len(pending.read_bytes().splitlines()) == 5  # 20 folded at 10 and at 20, 5 pending
        store = access_log_store._store(log_file)
        with store.lock:
            assert store.wh.scalar("SELECT count(*) FROM ops.access_log") == 20  # the table, the file still open
        assert verify(wh) == 25
    access_log_store.close_all()


def test_a_group_whose_write_fails_leaves_no_half_row_before_the_next(tmp_path, monkeypatch):
    pending = access_log_store.Pending(tmp_path / "log.duckdb.pending")
    pending.append(b'{"seq": 1}\n', 1)
    real_write = access_log_store.os.write

    def short_then_full(fd, data):  # writes part of the group, then the disk is full
        real_write(fd, bytes(data[:5]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(access_log_store.os, "write", short_then_full)
    try:
        pending.append(b'{"seq": 2}\n', 1)
    except OSError:
        pass
    else:
        raise AssertionError("the failed write was not raised")
    monkeypatch.setattr(access_log_store.os, "write", real_write)
    pending.append(b'{"seq": 3}\n', 1)
    assert [r["seq"] for r in pending.rows()] == [1, 3]
    pending.close()
