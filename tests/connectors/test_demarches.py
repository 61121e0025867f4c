"""Démarches simplifiées connector against the real GraphQL simulator (sandbox.demarches), on both
warehouse engines; fault handling (a property of the source side) on DuckDB only, to stay fast."""

from __future__ import annotations

import copy
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from connectors import demarches
from connectors.base import SourceError
from connectors.runner import run_source
from sandbox.demarches import DemarchesData, DemarchesServer, gid, write_demarches
from schemas.contract import INTERACTION, PERSON_RECORD
from warehouse.engine import Warehouse

TOKEN = "dS-t0ken-7f3a9c1e5b"
CRECHE, GRANT = 101, 102
FAST = {"backoff_factor": 0.01, "max_retry_delay": 0.1, "max_attempts": 3, "timeout": 5.0}
NIR = "2 84 12 76 451 089 93"  # a valid NIR (key = 97 - n % 97), spaced as people type it in a form


def _dossier(number: int, updated: str, *, state: str = "en_instruction", nom: str = "Martin",
             demandeur: dict[str, Any] | None = None, champs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": gid("Dossier", number), "number": number, "state": state, "archived": False,
        "dateDepot": "2026-02-02T09:15:00+01:00", "datePassageEnConstruction": "2026-02-02T09:15:00+01:00",
        "datePassageEnInstruction": None if state == "en_construction" else "2026-02-10T14:00:00+01:00",
        "dateTraitement": "2026-03-03T11:00:00+01:00" if state in ("accepte", "refuse", "sans_suite") else None,
        "dateDerniereModification": updated, "motivation": None,
        "usager": {"id": gid("User", number), "email": f"usager{number}@example.org"},
        "demandeur": demandeur or {"__typename": "PersonnePhysique", "id": gid("Individual", number),
                                   "civilite": "Mme", "nom": nom, "prenom": "Élodie",
                                   "dateDeNaissance": "1988-04-12"},
        "champs": champs if champs is not None else [
            {"__typename": "TextChamp", "id": gid("Champ", 1), "label": "Prénom de l'enfant", "stringValue": "Léo"},
            {"__typename": "DateChamp", "id": gid("Champ", 2), "label": "Date d'entrée souhaitée",
             "stringValue": "2026-09-01", "date": "2026-09-01"},
        ],
    }


def _data() -> list[dict[str, Any]]:
    creche = [_dossier(1000 + i, f"2026-03-0{i}T10:00:00+01:00", state="accepte" if i % 2 else "en_instruction")
              for i in range(1, 6)]
    grant = [_dossier(2001, "2026-04-01T08:00:00+02:00", demandeur={
        "__typename": "PersonneMorale", "id": gid("Etablissement", 2001), "siret": "82170021643148"}),
        _dossier(2002, "2026-04-02T08:00:00+02:00", state="en_construction", demandeur={
            "__typename": "PersonneMorale", "id": gid("Etablissement", 2002), "siret": "77033961911978"})]
    return [
        {"id": gid("Procedure", CRECHE), "number": CRECHE, "title": "Demande de place en crèche", "state": "publiee",
         "dateCreation": "2025-01-06T09:00:00+01:00", "dossiers": creche,
         "deletedDossiers": [{"id": gid("Dossier", 999), "number": 999, "state": "en_construction",
                              "reason": "user_request", "dateSupression": "2026-01-15T10:00:00+01:00"}]},
        {"id": gid("Procedure", GRANT), "number": GRANT, "title": "Subvention association", "state": "publiee",
         "dateCreation": "2025-01-06T09:00:00+01:00", "dossiers": grant, "deletedDossiers": []},
    ]


def _serve(folder: Path, data: list[dict[str, Any]]) -> DemarchesServer:
    write_demarches(folder, DemarchesData(data, pa.table({"record_key": pa.array([], pa.string())})))
    return DemarchesServer(folder, token=TOKEN).start()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[DemarchesServer]:
    server = _serve(tmp_path / "ds", _data())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Warehouse]:
    wh = Warehouse(f"duckdb:///{tmp_path / 'wh.duckdb'}")
    try:
        yield wh
    finally:
        wh.close()


def _load(api: DemarchesServer, destination: Any, pdir: Path, run_id: str = "run", **kw: Any):
    params = {"base_url": api.url, "token": TOKEN, "demarches": [CRECHE, GRANT], "page_size": 2, **FAST}
    return run_source(demarches, destination, run_id, pipelines_dir=pdir, **{**params, **kw})


def _loaded(result) -> dict[str, int]:
    return {c.entity: c.rows_loaded for c in result.counts}


def _staged(wh: Warehouse, name: str) -> list[dict[str, Any]]:
    path = next(p for paths in demarches.STAGING.values() for p in paths if p.stem == name)
    return wh.dicts(f"SELECT * FROM ({path.read_text(encoding='utf-8')}) AS s ORDER BY source_id")


# ---------------------------------------------------------------------------- loads


def test_full_then_nothing_then_change_then_delete(api, warehouse, destination, tmp_path):
    first = _load(api, destination, tmp_path / "p")
    assert _loaded(first) == {"demarches": 2, "dossiers": 7, "deleted_dossiers": 1}
    assert all(c.rows_read == c.rows_loaded for c in first.counts)
    pages = {(d, c, p) for d, c, p, s in api.request_log if s == 200 and c == "dossiers"}
    assert {(CRECHE, "dossiers", 1), (CRECHE, "dossiers", 2), (CRECHE, "dossiers", 3)} <= pages  # 5 at 2 a page
    assert warehouse.scalar("SELECT count(*) FROM raw_demarches.dossiers") == 7
    row = warehouse.dicts("SELECT * FROM raw_demarches.dossiers WHERE number = 1001")[0]
    assert row["date_derniere_modification"].isoformat() == "2026-03-01T09:00:00+00:00"  # +01:00 -> UTC
    assert str(row["demandeur__date_de_naissance"]) == "1988-04-12" and row["demarche_number"] == CRECHE
    assert '"label":"Prénom de l\'enfant"' in row["champs"]

    api.request_log.clear()
    second = _load(api, destination, tmp_path / "p", "run2")
    assert _loaded(second) == {"demarches": 0, "dossiers": 0, "deleted_dossiers": 0}
    # only what changed since the last run was asked for: one page per connection
    assert all(p == 1 for d, c, p, s in api.request_log if c), api.request_log

    api.touch(1003, demandeur={"nom": "Martin-Durand"}, state="accepte")
    api.delete(1004)
    third = _load(api, destination, tmp_path / "p", "run3")
    assert _loaded(third) == {"demarches": 0, "dossiers": 1, "deleted_dossiers": 1}
    assert warehouse.scalar("SELECT count(*) FROM raw_demarches.dossiers") == 7
    assert warehouse.rows("SELECT demandeur__nom, state FROM raw_demarches.dossiers WHERE number = 1003") == [
        ("Martin-Durand", "accepte")]
    people = {r["source_id"]: r for r in _staged(warehouse, "stg_demarches__dossiers")}
    assert people["dossier/1004"]["deleted_at"] is not None
    assert [k for k, r in people.items() if r["deleted_at"] is not None] == ["dossier/1004"]
    demandes = {r["source_id"]: r for r in _staged(warehouse, "stg_demarches__demandes")}
    assert "dossier/1004" not in demandes and demandes["dossier/1003"]["status"] == "accepte"


def test_staging_yields_exactly_the_contract(api, warehouse, destination, tmp_path):
    _load(api, destination, tmp_path / "p")
    for name, table in (("stg_demarches__dossiers", PERSON_RECORD), ("stg_demarches__demandes", INTERACTION)):
        path = next(p for paths in demarches.STAGING.values() for p in paths if p.stem == name)
        result = warehouse.arrow(path.read_text(encoding="utf-8"))
        assert result.column_names == table.column_names, name
        assert result.num_rows == 7, name
        for col in table.columns:
            if not col.nullable:
                assert result.column(col.name).null_count == 0, f"{name}.{col.name}"
    people = {r["source_id"]: r for r in _staged(warehouse, "stg_demarches__dossiers")}
    mme = people["dossier/1001"]
    assert (mme["role"], mme["sex"], mme["usage_name"], mme["given_names"]) == ("demandeur", "F", "Martin", "Élodie")
    assert mme["record_key"] == "demarches:dossier/1001" and str(mme["birth_date"]) == "1988-04-12"
    org = people["dossier/2001"]
    assert (org["usage_name"], org["email"], org["sex"]) == (None, "usager2001@example.org", None)
    demandes = {r["source_id"]: r for r in _staged(warehouse, "stg_demarches__demandes")}
    d = demandes["dossier/1001"]
    assert (d["kind"], d["service"], d["status"], d["record_key"]) == (
        "demande", "Demande de place en crèche", "accepte", "demarches:dossier/1001")
    assert d["opened_at"].isoformat() == "2026-02-02T08:15:00+00:00"
    assert d["closed_at"].isoformat() == "2026-03-03T10:00:00+00:00"
    assert demandes["dossier/1002"]["closed_at"] is None
    import json

    details = json.loads(d["details"])
    assert details["demarche"] == CRECHE and [c["label"] for c in details["champs"]] == [
        "Prénom de l'enfant", "Date d'entrée souhaitée"]


def test_bad_rows_are_quarantined_with_demarche_page_and_field(tmp_path, duck):
    data = _data()
    creche = data[0]["dossiers"]
    creche[0]["champs"].append({"__typename": "TextChamp", "id": gid("Champ", 9), "label": "Numéro de sécurité "
                                "sociale", "stringValue": NIR})
    creche[2]["dateDepot"] = "02/02/2026"
    creche[4]["demandeur"]["dateDeNaissance"] = "1988-02-31"
    server = _serve(tmp_path / "ds", data)
    try:
        result = _load(server, duck.dlt_destination(), tmp_path / "p")
    finally:
        server.stop()
    q = {(r["locator"], r["field"], r["reason_code"]) for r in result.quarantine.to_pylist()}
    # a malformed dateDepot sorts first on the server: page 1
    assert q == {("demarche 101 dossiers page 1 number=1001", "champs", "national_id"),
                 ("demarche 101 dossiers page 1 number=1003", "date_depot", "bad_timestamp"),
                 ("demarche 101 dossiers page 3 number=1005", "demandeur__date_de_naissance", "bad_date")}
    assert all(NIR not in (r["payload"] or "") and NIR not in r["reason"] for r in result.quarantine.to_pylist())
    c = result.count("dossiers")
    assert (c.rows_read, c.rows_loaded, c.rows_quarantined) == (7, 4, 3)
    assert duck.scalar("SELECT count(*) FROM raw_demarches.dossiers") == 4


def test_rows_without_key_or_change_date_cannot_be_synced():
    from connectors.base import Collector

    collector = Collector("run", "demarches", demarches.ENTITIES)
    good = demarches._flat_dossier(_dossier(1, "2026-03-01T10:00:00+01:00"), CRECHE)
    rows = [good, {**good, "number": None}, {**good, "number": 3, "date_derniere_modification": None}]
    table = demarches.page_to_arrow("dossiers", rows, "demarche 101 dossiers page 4", collector)
    assert table.column("number").to_pylist() == [1] and not table.schema.field("number").nullable
    assert [(r["locator"], r["field"], r["reason_code"]) for r in collector.rows] == [
        ("demarche 101 dossiers page 4 item 2", "number", "missing_key"),
        ("demarche 101 dossiers page 4 number=3", "date_derniere_modification", "missing_cursor")]
    assert collector.read["dossiers"] == 2 and collector.quarantined["dossiers"] == 2  # the Guard counts the good one


# ---------------------------------------------------------------------------- faults


def test_transient_faults_are_retried(api, duck, tmp_path):
    faults = {"500": (CRECHE, "dossiers", 2), "429": (CRECHE, "dossiers", 3),
              "reset": (CRECHE, "deletedDossiers", 1), "delay": (GRANT, "dossiers", 1)}
    for kind, (d, c, p) in faults.items():
        api.inject(kind, demarche=d, connection=c, page=p, retry_after=1, delay=3.0)
    # the retry delay is capped by max_retry_delay (FAST: 0.1 s): lift the cap above the Retry-After.
    # The timeout is well under the injected delay and well over a loaded CI machine's slowest answer
    # (0.5 s timed out a healthy retry there, which made a third try)
    result = _load(api, duck.dlt_destination(), tmp_path / "p", timeout=2.0, max_retry_delay=2.0)
    assert _loaded(result) == {"demarches": 2, "dossiers": 7, "deleted_dossiers": 1}
    deadline = time.perf_counter() + 4  # the delayed request is logged once its handler wakes up
    while len([1 for *t, _ in api.request_log if tuple(t) == faults["delay"]]) < 2 and time.perf_counter() < deadline:
        time.sleep(0.05)
    for kind, target in faults.items():
        tries = [s for *t, s in api.request_log if tuple(t) == target]
        assert len(tries) == 2 and tries[-1] == 200, kind
    # Retry-After: 1 honoured: the retry reached the server at least 1 s after the 429 was answered
    # (the exponential backoff alone waits ~0.01 s)
    answered = {s: t for (*target, s), t in zip(api.request_log, api.request_times, strict=True)
                if tuple(target) == faults["429"]}
    assert answered[200] - answered[429] >= 1.0


@pytest.mark.parametrize(("kind", "message"), [
    ("401", "HTTP 401: the API refused the token"),
    ("truncated", "malformed or truncated JSON"),
    ("html", "an HTML page"),
    ("graphql_error", "GraphQL error(s): internal_server_error"),
    ("500", "HTTP 500 after 3 attempts"),
], ids=["token-expired", "truncated-json", "html-page", "graphql-error", "500-persisting"])
def test_failures_name_the_page_lose_nothing_and_resume(kind, message, api, duck, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    api.inject(kind, demarche=CRECHE, connection="dossiers", page=2, count=3)
    with pytest.raises(SourceError) as err:
        _load(api, duck.dlt_destination(), tmp_path / "p")
    assert (err.value.source_system, err.value.locator) == ("demarches", "demarche 101 dossiers page 2")
    assert message in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text
    tries = sum((d, c, p) == (CRECHE, "dossiers", 2) for d, c, p, _ in api.request_log)
    assert tries == (3 if kind == "500" else 1)  # only 5xx / 429 / resets / timeouts are retried
    assert not duck.table_exists("raw_demarches", "dossiers")  # nothing of the failed run was loaded
    if kind == "html":  # and the incremental state did not move: the next run loads everything
        api.clear_faults()
        assert _loaded(_load(api, duck.dlt_destination(), tmp_path / "p")) == {
            "demarches": 2, "dossiers": 7, "deleted_dossiers": 1}


def test_graphql_errors_are_named_by_code_and_path(api, duck, tmp_path):
    with pytest.raises(SourceError) as err:
        _load(api, duck.dlt_destination(), tmp_path / "p", demarches=[CRECHE, 4242])
    assert err.value.locator == "demarche 4242"
    assert str(err.value).endswith("GraphQL error(s): not_found at demarche")


def test_schema_drift_names_the_field(api, duck, tmp_path, monkeypatch):
    # the API renaming a field is a query error: it names the type and field, not any data
    monkeypatch.setattr(demarches, "DELETED_QUERY", demarches.DELETED_QUERY.replace("dateSupression",
                                                                                    "dateSuppression"))
    with pytest.raises(SourceError) as err:
        _load(api, duck.dlt_destination(), tmp_path / "p", demarches=[GRANT])
    assert err.value.locator == "demarche 102 deletedDossiers page 1"
    assert "undefinedField at query getDeletedDossiers.demarche.deletedDossiers.nodes.dateSuppression " \
           "(DeletedDossier.dateSuppression)" in str(err.value)


def test_wrong_token_fails_at_once(api, duck, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceError) as err:
        _load(api, duck.dlt_destination(), tmp_path / "p", token="n0t-the-" + TOKEN)
    assert "HTTP 401" in str(err.value) and TOKEN not in str(err.value) and TOKEN not in caplog.text
    assert [s for *_, s in api.request_log] == [401]


def test_unreachable_api(duck, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # a port nobody listens on once closed
    with pytest.raises(SourceError) as err:
        run_source(demarches, duck.dlt_destination(), "run", pipelines_dir=tmp_path / "p", base_url=f"http://127.0.0.1:{port}",
                   token=TOKEN, demarches=[CRECHE], **FAST)
    assert "cannot reach the Démarches simplifiées API" in str(err.value) and str(port) in err.value.locator


def test_no_token_in_logs_of_a_good_run(api, duck, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    _load(api, duck.dlt_destination(), tmp_path / "p")
    assert "demarches run run:" in caplog.text and TOKEN not in caplog.text


def test_configure_reads_the_token_from_the_secret():
    asked: list[str] = []

    def secret(key: str) -> str:
        asked.append(key)
        return TOKEN

    kwargs = demarches.configure({"base_url": "https://www.demarches-simplifiees.fr", "demarches": ["101", 102]},
                                 secret)
    assert kwargs == {"base_url": "https://www.demarches-simplifiees.fr", "token": TOKEN, "demarches": [101, 102]}
    assert asked == ["token"]


def test_sandbox_silo_loads_every_dossier(population_dossiers, duck, tmp_path):
    folder, data = population_dossiers
    with DemarchesServer(folder, token=TOKEN) as server:
        result = run_source(demarches, duck.dlt_destination(), "run", pipelines_dir=tmp_path / "p", base_url=server.url,
                            token=TOKEN, demarches=server.demarche_numbers, **FAST)
    assert _loaded(result) == {k: v for k, v in data.counts.items()}
    keys = {r[0] for r in duck.rows("SELECT 'demarches:dossier/' || CAST(number AS VARCHAR) FROM "
                                    "raw_demarches.dossiers")}
    assert keys == set(data.truth.column("record_key").to_pylist())


@pytest.fixture(scope="module")
def population_dossiers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemarchesData]:
    from sandbox.demarches import demarches_data
    from sandbox.observations import observe
    from sandbox.population import generate_population

    pop = generate_population(1_500, 3)
    data = demarches_data(pop, observe(pop, 3))
    folder = tmp_path_factory.mktemp("sandbox-demarches")
    write_demarches(folder, data)
    return folder, copy.deepcopy(data)
