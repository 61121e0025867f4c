"""Human identity decisions as clustering constraints, and the review queue they settle (pure).

Three kinds of decision, all between source records (never between citizen ids, which a later
run may change):

* ``must_link`` (a, b): an edge always present in the clustering;
* ``cannot_link`` (a, b): a and b never end in one citizen;
* ``split`` of a citizen into groups of records: a cannot-link between every two records of
  different groups, so no later run merges the groups back (each group is then resolved as the
  model says; ids carry over by overlap, so the largest group keeps the citizen's id).

A decision in force is honoured by every run; only revoking it (a new human act) ends it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from matching import resources

KINDS = ("must_link", "cannot_link", "split")
QUEUE_SCHEMA = pa.schema([
    pa.field("queue_id", pa.string(), nullable=False),
    pa.field("record_key_l", pa.string(), nullable=False),
    pa.field("record_key_r", pa.string(), nullable=False),
    pa.field("match_probability", pa.float64(), nullable=False),
    pa.field("match_weight", pa.float64(), nullable=False),
    pa.field("explanation", pa.string()),
    pa.field("citizen_id_l", pa.string(), nullable=False),
    pa.field("citizen_id_r", pa.string(), nullable=False),
])

Pair = tuple[str, str]


def pair(a: str, b: str) -> Pair:
    """The pair written as Splink writes it: (smaller key, larger key)."""
    if a == b:
        raise ValueError("a decision needs two different records")
    return (a, b) if a < b else (b, a)


def queue_id(a: str, b: str) -> str:
    """A stable id for a pair of records: the same pair keeps its queue id from run to run."""
    left, right = pair(a, b)
    return "Q" + hashlib.sha256(f"{left}|{right}".encode()).hexdigest()[:12].upper()


def split_groups(groups: object) -> list[list[str]]:
    """The groups of a split decision (a JSON text or a list of lists), checked."""
    parsed = json.loads(groups) if isinstance(groups, str) else groups
    if not isinstance(parsed, list) or len(parsed) < 2 or not all(
        isinstance(g, list) and g and all(isinstance(k, str) for k in g) for g in parsed
    ):
        raise ValueError("a split needs at least two non-empty groups of record keys")
    keys = [k for g in parsed for k in g]
    if len(keys) != len(set(keys)):
        raise ValueError("a record may be in one group of a split only")
    return parsed


def checked(kind: str, record_keys: Sequence[str] | None = None, groups: Sequence[Sequence[str]] | None = None
            ) -> tuple[str | None, str | None, str | None]:
    """A decision as stored: ``(record_key_l, record_key_r, groups as JSON text)``, checked.

    A ``must_link`` / ``cannot_link`` names two different records (written as :func:`pair`
    writes them), a ``split`` its groups (:func:`split_groups`). Raises ValueError saying what
    is wrong (never quoting anything but the kind)."""
    if kind in ("must_link", "cannot_link"):
        if record_keys is None:
            raise ValueError(f"a {kind} needs two record keys")
        left, right = pair(*record_keys)
        return left, right, None
    if kind == "split":
        return None, None, json.dumps(split_groups([list(g) for g in groups or []]))
    raise ValueError(f"unknown decision kind {kind!r} (must_link, cannot_link or split)")


def constraints(decisions: Iterable[Mapping[str, Any]]) -> tuple[list[Pair], list[Pair]]:
    """(must-links, cannot-links) from the decisions in force (rows of ``golden.match_decision``).

    Revoked decisions (``revoked_at`` set) are skipped. A split becomes the cannot-links
    between its groups.
    """
    must: set[Pair] = set()
    cannot: set[Pair] = set()
    for d in decisions:
        if d.get("revoked_at") is not None:
            continue
        kind = d["kind"]
        if kind == "must_link":
            must.add(pair(d["record_key_l"], d["record_key_r"]))
        elif kind == "cannot_link":
            cannot.add(pair(d["record_key_l"], d["record_key_r"]))
        elif kind == "split":
            groups = split_groups(d["groups"])
            for g1, g2 in itertools.combinations(groups, 2):
                cannot.update(pair(a, b) for a in g1 for b in g2)
        else:
            raise ValueError(f"decision {d.get('decision_id')}: unknown kind {kind!r}")
    return sorted(must), sorted(cannot)


def review_candidates(
    pairs: pa.Table, links: pa.Table, decided: Sequence[Pair], band: tuple[float, float]
) -> pa.Table:
    """The pairs a human should look at: probability in ``band`` [low, high), no decision yet.

    ``pairs``: scored pairs (record_key_l, record_key_r, match_probability, match_weight,
    explanation); ``links``: record_key, citizen_id. Returns :data:`QUEUE_SCHEMA` columns,
    most uncertain first (closest to 0.5).
    """
    low, high = band
    con = resources.connect()
    try:
        con.register("pairs_in", pairs.select(["record_key_l", "record_key_r", "match_probability",
                                               "match_weight", "explanation"]))
        con.register("links_in", links.select(["record_key", "citizen_id"]))
        con.register("decided_in", pa.table({"k1": [p[0] for p in decided], "k2": [p[1] for p in decided]},
                                            schema=pa.schema([("k1", pa.string()), ("k2", pa.string())])))
        rows = con.sql(
            """
            SELECT p.record_key_l, p.record_key_r, p.match_probability, p.match_weight, p.explanation,
                   a.citizen_id AS citizen_id_l, b.citizen_id AS citizen_id_r
            FROM pairs_in p
            JOIN links_in a ON a.record_key = p.record_key_l
            JOIN links_in b ON b.record_key = p.record_key_r
            WHERE p.match_probability >= $low AND p.match_probability < $high
              AND NOT EXISTS (SELECT 1 FROM decided_in d WHERE d.k1 = p.record_key_l AND d.k2 = p.record_key_r)
            ORDER BY abs(p.match_probability - 0.5), p.record_key_l, p.record_key_r
            """,
            params={"low": low, "high": high},
        ).to_arrow_table()
    finally:
        con.close()
    ids = [queue_id(a, b) for a, b in zip(rows["record_key_l"].to_pylist(), rows["record_key_r"].to_pylist(),
                                          strict=True)]
    return rows.add_column(0, "queue_id", pa.array(ids, pa.string())).cast(QUEUE_SCHEMA)


def decided_pairs(decisions: Iterable[Mapping[str, Any]]) -> list[Pair]:
    """Every pair a decision in force settles (must-links, cannot-links, pairs across split groups)."""
    must, cannot = constraints(decisions)
    return sorted(set(must) | set(cannot))
