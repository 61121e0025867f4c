"""DuckDB's limits on matching's connections: applied where the hub says, spilling instead of dying."""

from __future__ import annotations

import threading

import duckdb
import pytest

from matching.resources import DuckDBLimits, applied, connect, current

# 3M rows of 64-character strings sorted: a few hundred MB of sort data, far past 60 MB
_BIG_SORT = """SELECT sum(hash(s)) FROM (SELECT md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS s
               FROM range(3000000) t(i) ORDER BY s)"""


def _settings(con: duckdb.DuckDBPyConnection) -> tuple:
    return con.execute("SELECT current_setting('memory_limit'), current_setting('threads'), "
                       "current_setting('temp_directory')").fetchall()[0]


def test_a_connection_gets_the_limits_in_force_and_its_own_spill_directory(tmp_path):
    limits = DuckDBLimits(memory_limit="200MB", threads=1, temp_directory=tmp_path / "spill")
    with applied(limits):
        a, b = connect(), connect()
    try:
        (mem_a, threads_a, tmp_a), (mem_b, _, tmp_b) = _settings(a), _settings(b)
    finally:
        a.close()
        b.close()
    assert mem_a == mem_b == "190.7 MiB"  # DuckDB shows 200MB in MiB
    assert threads_a == 1
    assert tmp_a.startswith(str((tmp_path / "spill").resolve()) + "/") and tmp_a != tmp_b


def test_limits_hold_inside_their_block_only(tmp_path):
    default = duckdb.connect()
    default_mem = _settings(default)[0]
    default.close()
    with applied(DuckDBLimits(memory_limit="300MB")):
        with applied(None):  # a step without limits of its own keeps the ones in force
            assert current().memory_limit == "300MB"
        inner = connect()
    outer = connect()
    try:
        assert _settings(inner)[0] == "286.1 MiB"
        assert _settings(outer)[0] == default_mem != "286.1 MiB"
    finally:
        inner.close()
        outer.close()


def test_limits_do_not_leak_into_another_thread(tmp_path):
    seen: list[str | None] = []
    with applied(DuckDBLimits(memory_limit="300MB")):
        t = threading.Thread(target=lambda: seen.append(current().memory_limit))
        t.start()
        t.join()
    assert seen == [None]


def test_a_query_bigger_than_the_limit_spills_to_the_temp_directory_instead_of_failing(tmp_path):
    spill = tmp_path / "spill"
    # without a directory to spill to, the same query under the same limit dies
    bare = duckdb.connect(config={"memory_limit": "60MB", "temp_directory": "", "threads": "1"})
    try:
        with pytest.raises(duckdb.OutOfMemoryException):
            bare.execute(_BIG_SORT).fetchall()
    finally:
        bare.close()
    with applied(DuckDBLimits(memory_limit="60MB", threads=1, temp_directory=spill)):
        con = connect()
    try:
        own = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
        assert con.execute(_BIG_SORT).fetchall()[0][0] is not None
        # DuckDB created this connection's directory when it spilled
        assert (spill.resolve() / own.rsplit("/", 1)[1]).is_dir()
    finally:
        con.close()
    assert list(spill.iterdir()) == []  # and removed it on close


def test_splink_on_a_connection_that_has_spilled_keeps_its_spill_directory(tmp_path):
    """Splink's side connection is the same DuckDB instance, whose temp directory cannot be switched
    once spilled into: limiting it again keeps the connection's own directory (the 3.6M-people run
    died there, in clustering, after prediction had spilled)."""
    from matching.resources import splink_api

    spill = tmp_path / "spill"
    with applied(DuckDBLimits(memory_limit="60MB", threads=1, temp_directory=spill)):
        con = connect()
        try:
            own = _settings(con)[2]
            con.execute(_BIG_SORT).fetchall()  # spills into its own directory
            api = splink_api(con)
            assert _settings(api.duckdb_con) == _settings(con) == ("57.2 MiB", 1, own)
        finally:
            con.close()
