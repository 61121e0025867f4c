"""What the API shows and what it logs: one access-log row per citizen read, with the agent, the
collectivité, the service, the purpose and the fields shown; a school agent never receives a finance
field; the foyer's bill on the co-parent; a silo's differing birth date beside the birth date; a
retired id; a flag in the review queue; the DPO's "who looked at me"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.register import load_register
from tests.hub.desk.cases import ALIAS, CITIZENS
from warehouse.access_log import opened, verify
from warehouse.engine import Warehouse

API = "/api/v1"


def log_rows(url: str) -> list[dict[str, Any]]:
    """The access log's rows, wherever the log lives (on DuckDB, its own file)."""
    with Warehouse(url) as wh, opened(wh) as log:
        if not log.table_exists("ops", "access_log"):
            return []
        return log.dicts("SELECT seq, reader, collectivite, service, purpose, channel, operation, citizen_id, fields "
                         "FROM ops.access_log ORDER BY seq")


def walk(value: Any, path: str = "$") -> Iterator[tuple[str, str | None, Any]]:
    """Every (path, key, value) of a JSON document, recursively."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}", k, v
            yield from walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield f"{path}[{i}]", None, v
            yield from walk(v, f"{path}[{i}]")


@pytest.mark.parametrize("desk_url", ["duckdb", "postgres"], indirect=True)
def test_a_thousand_scripted_reads_write_a_thousand_log_rows(client_for, desk_url):
    register = load_register()
    script = [("accueil", "guichet-unique"), ("ecole", "famille-portail"), ("finances", "finance-facturation"),
              ("ccas", "guichet-unique"), ("dpo", "droits-rgpd")]
    readable = {"accueil": list(CITIZENS), "ecole": list(CITIZENS), "finances": ["C-MARIE", "C-JEAN"],
                "ccas": list(CITIZENS), "dpo": list(CITIZENS)}
    before = log_rows(desk_url)
    expected = []
    for n in range(1000):
        agent, purpose = script[n % len(script)]
        citizen = readable[agent][(n // len(script)) % len(readable[agent])]
        answer = client_for(agent).get(f"{API}/citizens/{citizen.lower()}", params={"purpose": purpose})
        assert answer.status_code == 200, answer.text
        expected.append((agent, citizen, register.processing(purpose).purpose, answer.json()["fields_shown"]))
    # refused reads write nothing
    assert client_for("ecole").get(f"{API}/citizens/C-MARIE", params={"purpose": "guichet-unique"}).status_code == 403
    assert client_for("finances").get(f"{API}/citizens/C-LEA",
                                      params={"purpose": "finance-facturation"}).status_code == 404
    assert client_for(None).get(f"{API}/citizens/C-MARIE").status_code == 401
    rows = log_rows(desk_url)[len(before):]
    assert len(rows) == 1000
    me = {k: client_for(k).get(f"{API}/me").json() for k in readable}
    for row, (agent, citizen, purpose, fields) in zip(rows, expected, strict=True):
        assert (row["reader"], row["collectivite"], row["service"]) == (
            me[agent]["login"], me[agent]["collectivite"], me[agent]["service"])
        assert (row["citizen_id"], row["purpose"], row["channel"], row["operation"]) == (citizen, purpose, "api",
                                                                                           "read")
        assert json.loads(row["fields"]) == fields
    with Warehouse(desk_url) as wh:
        assert verify(wh) >= 1000


@pytest.mark.parametrize("desk_url", ["duckdb"], indirect=True)
def test_a_search_logs_one_row_per_citizen_listed_with_the_fields_shown(client_for, desk_url):
    before = len(log_rows(desk_url))
    answer = client_for("accueil").get(f"{API}/citizens", params={"q": "dupont", "purpose": "guichet-unique"})
    assert answer.status_code == 200
    hits = answer.json()["hits"]
    assert sorted(h["citizen_id"] for h in hits) == sorted(CITIZENS)
    rows = log_rows(desk_url)[before:]
    assert sorted(r["citizen_id"] for r in rows) == sorted(CITIZENS)
    shown = {k for h in hits for k, v in h.items() if v is not None and k not in ("score",)}
    assert {f.removeprefix("citizen.") for f in json.loads(rows[0]["fields"])} >= shown
    # a search finding nobody logs nothing
    before = len(log_rows(desk_url))
    empty = client_for("accueil").get(f"{API}/citizens", params={"q": "zzyzxw", "purpose": "guichet-unique"})
    assert empty.status_code == 200 and empty.json()["hits"] == []
    assert len(log_rows(desk_url)) == before


@pytest.mark.parametrize("desk_url", ["duckdb"], indirect=True)
def test_a_search_too_vague_to_count_tells_the_client_its_total_is_a_minimum(client_for, desk_url, monkeypatch):
    import warehouse.search as ws

    def found() -> dict[str, Any]:
        answer = client_for("accueil").get(f"{API}/citizens", params={"q": "dupont", "purpose": "guichet-unique"})
        assert answer.status_code == 200
        return answer.json()

    assert found()["capped"] is False
    monkeypatch.setattr(ws, "MAX_CANDIDATES", 2)  # (DuckDB reads the bound at each search)
    vague = found()
    assert vague["capped"] is True and vague["total"] >= 2 and len(vague["hits"]) == 2


def _finance_only() -> tuple[set[str], set[str], set[str]]:
    """(attributes, interaction kinds, silos) the finance service's processings open and the school
    service's do not: from the register, not written by hand."""
    register = load_register()

    def grants(service: str) -> tuple[set[str], set[str], set[str]]:
        pairs = [(p, a) for p, a in register.access_for(service, "commune")
                 if a.search or a.read or a.interaction_kinds]
        return ({x for _, a in pairs for x in a.read}, {k for _, a in pairs for k in a.interaction_kinds},
                {p.source_system for p, _ in pairs if p.source_system})

    fa, fk, fs = grants("facturation")
    sa, sk, ss = grants("inscription-scolaire")
    return fa - sa, fk - sk, fs - ss


@pytest.mark.parametrize("desk_url", ["duckdb", "postgres"], indirect=True)
def test_a_school_agent_never_receives_a_finance_field(client_for, desk_url):
    attributes, kinds, systems = _finance_only()
    assert kinds == {"paiement"} and systems == {"finance"}  # the register as shipped; the walk uses the sets
    school = client_for("ecole")
    responses = [school.get(f"{API}/me")]
    for q in ("dupont", "marie", "12/04/1982", "04/12/1982", "69003", "lyon", "C-MARIE", "jean dupont"):
        responses.append(school.get(f"{API}/citizens", params={"q": q, "purpose": "famille-portail"}))
    for citizen in (*CITIZENS, ALIAS[0]):
        responses.append(school.get(f"{API}/citizens/{citizen}", params={"purpose": "famille-portail"}))
    responses += [school.get(f"{API}/citizens/C-MARIE", params={"purpose": "finance-facturation"}),
                  school.get(f"{API}/citizens/C-MARIE/consultations"), school.get(f"{API}/operations"),
                  school.post(f"{API}/citizens/C-MARIE/signalements",
                              json={"purpose": "famille-portail", "record_key": "family:P1", "reason": "doute"})]
    assert {r.status_code for r in responses} <= {200, 201, 400, 403, 404}
    assert sum(r.status_code == 200 for r in responses) >= 10
    with Warehouse(desk_url) as wh:
        finance_amounts = {str(a) for (a,) in wh.rows(
            "SELECT amount FROM core.interaction WHERE source_system = 'finance'")}
    for r in responses:
        for path, key, value in walk(r.json()):
            assert key not in attributes and key not in kinds and key not in systems, path
            if isinstance(value, str):
                assert value not in kinds and value not in systems, (path, value)
                assert not any(value.startswith(f"{s}:") for s in systems), (path, value)
                assert value not in finance_amounts, (path, value)
    # the school agent still sees the family portal's side of the same people
    marie = school.get(f"{API}/citizens/C-MARIE", params={"purpose": "famille-portail"}).json()
    assert {r["source_system"] for r in marie["records"]} == {"family"}


@pytest.mark.parametrize("desk_url", ["duckdb"], indirect=True)
def test_the_foyers_bill_shows_on_the_co_parent(client_for):
    jean = client_for("finances").get(f"{API}/citizens/C-JEAN", params={"purpose": "finance-facturation"}).json()
    # F100 is addressed to Marie; Jean heads the same foyer
    bill = next(e for e in jean["timeline"] if e["interaction_key"] == "finance:F100")
    assert bill["foyer"] is not None and bill["overdue"] is True and bill["amount"] == "45.50"
    assert jean["unpaid"] == {"count": 1, "totals": {"EUR": "45.50"}, "invoices": ["finance:F100"]}
    # the accueil's purpose shows no invoices at all (not among the guichet unique's kinds)
    accueil = client_for("accueil").get(f"{API}/citizens/C-JEAN", params={"purpose": "guichet-unique"}).json()
    assert [e for e in accueil["timeline"] if e["kind"] in ("facture", "paiement")] == []
    assert accueil["unpaid"]["count"] == 0


@pytest.mark.parametrize("desk_url", ["duckdb"], indirect=True)
def test_a_differing_birth_date_shows_beside_the_birth_date_with_deadlines(client_for):
    marie = client_for("accueil").get(f"{API}/citizens/C-MARIE", params={"purpose": "guichet-unique"}).json()
    born = next(a for a in marie["identity"] if a["attribute"] == "birth_date")
    assert born["value"] == "1982-12-04" and born["source_system"] == "family"
    assert {(d["source_system"], d["value"]) for d in born["discrepancies"]} == {
        ("finance", "1982-04-12"), ("associations", "1982-04-12")}
    assert all(a["discrepancies"] == [] for a in marie["identity"] if a["attribute"] != "birth_date")
    # the pending request past its legal deadline, flagged; the subsidy's silence means rejection
    d3 = next(e for e in marie["timeline"] if e["interaction_key"] == "family:D3")
    assert d3["pending"] and d3["overdue"] and d3["silence"] == "acceptation"
    assert marie["deadlines"][0] == "family:D3"
    linked = next(r for r in marie["records"] if r["record_key"] == "family:P1")
    assert linked["linked_via"] == "finance:T1" and linked["explanation"] == {"first_name": 9.1, "birth_date": 3.4}
    # the CCAS's social agent reads fewer attributes for the same purpose: the rest is absent
    ccas = client_for("ccas").get(f"{API}/citizens/C-MARIE", params={"purpose": "guichet-unique"}).json()
    assert {a["attribute"] for a in ccas["identity"]} == {"given_names", "usage_name", "birth_date", "phone",
                                                         "address_line", "postcode", "city"}
    assert all(set(r["attributes"]) <= {a["attribute"] for a in ccas["identity"]} for r in ccas["records"])


@pytest.mark.parametrize("desk_url", ["duckdb"], indirect=True)
@pytest.mark.parametrize("typed", ["C-ANCIEN", " c-ancien ", "c - ANCIEN"], ids=["as-issued", "spaces-lower", "inner"])
def test_a_retired_id_in_any_case_leads_to_the_current_one(client_for, typed):
    answer = client_for("accueil").get(f"{API}/citizens/{typed}", params={"purpose": "guichet-unique"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["citizen_id"] == ALIAS[1]


@pytest.mark.parametrize("desk_url", ["duckdb"], indirect=True)
def test_a_flag_lands_in_the_review_queue_and_the_dpo_sees_who_looked(client_for, desk_url):
    answer = client_for("finances").post(f"{API}/citizens/C-JEAN/signalements", json={
        "purpose": "finance-facturation", "record_key": "finance:T2", "reason": "homonyme probable"})
    assert answer.status_code == 201, answer.text
    queue_id = answer.json()["queue_id"]
    from warehouse.decisions import review_queue

    with Warehouse(desk_url) as wh:
        entry = next(q for q in review_queue(wh) if q["queue_id"] == queue_id)
    assert {entry["record_key_l"], entry["record_key_r"]} == {"finance:T2", "family:P2"}
    assert entry["citizen_id_l"] == entry["citizen_id_r"] == "C-JEAN"
    flagged = json.loads(entry["explanation"])["signalement"]
    assert flagged["motif"] == "homonyme probable" and "sophie.legoff" in flagged["par"]
    # a record of another citizen, or one the purpose's silo does not hold, cannot be flagged
    assert client_for("finances").post(f"{API}/citizens/C-JEAN/signalements", json={
        "purpose": "finance-facturation", "record_key": "finance:T1", "reason": "x"}).status_code == 404
    assert client_for("finances").post(f"{API}/citizens/C-JEAN/signalements", json={
        "purpose": "finance-facturation", "record_key": "family:P2", "reason": "x"}).status_code == 404
    # who looked at Jean: the DPO sees the flag (an update) and the reads, with service and purpose
    seen = client_for("dpo").get(f"{API}/citizens/C-JEAN/consultations").json()
    services = {(c["service"], c["operation"]) for c in seen["consultations"]}
    assert ("facturation", "update") in services
    assert all("homonyme" not in json.dumps(c) for c in seen["consultations"])  # the reason is not logged
    assert seen["total"] >= len(seen["consultations"]) >= 1


def test_a_refused_or_unknown_read_gives_its_connection_back_to_the_pool(client_for, desk_app):
    """A 400 (an over-long query), a 403 (a purpose not granted) and a 404 are answers, not failures:
    the request's connection goes back to the pool and the next request reuses it."""
    accueil, guichet = client_for("accueil"), {"purpose": "guichet-unique"}
    assert accueil.get(f"{API}/citizens", params={"q": "dupont", **guichet}).status_code == 200
    pool = desk_app.state.desk.pool
    idle = list(pool._idle.queue)
    assert idle, "the first read left its connection in the pool"
    for path, params, status in ((f"{API}/citizens", {"q": "x " * 13, **guichet}, 400),
                                 (f"{API}/citizens", {"q": "dupont", "purpose": "droits-rgpd"}, 403),
                                 (f"{API}/citizens/C-NOBODY", guichet, 404)):
        answer = accueil.get(path, params=params)
        assert answer.status_code == status, answer.text
        assert list(pool._idle.queue) == idle, (path, status)
    assert accueil.get(f"{API}/citizens", params={"q": "dupont", **guichet}).status_code == 200
    assert list(pool._idle.queue) == idle


@pytest.mark.parametrize("desk_url", ["duckdb"], indirect=True)
def test_the_desk_loads_the_release_s_search_index_when_it_starts(desk_url):
    """On DuckDB the first search of a release loads its index (3.4 s at 1M people): the desk loads it
    as it starts, in the background, into a pooled reader that keeps it for the searches to come."""
    import time

    from fastapi.testclient import TestClient

    from hub.desk.app import create_app

    app = create_app(warehouse_url=desk_url)
    with TestClient(app):
        pool = app.state.desk.pool
        deadline = time.monotonic() + 60
        while not pool._idle.queue and time.monotonic() < deadline:
            time.sleep(0.05)
        wh = pool.get()
        try:
            index = wh.shared("search_memory_index", lambda: pytest.fail("the index was not loaded ahead"))
            assert index is not None and len(index.term_id) > 0
        finally:
            pool.put(wh, healthy=True)
