"""Storage of human identity decisions, the review queue, release reports and retired ids.

Decisions (``golden.match_decision``) are appended, never deleted: revoking one stamps it.
Recording a decision on a pair that already has one in force revokes the older one (the
latest human word on a pair wins). The review queue (``golden.review_queue``) is replaced by
each resolution run; accepting or rejecting an entry records a must-link or cannot-link and
removes the entry in one transaction. Every function names records and decisions by key in
its errors, never by personal values.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from matching.decisions import checked
from schemas.contract import (
    CITIZEN_ALIAS,
    CITIZEN_LINK,
    MATCH_DECISION,
    RESOLUTION_RELEASE,
    REVIEW_QUEUE,
    arrow_schema,
)
from warehouse.engine import Warehouse, qualified

log = logging.getLogger(__name__)


class DecisionError(ValueError):
    """A decision that cannot be recorded (unknown record, citizen or queue entry, bad groups)."""


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def _ensure(wh: Warehouse) -> None:
    wh.ensure_tables((MATCH_DECISION, REVIEW_QUEUE, RESOLUTION_RELEASE, CITIZEN_ALIAS))


# ------------------------------------------------------------------------------------------ decisions
def record_decision(
    wh: Warehouse, kind: str, *, decided_by: str, reason: str, record_keys: tuple[str, str] | None = None,
    groups: Sequence[Sequence[str]] | None = None, citizen_id: str | None = None, queue_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Store one decision in force; return its id. See :mod:`matching.decisions` for the kinds."""
    if not reason or not reason.strip():
        raise DecisionError("a decision needs a reason (who decided and when are recorded with it)")
    if not decided_by:
        raise DecisionError("a decision needs the deciding agent's login")
    try:
        left, right, groups_json = checked(kind, record_keys, groups)
    except ValueError as e:
        raise DecisionError(str(e)) from None
    _check_known(wh, [k for k in (left, right) if k] + [k for g in json.loads(groups_json or "[]") for k in g])
    at = _now(now)
    decision_id = "D" + secrets.token_hex(6).upper()
    row = {"decision_id": decision_id, "kind": kind, "record_key_l": left, "record_key_r": right,
           "groups": groups_json, "citizen_id": citizen_id, "decided_by": decided_by, "decided_at": at,
           "reason": reason.strip(), "queue_id": queue_id}
    _ensure(wh)
    with wh.transaction():
        if left is not None:
            # the latest word on a pair wins: an older must-link / cannot-link on it is revoked
            wh.execute(
                f"""UPDATE {qualified(MATCH_DECISION)} SET revoked_at = :at, revoked_by = :by,
                           revoke_reason = :why
                    WHERE revoked_at IS NULL AND kind IN ('must_link', 'cannot_link')
                      AND record_key_l = :l AND record_key_r = :r""",
                {"at": at, "by": decided_by, "why": f"superseded by {decision_id}", "l": left, "r": right},
            )
        wh.write(MATCH_DECISION, pa.Table.from_pylist([row], schema=arrow_schema(MATCH_DECISION)))
        if left is not None:
            # a decided pair leaves the review queue
            wh.execute(f"DELETE FROM {qualified(REVIEW_QUEUE)} WHERE record_key_l = :l AND record_key_r = :r",
                       {"l": left, "r": right})
    keys = [k for k in (left, right) if k] + [k for g in (json.loads(groups_json) if groups_json else []) for k in g]
    _log_update(wh, decided_by, keys, citizen_id)
    log.info("decision %s (%s) recorded by %s", decision_id, kind, decided_by)
    return decision_id


def _check_known(wh: Warehouse, record_keys: list[str]) -> None:
    """A decision names records the warehouse holds: an unknown key (a typo, another deployment's)
    would be stored in force and never apply. DecisionError naming the unknown keys."""
    from schemas.contract import PERSON_RECORD
    from warehouse.engine import bind_list

    known: set[str] = set()
    if record_keys and wh.table_exists(PERSON_RECORD.schema, PERSON_RECORD.name):
        binds, params = bind_list("k", record_keys)
        known = {r[0] for r in wh.rows(f"SELECT record_key FROM {qualified(PERSON_RECORD)} "
                                       f"WHERE record_key IN ({binds})", params)}
    unknown = [k for k in dict.fromkeys(record_keys) if k not in known]
    if unknown:
        raise DecisionError(f"no record {', '.join(unknown)} in the warehouse (core.person_record): nothing "
                            "recorded. Record keys read <source>:<entity>/<id>, as `hub citizen show` lists them")


def _log_update(wh: Warehouse, agent: str, record_keys: list[str], citizen_id: str | None) -> None:
    """An identity decision updates the citizens it concerns: one access-log row each (CNIL 2021-122)."""
    from schemas.contract import CITIZEN_LINK
    from schemas.register import load_register
    from warehouse.access_log import Entry, append
    from warehouse.engine import bind_list

    citizens = {citizen_id} - {None}
    if record_keys and wh.table_exists(CITIZEN_LINK.schema, CITIZEN_LINK.name):
        binds, params = bind_list("k", record_keys)
        citizens |= {r[0] for r in wh.rows(
            f"SELECT DISTINCT citizen_id FROM {qualified(CITIZEN_LINK)} WHERE record_key IN ({binds})", params)}
    try:
        purpose = load_register().processing("referentiel-usagers").purpose
    except (KeyError, ValueError):
        purpose = "referentiel-usagers"
    append(wh, [Entry(reader=agent, citizen_id=c, purpose=purpose, operation="update", channel="review",
                      fields=("match_decision",)) for c in sorted(citizens)])


def split_citizen(
    wh: Warehouse, citizen_id: str, *, decided_by: str, reason: str,
    groups: Sequence[Sequence[str]] | None = None, detach: str | None = None, now: datetime | None = None,
) -> str:
    """Split a published citizen: ``groups`` of its record keys, or ``detach`` one record from the rest.

    Records of the citizen left out of ``groups`` form one more group. The split is honoured from
    the next run on: the largest group keeps the id, the others get ids of their own.
    """
    members = [r[0] for r in wh.rows(
        f"SELECT record_key FROM {qualified(CITIZEN_LINK)} WHERE citizen_id = :c ORDER BY record_key",
        {"c": citizen_id},
    )] if wh.table_exists(CITIZEN_LINK.schema, CITIZEN_LINK.name) else []
    if not members:
        raise DecisionError(f"no citizen {citizen_id} in the current publication")
    if (groups is None) == (detach is None):
        raise DecisionError("give either groups of record keys or one record to detach")
    if detach is not None:
        groups = [[detach]]
    named = [list(g) for g in groups or []]
    stray = sorted({k for g in named for k in g} - set(members))
    if stray:
        raise DecisionError(f"{len(stray)} record key(s) given do not belong to citizen {citizen_id}: "
                            f"{', '.join(stray)}")
    rest = [k for k in members if k not in {k for g in named for k in g}]
    if rest:
        named.append(rest)
    return record_decision(wh, "split", decided_by=decided_by, reason=reason, groups=named,
                           citizen_id=citizen_id, now=now)


def revoke_decision(wh: Warehouse, decision_id: str, *, revoked_by: str, reason: str,
                    now: datetime | None = None) -> None:
    """End a decision in force (it stays stored, stamped with who revoked it, when and why)."""
    if not reason or not reason.strip():
        raise DecisionError("revoking a decision needs a reason")
    _ensure(wh)
    found = wh.scalar(f"SELECT count(*) FROM {qualified(MATCH_DECISION)} "
                      "WHERE decision_id = :d AND revoked_at IS NULL", {"d": decision_id})
    if not found:
        raise DecisionError(f"no decision {decision_id} in force")
    wh.execute(
        f"UPDATE {qualified(MATCH_DECISION)} SET revoked_at = :at, revoked_by = :by, revoke_reason = :why "
        "WHERE decision_id = :d",
        {"at": _now(now), "by": revoked_by, "why": reason.strip(), "d": decision_id},
    )
    left, right, groups, citizen_id = wh.rows(
        f"SELECT record_key_l, record_key_r, groups, citizen_id FROM {qualified(MATCH_DECISION)} "
        "WHERE decision_id = :d", {"d": decision_id})[0]
    keys = [k for k in (left, right) if k] + [k for g in (json.loads(groups) if groups else []) for k in g]
    _log_update(wh, revoked_by, keys, citizen_id)


def decisions(wh: Warehouse, *, include_revoked: bool = False) -> list[dict[str, Any]]:
    """The stored decisions (in force only, unless ``include_revoked``), oldest first."""
    if not wh.table_exists(MATCH_DECISION.schema, MATCH_DECISION.name):
        return []
    where = "" if include_revoked else "WHERE revoked_at IS NULL"
    cols = ", ".join(f'"{c}"' for c in MATCH_DECISION.column_names)
    return wh.dicts(f"SELECT {cols} FROM {qualified(MATCH_DECISION)} {where} ORDER BY decided_at, decision_id")


# ------------------------------------------------------------------------------------------ review queue
def review_queue(wh: Warehouse, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The queue, most uncertain pairs first."""
    if not wh.table_exists(REVIEW_QUEUE.schema, REVIEW_QUEUE.name):
        return []
    cols = ", ".join(f'"{c}"' for c in REVIEW_QUEUE.column_names)
    sql = f"SELECT {cols} FROM {qualified(REVIEW_QUEUE)} ORDER BY abs(match_probability - 0.5), queue_id"
    rows = wh.dicts(sql)
    return rows[:limit] if limit else rows


def settle_review(wh: Warehouse, queue_id: str, *, accept: bool, decided_by: str, reason: str,
                  now: datetime | None = None) -> str:
    """Accept (must-link) or reject (cannot-link) a queued pair; the entry leaves the queue."""
    entry = [q for q in review_queue(wh) if q["queue_id"] == queue_id]
    if not entry:
        raise DecisionError(f"no review-queue entry {queue_id}")
    q = entry[0]
    return record_decision(
        wh, "must_link" if accept else "cannot_link", decided_by=decided_by, reason=reason,
        record_keys=(q["record_key_l"], q["record_key_r"]), citizen_id=q["citizen_id_l"], queue_id=queue_id,
        now=now,
    )


# ------------------------------------------------------------------------------------------ releases
def releases(wh: Warehouse, *, limit: int = 10) -> list[dict[str, Any]]:
    """The latest release reports, newest first."""
    if not wh.table_exists(RESOLUTION_RELEASE.schema, RESOLUTION_RELEASE.name):
        return []
    cols = ", ".join(f'"{c}"' for c in RESOLUTION_RELEASE.column_names)
    return wh.dicts(f"SELECT {cols} FROM {qualified(RESOLUTION_RELEASE)} ORDER BY recorded_at DESC, run_id DESC "
                    f"LIMIT {int(limit)}")


def confirm_release(wh: Warehouse, run_id: str, *, confirmed_by: str) -> None:
    """Confirm a refused release: the next run publishes even if the guard finds it abnormal."""
    latest = releases(wh, limit=1)
    if not latest or latest[0]["run_id"] != run_id or latest[0]["status"] != "refused":
        raise DecisionError(f"run {run_id} is not the latest refused release")
    wh.execute(f"UPDATE {qualified(RESOLUTION_RELEASE)} SET confirmed_by = :by WHERE run_id = :r",
               {"by": confirmed_by, "r": run_id})


def pending_confirmation(wh: Warehouse) -> str | None:
    """Who confirmed the latest release when it was refused (it then applies to the next run)."""
    latest = releases(wh, limit=1)
    if latest and latest[0]["status"] == "refused":
        return latest[0]["confirmed_by"]
    return None


# ------------------------------------------------------------------------------------------ aliases
def retired_ids(wh: Warehouse) -> set[str]:
    """Every citizen id ever retired (never to be issued again)."""
    if not wh.table_exists(CITIZEN_ALIAS.schema, CITIZEN_ALIAS.name):
        return set()
    return {r[0] for r in wh.rows(f"SELECT old_id FROM {qualified(CITIZEN_ALIAS)}")}


def current_citizen_id(wh: Warehouse, citizen_id: str) -> str | None:
    """The id a (possibly retired) citizen id stands for now, following aliases; None if gone."""
    seen: set[str] = set()
    cid: str | None = citizen_id
    while cid is not None and cid not in seen:
        seen.add(cid)
        if wh.table_exists(CITIZEN_LINK.schema, CITIZEN_LINK.name) and wh.scalar(
            f"SELECT count(*) FROM {qualified(CITIZEN_LINK)} WHERE citizen_id = :c", {"c": cid}
        ):
            return cid
        if not wh.table_exists(CITIZEN_ALIAS.schema, CITIZEN_ALIAS.name):
            return None
        rows = wh.rows(f"SELECT new_id FROM {qualified(CITIZEN_ALIAS)} WHERE old_id = :c", {"c": cid})
        cid = rows[0][0] if rows else None
    return None
