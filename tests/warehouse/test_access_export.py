"""The access export on the Dupont family (both engines): every record of the person, raw and
canonical, and nothing of anyone else; other people's values redacted; uncertain links kept for the
DPO; a parent's request for a minor; the export logged; refused while the register has a gap."""

from __future__ import annotations

import itertools
import json
import re
import tomllib
import zipfile
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest

from schemas.register import DEFAULT_PATH, parse_register
from tests.logged import log_query
from tests.warehouse.conftest import family_models
from warehouse import access_log, dsr
from warehouse.access_export import ExportError, export_access, raw_queries, validate
from warehouse.register_guard import UnmappedPersonalData

NOW = datetime(2026, 6, 1, 10, tzinfo=UTC)
# the test silos' raw tables (tests/warehouse/conftest.py), mapped by one extra processing
TEST_TABLES = {
    "raw_finance.tiers": ["id", "nom", "prenom", "ne_le", "courriel", "tel", "adresse", "cp", "ville", "groupe",
                          "rang"],
    "raw_finance.factures": ["num", "tiers", "objet", "emise", "echeance", "payee", "montant"],
    "raw_family.members": ["id", "famille", "lien", "nom", "nom_naissance", "prenoms", "sexe", "naissance", "mail"],
    "raw_family.dossiers": ["id", "membre", "nature", "service", "libelle", "ouvert", "echeance"],
    "raw_assoc.dirigeants": ["id", "asso", "fonction", "nom", "prenom", "naissance", "mail"],
    "raw_assoc.subventions": ["id", "dirigeant", "objet", "deposee", "montant"],
}


def _register(**overrides):
    data = tomllib.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    data["processing"].append({
        "id": "silos-de-test", "name": "Silos du jeu d'essai", "kind": "hub", "purpose": "jeu d'essai des tests",
        "legal_basis": {"article": "e"}, "data_subjects": ["usagers"], "security": ["tests"],
        "created": date(2026, 1, 1), "updated": date(2026, 1, 1), "dpia": {"required": False},
        "recipients": {"internal": ["tests"]},
        "not_personal": {"raw_assoc.associations": "*"},
        "data": [{"category": "identite", "description": "tout", "columns": TEST_TABLES,
                  "retention": {"duration": "1 an", "start": "collecte", "extended_by_activity": False,
                                "at_end": "suppression"}}],
    })
    for p in data["processing"]:
        p.update(overrides.get(p["id"], {}))
    return parse_register(data, path="test-register")


@pytest.fixture
def hub(family_hub):
    # a shared record: Marie's request at the family portal names her husband and her daughter
    family_hub.execute("UPDATE raw_family.dossiers SET libelle = 'Attestation pour Jean et Léa' WHERE id = 'D3'")
    family_hub.execute("UPDATE core.interaction SET title = 'Attestation pour Jean et Léa' "
                       "WHERE interaction_key = 'family:D3'")
    return family_hub


def _export(wh, target, tmp_path: Path, name: str = "acces.zip", **kw):
    return export_access(wh, target, tmp_path / name, reader="dpo.martin", models=family_models(),
                         register=kw.pop("register", None) or _register(), now=NOW, **kw)


def _zip_text(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist()}


def test_the_export_holds_every_record_of_the_person_raw_and_canonical(hub, tmp_path):
    result = _export(hub, "C-MARIE", tmp_path)
    doc = result.document
    assert not result.draft and doc["export"]["status"] == "final"
    assert {r["record"]["record_key"] for r in doc["records"]} == {"finance:T1", "family:P1", "assoc:R1"}
    raw = {(r["table"], r["record_key"]) for r in doc["raw"]}
    assert raw == {("raw_finance.tiers", "finance:T1"), ("raw_finance.factures", "finance:T1"),
                   ("raw_family.members", "family:P1"), ("raw_family.dossiers", "family:P1"),
                   ("raw_assoc.dirigeants", "assoc:R1"), ("raw_assoc.subventions", "assoc:R1")}
    assert {i["interaction_key"] for i in doc["interactions"]} == {"finance:F100", "family:D3", "assoc:S1"}
    assert {(m["household_id"], m["role"]) for m in doc["households"]} == {("finance:G1", "responsable"),
                                                                          ("family:FAM1", "responsable")}
    family = next(m for m in doc["households"] if m["household_id"] == "family:FAM1")
    assert sorted(m["role"] for m in family["other_members"]) == ["conjoint", "enfant", "enfant"]
    assert [o["organisation_name"] for o in doc["organisations"]] == ["Les Amis du Parc"]
    # no record of anyone else
    keys = json.dumps(doc)
    for other in ("finance:T2", "family:P2", "family:E1", "family:E2", "F101", "Hugo", "1980-09-30", "2012-05-03"):
        assert other not in keys, other
    files = _zip_text(result.path)
    assert set(files) == {"acces.json", "rapport.html", "LISEZMOI.txt", "sources/finance.csv", "sources/family.csv",
                          "sources/assoc.csv"}
    assert json.loads(files["acces.json"]) == doc
    assert "marie.dupont@example.fr" in files["sources/finance.csv"]
    assert files["sources/finance.csv"].startswith("\ufeffniveau;table;fiche;ligne;champ;valeur")


def test_other_peoples_values_are_redacted_from_shared_records(hub, tmp_path):
    result = _export(hub, "C-MARIE", tmp_path)
    d3 = next(i for i in result.document["interactions"] if i["interaction_key"] == "family:D3")
    assert d3["title"].startswith("Attestation pour [occulté")
    assert result.redacted_values >= 4  # the canonical and the raw title, two names each
    for name, text in _zip_text(result.path).items():
        assert "Jean" not in text and "Léa" not in text, name
        assert "Hugo" not in text, name
    assert "Dupont" in _zip_text(result.path)["rapport.html"]  # her own name, shared with them, stays


def test_the_json_follows_its_schema(hub, tmp_path):
    doc = _export(hub, "C-MARIE", tmp_path).document
    validate(doc)
    broken = json.loads(json.dumps(doc))
    broken["records"][0]["match_probability"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    broken = json.loads(json.dumps(doc))
    broken["surprise"] = True
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_uncertain_links_wait_for_the_dpo(hub, tmp_path):
    hub.execute("UPDATE golden.citizen_link SET match_probability = 0.7, linked_via = 'finance:T1', "
                "explanation = :e WHERE record_key = 'assoc:R1'",
                {"e": json.dumps({"first_name": 6.2, "birth_date": 7.4, "email": 3.1, "address": -1.5})})
    draft = _export(hub, "C-MARIE", tmp_path, "brouillon.zip")
    assert draft.draft and draft.document["export"]["status"] == "brouillon"
    assert [r["record"]["record_key"] for r in draft.document["to_confirm"]] == ["assoc:R1"]
    assert "assoc:R1" not in {r["record"]["record_key"] for r in draft.document["records"]}
    assert "assoc:R1" not in {r["record_key"] for r in draft.document["raw"]}
    why = draft.document["to_confirm"][0]["why_linked"]
    assert "la date de naissance (fortement)" in why and "diffèrent : l'adresse" in why and "finance:T1" in why
    assert "Brouillon — ne pas envoyer" in _zip_text(draft.path)["rapport.html"]
    confirmed = _export(hub, "C-MARIE", tmp_path, "final.zip", confirm=["assoc:R1"])
    assert not confirmed.draft
    rec = next(r for r in confirmed.document["records"] if r["record"]["record_key"] == "assoc:R1")
    assert rec["confirmed_by_dpo"] and rec["confidence"] == "70,0 %"
    excluded = _export(hub, "C-MARIE", tmp_path, "sans.zip", exclude=["assoc:R1"])
    assert not excluded.draft and excluded.records == 2


def test_a_review_queue_candidate_is_listed_not_exported(hub, tmp_path):
    from schemas.contract import REVIEW_QUEUE

    hub.ensure_table(REVIEW_QUEUE)
    hub.execute("INSERT INTO golden.review_queue VALUES ('Q1', 'family:P1', 'family:P2', 0.4, -0.6, NULL, "
                "'C-MARIE', 'C-JEAN', :t, 'res-1')", {"t": NOW})
    result = _export(hub, "C-MARIE", tmp_path)
    assert [(r["record"]["record_key"], r["linked"]) for r in result.document["to_confirm"]] == [("family:P2", False)]
    assert "family:P2" not in {r["record"]["record_key"] for r in result.document["records"]}


def test_the_export_is_logged_and_proved_on_the_request(hub, tmp_path):
    from warehouse.citizen_view import show

    show(hub, "C-MARIE", reader="agent.accueil", purpose="accueil et orientation des usagers")
    req = dsr.new_request(hub, kind="access", channel="courriel", actor="dpo.martin",
                          identity=dsr.Identity("Marie Dupont", birth_date=date(1982, 4, 12),
                                                email="marie.dupont@example.fr"),
                          identity_check="coordonnees_connues", received_at=date(2026, 5, 20), now=NOW)
    result = _export(hub, req["request_id"], tmp_path)
    assert result.citizen_id == "C-MARIE" and result.request_id == req["request_id"]
    rows = log_query(hub, "dicts", "SELECT reader, purpose, channel, operation, recipient, fields FROM ops.access_log "
                     "WHERE operation = 'export'")
    assert len(rows) == 1
    assert rows[0]["reader"] == "dpo.martin" and rows[0]["channel"] == "gdpr-export"
    assert rows[0]["recipient"] == "la personne concernée"
    assert rows[0]["purpose"] == _register().processing("droits-rgpd").purpose
    access_log.verify(hub)
    after = dsr.get(hub, req["request_id"])
    assert after["citizen_id"] == "C-MARIE"
    assert after["events"][-1]["event"] == "export" and after["events"][-1]["proof_sha256"] == result.sha256
    # the consultation before the export is in it: date and purpose, not the agent
    consultations = [c for c in result.document["consultations"] if c["operation"] == "read"]
    assert consultations and consultations[0]["processing_id"] == "guichet-unique"
    assert all(c["agent"] is None for c in consultations)
    assert "agent.accueil" not in json.dumps(result.document)
    named = _export(hub, "C-MARIE", tmp_path, "nomme.zip",
                    register=_register(**{"guichet-unique": {"disclose_readers": True}}))
    assert "agent.accueil" in {c["agent"] for c in named.document["consultations"]}


def test_a_parent_asks_for_a_minor_child(hub, tmp_path):
    result = _export(hub, "C-LEA", tmp_path, on_behalf_of_minor=True, requester_citizen_id="C-MARIE")
    doc = result.document
    assert doc["export"]["on_behalf_of_minor"] is True
    assert {r["record"]["record_key"] for r in doc["records"]} == {"family:E1"}
    logged = log_query(hub, "dicts", "SELECT recipient, fields FROM ops.access_log WHERE operation = 'export'")
    assert "représentant légal" in logged[0]["recipient"] and "on_behalf_of_minor" in logged[0]["fields"]
    text = json.dumps(doc)
    assert "Jean" not in text and "Hugo" not in text
    with pytest.raises(ExportError, match="not a minor"):
        _export(hub, "C-MARIE", tmp_path, "x.zip", on_behalf_of_minor=True, requester_citizen_id="C-JEAN")
    with pytest.raises(ExportError, match="shares no foyer"):
        _export(hub, "C-LEA", tmp_path, "y.zip", on_behalf_of_minor=True, requester_citizen_id="C-NOBODY")


def test_an_unmapped_personal_table_stops_the_export(hub, tmp_path):
    hub.execute("CREATE TABLE raw_family.contacts_urgence (id TEXT, nom TEXT, telephone TEXT)")
    with pytest.raises(UnmappedPersonalData, match=r"raw_family.contacts_urgence \(id, nom, telephone\)"):
        _export(hub, "C-MARIE", tmp_path)
    assert not (tmp_path / "acces.zip").exists()
    assert not log_query(hub, "scalar", "SELECT count(*) FROM ops.access_log WHERE operation = 'export'")


def test_identity_text_finds_one_citizen_or_refuses(hub, tmp_path):
    assert _export(hub, "marie.dupont@example.fr", tmp_path).citizen_id == "C-MARIE"
    with pytest.raises(ExportError, match="4 citizens match"):
        _export(hub, "dupont", tmp_path, "z.zip")  # the four Duponts: ambiguous, nothing exported
    assert not (tmp_path / "z.zip").exists()


def test_raw_queries_follow_each_union_branch():
    sql = ("SELECT 'f' AS source_system, 'f:' || r.id AS record_key FROM raw_f.parents AS r "
           "UNION ALL SELECT 'f', 'f:e/' || e.id FROM raw_f.enfants AS e LEFT JOIN raw_f.ecoles s ON s.id = e.ecole")
    qs = raw_queries("stg_f__x", sql, "duckdb")
    assert [(q.table, q.alias) for q in qs] == [("raw_f.parents", "r"), ("raw_f.enfants", "e"), ("raw_f.ecoles", "s")]
    assert qs[1].key_sql == "'f:e/' || e.id" and "LEFT JOIN raw_f.ecoles" in qs[1].from_sql


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables_with_caption = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "caption":
            self.tables_with_caption += 1


def test_the_report_is_french_self_contained_and_structured(hub, tmp_path):
    hub.execute("UPDATE golden.citizen_link SET match_probability = 0.7 WHERE record_key = 'assoc:R1'")
    html = _zip_text(_export(hub, "C-MARIE", tmp_path).path)["rapport.html"]
    page = _Page()
    page.feed(html)
    tags = [t for t, _ in page.tags]
    assert page.tags[0] == ("html", {"lang": "fr"})
    assert "title" in tags and tags.count("h1") == 1 and "main" in tags and "nav" in tags
    assert "script" not in tags and "img" not in tags and "link" not in tags
    assert not [a for _, a in page.tags if any(str(v).startswith(("http:", "https:", "//")) for k, v in a.items()
                                               if k in ("src", "href"))]
    assert tags.count("table") == page.tables_with_caption  # every table captioned
    assert all(a.get("scope") == "col" for t, a in page.tags if t == "th")
    levels = [int(t[1]) for t in tags if re.fullmatch(r"h[1-6]", t)]
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))  # no heading level skipped
    anchors = {a["href"][1:] for t, a in page.tags if t == "a" and (a.get("href") or "").startswith("#")}
    ids = {a["id"] for _, a in page.tags if a.get("id")}
    assert anchors <= ids  # every link of the summary leads somewhere
    for words in ("Base légale", "Origine des données", "Durée de conservation", "Destinataires internes",
                  "Qui a consulté votre fiche", "Fiches à confirmer", "Confiance", "Pourquoi le rapprochement",
                  "Brouillon — ne pas envoyer"):
        assert words in html, words


def _nameless_record(wh, key: str, citizen_id: str, *, email: str) -> None:
    """A dossier that carries no name, only an e-mail (filed for an organisation), resolved apart."""
    system, source_id = key.split(":", 1)
    wh.execute("INSERT INTO core.person_record (record_key, source_system, source_id, role, email, "
               "certification_level) VALUES (:k, :s, :i, 'demandeur', :e, 0)",
               {"k": key, "s": system, "i": source_id, "e": email})
    wh.execute("INSERT INTO golden.citizen_link (record_key, citizen_id, match_probability, model_version, run_id) "
               "VALUES (:k, :c, 1.0, 'test-model-1', 'res-1')", {"k": key, "c": citizen_id})


def test_a_nameless_record_under_the_persons_own_email_is_exported(hub, tmp_path):
    # matching compares people by name and leaves it apart; it is still data about whoever holds the address
    _nameless_record(hub, "demarches:D9", "C-D9", email=" Marie.Dupont@Example.FR ")
    doc = _export(hub, "C-MARIE", tmp_path).document
    rec = next(r for r in doc["records"] if r["record"]["record_key"] == "demarches:D9")
    assert "seule adresse électronique" in rec["why_linked"] and not rec["confirmed_by_dpo"]
    assert doc["export"]["status"] == "final"
    validate(doc)


def test_a_nameless_record_under_an_address_someone_else_gives_waits_for_the_dpo(hub, tmp_path):
    _nameless_record(hub, "demarches:D9", "C-D9", email="marie.dupont@example.fr")
    hub.execute("UPDATE core.person_record SET email = 'marie.dupont@example.fr' WHERE record_key = 'finance:T2'")
    doc = _export(hub, "C-MARIE", tmp_path).document
    assert [(r["record"]["record_key"], r["linked"]) for r in doc["to_confirm"]] == [("demarches:D9", False)]
    assert "demarches:D9" not in {r["record"]["record_key"] for r in doc["records"]}
    confirmed = _export(hub, "C-MARIE", tmp_path, "final.zip", confirm=["demarches:D9"]).document
    assert "demarches:D9" in {r["record"]["record_key"] for r in confirmed["records"]}


def test_a_named_record_under_the_same_email_is_not_taken(hub, tmp_path):
    # Jean's own records give Marie's e-mail too: his named record stays his (matching decided by name)
    hub.execute("UPDATE core.person_record SET email = 'marie.dupont@example.fr' WHERE record_key = 'finance:T2'")
    doc = _export(hub, "C-MARIE", tmp_path).document
    assert "finance:T2" not in {r["record"]["record_key"] for r in (*doc["records"], *doc["to_confirm"])}
