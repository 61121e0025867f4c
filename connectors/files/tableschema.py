"""Frictionless Table Schema → mapping columns: the checks a standard (e.g. SCDL) publishes.

Supported: field types string / date / datetime / number / integer / boolean (trueValues /
falseValues), constraints required / pattern / enum / maxLength / minimum / maximum, and the
SCDL custom checks ``french-siret-value`` and ``one-of-required``. Fields that are not required
may be absent from a file's header (read as empty), as the standard's own examples do.
"""

from __future__ import annotations

from typing import Any

from connectors.files.mapping import ColumnSpec, MappingError, raw_name

_TYPES = {"string": "text", "date": "date", "datetime": "timestamp", "number": "decimal",
          "integer": "int", "boolean": "bool"}


def columns_from_table_schema(schema: dict[str, Any]) -> tuple[dict[str, ColumnSpec], list[tuple[str, ...]]]:
    """Columns (label -> spec, in schema order) and one-of-required groups of a Table Schema."""
    columns: dict[str, ColumnSpec] = {}
    for f in schema.get("fields") or ():
        name = f.get("name")
        ftype = _TYPES.get(f.get("type", "string"))
        if not name or ftype is None:
            raise MappingError(f"table schema field {name!r}: type {f.get('type')!r} is not supported")
        c = f.get("constraints") or {}
        extra: dict[str, Any] = {}
        if ftype == "bool":
            extra["true_values"] = tuple(f.get("trueValues") or ("true",))
            extra["false_values"] = tuple(f.get("falseValues") or ("false",))
        if ftype == "decimal":
            extra["scale"] = 6  # the standard does not bound decimals; keep 6 places, reject more
        columns[name] = ColumnSpec(
            label=name, name=raw_name(name), type=ftype, required=bool(c.get("required", False)),
            absent_ok=not c.get("required", False), pattern=c.get("pattern"),
            enum=tuple(str(v) for v in c["enum"]) if "enum" in c else None, max_length=c.get("maxLength"),
            minimum=c.get("minimum"), maximum=c.get("maximum"), **extra)
    one_of: list[tuple[str, ...]] = []
    for check in schema.get("custom_checks") or ():
        params = check.get("params") or {}
        if check.get("name") == "french-siret-value" and params.get("column") in columns:
            col = columns[params["column"]]
            columns[col.label] = ColumnSpec(**{**col.__dict__, "check": "siret"})
        elif check.get("name") == "one-of-required":
            one_of.append((params["column1"], params["column2"]))
    return columns, one_of
