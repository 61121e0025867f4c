"""The access export against the sandbox's ground truth, on both warehouse engines: for people known
to at least three silos, the export holds every source record of the person (canonical and raw) and
no record of anyone else. Then the `gdpr_access` DAG runs a request's export (dag.test()) and
passes only the request id, the path and counts through XCom."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest

from hub.demo import running_sandbox
from hub.pipeline import run
from tests.logged import log_query
from warehouse.engine import Warehouse

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def people_in_three_silos(wh: Warehouse, root: Path, limit: int) -> list[tuple[str, set[str], str]]:
    """(person_id, their record keys in the canonical layer, the citizen of their first record) for
    people the truth places in at least three silos and the resolution put in one citizen alone."""
    from sandbox import load_truth

    truth = load_truth(root).select(["record_key", "person_id"]).to_pylist()
    links = dict(wh.rows("SELECT record_key, citizen_id FROM golden.citizen_link"))
    by_person: dict[str, set[str]] = defaultdict(set)
    for t in truth:
        if t["record_key"] in links:
            by_person[str(t["person_id"])].add(t["record_key"])
    by_citizen: dict[str, set[str]] = defaultdict(set)
    for key, cid in links.items():
        by_citizen[cid].add(key)
    out = []
    for person, keys in sorted(by_person.items()):
        if len({k.split(":", 1)[0] for k in keys}) < 3:
            continue
        citizens = {links[k] for k in keys}
        if len(citizens) == 1 and by_citizen[next(iter(citizens))] == keys:
            out.append((person, keys, next(iter(citizens))))
        if len(out) == limit:
            break
    return out


def test_exports_of_people_known_to_three_silos_match_the_ground_truth(tmp_path, warehouse_url):
    from connectors.registry import staging_models
    from warehouse.access_export import export_access, validate

    with running_sandbox(tmp_path / "var", people=800, seed=5, warehouse_url=warehouse_url,
                         with_demarches=True) as sr:
        settings = sr.settings
        assert run(settings).failed == []
        models = staging_models([(s.name, s.kind, s.params) for s in settings.sources])
        with Warehouse(settings.warehouse_url) as wh:
            people = people_in_three_silos(wh, sr.sandbox.root, limit=8)
            assert len(people) >= 5, len(people)
            raw_keyed = {}
            for person, keys, cid in people:
                result = export_access(wh, cid, tmp_path / f"{person}.zip", reader="dpo.test", models=models)
                doc = result.document
                validate(doc)
                exported = {r["record"]["record_key"] for r in doc["records"]} | {
                    r["record"]["record_key"] for r in doc["to_confirm"] if r["linked"]}
                assert exported == keys, person  # every record, no one else's
                raw_keys = {r["record_key"] for r in doc["raw"]}
                assert raw_keys == keys, person  # every record's raw row, and only theirs
                assert {i["record_key"] for i in doc["interactions"]} <= keys
                raw_keyed[person] = len(doc["raw"])
            logged = log_query(wh, "scalar", "SELECT count(*) FROM ops.access_log WHERE operation = 'export'")
    assert logged == len(people)
    assert all(n >= 3 for n in raw_keyed.values())


DAG_TEST = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

bag = DagBag(sys.argv[1])
assert not bag.import_errors, bag.import_errors
run = bag.get_dag("gdpr_access").test(run_conf={"request_id": sys.argv[2]})
with create_session() as session:
    xcoms = [json.dumps(x.value) if not isinstance(x.value, str) else x.value
             for x in session.query(XComModel).filter(XComModel.dag_id == "gdpr_access").all()]
print(json.dumps({"state": str(run.state), "xcoms": xcoms}))
"""


def test_the_gdpr_access_dag_exports_a_request(tmp_path):
    from tests.dags.conftest import make_airflow_env
    from warehouse import dsr

    with running_sandbox(tmp_path / "var", people=300, seed=3) as sr:
        settings = sr.settings
        assert run(settings).failed == []
        with Warehouse(settings.warehouse_url) as wh:
            cid, given, usage, born = wh.rows(
                "SELECT citizen_id, given_names, usage_name, birth_date FROM golden.citizen "
                "WHERE record_count >= 2 AND birth_date IS NOT NULL ORDER BY citizen_id LIMIT 1")[0]
            req = dsr.new_request(wh, kind="access", channel="guichet", actor="dpo.test",
                                  identity=dsr.Identity(f"{given} {usage}", birth_date=born, citizen_id=cid),
                                  identity_check="guichet", received_at=date.today())
        env = make_airflow_env(tmp_path)
        env["HUB_CONFIG"] = str(settings.config_path)
        for cmd in (["db", "migrate"], ["pools", "import", str(REPO / "airflow_pools.json")]):
            done = subprocess.run([AIRFLOW, *cmd], env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
        proc = subprocess.run([sys.executable, "-c", DAG_TEST, str(REPO / "dags" / "gdpr_access.py"),
                               req["request_id"]], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["state"].endswith("success"), out
    summary = next(json.loads(x) for x in out["xcoms"] if "path" in x)
    assert summary["request_id"] == req["request_id"] and Path(summary["path"]).exists()
    assert summary["records"] >= 2
    text = " ".join(out["xcoms"]).lower()
    for value in (given, usage, born.isoformat()):  # no personal data in XCom
        assert str(value).lower() not in text
    with Warehouse(settings.warehouse_url) as wh:
        events = [e["event"] for e in dsr.get(wh, req["request_id"])["events"]]
    assert events[-1] == "export"
