"""The source systems the hub knows, each run by :func:`connectors.runner.run_source`, and their staging SQL."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from connectors import associations, demarches, family, files, finance, salesforce, servicenow

# system name -> its connector package. Each has
#   ``configure(params, secret) -> kwargs``: its settings ([sources.<name>] in hub.toml) as source() arguments,
#       ``secret(key)`` reading the environment variable named by ``<key>_env``;
#   ``source(collector, **kwargs)``: its dlt source (a ``@dlt.source`` function), which the one runner,
#       ``connectors.runner.run_source(module, destination, run_id, pipelines_dir=…, **kwargs)``, runs;
#       optionally ``translate``, ``source_name`` and ``STANDING_TABLES`` (see connectors.runner);
#   ``STAGING``: canonical table -> SQL files named stg_<system>__<entity>s.sql, or, for a connector whose
#       SQL depends on each source's settings (files: generated from its mapping file),
#       ``source_staging(params) -> {table: [(model_name, sql)]}``.
SYSTEMS: dict[str, ModuleType] = {
    "finance": finance,
    "family": family,
    "associations": associations,
    "salesforce": salesforce,
    "servicenow": servicenow,
    "demarches": demarches,
    "files": files,
}


def staging_models(sources: Iterable[tuple[str, Mapping[str, Any]] | tuple[str, str, Mapping[str, Any]]] | None = None,
                   ) -> dict[str, list[tuple[str, str]]]:
    """Canonical table name -> [(model_name, select_sql)], model_name being ``stg_<system>__<entity>s``,
    for the warehouse's staging builder.

    ``sources``: ``(name, kind, settings)`` of the configured sources (or ``(kind, settings)``, the
    name then being the kind); by default every connector whose staging SQL does not depend on
    settings. A source's name is its ``source_system`` and its raw dataset ``raw_<name>``: the models
    of a source named otherwise than its kind read ``raw_<name>`` and stamp ``<name>``.
    """
    if sources is None:
        sources = [(kind, {}) for kind, module in SYSTEMS.items() if module.STAGING]
    models: dict[str, list[tuple[str, str]]] = {}
    for source in sources:
        name, kind, params = source if len(source) == 3 else (source[0], *source)  # type: ignore[misc]
        module = SYSTEMS[kind]
        per_source = getattr(module, "source_staging", None)
        if per_source is not None:
            part = per_source(params, name) if len(source) == 3 else per_source(params)
        else:
            part = {t: [(p.stem, p.read_text(encoding="utf-8")) for p in paths] for t, paths in module.STAGING.items()}
            if name != kind:
                part = {t: [renamed(m, sql, kind, name) for m, sql in entries] for t, entries in part.items()}
        for table, entries in part.items():
            models.setdefault(table, []).extend(entries)
    return models


def renamed(model: str, sql: str, kind: str, name: str) -> tuple[str, str]:
    """A connector's staging model for a source named ``name`` rather than its kind: it reads
    ``raw_<name>`` and its rows carry ``<name>`` as source_system and key prefix. The connectors'
    SQL writes the system only as ``raw_<kind>.``, ``'<kind>'`` and ``'<kind>:`` (a test checks it)."""
    k = re.escape(kind)
    sql = re.sub(rf"\braw_{k}\.", f"raw_{name}.", sql)
    sql = re.sub(rf"'{k}(['\:])", lambda m: f"'{name}{m.group(1)}", sql)
    return re.sub(rf"^stg_{k}__", f"stg_{name}__", model), sql
