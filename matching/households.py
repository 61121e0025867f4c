"""Households: the silos' own groupings of people, resolved to citizens and merged into foyers.

Evidence, strongest first:

1. **silo groupings** (``core.household_membership``: family-portal families, finance debtor
   groups, CRM household accounts). Two groupings become one foyer when they share an *adult*
   member (responsable or conjoint) with a current membership: the finance group of two parents
   and the family-portal family of the same parents and their children are one foyer. A child
   shared by two groupings (separated parents) does not merge them: the child belongs to both.
2. **shared address + name**: a citizen no silo groups with anyone joins a foyer whose member has
   the same golden address (standardised street line and postcode) and the same surname; such
   citizens sharing address and surname among themselves form a foyer.

Roles (responsable, conjoint, enfant): ``enfant`` when a silo says so, or when the citizen is a
minor joining by address; among adults, the one most silos call responsable (then the oldest,
then the smallest citizen id) is the foyer's responsable, the others conjoints. Memberships keep
their dates (earliest start, latest end; null end = current). Minors are flagged from the
golden birth date at the build date.

Foyer ids persist across runs as citizen ids do (``matching.identity.carry_over``): given the
previous publication's memberships, each foyer keeps the previous id it shares most members with
(ties: the smallest id; an id goes to one foyer at most, so on a split the larger part keeps it).
A foyer sharing no member with a previous one is named ``foyer:<smallest silo grouping id>`` (or
``foyer:<smallest citizen id>`` for a foyer found by address), with ``#2``, ``#3``… when that
name belonged to another foyer in the previous publication: a name is never handed to another
foyer while the previous one is still on record.

Implementation: SQL over Arrow, on DuckDB or on Spark SQL (the same SQL: :mod:`matching.sqlengine`).
The groupings are numbered in name order so that the merging (connected components, ``_components``)
runs on integer arrays; a component's smallest number is its smallest grouping name. Ordered
distinct lists are built as ``list_sort(list_distinct(list(x)))``, which gives what
``string_agg(DISTINCT x ORDER BY x)``
gives for about half the cost. Outputs are sorted: members by foyer, role (descending), citizen;
foyers by id, those without a responsable (children only) last.
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from matching.identity import carry_over
from matching.sqlengine import DuckDBEngine, Engine
from matching.standardise import standardise
from schemas.contract import HOUSEHOLD, HOUSEHOLD_MEMBER, arrow_schema

log = logging.getLogger(__name__)

ADULT_ROLES = ("responsable", "conjoint")


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of nodes ``0..n-1`` joined by the edges ``a[i]-b[i]``: each node's
    smallest node (labels only go down, to the smallest label of a neighbour, until every edge
    joins two equal labels)."""
    label = np.arange(n)
    while True:
        low = np.minimum(label[a], label[b])
        np.minimum.at(label, a, low)
        np.minimum.at(label, b, low)
        label = label[label]
        if np.array_equal(label[a], label[b]):
            return label


def build_households(memberships: pa.Table, links: pa.Table, citizens: pa.Table, *,
                     now: datetime, keys: pa.Table | None = None,
                     previous: pa.Table | None = None, engine: Engine | None = None) -> tuple[pa.Table, pa.Table]:
    """``(household, household_member)`` tables (contract columns) of the resolved foyers.

    ``memberships``: ``core.household_membership`` columns; ``links``: record_key, citizen_id;
    ``citizens``: golden citizens (citizen_id, usage_name, birth_name, birth_date, address_line,
    postcode, city). ``now``: timezone-aware build time (minors, current memberships). ``keys``:
    citizen_id, address_key, name_key as survivorship computed them (standardised here when absent).
    ``previous``: the last publication's ``golden.household_member`` (household_id, citizen_id),
    whose foyer ids carry over. ``engine``: where the SQL runs (:mod:`matching.sqlengine`; a
    :class:`matching.spark.SparkEngine` runs the same SQL on Spark), default an in-memory DuckDB.
    """
    if now.tzinfo is None:
        raise ValueError("build_households needs a timezone-aware `now`")
    today = now.date()
    con = engine if engine is not None else DuckDBEngine()
    try:
        con.register("m_in", memberships.select(["source_system", "household_id", "record_key", "role",
                                                  "valid_from", "valid_to"]))
        con.register("links_in", links.select(["record_key", "citizen_id"]))
        people = citizens.select(["citizen_id", "birth_date", "address_line", "postcode", "city"])
        if keys is None:
            std = standardise(citizens.select(["citizen_id", "usage_name", "birth_name", "address_line", "postcode"])
                              .rename_columns(["record_key", "usage_name", "birth_name", "address_line", "postcode"]))
            keys = pa.table({"citizen_id": std["record_key"],
                             "address_key": pc.binary_join_element_wise(std["address_std"], std["postcode_std"], "|"),
                             "name_key": pc.coalesce(std["usage_name_std"], std["birth_name_std"])})
        con.register("people", people)
        con.register("keys_in", keys.select(["citizen_id", "address_key", "name_key"]))
        con.create("m", """
SELECT m.household_id AS grouping, l.citizen_id, lower(m.role) AS role, m.valid_from, m.valid_to,
       (m.valid_to IS NULL OR m.valid_to >= $today) AS current
FROM m_in m JOIN links_in l USING (record_key)""", {"today": today})
        # silo groupings numbered in name order; two share a foyer when they share a current adult
        con.create("node", """
SELECT grouping, row_number() OVER (ORDER BY grouping) - 1 AS gid FROM (SELECT DISTINCT grouping FROM m)""")
        edges = con.arrow("""
SELECT DISTINCT na.gid AS a, nb.gid AS b FROM m a JOIN m b
  ON a.citizen_id = b.citizen_id AND a.grouping < b.grouping
JOIN node na ON na.grouping = a.grouping JOIN node nb ON nb.grouping = b.grouping
WHERE a.current AND b.current AND a.role IN ('responsable', 'conjoint') AND b.role IN ('responsable', 'conjoint')
""")
        n = con.rows("SELECT count(*) FROM node")[0][0]
        # the components of the groupings' graph run here, on integer arrays (one pair per shared adult)
        root = _components(n, edges["a"].to_numpy().astype(np.int64), edges["b"].to_numpy().astype(np.int64))
        con.register("roots", pa.table({"gid": pa.array(np.arange(n), pa.int64()), "root": pa.array(root, pa.int64())}))
        # each grouping's foyer is named after the smallest grouping it is merged with
        con.create("comp", """
SELECT n.grouping, 'foyer:' || r.grouping AS foyer
FROM node n JOIN roots USING (gid) JOIN node r ON r.gid = roots.root""")
        con.create("person", """
SELECT p.citizen_id, k.address_key AS addr, k.name_key AS surname_std, p.birth_date, p.address_line, p.postcode,
       p.city, CASE WHEN p.birth_date IS NULL THEN NULL ELSE p.birth_date + INTERVAL 18 YEAR > $today END AS is_minor
FROM people p LEFT JOIN keys_in k USING (citizen_id)""", {"today": today})
        # grouped members, then ungrouped citizens joining a grouped adult's foyer by address +
        # surname, then the remaining ones sharing address + surname among themselves
        con.create("grouped", """
SELECT c.foyer, m.citizen_id, m.role, m.valid_from, m.valid_to, m.grouping, 'silo_grouping' AS evidence
FROM m JOIN comp c USING (grouping)""")
        con.create("loose", """
SELECT p.* FROM person p
WHERE p.addr IS NOT NULL AND p.surname_std IS NOT NULL
  AND p.citizen_id NOT IN (SELECT citizen_id FROM grouped)""")
        con.create("joined", """
SELECT DISTINCT mm.foyer, l.citizen_id, CASE WHEN l.is_minor THEN 'enfant' ELSE 'conjoint' END AS role,
       NULL::DATE AS valid_from, NULL::DATE AS valid_to, '' AS grouping, 'shared_address' AS evidence
FROM loose l JOIN person p ON p.addr = l.addr AND p.surname_std = l.surname_std AND p.citizen_id <> l.citizen_id
JOIN grouped mm ON mm.citizen_id = p.citizen_id AND mm.role <> 'enfant'""")
        con.create("mem", """
SELECT * FROM grouped UNION ALL SELECT * FROM joined UNION ALL
SELECT 'foyer:' || min(citizen_id) OVER (PARTITION BY addr, surname_std), citizen_id,
       CASE WHEN is_minor THEN 'enfant' ELSE 'conjoint' END, NULL::DATE, NULL::DATE, '', 'shared_address'
FROM (SELECT *, count(*) OVER (PARTITION BY addr, surname_std) AS n FROM loose
      WHERE citizen_id NOT IN (SELECT citizen_id FROM joined)) WHERE n > 1""")
        mem = _carry_foyer_ids(con, previous) if previous is not None and previous.num_rows else "mem"
        members = con.arrow(f"""
WITH per AS (
    SELECT foyer, citizen_id,
           bool_or(role = 'enfant') AS child,
           count(*) FILTER (WHERE role = 'responsable') AS resp,
           min(valid_from) AS valid_from,
           CASE WHEN bool_or(valid_to IS NULL) THEN NULL ELSE max(valid_to) END AS valid_to,
           coalesce(array_to_string(list_sort(list_distinct(list(nullif(grouping, '')))), ','), '') AS sources
    FROM {mem} GROUP BY foyer, citizen_id
),
ranked AS (
    SELECT per.*, p.is_minor, p.birth_date,
           row_number() OVER (PARTITION BY foyer ORDER BY child, resp DESC, p.birth_date NULLS LAST,
                              per.citizen_id) AS r
    FROM per LEFT JOIN person p USING (citizen_id)
)
SELECT foyer AS household_id, citizen_id,
       CASE WHEN child THEN 'enfant' WHEN r = 1 THEN 'responsable' ELSE 'conjoint' END AS role,
       valid_from, valid_to, is_minor, sources AS source_households
FROM ranked ORDER BY household_id, role DESC, citizen_id""")
        con.register("members", members)
        households = con.arrow(f"""
WITH counts AS (
    SELECT household_id,
           CAST(count(*) FILTER (WHERE valid_to IS NULL OR valid_to >= $today) AS INTEGER) AS members,
           CAST(count(*) FILTER (WHERE is_minor AND (valid_to IS NULL OR valid_to >= $today)) AS INTEGER)
               AS minors
    FROM members GROUP BY household_id
),
groupings AS (
    SELECT foyer AS household_id, array_to_string(list_sort(list_distinct(list(grouping))), ',') AS source_households
    FROM {mem} WHERE grouping <> '' GROUP BY foyer
),
head AS (
    SELECT household_id, min(citizen_id) AS citizen_id FROM members WHERE role = 'responsable'
    GROUP BY household_id
)
SELECT c.household_id, p.address_line, p.postcode, p.city, c.members, c.minors,
       coalesce(g.source_households, '') AS source_households,
       CASE WHEN g.source_households IS NULL THEN 'shared_address' ELSE 'silo_grouping' END AS evidence,
       $now AS updated_at
FROM counts c LEFT JOIN groupings g USING (household_id) LEFT JOIN head h USING (household_id)
LEFT JOIN person p ON p.citizen_id = h.citizen_id
ORDER BY h.household_id, c.household_id""", {"today": today, "now": now})
    finally:
        if engine is None:
            con.close()
    hs, ms = arrow_schema(HOUSEHOLD), arrow_schema(HOUSEHOLD_MEMBER)
    households = households.select(hs.names).cast(hs)
    members = members.select(ms.names).cast(ms)
    log.info("households: %d foyers, %d memberships", households.num_rows, members.num_rows)
    return households, members


def _carry_foyer_ids(con: Engine, previous: pa.Table) -> str:
    """The name of a table of the foyers of temp table ``mem`` renamed to the previous ids they carry
    over (module doc)."""
    current = con.arrow("SELECT DISTINCT citizen_id, foyer FROM mem ORDER BY foyer, citizen_id")
    prev = previous.select(["citizen_id", "household_id"])
    claimed = carry_over(current, prev, engine=con)
    taken = set(prev["household_id"].to_pylist()) | set(claimed.values())
    renamed = dict(claimed)
    for foyer in sorted(set(current["foyer"].to_pylist()) - set(claimed)):
        name, n = foyer, 1
        while name in taken:
            n += 1
            name = f"{foyer}#{n}"
        taken.add(name)
        if name != foyer:
            renamed[foyer] = name
    if not renamed:
        return "mem"
    con.register("renamed", pa.table({"foyer": pa.array(list(renamed), pa.string()),
                                      "final": pa.array(list(renamed.values()), pa.string())}))
    con.create("mem_renamed", """
SELECT coalesce(r.final, mem.foyer) AS foyer, mem.citizen_id, mem.role, mem.valid_from, mem.valid_to, mem.grouping,
       mem.evidence
FROM mem LEFT JOIN renamed r ON r.foyer = mem.foyer""")
    log.info("foyer ids: %d carried over, %d renamed to stay unique", len(claimed), len(renamed) - len(claimed))
    return "mem_renamed"
