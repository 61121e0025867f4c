"""The register of processing as data: the shipped register loads, covers the contract and the
sandbox's sources, and an invalid entry is refused with a message naming the entry and the field."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from schemas.contract import ALL_TABLES
from schemas.purposes import SERVICES, service
from schemas.register import DEFAULT_PATH, RegisterError, load_register, parse_register

DATA = tomllib.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def _entry(data: dict, pid: str) -> dict:
    return next(p for p in data["processing"] if p["id"] == pid)


def _refused(mutate) -> str:
    data = copy.deepcopy(DATA)
    mutate(data)
    with pytest.raises(RegisterError) as e:
        parse_register(data)
    return str(e.value)


def test_the_shipped_register_declares_the_hubs_and_each_silos_processing():
    r = load_register()
    ids = {p.id for p in r.processings}
    assert {"referentiel-usagers", "guichet-unique", "statistiques", "droits-rgpd", "journal-acces",
            "preremplissage-inscription-scolaire", "preremplissage-facturation"} <= ids
    assert {p.source_system for p in r.processings if p.kind == "source"} == {
        "finance", "family", "associations", "salesforce", "servicenow", "demarches"}
    for p in r.processings:
        assert p.purpose and p.data and p.security and p.data_subjects, p.id
        assert p.controller.name and p.dpo.email, p.id
        assert all(d.retention.duration for d in p.data), p.id


def test_every_personal_column_of_the_contract_is_mapped():
    mapped = load_register().personal_columns()
    for t in ALL_TABLES:
        for c in t.columns:
            if c.personal:
                assert c.name in mapped.get(f"{t.schema}.{t.name}", {}), f"{t.schema}.{t.name}.{c.name}"


def test_legal_basis_reads_as_the_gdpr_text():
    p = load_register().processing("finance-facturation")
    assert p.legal_basis.code == "6-1-c"
    assert p.legal_basis.text.startswith("obligation légale (art. 6-1-c), CGCT art. L.1611-5")


def test_prefill_contracts_come_from_the_register():
    assert set(SERVICES) == {"accueil-usager", "inscription-scolaire", "facturation", "subvention-association",
                             "etat-civil"}
    s = service("subvention-association")
    assert s["purpose"] == "instruction des demandes de subvention"
    assert s["legal_basis"] == "mission d'intérêt public (art. 6-1-e), loi 2000-321 art. 9-1"
    assert set(s["attributes"]) == {"given_names", "usage_name", "email", "phone"}
    assert s["processing"] == "preremplissage-subvention-association"
    with pytest.raises(KeyError, match="unknown service 'marketing'"):
        service("marketing")


def test_access_rules_say_what_each_service_of_each_collectivite_may_do():
    r = load_register()
    desk = r.access_for("accueil-usager", "commune")
    assert [p.id for p, _ in desk] == ["demarches-en-ligne", "guichet-unique"]
    _, rule = desk[1]
    assert rule.search and "birth_date" in rule.read and "facture" not in rule.interaction_kinds
    assert r.access_for("accueil-usager", "ccas") == []
    assert [p.id for p, _ in r.access_for("action-sociale", "ccas")] == ["guichet-unique"]
    assert [p.id for p, _ in r.access_for("dpo", "ccas")] == ["droits-rgpd"]
    assert r.access_for("marketing") == []


def test_an_edited_register_applies_to_the_prefill(tmp_path, monkeypatch):
    kinds = 'interaction_kinds = ["demande", "inscription", "subvention", "ticket", "rendez-vous"]\n'
    old = kinds + 'prefill = ["given_names", "usage_name", "email", "phone"]'
    original = DEFAULT_PATH.read_text(encoding="utf-8")
    assert original.count(old) == 1
    text = original.replace(old, kinds + 'prefill = ["given_names"]')
    path = tmp_path / "register.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("HUB_REGISTER", str(path))
    assert service("accueil-usager")["attributes"] == ("given_names",)


@pytest.mark.parametrize(("mutate", "expected"), [
    pytest.param(lambda d: _entry(d, "finance-facturation")["legal_basis"].update(article="g"),
                 "processing 'finance-facturation'.legal_basis.article: 'g' is not a lawful basis of GDPR Art. 6(1)",
                 id="legal-basis-not-in-art-6"),
    pytest.param(lambda d: _entry(d, "finance-facturation").pop("legal_basis"),
                 "processing 'finance-facturation'.legal_basis: missing", id="legal-basis-missing"),
    pytest.param(lambda d: _entry(d, "famille-portail")["data"][0]["retention"].pop("duration"),
                 "processing 'famille-portail'.data[0].retention.duration: missing", id="retention-without-duration"),
    pytest.param(lambda d: _entry(d, "famille-portail")["data"][1]["retention"].update(duration="bientôt"),
                 "processing 'famille-portail'.data[1].retention.duration: 'bientôt' is not a duration",
                 id="retention-duration-unreadable"),
    pytest.param(lambda d: _entry(d, "famille-portail")["data"][0]["retention"].update(at_end="oubli"),
                 "processing 'famille-portail'.data[0].retention.at_end: 'oubli' is not one of", id="end-action"),
    pytest.param(lambda d: _entry(d, "referentiel-usagers")["data"][0]["columns"]["golden.citizen"].append("nir"),
                 "processing 'referentiel-usagers'.data[0].columns.golden.citizen: column(s) nir not in the contract",
                 id="column-not-in-contract"),
    pytest.param(lambda d: _entry(d, "guichet-unique")["access"][0]["read"].append("password"),
                 "processing 'guichet-unique'.access[0].read: password not among the golden attributes",
                 id="desk-attribute-unknown"),
    pytest.param(lambda d: _entry(d, "guichet-unique")["access"][0]["interaction_kinds"].append("amende"),
                 "processing 'guichet-unique'.access[0].interaction_kinds: amende not among", id="kind-unknown"),
    pytest.param(lambda d: _entry(d, "guichet-unique")["access"][0]["services"].append("marketing"),
                 "processing 'guichet-unique'.access[0].services: 'marketing' is not one of [services]",
                 id="service-unknown"),
    pytest.param(lambda d: _entry(d, "famille-portail")["dpia"].pop("reference"),
                 "processing 'famille-portail'.dpia.reference: missing", id="dpia-required-without-reference"),
    pytest.param(lambda d: _entry(d, "journal-acces").pop("created"),
                 "processing 'journal-acces'.created: missing", id="created-missing"),
    pytest.param(lambda d: _entry(d, "journal-acces").update(
        special_categories=[{"category": "sante", "condition": "k"}]),
                 "'journal-acces'.special_categories[0].condition: 'k' is not an exception of GDPR Art. 9(2)",
                 id="art-9-condition"),
    pytest.param(lambda d: _entry(d, "finance-facturation")["not_personal"]["raw_finance.tiers"].append("nom"),
                 "processing 'finance-facturation'.not_personal.raw_finance.tiers: column(s) nom are also mapped",
                 id="personal-and-not-personal"),
    pytest.param(lambda d: _entry(d, "referentiel-usagers").update(not_personal={"golden.citizen": "*"}),
                 "\"*\" is not allowed: the contract marks personal columns in golden.citizen",
                 id="star-on-a-personal-contract-table"),
    pytest.param(lambda d: d["processing"].append(copy.deepcopy(_entry(d, "journal-acces"))),
                 "processing 'journal-acces': id used by more than one processing", id="duplicate-id"),
    pytest.param(lambda d: d.pop("controller"), "controller: missing", id="controller-missing"),
])
def test_an_invalid_register_is_refused_naming_the_entry_and_field(mutate, expected):
    assert expected in _refused(mutate)


def test_every_problem_is_reported_at_once():
    def two(d):
        _entry(d, "finance-facturation")["legal_basis"]["article"] = "z"
        _entry(d, "servicedesk-support").pop("security")
    message = _refused(two)
    assert "'finance-facturation'.legal_basis.article" in message and "'servicedesk-support'.security" in message


def test_special_categories_read_as_art_9():
    data = copy.deepcopy(DATA)
    _entry(data, "famille-portail")["special_categories"] = [
        {"category": "sante", "condition": "g", "reference": "circulaire PAI 2021"}]
    sc = parse_register(data).processing("famille-portail").special_categories[0]
    assert sc.text == ("données concernant la santé — motif d'intérêt public important (art. 9-2-g), "
                       "circulaire PAI 2021")


def test_a_missing_file_names_it(tmp_path):
    with pytest.raises(RegisterError, match="file not found"):
        load_register(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("processing = [", encoding="utf-8")
    with pytest.raises(RegisterError, match="not valid TOML"):
        load_register(Path(bad))
