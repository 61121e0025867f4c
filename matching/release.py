"""The release report of a resolution run against the previous publication, and its guard (pure).

Counts, per run: citizens with a fresh id (new), citizens holding records of two or more
previous citizens (merged), previous citizens whose records now belong to two or more
citizens (split), citizens with the same id and exactly the same records (unchanged), previous
ids no cluster kept (retired), and a histogram of citizens by number of records.

The guard refuses an abnormal release — many merges or splits at once, or a largest citizen
growing past a size no person reaches — because a wrong merge shows one person's data to
another: a model or data problem must be looked at before it is published.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

# histogram buckets: 1 .. 9 records, then "10+"
_HISTOGRAM_TOP = 10


@dataclass(frozen=True)
class ReleaseGuard:
    """Limits of a normal release. Shares are of the previous publication's citizens."""

    max_merged_share: float = 0.02
    max_split_share: float = 0.02
    max_citizen_records: int = 40  # a citizen growing past this many records is suspect
    min_citizens: int = 100  # below this many previous citizens, the share rules do not apply

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> ReleaseGuard:
        """From the ``[matching]`` settings (keys ``guard_max_merged_share`` ... ``guard_min_citizens``)."""
        kwargs = {f: type(getattr(cls(), f))(values[f"guard_{f}"]) for f in cls.__dataclass_fields__
                  if f"guard_{f}" in values}
        return cls(**kwargs)

    def check(self, report: dict[str, Any]) -> str | None:
        """Why the release is abnormal (one sentence per reason), or None when it is normal."""
        reasons = []
        before = report["citizens_before"]
        if before >= self.min_citizens:
            for kind, limit in (("merged", self.max_merged_share), ("split", self.max_split_share)):
                n = report[f"{kind}_citizens"]
                if n > limit * before:
                    reasons.append(f"{n:,} citizens {kind} ({n / before:.1%} of {before:,}; limit {limit:.1%})")
        largest, largest_before = report["largest_after"], report["largest_before"]
        if largest > self.max_citizen_records and largest > largest_before:
            reasons.append(f"the largest citizen grew to {largest:,} records (from {largest_before:,}; "
                           f"limit {self.max_citizen_records:,})")
        return "; ".join(reasons) or None


def release_report(previous: pa.Table | None, current: pa.Table) -> dict[str, Any]:
    """Compare ``current`` links (record_key, citizen_id) with the ``previous`` publication's.

    Records present on one side only (new or deleted records) count for the side they are on:
    a previous citizen split means its records still resolved now belong to two citizens.
    """
    con = duckdb.connect()
    try:
        con.register("cur", current.select(["record_key", "citizen_id"]))
        empty = pa.table({"record_key": pa.array([], pa.string()), "citizen_id": pa.array([], pa.string())})
        con.register("prev", (previous if previous is not None else empty).select(["record_key", "citizen_id"]))
        row = con.sql(
            """
            WITH cur_sets AS (SELECT citizen_id, list_sort(list(record_key)) AS ks, count(*) AS n
                              FROM cur GROUP BY 1),
                 prev_sets AS (SELECT citizen_id, list_sort(list(record_key)) AS ks, count(*) AS n
                               FROM prev GROUP BY 1),
                 pairs AS (SELECT DISTINCT p.citizen_id AS old, c.citizen_id AS new
                           FROM prev p JOIN cur c USING (record_key))
            SELECT
                (SELECT count(*) FROM prev_sets),
                (SELECT count(*) FROM cur_sets),
                (SELECT count(*) FROM cur_sets WHERE citizen_id NOT IN (SELECT citizen_id FROM prev_sets)),
                (SELECT count(*) FROM (SELECT new FROM pairs GROUP BY new HAVING count(*) > 1)),
                (SELECT count(*) FROM (SELECT old FROM pairs GROUP BY old HAVING count(*) > 1)),
                (SELECT count(*) FROM cur_sets c JOIN prev_sets p USING (citizen_id) WHERE c.ks = p.ks),
                (SELECT count(*) FROM prev_sets WHERE citizen_id NOT IN (SELECT citizen_id FROM cur_sets)),
                (SELECT coalesce(max(n), 0) FROM prev_sets),
                (SELECT coalesce(max(n), 0) FROM cur_sets)
            """
        ).fetchall()[0]
        sizes = con.sql(
            f"""SELECT least(n, {_HISTOGRAM_TOP}) AS b, count(*) FROM
                (SELECT count(*) AS n FROM cur GROUP BY citizen_id) GROUP BY 1 ORDER BY 1"""
        ).fetchall()
    finally:
        con.close()
    names = ("citizens_before", "citizens_after", "new_citizens", "merged_citizens", "split_citizens",
             "unchanged_citizens", "retired_ids", "largest_before", "largest_after")
    report: dict[str, Any] = {k: int(v) for k, v in zip(names, row, strict=True)}
    report["size_histogram"] = {
        (f"{b}+" if b == _HISTOGRAM_TOP else str(b)): int(n) for b, n in sizes
    }
    return report


def histogram_json(report: dict[str, Any]) -> str:
    """The size histogram as the JSON text stored in ``golden.resolution_release``."""
    return json.dumps(report["size_histogram"])
