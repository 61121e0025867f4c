"""Readers of a published DuckDB snapshot: one instance per release in a process, shared by its
readers (one buffer cache), closed with the last of them; a newer release gets its own."""

from __future__ import annotations

import threading

from warehouse import engine
from warehouse.engine import Warehouse
from warehouse.snapshot import publish


def _published(tmp_path, rows: int) -> str:
    """A warehouse with golden.t (n = 0 .. rows - 1), published for readers; its URL."""
    url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    with Warehouse(url) as wh:
        wh.execute("CREATE SCHEMA golden")
        wh.execute(f"CREATE TABLE golden.t AS SELECT range AS n FROM range({rows})")
    publish(url)
    return url


def _ours(tmp_path) -> list:
    """This test's shared instances (other tests of the process may hold readers of their own)."""
    return [k for k in engine._SNAPSHOTS if k[0].startswith(str(tmp_path))]


def _threads(wh: Warehouse) -> int:
    return int(wh.scalar("SELECT current_setting('threads')"))


def test_readers_of_one_release_share_one_instance_until_the_last_closes(tmp_path):
    url = _published(tmp_path, 10)
    a, b = Warehouse.reader(url), Warehouse.reader(url)
    default = _threads(b)
    a.execute("SET GLOBAL threads = 1")  # an instance-wide setting: seen by every reader of the instance
    assert _threads(b) == 1 != default or default == 1
    assert a.scalar("SELECT sum(n) FROM golden.t") == b.scalar("SELECT sum(n) FROM golden.t") == 45
    with Warehouse(url) as wh:  # a new release: its readers get an instance of their own
        wh.execute("INSERT INTO golden.t VALUES (100)")
    publish(url)
    c = Warehouse.reader(url)
    assert c.scalar("SELECT sum(n) FROM golden.t") == 145 and a.scalar("SELECT sum(n) FROM golden.t") == 45
    assert a.stale() and not c.stale()
    assert _threads(c) == default
    a.close()
    assert b.scalar("SELECT sum(n) FROM golden.t") == 45  # the other reader of that release still reads it
    b.close()
    assert len(_ours(tmp_path)) == 1  # the old release's instance went with its last reader
    c.close()
    assert _ours(tmp_path) == []


def test_eight_threads_read_through_one_shared_instance(tmp_path):
    url = _published(tmp_path, 100000)
    sums: list[int] = []

    def read() -> None:
        with Warehouse.reader(url) as wh:
            for _ in range(20):
                sums.append(wh.scalar("SELECT sum(n) FROM golden.t WHERE n % 7 = 0"))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sums == [sum(range(0, 100000, 7))] * 160
    assert _ours(tmp_path) == []


def test_a_child_forked_with_a_snapshot_instance_open_does_not_crash(tmp_path):
    """A subprocess with a preexec_fn (Spark's gateway starts so) forks and runs the at-fork hooks:
    the child must not destroy the parent's DuckDB instance (it crashed doing so), and the parent's
    readers read on."""
    import gc
    import subprocess
    import sys

    url = _published(tmp_path, 10)
    dropped = Warehouse.reader(url)  # a reader never closed: the instance is then held by the process alone
    assert dropped.scalar("SELECT sum(n) FROM golden.t") == 45
    del dropped
    gc.collect()
    done = subprocess.run([sys.executable, "-c", "print('child ran')"], preexec_fn=lambda: None,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "child ran"
    with Warehouse.reader(url) as reader:
        assert reader.scalar("SELECT sum(n) FROM golden.t") == 45
