"""Benchmark: the whole job (`hub run`) on a sandbox commune, stage by stage, seconds and peak memory.

    flock /tmp/bench.lock .venv/bin/python bench/pipeline.py --people 100000 [--memory-limit 6GB]
        [--threads 2] [--warehouse-url postgresql://…] [--runs 2] [--no-bare]

The sandbox is generated in a process of its own (its peak printed; its memory given back before the
hub starts) and its simulators served in another (their peak printed at the end; with one run, that
process ends once the last source is ingested), so that the figures are the hub's process alone. Prints, per stage of each run: the seconds the pipeline records itself
(RunReport timings, the resolution's timings by part) and the peak resident memory of the hub's
process during the stage (the kernel's high-water mark VmHWM, reset at each stage boundary through
/proc/self/clear_refs) beside, as the stage ends, what pyarrow's memory pool holds (Arrow built by
pyarrow itself) and what the C heap holds in use (glibc's mallinfo2: Python objects, DuckDB's
buffers, and the Arrow tables DuckDB hands over, which are allocated by DuckDB, not by pyarrow's
pool — the resident memory a stage ends with, less the interpreter's code); then the
pairwise precision / recall against the ground truth, and the hub's resolution (standardise → ids)
beside a bare Splink 5 train + predict + cluster on the same rows in the same process
(bench/resolution.py's ``bare_splink_seconds``). Not part of the test run.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import functools
import importlib
import multiprocessing as mp
import os
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


# ------------------------------------------------------------------------------- peak memory per stage
def _hwm_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def _heap_bytes() -> int:
    """Bytes the C heap holds in use (glibc's mallinfo2: arenas and mmapped chunks); 0 elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return 0
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


class StageMeter:
    """Peak resident memory and wall seconds per stage label. Stages are entered by wrapping the
    pipeline's own functions (:meth:`wrap`); a stage's peak is the kernel's high-water mark since the
    last boundary (writing 5 to /proc/self/clear_refs resets it to the current RSS)."""

    def __init__(self) -> None:
        self.start()

    def start(self) -> None:
        """Forget what was measured: a new run starts."""
        self.peak: dict[str, int] = {}
        self.arrow: dict[str, int] = {}  # bytes the Arrow memory pool holds when the stage ends
        self.heap: dict[str, int] = {}  # bytes the C heap holds in use when the stage ends
        self.seconds: dict[str, float] = {}
        self.order: list[str] = []
        self._stack = ["start"]
        self._since = time.perf_counter()
        self._reset()

    @staticmethod
    def _reset() -> None:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")

    def _switch(self) -> None:
        label, now = self._stack[-1], time.perf_counter()
        if label not in self.peak:
            self.order.append(label)
        self.peak[label] = max(self.peak.get(label, 0), _hwm_kib())
        self.arrow[label] = max(self.arrow.get(label, 0), pa.total_allocated_bytes())
        self.heap[label] = max(self.heap.get(label, 0), _heap_bytes())
        self.seconds[label] = self.seconds.get(label, 0.0) + now - self._since
        self._since = now
        self._reset()

    def enter(self, label: str) -> None:
        self._switch()
        self._stack.append(label)

    def leave(self) -> None:
        self._switch()
        self._stack.pop()

    def wrap(self, module: str, name: str, label: str | Callable[..., str]) -> None:
        """Count the time and peak memory of ``module.name`` under ``label`` (a label, or a function
        of the call's arguments giving it)."""
        mod = importlib.import_module(module)
        real = getattr(mod, name)

        @functools.wraps(real)
        def measured(*args: Any, **kwargs: Any) -> Any:
            self.enter(label if isinstance(label, str) else label(*args, **kwargs))
            try:
                return real(*args, **kwargs)
            finally:
                self.leave()

        setattr(mod, name, measured)


def instrument(meter: StageMeter) -> None:
    """Stage boundaries at the pipeline's own functions (looked up by module attribute at call time)."""
    meter.wrap("hub.pipeline", "ingest", lambda settings, source, run_id: f"ingest {source}")
    meter.wrap("hub.pipeline", "build_canonical", "canonical / quality gate")
    meter.wrap("hub.pipeline", "resolve", "resolve (rest: model, release report, queue)")
    meter.wrap("warehouse.resolution", "read_inputs", "read inputs")
    meter.wrap("matching.resolve", "prepare", "standardise")
    for name in ("model_input", "profile", "train"):  # the model's input, its profile, training
        meter.wrap("matching.model", name, "train")
    meter.wrap("matching.model", "linker", "predict")
    meter.wrap("matching.resolve", "clustered", "cluster")
    meter.wrap("matching.release", "assign_citizen_ids", "ids")
    meter.wrap("matching.release", "survive", "survivorship")
    meter.wrap("matching.release", "build_households", "foyers")
    meter.wrap("warehouse.resolution", "publish_release", "publish")
    meter.wrap("warehouse.marts", "build_marts", "marts")
    meter.wrap("warehouse.snapshot", "publish", "snapshot")


# the pipeline's own timing of each stage label (RunReport.timings; the resolution's by part)
_RECORDED = {"canonical / quality gate": "canonical", "read inputs": "read", "standardise": "compute: standardise",
             "train": "compute: train", "predict": "compute: predict", "cluster": "compute: cluster",
             "ids": "compute: ids", "survivorship": "compute: survivorship", "foyers": "compute: foyers",
             "publish": "publish", "marts": "marts", "snapshot": "snapshot"}


# ------------------------------------------------------------------------------- the sandbox, elsewhere
def build_sandbox_files(var_dir: str, people: int, seed: int, conn: Any) -> None:
    """Grandchild process: generate the sandbox's files, send the seconds and this process's peak."""
    from sandbox import build_sandbox

    started = time.perf_counter()
    build_sandbox(Path(var_dir) / "sandbox", people=people, seed=seed)
    conn.send({"generated": time.perf_counter() - started,
               "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def serve_sandbox(var_dir: str, people: int, seed: int, warehouse_url: str | None, conn: Any) -> None:
    """Child process: build the sandbox (in a process of its own, whose memory — the whole population,
    3.9 GB at 1M people — is given back before the hub starts), serve its simulators, send the
    settings file and the simulators' credentials, serve until told to stop, then send its own peak."""
    from hub.demo import built_sandbox, start_simulators

    parent, child = mp.get_context("spawn").Pipe()
    builder = mp.get_context("spawn").Process(target=build_sandbox_files, args=(var_dir, people, seed, child))
    builder.start()
    built = parent.recv()
    builder.join()
    with ExitStack() as stack:
        sr = start_simulators(stack, built_sandbox(Path(var_dir) / "sandbox"), Path(var_dir),
                              warehouse_url=warehouse_url, generate_seconds=built["generated"])
        env = {v: os.environ[v] for s in sr.settings.sources for k, v in s.params.items()
               if k.endswith("_env") and v in os.environ}
        conn.send({"config": str(Path(var_dir) / "hub.toml"), "env": env, "root": str(sr.sandbox.root),
                   "counts": sr.sandbox.counts, "generated": sr.generate_seconds, "peak_mib": built["peak_mib"]})
        conn.recv()  # stop, or the sources were read (one run: the process ends, its memory given back)
    conn.send({"serving_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def release_sources_before_canonical(conn: Any, served: dict[str, float]) -> None:
    """One run: the simulators are stopped (their process ends) once the last source is ingested —
    the hub reads them no more — so their memory (3 GB at 1M people: every row as Python objects)
    is not resident beside the hub's through the canonical layer and resolution. Their peak goes
    to ``served``."""
    mod = importlib.import_module("hub.pipeline")
    real = mod.build_canonical

    @functools.wraps(real)
    def after_the_sources(*args: Any, **kwargs: Any) -> Any:
        if not served:
            conn.send("sources read")
            served.update(conn.recv())
        return real(*args, **kwargs)

    mod.build_canonical = after_the_sources


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--warehouse-url", default=None)
    ap.add_argument("--runs", type=int, default=1,
                    help="runs on the same sources; later runs load incrementally and resolve incrementally")
    ap.add_argument("--memory-limit", default=None, help="[resources] memory_limit, e.g. 6GB (default DuckDB's)")
    ap.add_argument("--threads", type=int, default=None, help="[resources] threads (default every core)")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare Splink run beside the resolution")
    args = ap.parse_args()

    started = time.perf_counter()
    from hub.demo import accuracy
    from hub.pipeline import run
    from hub.settings import load_settings

    imports = time.perf_counter() - started
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        parent, child = ctx.Pipe()
        server = ctx.Process(target=serve_sandbox, args=(tmp, args.people, args.seed, args.warehouse_url, child))
        server.start()
        try:
            if not parent.poll(24 * 3600):
                raise SystemExit("the sandbox process sent nothing")
            sb = parent.recv()
            os.environ.update(sb["env"])
            settings = load_settings(sb["config"])
            resources = {k: v for k, v in (("memory_limit", args.memory_limit), ("threads", args.threads)) if v}
            settings = dataclasses.replace(settings, resources={**settings.resources, **resources})
            limits = settings.duckdb_limits()
            print(f"sandbox: {args.people:,} people -> {sb['counts']} (generated in {sb['generated']:.1f} s in a "
                  f"process of its own, peak {sb['peak_mib']:,.0f} MiB there; hub imports {imports:.1f} s)")
            print(f"DuckDB limits: memory_limit {limits.memory_limit or 'DuckDB default (80% of RAM)'}, threads "
                  f"{limits.threads or os.cpu_count()}, spill to {limits.temp_directory}; "
                  f"machine: {os.cpu_count()} cores")
            meter, peaks, served = StageMeter(), [], {}
            instrument(meter)
            if args.runs == 1:
                release_sources_before_canonical(parent, served)
            for i in range(args.runs):
                base = _rss_kib()
                meter.start()
                report = run(settings, incremental=i > 0)
                meter.enter("end")
                _print_run(i + 1, report, meter, base)
                peaks.append(max(meter.peak.values()))
                if report.failed:
                    print("  failed:", report.failed)
            a = accuracy(settings, Path(sb["root"]))
            print(f"pairwise precision {a['precision']:.4f} recall {a['recall']:.4f} f1 {a['f1']:.4f} "
                  f"(tp {a['tp']:,} fp {a['fp']:,} fn {a['fn']:,})")
            # (ru_maxrss is no use here: resetting the high-water mark at each stage resets it too)
            print(f"peak resident memory of the hub's process over the runs: {max(peaks) / 1024:,.0f} MiB")
            if not args.no_bare:
                _beside_bare(settings, report)
        finally:
            if not served:
                parent.send("stop")
                served.update(parent.recv() if parent.poll(60) else {})
            if served:
                print(f"the sandbox's simulators peaked at {served['serving_peak_mib']:,.0f} MiB in their process "
                      f"(not the hub's){'; stopped once the sources were ingested' if args.runs == 1 else ''}")
            server.join(60)


def _print_run(n: int, report: Any, meter: StageMeter, base_kib: int) -> None:
    timings = {**report.timings, **(report.resolution.get("timings") or {})}
    rows = sum(s["rows_loaded"] for s in report.ingested)
    print(f"run {n} ({report.resolution.get('mode')}): {report.seconds:.1f} s, {rows:,} source rows, "
          f"{report.resolution.get('records', 0):,} person records -> {report.resolution.get('citizens', 0):,} "
          f"citizens (resident memory at start {base_kib / 1024:,.0f} MiB)")
    print(f"  {'stage':<46} {'seconds':>8} {'peak MiB':>9} {'Arrow MiB':>10} {'heap MiB':>9}")
    for label in meter.order:
        if label == "start":
            continue
        recorded = timings.get(label) if label.startswith("ingest ") else timings.get(_RECORDED.get(label, ""))
        secs = recorded if recorded is not None else meter.seconds[label]
        mark = "" if recorded is not None else " *"
        print(f"  {label:<46} {secs:>8.1f} {meter.peak[label] / 1024:>9,.0f} "
              f"{meter.arrow[label] / 2**20:>10,.0f} {meter.heap[label] / 2**20:>9,.0f}{mark}")
    print("  (* not timed by the pipeline: the wall time between the stages around it; as the stage ends, "
          "Arrow MiB: what pyarrow's memory pool holds; heap MiB: the C heap in use — Python objects, "
          "DuckDB's buffers and the Arrow tables DuckDB returns, which pyarrow's pool does not count)")


def _beside_bare(settings: Any, report: Any) -> None:
    """The hub's resolution (standardise → ids) beside a bare Splink 5 train + predict + cluster on
    the same person records, in this process."""
    from resolution import bare_splink_seconds

    from matching.resolve import DEFAULT_THRESHOLD
    from warehouse.engine import Warehouse
    from warehouse.resolution import read_inputs

    with Warehouse(settings.warehouse_url) as wh:
        records = read_inputs(wh, incremental=False).records
    t = report.resolution.get("timings") or {}
    hub_s = sum(t.get(f"compute: {k}", 0.0) for k in ("standardise", "train", "predict", "cluster", "ids"))
    before = _hwm_kib()
    StageMeter._reset()
    bare_s = bare_splink_seconds(records, DEFAULT_THRESHOLD)
    bare_peak = _hwm_kib()
    print(f"hub resolution (standardise, train, predict, cluster, ids) {hub_s:.1f} s vs bare Splink 5 train + "
          f"predict + cluster {bare_s:.1f} s on the same {records.num_rows:,} records: {hub_s / bare_s:.2f}x "
          f"(bare peak {bare_peak / 1024:,.0f} MiB, DuckDB defaults; process peak before it {before / 1024:,.0f} MiB)")
    print("  hub's own parts: " + ", ".join(f"{k} {t.get(f'compute: {k}', 0.0):.1f} s"
                                           for k in ("standardise", "train", "predict", "cluster", "ids")))


if __name__ == "__main__":
    main()
