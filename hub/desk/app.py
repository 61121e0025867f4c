"""The desk's FastAPI application: the JSON API (``/api/v1``, described at ``/openapi.json``), the
sign-in routes (:mod:`hub.desk.auth`) and the pages (:mod:`hub.desk.pages`).

Errors: every refusal and every failure answers ``{"detail": <French>, "code": <word>}`` on the
API's paths (the pages render their own French error page for the others). A validation error
names the parameter, never the value typed; an unexpected failure is logged with a reference
and answered 500 with that reference only: no stack trace, no personal data.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.desk import api
from hub.desk.deps import DeskState
from hub.desk.errors import DeskError

log = logging.getLogger(__name__)

API_PREFIXES = ("/api", "/openapi.json", "/docs", "/redoc")
_STATUS_TEXT = {
    400: ("requete_invalide", "Requête invalide."),
    401: ("connexion_requise", "Connexion requise."),
    403: ("acces_refuse", "Accès refusé."),
    404: ("introuvable", "Ressource introuvable."),
    405: ("methode_refusee", "Méthode non permise."),
    422: ("parametre_invalide", "Paramètre invalide."),
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIXES)


class InertAnswers:
    """JSON is only ever JSON: never sniffed as HTML, never framed; API answers never cached.

    A plain ASGI middleware setting headers on the answer's start (Starlette's ``BaseHTTPMiddleware``
    would carry every answer through a task and memory streams of its own)."""

    def __init__(self, app: ASGIApp, docs_url: str | None) -> None:
        self.app = app
        self.docs_url = docs_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        api = path.startswith(API_PREFIXES) and path != self.docs_url  # the docs page loads Swagger UI's scripts

        async def send_inert(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if api:
                    headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_inert)


def _json(status: int, code: str, message: str, headers: dict[str, str] | None = None,
          **extra: Any) -> JSONResponse:
    body = {"detail": message, "code": code, **{k: v for k, v in extra.items() if v is not None}}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store", **(headers or {})})


def _page_error(request: Request, status: int, code: str, message: str, **extra: Any) -> Response | None:
    """The pages' French error page for a non-API path (None when the pages are not installed)."""
    try:
        from hub.desk.pages import error_page
    except ImportError:
        return None
    return error_page(request, status, code, message, **extra)


def _answer(request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None,
            **extra: Any) -> Response:
    if not _is_api(request):
        page = _page_error(request, status, code, message, **extra)
        if page is not None:
            return page
    return _json(status, code, message, headers, **extra)


async def desk_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DeskError)
    return _answer(request, exc.status, exc.code, exc.message, **exc.extra)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, default = _STATUS_TEXT.get(exc.status_code, ("erreur", "Erreur."))
    # our own HTTPExceptions carry French messages; Starlette's defaults ("Not Found") do not
    message = exc.detail if isinstance(exc.detail, str) and exc.detail and not exc.detail.isascii() else default
    if exc.status_code == 401:
        message = "Connexion requise."
    return _answer(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    # the parameter's name only: the value typed may be personal data
    names = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
    message = f"Paramètre invalide : {', '.join(names)}." if names else "Paramètre invalide."
    return _answer(request, 422, "parametre_invalide", message, parameters=names)


async def server_error(request: Request, exc: Exception) -> Response:
    ref = uuid.uuid4().hex[:12]
    # the exception's type only: its message may quote personal data
    log.error("desk: unexpected %s on %s %s (ref %s)", type(exc).__name__, request.method, request.url.path, ref)
    return _answer(request, 500, "erreur_serveur", f"Erreur inattendue du serveur (référence {ref}).", reference=ref)


# How many requests the desk works on at once (its endpoints are synchronous: anyio's worker threads,
# 40 by default). On DuckDB a request's work is this process's own Python and DuckDB under one GIL:
# two threads (one computing while the other waits on a write) — at 1M under 8 clients, 40 threads
# fighting for the GIL gave a search p95 of 75 ms and 5.6 ms of CPU each, two threads 40 ms and 4.2
# (the citizen page 83 ms either way). On PostgreSQL a request mostly waits on the server: anyio's
# default (two threads there gave 59 ms instead of 53).
DUCKDB_REQUEST_THREADS = 2


def request_threads(url: str, setting: Any = None) -> int | None:
    """The desk's worker threads: ``[desk] threads`` when set, else :data:`DUCKDB_REQUEST_THREADS`
    on DuckDB, else None (anyio's default)."""
    if setting is not None:
        if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
            raise ValueError(f"[desk] threads: a whole number of threads (1 or more), not {setting!r}")
        return setting
    return DUCKDB_REQUEST_THREADS if url.startswith("duckdb:") else None


def create_app(settings: Any = None, *, warehouse_url: str | None = None, register: Any = None,
               oidc_config: Any = None, dpo_warehouse_url: str | None = None) -> FastAPI:
    """The desk for ``settings`` (``hub.settings.Settings``; the desk's logins and ``[desk]``), or for
    an explicit ``warehouse_url`` (the agents' reads), ``dpo_warehouse_url`` (the DPO's; default the
    same), ``register`` (default: the register in force) and ``oidc_config`` (default:
    ``OIDCConfig.from_settings(settings)``; without either, nobody can sign in)."""
    from schemas.register import load_register

    url = warehouse_url or (settings.desk_warehouse_url if settings is not None else None)
    if url is None:
        from warehouse.engine import warehouse_url_from_env

        url = warehouse_url_from_env()
    dpo_url = dpo_warehouse_url or (settings.dpo_warehouse_url if settings is not None else None)
    state = DeskState(warehouse_url=url, register=register or load_register(), dpo_url=dpo_url,
                      writer_url=settings.warehouse_url if settings is not None else None)

    threads = request_threads(url, settings.desk.get("threads") if settings is not None else None)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if threads is not None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        state.pool.prepare()
        yield
        state.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Hub citoyen — bureau des agents",
        version="1",
        description=("API du bureau des agents : recherche d'usagers, dossier 360°, signalement d'un "
                     "rapprochement douteux, consultations (DPO). Chaque réponse est limitée à ce que le "
                     "registre des traitements ouvre au service de l'agent pour la finalité indiquée ; chaque "
                     "lecture d'un dossier est inscrite au journal des accès."),
        docs_url="/api/docs", redoc_url=None,
    )
    app.state.desk = state
    app.add_exception_handler(DeskError, desk_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, server_error)
    app.include_router(api.router)

    app.add_middleware(InertAnswers, docs_url=app.docs_url)
    _install_sign_in(app, settings, oidc_config)
    try:
        from hub.desk import pages
    except ImportError:
        log.info("desk: pages not installed, JSON API only")
    else:
        app.include_router(pages.router)
    return app


def _install_sign_in(app: FastAPI, settings: Any, oidc_config: Any) -> None:
    try:
        from hub.desk.auth import OIDCConfig, install
    except ImportError:
        log.warning("desk: sign-in module missing; every endpoint answers 401")
        return
    if oidc_config is None and settings is not None and getattr(settings, "desk", None):
        oidc_config = OIDCConfig.from_settings(settings)
    if oidc_config is None:
        log.warning("desk: no [desk] sign-in configured; every endpoint answers 401")
        return
    install(app, oidc_config)
