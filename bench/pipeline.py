"""Benchmark: the whole job (`hub run`) on a sandbox commune, stage by stage.

    .venv/bin/python bench/pipeline.py --people 10000 [--warehouse-url postgresql://…]

Prints the sandbox size, each stage's seconds, rows per second of ingestion, the citizens found
and the pairwise precision / recall against the ground truth. Not part of the test run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--warehouse-url", default=None)
    ap.add_argument("--runs", type=int, default=2,
                    help="runs on the same sources; later runs load incrementally and resolve incrementally")
    args = ap.parse_args()

    started = time.perf_counter()
    from hub.demo import accuracy, running_sandbox
    from hub.pipeline import run

    imports = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp, running_sandbox(
        Path(tmp), args.people, args.seed, warehouse_url=args.warehouse_url
    ) as sr:
        settings, sb = sr.settings, sr.sandbox
        print(f"sandbox: {args.people:,} people -> {sb.counts} "
              f"(generated in {sr.generate_seconds:.1f} s; imports {imports:.1f} s)")
        for i in range(args.runs):
            report = run(settings, incremental=i > 0)
            rows = sum(s["rows_loaded"] for s in report.ingested)
            ingest_s = sum(s["seconds"] for s in report.ingested)
            print(f"run {i + 1}: total {report.seconds:.1f} s | ingest {ingest_s:.1f} s "
                  f"({rows:,} rows, {rows / ingest_s if ingest_s else 0:,.0f} rows/s: "
                  + ", ".join(f"{s['source']} {s['seconds']} s" for s in report.ingested)
                  + f") | canonical {report.canonical['seconds']} s | {report.resolution['mode']} resolve "
                  f"{report.resolution['seconds']} s "
                  f"({report.resolution['records']:,} records -> {report.resolution['citizens']:,} citizens)")
            if report.failed:
                print("  failed:", report.failed)
        a = accuracy(settings, sb.root)
        print(f"pairwise precision {a['precision']:.4f} recall {a['recall']:.4f} f1 {a['f1']:.4f} "
              f"(tp {a['tp']:,} fp {a['fp']:,} fn {a['fn']:,})")


if __name__ == "__main__":
    main()
