"""Family connector against a real local HTTP server speaking the portal's API."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from connectors import family
from connectors.base import SourceError
from connectors.runner import run_source
from tests.connectors.conftest import family_data

FAST = {"backoff_factor": 0.01, "max_retry_delay": 0.1, "max_attempts": 3, "timeout": 5.0}


def _load(portal, destination, pdir: Path, run_id: str = "run", token: str | None = None, **kw):
    return run_source(family, destination, run_id, pipelines_dir=pdir, base_url=portal.base_url,
                      token=token or portal.token, per_page=3, **{**FAST, **kw})


def test_pages_incremental_and_update(portal, warehouse, destination, tmp_path: Path):
    portal.collections = family_data(4)
    first = _load(portal, destination, tmp_path / "p")
    assert first.count("responsables").rows_loaded == 8
    assert warehouse.scalar("SELECT count(*) FROM raw_family.responsables") == 8
    assert any("page=3" in r for r in portal.requests if "/responsables" in r)  # 8 rows, 3 per page
    assert str(warehouse.scalar("SELECT montant FROM raw_family.factures WHERE id = 102")) == "45.30"
    assert warehouse.scalar("SELECT adresse__commune FROM raw_family.familles WHERE id = 1") == "Lyon"

    portal.requests.clear()
    second = _load(portal, destination, tmp_path / "p")
    assert [c.rows_loaded for c in second.counts] == [0, 0, 0, 0, 0]
    assert all("updated_since=2026-01-05T09" in r for r in portal.requests), portal.requests

    resp = portal.collections["responsables"]
    resp[0] = {**resp[0], "nom": "Changé", "updated_at": "2026-02-01T10:00:00Z"}
    resp[1] = {**resp[1], "deleted": True, "updated_at": "2026-02-01T10:00:00Z"}
    third = _load(portal, destination, tmp_path / "p")
    assert third.count("responsables").rows_loaded == 2
    assert warehouse.scalar("SELECT count(*) FROM raw_family.responsables") == 8
    assert warehouse.scalar("SELECT nom FROM raw_family.responsables WHERE id = 10") == "Changé"
    assert warehouse.scalar("SELECT deleted FROM raw_family.responsables WHERE id = 11") is True


@pytest.mark.parametrize("failure", ["html_page", "truncated_json"])
def test_bad_page_fails_clearly_and_keeps_earlier_loads(failure, portal, warehouse, destination, tmp_path):
    portal.collections = family_data(4)
    _load(portal, destination, tmp_path / "p")
    portal.collections["responsables"].append({**portal.collections["responsables"][0], "id": 99,
                                               "updated_at": "2026-03-01T00:00:00Z"})
    setattr(portal, "html_on" if failure == "html_page" else "truncate_on", ("responsables", 1))
    with pytest.raises(SourceError) as err:
        _load(portal, destination, tmp_path / "p")
    assert err.value.source_system == "family"
    assert err.value.locator == "responsables page 1"
    assert portal.token not in str(err.value)
    assert warehouse.scalar("SELECT count(*) FROM raw_family.responsables") == 8


def test_unreachable_portal(portal, warehouse, destination, tmp_path):
    portal.collections = family_data(2)
    _load(portal, destination, tmp_path / "p")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # a port nobody listens on once closed
    with pytest.raises(SourceError) as err:
        run_source(family, destination, "run", pipelines_dir=tmp_path / "p", base_url=f"http://127.0.0.1:{port}",
                   token="t", **FAST)
    assert "cannot reach the family portal" in str(err.value) and str(port) in err.value.locator
    assert warehouse.scalar("SELECT count(*) FROM raw_family.responsables") == 4


@pytest.mark.parametrize("status", [401, 403, 404], ids=["unauthorized", "forbidden", "not_found"])
def test_client_errors_fail_at_once(status, portal, destination, tmp_path):
    portal.collections = family_data(1)
    portal.status_on = {"enfants": status}
    with pytest.raises(SourceError) as err:
        _load(portal, destination, tmp_path / "p")
    assert err.value.locator == "enfants /api/v1/enfants"
    assert f"HTTP {status}" in str(err.value) and portal.token not in str(err.value)
    assert sum("/enfants" in r for r in portal.requests) == 1  # no retry


def test_transient_503_is_retried(portal, warehouse, destination, tmp_path):
    portal.collections = family_data(2)
    portal.transient = {"familles": 2}
    result = _load(portal, destination, tmp_path / "p")
    assert result.count("familles").rows_loaded == 2
    assert sum("/familles" in r for r in portal.requests) == 3


def test_bad_values_are_quarantined_with_page_and_field(portal, warehouse, destination, tmp_path):
    data = family_data(2)
    data["enfants"][1] = {**data["enfants"][1], "date_naissance": "2018-02-31"}
    data["factures"][0] = {**data["factures"][0], "montant": "45,30"}
    portal.collections = data
    result = _load(portal, destination, tmp_path / "p")
    q = {(r["entity"], r["field"], r["reason_code"]) for r in result.quarantine.to_pylist()}
    assert q == {("enfants", "date_naissance", "bad_date"), ("factures", "montant", "bad_decimal")}
    assert all("2018-02-31" not in r["reason"] for r in result.quarantine.to_pylist())
    e = result.count("enfants")
    assert (e.rows_read, e.rows_loaded, e.rows_quarantined) == (2, 1, 1)
    assert warehouse.scalar("SELECT count(*) FROM raw_family.enfants") == 1
