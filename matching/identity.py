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

import duckdb
import pyarrow as pa

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


def assign_citizen_ids(links: pa.Table, previous: pa.Table | None = None) -> pa.Table:
    """Give every cluster of ``links`` (record_key, cluster_id, match_probability) a citizen id.

    ``previous``: the links of earlier runs (record_key, citizen_id). Returns record_key,
    citizen_id, match_probability, one row per record of ``links``, sorted by record_key.
    """
    con = duckdb.connect()
    try:
        con.register("links_in", links.select(["record_key", "cluster_id", "match_probability"]))
        con.execute(
            "CREATE TEMP TABLE clusters AS "
            "SELECT cluster_id, min(record_key) AS seed_key FROM links_in GROUP BY cluster_id"
        )
        claimed: dict[str, str] = {}
        previous_ids: set[str] = set()
        if previous is not None and previous.num_rows:
            con.register("prev_in", previous.select(["record_key", "citizen_id"]))
            previous_ids = {r[0] for r in con.sql("SELECT DISTINCT citizen_id FROM prev_in").fetchall()}
            claimed = _claim_previous(con)
        assigned = dict(claimed)
        con.register("claimed_in", pa.table({"cluster_id": list(claimed), "x": [1] * len(claimed)},
                                            schema=pa.schema([("cluster_id", pa.string()), ("x", pa.int8())])))
        # Fresh ids are hashed in SQL; only the (rare) collisions are re-derived in Python.
        fresh = con.sql(
            f"""SELECT cluster_id, seed_key, '{ID_PREFIX}' || upper(left(sha256(seed_key), 16)) AS cid
                FROM clusters WHERE cluster_id NOT IN (SELECT cluster_id FROM claimed_in)
                ORDER BY seed_key"""
        ).fetchall()
        used = previous_ids | set(claimed.values())
        for cluster_id, seed_key, cid in fresh:
            attempt = 0
            while cid in used:
                attempt += 1
                cid = fresh_id(seed_key, attempt)
            used.add(cid)
            assigned[cluster_id] = cid
        con.register(
            "assigned",
            pa.table({"cluster_id": list(assigned.keys()), "citizen_id": list(assigned.values())}),
        )
        out = con.sql(
            """SELECT l.record_key, a.citizen_id, l.match_probability
               FROM links_in l JOIN assigned a USING (cluster_id) ORDER BY l.record_key"""
        ).to_arrow_table()
    finally:
        con.close()
    carried = len(claimed)
    log.info("citizen ids: %d clusters, %d kept a previous id, %d new",
             len(assigned), carried, len(assigned) - carried)
    return out.cast(_SCHEMA)


def _claim_previous(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """cluster_id -> previous citizen id, greedily by overlap (largest first, then smallest id)."""
    # The common case (a cluster overlaps one previous citizen that overlaps no other cluster) is
    # settled in SQL; only splits and merges go through the greedy loop below.
    con.execute(
        """
        CREATE TEMP TABLE overlap AS
        SELECT l.cluster_id, p.citizen_id, count(*) AS shared
        FROM links_in l JOIN prev_in p USING (record_key)
        GROUP BY l.cluster_id, p.citizen_id
        """
    )
    simple = con.sql(
        """
        SELECT cluster_id, citizen_id FROM overlap
        WHERE cluster_id IN (SELECT cluster_id FROM overlap GROUP BY 1 HAVING count(*) = 1)
          AND citizen_id IN (SELECT citizen_id FROM overlap GROUP BY 1 HAVING count(*) = 1)
        """
    ).fetchall()
    claimed = dict(simple)
    contested = con.sql(
        """
        SELECT cluster_id, citizen_id, shared FROM overlap
        WHERE cluster_id IN (SELECT cluster_id FROM overlap GROUP BY 1 HAVING count(*) > 1)
           OR citizen_id IN (SELECT citizen_id FROM overlap GROUP BY 1 HAVING count(*) > 1)
        ORDER BY shared DESC, citizen_id, cluster_id
        """
    ).fetchall()
    taken = set(claimed.values())
    for cluster_id, citizen_id, _shared in contested:
        if cluster_id in claimed or citizen_id in taken:
            continue
        claimed[cluster_id] = citizen_id
        taken.add(citizen_id)
    return claimed
