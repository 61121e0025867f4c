"""The 360° view on a golden layer built by survivorship: provenance, foyer, timeline, worklists,
once-only prefill, and the JSON Schema of the view (both engines)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pyarrow as pa
import pytest

from matching.survivorship import survive
from schemas.contract import CITIZEN_LINK, arrow_type
from tests.golden import publish_hand_made
from tests.logged import log_query
from warehouse.citizen_view import prefill, show, worklist
from warehouse.engine import Warehouse
from warehouse.golden import core_person_records

READ = {"reader": "agent.martin", "purpose": "guichet-unique"}
SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "citizen_view.schema.json").read_text("utf-8"))
# after the subsidy request's two months (1 April → 1 June 2024), before the invoice's
LATER = datetime(2024, 7, 1, tzinfo=UTC)


@pytest.fixture
def golden_hub(family_hub: Warehouse, family_citizens) -> Warehouse:
    """The family's golden layer rebuilt by survivorship from core; the association's record holds
    another phone than finance's (``assoc`` is not in the phone's source priority: finance wins)."""
    family_hub.execute("UPDATE core.person_record SET phone = '+33699999999' WHERE record_key = 'assoc:R1'")
    links = pa.table({
        "record_key": [r for rs in family_citizens.values() for r in rs],
        "citizen_id": [c for c, rs in family_citizens.items() for _ in rs],
        "match_probability": [0.99] * sum(len(rs) for rs in family_citizens.values()),
        "model_version": ["m"] * sum(len(rs) for rs in family_citizens.values()),
    })
    for col in CITIZEN_LINK.columns:  # columns the identity step adds (explanations): unknown here
        if col.name not in links.column_names and col.name != "run_id":
            links = links.append_column(col.name, pa.nulls(links.num_rows, arrow_type(col.type)))
    golden = survive(core_person_records(family_hub), links, now=datetime(2026, 6, 1, tzinfo=UTC))
    publish_hand_made(family_hub, "res-2", links=links, citizens=golden,
                       run_row={"model_version": "m", "records": links.num_rows, "pairs_scored": 0,
                                "citizens": golden.num_rows, "threshold": 0.9})
    return family_hub


def test_show_validates_against_the_json_schema(golden_hub: Warehouse) -> None:
    for citizen in ("C-MARIE", "C-JEAN", "C-LEA", "C-HUGO"):
        view = show(golden_hub, citizen, now=LATER, **READ)
        jsonschema.validate(json.loads(json.dumps(view)), SCHEMA)


def test_the_schema_rejects_a_view_missing_its_timeline(golden_hub: Warehouse) -> None:
    view = show(golden_hub, "C-MARIE", now=LATER, **READ)
    del view["interactions"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(view, SCHEMA)


def test_identity_carries_the_provenance_of_each_attribute(golden_hub: Warehouse) -> None:
    view = show(golden_hub, "C-MARIE", now=LATER, **READ)
    prov = view["provenance"]
    assert view["citizen"]["birth_name"] == "Lefèvre"
    assert (prov["birth_name"]["record_key"], prov["birth_name"]["certification"]) == ("family:P1", "justificatif")
    assert prov["given_names"]["record_key"] == "family:P1"  # the justificatif beats the declarative ones
    records = {r["record_key"] for r in view["records"]}
    assert {p["record_key"] for p in prov.values()} <= records


def test_a_disagreement_is_flagged_and_lands_in_the_silo_worklist(golden_hub: Warehouse) -> None:
    view = show(golden_hub, "C-MARIE", now=LATER, **READ)
    assert [(c["attribute"], c["golden_value"], [o["record_key"] for o in c["others"]])
            for c in view["conflicts"]] == [("phone", "+33612345678", ["assoc:R1"])]
    assert view["provenance"]["phone"]["rule"] == "source_priority"
    rows = worklist(golden_hub, "assoc", reader="agent.asso", purpose="referentiel-usagers")
    assert [(r["record_key"], r["attribute"], r["silo_value"], r["golden_source_system"]) for r in rows] == [
        ("assoc:R1", "phone", "+33699999999", "finance")]
    assert worklist(golden_hub, "finance", reader="agent.regie", purpose="referentiel-usagers") == []


def test_the_family_is_one_foyer_with_roles_and_minors(golden_hub: Warehouse) -> None:
    (foyer,) = show(golden_hub, "C-LEA", now=LATER, **READ)["foyers"]
    assert foyer["role"] == "enfant"
    assert foyer["source_households"] == ["family:FAM1", "finance:G1"]
    assert [(m["citizen_id"], m["role"], m["is_minor"]) for m in foyer["members"]] == [
        ("C-MARIE", "responsable", False), ("C-JEAN", "conjoint", False),
        ("C-LEA", "enfant", True), ("C-HUGO", "enfant", True)]


def test_the_parent_timeline_interleaves_three_silos_with_deadlines(golden_hub: Warehouse) -> None:
    view = show(golden_hub, "C-MARIE", now=LATER, **READ)
    events = view["interactions"]
    # the foyer's water bill, billed to the other parent, shows on her timeline too (owed by each responsable)
    assert [(e["source_system"], e["kind"], e["foyer"] is not None) for e in events] == [
        ("finance", "facture", True), ("family", "demande", False), ("finance", "facture", False),
        ("assoc", "subvention", False)]
    assert events[0]["interaction_key"] == "finance:F101"
    subsidy = events[3]
    assert (subsidy["pending"], subsidy["deadline"][:10], subsidy["silence"], subsidy["overdue"]) == (
        True, "2024-06-01", "rejet", True)
    assert view["deadlines"] == ["family:D3", "assoc:S1"]  # the silo's own due date first
    assert view["unpaid"] == {"count": 1, "totals": {"EUR": "45.50"}, "invoices": ["finance:F100"]}
    soon = show(golden_hub, "C-MARIE", now=datetime(2024, 5, 20, tzinfo=UTC), **READ)["interactions"][3]
    assert (soon["overdue"], soon["due_soon"]) == (False, True)


def test_prefill_returns_only_what_the_service_may_use_and_logs_its_purpose(golden_hub: Warehouse) -> None:
    data = prefill(golden_hub, "C-MARIE", service="subvention-association", reader="agent.asso")
    assert set(data["attributes"]) == {"given_names", "usage_name", "phone"}  # no birth date, no address
    phone = data["attributes"]["phone"]
    assert (phone["value"], phone["source_system"], phone["certification"], phone["conflict"]) == (
        "+33612345678", "finance", "declaratif", True)
    logged = log_query(golden_hub, "rows", "SELECT reader, purpose, fields FROM ops.access_log")
    assert [(r[0], r[1]) for r in logged] == [("agent.asso", "instruction des demandes de subvention")]
    assert "birth_date" not in logged[0][2] and "+33" not in logged[0][2]
    school = prefill(golden_hub, "C-MARIE", service="inscription-scolaire", reader="agent.ecole")
    assert {"birth_date", "birth_name", "address_line"} <= set(school["attributes"])


def test_prefill_refuses_an_unknown_service_and_reads_nothing(golden_hub: Warehouse) -> None:
    with pytest.raises(KeyError, match="unknown service"):
        prefill(golden_hub, "C-MARIE", service="marketing", reader="agent.x")
    assert not golden_hub.table_exists("ops", "access_log")
    assert prefill(golden_hub, "C-NOBODY", service="facturation", reader="agent.x") is None
