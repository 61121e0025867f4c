"""The desk's French pages, rendered on the server (forms with GET and POST, no script needed).

Every page calls the functions the JSON API calls (:func:`hub.desk.api.search_citizens`,
:func:`~hub.desk.api.citizen_page`, :func:`~hub.desk.api.flag_merge`,
:func:`~hub.desk.api.consultations`) with ``channel="desk"``: what a page shows is what the API
returns for that agent and purpose, cut and logged there; the templates only lay it out. A refusal
raised there reaches the app's error handlers, which answer a page's path with :func:`error_page`:
without a session, a redirect to ``/connexion?next=…``; a signed-in agent without the right, a
French 403 page.

POST forms carry a per-session token (``csrf``): the HMAC of the session cookie under a key of the
process (a fresh cookie at each sign-in, so a fresh token), checked before anything is written.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from hub.desk import api, present
from hub.desk.access import Permissions, permissions
from hub.desk.deps import Reader, agent_permissions, current_agent, reader, register, writer

PAGE_SIZE = 20
NO_STORE = {"Cache-Control": "no-store"}  # pages with personal data are never kept by a cache

ERRORS = {
    400: ("Demande incorrecte", "La demande n'a pas pu être comprise."),
    401: ("Connexion requise", "Connectez-vous pour accéder au bureau des agents."),
    403: ("Accès refusé", "Votre service n'a pas accès à cette page ou à cette donnée pour ce motif (registre des "
                          "traitements). Si vous pensez en avoir besoin, adressez-vous au responsable de votre "
                          "service ou au délégué à la protection des données."),
    404: ("Page introuvable", "Cette page ou cette fiche n'existe pas (ou plus)."),
    405: ("Méthode non permise", "Cette adresse ne s'utilise pas ainsi."),
    422: ("Demande incorrecte", "Un des paramètres de la demande n'est pas valide."),
    500: ("Erreur du serveur", "Une erreur inattendue est survenue. Réessayez dans un instant ; si elle se "
                               "reproduit, signalez-la au support en donnant la référence ci-dessous."),
}

# hub.desk.app's codes for errors that carry no message of their own
GENERIC_CODES = frozenset({"requete_invalide", "connexion_requise", "acces_refuse", "introuvable", "methode_refusee",
                           "parametre_invalide", "erreur"})

# drawn at start: sessions live in this process's memory too, so a restart ends both
_CSRF_KEY = secrets.token_bytes(32)

router = APIRouter(include_in_schema=False)
templates = present.templates()

Read = Annotated[Reader, Depends(reader)]  # opened in the endpoint: committed before the answer leaves
Reg = Annotated[Any, Depends(register)]


# ------------------------------------------------------------------------------------------ helpers
def csrf_token(request: Request) -> str:
    """The session's token for POST forms: HMAC of the session cookie under the process's key."""
    from hub.desk.auth import SESSION_COOKIE

    return hmac.new(_CSRF_KEY, (request.cookies.get(SESSION_COOKIE) or "").encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, token: str | None) -> None:
    """403 unless ``token`` is this session's."""
    if not token or not hmac.compare_digest(token.encode(), csrf_token(request).encode()):
        raise HTTPException(403, detail="Formulaire expiré ou envoyé d'ailleurs : rechargez la page et recommencez.")


def agent_view(request: Request, agent: Any, perms: Permissions, reg: Any) -> dict[str, Any]:
    """What the header says about the signed-in agent (kept on the request for an error page)."""
    service = reg.services.get(agent.service)
    view = {"display_name": agent.display_name, "role": agent.role,
            "service_label": service.label if service else agent.service,
            "collectivite_label": reg.collectivites.get(agent.collectivite, agent.collectivite),
            "searchable": perms.searchable}
    request.state.desk_agent = view
    return view


class Desk:
    """A page's signed-in agent, their permissions and the register (a 401 without a session)."""

    def __init__(self, request: Request, agent: Annotated[Any, Depends(current_agent)],
                 perms: Annotated[Permissions, Depends(agent_permissions)], reg: Reg):
        self.agent, self.perms, self.register = agent, perms, reg
        self.view = agent_view(request, agent, perms, reg)


Signed = Annotated[Desk, Depends()]


def render(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """A page, never cached (it may carry personal data)."""
    context.setdefault("csrf_token", csrf_token(request) if context.get("agent") else "")
    return templates.TemplateResponse(request, name, context, status_code=status, headers=NO_STORE)


def error_page(request: Request, status: int, code: str = "", message: str = "", **extra: Any) -> Response:
    """The answer to an error on a page (the app's handlers call it for every path outside the API):
    401 sends the browser to the sign-in, to come back to the page; any other status is a French
    page with the refusal's message (a sentence of the desk, never a value typed or read)."""
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        next_path = target if request.method == "GET" else "/recherche"
        return RedirectResponse("/connexion?next=" + quote(next_path, safe=""), status_code=303, headers=NO_STORE)
    title, default = ERRORS.get(status, ERRORS[400] if status < 500 else ERRORS[500])
    # the app's generic answers ("Ressource introuvable.") say less than the page's own text
    detail = message if status in (400, 403, 404) and code not in GENERIC_CODES else None
    return render(request, "erreur.html", {
        "agent": getattr(request.state, "desk_agent", None), "status": status, "title": title, "message": default,
        "detail": detail, "reference": extra.get("reference")}, status=status)


def _searchable(perms: Permissions) -> list[Any]:
    return [p for p in perms.purposes if perms.for_purpose(p).searchable]


def _by_keys(events: list[Any], keys: list[str]) -> list[Any]:
    index = {e.interaction_key: e for e in events}
    return [index[k] for k in keys if k in index]


# ------------------------------------------------------------------------------------------ routes
@router.get("/")
def home(desk: Signed) -> RedirectResponse:
    return RedirectResponse("/recherche" if desk.perms.searchable else "/accessibilite", status_code=303)


@router.get("/recherche")
def search_page(request: Request, desk: Signed, read: Read,
                q: Annotated[str, Query(max_length=api.MAX_QUERY * 5)] = "",
                motif: Annotated[str, Query(max_length=api.MAX_QUERY)] = "",
                debut: Annotated[int, Query(ge=0, le=api.MAX_OFFSET)] = 0) -> HTMLResponse:
    """The search form; with ``q``, a page of results (``debut``: the offset) and the paging links."""
    purposes = _searchable(desk.perms)
    if not purposes:
        raise api.DeskError(403, "recherche_refusee", "Votre service ne peut pas rechercher d'usager.")
    chosen = next((p for p in purposes if p.id == motif), purposes[0])
    context: dict[str, Any] = {"agent": desk.view, "nav": "recherche", "q": q, "purposes": purposes,
                               "motif": chosen.id, "max_length": api.MAX_QUERY, "results": None, "error": None}
    status = 200
    if q.strip():
        try:
            with read() as wh:
                results = api.search_citizens(wh, desk.agent, desk.perms, q, purpose=chosen.id, limit=PAGE_SIZE,
                                              offset=debut, channel="desk")
        except api.DeskError as e:
            if e.status != 400:
                raise
            context["error"], status = e.message, 400  # shown on the form, beside the search box
        else:
            shown = len(results.hits)
            params = {"q": q, **({"motif": chosen.id} if len(purposes) > 1 else {})}
            before = max(0, debut - PAGE_SIZE)
            context.update(
                results=results, first=debut + 1 if shown else 0, last=debut + shown,
                previous_url=("/recherche?" + urlencode({**params, **({"debut": before} if before else {})})
                              if debut > 0 else None),
                next_url=("/recherche?" + urlencode({**params, "debut": debut + PAGE_SIZE})
                          if results.truncated and debut + PAGE_SIZE <= api.MAX_OFFSET else None))
    return render(request, "recherche.html", context, status=status)


@router.get("/usager/{citizen_id}")
def citizen(request: Request, desk: Signed, read: Read, citizen_id: Annotated[str, PathParam(max_length=api.MAX_ID)],
            motif: Annotated[str, Query(max_length=api.MAX_QUERY)] = "",
            suggere: Annotated[str, Query(max_length=api.MAX_QUERY)] = "") -> HTMLResponse:
    """Without ``motif``: the purpose choice (nothing read yet). With it: the citizen page, read and
    logged by :func:`hub.desk.api.citizen_page` for that purpose."""
    if not desk.perms.purposes:
        raise api.DeskError(403, "aucune_finalite", "Votre service n'a accès à aucun dossier d'usager.")
    choice = {"agent": desk.view, "citizen_id": citizen_id, "purposes": desk.perms.purposes, "selected": suggere,
              "error": None}
    if not motif:
        return render(request, "motif.html", choice)
    try:
        with read() as wh:
            page = api.citizen_page(wh, desk.agent, desk.perms, citizen_id, purpose=motif, channel="desk")
    except api.DeskError as e:
        if e.code != "finalite_refusee":
            raise
        return render(request, "motif.html", choice | {"error": e.message}, status=e.status)
    scoped = desk.perms.for_purpose(desk.perms.purpose(page.purpose.id))
    values = {a.attribute: a.value for a in page.identity}
    return render(request, "usager.html", {
        "agent": desk.view, "page": page, "identity_name": present.full_name(values),
        "parts": {"timeline": bool(scoped.interaction_kinds), "unpaid": "facture" in scoped.interaction_kinds},
        "deadlines": _by_keys(page.timeline, page.deadlines),
        "unpaid": _by_keys(page.timeline, page.unpaid.invoices),
        "max_reason": api.MAX_REASON})


@router.post("/usager/{citizen_id}/signaler")
def flag(request: Request, desk: Signed, wh: Annotated[Any, Depends(writer)],
         citizen_id: Annotated[str, PathParam(max_length=api.MAX_ID)],
         csrf: Annotated[str, Form(max_length=200)] = "", motif: Annotated[str, Form(max_length=api.MAX_QUERY)] = "",
         fiche: Annotated[str, Form(max_length=200)] = "",
         raison: Annotated[str, Form(max_length=api.MAX_REASON * 4)] = "") -> HTMLResponse:
    """A suspected wrong merge, from the citizen page's form, into the review queue (through a
    writer's connection: the published release the other pages read is read-only)."""
    check_csrf(request, csrf)
    context: dict[str, Any] = {"agent": desk.view, "citizen_id": citizen_id, "motif": motif, "record_key": fiche,
                               "done": None, "error": None}
    try:
        body = api.FlagIn(purpose=motif, record_key=fiche, reason=raison.strip())
    except ValidationError:
        context["error"] = (f"Choisissez la fiche concernée et dites pourquoi ({api.MAX_REASON} caractères au "
                            "plus).")
        return render(request, "signaler.html", context, status=400)
    try:
        context["done"] = api.flag_merge(wh, desk.agent, desk.perms, citizen_id, body, channel="desk")
    except api.DeskError as e:
        if e.status in (401, 403):
            raise
        context["error"] = e.message
        return render(request, "signaler.html", context, status=e.status)
    return render(request, "signaler.html", context, status=201)


@router.get("/dpo/consultations")
def who_looked(request: Request, desk: Signed, read: Read,
               usager: Annotated[str, Query(max_length=api.MAX_ID * 2)] = "") -> HTMLResponse:
    """The DPO's "who looked at this citizen" page, from the access log."""
    if desk.perms.role != "dpo":
        raise api.DeskError(403, "reserve_dpo", "Réservé au délégué à la protection des données.")
    reg = desk.register
    context: dict[str, Any] = {"agent": desk.view, "nav": "consultations", "query": usager, "rows": None,
                               "citizen_id": None, "error": None, "collectivites": reg.collectivites,
                               "services": {k: s.label for k, s in reg.services.items()}}
    if usager.strip():
        try:
            with read() as wh:
                found = api.consultations(wh, desk.agent, desk.perms, usager, purpose=None, channel="desk")
        except api.DeskError as e:
            if e.status in (401, 403):
                raise
            context["error"] = e.message
            return render(request, "consultations.html", context, status=e.status)
        context.update(rows=found.consultations, citizen_id=found.citizen_id, total=found.total)
    return render(request, "consultations.html", context)


@router.get("/accessibilite")
async def accessibility_statement(request: Request, reg: Reg) -> HTMLResponse:
    """The accessibility statement (RGAA 4.1): public, as the law wants it reachable from every
    page, and free of personal data."""
    try:
        agent = await current_agent(request)
    except HTTPException:
        who = None
    else:
        who = agent_view(request, agent, permissions(agent, reg), reg)
    return render(request, "accessibilite.html", {
        "agent": who, "nav": "accessibilite", "statement": present.ACCESSIBILITY,
        "controller": reg.controller, "base_url": str(request.base_url).rstrip("/")})


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    """The pages' own stylesheet (public: no data in it)."""
    if name not in present.STATIC_FILES:
        raise HTTPException(404)
    return FileResponse(present.STATIC / name, headers={"Cache-Control": "public, max-age=86400"})
