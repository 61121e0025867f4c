"""A release replaces the golden tables atomically (hand-made ones here); the inputs and core records read back."""

from __future__ import annotations

import pyarrow as pa
import pytest

from schemas.contract import PERSON_RECORD, arrow_schema
from tests.golden import publish_hand_made
from warehouse.engine import Warehouse
from warehouse.golden import core_memberships, core_person_records
from warehouse.resolution import ReleaseAuditFailed, read_inputs

RUN_ROW = {"model_version": "m1", "records": 7, "pairs_scored": 21, "citizens": 4, "threshold": 0.9}


def _links(wh: Warehouse) -> list[tuple]:
    return wh.rows("SELECT record_key, citizen_id, run_id FROM golden.citizen_link ORDER BY record_key")


def test_publish_replaces_links_and_citizens(family_hub: Warehouse, golden_tables) -> None:
    links, citizens = golden_tables("res-2")
    # Second resolution: Hugo's record now belongs to a new citizen id; Léa's citizen is gone.
    links = links.filter(pa.compute.not_equal(links.column("citizen_id"), "C-LEA"))
    citizens = citizens.filter(pa.compute.not_equal(citizens.column("citizen_id"), "C-LEA"))
    publish_hand_made(family_hub, "res-2", links=links, citizens=citizens, run_row=RUN_ROW)

    assert {r[2] for r in _links(family_hub)} == {"res-2"}
    assert "family:E1" not in {r[0] for r in _links(family_hub)}
    assert family_hub.scalar("SELECT count(*) FROM golden.citizen WHERE citizen_id = 'C-LEA'") == 0
    assert family_hub.rows("SELECT run_id FROM golden.resolution_run ORDER BY run_id") == [("res-1",), ("res-2",)]


def test_publish_is_all_or_nothing(family_hub: Warehouse, golden_tables) -> None:
    before_links = _links(family_hub)
    before_citizens = family_hub.rows("SELECT * FROM golden.citizen ORDER BY citizen_id")
    links, citizens = golden_tables("res-2")
    # The links are valid and written first; the citizens then break the primary key mid-transaction.
    broken = pa.concat_tables([citizens, citizens.slice(0, 1)])
    with pytest.raises(Exception):  # noqa: B017 - each engine raises its own integrity error
        publish_hand_made(family_hub, "res-2", links=links, citizens=broken, run_row=RUN_ROW)

    assert _links(family_hub) == before_links
    assert family_hub.rows("SELECT * FROM golden.citizen ORDER BY citizen_id") == before_citizens
    assert family_hub.rows("SELECT run_id FROM golden.resolution_run") == [("res-1",)]


def test_links_to_unknown_citizens_are_refused(family_hub: Warehouse, golden_tables) -> None:
    links, citizens = golden_tables("res-2")
    citizens = citizens.filter(pa.compute.not_equal(citizens.column("citizen_id"), "C-JEAN"))
    with pytest.raises(ReleaseAuditFailed, match="2 links pointing at no citizen of the release"):
        publish_hand_made(family_hub, "res-2", links=links, citizens=citizens, run_row=RUN_ROW)
    assert {r[2] for r in _links(family_hub)} == {"res-1"}


def test_publishing_a_run_twice_keeps_one_run_row(family_hub: Warehouse, golden_tables) -> None:
    links, citizens = golden_tables("res-1")
    publish_hand_made(family_hub, "res-1", links=links.drop_columns(["run_id"]), citizens=citizens,
                       run_row=RUN_ROW)
    assert family_hub.scalar("SELECT count(*) FROM golden.resolution_run WHERE run_id = 'res-1'") == 1
    assert family_hub.scalar("SELECT records FROM golden.resolution_run") == 7
    assert {r[2] for r in _links(family_hub)} == {"res-1"}


def test_previous_links_before_and_after(wh: Warehouse, golden_tables) -> None:
    assert read_inputs(wh).previous_links is None
    links, citizens = golden_tables("res-1")
    publish_hand_made(wh, "res-1", links=links, citizens=citizens, run_row=RUN_ROW)
    got = read_inputs(wh).previous_links
    assert got is not None and got.column_names == ["record_key", "citizen_id", "run_id"]
    assert set(got["run_id"].to_pylist()) == {"res-1"}
    assert dict(zip(got.column("record_key").to_pylist(), got.column("citizen_id").to_pylist(), strict=True)) == {
        r: c for r, c in zip(links.column("record_key").to_pylist(), links.column("citizen_id").to_pylist(),
                             strict=True)
    }


def test_core_person_records_in_contract_types(family_hub: Warehouse) -> None:
    records = core_person_records(family_hub)
    assert records.schema.equals(arrow_schema(PERSON_RECORD))
    assert records.num_rows == 7
    assert records.column("record_key").to_pylist() == sorted(records.column("record_key").to_pylist())


def test_core_person_records_of_an_empty_warehouse(wh: Warehouse) -> None:
    records = core_person_records(wh)
    assert records.num_rows == 0 and records.schema.equals(arrow_schema(PERSON_RECORD))


def test_foyer_ids_carry_over_from_the_published_foyers(family_hub: Warehouse, golden_tables) -> None:
    links, citizens = golden_tables("res-2")
    publish_hand_made(family_hub, "res-2", links=links, citizens=citizens, run_row=RUN_ROW)
    foyers = family_hub.rows("SELECT DISTINCT household_id FROM golden.household_member")
    assert len(foyers) == 1
    # a new silo grouping of the same parents, whose id sorts before every other, joins the foyer
    memberships = core_memberships(family_hub)
    joining = memberships.filter(pa.compute.equal(memberships.column("record_key"), "finance:T1"))
    joining = joining.set_column(joining.schema.get_field_index("household_id"), "household_id",
                                 pa.array(["a-first:1"] * joining.num_rows)).cast(memberships.schema)
    publish_hand_made(family_hub, "res-3", links=links, citizens=citizens, run_row=RUN_ROW,
                       memberships=pa.concat_tables([memberships, joining]))
    assert family_hub.rows("SELECT DISTINCT household_id FROM golden.household_member") == foyers
    assert "a-first:1" in family_hub.scalar("SELECT source_households FROM golden.household")
