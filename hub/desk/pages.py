"""The desk's French pages, rendered on the server (forms with GET and POST, no script needed).

Every page calls the functions the JSON API calls (:func:`hub.desk.api.search_citizens`,
:func:`~hub.desk.api.citizen_page`, :func:`~hub.desk.api.flag_merge`,
:func:`~hub.desk.api.consultations`) with ``channel="desk"``: what a page shows is what the API
returns for that agent and purpose, cut and logged there; the templates only lay it out. Without a
session a page sends the browser to ``/connexion?next=…``; a signed-in agent without the right gets
a French 403 page (:func:`install`).

POST forms carry a per-session token (``csrf``): the HMAC of the session cookie under a key of the
process (a fresh cookie at each sign-in, so a fresh token), checked before anything is written.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.desk import api, present
from hub.desk.access import Permissions, permissions
from hub.desk.deps import agent_permissions, current_agent, register, warehouse

log = logging.getLogger(__name__)

PAGE_SIZE = 20
# paths that answer JSON whatever the client accepts
API_PREFIXES = ("/api/", "/openapi.json", "/docs", "/redoc")
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

router = APIRouter(include_in_schema=False)
templates = present.templates()

Agent = Annotated[Any, Depends(current_agent)]
Perms = Annotated[Permissions, Depends(agent_permissions)]
Wh = Annotated[Any, Depends(warehouse)]
Reg = Annotated[Any, Depends(register)]


# ------------------------------------------------------------------------------------------ helpers
def csrf_token(request: Request) -> str:
    """The session's token for POST forms: HMAC of the session cookie under the process's key."""
    from hub.desk.auth import SESSION_COOKIE

    app = request.app
    key = getattr(app.state, "desk_csrf_key", None)
    if key is None:
        key = app.state.desk_csrf_key = secrets.token_bytes(32)
    return hmac.new(key, (request.cookies.get(SESSION_COOKIE) or "").encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, token: str | None) -> None:
    """403 unless ``token`` is this session's."""
    if not token or not hmac.compare_digest(token.encode(), csrf_token(request).encode()):
        raise HTTPException(403, detail="Formulaire expiré ou envoyé d'ailleurs : rechargez la page et recommencez.")


def agent_view(agent: Any, perms: Permissions | None, reg: Any) -> dict[str, Any]:
    """What the header says about the signed-in agent."""
    service = reg.services.get(agent.service)
    return {"display_name": agent.display_name, "role": agent.role,
            "service_label": service.label if service else agent.service,
            "collectivite_label": reg.collectivites.get(agent.collectivite, agent.collectivite),
            "searchable": bool(perms and perms.searchable)}


def render(request: Request, name: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """A page, never cached (it may carry personal data)."""
    context.setdefault("csrf_token", csrf_token(request) if context.get("agent") else "")
    return templates.TemplateResponse(request, name, context, status_code=status, headers=NO_STORE)


def error_page(request: Request, status: int, *, agent: dict[str, Any] | None, detail: str | None = None,
               reference: str | None = None) -> HTMLResponse:
    """A French error page (``detail``: the French message of the refusal, never a raw value)."""
    title, message = ERRORS.get(status, ERRORS[400] if status < 500 else ERRORS[500])
    return render(request, "erreur.html", {"agent": agent, "status": status, "title": title, "message": message,
                                           "detail": detail if detail != message else None,
                                           "reference": reference}, status=status)


def _searchable(perms: Permissions) -> list[Any]:
    return [p for p in perms.purposes if perms.for_purpose(p).searchable]


def _by_keys(events: list[Any], keys: list[str]) -> list[Any]:
    index = {e.interaction_key: e for e in events}
    return [index[k] for k in keys if k in index]


# ------------------------------------------------------------------------------------------ routes
@router.get("/")
def home(agent: Agent) -> RedirectResponse:
    return RedirectResponse("/recherche", status_code=303)


@router.get("/recherche")
def search_page(request: Request, agent: Agent, perms: Perms, reg: Reg, wh: Wh,
                q: Annotated[str, Query(max_length=api.MAX_QUERY * 5)] = "",
                motif: Annotated[str, Query(max_length=api.MAX_QUERY)] = "",
                debut: Annotated[int, Query(ge=0, le=api.MAX_OFFSET)] = 0) -> HTMLResponse:
    """The search form; with ``q``, a page of results (``debut``: the offset) and the paging links."""
    who = agent_view(agent, perms, reg)
    purposes = _searchable(perms)
    if not purposes:
        return error_page(request, 403, agent=who, detail="Votre service ne peut pas rechercher d'usager.")
    chosen = next((p for p in purposes if p.id == motif), purposes[0])
    context: dict[str, Any] = {"agent": who, "nav": "recherche", "q": q, "purposes": purposes, "motif": chosen.id,
                               "max_length": api.MAX_QUERY, "results": None, "error": None}
    status = 200
    if q.strip():
        try:
            results = api.search_citizens(wh, agent, perms, q, purpose=chosen.id, limit=PAGE_SIZE, offset=debut,
                                          channel="desk")
        except api.DeskError as e:
            if e.status != 400:
                return error_page(request, e.status, agent=who, detail=e.message)
            context["error"], status = e.message, 400
        else:
            shown = len(results.hits)
            params = {"q": q, **({"motif": chosen.id} if len(purposes) > 1 else {})}
            context.update(
                results=results, first=debut + 1 if shown else 0, last=debut + shown,
                previous_url=("/recherche?" + urlencode({**params, **({"debut": max(0, debut - PAGE_SIZE)}
                                                                      if debut > PAGE_SIZE else {})})
                              if debut > 0 else None),
                next_url=("/recherche?" + urlencode({**params, "debut": debut + PAGE_SIZE})
                          if results.truncated and debut + PAGE_SIZE <= api.MAX_OFFSET else None))
    return render(request, "recherche.html", context, status=status)


@router.get("/usager/{citizen_id}")
def citizen(request: Request, agent: Agent, perms: Perms, reg: Reg, wh: Wh, citizen_id: str,
            motif: Annotated[str, Query(max_length=api.MAX_QUERY)] = "",
            suggere: Annotated[str, Query(max_length=api.MAX_QUERY)] = "") -> HTMLResponse:
    """Without ``motif``: the purpose choice (nothing read yet). With it: the citizen page, read and
    logged by :func:`hub.desk.api.citizen_page` for that purpose."""
    who = agent_view(agent, perms, reg)
    if not perms.purposes:
        return error_page(request, 403, agent=who, detail="Votre service n'a accès à aucun dossier d'usager.")
    if len(citizen_id) > api.MAX_ID:
        return error_page(request, 404, agent=who)
    choice = {"agent": who, "citizen_id": citizen_id, "purposes": perms.purposes, "selected": suggere,
              "error": None}
    if not motif:
        return render(request, "motif.html", choice)
    try:
        page = api.citizen_page(wh, agent, perms, citizen_id, purpose=motif, channel="desk")
    except api.DeskError as e:
        if e.code == "finalite_refusee":
            return render(request, "motif.html", choice | {"error": e.message}, status=e.status)
        return error_page(request, e.status, agent=who, detail=e.message)
    scoped = perms.for_purpose(perms.purpose(page.purpose.id))
    values = {a.attribute: a.value for a in page.identity}
    return render(request, "usager.html", {
        "agent": who, "page": page, "identity_name": present.full_name(values),
        "parts": {"timeline": bool(scoped.interaction_kinds), "unpaid": "facture" in scoped.interaction_kinds},
        "deadlines": _by_keys(page.timeline, page.deadlines),
        "unpaid": _by_keys(page.timeline, page.unpaid.invoices),
        "max_reason": api.MAX_REASON})


@router.post("/usager/{citizen_id}/signaler")
def flag(request: Request, agent: Agent, perms: Perms, reg: Reg, wh: Wh, citizen_id: str,
         csrf: Annotated[str, Form(max_length=200)] = "", motif: Annotated[str, Form(max_length=api.MAX_QUERY)] = "",
         fiche: Annotated[str, Form(max_length=200)] = "",
         raison: Annotated[str, Form(max_length=api.MAX_REASON * 4)] = "") -> HTMLResponse:
    """A suspected wrong merge, from the citizen page's form, into the review queue."""
    check_csrf(request, csrf)
    who = agent_view(agent, perms, reg)
    context: dict[str, Any] = {"agent": who, "citizen_id": citizen_id, "motif": motif, "record_key": fiche,
                               "done": None, "error": None}
    try:
        body = api.FlagIn(purpose=motif, record_key=fiche, reason=raison.strip())
    except ValidationError:
        context["error"] = (f"Choisissez la fiche concernée et dites pourquoi ({api.MAX_REASON} caractères au "
                            "plus).")
        return render(request, "signaler.html", context, status=400)
    try:
        context["done"] = api.flag_merge(wh, agent, perms, citizen_id, body, channel="desk")
    except api.DeskError as e:
        if e.status in (401, 403):
            return error_page(request, e.status, agent=who, detail=e.message)
        context["error"] = e.message
        return render(request, "signaler.html", context, status=e.status)
    return render(request, "signaler.html", context, status=201)


@router.get("/dpo/consultations")
def who_looked(request: Request, agent: Agent, perms: Perms, reg: Reg, wh: Wh,
               usager: Annotated[str, Query(max_length=api.MAX_ID * 2)] = "") -> HTMLResponse:
    """The DPO's "who looked at this citizen" page, from the access log."""
    who = agent_view(agent, perms, reg)
    if perms.role != "dpo":
        return error_page(request, 403, agent=who, detail="Réservé au délégué à la protection des données.")
    context: dict[str, Any] = {"agent": who, "nav": "consultations", "query": usager, "rows": None,
                               "citizen_id": None, "error": None, "collectivites": reg.collectivites,
                               "services": {k: s.label for k, s in reg.services.items()}}
    if usager.strip():
        try:
            found = api.consultations(wh, agent, perms, usager, purpose=None, channel="desk")
        except api.DeskError as e:
            context["error"] = e.message
            return render(request, "consultations.html", context, status=e.status)
        context.update(rows=found.consultations, citizen_id=found.citizen_id, total=found.total)
    return render(request, "consultations.html", context)


@router.get("/accessibilite")
async def accessibility_statement(request: Request, reg: Reg) -> HTMLResponse:
    """The accessibility statement (RGAA 4.1): public, as the law wants it reachable, and free of
    personal data."""
    return render(request, "accessibilite.html", {
        "agent": await _optional_agent(request, reg), "nav": "accessibilite", "statement": present.ACCESSIBILITY,
        "controller": reg.controller, "base_url": str(request.base_url).rstrip("/")})


# ------------------------------------------------------------------------------------------ errors
async def _optional_agent(request: Request, reg: Any) -> dict[str, Any] | None:
    """The header's agent when a session is live, else None (an error page, the public statement)."""
    try:
        agent = await current_agent(request)
    except (HTTPException, RuntimeError):
        return None
    return agent_view(agent, permissions(agent, reg), reg)


def _is_page(request: Request) -> bool:
    path = request.url.path
    return (not any(path == p.rstrip("/") or path.startswith(p) for p in API_PREFIXES)
            and "text/html" in request.headers.get("accept", ""))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not _is_page(request):
        return await http_exception_handler(request, exc)
    if exc.status_code == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        next_path = target if request.method == "GET" else "/recherche"
        return RedirectResponse("/connexion?next=" + quote(next_path, safe=""), status_code=303, headers=NO_STORE)
    reg = request.app.state.desk.register
    detail = exc.detail if exc.status_code == 403 and isinstance(exc.detail, str) else None
    return error_page(request, exc.status_code, agent=await _optional_agent(request, reg), detail=detail)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _is_page(request):
        return await request_validation_exception_handler(request, exc)
    reg = request.app.state.desk.register
    return error_page(request, 422, agent=await _optional_agent(request, reg))


async def _server_error(request: Request, exc: Exception) -> Response:
    reference = uuid.uuid4().hex[:10]
    route = getattr(request.scope.get("route"), "path", "?")
    # the type only: an exception's message may carry a value read from the warehouse
    log.error("unexpected %s on %s %s (reference %s)", type(exc).__name__, request.method, route, reference)
    if not _is_page(request):
        return JSONResponse({"detail": "Erreur inattendue du serveur.", "code": "erreur_serveur",
                             "reference": reference}, status_code=500)
    return error_page(request, 500, agent=None, reference=reference)


def install(app: FastAPI) -> None:
    """The pages on ``app``: their routes, the stylesheet under /static, and the error handlers that
    answer HTML to a browser on a page (401 → sign-in, French 403/404/422/500) and leave the API's
    paths to FastAPI's JSON answers."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=present.STATIC), name="static")
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
