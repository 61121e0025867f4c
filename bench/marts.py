"""Benchmark: the BI marts' build time next to the pipeline's own time, in the same process.

    flock /tmp/bench.lock .venv/bin/python bench/marts.py --people 100000 [--warehouse-url postgresql://…]

Runs the whole job (`hub run`) on a sandbox commune; the marts are built at its end, as in
production, and that build is timed where it happens (the pipeline's call is wrapped). Prints the
source records, the pipeline's time without the marts, the marts' time and their ratio (target:
at most +15 %), then rebuilds the marts once more on the same warehouse (a rerun with the same
keys) and times that too. Not part of the test run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--warehouse-url", default=None)
    args = ap.parse_args()

    import warehouse.marts as marts
    from hub.demo import running_sandbox
    from hub.pipeline import run
    from warehouse.engine import Warehouse

    timed: list[float] = []
    build = marts.build_marts

    def timed_build(*a, **kw):  # the pipeline imports build_marts at call time: this wrapper is what it runs
        started = time.perf_counter()
        try:
            return build(*a, **kw)
        finally:
            timed.append(time.perf_counter() - started)

    marts.build_marts = timed_build
    with tempfile.TemporaryDirectory() as tmp, running_sandbox(
        Path(tmp), args.people, args.seed, warehouse_url=args.warehouse_url, with_demarches=True
    ) as sr:
        report = run(sr.settings)
        assert not report.failed, report.failed
        with Warehouse(sr.settings.warehouse_url) as wh:
            raw = sum(s["rows_loaded"] for s in report.ingested)
            records = wh.scalar("SELECT count(*) FROM core.person_record")
            interactions = wh.scalar("SELECT count(*) FROM core.interaction")
            keys = marts.keys_from_settings(sr.settings.marts, sr.settings.var_dir)
            started = time.perf_counter()
            counts = build(wh, keys=keys)
            rebuild = time.perf_counter() - started
    in_run = timed[0]
    pipeline = report.seconds - in_run
    engine = "PostgreSQL" if args.warehouse_url else "DuckDB"
    print(f"sandbox {args.people:,} people on {engine}: {raw:,} source rows loaded, {records:,} person records, "
          f"{interactions:,} interactions -> {report.resolution['citizens']:,} citizens")
    print(f"pipeline without the marts {pipeline:.1f} s | marts {in_run:.1f} s in the run "
          f"(+{100 * in_run / pipeline:.1f} % of the pipeline; target <= +15 %) | rebuild {rebuild:.1f} s")
    print("rows: " + ", ".join(f"{k.removeprefix('marts.')} {v:,}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
