"""Settings: where the warehouse is and which sources to pull, from one TOML file.

The file is found at ``$HUB_CONFIG``, else ``var/hub.toml`` (what ``hub demo`` writes).
``HUB_WAREHOUSE_URL`` overrides the warehouse URL. Secrets are never written in the file: a
source names the environment variable that holds its token (``token_env``).

Example::

    [warehouse]
    url = "duckdb:///var/hub.duckdb"

    [sources.finance]
    kind = "finance"
    url = "sqlite:///var/sandbox/finance.sqlite"
    schedule = "0 2 * * *"   # its Airflow DAG's schedule (default "@daily", "manual" for none; dags/)

    [sources.family]
    kind = "family"
    base_url = "http://127.0.0.1:8765"
    token_env = "HUB_FAMILY_TOKEN"

    [sources.associations]
    kind = "associations"
    drop_dir = "var/sandbox/associations"

    [desk]      # the agent desk (hub serve): sign-in by OpenID Connect (ProConnect); docs/desk.md
    issuer = "https://fca.integ01.dev-agentconnect.fr/api/v2"   # ProConnect integration (docs/desk.md)
    client_id = "…"
    client_secret_env = "HUB_DESK_CLIENT_SECRET"
    redirect_base = "https://hub.example.fr"
    agents_file = "var/desk_agents.toml"
    # PostgreSQL: the desk's own logins (docs/warehouse.md, Logins), passwords from ~/.pgpass or PGPASSFILE
    # warehouse_url = "postgresql://hub_desk_login@db:5432/hub"       # or $HUB_DESK_WAREHOUSE_URL
    # dpo_warehouse_url = "postgresql://hub_dpo_login@db:5432/hub"    # or $HUB_DPO_WAREHOUSE_URL
    session_idle_minutes = 30

    [marts]     # one HMAC key per BI mart, outside the warehouse (docs/marts.md)
    keys_dir = "/run/secrets/hub"       # mart_<name>.key files, created 0600 when missing (default var/secrets)
    # key_env_prefix = "HUB_MART_KEY_"  # or the keys themselves: HUB_MART_KEY_CITIZEN, ..._INVOICE, ...

    [resources] # what each DuckDB connection of a job may use (docs/scale.md)
    memory_limit = "6GB"              # DuckDB's own syntax; default: DuckDB's (80 % of the machine)
    threads = 2                       # default: every core
    temp_dir = "var/tmp/duckdb"       # where a query bigger than memory spills (this default)

    [privacy]   # numbers the law of the deployment forbids storing, beyond the NIR and Belgian number
    forbidden_id_columns = ["ssn", "soc_sec_id"]
    forbidden_id_patterns = [{ name = "us_ssn", regex = '\\b\\d{3}-\\d{2}-\\d{4}\\b', min_digits = 9 }]

Loading settings puts ``[privacy]`` in force for the process (``connectors.identifiers``;
docs/connectors.md, *National ids and other forbidden numbers*).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.identifiers import ForbiddenIds, forbidden_ids_from_settings, set_forbidden_ids

if TYPE_CHECKING:
    from matching.resources import DuckDBLimits

DEFAULT_CONFIG = Path("var/hub.toml")
# A source's name is its source_system, its raw dataset raw_<name> and its staging models' prefix.
SOURCE_NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
DEFAULT_WAREHOUSE_URL = "duckdb:///var/hub.duckdb"


class SettingsError(ValueError):
    """The configuration is missing or wrong; the message names the file and the key."""


@dataclass(frozen=True)
class Source:
    name: str  # the source_system in the warehouse: raw_<name>, keys <name>:… (two of one kind coexist)
    kind: str  # the connector package
    params: dict[str, Any]


@dataclass(frozen=True)
class Settings:
    warehouse_url: str
    sources: tuple[Source, ...]
    var_dir: Path = Path("var")
    config_path: Path | None = None
    sandbox_root: Path | None = None  # set when the sources are the sandbox's (demo, tests)
    extra: dict[str, Any] = field(default_factory=dict)
    privacy: ForbiddenIds = field(default_factory=ForbiddenIds)  # [privacy]: forbidden ids, in force
    desk: dict[str, Any] = field(default_factory=dict)  # [desk] as written: hub.desk.auth.OIDCConfig reads it
    marts: dict[str, Any] = field(default_factory=dict)  # [marts]: keys_dir, key_env_prefix (warehouse/marts.py)
    resources: dict[str, Any] = field(default_factory=dict)  # [resources] as checked: see duckdb_limits

    def duckdb_limits(self) -> DuckDBLimits:
        """``[resources]`` as the :class:`matching.resources.DuckDBLimits` every DuckDB connection of a
        job gets (the spill directory under ``var_dir`` by default)."""
        from matching.resources import DuckDBLimits

        r = self.resources
        return DuckDBLimits(memory_limit=r.get("memory_limit"), threads=r.get("threads"),
                            temp_directory=Path(r.get("temp_dir") or self.var_dir / "tmp" / "duckdb"))

    @property
    def desk_warehouse_url(self) -> str:
        """The desk's login for the agents' reads (the desk reader role on PostgreSQL):
        ``$HUB_DESK_WAREHOUSE_URL``, else ``[desk] warehouse_url``, else the warehouse URL."""
        return os.environ.get("HUB_DESK_WAREHOUSE_URL") or self.desk.get("warehouse_url") or self.warehouse_url

    @property
    def dpo_warehouse_url(self) -> str:
        """The desk's login for the DPO (the DPO role on PostgreSQL): ``$HUB_DPO_WAREHOUSE_URL``, else
        ``[desk] dpo_warehouse_url``, else the desk's login."""
        return (os.environ.get("HUB_DPO_WAREHOUSE_URL") or self.desk.get("dpo_warehouse_url")
                or self.desk_warehouse_url)

    @property
    def pipelines_dir(self) -> Path:
        """dlt's working directory (state, load packages), kept beside the warehouse."""
        return self.var_dir / "dlt"

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise SettingsError(f"no source named {name!r} in {self.config_path or 'the settings'}")


def load_settings(path: Path | str | None = None) -> Settings:
    """Read the settings file (see module docstring)."""
    p = Path(path or os.environ.get("HUB_CONFIG") or DEFAULT_CONFIG)
    if not p.exists():
        raise SettingsError(
            f"no settings file at {p}: run `hub demo` to create one for the sandbox, or set HUB_CONFIG"
        )
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{p}: not valid TOML ({e})") from e
    return settings_from_dict(data, config_path=p)


def settings_from_dict(data: dict[str, Any], *, config_path: Path | None = None) -> Settings:
    where = config_path or "settings"
    url = os.environ.get("HUB_WAREHOUSE_URL") or data.get("warehouse", {}).get("url") or DEFAULT_WAREHOUSE_URL
    sources = []
    for name, spec in (data.get("sources") or {}).items():
        if not SOURCE_NAME.match(name):
            raise SettingsError(f"{where}: [sources.{name}]: a source's name is its system in the warehouse "
                                f"(raw_<name>, keys <name>:…): lower-case letters, digits and single underscores, "
                                f"starting with a letter (e.g. compta, regie_eau)")
        if not isinstance(spec, dict) or "kind" not in spec:
            raise SettingsError(f"{where}: [sources.{name}] needs a `kind` (finance, family, associations)")
        params = {k: v for k, v in spec.items() if k != "kind"}
        sources.append(Source(name=name, kind=spec["kind"], params=params))
    try:
        privacy = forbidden_ids_from_settings(data.get("privacy"), f"{where}: [privacy]")
    except ValueError as e:
        raise SettingsError(str(e)) from None
    set_forbidden_ids(privacy)  # whoever loads the settings screens with them (CLI, DAG tasks)
    resources = _resources(data.get("resources") or {}, f"{where}: [resources]")
    hub = data.get("hub", {})
    sandbox = hub.get("sandbox_root")
    return Settings(
        warehouse_url=url,
        sources=tuple(sources),
        var_dir=Path(hub.get("var_dir", "var")),
        config_path=config_path,
        sandbox_root=Path(sandbox) if sandbox else None,
        extra=dict(data.get("matching", {})),
        privacy=privacy,
        desk=dict(data.get("desk", {})),
        marts=dict(data.get("marts", {})),
        resources=resources,
    )


_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def _resources(values: dict[str, Any], where: str) -> dict[str, Any]:
    """``[resources]`` checked: a DuckDB memory size, a positive number of threads, a directory."""
    unknown = sorted(set(values) - {"memory_limit", "threads", "temp_dir"})
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)} (memory_limit, threads, temp_dir)")
    limit = values.get("memory_limit")
    if limit is not None and not (isinstance(limit, str) and _SIZE.match(limit)):
        raise SettingsError(f'{where}: memory_limit must be a size such as "6GB" or "500MB", not {limit!r}')
    threads = values.get("threads")
    if threads is not None and not (isinstance(threads, int) and not isinstance(threads, bool) and threads > 0):
        raise SettingsError(f"{where}: threads must be a whole number above 0, not {threads!r}")
    temp = values.get("temp_dir")
    if temp is not None and not (isinstance(temp, str) and temp.strip()):
        raise SettingsError(f"{where}: temp_dir must be a directory path, not {temp!r}")
    return dict(values)


def secret(params: dict[str, Any], key: str, source: str) -> str:
    """A source's secret, read from the environment variable its settings name (``<key>_env``)."""
    env = params.get(f"{key}_env")
    if not env:
        raise SettingsError(f"source {source!r}: set `{key}_env` to the environment variable holding its {key}")
    value = os.environ.get(env)
    if not value:
        raise SettingsError(f"source {source!r}: environment variable {env} (its {key}) is not set")
    return value


def merge_settings_text(text: str, updates: dict[str, Any]) -> str:
    """The settings file ``text`` with the keys of ``updates`` set (``{section: {key: value}}``,
    ``sources`` as ``{name: {key: value}}``), everything else kept as written: other sections,
    other sources, other keys, comments."""
    import tomlkit

    doc = tomlkit.parse(text)
    for section, values in updates.items():
        if section == "sources":
            sources = doc.setdefault("sources", tomlkit.table(is_super_table=True))
            for name, spec in values.items():
                table = sources.setdefault(name, tomlkit.table())
                for k, v in spec.items():
                    table[k] = v
        else:
            table = doc.setdefault(section, tomlkit.table())
            for k, v in values.items():
                table[k] = v
    return tomlkit.dumps(doc)


def render_toml(settings: dict[str, Any]) -> str:
    """A minimal TOML writer for the flat two-level settings this module reads."""
    lines: list[str] = []

    def emit(table: str, values: dict[str, Any]) -> None:
        lines.append(f"[{table}]")
        for k, v in values.items():
            lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")

    for section, values in settings.items():
        if section == "sources":
            for name, spec in values.items():
                emit(f"sources.{name}", spec)
        else:
            emit(section, values)
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'
