"""Sign-in to the agent desk by OpenID Connect, as ProConnect expects of a service provider.

The flow (numerique-gouv/proconnect-documentation, ``doc_fs/implementation_technique.md``):

1. ``GET /connexion?next=/local/path`` — the provider's metadata comes from the issuer's discovery
   document (cached); a ``state`` and a ``nonce`` (43 characters each) and a PKCE verifier are kept
   server-side under a short-lived cookie, and the browser goes to the ``authorization_endpoint``
   with scopes ``openid given_name usual_name email uid siret``, ``acr_values`` and ``claims``
   asking for ``acr`` (essential) and ``amr``.
2. ``GET /auth/callback?code&state`` — the state must match; the code is exchanged at the
   ``token_endpoint`` (``client_secret_post`` and the PKCE verifier); the ``id_token`` must be
   signed by a key of the provider's JWKS with the registered algorithm, for this client
   (``aud``), from this issuer, unexpired, with our nonce and an ``acr`` we asked for; the
   userinfo answer must be a JWT signed the same way, about the same ``sub``. The person is known
   by (``sub``, ``idp_id``) and must be listed in the hub's agents file (:mod:`hub.desk.agents`),
   else 403 — no session.
3. A session is kept server-side in memory; the browser holds only a random id in the cookie
   ``hub_session`` (HttpOnly, SameSite=Lax, Secure on https). It ends after
   ``session_idle_minutes`` without a request or ``session_max_hours`` after sign-in, whichever
   comes first, and at once when the person leaves the agents file.
4. ``GET|POST /deconnexion`` ends the session and sends the browser to the provider's
   ``end_session_endpoint`` (``id_token_hint``, ``state``, ``post_logout_redirect_uri``), which
   comes back to ``GET /deconnexion/retour?state`` (the state is checked).

Nothing secret or personal is logged: no token, code, e-mail or name; an agent is logged by
identity provider and ``sub`` only.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.desk.agents import AgentDirectory, Habilitation
from schemas.register import Register, load_register

log = logging.getLogger(__name__)

SCOPES = "openid given_name usual_name email uid siret"
SESSION_COOKIE = "hub_session"
LOGIN_COOKIE = "hub_connexion"
LOGOUT_COOKIE = "hub_deconnexion"
CALLBACK_PATH = "/auth/callback"
POST_LOGOUT_PATH = "/deconnexion/retour"
FLOW_SECONDS = 600  # a sign-in or sign-out started must come back within this time
LEEWAY_SECONDS = 30  # clock skew accepted on the tokens' exp and iat
METADATA_SECONDS = 3600  # discovery document cache
HTTP_TIMEOUT = 10.0
DEFAULT_CLAIMS = ("given_name", "usual_name", "email", "uid", "siret")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class Agent:
    """A signed-in person and what the hub lets them do."""

    sub: str
    idp: str
    display_name: str
    email: str
    collectivite: str
    service: str
    role: str  # agent, dpo or admin

    @property
    def login(self) -> str:
        """Who read, for the access log: the professional e-mail with the identity provider and sub."""
        return f"{self.email} ({self.idp}:{self.sub})"


@dataclass(frozen=True)
class OIDCConfig:
    """The desk's OpenID Connect client settings (``[desk]`` in the hub settings; docs/desk.md)."""

    issuer: str  # e.g. https://fca.integ01.dev-agentconnect.fr/api/v2
    client_id: str
    client_secret: str = field(repr=False)
    redirect_base: str  # the desk's public URL: redirect URI = redirect_base + /auth/callback
    agents_file: Path
    session_idle_minutes: int = 30
    session_max_hours: int = 10
    acr_values: str = "eidas1"  # space-separated: the acr levels accepted
    cookie_secure: bool | None = None  # None: Secure when redirect_base is https
    signing_alg: str = "RS256"  # the id_token / userinfo algorithm registered with the provider

    def __post_init__(self) -> None:
        for name in ("issuer", "redirect_base"):
            url = urlsplit(getattr(self, name))
            loopback = url.hostname in ("127.0.0.1", "localhost", "::1", "testserver")
            if url.scheme != "https" and not (url.scheme == "http" and loopback):
                raise ValueError(f"{name} must be an https URL (http only on this machine): {getattr(self, name)!r}")
        if not self.client_id or not self.client_secret:
            raise ValueError("client_id and client_secret are required")
        if self.signing_alg not in ("RS256", "ES256"):
            raise ValueError(f"signing_alg {self.signing_alg!r}: RS256 or ES256 (a key of the provider's JWKS)")
        if not self.acr_values.split():
            raise ValueError("acr_values: at least one level (eidas1, eidas2, ...)")
        if self.session_idle_minutes <= 0 or self.session_max_hours <= 0:
            raise ValueError("session_idle_minutes and session_max_hours must be positive")

    @property
    def redirect_uri(self) -> str:
        """The callback URL registered with the provider."""
        return self.redirect_base.rstrip("/") + CALLBACK_PATH

    @property
    def post_logout_redirect_uri(self) -> str:
        """Where the provider sends the browser back after sign-out (registered with it too)."""
        return self.redirect_base.rstrip("/") + POST_LOGOUT_PATH

    @property
    def secure_cookies(self) -> bool:
        """Whether the session cookies carry the Secure attribute."""
        return self.cookie_secure if self.cookie_secure is not None else self.redirect_base.startswith("https://")

    @classmethod
    def from_settings(cls, settings: Any) -> OIDCConfig:
        """The ``[desk]`` section of the hub settings (``client_secret_env`` names the environment
        variable holding the secret); SettingsError names the key at fault."""
        from hub.settings import SettingsError

        desk = dict(getattr(settings, "desk", None) or {})
        where = f"{getattr(settings, 'config_path', None) or 'settings'}: [desk]"
        known = {"issuer", "client_id", "client_secret_env", "redirect_base", "agents_file", "session_idle_minutes",
                 "session_max_hours", "acr_values", "cookie_secure", "signing_alg",
                 "warehouse_url", "dpo_warehouse_url",  # the desk's logins (hub.settings)
                 "threads"}  # requests worked on at once (hub.desk.app.request_threads)
        unknown = sorted(set(desk) - known)
        if unknown:
            raise SettingsError(f"{where}: unknown key(s) {', '.join(unknown)} (one of {', '.join(sorted(known))})")
        missing = [k for k in ("issuer", "client_id", "client_secret_env", "redirect_base", "agents_file")
                   if not desk.get(k)]
        if missing:
            raise SettingsError(f"{where}: {', '.join(missing)} required (docs/desk.md)")
        secret = os.environ.get(str(desk["client_secret_env"]))
        if not secret:
            raise SettingsError(f"{where}: environment variable {desk['client_secret_env']} "
                                "(client_secret_env, the ProConnect client secret) is not set")
        for k in ("session_idle_minutes", "session_max_hours"):
            if k in desk and (not isinstance(desk[k], int) or isinstance(desk[k], bool)):
                raise SettingsError(f"{where}: {k} must be a whole number")
        if "cookie_secure" in desk and not isinstance(desk["cookie_secure"], bool):
            raise SettingsError(f"{where}: cookie_secure must be true or false")
        options = {k: desk[k] for k in ("session_idle_minutes", "session_max_hours", "acr_values", "cookie_secure",
                                        "signing_alg") if k in desk}
        try:
            return cls(issuer=str(desk["issuer"]).rstrip("/"), client_id=str(desk["client_id"]), client_secret=secret,
                       redirect_base=str(desk["redirect_base"]).rstrip("/"), agents_file=Path(desk["agents_file"]),
                       **options)
        except ValueError as e:
            raise SettingsError(f"{where}: {e}") from None


# ------------------------------------------------------------------------------------------ stores
T = TypeVar("T")


def _key(cookie: str) -> str:
    # the store is keyed by a hash: what sits in memory cannot be replayed as a cookie
    return hashlib.sha256(cookie.encode()).hexdigest()


@dataclass
class _Entry(Generic[T]):
    value: T
    created: datetime
    last_seen: datetime


class _Store(Generic[T]):
    """Values under random cookie ids, dropped after ``idle`` without use or ``absolute`` after creation."""

    def __init__(self, idle: timedelta, absolute: timedelta, clock: Clock):
        self.idle, self.absolute, self.clock = idle, absolute, clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry[T]] = {}

    def _expired(self, e: _Entry[T], now: datetime) -> bool:
        return now - e.last_seen > self.idle or now - e.created > self.absolute

    def put(self, value: T) -> str:
        """Keep ``value``; returns the new cookie id."""
        cookie = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            for k in [k for k, e in self._entries.items() if self._expired(e, now)]:
                del self._entries[k]
            self._entries[_key(cookie)] = _Entry(value, now, now)
        return cookie

    def get(self, cookie: str | None) -> T | None:
        """The live value under ``cookie`` (its idle time starts again), None when absent or expired."""
        if not cookie:
            return None
        now = self.clock()
        with self._lock:
            e = self._entries.get(_key(cookie))
            if e is None:
                return None
            if self._expired(e, now):
                del self._entries[_key(cookie)]
                return None
            e.last_seen = now
            return e.value

    def set(self, cookie: str, value: T) -> None:
        """Replace the value under a live cookie."""
        with self._lock:
            e = self._entries.get(_key(cookie))
            if e is not None:
                e.value = value

    def pop(self, cookie: str | None) -> T | None:
        """Take the live value under ``cookie`` out of the store."""
        value = self.get(cookie)
        if cookie:
            with self._lock:
                self._entries.pop(_key(cookie), None)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


@dataclass(frozen=True)
class _Login:
    state: str
    nonce: str
    verifier: str
    next: str


@dataclass(frozen=True)
class _Session:
    agent: Agent
    id_token: str  # the id_token_hint of the sign-out


# ------------------------------------------------------------------------------------------ provider
class SignInError(Exception):
    """A sign-in that must not go on; ``reason`` is logged and shown (it carries no token or personal data).
    Never 401: the pages turn a 401 into a new sign-in, which would start over in a loop."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.reason, self.status = reason, status


class Provider:
    """The OpenID provider at ``issuer``: its discovery document (cached) and its JWKS."""

    def __init__(self, config: OIDCConfig, clock: Clock):
        self.config, self.clock = config, clock
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._fetched: datetime | None = None
        self._jwks: jwt.PyJWKClient | None = None

    def metadata(self) -> dict[str, Any]:
        """The discovery document; its ``issuer`` must be the configured one (OpenID Discovery §4.3)."""
        with self._lock:
            now = self.clock()
            if self._metadata is None or self._fetched is None or now - self._fetched > timedelta(
                    seconds=METADATA_SECONDS):
                url = self.config.issuer + "/.well-known/openid-configuration"
                try:
                    r = requests.get(url, timeout=HTTP_TIMEOUT, allow_redirects=False)
                    r.raise_for_status()
                    doc = r.json()
                except (requests.RequestException, ValueError) as e:
                    log.error("OpenID discovery at %s failed: %s", url, type(e).__name__)
                    raise SignInError("le service d'identification ne répond pas ; réessayez dans un instant",
                                      503) from None
                needed = ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                          "end_session_endpoint")
                if not isinstance(doc, dict) or any(not isinstance(doc.get(k), str) for k in needed):
                    raise SignInError("le service d'identification a répondu un document de découverte incomplet", 503)
                if doc["issuer"] != self.config.issuer:
                    raise SignInError("le service d'identification ne se présente pas sous l'émetteur configuré", 503)
                if self._metadata is None or doc["jwks_uri"] != self._metadata["jwks_uri"]:
                    self._jwks = jwt.PyJWKClient(doc["jwks_uri"], lifespan=300, timeout=HTTP_TIMEOUT)
                self._metadata, self._fetched = doc, now
            return self._metadata

    def verify(self, token: str, what: str, *, required: tuple[str, ...]) -> dict[str, Any]:
        """The claims of a JWT from the provider: signed by a key of its JWKS with the registered
        algorithm, for this client, from this issuer, not expired."""
        meta = self.metadata()
        with self._lock:
            jwks = self._jwks
        if jwks is None:  # metadata() sets it
            raise SignInError("le service d'identification n'a pas publié ses clés", 503)
        try:
            key = jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key, algorithms=[self.config.signing_alg], audience=self.config.client_id,
                                issuer=meta["issuer"], leeway=LEEWAY_SECONDS,
                                options={"require": ["iss", "aud", *required]})
        except jwt.PyJWTError as e:  # bad signature or claims, unknown key, unusable JWKS
            raise SignInError(f"{what} refusé ({type(e).__name__})") from None
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.config.client_id:
            raise SignInError(f"{what} refusé (azp)")
        return claims


# ------------------------------------------------------------------------------------------ desk auth
class DeskAuth:
    """What :func:`install` keeps on ``app.state.desk_auth``: the config, provider, agents, stores."""

    def __init__(self, config: OIDCConfig, clock: Clock | None = None, register: Register | None = None):
        self.config = config
        self.clock = clock or _utcnow
        self.provider = Provider(config, self.clock)
        self.agents = AgentDirectory(config.agents_file, register or load_register())
        idle = timedelta(minutes=config.session_idle_minutes)
        self.sessions: _Store[_Session] = _Store(idle, timedelta(hours=config.session_max_hours), self.clock)
        flow = timedelta(seconds=FLOW_SECONDS)
        self.logins: _Store[_Login] = _Store(flow, flow, self.clock)
        self.logouts: _Store[str] = _Store(flow, flow, self.clock)

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        """A cookie only the server reads back (HttpOnly, SameSite=Lax, Secure on https)."""
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                            secure=self.config.secure_cookies)

    def drop_cookie(self, response: Response, name: str) -> None:
        """Tell the browser to forget a cookie."""
        response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=self.config.secure_cookies)

    def authorization_url(self, login: _Login) -> str:
        """The authorization request for a login being started."""
        meta = self.provider.metadata()
        acr = self.config.acr_values.split()
        claims = {"id_token": {"acr": {"essential": True, "values": acr}, "amr": {"essential": True}}}
        params = {"response_type": "code", "client_id": self.config.client_id,
                  "redirect_uri": self.config.redirect_uri, "scope": SCOPES, "state": login.state,
                  "nonce": login.nonce, "code_challenge": _s256(login.verifier), "code_challenge_method": "S256",
                  "acr_values": " ".join(acr), "claims": json.dumps(claims, separators=(",", ":"))}
        return f"{meta['authorization_endpoint']}?{urlencode(params)}"

    def complete(self, login: _Login, code: str) -> tuple[Agent, str]:
        """Exchange the code and check every token (module docstring, step 2): (agent, id_token)."""
        meta = self.provider.metadata()
        try:
            r = requests.post(meta["token_endpoint"], timeout=HTTP_TIMEOUT, allow_redirects=False, data={
                "grant_type": "authorization_code", "code": code, "redirect_uri": self.config.redirect_uri,
                "code_verifier": login.verifier, "client_id": self.config.client_id,
                "client_secret": self.config.client_secret})
            body = r.json()
        except (requests.RequestException, ValueError):
            raise SignInError("le service d'identification ne répond pas ; réessayez", 503) from None
        if r.status_code != 200 or not isinstance(body, dict):
            error = str(body.get("error"))[:64] if isinstance(body, dict) else None
            raise SignInError(f"le code de connexion est refusé par le service d'identification ({error})")
        id_token, access_token = body.get("id_token"), body.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise SignInError("la réponse du service d'identification est incomplète")
        claims = self.provider.verify(id_token, "id_token", required=("sub", "exp", "iat", "nonce"))
        if not secrets.compare_digest(str(claims["nonce"]).encode(), login.nonce.encode()):
            raise SignInError("id_token refusé (nonce)")
        if claims.get("acr") not in self.config.acr_values.split():
            raise SignInError("niveau d'authentification insuffisant pour le bureau des agents", 403)
        try:
            r = requests.get(meta["userinfo_endpoint"], timeout=HTTP_TIMEOUT, allow_redirects=False,
                             headers={"Authorization": f"Bearer {access_token}"})
        except requests.RequestException:
            raise SignInError("le service d'identification ne répond pas ; réessayez", 503) from None
        if r.status_code != 200 or r.headers.get("content-type", "").split(";")[0].strip() != "application/jwt":
            raise SignInError("userinfo refusé (la réponse n'est pas un JWT signé)")
        info = self.provider.verify(r.text.strip(), "userinfo", required=("sub",))
        if info["sub"] != claims["sub"]:
            raise SignInError("userinfo refusé (sub différent de celui de l'id_token)")
        idp = info.get("idp_id") or claims.get("idp_id")
        if not isinstance(idp, str) or not idp or (claims.get("idp_id") not in (None, idp)):
            raise SignInError("userinfo refusé (idp_id absent ou différent de celui de l'id_token)")
        habilitation = self.agents.lookup(claims["sub"], idp)
        if habilitation is None:
            log.warning("sign-in refused: idp %s sub %s is not in the agents file", idp, claims["sub"])
            raise SignInError(f"Votre compte n'est pas habilité à utiliser le bureau des agents. Transmettez à "
                              f"l'administrateur du hub cet identifiant technique : {idp} / {claims['sub']}", 403)
        email = info.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise SignInError("userinfo incomplet : l'adresse électronique professionnelle manque")
        name = " ".join(str(info.get(k) or "").strip() for k in ("given_name", "usual_name")).strip()
        agent = _agent(habilitation, display_name=name or email, email=email)
        log.info("signed in: idp %s sub %s as %s/%s/%s", idp, agent.sub, agent.collectivite, agent.service,
                 agent.role)
        return agent, id_token


def _agent(h: Habilitation, *, display_name: str, email: str) -> Agent:
    return Agent(sub=h.sub, idp=h.idp, display_name=display_name, email=email, collectivite=h.collectivite,
                 service=h.service, role=h.role)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _auth(request: Request) -> DeskAuth:
    auth = getattr(request.app.state, "desk_auth", None)
    if auth is None:
        raise RuntimeError("hub.desk.auth.install(app, config) was not called for this app")
    return auth


def local_path(target: str | None) -> str:
    """``target`` when it is a path of this site (``/…``, not ``//host`` nor a URL), else ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return "/"
    return target


def _signed_out_page(message: str) -> HTMLResponse:
    body = (f"<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Déconnexion – bureau des agents</title></head><body><main><h1>Déconnexion</h1>"
            f"<p>{html.escape(message)}</p><p><a href=\"/connexion\">Se reconnecter</a></p></main></body></html>")
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------------------------------ routes
router = APIRouter(include_in_schema=False)


@router.get("/connexion")
def connexion(request: Request, next: str | None = None) -> Response:
    """Start the authorization code flow (``next``: the local page to open once signed in)."""
    auth = _auth(request)
    login = _Login(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                   verifier=secrets.token_urlsafe(64), next=local_path(next))
    try:
        url = auth.authorization_url(login)
    except SignInError as e:
        raise HTTPException(e.status, detail=f"Connexion impossible : {e.reason}.") from None
    response = RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
    auth.set_cookie(response, LOGIN_COOKIE, auth.logins.put(login), FLOW_SECONDS)
    return response


@router.get(CALLBACK_PATH)
def callback(request: Request, code: str | None = None, state: str | None = None, error: str | None = None) -> Response:
    """The redirect URI: check the state, then the tokens (module docstring, step 2), then open a session."""
    auth = _auth(request)
    login = auth.logins.pop(request.cookies.get(LOGIN_COOKIE))
    try:
        if login is None:
            raise SignInError("la demande de connexion a expiré ou n'a pas été faite depuis ce navigateur ; "
                              "recommencez")
        if not state or not secrets.compare_digest(state.encode(), login.state.encode()):
            raise SignInError("le paramètre state ne correspond pas à la demande de connexion")
        if error:
            raise SignInError(f"le service d'identification a refusé la connexion ({error[:64]})")
        if not code:
            raise SignInError("le code de connexion manque")
        agent, id_token = auth.complete(login, code)
    except SignInError as e:
        if e.status != 403:
            log.warning("sign-in failed: %s", e.reason)
        raise HTTPException(e.status, detail=f"Connexion refusée : {e.reason}.") from None
    auth.sessions.pop(request.cookies.get(SESSION_COOKIE))  # a fresh id at each sign-in (no fixation)
    response = RedirectResponse(login.next, status_code=303, headers={"Cache-Control": "no-store"})
    auth.drop_cookie(response, LOGIN_COOKIE)
    auth.set_cookie(response, SESSION_COOKIE, auth.sessions.put(_Session(agent, id_token)), None)
    return response


@router.api_route("/deconnexion", methods=["GET", "POST"])
def deconnexion(request: Request) -> Response:
    """End the session here, then at the provider (its ``end_session_endpoint``)."""
    auth = _auth(request)
    session = auth.sessions.pop(request.cookies.get(SESSION_COOKIE))
    if session is None:
        response: Response = _signed_out_page("Vous n'êtes pas connecté(e) au bureau des agents.")
    else:
        log.info("signed out: idp %s sub %s", session.agent.idp, session.agent.sub)
        try:
            endpoint = auth.provider.metadata()["end_session_endpoint"]
        except SignInError:
            response = _signed_out_page("Vous êtes déconnecté(e) du bureau des agents ; le service d'identification "
                                        "ne répond pas : fermez votre navigateur pour y mettre fin aussi.")
        else:
            state = secrets.token_urlsafe(32)
            params = {"id_token_hint": session.id_token, "state": state,
                      "post_logout_redirect_uri": auth.config.post_logout_redirect_uri}
            response = RedirectResponse(f"{endpoint}?{urlencode(params)}", status_code=303,
                                        headers={"Cache-Control": "no-store"})
            auth.set_cookie(response, LOGOUT_COOKIE, auth.logouts.put(state), FLOW_SECONDS)
    auth.drop_cookie(response, SESSION_COOKIE)
    return response


@router.get(POST_LOGOUT_PATH)
def deconnexion_retour(request: Request, state: str | None = None) -> Response:
    """The post-logout redirect URI: the provider's session is over if the state is ours."""
    auth = _auth(request)
    expected = auth.logouts.pop(request.cookies.get(LOGOUT_COOKIE))
    if expected is None or not state or not secrets.compare_digest(state.encode(), expected.encode()):
        raise HTTPException(400, detail="Déconnexion non reconnue : le paramètre state ne correspond à aucune "
                                        "déconnexion demandée depuis ce navigateur.")
    response = _signed_out_page("Vous êtes déconnecté(e) du bureau des agents et du service d'identification.")
    auth.drop_cookie(response, LOGOUT_COOKIE)
    return response


async def current_agent(request: Request) -> Agent:
    """FastAPI dependency: the signed-in agent, HTTPException(401) when there is no live session or
    the person has left the agents file (their role and service are read from it at each request)."""
    auth = _auth(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    session = auth.sessions.get(cookie)
    if session is None:
        raise HTTPException(401, detail="Connexion requise.")
    agent = session.agent
    habilitation = auth.agents.lookup(agent.sub, agent.idp)
    if habilitation is None:
        auth.sessions.pop(cookie)
        log.info("session ended: idp %s sub %s left the agents file", agent.idp, agent.sub)
        raise HTTPException(401, detail="Connexion requise.")
    current = _agent(habilitation, display_name=agent.display_name, email=agent.email)
    if current != agent and cookie:
        auth.sessions.set(cookie, replace(session, agent=current))
    return current


def install(app: FastAPI, config: OIDCConfig, *, clock: Clock | None = None, register: Register | None = None) -> None:
    """Sign-in for ``app``: its routes (/connexion, /auth/callback, /deconnexion, /deconnexion/retour)
    and the session store. The agents file is checked against ``register`` (default: the register in
    force); ``clock`` (aware datetimes) replaces the wall clock in tests."""
    app.state.desk_auth = DeskAuth(config, clock, register)
    app.include_router(router)
