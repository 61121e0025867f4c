"""Human decisions in the clustering: must-link edges, cannot-link repair, and explanations."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from matching.resolve import resolve
from tests.matching.conftest import make_records


def _clusters(links: pa.Table) -> dict[str, str]:
    return dict(zip(links["record_key"].to_pylist(), links["cluster_id"].to_pylist(), strict=True))


def _family() -> pa.Table:
    shared = {"usage_name": "Lefebvre", "address_line": "95 impasse de Créqui", "postcode": "69003",
              "updated_at": datetime(2026, 1, 1, tzinfo=UTC)}
    return make_records(
        {**shared, "source_system": "family", "source_id": "r1", "role": "parent",
         "given_names": "Nathalie", "birth_date": date(1984, 5, 2), "sex": "F", "email": "n.lefebvre@free.fr"},
        {**shared, "source_system": "finance", "source_id": "t1", "role": "debiteur",
         "given_names": "NATHALIE", "birth_date": date(1984, 5, 2), "email": "n.lefebvre@free.fr"},
        {**shared, "source_system": "assoc", "source_id": "d1", "role": "dirigeant",
         "given_names": "Nathalie", "birth_date": date(1984, 5, 2)},
        # her brother: nothing personal in common
        {**shared, "source_system": "family", "source_id": "r2", "role": "parent",
         "given_names": "Olivier", "birth_date": date(1979, 11, 23), "sex": "M"},
    )


@pytest.fixture(scope="module")
def model(resolution):
    return resolution.model_json


def test_without_decisions_the_three_records_of_one_person_are_one_cluster(model):
    c = _clusters(resolve(_family(), model_json=model).links)
    assert c["family:r1"] == c["finance:t1"] == c["assoc:d1"] != c["family:r2"]


def test_a_must_link_joins_what_the_model_keeps_apart(model):
    c = _clusters(resolve(_family(), model_json=model, must_links=[("family:r2", "family:r1")]).links)
    assert c["family:r2"] == c["family:r1"]


def test_a_cannot_link_separates_a_pair_and_the_rest_follows_the_strongest_edges(model):
    res = resolve(_family(), model_json=model, cannot_links=[("finance:t1", "family:r1")])
    c = _clusters(res.links)
    assert c["finance:t1"] != c["family:r1"]
    # the third record goes with one of them, not nowhere
    assert c["assoc:d1"] in (c["finance:t1"], c["family:r1"])


def test_a_cannot_link_on_a_two_record_cluster_is_honoured(model):
    records = _family().slice(0, 2)
    base = resolve(records, model_json=model)
    assert len(set(_clusters(base.links).values())) == 1
    cut = resolve(records, model_json=model, cannot_links=[("family:r1", "finance:t1")])
    assert len(set(_clusters(cut.links).values())) == 2


def test_human_must_links_outrank_the_model_edges_a_cannot_link_forbids(model):
    res = resolve(_family(), model_json=model,
                  must_links=[("family:r2", "family:r1")], cannot_links=[("family:r2", "finance:t1")])
    c = _clusters(res.links)
    assert c["family:r2"] == c["family:r1"] != c["finance:t1"]
    assert res.must_links_refused == 0


def test_a_must_link_chain_that_would_join_a_cannot_linked_pair_loses(model):
    res = resolve(_family(), model_json=model,
                  must_links=[("family:r2", "family:r1"), ("family:r1", "finance:t1")],
                  cannot_links=[("family:r2", "finance:t1")])
    c = _clusters(res.links)
    assert c["family:r2"] != c["finance:t1"]
    assert res.must_links_refused == 1


def test_decisions_on_unknown_records_are_ignored(model):
    plain = resolve(_family(), model_json=model)
    res = resolve(_family(), model_json=model, must_links=[("gone:1", "family:r1")],
                  cannot_links=[("gone:1", "gone:2")])
    assert res.links.equals(plain.links)


def test_each_link_explains_the_edge_that_tied_it(model):
    links = resolve(_family(), model_json=model, must_links=[("family:r2", "assoc:d1")]).links
    by_key = {r["record_key"]: r for r in links.to_pylist()}
    fin = by_key["finance:t1"]
    explanation = json.loads(fin["explanation"])
    assert explanation["first_name"] > 0 and explanation["birth_date"] > 0
    assert "phone" not in explanation  # unknown on both sides: no evidence either way
    assert fin["linked_via"] in ("family:r1", "assoc:d1")
    prior = model["probability_two_random_records_match"]
    # the contributions and the prior add up to the edge's match weight (to the rounding)
    assert fin["match_weight"] == pytest.approx(sum(explanation.values()) + math.log2(prior / (1 - prior)), abs=0.5)
    assert json.loads(by_key["family:r2"]["explanation"]) == {"decision": "must-link"}
    assert by_key["family:r2"]["linked_via"] == "assoc:d1"


def test_a_record_alone_has_no_explanation(model):
    links = resolve(_family().slice(3, 1), model_json=model).links
    row = links.to_pylist()[0]
    assert (row["match_probability"], row["match_weight"], row["explanation"], row["linked_via"]) == (
        1.0, None, None, None)
