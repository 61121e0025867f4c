"""Batch resolution: person records in, clusters of records (one per person) out.

standardise → (train) → Splink predict → guarded edges → connected components.

Household guard. Members of one household share surname, address, phone and often e-mail;
twins share a birth date too. Three things keep them apart:

* the model gives a first-name disagreement (no common initial, not swapped with the name, no
  prénom shared) a fixed weight of about -20 bits (:data:`matching.model.FIRST_NAME_DISAGREE_M`);
* an edge enters the clustering only with *personal* evidence (:func:`guarded_edges`): the first
  prénoms are the same (exactly, but for one keying error when the sexes do not differ, or a
  compound cut by one silo); or the prénom is written another way (similar spelling, a short form
  sharing the initial, another of the person's prénoms) and the birth dates agree firmly; or it is
  an initial, swapped with the name or another prénom of the person's, and an e-mail, a phone or the
  street line is shared; or, with no first name on a side, the birth dates agree firmly. Surname,
  address, phone and e-mail are shared by a household, so they alone never make an edge, whatever
  the probability they add up to;
* a missing birth date is not neutral between namesakes: with a birth date unknown on a side, the
  names need a shared e-mail, phone or street line when the records show them to be several people's
  (born in two years or more, or held twice by a silo that keeps one record per person) or, where
  the records show households, when something both records give differs (another town, e-mail or
  mobile);
* two records that cannot be one person never join (:data:`_CONFLICT_SQL`): firmly different
  prénoms or birth dates, twins (born the same day, two prénoms each carried by other records too,
  so not a keying error), an adult-only role held by a record too young for it;
* a phone number or e-mail carried by people of many different surnames is a switchboard or a
  shared mailbox, not a person's: it is ignored (:func:`matching.placeholders.null_implausible_values`).

Each pair above the threshold that a guard refuses is counted by reason
(:attr:`Resolution.vetoes`) and its explanation says which (``"veto"``).

Deleted records (``deleted_at`` not null) are not resolved.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute

from matching import model as mdl
from matching import resources
from matching.placeholders import null_implausible_values
from matching.standardise import standardise, with_report

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.6
# Pairs below this probability are not returned (a review queue reads the band between).
PAIR_FLOOR = 0.01

# Pairs in this probability band with no human decision go to the review queue.
REVIEW_BAND = (0.2, 0.8)

# Comparison levels (by label, matching.model) that count as personal evidence in the guard.
_FIRST_NAME_SAME = ("exact", "one edit", "compound cut")
_FIRST_NAME_ONE_EDIT = ("one edit",)  # LOUIS / LOUISE: agreeing only when the sexes do not differ
_FIRST_NAME_OTHER_WAY = ("jw >= 0.92", "jw >= 0.85", "another prénom shared", "names swapped",
                         "name in the other column", "initial", "same initial")
_FIRST_NAME_SIMILAR = ("jw >= 0.92", "jw >= 0.85", "another prénom shared")  # with contact and street
_FIRST_NAME_WRITTEN_OFF = ("names swapped", "initial")  # also without birth date, with contact or street
_FIRST_NAME_SHARED = ("another prénom shared",)  # also without birth date, with a contact (MARIE-PIERRE / PIERRE)
_BIRTH_DATE_FIRM = ("exact", "day and month swapped", "one digit differs")
_CONTACT_SAME = (("email", ("exact",)), ("phone", ("exact",)))
_STREET_SAME = ("exact", "same street and number")
_STREET_SIMILAR = ("similar street",)
_TOWN_SAME = ("exact", "same postcode")
# A prénom carried by at least this many records is a name people have (not a keying error).
ATTESTED_NAME_MIN = 2
# A silo where fewer than this share of records share a prénom, name and birth date with another of
# its records keeps one record per person (an operational silo: 0-3 % on the sandbox); its records
# under one name are that many people. A file keyed twice over (15-46 % in FEBRL's) is not.
SILO_DOUBLE_ENTRIES = 0.05
# A pair that rests on the names alone (a birth date unknown on a side, no contact or street shared)
# needs at least this probability: the term frequencies of a prénom and a name are multiplied as if
# independent, which overstates rare combinations where names run in communities (Brussels sandbox:
# HÜLYA YILMAZ, MARIE MUKENDI, JOSÉ SANCHEZ at 0.6-0.7 were two people each; 0.8 cost the French
# sandbox 0.2 point of recall at 1M for 0.04 point of precision in Brussels).
NAMES_ONLY_MIN = 0.7


@dataclass
class Resolution:
    """What :func:`resolve` returns."""

    # record_key, cluster_id, match_probability, match_weight, explanation, linked_via
    links: pa.Table
    # record_key_l, record_key_r, match_probability, match_weight, explanation
    pairs: pa.Table
    model_json: dict[str, Any]
    model_version: str
    threshold: float
    pairs_scored: int  # every blocked pair scored (``pairs`` keeps those at or above the floor)
    clusters_rebuilt: int = 0  # connected components split because they held a cannot-link
    must_links_refused: int = 0  # human must-links the clustering could not honour (a cannot-link won)
    timings: dict[str, float] = field(default_factory=dict)
    # the live records as compared (prepare()), for survivorship to reuse instead of standardising again
    standardised: pa.Table | None = None
    # pairs at or above the threshold that a guard refused, by reason (see guarded_edges)
    vetoes: dict[str, int] = field(default_factory=dict)
    # how much of each field the records fill (matching.model.profile), when the model was trained here
    profile: Any = None


def prepare(
    person_records: pa.Table, *, locales: dict[str, str] | None = None, default_locale: str | None = None,
) -> pa.Table:
    """Live records (not deleted), standardised, values shared by implausibly many people removed:
    the model's input. ``locales`` / ``default_locale``: see :func:`matching.standardise.standardise`
    (None: detected per source). The locales used and the counts of values nulled per field are
    in :func:`matching.standardise.standardise_report` of the result."""
    live = person_records
    if "deleted_at" in live.column_names:
        live = live.filter(live["deleted_at"].is_null())
    std, nulled = null_implausible_values(standardise(live, locales=locales, default_locale=default_locale))
    std = with_report(std, {"placeholders_nulled": nulled})
    # a fixed row order: seeded sampling (u estimation) picks rows by position
    return std.take(pa.compute.sort_indices(std["record_key"]))


LINK_SCHEMA = pa.schema([
    pa.field("record_key", pa.string(), nullable=False),
    pa.field("cluster_id", pa.string(), nullable=False),
    pa.field("match_probability", pa.float64(), nullable=False),
    pa.field("match_weight", pa.float64()),
    pa.field("explanation", pa.string()),
    pa.field("linked_via", pa.string()),
])
PAIR_SCHEMA = pa.schema([
    pa.field("record_key_l", pa.string()),
    pa.field("record_key_r", pa.string()),
    pa.field("match_probability", pa.float64()),
    pa.field("match_weight", pa.float64()),
    pa.field("explanation", pa.string()),
])


def resolve(
    person_records: pa.Table,
    *,
    model_json: dict[str, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    pair_floor: float | None = PAIR_FLOOR,
    must_links: Sequence[tuple[str, str]] = (),
    cannot_links: Sequence[tuple[str, str]] = (),
    locales: dict[str, str] | None = None,
    default_locale: str | None = None,
    train_sample: int | None = mdl.TRAIN_SAMPLE,
) -> Resolution:
    """Resolve person records (all silos together) into clusters, one per person.

    Trains the model when ``model_json`` is None, on at most ``train_sample`` of the live records
    (:func:`matching.model.training_sample`; None: all of them), and scores every record with it.
    ``links`` holds every live record once: its cluster (Splink's: the smallest record key of the
    cluster), the best probability tying it into the cluster (1.0 alone), that edge's match weight, its per-comparison
    contributions (``explanation``, JSON: comparison -> match weight in bits, or
    ``{"decision": "must-link"}``) and the record at its other end (``linked_via``).
    ``pairs`` holds the scored pairs at or above ``pair_floor`` (all blocked pairs when None);
    ``pairs_scored`` counts every blocked pair scored.

    Human decisions (pairs of record keys; pairs naming a record not resolved are ignored):
    a ``must_links`` pair is an edge always present, whatever the model or the household guard
    say; a ``cannot_links`` pair never ends in one cluster (components holding both are rebuilt
    greedily, see :func:`cluster`). A must-link that would join a cannot-linked pair loses.

    ``locales`` (``source_system`` -> FR, BE or NEUTRAL) and ``default_locale`` choose each
    source's standardisation rules; a source neither names is detected from its rows
    (:func:`matching.standardise.standardise`).
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    std = prepare(person_records, locales=locales, default_locale=default_locale)
    timings["standardise"] = time.perf_counter() - t0

    if std.num_rows == 0:
        # nothing to resolve (a first run before any load): no training possible, nothing to link
        model = model_json if model_json is not None else mdl.settings()
        empty = LINK_SCHEMA.empty_table()
        no_pairs = PAIR_SCHEMA.empty_table()
        return Resolution(links=empty, pairs=no_pairs, model_json=model, model_version=mdl.model_version(model),
                          threshold=threshold, pairs_scored=0, timings=timings)

    t0 = time.perf_counter()
    mi = mdl.model_input(std)  # once, for training and scoring
    prof = mdl.profile(mi)
    # the profile (comparisons, blocking rules) is the whole population's; training reads a sample
    model = model_json if model_json is not None else mdl.train(mdl.training_sample(mi, train_sample), profile_=prof)
    timings["train"] = time.perf_counter() - t0

    con = resources.connect()
    try:
        t0 = time.perf_counter()
        lk = mdl.linker(con, mi, scoring_model(model))
        store_scored(con, _predict(con, lk, pair_floor, must_links), model)
        pairs_scored = con.sql("SELECT n FROM blocked_count").fetchall()[0][0]
        timings["predict"] = time.perf_counter() - t0
        res = clustered(con, std, model, threshold=threshold, pair_floor=pair_floor, must_links=must_links,
                        cannot_links=cannot_links, pairs_scored=int(pairs_scored), timings=timings)
        res.profile = prof
        return res
    finally:
        con.close()


def clustered(
    con: duckdb.DuckDBPyConnection, std: pa.Table, model: dict[str, Any], *, threshold: float,
    pair_floor: float | None, must_links: Sequence[tuple[str, str]], cannot_links: Sequence[tuple[str, str]],
    pairs_scored: int, timings: dict[str, float],
) -> Resolution:
    """The :class:`Resolution` of records ``std`` whose pairs :func:`store_scored` put in ``con``:
    guarded edges, clusters honouring the decisions, the pairs kept (any scoring backend)."""
    version = mdl.model_version(model)
    t0 = time.perf_counter()
    edges = guarded_edges(con, std, model, threshold, must_links, cannot_links)
    vetoes = veto_counts(con)
    links, rebuilt, refused = cluster(con, std, edges, model)
    timings["cluster"] = time.perf_counter() - t0
    pairs = scored_pairs(con, pair_floor)
    log.info(
        "resolved %d records into %d clusters (%d pairs scored, %d chained clusters rebuilt, model %s)",
        links.num_rows, pa.compute.count_distinct(links["cluster_id"]).as_py(), pairs_scored, rebuilt, version,
    )
    if refused:
        log.warning("%d human must-link(s) not honoured: they would join a cannot-linked pair", refused)
    return Resolution(
        links=links, pairs=pairs, model_json=model, model_version=version, threshold=threshold,
        pairs_scored=pairs_scored, clusters_rebuilt=rebuilt, must_links_refused=refused, timings=timings,
        standardised=std, vetoes=vetoes,
    )


def _predict(
    con: duckdb.DuckDBPyConnection, lk: Any, pair_floor: float | None, must_links: Sequence[tuple[str, str]]
) -> list[Any]:
    """Splink predictions of every blocked pair at or above ``pair_floor``, plus the blocked pairs
    a human must-linked below it (their edge keeps its score).

    Pairs below the floor are dropped inside Splink's scoring query, never materialised. Returns
    the prediction tables; the number of blocked pairs (every pair scored) goes to temp table
    ``blocked_count``.
    """
    blocked = lk.inference.compute_blocked_pairs_for_predict()  # predict() reuses it from the cache
    con.execute(f"CREATE OR REPLACE TEMP TABLE blocked_count AS SELECT count(*) AS n FROM {blocked.physical_name}")
    predictions = [lk.inference.predict(threshold_match_probability=pair_floor)]
    must = ordered_pairs(must_links)
    decided = None
    if pair_floor is not None and must:
        con.register("must_in", pa.table({"k1": [m[0] for m in must], "k2": [m[1] for m in must]}))
        decided = con.sql(
            f"""SELECT b.* FROM {blocked.physical_name} b JOIN must_in m
                ON least(b.join_key_l, b.join_key_r) = m.k1 AND greatest(b.join_key_l, b.join_key_r) = m.k2"""
        ).to_arrow_table()
    blocked.drop_table_from_database_and_remove_from_cache()
    if decided is not None and decided.num_rows:
        lk.table_management.register_blocked_pairs_for_predict(
            lk.table_management.register_table(decided, "__hub_must_link_pairs", overwrite=True))
        predictions.append(lk.inference.predict())
    return predictions


def scoring_model(model: dict[str, Any]) -> dict[str, Any]:
    """The model with the columns the guard (gamma_*) and the explanations (mw_*) read retained."""
    scoring = dict(model)
    scoring["retain_matching_columns"] = True
    scoring["retain_intermediate_calculation_columns"] = True
    return scoring


def store_scored(con: duckdb.DuckDBPyConnection, predictions: Sequence[Any], model: dict[str, Any]) -> int:
    """Copy Splink predictions (SplinkDataFrames of :func:`scoring_model`) into temp table ``scored``.

    Several prediction tables (e.g. ``predict_between`` and ``predict_within``) are stacked, a
    pair scored twice kept once. Each table is dropped from Splink's cache. The temp view
    ``scored_x`` adds each pair's ``explanation``, built only for the pairs read from it (edges,
    pairs above the floor), not for every blocked pair. Returns the pair count.
    """
    con.execute("DROP VIEW IF EXISTS scored_x")
    con.execute("DROP TABLE IF EXISTS scored")
    columns = con.sql(f"SELECT * FROM {predictions[0].physical_name} LIMIT 0").columns
    kept = ", ".join(f'"{c}"' for c in _explanation_columns(columns, model))
    selects = [
        f"""SELECT least(record_key_l, record_key_r) AS record_key_l,
                   greatest(record_key_l, record_key_r) AS record_key_r,
                   match_probability, match_weight, {kept}
            FROM {preds.physical_name}"""
        for preds in predictions
    ]
    union = " UNION ALL ".join(selects)
    if len(selects) > 1:
        union = f"SELECT DISTINCT ON (record_key_l, record_key_r) * FROM ({union})"
    con.execute(f"CREATE TEMP TABLE scored AS {union}")
    explain = _explanation_sql(con.sql("SELECT * FROM scored LIMIT 0").columns, model)
    con.execute(f"CREATE TEMP VIEW scored_x AS SELECT *, {explain} AS explanation FROM scored")
    for preds in predictions:
        preds.drop_table_from_database_and_remove_from_cache()
    return int(con.sql("SELECT count(*) FROM scored").fetchall()[0][0])


def scored_pairs(con: duckdb.DuckDBPyConnection, pair_floor: float | None) -> pa.Table:
    """The pairs of temp table ``scored`` at or above ``pair_floor`` (all when None), sorted."""
    floor_sql = "" if pair_floor is None else "WHERE p.match_probability >= $f"
    _ensure_vetoed(con)
    return con.sql(
        f"""SELECT p.record_key_l, p.record_key_r, p.match_probability, p.match_weight,
                   CASE WHEN v.veto IS NULL THEN p.explanation
                        ELSE CAST(json_merge_patch(coalesce(p.explanation, '{{}}'), json_object('veto', v.veto))
                                  AS VARCHAR) END AS explanation
            FROM scored_x p
            LEFT JOIN vetoed v ON v.record_key_l = p.record_key_l AND v.record_key_r = p.record_key_r
            {floor_sql} ORDER BY p.record_key_l, p.record_key_r""",
        params={} if pair_floor is None else {"f": pair_floor},
    ).to_arrow_table().cast(PAIR_SCHEMA)


def guarded_edges(
    con: duckdb.DuckDBPyConnection, std: pa.Table, model: dict[str, Any], threshold: float,
    must_links: Sequence[tuple[str, str]], cannot_links: Sequence[tuple[str, str]],
    *, population: pa.Table | None = None,
) -> pa.Table:
    """The clustering edges from temp table ``scored``: the household guard, cannot-links and must-links.

    Registers ``std`` as ``std_cl`` (with how many records of ``population``, default ``std``,
    carry each prénom) and the decisions (read later by :func:`cluster`). The pairs at or above
    ``threshold`` that a guard refuses go to temp table ``vetoed`` with the reason
    (:func:`veto_counts`, :func:`scored_pairs`).
    """
    _register_std(con, std, population)
    _register_decisions(con, must_links, cannot_links)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE guarded AS
        SELECT p.record_key_l, p.record_key_r, p.match_probability, p.match_weight, p.explanation,
               {_veto_sql(model)} AS veto
        FROM scored_x p
        JOIN std_cl a ON a.record_key = p.record_key_l
        JOIN std_cl b ON b.record_key = p.record_key_r
        WHERE p.match_probability >= $t
          AND NOT EXISTS (SELECT 1 FROM human_cannot h WHERE h.k1 = p.record_key_l AND h.k2 = p.record_key_r)
          AND NOT EXISTS (SELECT 1 FROM human_must h WHERE h.k1 = p.record_key_l AND h.k2 = p.record_key_r)
        """,
        {"t": threshold},
    )
    con.execute("CREATE OR REPLACE TEMP TABLE vetoed AS SELECT record_key_l, record_key_r, veto FROM guarded "
                "WHERE veto IS NOT NULL")
    return con.sql(
        """
        SELECT record_key_l, record_key_r, match_probability, match_weight, explanation, false AS decided
        FROM guarded WHERE veto IS NULL
        UNION ALL
        -- a must-link is an edge whatever the model says; it keeps its score when it has one
        SELECT m.k1, m.k2, 1.0, p.match_weight, '{"decision": "must-link"}', true
        FROM human_must m LEFT JOIN scored p ON p.record_key_l = m.k1 AND p.record_key_r = m.k2
        WHERE m.k1 IN (SELECT record_key FROM std_cl) AND m.k2 IN (SELECT record_key FROM std_cl)
        """
    ).to_arrow_table()


def veto_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Pairs the last :func:`guarded_edges` refused, by reason."""
    _ensure_vetoed(con)
    return {r: int(n) for r, n in con.sql("SELECT veto, count(*) FROM vetoed GROUP BY 1 ORDER BY 1").fetchall()}


def _ensure_vetoed(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TEMP TABLE IF NOT EXISTS vetoed "
                "(record_key_l VARCHAR, record_key_r VARCHAR, veto VARCHAR)")


def _register_std(con: duckdb.DuckDBPyConnection, std: pa.Table, population: pa.Table | None) -> None:
    """``std`` as temp table ``std_cl`` with ``fn_n`` (records of ``population`` whose prénom starts
    as its does: MARIE for MARIE-ANNE) and ``name_people`` (how many people the records of
    ``population`` show to carry its prénom and name, at least: their distinct birth years, or two
    when a silo that keeps one record per person — fewer than :data:`SILO_DOUBLE_ENTRIES` of its
    records share a prénom, name and birth date — holds the name at two streets with no contact in
    common (a double entry of one person shares its street or a contact))."""
    con.register("std_in_cl", std)
    con.register("population_cl", population if population is not None else std)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE std_cl AS
           WITH p AS (
               SELECT record_key, source_system, first_name_std, surname_std, birth_year, address_std,
                      email_std, phone_std,
                      CASE WHEN birth_date_std IS NOT NULL THEN (count(*) OVER (
                          PARTITION BY source_system, first_name_std, surname_std, birth_date_std) > 1)::INT END
                          AS doubled
               FROM population_cl WHERE first_name_std IS NOT NULL AND surname_std IS NOT NULL
           ), silo AS (
               SELECT source_system, coalesce(avg(doubled), 0) < {SILO_DOUBLE_ENTRIES} AS one_per_person
               FROM p GROUP BY 1
           ), apart AS (  -- one silo, one name, two records at two streets sharing no contact: two people
               SELECT DISTINCT a.first_name_std, a.surname_std
               FROM p a JOIN p b ON a.source_system = b.source_system AND a.first_name_std = b.first_name_std
                    AND a.surname_std = b.surname_std AND a.record_key < b.record_key
               JOIN silo ON silo.source_system = a.source_system AND silo.one_per_person
               WHERE a.address_std <> b.address_std
                 AND NOT coalesce(a.email_std = b.email_std, false) AND NOT coalesce(a.phone_std = b.phone_std, false)
           ), names AS (
               SELECT first_name_std, surname_std,
                      greatest(count(DISTINCT birth_year),
                               CASE WHEN (first_name_std, surname_std) IN (SELECT * FROM apart) THEN 2 ELSE 0 END)
                          AS name_people
               FROM p GROUP BY 1, 2
           )
           SELECT s.*, coalesce(n.fn_n, 0) AS fn_n, coalesce(y.name_people, 0) AS name_people FROM std_in_cl s
           LEFT JOIN (SELECT first_name_key, count(*) AS fn_n FROM population_cl
                      WHERE first_name_key IS NOT NULL GROUP BY 1) n USING (first_name_key)
           LEFT JOIN names y USING (first_name_std, surname_std)"""
    )
    con.unregister("std_in_cl")
    con.unregister("population_cl")


def _levels(model: dict[str, Any], name: str) -> dict[str, int] | None:
    """A comparison's gamma value per level label (Splink numbers the non-null levels from the
    last: "else" = 0, null = -1); None when the model has no such comparison."""
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] == name:
            levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
            return {lv.get("label_for_charts"): len(levels) - 1 - i for i, lv in enumerate(levels)}
    return None


def _gamma_in(model: dict[str, Any], name: str, labels: Sequence[str]) -> str:
    levels = _levels(model, name)
    values = sorted({levels[label] for label in labels if levels and label in levels})
    return f'coalesce(p."gamma_{name}" IN ({", ".join(map(str, values))}), false)' if values else "false"


def _gamma_null(model: dict[str, Any], name: str) -> str:
    return "true" if _levels(model, name) is None else f'coalesce(p."gamma_{name}" = -1, true)'


def _any_of(model: dict[str, Any], spec: Sequence[tuple[str, Sequence[str]]]) -> str:
    return "(" + " OR ".join(_gamma_in(model, name, labels) for name, labels in spec) + ")"


def _veto_sql(model: dict[str, Any]) -> str:
    """Why a scored pair (``p``, records ``a`` and ``b``) may not be an edge, or NULL."""
    strong = (f"({_gamma_in(model, 'first_name', _FIRST_NAME_SAME)} AND NOT "
              f"({_gamma_in(model, 'first_name', _FIRST_NAME_ONE_EDIT)} AND coalesce(p.\"gamma_sex\" = 0, false)))"
              if _levels(model, "sex") is not None else _gamma_in(model, "first_name", _FIRST_NAME_SAME))
    other_way = _gamma_in(model, "first_name", _FIRST_NAME_OTHER_WAY)
    written_off = _gamma_in(model, "first_name", _FIRST_NAME_WRITTEN_OFF)
    shared = _gamma_in(model, "first_name", _FIRST_NAME_SHARED)
    no_first = _gamma_null(model, "first_name")
    dob_firm = _gamma_in(model, "birth_date", _BIRTH_DATE_FIRM)
    dob_null = _gamma_null(model, "birth_date")
    contact = _any_of(model, _CONTACT_SAME)
    # the same street line (in the same postcode when both give one), or a similar one in the same postcode
    place = (f"({_gamma_in(model, 'address', _STREET_SAME)} "
             f"OR ({_gamma_in(model, 'address', _STREET_SIMILAR)} AND {_gamma_in(model, 'town', _TOWN_SAME)}))")
    similar = _gamma_in(model, "first_name", _FIRST_NAME_SIMILAR)
    evidence = (f"({strong} OR ({other_way} AND {dob_firm}) OR ({similar} AND {contact} AND {place}) "
                f"OR ({written_off} AND ({contact} OR {place})) OR ({shared} AND {contact}) "
                f"OR ({no_first} AND {dob_firm}))")
    # something both records give and that differs: another town, another e-mail, another mobile
    differ = (f"({_gamma_in(model, 'town', ('different', 'same postcode area'))} "
              f"OR {_gamma_in(model, 'email', ('different',))} "
              f"OR {_gamma_in(model, 'phone', ('two different mobiles',))})")
    # a birth date unknown on a side, nothing but the names to go on, and the names are several
    # people's (the records show it) or, where households make a differing field telling,
    # something both records give differs
    several = f"(a.name_people >= 2 OR b.name_people >= 2 OR p.match_probability < {NAMES_ONLY_MIN})"
    namesake = f"({dob_null} AND NOT {no_first} AND NOT ({contact} OR {place}) AND ({several} OR {differ}))"
    if not mdl.household_guard(model):
        # no households in these records: disagreements are weighed, not vetoed
        return f"""CASE
        WHEN {_ROLE_AGE_SQL} THEN 'too_young_for_role'
        WHEN {dob_null} AND NOT {no_first} AND NOT ({contact} OR {place}) AND {several}
            THEN 'namesake_without_birth_date'
        END"""
    return f"""CASE
        WHEN {_TWINS_SQL} THEN 'twins'
        WHEN {_PRENOM_CONFLICT_SQL} THEN 'prenoms_differ'
        WHEN {_BIRTH_DATE_CONFLICT_SQL} THEN 'birth_dates_differ'
        WHEN {_ROLE_AGE_SQL} THEN 'too_young_for_role'
        WHEN NOT {evidence} THEN 'household_evidence_only'
        WHEN {namesake} THEN 'namesake_without_birth_date'
        END"""


def _explanation_columns(columns: list[str], model: dict[str, Any]) -> list[str]:
    """The prediction columns the guard and :func:`_explanation_sql` read (gamma_*, mw_*, mw_tf_adj_*)."""
    names = [c["output_column_name"] for c in model["comparisons"]]
    wanted = [f"{prefix}{n}" for n in names for prefix in ("gamma_", "mw_", "mw_tf_adj_")]
    return [c for c in wanted if c in columns]


def _explanation_sql(columns: list[str], model: dict[str, Any]) -> str:
    """SQL building the per-comparison contributions (bits, one decimal) as a JSON object.

    A contribution is the comparison's match weight plus its term-frequency adjustment; a null
    comparison (one side unknown) weighs 0 and is left out, so the JSON lists the evidence.
    """
    parts = []
    for comparison in model["comparisons"]:
        name = comparison["output_column_name"]
        if f"mw_{name}" not in columns:
            continue
        tf = f' + coalesce("mw_tf_adj_{name}", 0)' if f"mw_tf_adj_{name}" in columns else ""
        parts.append(f"""'{name}', CASE WHEN "gamma_{name}" = -1 THEN NULL
                         ELSE round("mw_{name}"{tf}, 1) END""")
    if not parts:
        return "CAST(NULL AS VARCHAR)"
    # json_object keeps nulls; drop them so only the evidence compared is listed
    return f"CAST(json_merge_patch('{{}}', json_object({', '.join(parts)})) AS VARCHAR)"


def ordered_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Pairs of distinct record keys, each written (smaller, larger) as Splink does, deduplicated."""
    return sorted({(min(a, b), max(a, b)) for a, b in pairs if a != b})


def _register_decisions(
    con: duckdb.DuckDBPyConnection, must: Sequence[tuple[str, str]], cannot: Sequence[tuple[str, str]]
) -> None:
    schema = pa.schema([("k1", pa.string()), ("k2", pa.string())])
    for name, pairs in (("human_must", must), ("human_cannot", cannot)):
        rows = ordered_pairs(pairs)
        con.register(name, pa.table({"k1": [r[0] for r in rows], "k2": [r[1] for r in rows]}, schema=schema))


# The youngest age at which a person can hold a role, from what the role is (schemas.contract): a
# débiteur, an association's dirigeant, a parent, a CRM contact, a démarche's demandeur are adults;
# the holder of an online account (``compte``) has the age of digital consent, 15 in France. Any
# other role (``usager``, a silo's own word) says nothing of age. The age is taken when the holder
# was recorded (``updated_at``), today when the silo does not say (an older age: a weaker check, never
# no check and never a NULL that would drop the pair).
ROLE_MIN_AGE = {"debiteur": 18, "dirigeant": 18, "parent": 18, "contact": 18, "demandeur": 18, "compte": 15}


def _too_young_sql(holder: str, other: str) -> str:
    """True when ``other``'s birth date makes them younger than ``holder``'s role allows at the
    time ``holder`` was recorded (the namesake child of an adult record); never NULL."""
    ages = " ".join(f"WHEN '{role}' THEN {age}" for role, age in ROLE_MIN_AGE.items())
    return f"""coalesce({other}.birth_year IS NOT NULL AND date_diff('year',
        coalesce({other}.birth_date_std, make_date({other}.birth_year, 12, 31)),
        coalesce(CAST({holder}.updated_at AS DATE), current_date)) < CASE {holder}.role {ages} ELSE 0 END, false)"""


_SWAPPED = ("coalesce(jaro_winkler_similarity(a.first_name_std, b.surname_std) >= 0.9 "
            "AND jaro_winkler_similarity(a.surname_std, b.first_name_std) >= 0.9, false)")
_INITIAL = ("coalesce((length(a.first_name_std) = 1 OR length(b.first_name_std) = 1) "
            "AND left(a.first_name_std, 1) = left(b.first_name_std, 1), false)")
_SHARED_GIVEN = ("coalesce(list_has_any(string_split(a.given_names_std, ' '), "
                 "string_split(b.given_names_std, ' ')), false)")

# Twins: born the same day (or so keyed) under two prénoms whose first parts are each carried by other records
# too (names people have, where a keying error makes a string nobody else carries: NICHOHLAS). In one
# silo any such difference (MARIE / MARIE-ANNE / MARIA on one family file: a silo holding one
# person twice under two real prénoms and the same birth date is rarer than twins); across silos
# only a firm one (not one keying error, a cut compound or a shared prénom, one person written two
# ways by two services). An initial or swapped columns are not a prénom.
# Born the same day, allowing the keying errors the birth-date comparison allows (a swapped day and
# month, one digit or two adjacent ones).
_SAME_BIRTH_DAY = """(a.birth_date_std = b.birth_date_std
     OR (a.birth_year = b.birth_year AND a.birth_month = b.birth_day AND a.birth_day = b.birth_month)
     OR damerau_levenshtein(strftime(a.birth_date_std, '%Y%m%d'), strftime(b.birth_date_std, '%Y%m%d')) = 1)"""
_TWINS_SQL = f"""(coalesce({_SAME_BIRTH_DAY} AND a.first_name_std <> b.first_name_std
     AND length(a.first_name_std) > 1 AND length(b.first_name_std) > 1
     AND a.fn_n >= {ATTESTED_NAME_MIN} AND b.fn_n >= {ATTESTED_NAME_MIN}, false)
  AND NOT {_SWAPPED}
  AND (a.source_system = b.source_system OR NOT (
      coalesce(damerau_levenshtein(a.first_name_std, b.first_name_std) <= 1, false)
      OR coalesce(a.first_name_key = b.first_name_key, false)
      OR coalesce(starts_with(a.first_name_std, b.first_name_std) OR starts_with(b.first_name_std, a.first_name_std),
                  false)
      OR {_SHARED_GIVEN})))"""

# Firmly different prénoms: not one keying error apart, in the whole prénom or its first part —
# NCIOLAS / NICOLAS-JEAN — (unless the sexes differ: LOUIS / LOUISE), not similar, not a prefix,
# no prénom shared, not the name columns swapped, not an initial of the other.
_PRENOM_CONFLICT_SQL = f"""(a.first_name_std IS NOT NULL AND b.first_name_std IS NOT NULL AND NOT (
    coalesce(a.first_name_std = b.first_name_std, false)
    OR coalesce((damerau_levenshtein(a.first_name_std, b.first_name_std) = 1
                 OR damerau_levenshtein(a.first_name_key, b.first_name_key) <= 1)
                AND NOT coalesce(a.sex_std <> b.sex_std, false), false)
    OR coalesce(jaro_winkler_similarity(a.first_name_std, b.first_name_std) >= 0.85, false)
    OR coalesce(starts_with(a.first_name_std, b.first_name_std), false)
    OR coalesce(starts_with(b.first_name_std, a.first_name_std), false)
    OR {_SHARED_GIVEN} OR {_SWAPPED} OR {_INITIAL}
))"""

# Firmly different birth dates (mirroring the "different" level of matching.model.comparisons).
_BIRTH_DATE_CONFLICT_SQL = """(a.birth_year IS NOT NULL AND b.birth_year IS NOT NULL AND NOT (
    coalesce(a.birth_date_std = b.birth_date_std, false)
    OR coalesce(a.birth_year = b.birth_year AND a.birth_month = b.birth_day
                AND a.birth_day = b.birth_month, false)
    OR coalesce(damerau_levenshtein(strftime(a.birth_date_std, '%Y%m%d'), strftime(b.birth_date_std, '%Y%m%d')) = 1,
                false)
    OR coalesce(a.birth_year = b.birth_year AND a.birth_month = b.birth_month, false)
    OR coalesce(a.birth_year = b.birth_year AND (a.birth_month IS NULL OR b.birth_month IS NULL), false)
))"""

_ROLE_AGE_SQL = f"({_too_young_sql('a', 'b')} OR {_too_young_sql('b', 'a')})"

# Two records that cannot be one person (read on standardised records a and b of std_cl).
_CONFLICT_SQL = f"({_TWINS_SQL} OR {_PRENOM_CONFLICT_SQL} OR {_BIRTH_DATE_CONFLICT_SQL} OR {_ROLE_AGE_SQL})"


def cluster(con: duckdb.DuckDBPyConnection, std: pa.Table, edges: pa.Table,
            model: dict[str, Any] | None = None) -> tuple[pa.Table, int, int]:
    """Connected components over the kept edges, then cannot-link repair.

    Connected components can chain a household through a record that agrees with two of its
    members (a father and his namesake son, and a finance record without birth date). A
    component holding two records that cannot be one person (by their data, or by a human
    cannot-link) is rebuilt greedily: human must-links first, then edges from the most to the
    least probable, merging two groups only when no record of one conflicts with a record of
    the other. Returns the links, the number of components rebuilt and the number of must-links
    refused.
    """
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    db_api = resources.splink_api(con)
    cc = cluster_pairwise_predictions_at_threshold(
        std.select(["record_key"]), edges.select(["record_key_l", "record_key_r", "match_probability"]), db_api,
        node_id_column_name="record_key",
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
        WHERE ({_CONFLICT_SQL if model is None or mdl.household_guard(model) else _ROLE_AGE_SQL})
          AND NOT EXISTS (SELECT 1 FROM human_must h WHERE h.k1 = a.record_key AND h.k2 = b.record_key)
        UNION
        SELECT h.k1, h.k2 FROM human_cannot h
        JOIN cc a ON a.record_key = h.k1 JOIN cc b ON b.record_key = h.k2
        WHERE a.cluster_id = b.cluster_id
        """
    ).fetchall()
    rebuilt = refused = 0
    if conflicts:
        con.register("conflict_keys", pa.table({"k": [k for pair in conflicts for k in pair]}))
        bad_edges = con.sql(
            """
            WITH bad AS (SELECT DISTINCT cluster_id FROM cc
                         WHERE record_key IN (SELECT k FROM conflict_keys))
            SELECT e.record_key_l, e.record_key_r, e.match_probability, e.decided
            FROM kept_edges e JOIN cc c ON c.record_key = e.record_key_l
            WHERE c.cluster_id IN (SELECT cluster_id FROM bad)
            ORDER BY e.decided DESC, e.match_probability DESC, e.record_key_l, e.record_key_r
            """
        ).fetchall()
        members = con.sql(
            """SELECT record_key, cluster_id FROM cc WHERE cluster_id IN
               (SELECT cluster_id FROM cc WHERE record_key IN (SELECT k FROM conflict_keys))"""
        ).fetchall()
        new_ids = _constrained_components([m[0] for m in members], [e[:3] for e in bad_edges], conflicts)
        refused = sum(1 for a, b, _p, decided in bad_edges if decided and new_ids[a] != new_ids[b])
        rebuilt = len({m[1] for m in members})
        con.register("repaired", pa.table({"record_key": list(new_ids), "new_id": list(new_ids.values())}))
        con.execute(
            """UPDATE cc SET cluster_id = r.new_id FROM repaired r WHERE cc.record_key = r.record_key"""
        )
    # Each record's explanation is that of the strongest edge tying it into its cluster
    # (a human must-link first).
    out = con.sql(
        """
        WITH used AS (
            SELECT e.* FROM kept_edges e
            JOIN cc a ON a.record_key = e.record_key_l
            JOIN cc b ON b.record_key = e.record_key_r
            WHERE a.cluster_id = b.cluster_id
        ), ends AS (
            SELECT record_key_l AS k, record_key_r AS via, match_probability AS p, match_weight AS w,
                   explanation, decided FROM used
            UNION ALL
            SELECT record_key_r, record_key_l, match_probability, match_weight, explanation, decided FROM used
        ), best AS (
            SELECT k AS record_key,
                   arg_max(struct_pack(p, w, explanation, via), (decided, p, via)) AS b
            FROM ends GROUP BY k
        )
        SELECT c.record_key, c.cluster_id, coalesce(b.b.p, 1.0) AS match_probability,
               b.b.w AS match_weight, b.b.explanation AS explanation, b.b.via AS linked_via
        FROM cc c LEFT JOIN best b USING (record_key)
        ORDER BY c.record_key
        """
    ).to_arrow_table()
    return out.cast(LINK_SCHEMA), rebuilt, refused


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


