"""Benchmark: training on a sample of the records vs on every record, same population, same process.

    flock /tmp/bench.lock .venv/bin/python bench/train_sample.py --people 1000000 --samples 0,300000,100000

For each training size (0: every live record; n: a seeded uniform sample of n records,
``matching.model.training_sample``) the sandbox's records are resolved in batch (standardise,
train, predict, cluster; the model scores every record) and the run prints the training and the
resolution seconds, the peak resident memory of the resolution, the pairwise precision / recall
against the sandbox's truth and the model version. The first size is the baseline the others are
read against. Not part of the test run.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path

import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _hwm_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--samples", default="0,300000", help="training sizes, comma-separated (0: every record)")
    ap.add_argument("--memory-limit", default="4GB", help="DuckDB memory_limit per connection")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)  # EM's per-level warnings aside

    from matching import resources
    from matching.evaluate import pairwise_scores
    from matching.resolve import resolve
    from sandbox.observations import person_records

    t0 = time.perf_counter()
    records = person_records(args.people, seed=args.seed)
    live = records.filter(pc.is_null(records["deleted_at"]))
    truth = live.select(["record_key", "person_id"])
    print(f"sandbox: {args.people:,} people -> {records.num_rows:,} person records ({live.num_rows:,} live), "
          f"generated in {time.perf_counter() - t0:.1f} s; DuckDB memory_limit {args.memory_limit}, "
          f"threads {args.threads}")
    resolve(person_records(2_000, seed=args.seed))  # warm: imports, Splink's first linker
    limits = resources.DuckDBLimits(memory_limit=args.memory_limit, threads=args.threads)
    print(f"{'trained on':>12} {'train s':>8} {'resolve s':>10} {'peak MiB':>9} {'precision':>10} {'recall':>8}  model")
    for size in (int(s) for s in args.samples.split(",")):
        _reset_hwm()
        t0 = time.perf_counter()
        with resources.applied(limits):
            res = resolve(records, train_sample=size or None)
        seconds, peak = time.perf_counter() - t0, _hwm_mib()
        s = pairwise_scores(res.links, truth)
        label = "all" if not size or size >= live.num_rows else f"{size:,}"
        print(f"{label:>12} {res.timings['train']:>8.1f} {seconds:>10.1f} {peak:>9,.0f} {s['precision']:>10.4f} "
              f"{s['recall']:>8.4f}  {res.model_version} (tp {s['tp']:,} fp {s['fp']:,} fn {s['fn']:,})", flush=True)
        del res


if __name__ == "__main__":
    main()
