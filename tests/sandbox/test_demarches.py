"""The Démarches simplifiées silo: seeding from the commune, and its GraphQL API over real HTTP."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.demarches import (
    DATA_FILE,
    DEMARCHES,
    MAX_PAGE_SIZE,
    STATES,
    DemarchesData,
    DemarchesServer,
    demarches_data,
    parse_iso,
    write_demarches,
)
from sandbox.observations import REFERENCE_TIME, observe
from sandbox.population import ascii_fold, generate_population

TOKEN = "dem-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CRECHE, PARKING, GRANT = (d.number for d in DEMARCHES)

PAGE_QUERY = """query page($n: Int!, $first: Int, $after: String, $since: ISO8601DateTime, $order: Order) {
  demarche(number: $n) {
    dossiers(first: $first, after: $after, updatedSince: $since, order: $order) {
      pageInfo { hasNextPage endCursor }
      nodes { number dateDepot dateDerniereModification }
    }
  }
}"""

DELETED_QUERY = """query gone($n: Int!, $since: ISO8601DateTime) {
  demarche(number: $n) { deletedDossiers(deletedSince: $since) { nodes { id number state reason dateSupression } } }
}"""


@pytest.fixture(scope="module")
def data(population, observations) -> DemarchesData:
    return demarches_data(population, observations)


@pytest.fixture(scope="module")
def data_dir(data: DemarchesData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demarches")
    write_demarches(folder, data)
    return folder


@pytest.fixture
def api(data_dir: Path):
    """A fresh server per test (touch/delete/faults never leak between tests)."""
    with DemarchesServer(data_dir, token=TOKEN) as s:
        yield s


def _post(api: DemarchesServer, query: str, variables: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None, **extra: Any) -> requests.Response:
    return requests.post(api.endpoint, json={"query": query, "variables": variables or {}, **extra},
                         headers=AUTH if headers is None else headers, timeout=5)


def _all(api: DemarchesServer, number: int, first: int = 100, **variables: Any) -> tuple[list[dict], int]:
    """Follow endCursor while hasNextPage; returns the nodes and the number of pages."""
    nodes: list[dict] = []
    after, pages = None, 0
    while True:
        r = _post(api, PAGE_QUERY, {"n": number, "first": first, "after": after, **variables})
        r.raise_for_status()
        conn = r.json()["data"]["demarche"]["dossiers"]
        nodes += conn["nodes"]
        pages += 1
        if not conn["pageInfo"]["hasNextPage"]:
            return nodes, pages
        after = conn["pageInfo"]["endCursor"]


def _dossiers(data: DemarchesData) -> list[dict[str, Any]]:
    return [d for dm in data.demarches for d in dm["dossiers"]]


# ---------------------------------------------------------------------------- seeding


def test_same_seed_same_file_other_seed_differs(data: DemarchesData, data_dir: Path, tmp_path: Path, population,
                                                observations):
    write_demarches(tmp_path / "again", demarches_data(population, observations))
    assert (tmp_path / "again" / DATA_FILE).read_bytes() == (data_dir / DATA_FILE).read_bytes()
    other_pop = generate_population(2_000, 8)
    write_demarches(tmp_path / "other", demarches_data(other_pop, observe(other_pop, 8)))
    assert (tmp_path / "other" / DATA_FILE).read_bytes() != (data_dir / DATA_FILE).read_bytes()


def test_truth_covers_every_listed_dossier_once(data: DemarchesData, population):
    listed = [f"demarches:dossier/{d['number']}" for d in _dossiers(data)]
    keys = data.truth.column("record_key").to_pylist()
    assert sorted(keys) == sorted(listed) and len(set(keys)) == len(keys)
    gone = {d["number"] for dm in data.demarches for d in dm["deletedDossiers"]}
    assert gone and not gone & {d["number"] for d in _dossiers(data)}
    assert set(data.truth.column("person_id").to_pylist()) <= set(population.persons.column("person_id").to_pylist())
    numbers = [d["number"] for d in _dossiers(data)] + sorted(gone)
    assert len(numbers) == len(set(numbers))  # dossier numbers are global to the platform


def test_each_demarche_has_dossiers_in_every_phase(data: DemarchesData):
    counts = {dm["number"]: len(dm["dossiers"]) for dm in data.demarches}
    assert all(n > 5 for n in counts.values()), counts
    states = Counter(d["state"] for d in _dossiers(data))
    assert set(states) == set(STATES), states
    grant = next(dm for dm in data.demarches if dm["number"] == GRANT)
    assert {d["demandeur"]["__typename"] for d in grant["dossiers"]} == {"PersonneMorale"}
    assert all(len(d["demandeur"]["siret"]) == 14 for d in grant["dossiers"])


def test_dates_follow_the_dossier_life(data: DemarchesData):
    ref = REFERENCE_TIME
    for dm in data.demarches:
        created = parse_iso(dm["dateCreation"])
        for d in dm["dossiers"]:
            steps = [parse_iso(d[k]) for k in ("dateDepot", "datePassageEnInstruction", "dateTraitement",
                                               "dateDerniereModification") if d[k]]
            assert created <= steps[0] and steps == sorted(steps) and steps[-1] <= ref, d["number"]
            assert (d["dateTraitement"] is not None) == (d["state"] in ("accepte", "refuse", "sans_suite"))
            assert (d["datePassageEnInstruction"] is None) == (d["state"] == "en_construction")
            assert d["dateDepot"][-6:] in ("+01:00", "+02:00")  # Paris time, as the API writes it


def test_crèche_filers_are_parents_of_a_young_child(data: DemarchesData, population):
    persons = population.persons.to_pylist()
    by_key = dict(zip(data.truth.column("record_key").to_pylist(), data.truth.column("person_id").to_pylist(),
                      strict=True))
    creche = next(dm for dm in data.demarches if dm["number"] == CRECHE)
    for d in creche["dossiers"]:
        filer = persons[by_key[f"demarches:dossier/{d['number']}"] - 1]
        household = [p for p in persons if p["household_id"] == filer["household_id"]]
        born = next(c["date"] for c in d["champs"] if c["label"] == "Date de naissance de l'enfant")
        assert filer["household_role"] != "enfant"
        assert any(p["birth_date"].isoformat() == born for p in household if p["household_role"] == "enfant")


def test_applicant_as_typed_is_the_true_person_with_noise(data: DemarchesData, population):
    persons = population.persons.to_pylist()
    by_key = dict(zip(data.truth.column("record_key").to_pylist(), data.truth.column("person_id").to_pylist(),
                      strict=True))
    phys = [d for d in _dossiers(data) if d["demandeur"]["__typename"] == "PersonnePhysique"]
    same_name = first_only = upper = 0
    for d in phys:
        p = persons[by_key[f"demarches:dossier/{d['number']}"] - 1]
        nom, prenom = d["demandeur"]["nom"], d["demandeur"]["prenom"]

        def fold(s: str) -> str:
            return ascii_fold(s).lower().replace("-", " ")

        same_name += fold(nom) in (fold(p["usage_name"]), fold(p["birth_name"]))
        first_only += " " not in prenom.replace("-", " ") and " " in p["given_names"]
        upper += nom.isupper() and not p["usage_name"].isupper()
        assert d["demandeur"]["civilite"] == ("Mme" if p["sex"] == "F" else "M")
        assert d["usager"]["email"].lower() == p["email"].lower()
    assert 0.9 < same_name / len(phys) < 1.0  # typos
    assert first_only > 0.3 * len(phys) and upper > 0.2 * len(phys)
    parking = [d for d in phys if d["number"] in {x["number"] for dm in data.demarches if dm["number"] == PARKING
                                                  for x in dm["dossiers"]}]
    assert all(d["demandeur"]["dateDeNaissance"] is None for d in parking)  # the form never asks it
    creche_dob = [d["demandeur"]["dateDeNaissance"] for d in phys if d not in parking]
    assert 0 < sum(x is None for x in creche_dob) < len(creche_dob)  # asked only since mid-2025


# ---------------------------------------------------------------------------- the API


@pytest.mark.parametrize("number", [CRECHE, PARKING, GRANT], ids=["creche", "parking", "grant"])
def test_cursor_pagination_returns_every_dossier_once_in_order(api: DemarchesServer, number: int):
    expected = {d["number"] for d in api.dossiers(number)}
    nodes, pages = _all(api, number, first=7)
    assert [n["number"] for n in nodes if n["number"] in expected] == [n["number"] for n in nodes]
    assert sorted(n["number"] for n in nodes) == sorted(expected)
    depots = [(parse_iso(n["dateDepot"]), n["number"]) for n in nodes]
    assert depots == sorted(depots)
    assert pages == -(-len(expected) // 7)


def test_first_is_capped_at_the_max_page_size(api: DemarchesServer):
    conn = _post(api, PAGE_QUERY, {"n": PARKING, "first": 5000}).json()["data"]["demarche"]["dossiers"]
    assert len(conn["nodes"]) == min(MAX_PAGE_SIZE, len(api.dossiers(PARKING)))
    assert conn["pageInfo"]["hasNextPage"] == (len(api.dossiers(PARKING)) > MAX_PAGE_SIZE)


def test_updated_since_keeps_changes_at_or_after_in_change_order(api: DemarchesServer):
    stamps = sorted(parse_iso(d["dateDerniereModification"]) for d in api.dossiers(PARKING))
    cut = stamps[len(stamps) // 2]
    nodes, _ = _all(api, PARKING, first=10, since=cut.isoformat())
    got = [(parse_iso(n["dateDerniereModification"]), n["number"]) for n in nodes]
    assert len(got) == sum(s >= cut for s in stamps)
    assert got == sorted(got) and all(t >= cut for t, _ in got)


def test_desc_order_walks_backwards(api: DemarchesServer):
    nodes, _ = _all(api, CRECHE, first=9, order="DESC")
    keys = [(parse_iso(n["dateDepot"]), n["number"]) for n in nodes]
    assert keys == sorted(keys, reverse=True) and len(keys) == len(api.dossiers(CRECHE))


def test_touch_moves_a_dossier_after_every_other_change(api: DemarchesServer):
    latest = max(parse_iso(d["dateDerniereModification"]) for d in api.dossiers(CRECHE))
    number = api.dossiers(CRECHE)[3]["number"]
    api.touch(number, state="accepte", demandeur={"nom": "Nouveau"})
    nodes, _ = _all(api, CRECHE, since=latest.isoformat())
    changed = [n for n in nodes if parse_iso(n["dateDerniereModification"]) > latest]
    assert [n["number"] for n in changed] == [number]
    d = api.dossier(number)
    assert d["demandeur"]["nom"] == "Nouveau" and d["dateTraitement"] == d["dateDerniereModification"]


def test_delete_moves_a_dossier_to_deleted_dossiers(api: DemarchesServer):
    before = max(parse_iso(d["dateSupression"]) for dm in api.demarche_numbers
                 for d in api.deleted_dossiers(dm))
    number = api.dossiers(GRANT)[0]["number"]
    api.delete(number, reason="user_request")
    assert number not in {n["number"] for n in _all(api, GRANT)[0]}
    gone = _post(api, DELETED_QUERY, {"n": GRANT, "since": before.isoformat()}).json()
    nodes = gone["data"]["demarche"]["deletedDossiers"]["nodes"]
    assert [(n["number"], n["reason"]) for n in nodes if parse_iso(n["dateSupression"]) > before] == [
        (number, "user_request")]
    assert set(nodes[0]) == {"id", "number", "state", "reason", "dateSupression"}


def test_answers_carry_only_the_requested_fields(api: DemarchesServer):
    query = """query one($n: Int!, $withChamps: Boolean!) {
      demarche(number: $n) {
        titre: title
        __typename
        dossiers(first: 1) {
          nodes {
            number
            demandeur { __typename ...Who }
            champs @include(if: $withChamps) { label ... on DateChamp { date } }
            usager @skip(if: true) { email }
          }
        }
      }
    }
    fragment Who on Demandeur { ... on PersonnePhysique { nom } ... on PersonneMorale { siret } }"""
    body = _post(api, query, {"n": CRECHE, "withChamps": True}).json()
    assert "errors" not in body, body
    dem = body["data"]["demarche"]
    assert set(dem) == {"titre", "__typename", "dossiers"} and dem["titre"] == DEMARCHES[0].title
    node = dem["dossiers"]["nodes"][0]
    assert set(node) == {"number", "demandeur", "champs"}
    assert set(node["demandeur"]) == {"__typename", "nom"}
    dates = [c for c in node["champs"] if "date" in c]
    assert dates and all(set(c) == {"label", "date"} for c in dates)
    assert all(set(c) == {"label"} for c in node["champs"] if c not in dates)


@pytest.mark.parametrize(("query", "variables", "code"), [
    ("{ demarche(number: 1) { id } }", {}, "not_found"),
    ("{ demarche(number: 80412) { id bogus } }", {}, "undefinedField"),
    ("{ demarche(number: 80412) { id dossiers(pageSize: 3) { nodes { id } } } }", {}, "argumentNotAccepted"),
    ("{ demarche(number: 80412) { id usager } }", {}, "undefinedField"),
    ("{ demarche(number: 80412) { dossiers { nodes { usager } } } }", {}, "selectionMismatch"),
    ("{ demarche(number: 80412) { id ", {}, "parseError"),
    ("query q($n: Int!) { demarche(number: $n) { id } }", {}, "variableMismatch"),
    ("query q($n: Int!) { demarche(number: $n) { id } }", {"n": "80412"}, "variableMismatch"),
    ("{ demarche(number: $n) { id } }", {"n": 80412}, "variableNotDefined"),
    ("{ demarche(number: 80412) { ...Nope } }", {}, "useAndDefineFragment"),
    ("{ demarche(number: 80412) { dossiers(after: \"garbage\") { nodes { id } } } }", {}, "invalidCursor"),
    ("{ demarche(number: 80412) { dossiers(updatedSince: \"2026-01-01\") { nodes { id } } } }", {},
     "argumentLiteralsIncompatible"),
    ("mutation { demarche(number: 1) { id } }", {}, "missingMutationConfiguration"),
], ids=["unknown-demarche", "unknown-field", "unknown-argument", "field-of-another-type", "object-without-selection",
        "syntax", "missing-variable", "wrong-variable-type", "undeclared-variable", "undefined-fragment",
        "bad-cursor", "date-without-time", "mutation"])
def test_query_errors_are_graphql_errors_with_status_200(api: DemarchesServer, query: str, variables: dict,
                                                         code: str):
    r = _post(api, query, variables)
    assert r.status_code == 200
    body = r.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == [code]
    assert body.get("data") is None
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])


def test_not_found_names_the_field_path(api: DemarchesServer):
    err = _post(api, "{\n  demarche(number: 1) { id }\n}").json()["errors"][0]
    assert err["path"] == ["demarche"] and err["locations"] == [{"line": 2, "column": 3}]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}],
                         ids=["no-header", "wrong-token", "no-bearer-prefix"])
def test_bad_token_gets_401_json(api: DemarchesServer, headers: dict[str, str]):
    r = _post(api, "{ demarche(number: 80412) { id } }", headers=headers)
    assert r.status_code == 401
    assert r.json()["errors"][0]["extensions"]["code"] == "unauthorized"


def test_not_json_or_not_post(api: DemarchesServer):
    r = requests.post(api.endpoint, data=b"query { }", headers={**AUTH, "Content-Type": "application/json"},
                      timeout=5)
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "bad_request"
    assert requests.get(api.endpoint, headers=AUTH, timeout=5).status_code == 405
    assert requests.post(api.url + "/api/v1/graphql", json={}, headers=AUTH, timeout=5).status_code == 404


# ---------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", ["500", "429", "401", "truncated", "html", "graphql_error"])
def test_fault_is_served_once_then_recovers(api: DemarchesServer, kind: str):
    api.inject(kind, demarche=CRECHE, connection="dossiers", retry_after=7)
    r = _post(api, PAGE_QUERY, {"n": CRECHE})
    if kind in ("500", "429", "401"):
        assert r.status_code == int(kind) and "errors" in r.json()
        assert kind != "429" or r.headers["Retry-After"] == "7"
    elif kind == "truncated":
        assert r.status_code == 200
        with pytest.raises(ValueError):
            json.loads(r.content)
    elif kind == "html":
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    else:
        assert r.status_code == 200 and r.json()["data"] is None and r.json()["errors"]
    again = _post(api, PAGE_QUERY, {"n": CRECHE})
    assert again.status_code == 200 and again.json()["data"]["demarche"]["dossiers"]["nodes"]


def test_fault_targets_a_demarche_connection_and_page(api: DemarchesServer):
    api.inject("500", demarche=PARKING, connection="dossiers", page=2, count=2)
    assert _post(api, PAGE_QUERY, {"n": CRECHE, "first": 3}).status_code == 200
    first = _post(api, PAGE_QUERY, {"n": PARKING, "first": 3}).json()["data"]["demarche"]["dossiers"]
    after = first["pageInfo"]["endCursor"]
    statuses = [_post(api, PAGE_QUERY, {"n": PARKING, "first": 3, "after": after}).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert (PARKING, "dossiers", 2, 500) in api.request_log and (PARKING, "dossiers", 1, 200) in api.request_log


def test_reset_fault_drops_the_connection(api: DemarchesServer):
    api.inject("reset")
    with pytest.raises(requests.ConnectionError):
        _post(api, PAGE_QUERY, {"n": CRECHE})
    assert _post(api, PAGE_QUERY, {"n": CRECHE}).status_code == 200


def test_delay_fault_slows_the_answer(api: DemarchesServer):
    api.inject("delay", delay=0.4)
    started = time.perf_counter()
    assert _post(api, PAGE_QUERY, {"n": CRECHE}).status_code == 200
    assert time.perf_counter() - started >= 0.4


def test_unknown_fault_is_refused(api: DemarchesServer):
    with pytest.raises(ValueError):
        api.inject("teapot")
