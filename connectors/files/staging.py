"""Staging SQL generated from a mapping: one SELECT per (entity, canonical table it feeds).

The SQL keeps to what DuckDB and PostgreSQL both run (CAST, COALESCE, NULLIF, TRIM, UPPER,
LOWER, CONCAT_WS, REPLACE, CHR, ``||``, ROW_NUMBER) and produces exactly the canonical table's
columns, in contract order, every NULL typed. Keys follow the hub's convention:
``<system>:<entity>/<key>``.
"""

from __future__ import annotations

from connectors.files.mapping import CANONICAL, DEFAULT_ROLE, KEY_FIELDS, EntitySpec, FieldSpec, Mapping
from schemas.contract import HOUSEHOLD_ROLES, RAW_DELETED_AT, ROLES, Table

SQL_TYPE = {"text": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE PRECISION",
            "bool": "BOOLEAN", "date": "DATE", "timestamptz": "TIMESTAMPTZ", "money": "DECIMAL(14,2)",
            "json": "VARCHAR"}
_OWN_KEY = {"person_record": "record_key", "interaction": "interaction_key", "organisation": "organisation_key"}
# The household feed accepts what the person feed accepts: a person role read from the same column
# becomes the household role it implies (a parent heads the household, a child is a child, any
# other role is a plain member); household roles pass as they are.
HOUSEHOLD_ROLE_OF = {"parent": "responsable", "enfant": "enfant",
                     **{r: "membre" for r in ROLES if r not in ("parent", "enfant")}}
assert not set(HOUSEHOLD_ROLE_OF) - set(ROLES) and set(HOUSEHOLD_ROLE_OF.values()) <= set(HOUSEHOLD_ROLES)


def _lit(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _col(entity: EntitySpec, label: str) -> str:
    return f't."{entity.columns[label].name}"'


def _text(entity: EntitySpec, label: str) -> str:
    return f"NULLIF(TRIM(CAST({_col(entity, label)} AS VARCHAR)), '')"


def _key_text(entity: EntitySpec, labels: tuple[str, ...]) -> str:
    return " || '|' || ".join(f"TRIM(CAST({_col(entity, k)} AS VARCHAR))" for k in labels)


def _json_string(expr: str) -> str:
    escaped = expr
    for src, dst in (("'\\'", "'\\\\'"), ("'\"'", "'\\\"'"), ("CHR(10)", "'\\n'"), ("CHR(13)", "'\\r'"),
                     ("CHR(9)", "'\\t'")):
        escaped = f"REPLACE({escaped}, {src}, {dst})"
    return f"COALESCE('\"' || {escaped} || '\"', 'null')"


def _mapped(e: str, f: FieldSpec) -> str:
    """The value map as a CASE: source values compared trimmed and upper-cased (the silo's own
    spelling varies in case); a value not listed is kept, or null (``unmapped``: keep | null;
    ``quarantine`` sets such rows aside at extraction, so none reaches here)."""
    folded = f"UPPER(TRIM(CAST({e} AS VARCHAR)))"
    whens = " ".join(f"WHEN UPPER({_lit(k)}) THEN {_lit(v)}" for k, v in f.value_map)
    other = "NULL" if f.unmapped == "null" else f"CAST({e} AS VARCHAR)"
    return f"(CASE {folded} {whens} ELSE {other} END)"


def _household_role(e: str) -> str:
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in HOUSEHOLD_ROLE_OF.items())
    return f"(CASE LOWER(CAST({e} AS VARCHAR)) {whens} ELSE LOWER(CAST({e} AS VARCHAR)) END)"


def _expr(system: str, entity: EntitySpec, fname: str, f: FieldSpec, logical: str,
          table: str = "") -> str:
    target = SQL_TYPE[logical]
    if f.kind == "const":
        e = _lit(f.value)
    elif f.kind == "column":
        label = f.columns[0]
        e = _text(entity, label) if logical in ("text", "json") else _col(entity, label)
    elif f.kind == "concat":
        parts = ", ".join(_text(entity, c) for c in f.columns)
        e = f"NULLIF(CONCAT_WS({_lit(f.sep)}, {parts}), '')"
    elif f.kind == "coalesce":
        parts = ", ".join(_text(entity, c) if logical in ("text", "json") else _col(entity, c) for c in f.columns)
        e = f"COALESCE({parts})"
    elif f.kind == "ref":
        e = f"'{system}:{f.ref}/' || {_key_text(entity, f.columns)}"
    else:  # json object of columns, built portably (both engines read it with their JSON functions)
        members = " || ', ' || ".join(
            f"'\"{c}\": ' || {_json_string(_text(entity, c))}" for c in f.columns)
        e = f"'{{' || {members} || '}}'"
    for t in f.transforms:
        e = f"{t.upper()}({e})"
    if f.value_map:
        e = _mapped(e, f)
    if fname == "role" and table == "household_membership" and f.kind != "const":
        e = _household_role(e)
    if fname == "role" and table in DEFAULT_ROLE:  # an empty or unmapped role: the neutral one
        e = f"COALESCE({e}, {_lit(DEFAULT_ROLE[table])})"
    if f.prefix:
        e = f"{_lit(f.prefix)} || {e}"
    if fname in KEY_FIELDS and f.kind in ("column", "concat", "coalesce"):
        e = f"'{system}:' || {e}"
    return f"CAST({e} AS {target})"


def feed_sql(mapping: Mapping, entity: EntitySpec, table_name: str) -> str:
    """The SELECT turning ``raw_<system>.<entity>`` into the canonical table ``table_name``."""
    feed = next(f for f in entity.feeds if f.table == table_name)
    contract: Table = CANONICAL[table_name]
    system = mapping.system
    fields = feed.fields
    source_id = (_expr(system, entity, "source_id", fields["source_id"], "text") if "source_id" in fields
                 else f"CAST('{entity.name}/' || {_key_text(entity, entity.key)} AS VARCHAR)")
    exprs: list[tuple[str, str]] = []
    full = entity.export == "full"
    for c in contract.columns:
        if c.name == "deleted_at" and full:  # a row no export lists any more: deleted when it was seen gone
            mapped = _expr(system, entity, c.name, fields[c.name], c.type, table_name) if c.name in fields else None
            e = f"COALESCE({mapped}, t.{RAW_DELETED_AT})" if mapped else f"CAST(t.{RAW_DELETED_AT} AS TIMESTAMPTZ)"
        elif c.name in fields and c.name != "source_id":
            e = _expr(system, entity, c.name, fields[c.name], c.type, table_name)
        elif c.name == "source_id":
            e = source_id
        elif c.name == "source_system":
            e = f"CAST('{system}' AS VARCHAR)"
        elif c.name == _OWN_KEY.get(table_name):
            e = f"CAST('{system}:' || {source_id} AS VARCHAR)"
        elif c.name == "certification_level":
            e = "CAST(0 AS INTEGER)"
        elif c.name == "role" and table_name in DEFAULT_ROLE:
            e = f"CAST({_lit(DEFAULT_ROLE[table_name])} AS VARCHAR)"
        elif c.name == "birth_date_precision" and "birth_date" in fields:
            birth = _expr(system, entity, "birth_date", fields["birth_date"], "date")
            e = f"CAST(CASE WHEN {birth} IS NOT NULL THEN 'day' END AS VARCHAR)"
        elif c.name == "siren" and "siret" in fields:  # a SIRET is its company's SIREN and a 5-digit NIC
            siret = _expr(system, entity, "siret", fields["siret"], "text")
            e = f"CAST(SUBSTRING({siret}, 1, 9) AS VARCHAR)"
        elif c.name == "currency" and "amount" in fields:
            e = "CAST('EUR' AS VARCHAR)"
        else:
            e = f"CAST(NULL AS {SQL_TYPE[c.type]})"
        exprs.append((c.name, e))
    source = f"raw_{system}.{entity.name}"
    if full and "deleted_at" not in contract.column_names:  # only person records are kept once deleted
        source = f"(SELECT * FROM {source} WHERE {RAW_DELETED_AT} IS NULL)"
    head = f"-- generated from {mapping.path.name}: {system}.{entity.name} -> {table_name}\n"
    select = ",\n    ".join(f"{e} AS {name}" for name, e in exprs)
    if not feed.one_per_key:
        return f"{head}SELECT\n    {select}\nFROM {source} AS t"
    # several rows per canonical key (one organisation, many grants): keep one, the same every run
    order = [f't."{entity.columns[k].name}" AS _o{i}' for i, k in enumerate(entity.key)]
    partition = ", ".join(contract.key)
    names = ", ".join(c.name for c in contract.columns)
    ranks = ", ".join(f"_o{i}" for i in range(len(order)))
    inner = ",\n    ".join([select, *order])
    return (f"{head}SELECT {names}\nFROM (\n  SELECT s.*, ROW_NUMBER() OVER (PARTITION BY {partition} "
            f"ORDER BY {ranks}) AS _rn\n  FROM (\n  SELECT\n    {inner}\n  FROM {source} AS t) AS s\n) AS r\n"
            "WHERE _rn = 1")


def model_name(mapping: Mapping, entity: EntitySpec, table_name: str) -> str:
    """``stg_<system>__<entity>s`` (suffixed by the canonical table when the entity feeds several)."""
    base = f"stg_{mapping.system}__{entity.name}{'' if entity.name.endswith('s') else 's'}"
    return base if len(entity.feeds) == 1 else f"{base}_{table_name}"


def staging_models(mapping: Mapping) -> dict[str, list[tuple[str, str]]]:
    """Canonical table -> [(model_name, select_sql)] for every feed of the mapping, the shape
    ``connectors.registry.staging_models()`` returns."""
    models: dict[str, list[tuple[str, str]]] = {}
    for entity in mapping.entities.values():
        for feed in entity.feeds:
            models.setdefault(feed.table, []).append(
                (model_name(mapping, entity, feed.table), feed_sql(mapping, entity, feed.table)))
    return models
