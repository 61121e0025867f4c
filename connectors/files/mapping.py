"""Mapping files: a CSV / XLSX source described in TOML, checked before anything is read.

A mapping names the source system, and for each entity (one raw table) the files that feed it,
how they are written (format, encoding, delimiter, dates, decimals), their columns with types and
checks, the key, and the canonical tables it feeds (see docs/connectors.md for a full example).
Errors name the mapping file and the key at fault.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.base import EXPORTS, is_national_id_column
from connectors.identifiers import CHECKS
from schemas.contract import CANONICAL_TABLES, Table

ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1", "auto")
FORMATS = ("csv", "xlsx")
TYPES = ("text", "date", "timestamp", "decimal", "int", "bool")
DELIMITERS = {";": ";", ",": ",", "\t": "\t", "tab": "\t", "|": "|"}
THOUSANDS = {"": "", "none": "", " ": " ", "space": " ", ".": ".", "'": "'", ",": ","}
TRANSFORMS = ("trim", "upper", "lower")
NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_DATE_TOKENS = re.compile(r"dd|mm|yyyy")
CANONICAL = {t.name: t for t in CANONICAL_TABLES}
# contract fields that are `<source_system>:<id>` keys: a column mapped onto them gets the prefix
KEY_FIELDS = {"record_key", "interaction_key", "organisation_key", "household_id"}
_OWN_KEY = {"person_record": "record_key", "interaction": "interaction_key", "organisation": "organisation_key"}
# A role the mapping leaves out: the neutral one, to which no role-specific rule applies.
DEFAULT_ROLE = {"person_record": "personne", "household_membership": "membre"}
UNMAPPED = ("keep", "null", "quarantine")  # what a value map does with a value it does not list
ON_ERROR = ("quarantine", "null")  # a bad value sets the row aside, or only that field to null


class MappingError(ValueError):
    """The mapping file is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class ColumnSpec:
    """One source column: its header label, raw name (snake_case, as dlt stores it), type and checks."""

    label: str
    name: str
    type: str = "text"
    required: bool = False
    absent_ok: bool = False  # the header may lack it (read as empty)
    scale: int = 2
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    check: str | None = None  # siren, siret, rna, rna_or_old (connectors.identifiers.CHECKS)
    true_values: tuple[str, ...] = ("true", "1", "oui", "vrai", "yes", "o", "y")
    false_values: tuple[str, ...] = ("false", "0", "non", "faux", "no", "n")
    on_error: str = "quarantine"  # null: a bad value is set to null (and noted), the row loads


@dataclass(frozen=True)
class FieldSpec:
    """How one canonical field is produced: from a column, a constant, a concat, a coalesce, a
    reference to another entity's record, or a JSON object of columns; then transforms."""

    kind: str  # column, const, concat, coalesce, ref, json
    columns: tuple[str, ...] = ()  # labels
    value: Any = None
    sep: str = " "
    ref: str | None = None
    transforms: tuple[str, ...] = ()
    prefix: str = ""  # text put before the value (e.g. "beneficiaire/" in a source_id)
    # value map: (source value, canonical value) pairs, source values compared trimmed and
    # case-insensitively after the transforms; ``unmapped`` says what other values become
    value_map: tuple[tuple[str, str], ...] = ()
    unmapped: str = "keep"


@dataclass(frozen=True)
class Feed:
    table: str
    fields: dict[str, FieldSpec]
    one_per_key: bool = False  # several rows per canonical key (e.g. one organisation, many grants)


@dataclass(frozen=True)
class EntitySpec:
    name: str
    files: str
    format: str
    encoding: str
    delimiter: str
    quote: str
    date_formats: tuple[str, ...]
    decimal_mark: str
    thousands: str
    negative_parentheses: bool
    on_new_column: str  # error (frozen contract) | ignore
    sheet: str | None
    header_row: int
    key: tuple[str, ...]  # labels
    columns: dict[str, ColumnSpec]  # label -> spec, in file order
    one_of_required: tuple[tuple[str, ...], ...] = ()
    feeds: tuple[Feed, ...] = ()
    # full: the files matching ``files`` list every row, so a row none lists any more was deleted
    # in the silo; incremental: each file adds or changes rows
    export: str = "incremental"

    def column(self, label: str) -> ColumnSpec:
        return self.columns[label]

    @property
    def key_names(self) -> list[str]:
        return [self.columns[k].name for k in self.key]


@dataclass(frozen=True)
class Mapping:
    system: str
    path: Path
    entities: dict[str, EntitySpec] = field(default_factory=dict)


_ENTITY_DEFAULTS: dict[str, Any] = {
    "format": "csv", "encoding": "auto", "delimiter": ";", "quote": '"',
    "date_formats": ["dd/mm/yyyy", "yyyy-mm-dd"], "decimal_mark": ",", "thousands_separator": " ",
    "negative_parentheses": False, "on_new_column": "error", "sheet": None, "header_row": 1,
    "export": "incremental",
}


def raw_name(label: str) -> str:
    """The raw column name dlt will store for a header label (its snake_case naming)."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    return NamingConvention().normalize_identifier(label.strip())


def load_mapping(path: Path | str) -> Mapping:
    """Read and check a mapping file; relative paths inside it resolve from its folder."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"{p}: no such mapping file") from None
    except tomllib.TOMLDecodeError as e:
        raise MappingError(f"{p}: not valid TOML ({e})") from None
    return parse_mapping(data, p)


def parse_mapping(data: dict[str, Any], path: Path) -> Mapping:
    """A Mapping from the parsed TOML document (``path`` names it in errors, anchors relative paths)."""
    where = str(path)
    system = data.get("system")
    if not isinstance(system, str) or not NAME.match(system):
        raise MappingError(f"{where}: `system` must be a lower-case snake_case name (raw_<system>)")
    defaults = {**_ENTITY_DEFAULTS, **(data.get("defaults") or {})}
    entities_raw = data.get("entities")
    if not isinstance(entities_raw, dict) or not entities_raw:
        raise MappingError(f"{where}: needs at least one [entities.<name>] table")
    entities = {}
    for name, spec in entities_raw.items():
        if not NAME.match(name):
            raise MappingError(f"{where}: entity {name!r} must be a lower-case snake_case name")
        entities[name] = _entity(name, {**defaults, **spec}, where, path.parent)
    for e in entities.values():
        for feed in e.feeds:
            for fname, f in feed.fields.items():
                if f.kind == "ref" and f.ref not in entities:
                    raise MappingError(f"{where}: entities.{e.name} feeds {feed.table}.{fname}: "
                                       f"ref to unknown entity {f.ref!r}")
    return Mapping(system, path, entities)


def _choice(value: Any, allowed: Any, where: str) -> Any:
    if value not in allowed:
        raise MappingError(f"{where}: {value!r} is not one of {', '.join(map(repr, allowed))}")
    return value


def _entity(name: str, spec: dict[str, Any], where: str, base: Path) -> EntitySpec:
    at = f"{where}: entities.{name}"
    if not isinstance(spec.get("files"), str):
        raise MappingError(f"{at}: `files` (a glob in the drop folder, e.g. \"{name}_*.csv\") is required")
    columns: dict[str, ColumnSpec] = {}
    one_of: list[tuple[str, ...]] = []
    if spec.get("table_schema"):
        from connectors.files.tableschema import columns_from_table_schema

        ts_path = Path(spec["table_schema"])
        ts_path = ts_path if ts_path.is_absolute() else base / ts_path
        try:
            ts = json.loads(ts_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise MappingError(f"{at}.table_schema: cannot read a JSON Table Schema at {ts_path}") from None
        ts_columns, one_of = columns_from_table_schema(ts)
        columns.update(ts_columns)
    for label, cspec in (spec.get("columns") or {}).items():
        columns[label] = _column(label, cspec, f"{at}.columns.{label}", columns.get(label))
    if not columns:
        raise MappingError(f"{at}: declare its `columns` (or a `table_schema`)")
    names: dict[str, str] = {}
    for label, c in columns.items():
        if is_national_id_column(label) or is_national_id_column(c.name):
            raise MappingError(f"{at}.columns.{label}: a national identification number may not be loaded")
        if c.name in names:
            raise MappingError(f"{at}.columns: {label!r} and {names[c.name]!r} are both stored as {c.name!r}")
        names[c.name] = label
    key = spec.get("key")
    key = (key,) if isinstance(key, str) else tuple(key or ())
    if not key:
        raise MappingError(f"{at}: `key` (the column(s) identifying a row) is required")
    for k in key:
        if k not in columns:
            raise MappingError(f"{at}.key: {k!r} is not a declared column")
        if columns[k].on_error == "null":
            raise MappingError(f"{at}.columns.{k}: a key column cannot be nulled (on_error = \"null\")")
    for label, c in columns.items():
        if c.on_error == "null" and c.required:
            raise MappingError(f"{at}.columns.{label}: a required column cannot be nulled (on_error = \"null\")")
    delimiter = spec["delimiter"]
    if delimiter not in DELIMITERS:
        raise MappingError(f"{at}.delimiter: {delimiter!r} is not one of ';' ',' '\\t' '|'")
    thousands = spec["thousands_separator"]
    if thousands not in THOUSANDS:
        raise MappingError(f"{at}.thousands_separator: {thousands!r} is not one of '' ' ' '.' \"'\" ','")
    decimal_mark = _choice(spec["decimal_mark"], (",", "."), f"{at}.decimal_mark")
    if THOUSANDS[thousands] == decimal_mark:
        raise MappingError(f"{at}: decimal_mark and thousands_separator must differ")
    date_formats = spec["date_formats"]
    date_formats = (date_formats,) if isinstance(date_formats, str) else tuple(date_formats)
    for f in date_formats:
        if sorted(_DATE_TOKENS.findall(f)) != ["dd", "mm", "yyyy"] or re.search(r"[A-Za-z0-9]",
                                                                              _DATE_TOKENS.sub("", f)):
            raise MappingError(f"{at}.date_formats: {f!r} must use dd, mm and yyyy once each, with separators")
    entity = EntitySpec(
        name=name, files=spec["files"], format=_choice(spec["format"], FORMATS, f"{at}.format"),
        encoding=_choice(spec["encoding"], ENCODINGS, f"{at}.encoding"), delimiter=DELIMITERS[delimiter],
        quote=spec["quote"], date_formats=date_formats, decimal_mark=decimal_mark, thousands=THOUSANDS[thousands],
        negative_parentheses=bool(spec["negative_parentheses"]),
        on_new_column=_choice(spec["on_new_column"], ("error", "ignore"), f"{at}.on_new_column"),
        sheet=spec.get("sheet"), header_row=int(spec["header_row"]), key=key, columns=columns,
        one_of_required=tuple(tuple(x) for x in (spec.get("one_of_required") or one_of)),
        export=_choice(spec["export"], EXPORTS, f"{at}.export"),
    )
    for group in entity.one_of_required:
        for label in group:
            if label not in columns:
                raise MappingError(f"{at}.one_of_required: {label!r} is not a declared column")
    feeds = tuple(_feed(entity, f, f"{at}.feeds[{i}]") for i, f in enumerate(spec.get("feeds") or ()))
    return EntitySpec(**{**entity.__dict__, "feeds": feeds})


def _column(label: str, spec: Any, at: str, base: ColumnSpec | None) -> ColumnSpec:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict):
        raise MappingError(f"{at}: a type name (\"text\", \"date\", ...) or a table")
    known = {"type", "required", "absent_ok", "scale", "pattern", "enum", "max_length", "minimum", "maximum",
             "check", "true_values", "false_values", "on_error"}
    unknown = set(spec) - known
    if unknown:
        raise MappingError(f"{at}: unknown setting(s) {', '.join(sorted(unknown))}")
    c = base or ColumnSpec(label=label, name=raw_name(label))
    values: dict[str, Any] = dict(spec)
    if "type" in values:
        _choice(values["type"], TYPES, f"{at}.type")
    if "check" in values:
        _choice(values["check"], tuple(CHECKS), f"{at}.check")
    if "on_error" in values:
        _choice(values["on_error"], ON_ERROR, f"{at}.on_error")
    if "pattern" in values:
        try:
            re.compile(values["pattern"])
        except re.error:
            raise MappingError(f"{at}.pattern: not a regular expression") from None
    for k in ("enum", "true_values", "false_values"):
        if k in values:
            values[k] = tuple(str(v) for v in values[k])
    return ColumnSpec(**{**c.__dict__, **values})


def _field(spec: Any, entity: EntitySpec, at: str) -> FieldSpec:
    if isinstance(spec, str):
        spec = {"column": spec}
    if not isinstance(spec, dict):
        spec = {"const": spec}
    transforms = tuple(spec.get("transforms") or ())
    for t in transforms:
        _choice(t, TRANSFORMS, f"{at}.transforms")
    unknown = set(spec) - {"column", "columns", "const", "concat", "coalesce", "json", "ref", "sep", "transforms",
                           "prefix", "map", "unmapped"}
    if unknown:
        raise MappingError(f"{at}: unknown setting(s) {', '.join(sorted(unknown))}")
    value_map, unmapped = _value_map(spec, at)
    kinds = ["ref"] if "ref" in spec else [k for k in ("column", "const", "concat", "coalesce", "json") if k in spec]
    if len(kinds) != 1:
        raise MappingError(f"{at}: give exactly one of column, const, concat, coalesce, ref, json")
    kind = kinds[0]
    prefix = str(spec.get("prefix", ""))
    if value_map and kind not in ("column", "concat", "coalesce"):
        raise MappingError(f"{at}.map: a value map translates a column's values (column, concat or coalesce)")
    if unmapped == "quarantine" and kind != "column":
        raise MappingError(f"{at}.unmapped: \"quarantine\" needs a single `column` (its row is set aside)")
    if kind == "const":
        return FieldSpec("const", value=spec["const"], transforms=transforms)
    if kind == "ref":
        cols = spec.get("columns") or ([spec["column"]] if "column" in spec else None)
        if not cols:
            raise MappingError(f"{at}: a ref needs `column` or `columns` (the referenced entity's key)")
        fs = FieldSpec("ref", columns=tuple(cols), ref=spec["ref"], transforms=transforms)
    elif kind == "column":
        fs = FieldSpec("column", columns=(spec["column"],), transforms=transforms, prefix=prefix,
                       value_map=value_map, unmapped=unmapped)
    else:
        cols = spec[kind]
        if isinstance(cols, str) or not cols:
            raise MappingError(f"{at}.{kind}: a list of columns")
        fs = FieldSpec(kind, columns=tuple(cols), sep=str(spec.get("sep", " ")), transforms=transforms,
                       prefix=prefix, value_map=value_map, unmapped=unmapped)
    for c in fs.columns:
        if c not in entity.columns:
            raise MappingError(f"{at}: {c!r} is not a declared column of entities.{entity.name}")
    return fs


def _value_map(spec: dict[str, Any], at: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """``map = { <source value> = <canonical value>, ... }`` and ``unmapped = keep | null | quarantine``."""
    raw = spec.get("map")
    unmapped = _choice(spec.get("unmapped", "keep"), UNMAPPED, f"{at}.unmapped")
    if raw is None:
        if "unmapped" in spec:
            raise MappingError(f"{at}.unmapped: only with a `map`")
        return (), unmapped
    if not isinstance(raw, dict) or not raw:
        raise MappingError(f"{at}.map: a table of source value = canonical value")
    pairs: dict[str, tuple[str, str]] = {}
    for k, v in raw.items():
        if isinstance(v, dict | list):
            raise MappingError(f"{at}.map.{k}: a value (text, number or boolean)")
        folded = str(k).strip().upper()
        if folded in pairs and pairs[folded][1] != str(v):
            raise MappingError(f"{at}.map: {pairs[folded][0]!r} and {k!r} are the same value, mapped differently")
        pairs[folded] = (str(k).strip(), str(v).lower() if isinstance(v, bool) else str(v))
    return tuple(pairs.values()), unmapped


def _feed(entity: EntitySpec, spec: dict[str, Any], at: str) -> Feed:
    table = spec.get("table")
    if table not in CANONICAL:
        raise MappingError(f"{at}.table: one of {', '.join(CANONICAL)}")
    contract: Table = CANONICAL[table]
    fields = {}
    for fname, fspec in spec.items():
        if fname in ("table", "one_per_key"):
            continue
        if fname not in contract.column_names:
            raise MappingError(f"{at}: {table} has no field {fname!r}")
        if fname == "source_system":
            raise MappingError(f"{at}: source_system is the mapping's `system`, it cannot be mapped")
        fields[fname] = _field(fspec, entity, f"{at}.{fname}")
    defaulted = {"source_system", "source_id", "certification_level", _OWN_KEY.get(table, "")}
    if table in DEFAULT_ROLE:
        defaulted.add("role")  # optional: the neutral role (DEFAULT_ROLE) when the silo records none
    for c in contract.columns:
        if not c.nullable and c.name not in fields and c.name not in defaulted:
            raise MappingError(f"{at}: {table}.{c.name} is required by the contract: map it")
    return Feed(table, fields, bool(spec.get("one_per_key", False)))
