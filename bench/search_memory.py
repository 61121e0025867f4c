"""The desk's search on a published DuckDB snapshot, in-process on one thread: SQL vs in memory (run by hand).

    flock /tmp/bench.lock .venv/bin/python bench/search_memory.py --people 100000
    flock /tmp/bench.lock .venv/bin/python bench/search_memory.py --people 1040000

Builds bench/desk_search.py's warehouse (``synthesize``, ``load``, ``build_index``) and publishes
it (``warehouse.snapshot.publish``), then one reader of the snapshot runs the same queries
(bench/desk_search.py's ``queries()``: name, typo, name + date, e-mail, phone, surname) twice:
through the SQL statements (``_search_duckdb`` with no index in memory, as before issue #13's
change) and through the arrays (``warehouse.search_memory``). Printed per path: CPU ms per search
(``time.process_time``: every thread of the process, DuckDB's included) and wall ms, p50 / p95 /
p99; the in-memory index's load time and the resident memory it adds (VmRSS before / after the
load); and whether both paths returned the same pages.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from desk_search import EVERYTHING, load, queries, synthesize

from warehouse import search as search_module
from warehouse.engine import Warehouse
from warehouse.search import build_index, search
from warehouse.search_memory import memory_index
from warehouse.snapshot import publish


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _measure(wh: Warehouse, texts: list[str]) -> tuple[dict, list]:
    cpu, wall, pages = [], [], []
    for text in texts:
        c, w = time.process_time(), time.perf_counter()
        page = search(wh, text, scope=EVERYTHING)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
        pages.append(page)

    def pct(xs: list[float]) -> str:
        q = statistics.quantiles(xs, n=100)
        return f"p50 {q[49] * 1000:6.2f}  p95 {q[94] * 1000:6.2f}  p99 {q[98] * 1000:6.2f}  mean " \
               f"{statistics.fmean(xs) * 1000:6.2f} ms"

    return {"cpu": pct(cpu), "wall": pct(wall)}, pages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--queries", type=int, default=2400)
    ap.add_argument("--duckdb", default="var/bench/search_memory.duckdb")
    ap.add_argument("--reuse", action="store_true", help="search the warehouse already published at --duckdb")
    args = ap.parse_args()
    path = Path(args.duckdb)
    url = f"duckdb:///{path}"
    records, links, citizens = synthesize(args.people, args.seed)
    work = [text for _, text, _ in queries(citizens, args.queries, args.seed)]
    if not args.reuse:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        load(url, records, links, citizens)
        with Warehouse(url) as wh:
            build_index(wh)
        publish(url)
    del records, links, citizens
    print(f"{args.people:,} people, {len(work)} queries, one thread, in-process")
    with Warehouse.reader(url) as wh:
        real = search_module.memory_index
        search_module.memory_index = lambda _wh: None
        try:
            for text in work[:50]:  # catalog answers and DuckDB's caches warm
                search(wh, text, scope=EVERYTHING)
            sql, sql_pages = _measure(wh, work)
        finally:
            search_module.memory_index = real
        before = _rss_mb()
        t = time.perf_counter()
        index = memory_index(wh)
        load_s = time.perf_counter() - t
        added = _rss_mb() - before
        mem, mem_pages = _measure(wh, work)
        print(f"SQL statements  CPU  {sql['cpu']}\n                wall {sql['wall']}")
        print(f"in memory       CPU  {mem['cpu']}\n                wall {mem['wall']}")
        print(f"index load {load_s:.2f} s; resident memory +{added:.0f} MB (arrays {index.nbytes / 1e6:.0f} MB: "
              f"{len(index.term_id):,} terms, {len(index.variant):,} variants, {len(index.posting_no):,} postings, "
              f"{len(index.citizen_nos):,} citizens)")
        same = sum(a == b for a, b in zip(sql_pages, mem_pages, strict=True))
        print(f"same pages: {same} / {len(work)}")


if __name__ == "__main__":
    main()
