"""Rectification (GDPR Art. 16) and objection (Art. 21): recorded once, applied on every run.

- :func:`rectify` records a corrected value with its proof level in ``gdpr.rectification``.
  Survivorship reads the corrections in force as candidates of their own
  (``matching.survivorship.survive(rectifications=...)``, passed in by ``warehouse.golden``), so
  the correction wins over silo values of lower proof on every later run, and the silos holding
  another value show it on their discrepancy worklists (``golden.discrepancy``: the silo value is
  the one to fix). The citizen's golden row is recomputed at once, from their own records.
- :func:`object_to` records an objection to one processing of the register in ``gdpr.objection``;
  the citizen read model (:mod:`warehouse.citizen_view`) does not return the person to reads made
  for that processing (search, show, prefill).

Each writes its own access-log row (operation ``update``, purpose the rights processing).
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas.contract import (
    CERTIFICATION_LEVELS,
    CITIZEN,
    CITIZEN_ATTRIBUTE,
    CITIZEN_LINK,
    DISCREPANCY,
    OBJECTION,
    PERSON_RECORD,
    RECTIFICATION,
    arrow_schema,
)
from warehouse.engine import Warehouse, conform, qualified

log = logging.getLogger(__name__)

RIGHTS_PROCESSING = "droits-rgpd"
RECTIFIABLE = ("given_names", "birth_name", "usage_name", "sex", "birth_date", "email", "phone", "address_line",
               "postcode", "city")


class RightsError(ValueError):
    """A rights request that cannot be applied (unknown citizen, attribute, processing...)."""


def _log(wh: Warehouse, citizen_id: str, *, who: str, operation: str, fields: tuple[str, ...],
         channel: str = "gdpr") -> None:
    from schemas.register import load_register
    from warehouse.access_log import Entry, append

    try:
        purpose = load_register().processing(RIGHTS_PROCESSING).purpose
    except (KeyError, ValueError):
        purpose = RIGHTS_PROCESSING
    append(wh, [Entry(reader=who, citizen_id=citizen_id, purpose=purpose, operation=operation, channel=channel,
                      fields=fields)])


def _citizen_exists(wh: Warehouse, citizen_id: str) -> bool:
    return wh.table_exists(CITIZEN.schema, CITIZEN.name) and bool(
        wh.scalar(f"SELECT count(*) FROM {qualified(CITIZEN)} WHERE citizen_id = :c", {"c": citizen_id}))


def rectify(wh: Warehouse, citizen_id: str, attribute: str, value: str, *, proof_level: int, proof: str,
            decided_by: str, request_id: str | None = None, now: datetime | None = None) -> str:
    """Record a correction and apply it to the citizen's golden row now; returns its id."""
    now = now or datetime.now(UTC)
    if attribute not in RECTIFIABLE:
        raise RightsError(f"attribute {attribute!r} cannot be rectified (one of {', '.join(RECTIFIABLE)})")
    if proof_level not in CERTIFICATION_LEVELS:
        raise RightsError(f"proof level {proof_level} is not one of {sorted(CERTIFICATION_LEVELS)}")
    value = value.strip()
    if not value:
        raise RightsError("a rectification needs a value")
    if attribute == "birth_date":
        try:
            value = date.fromisoformat(value).isoformat()
        except ValueError:
            raise RightsError("birth_date: give the date as YYYY-MM-DD") from None
    if not _citizen_exists(wh, citizen_id):
        raise RightsError(f"no citizen {citizen_id}")
    rid = "R" + secrets.token_hex(6).upper()
    row = {"rectification_id": rid, "citizen_id": citizen_id, "attribute": attribute, "value": value,
           "certification_level": proof_level, "proof": proof, "request_id": request_id, "decided_by": decided_by,
           "decided_at": now, "revoked_at": None}
    with wh.transaction():
        wh.write(RECTIFICATION, pa.Table.from_pylist([row], schema=arrow_schema(RECTIFICATION)))
        refresh_citizen(wh, citizen_id, now=now)
    _log(wh, citizen_id, who=decided_by, operation="update", fields=(f"citizen.{attribute}",))
    log.info("rectification %s recorded (attribute %s, proof level %d)", rid, attribute, proof_level)
    return rid


def refresh_citizen(wh: Warehouse, citizen_id: str, *, now: datetime) -> None:
    """Recompute one citizen's golden row, provenance and discrepancies from their linked records and
    the corrections in force (survivorship is a pure function: run on this citizen alone)."""
    from matching.survivorship import survive
    from warehouse.golden import rectifications

    cols = ", ".join(f'r."{c}"' for c in PERSON_RECORD.column_names)
    records = wh.arrow(f"SELECT {cols} FROM {qualified(PERSON_RECORD)} r JOIN {qualified(CITIZEN_LINK)} l "
                       "ON l.record_key = r.record_key WHERE l.citizen_id = :c ORDER BY r.record_key",
                       {"c": citizen_id})
    if records.num_rows == 0:
        return
    records = conform(records, PERSON_RECORD)
    links = wh.arrow(f"SELECT record_key, citizen_id FROM {qualified(CITIZEN_LINK)} WHERE citizen_id = :c",
                     {"c": citizen_id})
    rect = rectifications(wh)
    if rect is not None:
        rect = rect.filter(pc.equal(rect.column("citizen_id"), citizen_id))
    golden = survive(records, links, now=now, rectifications=rect)
    with wh.transaction():
        for table, data in ((CITIZEN, golden.citizens), (CITIZEN_ATTRIBUTE, golden.attributes),
                            (DISCREPANCY, golden.discrepancies)):
            wh.write(table, conform(data, table), delete_where=("citizen_id = :c", {"c": citizen_id}))


def object_to(wh: Warehouse, citizen_id: str, processing_id: str, *, decided_by: str,
              request_id: str | None = None, now: datetime | None = None) -> None:
    """Record an objection: the person is hidden from the reads of that processing."""
    from schemas.register import load_register

    register = load_register()
    try:
        register.processing(processing_id)
    except KeyError as e:
        raise RightsError(str(e.args[0])) from None
    if not _citizen_exists(wh, citizen_id):
        raise RightsError(f"no citizen {citizen_id}")
    row = {"citizen_id": citizen_id, "processing_id": processing_id, "request_id": request_id,
           "decided_by": decided_by, "decided_at": now or datetime.now(UTC), "revoked_at": None}
    wh.write(OBJECTION, pa.Table.from_pylist([row], schema=arrow_schema(OBJECTION)),
             delete_where=("citizen_id = :c AND processing_id = :p", {"c": citizen_id, "p": processing_id}))
    _log(wh, citizen_id, who=decided_by, operation="update", fields=(f"objection.{processing_id}",))
    log.info("objection recorded to processing %s", processing_id)


def _processing_ids(purpose: str) -> set[str]:
    """The register's processings a read's purpose names (by purpose text or by id)."""
    from schemas.register import load_register

    try:
        register = load_register()
    except ValueError:
        return {purpose}
    ids = {p.id for p in register.processings if p.purpose == purpose or p.id == purpose}
    return ids or {purpose}


def objected(wh: Warehouse, citizen_ids: list[str], purpose: str) -> set[str]:
    """The citizens among ``citizen_ids`` with an objection in force to the processing of ``purpose``."""
    if not citizen_ids or not wh.table_exists(OBJECTION.schema, OBJECTION.name):
        return set()
    from warehouse.engine import bind_list

    ids_sql, params = bind_list("c", citizen_ids)
    proc_sql, pparams = bind_list("p", sorted(_processing_ids(purpose)))
    rows = wh.rows(f"SELECT citizen_id FROM {qualified(OBJECTION)} WHERE revoked_at IS NULL "
                   f"AND citizen_id IN ({ids_sql}) AND processing_id IN ({proc_sql})", {**params, **pparams})
    return {r[0] for r in rows}


def objections(wh: Warehouse, citizen_id: str) -> list[dict[str, Any]]:
    """The citizen's objections in force (processing ids and dates)."""
    if not wh.table_exists(OBJECTION.schema, OBJECTION.name):
        return []
    return wh.dicts(f"SELECT processing_id, decided_at FROM {qualified(OBJECTION)} WHERE citizen_id = :c "
                    "AND revoked_at IS NULL ORDER BY processing_id", {"c": citizen_id})
