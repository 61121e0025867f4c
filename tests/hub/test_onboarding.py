"""A data engineer's first `hub run` over their own exports (issue 11, onboarding): a person file
alone runs to its report, every source failing is one clear message, a source's name (not its
kind) is its system, mapping files translate values and can null one bad field, messages are
never cut, and the worked example of docs/connectors.md runs as documented."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.settings import load_settings
from warehouse.engine import Warehouse

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"


# ------------------------------------------------------------------ helpers
def people_csv(path: Path, n: int = 60, seed: int = 7) -> dict[str, int]:
    """An English-headed CSV of people (given_name, surname, date_of_birth as yyyy-mm-dd, address,
    postcode, state), every third person entered twice with a typo in the given name. Returns counts."""
    rnd = random.Random(seed)
    given = ["John", "Mary", "Peter", "Sophie", "Nicholas", "Alyssa", "Benjamin", "Chloe", "David", "Emma",
             "Frank", "Grace", "Henry", "Isla", "Jack", "Olivia", "Lucas", "Amelia"]
    surnames = ["Smith", "Jones", "Brown", "Taylor", "Wilson", "Evans", "Thomas", "Roberts", "Walker", "White",
                "Harris", "Clarke", "Lewis", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams"]
    streets = ["King Street", "Queen Street", "George Street", "Pitt Street", "Hunter Street", "Elizabeth Street"]
    rows, dups = [], 0
    for i in range(n):
        g, s = rnd.choice(given), surnames[i % len(surnames)]
        dob = f"{rnd.randint(1940, 2004)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        address, postcode, state = f"{rnd.randint(1, 300)} {rnd.choice(streets)}", str(rnd.randint(2000, 4999)), \
            rnd.choice(["NSW", "VIC", "QLD"])
        rows.append([f"rec-{len(rows)}-org", g, s, dob, address, postcode, state])
        if i % 3 == 0:
            typo = g[0] + g[2] + g[1] + g[3:]  # NICHOLAS -> NCIHOLAS: an agent's double entry
            rows.append([f"rec-{len(rows)}-dup", typo, s, dob, address, postcode, state])
            dups += 1
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["rec_id", "given_name", "surname", "date_of_birth", "address", "postcode", "state"])
        w.writerows(rows)
    return {"rows": len(rows), "people": n, "duplicates": dups}


def processing_for(system: str, tables: dict[str, list[str]]) -> str:
    """A register entry (schemas/register.toml) declaring a new source's raw tables, as a data
    engineer adds one for each source (the register guard stops a run on undeclared personal data)."""
    columns = "\n".join(f'"raw_{system}.{t}" = [{", ".join(repr(c).replace(chr(39), chr(34)) for c in cols)}]'
                        for t, cols in tables.items())
    lineage = "\n".join(f'"raw_{system}.{t}" = ["_source_file", "_source_line"]' for t in tables)
    return f"""
[[processing]]
id = "{system}-fichier"
name = "Fichier des personnes du service {system}"
kind = "source"
source_system = "{system}"
purpose = "tenue du fichier des personnes du service {system}"
legal_basis = {{ article = "e", reference = "mission d'intérêt public du service" }}
data_subjects = ["usagers du service"]
security = ["accès réservé aux agents du service"]
created = 2026-01-15
updated = 2026-12-07
dpia = {{ required = false }}

[[processing.data]]
category = "identite"
description = "identité et coordonnées des usagers"
[processing.data.retention]
duration = "5 ans"
start = "fin_relation"
extended_by_activity = false
at_end = "suppression"
[processing.data.columns]
{columns}

[processing.not_personal]
{lineage}

[processing.recipients]
internal = ["service {system}"]
"""


@pytest.fixture
def register(tmp_path: Path, monkeypatch):
    """``add(system, {table: [columns]})``: the shipped register plus that source, as $HUB_REGISTER."""
    from schemas.register import DEFAULT_PATH

    path = tmp_path / "register.toml"
    path.write_text(DEFAULT_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("HUB_REGISTER", str(path))

    def add(system: str, tables: dict[str, list[str]]) -> Path:
        with path.open("a", encoding="utf-8") as f:
            f.write(processing_for(system, tables))
        return path

    return add


PEOPLE_COLUMNS = {"people": ["rec_id", "given_name", "surname", "date_of_birth", "address", "postcode", "state"]}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _write_settings(path: Path, var: Path, url: str, sources: str) -> Path:
    path.write_text(f'[warehouse]\nurl = "{url}"\n\n[hub]\nvar_dir = "{var}"\n\n{sources}', encoding="utf-8")
    return path


PEOPLE_MAPPING = """\
system = "people"
[defaults]
delimiter = ","
date_formats = ["yyyy-mm-dd"]
[entities.people]
files = "people*.csv"
key = ["rec_id"]
[entities.people.columns]
rec_id = "text"
given_name = "text"
surname = "text"
date_of_birth = "date"
address = "text"
postcode = "text"
state = "text"
[[entities.people.feeds]]
table = "person_record"
given_names = "given_name"
usage_name = "surname"
birth_date = "date_of_birth"
address_line = "address"
postcode = "postcode"
country = { const = "AU" }
"""


# ------------------------------------------------------------------ 1. no household, no interaction
def test_a_person_file_alone_runs_to_its_report(tmp_path: Path, warehouse_url: str, register):
    register("people", PEOPLE_COLUMNS)
    drop = tmp_path / "drop"
    drop.mkdir()
    counts = people_csv(drop / "people.csv")
    (tmp_path / "people.toml").write_text(PEOPLE_MAPPING, encoding="utf-8")
    cfg = _write_settings(tmp_path / "hub.toml", tmp_path / "var", warehouse_url,
                          f'[sources.people]\nkind = "files"\nmapping = "{tmp_path / "people.toml"}"\n'
                          f'drop_dir = "{drop}"\n')
    result = invoke("run", "--config", str(cfg))
    assert result.exit_code == 0, result.output
    assert f"Canonical layer: {counts['rows']:,} person records, 0 interactions, 0 household memberships" \
        in result.output, result.output
    assert "Resolution:" in result.output and "citizens" in result.output
    with Warehouse(warehouse_url) as wh:
        assert wh.scalar("SELECT count(*) FROM core.household_membership") == 0
        assert wh.scalar("SELECT count(*) FROM core.interaction") == 0
        assert wh.scalar("SELECT count(*) FROM golden.citizen_link") == counts["rows"]
        # no role mapped: the neutral default, accepted by the gate
        assert {r[0] for r in wh.rows("SELECT DISTINCT role FROM core.person_record")} == {"personne"}


# ------------------------------------------------------------------ 2. every source failing
def test_every_source_failing_is_one_clear_message_and_no_traceback(tmp_path: Path, monkeypatch):
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]

    class Refuses(BaseHTTPRequestHandler):  # a portal refusing the token (checked in dlt's worker threads)
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PORTAIL_TOKEN", "t")
    (tmp_path / "people.toml").write_text(PEOPLE_MAPPING, encoding="utf-8")
    url = f"duckdb:///{tmp_path / 'var' / 'hub.duckdb'}"
    cfg = _write_settings(
        tmp_path / "hub.toml", tmp_path / "var", url,
        f'[sources.people]\nkind = "files"\nmapping = "{tmp_path / "people.toml"}"\n'
        f'drop_dir = "{tmp_path / "no-such-folder"}"\n\n'
        '[sources.compta]\nkind = "finance"\nurl = "sqlite:///' + str(tmp_path / "absent" / "f.sqlite") + '"\n\n'
        f'[sources.portail]\nkind = "family"\nbase_url = "http://127.0.0.1:{closed}"\ntoken_env = "PORTAIL_TOKEN"\n\n'
        f'[sources.ecoles]\nkind = "family"\nbase_url = "http://127.0.0.1:{server.server_port}"\n'
        'token_env = "PORTAIL_TOKEN"\n')
    try:
        result = CliRunner().invoke(main, ["run", "--config", str(cfg)])
    finally:
        server.shutdown()
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    out = " ".join(result.output.split())
    assert "Traceback" not in out and "does not exist!" not in out
    assert "every source failed" in out
    assert "people: no-such-folder: the drop folder does not exist" in out, out
    assert "compta:" in out and "cannot connect to the finance database" in out, out
    # an error raised inside dlt's worker threads names the source too, not its kind
    assert re.search(r"portail: portal http://127\.0\.0\.1:\d+: cannot reach the family portal", out), out
    assert re.search(r"ecoles: \w+ \S+: HTTP 401", out), out
    assert "family:" not in out


def test_no_source_at_all_is_a_clear_message(tmp_path: Path):
    cfg = _write_settings(tmp_path / "hub.toml", tmp_path / "var", f"duckdb:///{tmp_path / 'hub.duckdb'}", "")
    result = CliRunner().invoke(main, ["run", "--config", str(cfg)])
    assert result.exit_code == 1
    assert "no source is configured" in " ".join(result.output.split())


# ------------------------------------------------------------------ 3. a source's name is its system
def test_two_sources_of_one_kind_coexist_under_their_names(tmp_path: Path, warehouse_url: str, register):
    from hub.pipeline import build_canonical, ingest, new_run_id
    from tests.connectors.conftest import build_finance
    from warehouse.ops import reconciliation

    build_finance(f"sqlite:///{tmp_path / 'compta.sqlite'}", n=6).dispose()
    build_finance(f"sqlite:///{tmp_path / 'regie.sqlite'}", n=4).dispose()
    cfg = _write_settings(
        tmp_path / "hub.toml", tmp_path / "var", warehouse_url,
        f'[sources.compta]\nkind = "finance"\nurl = "sqlite:///{tmp_path / "compta.sqlite"}"\n\n'
        f'[sources.regie]\nkind = "finance"\nurl = "sqlite:///{tmp_path / "regie.sqlite"}"\n')
    settings = load_settings(cfg)
    run_id = new_run_id()
    assert ingest(settings, "compta", run_id)["rows_loaded"] > 0
    assert ingest(settings, "regie", run_id)["rows_loaded"] > 0
    with Warehouse(warehouse_url) as wh:  # declare what was loaded in the register, as an engineer would
        for system in ("compta", "regie"):
            cols: dict[str, list[str]] = {}
            for table, column in wh.rows("SELECT table_name, column_name FROM information_schema.columns "
                                         "WHERE table_schema = :s AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\' "
                                         "AND column_name NOT LIKE '\\_dlt%' ESCAPE '\\' "
                                         "ORDER BY table_name, ordinal_position", {"s": f"raw_{system}"}):
                cols.setdefault(table, []).append(column)
            register(system, cols)
    canonical = build_canonical(settings, run_id)
    assert canonical["sources"] == ["compta", "regie"]
    with Warehouse(warehouse_url) as wh:
        per = dict(wh.rows("SELECT source_system, count(*) FROM core.person_record GROUP BY 1"))
        keys = {r[0] for r in wh.rows("SELECT record_key FROM core.person_record")}
        invoices = dict(wh.rows("SELECT source_system, count(*) FROM core.interaction GROUP BY 1"))
        raw = {r[0] for r in wh.rows("SELECT DISTINCT table_schema FROM information_schema.tables "
                                     "WHERE table_schema LIKE 'raw_%'")}
        recon = reconciliation(wh, run_id)
    assert per == {"compta": 6, "regie": 4}
    assert "compta:tiers/1" in keys and "regie:tiers/1" in keys
    assert set(invoices) == {"compta", "regie"}
    assert {"raw_compta", "raw_regie"} <= raw and "raw_finance" not in raw
    assert {r["source_system"] for r in recon} == {"compta", "regie"} and all(r["ok"] for r in recon)


def test_a_renamed_connector_model_keeps_no_trace_of_its_kind():
    """The staging SQL of every code connector writes its system only in the three forms the
    renaming rewrites, so a source named otherwise reads and stamps only its own name."""
    from connectors.registry import SYSTEMS, staging_models

    for kind, module in SYSTEMS.items():
        if not module.STAGING:
            continue
        models = staging_models([("autre", kind, {})])
        for entries in models.values():
            for name, sql in entries:
                assert name.startswith("stg_autre__"), name
                code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
                code = re.sub(r"\braw_autre\.\w+", "", code)  # raw_autre.associations: a table, not the system
                assert not re.search(rf"\b{kind}\b", code), (kind, name)


# ------------------------------------------------------------------ 7. hub sandbox serve
def test_sandbox_serve_prints_what_hub_run_needs_and_keeps_the_users_settings(tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys
    import threading

    from sandbox import build_sandbox

    var = tmp_path / "var"
    sb = build_sandbox(var / "sandbox", people=120, seed=3)
    cfg = var / "hub.toml"
    cfg.write_text(f"""# my deployment: comments stay
[hub]
var_dir = "{var}"
sandbox_root = "{sb.root}"

[warehouse]
url = "duckdb:///{var / 'hub.duckdb'}"

[matching]
review_band = [0.5, 0.9]  # my review band

[sources.family]
kind = "family"
base_url = "http://127.0.0.1:1"
token_env = "HUB_FAMILY_TOKEN"
per_page = 500

[sources.people]
kind = "files"
mapping = "people.toml"
drop_dir = "drop"
""", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")} | {"PYTHONUNBUFFERED": "1"}
    hub = str(Path(sys.executable).parent / "hub")
    proc = subprocess.Popen([hub, "sandbox", "serve", "--config", str(cfg), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(120), "".join(lines)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        reader.join(5)
    out = "".join(lines)
    assert f"export HUB_CONFIG={cfg.resolve()}" in out, out
    assert "export HUB_FAMILY_TOKEN=sandbox-family-token" in out, out
    assert "export HUB_SALESFORCE_CLIENT_SECRET=" in out and "export HUB_SERVICENOW_PASSWORD=" in out, out
    text = cfg.read_text(encoding="utf-8")
    assert "# my deployment: comments stay" in text and "# my review band" in text
    settings = load_settings(cfg)
    assert settings.extra["review_band"] == [0.5, 0.9]
    assert settings.source("people").params == {"mapping": "people.toml", "drop_dir": "drop"}
    family = settings.source("family").params
    assert family["per_page"] == 500 and family["base_url"] != "http://127.0.0.1:1"
    assert {s.name for s in settings.sources} >= {"finance", "family", "associations", "salesforce", "servicenow"}


# ------------------------------------------------------------------ 6. messages never cut
def test_messages_are_never_cut_when_the_output_is_not_a_terminal(tmp_path: Path, register):
    register("people", PEOPLE_COLUMNS)
    register("extra", PEOPLE_COLUMNS)
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    people_csv(good / "people.csv", n=20)
    long_name = "people_export_from_the_municipal_register_of_the_whole_metropolitan_area_final_version.csv"
    text = (good / "people.csv").read_text(encoding="utf-8").splitlines()
    (bad / long_name).write_text("\n".join([text[0] + ",favourite_colour"] + [t + ",blue" for t in text[1:]]) + "\n",
                                 encoding="utf-8")
    (tmp_path / "people.toml").write_text(PEOPLE_MAPPING, encoding="utf-8")
    url = f"duckdb:///{tmp_path / 'var' / 'hub.duckdb'}"
    cfg = _write_settings(tmp_path / "hub.toml", tmp_path / "var", url,
                          f'[sources.people]\nkind = "files"\nmapping = "{tmp_path / "people.toml"}"\n'
                          f'drop_dir = "{good}"\n\n'
                          f'[sources.extra]\nkind = "files"\nmapping = "{tmp_path / "people.toml"}"\n'
                          f'drop_dir = "{bad}"\n')
    result = CliRunner().invoke(main, ["run", "--config", str(cfg)])
    assert result.exit_code == 1, result.output  # a source failed: the run says so in its exit status
    message = (f"extra: {long_name}:1, field favourite_colour: new column not in the mapping: the contract is "
               'frozen (add it to the mapping, or set on_new_column = "ignore")')
    lines = result.output.splitlines()
    # the progress line and the report's line each carry the whole message, on one line
    assert any(line.strip() == f"ingest extra             failed: {message}" for line in lines), result.output
    assert any(line.strip() == f"source failed {message}" for line in lines), result.output
    assert "…" not in result.output
    # the good source still ran to the report
    assert "Resolution:" in result.output



def test_a_source_name_that_cannot_be_a_system_is_refused_naming_it():
    from hub.settings import SettingsError, settings_from_dict

    with pytest.raises(SettingsError, match=r"\[sources\.Compta-2\]: a source's name is its system"):
        settings_from_dict({"sources": {"Compta-2": {"kind": "finance", "url": "sqlite:///x"}}})


# ------------------------------------------------------------------ 9. the documented worked example
def worked_example() -> dict[str, str]:
    """The worked example's files, as docs/connectors.md shows them (each block follows a marker)."""
    text = DOCS.read_text(encoding="utf-8")
    blocks = dict(re.findall(r"<!-- worked-example: (\S+) -->\n```\w+\n(.*?)```", text, re.S))
    assert set(blocks) == {"people.toml", "hub.toml", "register.toml", "command"}, set(blocks)
    sample = re.search(r"### Worked example.*?```text\n(.*?)```", text, re.S)
    assert sample is not None
    blocks["sample"] = sample.group(1)
    return blocks


def test_the_documented_worked_example_runs_as_documented(tmp_path: Path, monkeypatch):
    from schemas.register import DEFAULT_PATH

    example = worked_example()
    monkeypatch.chdir(tmp_path)
    for var in ("HUB_WAREHOUSE_URL", "HUB_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    Path("people.toml").write_text(example["people.toml"], encoding="utf-8")
    Path("hub.toml").write_text(example["hub.toml"], encoding="utf-8")
    register = tmp_path / "register.toml"
    register.write_text(DEFAULT_PATH.read_text(encoding="utf-8") + "\n" + example["register.toml"], encoding="utf-8")
    monkeypatch.setenv("HUB_REGISTER", str(register))
    Path("drop").mkdir()
    counts = people_csv(Path("drop/people.csv"), n=60)
    # the generated file is shaped as the documented sample: same header, dates, duplicates
    lines = Path("drop/people.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == example["sample"].splitlines()[0]
    # one impossible date: the mapping's on_error = "null" keeps the person, without a birth date
    fields = lines[5].split(",")
    fields[3] = fields[3][:5] + "02-30"
    lines[5] = ",".join(fields)
    Path("drop/people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    command = example["command"].split()
    assert command[:2] == ["hub", "run"]
    result = invoke(*command[1:])
    assert result.exit_code == 0, result.output
    out = [" ".join(line.split()) for line in result.output.splitlines()]
    rows = counts["rows"]
    assert f"extract people people {rows} {rows} 0 yes" in out, result.output
    assert f"quality people person_record {rows} {rows} 0 yes" in out, result.output
    assert "Quarantined rows: none" in out
    nulled = out.index("Fields set to null (their rows loaded)")
    assert out[nulled + 2] == "people people bad_date 1", result.output
    assert any(line.startswith(f"Canonical layer: {rows} person records, 0 interactions, 0 household memberships")
               for line in out), result.output
    resolution = next(line for line in out if line.startswith("Resolution:"))
    citizens = int(re.search(r"→ ([\d,]+) citizens", resolution).group(1).replace(",", ""))
    assert resolution.startswith(f"Resolution: {rows} records →")
    # every record is linked to a citizen; the duplicates make fewer citizens than records
    assert counts["people"] <= citizens < rows, resolution
    with Warehouse("duckdb:///var/hub.duckdb") as wh:
        assert wh.scalar("SELECT count(*) FROM golden.citizen_link") == rows
        assert wh.scalar("SELECT count(DISTINCT citizen_id) FROM golden.citizen_link") == citizens
