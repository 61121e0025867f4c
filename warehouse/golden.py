"""The golden layer's storage: what the matching step computed, published atomically.

The matching engine computes links, citizens (with their provenance and discrepancy worklists)
and the run summary; this module stores them (``golden.citizen_link``, ``golden.citizen``,
``golden.citizen_attribute``, ``golden.discrepancy``, ``golden.household`` and
``golden.household_member`` replaced as a whole, ``golden.resolution_run`` appended) and hands
back what the next resolution needs (previous links, core person records).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from matching.survivorship import Survivorship
from schemas.contract import (
    CITIZEN,
    CITIZEN_ATTRIBUTE,
    CITIZEN_LINK,
    DISCREPANCY,
    HOUSEHOLD,
    HOUSEHOLD_MEMBER,
    HOUSEHOLD_MEMBERSHIP,
    PERSON_RECORD,
    RESOLUTION_RUN,
    arrow_schema,
)
from warehouse.engine import Warehouse, conform, qualified

log = logging.getLogger(__name__)


def publish_resolution(
    wh: Warehouse, run_id: str, *, links: pa.Table, citizens: pa.Table | Survivorship,
    run_row: dict[str, Any], memberships: pa.Table | None = None,
) -> None:
    """Replace the golden tables and record the run, in one transaction.

    ``links`` carries the columns of ``CITIZEN_LINK`` (a missing ``run_id`` is filled with
    ``run_id``); ``citizens`` is what :func:`build_golden` returns (citizens with provenance and
    discrepancies) or a bare ``CITIZEN`` table (then provenance and worklists are emptied);
    ``run_row`` the columns of ``RESOLUTION_RUN`` (``run_id`` is forced to ``run_id``,
    ``finished_at`` defaults to now). Foyers are rebuilt from ``memberships`` (default: all of
    ``core.household_membership``) resolved through ``links``; the published foyers' ids carry
    over. Every link must point at a
    citizen given, or nothing is written. Publishing the same run twice leaves one run row.
    Readers never see a half-published state: both engines run the block as one transaction.
    """
    from matching.households import build_households

    keys = None
    if isinstance(citizens, Survivorship):
        keys = citizens.keys
        attributes, discrepancies, citizens = citizens.attributes, citizens.discrepancies, citizens.citizens
    else:
        attributes = arrow_schema(CITIZEN_ATTRIBUTE).empty_table()
        discrepancies = arrow_schema(DISCREPANCY).empty_table()
    if "run_id" not in links.column_names:
        links = links.append_column("run_id", pa.array([run_id] * links.num_rows, pa.string()))
    links = conform(links, CITIZEN_LINK)
    citizens = conform(citizens, CITIZEN)
    orphans = pc.sum(pc.invert(pc.is_in(links.column("citizen_id"), value_set=citizens.column("citizen_id"))))
    if orphans.as_py():
        raise ValueError(f"run {run_id}: {orphans.as_py()} link(s) point at no citizen given; nothing published")
    row = {"finished_at": datetime.now(UTC), **run_row, "run_id": run_id}
    run = pa.Table.from_pylist([{c: row.get(c) for c in RESOLUTION_RUN.column_names}],
                               schema=arrow_schema(RESOLUTION_RUN))
    if memberships is None:
        memberships = core_memberships(wh)
    previous = (wh.arrow(f"SELECT household_id, citizen_id FROM {qualified(HOUSEHOLD_MEMBER)}")
                if wh.table_exists(HOUSEHOLD_MEMBER.schema, HOUSEHOLD_MEMBER.name) else None)
    households, members = build_households(memberships, links, citizens, now=row["finished_at"], keys=keys,
                                           previous=previous)
    with wh.transaction():
        wh.write(CITIZEN_LINK, links, replace=True)
        wh.write(CITIZEN, citizens, replace=True)
        wh.write(CITIZEN_ATTRIBUTE, conform(attributes, CITIZEN_ATTRIBUTE), replace=True)
        wh.write(DISCREPANCY, conform(discrepancies, DISCREPANCY), replace=True)
        wh.write(HOUSEHOLD, households, replace=True)
        wh.write(HOUSEHOLD_MEMBER, members, replace=True)
        wh.write(RESOLUTION_RUN, run, delete_where=("run_id = :run", {"run": run_id}))
    log.info("published resolution run %s: %d links, %d citizens, %d foyers, %d discrepancies", run_id,
             links.num_rows, citizens.num_rows, households.num_rows, discrepancies.num_rows)


def previous_links(wh: Warehouse) -> pa.Table | None:
    """The published ``(record_key, citizen_id)`` pairs, for carrying ids over; ``None`` before any."""
    if not wh.table_exists(CITIZEN_LINK.schema, CITIZEN_LINK.name):
        return None
    data = wh.arrow(f"SELECT record_key, citizen_id FROM {qualified(CITIZEN_LINK)} ORDER BY record_key")
    if data.num_rows == 0:
        return None
    schema = pa.schema([pa.field("record_key", pa.string()), pa.field("citizen_id", pa.string())])
    return data.cast(schema)


def build_golden(records: pa.Table, links: pa.Table, *, now: datetime,
                 standardised: pa.Table | None = None, rectifications: pa.Table | None = None) -> Survivorship:
    """The golden citizens of resolved records by survivorship, with provenance and worklists.

    ``.citizens`` (``CITIZEN`` columns), ``.attributes`` (``CITIZEN_ATTRIBUTE``),
    ``.discrepancies`` (``DISCREPANCY``); ``.num_rows`` counts the citizens. ``standardised``:
    the records as the resolution standardised them, when it kept them (saves standardising twice).
    ``rectifications``: the corrections in force (:func:`rectifications`), candidates of their own.
    """
    from matching.survivorship import survive

    return survive(records, links, now=now, standardised=standardised, rectifications=rectifications)


def rectifications(wh: Warehouse) -> pa.Table | None:
    """The corrections in force (``gdpr.rectification``, GDPR Art. 16) for survivorship; None when none."""
    from schemas.contract import RECTIFICATION

    if not wh.table_exists(RECTIFICATION.schema, RECTIFICATION.name):
        return None
    data = wh.arrow("SELECT rectification_id, citizen_id, attribute, value, certification_level, decided_at "
                    f"FROM {qualified(RECTIFICATION)} WHERE revoked_at IS NULL ORDER BY decided_at, rectification_id")
    return data if data.num_rows else None


def core_memberships(wh: Warehouse) -> pa.Table:
    """All of ``core.household_membership`` in contract types (empty before any load)."""
    if not wh.table_exists(HOUSEHOLD_MEMBERSHIP.schema, HOUSEHOLD_MEMBERSHIP.name):
        return arrow_schema(HOUSEHOLD_MEMBERSHIP).empty_table()
    cols = ", ".join(f'"{c}"' for c in HOUSEHOLD_MEMBERSHIP.column_names)
    return conform(wh.arrow(f"SELECT {cols} FROM {qualified(HOUSEHOLD_MEMBERSHIP)}"), HOUSEHOLD_MEMBERSHIP)


def core_person_records(wh: Warehouse) -> pa.Table:
    """All of ``core.person_record`` (deleted ones included, ``deleted_at`` says), in contract types."""
    if not wh.table_exists(PERSON_RECORD.schema, PERSON_RECORD.name):
        return arrow_schema(PERSON_RECORD).empty_table()
    cols = ", ".join(f'"{c}"' for c in PERSON_RECORD.column_names)
    return conform(wh.arrow(f"SELECT {cols} FROM {qualified(PERSON_RECORD)} ORDER BY record_key"), PERSON_RECORD)
