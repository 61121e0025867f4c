"""ServiceNow connector against the sandbox's ServiceNow instance simulator (real HTTP), on both engines."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors import servicenow
from connectors.base import SourceError
from connectors.runner import run_source
from sandbox import generate_population, observe
from sandbox.servicenow import DEFAULT_PASSWORD, DEFAULT_USER, ServiceNowInstance, servicenow_tables, write_servicenow
from schemas.contract import CANONICAL_TABLES
from tests.connectors.http_silo import duck_destination, fatal_fault_error, load_through_fault

FAST = {"backoff_factor": 0.01, "max_retry_delay": 1.5, "max_attempts": 3, "timeout": 5.0, "page_size": 40}
CONTRACT = {t.name: t.column_names for t in CANONICAL_TABLES}


@pytest.fixture(scope="module")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("servicenow")
    write_servicenow(folder, servicenow_tables(observe(generate_population(500, 3), 3)))
    return folder


@pytest.fixture
def instance(instance_dir: Path) -> Iterator[ServiceNowInstance]:
    with ServiceNowInstance(instance_dir) as i:
        yield i


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[object]:
    with duck_destination(tmp_path) as d:
        yield d


def _load(instance: ServiceNowInstance, destination, pdir: Path, run_id: str = "run", **kw):
    args = {"instance_url": instance.url, "username": DEFAULT_USER, "password": DEFAULT_PASSWORD, **FAST, **kw}
    return run_source(servicenow, destination, run_id, pipelines_dir=pdir, **args)


def _count(warehouse, table: str) -> int:
    return warehouse.scalar(f"SELECT count(*) FROM raw_servicenow.{table}")


def _staged(warehouse, table: str):
    return warehouse.arrow(servicenow.STAGING[table][0].read_text(encoding="utf-8")).to_pylist()


def test_full_then_incremental_update_and_delete(instance, warehouse, destination, tmp_path):
    users = instance.records("sys_user")
    first = _load(instance, destination, tmp_path / "p")
    assert first.count("sys_user").rows_loaded == len(users) > 40
    assert first.count("incident").rows_loaded == len(instance.records("incident"))
    assert any(page > 1 for table, page, _ in instance.request_log if table == "sys_user" and page)
    # no deletion yet: the audit table exists all the same, so staging runs
    assert _count(warehouse, "sys_audit_delete") == 0
    assert all(r["deleted_at"] is None for r in _staged(warehouse, "person_record"))

    second = _load(instance, destination, tmp_path / "p")
    assert [c.rows_loaded for c in second.counts] == [0, 0, 0]

    changed, gone = users[0]["sys_id"], users[1]["sys_id"]
    instance.touch("sys_user", changed, last_name="Nouveau-Nom")
    instance.delete("sys_user", gone)
    third = _load(instance, destination, tmp_path / "p")
    assert (third.count("sys_user").rows_loaded, third.count("sys_audit_delete").rows_loaded) == (1, 1)
    assert _count(warehouse, "sys_user") == len(users)
    name = warehouse.scalar("SELECT last_name FROM raw_servicenow.sys_user WHERE sys_id = :i", {"i": changed})
    assert name == "Nouveau-Nom"
    deleted = {r["record_key"]: r["deleted_at"] for r in _staged(warehouse, "person_record")}
    assert deleted[f"servicenow:sys_user/{gone}"] is not None
    assert deleted[f"servicenow:sys_user/{changed}"] is None


def test_staging_yields_exactly_the_contract(instance, warehouse, destination, tmp_path):
    _load(instance, destination, tmp_path / "p")
    for table, paths in servicenow.STAGING.items():
        for path in paths:
            data = warehouse.arrow(path.read_text(encoding="utf-8"))
            assert data.column_names == CONTRACT[table], path.name
            assert data.num_rows > 0, path.name
    incidents = _staged(warehouse, "interaction")
    users = {r["record_key"] for r in _staged(warehouse, "person_record")}
    assert {i["kind"] for i in incidents} == {"ticket"}
    assert {i["record_key"] for i in incidents} <= users  # caller_id's value, not its link
    assert {i["channel"] for i in incidents} <= {"web", "telephone", "email", "guichet"}
    assert all(i["closed_at"] is not None for i in incidents if i["status"] in ("resolved", "closed"))


@pytest.mark.parametrize("kind", ["500", "reset", "delay"])
def test_transient_faults_are_retried(kind, instance, duck, tmp_path):
    result, statuses, _ = load_through_fault(instance, lambda: _load(instance, duck, tmp_path / "p"), kind,
                                             "sys_user", 2, delay=0.3)
    assert result.count("sys_user").rows_loaded == len(instance.records("sys_user"))
    assert statuses[-1] == 200 and (len(statuses) == 2 or kind == "delay")


def test_429_is_retried_after_retry_after(instance, duck, tmp_path):
    result, statuses, seconds = load_through_fault(instance, lambda: _load(instance, duck, tmp_path / "p"), "429",
                                                   "incident", 1, retry_after=1)
    assert seconds >= 1.0
    assert result.count("incident").rows_loaded == len(instance.records("incident"))
    assert statuses == [429, 200]


@pytest.mark.parametrize(("kind", "locator", "words"), [
    ("401", "sys_user /api/now/table/sys_user", "HTTP 401"),
    ("html", "sys_user page 1", "HTML page"),
    ("truncated", "sys_user page 1", "malformed or truncated JSON"),
], ids=["unauthorized", "html-page", "truncated-json"])
def test_fatal_faults_fail_clearly_and_keep_earlier_loads(kind, locator, words, instance, warehouse, destination,
                                                          tmp_path, caplog):
    _load(instance, destination, tmp_path / "p")
    before = _count(warehouse, "sys_user")
    err = fatal_fault_error(instance, lambda: _load(instance, destination, tmp_path / "p"), kind, "sys_user",
                            {"first_name": "Anne", "last_name": "Nouvelle"}, caplog)
    assert err.source_system == "servicenow"
    assert err.locator == locator and words in str(err)
    assert _count(warehouse, "sys_user") == before
    if kind == "401":  # fails at once: no retry
        assert sum(1 for table, _, s in instance.request_log if table == "sys_user" and s == 401) == 1
    assert DEFAULT_PASSWORD not in str(err) and DEFAULT_PASSWORD not in caplog.text


def test_wrong_password_fails_at_once_without_the_password(instance, duck, tmp_path, caplog):
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
        _load(instance, duck, tmp_path / "p", password="wrong-password-value")
    assert "HTTP 401" in str(err.value) and err.value.locator.endswith("/api/now/table/" + err.value.locator.split()[0])
    assert "wrong-password-value" not in str(err.value) and "wrong-password-value" not in caplog.text


def test_unreachable_instance(duck, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError) as err:
        run_source(servicenow, duck, "run", pipelines_dir=tmp_path / "p", instance_url=f"http://127.0.0.1:{port}",
                   username="u", password="p", **FAST)
    assert "cannot reach the ServiceNow instance" in str(err.value) and str(port) in err.value.locator
