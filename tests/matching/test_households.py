"""Foyers: silo groupings resolved to citizens and merged, roles, minors, dated memberships."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from matching.households import build_households
from schemas.contract import CITIZEN, HOUSEHOLD_MEMBERSHIP, arrow_schema

NOW = datetime(2026, 10, 1, tzinfo=UTC)
ADDRESS = ("3 rue des Lilas", "69003", "Lyon")


def _citizens(*rows) -> pa.Table:
    full = []
    for cid, given, usage, born, *addr in rows:
        line, pc, city = addr or ADDRESS
        full.append({"citizen_id": cid, "given_names": given, "usage_name": usage, "birth_date": born,
                     "address_line": line, "postcode": pc, "city": city, "record_count": 1,
                     "source_systems": "x", "updated_at": NOW})
    return pa.Table.from_pylist(full, schema=arrow_schema(CITIZEN))


def _memberships(*rows) -> pa.Table:
    full = [{"source_system": hh.split(":")[0], "household_id": hh, "record_key": rk, "role": role,
             "valid_from": vf, "valid_to": vt} for hh, rk, role, *dates in rows
            for vf, vt in [tuple(dates) if dates else (None, None)]]
    return pa.Table.from_pylist(full, schema=arrow_schema(HOUSEHOLD_MEMBERSHIP))


def _links(mapping: dict[str, str]) -> pa.Table:
    return pa.table({"record_key": list(mapping), "citizen_id": list(mapping.values())})


FAMILY = _citizens(("C-MARIE", "Marie", "Dupont", date(1982, 4, 12)), ("C-JEAN", "Jean", "Dupont", date(1980, 9, 30)),
                   ("C-LEA", "Léa", "Dupont", date(2012, 5, 3)), ("C-HUGO", "Hugo", "Dupont", date(2015, 11, 20)))
FAMILY_LINKS = {"finance:t1": "C-MARIE", "finance:t2": "C-JEAN", "family:r1": "C-MARIE", "family:r2": "C-JEAN",
                "family:e1": "C-LEA", "family:e2": "C-HUGO", "salesforce:c1": "C-JEAN"}


def _by_household(members: pa.Table) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for m in members.to_pylist():
        out.setdefault(m["household_id"], {})[m["citizen_id"]] = m["role"]
    return out


def test_two_parents_and_two_children_from_three_silos_are_one_foyer_with_the_right_roles():
    memberships = _memberships(
        ("finance:groupe/7", "finance:t1", "responsable"), ("finance:groupe/7", "finance:t2", "responsable"),
        ("family:famille/3", "family:r1", "responsable"), ("family:famille/3", "family:r2", "responsable"),
        ("family:famille/3", "family:e1", "enfant"), ("family:famille/3", "family:e2", "enfant"),
        ("salesforce:account/001", "salesforce:c1", "responsable"),
    )
    households, members = build_households(memberships, _links(FAMILY_LINKS), FAMILY, now=NOW)
    assert _by_household(members) == {"foyer:family:famille/3": {
        "C-JEAN": "responsable", "C-MARIE": "conjoint", "C-LEA": "enfant", "C-HUGO": "enfant"}}
    (h,) = households.to_pylist()
    assert (h["members"], h["minors"], h["evidence"]) == (4, 2, "silo_grouping")
    assert h["source_households"] == "family:famille/3,finance:groupe/7,salesforce:account/001"
    assert (h["address_line"], h["postcode"]) == ADDRESS[:2]
    minors = {m["citizen_id"]: m["is_minor"] for m in members.to_pylist()}
    assert minors == {"C-JEAN": False, "C-MARIE": False, "C-LEA": True, "C-HUGO": True}


def test_a_child_shared_by_separated_parents_does_not_merge_their_foyers():
    citizens = _citizens(("C-A", "Anne", "Roux", date(1985, 1, 2)), ("C-B", "Bruno", "Petit", date(1983, 3, 4)),
                         ("C-K", "Kim", "Petit", date(2016, 6, 7)))
    memberships = _memberships(
        ("family:famille/1", "family:a", "responsable"), ("family:famille/1", "family:k1", "enfant"),
        ("family:famille/2", "family:b", "responsable"), ("family:famille/2", "family:k2", "enfant"))
    links = _links({"family:a": "C-A", "family:b": "C-B", "family:k1": "C-K", "family:k2": "C-K"})
    _, members = build_households(memberships, links, citizens, now=NOW)
    assert _by_household(members) == {"foyer:family:famille/1": {"C-A": "responsable", "C-K": "enfant"},
                                      "foyer:family:famille/2": {"C-B": "responsable", "C-K": "enfant"}}


def test_an_ended_membership_keeps_its_dates_and_does_not_merge_foyers():
    citizens = _citizens(("C-A", "Anne", "Roux", date(1985, 1, 2)), ("C-B", "Bruno", "Petit", date(1983, 3, 4)),
                         ("C-C", "Chloé", "Morel", date(1990, 1, 1)))
    memberships = _memberships(
        ("finance:groupe/1", "finance:a", "responsable", date(2015, 1, 1), date(2020, 6, 30)),
        ("finance:groupe/1", "finance:b", "responsable"),
        ("family:famille/9", "family:a", "responsable", date(2021, 1, 1), None),
        ("family:famille/9", "family:c", "responsable"),
    )
    links = _links({"finance:a": "C-A", "finance:b": "C-B", "family:a": "C-A", "family:c": "C-C"})
    households, members = build_households(memberships, links, citizens, now=NOW)
    assert set(_by_household(members)) == {"foyer:family:famille/9", "foyer:finance:groupe/1"}
    dated = {(m["household_id"], m["citizen_id"]): (m["valid_from"], m["valid_to"]) for m in members.to_pylist()}
    assert dated[("foyer:finance:groupe/1", "C-A")] == (date(2015, 1, 1), date(2020, 6, 30))
    assert dated[("foyer:family:famille/9", "C-A")] == (date(2021, 1, 1), None)
    counts = {h["household_id"]: h["members"] for h in households.to_pylist()}
    assert counts == {"foyer:family:famille/9": 2, "foyer:finance:groupe/1": 1}  # the ended one is not counted


def test_citizens_no_silo_groups_join_by_shared_address_and_surname():
    citizens = _citizens(
        ("C-A", "Anne", "Roux", date(1985, 1, 2)), ("C-B", "Bruno", "Roux", date(1983, 3, 4)),
        ("C-T", "Tom", "ROUX", date(2019, 1, 1), "3 R DES LILAS", "69003", "LYON"),  # written another way
        ("C-X", "Xavier", "Leroy", date(1970, 1, 1)),  # a flatmate: same address, other name
        ("C-P", "Paul", "Martin", date(1950, 1, 1), "8 rue Neuve", "69001", "Lyon"),
        ("C-Q", "Paule", "Martin", date(1952, 1, 1), "8 rue Neuve", "69001", "Lyon"),
    )
    memberships = _memberships(("finance:groupe/1", "finance:a", "responsable"))
    _, members = build_households(memberships, _links({"finance:a": "C-A"}), citizens, now=NOW)
    assert _by_household(members) == {
        "foyer:finance:groupe/1": {"C-A": "responsable", "C-B": "conjoint", "C-T": "enfant"},
        "foyer:C-P": {"C-P": "responsable", "C-Q": "conjoint"},
    }


# ---------------------------------------------------------------- persistent foyer ids
FAMILY_GROUPINGS = (("family:famille/3", "family:r1", "responsable"), ("family:famille/3", "family:r2", "responsable"),
                    ("family:famille/3", "family:e1", "enfant"), ("family:famille/3", "family:e2", "enfant"))


def _previous(members: pa.Table) -> pa.Table:
    return members.select(["household_id", "citizen_id"])


def test_a_foyer_keeps_its_id_when_a_grouping_with_a_smaller_id_joins_it():
    _, first = build_households(_memberships(*FAMILY_GROUPINGS), _links(FAMILY_LINKS), FAMILY, now=NOW)
    assert set(_by_household(first)) == {"foyer:family:famille/3"}
    # the family portal opens a second family for the same parents: its id sorts first
    grown = _memberships(*FAMILY_GROUPINGS, ("family:famille/1", "family:r1", "responsable"))
    _, fresh = build_households(grown, _links(FAMILY_LINKS), FAMILY, now=NOW)
    assert set(_by_household(fresh)) == {"foyer:family:famille/1"}  # what a run without history would name it
    _, carried = build_households(grown, _links(FAMILY_LINKS), FAMILY, now=NOW, previous=_previous(first))
    assert {k: set(v) for k, v in _by_household(carried).items()} == {
        "foyer:family:famille/3": {"C-JEAN", "C-MARIE", "C-LEA", "C-HUGO"}}


def test_on_a_split_the_larger_part_keeps_the_foyer_id_and_a_taken_name_is_never_reused():
    # one foyer: the family (grouping 3) and a finance group of Jean (grouping 9) sharing the adult Jean
    joined = _memberships(*FAMILY_GROUPINGS, ("finance:groupe/9", "finance:t2", "responsable"),
                          ("finance:groupe/9", "finance:x", "responsable"))
    citizens = pa.concat_tables([FAMILY, _citizens(("C-ZOE", "Zoé", "Martin", date(1979, 2, 2)))])
    links = _links({**FAMILY_LINKS, "finance:x": "C-ZOE"})
    _, first = build_households(joined, links, citizens, now=NOW)
    assert set(_by_household(first)) == {"foyer:family:famille/3"}
    # Jean leaves the finance group: it no longer shares an adult with the family, the foyer splits
    split = _memberships(*FAMILY_GROUPINGS, ("finance:groupe/9", "finance:x", "responsable"))
    _, after = build_households(split, links, citizens, now=NOW, previous=_previous(first))
    assert _by_household(after) == {
        "foyer:family:famille/3": {"C-JEAN": "responsable", "C-MARIE": "conjoint", "C-LEA": "enfant",
                                   "C-HUGO": "enfant"},
        "foyer:finance:groupe/9": {"C-ZOE": "responsable"}}
    # had that id been Zoé's foyer's, Zoé's foyer keeps it and the family's own name, taken, gets a suffix
    previous = pa.table({"household_id": ["foyer:family:famille/3"], "citizen_id": ["C-ZOE"]})
    _, renamed = build_households(split, links, citizens, now=NOW, previous=previous)
    assert {k: set(v) for k, v in _by_household(renamed).items()} == {
        "foyer:family:famille/3": {"C-ZOE"}, "foyer:family:famille/3#2": {"C-JEAN", "C-MARIE", "C-LEA", "C-HUGO"}}
