"""Batch resolution: person records in, clusters of records (one per person) out.

standardise → (train) → Splink predict → guarded edges → connected components.

Household guard. Members of one household share surname, address, phone and often e-mail;
twins share a birth date too. Three things keep them apart:

* the model gives a first-name disagreement a fixed weight of about -20 bits
  (:data:`matching.model.FIRST_NAME_DISAGREE_M`);
* an edge enters the clustering only with *personal* evidence: first names agree (at any
  level), or, when a side has no first name, birth dates agree firmly. Surname, address,
  phone and e-mail are shared by a household, so they alone never make an edge, whatever
  the probability they add up to;
* a phone number or e-mail carried by people of many different surnames is a switchboard or a
  shared mailbox, not a person's: it is ignored (:func:`null_shared_contacts`).

Deleted records (``deleted_at`` not null) are not resolved.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute

from matching import model as mdl
from matching.standardise import standardise

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.6
# Pairs below this probability are not returned (a review queue reads the band between).
PAIR_FLOOR = 0.01
# A phone / e-mail seen with more distinct surnames than this is an organisation's.
MAX_SURNAMES_PER_CONTACT = 3

# gamma values (Splink numbers the non-null levels from the last, "else" = 0, null = -1)
_FIRST_NAME_AGREES = 2  # jw >= 0.85 and above ("another prénom shared" is not enough)
_BIRTH_DATE_FIRM = 3  # one digit differs, swapped, exact


@dataclass
class Resolution:
    """What :func:`resolve` returns."""

    links: pa.Table  # record_key, cluster_id, match_probability
    pairs: pa.Table  # record_key_l, record_key_r, match_probability, match_weight
    model_json: dict[str, Any]
    model_version: str
    threshold: float
    pairs_scored: int
    clusters_rebuilt: int = 0  # connected components split because they held a cannot-link
    timings: dict[str, float] = field(default_factory=dict)


def null_shared_contacts(
    standardised: pa.Table, *, max_surnames: int = MAX_SURNAMES_PER_CONTACT,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pa.Table:
    """Null ``phone_std`` / ``email_std`` values carried by more than ``max_surnames`` surnames.

    A household shares a landline or a family mailbox under one or two surnames; a town-hall
    switchboard or a CCAS mailbox appears under dozens. Dataset-level, so not in standardise.
    """
    db = con or duckdb.connect()
    try:
        db.register("std_in", standardised)
        cols = ", ".join(
            f'"{c}"' for c in standardised.column_names if c not in ("phone_std", "email_std")
        )
        out = db.sql(
            f"""
            WITH shared_phone AS (
                SELECT phone_std FROM std_in WHERE phone_std IS NOT NULL
                GROUP BY phone_std HAVING count(DISTINCT surname_std) > $m
            ), shared_email AS (
                SELECT email_std FROM std_in WHERE email_std IS NOT NULL
                GROUP BY email_std HAVING count(DISTINCT surname_std) > $m
            )
            SELECT {cols},
                CASE WHEN phone_std IN (SELECT phone_std FROM shared_phone) THEN NULL
                     ELSE phone_std END AS phone_std,
                CASE WHEN email_std IN (SELECT email_std FROM shared_email) THEN NULL
                     ELSE email_std END AS email_std
            FROM std_in
            """,
            params={"m": max_surnames},
        ).to_arrow_table()
        db.unregister("std_in")
    finally:
        if con is None:
            db.close()
    return out.select(standardised.column_names)


def prepare(person_records: pa.Table) -> pa.Table:
    """Live records (not deleted), standardised, shared contacts removed: the model's input."""
    live = person_records
    if "deleted_at" in live.column_names:
        live = live.filter(live["deleted_at"].is_null())
    std = null_shared_contacts(standardise(live))
    # a fixed row order: seeded sampling (u estimation) picks rows by position
    return std.take(pa.compute.sort_indices(std["record_key"]))


def resolve(
    person_records: pa.Table,
    *,
    model_json: dict[str, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    pair_floor: float | None = PAIR_FLOOR,
) -> Resolution:
    """Resolve person records (all silos together) into clusters, one per person.

    Trains the model when ``model_json`` is None. ``links`` holds every live record once:
    its cluster (Splink's: the smallest record key of the cluster) and the best probability
    tying it into the cluster (1.0 alone). ``pairs`` holds the scored pairs at or above
    ``pair_floor`` (all blocked pairs when None).
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    std = prepare(person_records)
    timings["standardise"] = time.perf_counter() - t0

    if std.num_rows == 0:
        # nothing to resolve (a first run before any load): no training possible, nothing to link
        model = model_json if model_json is not None else mdl.settings()
        empty = pa.table({"record_key": pa.array([], pa.string()), "cluster_id": pa.array([], pa.string()),
                          "match_probability": pa.array([], pa.float64())})
        no_pairs = pa.table({"record_key_l": pa.array([], pa.string()), "record_key_r": pa.array([], pa.string()),
                             "match_probability": pa.array([], pa.float64()),
                             "match_weight": pa.array([], pa.float64())})
        return Resolution(links=empty, pairs=no_pairs, model_json=model, model_version=mdl.model_version(model),
                          threshold=threshold, pairs_scored=0, timings=timings)

    t0 = time.perf_counter()
    model = model_json if model_json is not None else mdl.train(std)
    version = mdl.model_version(model)
    timings["train"] = time.perf_counter() - t0

    con = duckdb.connect()
    try:
        t0 = time.perf_counter()
        scoring = dict(model)
        scoring["retain_matching_columns"] = True  # carries the gamma columns the guard reads
        lk = mdl.linker(con, std, scoring)
        preds = lk.inference.predict()
        con.execute(
            f"""CREATE TEMP TABLE scored AS
                SELECT record_key_l, record_key_r, match_probability, match_weight,
                       gamma_first_name, gamma_birth_date
                FROM {preds.physical_name}"""
        )
        preds.drop_table_from_database_and_remove_from_cache()
        pairs_scored = con.sql("SELECT count(*) FROM scored").fetchall()[0][0]
        timings["predict"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        con.register("std_cl", std)
        edges = con.sql(
            f"""
            SELECT p.record_key_l, p.record_key_r, p.match_probability
            FROM scored p
            JOIN std_cl a ON a.record_key = p.record_key_l
            JOIN std_cl b ON b.record_key = p.record_key_r
            WHERE p.match_probability >= $t
              AND (p.gamma_first_name >= $fn
                   OR (p.gamma_first_name = -1 AND p.gamma_birth_date >= $bd))
              AND NOT ({_CONFLICT_SQL})
            """,
            params={"t": threshold, "fn": _FIRST_NAME_AGREES, "bd": _BIRTH_DATE_FIRM},
        ).to_arrow_table()
        links, rebuilt = _cluster(con, std, edges)
        timings["cluster"] = time.perf_counter() - t0

        floor_sql = "" if pair_floor is None else "WHERE match_probability >= $f"
        pairs = con.sql(
            f"""SELECT record_key_l, record_key_r, match_probability, match_weight
                FROM scored {floor_sql} ORDER BY record_key_l, record_key_r""",
            params={} if pair_floor is None else {"f": pair_floor},
        ).to_arrow_table()
    finally:
        con.close()
    log.info(
        "resolved %d records into %d clusters (%d pairs scored, %d chained clusters rebuilt, model %s)",
        links.num_rows, pa.compute.count_distinct(links["cluster_id"]).as_py(), pairs_scored, rebuilt, version,
    )
    return Resolution(
        links=links, pairs=pairs, model_json=model, model_version=version, threshold=threshold,
        pairs_scored=int(pairs_scored), clusters_rebuilt=rebuilt, timings=timings,
    )


# Two records that cannot be one person: firmly different prénoms or birth dates (mirroring the
# "different" levels of matching.model.comparisons), or a minor at the time an adult-only role
# was recorded (a débiteur, an association's dirigeant, a parent, a CRM contact) — the namesake
# child.
_CONFLICT_SQL = """
(a.first_name_std IS NOT NULL AND b.first_name_std IS NOT NULL AND NOT (
    coalesce(a.first_name_std = b.first_name_std, false)
    OR coalesce(jaro_winkler_similarity(a.first_name_std, b.first_name_std) >= 0.85, false)
    OR coalesce(starts_with(a.first_name_std, b.first_name_std), false)
    OR coalesce(starts_with(b.first_name_std, a.first_name_std), false)
    OR coalesce(list_has_any(string_split(a.given_names_std, ' '), string_split(b.given_names_std, ' ')), false)
))
OR (a.birth_year IS NOT NULL AND b.birth_year IS NOT NULL AND NOT (
    coalesce(a.birth_date_std = b.birth_date_std, false)
    OR coalesce(a.birth_year = b.birth_year AND a.birth_month = b.birth_day
                AND a.birth_day = b.birth_month, false)
    OR coalesce(levenshtein(strftime(a.birth_date_std, '%Y%m%d'), strftime(b.birth_date_std, '%Y%m%d')) = 1,
                false)
    OR coalesce(a.birth_year = b.birth_year AND a.birth_month = b.birth_month, false)
    OR coalesce(a.birth_year = b.birth_year AND (a.birth_month IS NULL OR b.birth_month IS NULL), false)
))
OR (a.role IN ('debiteur', 'dirigeant', 'parent', 'contact', 'demandeur') AND b.birth_year IS NOT NULL
    AND date_diff('year', coalesce(b.birth_date_std, make_date(b.birth_year, 12, 31)),
                  CAST(a.updated_at AS DATE)) < 18)
OR (b.role IN ('debiteur', 'dirigeant', 'parent', 'contact', 'demandeur') AND a.birth_year IS NOT NULL
    AND date_diff('year', coalesce(a.birth_date_std, make_date(a.birth_year, 12, 31)),
                  CAST(b.updated_at AS DATE)) < 18)
"""


def _cluster(con: duckdb.DuckDBPyConnection, std: pa.Table, edges: pa.Table) -> tuple[pa.Table, int]:
    """Connected components over the kept edges, then cannot-link repair.

    Connected components can chain a household through a record that agrees with two of its
    members (a father and his namesake son, and a finance record without birth date). A
    component holding two records that cannot be one person is rebuilt greedily: edges from
    the most to the least probable, merging two groups only when no record of one conflicts
    with a record of the other. Returns the links and the number of components rebuilt.
    """
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    db_api = DuckDBAPI(connection=con)
    cc = cluster_pairwise_predictions_at_threshold(
        std.select(["record_key"]), edges, db_api, node_id_column_name="record_key",
        edge_id_column_name_left="record_key_l", edge_id_column_name_right="record_key_r",
    )
    con.register("kept_edges", edges)
    con.execute(f"CREATE TEMP TABLE cc AS SELECT record_key, cluster_id FROM {cc.physical_name}")
    cc.drop_table_from_database_and_remove_from_cache()
    conflicts = con.sql(
        f"""
        WITH big AS (SELECT cluster_id FROM cc GROUP BY 1 HAVING count(*) >= 3),
        m AS (SELECT cc.cluster_id, s.* FROM cc JOIN std_cl s USING (record_key)
              WHERE cc.cluster_id IN (SELECT cluster_id FROM big))
        SELECT a.record_key AS k1, b.record_key AS k2
        FROM m a JOIN m b ON a.cluster_id = b.cluster_id AND a.record_key < b.record_key
        WHERE {_CONFLICT_SQL}
        """
    ).fetchall()
    rebuilt = 0
    if conflicts:
        con.register("conflict_keys", pa.table({"k": [k for pair in conflicts for k in pair]}))
        bad_edges = con.sql(
            """
            WITH bad AS (SELECT DISTINCT cluster_id FROM cc
                         WHERE record_key IN (SELECT k FROM conflict_keys))
            SELECT e.record_key_l, e.record_key_r, e.match_probability
            FROM kept_edges e JOIN cc c ON c.record_key = e.record_key_l
            WHERE c.cluster_id IN (SELECT cluster_id FROM bad)
            ORDER BY e.match_probability DESC, e.record_key_l, e.record_key_r
            """
        ).fetchall()
        members = con.sql(
            """SELECT record_key, cluster_id FROM cc WHERE cluster_id IN
               (SELECT cluster_id FROM cc WHERE record_key IN (SELECT k FROM conflict_keys))"""
        ).fetchall()
        new_ids = _constrained_components([m[0] for m in members], bad_edges, conflicts)
        rebuilt = len({m[1] for m in members})
        con.register("repaired", pa.table({"record_key": list(new_ids), "new_id": list(new_ids.values())}))
        con.execute(
            """UPDATE cc SET cluster_id = r.new_id FROM repaired r WHERE cc.record_key = r.record_key"""
        )
    out = con.sql(
        """
        WITH used AS (
            SELECT e.* FROM kept_edges e
            JOIN cc a ON a.record_key = e.record_key_l
            JOIN cc b ON b.record_key = e.record_key_r
            WHERE a.cluster_id = b.cluster_id
        ), best AS (
            SELECT k AS record_key, max(p) AS p FROM (
                SELECT record_key_l AS k, match_probability AS p FROM used
                UNION ALL
                SELECT record_key_r AS k, match_probability AS p FROM used
            ) GROUP BY k
        )
        SELECT c.record_key, c.cluster_id, coalesce(b.p, 1.0) AS match_probability
        FROM cc c LEFT JOIN best b USING (record_key)
        ORDER BY c.record_key
        """
    ).to_arrow_table()
    links = out.cast(pa.schema([
        pa.field("record_key", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("match_probability", pa.float64(), nullable=False),
    ]))
    return links, rebuilt


def _constrained_components(
    nodes: list[str], edges: list[tuple[str, str, float]], conflicts: list[tuple[str, str]]
) -> dict[str, str]:
    """Greedy clustering with cannot-links: record_key -> smallest record key of its group.

    ``edges`` must come sorted from the most to the least probable.
    """
    parent = {n: n for n in nodes}
    group: dict[str, set[str]] = {n: {n} for n in nodes}
    cannot: dict[str, set[str]] = {}
    for a, b in conflicts:
        cannot.setdefault(a, set()).add(b)
        cannot.setdefault(b, set()).add(a)

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for left, right, _p in edges:
        ra, rb = find(left), find(right)
        if ra == rb:
            continue
        small, large = (ra, rb) if len(group[ra]) <= len(group[rb]) else (rb, ra)
        if any(cannot.get(x, set()) & group[large] for x in group[small]):
            continue
        parent[small] = large
        group[large] |= group.pop(small)
    return {n: min(group[find(n)]) for n in nodes}
