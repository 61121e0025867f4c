"""The search index's variant table, built a batch of terms at a time: every variant of every
name term, once, with its term's columns, sorted — whatever the batch boundaries."""

from __future__ import annotations

import importlib

import pyarrow as pa
import pytest

search = importlib.import_module("warehouse.search")  # the module (the package exports its search function)


def _terms() -> pa.Table:
    keys = ["marie", "dupont", "jo", "anne", "lefebvre", "nguyen", "ali", "martin", "marie", "zoe"]
    return pa.table({
        "term_id": pa.array(range(len(keys)), pa.int32()),
        "field": pa.array(["given_names", "birth_name", "given_names", "given_names", "usage_name",
                           "birth_name", "given_names", "usage_name", "birth_name", "given_names"], pa.string()),
        "key": pa.array(keys, pa.string()),
        "citizens": pa.array([5, 3, 1, 7, 2, 9, 4, 6, 8, 1], pa.int32()),
    })


def _expected(terms: pa.Table) -> list[tuple[int, int, str, int]]:
    rows = [(v, t["term_id"], t["field"], t["citizens"]) for t in terms.to_pylist()
            for v in search.key_variants(t["key"])]
    return sorted(rows, key=lambda r: (r[0], r[1]))


@pytest.mark.parametrize("batch", [1, 3, 4, 10, 65_536])
def test_variant_table_whatever_the_batches(monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    monkeypatch.setattr(search, "_VARIANT_BATCH", batch)
    terms = _terms()
    table = search._variant_table(terms)
    assert table.schema.names == ["variant", "term_id", "field", "citizens"]
    assert [f.type for f in table.schema] == [pa.int64(), pa.int32(), pa.string(), pa.int32()]
    got = list(zip(*(table[c].to_pylist() for c in table.schema.names), strict=True))
    assert got == _expected(terms)
    # "jo" (under 3 letters) has no variant; "ali" (3) only itself; "marie" itself and its 5 deletions
    assert 2 not in table["term_id"].to_pylist()
    assert table["term_id"].to_pylist().count(6) == 1
    assert table["term_id"].to_pylist().count(0) == 6


def test_variant_table_of_no_terms() -> None:
    table = search._variant_table(_terms().slice(0, 0))
    assert table.num_rows == 0
    assert table.schema.names == ["variant", "term_id", "field", "citizens"]
