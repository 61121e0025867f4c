"""Survivorship: one golden row per citizen, attribute by attribute, in one DuckDB statement.

For each attribute, among the citizen's records holding a usable value (not empty, not a
placeholder — the standardised column is not null), the value kept is the one from the record
with the highest certification level, then the most recent ``updated_at``, then the value the
most records agree on (compared in standardised form), then the smallest standardised value
and record key (so ties resolve the same on every run).

The postal address (street line, postcode, commune) survives as one block from one record, so a
golden address never mixes the street of one record with the postcode of another.
"""

from __future__ import annotations

import logging
from datetime import datetime

import duckdb
import pyarrow as pa

from matching.standardise import _norm_text, standardise
from schemas.contract import CITIZEN, arrow_schema

log = logging.getLogger(__name__)


def _name_value(raw: str, std: str) -> str:
    # As the silo wrote it, unless standardisation split it ("MARTIN née DUPONT"): then the part.
    return f"CASE WHEN {_norm_text(raw)} = {std} THEN trim({raw}) ELSE {std} END"


# attribute -> (value expression(s), key expression: null when the value is unusable)
_ATTRIBUTES: dict[str, tuple[dict[str, str], str]] = {
    "given_names": ({"given_names": "trim(given_names)"}, "given_names_std"),
    "birth_name": ({"birth_name": _name_value("birth_name", "birth_name_std")}, "birth_name_std"),
    "usage_name": ({"usage_name": _name_value("usage_name", "usage_name_std")}, "usage_name_std"),
    "sex": ({"sex": "sex_std"}, "sex_std"),
    # a presumed date (YYYY-01-01) is still a birth date; a placeholder (1900-01-01) is not
    "birth_date": ({"birth_date": "CAST(birth_date AS DATE)"},
                   "CASE WHEN birth_year IS NOT NULL THEN CAST(birth_date AS VARCHAR) END"),
    "email": ({"email": "email_std"}, "email_std"),
    "phone": ({"phone": "phone_std"}, "phone_std"),
    "address": (
        {"address_line": "trim(address_line)", "postcode": "postcode_std",
         "city": "nullif(trim(city), '')"},
        "address_std || '|' || coalesce(postcode_std, '')",
    ),
}


def _golden_sql() -> str:
    ctes = []
    selects = []
    joins = []
    for attr, (values, key) in _ATTRIBUTES.items():
        value_cols = ", ".join(f"{expr} AS {name}" for name, expr in values.items())
        ctes.append(
            f"""
a_{attr} AS (
    SELECT citizen_id, {", ".join(values)} FROM (
        SELECT citizen_id, {", ".join(values)},
            row_number() OVER (
                PARTITION BY citizen_id
                ORDER BY certification_level DESC, updated_at DESC NULLS LAST, freq DESC, k, record_key
            ) AS rn
        FROM (
            SELECT *, count(*) OVER (PARTITION BY citizen_id, k) AS freq
            FROM (SELECT citizen_id, record_key, certification_level, updated_at,
                         {key} AS k, {value_cols}
                  FROM base)
            WHERE k IS NOT NULL
        )
    ) WHERE rn = 1
)"""
        )
        selects.extend(f"a_{attr}.{name}" for name in values)
        joins.append(f"LEFT JOIN a_{attr} USING (citizen_id)")
    return f"""
WITH base AS (
    SELECT l.citizen_id, s.* FROM std s JOIN links_in l USING (record_key)
),
counts AS (
    SELECT citizen_id, count(*) AS record_count,
           string_agg(DISTINCT source_system, ',' ORDER BY source_system) AS source_systems
    FROM base GROUP BY citizen_id
),
{",".join(ctes)}
SELECT counts.citizen_id, {", ".join(selects)}, record_count, source_systems, $now AS updated_at
FROM counts {" ".join(joins)}
ORDER BY counts.citizen_id
"""


def golden(person_records: pa.Table, citizen_links: pa.Table, *, now: datetime) -> pa.Table:
    """The golden ``citizen`` rows (exactly the columns of ``schemas.contract.CITIZEN``).

    ``citizen_links``: record_key, citizen_id (records absent from it — deleted ones — are
    ignored). ``now``: the timezone-aware time written to ``updated_at``.
    """
    if now.tzinfo is None:
        raise ValueError("golden() needs a timezone-aware `now`")
    std = standardise(person_records)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("std", std)
        con.register("links_in", citizen_links.select(["record_key", "citizen_id"]))
        out = con.sql(_golden_sql(), params={"now": now}).to_arrow_table()
    finally:
        con.close()
    schema = arrow_schema(CITIZEN)
    out = out.select(schema.names).cast(schema)
    log.info("golden: %d citizens from %d links", out.num_rows, citizen_links.num_rows)
    return out
