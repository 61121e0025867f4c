"""What golden citizens are built from, read in the contract's types: the core person records and
household memberships, and the corrections in force.

A whole release is published by ``warehouse.resolution.publish_release``; one citizen's golden
row is rebuilt by ``warehouse.gdpr_rights.refresh_citizen``.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.contract import HOUSEHOLD_MEMBERSHIP, PERSON_RECORD, arrow_schema
from warehouse.engine import Warehouse, conform, qualified


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
