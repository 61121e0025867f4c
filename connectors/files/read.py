"""Reading one dropped file into an all-text Arrow table, with each row's physical line number.

CSV goes through pyarrow.csv (one pass in C); XLSX through openpyxl in read-only mode, turned
into Arrow chunk by chunk. Nothing here looks at values beyond decoding and splitting them:
typing and checks are in ``connectors.files.screen``. Errors name the file, line and column.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectors.base import SourceError
from connectors.files.mapping import EntitySpec
from connectors.identifiers import is_national_id_column, looks_like_id_column

log = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"
XLSX_CHUNK = 50_000


@dataclass
class RawFile:
    """A file's rows as text, named by raw column names, blank rows already removed."""

    name: str  # the file's path relative to the drop folder (what locators say)
    table: pa.Table  # one string column per mapped column present in the header
    lines: np.ndarray  # physical line (CSV) or sheet row (XLSX) of each row, int64
    invalid: list[tuple[int, str, int]]  # (line, raw text, number of fields) of rows that could not be split
    width: int = 0  # fields in the header
    forbidden: int = 0  # columns of the header never read (national ids, the settings' forbidden names)
    header: tuple[str, ...] = ()  # the header's labels, in file order


# Byte order marks, longest first: Excel's "CSV UTF-8" writes the UTF-8 one, its "Unicode text"
# (tab-separated) the UTF-16 little-endian one.
BOMS = ((BOM, "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_SINGLE_BYTE = ("cp1252", "latin-1")


def resolve_encoding(data: bytes, declared: str) -> str:
    """``auto``: a BOM says the encoding (UTF-8 or UTF-16), valid UTF-8 means utf-8, anything else
    cp1252. A declared encoding is returned as it is (:func:`to_utf8` checks that it fits)."""
    if declared != "auto":
        return declared
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return encoding
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _where(data: bytes, offset: int, encoding: str, delimiter: str, header: list[str]) -> tuple[int, str]:
    """The physical line and the header label of the column a byte offset falls in (quotes
    ignored: a best effort), counted on the text as far as it decodes."""
    head = data[:offset].decode(encoding, errors="replace")
    line = head.count("\n") + head.count("\r") - head.count("\r\n") + 1
    index = head[max(head.rfind("\n"), head.rfind("\r")) + 1:].count(delimiter)
    return line, header[index] if index < len(header) else f"column {index + 1}"


def _rough_header(data: bytes, encoding: str, delimiter: str, quote: str) -> list[str]:
    """The header's labels, or none when it does not decode cleanly (then columns go by number)."""
    first = data[: 1 << 16].decode(encoding, errors="replace").lstrip("\ufeff")
    line = first.splitlines()[0] if first else ""
    if not line.isprintable():
        return []
    return [c.strip().strip(quote) for c in line.split(delimiter)]


def to_utf8(system: str, name: str, data: bytes, declared: str, delimiter: str = ";", quote: str = '"'
            ) -> tuple[bytes, str]:
    """A file's bytes as UTF-8 without BOM, and the encoding it was read as (``declared``: one of
    the mapping's encodings, ``auto`` to detect it: :func:`resolve_encoding`).

    Raises :class:`SourceError` naming the file, line, column and offending byte when the bytes do
    not decode, and when the declared encoding plainly is not the file's (a byte order mark of
    another, or a single-byte encoding declared for accented letters that only decode as UTF-8):
    read as cp1252, a UTF-8 file would load mojibake (``MASSONÃ‰``) without any row failing."""
    encoding = resolve_encoding(data, declared)
    bom = next((e for b, e in BOMS if data.startswith(b)), None)
    if bom and bom.removesuffix("-sig") != encoding.removesuffix("-sig"):
        wrong = f"starts with a byte order mark of {bom.removesuffix('-sig').upper()}"
    elif encoding in _SINGLE_BYTE and not data.isascii() and resolve_encoding(data, "auto") == "utf-8":
        wrong = "is UTF-8 (its accented letters only decode as UTF-8)"
    else:
        wrong = None
    if wrong:
        raise SourceError(system, f"{name}:1", f"the file {wrong}, but the source declares {encoding}: read so it "
                          f"would load garbled letters. Set its encoding to \"auto\" (or \"{bom or 'utf-8'}\")")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        header = _rough_header(data, encoding, delimiter, quote)
        line, column = _where(data, e.start, encoding, delimiter, header)
        raise SourceError(system, f"{name}:{line}", f"byte 0x{data[e.start]:02X} (offset {e.start}) is not valid "
                          f"{encoding}: the file is written in another encoding than the source declares "
                          "(try \"auto\")", field=column) from None
    if encoding.startswith("utf-8"):  # already UTF-8: no copy, a BOM is never part of the header
        return data.removeprefix(BOM), encoding
    return text.lstrip("\ufeff").encode("utf-8"), encoding


def _header(system: str, name: str, body: bytes, entity: EntitySpec) -> list[str]:
    first = body[: 1 << 16].decode("utf-8", errors="ignore")
    try:
        row = next(csv.reader(io.StringIO(first, newline=""), delimiter=entity.delimiter,
                              quotechar=entity.quote))
    except StopIteration:
        row = []
    if not row or all(not c.strip() for c in row):
        raise SourceError(system, f"{name}:1", "no header line (empty file)")
    return [c.strip() for c in row]


def check_header(system: str, name: str, header: list[str], entity: EntitySpec) -> list[str]:
    """The mapped labels present in the header; SourceError for a missing or unknown column."""
    seen: set[str] = set()
    for i, label in enumerate(header):
        if label in seen:
            raise SourceError(system, f"{name}:1", "column appears twice in the header", field=label)
        seen.add(label)
        if not label and entity.on_new_column == "error":
            raise SourceError(system, f"{name}:1", f"header cell {i + 1} is empty (merged or missing label)",
                              field=f"column {i + 1}")
    missing = [c.label for c in entity.columns.values() if c.label not in seen and not c.absent_ok]
    new = [h for h in header if h and h not in entity.columns and not is_national_id_column(h)]
    if missing:
        detail = f"; also new column(s) {', '.join(new)}" if new and entity.on_new_column == "error" else ""
        raise SourceError(system, f"{name}:1", f"mapped column missing from the header{detail}", field=missing[0])
    suspect = [h for h in new if looks_like_id_column(h)]
    if suspect and entity.on_new_column == "error":
        # never suggest mapping it: such a number is a forbidden identifier, not a column to load
        raise SourceError(system, f"{name}:1", "new column looks like a personal identification number: a "
                          "forbidden identifier, it will not be loaded (name it in the settings' [privacy] "
                          "forbidden_id_columns so that it is dropped unread)", field=suspect[0])
    if new and entity.on_new_column == "error":
        raise SourceError(system, f"{name}:1", "new column not in the mapping: the contract is frozen "
                          "(add it to the mapping, or set on_new_column = \"ignore\")", field=new[0])
    if new:
        log.info("%s: %s: %d column(s) not in the mapping, not loaded", system, name, len(new))
    dropped = [h for h in header if is_national_id_column(h)]
    if dropped:
        log.info("%s: %s: %d national-id column(s) never read", system, name, len(dropped))
    return [h for h in header if h in entity.columns]


def _newlines(arr: pa.ChunkedArray) -> np.ndarray:
    """Line breaks inside each value (CRLF, LF or CR each count once)."""
    def count(p: str) -> np.ndarray:
        return pc.fill_null(pc.count_substring(arr, p), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return count("\n") + count("\r") - count("\r\n")


def read_csv(system: str, path: Path, name: str, entity: EntitySpec) -> RawFile:
    """One CSV file as text columns (mapped ones only), physical line numbers, unsplittable rows."""
    data = path.read_bytes()
    if not data or data.isspace():  # (isspace stops at the first other byte: no copy of the file)
        raise SourceError(system, f"{name}:1", "no header line (empty file)")
    body, _ = to_utf8(system, name, data, entity.encoding, entity.delimiter, entity.quote)
    header = _header(system, name, body, entity)
    present = check_header(system, name, header, entity)
    if body.count(entity.quote.encode()) % 2:
        _check_quotes(system, name, body, entity)
    invalid: list[tuple[int, str, int]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    def parse(threads: bool) -> pa.Table:
        try:
            return pacsv.read_csv(
                io.BytesIO(body),
                read_options=pacsv.ReadOptions(use_threads=threads, block_size=1 << 22),
                parse_options=pacsv.ParseOptions(delimiter=entity.delimiter, quote_char=entity.quote,
                                                 newlines_in_values=True, invalid_row_handler=on_invalid,
                                                 ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(
                    include_columns=present, column_types={h: pa.string() for h in present},
                    strings_can_be_null=False, quoted_strings_can_be_null=False),
            )
        except pa.ArrowInvalid:
            # Arrow's parse messages quote the offending text: keep only where
            raise SourceError(system, name, f"not a readable CSV with delimiter {entity.delimiter!r}") from None

    table = parse(threads=True)
    if invalid:  # only a single-threaded parse numbers the rows it cannot split: parse again
        invalid.clear()
        table = parse(threads=False)
    # Physical lines: records are numbered from 1 (the header); a record spans 1 + its embedded breaks.
    n = table.num_rows
    records = n + len(invalid)
    extra = np.zeros(records + 1, np.int64)  # index = record number - 1
    is_invalid = np.zeros(records + 1, bool)
    for number, text, _ in invalid:
        if 1 <= number - 1 <= records:
            is_invalid[number - 1] = True
            extra[number - 1] = text.count("\n") + text.count("\r") - text.count("\r\n")
    parsed_slots = np.flatnonzero(~is_invalid[1:]) + 1
    if table.num_columns and entity.quote.encode() in body and any(
            pc.any(pc.match_substring(c, p)).as_py() for c in table.columns for p in ("\n", "\r")):
        extra[parsed_slots[:n]] = sum(_newlines(c) for c in table.columns)
    start = 1 + np.concatenate([[0], np.cumsum(extra + 1)])[:-1]  # first line of each record
    lines = start[parsed_slots[:n]]
    bad = [(int(start[number - 1]) if number - 1 <= records else number, text, k) for number, text, k in invalid]
    return _finish(name, table, lines, bad, entity, header)


def _check_quotes(system: str, name: str, body: bytes, entity: EntitySpec) -> None:
    """An odd number of quote characters may mean a quoted field runs to the end (truncated file)."""
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""), delimiter=entity.delimiter,
                        quotechar=entity.quote, strict=True)
    try:
        for _ in reader:
            pass
    except csv.Error:
        raise SourceError(system, f"{name}:{reader.line_num}", "a quoted field is never closed "
                          "(truncated file?)") from None


def _finish(name: str, table: pa.Table, lines: np.ndarray, invalid: list[tuple[int, str, int]],
            entity: EntitySpec, header: list[str]) -> RawFile:
    """Rename to raw names, drop blank rows (all values empty: not a row)."""
    table = table.rename_columns([entity.columns[h].name for h in table.column_names])
    if table.num_rows and table.num_columns:
        blank = pc.equal(table.column(0), "")
        for c in table.columns[1:]:
            blank = pc.and_(blank, pc.equal(c, ""))
        if pc.any(blank).as_py():
            keep = pc.invert(blank)
            table = table.filter(keep)
            lines = lines[keep.to_numpy(zero_copy_only=False)]
    return RawFile(name, table, lines, invalid, len(header), sum(map(is_national_id_column, header)), tuple(header))


# ---------------------------------------------------------------------------- XLSX
def _cell_text(v: Any, decimal_mark: str) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time(0) else v.isoformat()
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, float):
        s = repr(v)
        s = s[:-2] if s.endswith(".0") else s
        return s.replace(".", decimal_mark)
    if isinstance(v, int):
        return str(v)
    return str(v)


def read_xlsx(system: str, path: Path, name: str, entity: EntitySpec) -> RawFile:
    """One XLSX sheet as text columns: dates as ISO, numbers with the mapping's decimal mark, and
    formulas as the value Excel last computed (a formula never computed reads as empty)."""
    import zipfile

    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise SourceError(system, name, "not a readable XLSX workbook") from None
    try:
        if entity.sheet is not None and entity.sheet not in wb.sheetnames:
            raise SourceError(system, name, "the mapping's sheet is not in the workbook", field=entity.sheet)
        ws = wb[entity.sheet] if entity.sheet is not None else wb.worksheets[0]
        rows = ws.iter_rows(min_row=entity.header_row, values_only=True)
        first = next(rows, None)
        if first is None or all(v is None for v in first):
            raise SourceError(system, f"{name}:{entity.header_row}", "no header row (empty sheet)")
        header = [_cell_text(v, ".").strip() for v in first]
        while header and not header[-1]:
            header.pop()
        present = check_header(system, f"{name}", header, entity)
        index = {h: i for i, h in enumerate(header)}
        width = len(header)
        chunks: list[pa.Table] = []
        line_chunks: list[np.ndarray] = []
        invalid: list[tuple[int, str, int]] = []
        buf: list[list[str]] = [[] for _ in present]
        buf_lines: list[int] = []
        line = entity.header_row
        mark = entity.decimal_mark

        def flush() -> None:
            if buf_lines:
                chunks.append(pa.table({h: pa.array(buf[i], pa.string()) for i, h in enumerate(present)}))
                line_chunks.append(np.array(buf_lines, np.int64))
                for b in buf:
                    b.clear()
                buf_lines.clear()

        for row in rows:
            line += 1
            if any(v is not None and v != "" for v in row[width:]):
                cells = [_cell_text(v, mark) for v in row]
                while cells and not cells[-1]:
                    cells.pop()
                invalid.append((line, entity.delimiter.join(cells), len(cells)))
                continue
            for i, h in enumerate(present):
                j = index[h]
                buf[i].append(_cell_text(row[j], mark) if j < len(row) else "")
            buf_lines.append(line)
            if len(buf_lines) >= XLSX_CHUNK:
                flush()
        flush()
    finally:
        wb.close()
    table = (pa.concat_tables(chunks) if chunks
             else pa.table({h: pa.array([], pa.string()) for h in present}))
    lines = np.concatenate(line_chunks) if line_chunks else np.zeros(0, np.int64)
    return _finish(name, table, lines, invalid, entity, header)


def read_file(system: str, path: Path, name: str, entity: EntitySpec) -> RawFile:
    """One dropped file, by the entity's format."""
    if entity.format == "xlsx":
        return read_xlsx(system, path, name, entity)
    return read_csv(system, path, name, entity)
