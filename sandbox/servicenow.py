"""The ServiceNow silo: a métropole's service desk open to citizens (users and their incidents) and
a real HTTP server speaking the Table API.

``servicenow_tables`` builds ``sys_user``, ``incident`` and ``sys_audit_delete`` (JSON-ready dicts,
every value a string as the Table API gives them) from the observations; ``write_servicenow``
stores one JSON file per table; ``ServiceNowInstance`` serves a folder of those files on 127.0.0.1
(see docs/silos.md):

- ``GET /api/now/table/<table>?sysparm_query=...&sysparm_limit=N&sysparm_offset=M`` answering
  ``{"result": [...]}`` with ``Link`` (first / prev / next / last) and ``X-Total-Count`` headers;
  reference fields as ``{"link", "value"}`` (``sysparm_display_value=false``, the default);
- basic auth, or a bearer token from ``POST /oauth_token.do`` (password grant);
- errors ``{"error": {"message", "detail"}, "status": "failure"}``.

``sysparm_query`` understood: conditions joined by ``^`` — ``field<op>value`` with ``=``, ``!=``,
``>``, ``>=``, ``<``, ``<=``, ``IN`` (comma list), values plain or
``javascript:gs.dateGenerate('2026-01-01','00:00:00')`` — and ``ORDERBY<field>`` /
``ORDERBYDESC<field>``. Deleting a record removes it and writes a ``sys_audit_delete`` row.
Faults: ``inject(kind, collection, page, ...)`` (:mod:`sandbox.http_simulator`; collection = the table,
page = ``sysparm_offset // sysparm_limit + 1``).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np

from sandbox.http_simulator import (
    CollectionSimulator,
    SimulatorHandler,
    compact_json,
    read_json,
    write_json_files,
)
from sandbox.observations import _REF_S, Observations

log = logging.getLogger(__name__)

TABLES = ("sys_user", "incident", "sys_audit_delete")
DEFAULT_USER = "sandbox.hub"
DEFAULT_PASSWORD = "sandbox-servicenow-password"  # the simulator's own: not a secret of any real instance
DEFAULT_LIMIT = 10_000  # the Table API's default page size when sysparm_limit is absent

FIELDS: dict[str, tuple[str, ...]] = {
    "sys_user": ("sys_id", "user_name", "first_name", "last_name", "email", "phone", "mobile_phone", "street",
                 "zip", "city", "active", "sys_created_on", "sys_updated_on"),
    "incident": ("sys_id", "number", "caller_id", "short_description", "category", "contact_type", "state",
                 "opened_at", "resolved_at", "closed_at", "sys_created_on", "sys_updated_on"),
    "sys_audit_delete": ("sys_id", "tablename", "documentkey", "sys_created_on", "sys_updated_on"),
}
REFERENCES: dict[str, dict[str, str]] = {"incident": {"caller_id": "sys_user"}}

_CATEGORIES = (
    ("voirie", ("Nid-de-poule rue", "Trottoir dégradé", "Signalisation manquante")),
    ("eclairage", ("Lampadaire éteint", "Éclairage qui clignote")),
    ("proprete", ("Dépôt sauvage", "Tag sur façade", "Corbeille pleine")),
    ("eau", ("Fuite sur la voie publique", "Question facture d'eau")),
    ("dechets", ("Bac non collecté", "Demande de composteur", "Bac cassé")),
    ("transport", ("Arrêt de bus dégradé", "Vélo abandonné")),
)
_CONTACT_TYPES = ("self-service", "phone", "email", "walk-in")
_STATES = ("1", "2", "3", "6", "7", "8")  # New, In Progress, On Hold, Resolved, Closed, Canceled


def sn_datetime(ts: datetime) -> str:
    """The Table API's datetime (``sysparm_display_value=false``): ``2026-09-01 12:00:00``, UTC."""
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _sn_ts(values: Any) -> list[str]:
    return [str(v)[:19].replace("T", " ") for v in np.asarray(values, dtype="datetime64[s]")]


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# ---------------------------------------------------------------------------- data


def servicenow_tables(obs: Observations) -> dict[str, list[dict[str, Any]]]:
    """sys_user, incident and (empty) sys_audit_delete rows, every value a string (no ground truth)."""
    if obs.servicenow_users is None:
        raise ValueError("these observations hold no ServiceNow users")
    rng = np.random.default_rng([obs.seed, 8])
    t = obs.servicenow_users
    created = _sn_ts(t.column("sys_created_on").to_numpy())
    updated = _sn_ts(t.column("sys_updated_on").to_numpy())
    plain = t.drop_columns(["person_id", "household_id", "sys_created_on", "sys_updated_on"]).to_pylist()
    users = []
    for row, c, u in zip(plain, created, updated, strict=True):
        row["sys_created_on"], row["sys_updated_on"] = c, u
        users.append({f: _text(row.get(f)) for f in FIELDS["sys_user"]})

    k = len(users)
    count = rng.choice([0, 1, 2, 3, 4], size=k, p=[0.35, 0.35, 0.18, 0.08, 0.04])
    total = int(count.sum())
    owner = np.repeat(np.arange(k), count)
    cat = rng.integers(0, len(_CATEGORIES), size=total)
    desc = rng.integers(0, 3, size=total)
    ctype = rng.choice(len(_CONTACT_TYPES), size=total, p=[0.45, 0.3, 0.15, 0.1])
    state = rng.choice(len(_STATES), size=total, p=[0.1, 0.15, 0.05, 0.2, 0.45, 0.05])
    opened = _REF_S - rng.integers(3600, 2 * 365 * 86400, size=total).astype("timedelta64[s]")
    resolved = np.minimum(opened + rng.integers(3600, 20 * 86400, size=total).astype("timedelta64[s]"), _REF_S)
    closed = np.minimum(resolved + np.timedelta64(3 * 86400, "s"), _REF_S)
    touched = np.minimum(opened + rng.integers(60, 5 * 86400, size=total).astype("timedelta64[s]"), _REF_S)
    sys_ids = rng.integers(0, 2**63, size=(total, 2), dtype=np.int64).tolist()
    o_s, r_s, c_s, t_s = _sn_ts(opened), _sn_ts(resolved), _sn_ts(closed), _sn_ts(touched)
    incidents = []
    for j in range(total):
        st = _STATES[int(state[j])]
        name, texts = _CATEGORIES[int(cat[j])]
        res = r_s[j] if st in ("6", "7") else ""
        clo = c_s[j] if st in ("7", "8") else ""
        incidents.append({
            "sys_id": f"{sys_ids[j][0]:016x}{sys_ids[j][1]:016x}", "number": f"INC{10001 + j:07d}",
            "caller_id": users[int(owner[j])]["sys_id"], "short_description": texts[int(desc[j]) % len(texts)],
            "category": name, "contact_type": _CONTACT_TYPES[int(ctype[j])], "state": st,
            "opened_at": o_s[j], "resolved_at": res, "closed_at": clo, "sys_created_on": o_s[j],
            "sys_updated_on": max(o_s[j], t_s[j], res, clo),
        })
    return {"sys_user": users, "incident": incidents, "sys_audit_delete": []}


def write_servicenow(folder: Path, tables: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """One ``<table>.json`` (a JSON array) per table in ``folder``; returns counts."""
    return write_json_files(folder, tables)


# ---------------------------------------------------------------------------- encoded queries


class QueryError(ValueError):
    """An encoded query the instance refuses (message and detail are the Table API's)."""


_DATE_GENERATE = re.compile(r"^javascript:gs\.dateGenerate\('(\d{4}-\d\d-\d\d)',\s*'(\d\d:\d\d:\d\d)'\)$")
_TERM = re.compile(r"^([a-z_][a-z0-9_]*?)(>=|<=|!=|>|<|=|IN)(.*)$")


def _query_value(text: str) -> str:
    m = _DATE_GENERATE.match(text)
    if m:
        return f"{m[1]} {m[2]}"
    if text.startswith("javascript:"):
        raise QueryError("only gs.dateGenerate() scripts are evaluated")
    return text


def parse_query(table: str, query: str) -> tuple[list[tuple[str, str, Any]], list[tuple[str, bool]]]:
    """Conditions (field, op, value) and order (field, descending) of a ``sysparm_query``."""
    conds: list[tuple[str, str, Any]] = []
    order: list[tuple[str, bool]] = []
    for term in (t for t in query.split("^") if t):
        if term.startswith("ORDERBYDESC"):
            order.append((term[11:], True))
            continue
        if term.startswith("ORDERBY"):
            order.append((term[7:], False))
            continue
        m = _TERM.match(term)
        if not m:
            raise QueryError("could not parse a condition of sysparm_query")
        field, op, value = m.groups()
        conds.append((field, op, value.split(",") if op == "IN" else _query_value(value)))
    for field, *_ in conds + [(f, "", None) for f, _ in order]:
        if field not in FIELDS[table]:
            raise QueryError(f"field {field} does not exist on table {table}")
    return conds, order


def _keep(row: dict[str, Any], conds: list[tuple[str, str, Any]]) -> bool:
    for field, op, value in conds:
        v = row.get(field, "")
        if op == "IN":
            ok = v in value
        elif op == "=":
            ok = v == value
        elif op == "!=":
            ok = v != value
        else:  # ServiceNow's internal datetimes and numbers-as-strings compare as text here
            ok = v != "" and {">": v > value, ">=": v >= value, "<": v < value, "<=": v <= value}[op]
        if not ok:
            return False
    return True


# ---------------------------------------------------------------------------- server


class ServiceNowInstance(CollectionSimulator):
    """A ServiceNow instance's Table API over a folder of table JSON files, on 127.0.0.1.

    Use as a context manager, or :meth:`start` / :meth:`stop`; ``url`` is the instance URL.
    Faults target (table, page); ``request_log`` holds (table, page, status).
    """

    label = "ServiceNow instance"
    thread_name = "servicenow"
    logger = log

    def __init__(self, data_dir: Path, username: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD,
                 client_id: str | None = None, client_secret: str | None = None, host: str = "127.0.0.1",
                 port: int = 0):
        super().__init__(host, port)
        self.data_dir = Path(data_dir)
        self.username, self.password = username, password
        self.client_id, self.client_secret = client_id, client_secret
        self._tokens: set[str] = set()
        self._version = 0
        self._cache: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        self._data: dict[str, dict[str, dict[str, Any]]] = {
            name: {r["sys_id"]: r for r in read_json(self.data_dir / f"{name}.json")} for name in TABLES}

    # ------------------------------------------------------------------ changes between runs
    def _now(self, table: str) -> str:
        latest = max((r["sys_updated_on"] for r in self._data[table].values()), default="")
        now = sn_datetime(datetime.now(UTC))
        if now <= latest:
            now = sn_datetime(datetime.fromisoformat(latest).replace(tzinfo=UTC) + timedelta(seconds=1))
        return now

    def touch(self, table: str, sys_id: str, **changes: Any) -> dict[str, Any]:
        """Change fields of one record (values as strings, or just bump it); ``sys_updated_on`` moves."""
        with self._lock:
            row = dict(self._data[table][sys_id])
            row.update({k: _text(v) for k, v in changes.items()})
            row["sys_updated_on"] = self._now(table)
            self._data[table][sys_id] = row
            self._version += 1
            return row

    def delete(self, table: str, sys_id: str) -> dict[str, Any]:
        """Delete a record: gone from its table, a ``sys_audit_delete`` row records it."""
        with self._lock:
            del self._data[table][sys_id]
            stamp = self._now("sys_audit_delete")
            audit = {"sys_id": secrets.token_hex(16), "tablename": table, "documentkey": sys_id,
                     "sys_created_on": stamp, "sys_updated_on": stamp}
            self._data["sys_audit_delete"][audit["sys_id"]] = audit
            self._version += 1
            return audit

    def add(self, table: str, **fields_: Any) -> dict[str, Any]:
        """Insert a record (a new sys_id unless given); created and updated now."""
        with self._lock:
            row = {f: "" for f in FIELDS[table]}
            row.update({k: _text(v) for k, v in fields_.items()})
            row["sys_id"] = row["sys_id"] or secrets.token_hex(16)
            stamp = self._now(table)
            row["sys_created_on"] = row["sys_created_on"] or stamp
            row["sys_updated_on"] = stamp
            self._data[table][row["sys_id"]] = row
            self._version += 1
            return row

    def records(self, table: str) -> list[dict[str, Any]]:
        """The current records of a table, by sys_id."""
        with self._lock:
            return [dict(r) for _, r in sorted(self._data[table].items())]

    # ------------------------------------------------------------------ auth and pages
    def _authorised(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme == "Basic":
            try:
                user, _, pwd = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            return user == self.username and pwd == self.password
        with self._lock:
            return scheme == "Bearer" and value in self._tokens

    def _grant(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.client_id is None or form.get("client_id") != self.client_id \
                or form.get("client_secret") != self.client_secret:
            return 401, {"error_description": "access_denied", "error": "server_error"}
        if form.get("grant_type") != "password" or form.get("username") != self.username \
                or form.get("password") != self.password:
            return 401, {"error_description": "access_denied", "error": "server_error"}
        token = secrets.token_urlsafe(64)
        with self._lock:
            self._tokens.add(token)
        return 200, {"access_token": token, "refresh_token": secrets.token_urlsafe(64), "scope": "useraccount",
                     "token_type": "Bearer", "expires_in": 1799}

    def _rows(self, table: str, query: str) -> list[dict[str, Any]]:
        conds, order = parse_query(table, query)
        with self._lock:
            key = (table, query, self._version)
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            rows = [r for r in self._data[table].values() if _keep(r, conds)]
        rows.sort(key=lambda r: r["sys_id"])  # stable paging when no order is asked
        for field, desc in reversed(order):
            rows.sort(key=lambda r, f=field: r.get(f, ""), reverse=desc)
        with self._lock:
            if len(self._cache) > 32:
                self._cache.clear()
            self._cache[key] = rows
        return rows

    def _render(self, table: str, row: dict[str, Any], fields: list[str] | None, exclude_link: bool) -> dict:
        out: dict[str, Any] = {}
        refs = REFERENCES.get(table, {})
        for f in fields or FIELDS[table]:
            v = row.get(f, "")
            if f in refs and v and not exclude_link:
                v = {"link": f"{self.url}/api/now/table/{refs[f]}/{v}", "value": v}
            out[f] = v
        return out


_TABLE_PATH = re.compile(r"^/api/now(?:/v[12])?/table/(\w+)/?$")


def _error_body(message: str, detail: str | None) -> bytes:
    return json.dumps({"error": {"message": message, "detail": detail}, "status": "failure"}).encode()


class _Handler(SimulatorHandler):
    simulator: ServiceNowInstance
    json_type = "application/json;charset=UTF-8"
    html_page = (b"<html><head><title>Instance Hibernating</title></head><body>"
                 b"<h1>Your instance is hibernating</h1></body></html>")
    html_type = "text/html"
    fault_errors: ClassVar[dict[str, tuple[int, bytes]]] = {
        "500": (500, _error_body("Internal server error", None)),
        "429": (429, _error_body("Rate limit exceeded", "Too many requests for this user")),
        "401": (401, _error_body("User Not Authenticated", "Required to provide Auth information")),
    }

    def _error(self, status: int, message: str, detail: str | None, headers: dict[str, str] | None = None) -> None:
        self._send(status, _error_body(message, detail), headers=headers)

    def do_POST(self) -> None:
        raw = self._body()
        if urlparse(self.path).path != "/oauth_token.do":
            self._error(400, "Requested URI does not represent any resource", None)
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        status, body = self.simulator._grant(form)
        self._log(("oauth_token", None), status)
        self._send(status, json.dumps(body).encode())

    def do_GET(self) -> None:
        parsed = urlparse(self.path)
        m = _TABLE_PATH.match(parsed.path)
        if not m:
            self._error(400, "Requested URI does not represent any resource", None)
            return
        table = m.group(1)
        if not self.simulator._authorised(self.headers.get("Authorization", "")):
            self._log((table, None), 401)
            self._error(401, "User Not Authenticated", "Required to provide Auth information",
                        headers={"WWW-Authenticate": 'BASIC realm="Service-now"'})
            return
        if table not in TABLES:
            self._log((table, None), 400)
            self._error(400, f"Invalid table {table}", None)
            return
        q = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        try:
            limit = int(q.get("sysparm_limit", DEFAULT_LIMIT))
            offset = int(q.get("sysparm_offset", 0))
            if limit < 1 or offset < 0:
                raise ValueError
            fields = [f for f in q["sysparm_fields"].split(",") if f] if q.get("sysparm_fields") else None
            if q.get("sysparm_display_value", "false") != "false":
                raise QueryError("this instance serves sysparm_display_value=false only")
            rows = self.simulator._rows(table, q.get("sysparm_query", ""))
        except QueryError as e:
            self._log((table, None), 400)
            self._error(400, "Invalid query", str(e))
            return
        except ValueError:
            self._log((table, None), 400)
            self._error(400, "Invalid sysparm_limit or sysparm_offset", None)
            return
        page = offset // limit + 1
        exclude = q.get("sysparm_exclude_reference_link", "false") == "true"
        chunk = [self.simulator._render(table, r, fields, exclude) for r in rows[offset:offset + limit]]
        body = compact_json({"result": chunk})
        headers = {"X-Total-Count": str(len(rows)), "Link": self._links(table, q, offset, limit, len(rows))}
        self._serve((table, page), body, headers=headers, records=len(chunk))

    def _links(self, table: str, q: dict[str, str], offset: int, limit: int, total: int) -> str:
        base = f"{self.simulator.url}/api/now/table/{table}"

        def link(off: int, rel: str) -> str:
            return f'<{base}?{urlencode({**q, "sysparm_limit": limit, "sysparm_offset": off})}>;rel="{rel}"'

        last = max(0, (total - 1) // limit * limit)
        parts = [link(0, "first")]
        if offset > 0:
            parts.append(link(max(0, offset - limit), "prev"))
        if offset + limit < total:
            parts.append(link(offset + limit, "next"))
        parts.append(link(last, "last"))
        return ",".join(parts)


ServiceNowInstance.handler = _Handler
