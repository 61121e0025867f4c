"""ServiceNow silo: users and incidents read through the Table API with dlt's declarative ``rest_api``.

Basic auth; ``sysparm_limit`` / ``sysparm_offset`` pages followed through the ``Link`` header
(``rel="next"``); incremental on ``sys_updated_on`` (the cursor goes into ``sysparm_query``, ordered
by ``sys_updated_on``); merged on ``sys_id``; reference fields (``caller_id``) read as their
``value``. The Table API never lists deleted records: deletions come from ``sys_audit_delete``
(incremental too), which staging turns into ``deleted_at``. Each page becomes a typed Arrow table
before it is written (parquet / csv load path).

Every Table API value is a string (``""`` when empty); datetimes are ``YYYY-MM-DD HH:MM:SS`` in
UTC — the integration user's time zone must be UTC, as ServiceNow recommends for integrations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import (
    Cast,
    Collector,
    SourceError,
    add_page_steps,
    check_page,
    exception_chain,
    json_text,
    resource_name_of,
)

log = logging.getLogger(__name__)

SYSTEM = "servicenow"
PAGE_SIZE = 10_000  # the Table API's largest sysparm_limit: fewer round trips, less work per row
_TS = Cast("timestamp_iso", "bad_timestamp", "not a ServiceNow datetime (YYYY-MM-DD HH:MM:SS)")
_BOOL = Cast("bool", "bad_boolean", "not a boolean")

# table -> {field: cast or None}; the query asks for exactly these fields (sysparm_fields).
TABLES: dict[str, dict[str, Cast | None]] = {
    "sys_user": {"sys_id": None, "user_name": None, "first_name": None, "last_name": None, "email": None,
                 "phone": None, "mobile_phone": None, "street": None, "zip": None, "city": None, "active": _BOOL,
                 "sys_created_on": _TS, "sys_updated_on": _TS},
    "incident": {"sys_id": None, "number": None, "caller_id": None, "short_description": None, "category": None,
                 "contact_type": None, "state": None, "opened_at": _TS, "resolved_at": _TS, "closed_at": _TS,
                 "sys_created_on": _TS, "sys_updated_on": _TS},
    "sys_audit_delete": {"sys_id": None, "tablename": None, "documentkey": None, "sys_created_on": _TS,
                         "sys_updated_on": _TS},
}
_DATETIME = r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)$"  # RE2, for Arrow

_STAGING_DIR = Path(__file__).parent / "staging"
STAGING: dict[str, list[Path]] = {
    "person_record": [_STAGING_DIR / "stg_servicenow__users.sql"],
    "interaction": [_STAGING_DIR / "stg_servicenow__incidents.sql"],
}


def encoded_query(table: str, tables: list[str]) -> str:
    """The incremental ``sysparm_query`` of one table, with dlt's placeholder for the cursor's start.
    ``>=``: records updated in the same second as the last load still arrive; dlt drops the ones it
    already has."""
    cond = "sys_updated_on>={incremental.start_value}^ORDERBYsys_updated_on^ORDERBYsys_id"
    if table == "sys_audit_delete":
        return f"tablenameIN{','.join(tables)}^{cond}"
    return cond


def _text(v: Any) -> str | None:
    """A value Arrow cannot convert by itself as text: a reference field (``{"link", "value"}``) as its
    sys_id, anything else as JSON text."""
    if isinstance(v, dict):
        v = v.get("value")
        return None if v in (None, "") else str(v)
    return json_text(v)


def iso_datetimes(table: pa.Table, fields: Mapping[str, Cast | None]) -> pa.Table:
    """The datetime columns' ``YYYY-MM-DD HH:MM:SS`` (UTC) written as ISO 8601 with ``Z``, column-wise."""
    for name, cast in fields.items():
        if cast is _TS and name in table.column_names:
            i = table.column_names.index(name)
            table = table.set_column(i, name, pc.replace_substring_regex(table.column(i), _DATETIME, r"\1T\2Z"))
    return table


def _check_response(table: str) -> Callable[..., Any]:
    """A response hook: fail at once on auth / not found / a refused query, and on a page that is
    not the Table API's JSON."""

    def check(response: Any, *args: Any, **kwargs: Any) -> Any:
        u = urlparse(response.url)
        q = parse_qs(u.query)
        try:
            page = int(q.get("sysparm_offset", ["0"])[0]) // int(q.get("sysparm_limit", ["1"])[0]) + 1
        except ValueError:
            page = 0
        status = response.status_code
        if status in (401, 403):
            raise SourceError(SYSTEM, f"{table} {u.path}", f"HTTP {status}: the instance refused the credentials")
        if status in (400, 404):
            raise SourceError(SYSTEM, f"{table} {u.path}", f"HTTP {status}: the instance refused the request "
                                                           "(unknown table, field or query)")
        if status >= 400:
            return response  # dlt retries 5xx / 429 (Retry-After honoured), then raises
        check_page(response, SYSTEM, f"{table} page {page}", "the instance", "result")
        return response

    return check


def configure(params: Mapping[str, Any], secret: Callable[[str], str]) -> dict[str, Any]:
    """:func:`source` keyword arguments from the source's settings: ``instance_url``, ``username``,
    ``password_env``; optional ``page_size`` and ``track_deletes``."""
    kwargs: dict[str, Any] = {"instance_url": params["instance_url"], "username": params["username"],
                              "password": secret("password")}
    if "page_size" in params:
        kwargs["page_size"] = int(params["page_size"])
    if "track_deletes" in params:
        kwargs["track_deletes"] = bool(params["track_deletes"])
    return kwargs


# parallelized: each resource's next page is fetched (and parsed, in the response hook) in a dlt
# worker thread while the main thread handles the pages already fetched; see docs/connectors.md
@dlt.source(name=SYSTEM, parallelized=True)
def source(collector: Collector, instance_url: str, username: str, password: str, page_size: int = PAGE_SIZE,
           track_deletes: bool = True, max_attempts: int = 4, backoff_factor: float = 0.5,
           max_retry_delay: float = 30.0, timeout: float = 30.0) -> Any:
    """``sys_user`` and ``incident`` (and, with ``track_deletes``, their ``sys_audit_delete`` rows),
    declared for dlt's ``rest_api`` (merge on sys_id, incremental on sys_updated_on).

    HTTP 400/401/403/404 and an HTML or malformed page raise :class:`SourceError` (never with the
    password); 5xx / 429 are retried up to ``max_attempts`` with exponential backoff bounded by
    ``max_retry_delay``, honouring Retry-After. Run it with :func:`connectors.runner.run_source`.
    """
    from dlt.sources.helpers.requests import Client
    from dlt.sources.rest_api import rest_api_resources

    tables = [t for t in TABLES if track_deletes or t != "sys_audit_delete"]
    data_tables = [t for t in tables if t != "sys_audit_delete"]
    session = Client(
        request_timeout=timeout, raise_for_status=False, request_max_attempts=max_attempts,
        request_backoff_factor=backoff_factor, request_max_retry_delay=max_retry_delay,
    ).session
    config: Any = {
        "client": {
            "base_url": instance_url.rstrip("/") + "/api/now/table/",
            "auth": {"type": "http_basic", "username": username, "password": password},
            "paginator": {"type": "header_link"},
            "session": session,
        },
        "resource_defaults": {"primary_key": "sys_id", "write_disposition": "merge"},
        "resources": [
            {
                "name": t,
                "endpoint": {
                    "path": t,
                    "data_selector": "result",
                    "params": {
                        "sysparm_query": encoded_query(t, data_tables),
                        "sysparm_fields": ",".join(TABLES[t]),
                        "sysparm_display_value": "false",
                        "sysparm_limit": page_size,
                        "sysparm_offset": 0,
                    },
                    "incremental": {"cursor_path": "sys_updated_on", "initial_value": "1970-01-01 00:00:00"},
                    "response_actions": [_check_response(t)],
                },
            }
            for t in tables
        ],
    }
    resources = rest_api_resources(config)
    for r in resources:
        fields = TABLES[r.name]
        add_page_steps(r, collector, r.name, fields, "sys_id", f"{r.name} page",
                       lambda row, t=r.name: f"{t} sys_id={row.get('sys_id')}", text=_text,
                       adjust=lambda table, fields=fields: iso_datetimes(table, fields))
    return resources


# deletions are rare: the audit table must exist before the first one for staging to join it
STANDING_TABLES = {"sys_audit_delete": {"sys_id": "text", "tablename": "text", "documentkey": "text",
                                        "sys_created_on": "timestamptz", "sys_updated_on": "timestamptz"}}


def translate(e: Exception, config: Mapping[str, Any]) -> SourceError:
    """Where it failed: the table and HTTP status, or the unreachable instance."""
    return _translate(e, config["instance_url"])


def _origin(url: str) -> str:
    u = urlparse(url)
    return f"instance {u.scheme}://{u.hostname}{':' + str(u.port) if u.port else ''}"


def _translate(e: Exception, instance_url: str) -> SourceError:
    import requests

    chain = exception_chain(e)
    table = resource_name_of(e)
    for x in chain:
        if isinstance(x, requests.HTTPError) and x.response is not None:
            path = urlparse(x.response.url).path
            return SourceError(SYSTEM, f"{table or 'table'} {path}", f"HTTP {x.response.status_code} after retries")
        if isinstance(x, (requests.ConnectionError, requests.Timeout)):
            return SourceError(SYSTEM, _origin(instance_url), "cannot reach the ServiceNow instance")
    kinds = ", ".join(sorted({type(x).__name__ for x in chain}))
    return SourceError(SYSTEM, f"{_origin(instance_url)} {table or ''}".strip(), f"extraction or load failed ({kinds})")
