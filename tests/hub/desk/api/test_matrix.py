"""The role × endpoint matrix, cell by cell, on DuckDB and PostgreSQL: every demo agent signed in
through the local OpenID Connect provider (real HTTP), every endpoint of the API, the status the
register and the role give (200 / 201 / 401 / 403 / 404), per collectivité: the accueil agent of the
commune reads, the accueil agent of the CCAS does not (the guichet unique's processing covers the
commune), the CCAS's social agent does (its own access rule)."""

from __future__ import annotations

import pytest

CITIZEN = "C-MARIE"
# agent key -> (the purpose they state, the record of Marie's they flag)
AGENTS = {
    None: ("guichet-unique", "family:P1"),
    "accueil": ("guichet-unique", "family:P1"),
    "ecole": ("famille-portail", "family:P1"),
    "finances": ("finance-facturation", "finance:T1"),
    "associations": ("associations-subventions", "associations:R1"),
    "relation": ("crm-relation-usagers", "family:P1"),
    "ccas": ("guichet-unique", "family:P1"),
    "accueil-ccas": ("guichet-unique", "family:P1"),
    "dpo": ("droits-rgpd", "family:P1"),
    "admin": ("guichet-unique", "family:P1"),
}
ENDPOINTS = ("me", "search", "page", "flag", "consultations", "operations")
# expected status per agent, in ENDPOINTS order
EXPECTED = {
    None: (401, 401, 401, 401, 401, 401),
    "accueil": (200, 200, 200, 201, 403, 403),
    "ecole": (200, 200, 200, 201, 403, 403),
    "finances": (200, 200, 200, 201, 403, 403),
    "associations": (200, 200, 200, 201, 403, 403),
    # the CRM's processing covers the CRM's silo: Marie is not in it, so not found for it
    "relation": (200, 200, 404, 404, 403, 403),
    "ccas": (200, 200, 200, 201, 403, 403),
    "accueil-ccas": (200, 403, 403, 403, 403, 403),
    "dpo": (200, 200, 200, 201, 200, 403),
    "admin": (200, 200, 200, 201, 403, 200),
}
CELLS = [(agent, endpoint, EXPECTED[agent][i]) for agent in EXPECTED for i, endpoint in enumerate(ENDPOINTS)]


def call(client, endpoint: str, purpose: str, record_key: str):
    base = "/api/v1"
    if endpoint == "me":
        return client.get(f"{base}/me")
    if endpoint == "search":
        return client.get(f"{base}/citizens", params={"q": "dupont", "purpose": purpose})
    if endpoint == "page":
        return client.get(f"{base}/citizens/{CITIZEN}", params={"purpose": purpose})
    if endpoint == "flag":
        return client.post(f"{base}/citizens/{CITIZEN}/signalements",
                           json={"purpose": purpose, "record_key": record_key, "reason": "deux personnes ?"})
    if endpoint == "consultations":
        return client.get(f"{base}/citizens/{CITIZEN}/consultations")
    return client.get(f"{base}/operations")


@pytest.mark.parametrize("agent, endpoint, status", CELLS,
                         ids=[f"{a or 'anonyme'}-{e}-{s}" for a, e, s in CELLS])
def test_cell(client_for, agent, endpoint, status):
    purpose, record_key = AGENTS[agent]
    answer = call(client_for(agent), endpoint, purpose, record_key)
    assert answer.status_code == status, answer.text
    body = answer.json()
    if status >= 400:
        # a French message and a code; never the stack or the value typed
        assert set(body) >= {"detail", "code"} and "Traceback" not in answer.text
    elif endpoint == "page":
        assert body["citizen_id"] == CITIZEN and body["purpose"]["id"] == purpose


@pytest.mark.parametrize("agent, purpose", [("ecole", "finance-facturation"), ("finances", "guichet-unique"),
                                             ("accueil", "n'importe quoi"), ("ccas", "droits-rgpd")],
                         ids=["school-for-finance", "finance-for-guichet", "free-text", "ccas-for-dpo"])
def test_a_purpose_not_granted_is_refused_with_the_valid_ones(client_for, agent, purpose):
    answer = client_for(agent).get(f"/api/v1/citizens/{CITIZEN}", params={"purpose": purpose})
    assert answer.status_code == 403
    body = answer.json()
    assert body["code"] == "finalite_refusee"
    me = client_for(agent).get("/api/v1/me").json()
    assert [p["id"] for p in body["valid_purposes"]] == [p["id"] for p in me["purposes"]]
    assert purpose not in answer.text  # the refused text is not echoed


def test_the_same_service_reads_in_one_collectivite_and_not_in_another(client_for):
    commune = client_for("accueil").get("/api/v1/me").json()
    ccas = client_for("accueil-ccas").get("/api/v1/me").json()
    assert commune["service"] == ccas["service"] == "accueil-usager"
    assert "guichet-unique" in [p["id"] for p in commune["purposes"]]
    assert ccas["purposes"] == [] and not ccas["searchable"] and ccas["readable"] == []
    answer = client_for("accueil-ccas").get(f"/api/v1/citizens/{CITIZEN}")
    assert answer.status_code == 403 and answer.json()["code"] == "aucune_finalite"
