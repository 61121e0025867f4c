"""`hub gdpr request …` and `hub gdpr access` from the command line (DuckDB): a request recorded,
listed overdue first, extended only within the first month, exported, closed; the export refused
(exit 3, naming the table) while the register does not map a table of the warehouse."""

from __future__ import annotations

import json
import tomllib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from schemas.contract import CANONICAL_TABLES
from schemas.register import DEFAULT_PATH
from tests.golden import publish_hand_made
from tests.warehouse.conftest import RAW_SQL, family_golden, family_models
from warehouse.access_log import signed_in_reader
from warehouse.engine import Warehouse

# the test silos' raw tables (tests/warehouse/conftest.py), mapped by one more processing
TEST_PROCESSING = """

[[processing]]
id = "silos-de-test"
name = "Silos du jeu d'essai"
kind = "hub"
purpose = "jeu d'essai des tests"
legal_basis = { article = "e" }
data_subjects = ["usagers"]
security = ["tests"]
created = 2026-01-01
updated = 2026-01-01
dpia = { required = false }

[[processing.data]]
category = "identite"
description = "tout"
[processing.data.retention]
duration = "1 an"
start = "collecte"
extended_by_activity = false
at_end = "suppression"
[processing.data.columns]
"raw_finance.tiers" = ["id", "nom", "prenom", "ne_le", "courriel", "tel", "adresse", "cp", "ville", "groupe", "rang"]
"raw_finance.factures" = ["num", "tiers", "objet", "emise", "echeance", "payee", "montant"]
"raw_family.members" = ["id", "famille", "lien", "nom", "nom_naissance", "prenoms", "sexe", "naissance", "mail"]
"raw_family.dossiers" = ["id", "membre", "nature", "service", "libelle", "ouvert", "echeance"]
"raw_assoc.dirigeants" = ["id", "asso", "fonction", "nom", "prenom", "naissance", "mail"]
"raw_assoc.subventions" = ["id", "dirigeant", "objet", "deposee", "montant"]

[processing.not_personal]
"raw_assoc.associations" = "*"

[processing.recipients]
internal = ["tests"]
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    with Warehouse(url) as wh:
        for sql in RAW_SQL:
            wh.execute(sql)
        tables = {t.name: t for t in CANONICAL_TABLES}
        for name, entries in family_models().items():
            for i, (_, sql) in enumerate(entries):
                wh.write(tables[name], wh.arrow(sql), replace=i == 0)
        links, citizens = family_golden()
        publish_hand_made(wh, "res-1", links=links, citizens=citizens,
                           run_row={"model_version": "m", "records": links.num_rows, "pairs_scored": 0,
                                    "citizens": citizens.num_rows, "threshold": 0.9})
    config = tmp_path / "hub.toml"
    # the test's own var_dir: the run lock and the access log are the test's, not the repository's var/
    config.write_text(f'[hub]\nvar_dir = "{tmp_path / "var"}"\n\n[warehouse]\nurl = "{url}"\n', encoding="utf-8")
    register = tmp_path / "register.toml"
    register.write_text(DEFAULT_PATH.read_text(encoding="utf-8") + TEST_PROCESSING, encoding="utf-8")
    return {"HUB_CONFIG": str(config), "HUB_READER": "dpo.cli", "HUB_WAREHOUSE_URL": "", "HUB_REGISTER": str(register)}


def _run(env: dict[str, str], *args: str):
    return CliRunner().invoke(main, ["gdpr", *args], env=env, catch_exceptions=False)


def test_a_request_from_receipt_to_answer(env, tmp_path):
    out = _run(env, "request", "new", "--kind", "access", "--channel", "courriel", "--name", "Marie Dupont",
               "--birth-date", "12/04/1982", "--email", "marie.dupont@example.fr", "--received", "2026-01-31",
               "--identity-check", "coordonnees_connues", "--evidence", "adresse connue", "--json")
    assert out.exit_code == 0, out.output
    req = json.loads(out.output)
    rid = req["request_id"]
    assert req["due_date"] == "2026-02-28" and req["status"] == "a_traiter"
    fresh = _run(env, "request", "new", "--kind", "erasure", "--channel", "guichet", "--name", "Jean Dupont",
                 "--received", "2026-02-20")
    assert fresh.exit_code == 0 and "due 20/03/2026" in fresh.output
    listed = json.loads(_run(env, "request", "list", "--today", "2026-02-25", "--json").output)
    assert (listed[0]["request_id"], listed[0]["urgency"]) == (rid, "due_soon")
    assert json.loads(_run(env, "request", "list", "--today", "2026-03-02", "--json").output)[0]["urgency"] == "overdue"

    late = _run(env, "request", "extend", rid, "--reason", "six services à interroger")
    assert late.exit_code == 4 and "within the first month" in late.output  # today is long after February

    zipped = tmp_path / "acces.zip"
    done = _run(env, "access", rid, "--out", str(zipped))
    assert done.exit_code == 0, done.output
    assert "citizen C-MARIE, 3 record(s)" in done.output
    with zipfile.ZipFile(zipped) as z:
        assert {"acces.json", "rapport.html", "sources/finance.csv"} <= set(z.namelist())
    shown = json.loads(_run(env, "request", "show", rid, "--json").output)
    assert shown["citizen_id"] == "C-MARIE" and shown["events"][-1]["event"] == "export"
    assert shown["events"][-1]["actor"] == signed_in_reader("dpo.cli")  # the account, dpo.cli only declared
    closed = _run(env, "request", "close", rid, "--proof", "acces.zip")
    assert closed.exit_code == 0 and "clos" in closed.output
    assert [r["request_id"] for r in json.loads(_run(env, "request", "list", "--json").output)] != [rid]


def test_the_access_export_is_refused_while_the_register_has_a_gap(env, tmp_path):
    with Warehouse(tomllib.loads(Path(env["HUB_CONFIG"]).read_text())["warehouse"]["url"]) as wh:
        wh.execute("CREATE TABLE raw_family.contacts_urgence (id TEXT, nom TEXT, telephone TEXT)")
    out = _run(env, "access", "C-MARIE", "--out", str(tmp_path / "x.zip"))
    assert out.exit_code == 3
    assert "raw_family.contacts_urgence (id, nom, telephone)" in out.output
    assert not (tmp_path / "x.zip").exists()
    unknown = _run(env, "access", "nobody@example.org", "--out", str(tmp_path / "y.zip"))
    assert unknown.exit_code == 3  # the guard refuses before anything is searched
