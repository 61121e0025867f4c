"""The completeness guard: personal data the register of processing does not map stops the job.

Fides' pattern: a collection no processing reaches is an error, not a silent gap. How "holding
personal data" is known, table by table:

- **contract tables** (``core``, ``golden``, ``ops``: ``schemas/contract.py``): the columns the
  contract marks ``personal`` must each be mapped by some processing; a column the warehouse has
  but the contract does not know must be classified by the register (mapped, or ``not_personal``).
- **every other table** — ``raw_<system>`` tables loaded by the connectors (their columns come
  from the source), dlt's copies of them in ``raw_<system>_staging``, marts, anything added by
  hand: every column is presumed personal until the register classifies it, either as personal
  data of a processing or as ``not_personal`` (``"*"``: the table's other columns are not personal).
  dlt's own bookkeeping (``_dlt_*`` tables and columns) and the connectors' deletion mark
  (``_deleted_at``) carry no personal data and are skipped.
- the views of the ``staging`` schema hold nothing: they read ``raw_*`` tables, checked above, and
  feed the ``core`` tables, checked above.

Messages name schemas, tables and columns, never values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from schemas.contract import ALL_TABLES, RAW_DELETED_AT
from schemas.register import ALL, CONTRACT_TABLES, Register, load_register
from warehouse.engine import Warehouse

log = logging.getLogger(__name__)

SYSTEM_SCHEMAS = ("information_schema", "pg_catalog", "pg_toast")
VIEW_ONLY_SCHEMAS = ("staging",)


@dataclass(frozen=True)
class Gap:
    table: str  # schema.table
    columns: tuple[str, ...]
    why: str

    def __str__(self) -> str:
        return f"{self.table} ({', '.join(self.columns)}): {self.why}"


class UnmappedPersonalData(RuntimeError):
    """Tables or columns holding personal data that no processing of the register maps."""

    def __init__(self, gaps: list[Gap], register: Register):
        self.gaps = gaps
        lines = "; ".join(str(g) for g in gaps)
        super().__init__(
            f"personal data not mapped by the register of processing ({register.path}): {lines}. "
            "Add each column to a processing's data categories, or list it under that processing's "
            "not_personal (see docs/register.md)")


def contract_gaps(register: Register) -> list[Gap]:
    """Personal columns of the contract's tables that no processing maps (no warehouse needed)."""
    mapped = register.personal_columns()
    gaps = []
    for t in ALL_TABLES:
        name = f"{t.schema}.{t.name}"
        missing = tuple(c.name for c in t.columns if c.personal and c.name not in mapped.get(name, {}))
        if missing:
            gaps.append(Gap(name, missing, "personal in the contract, mapped by no processing"))
    return gaps


def warehouse_columns(wh: Warehouse) -> dict[str, tuple[str, list[str]]]:
    """"schema.table" -> (table type, columns) of every table and view of the warehouse's database."""
    rows = wh.rows(
        "SELECT c.table_schema, c.table_name, t.table_type, c.column_name "
        "FROM information_schema.columns c JOIN information_schema.tables t "
        "ON t.table_catalog = c.table_catalog AND t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_catalog = current_database() "
        "ORDER BY c.table_schema, c.table_name, c.ordinal_position")
    out: dict[str, tuple[str, list[str]]] = {}
    for schema, table, kind, column in rows:
        if schema in SYSTEM_SCHEMAS or schema.startswith("pg_"):
            continue
        out.setdefault(f"{schema}.{table}", (kind, []))[1].append(column)
    return out


def _register_name(table: str) -> str:
    """dlt's merge copy ``raw_<system>_staging.t`` is classified as ``raw_<system>.t``."""
    schema, name = table.split(".", 1)
    if schema.startswith("raw_") and schema.endswith("_staging"):
        return f"{schema.removesuffix('_staging')}.{name}"
    return table


def warehouse_gaps(wh: Warehouse, register: Register) -> list[Gap]:
    """Tables and columns of the warehouse holding personal data the register does not map."""
    mapped = register.personal_columns()
    declared_not = register.not_personal()
    gaps = []
    for table, (kind, columns) in warehouse_columns(wh).items():
        schema, name = table.split(".", 1)
        if name.startswith("_dlt_") or (schema in VIEW_ONLY_SCHEMAS and kind == "VIEW"):
            continue
        key = _register_name(table)
        personal = set(mapped.get(key, {}))
        not_personal = declared_not.get(key, set())
        columns = [c for c in columns if not c.startswith("_dlt_") and c != RAW_DELETED_AT]
        contract = CONTRACT_TABLES.get(key)
        if contract is not None:
            known = set(contract.column_names)
            missing = tuple(c for c in columns if c in known and contract.column(c).personal and c not in personal)
            if missing:
                gaps.append(Gap(table, missing, "personal in the contract, mapped by no processing"))
            extra = tuple(c for c in columns if c not in known and c not in personal and c not in not_personal)
            if extra:
                gaps.append(Gap(table, extra, "column not in the contract, not classified by the register"))
            continue
        if ALL in not_personal:
            continue
        unclassified = tuple(c for c in columns if c not in personal and c not in not_personal)
        if unclassified:
            why = ("table not in the register" if not personal and not not_personal
                   else "column(s) not classified by the register")
            gaps.append(Gap(table, unclassified, why))
    return gaps


def check(wh: Warehouse | None = None, register: Register | None = None) -> Register:
    """Raise :class:`UnmappedPersonalData` naming every unmapped personal table / column (the
    contract's, and the warehouse's when one is given); return the register checked."""
    register = register or load_register()
    gaps = contract_gaps(register)
    if wh is not None:
        seen = {str(g) for g in gaps}
        gaps += [g for g in warehouse_gaps(wh, register) if str(g) not in seen]
    if gaps:
        raise UnmappedPersonalData(gaps, register)
    log.info("register of processing %s maps every personal table and column", register.path)
    return register
