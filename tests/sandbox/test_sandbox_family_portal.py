"""The family portal's REST API, over real HTTP with requests."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from sandbox import FamilyPortal

AUTH = {"Authorization": "Bearer t0ken"}


def _all(portal: FamilyPortal, collection: str, **params: Any) -> tuple[list[dict], int]:
    """Follow links.next to the end; returns the records and the number of pages."""
    url: str | None = f"{portal.api_url}/{collection}"
    records, pages = [], 0
    first = True
    while url:
        r = requests.get(url, headers=AUTH, params=params if first else None, timeout=5)
        r.raise_for_status()
        body = r.json()
        records += body["data"]
        pages += 1
        url = body["links"]["next"]
        first = False
    return records, pages


def _file(portal: FamilyPortal, collection: str) -> list[dict]:
    return json.loads((portal.data_dir / f"{collection}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("collection", ["familles", "responsables", "enfants", "inscriptions", "factures"])
def test_pagination_returns_every_record_once_in_order(portal: FamilyPortal, collection: str):
    expected = _file(portal, collection)
    records, pages = _all(portal, collection, per_page=150)
    assert sorted(r["id"] for r in records) == sorted(r["id"] for r in expected)
    assert [(r["updated_at"], r["id"]) for r in records] == sorted((r["updated_at"], r["id"]) for r in records)
    assert pages == -(-len(expected) // 150)


def test_meta_and_per_page_cap(portal: FamilyPortal):
    body = requests.get(f"{portal.api_url}/responsables", headers=AUTH, params={"per_page": 5000}, timeout=5).json()
    total = len(_file(portal, "responsables"))
    assert body["meta"] == {"page": 1, "per_page": 1000, "total": total}
    assert len(body["data"]) == min(total, 1000)
    last_page = -(-total // 1000)
    last = requests.get(f"{portal.api_url}/responsables", headers=AUTH,
                        params={"per_page": 1000, "page": last_page}, timeout=5).json()
    assert last["links"]["next"] is None


@pytest.mark.parametrize("fmt", ["z", "offset", "date"], ids=["iso-z", "iso-offset", "date-only"])
def test_updated_since_keeps_records_at_or_after(portal: FamilyPortal, fmt: str):
    rows = _file(portal, "enfants")
    stamps = sorted(r["updated_at"] for r in rows)
    cut = stamps[len(stamps) // 2]
    since = {"z": cut, "offset": cut.replace("T", "T").replace("Z", "+00:00"), "date": cut[:10]}[fmt]
    bound = cut if fmt != "date" else cut[:10] + "T00:00:00Z"
    records, _ = _all(portal, "enfants", per_page=100, updated_since=since)
    assert len(records) == sum(s >= bound for s in stamps)
    assert all(r["updated_at"] >= bound for r in records)


def test_next_link_carries_updated_since(portal: FamilyPortal):
    since = "2025-01-01T00:00:00Z"
    body = requests.get(f"{portal.api_url}/factures", headers=AUTH,
                        params={"per_page": 10, "updated_since": since}, timeout=5).json()
    assert "updated_since=2025-01-01T00%3A00%3A00Z" in body["links"]["next"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "t0ken"}],
                         ids=["no-header", "wrong-token", "no-bearer-prefix"])
def test_bad_credentials_get_401_json(portal: FamilyPortal, headers: dict[str, str]):
    r = requests.get(f"{portal.api_url}/familles", headers=headers, timeout=5)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


def test_bad_parameters_get_400(portal: FamilyPortal):
    r = requests.get(f"{portal.api_url}/familles", headers=AUTH, params={"page": "zero"}, timeout=5)
    assert r.status_code == 400 and "error" in r.json()
    assert requests.get(f"{portal.api_url}/nope", headers=AUTH, timeout=5).status_code == 404


def _get(portal: FamilyPortal, page: int = 1) -> requests.Response:
    return requests.get(f"{portal.api_url}/responsables", headers=AUTH, params={"page": page, "per_page": 50},
                        timeout=5)


@pytest.mark.parametrize("kind", ["500", "429", "401", "truncated", "html"])
def test_fault_is_served_once_then_recovers(portal: FamilyPortal, kind: str):
    portal.inject(kind, collection="responsables", retry_after=7)
    r = _get(portal)
    if kind == "500":
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    elif kind == "429":
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    elif kind == "401":
        assert r.status_code == 401 and r.json()["error"]
    elif kind == "truncated":
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
        with pytest.raises(requests.JSONDecodeError):
            r.json()
    else:
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
        assert r.text.lstrip().startswith("<!DOCTYPE html>")
    again = _get(portal)
    assert again.status_code == 200 and len(again.json()["data"]) == 50


def test_reset_fault_drops_the_connection(portal: FamilyPortal):
    portal.inject("reset", collection="responsables")
    with pytest.raises(requests.ConnectionError):
        _get(portal)
    assert _get(portal).status_code == 200


def test_delay_fault_slows_the_answer(portal: FamilyPortal):
    portal.inject("delay", collection="responsables", delay=0.4)
    started = time.perf_counter()
    r = _get(portal)
    assert r.status_code == 200 and time.perf_counter() - started >= 0.4


def test_latency_delays_every_page_but_not_errors(portal: FamilyPortal):
    portal.latency = 0.5
    for page in (1, 2):
        started = time.perf_counter()
        assert _get(portal, page).status_code == 200
        assert time.perf_counter() - started >= 0.5
    started = time.perf_counter()
    assert requests.get(f"{portal.api_url}/responsables", timeout=5).status_code == 401
    assert time.perf_counter() - started < 0.5
    portal.latency = 0.0
    started = time.perf_counter()
    assert _get(portal).status_code == 200
    assert time.perf_counter() - started < 0.5


def test_latency_per_record_grows_with_the_records_on_the_page(portal: FamilyPortal):
    total = len(_all(portal, "responsables")[0])
    last = -(-total // 50)  # the last page holds what is left over
    portal.latency_per_record = 0.4 / 50  # 0.4 s for a full page of 50
    try:
        started = time.perf_counter()
        assert len(_get(portal).json()["data"]) == 50
        full = time.perf_counter() - started
        started = time.perf_counter()
        assert len(_get(portal, last + 1).json()["data"]) == 0  # past the end: no record, no wait
        empty = time.perf_counter() - started
    finally:
        portal.latency_per_record = 0.0
    assert full >= 0.4 and empty < 0.2


def test_fault_targets_a_page_and_a_count(portal: FamilyPortal):
    portal.inject("500", collection="responsables", page=2, count=2)
    assert _get(portal, 1).status_code == 200
    assert _get(portal, 2).status_code == 500
    assert requests.get(f"{portal.api_url}/enfants", headers=AUTH, params={"page": 2}, timeout=5).status_code == 200
    assert _get(portal, 2).status_code == 500
    assert _get(portal, 2).status_code == 200
    assert (("responsables", 2, 500)) in portal.request_log


def test_unknown_fault_is_refused(portal: FamilyPortal):
    with pytest.raises(ValueError):
        portal.inject("teapot")


def test_touch_and_delete_show_up_in_an_incremental_load(portal: FamilyPortal):
    before, _ = _all(portal, "responsables", per_page=1000)
    high_water = max(r["updated_at"] for r in before)
    target = before[0]
    portal.touch("responsables", target["id"], email="nouvelle.adresse@example.org")
    soft = before[1]
    portal.delete("responsables", soft["id"])
    facture = _file(portal, "factures")[0]
    portal.delete("factures", facture["id"])
    changed, _ = _all(portal, "responsables", per_page=1000, updated_since=high_water)
    by_id = {r["id"]: r for r in changed}
    assert by_id[target["id"]]["email"] == "nouvelle.adresse@example.org"
    assert by_id[soft["id"]]["deleted"] is True
    assert all(by_id[i]["updated_at"] > high_water for i in (target["id"], soft["id"]))
    after, _ = _all(portal, "responsables", per_page=1000)
    assert len(after) == len(before)
    factures, _ = _all(portal, "factures", per_page=1000)
    assert facture["id"] not in {f["id"] for f in factures}


def test_portal_serves_on_a_real_port_and_stops(family_dir):
    with FamilyPortal(family_dir, token="x") as p:
        url = p.url
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        assert requests.get(f"{url}/api/v1/familles", headers={"Authorization": "Bearer x"}, timeout=5).ok
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/api/v1/familles", timeout=2)
