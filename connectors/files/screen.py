"""Typing and checking a file's rows, column-wise: masks, never a loop over rows.

Every check yields a boolean mask; a row takes the first reason that applies (in the order
below), and only the rows set aside are turned into Python objects (their quarantine payload).

Order: missing key, national id, required value, type (date, decimal, ...), pattern / enum /
length / range / identifier check, one-of-required, then duplicate key (first line wins).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.files.mapping import ColumnSpec, EntitySpec
from connectors.files.read import RawFile
from connectors.identifiers import CHECKS, national_id_rows, string_buffers

SPACES = "[ \u00a0\u202f]"
NATIONAL_ID_REASON = "a national identification number (NIR / national register) may not be stored"


@dataclass
class Screened:
    """One file after screening: its good rows typed, and what was set aside."""

    name: str
    good: pa.Table  # typed, raw names, plus _source_file / _source_line
    rows_read: int
    bad: list[dict[str, Any]] = field(default_factory=list)  # locator, field, reason_code, reason, payload


def _key_of_unsplit(text: str, header: tuple[str, ...], entity: EntitySpec) -> tuple[str, ...] | None:
    """The key a line with too few or too many fields still shows, read at the header's key
    positions (best effort): the row is in the export still, so a full export must not take it for
    deleted. None when a key field is beyond the line's fields or empty."""
    import csv

    try:
        at = [header.index(k) for k in entity.key]
        fields = next(csv.reader([text], delimiter=entity.delimiter, quotechar=entity.quote), [])
    except (ValueError, csv.Error):
        return None
    key = tuple(fields[i].strip() if i < len(fields) else "" for i in at)
    return key if all(key) else None


def arrow_type(c: ColumnSpec) -> pa.DataType:
    return {"text": pa.string(), "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"),
            "decimal": pa.decimal128(18, c.scale), "int": pa.int64(), "bool": pa.bool_()}[c.type]


def _np(mask: Any) -> np.ndarray:
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks() if mask.num_chunks else pa.array([], pa.bool_())
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


# ---------------------------------------------------------------------------- typed casts
def _date_regex(fmt: str, strict: bool) -> str:
    out, i = [], 0
    day_month = r"\d{2}" if strict else r"\d{1,2}"
    while i < len(fmt):
        for token, group in (("yyyy", r"(?P<y>\d{4})"), ("dd", rf"(?P<d>{day_month})"), ("mm", rf"(?P<m>{day_month})")):
            if fmt.startswith(token, i):
                out.append(group)
                i += len(token)
                break
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return "^" + "".join(out) + "$"


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm), vectorised."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _fixed_width_date(values: pa.Array, fmt: str, todo: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Values among ``todo`` written exactly as ``fmt`` with two-digit days and months (every byte a
    digit where the format has a token, the format's character elsewhere), read from the bytes:
    (hit mask, years, months, days); the same values as the strict regex, without a call per value."""
    n = len(values)
    offsets, data = string_buffers(values)
    hit = todo & (np.diff(offsets) == len(fmt))
    y, m, d = (np.zeros(n, np.int64) for _ in range(3))
    idx = np.flatnonzero(hit)
    if not len(idx):
        return hit, y, m, d
    starts = offsets[:-1][idx]
    number = {"y": np.zeros(len(idx), np.int64), "m": np.zeros(len(idx), np.int64), "d": np.zeros(len(idx), np.int64)}
    ok = np.ones(len(idx), bool)
    for pos, ch in enumerate(fmt):
        byte = data[starts + pos]
        if ch in "ymd":
            digit = byte.astype(np.int64) - 48
            ok &= (digit >= 0) & (digit <= 9)
            number[ch] = number[ch] * 10 + digit
        else:
            ok &= byte == ord(ch)
    hit[idx[~ok]] = False
    for arr, key in ((y, "y"), (m, "m"), (d, "d")):
        arr[idx] = number[key]
    return hit, y, m, d


def cast_date(values: pa.Array, formats: tuple[str, ...]) -> tuple[pa.Array, np.ndarray]:
    """Dates in any of the formats (dd / mm / yyyy tokens); bad = present but not a real date
    (31/02/2020 and 2020-13-01 are bad, not shifted). Day and month may have one digit."""
    n = len(values)
    y = np.zeros(n, np.int64)
    m = np.zeros(n, np.int64)
    d = np.zeros(n, np.int64)
    matched = np.zeros(n, bool)
    present = ~_np(pc.is_null(values))
    for fmt in formats:
        if not (present & ~matched).any():
            break
        # fixed width first, on the bytes (fast); then 1-digit days / months by regex on what is left
        if fmt.isascii():
            hit, fy, fm, fd = _fixed_width_date(values, fmt, present & ~matched)
            y[hit], m[hit], d[hit] = fy[hit], fm[hit], fd[hit]
            matched |= hit
        else:
            _regex_date(values, _date_regex(fmt, strict=True), present & ~matched, y, m, d, matched)
        _regex_date(values, _date_regex(fmt, strict=False), present & ~matched, y, m, d, matched)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)[np.clip(m, 0, 12)]
    dim = dim + ((m == 2) & leap)
    ok = matched & (m >= 1) & (m <= 12) & (d >= 1) & (d <= dim) & (y >= 1)
    days = np.where(ok, _days_from_civil(y, m, d), 0).astype(np.int32)
    typed = pa.array(days, pa.date32(), mask=~ok)
    return typed, present & ~ok


def _regex_date(values: pa.Array, rx: str, todo: np.ndarray, y: np.ndarray, m: np.ndarray, d: np.ndarray,
                matched: np.ndarray) -> None:
    """Read the values among ``todo`` that match ``rx`` (named groups y, m, d) into y / m / d."""
    idx = np.flatnonzero(todo)
    if not len(idx):
        return
    sub = values.take(pa.array(idx))
    hit = _np(pc.match_substring_regex(sub, rx))
    if not hit.any():
        return
    parts = pc.extract_regex(sub.filter(pa.array(hit)), rx)
    rows = idx[hit]
    for arr, key in ((y, "y"), (m, "m"), (d, "d")):
        arr[rows] = pc.cast(pc.struct_field(parts, key), pa.int64()).to_numpy(zero_copy_only=False)
    matched[rows] = True


_TS = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$"


def cast_timestamp(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """ISO 8601 timestamps; without an offset they are taken as UTC."""
    n = len(values)
    shaped = _np(pc.match_substring_regex(values, _TS))
    out: list[Any] = [None] * n
    ok = np.zeros(n, bool)
    import datetime as dt

    idx = np.flatnonzero(shaped)
    for i, v in zip(idx, values.filter(pa.array(shaped)).to_pylist(), strict=True):
        try:
            t = dt.datetime.fromisoformat(v.replace(" ", "T", 1) if len(v) > 10 else v)
        except ValueError:
            continue
        out[i] = t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
        ok[i] = True
    present = ~_np(pc.is_null(values))
    return pa.array(out, pa.timestamp("us", tz="UTC")), present & ~ok


def _number_text(values: pa.Array, entity: EntitySpec, scale: int | None) -> tuple[pa.Array, np.ndarray]:
    """Numbers as plain ``-1234.5`` text; shaped = written in the mapping's convention (grouping
    with the thousands separator, decimal mark with at most ``scale`` places (None: an integer);
    optionally (1 234,50) for a negative amount)."""
    v = values
    neg = np.zeros(len(v), bool)
    if entity.negative_parentheses:
        neg = _np(pc.match_substring_regex(v, r"^\(.*\)$"))
        if neg.any():
            v = pc.replace_substring_regex(v, r"^\((.*)\)$", r"\1")
    sep = {"": None, " ": SPACES, ".": r"\.", "'": "['’]", ",": ","}[entity.thousands]
    mark = re.escape(entity.decimal_mark)
    integer = rf"(\d{{1,3}}({sep}\d{{3}})+|\d+)" if sep else r"\d+"
    fraction = "" if scale is None else rf"({mark}\d{{1,{scale}}})?"
    sign = "" if entity.negative_parentheses and neg.any() else "[+-]?"
    shaped = _np(pc.match_substring_regex(v, rf"^{sign}{integer}{fraction}$"))
    if entity.negative_parentheses and neg.any():
        shaped |= neg & _np(pc.match_substring_regex(v, rf"^{integer}{fraction}$"))
        shaped &= ~(neg & _np(pc.starts_with(v, "-")))  # (-5) is not a convention
        shaped |= ~neg & _np(pc.match_substring_regex(v, rf"^[+-]?{integer}{fraction}$"))
    if sep:
        for ch in {" ": (" ", "\u00a0", "\u202f"), "'": ("'", "’")}.get(entity.thousands, (entity.thousands,)):
            if pc.any(pc.match_substring(v, ch)).as_py():
                v = pc.replace_substring(v, ch, "")
    if entity.decimal_mark != ".":
        v = pc.replace_substring(v, entity.decimal_mark, ".")
    if neg.any():
        v = pc.if_else(pa.array(neg), pc.binary_join_element_wise("-", v, ""), v)
    shaped &= _np(pc.less_equal(pc.utf8_length(v), 19))  # 18 digits, a sign and a point at most
    return v, shaped


def cast_decimal(values: pa.Array, c: ColumnSpec, entity: EntitySpec) -> tuple[pa.Array, np.ndarray]:
    """Decimals at the column's scale: more decimal places than the scale is bad, never rounded."""
    v, shaped = _number_text(values, entity, c.scale)
    point = pc.find_substring(v, ".")
    whole = pc.if_else(pc.less(point, 0), pc.utf8_length(v), point)  # sign included: one digit spare
    shaped &= _np(pc.less_equal(whole, 18 - c.scale))
    return _cast_where(v, shaped, pa.decimal128(18, c.scale), values)


def cast_int(values: pa.Array, entity: EntitySpec) -> tuple[pa.Array, np.ndarray]:
    v, shaped = _number_text(values, entity, None)
    return _cast_where(v, shaped, pa.int64(), values)


def _cast_where(v: pa.Array, shaped: np.ndarray, target: pa.DataType, original: pa.Array
                ) -> tuple[pa.Array, np.ndarray]:
    clean = pc.if_else(pa.array(shaped), v, pa.scalar(None, pa.string()))
    typed = clean.cast(target)
    present = ~_np(pc.is_null(original))
    return typed, present & ~shaped


def cast_bool(values: pa.Array, c: ColumnSpec) -> tuple[pa.Array, np.ndarray]:
    low = pc.utf8_lower(values)
    t = _np(pc.is_in(low, pa.array([x.lower() for x in c.true_values])))
    f = _np(pc.is_in(low, pa.array([x.lower() for x in c.false_values])))
    present = ~_np(pc.is_null(values))
    typed = pa.array(np.where(t, True, False), pa.bool_(), mask=~(t | f))
    return typed, present & ~(t | f)


# ---------------------------------------------------------------------------- screening
@dataclass
class _Reasons:
    n: int
    assigned: np.ndarray = field(init=False)
    code: list[tuple[str, str]] = field(default_factory=list)  # (reason_code, reason) table
    which: np.ndarray = field(init=False)  # index into code, per row
    field_of: np.ndarray = field(init=False)  # field label per row (object array)

    def __post_init__(self) -> None:
        self.assigned = np.zeros(self.n, bool)
        self.which = np.full(self.n, -1, np.int64)
        self.field_of = np.empty(self.n, object)

    def add(self, mask: np.ndarray, field_label: str | None, reason_code: str, reason: str) -> None:
        new = mask & ~self.assigned
        if not new.any():
            return
        self.code.append((reason_code, reason))
        self.which[new] = len(self.code) - 1
        self.field_of[new] = field_label
        self.assigned |= new

    def add_each(self, rows: np.ndarray, field_label: str | None, reason_code: str, reasons: list[str]) -> None:
        """Rows (indices, not yet assigned) each with its own reason text."""
        for i, reason in zip(rows, reasons, strict=True):
            if not self.assigned[i]:
                self.code.append((reason_code, reason))
                self.which[i] = len(self.code) - 1
                self.field_of[i] = field_label
                self.assigned[i] = True


def _has_edge_space(values: pa.Array) -> bool:
    """Whether some value starts or ends with a byte that may be whitespace (a space, any ASCII
    control byte, any non-ASCII byte): when none does, trimming would change nothing."""
    offsets, data = string_buffers(values)
    lengths = np.diff(offsets)
    nonempty = lengths > 0
    if not nonempty.any():
        return False
    edges = np.concatenate((data[offsets[:-1][nonempty]], data[offsets[1:][nonempty] - 1]))
    return bool(((edges <= 32) | (edges >= 0x80)).any())


def _key_codes(columns: list[pa.Array]) -> np.ndarray:
    """One integer per row, equal for rows with equal key values (each column dictionary-encoded)."""
    codes = [pc.dictionary_encode(c).indices.to_numpy(zero_copy_only=False).astype(np.int64) for c in columns]
    if len(codes) == 1:
        return codes[0]
    return np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)[1].reshape(-1)


def screen(raw: RawFile, entity: EntitySpec) -> Screened:
    """Type and check one file's rows; quarantine entries name file:line and the field."""
    table = raw.table
    n = table.num_rows
    labels = {c.name: c.label for c in entity.columns.values()}
    # '' is no value; columns that are typed, keyed or checked are compared trimmed (plain text
    # columns keep the source's spacing: staging trims)
    checked = {entity.columns[k].name for k in entity.key} | {
        c.name for c in entity.columns.values()
        if c.type != "text" or c.required or c.pattern or c.enum is not None or c.max_length is not None
        or c.check} | {entity.columns[k].name for g in entity.one_of_required for k in g}
    text: dict[str, pa.Array] = {}
    trimmed: dict[str, pa.Array] = {}
    null = pa.scalar(None, pa.string())
    for name in table.column_names:
        col = table.column(name).combine_chunks() if n else pa.array([], pa.string())
        if name in checked:
            t = pc.utf8_trim_whitespace(col) if _has_edge_space(col) else col
            empty = pc.equal(t, "")
            text[name] = pc.if_else(empty, null, col)
            trimmed[name] = pc.if_else(empty, null, t)
        else:
            text[name] = trimmed[name] = pc.if_else(pc.equal(col, ""), null, col)
    for c in entity.columns.values():  # columns the header may lack: read as empty
        if c.name not in text:
            text[c.name] = trimmed[c.name] = pa.nulls(n, pa.string())
    r = _Reasons(n)
    for label in entity.key:
        r.add(_np(pc.is_null(trimmed[entity.columns[label].name])), label, "missing_key", "the key is empty")
    # a value that parses as a date or a boolean cannot hold a national id: scan the others
    scan = [c.name for c in entity.columns.values()
            if c.type in ("text", "decimal", "int") and c.name in table.column_names]
    nid = national_id_rows(pa.table({name: text[name] for name in scan})) if n and scan else {}
    if nid:
        # group the rows by the column the id was found in, keeping the masks vectorised
        by_col: dict[str, list[int]] = {}
        for i, col in nid.items():
            by_col.setdefault(col, []).append(i)
        for col, idx in by_col.items():
            mask = np.zeros(n, bool)
            mask[idx] = True
            r.add(mask, labels.get(col, col), "national_id", NATIONAL_ID_REASON)
    for c in entity.columns.values():
        if c.required:
            r.add(_np(pc.is_null(trimmed[c.name])), c.label, "required", "a value is required")
    typed: dict[str, pa.Array] = {}
    for c in entity.columns.values():
        v = trimmed[c.name]
        if c.type == "text":
            # key columns are stored trimmed so merges match whatever padding an export used
            typed[c.name] = trimmed[c.name] if c.label in entity.key else text[c.name]
            continue
        if c.type == "date":
            out, bad = cast_date(v, entity.date_formats + (("yyyy-mm-dd",) if entity.format == "xlsx" else ()))
            r.add(bad, c.label, "bad_date", f"not a date ({' or '.join(entity.date_formats)} expected)")
        elif c.type == "timestamp":
            out, bad = cast_timestamp(v)
            r.add(bad, c.label, "bad_timestamp", "not an ISO 8601 timestamp")
        elif c.type == "decimal":
            out, bad = cast_decimal(v, c, entity)
            r.add(bad, c.label, "bad_decimal", f"not a decimal number (mark {entity.decimal_mark!r}, "
                  f"at most {c.scale} decimal places)")
        elif c.type == "int":
            out, bad = cast_int(v, entity)
            r.add(bad, c.label, "bad_integer", "not an integer")
        else:
            out, bad = cast_bool(v, c)
            r.add(bad, c.label, "bad_boolean", f"not one of {', '.join(c.true_values + c.false_values)}")
        typed[c.name] = out
    for c in entity.columns.values():
        v = trimmed[c.name]
        if c.pattern:
            r.add(~_np(pc.match_substring_regex(v, f"^(?:{c.pattern})$")) & ~_np(pc.is_null(v)), c.label,
                  "pattern", "does not match the expected pattern")
        if c.enum is not None:
            r.add(~_np(pc.is_in(v, pa.array(list(c.enum)))) & ~_np(pc.is_null(v)), c.label, "enum",
                  "not one of the allowed values")
        if c.max_length is not None:
            r.add(_np(pc.greater(pc.utf8_length(v), c.max_length)), c.label, "too_long",
                  f"longer than {c.max_length} characters")
        if (c.minimum is not None or c.maximum is not None) and c.type in ("decimal", "int"):
            num = pc.cast(typed[c.name], pa.float64())
            if c.minimum is not None:
                r.add(_np(pc.less(num, float(c.minimum))), c.label, "out_of_range", f"below {c.minimum}")
            if c.maximum is not None:
                r.add(_np(pc.greater(num, float(c.maximum))), c.label, "out_of_range", f"above {c.maximum}")
        if c.check:
            fn, code, message = CHECKS[c.check]
            r.add(~_np(fn(v)) & ~_np(pc.is_null(v)), c.label, code, message)
    for group in entity.one_of_required:
        none = np.ones(n, bool)
        for label in group:
            none &= _np(pc.is_null(trimmed[entity.columns[label].name]))
        r.add(none, group[0], "one_of_required", f"one of {', '.join(group)} is required")
    # duplicate keys among the rows still good: the first line wins, deterministically
    good_idx = np.flatnonzero(~r.assigned)
    if len(good_idx) > 1:
        codes = _key_codes([trimmed[nm].take(pa.array(good_idx)) for nm in entity.key_names])
        _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        if len(first) < len(codes):
            keeper = first[inverse]  # per good row: the position of the first row with its key
            dup = np.flatnonzero(keeper != np.arange(len(codes)))
            first_line = raw.lines[good_idx[keeper[dup]]]
            r.add_each(good_idx[dup], entity.key[0], "duplicate_key",
                       [f"same key as line {int(line)} (the first one is kept)" for line in first_line])
    bad_rows: list[dict[str, Any]] = []
    bad_idx = np.flatnonzero(r.assigned)
    if len(bad_idx):
        payloads = table.take(pa.array(bad_idx)).rename_columns(
            [labels.get(nm, nm) for nm in table.column_names]).to_pylist()
        for i, payload in zip(bad_idx, payloads, strict=True):
            code, reason = r.code[r.which[i]]
            bad_rows.append({"locator": f"{raw.name}:{int(raw.lines[i])}", "field": r.field_of[i],
                             "reason_code": code, "reason": reason, "payload": payload})
    for line, text_row, k in raw.invalid:
        # a row that cannot be split cannot have its forbidden column cut out: keep none of its text
        bad_rows.append({"locator": f"{raw.name}:{line}", "field": None, "reason_code": "wrong_column_count",
                         "reason": f"{k} fields where the header has {raw.width}"
                         + (" (text withheld: the file has a forbidden identifier column)" if raw.forbidden else ""),
                         "payload": None if raw.forbidden else text_row,
                         "listed_key": _key_of_unsplit(text_row, raw.header, entity)})
    keep = pa.array(~r.assigned)
    good = pa.table({c.name: typed[c.name].filter(keep) if len(bad_idx) else typed[c.name]
                     for c in entity.columns.values()})
    lines = raw.lines[~r.assigned]
    good = good.append_column("_source_file", pa.array([raw.name], pa.string()).take(
        pa.array(np.zeros(len(lines), np.int64))))
    good = good.append_column("_source_line", pa.array(lines, pa.int64()))
    return Screened(raw.name, good, n + len(raw.invalid), bad_rows)
