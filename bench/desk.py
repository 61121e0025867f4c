"""The desk's JSON API under load: 8 signed-in HTTP clients against uvicorn, search and citizen page,
on DuckDB and PostgreSQL, beside the same reads made in-process without HTTP (run by hand).

    flock /tmp/bench.lock .venv/bin/python bench/desk.py --people 1040000
    flock /tmp/bench.lock .venv/bin/python bench/desk.py --people 100000 --engines duckdb

The warehouse is bench/desk_search.py's: the sandbox's person records (about 0.96 per person:
1,040,000 people give about 1M records), a golden release synthesized from the ground truth, the
search index built; plus interactions (one to three per record, of its silo's kinds, a third of the
requests pending, some invoices unpaid) so the page has a timeline. On PostgreSQL the database is
first migrated (``warehouse.migrate.upgrade``: roles of a prefix of its own, row security, the
register's grants), the data loaded by the owner, then ``VACUUM ANALYZE`` (what autovacuum does
within a minute of a load); the desk reads through a login of the desk reader role, under row
security, each request in the agent's context (docs/warehouse.md, *Logins*).

The desk is ``hub.desk.app.create_app`` served by uvicorn in a process of its own (one process, as
``hub serve``; the clients run in this one), with sign-in through the local OpenID Connect
provider (sandbox.oidc_provider): each client signs in as the accueil agent over the real code
flow (httpx), then sends its share of the requests, one at a time (8 requests always in flight), on
one kept-alive connection of the standard library's http.client (the clients share the two cores:
httpx cost 1.4 ms of CPU per request, this 0.3–0.5). Every page
and every listed citizen writes its access-log row, as in production.

Printed per engine: search and page latencies (p50 / p95 / p99, milliseconds, measured by the
client), throughput, the CPU per request of the desk process, PostgreSQL's server processes and the
clients, and the desk process's peak memory; the baseline is the same searches and
views called in-process by 8 threads on reader connections (``warehouse.search.search``,
``warehouse.citizen_view.view``; DuckDB: the published snapshot with its indexes; PostgreSQL: the
owner's connection): no HTTP, no sign-in, no row security, no need-to-know cut, no access log.
Targets: search p95 < 50 ms, page p95 < 150 ms. The machine's two cores run the clients, the desk
and PostgreSQL together.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import logging
import os
import random
import re
import resource
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from desk_search import PG_ADMIN, load, queries, run, synthesize

from schemas.contract import INTERACTION
from warehouse.engine import Warehouse
from warehouse.metadata import create_indexes

AGENT = "accueil"
PURPOSE = "guichet-unique"
CLIENT_ID, CLIENT_SECRET = "hub-bench", "secret-du-banc-d-essai"  # the local provider's, no real client's

_INTERACTIONS_SQL = """
WITH r AS (SELECT record_key, source_system, hash(record_key) AS h FROM records WHERE deleted_at IS NULL),
n AS (SELECT r.*, k FROM r, range(1 + CAST(h % 3 AS INTEGER)) AS t(k))
SELECT record_key || '-I' || CAST(k AS VARCHAR) AS interaction_key,
       source_system, substr(record_key, length(source_system) + 2) || '-I' || CAST(k AS VARCHAR) AS source_id,
       record_key,
       CASE WHEN source_system = 'finance' THEN CASE WHEN k = 0 THEN 'facture' ELSE 'paiement' END
            WHEN source_system = 'family' THEN CASE WHEN k = 0 THEN 'inscription' ELSE 'facture' END
            WHEN source_system = 'associations' THEN 'subvention' ELSE 'demande' END AS kind,
       'service ' || source_system AS service, 'dossier ' || CAST(k AS VARCHAR) AS title,
       CASE WHEN (h >> 8) % 3 = 0 THEN 'ouvert' WHEN (h >> 8) % 3 = 1 THEN 'emise' ELSE 'clos' END AS status,
       TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_days(CAST((h >> 16) % 330 AS INTEGER)) AS opened_at,
       CAST(NULL AS TIMESTAMPTZ) AS closed_at, CAST(NULL AS TIMESTAMPTZ) AS due_at,
       CAST(((h >> 24) % 50000) / 100.0 AS DECIMAL(14, 2)) AS amount, 'EUR' AS currency, 'web' AS channel,
       CAST(NULL AS VARCHAR) AS details
  FROM n
"""


def interactions(records: pa.Table) -> pa.Table:
    """One to three interactions per live record, of kinds its silo has."""
    con = duckdb.connect()
    con.register("records", records)
    return con.sql(_INTERACTIONS_SQL).to_arrow_table()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(url: str, config: object, port: int, ready: object) -> None:
    """The desk in its own process, as `hub serve` runs it (the clients' HTTP work does not share its
    interpreter)."""
    import uvicorn

    from hub.desk.app import create_app

    logging.basicConfig(level=logging.WARNING)
    app = create_app(warehouse_url=url, oidc_config=config)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="warning"))
    threading.Thread(target=lambda: (_wait_started(server), ready.set()), daemon=True).start()
    server.run()


def _wait_started(server: object) -> None:
    while not server.started:
        time.sleep(0.05)


class LeanClient:
    """One signed-in agent's kept-alive HTTP/1.1 connection (http.client): the load generator shares
    the machine's two cores with the desk and PostgreSQL, and httpx spent 1.4 ms of CPU per request
    where this spends a fraction of it (both printed: ``client CPU``)."""

    def __init__(self, port: int, cookie: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Cookie": cookie, "Accept": "application/json"}

    def get(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        self.connection.request("GET", f"{path}?{urllib.parse.urlencode(params)}", headers=self.headers)
        r = self.connection.getresponse()
        return r.status, r.read()

    def close(self) -> None:
        self.connection.close()


class Desk:
    """The desk app under uvicorn in a child process, signing in through the local provider (which
    runs in this process: it serves the sign-ins only)."""

    def __init__(self, url: str, tmp: Path):
        import multiprocessing

        from hub.desk.auth import OIDCConfig
        from sandbox.oidc_provider import ClientRegistration, OIDCProvider, hub_agents_toml, load_demo_agents

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        agents = load_demo_agents()
        registration = ClientRegistration(CLIENT_ID, CLIENT_SECRET, redirect_uris=(f"{self.base}/auth/callback",),
                                          post_logout_redirect_uris=(f"{self.base}/deconnexion/retour",))
        self.provider = OIDCProvider(agents, [registration])
        self.provider.start()
        agents_file = tmp / "agents.toml"
        agents_file.write_text(hub_agents_toml(agents.values()), encoding="utf-8")
        config = OIDCConfig(issuer=self.provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redirect_base=self.base, agents_file=agents_file)
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        self.process = ctx.Process(target=_serve, args=(url, config, self.port, ready), daemon=True)
        self.process.start()
        if not ready.wait(120):
            self.process.kill()
            raise RuntimeError("the desk did not start within 2 minutes")

    def peak_mib(self) -> float:
        """The desk process's peak resident memory so far (VmHWM), MiB."""
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) / 1024

    def cpu_seconds(self) -> float:
        """The desk process's CPU time so far (user + system)."""
        return _process_cpu_seconds(self.process.pid)

    def client(self) -> LeanClient:
        """A client signed in as the accueil agent through the whole code flow (httpx), then sending
        its requests on one kept-alive connection of the standard library's (LeanClient)."""
        with httpx.Client(base_url=self.base, timeout=60) as c, httpx.Client(timeout=60) as browser:
            start = c.get("/connexion", params={"next": "/"})
            page = browser.get(start.headers["location"])
            action = re.search(r'<form method="post" action="([^"]+)"', page.text)
            assert action, "no agent-choice form on the provider's page"
            back = browser.post(self.provider.url + action.group(1), data={"agent": AGENT})
            done = c.get(back.headers["location"])
            assert done.status_code == 303, done.text
            return LeanClient(self.port, "; ".join(f"{k}={v}" for k, v in c.cookies.items()))

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)
        self.provider.stop()


def _own_cpu_seconds() -> float:
    """This process's CPU time (the clients' threads, and the sign-in provider's)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _database_cpu_seconds(db: str | None) -> float:
    """CPU time of PostgreSQL's server processes on the bench's database so far (0 on DuckDB)."""
    if db is None:
        return 0.0
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        pids = [r[0] for r in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (db,))]
    return sum(_process_cpu_seconds(pid) for pid in pids)


def _process_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a backend that ended meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _desk_login(url: str, db: str) -> tuple[str, list[str]]:
    """Migrate the empty database (roles of a prefix of its own, row security, grants from the
    register) and make a login of the desk reader role: (its URL, the roles to drop after)."""
    import psycopg

    from schemas.register import load_register
    from warehouse import roles as security
    from warehouse.migrate import upgrade

    roles = security.Roles(f"bench{uuid.uuid4().hex[:6]}")
    upgrade(url, roles=roles, register=load_register())
    login = f"{roles.name('desk')}_login"
    with psycopg.connect(url, autocommit=True) as con:
        con.execute(f"CREATE ROLE {login} LOGIN IN ROLE {roles.desk}")
    return (f"postgresql://{login}@127.0.0.1:5432/{db}",
            [login, *(roles.name(k) for k in security.ROLE_KINDS)])


def fmt(r: dict, target: float | None = None) -> str:
    verdict = "" if target is None else ("  [ok]" if r["p95"] < target else f"  [above {target:.0f} ms]")
    return (f"p50 {r['p50']:7.1f} ms  p95 {r['p95']:7.1f} ms  p99 {r['p99']:7.1f} ms  {r['rate']:6.1f} req/s "
            f"({r['n']} requests){verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=1_040_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--engines", default="duckdb,postgres")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=1600, help="searches, and as many pages, per engine")
    ap.add_argument("--duckdb", default="var/bench/desk.duckdb")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from warehouse.citizen_view import view
    from warehouse.search import Scope, build_index, search
    from warehouse.snapshot import publish

    t = time.perf_counter()
    records, links, citizens = synthesize(args.people, args.seed)
    events = interactions(records)
    print(f"sandbox: {args.people:,} people, {records.num_rows:,} person records, {citizens.num_rows:,} citizens, "
          f"{events.num_rows:,} interactions (synthesized in {time.perf_counter() - t:.1f} s)")
    searches = [text for _, text, _ in queries(citizens, args.requests, args.seed)]
    rng = random.Random(args.seed)
    ids = citizens["citizen_id"].to_pylist()
    pages = [ids[rng.randrange(len(ids))] for _ in range(args.requests)]
    readable = frozenset({"given_names", "birth_name", "usage_name", "sex", "birth_date", "email", "phone",
                          "address_line", "postcode", "city"})

    for engine in args.engines.split(","):
        db = bench_roles = None
        tmp = Path(args.duckdb).parent / f"desk-{engine}"
        tmp.mkdir(parents=True, exist_ok=True)
        if engine == "duckdb":
            path = Path(args.duckdb)
            for old in path.parent.glob(f"{path.stem}*.duckdb*"):
                old.unlink()
            url = desk_url = f"duckdb:///{path}"
        else:
            import psycopg

            db = f"hub_bench_desk_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{db}"')
            url = f"postgresql://postgres@127.0.0.1:5432/{db}"
            # as in production (docs/warehouse.md, Logins): the migrations' roles and row security,
            # the desk on a login of the desk reader role; the data loaded by the owner
            desk_url, bench_roles = _desk_login(url, db)
        desk = None
        try:
            load_s = load(url, records, links, citizens)
            t = time.perf_counter()
            with Warehouse(url) as wh:
                wh.write(INTERACTION, events, replace=True)
                build_index(wh)
                if wh.kind == "postgres":  # what migrations 0002 and 0006 create on a migrated warehouse
                    create_indexes(wh)
                    # what autovacuum does within a minute of a load: the statistics (without them the
                    # planner scans the freshly loaded tables instead of using the indexes) and the
                    # visibility map (without it an index-only scan of the postings visits the heap)
                    wh.execute("VACUUM ANALYZE")
            publish(url)  # DuckDB: the snapshot the desk reads, with the same indexes
            print(f"\n[{engine}] load {load_s + time.perf_counter() - t:.1f} s (records, links, citizens, "
                  "interactions, search index)")

            def in_process_search(wh: Warehouse, text: str) -> None:
                search(wh, text, scope=Scope(fields=readable))

            def in_process_page(wh: Warehouse, cid: str) -> None:
                view(wh, cid, purpose=PURPOSE)

            open_wh = functools.partial(Warehouse.reader, url)  # what the desk reads: on DuckDB the snapshot
            base_s = run(args.clients, searches, in_process_search, open_wh)
            base_p = run(args.clients, pages, in_process_page, open_wh)

            desk = Desk(desk_url, tmp)

            def http_search(c: LeanClient, text: str) -> None:
                status, body = c.get("/api/v1/citizens", {"q": text, "purpose": PURPOSE})
                assert status in (200, 400), body  # 400: a query the search refuses (French)

            def http_page(c: LeanClient, cid: str) -> None:
                status, body = c.get(f"/api/v1/citizens/{cid}", {"purpose": PURPOSE})
                assert status == 200, body

            for label, work, call, target, base in (("search", searches, http_search, 50, base_s),
                                                    ("page", pages, http_page, 150, base_p)):
                # signed in first, and the desk's first request of the kind answered (DuckDB: it loads
                # the release's search index), so that the CPU per request is the requests' own
                signed = [desk.client() for _ in range(args.clients)]
                t = time.perf_counter()
                call(signed[0], work[0])
                first = time.perf_counter() - t
                before = (desk.cpu_seconds(), _own_cpu_seconds(), _database_cpu_seconds(db))
                r = run(args.clients, work, call, signed.pop)
                spent = [(after - b) / r["n"] * 1000 for after, b in
                         zip((desk.cpu_seconds(), _own_cpu_seconds(), _database_cpu_seconds(db)), before, strict=True)]
                print(f"  {label:6s}  API {fmt(r, target)}  (the desk's first: {first * 1000:,.0f} ms)")
                print(f"          CPU per request: desk process {spent[0]:.1f} ms, "
                      + (f"PostgreSQL {spent[2]:.1f} ms, " if db else "") + f"clients {spent[1]:.1f} ms")
                print(f"          in-process {fmt(base)}")
            print(f"  desk process peak memory {desk.peak_mib():,.0f} MiB")
        finally:
            if desk is not None:
                desk.stop()
            if db is not None:
                import psycopg

                with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                    for role in bench_roles or ():
                        admin.execute(f"DROP ROLE IF EXISTS {role}")
    print(f"\n{args.clients} clients; finished {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
