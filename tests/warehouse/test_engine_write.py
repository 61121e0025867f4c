"""Warehouse.write: what goes in comes back, whatever the Arrow table's chunk layout."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from schemas.contract import REVIEW_QUEUE, arrow_schema
from warehouse.engine import Warehouse


def test_a_string_column_with_an_empty_first_chunk_is_written_as_is(wh: Warehouse) -> None:
    # a DuckDB result with an empty first batch plus an added column: pyarrow 26's CSV writer
    # wrote such a column as NUL bytes, which PostgreSQL's COPY refused
    at = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    rows = [{"queue_id": f"Q{i}", "record_key_l": f"a:{i}", "record_key_r": f"b:{i}", "match_probability": 0.5,
             "match_weight": 0.0, "explanation": '{"surname": 6.3}', "citizen_id_l": "C1", "citizen_id_r": "C2",
             "queued_at": at, "run_id": "r1"} for i in range(2)]
    full = pa.Table.from_pylist(rows, schema=arrow_schema(REVIEW_QUEUE))
    chunked = pa.concat_tables([full.slice(0, 0), full])
    assert [len(c) for c in chunked["queue_id"].chunks] == [0, 2]
    wh.write(REVIEW_QUEUE, chunked, replace=True)
    back = wh.rows('SELECT queue_id, record_key_r FROM "golden"."review_queue" ORDER BY queue_id')
    assert back == [("Q0", "b:0"), ("Q1", "b:1")]
