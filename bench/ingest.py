"""Benchmark: every connector's ingestion rate next to a bare baseline of the same data, same run.

    .venv/bin/python bench/ingest.py --rows 1000000 [--people 200000] [--only finance,files,http]
                                     [--latency-ms 20] [--ms-per-1000 50]

(a) finance: the SQL connector moving N ``tiers`` rows from SQLite into DuckDB, against a bare
    dlt ``sql_database(backend="pyarrow")`` append of the same table (target ≥ 70 %);
(b) files: the CSV mapping connector against a bare dlt Arrow load of the same CSV (target
    ≥ 150k rows/s; see bench/ingest_files.py);
(c) HTTP connectors (family, salesforce, servicenow, demarches) over their simulators, against a
    raw paginated fetch with ``requests`` of the same pages a first run of the connector asks for
    (same queries, fields and page sizes; JSON parsed, rows counted) (target ≥ 80 %). Each
    simulator runs in a process of its own, as a real silo runs on a machine of its own: in-process
    it would share the hub's interpreter lock and encode its JSON on the hub's time. Two
    measurements in the same run: with no server time (a local simulator answers a page in well
    under a millisecond, so the raw fetch is JSON parsing alone and the ratio is the hub's own
    overhead, for information), then with server time on every page, both sides facing the same
    simulator: that row is the target's. The server time is ``--latency-ms`` per page (default 20:
    authentication, query, the round trip) plus ``--ms-per-1000`` per thousand records on the page
    (default 50: reading and serialising them), so a family-portal page of 1000 takes 70 ms, a
    Salesforce batch of 2000 120 ms, a ServiceNow page of 10,000 520 ms, a Démarches page of 100
    dossiers 25 ms. That is deliberately conservative: such pages are generally reported to take
    from a few hundred milliseconds to seconds on the real services (not measured here); the lower
    the figure, the less the server hides the hub's work. The raw fetch reads collections one after
    another, as a paginated
    client does; the family, Salesforce and ServiceNow connectors read theirs concurrently (dlt's
    ``parallelized`` resources), so with server time they are also shown against a raw fetch that does
    the same (one thread per collection), for information. The default size, 200,000 people, is a
    large commune's (Bordeaux, Rennes); every run also pays a fixed ~0.3 s of dlt pipeline set-up,
    which weighs on small silos only.

Prints one table. Not part of the test run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import connectors  # noqa: F401  (dlt's environment: no telemetry, no Airflow Variables lookup)

Row = tuple[str, int, float, float, str]  # name, rows, connector s, baseline s, target


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def _duck(root: Path, name: str) -> Any:
    from warehouse.engine import Warehouse

    return Warehouse(f"duckdb:///{root / f'{name}.duckdb'}")


# ---------------------------------------------------------------------------- (a) finance
def finance_source(path: Path, rows: int) -> str:
    """A SQLite finance database with ``rows`` tiers (factures and paiements empty), built in SQL."""
    import sqlalchemy as sa

    from sandbox.finance_db import metadata

    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    t0 = dt.datetime(2026, 1, 5, 9, 0, 0)
    con = sqlite3.connect(path)
    # a recursive CTE generates the rows inside SQLite: no Python loop over a million rows
    con.execute(
        """INSERT INTO tiers (id, civilite, nom, nom_naissance, prenom, date_naissance, adresse, code_postal, ville,
                              telephone, email, groupe_id, updated_at, supprime)
           WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
           SELECT i, CASE i % 2 WHEN 0 THEN 'M.' ELSE 'Mme' END, 'NOM' || (i % 5000), NULL, 'PRENOM' || (i % 700),
                  date('1940-01-01', '+' || (i % 25000) || ' days'), (i % 300) || ' RUE DES LILAS',
                  printf('%05d', 75000 + i % 20), 'PARIS', '06 12 34 ' || printf('%02d', i % 100) || ' 00',
                  'u' || i || '@example.org', i / 2, datetime(?, '+' || (i % 100000) || ' seconds'), 0
           FROM n""", (rows, t0.isoformat(sep=" ")))
    con.commit()
    con.close()
    return url


def bench_finance(root: Path, rows: int) -> Row:
    import dlt
    from dlt.sources.sql_database import sql_database

    from connectors import finance
    from connectors.runner import run_source

    url = finance_source(root / "finance.sqlite", rows)

    def bare() -> None:
        with _duck(root, "finance_bare") as wh:
            src = sql_database(credentials=url, table_names=["tiers"], backend="pyarrow", chunk_size=50_000,
                               reflection_level="full_with_precision")
            p = dlt.pipeline(pipeline_name="bench_finance_bare", destination=wh.dlt_destination(),
                             dataset_name="raw_bare", pipelines_dir=str(root / "p_fin_bare"))
            p.run(src, write_disposition="append", loader_file_format="parquet")

    def connector() -> Any:
        with _duck(root, "finance_hub") as wh:
            return run_source(finance, wh.dlt_destination(), "bench", pipelines_dir=root / "p_fin", source_url=url)

    base, _ = _timed(bare)
    took, result = _timed(connector)
    assert result.count("tiers").rows_loaded == rows
    return ("finance SQL → DuckDB", rows, took, base, "≥ 70 % of bare")


# ---------------------------------------------------------------------------- (b) files
def bench_files(root: Path, rows: int) -> Row:
    import ingest_files

    drop = root / "drop"
    drop.mkdir()
    csv_path = drop / "usagers_2026.csv"
    ingest_files.write_csv(csv_path, rows)
    mapping = root / "bench.toml"
    mapping.write_text(ingest_files.MAPPING, encoding="utf-8")
    base = ingest_files.bare_load(f"duckdb:///{root / 'files_bare.duckdb'}", csv_path, root / "p_files_bare")
    took, result = ingest_files.mapped_load(f"duckdb:///{root / 'files_hub.duckdb'}", drop, mapping,
                                            root / "p_files")
    assert result.count("usagers").rows_read == rows
    return ("files CSV mapping → DuckDB", rows, took, base, "≥ 150k rows/s")


# ---------------------------------------------------------------------------- (c) HTTP
def _follow(session: Any, url: str | None, params: dict[str, Any] | None,
            nxt: Callable[[Any, Any], str | None], count: Callable[[Any], int]) -> int:
    """Rows of every page, following ``nxt(response, body)`` (the raw fetch: parse JSON, count, go on)."""
    n = 0
    while url:
        r = session.get(url, params=params)
        r.raise_for_status()
        body = r.json()
        n += count(body)
        url, params = nxt(r, body), None
    return n


# how a raw fetch walks its collections: ``map`` (one after another) or ``concurrently``
Each = Callable[[Callable[[Any], int], Sequence[Any]], Iterable[int]]


def concurrently(fn: Callable[[Any], int], items: Sequence[Any]) -> list[int]:
    """``fn`` over ``items`` at once, one thread each (the raw fetch's equivalent of the connectors'
    parallelized resources: one request per collection in flight)."""
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def raw_family(portal: Any, token: str, each: Each = map) -> int:
    import requests

    from connectors.family import COLLECTIONS, PER_PAGE

    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return sum(each(lambda c: _follow(s, f"{portal.url}/api/v1/{c}",
                                      {"per_page": PER_PAGE, "updated_since": "1970-01-01T00:00:00Z"},
                                      lambda r, b: b["links"]["next"], lambda b: len(b["data"])),
                    list(COLLECTIONS)))


def raw_salesforce(org: Any, each: Each = map) -> int:
    import requests

    from connectors.salesforce import API_VERSION, BATCH_SIZE, OBJECTS, TOKEN_PATH, soql

    s = requests.Session()
    tok = s.post(org.url + TOKEN_PATH, data={"grant_type": "client_credentials", "client_id": org.client_id,
                                             "client_secret": org.client_secret}).json()
    s.headers["Authorization"] = f"Bearer {tok['access_token']}"
    s.headers["Sforce-Query-Options"] = f"batchSize={BATCH_SIZE}"
    base = tok["instance_url"]
    first = SimpleNamespace(start_value="1970-01-01T00:00:00Z")
    return sum(each(lambda sobject_fields: _follow(
        s, f"{base}/services/data/{API_VERSION}/queryAll",
        {"q": soql(sobject_fields[0], list(sobject_fields[1])).format(incremental=first)},
        lambda r, b: None if b["done"] else base + b["nextRecordsUrl"], lambda b: len(b["records"])),
        list(OBJECTS.values())))


def raw_servicenow(desk: Any, each: Each = map) -> int:
    import requests

    from connectors.servicenow import PAGE_SIZE, TABLES, encoded_query

    s = requests.Session()
    s.auth = (desk.username, desk.password)
    first = SimpleNamespace(start_value="1970-01-01 00:00:00")
    return sum(each(lambda t: _follow(
        s, f"{desk.url}/api/now/table/{t}",
        {"sysparm_query": encoded_query(t, ["sys_user", "incident"]).format(incremental=first),
         "sysparm_fields": ",".join(TABLES[t]), "sysparm_display_value": "false",
         "sysparm_limit": PAGE_SIZE, "sysparm_offset": 0},
        lambda r, b: r.links.get("next", {}).get("url"), lambda b: len(b["result"])), list(TABLES)))


def raw_demarches(ds: Any, token: str, each: Each = map) -> int:
    import requests

    from connectors.demarches import _CONNECTION, DELETED_QUERY, DOSSIERS_QUERY, MAX_PAGE_SIZE

    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    endpoint = ds.url.rstrip("/") + "/api/v2/graphql"

    def connection(number_entity: tuple[int, str]) -> int:
        number, entity = number_entity
        query = DOSSIERS_QUERY if entity == "dossiers" else DELETED_QUERY
        field, operation, since_arg = _CONNECTION[entity]
        n, after = 0, None
        while True:
            r = s.post(endpoint, json={"query": query, "operationName": operation, "variables": {
                "demarcheNumber": number, "first": MAX_PAGE_SIZE, "after": after, since_arg: None}})
            r.raise_for_status()
            conn = r.json()["data"]["demarche"][field]
            n += len(conn["nodes"])
            if not conn["pageInfo"]["hasNextPage"]:
                return n
            after = conn["pageInfo"]["endCursor"]

    return sum(each(connection, [(number, entity) for number in ds.demarche_numbers
                                 for entity in ("dossiers", "deleted_dossiers")]))


def _serve(kind: str, root: str, conn: Any) -> None:
    """(In the simulator's process.) Start the ``kind`` simulator over the sandbox at ``root``, send
    what a client needs to reach it, then set its latency on each message until ``None``."""
    from sandbox import DEFAULT_TOKEN, open_sandbox
    from sandbox.demarches import DEFAULT_TOKEN as DEMARCHES_TOKEN

    sb = open_sandbox(Path(root))
    sim = {"family": sb.family_portal, "salesforce": sb.salesforce, "servicenow": sb.servicenow,
           "demarches": sb.demarches}[kind]()
    conn.send({"url": sim.url, "token": DEMARCHES_TOKEN if kind == "demarches" else DEFAULT_TOKEN,
               **{a: getattr(sim, a) for a in ("client_id", "client_secret", "username", "password",
                                                "demarche_numbers") if hasattr(sim, a)}})
    while (times := conn.recv()) is not None:
        sim.latency, sim.latency_per_record = times
        conn.send(times)
    sim.stop()


class SimulatorProcess:
    """A sandbox simulator serving from a process of its own (its attributes: ``url`` and the
    credentials, as the in-process simulator has them)."""

    def __init__(self, kind: str, sandbox_root: Path):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(kind, str(sandbox_root), child), daemon=True)
        self._proc.start()
        child.close()  # the child's end lives in the child only: if it dies, recv() raises EOFError
        self.__dict__.update(self._conn.recv())

    def set_latency(self, per_page: float, per_record: float) -> None:
        """Server time (seconds) per page and per record from now on (returns once the server has it)."""
        self._conn.send((per_page, per_record))
        self._conn.recv()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.send(None)
        self._proc.join(timeout=10)


def bench_http(root: Path, people: int, latency_ms: float, ms_per_1000: float) -> list[Row]:
    """Each HTTP connector against its raw fetch, with no server time, then with ``latency_ms`` per
    page plus ``ms_per_1000`` per thousand records on it."""
    from connectors import demarches, family, salesforce, servicenow
    from connectors.runner import run_source
    from sandbox import build_sandbox

    sb = build_sandbox(root / "sb", people=people, seed=5)
    out: list[Row] = []

    def run(name: str, raw: Callable[[Any, Each], int], hub: Callable[[Any, Any, Path], Any]) -> None:
        with SimulatorProcess(name, sb.root) as sim:
            # each side once untimed first, so that neither timing pays one-off costs (first-use
            # imports and parsers, the simulators' query caches): both are measured warm
            raw(sim, map)
            with _duck(root, f"{name}_warm") as wh:
                hub(sim, wh.dlt_destination(), root / f"p_{name}_warm")
            for ms, per_1000 in dict.fromkeys(((0.0, 0.0), (latency_ms, ms_per_1000))):  # once if both 0
                sim.set_latency(ms / 1000, per_1000 / 1e6)
                label = f"{ms:g} ms + {per_1000:g}/1000" if ms or per_1000 else "no server time"
                base, n = _timed(lambda: raw(sim, map))
                with _duck(root, f"{name}_{ms:g}_{per_1000:g}") as wh:
                    pdir = root / f"p_{name}_{ms:g}_{per_1000:g}"
                    took, result = _timed(lambda wh=wh, pdir=pdir: hub(sim, wh.dlt_destination(), pdir))
                read = sum(c.rows_read for c in result.counts)
                timed = bool(ms or per_1000)
                out.append((f"{name} ({label})", read, took, base * read / max(n, 1),
                            "≥ 80 % of raw fetch" if timed else "(for information: the hub's own work)"))
                if timed:
                    # the same connector run against a raw fetch as concurrent as it is (a collection
                    # per thread): what its own work costs once the waits overlap on both sides
                    base, n = _timed(lambda: raw(sim, concurrently))
                    out.append((f"{name} ({label}, concurrent raw)", read, took, base * read / max(n, 1),
                                "(for information)"))

    run("family", lambda sim, each: raw_family(sim, sim.token, each),
        lambda sim, d, p: run_source(family, d, "bench", pipelines_dir=p, base_url=sim.url, token=sim.token))
    run("salesforce", raw_salesforce,
        lambda sim, d, p: run_source(salesforce, d, "bench", pipelines_dir=p, login_url=sim.url,
                                     client_id=sim.client_id, client_secret=sim.client_secret))
    run("servicenow", raw_servicenow,
        lambda sim, d, p: run_source(servicenow, d, "bench", pipelines_dir=p, instance_url=sim.url,
                                     username=sim.username, password=sim.password))
    run("demarches", lambda sim, each: raw_demarches(sim, sim.token, each),
        lambda sim, d, p: run_source(demarches, d, "bench", pipelines_dir=p, base_url=sim.url, token=sim.token,
                                     demarches=sim.demarche_numbers))
    return out


def warm_up(root: Path) -> None:
    """One tiny load first, so that no timing pays dlt's first-run imports (no .pyc may be written)."""
    import dlt
    import pyarrow as pa

    with _duck(root, "warm") as wh:
        p = dlt.pipeline(pipeline_name="bench_warm", destination=wh.dlt_destination(), dataset_name="raw_warm_up",
                         pipelines_dir=str(root / "p_warm"))
        table = pa.table({"id": [1, 2]})
        p.run(dlt.resource(table, name="t", primary_key="id", write_disposition="merge"), loader_file_format="parquet")
        p.run(dlt.resource(table, name="u"), loader_file_format="parquet")


def main() -> None:
    """Run the selected benchmarks and print one table."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows for finance and files (default 1M)")
    ap.add_argument("--people", type=int, default=200_000,
                    help="sandbox size for the HTTP connectors (default 200k: a large commune)")
    ap.add_argument("--only", default="finance,files,http")
    ap.add_argument("--latency-ms", type=float, default=20.0,
                    help="server time per HTTP page for the second HTTP measurement (default 20)")
    ap.add_argument("--ms-per-1000", type=float, default=50.0,
                    help="and server time per thousand records on the page (default 50)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import dlt  # noqa: F401  (imports outside the timings)
    from dlt.sources.sql_database import sql_database  # noqa: F401

    import connectors.registry  # noqa: F401

    only = set(args.only.split(","))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        warm_up(root)
        if "finance" in only:
            rows.append(bench_finance(root, args.rows))
        if "files" in only:
            rows.append(bench_files(root, args.rows))
        if "http" in only:
            rows.extend(bench_http(root, args.people, args.latency_ms, args.ms_per_1000))
    print(f"{'connector':46} {'rows':>10} {'hub rows/s':>12} {'baseline rows/s':>16} {'ratio':>7}  target")
    for name, n, took, base, target in rows:
        print(f"{name:46} {n:>10,} {n / took:>12,.0f} {n / base:>16,.0f} {base / took:>7.0%}  {target}")


if __name__ == "__main__":
    main()
