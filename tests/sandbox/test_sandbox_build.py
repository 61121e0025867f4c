"""build_sandbox: every silo on disk, the truth covering every record key once, determinism."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
import requests

from sandbox import Sandbox, build_sandbox, load_truth, open_sandbox, serve_family_portal
from sandbox.finance_db import read_finance


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return build_sandbox(tmp_path_factory.mktemp("sbx"), people=1_500, seed=11)


def _emitted_keys(sb: Sandbox) -> list[str]:
    with sqlite3.connect(sb.root / "finance.sqlite") as con:
        keys = [f"finance:tiers/{i}" for (i,) in con.execute("SELECT id FROM tiers")]
    for entity, collection in (("responsable", "responsables"), ("enfant", "enfants")):
        rows = json.loads((sb.family_dir / f"{collection}.json").read_text(encoding="utf-8"))
        keys += [f"family:{entity}/{r['id']}" for r in rows]
    with open(sb.associations_dir / "dirigeants.csv", encoding="cp1252", newline="") as fh:
        keys += [f"associations:dirigeant/{r['id']}" for r in csv.DictReader(fh, delimiter=";")]
    contacts = json.loads((sb.salesforce_dir / "Contact.json").read_text(encoding="utf-8"))
    keys += [f"salesforce:contact/{r['Id']}" for r in contacts]
    users = json.loads((sb.servicenow_dir / "sys_user.json").read_text(encoding="utf-8"))
    keys += [f"servicenow:sys_user/{r['sys_id']}" for r in users]
    demarches = json.loads((sb.demarches_dir / "demarches.json").read_text(encoding="utf-8"))["demarches"]
    keys += [f"demarches:dossier/{d['number']}" for m in demarches for d in m["dossiers"]]
    return keys


def test_truth_covers_every_record_key_exactly_once(built: Sandbox):
    truth = load_truth(built.root)
    truth_keys = truth.column("record_key").to_pylist()
    emitted = _emitted_keys(built)
    assert len(truth_keys) == len(set(truth_keys))
    assert sorted(truth_keys) == sorted(emitted)
    assert sum(built.person_records.values()) == len(emitted)
    assert truth.column("person_id").null_count == 0


def test_counts_describe_what_is_on_disk(built: Sandbox):
    assert built.finance_url.startswith("sqlite:///")
    back = read_finance(built.finance_url)
    assert built.rows["finance.factures"] == back["factures"].num_rows
    assert built.rows["family.enfants"] == len(json.loads((built.family_dir / "enfants.json").read_text()))
    assert built.person_records["finance"] == back["tiers"].num_rows


def test_same_seed_same_files_other_seed_differs(built: Sandbox, tmp_path: Path):
    again = build_sandbox(tmp_path / "again", people=1_500, seed=11)
    other = build_sandbox(tmp_path / "other", people=1_500, seed=12)
    for rel in ("family/responsables.json", "family/factures.json", "associations/dirigeants.csv",
                "associations/demandes_subvention.csv"):
        assert (built.root / rel).read_bytes() == (again.root / rel).read_bytes()
        assert (built.root / rel).read_bytes() != (other.root / rel).read_bytes()
    assert load_truth(built.root).equals(load_truth(again.root))
    a, b = read_finance(built.finance_url), read_finance(again.finance_url)
    assert all(a[t].equals(b[t]) for t in a)
    assert not a["tiers"].equals(read_finance(other.finance_url)["tiers"])


def test_family_portal_serves_the_built_data(built: Sandbox):
    with built.family_portal(token="abc") as portal:
        r = requests.get(f"{portal.api_url}/familles", headers={"Authorization": "Bearer abc"}, timeout=5)
        assert r.status_code == 200
        assert r.json()["meta"]["total"] == built.rows["family.familles"]


def test_finance_can_go_to_another_database(tmp_path: Path, postgres_url: str):
    url = postgres_url.replace("postgresql://", "postgresql+psycopg://", 1)
    sb = build_sandbox(tmp_path, people=300, seed=5, finance_url=url)
    assert not (tmp_path / "finance.sqlite").exists()
    assert read_finance(url)["tiers"].num_rows == sb.person_records["finance"]


def test_open_sandbox_finds_a_built_one_again(built: Sandbox):
    again = open_sandbox(built.root)
    assert again == built
    assert again.counts == {"people": 1_500, **built.person_records}
    with serve_family_portal(built.root, token="k", port=0) as portal:
        r = requests.get(f"{portal.api_url}/enfants", headers={"Authorization": "Bearer k"}, timeout=5)
        assert r.json()["meta"]["total"] == built.rows["family.enfants"]
