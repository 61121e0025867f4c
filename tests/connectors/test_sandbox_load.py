"""A small sandbox (300 people) through all three connectors and every staging model."""

from __future__ import annotations

from pathlib import Path

from connectors.registry import SYSTEMS, staging_models
from connectors.runner import run_source
from sandbox import DEFAULT_TOKEN, build_sandbox, load_truth
from sandbox.demarches import DEFAULT_TOKEN as DEMARCHES_TOKEN
from schemas.contract import PERSON_RECORD


def test_sandbox_through_connectors_and_staging(warehouse, destination, tmp_path: Path):
    sb = build_sandbox(tmp_path / "sb", people=300, seed=7)
    pdir = tmp_path / "pipelines"
    results = {}
    with sb.family_portal() as portal:
        results["family"] = run_source(SYSTEMS["family"], destination, "sb", pipelines_dir=pdir, base_url=portal.url,
                                       token=DEFAULT_TOKEN)
    results["finance"] = run_source(SYSTEMS["finance"], destination, "sb", pipelines_dir=pdir,
                                    source_url=sb.finance_url)
    results["associations"] = run_source(SYSTEMS["associations"], destination, "sb", pipelines_dir=pdir,
                                         drop_dir=sb.associations_dir)
    with sb.salesforce() as org:
        results["salesforce"] = run_source(SYSTEMS["salesforce"], destination, "sb", pipelines_dir=pdir,
                                           login_url=org.url, client_id=org.client_id,
                                           client_secret=org.client_secret)
    with sb.servicenow() as desk:
        results["servicenow"] = run_source(SYSTEMS["servicenow"], destination, "sb", pipelines_dir=pdir,
                                           instance_url=desk.url, username=desk.username,
                                           password=desk.password)
    with sb.demarches() as ds:
        results["demarches"] = run_source(SYSTEMS["demarches"], destination, "sb", pipelines_dir=pdir, base_url=ds.url,
                                          token=DEMARCHES_TOKEN, demarches=ds.demarche_numbers)
    for r in results.values():
        for c in r.counts:
            assert c.rows_read == c.rows_loaded + c.rows_quarantined

    persons = [sql for _, sql in staging_models()["person_record"]]
    keys = set()
    for sql in persons:
        data = warehouse.arrow(sql)
        assert data.column_names == PERSON_RECORD.column_names
        keys |= set(data.column("record_key").to_pylist())
    truth = set(load_truth(sb.root).column("record_key").to_pylist())
    quarantined = sum(r.quarantine.num_rows for r in results.values())
    # every person record the sandbox emitted arrives, except rows set aside at extraction
    assert keys <= truth
    assert len(truth - keys) <= quarantined
    assert len(keys) == sum(sb.person_records.values()) - len(truth - keys)
