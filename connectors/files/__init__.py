"""File drops without code: a CSV / XLSX source described by a TOML mapping file.

A data engineer writes ``sources/<name>.toml`` (see docs/connectors.md and ``examples/``); this
connector reads the files its globs match in a drop folder, types and checks them column-wise
(quarantining bad rows with file:line and field), and merges the good rows into
``raw_<system>.<entity>`` on the mapping's key. Its staging SQL is generated from the same mapping
(:func:`staging_models`).

- A file identical to one already loaded (same name, same SHA-256, kept in dlt's resource state)
  is skipped: an unchanged drop loads 0 rows.
- Files are applied in name order: within a file the first line of a key wins, across the files of
  one run the later file wins (older rows with that key are quarantined as ``duplicate_key``).
- A file that cannot be read whole (encoding, missing or new column under a frozen contract, an
  unclosed quote) raises :class:`~connectors.base.SourceError`; the run then loads nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from collections.abc import Mapping as AnyMapping
from pathlib import Path
from typing import Any

import dlt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import (
    Collector,
    SourceError,
    load_failed,
    mark_listed,
    unlisted_rows,
)
from connectors.files.mapping import EntitySpec, Mapping, MappingError, load_mapping
from connectors.files.read import RawFile, read_file
from connectors.files.screen import Screened, arrow_type, screen
from connectors.files.staging import staging_models as _staging_models
from connectors.runner import unique_in_run
from schemas.contract import RAW_DELETED_AT

log = logging.getLogger(__name__)

SYSTEM = "files"  # the connector kind; each mapping names its own source system
EXAMPLES = Path(__file__).parent / "examples"
# The SQL depends on the mapping: use staging_models(mapping) (registry.staging_models cannot know it).
STAGING: dict[str, list[Path]] = {}

__all__ = ["EXAMPLES", "SYSTEM", "Mapping", "MappingError", "configure", "load_mapping", "source",
           "source_name", "staging_models", "translate"]


def staging_models(mapping: Mapping | Path | str) -> dict[str, list[tuple[str, str]]]:
    """Canonical table -> [(model_name, select_sql)] generated from the mapping."""
    return _staging_models(mapping if isinstance(mapping, Mapping) else load_mapping(mapping))


def source_staging(params: AnyMapping[str, Any], name: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """The staging models of one configured files source (``mapping`` in its settings); ``name``:
    the source's name, which the rows carry as source_system (default: the mapping's ``system``)."""
    m = load_mapping(params["mapping"])
    return staging_models(dataclasses.replace(m, system=name) if name else m)


def configure(params: AnyMapping[str, Any], secret: Callable[[str], str]) -> dict[str, Any]:
    """:func:`source` keyword arguments from the source's settings: ``mapping`` (path of the TOML file)
    and ``drop_dir``."""
    return {"mapping": Path(params["mapping"]), "drop_dir": Path(params["drop_dir"])}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _supersede(system: str, entity: EntitySpec, files: list[Screened]) -> None:
    """Across the files of one run the later file wins a key: earlier rows become duplicate_key."""
    if len(files) < 2:
        return
    keys = entity.key_names
    parts = [f.good.select(keys).append_column("_rank", pa.array(np.full(f.good.num_rows, r, np.int64)))
             .append_column("_i", pa.array(np.arange(f.good.num_rows, dtype=np.int64)))
             for r, f in enumerate(files)]
    allk = pa.concat_tables(parts)
    latest = allk.group_by(keys, use_threads=False).aggregate([("_rank", "max")])
    joined = allk.join(latest, keys, use_threads=False)
    old = joined.filter(pc.less(joined["_rank"], joined["_rank_max"]))
    if not old.num_rows:
        return
    for r, f in enumerate(files):
        mine = old.filter(pc.equal(old["_rank"], r))
        if not mine.num_rows:
            continue
        idx = mine["_i"].to_numpy()
        winners = mine["_rank_max"].to_numpy()
        rows = f.good.take(pa.array(idx))
        by_name = {c.name: c.label for c in entity.columns.values()}
        labels = [by_name.get(h, h) for h in rows.column_names]
        for payload, w in zip(rows.rename_columns(labels).to_pylist(), winners, strict=True):
            line = payload.pop("_source_line")
            payload.pop("_source_file")
            f.bad.append({"locator": f"{f.name}:{line}", "field": entity.key[0], "reason_code": "duplicate_key",
                          "reason": f"same key in the later file {files[int(w)].name} (the later one is kept)",
                          "payload": payload})
        keep = np.ones(f.good.num_rows, bool)
        keep[idx] = False
        f.good = f.good.filter(pa.array(keep))
    log.info("%s: %s: %d row(s) superseded by a later file of the same drop", system, entity.name, old.num_rows)


# Reasons about one field's value, which ``on_error = "null"`` turns into a null field: not a
# missing key, a national id (the row never loads), a required or one-of-required value, a duplicate.
NULLABLE_REASONS = frozenset({"bad_date", "bad_decimal", "bad_integer", "bad_boolean", "bad_timestamp", "pattern",
                              "enum", "too_long", "out_of_range", "bad_siren", "bad_siret", "bad_rna"})


def _line_index(raw: RawFile) -> dict[int, int]:
    return {int(line): i for i, line in enumerate(raw.lines)}


def _row_of(locator: str, index: dict[int, int]) -> int | None:
    return index.get(int(locator.rsplit(":", 1)[1]))


def _screen(raw: RawFile, entity: EntitySpec) -> tuple[Screened, list[dict[str, Any]]]:
    """Screen one file; a bad value in an ``on_error = "null"`` column is set to null and the file
    screened again (until no such column is at fault), so the row is judged on what remains.
    Returns the screening and the notes on loaded rows (one per field set to null)."""
    nullable = {c.label for c in entity.columns.values() if c.on_error == "null"}
    s = screen(raw, entity)
    if not nullable:
        return s, []
    index = _line_index(raw)
    table = raw.table
    nulled: dict[int, list[dict[str, Any]]] = {}
    for _ in range(len(nullable)):
        hits = [b for b in s.bad if b["field"] in nullable and b["reason_code"] in NULLABLE_REASONS]
        if not hits:
            break
        by_column: dict[str, list[int]] = {}
        for b in hits:
            i = _row_of(b["locator"], index)
            if i is None:
                continue
            by_column.setdefault(entity.columns[b["field"]].name, []).append(i)
            nulled.setdefault(i, []).append(b)
        for name, rows in by_column.items():
            mask = np.zeros(table.num_rows, bool)
            mask[rows] = True
            pos = table.column_names.index(name)
            table = table.set_column(pos, name, pc.if_else(pa.array(mask), pa.scalar(None, pa.string()),
                                                           table.column(name)))
        s = screen(dataclasses.replace(raw, table=table), entity)
    if not nulled:
        return s, []
    # payloads are the rows as the file has them, not as nulled
    labels = {c.name: c.label for c in entity.columns.values()}
    order = sorted(nulled)
    originals = dict(zip(order, raw.table.take(pa.array(order, pa.int64())).rename_columns(
        [labels.get(n, n) for n in raw.table.column_names]).to_pylist(), strict=True))
    set_aside = set()
    for b in s.bad:
        i = _row_of(b["locator"], index) if b["reason_code"] != "wrong_column_count" else None
        if i in nulled:
            b["payload"] = originals[i]
            set_aside.add(i)
    notes = [{"locator": b["locator"], "field": b["field"], "reason_code": f"nulled_{b['reason_code']}",
              "reason": f"{b['reason']}: the field is set to null, the row loaded", "payload": originals[i]}
             for i in order if i not in set_aside for b in nulled[i]]
    return s, notes


def _unmapped(entity: EntitySpec, s: Screened) -> None:
    """Value maps with ``unmapped = "quarantine"``: a row whose value the map does not list is set
    aside (reason ``unmapped_value``). Values compare trimmed and case-insensitively, as staging maps them."""
    for feed in entity.feeds:
        for fname, f in feed.fields.items():
            if f.unmapped != "quarantine" or not s.good.num_rows:
                continue
            label = f.columns[0]
            name = entity.columns[label].name
            values = pc.utf8_upper(pc.utf8_trim_whitespace(pc.cast(s.good.column(name), pa.string())))
            keys = pa.array([k.upper() for k, _ in f.value_map], pa.string())
            bad = pc.and_(pc.invert(pc.is_null(values)), pc.invert(pc.is_in(values, value_set=keys)))
            bad = pc.fill_null(bad, False)
            if not pc.any(bad).as_py():
                continue
            rows = s.good.filter(bad)
            by_name = {c.name: c.label for c in entity.columns.values()}
            for payload in rows.rename_columns([by_name.get(h, h) for h in rows.column_names]).to_pylist():
                line = payload.pop("_source_line")
                payload.pop("_source_file")
                s.bad.append({"locator": f"{s.name}:{line}", "field": label, "reason_code": "unmapped_value",
                              "reason": f"a value the map of {feed.table}.{fname} does not list", "payload": payload})
            s.good = s.good.filter(pc.invert(bad))


def _listed_keys(entity: EntitySpec, screened: list[Screened]) -> set[tuple[str, ...]]:
    """The key (trimmed text) of every row the files list, loaded or set aside (a line that could
    not be split too, when its key can be read)."""
    names = entity.key_names
    listed: set[tuple[str, ...]] = set()
    for s in screened:
        cols = [pc.utf8_trim_whitespace(pc.cast(s.good.column(n), pa.string())).to_pylist() for n in names]
        listed.update(zip(*cols, strict=True))
        for b in s.bad:
            if b.get("listed_key"):  # a line that could not be split, its key read where the header has it
                listed.add(b["listed_key"])
                continue
            payload = b["payload"] if isinstance(b["payload"], dict) else {}
            values = [payload.get(k) for k in entity.key]
            if all(v not in (None, "") for v in values):
                listed.add(tuple(str(v).strip() for v in values))
    return listed


def _entity_rows(system: str, entity: EntitySpec, paths: list[tuple[str, Path]], collector: Collector,
                 now: dt.datetime):
    """The entity's good rows from its changed files, as one Arrow table per run.

    A full export (``export = "full"``) is read whole whenever one of its files changed, came or
    went: the rows raw holds that none of its files lists any more come back marked deleted."""
    state = dlt.current.resource_state()
    seen: dict[str, str] = state.setdefault("files", {})
    full = entity.export == "full"
    digests = {name: _sha256(path) for name, path in paths}
    if full:
        stored = dlt.current.source_schema().tables.get(entity.name, {}).get("columns", {})
        if digests and digests == seen and RAW_DELETED_AT in stored:
            log.info("%s: %s: the export is unchanged since it was loaded, skipped", system, entity.name)
            return
        changed = paths
    else:
        changed = []
        for name, path in paths:
            if seen.get(name) == digests[name]:
                log.info("%s: %s unchanged since it was loaded, skipped", system, name)
                continue
            changed.append((name, path))
    screened: list[Screened] = []
    notes: list[dict[str, Any]] = []
    for name, path in changed:
        s, nulled = _screen(read_file(system, path, name, entity), entity)
        _unmapped(entity, s)
        screened.append(s)
        notes.extend(nulled)
    _supersede(system, entity, screened)
    for s in screened:
        collector.add_read(entity.name, s.rows_read)
        for b in s.bad:
            collector.quarantine(entity.name, b["locator"], b["field"], b["reason_code"], b["reason"], b["payload"])
    set_aside = {b["locator"] for s in screened for b in s.bad}  # a later file's key, an unmapped value
    for b in (n for n in notes if n["locator"] not in set_aside):
        collector.quarantine(entity.name, b["locator"], b["field"], b["reason_code"], b["reason"], b["payload"],
                             counted=False)
    if full:
        table = mark_listed(pa.concat_tables([s.good for s in screened]) if screened else _empty(entity))
        gone = unlisted_rows(dlt.current.pipeline(), system, entity.name, entity.key_names,
                             _listed_keys(entity, screened), table.schema, now)
        collector.deleted[entity.name] = gone.num_rows
        state["files"] = digests  # exactly the files of this export
        yield pa.concat_tables([table, gone])
        return
    seen.update({name: digests[name] for name, _ in changed})
    if screened:
        yield pa.concat_tables([s.good for s in screened])
    elif not paths:
        yield _empty(entity)  # so that the raw table exists for the staging SQL


def _empty(entity: EntitySpec) -> pa.Table:
    cols = {c.name: pa.array([], arrow_type(c)) for c in entity.columns.values()}
    return pa.table({**cols, "_source_file": pa.array([], pa.string()), "_source_line": pa.array([], pa.int64())})


def _mapping(mapping: Mapping | Path | str) -> Mapping:
    return mapping if isinstance(mapping, Mapping) else load_mapping(mapping)


def source_name(mapping: Mapping | Path | str, drop_dir: Path | str) -> str:
    """A files source stores its rows under its mapping's ``system`` (unless the hub names it)."""
    return _mapping(mapping).system


@dlt.source(name=SYSTEM)
def source(collector: Collector, mapping: Mapping | Path | str, drop_dir: Path | str) -> Any:
    """The files the mapping's globs match in ``drop_dir``, one resource per entity, their good rows
    merged into ``raw_<system>.<entity>`` on the mapping's key. Bad rows are quarantined (file:line,
    field); a file that cannot be read whole raises :class:`SourceError` and the run loads nothing.
    Run it with :func:`connectors.runner.run_source`.
    """
    m = _mapping(mapping)
    drop = Path(drop_dir)
    if not drop.is_dir():
        raise SourceError(m.system, drop.name or str(drop), "the drop folder does not exist")
    now = dt.datetime.now(dt.UTC)
    resources = []
    for entity in m.entities.values():
        paths = sorted((p.relative_to(drop).as_posix(), p) for p in drop.glob(entity.files) if p.is_file())
        if not paths:
            log.warning("%s: no file in the drop matches %s (entity %s)", m.system, entity.files, entity.name)
        # keys are unique within one run's rows (screen and _supersede see to it)
        resources.append(unique_in_run(dlt.resource(_entity_rows(m.system, entity, paths, collector, now),
                                                    name=entity.name, primary_key=entity.key_names,
                                                    write_disposition="merge")))
    return resources


def translate(e: Exception, config: AnyMapping[str, Any]) -> SourceError:
    """Where it failed (the drop folder) and the kinds of error, never their messages."""
    return load_failed(_mapping(config["mapping"]).system, Path(config["drop_dir"]).name)(e)
