"""The Démarches simplifiées silo: dossiers citizens filed online, and a real HTTP server speaking
its GraphQL API v2 (``POST /api/v2/graphql``, bearer token).

``demarches_data(pop, obs)`` seeds three démarches from the synthetic commune (parents asking for a
place in a crèche, residents asking for a parking card, association leaders asking for a grant);
``write_demarches`` stores them as one JSON file; ``DemarchesServer`` serves that file on 127.0.0.1
with the fault injection of :mod:`sandbox.http_simulator` and records tests can
change or delete between two loads (a deleted dossier leaves ``dossiers`` and shows up in
``deletedDossiers``). The API shape is documented in docs/silos.md.

The server holds a small GraphQL executor, not a general engine: it parses any query document
(operations, variables, aliases, fragments, inline fragments, @include / @skip), validates it
against the subset of the public schema listed in ``SCHEMA`` and answers the way graphql-ruby (the
engine behind the real API) does: query errors as ``{"errors": [{"message", "locations", "path",
"extensions": {"code"}}]}`` with status 200.
"""

from __future__ import annotations

import base64
import bisect
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from sandbox.http_simulator import FAULT_KINDS as BASE_FAULT_KINDS
from sandbox.http_simulator import HTTPSimulator, SimulatorHandler, compact_json, read_json
from sandbox.observations import (
    REFERENCE_TIME,
    Observations,
    _emails,
    _first_given,
    _noisy_names,
    _swap_day_month,
    _typos,
)
from sandbox.population import Population

log = logging.getLogger(__name__)

SYSTEM = "demarches"
DEFAULT_TOKEN = "sandbox-demarches-token"
DATA_FILE = "demarches.json"
MAX_PAGE_SIZE = 100  # the real API's max_page_size: a larger `first` is served as 100
FAULT_KINDS = (*BASE_FAULT_KINDS, "graphql_error")
STATES = ("en_construction", "en_instruction", "accepte", "refuse", "sans_suite")
DELETION_REASONS = ("user_request", "manager_request", "expired")
PARIS = ZoneInfo("Europe/Paris")
TYPO_RATE = 0.03
FIRST_NUMBER = 12_000_000  # dossier numbers are global to the platform, increasing with time


@dataclass(frozen=True)
class DemarcheSpec:
    number: int
    title: str
    demandeur: str  # PersonnePhysique or PersonneMorale: who the démarche is filed for
    created: datetime


DEMARCHES = (
    DemarcheSpec(80412, "Demande de place en crèche", "PersonnePhysique", datetime(2024, 11, 4, 9, 0, tzinfo=UTC)),
    DemarcheSpec(80413, "Carte de stationnement résident", "PersonnePhysique",
                 datetime(2024, 12, 2, 9, 0, tzinfo=UTC)),
    DemarcheSpec(80414, "Subvention association", "PersonneMorale", datetime(2024, 12, 16, 9, 0, tzinfo=UTC)),
)
# The crèche form started asking the applicant's birth date on this day: earlier dossiers have none.
CRECHE_ASKS_BIRTH_DATE_FROM = datetime(2025, 6, 1, tzinfo=UTC)


def gid(kind: str, number: int | str) -> str:
    """A Relay global id as the real API builds them: base64 of ``<Type>-<id>``."""
    return base64.b64encode(f"{kind}-{number}".encode()).decode()


def iso_paris(ts: datetime) -> str:
    """``2026-09-14T10:32:05+02:00``: the API writes times in Paris local time with the offset."""
    return ts.astimezone(PARIS).isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date-time with ``Z`` or an offset (naive: UTC) as an aware datetime."""
    ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _epoch(text: str | None) -> float:
    """Sort key of a stored time; a malformed one (tests serve bad data on purpose) sorts first."""
    try:
        return parse_iso(text).timestamp() if text else 0.0
    except ValueError:
        return 0.0


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DemarchesData:
    """The démarches as the API serves them (JSON-ready) and the ground truth of their dossiers."""

    demarches: list[dict[str, Any]]
    truth: pa.Table  # record_key (demarches:dossier/<number>), person_id, household_id

    @property
    def counts(self) -> dict[str, int]:
        return {"demarches": len(self.demarches),
                "dossiers": sum(len(d["dossiers"]) for d in self.demarches),
                "deleted_dossiers": sum(len(d["deletedDossiers"]) for d in self.demarches)}


@dataclass
class _Filing:
    spec: int  # index in DEMARCHES
    person: int  # 0-based row of pop.persons
    depot: float  # epoch seconds
    champs: list[dict[str, Any]]
    siret: str | None = None
    terminal: str | None = None  # forced final state (an older, closed dossier)


def _champ(kind: str, stable_id: int, label: str, value: Any) -> dict[str, Any]:
    """One champ as the API gives it: interface fields + the typed value of its kind."""
    c: dict[str, Any] = {"__typename": kind, "id": gid("Champ", stable_id), "label": label,
                         "stringValue": None if value is None else str(value)}
    if kind == "DateChamp":
        c["date"] = value
    elif kind == "IntegerNumberChamp":
        c["integerNumber"] = None if value is None else str(value)  # BigInt travels as a string
    elif kind == "DecimalNumberChamp":
        c["decimalNumber"] = None if value is None else float(value)
    return c


_STRUCTURES = ("Crèche municipale Les Lucioles", "Crèche Jean Macé", "Multi-accueil Les Canuts",
               "Crèche familiale de la Croix-Rousse", "Halte-garderie Les Brotteaux")
_SITUATIONS = ("Deux parents en activité", "Parent seul en activité", "En formation", "En recherche d'emploi")
_ZONES = ("Zone A", "Zone B", "Zone C", "Zone D")
_OBJETS = ("Fonctionnement annuel", "Organisation d'une fête de quartier", "Achat de matériel",
           "Tournoi inter-clubs", "Sortie pédagogique", "Festival de musique")
_REFUS = ("Capacité d'accueil atteinte", "Dossier incomplet", "Hors critères d'attribution")


def _address(pop_row: dict[str, Any]) -> str:
    return f"{pop_row['address_line']} {pop_row['postcode']} {pop_row['city']}"


def _plate(rng: np.random.Generator) -> str:
    letters = "ABCDEFGHJKLMNPQRSTVWXYZ"
    a = "".join(letters[i] for i in rng.integers(0, len(letters), size=4))
    return f"{a[:2]}-{int(rng.integers(100, 1000))}-{a[2:]}"


def demarches_data(pop: Population, obs: Observations) -> DemarchesData:
    """Three démarches and their dossiers, seeded from the commune (deterministic for a seed).

    Only people with an e-mail address file online (a Démarches simplifiées account is an e-mail).
    Crèche: ~55 % of households with a child under 3 (a few filed an earlier dossier too).
    Parking card: ~6 % of adults (~10 % of them renewed: two dossiers). Grant: ~60 % of the leaders
    of associations that have a SIRET, filed for the association (``PersonneMorale``).
    """
    rng = np.random.default_rng([obs.seed, 5])
    p = pop.persons
    rows = p.select(["person_id", "sex", "given_names", "birth_name", "usage_name", "birth_date", "email",
                     "address_line", "postcode", "city", "household_id", "household_role"]).to_pylist()
    n = len(rows)
    ref = REFERENCE_TIME.timestamp()
    day = 86400.0
    birth = p.column("birth_date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    age = (np.datetime64(REFERENCE_TIME.date().isoformat(), "D") - birth).astype(np.int64) / 365.25
    is_adult = np.array([r["household_role"] != "enfant" for r in rows])
    has_email = np.array([r["email"] is not None for r in rows])
    hh = np.array([r["household_id"] for r in rows], dtype=np.int64)
    filings: list[_Filing] = []
    stable = iter(range(1_000_000, 10_000_000, 7))

    # ------------------------------------------------------------ crèche
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(int(hh[i]), []).append(i)
    ids = {name: next(stable) for name in ("enfant", "naissance", "entree", "jours", "structure", "adresse",
                                            "situation")}
    for h in sorted(members):
        babies = [i for i in members[h] if not is_adult[i] and age[i] < 3]
        parents = [i for i in members[h] if is_adult[i] and has_email[i]]
        if not babies or not parents or rng.random() >= 0.55:
            continue
        women = [i for i in parents if rows[i]["sex"] == "F"]
        filer = women[0] if women and rng.random() < 0.7 else parents[int(rng.integers(0, len(parents)))]
        baby = babies[-1]
        born = datetime.combine(rows[baby]["birth_date"], datetime.min.time(), UTC).timestamp()
        depot = born + rng.uniform(30, 400) * day
        depot = min(max(depot, DEMARCHES[0].created.timestamp() + rng.uniform(0, 30) * day),
                    ref - rng.uniform(0.1, 30) * day)
        entree = (datetime.fromtimestamp(depot, UTC) + timedelta(days=int(rng.integers(60, 240)))).date()

        def champs(entree: date = entree, baby: int = baby, filer: int = filer) -> list[dict[str, Any]]:
            return [
                _champ("TextChamp", ids["enfant"], "Prénom de l'enfant", rows[baby]["given_names"].split(" ")[0]),
                _champ("DateChamp", ids["naissance"], "Date de naissance de l'enfant",
                       rows[baby]["birth_date"].isoformat()),
                _champ("DateChamp", ids["entree"], "Date d'entrée souhaitée", entree.isoformat()),
                _champ("IntegerNumberChamp", ids["jours"], "Nombre de jours d'accueil par semaine",
                       int(rng.integers(2, 6))),
                _champ("DropDownListChamp", ids["structure"], "Structure souhaitée",
                       _STRUCTURES[int(rng.integers(0, len(_STRUCTURES)))]),
                _champ("AddressChamp", ids["adresse"], "Adresse du foyer", _address(rows[filer])),
                _champ("DropDownListChamp", ids["situation"], "Situation professionnelle",
                       _SITUATIONS[int(rng.integers(0, len(_SITUATIONS)))]),
            ]

        filings.append(_Filing(0, filer, depot, champs()))
        if rng.random() < 0.08 and depot - 300 * day > DEMARCHES[0].created.timestamp():
            earlier = depot - rng.uniform(200, 300) * day
            filings.append(_Filing(0, filer, earlier, champs(entree - timedelta(days=365)),
                                   terminal=str(rng.choice(["refuse", "sans_suite"]))))

    # ------------------------------------------------------------ stationnement
    ids_s = {name: next(stable) for name in ("immat", "adresse", "zone", "justificatif")}
    start_s = DEMARCHES[1].created.timestamp()
    for i in np.flatnonzero(is_adult & has_email & (age >= 18) & (rng.random(n) < 0.06)):
        r = rows[int(i)]

        def champs_s(r: dict[str, Any] = r) -> list[dict[str, Any]]:
            return [
                _champ("TextChamp", ids_s["immat"], "Immatriculation du véhicule", _plate(rng)),
                _champ("AddressChamp", ids_s["adresse"], "Adresse de résidence", _address(r)),
                _champ("DropDownListChamp", ids_s["zone"], "Zone de stationnement",
                       _ZONES[int(rng.integers(0, len(_ZONES)))]),
                _champ("PieceJustificativeChamp", ids_s["justificatif"], "Justificatif de domicile",
                       "justificatif_domicile.pdf"),
            ]

        depot = rng.uniform(start_s, ref - 0.05 * day)
        filings.append(_Filing(1, int(i), depot, champs_s()))
        if rng.random() < 0.10 and depot - 330 * day > start_s:
            filings.append(_Filing(1, int(i), depot - rng.uniform(330, 365) * day, champs_s(), terminal="accepte"))

    # ------------------------------------------------------------ subvention (for an association)
    ids_a = {name: next(stable) for name in ("asso", "rna", "objet", "montant", "rep_nom", "rep_prenom")}
    start_a = DEMARCHES[2].created.timestamp()
    assoc = obs.associations.to_pylist()
    for d in obs.dirigeants.to_pylist():
        a = assoc[d["association"]]
        person = d["person_id"] - 1
        if a["siret"] is None or not has_email[person] or rng.random() >= 0.6:
            continue
        montant = int(rng.integers(3, 120)) * 100
        filings.append(_Filing(2, person, rng.uniform(start_a, ref - 0.05 * day), [
            _champ("TextChamp", ids_a["asso"], "Nom de l'association", a["nom"]),
            _champ("TextChamp", ids_a["rna"], "Numéro RNA", a["rna"]),
            _champ("TextareaChamp", ids_a["objet"], "Objet de la demande",
                   _OBJETS[int(rng.integers(0, len(_OBJETS)))]),
            _champ("DecimalNumberChamp", ids_a["montant"], "Montant demandé (€)", montant),
            _champ("TextChamp", ids_a["rep_nom"], "Nom du représentant légal", d["nom"]),
            _champ("TextChamp", ids_a["rep_prenom"], "Prénom du représentant légal", d["prenom"]),
        ], siret=a["siret"]))

    return _render(rng, rows, filings, ref)


def _render(rng: np.random.Generator, rows: list[dict[str, Any]], filings: list[_Filing],
            ref: float) -> DemarchesData:
    """Numbers, states, dates, the applicant as typed (noisy), deletions; then the JSON shape."""
    filings.sort(key=lambda f: (f.depot, f.spec, f.person))
    k = len(filings)
    day = 86400.0
    numbers = FIRST_NUMBER + np.cumsum(rng.integers(1, 4, size=k))  # drafts never filed use numbers too
    person = np.array([f.person for f in filings], dtype=np.int64)
    given = np.array([rows[i]["given_names"] for i in person], dtype=object)
    prenom = np.where(rng.random(k) < 0.85, _first_given(given) if k else given, given)
    prenom = _noisy_names(rng, prenom, upper=0.15, fold=0.15, swap_sep=0.05, lower=0.05)
    usage = np.array([rows[i]["usage_name"] for i in person], dtype=object)
    birth_name = np.array([rows[i]["birth_name"] for i in person], dtype=object)
    nom = np.where(rng.random(k) < 0.9, usage, birth_name)
    nom = _noisy_names(rng, nom, upper=0.4, fold=0.15, swap_sep=0.1, lower=0.05)
    _typos(rng, prenom, nom, TYPO_RATE)
    email = _emails(rng, np.array([rows[i]["email"] for i in person], dtype=object), 1.0, 0.1)
    dob = np.array([rows[i]["birth_date"] for i in person], dtype="datetime64[D]")
    dob = _swap_day_month(rng, dob, 0.01) if k else dob
    u = rng.random((k, 6))
    deleted = rng.random(k) < 0.02
    reason_pick = rng.integers(0, 2, size=k)

    by_spec: dict[int, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {i: ([], []) for i in
                                                                             range(len(DEMARCHES))}
    truth_keys: list[str] = []
    truth_person: list[int] = []
    truth_hh: list[int] = []
    for j, f in enumerate(filings):
        spec = DEMARCHES[f.spec]
        number = int(numbers[j])
        age_d = (ref - f.depot) / day
        if f.terminal:
            state = f.terminal
        elif age_d < 10:
            state = "en_construction" if u[j, 0] < 0.9 else "en_instruction"
        elif age_d < 45:
            state = ("en_construction", "en_instruction", "accepte", "refuse")[int(u[j, 0] * 4.99) % 4] \
                if u[j, 0] < 0.4 else "en_instruction"
        else:
            state = "en_instruction" if u[j, 0] < 0.1 else (
                "accepte" if u[j, 1] < 0.65 else "refuse" if u[j, 1] < 0.85 else "sans_suite")
        depot = f.depot
        instr = trait = None
        if state != "en_construction":
            instr = depot + u[j, 2] * min(20 * day, (ref - depot) * 0.5)
        if state in ("accepte", "refuse", "sans_suite"):
            assert instr is not None
            trait = instr + u[j, 3] * min(60 * day, (ref - instr) * 0.8)
        last = max(x for x in (depot, instr, trait) if x is not None)
        modif = last + u[j, 4] * min(2 * day, (ref - last) * 0.5)

        def ts(x: float | None) -> str | None:
            return None if x is None else iso_paris(datetime.fromtimestamp(round(x), UTC))

        if spec.demandeur == "PersonnePhysique":
            asks_dob = f.spec == 0 and depot >= CRECHE_ASKS_BIRTH_DATE_FROM.timestamp()
            demandeur: dict[str, Any] = {
                "__typename": "PersonnePhysique", "id": gid("Individual", number),
                "civilite": "Mme" if rows[f.person]["sex"] == "F" else "M",
                "nom": nom[j], "prenom": prenom[j],
                "dateDeNaissance": str(dob[j]) if asks_dob else None,
            }
        else:
            demandeur = {"__typename": "PersonneMorale", "id": gid("Etablissement", number), "siret": f.siret}
        dossier = {
            "id": gid("Dossier", number), "number": number, "state": state, "archived": False,
            "dateDepot": ts(depot), "datePassageEnConstruction": ts(depot), "datePassageEnInstruction": ts(instr),
            "dateTraitement": ts(trait), "dateDerniereModification": ts(modif),
            "motivation": _REFUS[int(u[j, 5] * len(_REFUS))] if state == "refuse" else None,
            "usager": {"id": gid("User", int(rows[f.person]["person_id"]) * 7 + 3), "email": email[j]},
            "demandeur": demandeur, "champs": f.champs,
        }
        listed, gone = by_spec[f.spec]
        if deleted[j]:
            reason = "user_request" if state == "en_construction" else DELETION_REASONS[1 + int(reason_pick[j])]
            gone.append({"id": dossier["id"], "number": number, "state": state, "reason": reason,
                         "dateSupression": ts(modif + u[j, 5] * min(30 * day, (ref - modif) * 0.9))})
            continue
        listed.append(dossier)
        truth_keys.append(f"{SYSTEM}:dossier/{number}")
        truth_person.append(int(rows[f.person]["person_id"]))
        truth_hh.append(int(rows[f.person]["household_id"]))

    demarches = [
        {"id": gid("Procedure", s.number), "number": s.number, "title": s.title, "state": "publiee",
         "dateCreation": iso_paris(s.created), "dossiers": by_spec[i][0], "deletedDossiers": by_spec[i][1]}
        for i, s in enumerate(DEMARCHES)
    ]
    truth = pa.table({"record_key": pa.array(truth_keys, pa.string()),
                      "person_id": pa.array(truth_person, pa.int64()),
                      "household_id": pa.array(truth_hh, pa.int64())})
    return DemarchesData(demarches, truth)


def write_demarches(folder: Path, data: DemarchesData) -> dict[str, int]:
    """``demarches.json`` (what the API serves, no ground truth) in ``folder``; returns counts."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / DATA_FILE, "w", encoding="utf-8") as fh:
        json.dump({"demarches": data.demarches}, fh, ensure_ascii=False, separators=(",", ":"))
    return data.counts


# ---------------------------------------------------------------------------- the schema subset

_CHAMP_FIELDS = {"id": "ID!", "label": "String!", "stringValue": "String"}
CHAMP_TYPES = ("TextChamp", "TextareaChamp", "DateChamp", "IntegerNumberChamp", "DecimalNumberChamp",
               "DropDownListChamp", "AddressChamp", "PieceJustificativeChamp")
_CONNECTION = {"pageInfo": "PageInfo!", "nodes": "[{node}]", "edges": "[{node}Edge]"}

# type -> field -> (return type, accepted arguments)
SCHEMA: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "Query": {"demarche": ("Demarche!", ("number",))},
    "Demarche": {
        "id": ("ID!", ()), "number": ("Int!", ()), "title": ("String!", ()), "state": ("DemarcheState!", ()),
        "dateCreation": ("ISO8601DateTime!", ()),
        "dossiers": ("DossierConnection!", ("first", "after", "order", "updatedSince", "createdSince", "state",
                                            "archived")),
        "deletedDossiers": ("DeletedDossierConnection!", ("first", "after", "order", "deletedSince")),
    },
    "PageInfo": {"hasNextPage": ("Boolean!", ()), "hasPreviousPage": ("Boolean!", ()),
                 "startCursor": ("String", ()), "endCursor": ("String", ())},
    "Dossier": {
        "id": ("ID!", ()), "number": ("Int!", ()), "state": ("DossierState!", ()), "archived": ("Boolean!", ()),
        "dateDepot": ("ISO8601DateTime!", ()), "datePassageEnConstruction": ("ISO8601DateTime!", ()),
        "datePassageEnInstruction": ("ISO8601DateTime", ()), "dateTraitement": ("ISO8601DateTime", ()),
        "dateDerniereModification": ("ISO8601DateTime!", ()), "motivation": ("String", ()),
        "usager": ("Profile!", ()), "demandeur": ("Demandeur!", ()), "champs": ("[Champ!]!", ()),
    },
    "Profile": {"id": ("ID!", ()), "email": ("String!", ())},
    "Demandeur": {"id": ("ID!", ())},
    "PersonnePhysique": {"id": ("ID!", ()), "civilite": ("Civilite", ()), "nom": ("String!", ()),
                         "prenom": ("String!", ()), "dateDeNaissance": ("ISO8601Date", ())},
    "PersonneMorale": {"id": ("ID!", ()), "siret": ("String!", ())},
    "DeletedDossier": {"id": ("ID!", ()), "number": ("Int!", ()), "state": ("DossierState!", ()),
                       "reason": ("String!", ()), "dateSupression": ("ISO8601DateTime!", ())},
    "Champ": {k: (v, ()) for k, v in _CHAMP_FIELDS.items()},
}
for _t in CHAMP_TYPES:
    SCHEMA[_t] = {k: (v, ()) for k, v in _CHAMP_FIELDS.items()}
SCHEMA["DateChamp"]["date"] = ("ISO8601Date", ())
SCHEMA["IntegerNumberChamp"]["integerNumber"] = ("BigInt", ())
SCHEMA["DecimalNumberChamp"]["decimalNumber"] = ("Float", ())
for _node in ("Dossier", "DeletedDossier"):
    SCHEMA[f"{_node}Connection"] = {k: (v.format(node=_node), ()) for k, v in _CONNECTION.items()}
    SCHEMA[f"{_node}Edge"] = {"cursor": ("String!", ()), "node": (f"{_node}!", ())}
ABSTRACT = {"Demandeur": ("PersonnePhysique", "PersonneMorale"), "Champ": CHAMP_TYPES}
SCALARS = {"ID", "Int", "String", "Boolean", "Float", "BigInt", "ISO8601DateTime", "ISO8601Date",
           "DossierState", "DemarcheState", "Order", "Civilite"}
_ARG_TYPES = {"number": "Int", "first": "Int", "after": "String", "order": "Order",
              "updatedSince": "ISO8601DateTime", "createdSince": "ISO8601DateTime",
              "deletedSince": "ISO8601DateTime", "state": "DossierState", "archived": "Boolean"}


def _base(type_ref: str) -> str:
    return type_ref.strip("[]!")


# ---------------------------------------------------------------------------- GraphQL documents


class GraphQLError(Exception):
    """An error the API reports in ``errors`` (never a Python traceback)."""

    def __init__(self, message: str, code: str, line: int | None = None, column: int | None = None,
                 path: list[str | int] | None = None):
        super().__init__(message)
        self.message, self.code, self.line, self.column, self.path = message, code, line, column, path
        self.extensions: dict[str, Any] = {}

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message}
        if self.line is not None:
            out["locations"] = [{"line": self.line, "column": self.column}]
        if self.path is not None:
            out["path"] = self.path
        out["extensions"] = {"code": self.code, **self.extensions}
        return out


@dataclass
class _Field:
    name: str
    alias: str | None
    args: dict[str, Any]
    directives: list[tuple[str, dict[str, Any]]]
    selections: list[Any] | None
    line: int
    column: int

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class _Spread:
    name: str
    directives: list[tuple[str, dict[str, Any]]]
    line: int
    column: int


@dataclass
class _Inline:
    on: str | None
    directives: list[tuple[str, dict[str, Any]]]
    selections: list[Any]
    line: int
    column: int


@dataclass
class _Operation:
    kind: str
    name: str | None
    variables: dict[str, tuple[str, Any]]  # name -> (type, default value node)
    selections: list[Any]


@dataclass
class _Document:
    operations: list[_Operation]
    fragments: dict[str, tuple[str, list[Any], int, int]]  # name -> (type condition, selections, line, col)


_TOKEN = re.compile(r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$&()\:=@\[\]{}|])
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<string>"(?:[^"\\\n\r]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*")
""", re.X)


def _tokens(text: str) -> list[tuple[str, str, int, int]]:
    out: list[tuple[str, str, int, int]] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise GraphQLError(f"Parse error on unexpected character at [{line}, {pos - line_start + 1}]",
                               "parseError", line, pos - line_start + 1)
        kind = m.lastgroup or ""
        if kind != "skip":
            out.append((kind, m.group(), line, pos - line_start + 1))
        for nl in re.finditer(r"\r\n|\n|\r", m.group()):
            line += 1
            line_start = pos + nl.end()
        pos = m.end()
    out.append(("eof", "", line, pos - line_start + 1))
    return out


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        k, v, _, _ = self.toks[self.i]
        return (value is None or v == value) and (kind is None or k == kind)

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str, int, int]:
        tok = self.toks[self.i]
        if not self.peek(value, kind):
            shown = "end of file" if tok[0] == "eof" else json.dumps(tok[1])
            raise GraphQLError(f"Parse error on {shown} at [{tok[2]}, {tok[3]}]", "parseError", tok[2], tok[3])
        self.i += 1
        return tok

    def document(self) -> _Document:
        ops: list[_Operation] = []
        frags: dict[str, tuple[str, list[Any], int, int]] = {}
        while not self.peek(kind="eof"):
            if self.peek("{"):
                ops.append(_Operation("query", None, {}, self.selection_set()))
            elif self.peek("fragment"):
                _, _, line, col = self.take("fragment")
                name = self.take(kind="name")[1]
                self.take("on")
                on = self.take(kind="name")[1]
                self.directives()
                frags[name] = (on, self.selection_set(), line, col)
            elif self.peek("query") or self.peek("mutation") or self.peek("subscription"):
                kind = self.take()[1]
                name = self.take(kind="name")[1] if self.peek(kind="name") else None
                variables = self.variable_definitions() if self.peek("(") else {}
                self.directives()
                ops.append(_Operation(kind, name, variables, self.selection_set()))
            else:
                self.take("{")  # raises the parse error
        if not ops:
            raise GraphQLError("Parse error on end of file: the document has no operation", "parseError")
        return _Document(ops, frags)

    def variable_definitions(self) -> dict[str, tuple[str, Any]]:
        out: dict[str, tuple[str, Any]] = {}
        self.take("(")
        while not self.peek(")"):
            self.take("$")
            name = self.take(kind="name")[1]
            self.take(":")
            type_ref = self.type_ref()
            default = None
            if self.peek("="):
                self.take("=")
                default = self.value(const=True)
            out[name] = (type_ref, default)
        self.take(")")
        return out

    def type_ref(self) -> str:
        if self.peek("["):
            self.take("[")
            inner = self.type_ref()
            self.take("]")
            t = f"[{inner}]"
        else:
            t = self.take(kind="name")[1]
        if self.peek("!"):
            self.take("!")
            t += "!"
        return t

    def selection_set(self) -> list[Any]:
        self.take("{")
        out: list[Any] = []
        while not self.peek("}"):
            out.append(self.selection())
        self.take("}")
        if not out:
            tok = self.toks[self.i - 1]
            raise GraphQLError(f"Parse error on \"}}\" (RCURLY) at [{tok[2]}, {tok[3]}]", "parseError",
                               tok[2], tok[3])
        return out

    def selection(self) -> Any:
        if self.peek("...", kind="spread"):
            _, _, line, col = self.take()
            if self.peek("on"):
                self.take("on")
                on = self.take(kind="name")[1]
                return _Inline(on, self.directives(), self.selection_set(), line, col)
            if self.peek(kind="name"):
                return _Spread(self.take(kind="name")[1], self.directives(), line, col)
            return _Inline(None, self.directives(), self.selection_set(), line, col)
        _, name, line, col = self.take(kind="name")
        alias = None
        if self.peek(":"):
            self.take(":")
            alias, name = name, self.take(kind="name")[1]
        args = self.arguments() if self.peek("(") else {}
        directives = self.directives()
        selections = self.selection_set() if self.peek("{") else None
        return _Field(name, alias, args, directives, selections, line, col)

    def arguments(self, const: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.take("(")
        while not self.peek(")"):
            name = self.take(kind="name")[1]
            self.take(":")
            out[name] = self.value(const)
        self.take(")")
        return out

    def directives(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        while self.peek("@"):
            self.take("@")
            out.append((self.take(kind="name")[1], self.arguments() if self.peek("(") else {}))
        return out

    def value(self, const: bool = False) -> Any:
        """A value node: ("var", name) or ("lit", python value) / lists and objects of those."""
        kind, text, line, col = self.toks[self.i]
        if text == "$" and kind == "punct" and not const:
            self.take("$")
            return ("var", self.take(kind="name")[1])
        if kind == "number":
            self.take()
            return ("lit", float(text) if any(c in text for c in ".eE") else int(text))
        if kind == "string":
            self.take()
            return ("lit", json.loads(text))
        if kind == "name":
            self.take()
            return ("lit", {"true": True, "false": False, "null": None}.get(text, text))
        if text == "[":
            self.take("[")
            items = []
            while not self.peek("]"):
                items.append(self.value(const))
            self.take("]")
            return ("list", items)
        if text == "{":
            self.take("{")
            fields: dict[str, Any] = {}
            while not self.peek("}"):
                key = self.take(kind="name")[1]
                self.take(":")
                fields[key] = self.value(const)
            self.take("}")
            return ("obj", fields)
        self.take("$" if const else "{")  # raises the parse error at this token
        raise GraphQLError(f"Parse error at [{line}, {col}]", "parseError", line, col)


def parse(text: str) -> _Document:
    """A GraphQL document, or :class:`GraphQLError` (code ``parseError``)."""
    return _Parser(text).document()


def _value(node: Any, variables: dict[str, Any]) -> Any:
    kind, v = node
    if kind == "var":
        return variables.get(v)
    if kind == "list":
        return [_value(x, variables) for x in v]
    if kind == "obj":
        return {k: _value(x, variables) for k, x in v.items()}
    return v


def _validate(doc: _Document, op: _Operation) -> None:
    """What graphql-ruby checks before running anything: fields, arguments, selections, fragments,
    variables. Raises the first problem found."""
    used_vars: set[str] = set()

    def vars_in(node: Any) -> None:
        if node[0] == "var":
            used_vars.add(node[1])
        elif node[0] == "list":
            for x in node[1]:
                vars_in(x)
        elif node[0] == "obj":
            for x in node[1].values():
                vars_in(x)

    def check(selections: list[Any], parent: str, path: list[str | int], seen: tuple[str, ...]) -> None:
        for s in selections:
            for _, dargs in s.directives:
                for node in dargs.values():
                    vars_in(node)
            if isinstance(s, _Spread):
                if s.name not in doc.fragments:
                    raise GraphQLError(f"Fragment {s.name} was used, but not defined", "useAndDefineFragment",
                                       s.line, s.column, path)
                if s.name in seen:
                    raise GraphQLError(f"Fragment {s.name} contains an infinite loop", "infiniteLoop",
                                       s.line, s.column, path)
                on, sels, _, _ = doc.fragments[s.name]
                _check_condition(on, parent, s.line, s.column, path)
                check(sels, on, path, (*seen, s.name))
                continue
            if isinstance(s, _Inline):
                on = s.on or parent
                _check_condition(on, parent, s.line, s.column, path)
                check(s.selections, on, path, seen)
                continue
            here = [*path, s.key]
            if s.name == "__typename":
                if s.selections:
                    raise GraphQLError("Selections can't be made on scalars (field '__typename' returns String "
                                       "but has selections)", "selectionMismatch", s.line, s.column, here)
                continue
            fdef = SCHEMA[parent].get(s.name)
            if fdef is None:
                err = GraphQLError(f"Field '{s.name}' doesn't exist on type '{parent}'", "undefinedField",
                                   s.line, s.column, here)
                err.extensions = {"typeName": parent, "fieldName": s.name}
                raise err
            ftype, accepted = fdef
            for arg, node in s.args.items():
                if arg not in accepted:
                    raise GraphQLError(f"Field '{s.name}' doesn't accept argument '{arg}'", "argumentNotAccepted",
                                       s.line, s.column, here)
                vars_in(node)
            for arg in accepted:
                if arg == "number" and arg not in s.args:
                    raise GraphQLError(f"Field '{s.name}' is missing required arguments: {arg}",
                                       "missingRequiredArguments", s.line, s.column, here)
            base = _base(ftype)
            if base in SCALARS and s.selections:
                raise GraphQLError(f"Selections can't be made on scalars (field '{s.name}' returns {base} but "
                                   "has selections)", "selectionMismatch", s.line, s.column, here)
            if base not in SCALARS:
                if not s.selections:
                    raise GraphQLError(f"Field must have selections (field '{s.name}' returns {base} but has no "
                                       f"selections. Did you mean '{s.name} {{ ... }}'?)", "selectionMismatch",
                                       s.line, s.column, here)
                check(s.selections, base, here, seen)

    label = f"{op.kind} {op.name}" if op.name else op.kind
    if op.kind != "query":
        raise GraphQLError(f"Schema is not configured for {op.kind}s", "missingMutationConfiguration", path=[label])
    check(op.selections, "Query", [label], ())
    for name, (type_ref, _) in op.variables.items():
        if _base(type_ref) not in SCALARS:
            raise GraphQLError(f"{type_ref} isn't a valid input type (on ${name})", "variableRequiresValidType")
    for name in sorted(used_vars - set(op.variables)):
        raise GraphQLError(f"Variable ${name} is used by {op.name or 'anonymous query'} but not declared",
                           "variableNotDefined", path=[label])


def _check_condition(on: str, parent: str, line: int, col: int, path: list[str | int]) -> None:
    if on not in SCHEMA:
        raise GraphQLError(f"No such type {on}, so it can't be a fragment condition", "undefinedType",
                           line, col, path)
    fits = on == parent or on in ABSTRACT.get(parent, ()) or parent in ABSTRACT.get(on, ())
    if not fits:
        raise GraphQLError(f"Fragment on {on} can't be spread inside {parent}", "cannotSpreadFragment",
                           line, col, path)


def _coerce_variables(op: _Operation, given: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (type_ref, default) in op.variables.items():
        value = given[name] if name in given else (_value(default, {}) if default is not None else None)
        base = _base(type_ref)
        ok = value is None or (
            (base in ("Int", "BigInt") and isinstance(value, int) and not isinstance(value, bool))
            or (base == "Boolean" and isinstance(value, bool))
            or (base == "Float" and isinstance(value, int | float) and not isinstance(value, bool))
            or (base not in ("Int", "BigInt", "Boolean", "Float") and isinstance(value, str))
        )
        if value is None and type_ref.endswith("!"):
            ok = False
        if not ok:
            raise GraphQLError(f"Variable ${name} of type {type_ref} was provided invalid value", "variableMismatch",
                               path=[f"{op.kind} {op.name}" if op.name else op.kind])
        out[name] = value
    return out


# ---------------------------------------------------------------------------- the server's data


@dataclass
class _Store:
    """One démarche: its dossiers in two orders (by dépôt, by last change) and its deletions."""

    info: dict[str, Any]
    dossiers: dict[int, dict[str, Any]] = field(default_factory=dict)
    by_depot: list[tuple[float, int]] = field(default_factory=list)
    by_update: list[tuple[float, int]] = field(default_factory=list)
    deleted: dict[int, dict[str, Any]] = field(default_factory=dict)
    by_deletion: list[tuple[float, int]] = field(default_factory=list)

    def put(self, d: dict[str, Any]) -> None:
        self.dossiers[d["number"]] = d
        bisect.insort(self.by_depot, (_epoch(d["dateDepot"]), d["number"]))
        bisect.insort(self.by_update, (_epoch(d["dateDerniereModification"]), d["number"]))

    def drop(self, number: int) -> dict[str, Any]:
        d = self.dossiers.pop(number)
        self.by_depot.remove((_epoch(d["dateDepot"]), number))
        self.by_update.remove((_epoch(d["dateDerniereModification"]), number))
        return d

    def put_deleted(self, d: dict[str, Any]) -> None:
        self.deleted[d["number"]] = d
        bisect.insort(self.by_deletion, (_epoch(d["dateSupression"]), d["number"]))


def _cursor(order: str, key: tuple[float, int], page: int) -> str:
    raw = json.dumps({"o": order, "k": list(key), "p": page}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(text: str, order: str) -> tuple[tuple[float, int], int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if raw["o"] != order:
            raise ValueError("cursor of another ordering")
        return (float(raw["k"][0]), int(raw["k"][1])), int(raw["p"])
    except (ValueError, KeyError, TypeError, IndexError):
        raise GraphQLError("Invalid cursor", "invalidCursor") from None


def _page(keys: list[tuple[float, int]], since: float | None, after: tuple[float, int] | None, first: int,
          desc: bool) -> tuple[list[tuple[float, int]], bool]:
    """Keyset pagination over sorted keys: the ``first`` keys after ``after`` at or after ``since``."""
    lo = bisect.bisect_left(keys, (since, -1)) if since is not None else 0
    if not desc:
        start = max(lo, bisect.bisect_right(keys, after)) if after else lo
        return keys[start:start + first], start + first < len(keys)
    hi = bisect.bisect_left(keys, after) if after else len(keys)
    start = max(lo, hi - first)
    return list(reversed(keys[start:hi])), start > lo


@dataclass
class _Context:
    variables: dict[str, Any]
    target: tuple[int | None, str | None, int | None] = (None, None, None)  # démarche, connection, page


class DemarchesServer(HTTPSimulator):
    """The Démarches simplifiées API v2 over a ``demarches.json`` file, on a real HTTP server.

    Use as a context manager, or :meth:`start` / :meth:`stop`. ``endpoint`` is
    ``http://127.0.0.1:PORT/api/v2/graphql``. Requests target (démarche, connection, page);
    ``request_log`` holds (démarche, connection, page, status).
    """

    label = "démarches simplifiées API"
    thread_name = "demarches-api"
    logger = log
    fault_kinds = FAULT_KINDS

    def __init__(self, data_dir: Path, token: str = DEFAULT_TOKEN, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.data_dir = Path(data_dir)
        self.token = token
        raw = read_json(self.data_dir / DATA_FILE)
        self._stores: dict[int, _Store] = {}
        self._where: dict[int, int] = {}  # dossier number -> démarche number
        self._latest = 0.0
        for d in raw["demarches"]:
            store = _Store({k: v for k, v in d.items() if k not in ("dossiers", "deletedDossiers")})
            for dossier in d["dossiers"]:
                store.put(dossier)
                self._where[dossier["number"]] = d["number"]
                self._latest = max(self._latest, _epoch(dossier["dateDerniereModification"]))
            for gone in d["deletedDossiers"]:
                store.put_deleted(gone)
                self._where[gone["number"]] = d["number"]
                self._latest = max(self._latest, _epoch(gone["dateSupression"]))
            self._stores[d["number"]] = store

    @property
    def endpoint(self) -> str:
        return f"{self.url}/api/v2/graphql"

    def inject(self, kind: str, demarche: int | None = None, connection: str | None = None, page: int | None = None,
               count: int = 1, retry_after: int = 1, delay: float = 1.0) -> None:
        """Make the next ``count`` requests matching ``demarche`` / ``connection`` (``dossiers`` or
        ``deletedDossiers``) / ``page`` (1 = no ``after`` cursor) fail with ``kind``: ``500``,
        ``429`` (with Retry-After), ``delay`` (answer after ``delay`` s), ``401``, ``truncated``
        (JSON cut in the middle), ``html`` (an HTML error page with status 200), ``reset``
        (connection reset by peer), ``graphql_error`` (status 200, ``errors`` and no data)."""
        self._inject(kind, (demarche, connection, page), count, retry_after, delay)

    # ------------------------------------------------------------------ changes between runs
    def _now(self) -> str:
        """Now, in the API's format, strictly after every time the server already holds (the clock
        may be behind the seeded data)."""
        now = max(time.time(), self._latest + 1)
        now = float(int(now))
        self._latest = now
        return iso_paris(datetime.fromtimestamp(now, UTC))

    def _store_of(self, number: int) -> _Store:
        if number not in self._where or number not in self._stores[self._where[number]].dossiers:
            raise KeyError(f"no listed dossier number {number}")
        return self._stores[self._where[number]]

    def touch(self, number: int, **changes: Any) -> dict[str, Any]:
        """Change fields of one dossier (or none: just bump it); ``dateDerniereModification`` moves to
        now. ``usager`` / ``demandeur`` dicts are merged; a new ``state`` sets its date when not given."""
        with self._lock:
            store = self._store_of(number)
            d = json.loads(json.dumps(store.dossiers[number]))
            now = self._now()
            for key, value in changes.items():
                if key in ("usager", "demandeur") and isinstance(value, dict):
                    d[key] = {**d[key], **value}
                else:
                    d[key] = value
            if "state" in changes:
                if changes["state"] == "en_instruction" and "datePassageEnInstruction" not in changes:
                    d["datePassageEnInstruction"] = now
                if changes["state"] in ("accepte", "refuse", "sans_suite") and "dateTraitement" not in changes:
                    d["dateTraitement"] = now
            d["dateDerniereModification"] = now
            store.drop(number)
            store.put(d)
            return d

    def delete(self, number: int, reason: str = "user_request") -> dict[str, Any]:
        """Delete a dossier: it leaves ``dossiers`` and appears in ``deletedDossiers`` (now)."""
        with self._lock:
            store = self._store_of(number)
            d = store.drop(number)
            gone = {"id": d["id"], "number": number, "state": d["state"], "reason": reason,
                    "dateSupression": self._now()}
            store.put_deleted(gone)
            return gone

    def add(self, demarche: int, **fields_: Any) -> dict[str, Any]:
        """File a new dossier in ``demarche`` (number = the platform's next); dates are now."""
        with self._lock:
            store = self._stores[demarche]
            number = max(self._where, default=FIRST_NUMBER) + 1
            now = self._now()
            d: dict[str, Any] = {
                "id": gid("Dossier", number), "number": number, "state": "en_construction", "archived": False,
                "dateDepot": now, "datePassageEnConstruction": now, "datePassageEnInstruction": None,
                "dateTraitement": None, "dateDerniereModification": now, "motivation": None,
                "usager": {"id": gid("User", number), "email": None}, "demandeur": None, "champs": [],
            }
            d.update(fields_)
            d["dateDerniereModification"] = now
            store.put(d)
            self._where[number] = demarche
            return d

    def dossier(self, number: int) -> dict[str, Any]:
        """A listed dossier as the server holds it."""
        with self._lock:
            return self._store_of(number).dossiers[number]

    def dossiers(self, demarche: int) -> list[dict[str, Any]]:
        """The listed dossiers of a démarche, by number."""
        with self._lock:
            store = self._stores[demarche]
            return [store.dossiers[n] for n in sorted(store.dossiers)]

    def deleted_dossiers(self, demarche: int) -> list[dict[str, Any]]:
        with self._lock:
            store = self._stores[demarche]
            return [store.deleted[n] for n in sorted(store.deleted)]

    @property
    def demarche_numbers(self) -> list[int]:
        return sorted(self._stores)

    # ------------------------------------------------------------------ execution
    def execute(self, query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
                ) -> tuple[dict[str, Any], tuple[int | None, str | None, int | None]]:
        """The GraphQL answer (``data`` and/or ``errors``) and what it targeted (démarche, connection, page)."""
        ctx = _Context({})
        try:
            doc = parse(query)
            ops = [o for o in doc.operations if operation_name is None or o.name == operation_name]
            if not ops:
                raise GraphQLError(f"No operation named \"{operation_name}\"", "operationNotFound")
            if len(ops) > 1:
                raise GraphQLError("An operation name is required", "operationNameRequired")
            op = ops[0]
            _validate(doc, op)
            ctx.variables = _coerce_variables(op, variables or {})
        except GraphQLError as e:
            return {"errors": [e.as_dict()]}, ctx.target
        try:
            data = self._object(doc, "Query", {}, op.selections, [], ctx)
        except GraphQLError as e:
            return {"errors": [e.as_dict()], "data": None}, ctx.target
        return {"data": data}, ctx.target

    def _collect(self, doc: _Document, concrete: str, selections: list[Any], ctx: _Context) -> dict[str, list[_Field]]:
        out: dict[str, list[_Field]] = {}
        for s in selections:
            if not _included(s.directives, ctx.variables):
                continue
            if isinstance(s, _Field):
                out.setdefault(s.key, []).append(s)
                continue
            if isinstance(s, _Spread):
                on, sels, _, _ = doc.fragments[s.name]
            else:
                on, sels = s.on, s.selections
            if on is None or on == concrete or concrete in ABSTRACT.get(on, ()):
                for key, fields_ in self._collect(doc, concrete, sels, ctx).items():
                    out.setdefault(key, []).extend(fields_)
        return out

    def _object(self, doc: _Document, concrete: str, obj: dict[str, Any], selections: list[Any],
                path: list[str | int], ctx: _Context) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, fields_ in self._collect(doc, concrete, selections, ctx).items():
            f = fields_[0]
            here = [*path, key]
            if f.name == "__typename":
                result[key] = concrete
                continue
            ftype = SCHEMA[concrete][f.name][0]
            args = {k: _value(v, ctx.variables) for k, v in f.args.items()}
            value = self._resolve(concrete, obj, f, args, here, ctx)
            subs = [s for x in fields_ for s in (x.selections or [])]
            result[key] = self._complete(doc, ftype, value, subs, here, ctx, f)
        return result

    def _complete(self, doc: _Document, ftype: str, value: Any, subs: list[Any], path: list[str | int],
                  ctx: _Context, f: _Field) -> Any:
        if value is None:
            if ftype.endswith("!"):
                raise GraphQLError(f"Cannot return null for non-nullable field {f.name}", "internal_server_error",
                                   path=path)
            return None
        inner = ftype[:-1] if ftype.endswith("!") else ftype
        if inner.startswith("["):
            return [self._complete(doc, inner[1:-1], v, subs, [*path, i], ctx, f) for i, v in enumerate(value)]
        if inner in SCALARS:
            return value
        concrete = value.get("__typename", inner) if inner in ABSTRACT else inner
        return self._object(doc, concrete, value, subs, path, ctx)

    def _resolve(self, concrete: str, obj: dict[str, Any], f: _Field, args: dict[str, Any],
                 path: list[str | int], ctx: _Context) -> Any:
        for name, value in args.items():
            _check_arg(f.name, name, value, f, path)
        if concrete == "Query":
            number = args["number"]
            ctx.target = (number, None, None)
            store = self._stores.get(number)
            if store is None:
                raise GraphQLError("Demarche not found", "not_found", f.line, f.column, path)
            return {**store.info, "_store": store}
        if concrete == "Demarche" and f.name in ("dossiers", "deletedDossiers"):
            return self._connection(obj["_store"], f.name, args, ctx, f, path)
        return obj.get(f.name)

    def _connection(self, store: _Store, name: str, args: dict[str, Any], ctx: _Context, f: _Field,
                    path: list[str | int]) -> dict[str, Any]:
        first = args.get("first")
        first = MAX_PAGE_SIZE if first is None else min(first, MAX_PAGE_SIZE)
        if first < 0:
            raise GraphQLError(f"Argument 'first' on Field '{name}' has an invalid value",
                               "argumentLiteralsIncompatible", f.line, f.column, path)
        desc = args.get("order") == "DESC"
        if name == "dossiers":
            since_text = args.get("updatedSince")
            order = "update" if since_text else "depot"
        else:
            since_text = args.get("deletedSince")
            order = "deletion"
        since = parse_iso(since_text).timestamp() if since_text else None
        after_key, page = (None, 1)
        if args.get("after"):
            after_key, prev = _uncursor(args["after"], order)
            page = prev + 1
        ctx.target = (store.info["number"], name, page)
        with self._lock:
            keys = {"update": store.by_update, "depot": store.by_depot, "deletion": store.by_deletion}[order]
            chunk, has_next = _page(keys, since, after_key, first, desc)
            source = store.dossiers if name == "dossiers" else store.deleted
            nodes = [source[n] for _, n in chunk]
        if name == "dossiers":
            state, created = args.get("state"), args.get("createdSince")
            archived = args.get("archived")
            if state is not None:
                nodes = [d for d in nodes if d["state"] == state]
            if created is not None:
                nodes = [d for d in nodes if _epoch(d["dateDepot"]) >= parse_iso(created).timestamp()]
            if archived is not None:
                nodes = [d for d in nodes if d["archived"] == archived]
        cursors = [_cursor(order, k, page) for k in chunk]
        return {
            "pageInfo": {"hasNextPage": has_next, "hasPreviousPage": page > 1,
                         "startCursor": cursors[0] if cursors else None,
                         "endCursor": cursors[-1] if cursors else None},
            "nodes": nodes,
            "edges": [{"cursor": c, "node": n} for c, n in zip(cursors, nodes, strict=False)],
        }


def _included(directives: list[tuple[str, dict[str, Any]]], variables: dict[str, Any]) -> bool:
    for name, args in directives:
        cond = _value(args["if"], variables) if "if" in args else None
        if name == "include" and not cond:
            return False
        if name == "skip" and cond:
            return False
    return True


def _check_arg(field_name: str, name: str, value: Any, f: _Field, path: list[str | int]) -> None:
    if value is None:
        return
    kind = _ARG_TYPES.get(name)
    ok = True
    if kind == "Int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "Boolean":
        ok = isinstance(value, bool)
    elif kind == "Order":
        ok = value in ("ASC", "DESC")
    elif kind == "DossierState":
        ok = value in STATES
    elif kind == "ISO8601DateTime":
        # a date-time is required (a bare date is refused, as the real API's scalar does)
        ok = isinstance(value, str) and "T" in value
        if ok:
            try:
                parse_iso(value)
            except ValueError:
                ok = False
    elif kind == "String":
        ok = isinstance(value, str)
    if not ok:
        raise GraphQLError(f"Argument '{name}' on Field '{field_name}' has an invalid value",
                           "argumentLiteralsIncompatible", f.line, f.column, path)


_HTML = ("<!DOCTYPE html><html lang=\"fr\"><head><title>Maintenance</title></head><body>"
         "<h1>demarches-simplifiees.fr est en maintenance</h1><p>Veuillez réessayer dans quelques minutes."
         "</p></body></html>").encode()


def _errors_body(message: str, code: str, **extra: Any) -> bytes:
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code}}], **extra}).encode()


def _node_count(value: Any) -> int:
    """How many connection nodes (dossiers) an answer holds, at any depth."""
    if isinstance(value, dict):
        nodes = value.get("nodes")
        own = len(nodes) if isinstance(nodes, list) else 0
        return own + sum(_node_count(v) for k, v in value.items() if k != "nodes")
    return sum(_node_count(v) for v in value) if isinstance(value, list) else 0


class _Handler(SimulatorHandler):
    simulator: DemarchesServer
    html_page = _HTML
    html_type = "text/html; charset=utf-8"
    fault_errors: ClassVar[dict[str, tuple[int, bytes]]] = {
        "500": (500, _errors_body("Internal server error", "internal_server_error")),
        "429": (429, _errors_body("Too many requests", "too_many_requests")),
        "401": (401, _errors_body("The API token has expired", "unauthorized")),
        "graphql_error": (200, _errors_body("Internal server error", "internal_server_error", data=None)),
    }

    def _errors(self, status: int, message: str, code: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, _errors_body(message, code), headers=headers)

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/api/v2/graphql":
            self._errors(404, "Not found", "not_found")
            return
        self._errors(405, "Use POST", "method_not_allowed", headers={"Allow": "POST"})

    def do_POST(self) -> None:
        raw = self._body()
        if self.path.split("?")[0] != "/api/v2/graphql":
            self._errors(404, "Not found", "not_found")
            return
        if self.headers.get("Authorization", "") != f"Bearer {self.simulator.token}":
            self._log((None, None, None), 401)
            self._errors(401, "Unauthorized: missing or invalid API token", "unauthorized",
                         headers={"WWW-Authenticate": 'Bearer realm="demarches-simplifiees"'})
            return
        try:
            body = json.loads(raw)
            if not isinstance(body, dict) or not isinstance(body.get("query"), str):
                raise ValueError("no query")
            variables = body.get("variables") or {}
            if isinstance(variables, str):  # some clients send variables as a JSON string
                variables = json.loads(variables or "{}")
            if not isinstance(variables, dict):
                raise ValueError("variables is not an object")
        except ValueError:
            self._log((None, None, None), 400)
            self._errors(400, "The request body must be JSON with a query string", "bad_request")
            return
        answer, target = self.simulator.execute(body["query"], variables, body.get("operationName"))
        self._serve(target, compact_json(answer), records=_node_count(answer))


DemarchesServer.handler = _Handler


def serve_demarches(data_dir: Path, token: str = DEFAULT_TOKEN, port: int = 0) -> DemarchesServer:
    """A started server over the ``demarches.json`` in ``data_dir``; stop it, or use it in a ``with``."""
    return DemarchesServer(data_dir, token=token, port=port).start()


def records(data_dir: Path) -> Iterator[dict[str, Any]]:
    """Every listed dossier on disk (for tests and reports), démarche by démarche."""
    for d in read_json(Path(data_dir) / DATA_FILE)["demarches"]:
        yield from d["dossiers"]
