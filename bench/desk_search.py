"""The desk's search under load, on DuckDB and PostgreSQL, beside today's LIKE search (run by hand).

    flock /tmp/bench.lock .venv/bin/python bench/desk_search.py --people 1040000
    flock /tmp/bench.lock .venv/bin/python bench/desk_search.py --people 100000 --engines duckdb

Builds a warehouse from the sandbox (about 0.96 person record per person: 1,040,000 people give
about 1M records). The golden release is synthesized from the sandbox's ground truth instead of
resolved (a resolution at 1M takes a quarter of an hour and is measured by bench/resolution.py):
one citizen per true person, every record of that person linked to it, the golden values those of
the person's most certified, most filled record. Then ``warehouse.search.build_index`` (timed).

Queries are drawn from the citizens, as agents type them: "prénom nom", "nom prénom" with one typo
(a letter replaced, dropped or two swapped), "nom" and a birth date (dd/mm/yyyy), an e-mail, a
phone typed nationally, a name alone. 8 clients (threads, each with its own connection) run them
at once; latencies p50 / p95 / p99 and throughput are printed, and the share of queries whose
intended citizen is on the first page (the typo queries included). The baseline is today's search
(``warehouse.citizen_view.search``'s SQL: a LIKE over every golden and linked record, no index),
run on the same data and the same queries by the same 8 clients, fewer of them (it takes seconds).
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sandbox.observations import person_records
from schemas.contract import CITIZEN, CITIZEN_LINK, PERSON_RECORD
from warehouse.citizen_view import SEARCH_FIELDS, _criteria
from warehouse.engine import Warehouse, qualified
from warehouse.search import Scope, build_index, search

EVERYTHING = Scope(fields=frozenset({"given_names", "birth_name", "usage_name", "birth_date", "email", "phone",
                                     "postcode", "city"}))
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

_GOLDEN_SQL = """
WITH ranked AS (
    SELECT *, row_number() OVER (PARTITION BY person_id ORDER BY certification_level DESC,
           (given_names IS NOT NULL)::INT + (birth_date IS NOT NULL)::INT + (email IS NOT NULL)::INT
           + (phone IS NOT NULL)::INT + (postcode IS NOT NULL)::INT DESC, record_key) AS rk
      FROM r WHERE deleted_at IS NULL),
systems AS (SELECT person_id, string_agg(DISTINCT source_system, ',' ORDER BY source_system) AS source_systems,
                   count(*)::INTEGER AS record_count FROM r GROUP BY person_id)
SELECT 'C' || lpad(upper(to_hex(ranked.person_id)), 16, '0') AS citizen_id, given_names, birth_name, usage_name, sex,
       birth_date, email, phone, address_line, postcode, city, record_count, source_systems,
       TIMESTAMPTZ '2026-12-01 00:00:00+00' AS updated_at
  FROM ranked JOIN systems USING (person_id) WHERE rk = 1
"""


def synthesize(people: int, seed: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(person records, links, citizens) of a golden release made from the sandbox's truth."""
    records = person_records(people, seed)
    con = duckdb.connect()
    con.register("r", records)
    citizens = con.sql(_GOLDEN_SQL).to_arrow_table()
    links = con.sql("""
        SELECT record_key, 'C' || lpad(upper(to_hex(person_id)), 16, '0') AS citizen_id,
               1.0::DOUBLE AS match_probability, 'bench' AS model_version, 'bench-1' AS run_id
          FROM r WHERE person_id IN (SELECT person_id FROM r WHERE deleted_at IS NULL)""").to_arrow_table()
    return records.drop_columns(["person_id"]), links, citizens


def load(url: str, records: pa.Table, links: pa.Table, citizens: pa.Table) -> float:
    started = time.perf_counter()
    with Warehouse(url) as wh:
        wh.write(PERSON_RECORD, records, replace=True)
        wh.write(CITIZEN_LINK, _links(links), replace=True)
        wh.write(CITIZEN, citizens, replace=True)
    return time.perf_counter() - started


def _links(links: pa.Table) -> pa.Table:
    n = links.num_rows
    return links.append_column("match_weight", pa.nulls(n, pa.float64())).append_column(
        "explanation", pa.nulls(n, pa.string())).append_column("linked_via", pa.nulls(n, pa.string()))


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + rng.choice("aeioulnrst".replace(word[i], "")) + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def queries(citizens: pa.Table, n: int, seed: int) -> list[tuple[str, str, str]]:
    """(kind, text, intended citizen id) drawn from the citizens."""
    rng = random.Random(seed)
    rows = citizens.filter(pc.and_(pc.is_valid(citizens["usage_name"]), pc.is_valid(citizens["given_names"])))
    picks = [rows.slice(rng.randrange(rows.num_rows), 1).to_pylist()[0] for _ in range(n)]
    out = []
    for i, c in enumerate(picks):
        given = c["given_names"].split()[0]
        usage = c["usage_name"]
        kinds = ["name", "typo", "name_date", "email", "phone", "surname"]
        kind = kinds[i % len(kinds)]
        needs = {"name_date": "birth_date", "email": "email", "phone": "phone"}
        if kind in needs and not c[needs[kind]]:
            kind = "name"
        if kind == "name":
            text = f"{given} {usage}".lower()
        elif kind == "typo":
            words = usage.split()
            longest = max(range(len(words)), key=lambda k: len(words[k]))
            words[longest] = _typo(rng, words[longest].lower())
            text = f"{' '.join(words)} {given}"
        elif kind == "name_date":
            text = f"{usage} {c['birth_date']:%d/%m/%Y}"
        elif kind == "email":
            text = c["email"]
        elif kind == "phone":
            digits = "".join(ch for ch in c["phone"] if ch.isdigit())
            text = ("0" + digits[2:]) if c["phone"].startswith("+33") else c["phone"]
            text = " ".join(text[k:k + 2] for k in range(0, len(text), 2))
        else:
            text = usage
        out.append((kind, text, c["citizen_id"]))
    return out


def baseline(wh: Warehouse, text: str) -> list[str]:
    """Today's search (warehouse.citizen_view.search) without its access-log writes: a LIKE per term
    over every golden and linked record, 20 results by name."""
    crit = _criteria(text)
    if crit is None:
        return []
    conds, params = crit
    where = " AND ".join(conds)
    candidates = (f"SELECT r.citizen_id FROM {qualified(CITIZEN)} r WHERE {where} UNION SELECT l.citizen_id FROM "
                  f"{qualified(CITIZEN_LINK)} l JOIN {qualified(PERSON_RECORD)} r ON r.record_key = l.record_key "
                  f"WHERE {where}")
    cols = ", ".join(f"c.{c}" for c in SEARCH_FIELDS)
    return [r["citizen_id"] for r in wh.dicts(
        f"SELECT {cols} FROM {qualified(CITIZEN)} c WHERE c.citizen_id IN ({candidates}) "
        "ORDER BY c.usage_name, c.given_names, c.citizen_id LIMIT 20", params)]


def run(clients: int, work: list[Any], fn: Callable[[Any, Any], Any], make: Callable[[], Any]) -> dict:
    """``clients`` threads, each with its own ``make()`` session (closed after), sending its share of
    ``work`` through ``fn(session, item)``: latency percentiles, rate, and each item's result."""
    latencies: list[float] = []
    results: list[tuple[Any, Any]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(part: list[Any]) -> None:
        try:
            session = make()
            try:
                fn(session, part[0])  # warm up
                for item in part:
                    t = time.perf_counter()
                    out = fn(session, item)
                    dt = time.perf_counter() - t
                    with lock:
                        latencies.append(dt)
                        results.append((item, out))
            finally:
                getattr(session, "close", lambda: None)()
        except BaseException as e:
            errors.append(e)

    parts = [work[i::clients] for i in range(clients)]
    threads = [threading.Thread(target=client, args=(p,)) for p in parts if p]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    q = statistics.quantiles(latencies, n=100)
    return {"n": len(latencies), "p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000,
            "rate": len(latencies) / wall, "results": results}


def run_clients(url: str, work: list[tuple[str, str, str]], clients: int,
                fn: Callable[[Warehouse, str], list[str]]) -> dict:
    """Searches by ``clients`` connections; ``found``: how often the intended citizen is on page 1."""
    r = run(clients, work, lambda wh, item: fn(wh, item[1]), lambda: Warehouse(url))
    r["found"] = sum(item[2] in ids for item, ids in r.pop("results")) / r["n"]
    return r


def _fmt(r: dict) -> str:
    return (f"p50 {r['p50']:8.1f} ms  p95 {r['p95']:8.1f} ms  p99 {r['p99']:8.1f} ms  "
            f"{r['rate']:7.1f} q/s  intended citizen on page 1: {r['found']:.1%}  ({r['n']} queries)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=1_040_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--engines", default="duckdb,postgres")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--queries", type=int, default=2400, help="indexed search queries per engine")
    ap.add_argument("--baseline-queries", type=int, default=48)
    ap.add_argument("--duckdb", default="var/bench/desk_search.duckdb")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    t = time.perf_counter()
    records, links, citizens = synthesize(args.people, args.seed)
    print(f"sandbox: {args.people:,} people, {records.num_rows:,} person records, {citizens.num_rows:,} citizens "
          f"(synthesized from the truth in {time.perf_counter() - t:.1f} s)")
    work = queries(citizens, args.queries, args.seed)
    by_kind = {k: sum(1 for w in work if w[0] == k) for k in dict.fromkeys(w[0] for w in work)}
    print("queries: " + ", ".join(f"{k} {v}" for k, v in by_kind.items()))

    def indexed(wh: Warehouse, text: str) -> list[str]:
        return [h.citizen_id for h in search(wh, text, scope=EVERYTHING).hits]

    for engine in args.engines.split(","):
        db = None
        if engine == "duckdb":
            from pathlib import Path

            path = Path(args.duckdb)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            url = f"duckdb:///{path}"
        else:
            import psycopg

            db = f"hub_bench_search_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{db}"')
            url = f"postgresql://postgres@127.0.0.1:5432/{db}"
        try:
            load_s = load(url, records, links, citizens)
            t = time.perf_counter()
            with Warehouse(url) as wh:
                n = build_index(wh)
                if engine == "duckdb":
                    wh.execute("CHECKPOINT")
                postings = wh.scalar('SELECT count(*) FROM "golden"."citizen_search_posting"')
            build_s = time.perf_counter() - t
            print(f"\n[{engine}] load {load_s:.1f} s; build_index {build_s:.1f} s ({n:,} citizens, {postings:,} "
                  "postings)")
            print(f"  search    {_fmt(run_clients(url, work, args.clients, indexed))}")
            for kind in by_kind:
                part = [w for w in work if w[0] == kind]
                print(f"    {kind:<9} {_fmt(run_clients(url, part, args.clients, indexed))}")
            base = work[:args.baseline_queries]
            print(f"  baseline  {_fmt(run_clients(url, base, args.clients, baseline))}")
        finally:
            if db is not None:
                import psycopg

                with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    print(f"\nfinished {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
