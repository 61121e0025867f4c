"""The ServiceNow instance simulator over real HTTP: Table API paging, encoded queries, auth, errors, faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox import Observations
from sandbox.servicenow import DEFAULT_PASSWORD, DEFAULT_USER, ServiceNowInstance, servicenow_tables, write_servicenow

AUTH = (DEFAULT_USER, DEFAULT_PASSWORD)


@pytest.fixture(scope="module")
def tables(observations: Observations) -> dict[str, list[dict]]:
    return servicenow_tables(observations)


@pytest.fixture(scope="module")
def instance_dir(tables, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("servicenow")
    write_servicenow(folder, tables)
    return folder


@pytest.fixture
def instance(instance_dir: Path) -> Iterator[ServiceNowInstance]:
    with ServiceNowInstance(instance_dir, client_id="cid", client_secret="csecret") as i:
        yield i


def _get(instance: ServiceNowInstance, table: str, **params: Any) -> requests.Response:
    return requests.get(f"{instance.url}/api/now/table/{table}", params=params, auth=AUTH, timeout=5)


def _all(instance: ServiceNowInstance, table: str, **params: Any) -> tuple[list[dict], int, int]:
    """Follow Link rel=next to the end: records, pages, X-Total-Count."""
    r = _get(instance, table, **params)
    records, pages, total = r.json()["result"], 1, int(r.headers["X-Total-Count"])
    while "next" in r.links:
        r = requests.get(r.links["next"]["url"], auth=AUTH, timeout=5)
        records += r.json()["result"]
        pages += 1
    return records, pages, total


def test_values_are_strings_and_callers_resolve(tables):
    users = {u["sys_id"] for u in tables["sys_user"]}
    assert all(isinstance(v, str) for rows in tables.values() for r in rows for v in r.values())
    assert all(len(u) == 32 for u in users)
    assert all(i["caller_id"] in users for i in tables["incident"])
    numbers = [i["number"] for i in tables["incident"]]
    assert numbers[0] == "INC0010001" and len(set(numbers)) == len(numbers)
    closed = [i for i in tables["incident"] if i["state"] == "7"]
    assert closed and all(i["closed_at"] >= i["resolved_at"] >= i["opened_at"] for i in closed)


def test_link_header_pages_return_every_record_once_in_order(instance, tables):
    records, pages, total = _all(instance, "sys_user", sysparm_limit=50, sysparm_query="ORDERBYsys_updated_on")
    assert total == len(records) == len(tables["sys_user"]) and pages == -(-total // 50)
    assert sorted(r["sys_id"] for r in records) == sorted(u["sys_id"] for u in tables["sys_user"])
    stamps = [r["sys_updated_on"] for r in records]
    assert stamps == sorted(stamps)


def test_last_page_has_no_next_and_links_first_and_last(instance, tables):
    total = len(tables["incident"])
    last = (total - 1) // 100 * 100
    r = _get(instance, "incident", sysparm_limit=100, sysparm_offset=last)
    assert set(r.links) == {"first", "prev", "last"}
    assert "sysparm_offset=0" in r.links["first"]["url"] and len(r.json()["result"]) == total - last


def test_reference_fields_are_link_and_value(instance, tables):
    row = _get(instance, "incident", sysparm_limit=1).json()["result"][0]
    assert row["caller_id"] == {"link": f"{instance.url}/api/now/table/sys_user/{row['caller_id']['value']}",
                                "value": row["caller_id"]["value"]}
    plain = _get(instance, "incident", sysparm_limit=1, sysparm_exclude_reference_link="true").json()["result"][0]
    assert plain["caller_id"] == row["caller_id"]["value"]


@pytest.mark.parametrize("cond", ["sys_updated_on>=2026-01-01 00:00:00",
                                  "sys_updated_on>=javascript:gs.dateGenerate('2026-01-01','00:00:00')"],
                         ids=["plain", "date-generate"])
def test_updated_on_conditions(instance, tables, cond):
    records, _, total = _all(instance, "incident", sysparm_query=cond + "^ORDERBYsys_updated_on", sysparm_limit=500)
    expected = [i for i in tables["incident"] if i["sys_updated_on"] >= "2026-01-01 00:00:00"]
    assert 0 < total == len(records) == len(expected)


def test_sysparm_fields_selects_columns(instance):
    row = _get(instance, "sys_user", sysparm_limit=1, sysparm_fields="sys_id,last_name").json()["result"][0]
    assert set(row) == {"sys_id", "last_name"}


@pytest.mark.parametrize(("table", "params", "status", "message"), [
    ("sys_user", {"sysparm_query": "nickname=x"}, 400, "Invalid query"),
    ("cmdb_ci", {}, 400, "Invalid table cmdb_ci"),
    ("sys_user", {"sysparm_limit": "-1"}, 400, "Invalid sysparm_limit or sysparm_offset"),
], ids=["unknown-field", "unknown-table", "bad-limit"])
def test_errors_have_the_table_api_shape(instance, table, params, status, message):
    r = _get(instance, table, **params)
    assert r.status_code == status and r.json()["status"] == "failure"
    assert r.json()["error"]["message"] == message


@pytest.mark.parametrize("auth", [None, ("sandbox.hub", "wrong")], ids=["none", "wrong-password"])
def test_bad_credentials_get_401(instance, auth):
    r = requests.get(f"{instance.url}/api/now/table/sys_user", auth=auth, timeout=5)
    assert r.status_code == 401 and r.json()["error"]["message"] == "User Not Authenticated"


def test_oauth_password_grant_gives_a_bearer_token(instance):
    form = {"grant_type": "password", "client_id": "cid", "client_secret": "csecret", "username": DEFAULT_USER,
            "password": DEFAULT_PASSWORD}
    token = requests.post(f"{instance.url}/oauth_token.do", data=form, timeout=5).json()["access_token"]
    r = requests.get(f"{instance.url}/api/now/table/sys_user", params={"sysparm_limit": 1},
                     headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert r.status_code == 200 and len(r.json()["result"]) == 1
    bad = requests.post(f"{instance.url}/oauth_token.do", data={**form, "client_secret": "x"}, timeout=5)
    assert bad.status_code == 401


def test_touch_and_delete_are_seen_incrementally(instance):
    users = instance.records("sys_user")
    latest = max(u["sys_updated_on"] for u in users)
    instance.touch("sys_user", users[0]["sys_id"], city="Bordeaux")
    instance.delete("sys_user", users[1]["sys_id"])
    changed, _, _ = _all(instance, "sys_user", sysparm_query=f"sys_updated_on>{latest}")
    assert [(r["sys_id"], r["city"]) for r in changed] == [(users[0]["sys_id"], "Bordeaux")]
    audit, _, _ = _all(instance, "sys_audit_delete", sysparm_query="tablenameINsys_user,incident")
    assert [(a["tablename"], a["documentkey"]) for a in audit] == [("sys_user", users[1]["sys_id"])]
    assert users[1]["sys_id"] not in {r["sys_id"] for r in _all(instance, "sys_user")[0]}


@pytest.mark.parametrize(("kind", "status"), [("500", 500), ("429", 429), ("401", 401), ("html", 200),
                                              ("truncated", 200)])
def test_injected_faults(instance, kind, status):
    instance.inject(kind, collection="incident", page=2, retry_after=3)
    r = _get(instance, "incident", sysparm_limit=10, sysparm_offset=10)
    assert r.status_code == status
    if kind == "429":
        assert r.headers["Retry-After"] == "3"
    if kind in ("html", "truncated"):
        with pytest.raises(ValueError):
            r.json()
    assert _get(instance, "incident", sysparm_limit=10, sysparm_offset=10).status_code == 200


def test_reset_fault_resets_the_connection(instance):
    instance.inject("reset", collection="sys_user")
    with pytest.raises(requests.ConnectionError):
        _get(instance, "sys_user", sysparm_limit=5)
