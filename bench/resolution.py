"""Identity-resolution benchmark on the sandbox population (run by hand, never by pytest).

    .venv/bin/python bench/resolution.py --people 10000
    .venv/bin/python bench/resolution.py --people 100000 --threshold 0.95
    .venv/bin/python bench/resolution.py --people 100000 --surnames dense   # namesake stress case
    .venv/bin/python bench/resolution.py --people 100000 --country be       # the Brussels sandbox

Prints records, pairs scored, blocking recall, pairwise precision / recall / F1 and per-phase
timings of standardise, train, predict, cluster, citizen ids and golden records; then pairwise and
cluster precision / recall overall and by stratum (twins, namesakes, same household, nom d'usage
change, moved address; DuckDB SQL over links joined to the truth), the time of a bare Splink 5
DuckDB train + predict + cluster on the same standardised rows, and the time to attach
``--attach`` new records incrementally to the others (published model, no retraining).

Strata (pairs of records, truth from the sandbox population):
* twins, same household, namesakes: pairs of records of people of one group (a pair of twins,
  one household, one prénom + usage name shared by several people), same person or not;
* nom d'usage change, moved address: pairs with a record of a person whose records carry more
  than one surname (moved: more than one street line + postcode), standardised.
A cluster is right when it holds exactly one person's records; by stratum, cluster precision is
over the clusters holding a record of the stratum, cluster recall over the stratum's people.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from matching import model as mdl
from matching.evaluate import blocking_rule_recall, pairwise_scores
from matching.identity import assign_citizen_ids
from matching.resolve import DEFAULT_THRESHOLD, prepare, resolve
from matching.survivorship import golden
from sandbox.observations import observe, person_records, to_person_records
from sandbox.population import COUNTRIES, SURNAME_POOLS, generate_population


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=10_000, help="people in the synthetic commune")
    ap.add_argument("--seed", type=int, default=42, help="sandbox seed")
    ap.add_argument("--surnames", choices=SURNAME_POOLS, default="france",
                    help="surname pool: French frequencies, or the namesake-heavy stress case")
    ap.add_argument("--country", type=str.upper, choices=COUNTRIES, default="FR",
                    help="sandbox mode: a French commune (fr) or the Brussels-Capital region (be)")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="clustering threshold")
    ap.add_argument("--errors", type=int, default=0, help="print this many wrong pairs (fp and fn) by kind")
    ap.add_argument("--attach", type=int, default=10_000, help="records attached incrementally (0: skip)")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare Splink run")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    t0 = time.perf_counter()
    population = generate_population(args.people, args.seed, surnames=args.surnames, country=args.country)
    records = to_person_records(observe(population, args.seed))
    generate_s = time.perf_counter() - t0
    live = records.filter(pc.is_null(records["deleted_at"]))
    truth = live.select(["record_key", "person_id"])

    # Both runs below start warm: Splink imported and its first linker, SQL parsing and DuckDB
    # functions exercised once (seconds on this machine, paid once per process, not per run).
    resolve(person_records(2_000, args.seed, country=args.country))

    t0 = time.perf_counter()
    res = resolve(records, threshold=args.threshold)
    resolve_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids = assign_citizen_ids(res.links)
    ids_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    citizens = golden(records, ids, now=datetime.now(UTC), standardised=res.standardised)
    golden_s = time.perf_counter() - t0

    scores = pairwise_scores(ids, truth)
    # the blocking rules evaluated on the true pairs (the timed run keeps only the pairs above
    # the floor, as the hub does; every blocked pair would be tens of millions at 1M records)
    model_in = mdl.model_input(prepare(records))
    block = blocking_rule_recall(model_in, truth, mdl.blocking_rules(mdl.profile(model_in)))
    out = [
        ("sandbox", f"{args.country} ({'Brussels-Capital region' if args.country == 'BE' else 'French commune'})"),
        ("people", f"{args.people:,}"),
        ("records (live)", f"{records.num_rows:,} ({live.num_rows:,})"),
        ("true persons", f"{len(set(truth['person_id'].to_pylist())):,}"),
        ("citizens", f"{citizens.num_rows:,}"),
        ("pairs scored", f"{res.pairs_scored:,}"),
        ("blocking recall", f"{block['recall']:.4%} ({block['covered']:,} / {block['true_pairs']:,})"),
        ("threshold", f"{res.threshold}"),
        ("precision", f"{scores['precision']:.4%}"),
        ("recall", f"{scores['recall']:.4%}"),
        ("f1", f"{scores['f1']:.4%}"),
        ("tp / fp / fn", f"{scores['tp']:,} / {scores['fp']:,} / {scores['fn']:,}"),
        ("model", res.model_version),
        ("generate s", f"{generate_s:.2f}"),
        *((f"{k} s", f"{v:.2f}") for k, v in res.timings.items()),
        ("resolve total s", f"{resolve_s:.2f}"),
        ("citizen ids s", f"{ids_s:.2f}"),
        ("golden s", f"{golden_s:.2f}"),
        ("resolve + ids + golden s", f"{resolve_s + ids_s + golden_s:.2f}"),
    ]
    hub_s = resolve_s + ids_s + golden_s
    if not args.no_bare:
        bare_s = bare_splink_seconds(records, args.threshold)
        out.append(("bare Splink 5 train+predict+cluster s", f"{bare_s:.2f}"))
        out.append(("hub vs bare", f"hub resolution {hub_s:.1f} s vs bare Splink {bare_s:.1f} s "
                                   f"({hub_s / bare_s:.2f}x)"))
    if args.attach:
        out.extend(attach_figures(live, res.model_json, args.attach, args.seed, truth))
    width = max(len(k) for k, _ in out)
    for k, v in out:
        print(f"{k:<{width}}  {v}")
    print_strata(stratum_scores(records, population.persons, ids))
    if args.errors:
        _print_errors(records, ids, res, args.errors)


def stratum_scores(records: pa.Table, persons: pa.Table, links: pa.Table) -> list[tuple]:
    """(stratum, records, pairwise P, R, tp, fp, fn, cluster P, R, clusters, people) per stratum, in SQL."""
    import duckdb

    std = prepare(records)
    con = duckdb.connect()
    con.register("std_in", std.select(["record_key", "surname_std", "address_std", "postcode_std"]))
    con.register("rec_in", records.select(["record_key", "person_id"]))
    con.register("links_in", links.select(["record_key", "citizen_id"]))
    con.register("persons_in", persons.select(["person_id", "household_id", "is_twin", "given_names",
                                               "usage_name", "birth_date"]))
    con.execute("""
        CREATE TEMP TABLE person AS
        SELECT person_id, household_id,
               CASE WHEN is_twin THEN household_id || '|' || birth_date END AS twin_key,
               upper(strip_accents(split_part(given_names, ' ', 1))) || '|' || upper(strip_accents(usage_name))
                   AS name_key
        FROM persons_in""")
    con.execute("""
        CREATE TEMP TABLE j AS
        WITH r AS (SELECT r.record_key, l.citizen_id AS c, r.person_id AS p, s.surname_std,
                          s.address_std || '|' || s.postcode_std AS addr
                   FROM rec_in r JOIN links_in l USING (record_key) JOIN std_in s USING (record_key)),
             per AS (SELECT p, count(DISTINCT surname_std) > 1 AS usage_change, count(DISTINCT addr) > 1 AS moved
                     FROM r GROUP BY p),
             namesake AS (SELECT name_key FROM person GROUP BY 1 HAVING count(*) > 1)
        SELECT r.record_key, r.c, r.p,
               pe.twin_key AS g_twins, CAST(pe.household_id AS VARCHAR) AS g_household,
               CASE WHEN pe.name_key IN (SELECT name_key FROM namesake) THEN pe.name_key END AS g_namesakes,
               per.usage_change AS f_usage_change, per.moved AS f_moved
        FROM r JOIN person pe ON pe.person_id = r.p JOIN per USING (p)""")
    parts = ["SELECT 'overall' AS s, record_key, c, p, 'all' AS g, true AS f, false AS touching FROM j"]
    parts += [f"SELECT '{n}', record_key, c, p, g_{n}, true, false FROM j WHERE g_{n} IS NOT NULL"
              for n in ("twins", "namesakes", "household")]
    parts += [f"SELECT '{n}', record_key, c, p, 'all', f_{n}, true FROM j" for n in ("usage_change", "moved")]
    con.execute(f"CREATE TEMP TABLE st AS {' UNION ALL '.join(parts)}")
    # Pairs by group sizes (n(n-1)/2), never enumerated. Within strata: pairs of flagged records of one
    # group; touching strata: pairs with at least one record of a flagged person.
    return con.sql("""
        WITH pc AS (SELECT s, c, g, count(*) AS n, count(*) FILTER (WHERE f) AS nf, any_value(touching) AS t
                    FROM st GROUP BY ALL),
             pred AS (SELECT s, sum(CASE WHEN t THEN n * (n - 1) // 2 - (n - nf) * (n - nf - 1) // 2
                                         ELSE n * (n - 1) // 2 END) AS v FROM pc GROUP BY s),
             act AS (SELECT s, sum(n * (n - 1) // 2) AS v FROM
                     (SELECT s, p, g, count(*) AS n FROM st WHERE f GROUP BY ALL) GROUP BY s),
             tp AS (SELECT s, sum(n * (n - 1) // 2) AS v FROM
                    (SELECT s, c, p, g, count(*) AS n FROM st WHERE f GROUP BY ALL) GROUP BY s),
             -- a cluster is right when its records are exactly one person's (over all records, not the stratum)
             cl AS (SELECT c, count(DISTINCT p) = 1 AS pure, any_value(p) AS p1, count(*) AS n FROM j GROUP BY c),
             pp AS (SELECT p, count(*) AS n FROM j GROUP BY p),
             exact AS (SELECT cl.c, cl.p1 FROM cl JOIN pp ON pp.p = cl.p1 AND pp.n = cl.n WHERE cl.pure),
             cprec AS (SELECT s, count(DISTINCT c) AS clusters,
                              count(DISTINCT c) FILTER (WHERE c IN (SELECT c FROM exact)) AS ok
                       FROM st WHERE f GROUP BY s),
             crec AS (SELECT s, count(DISTINCT p) AS people,
                             count(DISTINCT p) FILTER (WHERE p IN (SELECT p1 FROM exact)) AS ok
                      FROM st WHERE f GROUP BY s),
             recs AS (SELECT s, count(*) FILTER (WHERE f) AS n FROM st GROUP BY s)
        SELECT s, recs.n, coalesce(tp.v / nullif(pred.v, 0), 1.0), coalesce(tp.v / nullif(act.v, 0), 1.0),
               coalesce(tp.v, 0), coalesce(pred.v - tp.v, 0), coalesce(act.v - tp.v, 0),
               cprec.ok / cprec.clusters, crec.ok / crec.people, cprec.clusters, crec.people
        FROM recs LEFT JOIN pred USING (s) LEFT JOIN act USING (s) LEFT JOIN tp USING (s)
        LEFT JOIN cprec USING (s) LEFT JOIN crec USING (s)
        ORDER BY s <> 'overall', s""").fetchall()


def print_strata(rows: list[tuple]) -> None:
    """The stratum table."""
    print(f"{'stratum':<13} {'records':>9} {'pair P':>9} {'pair R':>9} {'tp':>9} {'fp':>7} {'fn':>7} "
          f"{'clust P':>9} {'clust R':>9} {'clusters':>9} {'people':>9}")
    for s, n, p, r, tp, fp, fn, cp, cr, nc, npp in rows:
        print(f"{s:<13} {n:>9,} {p:>9.4%} {r:>9.4%} {int(tp):>9,} {int(fp):>7,} {int(fn):>7,} "
              f"{cp:>9.4%} {cr:>9.4%} {nc:>9,} {npp:>9,}")


def bare_splink_seconds(records, threshold: float) -> float:
    """A bare Splink 5 DuckDB train + predict + cluster on the same standardised rows (the hub's
    settings and training rules for these records, no guard, no repair, no explanations, no ids)."""
    import duckdb

    std = mdl.model_input(prepare(records))
    prof = mdl.profile(std)
    plan = mdl.training_plan(std, prof)
    t0 = time.perf_counter()
    con = duckdb.connect()
    lk = mdl.linker(con, std, mdl.settings(prof))
    lk.training.estimate_probability_two_random_records_match(list(plan.deterministic_rules),
                                                              recall=mdl.DETERMINISTIC_RECALL)
    lk.training.estimate_u_using_random_sampling(max_pairs=mdl.U_MAX_PAIRS, seed=mdl.SEED)
    for rule in plan.em_rules:
        lk.training.estimate_parameters_using_expectation_maximisation(rule)
    preds = lk.inference.predict(threshold_match_probability=mdl_floor())
    clusters = lk.clustering.cluster_pairwise_predictions_at_threshold(preds, threshold_match_probability=threshold)
    clusters.as_duckdbpyrelation().aggregate("count(*)").fetchall()
    con.close()
    return time.perf_counter() - t0


def mdl_floor() -> float:
    from matching.resolve import PAIR_FLOOR

    return PAIR_FLOOR


def attach_figures(live, model_json, n: int, seed: int, truth) -> list[tuple[str, str]]:
    """Resolve all but ``n`` random live records in batch (same model), then attach the ``n``
    incrementally; compare with the full batch on all records."""
    import numpy as np

    from matching.incremental import resolve_incremental

    n = min(n, live.num_rows // 10)
    pick = np.zeros(live.num_rows, dtype=bool)
    pick[np.random.default_rng(seed).choice(live.num_rows, size=n, replace=False)] = True
    base = live.filter(pa.array(~pick))
    t0 = time.perf_counter()
    published = assign_citizen_ids(resolve(base, model_json=model_json).links)
    base_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    inc = resolve_incremental(live, published, model_json=model_json)
    inc_s = time.perf_counter() - t0
    full = assign_citizen_ids(resolve(live, model_json=model_json).links, published)
    si, sf = pairwise_scores(inc.links, truth), pairwise_scores(full, truth)
    import duckdb

    con = duckdb.connect()
    con.register("a", inc.links.select(["record_key", "citizen_id"]))
    con.register("b", full.select(["record_key", "citizen_id"]))
    con.register("p", published.select(["record_key", "citizen_id"]))
    differ, kept_changed = con.sql("""
        WITH sa AS (SELECT record_key, list_sort(list(record_key) OVER (PARTITION BY citizen_id)) AS s FROM a),
             sb AS (SELECT record_key, list_sort(list(record_key) OVER (PARTITION BY citizen_id)) AS s FROM b),
             ps AS (SELECT citizen_id, list_sort(list(record_key)) AS s FROM p GROUP BY 1),
             cs AS (SELECT citizen_id, list_sort(list(record_key)) AS s FROM a GROUP BY 1)
        SELECT (SELECT count(*) FROM sa JOIN sb USING (record_key) WHERE sa.s <> sb.s),
               (SELECT count(*) FROM ps JOIN cs USING (s) WHERE ps.citizen_id <> cs.citizen_id)""").fetchall()[0]
    return [
        ("attach: existing / new records", f"{base.num_rows:,} / {n:,}"),
        ("attach: batch on existing s", f"{base_s:.2f}"),
        ("attach: incremental s", f"{inc_s:.2f} ({', '.join(f'{k} {v:.1f}' for k, v in inc.timings.items())})"),
        ("attach: citizens re-clustered / kept", f"{inc.touched_citizens:,} / {inc.kept_citizens:,}"),
        ("attach: incremental P / R", f"{si['precision']:.4%} / {si['recall']:.4%}"),
        ("attach: full batch P / R", f"{sf['precision']:.4%} / {sf['recall']:.4%}"),
        ("attach: records whose citizen differs", f"{differ:,} of {live.num_rows:,}"),
        ("attach: unchanged citizens with a new id", f"{kept_changed:,}"),
    ]


def _print_errors(records, ids, res, n: int) -> None:
    """Sample false positives / negatives with their scores (synthetic data only)."""
    import duckdb


    con = duckdb.connect()
    std = prepare(records)
    con.register("std", std)
    con.register("ids", ids)
    con.register("pairs", res.pairs)
    cols = ("record_key, person_id, first_name_std, given_names_std, surnames_std, birth_date_std, "
            "email_std, phone_std, address_std, postcode_std, sex_std")
    print("--- false positives (same citizen, different person)")
    print(con.sql(f"""
        WITH c AS (SELECT i.citizen_id FROM ids i JOIN std s USING (record_key)
                   GROUP BY 1 HAVING count(DISTINCT s.person_id) > 1 LIMIT {int(n)})
        SELECT i.citizen_id, {cols} FROM ids i JOIN std s USING (record_key)
        WHERE citizen_id IN (SELECT citizen_id FROM c) ORDER BY 1, 2""").df().to_string())
    print("--- false negatives (same person, different citizens), with the pair's score")
    print(con.sql(f"""
        WITH p AS (SELECT s.person_id FROM ids i JOIN std s USING (record_key)
                   GROUP BY 1 HAVING count(DISTINCT i.citizen_id) > 1 LIMIT {int(n)})
        SELECT i.citizen_id, {cols},
               (SELECT max(match_probability) FROM pairs
                 WHERE record_key_l = s.record_key OR record_key_r = s.record_key) AS best_p
        FROM ids i JOIN std s USING (record_key)
        WHERE person_id IN (SELECT person_id FROM p) ORDER BY person_id, citizen_id""").df().to_string())


if __name__ == "__main__":
    main()
