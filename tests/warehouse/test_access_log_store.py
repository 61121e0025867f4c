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
