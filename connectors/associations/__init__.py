"""Associations silo: three CSV exports (``;``, CRLF, dd/mm/yyyy, decimal comma) in a drop folder.

Read as what they are: cp1252 as the office tool's plain CSV writes it, or UTF-8 (with or without
BOM) as Excel's "CSV UTF-8" does (``encoding = "auto"``, the default; the files connector's
detection). Parsed with pyarrow; each bad row is quarantined with file:line and field, the rest
loads (merge on each file's key). One bad row never aborts a file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectors.base import (
    Cast,
    Collector,
    Guard,
    SourceError,
    cast_columns,
    export_mode,
    load_failed,
    mark_listed,
    national_id_rows,
    take_rows,
    unlisted_rows,
)
from connectors.runner import unique_in_run
from schemas.contract import RAW_DELETED_AT

log = logging.getLogger(__name__)

SYSTEM = "associations"
_DATE = Cast("date_dmy", "bad_date", "not a date (dd/mm/yyyy expected)")
_MONEY = Cast("decimal_comma", "bad_decimal", "not a decimal amount (1 234,50 expected)")
_INT = Cast("int", "bad_integer", "not an integer")


class FileSpec:
    def __init__(self, entity: str, key: str, columns: dict[str, Cast | None]):
        self.entity = entity
        self.file = f"{entity}.csv"
        self.key = key
        self.columns = columns


FILES = (
    FileSpec("associations", "rna", {"rna": None, "siret": None, "nom": None, "adresse": None,
                                      "code_postal": None, "commune": None, "date_creation": _DATE}),
    FileSpec("dirigeants", "id", {"id": _INT, "rna": None, "fonction": None, "civilite": None, "nom": None,
                                  "prenom": None, "date_naissance": _DATE, "email": None, "telephone": None,
                                  "adresse": None, "code_postal": None, "commune": None, "date_maj": _DATE}),
    FileSpec("demandes_subvention", "numero", {"numero": None, "rna": None, "dirigeant_id": _INT, "objet": None,
                                               "montant_demande": _MONEY, "montant_accorde": _MONEY,
                                               "date_depot": _DATE, "date_decision": _DATE, "statut": None}),
)

_STAGING_DIR = Path(__file__).parent / "staging"
STAGING: dict[str, list[Path]] = {
    "person_record": [_STAGING_DIR / "stg_associations__dirigeants.sql"],
    "organisation": [_STAGING_DIR / "stg_associations__associations.sql"],
    "organisation_role": [_STAGING_DIR / "stg_associations__fonctions.sql"],
    "interaction": [_STAGING_DIR / "stg_associations__demandes_subventions.sql"],
}


def read_file(path: Path, spec: FileSpec, collector: Collector, encoding: str = "auto") -> tuple[pa.Table, set[str]]:
    """One CSV as a typed Arrow table, and the key of every row it lists (loaded or not); bad rows
    go to the collector (rows_read counts them all). ``encoding``: one of the files connector's
    (``auto`` detects UTF-8 with or without BOM, else cp1252)."""
    from connectors.files.read import to_utf8

    if not path.is_file():
        raise SourceError(SYSTEM, spec.file, "file missing from the drop folder")
    body, encoding = to_utf8(SYSTEM, spec.file, path.read_bytes(), encoding)
    bad_lines: dict[int, str] = {}

    def invalid(row: Any) -> str:
        bad_lines[row.number] = row.text
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(use_threads=False),
            # empty lines kept as rows so that row numbers stay physical line numbers
            parse_options=pacsv.ParseOptions(delimiter=";", invalid_row_handler=invalid, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in spec.columns}, strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid as e:
        # Arrow's parse messages quote the offending text: keep only its kind
        raise SourceError(SYSTEM, spec.file, f"not a readable ;-separated file (read as {encoding}: "
                          f"{type(e).__name__})") from None
    missing = [c for c in spec.columns if c not in table.column_names]
    if missing:
        raise SourceError(SYSTEM, f"{spec.file} line 1", f"header lacks column(s) {', '.join(missing)}")
    key_at = table.column_names.index(spec.key)
    table = table.select(list(spec.columns))  # unknown extra columns are not loaded

    # physical line of each parsed row: every line after the header that was not an invalid row
    lines = []
    line = 2
    while len(lines) < table.num_rows:
        if line not in bad_lines:
            lines.append(line)
        line += 1
    blank = pc.equal(pc.binary_join_element_wise(*[table.column(c) for c in spec.columns], ""), "")
    rows_total = table.num_rows - pc.sum(blank).as_py() if table.num_rows else 0
    collector.add_read(spec.entity, (rows_total or 0) + len(bad_lines))
    for n, text in sorted(bad_lines.items()):
        collector.quarantine(spec.entity, f"{spec.file}:{n}", None, "wrong_column_count",
                             f"expected {len(spec.columns)} fields", text)

    typed, bad = cast_columns(table, {c: s for c, s in spec.columns.items() if s is not None})
    key = pc.utf8_trim_whitespace(table.column(spec.key)).to_pylist()
    nid = national_id_rows(table)  # scanned here too so the quarantine names the file line
    blank_rows = blank.to_pylist()
    raw_rows = None
    keep: list[int] = []
    seen: dict[str, int] = {}
    for i in range(table.num_rows):
        if blank_rows[i]:
            continue
        reason: tuple[str | None, str, str] | None = None
        if not key[i]:
            reason = (spec.key, "missing_key", "the key is empty")
        elif i in nid:
            reason = (nid[i], "national_id", "a national identification number (NIR / national register) "
                      "may not be stored")
        elif i in bad:
            name, cast = bad[i]
            reason = (name, cast.reason_code, cast.message)
        elif key[i] in seen:
            # the first occurrence in file order wins, deterministically
            reason = (spec.key, "duplicate_key", f"same key as line {lines[seen[key[i]]]}")
        if reason is None:
            seen[key[i]] = i
            keep.append(i)
            continue
        if raw_rows is None:
            raw_rows = table.to_pylist()
        collector.quarantine(spec.entity, f"{spec.file}:{lines[i]}", reason[0], reason[1], reason[2], raw_rows[i])
    typed = take_rows(typed, keep)
    # the rows a line too short or too long still shows the key of are listed too (best effort)
    listed = {k for k in key if k} | {fields[key_at].strip() for fields in (t.split(";") for t in bad_lines.values())
                                      if len(fields) > key_at and fields[key_at].strip()}
    # keys trimmed in raw so merges match whatever spacing the export used
    return typed.set_column(typed.column_names.index(spec.key), spec.key,
                            pc.utf8_trim_whitespace(typed.column(spec.key))
                            if pa.types.is_string(typed.column(spec.key).type) else typed.column(spec.key)), listed


def _file_rows(path: Path, spec: FileSpec, collector: Collector, encoding: str, full: bool,
               now: dt.datetime) -> Iterator[pa.Table]:
    """The file's good rows, unless the very same file was loaded before (its SHA-256 is kept in
    the resource's dlt state, committed with the load): an unchanged export loads 0 rows.
    ``full``: the file lists every row, so the rows raw holds that it no longer lists come back
    marked deleted (:func:`connectors.base.unlisted_rows`)."""
    state = dlt.current.resource_state()
    pipeline = dlt.current.pipeline()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    stored = dlt.current.source_schema().tables.get(spec.entity, {}).get("columns", {})
    # a raw table loaded before the deletion mark existed is read again once, to gain it
    if state.get("sha256") == digest and (not stored or RAW_DELETED_AT in stored):
        log.info("associations: %s unchanged since the last load, skipped", spec.file)
        return
    table, listed = read_file(path, spec, collector, encoding)
    table = mark_listed(table)
    if full:
        gone = unlisted_rows(pipeline, SYSTEM, spec.entity, [spec.key], {(k,) for k in listed}, table.schema, now)
        collector.deleted[spec.entity] = gone.num_rows
        table = pa.concat_tables([table, gone])
    state["sha256"] = digest
    yield table


def configure(params: Mapping[str, Any], secret: Callable[[str], str]) -> dict[str, Any]:
    """:func:`source` keyword arguments from the source's settings: ``drop_dir``, ``encoding`` (default
    ``auto``) and ``export`` (default ``full``: each drop lists every row, rows it no longer lists
    are deleted; ``incremental``: rows are only added or changed)."""
    try:
        export = export_mode(params.get("export", "full"), "associations")
    except ValueError as e:
        raise SourceError(SYSTEM, "settings", str(e)) from None
    return {"drop_dir": Path(params["drop_dir"]), "encoding": str(params.get("encoding", "auto")),
            "export": export}


@dlt.source(name=SYSTEM)
def source(collector: Collector, drop_dir: Path, encoding: str = "auto", export: str = "full") -> Any:
    """The three CSVs of ``drop_dir``, their good rows merged on each file's key.

    A missing file or header raises :class:`SourceError`; bad rows are quarantined, never fatal.
    A file identical to the one loaded last time is skipped (0 rows read). ``export = "full"``:
    rows an export no longer lists are kept in raw marked deleted (``_deleted_at``), counted as
    deleted; staging gives the person record its ``deleted_at`` and drops the others.
    Run it with :func:`connectors.runner.run_source`.
    """
    drop_dir = Path(drop_dir)
    now = dt.datetime.now(dt.UTC)
    for spec in FILES:  # fail before extracting anything when the drop is incomplete
        if not (drop_dir / spec.file).is_file():
            raise SourceError(SYSTEM, spec.file, "file missing from the drop folder")
    resources = []
    for spec in FILES:
        # a key is loaded once per file (later lines of a key are quarantined as duplicate_key)
        r = unique_in_run(dlt.resource(_file_rows(drop_dir / spec.file, spec, collector, encoding, export == "full",
                                                  now), name=spec.entity, primary_key=spec.key,
                                       write_disposition="merge"))
        r.add_step(Guard(collector, spec.entity, lambda row, s=spec: f"{s.file}:{s.key}={row.get(s.key)}",
                         count_read=False))
        resources.append(r)
    return resources


def translate(e: Exception, config: Mapping[str, Any]) -> SourceError:
    """Where it failed (the drop folder) and the kinds of error, never their messages."""
    return load_failed(SYSTEM, Path(config["drop_dir"]).name)(e)
