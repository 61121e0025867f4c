"""The source systems the hub knows, for the runner to iterate over, and their staging SQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from connectors import associations, demarches, family, files, finance, salesforce, servicenow

# system name -> its connector package. Each has
#   ``configure(params, secret) -> kwargs``: its settings ([sources.<name>] in hub.toml) as load() arguments,
#       ``secret(key)`` reading the environment variable named by ``<key>_env``;
#   ``load(destination, run_id, *, pipelines_dir, **kwargs) -> ExtractResult``;
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


def staging_models(sources: Iterable[tuple[str, Mapping[str, Any]]] | None = None) -> dict[str, list[tuple[str, str]]]:
    """Canonical table name -> [(model_name, select_sql)], model_name being ``stg_<system>__<entity>s``,
    for the warehouse's staging builder.

    ``sources``: (kind, settings) of the configured sources; by default every connector whose
    staging SQL does not depend on settings.
    """
    if sources is None:
        sources = [(kind, {}) for kind, module in SYSTEMS.items() if module.STAGING]
    models: dict[str, list[tuple[str, str]]] = {}
    for kind, params in sources:
        module = SYSTEMS[kind]
        per_source = getattr(module, "source_staging", None)
        if per_source is not None:
            part = per_source(params)
        else:
            part = {t: [(p.stem, p.read_text(encoding="utf-8")) for p in paths] for t, paths in module.STAGING.items()}
        for table, entries in part.items():
            models.setdefault(table, []).extend(entries)
    return models
