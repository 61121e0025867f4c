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


def compute_links(
    wh: Warehouse, run_id: str, *, model_dir: Path, model_json: dict | None = None,
    guard: Any = None, confirm_release: bool | None = None, review_band: tuple[float, float] | None = None,
) -> LinkResult:
    """Resolve every core person record honouring the human decisions; ids carried over.

    Without ``model_json`` the model is trained (seeded, reproducible) and saved as
    ``model_dir/<version>.json``; every link records that version. ``guard`` is a
    :class:`matching.release.ReleaseGuard` (default limits when None); ``review_band`` the
    probability band [low, high) whose undecided pairs are queued for review. Raises
    :class:`ReleaseRefused` when the guard refuses the release (the report is stored first).
    """
    from matching.decisions import constraints, decided_pairs, review_candidates
    from matching.identity import assign_citizen_ids, retired_aliases
    from matching.release import ReleaseGuard, histogram_json, release_report
    from matching.resolve import REVIEW_BAND, resolve
    from warehouse import decisions as store

    _add_link_columns(wh)
    records = core_person_records(wh)
    previous = previous_links(wh)
    in_force = store.decisions(wh)
    must, cannot = constraints(in_force)
    res = resolve(records, model_json=model_json, must_links=must, cannot_links=cannot)
    save_model(model_dir, res.model_json, res.model_version)
    links = assign_citizen_ids(res.links, previous, retired=store.retired_ids(wh))
    n = links.num_rows
    links = links.append_column("model_version", pa.array([res.model_version] * n, pa.string()))
    links = links.append_column("run_id", pa.array([run_id] * n, pa.string()))

    report = release_report(previous, links)
    queue = review_candidates(res.pairs, links, decided_pairs(in_force), review_band or REVIEW_BAND)
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
                      pairs_scored=res.pairs_scored, timings=dict(res.timings), release=release)


def _confirmation(wh: Warehouse, confirm_release: bool | None) -> str | None:
    """Who confirmed an abnormal release: the caller, the environment, or a stored confirmation."""
    from warehouse import decisions as store

    if confirm_release is None:
        confirm_release = os.environ.get(CONFIRM_ENV, "").lower() in ("1", "true", "yes")
    if confirm_release:
        import getpass

        return os.environ.get("HUB_READER") or getpass.getuser()
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
