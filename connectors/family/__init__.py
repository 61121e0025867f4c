"""Family portal silo: its REST API read with dlt's declarative ``rest_api`` source.

Pages follow ``links.next``; bearer auth; incremental on ``updated_at`` through ``updated_since``;
merged on ``id``. Each page becomes an Arrow table (typed, flattened) before it is written, so
loads take the parquet (DuckDB) or csv (PostgreSQL) path, never dlt's per-row insert path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

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

SYSTEM = "family"
PER_PAGE = 1000  # the portal's largest page: fewer round trips, less work per row
_TS = Cast("timestamp_iso", "bad_timestamp", "not an ISO 8601 timestamp")
_DATE = Cast("date_iso", "bad_date", "not a date (YYYY-MM-DD expected)")
_INT = Cast("int", "bad_integer", "not an integer")
_BOOL = Cast("bool", "bad_boolean", "not a boolean")
_MONEY = Cast("decimal", "bad_decimal", "not a decimal amount (string with a dot expected)")

# collection -> its columns as loaded (nested objects flattened the way dlt names them: a__b)
COLLECTIONS: dict[str, dict[str, Cast | None]] = {
    "familles": {"id": _INT, "nom_famille": None, "adresse__ligne": None, "adresse__code_postal": None,
                 "adresse__commune": None, "adresse__code_insee": None, "quotient_familial": _INT,
                 "updated_at": _TS},
    "responsables": {"id": _INT, "famille_id": _INT, "lien": None, "prenoms": None, "nom": None,
                     "nom_naissance": None, "sexe": None, "date_naissance": _DATE, "email": None,
                     "telephone": None, "certification": None, "updated_at": _TS, "deleted": _BOOL},
    "enfants": {"id": _INT, "famille_id": _INT, "prenoms": None, "nom": None, "sexe": None,
                "date_naissance": _DATE, "ecole": None, "classe": None, "updated_at": _TS, "deleted": _BOOL},
    "inscriptions": {"id": _INT, "enfant_id": _INT, "activite": None, "annee_scolaire": None,
                     "date_debut": _DATE, "date_fin": _DATE, "statut": None, "updated_at": _TS},
    "factures": {"id": _INT, "famille_id": _INT, "responsable_id": _INT, "periode": None, "montant": _MONEY,
                 "statut": None, "date_emission": _DATE, "date_echeance": _DATE, "updated_at": _TS},
}

_STAGING_DIR = Path(__file__).parent / "staging"
STAGING: dict[str, list[Path]] = {
    "person_record": [_STAGING_DIR / "stg_family__responsables.sql", _STAGING_DIR / "stg_family__enfants.sql"],
    "household_membership": [_STAGING_DIR / "stg_family__familles.sql"],
    "interaction": [_STAGING_DIR / "stg_family__inscriptions.sql", _STAGING_DIR / "stg_family__factures.sql"],
}


def _check_response(collection: str, system: str = SYSTEM) -> Callable[..., Any]:
    """A response hook: fail at once on auth / not found, and on a page that is not the API's JSON."""

    def check(response: Any, *args: Any, **kwargs: Any) -> Any:
        u = urlparse(response.url)
        page = parse_qs(u.query).get("page", ["1"])[0]
        status = response.status_code
        if status in (401, 403):
            raise SourceError(system, f"{collection} {u.path}", f"HTTP {status}: the portal refused the token")
        if status == 404:
            raise SourceError(system, f"{collection} {u.path}", "HTTP 404: no such collection")
        if status >= 400:
            return response  # dlt retries 5xx / 429 (Retry-After honoured), then raises
        check_page(response, system, f"{collection} page {page}", "the portal", "data")
        return response

    return check


def configure(params: Mapping[str, Any], secret: Callable[[str], str]) -> dict[str, Any]:
    """:func:`source` keyword arguments from the source's settings: ``base_url``, ``token_env``."""
    return {"base_url": params["base_url"], "token": secret("token")}


# parallelized: each resource's next page is fetched (and parsed, in the response hook) in a dlt
# worker thread while the main thread handles the pages already fetched; see docs/connectors.md
@dlt.source(name=SYSTEM, parallelized=True)
def source(collector: Collector, base_url: str, token: str, per_page: int = PER_PAGE, max_attempts: int = 4,
           backoff_factor: float = 0.5, max_retry_delay: float = 30.0, timeout: float = 30.0) -> Any:
    """The portal's five collections, declared for dlt's ``rest_api`` (merge on id, incremental via
    updated_since). HTTP 401/403/404 and an HTML or malformed page raise :class:`SourceError` (never
    with the token); 5xx / 429 are retried up to ``max_attempts`` with exponential backoff bounded
    by ``max_retry_delay``, honouring Retry-After. Run it with :func:`connectors.runner.run_source`."""
    from dlt.sources.helpers.requests import Client
    from dlt.sources.rest_api import rest_api_resources

    session = Client(
        request_timeout=timeout, raise_for_status=False, request_max_attempts=max_attempts,
        request_backoff_factor=backoff_factor, request_max_retry_delay=max_retry_delay,
    ).session
    config: Any = {
        "client": {
            "base_url": base_url.rstrip("/") + "/api/v1/",
            "auth": {"type": "bearer", "token": token},
            "paginator": {"type": "json_link", "next_url_path": "links.next"},
            "session": session,
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {
                "name": c,
                "endpoint": {
                    "path": c,
                    "data_selector": "data",
                    "params": {"per_page": per_page},
                    # a record the portal sends without updated_at is loaded (every run), never
                    # a reason to fail the collection
                    "incremental": {"start_param": "updated_since", "cursor_path": "updated_at",
                                    "initial_value": "1970-01-01T00:00:00Z", "on_cursor_value_missing": "include"},
                    "response_actions": [_check_response(c)],
                },
            }
            for c in COLLECTIONS
        ],
    }
    resources = rest_api_resources(config)
    for r in resources:
        add_page_steps(r, collector, r.name, COLLECTIONS[r.name], "id", f"{r.name} page",
                       lambda row, c=r.name: f"{c} id={row.get('id')}")
    return resources


def translate(e: Exception, config: Mapping[str, Any]) -> SourceError:
    """Where it failed: the collection and HTTP status, or the unreachable portal."""
    return _translate(e, config["base_url"])


def _translate(e: Exception, base_url: str) -> SourceError:
    import requests

    chain = exception_chain(e)
    u = urlparse(base_url)
    portal = f"portal {u.scheme}://{u.hostname}{':' + str(u.port) if u.port else ''}"
    collection = resource_name_of(e)
    for x in chain:
        if isinstance(x, requests.HTTPError) and x.response is not None:
            path = urlparse(x.response.url).path
            return SourceError(SYSTEM, f"{collection or 'collection'} {path}",
                               f"HTTP {x.response.status_code} after retries")
        if isinstance(x, (requests.ConnectionError, requests.Timeout)):
            return SourceError(SYSTEM, portal, "cannot reach the family portal")
    kinds = ", ".join(sorted({type(x).__name__ for x in chain}))
    return SourceError(SYSTEM, f"{portal} {collection or ''}".strip(), f"extraction or load failed ({kinds})")
