"""`hub citizen show / prefill / worklist` on a golden layer built by survivorship (DuckDB file)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pyarrow as pa
import pytest
from click.testing import CliRunner

from hub.cli import main
from matching.survivorship import survive
from schemas.contract import CANONICAL_TABLES, CITIZEN_LINK, arrow_type
from tests.golden import publish_hand_made
from tests.logged import log_query
from tests.warehouse.conftest import FAMILY_CITIZENS, RAW_SQL, family_models
from warehouse.engine import Warehouse
from warehouse.golden import core_person_records

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "citizen_view.schema.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def hub_env(tmp_path_factory) -> dict[str, str]:
    """A settings file pointing at a DuckDB warehouse holding the Dupont family's golden layer."""
    root = tmp_path_factory.mktemp("hub")
    url = f"duckdb:///{root / 'hub.duckdb'}"
    with Warehouse(url) as wh:
        for sql in RAW_SQL:
            wh.execute(sql)
        tables = {t.name: t for t in CANONICAL_TABLES}
        for name, entries in family_models().items():
            for i, (_, sql) in enumerate(entries):
                wh.write(tables[name], wh.arrow(sql), replace=i == 0)
        wh.execute("UPDATE core.person_record SET phone = '+33699999999' WHERE record_key = 'assoc:R1'")
        keys = [r for rs in FAMILY_CITIZENS.values() for r in rs]
        links = pa.table({"record_key": keys, "citizen_id": [c for c, rs in FAMILY_CITIZENS.items() for _ in rs],
                          "match_probability": [0.99] * len(keys), "model_version": ["m"] * len(keys)})
        for col in CITIZEN_LINK.columns:
            if col.name not in links.column_names and col.name != "run_id":
                links = links.append_column(col.name, pa.nulls(links.num_rows, arrow_type(col.type)))
        golden = survive(core_person_records(wh), links, now=datetime(2026, 6, 1, tzinfo=UTC))
        publish_hand_made(wh, "res-1", links=links, citizens=golden,
                           run_row={"model_version": "m", "records": len(keys), "pairs_scored": 0,
                                    "citizens": golden.num_rows, "threshold": 0.9})
    config = root / "hub.toml"
    config.write_text(f'[warehouse]\nurl = "{url}"\n', encoding="utf-8")
    return {"HUB_CONFIG": str(config), "HUB_READER": "agent.cli", "HUB_WAREHOUSE_URL": ""}


def _run(env: dict[str, str], *args: str):
    return CliRunner().invoke(main, ["citizen", *args], env=env, catch_exceptions=False)


def test_show_json_validates_against_the_schema(hub_env) -> None:
    out = _run(hub_env, "show", "C-MARIE", "--json")
    assert out.exit_code == 0
    view = json.loads(out.output)
    jsonschema.validate(view, SCHEMA)
    assert {f["household_id"] for f in view["foyers"]} == {"foyer:family:FAM1"}


def test_show_in_the_terminal_names_provenance_foyer_timeline_and_worklist(hub_env) -> None:
    out = _run(hub_env, "show", "C-MARIE")
    assert out.exit_code == 0
    text = out.output
    for expected in ("Identité", "justificatif", "divergence", "Foyer foyer:family:FAM1", "C-LEA", "mineur",
                     "Parcours", "facture(s) impayée(s)", "45.50 EUR", "silence vaut rejet", "À corriger"):
        assert expected in text, expected


def test_prefill_gives_only_the_services_attributes(hub_env) -> None:
    out = _run(hub_env, "prefill", "C-MARIE", "--service", "facturation", "--json")
    assert out.exit_code == 0
    data = json.loads(out.output)
    assert set(data["attributes"]) <= {"given_names", "usage_name", "email", "phone", "address_line", "postcode",
                                       "city"}
    assert data["attributes"]["address_line"]["source_system"] == "finance"
    text = _run(hub_env, "prefill", "C-MARIE", "--service", "etat-civil").output
    assert "Lefèvre" in text and "+33" not in text  # identity yes, phone no


def test_prefill_refuses_an_unknown_service(hub_env) -> None:
    out = CliRunner().invoke(main, ["citizen", "prefill", "C-MARIE", "--service", "marketing"], env=hub_env)
    assert out.exit_code == 2
    assert "unknown service" in out.output


def test_worklist_lists_the_silos_records_to_fix(hub_env) -> None:
    rows = json.loads(_run(hub_env, "worklist", "assoc", "--json").output)
    assert [(r["record_key"], r["attribute"], r["golden_source_system"]) for r in rows] == [
        ("assoc:R1", "phone", "finance")]
    assert "Nothing to fix in family" in _run(hub_env, "worklist", "family").output


def _log(hub_env) -> list[tuple]:
    url = Path(hub_env["HUB_CONFIG"]).read_text("utf-8").split('"')[1]
    with Warehouse(url) as wh:  # the log lives in its own file on DuckDB (warehouse/access_log_store.py)
        return log_query(wh, "rows", "SELECT reader, purpose, citizen_id FROM ops.access_log ORDER BY seq")


@pytest.mark.parametrize("command", [("show", "C-MARIE"), ("search", "dupont"), ("worklist", "assoc")],
                         ids=["show", "search", "worklist"])
def test_a_free_text_purpose_is_refused_with_the_registers_list(hub_env, command) -> None:
    before = len(_log(hub_env))
    out = CliRunner().invoke(main, ["citizen", *command, "--purpose", "curiosité"], env=hub_env)
    assert out.exit_code == 2, out.output
    assert "unknown purpose 'curiosité'" in out.output
    assert "guichet-unique (accueil et orientation des usagers)" in out.output and "droits-rgpd" in out.output
    assert len(_log(hub_env)) == before  # nothing read, nothing logged


def test_the_reader_is_the_signed_in_account_and_hub_reader_only_declared(hub_env) -> None:
    from warehouse.access_log import signed_in_reader

    account = signed_in_reader()
    assert _run(hub_env, "show", "C-MARIE", "--purpose", "Accueil et orientation des usagers").exit_code == 0
    assert _run({**hub_env, "HUB_READER": ""}, "show", "C-JEAN").exit_code == 0
    # USER / LOGNAME are anyone's to set: they change nothing
    spoofed = {**hub_env, "HUB_READER": "", "USER": "quelquun", "LOGNAME": "quelquun"}
    assert _run(spoofed, "show", "C-LEA").exit_code == 0
    log = _log(hub_env)
    assert (f"{account} (declared: agent.cli)", "accueil et orientation des usagers", "C-MARIE") in log
    assert (account, "accueil et orientation des usagers", "C-JEAN") in log
    assert (account, "accueil et orientation des usagers", "C-LEA") in log
    assert not any(r[0] == "agent.cli" or "quelquun" in r[0] for r in log)
