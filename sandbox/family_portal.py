"""The family portal silo: five collections and a real HTTP server speaking its REST API.

``family_collections`` builds the collections (lists of JSON-ready dicts) from the
observations; ``write_family`` stores them as one JSON file per collection; ``FamilyPortal``
serves a folder of those files on 127.0.0.1 (``GET /api/v1/<collection>``, see docs/silos.md),
with faults that tests can inject at runtime and records they can change between two loads.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np
import pyarrow as pa

from sandbox.http_simulator import (
    CollectionSimulator,
    SimulatorHandler,
    compact_json,
    read_json,
    write_json_files,
)
from sandbox.observations import _REF_S, Observations

log = logging.getLogger(__name__)

COLLECTIONS = ("familles", "responsables", "enfants", "inscriptions", "factures")
DEFAULT_TOKEN = "sandbox-family-token"
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
_SOFT_DELETE = ("responsables", "enfants")  # collections with a `deleted` flag; others vanish


def iso_z(ts: datetime) -> str:
    """``2026-09-01T12:00:00Z`` (second precision, UTC)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts(values: Any) -> list[str]:
    return [str(v)[:19] + "Z" for v in np.asarray(values, dtype="datetime64[s]")]


def _dates(values: Any) -> list[str | None]:
    return [None if v is None else v.isoformat() for v in values]


# ---------------------------------------------------------------------------- data


def _people(t: pa.Table) -> list[dict[str, Any]]:
    """A people table's rows without ground truth, dates in the API's formats (updated_at last)."""
    t = t.drop_columns(["person_id", "household_id"])
    rows = t.drop_columns(["updated_at", "date_naissance"]).to_pylist()
    for row, upd, dob in zip(rows, _ts(t.column("updated_at").to_numpy()),
                             _dates(t.column("date_naissance").to_pylist()), strict=True):
        row["date_naissance"] = dob
        row["updated_at"] = upd
    return rows


def family_collections(obs: Observations) -> dict[str, list[dict[str, Any]]]:
    """The five collections as JSON-ready dicts (no ground truth)."""
    rng = np.random.default_rng([obs.seed, 3])
    f = obs.family_familles
    familles = [
        {
            "id": i, "nom_famille": nom,
            "adresse": {"ligne": ligne, "code_postal": cp, "commune": commune, "code_insee": insee},
            "quotient_familial": qf, "updated_at": upd,
        }
        for i, nom, ligne, cp, commune, insee, qf, upd in zip(
            f.column("id").to_pylist(), f.column("nom_famille").to_pylist(), f.column("ligne").to_pylist(),
            f.column("code_postal").to_pylist(), f.column("commune").to_pylist(),
            f.column("code_insee").to_pylist(), f.column("quotient_familial").to_pylist(),
            _ts(f.column("updated_at").to_numpy()), strict=True)
    ]
    responsables = _people(obs.family_responsables)
    enfants = _people(obs.family_enfants)

    # Inscriptions: 1-3 activities per child this school year, some ended last year.
    activities = ("cantine", "periscolaire_matin", "periscolaire_soir", "centre_loisirs")
    inscriptions: list[dict[str, Any]] = []
    n_e = len(enfants)
    count = rng.choice([1, 2, 3], size=n_e, p=[0.45, 0.4, 0.15])
    first_act = rng.choice(4, size=n_e, p=[0.7, 0.1, 0.12, 0.08])
    last_year = rng.random(n_e) < 0.3
    pending = rng.random(n_e * 3) < 0.04
    upd_s = _REF_S - rng.integers(0, 60 * 86400, size=n_e * 3).astype("timedelta64[s]")
    upd_iso = _ts(upd_s)
    k = 0
    for j, child in enumerate(enfants):
        for a in range(int(count[j])):
            act = activities[(int(first_act[j]) + a) % 4]
            statut = "en_attente" if pending[k] else "active"
            inscriptions.append({"id": len(inscriptions) + 1, "enfant_id": child["id"], "activite": act,
                                 "annee_scolaire": "2026-2027", "date_debut": "2026-09-01",
                                 "date_fin": "2027-07-04", "statut": statut, "updated_at": upd_iso[k]})
            k += 1
        if last_year[j]:
            inscriptions.append({"id": len(inscriptions) + 1, "enfant_id": child["id"],
                                 "activite": activities[int(first_act[j])], "annee_scolaire": "2025-2026",
                                 "date_debut": "2025-09-01", "date_fin": "2026-07-03", "statut": "terminee",
                                 "updated_at": "2026-07-04T02:00:00Z"})

    # Factures: one per family per month of the current and previous school year with cantine.
    payer: dict[int, int] = {}
    for row in responsables:
        payer.setdefault(row["famille_id"], row["id"])
    periods = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-09"]
    factures: list[dict[str, Any]] = []
    fam_ids = [fam["id"] for fam in familles if fam["id"] in payer]
    cents = rng.integers(1_500, 18_000, size=(len(fam_ids), len(periods)))
    unpaid = rng.random((len(fam_ids), len(periods))) < 0.08
    for i, fid in enumerate(fam_ids):
        for p, period in enumerate(periods):
            y, m = int(period[:4]), int(period[5:])
            emission = datetime(y + (m == 12), m % 12 + 1, 5, tzinfo=UTC)
            c = int(cents[i, p])
            factures.append({
                "id": len(factures) + 1, "famille_id": fid, "responsable_id": payer[fid], "periode": period,
                "montant": f"{c // 100}.{c % 100:02d}", "statut": "impayee" if unpaid[i, p] else "payee",
                "date_emission": emission.date().isoformat(),
                "date_echeance": (emission + timedelta(days=30)).date().isoformat(),
                "updated_at": iso_z(emission + timedelta(hours=3)),
            })
    return {"familles": familles, "responsables": responsables, "enfants": enfants,
            "inscriptions": inscriptions, "factures": factures}


def write_family(folder: Path, collections: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """One ``<collection>.json`` (a JSON array) per collection in ``folder``; returns counts."""
    return write_json_files(folder, collections)


# ---------------------------------------------------------------------------- server


@dataclass
class _Collection:
    rows: list[dict[str, Any]]
    keys: list[tuple[str, int]] = field(default_factory=list)  # (updated_at, id), sorted
    blobs: list[bytes] = field(default_factory=list)  # pre-serialised rows, same order

    def pop(self, i: int) -> dict[str, Any]:
        del self.keys[i]
        del self.blobs[i]
        return self.rows.pop(i)

    def push(self, row: dict[str, Any]) -> None:
        """Insert a row at its place in (updated_at, id) order."""
        key = (row["updated_at"], row["id"])
        i = bisect.bisect_left(self.keys, key)
        self.keys.insert(i, key)
        self.rows.insert(i, row)
        self.blobs.insert(i, compact_json(row))

    def rebuild(self) -> None:
        self.rows.sort(key=lambda r: (r["updated_at"], r["id"]))
        self.keys = [(r["updated_at"], r["id"]) for r in self.rows]
        self.blobs = [compact_json(r) for r in self.rows]


def _parse_since(value: str) -> str:
    """ISO 8601 date or datetime (Z, offset or naive = UTC) → the comparable ``...Z`` form."""
    text = value.strip().replace("Z", "+00:00")
    text = re.sub(r" (\d\d:?\d\d)$", r"+\1", text)  # an unencoded '+' in a URL arrives as a space
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return iso_z(ts)


class FamilyPortal(CollectionSimulator):
    """The family portal's REST API over a folder of collection JSON files.

    Use as a context manager, or :meth:`start` / :meth:`stop`. ``url`` is the base
    (``http://127.0.0.1:PORT``); collections are under ``/api/v1/``. ``request_log`` holds
    (collection, page, status).
    """

    label = "family portal"
    thread_name = "family-portal"
    logger = log

    def __init__(self, data_dir: Path, token: str = DEFAULT_TOKEN, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.data_dir = Path(data_dir)
        self.token = token
        self._data: dict[str, _Collection] = {}
        for name in COLLECTIONS:
            col = _Collection(rows=read_json(self.data_dir / f"{name}.json"))
            col.rebuild()
            self._data[name] = col

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1"

    # ------------------------------------------------------------------ changes between runs
    def _bump(self, col: _Collection) -> str:
        latest = col.keys[-1][0] if col.keys else ""
        now = iso_z(datetime.now(UTC))
        if now <= latest:  # keep updated_at strictly increasing even if the clock is behind the data
            now = iso_z(datetime.fromisoformat(latest.replace("Z", "+00:00")) + timedelta(seconds=1))
        return now

    def _find(self, collection: str, record_id: int) -> tuple[_Collection, int]:
        col = self._data[collection]
        for i, row in enumerate(col.rows):
            if row["id"] == record_id:
                return col, i
        raise KeyError(f"{collection} has no record with id {record_id}")

    def touch(self, collection: str, record_id: int, **changes: Any) -> dict[str, Any]:
        """Change fields of one record (or none: just bump it); ``updated_at`` moves to now."""
        with self._lock:
            col, i = self._find(collection, record_id)
            row = dict(col.rows[i])
            for key, value in changes.items():
                if key in ("adresse",) and isinstance(value, dict):
                    row[key] = {**row[key], **value}
                else:
                    row[key] = value
            row["updated_at"] = self._bump(col)
            col.pop(i)
            col.push(row)
            return row

    def delete(self, collection: str, record_id: int) -> None:
        """Delete one record: ``deleted: true`` (+ updated_at bumped) where the portal soft-deletes
        (responsables, enfants), gone from the listing elsewhere."""
        with self._lock:
            col, i = self._find(collection, record_id)
            if collection in _SOFT_DELETE:
                row = dict(col.rows[i])
                row["deleted"] = True
                row["updated_at"] = self._bump(col)
                col.pop(i)
                col.push(row)
            else:
                col.pop(i)

    def add(self, collection: str, **fields_: Any) -> dict[str, Any]:
        """Add a record (id = max + 1 unless given); ``updated_at`` is now."""
        with self._lock:
            col = self._data[collection]
            row = dict(fields_)
            row.setdefault("id", max((r["id"] for r in col.rows), default=0) + 1)
            row["updated_at"] = self._bump(col)
            col.push(row)
            return row

    def records(self, collection: str) -> Iterator[dict[str, Any]]:
        """The current records of a collection, in API order."""
        with self._lock:
            return iter(list(self._data[collection].rows))

    # ------------------------------------------------------------------ pages
    def _page(self, collection: str, page: int, per_page: int, since: str | None) -> tuple[bytes, int]:
        """One page of a collection as JSON, and how many records it holds."""
        with self._lock:
            col = self._data[collection]
            lo = bisect.bisect_left(col.keys, (since, -1)) if since else 0
            total = len(col.keys) - lo
            start = lo + (page - 1) * per_page
            blobs = col.blobs[start:start + per_page] if start < len(col.blobs) else []
        has_next = (page * per_page) < total
        params: dict[str, Any] = {"page": page + 1, "per_page": per_page}
        if since:
            params["updated_since"] = since
        nxt = f"{self.api_url}/{collection}?{urlencode(params)}" if has_next else None
        body = b'{"data":[' + b",".join(blobs) + b'],"meta":' + json.dumps(
            {"page": page, "per_page": per_page, "total": total}).encode() + b',"links":' + json.dumps(
            {"next": nxt}).encode() + b"}"
        return body, len(blobs)


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class _Handler(SimulatorHandler):
    simulator: FamilyPortal
    html_page = (b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>"
                 b"<h1>Service momentan\xc3\xa9ment indisponible</h1></body></html>")
    html_type = "text/html; charset=utf-8"
    fault_errors: ClassVar[dict[str, tuple[int, bytes]]] = {
        "500": (500, _error_body("internal_error", "internal server error")),
        "429": (429, _error_body("rate_limited", "too many requests")),
        "401": (401, _error_body("token_expired", "the access token has expired")),
    }

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, _error_body(code, message), headers=headers)

    def do_GET(self) -> None:
        portal = self.simulator
        parsed = urlparse(self.path)
        parts = parsed.path.strip("/").split("/")
        if len(parts) != 3 or parts[:2] != ["api", "v1"] or parts[2] not in COLLECTIONS:
            self._error(404, "not_found", "unknown resource")
            return
        collection = parts[2]
        if self.headers.get("Authorization", "") != f"Bearer {portal.token}":
            self._log((collection, None), 401)
            self._error(401, "unauthorized", "missing or invalid bearer token",
                        headers={"WWW-Authenticate": 'Bearer realm="family-portal"'})
            return
        query = parse_qs(parsed.query)
        try:
            page = int(query.get("page", ["1"])[0])
            per_page = min(int(query.get("per_page", [str(DEFAULT_PER_PAGE)])[0]), MAX_PER_PAGE)
            since = _parse_since(query["updated_since"][0]) if "updated_since" in query else None
            if page < 1 or per_page < 1:
                raise ValueError("page and per_page must be positive")
        except ValueError:
            self._log((collection, None), 400)
            self._error(400, "bad_request", "invalid page, per_page or updated_since parameter")
            return
        body, records = portal._page(collection, page, per_page, since)
        self._serve((collection, page), body, records=records)


FamilyPortal.handler = _Handler
