"""kill -9 at random points of a `hub run`, then rerun: is the warehouse what a clean run leaves?

One sandbox commune and its simulated silos serve every trial. A clean `hub run` on a fresh
warehouse gives the reference content hash (``warehouse.ops.content_hash``: raw, core, golden and
marts, without load ids, run ids, timestamps and per-run bookkeeping) and how long its steps take.
Each trial, on a fresh warehouse and dlt folder, starts `hub run` and sends it SIGKILL at a seeded
random moment inside one step (ingest, canonical, resolution, in turn; the step's start read from
the run's own step lines), runs `hub run` again to its end, and compares the hash with the clean
run's; it also counts the runs marked aborted (a run killed before it took the lock left none).

    flock /tmp/bench.lock .venv/bin/python bench/kill_trials.py [--trials 20] [--people 300] [--seed 7]

Prints one line per trial and the count of identical hashes. The hash compared is the pipeline's
data (raw, core, golden); the BI marts, rebuilt from golden at each run, are compared apart (their
small-cell suppression is not deterministic yet: two clean runs can differ there).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HUB = str(Path(sys.executable).parent / "hub")
STAGES = ("ingest", "canonical", "resolve")


def _settings_for(base_text: str, var: Path) -> Path:
    """A settings file for one trial: the sandbox's sources, its own warehouse and dlt folder; the
    marts' keys shared with the clean run (one deployment's keys: its pseudonyms are comparable)."""
    from hub.settings import merge_settings_text

    var.mkdir(parents=True, exist_ok=True)
    text = merge_settings_text(base_text, {"warehouse": {"url": f"duckdb:///{var / 'hub.duckdb'}"},
                                           "hub": {"var_dir": str(var)},
                                           "marts": {"keys_dir": str(var.parent / "secrets")}})
    path = var / "hub.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _hub_run(config: Path, env: dict[str, str], n_sources: int, kill: tuple[str, float] | None = None
             ) -> tuple[int, list[tuple[float, str]]]:
    """`hub run`, and (seconds since start, line) for each step line it printed. With ``kill`` =
    (step, seconds): SIGKILL that many seconds after the step began, as the run's own step lines
    tell (ingest begins with the process, canonical when the last source's line came, resolve
    when canonical's did), so the kill lands inside the step however fast this run goes."""
    started = time.monotonic()
    proc = subprocess.Popen([HUB, "run", "--config", str(config)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, bufsize=1)
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - started, line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if kill is not None:
        step, after = kill
        while proc.poll() is None:
            begun = _step_begins(lines, n_sources).get(step)
            if begun is not None and time.monotonic() - started >= begun + after:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    code = proc.wait()
    reader.join(timeout=10)
    return code, lines


def _step_begins(lines: list[tuple[float, str]], n_sources: int) -> dict[str, float]:
    """When each step began, from the step lines printed so far (each printed as its step ends)."""
    begins = {"ingest": 0.0}
    ingested = [at for at, line in lines if line.strip().startswith("ingest ")
                and not line.strip().split(None, 2)[-1].startswith("not loaded")]
    if len(ingested) >= n_sources:
        begins["canonical"] = ingested[n_sources - 1]
    done = [at for at, line in lines if line.strip().startswith("canonical ")]
    if done:
        begins["resolve"] = done[0]
    return begins


def _durations(lines: list[tuple[float, str]], n_sources: int) -> dict[str, float]:
    """How long each step of a clean run took."""
    b = _step_begins(lines, n_sources)
    end = next(at for at, line in lines if line.strip().startswith("resolve "))
    return {"ingest": b["canonical"], "canonical": b["resolve"] - b["canonical"], "resolve": end - b["resolve"]}


def _hash(config: Path) -> tuple[str, dict[str, str], list[dict]]:
    """The content hash of raw, core and golden; every table's hash (marts included); the runs."""
    import hashlib

    from hub.settings import load_settings
    from warehouse import ops
    from warehouse.engine import Warehouse

    with Warehouse(load_settings(config).warehouse_url) as wh:
        detail, runs = ops.content_hash(wh, detail=True), ops.runs(wh, 5)
    total = hashlib.sha256()
    for name, digest in sorted(detail.items()):
        if not name.startswith("marts."):
            total.update(f"{name}={digest}\n".encode())
    return total.hexdigest(), detail, runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", type=Path, help="keep the trials' folders here (default: a temporary folder)")
    args = ap.parse_args()
    from hub.demo import running_sandbox

    root = args.keep or Path(tempfile.mkdtemp(prefix="hub-kill-trials-"))
    rng = random.Random(args.seed)
    identical = 0
    with running_sandbox(root / "sandbox-var", people=args.people, seed=args.seed) as sr:
        base = sr.settings.config_path.read_text(encoding="utf-8")
        n_sources = len(sr.settings.sources)
        env = dict(os.environ)  # the simulators' credentials, which running_sandbox exported
        clean_cfg = _settings_for(base, root / "clean")
        t0 = time.monotonic()
        code, lines = _hub_run(clean_cfg, env, n_sources)
        clean_seconds = time.monotonic() - t0
        if code != 0:
            sys.exit(f"the clean run failed (exit {code}): {lines[-3:]}")
        clean, clean_detail, _ = _hash(clean_cfg)
        steps = _durations(lines, n_sources)
        print(f"clean run: {clean_seconds:.1f} s ({', '.join(f'{s} {d:.1f} s' for s, d in steps.items())}); "
              f"content hash {clean[:16]}", flush=True)
        for trial in range(1, args.trials + 1):
            stage = STAGES[(trial - 1) % len(STAGES)]
            after = rng.uniform(0.05, 0.95) * steps[stage]
            var = root / f"trial-{trial:02d}"
            cfg = _settings_for(base, var)
            killed, _ = _hub_run(cfg, env, n_sources, kill=(stage, after))
            code, _ = _hub_run(cfg, env, n_sources)
            digest, detail, runs = _hash(cfg)
            same = digest == clean and code == 0
            identical += same
            aborted = sum(r["status"] == "aborted" for r in runs)
            differs = sorted(t for t in set(detail) | set(clean_detail) if detail.get(t) != clean_detail.get(t))
            marts = [t for t in differs if t.startswith("marts.")]
            verdict = ("identical" if same else "DIFFERS: " + ", ".join(t for t in differs if t not in marts)) + (
                f" (marts differ: {', '.join(marts)})" if marts else "")
            print(f"trial {trial:2d}: SIGKILL {after:4.1f} s into {stage:<9} (exit {killed}); rerun exit {code}, "
                  f"{aborted} run(s) aborted; hash {digest[:16]} {verdict}", flush=True)
            if args.keep is None:
                shutil.rmtree(var, ignore_errors=True)
    print(f"{identical}/{args.trials} trials gave the clean run's content hash")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(0 if identical == args.trials else 1)


if __name__ == "__main__":
    main()
