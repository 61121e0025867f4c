"""The Salesforce silo: a citizen-relations org (Contacts, household Accounts, Cases) and a real
HTTP server speaking the REST API's OAuth 2 token endpoint and SOQL query resource.

``salesforce_objects`` builds the three objects (JSON-ready dicts, the field names and formats of
the REST API) from the observations; ``write_salesforce`` stores one JSON file per object;
``SalesforceOrg`` serves a folder of those files on 127.0.0.1 (see docs/silos.md):

- ``POST /services/oauth2/token`` (``client_credentials`` or ``password`` grant) →
  ``{"access_token", "instance_url", "token_type": "Bearer", ...}``;
- ``GET /services/data/vNN.N/query?q=<SOQL>`` and ``/queryAll`` (deleted rows too), answering
  ``{"totalSize", "done", "records", "nextRecordsUrl"}`` in batches; the next batches at
  ``/services/data/vNN.N/query/<locator>-<offset>``.

The SOQL understood is the shape connectors send: ``SELECT <fields> FROM <object> [WHERE <field>
<op> <literal> [AND ...]] [ORDER BY <field> [ASC|DESC], ...] [LIMIT n]``. Faults are injected with
the shared ``inject(kind, collection, page, ...)`` (collection = the sObject, or ``token``;
page = the batch number, 1 for the query itself).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import numpy as np

from sandbox.http_simulator import (
    CollectionSimulator,
    SimulatorHandler,
    compact_json,
    read_json,
    write_json_files,
)
from sandbox.observations import _REF_S, Observations, salesforce_id

log = logging.getLogger(__name__)

OBJECTS = ("Account", "Contact", "Case")
API_VERSION = "v62.0"
DEFAULT_CLIENT_ID = "sandbox-salesforce-client"
DEFAULT_CLIENT_SECRET = "sandbox-salesforce-secret"  # the simulator's own: not a secret of any real org
DEFAULT_BATCH_SIZE = 2000
_MAX_CURSORS = 64

# Queryable fields per object (Salesforce compares names case-insensitively).
FIELDS: dict[str, tuple[str, ...]] = {
    "Account": ("Id", "Name", "Type", "BillingStreet", "BillingPostalCode", "BillingCity", "IsDeleted",
                "CreatedDate", "SystemModstamp"),
    "Contact": ("Id", "AccountId", "FirstName", "LastName", "Birthdate", "Email", "Phone", "MobilePhone",
                "MailingStreet", "MailingPostalCode", "MailingCity", "IsDeleted", "CreatedDate",
                "SystemModstamp"),
    "Case": ("Id", "CaseNumber", "ContactId", "AccountId", "Subject", "Type", "Status", "Origin", "IsClosed",
             "CreatedDate", "ClosedDate", "IsDeleted", "SystemModstamp"),
}
_DATETIME_FIELDS = {"CreatedDate", "SystemModstamp", "ClosedDate"}
_KEY_PREFIX = {"Account": "001", "Contact": "003", "Case": "500"}

_CASE_TYPES = (
    ("Transports", ("Carte de transport scolaire", "Abonnement TER BreizhGo", "Réclamation car scolaire")),
    ("Aides", ("Demande d'aide à la mobilité", "Aide au permis de conduire", "Chèque sport")),
    ("Voirie", ("Signalement nid-de-poule", "Éclairage public en panne", "Panneau endommagé")),
    ("État civil", ("Demande d'acte de naissance", "Rendez-vous carte d'identité", "Recensement citoyen")),
    ("Information", ("Question sur un dossier", "Horaires d'ouverture", "Changement d'adresse")),
)
_STATUS = ("New", "Working", "Escalated", "Closed")
_ORIGINS = ("Web", "Phone", "Email")


# ---------------------------------------------------------------------------- formats


def sf_datetime(ts: datetime) -> str:
    """Salesforce's REST datetime: ``2026-09-01T12:00:00.000+0000`` (UTC, milliseconds)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"


def _sf_ts(values: Any) -> list[str]:
    return [str(v)[:19] + ".000+0000" for v in np.asarray(values, dtype="datetime64[s]")]


def _comparable(value: str) -> str:
    """A stored datetime (``...000+0000``) as a sortable UTC string."""
    return value[:23]


# ---------------------------------------------------------------------------- data


def salesforce_objects(obs: Observations) -> dict[str, list[dict[str, Any]]]:
    """Account, Contact and Case records (REST API field names and formats, no ground truth)."""
    if obs.salesforce_contacts is None:
        raise ValueError("these observations hold no Salesforce contacts")
    rng = np.random.default_rng([obs.seed, 7])
    t = obs.salesforce_contacts
    contacts = t.drop_columns(["person_id", "household_id", "Birthdate", "CreatedDate", "SystemModstamp"]).to_pylist()
    dobs = t.column("Birthdate").to_pylist()
    created = _sf_ts(t.column("CreatedDate").to_numpy())
    modstamp = _sf_ts(t.column("SystemModstamp").to_numpy())
    households = t.column("household_id").to_pylist()
    k = len(contacts)

    # Household accounts (one per household with a contact); a few contacts belong to an organisation.
    from sandbox.observations import _ASSO_KINDS, _ASSO_TOPICS

    accounts: list[dict[str, Any]] = []
    account_of_household: dict[int, str] = {}
    n_org = max(2, k // 60)
    org_ids = []
    for j in range(n_org):
        aid = salesforce_id("001", j + 1)
        org_ids.append(aid)
        name = f"{_ASSO_KINDS[j % len(_ASSO_KINDS)]} {_ASSO_TOPICS[j % len(_ASSO_TOPICS)]}"
        accounts.append({"Id": aid, "Name": name,
                         "Type": "Organization", "BillingStreet": None, "BillingPostalCode": None,
                         "BillingCity": None, "IsDeleted": False, "CreatedDate": "2021-03-01T09:00:00.000+0000",
                         "SystemModstamp": "2021-03-01T09:00:00.000+0000"})
    in_org = rng.random(k) < 0.04
    org_pick = rng.integers(0, n_org, size=k)
    for i, row in enumerate(contacts):
        row["Birthdate"] = None if dobs[i] is None else dobs[i].isoformat()
        row["CreatedDate"] = created[i]
        row["SystemModstamp"] = modstamp[i]
        if in_org[i]:
            row["AccountId"] = org_ids[int(org_pick[i])]
            continue
        hid = households[i]
        if hid not in account_of_household:
            aid = salesforce_id("001", len(accounts) + 1)
            account_of_household[hid] = aid
            accounts.append({"Id": aid, "Name": f"Foyer {(row['LastName'] or '').upper()}".strip(),
                             "Type": "Household", "BillingStreet": row["MailingStreet"],
                             "BillingPostalCode": row["MailingPostalCode"], "BillingCity": row["MailingCity"],
                             "IsDeleted": False, "CreatedDate": created[i], "SystemModstamp": created[i]})
        row["AccountId"] = account_of_household[hid]
    field_order = FIELDS["Contact"]
    contacts = [{f: row.get(f) for f in field_order} for row in contacts]

    # Cases: 0-4 requests per contact, over the two years before the reference date.
    n_cases = rng.choice([0, 1, 2, 3, 4], size=k, p=[0.3, 0.35, 0.2, 0.1, 0.05])
    total = int(n_cases.sum())
    owner = np.repeat(np.arange(k), n_cases)
    kind = rng.integers(0, len(_CASE_TYPES), size=total)
    subject = rng.integers(0, 3, size=total)
    status = rng.choice(len(_STATUS), size=total, p=[0.1, 0.2, 0.05, 0.65])
    origin = rng.choice(len(_ORIGINS), size=total, p=[0.5, 0.3, 0.2])
    opened = _REF_S - rng.integers(3600, 2 * 365 * 86400, size=total).astype("timedelta64[s]")
    took = rng.integers(3600, 30 * 86400, size=total).astype("timedelta64[s]")
    closed = np.minimum(opened + took, _REF_S)
    touched = np.minimum(opened + rng.integers(60, 20 * 86400, size=total).astype("timedelta64[s]"), _REF_S)
    deleted = rng.random(total) < 0.005
    opened_s, closed_s, touched_s = _sf_ts(opened), _sf_ts(closed), _sf_ts(touched)
    cases = []
    for j in range(total):
        c = contacts[int(owner[j])]
        is_closed = _STATUS[int(status[j])] == "Closed"
        type_name, subjects = _CASE_TYPES[int(kind[j])]
        cases.append({
            "Id": salesforce_id("500", j + 1), "CaseNumber": f"{1000 + j + 1:08d}", "ContactId": c["Id"],
            "AccountId": c["AccountId"], "Subject": subjects[int(subject[j])], "Type": type_name,
            "Status": _STATUS[int(status[j])], "Origin": _ORIGINS[int(origin[j])], "IsClosed": is_closed,
            "CreatedDate": opened_s[j], "ClosedDate": closed_s[j] if is_closed else None,
            "IsDeleted": bool(deleted[j]),
            "SystemModstamp": max(closed_s[j] if is_closed else touched_s[j], opened_s[j]),
        })
    return {"Account": accounts, "Contact": contacts, "Case": cases}


def write_salesforce(folder: Path, objects: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """One ``<Object>.json`` (a JSON array) per object in ``folder``; returns counts."""
    return write_json_files(folder, objects)


# ---------------------------------------------------------------------------- SOQL


class SoqlError(ValueError):
    """A query the org refuses: ``code`` is Salesforce's errorCode."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_COND = re.compile(r"^\s*(\w+)\s*(>=|<=|!=|=|>|<)\s*(.+?)\s*$", re.DOTALL)
_DT_LITERAL = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)$")
_OPS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
        "=": lambda a, b: a == b, "!=": lambda a, b: a != b}


def _literal(text: str) -> Any:
    m = _DT_LITERAL.match(text)
    if m:
        day, clock, _, zone = m.groups()
        zone = "+00:00" if zone == "Z" else zone[:3] + ":" + zone[-2:]
        ts = datetime.fromisoformat(f"{day}T{clock}{zone}")
        return sf_datetime(ts)[:23]
    if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        return date.fromisoformat(text).isoformat()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() == "null":
        return None
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("\\'", "'")
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    raise SoqlError("MALFORMED_QUERY", "unexpected token in WHERE clause")


def _field(obj: str, name: str) -> str:
    for f in FIELDS[obj]:
        if f.lower() == name.lower():
            return f
    raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{obj}'. If you are attempting to use "
                                     "a custom field, be sure to append the '__c' after the custom field name.")


def parse_soql(q: str) -> dict[str, Any]:
    """The parts of a SOQL query of the supported shape: object, fields, conditions, order, limit."""
    m = _SOQL.match(q)
    if not m:
        raise SoqlError("MALFORMED_QUERY", "unexpected token: the query is not SELECT ... FROM ...")
    obj = next((o for o in OBJECTS if o.lower() == m["obj"].lower()), None)
    if obj is None:
        raise SoqlError("INVALID_TYPE", f"sObject type '{m['obj']}' is not supported.")
    fields = [_field(obj, f.strip()) for f in m["fields"].split(",")]
    conds = []
    if m["where"]:
        for part in re.split(r"\s+AND\s+", m["where"], flags=re.IGNORECASE):
            c = _COND.match(part)
            if not c:
                raise SoqlError("MALFORMED_QUERY", "unexpected token in WHERE clause")
            conds.append((_field(obj, c[1]), c[2], _literal(c[3])))
    order = []
    if m["order"]:
        for part in m["order"].split(","):
            words = part.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
                raise SoqlError("MALFORMED_QUERY", "unexpected token in ORDER BY clause")
            order.append((_field(obj, words[0]), len(words) == 2 and words[1].upper() == "DESC"))
    return {"object": obj, "fields": fields, "where": conds, "order": order or [("Id", False)],
            "limit": int(m["limit"]) if m["limit"] else None}


def _value(row: dict[str, Any], f: str) -> Any:
    v = row.get(f)
    return _comparable(v) if f in _DATETIME_FIELDS and isinstance(v, str) else v


def _matches(row: dict[str, Any], conds: list[tuple[str, str, Any]]) -> bool:
    for f, op, lit in conds:
        v = _value(row, f)
        if v is None or lit is None:
            if not ((op == "=" and v is lit) or (op == "!=" and (v is None) != (lit is None))):
                return False
            continue
        try:
            if not _OPS[op](v, lit):
                return False
        except TypeError:
            return False
    return True


# ---------------------------------------------------------------------------- server


class SalesforceOrg(CollectionSimulator):
    """A Salesforce org's REST API over a folder of object JSON files, on 127.0.0.1.

    Use as a context manager, or :meth:`start` / :meth:`stop`. ``url`` is both the login URL
    (token endpoint) and the ``instance_url`` it hands out. ``batch_size`` caps the records per
    query batch (Salesforce: 2000; the ``Sforce-Query-Options: batchSize=N`` header asks for fewer).
    Faults target (sObject or ``token``, batch); ``request_log`` holds (object or "token", batch, status).
    """

    label = "Salesforce org"
    thread_name = "salesforce"
    logger = log

    def __init__(self, data_dir: Path, client_id: str = DEFAULT_CLIENT_ID,
                 client_secret: str = DEFAULT_CLIENT_SECRET, username: str | None = None,
                 password: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE, host: str = "127.0.0.1",
                 port: int = 0):
        super().__init__(host, port)
        self.data_dir = Path(data_dir)
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password = username, password
        self.batch_size = batch_size
        self._tokens: set[str] = set()
        self._cursors: OrderedDict[str, tuple[str, list[dict[str, Any]], int]] = OrderedDict()
        self._cursor_seq = 0
        self._data: dict[str, dict[str, dict[str, Any]]] = {
            name: {r["Id"]: r for r in read_json(self.data_dir / f"{name}.json")} for name in OBJECTS}

    def expire_sessions(self) -> None:
        """Invalidate every access token handed out (as a session timeout does)."""
        with self._lock:
            self._tokens.clear()

    # ------------------------------------------------------------------ changes between runs
    def _bump(self, obj: str) -> str:
        latest = max((_comparable(r["SystemModstamp"]) for r in self._data[obj].values()), default="")
        now = datetime.now(UTC)
        stamp = sf_datetime(now)
        if stamp[:23] <= latest:
            stamp = sf_datetime(datetime.fromisoformat(latest + "+00:00") + timedelta(seconds=1))
        return stamp

    def touch(self, obj: str, record_id: str, **changes: Any) -> dict[str, Any]:
        """Change fields of one record (or just bump it); ``SystemModstamp`` moves to now."""
        with self._lock:
            row = dict(self._data[obj][record_id])
            row.update(changes)
            row["SystemModstamp"] = self._bump(obj)
            self._data[obj][record_id] = row
            return row

    def delete(self, obj: str, record_id: str) -> None:
        """Delete a record to the recycle bin: ``IsDeleted`` true (seen by queryAll only), stamp bumped."""
        self.touch(obj, record_id, IsDeleted=True)

    def add(self, obj: str, **fields_: Any) -> dict[str, Any]:
        """Create a record (the next Id unless given); CreatedDate and SystemModstamp are now."""
        with self._lock:
            rows = self._data[obj]
            row = {f: None for f in FIELDS[obj]}
            row.update({"IsDeleted": False}, **fields_)
            row.setdefault("Id", None)
            if row["Id"] is None:
                row["Id"] = salesforce_id(_KEY_PREFIX[obj], len(rows) + 1)
            stamp = self._bump(obj)
            row["CreatedDate"] = row.get("CreatedDate") or stamp
            row["SystemModstamp"] = stamp
            rows[row["Id"]] = row
            return row

    def records(self, obj: str) -> list[dict[str, Any]]:
        """Every record of an object (deleted ones too), by Id."""
        with self._lock:
            return [dict(r) for _, r in sorted(self._data[obj].items())]

    # ------------------------------------------------------------------ token and queries
    def _grant(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type")
        cid = form.get("client_id") or (basic[0] if basic else None)
        csecret = form.get("client_secret") or (basic[1] if basic else None)
        if grant not in ("client_credentials", "password"):
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        if cid != self.client_id or csecret != self.client_secret:
            return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
        if grant == "password" and (self.username is None or form.get("username") != self.username
                                    or form.get("password") != self.password):
            return 400, {"error": "invalid_grant", "error_description": "authentication failure"}
        token = "00D5g000004ZXYZ!" + secrets.token_urlsafe(48)
        with self._lock:
            self._tokens.add(token)
        return 200, {"access_token": token, "instance_url": self.url,
                     "id": f"{self.url}/id/00D5g000004ZXYZ/0055g00000ABCDE",
                     "token_type": "Bearer", "issued_at": str(int(time.time() * 1000)),
                     "signature": secrets.token_urlsafe(32)}

    def _authorised(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        with self._lock:
            return scheme in ("Bearer", "OAuth") and token in self._tokens

    def _start_query(self, soql: str, include_deleted: bool) -> tuple[str, list[dict[str, Any]], list[str]]:
        spec = parse_soql(soql)
        obj = spec["object"]
        with self._lock:
            rows = [r for r in self._data[obj].values()
                    if (include_deleted or not r.get("IsDeleted")) and _matches(r, spec["where"])]
        for f, desc in reversed(spec["order"]):
            rows.sort(key=lambda r, f=f: (_value(r, f) is None, _value(r, f) if _value(r, f) is not None else ""),
                      reverse=desc)
        if spec["limit"] is not None:
            rows = rows[: spec["limit"]]
        fields = spec["fields"]
        records = [{"attributes": {"type": obj, "url": f"/services/data/{API_VERSION}/sobjects/{obj}/{r['Id']}"},
                    **{f: r.get(f) for f in fields}} for r in rows]
        return obj, records, fields

    def _open_cursor(self, obj: str, records: list[dict[str, Any]]) -> str:
        with self._lock:
            self._cursor_seq += 1
            locator = f"01g5g{self._cursor_seq:010d}"
            self._cursors[locator] = (obj, records, 0)
            while len(self._cursors) > _MAX_CURSORS:
                self._cursors.popitem(last=False)
            return locator

    def _cursor(self, locator: str) -> tuple[str, list[dict[str, Any]]] | None:
        with self._lock:
            entry = self._cursors.get(locator)
            return None if entry is None else (entry[0], entry[1])

    def _batch(self, version: str, locator: str, records: list[dict[str, Any]], offset: int,
               size: int) -> bytes:
        chunk = records[offset:offset + size]
        done = offset + size >= len(records)
        body: dict[str, Any] = {"totalSize": len(records), "done": done}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{offset + size}"
        body["records"] = chunk
        return compact_json(body)


def _batch_size(header: str | None, cap: int) -> int:
    m = re.search(r"batchSize\s*=\s*(\d+)", header or "")
    asked = min(max(int(m.group(1)), 200), 2000) if m else DEFAULT_BATCH_SIZE
    return max(1, min(asked, cap))


_DATA_PATH = re.compile(r"^/services/data/(v\d+\.\d)/(query|queryAll)(?:/(01g\w+)-(\d+))?/?$")


def _errors_body(code: str, message: str) -> bytes:
    return json.dumps([{"message": message, "errorCode": code}]).encode()


class _Handler(SimulatorHandler):
    simulator: SalesforceOrg
    json_type = "application/json;charset=UTF-8"
    html_page = (b"<!DOCTYPE html><html><head><title>Salesforce - Maintenance</title></head><body>"
                 b"<h1>Site under maintenance</h1></body></html>")
    html_type = "text/html;charset=UTF-8"
    fault_errors: ClassVar[dict[str, tuple[int, bytes]]] = {
        "500": (500, _errors_body("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId "
                                                       "if you contact support: 1234567890-12345 (-1234567890)")),
        "429": (429, _errors_body("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")),
        "401": (401, _errors_body("INVALID_SESSION_ID", "Session expired or invalid")),
    }

    def _errors(self, status: int, code: str, message: str) -> None:
        self._send(status, _errors_body(code, message))

    def do_POST(self) -> None:
        org = self.simulator
        path = urlparse(self.path).path.rstrip("/")
        raw = self._body()
        if path != "/services/oauth2/token":
            self._errors(404, "NOT_FOUND", "The requested resource does not exist")
            return
        fault = org._take_fault(("token", None))
        if fault is not None and self._fail(fault, ("token", None), b'{"access_token":'):
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        basic = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, pwd = base64.b64decode(auth[6:]).decode().partition(":")
                basic = (user, pwd)
            except ValueError:
                basic = None
        status, body = org._grant(form, basic)
        self._log(("token", None), status)
        self._send(status, json.dumps(body).encode())

    def do_GET(self) -> None:
        org = self.simulator
        parsed = urlparse(self.path)
        m = _DATA_PATH.match(parsed.path)
        if not m:
            self._errors(404, "NOT_FOUND", "The requested resource does not exist")
            return
        version, resource, locator, offset = m.groups()
        if not org._authorised(self.headers.get("Authorization", "")):
            self._log((resource, None), 401)
            self._errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
            return
        size = _batch_size(self.headers.get("Sforce-Query-Options"), org.batch_size)
        if locator is None:
            q = parse_qs(parsed.query).get("q", [""])[0]
            try:
                obj, records, _ = org._start_query(q, include_deleted=resource == "queryAll")
            except SoqlError as e:
                self._log((resource, None), 400)
                self._errors(400, e.code, e.message)
                return
            locator, start, page = org._open_cursor(obj, records), 0, 1
        else:
            cur = org._cursor(locator)
            if cur is None:
                self._log((resource, None), 400)
                self._errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
                return
            obj, records = cur
            start = int(offset)
            page = start // size + 1
        self._serve((obj, page), org._batch(version, locator, records, start, size),
                    records=len(records[start:start + size]))


SalesforceOrg.handler = _Handler
