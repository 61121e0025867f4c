"""Pairwise precision / recall from counts, on a case worked out by hand."""

from __future__ import annotations

import pyarrow as pa
import pytest

from matching.evaluate import blocking_rule_recall, pairwise_scores


def test_pairwise_scores_on_a_hand_made_case():
    # truth: person 1 = {a, b, c}, person 2 = {d, e}, person 3 = {f}
    truth = pa.table({"record_key": list("abcdef"), "person_id": [1, 1, 1, 2, 2, 3]})
    # predicted: {a, b}, {c}, {d, e, f}
    links = pa.table({"record_key": list("abcdef"), "cluster_id": list("aacddd")})
    s = pairwise_scores(links, truth)
    # predicted pairs: ab, de, df, ef = 4; true pairs: ab, ac, bc, de = 4; tp: ab, de = 2
    assert (s["tp"], s["fp"], s["fn"]) == (2, 2, 2)
    assert s["precision"] == pytest.approx(0.5)
    assert s["recall"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx(0.5)


def test_pairwise_scores_accepts_citizen_ids_and_ignores_records_not_resolved():
    truth = pa.table({"record_key": ["a", "b", "gone"], "person_id": [1, 1, 1]})
    links = pa.table({"record_key": ["a", "b"], "citizen_id": ["C1", "C1"]})
    s = pairwise_scores(links, truth)
    assert (s["precision"], s["recall"], s["records"]) == (1.0, 1.0, 2)


def test_blocking_rule_recall_evaluates_the_rules_on_the_true_pairs():
    # person 1 = {a, b, c}: a-b share a postcode, b-c share a name from the list, a-c nothing
    truth = pa.table({"record_key": list("abcd"), "person_id": [1, 1, 1, 2]})
    mi = pa.table({"record_key": list("abcd"), "postcode_std": ["69001", "69001", None, "69001"],
                   "surnames_std": [["DUPONT"], ["MARTIN", "DUPONT"], ["MARTIN"], ["DUPONT"]]})
    rules = [{"blocking_rule": 'l."postcode_std" = r."postcode_std"'},
             {"blocking_rule": 'l."surnames_std" = r."surnames_std"', "arrays_to_explode": ["surnames_std"]}]
    r = blocking_rule_recall(mi, truth, rules)
    assert (r["covered"], r["true_pairs"]) == (2, 3)
    r = blocking_rule_recall(mi, truth, rules[:1])
    assert (r["covered"], r["true_pairs"]) == (1, 3)
