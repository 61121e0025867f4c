"""Resolving and publishing in tests as ``hub.pipeline.resolve`` does (read the inputs, compute the
release, publish it in one transaction), and publishing a hand-made resolution (links and citizens
written by a test) the same way."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from matching.households import build_households
from matching.identity import retired_aliases
from matching.model import load_model, save_model
from matching.release import Release, ReleaseGuard, compute_release, release_report
from matching.survivorship import Survivorship
from schemas.contract import CITIZEN_ATTRIBUTE, CITIZEN_LINK, DISCREPANCY, REVIEW_QUEUE, arrow_schema
from warehouse.engine import Warehouse, conform
from warehouse.resolution import publish_release, read_inputs


def hand_made_release(wh: Warehouse, run_id: str, *, links: pa.Table, citizens: pa.Table | Survivorship,
                      run_row: dict[str, Any], memberships: pa.Table | None = None) -> Release:
    """The release of ``links`` (CITIZEN_LINK columns; ``run_id`` filled when missing) and ``citizens``
    (a bare CITIZEN table, or survivorship's result with provenance), foyers built from ``memberships``
    (default: the warehouse's) with the published foyers' ids carried over; an empty review queue."""
    inputs = read_inputs(wh)
    if "run_id" not in links.column_names:
        links = links.append_column("run_id", pa.array([run_id] * links.num_rows, pa.string()))
    links = conform(links, CITIZEN_LINK)
    golden = citizens if isinstance(citizens, Survivorship) else Survivorship(
        citizens, arrow_schema(CITIZEN_ATTRIBUTE).empty_table(), arrow_schema(DISCREPANCY).empty_table())
    now = run_row.get("finished_at") or datetime.now(UTC)
    households, members = build_households(
        inputs.memberships if memberships is None else memberships, links, golden.citizens, now=now,
        keys=golden.keys, previous=inputs.previous_households)
    previous = None if inputs.previous_links is None else inputs.previous_links.select(["record_key", "citizen_id"])
    report = release_report(previous, links)
    verdict = ReleaseGuard(min_citizens=10**9).check(report)
    report = {**report, "size_histogram": json.dumps(report["size_histogram"]), "run_id": run_id,
              "decisions_applied": 0, "must_links_refused": 0, "review_queued": 0,
              "status": "accepted" if verdict is None else "confirmed", "guard_message": verdict,
              "recorded_at": now}
    run = {"finished_at": now, **run_row, "run_id": run_id, "citizens": golden.num_rows}
    aliases = retired_aliases(previous, links)
    n = aliases.num_rows
    aliases = aliases.append_column("retired_at", pa.array([now] * n, pa.timestamp("us", tz="UTC")))
    aliases = aliases.append_column("run_id", pa.array([run_id] * n, pa.string()))
    return Release(run_id=run_id, status=report["status"], report=report, run=run, links=links,
                   citizens=golden.citizens, attributes=golden.attributes, discrepancies=golden.discrepancies,
                   households=households, members=members, review_queue=arrow_schema(REVIEW_QUEUE).empty_table(),
                   aliases=aliases, model_json={})


def publish_hand_made(wh: Warehouse, run_id: str, **kw: Any) -> Release:
    """:func:`hand_made_release`, published; returns the release."""
    release = hand_made_release(wh, run_id, **kw)
    publish_release(wh, release)
    return release


def resolve_and_publish(wh: Warehouse, run_id: str, *, model_dir: Path, model_json: dict[str, Any] | None = None,
                        incremental: bool = False, **kw: Any) -> Release:
    """One resolution run as ``hub.pipeline.resolve`` makes it: an incremental run without a model is
    given the last run's from ``model_dir``; the model is saved there once per version. ``kw`` go to
    :func:`matching.release.compute_release` (guard, review_band, confirmed_by…)."""
    inputs = read_inputs(wh, incremental=incremental)
    last = inputs.previous_run
    if model_json is None and incremental and last is not None and (
            path := model_dir / f"{last['model_version']}.json").exists():
        model_json = load_model(path)
    release = compute_release(inputs, run_id, now=datetime.now(UTC), model_json=model_json,
                              incremental=incremental, **kw)
    if not (path := model_dir / f"{release.model_version}.json").exists():
        save_model(release.model_json, path)
    publish_release(wh, release)
    return release
