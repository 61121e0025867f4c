"""The BI marts (schema ``marts``): pseudonymised row-level marts and small-cell-safe aggregates.

Built at the end of a run from the published golden layer and the core interactions, replaced as
a whole in one transaction (readers see the previous marts or the new ones). The tables are
defined in ``schemas/marts.py``; this module fills them with one SQL text per step, the same on
DuckDB and PostgreSQL.

**Pseudonyms.** A citizen appears in a mart as ``citizen_pk``: HMAC-SHA256 of the hub's citizen
id under that mart's own key (the first 128 bits, hex). The keys never enter the warehouse: they
are computed here, in the process, and handed to the SQL through a session-only table (a
registered Arrow view on DuckDB, a ``TEMP`` table on PostgreSQL) dropped before the transaction
ends. One key per mart (:func:`load_keys`), so the interaction mart and the invoice mart cannot be
joined on their pseudonyms, nor either back to ``golden``; the same key gives the same pseudonyms
at every run, so a BI tool can follow a pseudonymised population over time. Rotating a key
(deleting its file) changes every pseudonym of that mart.

**Small cells.** Each aggregate is a cube (every total included, ``'*'`` on a total row). A cell
counting fewer than :data:`schemas.marts.MIN_CELL` people is suppressed (primary suppression: its
figures are NULL and ``suppressed`` is true); then, wherever a published total has exactly one
suppressed cell under it, the smallest other cell under that total is suppressed too
(complementary suppression), repeated until no total reveals a cell by subtraction.
"""

from __future__ import annotations

import hmac
import io
import logging
import os
import secrets
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from schemas.contract import INTERACTION, Table, arrow_schema
from schemas.marts import (
    AGG_CITIZENS,
    AGG_DEADLINES,
    AGG_DESILO,
    AGG_PROCESSING_DELAY,
    AGG_REQUESTS,
    AGG_SILO_OVERLAP,
    AGG_UNPAID,
    ALL,
    DIM_CITIZEN,
    FCT_ENROLMENT,
    FCT_INTERACTION,
    FCT_INVOICE,
    FCT_SUBSIDY,
    KEYED_MARTS,
    MART_BUILD,
    MART_TABLES,
    MARTS,
    MIN_CELL,
    OTHER_COMMUNE,
    UNKNOWN,
)
from warehouse.engine import Warehouse, bind_list, conform, qualified
from warehouse.timeline import (
    CLOSED_STATUSES,
    DEFAULT_PROCEDURE,
    DUE_SOON_DAYS,
    PROCEDURES,
    REQUEST_KINDS,
    UNPAID_STATUSES,
)

log = logging.getLogger(__name__)

KEY_ENV_PREFIX = "HUB_MART_KEY_"
PSEUDONYM_HEX = 32  # 128 bits of the HMAC: no collision at any population size a commune has
# what counts as a request in the états (a payment, an invoice are not asked for)
ASKED_KINDS = ("demande", "ticket", "inscription", "subvention", "rendez-vous")
# kinds whose closing is a decision or an answer (an enrolment's closing is its end, not a delay)
DELAY_KINDS = ("demande", "ticket", "subvention")
AGE_BANDS = ((0, 5, "0-5"), (6, 10, "6-10"), (11, 17, "11-17"), (18, 29, "18-29"), (30, 44, "30-44"),
             (45, 59, "45-59"), (60, 74, "60-74"), (75, 200, "75+"))


class MartKeyError(RuntimeError):
    """A mart key is missing, unreadable or shared with another mart."""


# ------------------------------------------------------------------------------------------ keys
def key_file(keys_dir: Path, mart: str) -> Path:
    return keys_dir / f"mart_{mart}.key"


def load_keys(keys_dir: Path, *, env_prefix: str = KEY_ENV_PREFIX, create: bool = True) -> dict[str, bytes]:
    """One HMAC key per keyed mart: ``$<env_prefix><MART>`` (the key itself) when set, else the file
    ``<keys_dir>/mart_<mart>.key`` (created with a fresh random key, mode 0600, when ``create``).

    Raises :class:`MartKeyError` when a key is missing or when two marts share a key (they could
    then be joined on their pseudonyms)."""
    keys: dict[str, bytes] = {}
    for mart in KEYED_MARTS:
        env = f"{env_prefix}{mart.upper()}"
        if os.environ.get(env):
            keys[mart] = os.environ[env].encode("utf-8")
            continue
        path = key_file(keys_dir, mart)
        if not path.exists():
            if not create:
                raise MartKeyError(f"no key for the '{mart}' mart: set {env} or create {path}")
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(32))
            log.info("key of the '%s' mart created in %s", mart, path.parent)
        keys[mart] = path.read_text(encoding="ascii").strip().encode("ascii")
        if not keys[mart]:
            raise MartKeyError(f"the key file of the '{mart}' mart is empty: {path}")
    _check_keys(keys)
    return keys


def keys_from_settings(section: Mapping[str, Any], var_dir: Path) -> dict[str, bytes]:
    """The marts' keys as the settings' ``[marts]`` section says: ``keys_dir`` (default
    ``<var_dir>/secrets``) and ``key_env_prefix`` (default ``HUB_MART_KEY_``)."""
    keys_dir = Path(section.get("keys_dir") or Path(var_dir) / "secrets")
    return load_keys(keys_dir, env_prefix=str(section.get("key_env_prefix") or KEY_ENV_PREFIX))


def _check_keys(keys: Mapping[str, bytes]) -> None:
    missing = [m for m in KEYED_MARTS if not keys.get(m)]
    if missing:
        raise MartKeyError(f"no key for the mart(s) {', '.join(missing)}")
    seen: dict[bytes, str] = {}
    for mart in KEYED_MARTS:
        if keys[mart] in seen:
            raise MartKeyError(f"the '{mart}' and '{seen[keys[mart]]}' marts share a key: each mart needs its own, "
                               "or the two could be joined on their pseudonyms")
        seen[keys[mart]] = mart


def pseudonyms(ids: Sequence[str], key: bytes) -> list[str]:
    """The pseudonyms of citizen ids under one mart's key (HMAC-SHA256, first 128 bits, hex)."""
    return [hmac.digest(key, i.encode("utf-8"), "sha256").hex()[:PSEUDONYM_HEX] for i in ids]


# ------------------------------------------------------------------------------------------ session tables
@contextmanager
def _session_table(wh: Warehouse, name: str, data: pa.Table) -> Iterator[str]:
    """``data`` as a table only this connection sees, for the block; nothing is stored in the warehouse."""
    if wh.kind == "duckdb":
        wh.connection.register(name, data)
        try:
            yield name
        finally:
            wh.connection.unregister(name)
        return
    cols = ", ".join(f'"{f.name}" {_PG_TYPES[str(f.type)]}' for f in data.schema)
    wh.execute(f"CREATE TEMP TABLE {name} ({cols})")
    try:
        batches = [b for b in data.to_batches() if b.num_rows]
        if batches:
            buf = io.BytesIO()
            pacsv.write_csv(pa.Table.from_batches(batches, schema=data.schema), buf,
                            pacsv.WriteOptions(include_header=False, quoting_style="needed"))
            names = ", ".join(f'"{n}"' for n in data.column_names)
            with wh.connection.cursor() as cur, cur.copy(f"COPY {name} ({names}) FROM STDIN WITH (FORMAT csv)") as cp:
                cp.write(buf.getvalue())
        yield name
    finally:
        wh.execute(f"DROP TABLE IF EXISTS {name}")


_PG_TYPES = {"string": "TEXT", "large_string": "TEXT", "int64": "BIGINT", "int32": "INTEGER"}


# ------------------------------------------------------------------------------------------ SQL pieces
def _month(col: str) -> str:
    """``YYYY-MM`` of a timestamptz column (the session is in UTC on both engines)."""
    return (f"CASE WHEN {col} IS NULL THEN NULL ELSE CAST(CAST(EXTRACT(YEAR FROM {col}) AS INTEGER) AS VARCHAR) "
            f"|| '-' || LPAD(CAST(CAST(EXTRACT(MONTH FROM {col}) AS INTEGER) AS VARCHAR), 2, '0') END")


def _days(start: str, end: str) -> str:
    return f"CAST(CAST({end} AS DATE) - CAST({start} AS DATE) AS INTEGER)"


def _ymd(col: str) -> str:
    return (f"(CAST(EXTRACT(YEAR FROM {col}) AS INTEGER) * 10000 + CAST(EXTRACT(MONTH FROM {col}) AS INTEGER) * 100 "
            f"+ CAST(EXTRACT(DAY FROM {col}) AS INTEGER))")


def _age_band(birth: str) -> str:
    age = f"CAST(FLOOR((:today_ymd - {_ymd(birth)}) / 10000.0) AS INTEGER)"
    whens = " ".join(f"WHEN {age} BETWEEN {lo} AND {hi} THEN '{label}'" for lo, hi, label in AGE_BANDS)
    return f"CASE WHEN {birth} IS NULL THEN '{UNKNOWN}' {whens} ELSE '{UNKNOWN}' END"


def _procedures() -> tuple[str, str, dict[str, Any]]:
    """SQL CASE expressions for a pending request's deadline and the meaning of silence, from
    :data:`warehouse.timeline.PROCEDURES` (first match wins), with their bound values."""
    months = DEFAULT_PROCEDURE.get("months")
    params: dict[str, Any] = {"proc_default_interval": f"{int(months)} months" if months is not None else None,
                              "proc_default_silence": DEFAULT_PROCEDURE.get("silence")}
    deadline, silence = [], []
    for n, p in enumerate(PROCEDURES):
        conds = []
        for k, v in p.items():
            if k in ("months", "silence", "basis"):
                continue
            if k not in INTERACTION.column_names:
                raise ValueError(f"timeline procedure #{n + 1} matches on {k!r}, not an interaction column")
            conds.append(f"LOWER(COALESCE(i.{k}, '')) = :proc{n}_{k}")
            params[f"proc{n}_{k}"] = str(v).lower()
        cond = " AND ".join(conds) or "TRUE"
        months = p.get("months")
        params[f"proc{n}_interval"] = f"{int(months)} months" if months is not None else None
        params[f"proc{n}_silence"] = p.get("silence")
        deadline.append(f"WHEN {cond} THEN i.opened_at + CAST(:proc{n}_interval AS INTERVAL)")
        silence.append(f"WHEN {cond} THEN CAST(:proc{n}_silence AS VARCHAR)")
    deadline_sql = (f"COALESCE(i.due_at, CASE {' '.join(deadline)} "
                    "ELSE i.opened_at + CAST(:proc_default_interval AS INTERVAL) END)")
    silence_sql = f"CASE {' '.join(silence)} ELSE CAST(:proc_default_silence AS VARCHAR) END"
    return deadline_sql, silence_sql, params


# ------------------------------------------------------------------------------------------ build
def build_marts(wh: Warehouse, *, keys: Mapping[str, bytes], now: datetime | None = None,
                min_cell: int = MIN_CELL, bi_copy: bool = True) -> dict[str, int]:
    """Rebuild every table of the ``marts`` schema from the published golden layer and core
    interactions, in one transaction; returns rows per table (``"marts.dim_citizen": 2156``, ...).

    ``keys``: one HMAC key per keyed mart (:func:`load_keys`), never stored in the warehouse.
    ``now``: the date ages, pending requests and deadlines are computed at (default: now).
    ``bi_copy``: on DuckDB, also write the marts-only file BI tools open (:func:`bi_file`)."""
    _check_keys(keys)
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("build_marts needs a timezone-aware `now`")
    if not wh.table_exists("golden", "citizen"):
        log.info("no golden layer published yet: no marts built")
        return {}
    ids = wh.arrow("SELECT citizen_id FROM golden.citizen ORDER BY citizen_id").column("citizen_id").to_pylist()
    run_id = wh.scalar("SELECT run_id FROM golden.resolution_run ORDER BY finished_at DESC LIMIT 1") \
        if wh.table_exists("golden", "resolution_run") else None
    counts: dict[str, int] = {}
    with wh.transaction():
        for t in MART_TABLES:
            _ensure(wh, t)
        with _citizen_attributes(wh, now, min_cell) as attrs:
            for mart, tables in (("citizen", (DIM_CITIZEN,)), ("interaction", (FCT_INTERACTION,)),
                                 ("invoice", (FCT_INVOICE,)), ("enrolment", (FCT_ENROLMENT,)),
                                 ("subsidy", (FCT_SUBSIDY,))):
                pk = pa.table({"citizen_id": pa.array(ids, pa.string()),
                               "citizen_pk": pa.array(pseudonyms(ids, keys[mart]), pa.string())})
                with _session_table(wh, f"mart_pk_{mart}", pk) as pk_table:
                    for t in tables:
                        counts[f"marts.{t.name}"] = _FILL[t.name](wh, pk_table, attrs, now)
        counts.update(_aggregates(wh, now, min_cell))
        build = pa.table({"table_name": list(counts), "row_count": list(counts.values()),
                          "run_id": [run_id] * len(counts), "built_at": [now] * len(counts)})
        wh.write(MART_BUILD, build, replace=True)
    if wh.kind == "duckdb" and bi_copy:
        bi_file(wh)
    log.info("marts built: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    return counts


# ------------------------------------------------------------------------------------------ erasure
def forget(wh: Warehouse, citizen_id: str, *, keys: Mapping[str, bytes], delete: Any) -> None:
    """An erased citizen's rows leave the row-level marts (found by their pseudonym under each
    mart's key): ``delete(schema, table, where, params)`` removes them, within the erasure's
    transaction (``warehouse.gdpr_erase``). Then :func:`recount` the aggregates."""
    _check_keys(keys)
    for mart in MARTS:
        if not mart.keyed:
            continue
        (pk,) = pseudonyms([citizen_id], keys[mart.name])
        for t in mart.tables:
            delete(t.schema, t.name, "citizen_pk = :pk", {"pk": pk})


def recount(wh: Warehouse, *, min_cell: int = MIN_CELL, now: datetime | None = None) -> dict[str, int]:
    """The aggregate marts recounted from the row-level ones (after :func:`forget`), and on DuckDB
    the BI file written again, so an erased citizen is counted nowhere; returns rows per table."""
    if not wh.table_exists(DIM_CITIZEN.schema, DIM_CITIZEN.name):
        return {}
    with wh.transaction():
        counts = _aggregates(wh, now or datetime.now(UTC), min_cell)
    if wh.kind == "duckdb":
        bi_file(wh)
    return counts


BI_STORAGE_VERSION = "v1.5.0"  # the BI copy opens in DuckDB >= 1.5 (the CLI, DBeaver's driver), not only 2.0


def bi_file_path(wh: Warehouse) -> Path:
    """The BI copy of a DuckDB warehouse: ``<warehouse>_marts.duckdb`` beside it."""
    if wh.path is None:
        raise ValueError("only a DuckDB warehouse has a BI copy (PostgreSQL: grant the marts schema)")
    return wh.path.with_name(f"{wh.path.stem}_marts.duckdb")


def bi_file(wh: Warehouse) -> Path:
    """Copy the marts schema, alone, into the DuckDB warehouse's BI file (:func:`bi_file_path`).

    A DuckDB file has no access control: whoever opens the warehouse file reads ``golden`` too. BI
    tools get this file instead, which holds the marts only, written in a storage format older
    readers open; it is written aside and renamed over the previous one, so a reader never sees
    half of it."""
    target = bi_file_path(wh)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    literal = str(partial).replace("'", "''")  # a path from the settings, as a SQL string literal
    wh.execute(f"ATTACH '{literal}' AS mart_bi (STORAGE_VERSION '{BI_STORAGE_VERSION}')")
    try:
        wh.execute("CREATE SCHEMA mart_bi.marts")
        for t in MART_TABLES:
            wh.execute(f'CREATE TABLE mart_bi.marts."{t.name}" AS SELECT * FROM {qualified(t)}')
    finally:
        wh.execute("DETACH mart_bi")
    partial.replace(target)
    return target


def _ensure(wh: Warehouse, table: Table) -> None:
    """Create the table; a marts table of an earlier shape is dropped first (marts are derived data)."""
    if wh.table_exists(table.schema, table.name) and wh.columns_of(table.schema, table.name) != table.column_names:
        wh.execute(f"DROP TABLE {qualified(table)}")
    wh.ensure_table(table)


def _replace(wh: Warehouse, table: Table, select_sql: str, params: Mapping[str, Any]) -> int:
    cols = ", ".join(f'"{c}"' for c in table.column_names)
    wh.execute(f"DELETE FROM {qualified(table)}")
    wh.execute(f"INSERT INTO {qualified(table)} ({cols}) {select_sql}", params)
    return int(wh.scalar(f"SELECT count(*) FROM {qualified(table)}"))


@contextmanager
def _citizen_attributes(wh: Warehouse, now: datetime, min_cell: int) -> Iterator[str]:
    """A session table: citizen_id -> age band, household type, commune (generalised), at ``now``."""
    name = "mart_citizen_attrs"
    has = {t: wh.table_exists(*t.split(".")) for t in ("golden.household", "golden.household_member",
                                                       "golden.citizen_attribute", "core.person_record")}
    household = ("SELECT m.citizen_id, h.members, h.minors, ROW_NUMBER() OVER (PARTITION BY m.citizen_id "
                 "ORDER BY h.members DESC, h.household_id) AS rn FROM golden.household_member m "
                 "JOIN golden.household h ON h.household_id = m.household_id WHERE m.valid_to IS NULL"
                 if has["golden.household"] and has["golden.household_member"] else
                 "SELECT CAST(NULL AS VARCHAR) AS citizen_id, 0 AS members, 0 AS minors, 1 AS rn WHERE 1 = 0")
    commune = ("SELECT a.citizen_id, p.city_code FROM golden.citizen_attribute a "
               "JOIN core.person_record p ON p.record_key = a.record_key WHERE a.attribute = 'city'"
               if has["golden.citizen_attribute"] and has["core.person_record"] else
               "SELECT CAST(NULL AS VARCHAR) AS citizen_id, CAST(NULL AS VARCHAR) AS city_code WHERE 1 = 0")
    wh.execute(
        f"CREATE TEMP TABLE {name} AS SELECT c.citizen_id, {_age_band('c.birth_date')} AS age_band, "
        f"CASE WHEN h.citizen_id IS NULL THEN '{UNKNOWN}' WHEN h.members <= 1 THEN 'personne seule' "
        "WHEN h.minors = 0 THEN 'couple ou cohabitation' WHEN h.members - h.minors <= 1 THEN 'famille monoparentale' "
        "ELSE 'famille' END AS household_type, "
        f"COALESCE(k.city_code, '{UNKNOWN}') AS commune_code "
        f"FROM golden.citizen c LEFT JOIN ({household}) h ON h.citizen_id = c.citizen_id AND h.rn = 1 "
        f"LEFT JOIN ({commune}) k ON k.citizen_id = c.citizen_id",
        {"today_ymd": now.year * 10000 + now.month * 100 + now.day})
    # a commune too few citizens live in would single them out: grouped as 'autre'
    wh.execute(f"UPDATE {name} SET commune_code = :other WHERE commune_code <> :unknown AND commune_code IN "
               f"(SELECT commune_code FROM {name} GROUP BY commune_code HAVING count(*) < :k)",
               {"other": OTHER_COMMUNE, "unknown": UNKNOWN, "k": min_cell})
    try:
        yield name
    finally:
        wh.execute(f"DROP TABLE IF EXISTS {name}")


def _fill_dim_citizen(wh: Warehouse, pk: str, attrs: str, now: datetime) -> int:
    services = ("SELECT l.citizen_id, STRING_AGG(DISTINCT i.service, ',' ORDER BY i.service) AS services, "
                "COUNT(DISTINCT i.service) AS n FROM core.interaction i "
                "JOIN golden.citizen_link l ON l.record_key = i.record_key WHERE i.service IS NOT NULL "
                "GROUP BY l.citizen_id") if wh.table_exists("core", "interaction") else \
        "SELECT CAST(NULL AS VARCHAR) AS citizen_id, '' AS services, 0 AS n WHERE 1 = 0"
    conflicts = ("SELECT citizen_id, COUNT(*) AS n FROM golden.citizen_attribute WHERE conflict GROUP BY citizen_id"
                 if wh.table_exists("golden", "citizen_attribute") else
                 "SELECT CAST(NULL AS VARCHAR) AS citizen_id, 0 AS n WHERE 1 = 0")
    open_ = ("SELECT citizen_id, COUNT(*) AS n FROM golden.discrepancy GROUP BY citizen_id"
             if wh.table_exists("golden", "discrepancy") else
             "SELECT CAST(NULL AS VARCHAR) AS citizen_id, 0 AS n WHERE 1 = 0")
    sql = (
        "SELECT p.citizen_pk, a.age_band, a.commune_code, a.household_type, c.source_systems, "
        "LENGTH(c.source_systems) - LENGTH(REPLACE(c.source_systems, ',', '')) + 1, c.record_count, "
        "COALESCE(s.services, ''), COALESCE(s.n, 0), COALESCE(f.n, 0), COALESCE(d.n, 0) "
        f"FROM golden.citizen c JOIN {pk} p ON p.citizen_id = c.citizen_id "
        f"JOIN {attrs} a ON a.citizen_id = c.citizen_id "
        f"LEFT JOIN ({services}) s ON s.citizen_id = c.citizen_id "
        f"LEFT JOIN ({conflicts}) f ON f.citizen_id = c.citizen_id "
        f"LEFT JOIN ({open_}) d ON d.citizen_id = c.citizen_id")
    return _replace(wh, DIM_CITIZEN, sql, {})


def _interactions(pk: str, attrs: str, where: str) -> str:
    """FROM clause: core interactions of published citizens, with this mart's pseudonym and attributes."""
    return (f"FROM core.interaction i JOIN golden.citizen_link l ON l.record_key = i.record_key "
            f"JOIN {pk} p ON p.citizen_id = l.citizen_id JOIN {attrs} a ON a.citizen_id = l.citizen_id WHERE {where}")


def _fill_fct_interaction(wh: Warehouse, pk: str, attrs: str, now: datetime) -> int:
    if not wh.table_exists("core", "interaction"):
        return 0
    deadline, silence, params = _procedures()
    kinds, kp = bind_list("rk", REQUEST_KINDS)
    closed, cp = bind_list("cs", CLOSED_STATUSES)
    pending = (f"(i.kind IN ({kinds}) AND (i.closed_at IS NULL OR i.closed_at > :now) "
               f"AND COALESCE(i.status, '') NOT IN ({closed}))")
    inner = (
        f"SELECT p.citizen_pk, a.age_band, a.household_type, i.kind, COALESCE(i.service, '{UNKNOWN}') AS service, "
        f"COALESCE(i.channel, '{UNKNOWN}') AS channel, i.status, {_month('i.opened_at')} AS opened_month, "
        f"{_month('i.closed_at')} AS closed_month, "
        f"CASE WHEN i.closed_at IS NULL OR i.closed_at > :now THEN NULL "
        f"ELSE {_days('i.opened_at', 'i.closed_at')} END AS delay_days, "
        f"{pending} AS pending, CASE WHEN {pending} THEN {silence} END AS silence, "
        f"CASE WHEN {pending} THEN {deadline} END AS deadline "
        + _interactions(pk, attrs, "TRUE"))
    sql = ("SELECT citizen_pk, age_band, household_type, kind, service, channel, status, opened_month, closed_month, "
           "delay_days, pending, silence, CASE WHEN NOT pending THEN NULL WHEN deadline IS NULL THEN 'sans_delai' "
           "WHEN deadline < :now THEN 'depasse' WHEN deadline <= :soon THEN 'proche' ELSE 'en_cours' END "
           f"FROM ({inner}) t")
    return _replace(wh, FCT_INTERACTION, sql,
                    {**params, **kp, **cp, "now": now, "soon": now + timedelta(days=DUE_SOON_DAYS)})


def _fill_fct_invoice(wh: Warehouse, pk: str, attrs: str, now: datetime) -> int:
    if not wh.table_exists("core", "interaction"):
        return 0
    unpaid, up = bind_list("up", UNPAID_STATUSES)
    sql = (f"SELECT p.citizen_pk, a.age_band, a.household_type, COALESCE(i.service, '{UNKNOWN}'), i.status, "
           f"{_month('i.opened_at')}, {_month('i.due_at')}, i.amount, i.currency, "
           f"COALESCE(i.status, '') IN ({unpaid}), COALESCE(i.status, '') IN ({unpaid}) AND i.due_at < :now "
           + _interactions(pk, attrs, "i.kind = 'facture'"))
    return _replace(wh, FCT_INVOICE, sql, {**up, "now": now})


def _fill_fct_enrolment(wh: Warehouse, pk: str, attrs: str, now: datetime) -> int:
    if not wh.table_exists("core", "interaction"):
        return 0
    year = "CAST(EXTRACT(YEAR FROM i.opened_at) AS INTEGER)"
    school_year = (f"CASE WHEN EXTRACT(MONTH FROM i.opened_at) >= 9 "
                   f"THEN CAST({year} AS VARCHAR) || '-' || CAST({year} + 1 AS VARCHAR) "
                   f"ELSE CAST({year} - 1 AS VARCHAR) || '-' || CAST({year} AS VARCHAR) END")
    sql = (f"SELECT p.citizen_pk, a.age_band, a.household_type, COALESCE(i.service, '{UNKNOWN}'), i.status, "
           f"{_month('i.opened_at')}, {school_year}, {_month('i.closed_at')} "
           + _interactions(pk, attrs, "i.kind = 'inscription'"))
    return _replace(wh, FCT_ENROLMENT, sql, {})


def _fill_fct_subsidy(wh: Warehouse, pk: str, attrs: str, now: datetime) -> int:
    if not wh.table_exists("core", "interaction"):
        return 0
    sql = (f"SELECT p.citizen_pk, a.age_band, COALESCE(i.service, '{UNKNOWN}'), i.status, {_month('i.opened_at')}, "
           f"{_month('i.closed_at')}, i.amount, i.currency, "
           f"CASE WHEN i.closed_at IS NULL OR i.closed_at > :now THEN NULL "
           f"ELSE {_days('i.opened_at', 'i.closed_at')} END "
           + _interactions(pk, attrs, "i.kind = 'subvention'"))
    return _replace(wh, FCT_SUBSIDY, sql, {"now": now})


_FILL = {"dim_citizen": _fill_dim_citizen, "fct_interaction": _fill_fct_interaction,
         "fct_invoice": _fill_fct_invoice, "fct_enrolment": _fill_fct_enrolment, "fct_subsidy": _fill_fct_subsidy}


# ------------------------------------------------------------------------------------------ aggregates
def _cube_dims(dims: Sequence[str]) -> str:
    return ", ".join(f"CASE WHEN GROUPING({d}) = 1 THEN '{ALL}' ELSE {d} END AS {d}" for d in dims)


def _aggregates(wh: Warehouse, now: datetime, min_cell: int) -> dict[str, int]:
    asked, ap = bind_list("ak", ASKED_KINDS)
    delay, dp = bind_list("dk", DELAY_KINDS)
    specs: list[tuple[Table, str, dict[str, Any], tuple[str, ...], tuple[str, ...], str]] = [
        (AGG_REQUESTS,
         f"SELECT {_cube_dims(('service', 'channel', 'month'))}, COUNT(*) AS requests, "
         "COUNT(DISTINCT citizen_pk) AS people FROM (SELECT service, channel, opened_month AS month, citizen_pk "
         f"FROM marts.fct_interaction WHERE kind IN ({asked})) t GROUP BY CUBE(service, channel, month)",
         ap, ("service", "channel", "month"), (), "requests"),
        (AGG_PROCESSING_DELAY,
         f"SELECT {_cube_dims(('service', 'month'))}, COUNT(*) AS closed_requests, "
         "COUNT(DISTINCT citizen_pk) AS people, "
         "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY delay_days) AS median_days, "
         "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY delay_days) AS p90_days "
         "FROM (SELECT service, closed_month AS month, citizen_pk, delay_days FROM marts.fct_interaction "
         f"WHERE kind IN ({delay}) AND delay_days IS NOT NULL) t GROUP BY CUBE(service, month)",
         dp, ("service", "month"), (), "closed_requests"),
        (AGG_DEADLINES,
         f"SELECT {_cube_dims(('service', 'silence', 'deadline_state'))}, COUNT(*) AS requests, "
         "COUNT(DISTINCT citizen_pk) AS people FROM (SELECT service, COALESCE(silence, 'sans objet') AS silence, "
         "deadline_state, citizen_pk FROM marts.fct_interaction WHERE pending) t "
         "GROUP BY CUBE(service, silence, deadline_state)",
         {}, ("service", "silence", "deadline_state"), (), "requests"),
        (AGG_UNPAID,
         f"SELECT {_cube_dims(('service', 'due_state'))}, currency, COUNT(*) AS invoices, "
         "COUNT(DISTINCT citizen_pk) AS people, SUM(amount) AS amount "
         "FROM (SELECT service, CASE WHEN overdue THEN 'echue' ELSE 'non_echue' END AS due_state, "
         f"COALESCE(currency, 'EUR') AS currency, citizen_pk, amount FROM marts.fct_invoice WHERE unpaid) t "
         "GROUP BY currency, CUBE(service, due_state)",
         {}, ("service", "due_state"), ("currency",), "invoices"),
        (AGG_CITIZENS,
         f"SELECT {_cube_dims(('age_band', 'household_type', 'commune_code'))}, COUNT(*) AS people "
         "FROM marts.dim_citizen GROUP BY CUBE(age_band, household_type, commune_code)",
         {}, ("age_band", "household_type", "commune_code"), (), "people"),
        (AGG_DESILO,
         f"SELECT {_cube_dims(('silo_count',))}, COUNT(*) AS people, SUM(record_count) AS records, "
         "SUM(conflicting_attributes) AS conflicting_attributes, SUM(open_discrepancies) AS open_discrepancies "
         "FROM (SELECT CASE WHEN silo_count >= 4 THEN '4+' ELSE CAST(silo_count AS VARCHAR) END AS silo_count, "
         "record_count, conflicting_attributes, open_discrepancies FROM marts.dim_citizen) t GROUP BY CUBE(silo_count)",
         {}, ("silo_count",), (), "people"),
    ]
    counts = {}
    for table, sql, params, dims, fixed, additive in specs:
        rows = wh.arrow(sql, params).to_pylist()
        rows = suppress(rows, dims, fixed=fixed, additive=additive, min_cell=min_cell,
                        hide=[c.name for c in table.columns if c.name not in (*dims, *fixed, "suppressed")])
        counts[f"marts.{table.name}"] = wh.write(table, _to_arrow(table, rows), replace=True)
    counts[f"marts.{AGG_SILO_OVERLAP.name}"] = _silo_overlap(wh, min_cell)
    return counts


def _silo_overlap(wh: Warehouse, min_cell: int) -> int:
    silos = [r[0] for r in wh.rows("SELECT DISTINCT source_system FROM core.person_record ORDER BY 1")] \
        if wh.table_exists("core", "person_record") else []
    with _session_table(wh, "mart_silos", pa.table({"silo": pa.array(silos, pa.string())})) as s:
        rows = wh.arrow(
            "SELECT a.silo AS silo_a, b.silo AS silo_b, COUNT(*) AS people FROM marts.dim_citizen d "
            f"JOIN {s} a ON POSITION(',' || a.silo || ',' IN ',' || d.silos || ',') > 0 "
            f"JOIN {s} b ON POSITION(',' || b.silo || ',' IN ',' || d.silos || ',') > 0 "
            "WHERE a.silo <= b.silo GROUP BY a.silo, b.silo").to_pylist()
    # no total row: the cells overlap (one person in several), so none is another's sum
    rows = suppress(rows, (), fixed=("silo_a", "silo_b"), additive="people", min_cell=min_cell, hide=["people"])
    return wh.write(AGG_SILO_OVERLAP, _to_arrow(AGG_SILO_OVERLAP, rows), replace=True)


def _to_arrow(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
    schema = arrow_schema(table)
    data = {f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema}
    return conform(pa.table(data, schema=schema), table)


def suppress(rows: list[dict[str, Any]], dims: Sequence[str], *, additive: str, hide: Sequence[str],
             fixed: Sequence[str] = (), min_cell: int = MIN_CELL) -> list[dict[str, Any]]:
    """Small-cell suppression of a cube's rows (``'*'`` in a dimension: the total over it).

    Primary: a row under ``min_cell`` people. Complementary: for every dimension, the rows that
    differ only in it add up (in ``additive``) to the row with ``'*'`` there; when that total is
    published and exactly one row under it is suppressed, the smallest other row under it is
    suppressed too (or the total itself, when no other row is left), until nothing changes.
    Suppressed rows keep their dimensions, get NULL in every ``hide`` column and ``suppressed``
    true. ``fixed`` columns are part of every row's identity but never totalled (a currency)."""
    hidden = {i for i, r in enumerate(rows) if (r.get("people") or 0) < min_cell}
    keys = [*dims, *fixed]
    # Rows come from a GROUP BY CUBE in no set order: groups are walked, and ties between equally
    # small cells broken, by the rows' dimensions, so the same figures always hide the same cells.
    order = sorted(range(len(rows)), key=lambda i: tuple((rows[i][k] is None, str(rows[i][k])) for k in keys))
    rank = {i: n for n, i in enumerate(order)}
    changed = True
    while changed:
        changed = False
        for d in dims:
            under: dict[tuple, list[int]] = defaultdict(list)
            totals: dict[tuple, int] = {}
            for i in order:
                r = rows[i]
                group = tuple(r[k] for k in keys if k != d)
                if r[d] == ALL:
                    totals[group] = i
                else:
                    under[group].append(i)
            for group, members in under.items():
                total = totals.get(group)
                if total is None or total in hidden:
                    continue
                if sum(1 for i in members if i in hidden) != 1:
                    continue
                shown = [i for i in members if i not in hidden]
                # the smallest other cell, or the total when the hidden cell is the only one under it
                hidden.add(min(shown, key=lambda i: (rows[i].get(additive) or 0, rank[i])) if shown else total)
                changed = True
    out = []
    for i, r in enumerate(rows):
        r = dict(r)
        r["suppressed"] = i in hidden
        if i in hidden:
            for c in hide:
                r[c] = None
        out.append(r)
    return out
