"""Erasure (GDPR Art. 17) that leaves nothing behind, with its proof.

:func:`erase` removes one citizen from every layer:

- **golden**: citizen, provenance, links, discrepancies, foyer membership (a foyer left empty goes),
  review queue, identity decisions naming their records, aliases, rectifications and objections,
  the desk's search index (their row, postings, and the keys no one else holds);
- **canonical** (``core.*``): their person records and every row pointing at them;
- **raw** (``raw_<system>``): the rows the staging models turned into those records and their
  interactions — found through each model's own key expression (parsed with sqlglot: the
  ``record_key`` / ``interaction_key`` column names the raw table and its row), dlt's nested
  child rows (``_dlt_parent_id``), and dlt's merge copies (``raw_<system>_staging``, emptied);
- **ops.quarantine** payloads holding them (their record key, source id or e-mail, or both names);
- **marts**: their rows in the row-level marts (found by their pseudonym under each mart's key,
  ``marts_keys``), then the aggregates recounted and, on DuckDB, the BI file written again;
- **files**: dlt's load packages and traces under the pipelines folder, earlier access exports
  naming the citizen (``<var_dir>/exports``, zips read member by member);
- **bytes**: the DuckDB file is checkpointed and rewritten into a fresh file (``COPY FROM
  DATABASE``) that replaces it — DuckDB does not give freed blocks back otherwise; on PostgreSQL
  every table touched gets ``VACUUM FULL``;
- **the readers' snapshot** (DuckDB): published again from the compacted file, so ``hub citizen``,
  the desk and the GDPR exports no longer find them (``warehouse.snapshot``).

What the register says a law requires is kept: raw tables mapped by a data category whose end of
retention is ``archivage`` (e.g. invoices, pièces justificatives des comptes publics: Art. 17(3)(b))
are not deleted, and the report lists them with the processing's legal basis and retention. The
access log keeps its rows (references, no values: the log's own legal basis).

Then a suppression entry (keyed hashes, :mod:`warehouse.gdpr_suppression`) so the next load does
not bring the person back, a worklist per silo of the records it must delete itself, the
recipients to notify (Art. 19, from the register), and a proof per table and column: rows before
and after, and a sha256 of the column's values before and after — never the values. The report
is a JSON file (``<var_dir>/gdpr/erasures/<id>.json``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import time
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from schemas.contract import (
    CITIZEN,
    CITIZEN_ALIAS,
    CITIZEN_ATTRIBUTE,
    CITIZEN_LINK,
    DISCREPANCY,
    HOUSEHOLD,
    HOUSEHOLD_MEMBER,
    HOUSEHOLD_MEMBERSHIP,
    INTERACTION,
    MATCH_DECISION,
    OBJECTION,
    ORGANISATION_ROLE,
    PERSON_RECORD,
    QUARANTINE,
    RECTIFICATION,
    REVIEW_QUEUE,
    SUPPRESSION,
    arrow_schema,
)
from warehouse.engine import Warehouse, bind_list, qualified
from warehouse.search import forget as forget_in_search

log = logging.getLogger(__name__)

RIGHTS_PROCESSING = "droits-rgpd"
_CHUNK = 400


class ErasureError(RuntimeError):
    """The erasure cannot run (unknown citizen, no key for the suppression list...)."""


@dataclass
class FieldProof:
    table: str
    column: str
    rows_before: int
    rows_after: int
    sha256_before: str
    sha256_after: str


@dataclass
class ErasureReport:
    erasure_id: str
    citizen_id: str
    request_id: str | None
    reason: str
    decided_by: str
    erased_at: str
    records: int = 0
    proof: list[FieldProof] = field(default_factory=list)
    retained: list[dict[str, Any]] = field(default_factory=list)
    worklists: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    recipients: list[dict[str, Any]] = field(default_factory=list)
    files_removed: int = 0
    raw_not_located: list[str] = field(default_factory=list)
    suppression_entries: int = 0
    compaction: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)


# ------------------------------------------------------------------------------------ raw rows
@dataclass(frozen=True)
class RawLocator:
    """How one staging model's key column maps back to the raw table row it came from."""

    model: str
    table: str  # raw_<system>.<table>
    query: str  # SELECT __rid, __k FROM (...) : the row id and the key it produces


def _rid_column(wh: Warehouse, schema: str, table: str) -> str:
    if "_dlt_id" in wh.columns_of(schema, table):
        return "_dlt_id"
    return "rowid" if wh.kind == "duckdb" else "ctid"


def raw_locators(wh: Warehouse, models: Iterable[tuple[str, str]], key_column: str,
                 require: str | None = None) -> tuple[list[RawLocator], list[str]]:
    """For each model producing ``key_column`` (and ``require`` when given): the raw table and a
    query giving (row id, key). Returns the locators and the models that could not be mapped."""
    import sqlglot
    from sqlglot import exp

    dialect = "duckdb" if wh.kind == "duckdb" else "postgres"
    found: list[RawLocator] = []
    missed: list[str] = []
    for name, sql in models:
        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
        except sqlglot.errors.ParseError:
            missed.append(name)
            continue
        for select in tree.find_all(exp.Select):
            names = {e.alias_or_name for e in select.expressions}
            if key_column not in names or (require and require not in names):
                continue
            key_expr = next(e for e in select.expressions if e.alias_or_name == key_column)
            key_expr = key_expr.this if isinstance(key_expr, exp.Alias) else key_expr
            aliases = {c.table for c in key_expr.find_all(exp.Column)}
            tables = [t for t in select.find_all(exp.Table) if t.alias_or_name in aliases]
            if len(aliases) != 1 or len(tables) != 1 or not tables[0].db.startswith("raw_") or select.args.get("group"):
                missed.append(name)
                continue
            t = tables[0]
            if not wh.table_exists(t.db, t.name):
                continue
            alias = t.alias_or_name
            rid = _rid_column(wh, t.db, t.name)
            rid_expr = exp.column(rid, table=alias)
            if rid == "ctid":
                rid_expr = exp.cast(rid_expr, "text")
            sel = select.copy()
            sel.set("expressions", [exp.alias_(rid_expr, "__rid"), exp.alias_(key_expr.copy(), "__k")])
            found.append(RawLocator(name, f"{t.db}.{t.name}", sel.sql(dialect=dialect)))
    return found, missed


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i:i + _CHUNK]


def locate_raw(wh: Warehouse, locators: list[RawLocator], keys: Iterable[str]) -> dict[str, list[Any]]:
    """raw table -> row ids producing any of ``keys``."""
    keys = sorted(set(keys))
    out: dict[str, list[Any]] = {}
    for loc in locators:
        for part in _chunks(keys):
            binds, params = bind_list("k", part)
            rows = wh.rows(f"SELECT q.__rid FROM ({loc.query}) q WHERE q.__k IN ({binds})", params)
            if rows:
                out.setdefault(loc.table, []).extend(r[0] for r in rows)
    return out


def _rid_where(wh: Warehouse, schema: str, table: str, ids: list[Any]) -> tuple[str, dict[str, Any]]:
    rid = _rid_column(wh, schema, table)
    binds, params = bind_list("r", ids)
    col = "ctid::text" if rid == "ctid" else rid
    return f"{col} IN ({binds})", params


# ------------------------------------------------------------------------------------ proof
def _digest(rows: list[tuple]) -> str:
    """sha256 over the values, one per line (null as \\N): the same rows give the same hash."""
    h = hashlib.sha256()
    for r in rows:
        h.update("\x1f".join("\\N" if v is None else str(v) for v in r).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


class _Eraser:
    def __init__(self, wh: Warehouse, report: ErasureReport):
        self.wh = wh
        self.report = report
        self.touched: set[str] = set()

    def delete(self, schema: str, table: str, where: str, params: Mapping[str, Any], *, per_column: bool = True
               ) -> int:
        """Delete the rows ``where`` selects, with a proof per column (hashes, never values); one
        proof for the whole table (column ``*``, row counts only) when not ``per_column``."""
        wh = self.wh
        if not wh.table_exists(schema, table):
            return 0
        q = f'"{schema}"."{table}"'
        cols = wh.columns_of(schema, table)
        before = int(wh.scalar(f"SELECT count(*) FROM {q} WHERE {where}", params) or 0)
        if before == 0:
            return 0
        if not per_column:
            wh.execute(f"DELETE FROM {q} WHERE {where}", params)
            after = int(wh.scalar(f"SELECT count(*) FROM {q} WHERE {where}", params) or 0)
            self.report.proof.append(FieldProof(f"{schema}.{table}", "*", before, after, "", ""))
            self.touched.add(f"{schema}.{table}")
            return before
        # one read of the rows, one digest per column (values sorted as text: order-independent)
        rows = wh.rows(f"SELECT * FROM {q} WHERE {where}", params)
        snapshots = {c: _digest(sorted(((r[i],) for r in rows), key=lambda v: str(v[0])))
                     for i, c in enumerate(cols)}
        wh.execute(f"DELETE FROM {q} WHERE {where}", params)
        after_rows = wh.rows(f"SELECT * FROM {q} WHERE {where}", params)
        for i, c in enumerate(cols):
            self.report.proof.append(FieldProof(f"{schema}.{table}", c, before, len(after_rows), snapshots[c],
                                                _digest([(r[i],) for r in after_rows])))
        self.touched.add(f"{schema}.{table}")
        return before

    def delete_in(self, schema: str, table: str, column: str, values: Iterable[Any]) -> int:
        values = sorted(set(values))
        n = 0
        for part in _chunks(values):
            binds, params = bind_list("v", part)
            n += self.delete(schema, table, f'"{column}" IN ({binds})', params)
        return n


# ------------------------------------------------------------------------------------ register
def _retained_tables(register: Any) -> dict[str, dict[str, Any]]:
    """Raw tables a law requires to keep: mapped by a data category archived at the end of retention."""
    out: dict[str, dict[str, Any]] = {}
    for p in register.processings:
        for d in p.data:
            if d.retention.at_end != "archivage":
                continue
            for table in d.columns:
                if table.startswith("raw_"):
                    out.setdefault(table, {"processing": p.id, "category": d.category,
                                           "legal_basis": p.legal_basis.text, "retention": d.retention.text})
    return out


def _recipients(register: Any, systems: set[str]) -> list[dict[str, Any]]:
    """Art. 19: the recipients of every processing that held the person (their silos' and the hub's)."""
    out = []
    for p in register.processings:
        if (p.kind == "source" and p.source_system in systems) or p.kind == "hub":
            r = p.recipients
            if r.internal or r.external or r.processors:
                out.append({"processing": p.id, "internal": list(r.internal), "external": list(r.external),
                            "processors": list(r.processors)})
    return out


# ------------------------------------------------------------------------------------ models
def warehouse_models(wh: Warehouse) -> list[tuple[str, str]]:
    """The staging models as the warehouse holds them (the views of the ``staging`` schema)."""
    if wh.kind == "duckdb":
        rows = wh.rows("SELECT view_name, sql FROM duckdb_views() WHERE schema_name = 'staging'")
        out = []
        for name, sql in rows:
            body = sql.split(" AS ", 1)[1] if " AS " in sql else sql
            out.append((name, body.rstrip().rstrip(";")))
        return out
    return [(r[0], r[1].rstrip().rstrip(";")) for r in
            wh.rows("SELECT viewname, definition FROM pg_views WHERE schemaname = 'staging'")]


def _flatten(models: Mapping[str, list[tuple[str, str]]] | Iterable[tuple[str, str]] | None,
             wh: Warehouse) -> list[tuple[str, str]]:
    if models is None:
        return warehouse_models(wh)
    if isinstance(models, Mapping):
        return [m for entries in models.values() for m in entries]
    return list(models)


def _delete_raw(er: _Eraser, wh: Warehouse, located: dict[str, list[Any]], retained: dict[str, dict[str, Any]],
                report: ErasureReport | None) -> None:
    for table, ids in sorted(located.items()):
        schema, name = table.split(".", 1)
        if table in retained:
            if report is not None:
                report.retained.append({"table": table, "rows": len(set(ids)), **retained[table]})
            continue
        has_dlt = "_dlt_id" in wh.columns_of(schema, name)
        for part in _chunks(sorted(set(ids), key=str)):
            where, params = _rid_where(wh, schema, name, part)
            er.delete(schema, name, where, params)
            if has_dlt:
                _delete_children(er, wh, schema, name, part)


def _delete_children(er: _Eraser, wh: Warehouse, schema: str, parent: str, parent_ids: list[Any]) -> None:
    """dlt's nested tables (``parent__child``) hold a row's lists: their rows go with it."""
    children = [r[0] for r in wh.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = :s AND table_name LIKE :p",
        {"s": schema, "p": f"{parent}__%"}) if "__" not in r[0][len(parent) + 2:]]
    for child in children:
        if "_dlt_parent_id" not in wh.columns_of(schema, child):
            continue
        binds, params = bind_list("p", parent_ids)
        ids = [r[0] for r in wh.rows(f'SELECT _dlt_id FROM "{schema}"."{child}" WHERE _dlt_parent_id IN ({binds})',
                                     params)]
        if ids:
            er.delete(schema, child, f"_dlt_parent_id IN ({binds})", params)
            _delete_children(er, wh, schema, child, ids)


def _empty_dlt_staging(er: _Eraser, wh: Warehouse, systems: Iterable[str]) -> None:
    """dlt's merge copies (``raw_<system>_staging``) are not emptied by dlt: empty them."""
    for system in sorted(set(systems)):
        schema = f"raw_{system}_staging"
        for (name,) in wh.rows("SELECT table_name FROM information_schema.tables WHERE table_schema = :s "
                               "AND table_type = 'BASE TABLE'", {"s": schema}):
            er.delete(schema, name, "1 = 1", {}, per_column=False)  # a transient copy of the last load


def clean_dlt_files(pipelines_dir: Path | None) -> int:
    """Remove dlt's completed and pending load packages, extracted files and traces (rows as loaded);
    the pipeline state and schemas stay (cursors, no rows). Returns the files removed."""
    if pipelines_dir is None or not Path(pipelines_dir).exists():
        return 0
    n = 0
    for pipeline in Path(pipelines_dir).iterdir():
        if not pipeline.is_dir():
            continue
        targets = [pipeline / "load" / sub for sub in ("loaded", "normalized", "new")]
        targets += [pipeline / "normalize" / "extracted", pipeline / "extract"]
        for target in targets:
            if not target.exists():
                continue
            for child in target.iterdir():
                n += sum(1 for p in child.rglob("*") if p.is_file()) if child.is_dir() else 1
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        trace = pipeline / "trace.pickle"
        if trace.exists():
            trace.unlink()
            n += 1
    return n


def _export_names_citizen(path: Path, needles: list[bytes]) -> bool:
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    data = z.read(info)
                    if any(x in data or x in info.filename.encode() for x in needles):
                        return True
            return False
        data = path.read_bytes()
    except OSError:
        return False
    return any(x in data for x in needles)


def remove_exports(exports_dir: Path | None, needles: list[str]) -> int:
    """Earlier access exports naming the citizen (id or record keys), zips read member by member."""
    if exports_dir is None or not Path(exports_dir).exists():
        return 0
    raw = [n.encode("utf-8") for n in needles if n]
    n = 0
    for path in sorted(Path(exports_dir).rglob("*")):
        if path.is_file() and _export_names_citizen(path, raw):
            path.unlink()
            n += 1
    return n


# ------------------------------------------------------------------------------------ compaction
def compact(wh_url: str) -> dict[str, Any]:
    """Make freed bytes go: DuckDB file checkpointed and rewritten into a fresh one (swapped in)."""
    from matching import resources

    path = Path(wh_url.split("duckdb:///", 1)[1])
    before = path.stat().st_size
    started = time.perf_counter()
    fresh = path.with_name(path.name + ".compact")
    if fresh.exists():
        fresh.unlink()
    con = resources.connect(str(path))
    try:
        con.execute("CHECKPOINT")
        db = con.execute("SELECT current_database()").fetchall()[0][0]
        quoted = str(fresh).replace("'", "''")  # a path we made from the settings, quoted as a literal
        con.execute(f"ATTACH '{quoted}' AS __fresh")
        con.execute(f'COPY FROM DATABASE "{db}" TO __fresh')
        con.execute("DETACH __fresh")
    finally:
        con.close()
    os.replace(fresh, path)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        wal.unlink()
    return {"engine": "duckdb", "bytes_before": before, "bytes_after": path.stat().st_size,
            "seconds": round(time.perf_counter() - started, 2)}


def vacuum(wh: Warehouse, tables: Iterable[str]) -> dict[str, Any]:
    """PostgreSQL: VACUUM FULL rewrites each table touched, so dead tuples' bytes go."""
    started = time.perf_counter()
    done = []
    for t in sorted(set(tables)):
        schema, name = t.split(".", 1)
        if wh.table_exists(schema, name):
            wh.execute(f'VACUUM FULL "{schema}"."{name}"')
            done.append(t)
    return {"engine": "postgres", "vacuumed": len(done), "seconds": round(time.perf_counter() - started, 2)}


# ------------------------------------------------------------------------------------ erase
def _person_rows(wh: Warehouse, record_keys: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in _chunks(record_keys):
        binds, params = bind_list("k", part)
        out += wh.dicts(f"SELECT * FROM {qualified(PERSON_RECORD)} WHERE record_key IN ({binds})", params)
    return out


def _quarantine_where(records: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """Quarantine rows naming one of the records: its key, source id or e-mail in the payload or
    locator, or its given name and surname together in the payload."""
    conds, params = [], {}
    for i, r in enumerate(records):
        for j, needle in enumerate(x for x in (r.get("record_key"), r.get("email")) if x):
            params[f"q{i}_{j}"] = f"%{needle}%"
            conds.append(f"(payload LIKE :q{i}_{j} OR locator LIKE :q{i}_{j})")
        sid = str(r.get("source_id") or "").split("/", 1)[-1]
        if sid:
            params[f"s{i}"] = f"%:{sid}"
            params[f"sp{i}"] = f"%\"{sid}\"%"
            conds.append(f"(locator LIKE :s{i} OR payload LIKE :sp{i})")
        given, name = (r.get("given_names") or "").split(" ")[0], r.get("usage_name") or r.get("birth_name")
        if given and name:
            params[f"g{i}"], params[f"n{i}"] = f"%{given}%", f"%{name}%"
            conds.append(f"(payload LIKE :g{i} AND payload LIKE :n{i})")
    return (" OR ".join(conds) or "1 = 0"), params


def erase(wh_url: str, citizen_id: str, *, reason: str, decided_by: str, request_id: str | None = None,
          models: Any = None, var_dir: Path | None = None, pipelines_dir: Path | None = None,
          exports_dir: Path | None = None, register: Any = None, compact_file: bool = True,
          marts_keys: Mapping[str, bytes] | None = None) -> ErasureReport:
    """Erase one citizen everywhere (see the module's docstring); returns the report (also written
    to ``<var_dir>/gdpr/erasures/<erasure_id>.json`` when ``var_dir`` is given).

    ``marts_keys``: the marts' pseudonym keys (``warehouse.marts.keys_from_settings``), needed when
    the warehouse has marts: without them the citizen's mart rows cannot be found, and nothing is
    erased (:class:`ErasureError`). The caller holds the run lock (the file is rewritten and the
    readers' snapshot published)."""
    from schemas.register import load_register
    from warehouse import gdpr_suppression, marts
    from warehouse.access_log import Entry, append
    from warehouse.snapshot import publish

    started = time.perf_counter()
    register = register or load_register()
    now = datetime.now(UTC)
    report = ErasureReport("E" + secrets.token_hex(6).upper(), citizen_id, request_id, reason, decided_by,
                           now.isoformat())
    retained = _retained_tables(register)
    with Warehouse(wh_url) as wh:
        links = (wh.rows(f"SELECT record_key FROM {qualified(CITIZEN_LINK)} WHERE citizen_id = :c",
                         {"c": citizen_id}) if wh.table_exists(CITIZEN_LINK.schema, CITIZEN_LINK.name) else [])
        known = wh.table_exists(CITIZEN.schema, CITIZEN.name) and wh.scalar(
            f"SELECT count(*) FROM {qualified(CITIZEN)} WHERE citizen_id = :c", {"c": citizen_id})
        if not links and not known:
            raise ErasureError(f"no citizen {citizen_id} in the warehouse")
        has_marts = wh.table_exists("marts", "dim_citizen")
        if has_marts and marts_keys is None:
            raise ErasureError("the marts hold rows of this citizen under pseudonyms: give the marts' keys "
                               "(marts_keys) so they go too; nothing was erased")
        record_keys = sorted(r[0] for r in links)
        records = _person_rows(wh, record_keys) if wh.table_exists(PERSON_RECORD.schema, PERSON_RECORD.name) else []
        report.records = len(records)
        interaction_keys: list[str] = []
        if wh.table_exists(INTERACTION.schema, INTERACTION.name):
            for part in _chunks(record_keys):
                binds, params = bind_list("k", part)
                interaction_keys += [r[0] for r in wh.rows(
                    f"SELECT interaction_key FROM {qualified(INTERACTION)} WHERE record_key IN ({binds})", params)]
        systems = {r["source_system"] for r in records}
        for r in records:
            report.worklists.setdefault(r["source_system"], []).append(
                {"record_key": r["record_key"], "source_id": r["source_id"], "action": "delete"})
        report.recipients = _recipients(register, systems)

        # suppression first: a crash after it leaves the person out of the next load anyway
        key = gdpr_suppression.load_key(var_dir, create=True)
        if key is None:
            raise ErasureError("no suppression key: set $HUB_SUPPRESSION_KEY or $HUB_SUPPRESSION_KEY_FILE")
        entries = gdpr_suppression.entries(key, records)
        wh.ensure_table(SUPPRESSION)
        rows = [{"key_hash": h, "key_kind": k, "erasure_id": report.erasure_id, "request_id": request_id,
                 "created_at": now} for h, k in sorted(entries.items())]
        if rows:
            hashes, hparams = bind_list("h", list(entries))
            wh.write(SUPPRESSION, pa.Table.from_pylist(rows, schema=arrow_schema(SUPPRESSION)),
                     delete_where=(f"key_hash IN ({hashes})", hparams))
        report.suppression_entries = len(rows)

        # raw rows, located through the staging models before the core rows that name them go
        flat = _flatten(models, wh)
        person_locs, missed = raw_locators(wh, flat, "record_key", require="given_names")
        inter_locs, missed2 = raw_locators(wh, flat, "interaction_key")
        report.raw_not_located = sorted(set(missed + missed2))
        located = locate_raw(wh, person_locs, record_keys)
        for table, ids in locate_raw(wh, inter_locs, interaction_keys).items():
            located.setdefault(table, []).extend(ids)

        er = _Eraser(wh, report)
        with wh.transaction():
            _delete_raw(er, wh, located, retained, report)
            _empty_dlt_staging(er, wh, systems)
            if records and wh.table_exists(QUARANTINE.schema, QUARANTINE.name):
                where, params = _quarantine_where(records)
                er.delete(QUARANTINE.schema, QUARANTINE.name, where, params)
            for t in (PERSON_RECORD, HOUSEHOLD_MEMBERSHIP, INTERACTION, ORGANISATION_ROLE, CITIZEN_LINK):
                er.delete_in(t.schema, t.name, "record_key", record_keys)
            for t in (CITIZEN, CITIZEN_ATTRIBUTE, CITIZEN_LINK, DISCREPANCY, HOUSEHOLD_MEMBER, RECTIFICATION,
                      OBJECTION):
                er.delete(t.schema, t.name, "citizen_id = :c", {"c": citizen_id})
            er.delete_in(DISCREPANCY.schema, DISCREPANCY.name, "record_key", record_keys)
            for col in ("record_key_l", "record_key_r"):
                er.delete_in(REVIEW_QUEUE.schema, REVIEW_QUEUE.name, col, record_keys)
                er.delete_in(MATCH_DECISION.schema, MATCH_DECISION.name, col, record_keys)
            er.delete(REVIEW_QUEUE.schema, REVIEW_QUEUE.name, "citizen_id_l = :c OR citizen_id_r = :c",
                      {"c": citizen_id})
            er.delete(MATCH_DECISION.schema, MATCH_DECISION.name, "citizen_id = :c", {"c": citizen_id})
            for i, k in enumerate(record_keys):
                er.delete(MATCH_DECISION.schema, MATCH_DECISION.name, f"groups LIKE :g{i}", {f"g{i}": f'%"{k}"%'})
            er.delete(CITIZEN_ALIAS.schema, CITIZEN_ALIAS.name, "old_id = :c OR new_id = :c", {"c": citizen_id})
            forget_in_search(wh, citizen_id, er.delete)  # the desk's search index: their keys go now
            if has_marts:
                assert marts_keys is not None
                marts.forget(wh, citizen_id, keys=marts_keys, delete=er.delete)
            if wh.table_exists(HOUSEHOLD.schema, HOUSEHOLD.name) and wh.table_exists(HOUSEHOLD_MEMBER.schema,
                                                                                     HOUSEHOLD_MEMBER.name):
                er.delete(HOUSEHOLD.schema, HOUSEHOLD.name,
                          f"household_id NOT IN (SELECT household_id FROM {qualified(HOUSEHOLD_MEMBER)})", {})
        if has_marts:  # counted nowhere: the aggregates recounted without them (and the BI file rewritten)
            er.touched |= set(marts.recount(wh))
        if request_id and wh.table_exists("gdpr", "dsr_request"):
            # the request itself (the identity the person gave) proves the answer: kept under droits-rgpd
            report.retained.append({"table": "gdpr.dsr_request", "rows": 1, "processing": RIGHTS_PROCESSING,
                                    "category": "identite", "legal_basis": _basis(register, RIGHTS_PROCESSING),
                                    "retention": _retention(register, RIGHTS_PROCESSING)})
        report.retained.append({"table": "ops.access_log", "rows": None, "processing": "journal-acces",
                                "category": "connexion", "legal_basis": _basis(register, "journal-acces"),
                                "retention": "références seulement (aucune valeur) ; durée du journal"})
        append(wh, [Entry(reader=decided_by, citizen_id=citizen_id, purpose=_purpose(register), operation="delete",
                          channel="gdpr", fields=tuple(sorted(er.touched)))])
        if wh.kind == "postgres":
            report.compaction = vacuum(wh, er.touched | {"ops.access_log"})
    report.files_removed = clean_dlt_files(pipelines_dir)
    report.files_removed += remove_exports(exports_dir, [citizen_id, *record_keys])
    if wh_url.startswith("duckdb") and compact_file:
        report.compaction = compact(wh_url)
    publish(wh_url)  # DuckDB: the readers' copy loses them too (PostgreSQL: nothing to do)
    report.seconds = round(time.perf_counter() - started, 2)
    if var_dir is not None:
        out = Path(var_dir) / "gdpr" / "erasures" / f"{report.erasure_id}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report.to_json(), encoding="utf-8")
    log.info("erasure %s: %d record(s), %d table(s) touched, %d retained, %d file(s) removed in %.2f s",
             report.erasure_id, report.records, len(er.touched), len(report.retained), report.files_removed,
             report.seconds)
    return report


def _purpose(register: Any) -> str:
    try:
        return register.processing(RIGHTS_PROCESSING).purpose
    except KeyError:
        return RIGHTS_PROCESSING


def _retention(register: Any, pid: str) -> str:
    try:
        data = register.processing(pid).data
    except KeyError:
        return ""
    return data[0].retention.text if data else ""


def _basis(register: Any, pid: str) -> str:
    try:
        return register.processing(pid).legal_basis.text
    except KeyError:
        return ""


def reclaim(wh_url: str, tables: Iterable[str]) -> dict[str, Any]:
    """Freed bytes go: the DuckDB file rewritten (no connection may be open), or VACUUM FULL of ``tables``."""
    if wh_url.startswith("duckdb"):
        return compact(wh_url)
    with Warehouse(wh_url) as wh:
        return vacuum(wh, tables)


def clear_suppressed(wh: Warehouse, models: Any, record_keys: Iterable[str], pipelines_dir: Path | None
                     ) -> set[str]:
    """After a load that brought erased people back from a silo: their raw rows (and dlt's copies and
    files) go again, keeping what the register requires. Returns the tables touched (for :func:`reclaim`)."""
    from schemas.register import load_register

    record_keys = sorted(set(record_keys))
    flat = _flatten(models, wh)
    locs, _ = raw_locators(wh, flat, "record_key", require="given_names")
    located = locate_raw(wh, locs, record_keys)
    dummy = ErasureReport("suppression", "", None, "suppression list", "hub", datetime.now(UTC).isoformat())
    er = _Eraser(wh, dummy)
    with wh.transaction():
        _delete_raw(er, wh, located, _retained_tables(load_register()), None)
        _empty_dlt_staging(er, wh, {k.split(":", 1)[0] for k in record_keys})
    clean_dlt_files(pipelines_dir)
    log.info("suppression: raw rows of %d erased record(s) removed again", len(record_keys))
    return er.touched
