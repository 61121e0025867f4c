"""Survivorship: the golden value of every attribute, with its provenance, conflicts and worklists.

The rules are data (:mod:`schemas.survivorship`): for each attribute, among the citizen's linked
records holding a usable value (not empty, not a placeholder — the standardised column is not
null), the records are ranked by the attribute's criteria (by default proof level, then source
priority, then recency, then frequency) and closed by the smallest record key, so ties resolve the
same on every run and in any row order.

Everything runs as DuckDB SQL over Arrow, on a long table of candidates (one row per record and
attribute). The criteria are packed into one integer ranking key per candidate, so two hash
aggregations (no sort) pick each value's best record and then the two best values; comparing
the winner with the runner-up names the criterion that decided (the ``rule`` kept as provenance).

The postal address (street line, postcode, commune) survives as one block from one record, so a
golden address never mixes the street of one record with the postcode of another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from matching.standardise import _norm_text, standardise
from schemas.contract import CITIZEN, CITIZEN_ATTRIBUTE, DISCREPANCY, arrow_schema
from schemas.survivorship import CRITERIA, RULES, validate

log = logging.getLogger(__name__)


def _name_value(raw: str, std: str) -> str:
    # As the silo wrote it, unless standardisation split it ("MARTIN née DUPONT"): then the part.
    return f"CASE WHEN {_norm_text(raw)} = {std} THEN trim({raw}) ELSE {std} END"


# attribute -> (display value, comparison key: null when the value is unusable)
_CANDIDATES: dict[str, tuple[str, str]] = {
    "given_names": ("trim(given_names)", "given_names_std"),
    "birth_name": (_name_value("birth_name", "birth_name_std"), "birth_name_std"),
    "usage_name": (_name_value("usage_name", "usage_name_std"), "usage_name_std"),
    "sex": ("sex_std", "sex_std"),
    # a presumed date (YYYY-01-01) is still a birth date; a placeholder (1900-01-01) is not
    "birth_date": ("CAST(CAST(birth_date AS DATE) AS VARCHAR)",
                   "CASE WHEN birth_year IS NOT NULL THEN CAST(CAST(birth_date AS DATE) AS VARCHAR) END"),
    "email": ("email_std", "email_std"),
    "phone": ("phone_std", "phone_std"),
    "address": ("concat_ws(', ', trim(address_line), concat_ws(' ', postcode_std, nullif(trim(city), '')))",
                "address_std || '|' || coalesce(postcode_std, '')"),
}
_ADDRESS_PARTS = {"address_line": "trim(address_line)", "postcode": "postcode_std",
                  "city": "nullif(trim(city), '')"}
_GOLDEN_ATTRIBUTES = ("given_names", "birth_name", "usage_name", "sex", "birth_date", "email", "phone",
                      "address_line", "postcode", "city")
_NO_PRIORITY = 1000


@dataclass(frozen=True)
class Survivorship:
    """What survivorship produces: the golden rows and their provenance and worklists."""

    citizens: pa.Table  # CITIZEN columns
    attributes: pa.Table  # CITIZEN_ATTRIBUTE columns: one row per citizen and non-null golden attribute
    discrepancies: pa.Table  # DISCREPANCY columns
    # citizen_id, address_key, name_key: the golden address and usage name standardised (for foyers)
    keys: pa.Table | None = None

    @property
    def num_rows(self) -> int:
        """Number of golden citizens (what a run summary counts)."""
        return self.citizens.num_rows


def _candidates_sql(rules: dict[str, dict[str, Any]]) -> str:
    parts = []
    for attr, (value, key) in _CANDIDATES.items():
        if attr not in rules:
            continue
        addr = ", ".join(f"{expr} AS {name}" if attr == "address" else f"NULL AS {name}"
                         for name, expr in _ADDRESS_PARTS.items())
        parts.append(f"SELECT citizen_id, record_key, rid, source_system, certification_level, updated_at, "
                     f"'{attr}' AS attribute, 0 AS fallback, {key} AS k, {value} AS v, {addr} FROM base")
        fb = rules[attr].get("fallback")
        if fb and fb in _CANDIDATES:
            fvalue, fkey = _CANDIDATES[fb]
            nulls = ", ".join(f"NULL AS {name}" for name in _ADDRESS_PARTS)
            parts.append(f"SELECT citizen_id, record_key, rid, source_system, certification_level, updated_at, "
                         f"'{attr}' AS attribute, 1 AS fallback, {fkey} AS k, {fvalue} AS v, {nulls} FROM base")
    return " UNION ALL ".join(f"SELECT * FROM ({p}) WHERE k IS NOT NULL" for p in parts)


# Each criterion as a bounded non-negative integer, bigger is better, and its width in bits. The
# ranking key packs them, in the attribute's order, into one HUGEINT with the record's ordinal
# (smallest record key best) in the lowest bits: one integer max() ranks, no sort needed.
_FIELDS = {
    "certification": ("certification_level", "least(greatest(certification_level, 0), 3)", 2),
    "source_priority": ("prank", f"{2 * _NO_PRIORITY} - prank", 11),
    "recency": ("secs", "least(greatest(coalesce(secs, 0), 0), 34359738367)", 35),
    "frequency": ("freq", "least(freq, 16777215)", 24),
}
_RID_BITS = 32


def _packed_key_sql(rules: dict[str, dict[str, Any]], *, with_frequency: bool) -> str:
    """SQL of the packed ranking key per attribute (frequency 0 when not ``with_frequency``)."""
    whens = []
    for attr, rule in rules.items():
        shift, terms = _RID_BITS, [f"CAST({(1 << _RID_BITS) - 1} - rid AS HUGEINT)"]
        for c in reversed(rule["order"]):
            _, expr, width = _FIELDS[c]
            if c != "frequency" or with_frequency:
                terms.append(f"(CAST({expr} AS HUGEINT) << {shift})")
            shift += width
        whens.append(f"WHEN '{attr}' THEN {' + '.join(terms)}")
    return f"CASE attribute {' '.join(whens)} END"


def _frequency_term_sql(rules: dict[str, dict[str, Any]]) -> str:
    """The frequency's share of the packed key (added to a value's best row key, packed without it)."""
    whens = []
    for attr, rule in rules.items():
        if "frequency" not in rule["order"]:
            continue
        shift = _RID_BITS + sum(_FIELDS[c][2] for c in rule["order"][rule["order"].index("frequency") + 1:])
        whens.append(f"WHEN '{attr}' THEN (CAST({_FIELDS['frequency'][1]} AS HUGEINT) << {shift})")
    return f"CASE attribute {' '.join(whens)} ELSE CAST(0 AS HUGEINT) END" if whens else "CAST(0 AS HUGEINT)"


def _rule_names_sql(rules: dict[str, dict[str, Any]]) -> str:
    def differs(c: str) -> str:
        return "p.w_freq <> p.c_freq" if c == "frequency" else f"w.{_FIELDS[c][0]} <> c.{_FIELDS[c][0]}"

    decide = []
    for i in range(len(CRITERIA)):
        whens = " ".join(f"WHEN '{a}' THEN {differs(r['order'][i])}" for a, r in rules.items() if i < len(r["order"]))
        names = " ".join(f"WHEN '{a}' THEN '{r['order'][i]}'" for a, r in rules.items() if i < len(r["order"]))
        if whens:
            decide.append(f"WHEN coalesce(CASE p.attribute {whens} END, false) THEN CASE p.attribute {names} END")
    return " ".join(decide)


def _sql(rules: dict[str, dict[str, Any]]) -> dict[str, str]:
    rid_mask = (1 << _RID_BITS) - 1
    return {
        "cand": f"""
CREATE TEMP TABLE cand AS
WITH base AS (
    SELECT l.citizen_id, s.*, row_number() OVER (ORDER BY s.record_key) AS rid
    FROM std s JOIN links_in l USING (record_key)
),
raw AS ({_candidates_sql(rules)}),
keyed AS (
    SELECT raw.*, coalesce(p.rank, {_NO_PRIORITY}) AS prank, CAST(epoch(raw.updated_at) AS BIGINT) AS secs
    FROM raw LEFT JOIN prio p ON p.attribute = raw.attribute AND p.source_system = raw.source_system
)
SELECT *, {_packed_key_sql(rules, with_frequency=False)} AS row_key FROM keyed
""",
        # one row per distinct value: its frequency and its best record's key (integers only)
        "vals": f"""
CREATE TEMP TABLE vals AS
SELECT citizen_id, attribute, fallback, k, freq,
       CAST({rid_mask} - (best_key & {rid_mask}) AS BIGINT) AS rid,
       (CAST(1 - fallback AS HUGEINT) << 120) + best_key + {_frequency_term_sql(rules)} AS value_key
FROM (SELECT citizen_id, attribute, fallback, k, count(*) AS freq, max(row_key) AS best_key
      FROM cand GROUP BY citizen_id, attribute, fallback, k)
""",
        # the two best values of each citizen and attribute
        "ranked": """
CREATE TEMP TABLE ranked AS
SELECT citizen_id, attribute, count(*) FILTER (WHERE fallback = 0) AS n_values,
       max_by(struct_pack(fallback, k, freq, rid), value_key, 2) AS top
FROM vals GROUP BY citizen_id, attribute
""",
        "winners": f"""
CREATE TEMP TABLE winners AS
SELECT p.citizen_id, p.attribute, w.k, w.v, w.address_line, w.postcode, w.city, w.record_key, w.source_system,
       w.certification_level, w.updated_at, w.fallback,
       CASE WHEN w.fallback = 1 THEN 'fallback'
            WHEN p.c_k IS NULL OR p.c_fallback = 1 THEN 'unanimous'
            {_rule_names_sql(rules)}
            ELSE 'tie_break' END AS rule,
       p.n_values AS candidates
FROM (SELECT citizen_id, attribute, n_values, top[1].fallback AS w_fallback, top[1].rid AS w_rid,
             top[1].freq AS w_freq, top[2].fallback AS c_fallback, top[2].rid AS c_rid, top[2].k AS c_k,
             top[2].freq AS c_freq
      FROM ranked) p
JOIN cand w ON w.rid = p.w_rid AND w.attribute = p.attribute AND w.fallback = p.w_fallback
LEFT JOIN cand c ON c.rid = p.c_rid AND c.attribute = p.attribute AND c.fallback = p.c_fallback
""",
    }


def _prio_table(rules: dict[str, dict[str, Any]]) -> pa.Table:
    rows = [(a, s, i) for a, r in rules.items() for i, s in enumerate(r.get("source_priority", []))]
    return pa.table({"attribute": pa.array([r[0] for r in rows], pa.string()),
                     "source_system": pa.array([r[1] for r in rows], pa.string()),
                     "rank": pa.array([r[2] for r in rows], pa.int32())})


def survive(person_records: pa.Table, citizen_links: pa.Table, *, now: datetime,
            rules: dict[str, dict[str, Any]] | None = None, standardised: pa.Table | None = None) -> Survivorship:
    """Golden citizens with provenance and discrepancy worklists.

    ``citizen_links``: record_key, citizen_id (records absent from it — deleted ones — are
    ignored). ``now``: the timezone-aware time written to ``updated_at``. ``rules``: the
    survivorship rules (default :data:`schemas.survivorship.RULES`). ``standardised``: the
    linked records already standardised (what the resolution compared: ``Resolution.standardised``),
    so they are not standardised a second time; ``person_records`` are standardised when None.
    """
    if now.tzinfo is None:
        raise ValueError("survivorship needs a timezone-aware `now`")
    rules = RULES if rules is None else rules
    validate(rules)
    std = standardise(person_records) if standardised is None else standardised
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("std", std)
        con.register("links_in", citizen_links.select(["record_key", "citizen_id"]))
        con.register("prio", _prio_table(rules))
        sql = _sql(rules)
        for step in ("cand", "vals", "ranked", "winners"):  # one statement each: cheaper than one plan
            con.execute(sql[step])
        citizens = _citizens(con, now)
        attributes = _attributes(con, rules)
        discrepancies = _discrepancies(con, rules)
        keys = con.sql("SELECT citizen_id, max(k) FILTER (WHERE attribute = 'address') AS address_key, "
                       "max(k) FILTER (WHERE attribute = 'usage_name') AS name_key "
                       "FROM winners GROUP BY citizen_id").to_arrow_table()
    finally:
        con.close()
    log.info("survivorship: %d citizens, %d attribute provenances, %d discrepancies from %d links",
             citizens.num_rows, attributes.num_rows, discrepancies.num_rows, citizen_links.num_rows)
    return Survivorship(citizens, attributes, discrepancies, keys)


def _citizens(con: duckdb.DuckDBPyConnection, now: datetime) -> pa.Table:
    pivot = []
    for a in _GOLDEN_ATTRIBUTES:
        if a in _ADDRESS_PARTS:
            pivot.append(f"max({a}) FILTER (WHERE attribute = 'address') AS {a}")
        elif a == "birth_date":
            pivot.append("CAST(max(v) FILTER (WHERE attribute = 'birth_date') AS DATE) AS birth_date")
        else:
            pivot.append(f"max(v) FILTER (WHERE attribute = '{a}') AS {a}")
    out = con.sql(f"""
WITH counts AS (
    SELECT l.citizen_id, count(*) AS record_count,
           string_agg(DISTINCT s.source_system, ',' ORDER BY s.source_system) AS source_systems
    FROM std s JOIN links_in l USING (record_key) GROUP BY l.citizen_id
),
g AS (SELECT citizen_id, {", ".join(pivot)} FROM winners GROUP BY citizen_id)
SELECT counts.citizen_id, g.* EXCLUDE (citizen_id), record_count, source_systems, $now AS updated_at
FROM counts LEFT JOIN g USING (citizen_id) ORDER BY counts.citizen_id
""", params={"now": now}).to_arrow_table()
    schema = arrow_schema(CITIZEN)
    return out.select(schema.names).cast(schema)


def _attributes(con: duckdb.DuckDBPyConnection, rules: dict[str, dict[str, Any]]) -> pa.Table:
    conflict = [a for a, r in rules.items() if r.get("conflict")]
    parts = ["SELECT *, attribute AS golden_attribute, v AS value FROM winners WHERE attribute <> 'address'"]
    parts += [f"SELECT *, '{p}', {p} FROM winners WHERE attribute = 'address' AND {p} IS NOT NULL"
              for p in _ADDRESS_PARTS]
    out = con.sql(f"""
SELECT citizen_id, golden_attribute AS attribute, value, record_key, source_system, certification_level,
       updated_at AS observed_at, rule, (candidates > 1 AND list_contains($conflict, attribute)) AS conflict,
       CAST(candidates AS INTEGER) AS candidates
FROM ({" UNION ALL ".join(parts)}) ORDER BY citizen_id, attribute
""", params={"conflict": conflict or [""]}).to_arrow_table()
    schema = arrow_schema(CITIZEN_ATTRIBUTE)
    return out.select(schema.names).cast(schema)


def _discrepancies(con: duckdb.DuckDBPyConnection, rules: dict[str, dict[str, Any]]) -> pa.Table:
    worklist = [a for a, r in rules.items() if r.get("worklist")]
    out = con.sql("""
SELECT c.source_system, c.record_key, c.citizen_id, c.attribute, c.v AS silo_value, w.v AS golden_value,
       w.record_key AS golden_record_key, w.source_system AS golden_source_system,
       w.certification_level AS golden_certification_level
FROM cand c JOIN winners w ON w.citizen_id = c.citizen_id AND w.attribute = c.attribute
WHERE c.fallback = 0 AND c.k <> w.k AND list_contains($worklist, c.attribute)
ORDER BY c.source_system, c.record_key, c.attribute
""", params={"worklist": worklist or [""]}).to_arrow_table()
    schema = arrow_schema(DISCREPANCY)
    return out.select(schema.names).cast(schema)


def golden(person_records: pa.Table, citizen_links: pa.Table, *, now: datetime,
           rules: dict[str, dict[str, Any]] | None = None, standardised: pa.Table | None = None) -> pa.Table:
    """The golden ``citizen`` rows only (exactly the columns of ``schemas.contract.CITIZEN``)."""
    return survive(person_records, citizen_links, now=now, rules=rules, standardised=standardised).citizens
