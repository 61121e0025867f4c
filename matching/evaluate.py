"""Accuracy of a resolution against ground truth, from counts (works at millions of records).

Pairwise measures: a pair of records is predicted to match when both are in one cluster, and
truly matches when both belong to one person. Counts come from group sizes:
``tp = Σ over (cluster, person) of n(n-1)/2``, never from enumerating pairs.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from matching import resources


def _cluster_column(links: pa.Table) -> str:
    for name in ("citizen_id", "cluster_id"):
        if name in links.column_names:
            return name
    raise KeyError("links needs a citizen_id or cluster_id column")


def pairwise_scores(links: pa.Table, truth: pa.Table) -> dict[str, Any]:
    """Pairwise precision, recall, F1 and tp / fp / fn of ``links`` against ``truth``.

    ``links``: record_key and citizen_id (or cluster_id). ``truth``: record_key and person_id.
    Only records present in both are scored (deleted or quarantined records are not resolved).
    Precision (recall) is 1.0 when no pair is predicted (exists).
    """
    cluster = _cluster_column(links)
    con = resources.connect()
    try:
        con.register("links_in", links.select(["record_key", cluster]))
        con.register("truth_in", truth.select(["record_key", "person_id"]))
        tp, predicted, actual, records = con.sql(
            f"""
            WITH j AS (
                SELECT l."{cluster}" AS c, t.person_id AS p
                FROM links_in l JOIN truth_in t USING (record_key)
            ),
            both_ AS (SELECT count(*) AS n FROM j GROUP BY c, p),
            by_c AS (SELECT count(*) AS n FROM j GROUP BY c),
            by_p AS (SELECT count(*) AS n FROM j GROUP BY p)
            SELECT
                (SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM both_),
                (SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM by_c),
                (SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM by_p),
                (SELECT count(*) FROM j)
            """
        ).fetchall()[0]
    finally:
        con.close()
    tp, predicted, actual = int(tp), int(predicted), int(actual)
    fp, fn = predicted - tp, actual - tp
    precision = tp / predicted if predicted else 1.0
    recall = tp / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "records": int(records),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def blocking_rule_recall(model_input: pa.Table, truth: pa.Table, rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Share of the true pairs (same person_id) that at least one blocking rule makes.

    The rules' conditions are evaluated on the true pairs only (cheap at millions of records,
    where every blocked pair would be tens of millions): ``model_input`` is
    :func:`matching.model.model_input`'s output (record_key and the columns the rules read),
    ``rules`` Splink blocking-rule dicts. A column in ``arrays_to_explode`` matches when the two
    lists share an element, as Splink's exploded blocking does.
    """
    conditions = []
    for rule in rules:
        sql = rule["blocking_rule"]
        for col in rule.get("arrays_to_explode", []):
            sql = sql.replace(f'l."{col}" = r."{col}"', f'list_has_any(l."{col}", r."{col}")')
        conditions.append(f"coalesce({sql}, false)")
    con = resources.connect()
    try:
        con.register("mi", model_input)
        con.register("truth_in", truth.select(["record_key", "person_id"]))
        covered, actual = con.sql(
            f"""
            WITH t AS (SELECT m.*, t.person_id FROM mi m JOIN truth_in t USING (record_key))
            SELECT count(*) FILTER (WHERE {" OR ".join(conditions)}), count(*)
            FROM t l JOIN t r ON l.person_id = r.person_id AND l.record_key < r.record_key
            """
        ).fetchall()[0]
    finally:
        con.close()
    covered, actual = int(covered), int(actual)
    return {"recall": covered / actual if actual else 1.0, "covered": covered, "true_pairs": actual}
