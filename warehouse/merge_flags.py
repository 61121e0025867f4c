"""An agent's suspicion that a citizen merges two people: the pair goes to the review queue.

The desk's agent names the source record that does not seem to belong; the pair queued is that
record and the record that tied it into the citizen (``citizen_link.linked_via``; or, for the
record others were tied to, the first record tied through it). The entry carries the link's
probability and contributions, plus who flagged it, when and why (in ``explanation``, which the
register maps as personal data of ``referentiel-usagers``). A reviewer then splits or keeps the
pair with ``hub review`` / ``hub decide``; an incremental run carries an undecided entry forward.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from schemas.contract import CITIZEN_LINK, REVIEW_QUEUE, arrow_schema
from warehouse.engine import Warehouse, qualified

log = logging.getLogger(__name__)

FLAG_RUN = "signalement"


class FlagError(ValueError):
    """A flag that cannot be queued: HTTP-like ``status``, a ``code`` and a French ``message``."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def flag_wrong_merge(wh: Warehouse, citizen_id: str, record_key: str, *, flagged_by: str, reason: str,
                     now: datetime | None = None) -> dict[str, Any]:
    """Queue (record_key, the record it was linked through) of ``citizen_id`` for review; returns
    ``{queue_id, citizen_id, record_key_l, record_key_r}``. Idempotent: a pair already queued keeps
    its entry."""
    from matching.decisions import queue_id

    if not wh.table_exists(CITIZEN_LINK.schema, CITIZEN_LINK.name):
        raise FlagError(404, "usager_introuvable", "Aucun usager publié.")
    links = wh.dicts(f"SELECT record_key, match_probability, match_weight, CAST(explanation AS TEXT) AS explanation, "
                     f"linked_via FROM {qualified(CITIZEN_LINK)} WHERE citizen_id = :c ORDER BY record_key",
                     {"c": citizen_id})
    by_key = {r["record_key"]: r for r in links}
    if record_key not in by_key:
        raise FlagError(404, "fiche_introuvable", "Cette fiche n'est pas rattachée à cet usager.")
    if len(by_key) < 2:
        raise FlagError(409, "fiche_seule", "Cet usager n'a qu'une fiche : il n'y a pas de rapprochement à revoir.")
    link = by_key[record_key]
    other = link["linked_via"] if link["linked_via"] in by_key else next(
        (r["record_key"] for r in links if r["linked_via"] == record_key),
        next(k for k in by_key if k != record_key))
    if link["linked_via"] not in by_key and by_key[other]["linked_via"] == record_key:
        link = by_key[other]  # the edge is stored on the record tied through the flagged one
    left, right = sorted((record_key, other))  # as Splink writes a pair
    qid = queue_id(left, right)
    out = {"queue_id": qid, "citizen_id": citizen_id, "record_key_l": left, "record_key_r": right}
    wh.ensure_table(REVIEW_QUEUE)
    if wh.scalar(f"SELECT count(*) FROM {qualified(REVIEW_QUEUE)} WHERE queue_id = :q", {"q": qid}):
        return out
    at = now or datetime.now(UTC)
    explanation = {"signalement": {"par": flagged_by, "le": at.isoformat(timespec="seconds"), "motif": reason},
                   "contributions": json.loads(link["explanation"]) if link["explanation"] else None}
    row = {**out, "citizen_id_l": citizen_id, "citizen_id_r": citizen_id,
           "match_probability": float(link["match_probability"]),
           "match_weight": float(link["match_weight"] or 0.0),
           "explanation": json.dumps(explanation, ensure_ascii=False), "queued_at": at, "run_id": FLAG_RUN}
    row.pop("citizen_id")
    wh.write(REVIEW_QUEUE, pa.Table.from_pylist([row], schema=arrow_schema(REVIEW_QUEUE)))
    log.info("review queue: a suspected wrong merge flagged (%s)", qid)
    return out
