"""Salesforce connector against the sandbox's Salesforce org simulator (real HTTP), on both engines."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import salesforce
from connectors.base import SourceError
from connectors.runner import run_source
from sandbox import generate_population, observe
from sandbox.salesforce import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SalesforceOrg,
    salesforce_objects,
    write_salesforce,
)
from schemas.contract import CANONICAL_TABLES
from tests.connectors.http_silo import duck_destination, fatal_fault_error, load_through_fault

FAST = {"backoff_factor": 0.01, "max_retry_delay": 1.5, "max_attempts": 3, "timeout": 5.0}
CONTRACT = {t.name: t.column_names for t in CANONICAL_TABLES}


@pytest.fixture(scope="module")
def org_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("salesforce")
    write_salesforce(folder, salesforce_objects(observe(generate_population(400, 3), 3)))
    return folder


@pytest.fixture
def org(org_dir: Path) -> Iterator[SalesforceOrg]:
    with SalesforceOrg(org_dir, batch_size=40) as o:  # small batches: several nextRecordsUrl hops
        yield o


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[object]:
    with duck_destination(tmp_path) as d:
        yield d


def _load(org: SalesforceOrg, destination, pdir: Path, run_id: str = "run", **kw):
    args = {"login_url": org.url, "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET, **FAST, **kw}
    return run_source(salesforce, destination, run_id, pipelines_dir=pdir, **args)


def _count(warehouse, table: str) -> int:
    return warehouse.scalar(f"SELECT count(*) FROM raw_salesforce.{table}")


def test_full_then_incremental_update_and_delete(org, warehouse, destination, tmp_path):
    first = _load(org, destination, tmp_path / "p")
    contacts = org.records("Contact")
    assert first.count("contacts").rows_loaded == len(contacts) > 40  # deleted ones too (queryAll)
    assert first.count("cases").rows_loaded == len(org.records("Case"))
    assert _count(warehouse, "contacts") == len(contacts)
    assert any(page > 1 for obj, page, _ in org.request_log if obj == "Contact" and page)

    second = _load(org, destination, tmp_path / "p")
    assert [c.rows_loaded for c in second.counts] == [0, 0, 0]

    live = [c for c in contacts if not c["IsDeleted"]]
    changed, gone = live[0]["Id"], live[1]["Id"]
    org.touch("Contact", changed, LastName="Nouveau-Nom")
    org.delete("Contact", gone)
    third = _load(org, destination, tmp_path / "p")
    assert third.count("contacts").rows_loaded == 2
    assert _count(warehouse, "contacts") == len(contacts)
    name = warehouse.scalar("SELECT last_name FROM raw_salesforce.contacts WHERE id = :i", {"i": changed})
    assert name == "Nouveau-Nom"
    staged = warehouse.arrow(salesforce.STAGING["person_record"][0].read_text(encoding="utf-8"))
    deleted = {r["record_key"]: r["deleted_at"] for r in staged.to_pylist()}
    assert deleted[f"salesforce:contact/{gone}"] is not None
    assert deleted[f"salesforce:contact/{changed}"] is None


def test_staging_yields_exactly_the_contract(org, warehouse, destination, tmp_path):
    _load(org, destination, tmp_path / "p")
    for table, paths in salesforce.STAGING.items():
        for path in paths:
            data = warehouse.arrow(path.read_text(encoding="utf-8"))
            assert data.column_names == CONTRACT[table], path.name
            assert data.num_rows > 0, path.name
    cases = warehouse.arrow(salesforce.STAGING["interaction"][0].read_text(encoding="utf-8")).to_pylist()
    assert {c["kind"] for c in cases} == {"demande"}
    assert {c["channel"] for c in cases} <= {"web", "telephone", "email"}
    assert all((c["closed_at"] is not None) == (c["status"] == "closed") for c in cases)


@pytest.mark.parametrize("kind", ["500", "reset", "delay"])
def test_transient_faults_are_retried(kind, org, duck, tmp_path):
    result, statuses, _ = load_through_fault(org, lambda: _load(org, duck, tmp_path / "p"), kind, "Contact", 2,
                                             retry_after=1, delay=0.3)
    assert result.count("contacts").rows_loaded == len(org.records("Contact"))
    assert statuses[-1] == 200 and (len(statuses) == 2 or kind == "delay")


def test_429_is_retried_after_retry_after(org, duck, tmp_path):
    result, statuses, seconds = load_through_fault(org, lambda: _load(org, duck, tmp_path / "p"), "429", "Case", 1,
                                                   retry_after=1)
    assert seconds >= 1.0
    assert result.count("cases").rows_loaded == len(org.records("Case"))
    assert statuses == [429, 200]


@pytest.mark.parametrize(("kind", "locator", "words"), [
    ("401", "Contact /services/data/v62.0/queryAll", "HTTP 401"),
    ("html", "Contact batch 1", "HTML page"),
    ("truncated", "Contact batch 1", "malformed or truncated JSON"),
], ids=["expired-session", "html-page", "truncated-json"])
def test_fatal_faults_fail_clearly_and_keep_earlier_loads(kind, locator, words, org, warehouse, destination,
                                                          tmp_path, caplog):
    _load(org, destination, tmp_path / "p")
    before = _count(warehouse, "contacts")
    err = fatal_fault_error(org, lambda: _load(org, destination, tmp_path / "p"), kind, "Contact",
                            {"FirstName": "Anne", "LastName": "Nouvelle"}, caplog)
    assert err.source_system == "salesforce"
    assert err.locator == locator and words in str(err)
    assert _count(warehouse, "contacts") == before
    if kind == "401":  # fails at once: one request, no retry
        assert sum(1 for obj, page, s in org.request_log if obj == "Contact" and s == 401) == 1
    for secret in [DEFAULT_CLIENT_SECRET, *org._tokens]:
        assert secret not in str(err) and secret not in caplog.text


def test_bad_credentials_name_the_token_endpoint_not_the_secret(org, duck, tmp_path, caplog):
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
        _load(org, duck, tmp_path / "p", client_secret="wrong-secret-value")
    assert err.value.locator == "token /services/oauth2/token"
    assert "invalid_client" in str(err.value)
    assert "wrong-secret-value" not in str(err.value) and "wrong-secret-value" not in caplog.text


def test_unknown_field_is_refused_at_once(org, duck, tmp_path, monkeypatch):
    fields = dict(salesforce.OBJECTS["accounts"][1], Nonexistent__c=None)
    monkeypatch.setitem(salesforce.OBJECTS, "accounts", ("Account", fields))
    with pytest.raises(SourceError) as err:
        _load(org, duck, tmp_path / "p")
    assert err.value.locator.startswith("Account ") and "INVALID_FIELD" in str(err.value)


def test_unreachable_org(duck, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError) as err:
        run_source(salesforce, duck, "run", pipelines_dir=tmp_path / "p", login_url=f"http://127.0.0.1:{port}",
                   client_id="c", client_secret="s", **FAST)
    assert "cannot reach the Salesforce org" in str(err.value) and str(port) in err.value.locator


def test_username_password_flow(org_dir, duck, tmp_path):
    with SalesforceOrg(org_dir, username="api@ville.fr", password="pw+token") as o:
        result = _load(o, duck, tmp_path / "p", username="api@ville.fr", password="pw+token")
        assert result.count("accounts").rows_loaded == len(o.records("Account"))
        with pytest.raises(SourceError) as err:
            _load(o, duck, tmp_path / "q", username="api@ville.fr", password="wrong")
        assert "invalid_grant" in str(err.value)
