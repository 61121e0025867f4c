"""The identity step: person records in the warehouse → scored links with persistent citizen ids.

Reads what the step needs (core person records, the links published last time, the human
decisions in force, the ids ever retired), runs the matching engine (pure functions of
``matching``) and returns the links to publish. It writes no golden citizen or link itself
(``warehouse.golden.publish_resolution`` does, atomically); it stores, in transactions of its
own, the run's release report, the review queue and the ids this run retires.

The release guard: a run whose release is abnormal (see :class:`matching.release.ReleaseGuard`)
raises :class:`ReleaseRefused` before anything is published, so the previous publication stays
in place — unless confirmed (``confirm_release=True``, ``HUB_CONFIRM_RELEASE=1``, or
``hub review confirm-release RUN_ID`` on the refused run, which applies to the next run).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from warehouse.engine import Warehouse
from warehouse.golden import core_person_records, previous_links

log = logging.getLogger(__name__)

CONFIRM_ENV = "HUB_CONFIRM_RELEASE"
# Columns a warehouse created before explanations existed gets added (contract: CITIZEN_LINK).
_LINK_COLUMNS_ADDED = (("match_weight", "double"), ("explanation", "json"), ("linked_via", "text"))


class ReleaseRefused(RuntimeError):
    """The release guard refused to publish the run; the previous publication is untouched."""


@dataclass
class LinkResult:
    records: pa.Table  # the core person records resolved (contract columns)
    # record_key, citizen_id, match_probability, match_weight, explanation, linked_via, model_version, run_id
    links: pa.Table
    model_version: str
    threshold: float
    pairs_scored: int
    timings: dict[str, float] = field(default_factory=dict)
    release: dict[str, Any] = field(default_factory=dict)  # the golden.resolution_release row
    standardised: pa.Table | None = None  # the live records as the matching compared them (for survivorship)
    # what the model was built from and refused, for the run report (no personal data): fields filled
    # per source, comparisons left out and why, locales per source, values nulled as placeholders, vetoes
    matching: dict[str, Any] = field(default_factory=dict)


def compute_links(
    wh: Warehouse, run_id: str, *, model_dir: Path, model_json: dict | None = None,
    guard: Any = None, confirm_release: bool | None = None, review_band: tuple[float, float] | None = None,
    incremental: bool = False, spark: Any = None, locales: dict[str, str] | None = None,
    default_locale: str | None = None,
) -> LinkResult:
    """Resolve every core person record honouring the human decisions; ids carried over.

    Without ``model_json`` the model is trained (seeded, reproducible) and saved as
    ``model_dir/<version>.json``; every link records that version. ``guard`` is a
    :class:`matching.release.ReleaseGuard` (default limits when None); ``review_band`` the
    probability band [low, high) whose undecided pairs are queued for review. Raises
    :class:`ReleaseRefused` when the guard refuses the release (the report is stored first).

    ``incremental``: only the records not in the published links, or updated since the last
    published run, are scored (against the rest and among themselves) and the citizens they touch
    re-clustered (:func:`matching.incremental.resolve_incremental`); every other citizen is
    carried over as published. The model is ``model_json`` or, when None, the last run's model
    from ``model_dir`` (never retrained). With no publication or no model yet, a batch run is made.

    ``spark``: a Spark session (:func:`matching.spark.spark_session`): a batch run scores its pairs
    with Splink on Spark (the model trained on DuckDB when not given); the clustering, decisions,
    ids and release are the same. Incremental runs score their small delta on DuckDB.

    ``locales`` / ``default_locale``: each source's standardisation rules (FR, BE, NEUTRAL; a source
    neither names is detected from its rows, see :func:`matching.standardise.standardise`).
    """
    where = {"locales": locales, "default_locale": default_locale}
    if incremental:
        inc = _compute_incremental(wh, run_id, model_dir=model_dir, model_json=model_json, guard=guard,
                                   confirm_release=confirm_release, review_band=review_band, **where)
        if inc is not None:
            return inc

    from matching.decisions import constraints, decided_pairs, review_candidates
    from matching.identity import assign_citizen_ids
    from matching.resolve import REVIEW_BAND, prepare, resolve
    from warehouse import decisions as store

    _add_link_columns(wh)
    records = core_person_records(wh)
    previous = previous_links(wh)
    in_force = store.decisions(wh)
    must, cannot = constraints(in_force)
    live = prepare(records, **where) if spark is not None else None
    if live is None or live.num_rows == 0:
        res = resolve(records, model_json=model_json, must_links=must, cannot_links=cannot, **where)
    else:
        from matching import model as mdl
        from matching.spark import resolve_on_spark

        # training stays on DuckDB (it samples); the pairs, the bulk of the work, are scored on Spark
        model = model_json if model_json is not None else mdl.train(live)
        res = resolve_on_spark(spark, records, model, must_links=must, cannot_links=cannot, **where)
    save_model(model_dir, res.model_json, res.model_version)
    links = assign_citizen_ids(res.links, previous, retired=store.retired_ids(wh))
    queue = review_candidates(res.pairs, _stamped(links, res.model_version, run_id), decided_pairs(in_force),
                              review_band or REVIEW_BAND)
    return _publishable(wh, run_id, records=records, previous=previous, in_force=in_force, res=res,
                        links=links, queue=queue, guard=guard, confirm_release=confirm_release)


def _stamped(links: pa.Table, model_version: str, run_id: str) -> pa.Table:
    n = links.num_rows
    links = links.append_column("model_version", pa.array([model_version] * n, pa.string()))
    return links.append_column("run_id", pa.array([run_id] * n, pa.string()))


def _publishable(
    wh: Warehouse, run_id: str, *, records: pa.Table, previous: pa.Table | None, in_force: list[dict[str, Any]],
    res: Any, links: pa.Table, queue: pa.Table, guard: Any, confirm_release: bool | None,
) -> LinkResult:
    """Release report, guard, review queue and aliases of a run (batch or incremental)."""
    from matching.identity import retired_aliases
    from matching.release import ReleaseGuard, histogram_json, release_report
    from warehouse import decisions as store

    links = _stamped(links, res.model_version, run_id)
    report = release_report(previous, links)
    verdict = (guard or ReleaseGuard()).check(report)
    confirmed_by = _confirmation(wh, confirm_release) if verdict else None
    status = "accepted" if verdict is None else ("confirmed" if confirmed_by else "refused")
    now = datetime.now(UTC)
    release = {
        **{k: v for k, v in report.items() if k != "size_histogram"},
        "run_id": run_id, "previous_run_id": _previous_run(wh, previous),
        "size_histogram": histogram_json(report), "decisions_applied": len(in_force),
        "must_links_refused": res.must_links_refused, "review_queued": queue.num_rows, "status": status,
        "guard_message": verdict, "confirmed_by": confirmed_by, "recorded_at": now,
    }
    store.write_release(wh, release)
    if status == "refused":
        log.warning("run %s: release refused by the guard (%s); the previous publication stays", run_id, verdict)
        raise ReleaseRefused(
            f"run {run_id}: release refused, the previous publication stays in place: {verdict}. "
            f"Check the model and the recent loads; to publish anyway, confirm with "
            f"`hub review confirm-release {run_id}` and run again (or set {CONFIRM_ENV}=1)."
        )
    if status == "confirmed":
        log.warning("run %s: abnormal release published on confirmation by %s (%s)", run_id, confirmed_by, verdict)
    store.write_review_queue(wh, run_id, queue, now=now)
    store.write_aliases(wh, run_id, retired_aliases(previous, links), now=now)
    log.info("run %s: %d records resolved, %d pairs scored, %d decisions in force, %d pairs queued for review; "
             "%d new, %d merged, %d split, %d unchanged citizens", run_id, records.num_rows, res.pairs_scored,
             len(in_force), queue.num_rows, report["new_citizens"], report["merged_citizens"],
             report["split_citizens"], report["unchanged_citizens"])
    return LinkResult(records=records, links=links, model_version=res.model_version, threshold=res.threshold,
                      pairs_scored=res.pairs_scored, timings=dict(res.timings), release=release,
                      standardised=res.standardised, matching=_matching_report(res))


def _matching_report(res: Any) -> dict[str, Any]:
    """What the run report says of the matching: the data it was built from and what it refused."""
    from matching.standardise import standardise_report

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


def _compute_incremental(
    wh: Warehouse, run_id: str, *, model_dir: Path, model_json: dict | None, guard: Any,
    confirm_release: bool | None, review_band: tuple[float, float] | None,
    locales: dict[str, str] | None = None, default_locale: str | None = None,
) -> LinkResult | None:
    """The incremental mode of :func:`compute_links`; None when a batch run is needed instead."""
    from matching.decisions import constraints, decided_pairs, review_candidates
    from matching.incremental import resolve_incremental
    from matching.resolve import REVIEW_BAND
    from schemas.contract import CITIZEN_LINK, PERSON_RECORD
    from warehouse import decisions as store
    from warehouse.engine import qualified

    _add_link_columns(wh)
    previous = previous_links(wh)
    last = _last_run(wh)
    if previous is None or last is None:
        log.info("run %s: no publication yet, resolving in batch", run_id)
        return None
    model = model_json if model_json is not None else _load_model(model_dir, last["model_version"])
    if model is None:
        log.warning("run %s: model %s of the last run not found in the model directory; resolving in batch",
                    run_id, last["model_version"])
        return None
    published = wh.arrow(
        f"""SELECT record_key, citizen_id, match_probability, match_weight, CAST(explanation AS TEXT) AS explanation,
                   linked_via FROM {qualified(CITIZEN_LINK)} ORDER BY record_key"""
    )
    changed = [r[0] for r in wh.rows(
        f"SELECT record_key FROM {qualified(PERSON_RECORD)} WHERE updated_at > :since",
        {"since": last["finished_at"]},
    )]
    records = core_person_records(wh)
    in_force = store.decisions(wh)
    must, cannot = constraints(in_force)
    res = resolve_incremental(records, published, model_json=model, changed=changed, must_links=must,
                              cannot_links=cannot, retired=store.retired_ids(wh), locales=locales,
                              default_locale=default_locale)
    save_model(model_dir, model, res.model_version)
    stamped = _stamped(res.links, res.model_version, run_id)
    fresh = review_candidates(res.pairs, stamped, decided_pairs(in_force), review_band or REVIEW_BAND)
    queue = _carry_queue(store.review_queue(wh), fresh, stamped, decided_pairs(in_force))
    log.info("run %s: incremental (%d new or changed records since run %s; %d citizens re-clustered, %d kept)",
             run_id, res.delta_records, last["run_id"], res.touched_citizens, res.kept_citizens)
    return _publishable(wh, run_id, records=records, previous=previous, in_force=in_force, res=res,
                        links=res.links, queue=queue, guard=guard, confirm_release=confirm_release)


def _last_run(wh: Warehouse) -> dict[str, Any] | None:
    """The last published resolution run (run_id, model_version, finished_at), None before any."""
    from schemas.contract import RESOLUTION_RUN
    from warehouse.engine import qualified

    if not wh.table_exists(RESOLUTION_RUN.schema, RESOLUTION_RUN.name):
        return None
    rows = wh.dicts(f"SELECT run_id, model_version, finished_at FROM {qualified(RESOLUTION_RUN)} "
                    "ORDER BY finished_at DESC, run_id DESC LIMIT 1")
    return rows[0] if rows else None


def _load_model(model_dir: Path, version: str) -> dict[str, Any] | None:
    path = model_dir / f"{version}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _carry_queue(old: list[dict[str, Any]], fresh: pa.Table, links: pa.Table, decided: list[tuple[str, str]]
                 ) -> pa.Table:
    """The review queue after an incremental run: the pairs scored this run, plus the earlier
    entries not re-scored, still undecided and on live records (their citizen ids refreshed)."""
    from matching.decisions import QUEUE_SCHEMA

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


def _confirmation(wh: Warehouse, confirm_release: bool | None) -> str | None:
    """Who confirmed an abnormal release: the caller, the environment, or a stored confirmation."""
    from warehouse import decisions as store

    if confirm_release is None:
        confirm_release = os.environ.get(CONFIRM_ENV, "").lower() in ("1", "true", "yes")
    if confirm_release:
        from warehouse.access_log import signed_in_reader

        return signed_in_reader(os.environ.get("HUB_READER"))
    return store.pending_confirmation(wh)


def _previous_run(wh: Warehouse, previous: pa.Table | None) -> str | None:
    if previous is None:
        return None
    from schemas.contract import CITIZEN_LINK
    from warehouse.engine import qualified

    return wh.scalar(f"SELECT max(run_id) FROM {qualified(CITIZEN_LINK)}")


def _add_link_columns(wh: Warehouse) -> None:
    """Add the explanation columns to a ``golden.citizen_link`` created before they existed."""
    from schemas.contract import CITIZEN_LINK, SQL_TYPES
    from warehouse.engine import qualified

    if not wh.table_exists(CITIZEN_LINK.schema, CITIZEN_LINK.name):
        return
    have = set(wh.columns_of(CITIZEN_LINK.schema, CITIZEN_LINK.name))
    col = 0 if wh.kind == "duckdb" else 1
    for name, logical in _LINK_COLUMNS_ADDED:
        if name not in have:
            wh.execute(f'ALTER TABLE {qualified(CITIZEN_LINK)} ADD COLUMN "{name}" {SQL_TYPES[logical][col]}')


def save_model(model_dir: Path, model_json: dict[str, Any], version: str) -> Path:
    """The trained model as versioned JSON (written once per version)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / f"{version}.json"
    if not path.exists():
        path.write_text(json.dumps(model_json, indent=1, sort_keys=True), encoding="utf-8")
    return path
