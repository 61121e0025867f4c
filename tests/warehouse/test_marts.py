"""The BI marts built at the end of a sandbox run, on DuckDB and on PostgreSQL: no direct identifier
in any mart (names and values, against the register's personal-data columns and the hub's keys),
one pseudonym per mart (no join between marts or back to golden), stable across rebuilds with the
same keys, no published group under 11 people in any aggregate (and no total revealing a hidden
cell), figures equal to a direct count on core / golden, the register's guard satisfied, and a
real SQL client (psql, the DuckDB CLI) reading the marts."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.settings import Settings
from schemas.contract import ALL_TABLES
from schemas.marts import AGG_TABLES, ALL, KEYED_MARTS, MART_TABLES, MIN_CELL, MartColumn
from schemas.register import load_register
from warehouse.engine import Warehouse
from warehouse.marts import ASKED_KINDS, MartKeyError, build_marts, keys_from_settings, load_keys, suppress

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
DUCKDB_CLI = REPO / ".venv" / "bin" / "duckdb"
# keys of the hub's own records: direct identifiers although the contract does not mark them personal
IDENTIFIER_COLUMNS = ("citizen_id", "record_key", "source_id", "interaction_key", "household_id",
                      "organisation_key", "record_key_l", "record_key_r", "golden_record_key")
# published on purpose, generalised (a commune under 11 citizens is grouped as 'autre'): docs/marts.md
QUASI_IDENTIFIER_COLUMNS = ("city_code",)
# the register maps a person's dealings as personal data too: the facts publish these under a pseudonym, by
# design (months instead of dates; no title, no details)
PUBLISHED_BY_DESIGN = {"core.interaction": ("kind", "service", "channel", "status", "currency")}


@dataclass
class MartsRun:
    settings: Settings
    url: str
    kind: str


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def marts_run(request, tmp_path_factory) -> Iterator[MartsRun]:
    """A sandbox commune through the whole pipeline (`hub run`: the marts are built at its end), per engine."""
    from hub.demo import running_sandbox
    from hub.pipeline import run
    from tests.conftest import _pg_connect, _unavailable

    var = tmp_path_factory.mktemp(f"marts-{request.param}")
    url, db = None, None
    if request.param == "postgres":
        try:
            admin = _pg_connect()
        except Exception as e:
            _unavailable("PostgreSQL", e)
        db = f"hub_test_marts_{uuid.uuid4().hex[:8]}"
        with admin:
            admin.execute(f'CREATE DATABASE "{db}"')
        url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    try:
        with running_sandbox(var, people=1500, seed=11, warehouse_url=url, with_demarches=True) as sr:
            report = run(sr.settings)
            assert report.failed == []
            assert report.resolution["marts"]["marts.dim_citizen"] == report.resolution["citizens"]
        yield MartsRun(sr.settings, sr.settings.warehouse_url, request.param)
    finally:
        if db:
            with _pg_connect() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture
def wh(marts_run) -> Iterator[Warehouse]:
    with Warehouse(marts_run.url) as w:
        yield w


def _mart_tables(wh: Warehouse) -> list[str]:
    return [r[0] for r in wh.rows("SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
                                  "ORDER BY table_name")]


def _text(v) -> str:
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


# ------------------------------------------------------------------------------------------ identities
def test_every_mart_table_is_built_and_the_facts_hold_rows(wh):
    assert _mart_tables(wh) == sorted(t.name for t in MART_TABLES)
    for t in ("dim_citizen", "fct_interaction", "fct_invoice", "fct_enrolment", "fct_subsidy"):
        assert wh.scalar(f"SELECT count(*) FROM marts.{t}") > 0, t
    assert wh.scalar("SELECT count(*) FROM marts.dim_citizen") == wh.scalar("SELECT count(*) FROM golden.citizen")


def _direct_identifiers(wh: Warehouse) -> dict[str, list[str]]:
    """"schema.table" -> its columns holding direct identifiers: the register's personal columns of the
    golden and core tables (text and dates: names, contacts, addresses, birth dates, free text, keys) and
    the hub's keys, less what the facts publish on purpose under a pseudonym."""
    personal = load_register().personal_columns()
    out = {}
    for t in ALL_TABLES:
        name = f"{t.schema}.{t.name}"
        if t.schema not in ("golden", "core") or not wh.table_exists(t.schema, t.name):
            continue
        cols = [c.name for c in t.columns if c.type in ("text", "date", "json")
                and (c.name in personal.get(name, {}) or c.name in IDENTIFIER_COLUMNS)
                and c.name not in QUASI_IDENTIFIER_COLUMNS and c.name not in PUBLISHED_BY_DESIGN.get(name, ())]
        if cols:
            out[name] = cols
    return out


def test_no_mart_column_is_named_or_holds_a_direct_identifier_of_golden_or_core(wh):
    columns = _direct_identifiers(wh)
    assert {"given_names", "usage_name", "birth_date", "email", "phone", "address_line", "citizen_id",
            "record_key", "source_id", "title", "details"} <= set().union(*map(set, columns.values()))
    identifiers: set[str] = set()
    for table, cols in columns.items():
        for c in cols:
            identifiers |= {_text(v) for (v,) in wh.rows(f"SELECT DISTINCT {c} FROM {table} WHERE {c} IS NOT NULL")}
    assert len(identifiers) > 5000  # names, e-mails, phones, addresses, birth dates, keys of the run
    names = set().union(*map(set, columns.values()))
    for table in _mart_tables(wh):
        for column in wh.columns_of("marts", table):
            assert column not in names, f"marts.{table}.{column} is named as a direct identifier"
            values = {_text(v) for (v,) in wh.rows(f"SELECT DISTINCT {column} FROM marts.{table} "
                                                   f"WHERE {column} IS NOT NULL")}
            leaked = values & identifiers
            assert not leaked, f"marts.{table}.{column} holds {len(leaked)} identifying value(s)"


def test_pseudonyms_differ_in_every_mart_and_join_nothing(wh):
    pks = {t: {r[0] for r in wh.rows(f"SELECT DISTINCT citizen_pk FROM marts.{t}")}
           for t in ("dim_citizen", "fct_interaction", "fct_invoice", "fct_enrolment", "fct_subsidy")}
    citizen_ids = {r[0] for r in wh.rows("SELECT citizen_id FROM golden.citizen")}
    tables = sorted(pks)
    for i, a in enumerate(tables):
        assert not pks[a] & citizen_ids, a
        assert all(len(p) == 32 and int(p, 16) >= 0 for p in list(pks[a])[:50])
        for b in tables[i + 1:]:
            assert not pks[a] & pks[b], f"{a} and {b} share pseudonyms"
            assert wh.scalar(f"SELECT count(*) FROM marts.{a} x JOIN marts.{b} y ON x.citizen_pk = y.citizen_pk") == 0


def test_pseudonyms_are_stable_with_the_same_keys_and_change_with_a_new_key(wh, marts_run):
    keys = keys_from_settings(marts_run.settings.marts, marts_run.settings.var_dir)
    keys_dir = marts_run.settings.var_dir / "secrets"
    for mart in KEYED_MARTS:  # created at the run, readable by the hub's account only
        assert (keys_dir / f"mart_{mart}.key").stat().st_mode & 0o777 == 0o600
    before = sorted(wh.rows("SELECT * FROM marts.dim_citizen"))
    invoices = sorted(wh.rows("SELECT citizen_pk FROM marts.fct_invoice"))
    build_marts(wh, keys=keys)
    assert sorted(wh.rows("SELECT * FROM marts.dim_citizen")) == before  # same key, same pseudonyms
    rotated = dict(keys, citizen=os.urandom(32))
    build_marts(wh, keys=rotated)
    after = {r[0] for r in wh.rows("SELECT citizen_pk FROM marts.dim_citizen")}
    assert not after & {r[0] for r in before}  # a new key: every pseudonym of that mart changes
    assert sorted(wh.rows("SELECT citizen_pk FROM marts.fct_invoice")) == invoices  # other marts keep theirs
    build_marts(wh, keys=keys)  # back as the run left it (the module's other tests read it)


def test_the_keys_never_reach_the_warehouse(marts_run):
    if marts_run.kind != "duckdb":
        pytest.skip("the DuckDB file is searched byte for byte; PostgreSQL gets the same SQL")
    keys = keys_from_settings(marts_run.settings.marts, marts_run.settings.var_dir)
    data = Path(marts_run.url.split("duckdb:///", 1)[1]).read_bytes()
    for mart, key in keys.items():
        assert key not in data, mart


def test_a_missing_or_shared_key_is_refused(tmp_path, monkeypatch):
    keys = load_keys(tmp_path / "secrets")
    assert set(keys) == set(KEYED_MARTS) and len(set(keys.values())) == len(KEYED_MARTS)
    assert load_keys(tmp_path / "secrets") == keys  # read back, not regenerated
    monkeypatch.setenv("HUB_MART_KEY_INVOICE", keys["citizen"].decode())
    with pytest.raises(MartKeyError, match="'invoice' and 'citizen' marts share a key"):
        load_keys(tmp_path / "secrets")
    with pytest.raises(MartKeyError, match="no key for the 'citizen' mart"):
        load_keys(tmp_path / "elsewhere", create=False)


# ------------------------------------------------------------------------------------------ small cells
def _agg_rows(wh: Warehouse, table: str) -> list[dict]:
    return wh.dicts(f"SELECT * FROM marts.{table}")


@pytest.mark.parametrize("table", [t.name for t in AGG_TABLES])
def test_no_published_group_under_11_people_and_no_total_reveals_a_hidden_cell(wh, table):
    spec = next(t for t in AGG_TABLES if t.name == table)
    rows = _agg_rows(wh, table)
    assert rows, table
    measures = [c.name for c in spec.columns if c.type in ("bigint", "double", "money")]
    dims = [c.name for c in spec.columns if c.type == "text" and "'*'" in c.meaning]
    fixed = [c.name for c in spec.columns if c.type == "text" and c.name not in dims]
    for r in rows:
        if r["suppressed"]:
            assert all(r[m] is None for m in measures), r
        else:
            assert r["people"] >= MIN_CELL, r
    for d in dims:
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in rows:
            groups[tuple(r[k] for k in dims + fixed if k != d)].append(r)
        for members in groups.values():
            total = [r for r in members if r[d] == ALL]
            if total and not total[0]["suppressed"]:
                hidden = [r for r in members if r[d] != ALL and r["suppressed"]]
                assert len(hidden) != 1, f"{table}: the total over {d} reveals {hidden[0]}"


def test_the_aggregate_tables_are_every_agg_table_of_the_warehouse(wh):
    assert [t for t in _mart_tables(wh) if t.startswith("agg_")] == sorted(t.name for t in AGG_TABLES)


def test_suppression_hides_a_second_cell_when_a_total_would_reveal_the_first():
    rows = [{"s": "a", "people": 30, "n": 30}, {"s": "b", "people": 5, "n": 5}, {"s": "c", "people": 20, "n": 20},
            {"s": "d", "people": 12, "n": 12}, {"s": ALL, "people": 67, "n": 67}]
    out = {r["s"]: r for r in suppress(rows, ("s",), additive="n", hide=["people", "n"])}
    assert out["b"]["suppressed"] and out["b"]["n"] is None  # primary
    assert out["d"]["suppressed"]  # complementary: the smallest other cell under the published total
    assert not out["a"]["suppressed"] and not out["c"]["suppressed"] and out[ALL]["n"] == 67
    # a total over one small cell alone would equal it: the total goes
    lone = suppress([{"s": "a", "people": 4, "n": 4}, {"s": ALL, "people": 4, "n": 4}], ("s",), additive="n",
                    hide=["people", "n"])
    assert all(r["suppressed"] for r in lone)


def _cube(cells: dict[tuple[str, str], int]) -> list[dict]:
    """The rows of CUBE(a, b) over ``cells``: every cell, every subtotal and the grand total."""
    sums: dict[tuple[str, str], int] = defaultdict(int)
    for (a, b), n in cells.items():
        for key in ((a, b), (a, ALL), (ALL, b), (ALL, ALL)):
            sums[key] += n
    return [{"a": a, "b": b, "people": n} for (a, b), n in sums.items()]


@pytest.mark.parametrize("seed", range(8), ids=lambda s: f"row-order-{s}")
def test_suppression_is_deterministic_whatever_the_row_order(seed):
    import random

    # one small cell among equally sized ones: which neighbour goes with it is a tie to break
    cube = _cube({("x", "p"): 3, ("x", "q"): 20, ("x", "r"): 20, ("y", "p"): 20, ("y", "q"): 20,
                  ("y", "r"): 20, ("z", "p"): 20, ("z", "q"): 20, ("z", "r"): 20})
    shuffled = list(cube)
    random.Random(seed).shuffle(shuffled)

    def hidden(rows):
        return sorted((r["a"], r["b"]) for r in suppress(rows, ("a", "b"), additive="people", hide=["people"])
                      if r["suppressed"])

    reference = hidden(cube)
    assert ("x", "p") in reference and len(reference) > 1  # the complementary suppression did happen
    assert hidden(shuffled) == hidden(list(reversed(shuffled))) == reference


# ------------------------------------------------------------------------------------------ figures
def test_published_figures_equal_a_direct_count_on_core_and_golden(wh):
    kinds = ", ".join(f"'{k}'" for k in ASKED_KINDS)
    direct = dict(wh.rows(
        "SELECT COALESCE(i.service, 'non renseigné'), count(*) FROM core.interaction i "
        f"JOIN golden.citizen_link l ON l.record_key = i.record_key WHERE i.kind IN ({kinds}) GROUP BY 1"))
    published = {r["service"]: r["requests"] for r in _agg_rows(wh, "agg_requests")
                 if r["channel"] == ALL and r["month"] == ALL and r["service"] != ALL and not r["suppressed"]}
    assert published and all(direct[s] == n for s, n in published.items())
    total = next(r for r in _agg_rows(wh, "agg_requests") if r["service"] == r["channel"] == r["month"] == ALL)
    assert total["requests"] == sum(direct.values())
    desilo = next(r for r in _agg_rows(wh, "agg_desilo") if r["silo_count"] == ALL)
    assert desilo["people"] == wh.scalar("SELECT count(*) FROM golden.citizen")
    assert desilo["records"] == wh.scalar("SELECT count(*) FROM golden.citizen_link")
    unpaid = wh.scalar("SELECT sum(i.amount) FROM core.interaction i JOIN golden.citizen_link l "
                       "ON l.record_key = i.record_key WHERE i.kind = 'facture' AND i.status IN ('emise', 'impayee')")
    total_unpaid = next(r for r in _agg_rows(wh, "agg_unpaid") if r["service"] == r["due_state"] == ALL)
    assert total_unpaid["amount"] == unpaid


def test_the_register_guard_accepts_the_marts_and_maps_them_as_the_schema_says(wh):
    from warehouse import register_guard

    register = load_register()
    gaps = [g for g in register_guard.warehouse_gaps(wh, register) if g.table.startswith("marts.")]
    assert gaps == []  # the guard accepts every marts table (other layers are their own tests' business)
    assert register_guard.contract_gaps(register) == []
    mapped = register.processing("statistiques").columns()
    not_personal = register.not_personal()
    for t in MART_TABLES:
        name = f"marts.{t.name}"
        for c in t.columns:
            assert isinstance(c, MartColumn)
            if c.personal:
                assert c.name in mapped.get(name, set()), f"{name}.{c.name} is personal, not mapped"
            else:
                assert "*" in not_personal.get(name, set()) or c.name in not_personal.get(name, set()), name


# ------------------------------------------------------------------------------------------ SQL clients
def test_a_real_sql_client_reads_the_marts(wh, marts_run):
    """psql against PostgreSQL; on DuckDB the BI copy (marts only: a DuckDB file has no access control,
    the warehouse file would give golden away) with the DuckDB CLI, an older DuckDB than the hub's."""
    from warehouse.marts import bi_file_path

    expected = wh.scalar("SELECT count(*) FROM marts.dim_citizen")
    sql = ("SELECT count(*) FROM marts.dim_citizen WHERE citizen_pk IS NOT NULL; "
           "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts'; "
           "SELECT count(*) FROM information_schema.tables WHERE table_schema IN ('golden', 'core', 'gdpr', 'ops')")
    if marts_run.kind == "postgres":
        cmd = ["psql", marts_run.url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        for statement in sql.split("; "):
            cmd += ["-c", statement]
        others = wh.scalar("SELECT count(*) FROM information_schema.tables WHERE table_schema IN "
                           "('golden', 'core', 'gdpr', 'ops')")
    else:
        bi = bi_file_path(wh)
        cmd = [str(DUCKDB_CLI), "-readonly", "-noheader", "-list", str(bi), "-c", sql]
        others = 0  # the BI copy holds the marts alone
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows, tables, other = (int(x) for x in out.stdout.split())
    assert rows == expected > 0
    assert tables == len(MART_TABLES)
    assert other == others


def test_the_build_date_is_recorded_with_the_run(wh):
    rows = wh.dicts("SELECT * FROM marts.mart_build")
    assert {r["table_name"] for r in rows} == {f"marts.{t.name}" for t in MART_TABLES if t.name != "mart_build"}
    assert len({r["run_id"] for r in rows}) == 1 and rows[0]["run_id"]
    assert all(r["built_at"] <= datetime.now(UTC) for r in rows)


# ------------------------------------------------------------------------------------------ états report
@pytest.mark.browser
def test_the_etats_report_renders_in_french_accessible_with_figures_equal_to_sql(browser, marts_run, tmp_path):
    from click.testing import CliRunner

    from hub.cli import main
    from hub.restitutions import number
    from tests.browser import render

    with Warehouse(marts_run.url) as wh:
        kinds = ", ".join(f"'{k}'" for k in ASKED_KINDS)
        requests = wh.scalar("SELECT count(*) FROM core.interaction i JOIN golden.citizen_link l "
                             f"ON l.record_key = i.record_key WHERE i.kind IN ({kinds})")
        citizens = wh.scalar("SELECT count(*) FROM golden.citizen")
        duplicates = wh.scalar("SELECT count(*) FROM golden.citizen_link") - citizens
        multi = wh.scalar("SELECT count(*) FROM golden.citizen WHERE source_systems LIKE '%,%'")
    result = CliRunner().invoke(main, ["report", "etats", "--out", str(tmp_path / "etats"),
                                       "--config", str(marts_run.settings.config_path)])
    assert result.exit_code == 0, result.output
    html = tmp_path / "etats" / "etats.html"
    text = html.read_text(encoding="utf-8")
    assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for figure, caption in ((requests, "demandes reçues"), (duplicates, "doublons retrouvés entre silos"),
                            (multi, "usagers connus de plusieurs silos")):
        assert f'<span class="v">{number(figure)}</span> {caption}' in text, caption
    for name, width in ((f"etats-{marts_run.kind}", 1280), (f"etats-{marts_run.kind}-mobile", 390)):
        page = render(browser, html, name, width=width)
        assert page.lang == "fr"
        assert page.title == "États et restitutions du hub usagers"
        assert {"L'essentiel", "Activité : les demandes reçues", "Délais de traitement",
                "Échéances légales : silence vaut acceptation", "Impayés",
                "Décloisonnement : ce que le hub rapproche", "Méthode"} <= set(page.headings)
        assert page.violations == [], page.violations
        assert page.font_px >= 14
        assert page.overflow_px <= 0, f"the page scrolls sideways by {page.overflow_px}px at {width}px"
        assert page.screenshot.stat().st_size > 10_000
