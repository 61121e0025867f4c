"""warehouse.ops.content_hash: what the warehouse holds, not when or by which run it was written;
row order does not matter, a changed value does. On both engines."""

from __future__ import annotations

from datetime import UTC, datetime

from warehouse import ops
from warehouse.engine import Warehouse


def _fill(wh: Warehouse, rows: list[tuple], *, run: str, at: datetime) -> None:
    wh.execute('CREATE SCHEMA IF NOT EXISTS "core"')
    wh.execute('CREATE SCHEMA IF NOT EXISTS "raw_silo"')
    wh.execute('CREATE SCHEMA IF NOT EXISTS "ops"')
    wh.execute("DROP TABLE IF EXISTS core.t")
    wh.execute("DROP TABLE IF EXISTS raw_silo.t")
    wh.execute("DROP TABLE IF EXISTS ops.log")
    wh.execute("CREATE TABLE core.t (k VARCHAR, v DOUBLE PRECISION, born DATE, run_id VARCHAR, "
               "written_at TIMESTAMPTZ)")
    wh.execute('CREATE TABLE raw_silo.t (k VARCHAR, "_dlt_load_id" VARCHAR, "_dlt_id" VARCHAR)')
    wh.execute("CREATE TABLE ops.log (run_id VARCHAR, n BIGINT)")
    for k, v in rows:
        wh.execute("INSERT INTO core.t VALUES (:k, :v, DATE '1970-01-02', :run, :at)", {"k": k, "v": v, "run": run,
                                                                                      "at": at})
        wh.execute("INSERT INTO raw_silo.t VALUES (:k, :load, :id)", {"k": k, "load": f"{at.timestamp()}",
                                                                      "id": f"{run}-{k}"})
    wh.execute("INSERT INTO ops.log VALUES (:run, :n)", {"run": run, "n": len(rows)})


def test_the_hash_ignores_runs_timestamps_and_order_but_not_values(warehouse_url):
    rows = [("a", 0.1 + 0.2), ("b", 2.0)]
    with Warehouse(warehouse_url) as wh:
        _fill(wh, rows, run="run_1", at=datetime(2026, 1, 1, tzinfo=UTC))
        first = ops.content_hash(wh)
        _fill(wh, list(reversed(rows)), run="run_2", at=datetime(2026, 6, 1, tzinfo=UTC))
        assert ops.content_hash(wh) == first  # another run, another time, another order: same content
        _fill(wh, [("a", 0.3), ("b", 2.0)], run="run_3", at=datetime(2026, 6, 1, tzinfo=UTC))
        assert ops.content_hash(wh) == first  # a float's last bits
        _fill(wh, [("a", 0.31), ("b", 2.0)], run="run_3", at=datetime(2026, 6, 1, tzinfo=UTC))
        changed = ops.content_hash(wh, detail=True)
        assert ops.content_hash(wh) != first
    assert set(changed) == {"core.t", "raw_silo.t"}  # ops is bookkeeping, not content
