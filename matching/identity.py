"""Persistent citizen ids: a person keeps their id from one resolution run to the next.

Rule (see the team notes on identity resolution):

* each new cluster takes the previous citizen id with which it shares the most records
  (ties: the smallest id); a previous id goes to one cluster at most — candidates are settled
  greedily, largest overlap first, so on a split the part keeping most records keeps the id;
* a cluster sharing no record with any previous citizen (or losing every candidate) gets a fresh
  id derived from its smallest record key, so the same input always gives the same ids;
* an id is never reused for another person: a fresh id that collides with any previous id is
  derived again (with a counter) until it is new. Previous ids that no cluster claims are
  retired, not recycled. Pass in ``previous`` every id ever issued (retired ones included) for
  that guarantee to span every run.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

import pyarrow as pa

from matching import resources
from matching.sqlengine import DuckDBEngine, Engine

log = logging.getLogger(__name__)

ID_PREFIX = "C"
_SCHEMA = pa.schema([
    pa.field("record_key", pa.string(), nullable=False),
    pa.field("citizen_id", pa.string(), nullable=False),
    pa.field("match_probability", pa.float64(), nullable=False),
])


def fresh_id(seed_key: str, attempt: int = 0) -> str:
    """The id derived from a record key (``attempt`` > 0 when an earlier derivation collided)."""
    text = seed_key if attempt == 0 else f"{seed_key}#{attempt}"
    return ID_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16].upper()


def assign_citizen_ids(
    links: pa.Table, previous: pa.Table | None = None, *, retired: Iterable[str] = (), engine: Engine | None = None
) -> pa.Table:
    """Give every cluster of ``links`` (record_key, cluster_id, match_probability) a citizen id.

    ``previous``: the published links (record_key, citizen_id); ``retired``: every id retired
    earlier (the aliases), never to be issued again. Returns record_key, citizen_id,
    match_probability, then any other column of ``links`` but cluster_id, one row per record,
    sorted by record_key. ``engine``: where the SQL runs (:mod:`matching.sqlengine`), default an
    in-memory DuckDB.
    """
    extra = [c for c in links.column_names if c not in ("record_key", "cluster_id", "match_probability")]
    eng = engine if engine is not None else DuckDBEngine()
    try:
        eng.register("links_in", links.select(["record_key", "cluster_id", "match_probability", *extra]))
        eng.create("clusters", "SELECT cluster_id, min(record_key) AS seed_key FROM links_in GROUP BY cluster_id")
        claimed: dict[str, str] = {}
        previous_ids: set[str] = set()
        if previous is not None and previous.num_rows:
            eng.register("prev_in", previous.select(["record_key", "citizen_id"]))
            previous_ids = {r[0] for r in eng.rows("SELECT DISTINCT citizen_id FROM prev_in")}
            claimed = _claim_previous(eng)
        assigned = dict(claimed)
        eng.register("claimed_in", pa.table({"cluster_id": list(claimed), "x": [1] * len(claimed)},
                                            schema=pa.schema([("cluster_id", pa.string()), ("x", pa.int8())])))
        # Fresh ids are hashed in SQL; only the (rare) collisions are re-derived in Python.
        fresh = eng.rows(
            f"""SELECT cluster_id, seed_key, '{ID_PREFIX}' || upper(left(sha256(seed_key), 16)) AS cid
                FROM clusters WHERE cluster_id NOT IN (SELECT cluster_id FROM claimed_in)
                ORDER BY seed_key"""
        )
        used = previous_ids | set(claimed.values()) | set(retired)
        for cluster_id, seed_key, cid in fresh:
            attempt = 0
            while cid in used:
                attempt += 1
                cid = fresh_id(seed_key, attempt)
            used.add(cid)
            assigned[cluster_id] = cid
        eng.register(
            "assigned",
            pa.table({"cluster_id": pa.array(list(assigned.keys()), pa.string()),
                      "citizen_id": pa.array(list(assigned.values()), pa.string())}),
        )
        extra_sql = "".join(f', l."{c}"' for c in extra)
        out = eng.arrow(
            f"""SELECT l.record_key, a.citizen_id, l.match_probability{extra_sql}
               FROM links_in l JOIN assigned a USING (cluster_id) ORDER BY l.record_key"""
        )
    finally:
        if engine is None:
            eng.close()
    carried = len(claimed)
    log.info("citizen ids: %d clusters, %d kept a previous id, %d new",
             len(assigned), carried, len(assigned) - carried)
    schema = pa.schema([*_SCHEMA, *(links.schema.field(c) for c in extra)])
    return out.cast(schema)


def retired_aliases(previous: pa.Table | None, current: pa.Table) -> pa.Table:
    """old_id -> new_id for every previous citizen id that ``current`` no longer uses.

    ``new_id`` is the current citizen holding most of the old citizen's records (ties: the
    smallest id), null when none of them is resolved any more (all deleted).
    """
    schema = pa.schema([pa.field("old_id", pa.string(), nullable=False), pa.field("new_id", pa.string())])
    if previous is None or previous.num_rows == 0:
        return schema.empty_table()
    con = resources.connect()
    try:
        con.register("prev_in", previous.select(["record_key", "citizen_id"]))
        con.register("cur_in", current.select(["record_key", "citizen_id"]))
        out = con.sql(
            """
            WITH gone AS (SELECT DISTINCT citizen_id FROM prev_in
                          WHERE citizen_id NOT IN (SELECT citizen_id FROM cur_in)),
                 went AS (SELECT p.citizen_id AS old_id, c.citizen_id AS new_id, count(*) AS n
                          FROM prev_in p JOIN cur_in c USING (record_key)
                          WHERE p.citizen_id IN (SELECT citizen_id FROM gone) GROUP BY 1, 2),
                 ranked AS (SELECT *, row_number() OVER (PARTITION BY old_id ORDER BY n DESC, new_id) AS rk
                            FROM went)
            SELECT g.citizen_id AS old_id, r.new_id
            FROM gone g LEFT JOIN ranked r ON r.old_id = g.citizen_id AND r.rk = 1
            ORDER BY 1
            """
        ).to_arrow_table()
    finally:
        con.close()
    return out.cast(schema)


def carry_over(current: pa.Table, previous: pa.Table, *, engine: Engine | None = None) -> dict[str, str]:
    """group -> previous id by the rule above, for any grouping of members (foyers of citizens too).

    ``current``: (member, group) rows; ``previous``: (member, id) rows of the last publication.
    Each group takes the previous id sharing most members with it (ties: smallest id); a previous
    id goes to one group at most; groups sharing no member are absent from the result.
    ``engine``: where the SQL runs (default an in-memory DuckDB).
    """
    eng = engine if engine is not None else DuckDBEngine()
    try:
        eng.register("links_in", current.rename_columns(["record_key", "cluster_id"]))
        eng.register("prev_in", previous.rename_columns(["record_key", "citizen_id"]))
        return _claim_previous(eng)
    finally:
        if engine is None:
            eng.close()


def _claim_previous(eng: Engine) -> dict[str, str]:
    """cluster_id -> previous citizen id, greedily by overlap (largest first, then smallest id)."""
    # The common case (a cluster overlaps one previous citizen that overlaps no other cluster) is
    # settled in SQL; only splits and merges go through the greedy loop below.
    eng.create(
        "overlap",
        """
        SELECT l.cluster_id, p.citizen_id, count(*) AS shared
        FROM links_in l JOIN prev_in p USING (record_key)
        GROUP BY l.cluster_id, p.citizen_id
        """
    )
    simple = eng.rows(
        """
        SELECT cluster_id, citizen_id FROM overlap
        WHERE cluster_id IN (SELECT cluster_id FROM overlap GROUP BY 1 HAVING count(*) = 1)
          AND citizen_id IN (SELECT citizen_id FROM overlap GROUP BY 1 HAVING count(*) = 1)
        """
    )
    claimed = dict(simple)
    contested = eng.rows(
        """
        SELECT cluster_id, citizen_id, shared FROM overlap
        WHERE cluster_id IN (SELECT cluster_id FROM overlap GROUP BY 1 HAVING count(*) > 1)
           OR citizen_id IN (SELECT citizen_id FROM overlap GROUP BY 1 HAVING count(*) > 1)
        ORDER BY shared DESC, citizen_id, cluster_id
        """
    )
    taken = set(claimed.values())
    for cluster_id, citizen_id, _shared in contested:
        if cluster_id in claimed or citizen_id in taken:
            continue
        claimed[cluster_id] = citizen_id
        taken.add(citizen_id)
    return claimed
