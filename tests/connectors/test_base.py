"""The national-id guard, JSON pages as text tables, and SourceError wording."""

from __future__ import annotations

import pyarrow as pa
import pytest

from connectors.base import (
    SourceError,
    contains_national_id,
    digit_counts,
    json_text,
    mask_national_ids,
    national_id_rows,
    text_table,
)


def nir(body: str) -> str:
    digits = body.upper().replace("2A", "19").replace("2B", "18")
    return f"{body}{97 - int(digits) % 97:02d}"


def be(body: str, born_2000: bool = False) -> str:
    n = int(("2" if born_2000 else "") + body)
    return f"{body}{97 - n % 97:02d}"


@pytest.mark.parametrize("text", [
    nir("1850578006084"),
    " ".join(["1", "85", "05", "78", "006", "084", nir("1850578006084")[-2:]]),
    nir("269092A123456"),
    nir("171022B045123"),
    be("850730033"),
    be("050730033", born_2000=True),
    "tel 85.07.30-033." + be("850730033")[-2:],
    nir("1850578006084")[:-2] + f"{(int(nir('1850578006084')[-2:]) + 1) % 97:02d}",  # a wrong key is no excuse
], ids=["nir_plain", "nir_spaced", "nir_corse_2A", "nir_corse_2B", "be_plain", "be_born_2000", "be_dotted",
        "nir_wrong_key"])
def test_national_ids_are_found_and_masked(text):
    assert contains_national_id(text)
    masked = mask_national_ids(f"x {text} y")
    assert text not in masked and masked.startswith("x ") and masked.endswith(" y")


@pytest.mark.parametrize("text", [
    "06 12 34 56 78", "+33612345678", "+32471234567", "12345678900011", "F2026-000123", "W751000001",
    "2026-01-05T09:00:00Z",
], ids=["phone_fr", "phone_e164_fr", "phone_e164_be", "siret", "invoice", "rna", "timestamp"])
def test_lookalikes_are_not_national_ids(text):
    assert not contains_national_id(text)


def test_rows_carrying_one_are_located_by_column():
    t = pa.table({"id": [1, 2, 3], "a": ["ok", None, "x"], "b": ["y", f"n {nir('1850578006084')}", "z"]})
    assert national_id_rows(t) == {1: "b"}


def test_rows_are_found_in_every_chunk_of_a_sliced_column():
    # the numpy prefilter reads the string buffers: chunk boundaries, slice offsets and large_string
    # offsets must not shift which row a number is reported in
    phone = "06 12 34 56 78"  # 10 digits: ruled out without a regex
    chunks = [pa.array(["a", phone, None], pa.large_string()),
              pa.array([f"x {nir('1850578006084')}", "", be("850730033")], pa.large_string())]
    t = pa.table({"a": pa.chunked_array(chunks)}).slice(1)
    assert national_id_rows(t) == {2: "a", 4: "a"}
    assert digit_counts(pa.array(["a1b22", None, "", phone]).slice(1)).tolist() == [0, 0, 10]
    # empty values anywhere (first, between, last) count 0 and do not shift their neighbours' sums
    assert digit_counts(pa.array(["", "12", "", "", "3a4", "x", ""])).tolist() == [0, 2, 0, 0, 2, 0, 0]
    assert digit_counts(pa.array(["", None, ""])).tolist() == [0, 0, 0]


def test_text_table_writes_what_json_text_writes():
    rows = [
        {"s": "é", "i": 12, "b": True, "f": 1.5, "o": {"k": 1}, "m": 1, "a": {"b": "x"}},
        {"s": None, "i": -3, "b": False, "f": 2, "o": [1, "2"], "m": "2", "a": {"b": 7}},
        "not an object",
        {"i": 10**20, "b": None, "a": "flat"},
    ]
    fields = ["s", "i", "b", "f", "o", "m", "a__b", "missing"]

    def value(row, field):
        for key in field.split("__"):
            row = row.get(key) if isinstance(row, dict) else None
        return row

    expected = {f: [json_text(value(r, f)) for r in rows] for f in fields}
    table = text_table(rows, fields)
    assert table.schema == pa.schema([(f, pa.string()) for f in fields])
    assert table.to_pydict() == expected
    assert expected["i"] == ["12", "-3", None, str(10**20)] and expected["b"][:2] == ["true", "false"]


def test_source_error_reads_where_not_what():
    e = SourceError("associations", "dirigeants.csv line 17", "not a date (dd/mm/yyyy expected)",
                    field="date_naissance")
    assert str(e) == ("associations: dirigeants.csv line 17, field date_naissance: "
                      "not a date (dd/mm/yyyy expected)")
    assert (e.source_system, e.locator, e.field) == ("associations", "dirigeants.csv line 17", "date_naissance")
