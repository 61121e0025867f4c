"""The desk's JSON API under ``/api/v1``: search, the citizen page, flag a wrong merge, who looked at
a citizen (the DPO), operations (the admin), and who am I.

Need-to-know is enforced here, on every endpoint, from :mod:`hub.desk.access`: each response is
cut to the attributes, interaction kinds and silos the agent's stated purpose grants, and every
citizen read writes one ``ops.access_log`` row (agent login, collectivité, service, purpose,
channel, the field names shown). The pages (:mod:`hub.desk.pages`) call the same functions
(:func:`search_citizens`, :func:`citizen_page`, :func:`consultations`, :func:`flag_merge`) with
``channel="desk"``; nothing reaches a template that was not cut here first.

Errors are JSON ``{"detail": <French message>, "code": <word>}`` (plus ``valid_purposes`` for a
refused purpose): never a stack trace, never a value typed by the agent or read from the warehouse.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, Field

from hub.desk.access import Permissions, PurposeRefused
from hub.desk.deps import Reader, agent_permissions, current_agent, reader, register, writer
from hub.desk.errors import DeskError
from schemas.register import GOLDEN_ATTRIBUTES, Processing, Register
from warehouse.engine import Warehouse

log = logging.getLogger(__name__)

MAX_QUERY = 200
MAX_ID = 64
MAX_LIMIT = 50
MAX_OFFSET = 1000
MAX_REASON = 500

ATTRIBUTE_LABELS = {
    "given_names": "Prénoms", "birth_name": "Nom de naissance", "usage_name": "Nom d'usage", "sex": "Sexe",
    "birth_date": "Date de naissance", "email": "Courriel", "phone": "Téléphone", "address_line": "Adresse",
    "postcode": "Code postal", "city": "Commune",
}
# A discrepancy on the address concerns these attributes; it is shown beside the address line.
_DISCREPANCY_ATTRIBUTE = {"address": "address_line"}
_ADDRESS = ("address_line", "postcode", "city")
_RECORD_ATTRIBUTES = ("given_names", "birth_name", "usage_name", "sex", "birth_date", "email", "phone",
                      "address_line", "postcode", "city")


# ------------------------------------------------------------------------------------------ errors
def purpose_refused(e: PurposeRefused) -> DeskError:
    """403 naming the purposes the agent may state."""
    if not e.valid:
        return DeskError(403, "aucune_finalite", "Votre service n'a accès à aucun dossier d'usager "
                         "pour votre collectivité (registre des traitements).", valid_purposes=[])
    return DeskError(403, "finalite_refusee", "Finalité refusée : indiquez l'un des traitements du registre "
                     "qui vous ouvrent ce dossier.", valid_purposes=[_purpose(p).model_dump() for p in e.valid])


# ------------------------------------------------------------------------------------------ models
class Problem(BaseModel):
    """An error: a French message and a short code."""

    detail: str
    code: str
    valid_purposes: list[PurposeOut] | None = None
    parameters: list[str] | None = Field(default=None, description="les paramètres invalides (jamais leur valeur)")
    reference: str | None = Field(default=None, description="référence d'une erreur du serveur, pour le support")


class PurposeOut(BaseModel):
    id: str = Field(description="identifiant du traitement dans le registre")
    name: str = Field(description="nom du traitement")
    purpose: str = Field(description="finalité, telle que le journal des accès l'enregistre")


class Me(BaseModel):
    login: str
    display_name: str
    collectivite: str
    collectivite_label: str
    service: str
    service_label: str
    role: str = Field(description="agent, dpo ou admin")
    purposes: list[PurposeOut] = Field(description="les traitements pour lesquels l'agent peut ouvrir un dossier")
    searchable: bool
    readable: list[str] = Field(description="attributs de l'usager lisibles (golden.citizen)")
    interaction_kinds: list[str]
    source_systems: list[str] | None = Field(description="services sources couverts (null : tous)")
    once_only: list[str] = Field(description="attributs que les formulaires du service peuvent pré-remplir")
    can_read_access_log: bool
    can_see_operations: bool


class Hit(BaseModel):
    citizen_id: str
    score: float
    given_names: str | None = None
    birth_name: str | None = None
    usage_name: str | None = None
    birth_year: int | None = None
    city: str | None = None
    source_systems: list[str] = Field(description="services qui connaissent l'usager (parmi ceux couverts)")


class SearchPage(BaseModel):
    purpose: PurposeOut
    hits: list[Hit]
    total: int = Field(description="nombre d'usagers trouvés (au-delà de la page) ; un minimum quand capped")
    capped: bool = Field(default=False, description="vrai quand la recherche est trop vague pour compter tous les "
                         "usagers qu'elle trouve : total est alors un minimum (précisez la recherche)")
    truncated: bool = Field(description="vrai quand d'autres résultats suivent cette page")
    limit: int
    offset: int


class Discrepancy(BaseModel):
    source_system: str
    record_key: str
    value: str | None


class IdentityAttribute(BaseModel):
    attribute: str
    label: str
    value: str | None
    source_system: str | None = None
    record_key: str | None = None
    certification_level: int | None = None
    certification: str | None = None
    observed_at: str | None = None
    rule: str | None = None
    conflict: bool = False
    discrepancies: list[Discrepancy] = Field(default_factory=list,
                                             description="valeurs différentes tenues par d'autres services")


class SourceRecord(BaseModel):
    record_key: str
    source_system: str
    source_id: str | None = None
    role: str | None = None
    certification_level: int | None = None
    match_probability: float | None = None
    match_weight: float | None = None
    explanation: dict[str, Any] | None = Field(default=None, description="contributions des comparaisons (bits)")
    linked_via: str | None = None
    deleted_at: str | None = None
    attributes: dict[str, str | None] = Field(default_factory=dict)


class SiloHouseholdMember(BaseModel):
    record_key: str
    citizen_id: str | None = None
    role: str | None = None


class SiloHousehold(BaseModel):
    household_id: str
    source_system: str
    role: str | None = None
    members: list[SiloHouseholdMember]


class FoyerMember(BaseModel):
    citizen_id: str
    role: str
    is_minor: bool | None = None
    valid_from: str | None = None
    valid_to: str | None = None
    given_names: str | None = None
    usage_name: str | None = None
    birth_date: str | None = None


class Foyer(BaseModel):
    household_id: str
    role: str | None = None
    evidence: str | None = None
    address_line: str | None = None
    postcode: str | None = None
    city: str | None = None
    members: list[FoyerMember]


class Organisation(BaseModel):
    organisation_key: str
    name: str | None = None
    rna: str | None = None
    siren: str | None = None
    role: str | None = None
    valid_from: str | None = None
    valid_to: str | None = None


class Event(BaseModel):
    interaction_key: str
    source_system: str
    kind: str
    service: str | None = None
    title: str | None = None
    status: str | None = None
    opened_at: str
    closed_at: str | None = None
    due_at: str | None = None
    amount: str | None = Field(default=None, description="montant décimal, en texte")
    currency: str | None = None
    channel: str | None = None
    foyer: str | None = Field(default=None, description="le foyer par lequel cette facture est due (co-responsable)")
    pending: bool
    deadline: str | None = None
    silence: str | None = Field(default=None, description="acceptation ou rejet : ce que vaut le silence")
    basis: str | None = None
    overdue: bool
    due_soon: bool


class Unpaid(BaseModel):
    count: int
    totals: dict[str, str] = Field(description="total par devise, en texte décimal")
    invoices: list[str]


class OnceOnly(BaseModel):
    attribute: str
    label: str
    known: bool
    certification_level: int | None = None
    certification: str | None = None
    conflict: bool = False


class CitizenPage(BaseModel):
    citizen_id: str
    requested_id: str = Field(description="l'identifiant demandé (un ancien identifiant mène au nouveau)")
    purpose: PurposeOut
    identity: list[IdentityAttribute]
    records: list[SourceRecord]
    households: list[SiloHousehold]
    foyers: list[Foyer]
    organisations: list[Organisation]
    timeline: list[Event]
    deadlines: list[str] = Field(description="demandes en attente, échéance légale la plus proche d'abord")
    unpaid: Unpaid
    once_only: list[OnceOnly]
    fields_shown: list[str] = Field(description="les champs inscrits au journal des accès pour cette lecture")


class FlagIn(BaseModel):
    purpose: str = Field(min_length=1, max_length=MAX_QUERY)
    record_key: str = Field(min_length=1, max_length=200,
                            description="la fiche qui ne semble pas appartenir à cette personne")
    reason: str = Field(min_length=1, max_length=MAX_REASON, description="pourquoi (enregistré, jamais journalisé)")


class FlagOut(BaseModel):
    queue_id: str = Field(description="l'entrée de la file de revue")
    citizen_id: str
    record_key: str = Field(description="la fiche signalée (l'autre fiche de la paire n'est pas montrée)")


class Consultation(BaseModel):
    read_at: str
    reader: str
    collectivite: str | None = None
    service: str | None = None
    purpose: str
    channel: str
    operation: str | None = None
    fields: list[str]


class Consultations(BaseModel):
    citizen_id: str
    consultations: list[Consultation]
    total: int


class Operations(BaseModel):
    citizens: int
    review_queue: int
    access_log_rows: int
    last_runs: list[dict[str, Any]]


Problem.model_rebuild()


# ------------------------------------------------------------------------------------------ helpers
def _purpose(p: Processing) -> PurposeOut:
    return PurposeOut(id=p.id, name=p.name, purpose=p.purpose)


def _choose(perms: Permissions, purpose: str | None) -> tuple[Processing, Permissions]:
    try:
        p = perms.purpose(purpose)
    except PurposeRefused as e:
        raise purpose_refused(e) from None
    return p, perms.for_purpose(p)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _log(wh: Warehouse, agent: Any, processing: Processing, citizen_ids: list[str], fields: list[str], *,
         channel: str, operation: str = "read", apart: bool = True) -> None:
    from warehouse.access_log import Entry, append

    if citizen_ids:
        # a read's rows apart from the request's transaction, grouped with the other requests' rows
        # (committed before the answer is built; no request holds the chain's lock while it waits);
        # an update's in the transaction of the update
        append(wh, [Entry(reader=agent.login, citizen_id=c, purpose=processing.purpose, operation=operation,
                          channel=channel, fields=tuple(fields), collectivite=agent.collectivite,
                          service=agent.service) for c in citizen_ids], apart=apart)


# ------------------------------------------------------------------------------------------ search
def _resolve(wh: Warehouse, text: str) -> str | None:
    """A citizen id typed in any case with spaces, followed through retired-id aliases."""
    from warehouse.search import resolve_id

    return resolve_id(wh, text)


_HIT_FIELDS = {"given_names": "given_names", "birth_name": "birth_name", "usage_name": "usage_name",
               "birth_year": "birth_date", "city": "city"}


def search_citizens(wh: Warehouse, agent: Any, perms: Permissions, text: str, *, purpose: str | None,
                    limit: int = 20, offset: int = 0, channel: str = "api") -> SearchPage:
    """Search for an agent: refused without a purpose granting search; hits cut to the readable
    attributes and covered silos; one access-log row per citizen listed."""
    processing, scoped = _choose(perms, purpose)
    if not scoped.searchable:
        raise DeskError(403, "recherche_refusee", "Ce traitement ne vous ouvre pas la recherche d'usagers.")
    text = (text or "").strip()
    if not text:
        raise DeskError(400, "recherche_vide", "Saisissez un nom, une date de naissance, un courriel, un "
                        "téléphone ou un identifiant.")
    if len(text) > MAX_QUERY:
        raise DeskError(400, "recherche_trop_longue", f"La recherche est limitée à {MAX_QUERY} caractères.")
    from warehouse.search import QueryError, Scope, search

    # Art. 21: a citizen who objected to this processing is not found by it
    scope = Scope(fields=scoped.readable, source_systems=scoped.source_systems,
                  objecting_to=frozenset({processing.id}))
    try:
        page = search(wh, text, scope=scope, limit=limit, offset=offset)
    except QueryError as e:  # French, and never repeats the query
        raise DeskError(400, "recherche_refusee", str(e)) from None
    shown = [f for f, attr in _HIT_FIELDS.items() if attr in scoped.readable]
    hits = []
    for h in page.hits:
        systems = [s for s in h.source_systems if scoped.covers(s)]
        hits.append(Hit(citizen_id=h.citizen_id, score=float(h.score), source_systems=systems,
                        **{f: getattr(h, f) for f in shown}))
    fields = ["citizen.citizen_id", *(f"citizen.{f}" for f in shown), "citizen.source_systems"]
    _log(wh, agent, processing, [h.citizen_id for h in hits], fields, channel=channel)
    return SearchPage(purpose=_purpose(processing), hits=hits, total=page.total, capped=page.capped,
                      truncated=page.truncated, limit=limit, offset=offset)


# ------------------------------------------------------------------------------------------ citizen page
def _identity(view: dict[str, Any], scoped: Permissions) -> list[IdentityAttribute]:
    citizen, provenance = view["citizen"], view["provenance"]
    beside: dict[str, list[Discrepancy]] = {}
    for d in view["discrepancies"]:
        if scoped.covers(d["source_system"]):
            attr = _DISCREPANCY_ATTRIBUTE.get(d["attribute"], d["attribute"])
            beside.setdefault(attr, []).append(Discrepancy(source_system=d["source_system"],
                                                           record_key=d["record_key"], value=d["silo_value"]))
    out = []
    for attr in GOLDEN_ATTRIBUTES:
        if attr not in scoped.readable:
            continue
        p = provenance.get(attr) or {}
        # where a value came from is shown only from a silo the purpose covers (that a silo the
        # purpose does not cover knows the person is not for this reader)
        origin = p if scoped.covers(p.get("source_system")) else {}
        out.append(IdentityAttribute(
            attribute=attr, label=ATTRIBUTE_LABELS.get(attr, attr), value=_text(citizen.get(attr)),
            source_system=origin.get("source_system"), record_key=origin.get("record_key"),
            certification_level=p.get("certification_level"), certification=p.get("certification"),
            observed_at=_text(p.get("observed_at")), rule=p.get("rule"), conflict=bool(p.get("conflict")),
            discrepancies=beside.get(attr, [])))
    return out


def _records(view: dict[str, Any], scoped: Permissions) -> list[SourceRecord]:
    out = []
    for r in view["records"]:
        if not scoped.covers(r["source_system"]):
            continue
        values = {**r, **(r.get("address") or {})}
        out.append(SourceRecord(
            record_key=r["record_key"], source_system=r["source_system"], source_id=r.get("source_id"),
            role=r.get("role"), certification_level=r.get("certification_level"),
            match_probability=r.get("match_probability"), match_weight=r.get("match_weight"),
            explanation=r.get("explanation") if isinstance(r.get("explanation"), dict) else None,
            linked_via=r.get("linked_via") if scoped.covers((r.get("linked_via") or ":").split(":")[0]) else None,
            deleted_at=_text(r.get("deleted_at")),
            attributes={a: _text(values.get(a)) for a in _RECORD_ATTRIBUTES if a in scoped.readable}))
    return out


def _foyers(view: dict[str, Any], scoped: Permissions) -> list[Foyer]:
    out = []
    for f in view["foyers"]:
        members = [FoyerMember(citizen_id=m["citizen_id"], role=m["role"], is_minor=m.get("is_minor"),
                               valid_from=_text(m.get("valid_from")), valid_to=_text(m.get("valid_to")),
                               **{a: _text(m.get(a)) for a in ("given_names", "usage_name", "birth_date")
                                  if a in scoped.readable})
                   for m in f["members"]]
        out.append(Foyer(household_id=f["household_id"], role=f.get("role"), evidence=f.get("evidence"),
                         members=members, **{a: f.get(a) for a in _ADDRESS if a in scoped.readable}))
    return out


def _timeline(view: dict[str, Any], scoped: Permissions, now: datetime) -> dict[str, Any]:
    from warehouse.timeline import annotate

    kept = [e for e in view["interactions"]
            if e["kind"] in scoped.interaction_kinds and scoped.covers(e["source_system"])]
    # deadlines and unpaid totals again, over what this purpose shows only
    return annotate(kept, now=now)


def _once_only(view: dict[str, Any], perms: Permissions) -> list[OnceOnly]:
    out = []
    for attr in GOLDEN_ATTRIBUTES:
        if attr not in perms.once_only:
            continue
        p = view["provenance"].get(attr) or {}
        out.append(OnceOnly(attribute=attr, label=ATTRIBUTE_LABELS.get(attr, attr),
                            known=view["citizen"].get(attr) is not None,
                            certification_level=p.get("certification_level"), certification=p.get("certification"),
                            conflict=bool(p.get("conflict"))))
    return out


def citizen_page(wh: Warehouse, agent: Any, perms: Permissions, citizen_id: str, *, purpose: str | None,
                 channel: str = "api", now: datetime | None = None) -> CitizenPage:
    """The 360° page for an agent, every part cut to the stated purpose's grants; one access-log row
    naming the fields shown. 403 for a purpose not granted; 404 for an unknown citizen, or one the
    purpose's silos do not know (the same answer: existence is not disclosed)."""
    from warehouse.citizen_view import view as full_view

    processing, scoped = _choose(perms, purpose)
    if not (scoped.readable or scoped.interaction_kinds):
        raise DeskError(403, "lecture_refusee", "Ce traitement ne vous ouvre pas les dossiers d'usagers.")
    now = now or datetime.now(UTC)
    resolved = _resolve(wh, citizen_id)
    v = full_view(wh, resolved, purpose=processing.purpose, now=now) if resolved else None
    if v is None or (scoped.source_systems is not None
                     and not set(v["citizen"]["source_systems"]) & scoped.source_systems):
        raise DeskError(404, "usager_introuvable", "Aucun usager ne porte cet identifiant pour cette finalité.")
    tl = _timeline(v, scoped, now)
    events = [Event(**{k: (_text(e.get(k)) if k in ("opened_at", "closed_at", "due_at", "deadline", "amount")
                           else e.get(k)) for k in Event.model_fields}) for e in tl["events"]]
    page = CitizenPage(
        citizen_id=resolved, requested_id=citizen_id, purpose=_purpose(processing),
        identity=_identity(v, scoped), records=_records(v, scoped),
        households=[SiloHousehold(**h) for h in v["households"] if scoped.covers(h["source_system"])],
        foyers=_foyers(v, scoped),
        organisations=[Organisation(**{k: _text(o.get(k)) for k in Organisation.model_fields})
                       for o in v["organisations"] if scoped.covers(o["record_key"].split(":")[0])],
        timeline=events, deadlines=[e["interaction_key"] for e in tl["deadlines"]],
        unpaid=Unpaid(count=tl["unpaid"]["count"], totals={k: str(x) for k, x in tl["unpaid"]["totals"].items()},
                      invoices=tl["unpaid"]["invoices"]),
        once_only=_once_only(v, perms), fields_shown=[])
    page.fields_shown = _fields_shown(page)
    _log(wh, agent, processing, [resolved], page.fields_shown, channel=channel)
    return page


def _fields_shown(page: CitizenPage) -> list[str]:
    fields = ["citizen.citizen_id", *(f"citizen.{a.attribute}" for a in page.identity)]
    if any(a.discrepancies for a in page.identity):
        fields.append("discrepancies")
    fields += [f"records.{s}" for s in sorted({r.source_system for r in page.records})]
    fields += [name for name in ("households", "foyers", "organisations") if getattr(page, name)]
    fields += [f"timeline.{k}" for k in sorted({e.kind for e in page.timeline})]
    if page.unpaid.count:
        fields.append("unpaid")
    if page.once_only:
        fields.append("once_only")
    return fields


# ------------------------------------------------------------------------------------------ flag, DPO, admin
def flag_merge(wh: Warehouse, agent: Any, perms: Permissions, citizen_id: str, flag: FlagIn, *,
               channel: str = "api") -> FlagOut:
    """Put a suspected wrong merge in the review queue: the record the agent doubts, paired with the
    record that tied it in. Logged as an update of the citizen (who, when, purpose; not the reason).
    ``wh`` is a writer's connection (``deps.writer``): the published release readers use is read-only."""
    from warehouse.merge_flags import FlagError, flag_wrong_merge

    processing, scoped = _choose(perms, flag.purpose)
    if not scoped.readable:
        raise DeskError(403, "lecture_refusee", "Ce traitement ne vous ouvre pas les dossiers d'usagers.")
    resolved = _resolve(wh, citizen_id)
    if resolved is None:
        raise DeskError(404, "usager_introuvable", "Aucun usager ne porte cet identifiant pour cette finalité.")
    if not scoped.covers(flag.record_key.split(":")[0]):
        raise DeskError(404, "fiche_introuvable", "Cette fiche n'est pas rattachée à cet usager.")
    try:
        entry = flag_wrong_merge(wh, resolved, flag.record_key.strip(), flagged_by=agent.login, reason=flag.reason)
    except FlagError as e:
        raise DeskError(e.status, e.code, e.message) from None
    _log(wh, agent, processing, [resolved], ["review_queue"], channel=channel, operation="update",
         apart=False)
    return FlagOut(queue_id=entry["queue_id"], citizen_id=resolved, record_key=flag.record_key.strip())


def consultations(wh: Warehouse, agent: Any, perms: Permissions, citizen_id: str, *, purpose: str | None,
                  limit: int = 100, channel: str = "api") -> Consultations:
    """Who looked at a citizen (the DPO only), newest first, from the access log. Logged as a read."""
    import json

    if perms.role != "dpo":
        raise DeskError(403, "reserve_dpo", "Réservé au délégué à la protection des données.")
    processing, _ = _choose(perms, purpose)
    current = _resolve(wh, citizen_id)
    # an id no longer published (an erased citizen) still has its consultations
    resolved = current or "".join(citizen_id.split()).upper()
    total, rows = _log_of(wh, resolved, limit)
    if current is None and not total:
        raise DeskError(404, "usager_introuvable", "Aucun usager ni aucune consultation pour cet identifiant.")
    out = [Consultation(**{**r, "read_at": _text(r["read_at"]),
                           "fields": json.loads(r["fields"]) if isinstance(r["fields"], str) else r["fields"]})
           for r in rows]
    _log(wh, agent, processing, [resolved], ["access_log"], channel=channel)
    return Consultations(citizen_id=resolved, consultations=out, total=total)


def _log_of(wh: Warehouse, citizen_id: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(rows in all, the latest ``limit``) of the access log about one citizen (the log may live in
    its own file: warehouse/access_log_store.py)."""
    from schemas.contract import ACCESS_LOG
    from warehouse.access_log import opened
    from warehouse.engine import qualified

    with opened(wh) as store:
        if not store.table_exists(ACCESS_LOG.schema, ACCESS_LOG.name):
            return 0, []
        cols = set(store.columns_of(ACCESS_LOG.schema, ACCESS_LOG.name))
        # a log written before the desk's columns: null there
        desk = ", ".join(c if c in cols else f"CAST(NULL AS TEXT) AS {c}" for c in ("collectivite", "service"))
        total = int(store.scalar(f"SELECT count(*) FROM {qualified(ACCESS_LOG)} WHERE citizen_id = :c",
                                 {"c": citizen_id}) or 0)
        rows = store.dicts(f"SELECT read_at, reader, {desk}, purpose, channel, operation, fields "
                           f"FROM {qualified(ACCESS_LOG)} WHERE citizen_id = :c ORDER BY seq DESC LIMIT :n",
                           {"c": citizen_id, "n": limit})
    return total, rows


def operations(wh: Warehouse, perms: Permissions) -> Operations:
    """Counts for the administrator: citizens, review queue, access-log rows, the last runs."""
    from schemas.contract import ACCESS_LOG, CITIZEN, RESOLUTION_RUN, REVIEW_QUEUE
    from warehouse.engine import qualified

    if perms.role != "admin":
        raise DeskError(403, "reserve_admin", "Réservé aux administrateurs du hub.")

    def count(t: Any, where: Warehouse = wh) -> int:
        return int(where.scalar(f"SELECT count(*) FROM {qualified(t)}") or 0) if where.table_exists(
            t.schema, t.name) else 0

    runs = []
    if wh.table_exists(RESOLUTION_RUN.schema, RESOLUTION_RUN.name):
        runs = [{k: _text(v) if isinstance(v, datetime) else v for k, v in r.items()} for r in wh.dicts(
            f"SELECT run_id, finished_at, records, citizens, pairs_scored FROM {qualified(RESOLUTION_RUN)} "
            "ORDER BY finished_at DESC LIMIT 5")]
    from warehouse.access_log import opened

    with opened(wh) as store:
        logged = count(ACCESS_LOG, store)
    return Operations(citizens=count(CITIZEN), review_queue=count(REVIEW_QUEUE), access_log_rows=logged,
                      last_runs=runs)


def me(agent: Any, perms: Permissions, reg: Register) -> Me:
    """Who the signed-in agent is and what the register lets them do."""
    svc = reg.services.get(agent.service)
    return Me(login=agent.login, display_name=agent.display_name, collectivite=agent.collectivite,
              collectivite_label=reg.collectivites.get(agent.collectivite, agent.collectivite),
              service=agent.service, service_label=svc.label if svc else agent.service, role=perms.role,
              purposes=[_purpose(p) for p in perms.purposes], searchable=perms.searchable,
              readable=sorted(perms.readable), interaction_kinds=sorted(perms.interaction_kinds),
              source_systems=None if perms.source_systems is None else sorted(perms.source_systems),
              once_only=sorted(perms.once_only), can_read_access_log=perms.role == "dpo",
              can_see_operations=perms.role == "admin")


# ------------------------------------------------------------------------------------------ routes
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text} for code, text in (
        (400, "requête invalide"), (401, "connexion requise"), (403, "refusé par le registre des traitements"),
        (404, "introuvable"), (422, "paramètre invalide"), (503, "publication ou entrepôt momentanément indisponible"))}

router = APIRouter(prefix="/api/v1", tags=["api"], responses=ERRORS)

Agent = Annotated[Any, Depends(current_agent)]
Perms = Annotated[Permissions, Depends(agent_permissions)]
Read = Annotated[Reader, Depends(reader)]  # opened in the endpoint: committed before the answer leaves
PurposeQ = Annotated[str | None, Query(max_length=MAX_QUERY, description="le traitement (id ou finalité)")]
CitizenId = Annotated[str, Path(min_length=1, max_length=MAX_ID, description="identifiant de l'usager")]


@router.get("/me", response_model=Me, summary="L'agent connecté et ses droits")
def get_me(agent: Agent, perms: Perms, reg: Annotated[Register, Depends(register)]) -> Me:
    return me(agent, perms, reg)


@router.get("/citizens", response_model=SearchPage, summary="Rechercher un usager")
def get_search(agent: Agent, perms: Perms, read: Read,
               q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY, description="nom, date, courriel…")],
               purpose: PurposeQ = None,
               limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
               offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> SearchPage:
    with read() as wh:
        return search_citizens(wh, agent, perms, q, purpose=purpose, limit=limit, offset=offset)


@router.get("/citizens/{citizen_id}", response_model=CitizenPage, summary="Le dossier d'un usager (vue 360°)")
def get_citizen(agent: Agent, perms: Perms, read: Read, citizen_id: CitizenId, purpose: PurposeQ = None) -> CitizenPage:
    with read() as wh:
        return citizen_page(wh, agent, perms, citizen_id, purpose=purpose)


@router.post("/citizens/{citizen_id}/signalements", response_model=FlagOut, status_code=201,
             summary="Signaler un rapprochement douteux (file de revue)")
def post_flag(agent: Agent, perms: Perms, wh: Annotated[Warehouse, Depends(writer)], citizen_id: CitizenId,
              flag: Annotated[FlagIn, Body()]) -> FlagOut:
    return flag_merge(wh, agent, perms, citizen_id, flag)


@router.get("/citizens/{citizen_id}/consultations", response_model=Consultations,
            summary="Qui a consulté ce dossier (DPO)")
def get_consultations(agent: Agent, perms: Perms, read: Read, citizen_id: CitizenId, purpose: PurposeQ = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Consultations:
    with read() as wh:
        return consultations(wh, agent, perms, citizen_id, purpose=purpose, limit=limit)


@router.get("/operations", response_model=Operations, summary="Exploitation : exécutions, file de revue")
def get_operations(agent: Agent, perms: Perms, read: Read) -> Operations:
    with read() as wh:
        return operations(wh, perms)
