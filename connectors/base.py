"""What every connector shares: errors, run results, quarantine, the national-id guard, typed casts.

Nothing here logs or raises a source value: messages name the source, the locator (file:line,
collection/page, table:key) and the field, never what the field held.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.items_transform import ItemTransform

from connectors.identifiers import (  # noqa: F401  (re-exported: every connector's guard)
    NATIONAL_ID_COLUMNS,
    contains_national_id,
    digit_counts,
    is_national_id_column,
    mask_national_ids,
    national_id_rows,
    national_id_spans,
    string_buffers,
)
from schemas.contract import QUARANTINE, RAW_DELETED_AT, arrow_schema

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------- the source's name
# A connector package is a *kind* of system (its ``SYSTEM``); a configured source has a name, and
# the name is what the warehouse knows it by: ``raw_<name>``, ``source_system``, keys ``<name>:…``.
# Two finance databases are two sources of kind ``finance`` (``compta``, ``regie``) and coexist.
# The hub sets the name around a source's run (:func:`stored_as`); pipelines, counts and
# errors take it from there, so a connector needs no parameter for it.
_SOURCE_NAME: contextvars.ContextVar[str | None] = contextvars.ContextVar("hub_source_name", default=None)


@contextlib.contextmanager
def stored_as(name: str) -> Iterator[None]:
    """Within the block, a connector's rows are stored under the source name ``name``."""
    token = _SOURCE_NAME.set(name)
    try:
        yield
    finally:
        _SOURCE_NAME.reset(token)


def system_name(system: str) -> str:
    """The name a connector of kind (or mapping system) ``system`` stores its rows under now."""
    return _SOURCE_NAME.get() or system


# ---------------------------------------------------------------------------- errors and results
class SourceError(Exception):
    """A source could not be read. The message names where, never the value."""

    def __init__(self, source_system: str, locator: str, message: str, field: str | None = None):
        self.source_system = system_name(source_system)
        self.locator = locator
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.locator}, field {self.field}" if self.field else self.locator
        return f"{self.source_system}: {where}: {self.message}"


@dataclass(frozen=True)
class EntityCount:
    """Rows of one source entity in one run (rows_read = rows_loaded + rows_quarantined).
    ``rows_deleted``: rows a full export no longer lists, marked deleted in raw (not read).
    ``rows_recovered``: rows of a load package an aborted run left, loaded by this run."""

    entity: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_deleted: int = 0
    rows_recovered: int = 0


@dataclass
class ExtractResult:
    """What a connector's ``load`` did: per-entity counts and the rows it set aside."""

    source_system: str
    counts: list[EntityCount]
    quarantine: pa.Table
    recovered_from: list[str] = field(default_factory=list)  # load ids of packages an aborted run left

    def count(self, entity: str) -> EntityCount:
        for c in self.counts:
            if c.entity == entity:
                return c
        raise KeyError(f"{self.source_system} has no entity {entity!r} in this run")


@dataclass
class Collector:
    """Counts and quarantined rows gathered while a pipeline extracts (one per run)."""

    run_id: str
    source_system: str
    entities: Iterable[str] = ()
    read: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, int] = field(default_factory=dict)
    recovered_from: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.source_system = system_name(self.source_system)
        for e in self.entities:
            self.read.setdefault(e, 0)
            self.quarantined.setdefault(e, 0)

    def add_read(self, entity: str, n: int) -> None:
        self.read[entity] = self.read.get(entity, 0) + n
        self.quarantined.setdefault(entity, 0)

    def quarantine(self, entity: str, locator: str, field_name: str | None, reason_code: str, reason: str,
                   payload: Mapping[str, Any] | str | None, *, counted: bool = True) -> None:
        """Set one row aside. The payload is masked for national ids before it is kept.

        ``counted=False``: a note on a row that *is* loaded (a bad field set to null, reason code
        ``nulled_<reason>``), kept with the quarantined rows but not counted among them."""
        if counted:
            self.quarantined[entity] = self.quarantined.get(entity, 0) + 1
        self.read.setdefault(entity, 0)
        self.rows.append({
            "run_id": self.run_id,
            "source_system": self.source_system,
            "entity": entity,
            "stage": "extract",
            "locator": mask_national_ids(locator),
            "field": field_name,
            "reason_code": reason_code,
            "reason": reason,
            "payload": payload_json(payload),
            "quarantined_at": dt.datetime.now(dt.UTC),
        })

    def result(self) -> ExtractResult:
        for e in self.recovered:  # a table only an aborted run's package held still gets its line
            self.read.setdefault(e, 0)
        counts = [
            EntityCount(e, self.read[e], self.read[e] - self.quarantined.get(e, 0), self.quarantined.get(e, 0),
                        self.deleted.get(e, 0), self.recovered.get(e, 0))
            for e in self.read
        ]
        return ExtractResult(self.source_system, counts, quarantine_table(self.rows), list(self.recovered_from))


def quarantine_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows shaped as schemas.contract.QUARANTINE, as Arrow."""
    return pa.Table.from_pylist(rows, schema=arrow_schema(QUARANTINE))


def payload_json(payload: Mapping[str, Any] | str | None) -> str | None:
    """The row as JSON text, national ids masked (so a quarantined row never carries one)."""
    if payload is None:
        return None
    if isinstance(payload, str):
        return json.dumps({"_raw": mask_national_ids(payload)}, ensure_ascii=False)
    clean = {k: (mask_national_ids(v) if isinstance(v, str) else v) for k, v in payload.items()
             if not is_national_id_column(k)}
    return json.dumps(clean, ensure_ascii=False, default=_json_default)


def _json_default(v: Any) -> Any:
    if isinstance(v, (dt.date, dt.datetime, dt.time)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


# ---------------------------------------------------------------------------- national ids
# The screen itself (shapes, the settings' patterns and column names) lives in connectors.identifiers;
# what every connector shares is re-exported here.


def drop_national_id_columns(table: pa.Table) -> pa.Table:
    drop = [n for n in table.column_names if is_national_id_column(n)]
    if drop:
        log.info("dropping %d national-id column(s) at extraction", len(drop))
        table = table.drop_columns(drop)
    return table


# ---------------------------------------------------------------------------- typed casts
@dataclass(frozen=True)
class Cast:
    """How one text column becomes typed: kind is date_dmy, date_iso, timestamp_iso, decimal_comma,
    decimal, int or bool; message is the human reason when a value does not convert."""

    kind: str
    reason_code: str
    message: str


_DEC = r"^-?\d+(\.\d+)?$"


def _prepare(arr: pa.ChunkedArray, kind: str) -> pa.ChunkedArray:
    arr = pc.utf8_trim_whitespace(arr)
    if kind == "date_dmy":
        ok = pc.match_substring_regex(arr, r"^\d{2}/\d{2}/\d{4}$")
        iso = pc.replace_substring_regex(arr, r"^(\d{2})/(\d{2})/(\d{4})$", r"\3-\2-\1")
        return pc.if_else(ok, iso, pa.scalar("bad", pa.string()))
    if kind == "decimal_comma":
        arr = pc.replace_substring_regex(arr, "[ \u00a0\u202f]", "")
        arr = pc.replace_substring(arr, ",", ".")
    if kind in ("decimal_comma", "decimal"):
        return pc.if_else(pc.match_substring_regex(arr, _DEC), arr, pa.scalar("bad", pa.string()))
    return arr


_TARGET = {
    "date_dmy": pa.date32(), "date_iso": pa.date32(), "timestamp_iso": pa.timestamp("us", tz="UTC"),
    "decimal_comma": pa.decimal128(14, 2), "decimal": pa.decimal128(14, 2), "int": pa.int64(),
    "bool": pa.bool_(),
}


def _strict_cast(arr: pa.ChunkedArray, target: pa.DataType) -> tuple[pa.ChunkedArray, list[int]]:
    """Cast, returning the indices that would not convert (Arrow's own messages hold the value)."""
    try:
        return arr.cast(target), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out: list[Any] = []
    bad: list[int] = []
    for i, v in enumerate(arr.to_pylist()):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(pa.array([v], pa.string()).cast(target)[0].as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out.append(None)
            bad.append(i)
    return pa.chunked_array([pa.array(out, target)]), bad


def cast_columns(table: pa.Table, casts: Mapping[str, Cast]) -> tuple[pa.Table, dict[int, tuple[str, Cast]]]:
    """Typed columns from text ones. Empty text becomes null; a value that does not convert marks its
    row bad: row index -> (first bad field, its cast), in column order."""
    bad: dict[int, tuple[str, Cast]] = {}
    for name in table.column_names:
        spec = casts.get(name)
        if spec is None:
            continue
        raw = table.column(name)
        if not (pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type)):
            raw = raw.cast(pa.string())
        raw = pc.if_else(pc.equal(pc.utf8_trim_whitespace(raw), ""), pa.scalar(None, pa.string()), raw)
        typed, failed = _strict_cast(_prepare(raw, spec.kind), _TARGET[spec.kind])
        for i in failed:
            bad.setdefault(i, (name, spec))
        table = table.set_column(table.column_names.index(name), name, typed)
    return table, bad


def take_rows(table: pa.Table, keep: list[int]) -> pa.Table:
    return table.take(pa.array(keep, pa.int64())) if len(keep) != table.num_rows else table


# ---------------------------------------------------------------------------- the guard step
class Guard(ItemTransform[Any, dict[str, Any]]):
    """A dlt pipe step placed after the incremental filter: turns each item into Arrow (via
    ``prepare``), counts what the source delivered, drops national-id columns and quarantines rows
    that carry a national id, so such a number never reaches a load package."""

    placement_affinity = 1.5  # after dlt's incremental (1) and limit (1.1): count what really loads

    def __init__(self, collector: Collector, entity: str, locate: Callable[[dict[str, Any]], str],
                 prepare: Callable[[Any], pa.Table] | None = None, count_read: bool = True) -> None:
        super().__init__(lambda item: item)
        self.collector = collector
        self.entity = entity
        self.locate = locate
        self.prepare = prepare
        self.count_read = count_read

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if self.prepare is not None:
            item = self.prepare(item)
        if isinstance(item, pa.RecordBatch):
            item = pa.Table.from_batches([item])
        if not isinstance(item, pa.Table):
            raise TypeError(f"{self.collector.source_system}: {self.entity}: expected Arrow data")
        if self.count_read:
            self.collector.add_read(self.entity, item.num_rows)
        item = drop_national_id_columns(item)
        hits = national_id_rows(item)
        if not hits:
            return item if item.num_rows else None
        for i, column in sorted(hits.items()):
            row = item.slice(i, 1).to_pylist()[0]
            self.collector.quarantine(self.entity, self.locate(row), column, "national_id",
                                      "a national identification number (NIR / national register) "
                                      "may not be stored", row)
        keep = [i for i in range(item.num_rows) if i not in hits]
        item = take_rows(item, keep)
        return item if item.num_rows else None


class KeysNotNull(ItemTransform[Any, Any]):
    """A dlt pipe step, last: an Arrow item's key columns declared not nullable, as the resource's
    primary key makes them in dlt's schema. Arrow marks every column nullable; dlt then warns at
    every item that "several column hints were different" (hundreds of times in a large load),
    a warning that says nothing to a data engineer. Keys holding a null are left as they are."""

    placement_affinity = 1.6  # after the Guard (1.5): on what really loads

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(lambda item: item)
        self.keys = list(keys)

    def __call__(self, item: Any, meta: Any = None) -> Any:
        if not isinstance(item, (pa.Table, pa.RecordBatch)):
            return item
        schema = item.schema
        for k in self.keys:
            i = schema.get_field_index(k)
            if i >= 0 and schema.field(i).nullable and item.column(i).null_count == 0:
                schema = schema.set(i, schema.field(i).with_nullable(False))
        if schema is item.schema:
            return item
        if isinstance(item, pa.RecordBatch):
            return pa.RecordBatch.from_arrays(item.columns, schema=schema)
        return pa.Table.from_arrays(item.columns, schema=schema)


def with_keys_not_null(resources: Any) -> Any:
    """``resources`` (a dlt source, a resource or a list of them) with :class:`KeysNotNull` on every
    resource that has a primary key."""
    items = resources.resources.values() if hasattr(resources, "resources") else (
        resources if isinstance(resources, (list, tuple)) else [resources])
    for r in items:
        try:
            columns = r.compute_table_schema().get("columns", {})
        except Exception:  # a table schema that depends on the items: nothing to declare ahead
            continue
        keys = [name for name, c in columns.items() if c.get("primary_key")]
        if keys:
            r.add_step(KeysNotNull(keys))
    return resources


# ---------------------------------------------------------------------------- full exports
EXPORTS = ("full", "incremental")


def export_mode(value: Any, where: str) -> str:
    """A source's (or mapping entity's) ``export`` setting: ``full`` (each export lists every
    row: a row it no longer lists was deleted in the silo) or ``incremental`` (new and changed
    rows only). ValueError naming ``where`` otherwise."""
    if value not in EXPORTS:
        raise ValueError(f"{where}: export must be \"full\" or \"incremental\", not {value!r}")
    return str(value)


def mark_listed(table: pa.Table) -> pa.Table:
    """An export's rows with the deletion mark column, null: the export lists them (a row deleted
    earlier and listed again is alive again: merge overwrites its mark)."""
    return table.append_column(RAW_DELETED_AT, pa.nulls(table.num_rows, pa.timestamp("us", tz="UTC")))


def _key_text(values: Iterable[Any]) -> list[str]:
    return ["" if v is None else str(v).strip() for v in values]


def unlisted_rows(pipeline: Any, system: str, table: str, key: Sequence[str], listed: Iterable[tuple[str, ...]],
                  like: pa.Schema, now: dt.datetime) -> pa.Table:
    """The rows ``raw_<system>.<table>`` holds alive whose key a full export no longer lists, as
    they were last loaded, with the deletion mark set to ``now`` (schema ``like``: the export's).

    ``listed``: the key of every row the export holds, loaded or quarantined (a row set aside for
    a bad date is in the silo still), each as trimmed text. Merged back into raw, they keep what
    the silo last said of the person, dated by the deletion: staging gives them ``deleted_at``.
    An export that lists no row while raw holds live ones is refused (a truncated export would
    delete everything): :class:`SourceError`."""
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            return like.empty_table()
        schema = client.fully_qualified_dataset_name(quote=False)
        have = {r[0] for r in client.execute_sql(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            schema, table)}
        if not have or not set(key) <= have:
            return like.empty_table()
        name = client.make_qualified_table_name(table)
        alive = f"{client.escape_column_name(RAW_DELETED_AT)} IS NULL" if RAW_DELETED_AT in have else "TRUE"
        cols = ", ".join(client.escape_column_name(k) for k in key)
        stored = client.execute_sql(f"SELECT {cols} FROM {name} WHERE {alive}") or []
        keys = [tuple(_key_text(r)) for r in stored]
        listed = set(listed)
        gone = [k for k in keys if k not in listed]
        if not gone:
            return like.empty_table()
        if not listed:
            raise SourceError(system, table, f"the export lists no row, where {len(keys):,} were loaded before: as "
                              "a full export it would delete them all (truncated or wrong file?); nothing loaded")
        wanted = [c for c in like.names if c in have and c != RAW_DELETED_AT]
        select = ", ".join(client.escape_column_name(c) for c in wanted)
        match = " AND ".join(f"TRIM(CAST({client.escape_column_name(k)} AS VARCHAR)) = %s" for k in key)
        rows: list[dict[str, Any]] = []
        for i in range(0, len(gone), 200):
            chunk = gone[i:i + 200]
            where = " OR ".join(f"({match})" for _ in chunk)
            for r in client.execute_sql(f"SELECT {select} FROM {name} WHERE ({where}) AND {alive}",
                                        *[v for k in chunk for v in k]) or []:
                rows.append(dict(zip(wanted, r, strict=True)))
    out = pa.Table.from_pylist(rows, schema=pa.schema([like.field(c) for c in wanted]))
    for i, f in enumerate(like):  # columns raw lacks (added to the export since): null
        if f.name not in out.column_names:
            value = now if f.name == RAW_DELETED_AT else None
            out = out.add_column(i, f, pa.array([value] * out.num_rows, f.type))
    return out.select(like.names)


def load_failed(system: str, locator: str) -> Callable[[Exception], SourceError]:
    """The plain translation: where it failed and the kinds of error, never their messages."""

    def translate(e: Exception) -> SourceError:
        kinds = ", ".join(sorted({type(x).__name__ for x in exception_chain(e)}))
        return SourceError(system, locator, f"load failed ({kinds})")

    return translate


def json_text(value: Any) -> str | None:
    """A JSON value as the text Arrow casts from: booleans as true/false, objects and lists as JSON."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _text_column(values: list[Any], text: Callable[[Any], str | None]) -> pa.Array:
    """Values as text. When they share one JSON scalar type (strings, integers or booleans, with
    nulls) Arrow converts them in one call, writing what ``json_text`` writes; otherwise (floats,
    objects, mixed types) each value goes through ``text``."""
    try:
        arr = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        arr = None
    if arr is not None:
        t = arr.type
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t) or pa.types.is_boolean(t):
            return arr.cast(pa.string())
        if pa.types.is_null(t):
            return pa.nulls(len(values), pa.string())
    return pa.array([text(v) for v in values], pa.string())


def text_table(rows: Sequence[Any], fields: Iterable[str], *, text: Callable[[Any], str | None] = json_text
               ) -> pa.Table:
    """One page of JSON records as an all-text Arrow table, built column by column: one column per
    field, named as the field; ``a__b`` reads key ``b`` of the object under ``a`` (dlt's flattened
    name). A missing key, or a record that is not an object, reads as null. ``text`` writes the
    values Arrow cannot convert by itself (see :func:`_text_column`)."""
    records = rows if all(isinstance(r, dict) for r in rows) else [r if isinstance(r, dict) else {} for r in rows]
    columns: dict[str, pa.Array] = {}
    for f in fields:
        head, *rest = f.split("__")
        values = [r.get(head) for r in records]
        for key in rest:
            values = [v.get(key) if isinstance(v, dict) else None for v in values]
        columns[f] = _text_column(values, text)
    return pa.table(columns)


def type_page(entity: str, table: pa.Table, fields: Mapping[str, Cast | None], key: str, where: str,
              collector: Collector, *, column: Callable[[str], str] | None = None) -> pa.Table:
    """A page's text table (from :func:`text_table`) typed (``fields``: name → Cast, or None for text).

    Counts the records read; a record without its ``key``, or with a value that does not convert,
    is quarantined with its place (``<where> item <n>`` / ``<where> <key>=<value>``), the field and
    the record's fields as payload. ``column`` renames fields to raw column names (e.g. snake_case).
    """
    collector.add_read(entity, table.num_rows)
    typed, bad = cast_columns(table, {f: s for f, s in fields.items() if s is not None})
    keys = table.column(key)
    missing = pc.fill_null(pc.equal(keys, ""), True)
    set_aside = sorted(set(bad) | set(np.flatnonzero(missing.to_numpy(zero_copy_only=False)).tolist()))
    for i in set_aside:
        record = table.slice(i, 1).to_pylist()[0]
        if record[key] in (None, ""):
            collector.quarantine(entity, f"{where} item {i + 1}", key, "missing_key", f"the record has no {key}",
                                 record)
        else:
            field_name, cast = bad[i]
            collector.quarantine(entity, f"{where} {key}={record[key]}", field_name, cast.reason_code, cast.message,
                                 record)
    if set_aside:
        typed = take_rows(typed, sorted(set(range(table.num_rows)) - set(set_aside)))
    # the key is never null here: say so, as dlt's schema does for a primary key (else dlt warns of
    # "several column hints were different" once per page: hundreds of times on a large load)
    i = typed.schema.get_field_index(key)
    typed = typed.cast(typed.schema.set(i, typed.schema.field(i).with_nullable(False)))
    return typed.rename_columns([column(f) for f in typed.column_names]) if column else typed


class PageText(ItemTransform[Any, pa.Table]):
    """A dlt pipe step placed before the incremental filter: each page of JSON records becomes an
    all-text Arrow table (:func:`text_table`), so that dlt's incremental filters it column-wise
    instead of record by record; the cursor keeps the source's text, as the incremental state has
    it. ``page`` counts the pages seen, for locators. Typing is left to the :class:`Guard` after the
    filter (:func:`type_page`), so counts and quarantine cover only what really loads."""

    placement_affinity = 0.5  # before dlt's incremental (1)

    def __init__(self, fields: Iterable[str], *, text: Callable[[Any], str | None] = json_text) -> None:
        super().__init__(lambda item: item)
        self.fields = list(fields)
        self.text = text
        self.page = 0

    def __call__(self, item: Any, meta: Any = None) -> pa.Table:
        self.page += 1
        return text_table(item if isinstance(item, list) else [item], self.fields, text=self.text)


def add_page_steps(resource: Any, collector: Collector, entity: str, fields: Mapping[str, Cast | None], key: str,
                   pages_of: str, locate: Callable[[dict[str, Any]], str], *,
                   text: Callable[[Any], str | None] = json_text, column: Callable[[str], str] | None = None,
                   adjust: Callable[[pa.Table], pa.Table] | None = None) -> None:
    """The steps every HTTP resource takes: its pages as text before dlt's incremental
    (:class:`PageText`), then, after it, typed and quarantined (:func:`type_page`, locators
    ``<pages_of> <n>``, ``adjust`` applied to the text first) and guarded (:class:`Guard`)."""
    pages = PageText(fields, text=text)

    def typed(table: pa.Table) -> pa.Table:
        return type_page(entity, adjust(table) if adjust else table, fields, key, f"{pages_of} {pages.page}",
                         collector, column=column)

    resource.add_step(pages)
    resource.add_step(Guard(collector, entity, locate, prepare=typed, count_read=False))


def json_page(system: str, locator: str, content: bytes, who: str, list_key: str | None = None) -> dict[str, Any]:
    """A page's JSON object, or a :class:`SourceError` naming the page: an HTML error page (even with
    status 200), truncated or malformed JSON, not an object, or no ``list_key`` list in it. The
    message never quotes the page (it may hold personal data)."""
    try:
        body = json.loads(content)
    except ValueError:
        kind = "an HTML page" if b"<html" in content[:512].lower() else "malformed or truncated JSON"
        raise SourceError(system, locator, f"{who} answered {kind}, not JSON") from None
    if not isinstance(body, dict):
        raise SourceError(system, locator, "the answer is not a JSON object")
    if list_key is not None and not isinstance(body.get(list_key), list):
        raise SourceError(system, locator, f"the answer has no '{list_key}' list")
    return body


def check_page(response: Any, system: str, locator: str, who: str, list_key: str | None = None) -> None:
    """:func:`json_page` on a response, in a response hook: the parsed page is then what
    ``response.json()`` returns, so dlt's rest_api (data selector, paginator) does not parse it again."""
    body = json_page(system, locator, response.content, who, list_key)
    response.json = lambda **_: body


def loader_file_format(destination: Any) -> str:
    """Arrow's fast path: parquet where the destination takes it (DuckDB), csv otherwise (PostgreSQL)."""
    formats = destination.capabilities().supported_loader_file_formats
    for f in ("parquet", "csv"):
        if f in formats:
            return f
    return destination.capabilities().preferred_loader_file_format


def exception_chain(e: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        chain.append(cur)
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    # dlt wraps step failures and keeps the original in `.exception`
    for x in list(chain):
        inner = getattr(x, "exception", None)
        if isinstance(inner, BaseException) and id(inner) not in seen:
            chain.extend(exception_chain(inner))
    return chain


def resource_name_of(e: BaseException) -> str | None:
    for x in exception_chain(e):
        name = getattr(x, "resource_name", None)
        if isinstance(name, str):
            return name
    return None
