"""The Salesforce org simulator over real HTTP: token flow, SOQL query/queryAll, batches, errors, faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox import Observations
from sandbox.salesforce import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SalesforceOrg,
    parse_soql,
    salesforce_objects,
    write_salesforce,
)

API = "/services/data/v62.0"


@pytest.fixture(scope="module")
def objects(observations: Observations) -> dict[str, list[dict]]:
    return salesforce_objects(observations)


@pytest.fixture(scope="module")
def org_dir(objects, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("salesforce")
    write_salesforce(folder, objects)
    return folder


@pytest.fixture
def org(org_dir: Path) -> Iterator[SalesforceOrg]:
    with SalesforceOrg(org_dir, batch_size=100, username="api@ville.fr", password="pw") as o:
        yield o


def _token(org: SalesforceOrg, **form: str) -> requests.Response:
    data = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET,
            **form}
    return requests.post(f"{org.url}/services/oauth2/token", data=data, timeout=5)


def _auth(org: SalesforceOrg) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(org).json()['access_token']}"}


def _all(org: SalesforceOrg, soql: str, resource: str = "query") -> tuple[list[dict], int, int]:
    """Follow nextRecordsUrl until done: records, batches, totalSize."""
    headers = _auth(org)
    body = requests.get(f"{org.url}{API}/{resource}", params={"q": soql}, headers=headers, timeout=5).json()
    records, batches, total = body["records"], 1, body["totalSize"]
    while not body["done"]:
        body = requests.get(org.url + body["nextRecordsUrl"], headers=headers, timeout=5).json()
        records += body["records"]
        batches += 1
    return records, batches, total


def test_ids_are_18_char_case_safe_and_references_resolve(objects):
    ids = [r["Id"] for rows in objects.values() for r in rows]
    assert len(ids) == len(set(ids)) and all(len(i) == 18 for i in ids)
    assert {i[:3] for i in (r["Id"] for r in objects["Contact"])} == {"003"}
    contacts = {c["Id"] for c in objects["Contact"]}
    accounts = {a["Id"] for a in objects["Account"]}
    assert all(c["AccountId"] in accounts for c in objects["Contact"])
    assert all(k["ContactId"] in contacts for k in objects["Case"])
    assert {a["Type"] for a in objects["Account"]} == {"Household", "Organization"}
    closed = [k for k in objects["Case"] if k["Status"] == "Closed"]
    assert closed and all(k["ClosedDate"] >= k["CreatedDate"] for k in closed)


@pytest.mark.parametrize("grant", ["client_credentials", "password"])
def test_token_flow_gives_a_bearer_token_and_the_instance_url(org, grant):
    extra = {"username": "api@ville.fr", "password": "pw"} if grant == "password" else {}
    body = _token(org, grant_type=grant, **extra).json()
    assert body["token_type"] == "Bearer" and body["instance_url"] == org.url and body["access_token"]


@pytest.mark.parametrize(("form", "error"), [
    ({"client_secret": "nope"}, "invalid_client"),
    ({"grant_type": "password", "username": "api@ville.fr", "password": "nope"}, "invalid_grant"),
    ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
], ids=["bad-secret", "bad-password", "unsupported-grant"])
def test_token_errors(org, form, error):
    r = _token(org, **form)
    assert r.status_code == 400 and r.json()["error"] == error


def test_query_batches_follow_next_records_url_until_done(org, objects):
    records, batches, total = _all(org, "SELECT Id, LastName, SystemModstamp FROM Contact ORDER BY SystemModstamp")
    live = [c for c in objects["Contact"] if not c["IsDeleted"]]
    assert total == len(records) == len(live) and batches == -(-len(live) // 100)
    assert sorted(r["Id"] for r in records) == sorted(c["Id"] for c in live)
    stamps = [r["SystemModstamp"] for r in records]
    assert stamps == sorted(stamps)
    assert set(records[0]) == {"attributes", "Id", "LastName", "SystemModstamp"}
    assert records[0]["attributes"] == {"type": "Contact", "url": f"{API}/sobjects/Contact/{records[0]['Id']}"}


def test_query_all_adds_deleted_rows(org, objects):
    live, _, _ = _all(org, "SELECT Id FROM Contact")
    every, _, _ = _all(org, "SELECT Id, IsDeleted FROM Contact", resource="queryAll")
    deleted = sum(c["IsDeleted"] for c in objects["Contact"])
    assert deleted > 0 and len(every) == len(live) + deleted
    assert sum(r["IsDeleted"] for r in every) == deleted


@pytest.mark.parametrize("literal", ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00+01:00",
                                     "2026-01-01T00:00:00.000+0000"], ids=["z", "offset", "millis"])
def test_where_system_modstamp_filters(org, objects, literal):
    records, _, _ = _all(org, f"SELECT Id FROM Case WHERE SystemModstamp > {literal}")
    cut = "2026-01-01T00:00:00.000"
    expected = [k for k in objects["Case"] if not k["IsDeleted"] and k["SystemModstamp"][:23] > cut]
    assert 0 < len(records) == len(expected)


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Id, Nickname FROM Contact", "INVALID_FIELD"),
    ("SELECT Id FROM Opportunity", "INVALID_TYPE"),
    ("DELETE FROM Contact", "MALFORMED_QUERY"),
], ids=["unknown-field", "unknown-object", "not-a-select"])
def test_refused_queries_answer_400_with_the_error_code(org, soql, code):
    r = requests.get(f"{org.url}{API}/query", params={"q": soql}, headers=_auth(org), timeout=5)
    assert r.status_code == 400 and r.json()[0]["errorCode"] == code


def test_soql_parser_reads_the_connector_shape():
    spec = parse_soql("SELECT Id, FirstName FROM contact WHERE SystemModstamp >= 2026-01-01T00:00:00Z "
                      "AND IsDeleted = false ORDER BY SystemModstamp, Id DESC LIMIT 10")
    assert spec["object"] == "Contact" and spec["fields"] == ["Id", "FirstName"]
    assert spec["where"] == [("SystemModstamp", ">=", "2026-01-01T00:00:00.000"), ("IsDeleted", "=", False)]
    assert spec["order"] == [("SystemModstamp", False), ("Id", True)] and spec["limit"] == 10


@pytest.mark.parametrize("header", [{}, {"Authorization": "Bearer not-a-token"}], ids=["none", "invalid"])
def test_missing_or_expired_session_gets_401_invalid_session_id(org, header):
    r = requests.get(f"{org.url}{API}/query", params={"q": "SELECT Id FROM Contact"}, headers=header, timeout=5)
    assert r.status_code == 401
    assert r.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_expire_sessions_invalidates_issued_tokens(org):
    headers = _auth(org)
    org.expire_sessions()
    r = requests.get(f"{org.url}{API}/query", params={"q": "SELECT Id FROM Account"}, headers=headers, timeout=5)
    assert r.status_code == 401


def test_touch_delete_add_move_system_modstamp(org):
    before, _, _ = _all(org, "SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp")
    latest = before[-1]["SystemModstamp"][:19] + "Z"
    org.touch("Contact", before[0]["Id"], Email="nouvelle@example.org")
    org.delete("Contact", before[1]["Id"])
    new = org.add("Contact", FirstName="Anne", LastName="Neuve")
    changed, _, _ = _all(org, f"SELECT Id, Email, IsDeleted FROM Contact WHERE SystemModstamp > {latest}",
                         resource="queryAll")
    by_id = {r["Id"]: r for r in changed}
    assert set(by_id) == {before[0]["Id"], before[1]["Id"], new["Id"]}
    assert by_id[before[0]["Id"]]["Email"] == "nouvelle@example.org" and by_id[before[1]["Id"]]["IsDeleted"]
    live, _, _ = _all(org, "SELECT Id FROM Contact")
    assert before[1]["Id"] not in {r["Id"] for r in live}


@pytest.mark.parametrize(("kind", "status"), [("500", 500), ("429", 429), ("401", 401), ("html", 200),
                                              ("truncated", 200)])
def test_injected_faults(org, kind, status):
    headers = _auth(org)
    org.inject(kind, collection="Contact", page=1, retry_after=7)
    r = requests.get(f"{org.url}{API}/query", params={"q": "SELECT Id FROM Contact"}, headers=headers, timeout=5)
    assert r.status_code == status
    if kind == "429":
        assert r.headers["Retry-After"] == "7" and r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    if kind in ("html", "truncated"):
        with pytest.raises(ValueError):
            r.json()
    again = requests.get(f"{org.url}{API}/query", params={"q": "SELECT Id FROM Contact"}, headers=headers, timeout=5)
    assert again.status_code == 200 and again.json()["records"]  # one fault, then normal service


def test_reset_fault_resets_the_connection(org):
    headers = _auth(org)
    org.inject("reset", collection="Account")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{org.url}{API}/query", params={"q": "SELECT Id FROM Account"}, headers=headers, timeout=5)
