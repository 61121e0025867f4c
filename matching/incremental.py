"""Incremental resolution: new and changed records attached to the published citizens.

No retraining and no full recompute. With the published model JSON:

1. the *delta* (records not in the previous links, or changed since the last run) is scored
   against the other live records with Splink's ``predict_between`` (blocking rules of the
   model, term frequencies counted on every live record, as the batch path counts them);
2. the previous citizens the delta touches are found: those holding a delta record, a deleted
   record, a record the delta has a clustering edge to (the household guard applied), or a pair
   a human decision now contradicts;
3. the records of the touched citizens plus the delta are re-scored among themselves
   (``predict_within``) and re-clustered with the batch path's own functions (household guard,
   cannot-link repair, human decisions: :func:`matching.resolve.guarded_edges`,
   :func:`matching.resolve.cluster`), so a new record is attached to a citizen, merges two
   citizens, or becomes a citizen of its own, decided over whole clusters, not pair by pair;
4. ids of the touched part carry over by overlap (:func:`matching.identity.assign_citizen_ids`);
   every other citizen keeps its id and records untouched (checked before returning).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from matching import model as mdl
from matching import resources
from matching.identity import assign_citizen_ids
from matching.resolve import (
    DEFAULT_THRESHOLD,
    LINK_SCHEMA,
    PAIR_FLOOR,
    cluster,
    guarded_edges,
    prepare,
    scored_pairs,
    scoring_model,
    store_scored,
)

log = logging.getLogger(__name__)

_KEYS = pa.schema([pa.field("record_key", pa.string())])


class IdStabilityError(RuntimeError):
    """An untouched citizen would change id or records: a bug, never published."""


@dataclass
class IncrementalResolution:
    """What :func:`resolve_incremental` returns."""

    # every live record: record_key, citizen_id, match_probability, match_weight, explanation, linked_via
    links: pa.Table
    # the pairs scored this run (delta against the rest, and within the touched part)
    pairs: pa.Table
    model_version: str
    threshold: float
    pairs_scored: int  # at or above the pair floor
    delta_records: int  # new or changed records
    touched_citizens: int  # previous citizens re-clustered
    kept_citizens: int  # previous citizens carried over as they were, without re-clustering
    touched_records: int  # records re-clustered (touched citizens' live records + the delta)
    clusters_rebuilt: int = 0
    must_links_refused: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    standardised: pa.Table | None = None  # every live record as compared, for survivorship to reuse


def _keys(values: Iterable[str]) -> pa.Table:
    return pa.table({"record_key": pa.array(sorted(set(values)), pa.string())}, schema=_KEYS)


def resolve_incremental(
    person_records: pa.Table,
    previous: pa.Table,
    *,
    model_json: dict[str, Any],
    changed: Iterable[str] = (),
    threshold: float = DEFAULT_THRESHOLD,
    pair_floor: float | None = PAIR_FLOOR,
    must_links: Sequence[tuple[str, str]] = (),
    cannot_links: Sequence[tuple[str, str]] = (),
    retired: Iterable[str] = (),
    locales: dict[str, str] | None = None,
    default_locale: str | None = None,
) -> IncrementalResolution:
    """Attach new and changed records to the ``previous`` citizens without a full recompute.

    ``person_records``: every core person record (deleted ones are dropped, as in batch);
    ``previous``: the published links (record_key, citizen_id, and optionally
    match_probability, match_weight, explanation, linked_via, kept for untouched citizens);
    ``changed``: keys of previously linked records updated since the last run; ``retired``:
    ids retired earlier (never issued again). Decisions as in :func:`matching.resolve.resolve`.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    std = prepare(person_records, locales=locales, default_locale=default_locale)
    timings["standardise"] = time.perf_counter() - t0
    version = mdl.model_version(model_json)
    prev = _previous(previous)
    scoring = scoring_model(model_json)

    con = resources.connect()
    try:
        t0 = time.perf_counter()
        mi = mdl.model_input(std)
        con.register("mi", mi)
        con.register("prev", prev)
        con.register("changed_in", _keys(changed))
        con.execute("""CREATE TEMP TABLE delta AS
                       SELECT record_key FROM mi WHERE record_key NOT IN (SELECT record_key FROM prev)
                       UNION SELECT record_key FROM changed_in WHERE record_key IN (SELECT record_key FROM mi)""")
        n_delta = con.sql("SELECT count(*) FROM delta").fetchall()[0][0]

        from splink import Linker

        db_api = resources.splink_api(con)
        lk = Linker(db_api.register(mi, dataset_display_name="person_records"), scoring, log_level=None)
        mdl.register_term_frequencies(lk, db_api, mi, model_json)
        for col in _tf_columns(model_json):
            # counted on every live record, as predict() counts them in a batch run
            lk.table_management.compute_tf_table(col)
        new_sdf = db_api.register(
            con.sql("SELECT * FROM mi WHERE record_key IN (SELECT record_key FROM delta)").to_arrow_table(),
            dataset_display_name="delta_records")
        old_sdf = db_api.register(
            con.sql("SELECT * FROM mi WHERE record_key NOT IN (SELECT record_key FROM delta)").to_arrow_table(),
            dataset_display_name="kept_records")
        between = 0
        if n_delta:
            between = store_scored(
                con, [lk.inference.predict_between(new_sdf, old_sdf, threshold_match_probability=pair_floor)],
                model_json)
        else:
            con.execute("CREATE TEMP TABLE scored AS SELECT NULL::VARCHAR AS record_key_l, "
                        "NULL::VARCHAR AS record_key_r WHERE false")
        timings["predict_between"] = time.perf_counter() - t0

        # 2. the previous citizens the delta touches
        t0 = time.perf_counter()
        seeds = set(con.sql("SELECT record_key FROM delta").fetchall())
        if n_delta:
            edges = guarded_edges(con, std, model_json, threshold, must_links, cannot_links)
            con.register("between_edges", edges)
            seeds |= set(con.sql("SELECT record_key_l FROM between_edges UNION "
                                 "SELECT record_key_r FROM between_edges").fetchall())
        con.register("seed_in", _keys(k[0] for k in seeds))
        con.register("decided_in", _decision_pairs(must_links, cannot_links))
        con.execute(
            """
            CREATE TEMP TABLE touched AS
            SELECT DISTINCT p.citizen_id FROM prev p
            WHERE p.record_key IN (SELECT record_key FROM seed_in)
               OR p.record_key NOT IN (SELECT record_key FROM mi)  -- deleted since
            UNION
            -- a decision the published citizens contradict
            SELECT unnest([a.citizen_id, b.citizen_id]) FROM decided_in d
            JOIN prev a ON a.record_key = d.k1 JOIN prev b ON b.record_key = d.k2
            WHERE (d.must AND a.citizen_id <> b.citizen_id) OR (NOT d.must AND a.citizen_id = b.citizen_id)
            UNION
            -- a must-link from a delta record to a published one
            SELECT p.citizen_id FROM decided_in d JOIN prev p ON p.record_key IN (d.k1, d.k2)
            WHERE d.must AND (d.k1 IN (SELECT record_key FROM delta) OR d.k2 IN (SELECT record_key FROM delta))
            """
        )
        con.execute(
            """CREATE TEMP TABLE part AS
               SELECT record_key FROM prev WHERE citizen_id IN (SELECT citizen_id FROM touched)
                                             AND record_key IN (SELECT record_key FROM mi)
               UNION SELECT record_key FROM delta"""
        )
        n_touched = con.sql("SELECT count(*) FROM touched").fetchall()[0][0]
        part_std = con.sql("SELECT * FROM mi WHERE record_key IN (SELECT record_key FROM part)").to_arrow_table()
        part_keys = con.sql("SELECT record_key FROM part").to_arrow_table()
        con.register("part_keys", part_keys)
        std_part = _filter(con, std, "part_keys")
        timings["touched"] = time.perf_counter() - t0

        # 3. the touched part re-scored and re-clustered as the batch path does
        t0 = time.perf_counter()
        part_sdf = db_api.register(part_std, dataset_display_name="touched_records")
        pairs_scored = 0
        if part_std.num_rows:
            pairs_scored = store_scored(
                con, [lk.inference.predict_within(part_sdf, threshold_match_probability=pair_floor)], model_json)
        timings["predict_within"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if part_std.num_rows:
            edges = guarded_edges(con, std_part, model_json, threshold, must_links, cannot_links,
                                  population=std)
            links, rebuilt, refused = cluster(con, std_part, edges, model_json)
            pairs = scored_pairs(con, pair_floor)
        else:
            links, rebuilt, refused = LINK_SCHEMA.empty_table(), 0, 0
            pairs = scored_pairs_empty()

        # 4. ids: the touched part carries over by overlap; fresh ids avoid every id ever issued
        prev_part = con.sql("SELECT record_key, citizen_id FROM prev WHERE citizen_id IN "
                            "(SELECT citizen_id FROM touched)").to_arrow_table()
        all_ids = {r[0] for r in con.sql("SELECT DISTINCT citizen_id FROM prev").fetchall()}
        part_links = assign_citizen_ids(links, prev_part, retired=set(retired) | all_ids)
        kept = con.sql(
            f"""SELECT {", ".join(f'"{c}"' for c in part_links.column_names)} FROM prev
                WHERE citizen_id NOT IN (SELECT citizen_id FROM touched)"""
        ).to_arrow_table().cast(part_links.schema)
        out = pa.concat_tables([kept, part_links])
        out = out.take(pa.compute.sort_indices(out["record_key"]))
        _check_kept(con, out)
        n_kept = con.sql("SELECT count(DISTINCT citizen_id) FROM prev").fetchall()[0][0] - n_touched
        timings["cluster"] = time.perf_counter() - t0
    finally:
        con.close()
    log.info("incremental run: %d new or changed records, %d citizens re-clustered (%d records), %d kept as they "
             "were; %d + %d pairs scored (model %s)", n_delta, n_touched, part_std.num_rows, n_kept, between,
             pairs_scored, version)
    if refused:
        log.warning("%d human must-link(s) not honoured: they would join a cannot-linked pair", refused)
    return IncrementalResolution(
        links=out, pairs=pairs, model_version=version, threshold=threshold, pairs_scored=int(between + pairs_scored),
        delta_records=int(n_delta), touched_citizens=int(n_touched), kept_citizens=int(n_kept),
        touched_records=part_std.num_rows, clusters_rebuilt=rebuilt, must_links_refused=refused, timings=timings,
        standardised=std,
    )


def scored_pairs_empty() -> pa.Table:
    """No pairs (an incremental run with nothing to re-cluster)."""
    from matching.resolve import PAIR_SCHEMA

    return PAIR_SCHEMA.empty_table()


def _previous(previous: pa.Table) -> pa.Table:
    """The previous links with every link column (missing ones null; probability 1.0)."""
    n = previous.num_rows
    cols: dict[str, pa.Array | pa.ChunkedArray] = {}
    for f in LINK_SCHEMA:
        name = "citizen_id" if f.name == "cluster_id" else f.name
        if name in previous.column_names:
            cols[name] = previous[name].cast(f.type)
        elif name == "match_probability":
            cols[name] = pa.array([1.0] * n, pa.float64())
        else:
            cols[name] = pa.nulls(n, f.type)
    return pa.table(cols)


def _filter(con: duckdb.DuckDBPyConnection, table: pa.Table, keys_view: str) -> pa.Table:
    con.register("filter_in", table)
    out = con.sql(f"SELECT * FROM filter_in WHERE record_key IN (SELECT record_key FROM {keys_view}) "
                  "ORDER BY record_key").to_arrow_table()
    con.unregister("filter_in")
    return out.cast(table.schema)


def _tf_columns(model_json: dict[str, Any]) -> list[str]:
    cols = {lv["tf_adjustment_column"] for c in model_json["comparisons"] for lv in c["comparison_levels"]
            if lv.get("tf_adjustment_column")}
    return sorted(cols)


def _decision_pairs(must: Sequence[tuple[str, str]], cannot: Sequence[tuple[str, str]]) -> pa.Table:
    rows = [(min(a, b), max(a, b), True) for a, b in must if a != b]
    rows += [(min(a, b), max(a, b), False) for a, b in cannot if a != b]
    return pa.table({"k1": pa.array([r[0] for r in rows], pa.string()),
                     "k2": pa.array([r[1] for r in rows], pa.string()),
                     "must": pa.array([r[2] for r in rows], pa.bool_())})


def _check_kept(con: duckdb.DuckDBPyConnection, out: pa.Table) -> None:
    """Every previous citizen not re-clustered keeps its id and exactly its records."""
    con.register("out_links", out.select(["record_key", "citizen_id"]))
    bad = con.sql(
        """
        SELECT count(*) FROM prev p LEFT JOIN out_links o USING (record_key)
        WHERE p.citizen_id NOT IN (SELECT citizen_id FROM touched)
          AND (o.citizen_id IS NULL OR o.citizen_id <> p.citizen_id)
        """
    ).fetchall()[0][0]
    intruders = con.sql(
        """
        SELECT count(*) FROM out_links o LEFT JOIN prev p USING (record_key)
        WHERE o.citizen_id IN (SELECT citizen_id FROM prev WHERE citizen_id NOT IN (SELECT citizen_id FROM touched))
          AND (p.citizen_id IS NULL OR p.citizen_id <> o.citizen_id)
        """
    ).fetchall()[0][0]
    if bad or intruders:
        raise IdStabilityError(f"{bad} record(s) of untouched citizens moved and {intruders} record(s) joined one")
