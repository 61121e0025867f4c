"""Identity-resolution benchmark on the sandbox population (run by hand, never by pytest).

    .venv/bin/python bench/resolution.py --people 10000
    .venv/bin/python bench/resolution.py --people 100000 --threshold 0.95

Prints records, pairs scored, blocking recall, pairwise precision / recall / F1 and per-phase
timings of standardise, train, predict, cluster, citizen ids and golden records.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import UTC, datetime

import pyarrow.compute as pc

from matching.evaluate import blocking_recall, pairwise_scores
from matching.identity import assign_citizen_ids
from matching.resolve import DEFAULT_THRESHOLD, resolve
from matching.survivorship import golden
from sandbox.observations import person_records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=10_000, help="people in the synthetic commune")
    ap.add_argument("--seed", type=int, default=42, help="sandbox seed")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="clustering threshold")
    ap.add_argument("--errors", type=int, default=0, help="print this many wrong pairs (fp and fn) by kind")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    t0 = time.perf_counter()
    records = person_records(args.people, seed=args.seed)
    generate_s = time.perf_counter() - t0
    live = records.filter(pc.is_null(records["deleted_at"]))
    truth = live.select(["record_key", "person_id"])

    t0 = time.perf_counter()
    res = resolve(records, threshold=args.threshold, pair_floor=None)
    resolve_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ids = assign_citizen_ids(res.links)
    ids_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    citizens = golden(records, ids, now=datetime.now(UTC))
    golden_s = time.perf_counter() - t0

    scores = pairwise_scores(ids, truth)
    block = blocking_recall(res.pairs, truth)
    out = [
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
    width = max(len(k) for k, _ in out)
    for k, v in out:
        print(f"{k:<{width}}  {v}")
    if args.errors:
        _print_errors(records, ids, res, args.errors)


def _print_errors(records, ids, res, n: int) -> None:
    """Sample false positives / negatives with their scores (synthetic data only)."""
    import duckdb

    from matching.resolve import prepare

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
