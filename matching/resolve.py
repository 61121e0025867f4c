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

from matching import model as mdl
from matching.standardise import standardise

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.95
# Pairs below this probability are not returned (a review queue reads the band between).
PAIR_FLOOR = 0.01
# A phone / e-mail seen with more distinct surnames than this is an organisation's.
MAX_SURNAMES_PER_CONTACT = 3

# gamma values (Splink numbers the non-null levels from the last, "else" = 0, null = -1)
_FIRST_NAME_AGREES = 1  # jw >= 0.85 and above
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
    return null_shared_contacts(standardise(live))


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
        edges = con.sql(
            """
            SELECT record_key_l, record_key_r, match_probability FROM scored
            WHERE match_probability >= $t
              AND (gamma_first_name >= $fn
                   OR (gamma_first_name = -1 AND gamma_birth_date >= $bd))
            """,
            params={"t": threshold, "fn": _FIRST_NAME_AGREES, "bd": _BIRTH_DATE_FIRM},
        ).to_arrow_table()
        links = _cluster(con, std.select(["record_key"]), edges)
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
        "resolved %d records into %d clusters (%d pairs scored, model %s)",
        links.num_rows, len(set(links["cluster_id"].to_pylist())), pairs_scored, version,
    )
    return Resolution(
        links=links, pairs=pairs, model_json=model, model_version=version, threshold=threshold,
        pairs_scored=int(pairs_scored), timings=timings,
    )


def _cluster(con: duckdb.DuckDBPyConnection, nodes: pa.Table, edges: pa.Table) -> pa.Table:
    """Connected components over the kept edges; best edge probability per record."""
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    db_api = DuckDBAPI(connection=con)
    cc = cluster_pairwise_predictions_at_threshold(
        nodes, edges, db_api, node_id_column_name="record_key",
        edge_id_column_name_left="record_key_l", edge_id_column_name_right="record_key_r",
    )
    con.register("kept_edges", edges)
    out = con.sql(
        f"""
        WITH best AS (
            SELECT k AS record_key, max(p) AS p FROM (
                SELECT record_key_l AS k, match_probability AS p FROM kept_edges
                UNION ALL
                SELECT record_key_r AS k, match_probability AS p FROM kept_edges
            ) GROUP BY k
        )
        SELECT c.record_key, c.cluster_id, coalesce(b.p, 1.0) AS match_probability
        FROM {cc.physical_name} c LEFT JOIN best b USING (record_key)
        ORDER BY c.record_key
        """
    ).to_arrow_table()
    con.unregister("kept_edges")
    cc.drop_table_from_database_and_remove_from_cache()
    return out.cast(pa.schema([
        pa.field("record_key", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("match_probability", pa.float64(), nullable=False),
    ]))
