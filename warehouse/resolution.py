"""The identity step: person records in the warehouse → scored links with persistent citizen ids.

Reads what the step needs (core person records, the links published last time), runs the
matching engine (pure functions of ``matching``) and returns the links to publish; it writes
nothing to the golden tables itself (``warehouse.golden.publish_resolution`` does, atomically).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from warehouse.engine import Warehouse
from warehouse.golden import core_person_records, previous_links

log = logging.getLogger(__name__)


@dataclass
class LinkResult:
    records: pa.Table  # the core person records resolved (contract columns)
    links: pa.Table  # record_key, citizen_id, match_probability, model_version, run_id
    model_version: str
    threshold: float
    pairs_scored: int
    timings: dict[str, float] = field(default_factory=dict)


def compute_links(wh: Warehouse, run_id: str, *, model_dir: Path, model_json: dict | None = None) -> LinkResult:
    """Resolve every core person record; ids carried over from the previous publication.

    Without ``model_json`` the model is trained (seeded, reproducible) and saved as
    ``model_dir/<version>.json``; every link records that version.
    """
    from matching.identity import assign_citizen_ids
    from matching.resolve import resolve

    records = core_person_records(wh)
    previous = previous_links(wh)
    res = resolve(records, model_json=model_json)
    save_model(model_dir, res.model_json, res.model_version)
    links = assign_citizen_ids(res.links, previous)
    n = links.num_rows
    links = links.append_column("model_version", pa.array([res.model_version] * n, pa.string()))
    links = links.append_column("run_id", pa.array([run_id] * n, pa.string()))
    log.info("run %s: %d records resolved, %d pairs scored", run_id, records.num_rows, res.pairs_scored)
    return LinkResult(records=records, links=links, model_version=res.model_version, threshold=res.threshold,
                      pairs_scored=res.pairs_scored, timings=dict(getattr(res, "timings", {}) or {}))


def save_model(model_dir: Path, model_json: dict[str, Any], version: str) -> Path:
    """The trained model as versioned JSON (written once per version)."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / f"{version}.json"
    if not path.exists():
        path.write_text(json.dumps(model_json, indent=1, sort_keys=True), encoding="utf-8")
    return path
