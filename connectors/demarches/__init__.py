"""Démarches simplifiées silo: its GraphQL API v2 (``POST /api/v2/graphql``, bearer token).

dlt's declarative ``rest_api`` has no GraphQL paginator, so each démarche gets two small resource
functions that follow Relay cursors (``pageInfo.endCursor`` / ``hasNextPage``): ``dossiers``,
incremental on ``dateDerniereModification`` through the API's ``updatedSince``, and
``deletedDossiers``, incremental on ``dateSupression`` through ``deletedSince``; plus one tiny
``demarches`` resource (id, number, title), written only when it changed. Every page becomes a
typed Arrow table before dlt sees it (parquet on DuckDB, csv on PostgreSQL, never per-row inserts).
Requests go through dlt's requests ``Client``: 5xx, 429 (Retry-After honoured), resets and
timeouts are retried with backoff; 401 / 403 / 404, HTML, malformed JSON and GraphQL ``errors``
fail at once with a :class:`SourceError` naming the démarche and the page, never the token.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dlt
import pyarrow as pa

from connectors.base import (
    Cast,
    Collector,
    Guard,
    SourceError,
    cast_columns,
    exception_chain,
    json_page,
    resource_name_of,
    take_rows,
)

log = logging.getLogger(__name__)

SYSTEM = "demarches"
ENTITIES = ("demarches", "dossiers", "deleted_dossiers")
MAX_PAGE_SIZE = 100  # the API serves at most 100 nodes per page

_TS = Cast("timestamp_iso", "bad_timestamp", "not an ISO 8601 date-time with a zone")
_DATE = Cast("date_iso", "bad_date", "not a date (YYYY-MM-DD expected)")
_INT = Cast("int", "bad_integer", "not an integer")
_BOOL = Cast("bool", "bad_boolean", "not a boolean")

# raw table -> its columns (GraphQL fields in snake_case, nested objects flattened as a__b, the way
# dlt would name them) and the cast each needs; the cursor column is required on every row.
COLUMNS: dict[str, dict[str, Cast | None]] = {
    "demarches": {"number": _INT, "id": None, "title": None, "state": None, "date_creation": _TS},
    "dossiers": {
        "number": _INT, "id": None, "demarche_number": _INT, "state": None, "archived": _BOOL,
        "date_depot": _TS, "date_passage_en_construction": _TS, "date_passage_en_instruction": _TS,
        "date_traitement": _TS, "date_derniere_modification": _TS, "motivation": None, "usager__email": None,
        "demandeur__type": None, "demandeur__civilite": None, "demandeur__nom": None, "demandeur__prenom": None,
        "demandeur__date_de_naissance": _DATE, "demandeur__siret": None, "champs": None,
    },
    "deleted_dossiers": {"number": _INT, "id": None, "demarche_number": _INT, "state": None, "reason": None,
                         "date_supression": _TS},
}
CURSOR = {"dossiers": "date_derniere_modification", "deleted_dossiers": "date_supression"}

_STAGING_DIR = Path(__file__).parent / "staging"
STAGING: dict[str, list[Path]] = {
    "person_record": [_STAGING_DIR / "stg_demarches__dossiers.sql"],
    "interaction": [_STAGING_DIR / "stg_demarches__demandes.sql"],
}

DEMARCHE_QUERY = """query getDemarche($demarcheNumber: Int!) {
  demarche(number: $demarcheNumber) { id number title state dateCreation }
}"""

DOSSIERS_QUERY = """query getDossiers($demarcheNumber: Int!, $first: Int, $after: String,
                          $updatedSince: ISO8601DateTime) {
  demarche(number: $demarcheNumber) {
    id
    number
    dossiers(first: $first, after: $after, updatedSince: $updatedSince, order: ASC) {
      pageInfo { hasNextPage endCursor }
      nodes { ...DossierFields }
    }
  }
}

fragment DossierFields on Dossier {
  id
  number
  state
  archived
  dateDepot
  datePassageEnConstruction
  datePassageEnInstruction
  dateTraitement
  dateDerniereModification
  motivation
  usager { email }
  demandeur {
    __typename
    ... on PersonnePhysique { civilite nom prenom dateDeNaissance }
    ... on PersonneMorale { siret }
  }
  champs { __typename id label stringValue }
}"""

DELETED_QUERY = """query getDeletedDossiers($demarcheNumber: Int!, $first: Int, $after: String,
                                 $deletedSince: ISO8601DateTime) {
  demarche(number: $demarcheNumber) {
    id
    number
    deletedDossiers(first: $first, after: $after, deletedSince: $deletedSince, order: ASC) {
      pageInfo { hasNextPage endCursor }
      nodes { id number state reason dateSupression }
    }
  }
}"""

# entity -> (GraphQL connection field, operation name, its "since" argument)
_CONNECTION = {"dossiers": ("dossiers", "getDossiers", "updatedSince"),
               "deleted_dossiers": ("deletedDossiers", "getDeletedDossiers", "deletedSince")}


# ---------------------------------------------------------------------------- pages -> Arrow


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    return str(v)


def _flat_dossier(node: Mapping[str, Any], demarche: int) -> dict[str, Any]:
    usager = node.get("usager") if isinstance(node.get("usager"), dict) else {}
    dem = node.get("demandeur") if isinstance(node.get("demandeur"), dict) else {}
    return {
        "number": node.get("number"), "id": node.get("id"), "demarche_number": demarche,
        "state": node.get("state"), "archived": node.get("archived"), "date_depot": node.get("dateDepot"),
        "date_passage_en_construction": node.get("datePassageEnConstruction"),
        "date_passage_en_instruction": node.get("datePassageEnInstruction"),
        "date_traitement": node.get("dateTraitement"),
        "date_derniere_modification": node.get("dateDerniereModification"),
        "motivation": node.get("motivation"), "usager__email": usager.get("email"),
        "demandeur__type": dem.get("__typename"), "demandeur__civilite": dem.get("civilite"),
        "demandeur__nom": dem.get("nom"), "demandeur__prenom": dem.get("prenom"),
        "demandeur__date_de_naissance": dem.get("dateDeNaissance"), "demandeur__siret": dem.get("siret"),
        # kept whole, as the API gave them: the form's answers belong to the demande's details
        "champs": node.get("champs") if node.get("champs") is not None else [],
    }


def _flat_deleted(node: Mapping[str, Any], demarche: int) -> dict[str, Any]:
    return {"number": node.get("number"), "id": node.get("id"), "demarche_number": demarche,
            "state": node.get("state"), "reason": node.get("reason"), "date_supression": node.get("dateSupression")}


def _flat_demarche(node: Mapping[str, Any]) -> dict[str, Any]:
    return {"number": node.get("number"), "id": node.get("id"), "title": node.get("title"),
            "state": node.get("state"), "date_creation": node.get("dateCreation")}


def page_to_arrow(entity: str, rows: Sequence[Mapping[str, Any]], where: str, collector: Collector) -> pa.Table:
    """Flattened rows of one page as a typed Arrow table. Rows without a number, without their
    cursor date or with a value that does not convert are quarantined (counted as read here)."""
    columns = COLUMNS[entity]
    table = pa.table({c: pa.array([_text(r.get(c)) for r in rows], pa.string()) for c in columns})
    typed, bad = cast_columns(table, {c: s for c, s in columns.items() if s is not None})
    cursor = CURSOR.get(entity)
    keep: list[int] = []
    for i, r in enumerate(rows):
        locator = f"{where} number={r.get('number')}"
        if r.get("number") is None:
            reason: tuple[str, str, str] | None = ("number", "missing_key", "the record has no number")
            locator = f"{where} item {i + 1}"
        elif i in bad:
            name, spec = bad[i]
            reason = (name, spec.reason_code, spec.message)
        elif cursor is not None and not r.get(cursor):
            reason = (cursor, "missing_cursor", "the change date is missing: the record cannot be synced")
        else:
            reason = None
        if reason is None:
            keep.append(i)
            continue
        collector.add_read(entity, 1)
        collector.quarantine(entity, locator, reason[0], reason[1], reason[2], dict(r))
    typed = take_rows(typed, keep)
    # the merge key is never null here: say so, as dlt's schema does for a primary key
    i = typed.schema.get_field_index("number")
    return typed.cast(typed.schema.set(i, typed.schema.field(i).with_nullable(False)))


# ---------------------------------------------------------------------------- the API


class _Api:
    """POSTs GraphQL documents; every failure becomes a SourceError naming the démarche and page."""

    def __init__(self, base_url: str, token: str, session: Any, page_size: int, max_attempts: int):
        self.endpoint = self.graphql(base_url)
        self.where_api = self.where(base_url)
        self._auth = {"Authorization": f"Bearer {token}"}
        self.session = session
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self.max_attempts = max_attempts
        self.requests = 0

    @staticmethod
    def graphql(base_url: str) -> str:
        url = base_url.rstrip("/")
        return url if url.endswith("/graphql") else f"{url}/api/v2/graphql"

    @staticmethod
    def where(base_url: str) -> str:
        """The API as messages name it: its origin, never a path or query."""
        u = urlparse(_Api.graphql(base_url))
        return f"api {u.scheme}://{u.hostname}{':' + str(u.port) if u.port else ''}"

    def post(self, query: str, operation: str, variables: dict[str, Any], where: str) -> dict[str, Any]:
        """The ``data`` of one answer."""
        import requests

        self.requests += 1
        try:
            response = self.session.post(self.endpoint, json={"query": query, "operationName": operation,
                                                              "variables": variables}, headers=self._auth)
        except (requests.ConnectionError, requests.Timeout):
            raise SourceError(SYSTEM, f"{self.where_api} {where}",
                              "cannot reach the Démarches simplifiées API (after retries)") from None
        status = response.status_code
        if status in (401, 403):
            raise SourceError(SYSTEM, where, f"HTTP {status}: the API refused the token")
        if status == 404:
            raise SourceError(SYSTEM, where, "HTTP 404: no GraphQL endpoint at this address")
        if status >= 400:
            raise SourceError(SYSTEM, where, f"HTTP {status} after {self.max_attempts} attempts")
        body = json_page(SYSTEM, where, response.content, "the API")
        errors = body.get("errors")
        if errors:
            raise SourceError(SYSTEM, where, f"GraphQL error(s): {_describe(errors)}")
        data = body.get("data")
        demarche = data.get("demarche") if isinstance(data, dict) else None
        if not isinstance(demarche, dict):
            raise SourceError(SYSTEM, where, "the answer has no data.demarche object")
        return demarche

    def demarche(self, number: int) -> dict[str, Any]:
        return self.post(DEMARCHE_QUERY, "getDemarche", {"demarcheNumber": number}, f"demarche {number}")

    def _page(self, demarche: int, entity: str, since: str | None, after: str | None, page: int
              ) -> tuple[str, list[dict[str, Any]], str | None]:
        """One page of a connection: (locator, nodes, the cursor of the next page or None)."""
        field, operation, since_arg = _CONNECTION[entity]
        query = DOSSIERS_QUERY if entity == "dossiers" else DELETED_QUERY
        where = f"demarche {demarche} {field} page {page}"
        variables = {"demarcheNumber": demarche, "first": self.page_size, "after": after, since_arg: since}
        conn = self.post(query, operation, variables, where).get(field)
        nodes = conn.get("nodes") if isinstance(conn, dict) else None
        info = conn.get("pageInfo") if isinstance(conn, dict) else None
        if not isinstance(nodes, list) or not isinstance(info, dict):
            raise SourceError(SYSTEM, where, f"the answer has no {field} nodes / pageInfo")
        cursor = info.get("endCursor") if info.get("hasNextPage") else None
        if info.get("hasNextPage") and (not cursor or cursor == after):
            raise SourceError(SYSTEM, where, "hasNextPage without a new endCursor")
        return where, [n if isinstance(n, dict) else {} for n in nodes], cursor

    def pages(self, demarche: int, entity: str, since: str | None) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(locator, nodes) for each page of one connection, following endCursor while hasNextPage.

        The next page is fetched while the caller handles the current one, so the hub's work hides
        behind the network; still one request in flight at a time, as a polite client of the API."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demarches-fetch") as pool:
            pending = pool.submit(self._page, demarche, entity, since, None, 1)
            page = 1
            while pending is not None:
                where, nodes, cursor = pending.result()
                page += 1
                pending = pool.submit(self._page, demarche, entity, since, cursor, page) if cursor else None
                try:
                    yield where, nodes
                except GeneratorExit:
                    if pending is not None:
                        pending.cancel()
                    raise


def _describe(errors: Any) -> str:
    """The codes, paths and field names of GraphQL errors; never their messages, which can quote data."""
    parts = []
    for e in errors if isinstance(errors, list) else [errors]:
        ext = e.get("extensions") if isinstance(e, dict) and isinstance(e.get("extensions"), dict) else {}
        text = str(ext.get("code") or "no code")
        if isinstance(e, dict) and isinstance(e.get("path"), list):
            text += " at " + ".".join(str(p) for p in e["path"])
        if ext.get("typeName") and ext.get("fieldName"):
            text += f" ({ext['typeName']}.{ext['fieldName']})"
        parts.append(text)
    return "; ".join(parts[:5]) + (f" (+{len(parts) - 5} more)" if len(parts) > 5 else "")


# ---------------------------------------------------------------------------- dlt resources


def _iso(value: Any) -> str | None:
    """A dlt incremental's last value (a datetime) as the API's ISO8601DateTime argument."""
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _connection_resource(api: _Api, demarche: int, entity: str, collector: Collector) -> Any:
    flat = _flat_dossier if entity == "dossiers" else _flat_deleted
    cursor = CURSOR[entity]
    page_of: dict[Any, str] = {}  # number -> its page, so the guard's quarantine names the page too

    # dlt binds the incremental through the default argument (its documented idiom)
    def rows(changed: Any = dlt.sources.incremental(cursor, initial_value=None)) -> Iterator[pa.Table]:  # noqa: B008
        # inclusive on the API side; dlt drops the rows it already loaded at the boundary
        for where, nodes in api.pages(demarche, entity, _iso(changed.last_value)):
            table = page_to_arrow(entity, [flat(n, demarche) for n in nodes], where, collector)
            page_of.update(dict.fromkeys(table.column("number").to_pylist(), where))
            if table.num_rows:
                yield table

    def locate(row: dict[str, Any]) -> str:
        number = row.get("number")
        return f"{page_of.get(number, f'demarche {demarche} {_CONNECTION[entity][0]}')} number={number}"

    resource = dlt.resource(rows, name=f"{entity}_{demarche}", table_name=entity, primary_key="number",
                            write_disposition="merge")
    resource.add_step(Guard(collector, entity, locate))
    return resource


def _demarches_resource(api: _Api, demarches: Sequence[int], collector: Collector) -> Any:
    def rows() -> Iterator[pa.Table]:
        flat = [_flat_demarche(api.demarche(n)) for n in demarches]
        # démarches rarely change: written again only when their description did
        state = dlt.current.resource_state()
        digest = hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()
        if state.get("sha256") == digest:
            return
        table = page_to_arrow("demarches", flat, "demarches", collector)
        state["sha256"] = digest
        if table.num_rows:
            yield table

    resource = dlt.resource(rows, name="demarches", primary_key="number", write_disposition="merge")
    resource.add_step(Guard(collector, "demarches", lambda row: f"demarche {row.get('number')}"))
    return resource


# ---------------------------------------------------------------------------- entry points


def configure(params: Mapping[str, Any], secret: Callable[[str], str]) -> dict[str, Any]:
    """:func:`source` keyword arguments from the source's settings: ``base_url``, ``demarches`` (numbers),
    the token from the secret ``token`` (``token_env`` in hub.toml)."""
    numbers = params["demarches"]
    if isinstance(numbers, (int, str)):
        numbers = [numbers]
    return {"base_url": params["base_url"], "token": secret("token"), "demarches": [int(n) for n in numbers]}


@dlt.source(name=SYSTEM)
def source(collector: Collector, base_url: str, token: str, demarches: list[int], page_size: int = MAX_PAGE_SIZE,
           max_attempts: int = 4, backoff_factor: float = 0.5, max_retry_delay: float = 30.0,
           timeout: float = 30.0) -> Any:
    """The démarches' dossiers and deleted dossiers (merge on number), and the démarches themselves.

    Incremental: only dossiers changed since the last run (``updatedSince``) and dossiers deleted
    since then (``deletedSince``) are read. The token never appears in a message or a log line.
    Run it with :func:`connectors.runner.run_source`.
    """
    from dlt.sources.helpers.requests import Client

    if not demarches:
        raise SourceError(SYSTEM, "settings", "no démarche number configured")
    numbers = list(dict.fromkeys(int(n) for n in demarches))
    session = Client(
        request_timeout=timeout, raise_for_status=False, request_max_attempts=max_attempts,
        request_backoff_factor=backoff_factor, request_max_retry_delay=max_retry_delay,
    ).session
    api = _Api(base_url, token, session, page_size, max_attempts)
    resources = [_demarches_resource(api, numbers, collector)]
    for n in numbers:
        resources += [_connection_resource(api, n, "dossiers", collector),
                      _connection_resource(api, n, "deleted_dossiers", collector)]
    return resources


# deletions are rare: the table must exist before the first one for staging to join it
STANDING_TABLES = {"deleted_dossiers": {"number": "bigint", "id": "text", "demarche_number": "bigint",
                                        "state": "text", "reason": "text", "date_supression": "timestamptz"}}


def translate(e: Exception, config: Mapping[str, Any]) -> SourceError:
    """Where it failed: the API and the resource, and the kinds of error."""
    kinds = ", ".join(sorted({type(x).__name__ for x in exception_chain(e)}))
    resource = resource_name_of(e)
    where = _Api.where(config["base_url"])
    return SourceError(SYSTEM, f"{where} {resource or ''}".strip(), f"extraction or load failed ({kinds})")
