"""Access export against the sandbox's ground truth, and its time on a large warehouse.

    python bench/gdpr_access.py [--people 20000] [--sample 50] [--var var/bench-gdpr] [--reuse] [--inflate 10]

Builds a sandbox commune (six silos, real simulators), runs the whole pipeline on DuckDB, picks
``--sample`` people the ground truth places in at least three silos and exports each one the way
the DPO would (``warehouse.access_export.export_access``, from the citizen holding most of the
person's records). Prints recall and precision of the exported source records against the truth
(micro-averaged over the sample), each miss with its cause (the resolution split the person, or
merged someone else in), then the time of one export (median and max over the sample, warm
process) with the warehouse's size in raw rows and person records. ``--reuse`` keeps a warehouse
built before (same ``--var``).

``--inflate K`` then times the same exports on a copy of the warehouse grown K times: every raw,
core and golden table gets K-1 replicas of its rows with disjoint keys (integers shifted by
k x 10^8, texts suffixed ``~k``, so each replica is a consistent commune of strangers). The export's
cost is its scans of the raw tables and its lookups in core and golden, which grow with the
tables, not with who is in them; building a 1M-row warehouse through the whole pipeline (sandbox,
simulators, quality gate, Splink) takes far longer than the export it is meant to time. Timed
runs: ``flock /tmp/bench.lock python bench/gdpr_access.py …``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _size(wh) -> tuple[int, int]:
    tables = wh.rows("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema LIKE 'raw_%' "
                     "AND table_schema NOT LIKE '%_staging' AND table_name NOT LIKE '_dlt_%'")
    raw = sum(int(wh.scalar(f'SELECT count(*) FROM "{s}"."{t}"')) for s, t in tables)
    return raw, int(wh.scalar("SELECT count(*) FROM core.person_record"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--sample", type=int, default=50)
    ap.add_argument("--var", type=Path, default=Path("var/bench-gdpr"))
    ap.add_argument("--reuse", action="store_true", help="use the warehouse already built under --var")
    ap.add_argument("--inflate", type=int, default=0, help="also time on a copy grown this many times")
    ap.add_argument("--warehouse-url", help="a PostgreSQL database to build in (default: DuckDB under --var); "
                    "with --inflate it is grown in place")
    args = ap.parse_args()

    import connectors  # noqa: F401  (dlt's environment)
    from connectors.registry import staging_models
    from hub.demo import running_sandbox
    from hub.pipeline import run
    from hub.settings import load_settings
    from sandbox import load_truth
    from warehouse.access_export import export_access
    from warehouse.engine import Warehouse

    var = args.var.resolve()
    if not (args.reuse and (var / "hub.toml").exists()):
        started = time.perf_counter()
        with running_sandbox(var, people=args.people, seed=args.seed, with_demarches=True,
                             warehouse_url=args.warehouse_url) as sr:
            result = run(sr.settings)
            if result.failed:
                sys.exit(f"pipeline failed: {result.failed}")
        print(f"built: {args.people:,} people, pipeline in {time.perf_counter() - started:.0f} s")
    settings = load_settings(var / "hub.toml")
    models = staging_models([(s.name, s.kind, s.params) for s in settings.sources])
    truth = load_truth(var / "sandbox").select(["record_key", "person_id"]).to_pylist()
    out = var / "exports"
    with Warehouse(settings.warehouse_url) as wh:
        raw_rows, records = _size(wh)
        links = dict(wh.rows("SELECT record_key, citizen_id FROM golden.citizen_link"))
        person_of = {t["record_key"]: str(t["person_id"]) for t in truth}
        by_person: dict[str, set[str]] = defaultdict(set)
        for key in links:
            if key in person_of:
                by_person[person_of[key]].add(key)
        eligible = sorted(p for p, keys in by_person.items() if len({k.split(":", 1)[0] for k in keys}) >= 3)
        step = max(1, len(eligible) // args.sample)
        sample = eligible[::step][:args.sample]
        # warm the process (imports, parsed staging models, the JSON Schema) on someone outside the sample
        warm = next(c for c in sorted(set(links.values())) if c not in {links[k] for p in sample
                                                                          for k in by_person[p]})
        export_access(wh, warm, out / "warm.zip", reader="bench", models=models)
        tp = fp = fn = dpo_found = dpo_wrong = 0
        misses: list[str] = []
        causes: Counter[str] = Counter()
        times = []
        for person in sample:
            keys = by_person[person]
            cid = Counter(links[k] for k in keys).most_common(1)[0][0]
            t0 = time.perf_counter()
            result = export_access(wh, cid, out / f"{person}.zip", reader="bench", models=models)
            times.append(time.perf_counter() - t0)
            doc = result.document
            exported = {r["record"]["record_key"] for r in doc["records"]} | {
                r["record"]["record_key"] for r in doc["to_confirm"] if r["linked"]}
            assert {r["record_key"] for r in doc["raw"]} <= exported  # raw rows only of exported records
            listed = {r["record"]["record_key"] for r in doc["to_confirm"] if not r["linked"]}
            dpo_found += len(listed & keys)
            dpo_wrong += len(listed - keys)
            tp += len(exported & keys)
            for k in sorted(keys - exported):
                fn += 1
                causes["missed: the resolution put it in another citizen"] += 1
                misses.append(f"  person {person}: {k} missed (linked to citizen {links[k]}, not {cid})")
            for k in sorted(exported - keys):
                fp += 1
                causes["extra: another person merged into the citizen"] += 1
                misses.append(f"  person {person}: {k} is person {person_of.get(k, '?')}'s (merged into {cid})")
    recall = tp / (tp + fn) if tp + fn else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    print(f"warehouse: {raw_rows:,} raw source rows, {records:,} person records, {len(set(links.values())):,} "
          f"citizens; {len(eligible):,} people known to >= 3 silos")
    print(f"sample: {len(sample)} people, {tp + fn} true source records")
    print(f"recall {recall:.4f}  precision {precision:.4f}  (found {tp}, missed {fn}, extra {fp})")
    for cause, n in causes.items():
        print(f"  {n} {cause}")
    print(f"records of other citizens the review queue pairs with the person's, listed for the DPO to confirm: "
          f"{dpo_found} are the person's, {dpo_wrong} are not; with the DPO's confirmations recall would be "
          f"{(tp + dpo_found) / (tp + fn) if tp + fn else 1.0:.4f}")
    for line in misses[:20]:
        print(line)
    print(f"one export: median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
          f"(warm process, {settings.warehouse_url.split(':', 1)[0]}, {raw_rows:,} raw rows)")
    if args.inflate > 1:
        citizens = [Counter(links[k] for k in by_person[p]).most_common(1)[0][0] for p in sample]
        _timed_inflated(settings.warehouse_url, var, args.inflate, citizens, models, warm)


def _inflate(url: str, k: int) -> None:
    """Grow every raw, core and golden table k times with replicas of disjoint keys (see the docstring)."""
    from warehouse.engine import Warehouse

    with Warehouse(url) as wh:
        tables = wh.rows("SELECT table_schema, table_name FROM information_schema.tables "
                         "WHERE table_type = 'BASE TABLE' AND (table_schema LIKE 'raw_%' OR table_schema IN "
                         "('core', 'golden')) AND table_schema NOT LIKE '%_staging' AND table_name NOT LIKE '_dlt_%'")
        for schema, table in tables:
            cols = wh.rows("SELECT column_name, data_type, character_maximum_length FROM information_schema.columns "
                           "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position",
                           {"s": schema, "t": table})
            names = ", ".join(f'"{n}"' for n, _, _ in cols)
            wh.execute("DROP TABLE IF EXISTS __orig")
            wh.execute(f'CREATE TEMP TABLE __orig AS SELECT * FROM "{schema}"."{table}"')
            for i in range(1, k):
                exprs = []
                for name, kind, width in cols:
                    q = f'"{name}"'
                    kind = kind.upper()
                    if kind in ("INTEGER", "BIGINT") and schema.startswith("raw_") and not name.startswith("_dlt_"):
                        exprs.append(f"{q} + {i * 100_000_000}")  # ids and the ids that point at them
                    elif kind in ("VARCHAR", "TEXT", "CHARACTER VARYING") and width is None:
                        exprs.append(f"{q} || '~{i}'")
                    else:
                        exprs.append(q)
                wh.execute(f'INSERT INTO "{schema}"."{table}" ({names}) SELECT {", ".join(exprs)} FROM __orig')
        wh.execute("CHECKPOINT" if wh.kind == "duckdb" else "ANALYZE")


def _timed_inflated(url: str, var: Path, k: int, citizens: list[str], models, warm: str) -> None:
    import shutil

    from warehouse.access_export import export_access
    from warehouse.engine import Warehouse

    if url.startswith("duckdb"):
        src = Path(url.split("duckdb:///", 1)[1])
        big = var / f"hub-x{k}.duckdb"
        big_url = f"duckdb:///{big}"
        if not big.exists():
            started = time.perf_counter()
            shutil.copy(src, big)
            _inflate(big_url, k)
            print(f"inflated x{k} in {time.perf_counter() - started:.0f} s")
    else:  # PostgreSQL: the bench's own database, grown in place once
        big_url = url
        marker = var / f"inflated-x{k}"
        if not marker.exists():
            started = time.perf_counter()
            _inflate(big_url, k)
            marker.touch()
            print(f"inflated x{k} in {time.perf_counter() - started:.0f} s")
    with Warehouse(big_url) as wh:
        raw_rows, records = _size(wh)
        export_access(wh, warm, var / "exports" / "warm-big.zip", reader="bench", models=models)
        times = []
        for cid in citizens:
            t0 = time.perf_counter()
            export_access(wh, cid, var / "exports" / f"big-{cid}.zip", reader="bench", models=models)
            times.append(time.perf_counter() - t0)
    print(f"one export on the warehouse grown x{k} ({raw_rows:,} raw source rows, {records:,} person records): "
          f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {len(times)} exports")


if __name__ == "__main__":
    main()
