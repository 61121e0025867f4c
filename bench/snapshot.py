"""Benchmark: the readers' snapshot (warehouse.snapshot.publish) of a sandbox warehouse, by part.

    flock /tmp/bench.lock .venv/bin/python bench/snapshot.py --people 100000 [--repeat 3]

Builds the sandbox commune, runs the whole job once (DuckDB), then publishes the snapshot
``--repeat`` times and prints each part (checkpoint, file copy, the readers' indexes, fsync and
rename) beside a baseline in the same process: a plain copy of the same file with fsync (what
the disk alone costs). Also prints the pipeline's own run time, for the snapshot's share of a run.
Not part of the test run.

Measured 2026-12-07 (100,000 people, DuckDB, shared loaded 2 cores, --repeat 3): pipeline 320.3 s;
warehouse 199.0 MB; publish 2.35 s (checkpoint 0.00, copy 0.25, indexes 1.64, fsync 0.25 s) beside
a plain copy + fsync of 0.28 s; the snapshot is 0.7 % of the run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _plain_copy(src: Path, dst: Path) -> float:
    started = time.perf_counter()
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - started
    dst.unlink()
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from hub.demo import running_sandbox
    from hub.pipeline import run
    from warehouse.snapshot import publish

    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp) / "var"
        url = f"duckdb:///{var / 'hub.duckdb'}"
        with running_sandbox(var, args.people, args.seed, warehouse_url=url) as sr:
            started = time.perf_counter()
            report = run(sr.settings)
            pipeline_s = time.perf_counter() - started
        path = var / "hub.duckdb"
        print(f"sandbox: {args.people:,} people, {report.resolution['records']:,} records -> "
              f"{report.resolution['citizens']:,} citizens; pipeline {pipeline_s:.1f} s; "
              f"warehouse file {path.stat().st_size / 1e6:,.1f} MB")
        runs = [publish(url) for _ in range(args.repeat)]
        plain = [_plain_copy(path, Path(tmp) / "plain-copy.duckdb") for _ in range(args.repeat)]
        parts = {k: statistics.median(r.parts[k] for r in runs) for k in runs[0].parts}
        total = statistics.median(r.seconds for r in runs)
        print(f"publish (median of {args.repeat}): {total:.2f} s, snapshot {runs[-1].bytes / 1e6:,.1f} MB; "
              + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
        print(f"baseline, plain copy + fsync of the same file (median of {args.repeat}): "
              f"{statistics.median(plain):.2f} s")
        print(f"the snapshot's share of this run: {total / (pipeline_s) * 100:.1f} % "
              f"({total:.2f} s of {pipeline_s:.1f} s)")


if __name__ == "__main__":
    main()
