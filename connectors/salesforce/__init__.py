"""Salesforce silo: Contacts, Accounts and Cases read through the REST API's SOQL query resource.

The OAuth 2 token flow (client credentials, or username-password) is the only code: it yields the
access token and the org's ``instance_url``. Everything else is dlt's declarative ``rest_api``:
bearer auth, one SOQL query per object through ``queryAll`` (so rows deleted to the recycle bin
come back with ``IsDeleted = true``), batches followed through ``nextRecordsUrl`` until ``done``,
incremental on ``SystemModstamp`` (the cursor goes into the SOQL ``WHERE``), merged on ``Id``.
Each batch becomes a typed Arrow table before it is written (parquet / csv load path).

Raw tables ``raw_salesforce.contacts`` / ``accounts`` / ``cases``; columns are the API names in
snake_case (``FirstName`` → ``first_name``, ``SystemModstamp`` → ``system_modstamp``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dlt

from connectors.base import (
    Cast,
    Collector,
    SourceError,
    add_page_steps,
    check_page,
    exception_chain,
    resource_name_of,
)

log = logging.getLogger(__name__)

SYSTEM = "salesforce"
API_VERSION = "v62.0"
TOKEN_PATH = "/services/oauth2/token"
BATCH_SIZE = 2000  # the largest batch the query resource serves
_TS = Cast("timestamp_iso", "bad_timestamp", "not a Salesforce datetime")
_DATE = Cast("date_iso", "bad_date", "not a date (YYYY-MM-DD expected)")
_BOOL = Cast("bool", "bad_boolean", "not a boolean")

# resource (raw table) -> (sObject, {API field: cast or None}); the SOQL selects exactly these fields.
OBJECTS: dict[str, tuple[str, dict[str, Cast | None]]] = {
    "accounts": ("Account", {
        "Id": None, "Name": None, "Type": None, "BillingStreet": None, "BillingPostalCode": None,
        "BillingCity": None, "IsDeleted": _BOOL, "CreatedDate": _TS, "SystemModstamp": _TS}),
    "contacts": ("Contact", {
        "Id": None, "AccountId": None, "FirstName": None, "LastName": None, "Birthdate": _DATE, "Email": None,
        "Phone": None, "MobilePhone": None, "MailingStreet": None, "MailingPostalCode": None,
        "MailingCity": None, "IsDeleted": _BOOL, "CreatedDate": _TS, "SystemModstamp": _TS}),
    "cases": ("Case", {
        "Id": None, "CaseNumber": None, "ContactId": None, "AccountId": None, "Subject": None, "Type": None,
        "Status": None, "Origin": None, "IsClosed": _BOOL, "CreatedDate": _TS, "ClosedDate": _TS,
        "IsDeleted": _BOOL, "SystemModstamp": _TS}),
}

_STAGING_DIR = Path(__file__).parent / "staging"
STAGING: dict[str, list[Path]] = {
    "person_record": [_STAGING_DIR / "stg_salesforce__contacts.sql"],
    "household_membership": [_STAGING_DIR / "stg_salesforce__households.sql"],
    "interaction": [_STAGING_DIR / "stg_salesforce__cases.sql"],
    "organisation": [_STAGING_DIR / "stg_salesforce__accounts.sql"],
    "organisation_role": [_STAGING_DIR / "stg_salesforce__account_contacts.sql"],
}


def snake(name: str) -> str:
    """An API name as its raw column: ``MailingPostalCode`` → ``mailing_postal_code``."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def soql(sobject: str, fields: list[str]) -> str:
    """The incremental query of one object, with dlt's placeholder for the cursor's start value.
    ``>=`` (not ``>``): records stamped in the same millisecond as the last load still arrive; dlt
    drops the ones it already has."""
    return (f"SELECT {', '.join(fields)} FROM {sobject} WHERE SystemModstamp >= {{incremental.start_value}} "
            f"ORDER BY SystemModstamp, Id")


def soql_datetime(value: Any) -> str:
    """A cursor value (``2026-01-03T21:03:42.000+0000``) as a SOQL datetime literal (seconds, Z).
    Truncating to the second only re-reads a few boundary rows, which the incremental drops."""
    text = str(value)
    return text[:19] + "Z"


def _check_response(resource: str) -> Callable[..., Any]:
    """A response hook: fail at once on auth / not found / a refused query, and on a batch that is
    not the API's JSON."""
    sobject = OBJECTS[resource][0]
    batches = {"n": 0}

    def check(response: Any, *args: Any, **kwargs: Any) -> Any:
        path = urlparse(response.url).path
        status = response.status_code
        if status in (401, 403):
            raise SourceError(SYSTEM, f"{sobject} {path}", f"HTTP {status}: the org refused the session "
                                                            "(INVALID_SESSION_ID or missing permission)")
        if status == 404:
            raise SourceError(SYSTEM, f"{sobject} {path}", "HTTP 404: no such resource (API version?)")
        if status == 400:
            raise SourceError(SYSTEM, f"{sobject} {path}", f"HTTP 400: query refused ({_error_code(response)})")
        if status >= 400:
            return response  # dlt retries 5xx / 429 (Retry-After honoured), then raises
        batches["n"] += 1
        check_page(response, SYSTEM, f"{sobject} batch {batches['n']}", "the org", "records")
        return response

    return check


def _error_code(response: Any) -> str:
    """Salesforce's errorCode (e.g. INVALID_FIELD), never its message (it may quote the query)."""
    try:
        body = response.json()
        code = body[0].get("errorCode") if isinstance(body, list) and body else None
    except (ValueError, AttributeError):
        code = None
    return str(code) if code and re.fullmatch(r"[A-Z_]+", str(code)) else "no error code"


# ---------------------------------------------------------------------------- OAuth 2


def login(session: Any, login_url: str, client_id: str, client_secret: str, username: str | None = None,
          password: str | None = None, timeout: float = 30.0) -> tuple[str, str]:
    """The OAuth 2 token flow: ``(access_token, instance_url)``. Client credentials unless a
    username is given (then the username-password flow). Failures are SourceErrors naming the
    token endpoint and the OAuth error code, never a credential."""
    url = login_url.rstrip("/") + TOKEN_PATH
    form = {"grant_type": "password" if username else "client_credentials", "client_id": client_id,
            "client_secret": client_secret}
    if username:
        form.update(username=username, password=password or "")
    try:
        response = session.post(url, data=form, timeout=timeout)
    except Exception as e:  # connection refused / reset / timeout, after the session's retries
        raise _unreachable(e, login_url) from None
    if response.status_code != 200:
        try:
            code = str(response.json().get("error", "no error code"))
        except (ValueError, AttributeError):
            code = "no error code"
        code = code if re.fullmatch(r"[a-z_]+", code) else "no error code"
        raise SourceError(SYSTEM, f"token {TOKEN_PATH}", f"HTTP {response.status_code}: the org refused the "
                                                         f"credentials ({code})")
    try:
        body = response.json()
        token, instance = body["access_token"], body["instance_url"]
    except (ValueError, KeyError, TypeError):
        raise SourceError(SYSTEM, f"token {TOKEN_PATH}", "the token answer is not the expected JSON") from None
    return str(token), str(instance)


def _origin(url: str) -> str:
    u = urlparse(url)
    return f"org {u.scheme}://{u.hostname}{':' + str(u.port) if u.port else ''}"


def _unreachable(e: BaseException, url: str) -> SourceError:
    import requests

    for x in exception_chain(e):
        if isinstance(x, requests.HTTPError) and x.response is not None:
            return SourceError(SYSTEM, f"token {TOKEN_PATH}", f"HTTP {x.response.status_code} after retries")
    return SourceError(SYSTEM, _origin(url), "cannot reach the Salesforce org")


# ---------------------------------------------------------------------------- load


def configure(params: Mapping[str, Any], secret: Callable[[str], str]) -> dict[str, Any]:
    """:func:`source` keyword arguments from the source's settings: ``login_url``, ``client_id`` (or
    ``client_id_env``), ``client_secret_env``; for the username-password flow also ``username`` and
    ``password_env``; optional ``batch_size``."""
    kwargs: dict[str, Any] = {
        "login_url": params["login_url"],
        "client_id": params["client_id"] if "client_id" in params else secret("client_id"),
        "client_secret": secret("client_secret"),
    }
    if params.get("username"):
        kwargs.update(username=params["username"], password=secret("password"))
    if "batch_size" in params:
        kwargs["batch_size"] = int(params["batch_size"])
    return kwargs


# parallelized: each resource's next page is fetched (and parsed, in the response hook) in a dlt
# worker thread while the main thread handles the pages already fetched; see docs/connectors.md
@dlt.source(name=SYSTEM, parallelized=True)
def source(collector: Collector, login_url: str, client_id: str, client_secret: str, username: str | None = None,
           password: str | None = None, batch_size: int = BATCH_SIZE, include_deleted: bool = True,
           max_attempts: int = 4, backoff_factor: float = 0.5, max_retry_delay: float = 30.0,
           timeout: float = 30.0) -> Any:
    """Accounts, Contacts and Cases, declared for dlt's ``rest_api`` once the OAuth 2 token flow
    gave the token and the org's instance (merge on Id, incremental on SystemModstamp; with
    ``include_deleted`` the queries go through ``queryAll`` so deletions arrive as ``is_deleted`` rows).

    HTTP 401/403/404, a refused query (400), an HTML or malformed batch and an unreachable org raise
    :class:`SourceError` (never with a token or secret); 5xx / 429 are retried up to
    ``max_attempts`` with exponential backoff bounded by ``max_retry_delay``, honouring Retry-After.
    Run it with :func:`connectors.runner.run_source`.
    """
    from dlt.sources.helpers.requests import Client
    from dlt.sources.rest_api import rest_api_resources

    session = Client(
        request_timeout=timeout, raise_for_status=False, request_max_attempts=max_attempts,
        request_backoff_factor=backoff_factor, request_max_retry_delay=max_retry_delay,
    ).session
    token, instance_url = login(session, login_url, client_id, client_secret, username, password, timeout)
    resource = "queryAll" if include_deleted else "query"
    config: Any = {
        "client": {
            "base_url": instance_url.rstrip("/") + f"/services/data/{API_VERSION}/",
            "auth": {"type": "bearer", "token": token},
            "headers": {"Sforce-Query-Options": f"batchSize={batch_size}"},
            "paginator": {"type": "json_link", "next_url_path": "nextRecordsUrl"},
            "session": session,
        },
        "resource_defaults": {"primary_key": "Id", "write_disposition": "merge"},
        "resources": [
            {
                "name": name,
                "endpoint": {
                    "path": resource,
                    "data_selector": "records",
                    "params": {"q": soql(sobject, list(fields))},
                    "incremental": {"cursor_path": "SystemModstamp",
                                    "initial_value": "1970-01-01T00:00:00.000+0000", "convert": soql_datetime},
                    "response_actions": [_check_response(name)],
                },
            }
            for name, (sobject, fields) in OBJECTS.items()
        ],
    }
    resources = rest_api_resources(config)
    for r in resources:
        sobject, fields = OBJECTS[r.name]
        # only the queried fields are read: each record's "attributes" (type, url) is left out
        add_page_steps(r, collector, r.name, fields, "Id", f"{sobject} batch",
                       lambda row, s=sobject: f"{s} Id={row.get('id')}", column=snake)
    return resources


def translate(e: Exception, config: Mapping[str, Any]) -> SourceError:
    """Where it failed: the object and HTTP status, or the unreachable org."""
    return _translate(e, config["login_url"])


def _translate(e: Exception, org_url: str) -> SourceError:
    import requests

    chain = exception_chain(e)
    name = resource_name_of(e)
    sobject = OBJECTS[name][0] if name in OBJECTS else "query"
    for x in chain:
        if isinstance(x, requests.HTTPError) and x.response is not None:
            path = urlparse(x.response.url).path
            return SourceError(SYSTEM, f"{sobject} {path}", f"HTTP {x.response.status_code} after retries")
        if isinstance(x, (requests.ConnectionError, requests.Timeout)):
            return SourceError(SYSTEM, _origin(org_url), "cannot reach the Salesforce org")
    kinds = ", ".join(sorted({type(x).__name__ for x in chain}))
    return SourceError(SYSTEM, f"{_origin(org_url)} {sobject}", f"extraction or load failed ({kinds})")
