"""Small real sources for the connector tests: a finance database, a family-portal HTTP server,
an associations CSV drop. Used until (and alongside) the sandbox."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa

from sandbox.finance_db import factures, metadata, paiements, tiers
from warehouse.engine import Warehouse

# ------------------------------------------------------------------ warehouse side


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[Warehouse]:
    wh = Warehouse(warehouse_url)
    try:
        yield wh
    finally:
        wh.close()


@pytest.fixture
def destination(warehouse: Warehouse) -> Any:
    return warehouse.dlt_destination()


# ------------------------------------------------------------------ finance database

# The sandbox's own schema of the finance database (docs/silos.md), so tests and sandbox agree.
META, TIERS, FACTURES, PAIEMENTS = metadata, tiers, factures, paiements

T0 = dt.datetime(2026, 1, 5, 9, 0, 0)


def tiers_row(i: int, **kw: Any) -> dict[str, Any]:
    row = {
        "id": i, "civilite": "Mme" if i % 2 else "M.", "nom": f"NOM{i}", "nom_naissance": None,
        "prenom": f"PRENOM{i}", "date_naissance": dt.date(1970 + i % 30, 1 + i % 12, 1 + i % 28),
        "adresse": f"{i} RUE DES LILAS", "code_postal": "75011", "ville": "PARIS",
        "telephone": "06 12 34 56 78", "email": None, "groupe_id": i // 2, "updated_at": T0 + dt.timedelta(minutes=i),
        "supprime": False,
    }
    row.update(kw)
    return row


def build_finance(url: str, n: int = 20) -> sa.Engine:
    """A finance database with n tiers, one invoice each and a payment for the even ones."""
    engine = sa.create_engine(url)
    META.drop_all(engine)
    META.create_all(engine)
    with engine.begin() as con:
        con.execute(TIERS.insert(), [tiers_row(i) for i in range(1, n + 1)])
        con.execute(FACTURES.insert(), [
            {"id": 100 + i, "tiers_id": i, "numero": f"F2026-{i:06d}", "service": "eau",
             "libelle": "Eau 2026", "date_emission": dt.date(2026, 1, 10), "date_echeance": dt.date(2026, 2, 10),
             "montant": Decimal("45.30") + i, "statut": "emise", "updated_at": T0}
            for i in range(1, n + 1)])
        con.execute(PAIEMENTS.insert(), [
            {"id": 1000 + i, "facture_id": 100 + i, "date_paiement": dt.date(2026, 1, 20),
             "montant": Decimal("45.30") + i, "mode": "cb", "updated_at": T0}
            for i in range(2, n + 1, 2)])
    return engine


# ------------------------------------------------------------------ family portal

@dataclass
class Portal:
    """The family portal's REST API as docs/silos.md describes it, on a real local HTTP server."""

    token: str = "s3cret-token"
    collections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    html_on: tuple[str, int] | None = None  # (collection, page) answering a 200 HTML page
    truncate_on: tuple[str, int] | None = None
    status_on: dict[str, int] = field(default_factory=dict)  # collection -> HTTP status
    transient: dict[str, int] = field(default_factory=dict)  # collection -> 503s before success
    requests: list[str] = field(default_factory=list)
    base_url: str = ""

    def page(self, collection: str, page: int, per_page: int, since: str | None) -> dict[str, Any]:
        # a record without updated_at (some portals leave it out) sorts first and is always sent
        rows = sorted(self.collections.get(collection, []), key=lambda r: (r.get("updated_at") or "", r["id"]))
        if since:
            rows = [r for r in rows if not r.get("updated_at") or r["updated_at"] >= since]
        chunk = rows[(page - 1) * per_page: page * per_page]
        more = page * per_page < len(rows)
        nxt = None
        if more:
            nxt = f"{self.base_url}/api/v1/{collection}?page={page + 1}&per_page={per_page}"
            if since:
                nxt += f"&updated_since={since}"
        return {"data": chunk, "meta": {"page": page, "per_page": per_page, "total": len(rows)},
                "links": {"next": nxt}}


def _handler(portal: Portal) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            u = urlparse(self.path)
            portal.requests.append(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query).items()}
            collection = u.path.rsplit("/", 1)[-1]
            if self.headers.get("Authorization") != f"Bearer {portal.token}":
                return self._send(401, b'{"error": "unauthorized"}', "application/json")
            if collection in portal.status_on:
                return self._send(portal.status_on[collection], b'{"error": "no"}', "application/json")
            if portal.transient.get(collection, 0) > 0:
                portal.transient[collection] -= 1
                return self._send(503, b'{"error": "busy"}', "application/json", {"Retry-After": "0"})
            if not u.path.startswith("/api/v1/") or collection not in portal.collections:
                return self._send(404, b'{"error": "not found"}', "application/json")
            page = int(q.get("page", "1"))
            if portal.html_on == (collection, page):
                return self._send(200, b"<html><body>Maintenance</body></html>", "text/html")
            body = json.dumps(portal.page(collection, page, int(q.get("per_page", "500")),
                                          q.get("updated_since"))).encode()
            if portal.truncate_on == (collection, page):
                body = body[: len(body) // 2]
            return self._send(200, body, "application/json")

    return H


@pytest.fixture
def portal() -> Iterator[Portal]:
    p = Portal()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(p))
    p.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield p
    finally:
        server.shutdown()
        server.server_close()


def family_data(n_families: int = 4) -> dict[str, list[dict[str, Any]]]:
    ts = "2026-01-05T09:00:00Z"
    fam, resp, enf, ins, fac = [], [], [], [], []
    for f in range(1, n_families + 1):
        fam.append({"id": f, "nom_famille": f"Famille{f}", "quotient_familial": 800 + f, "updated_at": ts,
                    "adresse": {"ligne": f"{f} rue des Écoles", "code_postal": "69001", "commune": "Lyon",
                                "code_insee": "69381"}})
        for k, (lien, sexe, cert) in enumerate([("mere", "F", "franceconnect"), ("pere", "M", "declaratif")]):
            rid = f * 10 + k
            resp.append({"id": rid, "famille_id": f, "lien": lien, "prenoms": f"Prénom{rid} Second",
                         "nom": f"Nom{f}", "nom_naissance": None if k else f"Naiss{f}", "sexe": sexe,
                         "date_naissance": "1985-03-14", "email": f"p{rid}@example.org",
                         "telephone": "0612345678", "certification": cert, "updated_at": ts, "deleted": False})
        eid = f * 100
        enf.append({"id": eid, "famille_id": f, "prenoms": f"Enfant{eid}", "nom": f"Nom{f}", "sexe": "F",
                    "date_naissance": "2018-06-01", "ecole": "Jean Jaurès", "classe": "CE1", "updated_at": ts,
                    "deleted": False})
        ins.append({"id": eid + 1, "enfant_id": eid, "activite": "cantine", "annee_scolaire": "2026-2027",
                    "date_debut": "2026-09-01", "date_fin": None, "statut": "active", "updated_at": ts})
        fac.append({"id": eid + 2, "famille_id": f, "responsable_id": f * 10, "periode": "2026-09",
                    "montant": "45.30", "statut": "impayee", "date_emission": "2026-10-01",
                    "date_echeance": "2026-10-31", "updated_at": ts})
    return {"familles": fam, "responsables": resp, "enfants": enf, "inscriptions": ins, "factures": fac}


# ------------------------------------------------------------------ associations drop

ASSOC_HEADER = "rna;siret;nom;adresse;code_postal;commune;date_creation"
DIR_HEADER = ("id;rna;fonction;civilite;nom;prenom;date_naissance;email;telephone;adresse;code_postal;"
              "commune;date_maj")
DEM_HEADER = ("numero;rna;dirigeant_id;objet;montant_demande;montant_accorde;date_depot;date_decision;"
              "statut")


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    path.write_bytes(("\r\n".join([header, *lines]) + "\r\n").encode("cp1252"))
    return path
