"""Persistent citizen ids: stable, carried over by overlap, never reused."""

from __future__ import annotations

import pyarrow as pa

from matching.identity import assign_citizen_ids, fresh_id


def _links(clusters: dict[str, list[str]]) -> pa.Table:
    rows = [(k, cid, 0.99) for cid, keys in clusters.items() for k in keys]
    return pa.table({
        "record_key": [r[0] for r in rows],
        "cluster_id": [r[1] for r in rows],
        "match_probability": [r[2] for r in rows],
    })


def _ids(table: pa.Table) -> dict[str, str]:
    return dict(zip(table["record_key"].to_pylist(), table["citizen_id"].to_pylist(), strict=True))


def test_same_input_gives_same_ids_whatever_the_row_order():
    links = _links({"a": ["f:1", "g:1"], "b": ["f:2"]})
    first = _ids(assign_citizen_ids(links))
    again = _ids(assign_citizen_ids(links.take([2, 1, 0])))
    assert first == again
    assert first["f:1"] == first["g:1"] != first["f:2"]


def test_new_id_derives_from_the_smallest_record_key_not_the_cluster_label():
    one = _ids(assign_citizen_ids(_links({"x": ["f:2", "f:1"]})))
    other = _ids(assign_citizen_ids(_links({"y": ["f:1", "f:2"]})))
    assert one == other == {"f:1": fresh_id("f:1"), "f:2": fresh_id("f:1")}


def test_a_cluster_keeps_the_previous_id_it_shares_most_records_with():
    previous = pa.table({"record_key": ["f:1", "f:2", "f:3", "g:9"],
                         "citizen_id": ["C-OLD-A", "C-OLD-A", "C-OLD-A", "C-OLD-B"]})
    # f:3 left A and joined B's record; a new record f:4 joined A
    links = _links({"n1": ["f:1", "f:2", "f:4"], "n2": ["f:3", "g:9"]})
    ids = _ids(assign_citizen_ids(links, previous))
    assert ids["f:1"] == ids["f:4"] == "C-OLD-A"
    assert ids["g:9"] == ids["f:3"] == "C-OLD-B"


def test_on_a_split_the_previous_id_goes_to_one_cluster_only():
    previous = pa.table({"record_key": ["f:1", "f:2", "f:3"], "citizen_id": ["C-OLD"] * 3})
    ids = _ids(assign_citizen_ids(_links({"n1": ["f:1", "f:2"], "n2": ["f:3"]}), previous))
    assert ids["f:1"] == ids["f:2"] == "C-OLD"
    assert ids["f:3"] not in ("C-OLD", ids["f:1"])


def test_on_a_merge_ties_go_to_the_smallest_previous_id():
    previous = pa.table({"record_key": ["f:1", "f:2"], "citizen_id": ["C-OLD-B", "C-OLD-A"]})
    ids = _ids(assign_citizen_ids(_links({"n": ["f:1", "f:2"]}), previous))
    assert set(ids.values()) == {"C-OLD-A"}


def test_an_id_is_never_reused_for_another_person():
    # Two previous citizens merge: one id survives, the other is retired; the new person (e:5)
    # must not receive the retired id.
    previous = pa.table({"record_key": ["f:1", "g:0"], "citizen_id": [fresh_id("f:1"), "C-OTHER"]})
    links = _links({"n1": ["f:1", "g:0"], "n2": ["e:5"]})
    ids = _ids(assign_citizen_ids(links, previous))
    retired = {fresh_id("f:1"), "C-OTHER"} - {ids["f:1"]}
    assert retired and not retired & set(ids.values())


def test_a_fresh_id_colliding_with_a_previous_id_is_derived_again():
    # a previous citizen (now gone) held exactly the id a new cluster would derive
    previous = pa.table({"record_key": ["z:1"], "citizen_id": [fresh_id("f:1")]})
    ids = _ids(assign_citizen_ids(_links({"n": ["f:1"]}), previous))
    assert ids["f:1"] == fresh_id("f:1", 1) != fresh_id("f:1")
