"""The source systems the hub knows, for the runner to iterate over, and their staging SQL."""

from __future__ import annotations

from types import ModuleType

from connectors import associations, family, finance, salesforce, servicenow

# system name -> its connector package. Each has
#   ``configure(params, secret) -> kwargs``: its settings ([sources.<name>] in hub.toml) as load() arguments,
#       ``secret(key)`` reading the environment variable named by ``<key>_env``;
#   ``load(destination, run_id, *, pipelines_dir, **kwargs) -> ExtractResult``;
#   ``STAGING``: canonical table -> SQL files named stg_<system>__<entity>s.sql.
SYSTEMS: dict[str, ModuleType] = {
    "finance": finance,
    "family": family,
    "associations": associations,
    "salesforce": salesforce,
    "servicenow": servicenow,
}


def staging_models() -> dict[str, list[tuple[str, str]]]:
    """Canonical table name -> [(model_name, select_sql)], model_name being the file stem
    (``stg_<system>__<entity>s``), for the warehouse's staging builder."""
    models: dict[str, list[tuple[str, str]]] = {}
    for module in SYSTEMS.values():
        for table, paths in module.STAGING.items():
            models.setdefault(table, []).extend((p.stem, p.read_text(encoding="utf-8")) for p in paths)
    return models
