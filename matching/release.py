"""A whole resolution release, computed from what it is handed (pure), and its guard.

:func:`compute_release` is the identity step: handed the canonical records, the previous
publication (links, foyers, queue, retired ids, last run), the human decisions in force, the
corrections in force and the model, it returns one :class:`Release` — links with persistent
citizen ids, golden citizens with provenance and worklists (survivorship), foyers, the review
queue, the ids it retires (aliases), the release report and the run row — as Arrow tables in the
contract's columns. It reads and writes no warehouse: ``warehouse.resolution`` reads its inputs
and publishes its result in one transaction.

The release report counts, per run: citizens with a fresh id (new), citizens holding records of
two or more previous citizens (merged), previous citizens whose records now belong to two or
more citizens (split), citizens with the same id and exactly the same records (unchanged),
previous ids no cluster kept (retired), and a histogram of citizens by number of records.

The guard refuses an abnormal release — many merges or splits at once, or a largest citizen
growing past a size no person reaches — because a wrong merge shows one person's data to
another: a model or data problem must be looked at before it is published. A refused release
carries its report only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from matching import model as mdl
from matching import resources
from matching.decisions import QUEUE_SCHEMA, constraints, decided_pairs, review_candidates
from matching.households import build_households
from matching.identity import assign_citizen_ids, retired_aliases
from matching.incremental import resolve_incremental
from matching.resolve import REVIEW_BAND, prepare, resolve
from matching.standardise import standardise_report
from matching.survivorship import survive
from schemas.contract import (
    CITIZEN,
    CITIZEN_ALIAS,
    CITIZEN_ATTRIBUTE,
    CITIZEN_LINK,
    DISCREPANCY,
    HOUSEHOLD,
    HOUSEHOLD_MEMBER,
    REVIEW_QUEUE,
    Table,
    arrow_schema,
)

log = logging.getLogger(__name__)

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
    con = resources.connect()
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




# ------------------------------------------------------------------------------------------ the pure step
@dataclass(frozen=True)
class ResolutionInputs:
    """Everything a resolution run reads (``warehouse.resolution.read_inputs`` reads it).

    ``records``: every ``core.person_record`` (deleted ones included), contract columns, sorted by
    key; ``memberships``: ``core.household_membership``; ``decisions``: the human decisions in force
    (rows of ``golden.match_decision``); ``previous_links``: the published ``golden.citizen_link``
    (at least record_key, citizen_id, run_id; an incremental run also uses its match columns),
    None before any publication; ``previous_run``: the last published run (run_id,
    model_version, finished_at); ``previous_households``: the published foyers' members
    (household_id, citizen_id); ``review_queue``: the queue as published (rows of
    ``golden.review_queue``); ``retired``: every id ever retired; ``rectifications``: the
    corrections in force (GDPR Art. 16); ``pending_confirmation``: who confirmed the latest,
    refused release (it then applies to this run).
    """

    records: pa.Table
    memberships: pa.Table
    decisions: Sequence[Mapping[str, Any]] = ()
    previous_links: pa.Table | None = None
    previous_run: Mapping[str, Any] | None = None
    previous_households: pa.Table | None = None
    review_queue: Sequence[Mapping[str, Any]] = ()
    retired: frozenset[str] = frozenset()
    rectifications: pa.Table | None = None
    pending_confirmation: str | None = None


@dataclass(frozen=True)
class Release:
    """One resolution run's result, every table in its contract's columns.

    ``status`` is the guard's verdict: ``accepted``, ``confirmed`` (abnormal, published on a
    human's confirmation) or ``refused`` — a refused release carries its ``report`` only (its
    tables are empty) and must not be published. ``report`` is the ``golden.resolution_release``
    row, ``run`` the ``golden.resolution_run`` row. ``model_json`` is the model every link records
    (``model_version``); ``mode`` ``batch`` or ``incremental``; ``matching`` what the run report
    says of the matching (no personal data); ``timings`` seconds per step.
    """

    run_id: str
    status: str
    report: dict[str, Any]
    run: dict[str, Any]
    links: pa.Table
    citizens: pa.Table
    attributes: pa.Table
    discrepancies: pa.Table
    households: pa.Table
    members: pa.Table
    review_queue: pa.Table
    aliases: pa.Table
    model_json: dict[str, Any]
    mode: str = "batch"
    matching: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        """The guard refused the release: nothing of it but its report may be published."""
        return self.status == "refused"

    @property
    def model_version(self) -> str:
        return str(self.run["model_version"])

    def tables(self) -> dict[Table, pa.Table]:
        """Each golden table of the release with its contract table (the run row and report aside)."""
        return {table: getattr(self, name) for table, name in _FIELDS.items()}


def compute_release(
    inputs: ResolutionInputs, run_id: str, *, now: datetime, model_json: dict[str, Any] | None = None,
    guard: ReleaseGuard | None = None, confirmed_by: str | None = None,
    review_band: tuple[float, float] | None = None, incremental: bool = False, spark: Any = None,
    locales: dict[str, str] | None = None, default_locale: str | None = None,
    train_sample: int | None = mdl.TRAIN_SAMPLE,
) -> Release:
    """The whole release of run ``run_id`` from ``inputs`` (same inputs, same release).

    ``now`` (timezone-aware) stamps the golden rows, foyers, queue entries, aliases and run.
    Without ``model_json`` a model is trained (seeded, reproducible); every link records its
    version. ``guard`` (default limits when None) judges the release against the previous
    publication; ``confirmed_by`` (the person confirming an abnormal release now, else the
    inputs' pending confirmation) turns a refusal into ``confirmed``. ``review_band``: the
    probability band [low, high) whose undecided pairs are queued (default
    :data:`matching.resolve.REVIEW_BAND`).

    ``incremental``: only the records not in the previous links, or updated since the last run,
    are scored (against the rest and among themselves) and the citizens they touch re-clustered
    (:func:`matching.incremental.resolve_incremental`) with ``model_json`` (never retrained);
    every other citizen is carried over. With no previous publication or no model, a batch run is
    made. ``spark``: a Spark session (:func:`matching.spark.spark_session`) scoring a batch run's
    pairs (the model trained on DuckDB when not given) and running the golden build — citizen ids,
    survivorship, foyers — as Spark SQL (the same SQL, :mod:`matching.sqlengine`). ``locales`` /
    ``default_locale``: each source's standardisation rules (see
    :func:`matching.standardise.standardise`). ``train_sample``: a model trained here reads at most
    that many records (None: all; :func:`matching.model.training_sample`).
    """
    if now.tzinfo is None:
        raise ValueError("a release needs a timezone-aware `now`")
    where = {"locales": locales, "default_locale": default_locale}
    must, cannot = constraints(inputs.decisions)
    decided = decided_pairs(inputs.decisions)
    band = review_band or REVIEW_BAND
    previous = _published_ids(inputs.previous_links)
    res: Any = None
    mode = "batch"
    if incremental:
        res = _incremental(inputs, previous, model_json, must, cannot, where)
    t0 = time.perf_counter()
    if res is not None:
        mode = "incremental"
        links = _stamped(res.links, res.model_version, run_id)
        fresh = review_candidates(res.pairs, links, decided, band)
        queue = _carry_queue(inputs.review_queue, fresh, links, decided)
        model = model_json or {}
    else:
        res = _batch(inputs.records, model_json, must, cannot, where, spark, train_sample)
        t0 = time.perf_counter()
        with _engine(spark) as eng:
            ids = assign_citizen_ids(res.links, previous, retired=inputs.retired, engine=eng)
        links = _stamped(ids, res.model_version,
                         run_id)
        queue = review_candidates(res.pairs, links, decided, band)
        model = res.model_json
    timings = dict(res.timings)
    # ids (batch) or the queue carried over (incremental: ids are in its own timings), and the guard
    report = release_report(previous, links)
    verdict = (guard or ReleaseGuard()).check(report)
    confirmer = (confirmed_by or inputs.pending_confirmation) if verdict else None
    status = "accepted" if verdict is None else ("confirmed" if confirmer else "refused")
    row = {
        **{k: v for k, v in report.items() if k != "size_histogram"},
        "run_id": run_id, "size_histogram": json.dumps(report["size_histogram"]),
        "previous_run_id": _previous_run_id(inputs.previous_links), "decisions_applied": len(inputs.decisions),
        "must_links_refused": res.must_links_refused, "review_queued": queue.num_rows, "status": status,
        "guard_message": verdict, "confirmed_by": confirmer, "recorded_at": now,
    }
    run = {"run_id": run_id, "model_version": res.model_version, "records": inputs.records.num_rows,
           "pairs_scored": res.pairs_scored, "citizens": 0, "threshold": res.threshold, "finished_at": now}
    matching = _matching_report(res)
    timings["ids" if mode == "batch" else "queue"] = time.perf_counter() - t0
    if status == "refused":
        log.warning("run %s: release refused by the guard (%s)", run_id, verdict)
        return Release(run_id=run_id, status=status, report=row, run=run, model_json=model, mode=mode,
                       matching=matching, timings=timings,
                       **{_FIELDS[t]: arrow_schema(t).empty_table() for t in _FIELDS})
    if status == "confirmed":
        log.warning("run %s: abnormal release confirmed by %s (%s)", run_id, confirmer, verdict)
    t0 = time.perf_counter()
    with _engine(spark) as eng:
        golden = survive(inputs.records, links, now=now, standardised=res.standardised, engine=eng,
                         rectifications=inputs.rectifications)
    timings["survivorship"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with _engine(spark) as eng:
        households, members = build_households(inputs.memberships, links, golden.citizens, now=now,
                                               keys=golden.keys, previous=inputs.previous_households,
                                               engine=eng)
    timings["foyers"] = time.perf_counter() - t0
    run["citizens"] = golden.num_rows
    log.info("run %s: %d records resolved, %d pairs scored, %d decisions in force, %d pairs queued for review; "
             "%d new, %d merged, %d split, %d unchanged citizens", run_id, inputs.records.num_rows, res.pairs_scored,
             len(inputs.decisions), queue.num_rows, report["new_citizens"], report["merged_citizens"],
             report["split_citizens"], report["unchanged_citizens"])
    return Release(
        run_id=run_id, status=status, report=row, run=run, model_json=model, mode=mode, matching=matching,
        timings=timings, links=_contract(links, CITIZEN_LINK), citizens=_contract(golden.citizens, CITIZEN),
        attributes=_contract(golden.attributes, CITIZEN_ATTRIBUTE),
        discrepancies=_contract(golden.discrepancies, DISCREPANCY), households=_contract(households, HOUSEHOLD),
        members=_contract(members, HOUSEHOLD_MEMBER), review_queue=_queued(queue, inputs.review_queue, run_id, now),
        aliases=_aliases(retired_aliases(previous, links), run_id, now),
    )


# Release fields by contract table (a refused release's tables are empty)
_FIELDS = {CITIZEN_LINK: "links", CITIZEN: "citizens", CITIZEN_ATTRIBUTE: "attributes", DISCREPANCY: "discrepancies",
           HOUSEHOLD: "households", HOUSEHOLD_MEMBER: "members", REVIEW_QUEUE: "review_queue",
           CITIZEN_ALIAS: "aliases"}


@contextmanager
def _engine(spark: Any) -> Iterator[Any]:
    """Where a golden-build step's SQL runs: a Spark SQL engine of its own on ``spark`` (closed
    after the step), else None (each step's own DuckDB connection)."""
    if spark is None:
        yield None
        return
    from matching.spark import SparkEngine  # pyspark is an optional extra

    engine = SparkEngine(spark)
    try:
        yield engine
    finally:
        engine.close()


def _batch(records: pa.Table, model_json: dict[str, Any] | None, must: list[tuple[str, str]],
           cannot: list[tuple[str, str]], where: dict[str, Any], spark: Any,
           train_sample: int | None = mdl.TRAIN_SAMPLE) -> Any:
    """Every live record resolved (on Spark when given a session and records to score)."""
    live = prepare(records, **where) if spark is not None else None
    if live is None or live.num_rows == 0:
        return resolve(records, model_json=model_json, must_links=must, cannot_links=cannot,
                       train_sample=train_sample, **where)
    from matching.spark import resolve_on_spark  # pyspark is an optional extra

    # training stays on DuckDB (it samples); the pairs, the bulk of the work, are scored on Spark
    model = model_json
    if model is None:
        mi = mdl.model_input(live)
        model = mdl.train(mdl.training_sample(mi, train_sample), profile_=mdl.profile(mi))
    return resolve_on_spark(spark, records, model, must_links=must, cannot_links=cannot, **where)


def _incremental(inputs: ResolutionInputs, previous: pa.Table | None, model_json: dict[str, Any] | None,
                 must: list[tuple[str, str]], cannot: list[tuple[str, str]], where: dict[str, Any]) -> Any:
    """The incremental resolution, or None when a batch run is needed (no publication or no model)."""
    last = inputs.previous_run
    if previous is None or last is None:
        log.info("no publication yet: resolving in batch")
        return None
    if model_json is None:
        log.warning("the last run's model %s was not given: resolving in batch", last["model_version"])
        return None
    records = inputs.records
    since = pa.scalar(last["finished_at"], records.schema.field("updated_at").type)
    changed = records.filter(pc.fill_null(pc.greater(records["updated_at"], since), False))["record_key"]
    res = resolve_incremental(records, inputs.previous_links, model_json=model_json, changed=changed.to_pylist(),
                              must_links=must, cannot_links=cannot, retired=inputs.retired, **where)
    log.info("incremental (%d new or changed records since run %s; %d citizens re-clustered, %d kept)",
             res.delta_records, last["run_id"], res.touched_citizens, res.kept_citizens)
    return res


def _published_ids(links: pa.Table | None) -> pa.Table | None:
    """The published ``(record_key, citizen_id)`` pairs, None before any publication."""
    if links is None or links.num_rows == 0:
        return None
    schema = pa.schema([pa.field("record_key", pa.string()), pa.field("citizen_id", pa.string())])
    return links.select(["record_key", "citizen_id"]).cast(schema)


def _previous_run_id(links: pa.Table | None) -> str | None:
    if links is None or links.num_rows == 0 or "run_id" not in links.column_names:
        return None
    return pc.max(links["run_id"]).as_py()


def _stamped(links: pa.Table, model_version: str, run_id: str) -> pa.Table:
    n = links.num_rows
    links = links.append_column("model_version", pa.array([model_version] * n, pa.string()))
    return links.append_column("run_id", pa.array([run_id] * n, pa.string()))


def _contract(data: pa.Table, table: Table) -> pa.Table:
    """``data`` with exactly the contract's columns and types."""
    schema = arrow_schema(table)
    cols = [data[f.name] if data[f.name].type != pa.null() else pa.nulls(data.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(cols, schema, strict=True)], schema=schema)


def _queued(queue: pa.Table, published: Sequence[Mapping[str, Any]], run_id: str, now: datetime) -> pa.Table:
    """The queue with when each pair first entered it (a pair already queued keeps its date) and this run."""
    since = {q["queue_id"]: q["queued_at"] for q in published}
    at = [since.get(i, now) for i in queue["queue_id"].to_pylist()]
    queue = queue.append_column("queued_at", pa.array(at, pa.timestamp("us", tz="UTC")))
    queue = queue.append_column("run_id", pa.array([run_id] * queue.num_rows, pa.string()))
    return _contract(queue, REVIEW_QUEUE)


def _aliases(aliases: pa.Table, run_id: str, now: datetime) -> pa.Table:
    n = aliases.num_rows
    aliases = aliases.append_column("retired_at", pa.array([now] * n, pa.timestamp("us", tz="UTC")))
    return _contract(aliases.append_column("run_id", pa.array([run_id] * n, pa.string())), CITIZEN_ALIAS)


def _carry_queue(old: Sequence[Mapping[str, Any]], fresh: pa.Table, links: pa.Table,
                 decided: list[tuple[str, str]]) -> pa.Table:
    """The review queue after an incremental run: the pairs scored this run, plus the earlier
    entries not re-scored, still undecided and on live records (their citizen ids refreshed)."""
    cid = dict(zip(links["record_key"].to_pylist(), links["citizen_id"].to_pylist(), strict=True))
    have = set(fresh["queue_id"].to_pylist())
    settled = set(decided)
    kept = [
        {**{c: q[c] for c in QUEUE_SCHEMA.names}, "citizen_id_l": cid[q["record_key_l"]],
         "citizen_id_r": cid[q["record_key_r"]],
         "explanation": None if q["explanation"] is None else
         (q["explanation"] if isinstance(q["explanation"], str) else json.dumps(q["explanation"]))}
        for q in old
        if q["queue_id"] not in have and q["record_key_l"] in cid and q["record_key_r"] in cid
        and (q["record_key_l"], q["record_key_r"]) not in settled
    ]
    if not kept:
        return fresh
    return pa.concat_tables([fresh, pa.Table.from_pylist(kept, schema=QUEUE_SCHEMA)])


def _matching_report(res: Any) -> dict[str, Any]:
    """What the run report says of the matching: the data it was built from and what it refused."""
    out: dict[str, Any] = {"vetoes": dict(getattr(res, "vetoes", {}) or {})}
    if getattr(res, "standardised", None) is not None:
        report = standardise_report(res.standardised)
        out["locales"] = {src: c.get("locale") for src, c in report.get("locales", {}).items()}
        out["placeholders_nulled"] = report.get("placeholders_nulled", {})
    prof = getattr(res, "profile", None)
    if prof is not None:
        out["profile"] = prof.as_dict()
        out["left_out"] = prof.left_out()
    return out
