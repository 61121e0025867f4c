"""A local OpenID Connect provider that plays ProConnect for the agent desk's demo and tests.

A real HTTP server on 127.0.0.1 speaking the protocol as ProConnect documents it for a service
provider (numerique-gouv/proconnect-documentation, ``doc_fs/implementation_technique.md``), under an
issuer path like ProConnect's (``<url>/api/v2``):

- ``GET  /api/v2/.well-known/openid-configuration`` — discovery;
- ``GET  /api/v2/jwks`` — the public key (RSA, generated when the provider is built);
- ``GET  /api/v2/authorize`` — authorization code flow only: ``client_id`` registered,
  ``redirect_uri`` exactly one of the client's, ``response_type=code``, ``scope`` with ``openid``,
  ``state`` and ``nonce`` of 32 characters or more, PKCE with ``code_challenge_method=S256``;
  ProConnect's other parameters (``claims``, ``acr_values``, ``prompt``, ``idp_hint``,
  ``login_hint``) are accepted and any other one is refused (ProConnect answers ``Y000400 Bad
  Request``). It shows a small French page where one picks a demo agent (a form POSTed to
  ``/api/v2/interaction/<id>/login``); ``login_hint=<a demo agent's e-mail>`` signs that agent in
  at once, for scripted tests (ProConnect itself only pre-fills the e-mail with it);
- ``POST /api/v2/token`` — ``client_secret_post`` or ``client_secret_basic``; a code is single use
  (a replay also revokes the access token it gave) and valid 30 s; the PKCE verifier is checked;
  answers an access token valid 60 s and an RS256 ``id_token`` (iss, aud, sub, exp, iat,
  auth_time, nonce, acr, amr, idp_id);
- ``GET  /api/v2/userinfo`` — ``Authorization: Bearer``; answers a signed JWT
  (``application/jwt``) with sub, idp_id and the claims of the scopes granted (given_name,
  usual_name, email, uid, siret), plus iss and aud;
- ``GET  /api/v2/session/end`` — ``id_token_hint``, ``state``, ``post_logout_redirect_uri`` (one
  of the client's): 303 back to it with the state.

Demo agents are data (``sandbox/desk_agents.toml``, :func:`load_demo_agents`); the hub's own
habilitations for them (collectivité, service, role) are written by :func:`hub_agents_toml`.
Codes and tokens live in memory. ``clock`` (epoch seconds) can be replaced by tests. Besides the
shared faults (``500``, ``delay``, ...), :meth:`OIDCProvider.inject` makes the provider misbehave
the ways a service provider must catch: an id_token signed by another key, for another audience or
issuer, with another nonce or already expired; a userinfo JWT unsigned, signed by another key or
about another ``sub``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import secrets
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from sandbox.http_simulator import FAULT_KINDS, HTTPSimulator, SimulatorHandler, compact_json

log = logging.getLogger(__name__)

DEFAULT_AGENTS = Path(__file__).with_name("desk_agents.toml")
ISSUER_PATH = "/api/v2"
CODE_SECONDS = 30  # ProConnect: "le code a une durée d'expiration de 30 secondes"
ACCESS_TOKEN_SECONDS = 60  # ProConnect: the access token is valid 60 seconds
ID_TOKEN_SECONDS = 60
INTERACTION_SECONDS = 600  # how long the agent-choice page stays valid
MIN_STATE_NONCE = 32  # ProConnect: state and nonce of 32 characters at least
ALGORITHM = "RS256"
# The scopes ProConnect guarantees, each giving the claim of its name (openid gives sub).
CLAIM_SCOPES = ("given_name", "usual_name", "email", "uid", "siret")
SCOPES = ("openid", *CLAIM_SCOPES)
ACR_VALUES = ("eidas1", "eidas2", "eidas3")
AUTHORIZE_PARAMS = frozenset({"response_type", "client_id", "redirect_uri", "scope", "claims", "state", "nonce",
                              "prompt", "idp_hint", "login_hint", "acr_values", "code_challenge",
                              "code_challenge_method"})
AUTHORIZE_REQUIRED = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
                      "code_challenge_method")
END_SESSION_PARAMS = frozenset({"id_token_hint", "state", "post_logout_redirect_uri"})
# How the provider can be made to misbehave, per endpoint (besides the shared faults).
FORGERIES = {
    "id_token_other_key": "token", "id_token_other_audience": "token", "id_token_other_issuer": "token",
    "id_token_other_nonce": "token", "id_token_expired": "token",
    "userinfo_unsigned": "userinfo", "userinfo_other_key": "userinfo", "userinfo_other_sub": "userinfo",
}
ENDPOINTS = ("authorize", "token", "userinfo", "session/end")


@dataclass(frozen=True)
class DemoAgent:
    """A person as an identity provider of the ProConnect federation hands them over."""

    key: str  # the demo's short name for them ("accueil", "dpo", ...)
    description: str
    sub: str
    idp_id: str
    given_name: str
    usual_name: str
    email: str
    uid: str
    siret: str
    acr: str = "eidas1"
    amr: tuple[str, ...] = ("pwd",)
    desk: Mapping[str, str] = field(default_factory=dict)  # the hub's habilitation: collectivite, service, role


@dataclass(frozen=True)
class ClientRegistration:
    """A service provider as registered with the provider (ProConnect: the Démarches Simplifiées form)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]


def load_demo_agents(path: Path | str = DEFAULT_AGENTS) -> dict[str, DemoAgent]:
    """The demo agents of a TOML file (``[agents.<key>]``, see ``sandbox/desk_agents.toml``), by key."""
    path = Path(path)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    agents: dict[str, DemoAgent] = {}
    required = ("sub", "idp_id", "given_name", "usual_name", "email", "uid", "siret")
    for key, spec in (data.get("agents") or {}).items():
        missing = [k for k in required if not isinstance(spec.get(k), str) or not spec.get(k)]
        if missing:
            raise ValueError(f"{path}: [agents.{key}] lacks {', '.join(missing)}")
        acr = spec.get("acr", "eidas1")
        if acr not in ACR_VALUES:
            raise ValueError(f"{path}: [agents.{key}].acr {acr!r} is not one of {', '.join(ACR_VALUES)}")
        agents[key] = DemoAgent(key=key, description=spec.get("description", key), acr=acr,
                                amr=tuple(spec.get("amr", ("pwd",))), desk=dict(spec.get("desk") or {}),
                                **{k: spec[k] for k in required})
    emails = [a.email for a in agents.values()]
    if len(set(emails)) != len(emails):
        raise ValueError(f"{path}: two demo agents share an e-mail (login_hint picks an agent by it)")
    return agents


def hub_agents_toml(agents: Iterable[DemoAgent]) -> str:
    """The hub's agents file (docs/desk.md, *Connexion*) giving each demo agent its ``desk`` habilitation."""
    lines = ["# Agents habilités au bureau des agents (écrit pour la démo par sandbox.oidc_provider).", ""]
    for a in agents:
        if not a.desk:
            continue
        lines += ["[[agent]]", f"# {a.description} : {a.given_name} {a.usual_name}",
                  f"sub = {json.dumps(a.sub)}", f"idp = {json.dumps(a.idp_id)}"]
        lines += [f"{k} = {json.dumps(a.desk[k], ensure_ascii=False)}" for k in ("collectivite", "service", "role")]
        lines.append("")
    return "\n".join(lines)


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier`` (RFC 7636 §4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _acr(reached: str, asked: Iterable[str]) -> str:
    """The acr to answer: the highest level asked that the agent's sign-in reached (ProConnect answers
    eidas1 to a request for eidas1 from an agent signed in at eidas2), else the level reached."""
    met = [a for a in asked if a in ACR_VALUES and ACR_VALUES.index(a) <= ACR_VALUES.index(reached)]
    return max(met, key=ACR_VALUES.index) if met else reached


def _new_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, secrets.token_hex(8)


@dataclass
class _AuthRequest:
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    state: str
    nonce: str
    code_challenge: str
    login_hint: str | None
    acr_values: tuple[str, ...]  # asked by acr_values or claims.id_token.acr.values
    created: float


@dataclass
class _Code:
    request: _AuthRequest
    agent: DemoAgent
    issued: float
    access_token: str | None = None  # set once exchanged: a replay revokes it


@dataclass
class _AccessToken:
    agent: DemoAgent
    client_id: str
    scopes: frozenset[str]
    expires: float


class ProtocolError(Exception):
    """A request the provider refuses: an OAuth ``error`` code and a description."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


class OIDCProvider(HTTPSimulator):
    """The local ProConnect: :meth:`start` / :meth:`stop` or a context manager; ``issuer`` is
    ``<url>/api/v2``. ``agents`` are the demo agents (by key), ``clients`` the registered
    service providers. ``ended_sessions`` lists the ``sub`` of each session ended at
    ``session/end``."""

    label = "OpenID Connect provider"
    thread_name = "oidc-provider"
    logger = log
    fault_kinds = FAULT_KINDS + tuple(FORGERIES)

    def __init__(self, agents: Mapping[str, DemoAgent], clients: Iterable[ClientRegistration], *,
                 host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.time):
        super().__init__(host, port)
        self.agents = dict(agents)
        self.clients = {c.client_id: c for c in clients}
        self.clock = clock
        self._key, self._kid = _new_key()
        self._other_key: tuple[rsa.RSAPrivateKey, str] | None = None
        self._interactions: dict[str, _AuthRequest] = {}
        self._codes: dict[str, _Code] = {}
        self._spent: dict[str, str | None] = {}  # code -> the access token it gave
        self._tokens: dict[str, _AccessToken] = {}
        self.ended_sessions: list[str] = []
        self._state_lock = threading.Lock()

    @property
    def issuer(self) -> str:
        """The issuer URL a service provider is configured with (discovery lives under it)."""
        return self.url + ISSUER_PATH

    def inject(self, kind: str, endpoint: str | None = None, count: int = 1, retry_after: int = 1,
               delay: float = 1.0) -> None:
        """Misbehave on the next ``count`` requests to ``endpoint`` (one of ``ENDPOINTS``): a forgery
        of ``FORGERIES`` (its endpoint is implied) or a shared fault (``500``, ``429``, ``delay``,
        ``401``, ``truncated``, ``html``, ``reset``)."""
        endpoint = endpoint or FORGERIES.get(kind)
        if endpoint not in ENDPOINTS:
            raise ValueError(f"fault {kind!r} needs an endpoint, one of {ENDPOINTS}")
        self._inject(kind, (endpoint,), count, retry_after, delay)

    # ------------------------------------------------------------------ documents
    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider Metadata (OpenID Connect Discovery 1.0)."""
        iss = self.issuer
        return {
            "issuer": iss,
            "authorization_endpoint": f"{iss}/authorize",
            "token_endpoint": f"{iss}/token",
            "userinfo_endpoint": f"{iss}/userinfo",
            "end_session_endpoint": f"{iss}/session/end",
            "jwks_uri": f"{iss}/jwks",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "scopes_supported": list(SCOPES),
            "claims_supported": ["sub", "idp_id", "acr", "amr", "auth_time", *CLAIM_SCOPES],
            "claims_parameter_supported": True,
            "acr_values_supported": list(ACR_VALUES),
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "userinfo_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "request_parameter_supported": False,
        }

    def jwks(self) -> dict[str, Any]:
        """The public signing key as a JWK Set."""
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update(kid=self._kid, use="sig", alg=ALGORITHM)
        return {"keys": [jwk]}

    def _sign(self, claims: dict[str, Any], *, other_key: bool = False) -> str:
        key, kid = self._key, self._kid
        if other_key:
            with self._state_lock:
                if self._other_key is None:
                    self._other_key = _new_key()
                # the same kid: a service provider must check the signature, not only find a key
                key = self._other_key[0]
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})

    # ------------------------------------------------------------------ authorize
    def authorization_request(self, query: str) -> _AuthRequest:
        """Validate an authorization request's query string; ProtocolError says what is wrong."""
        params = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(params) - AUTHORIZE_PARAMS)
        if unknown:
            raise ProtocolError("invalid_request", f"paramètre inconnu : {', '.join(unknown)}")
        repeated = sorted(k for k, v in params.items() if len(v) > 1)
        if repeated:
            raise ProtocolError("invalid_request", f"paramètre répété : {', '.join(repeated)}")
        p = {k: v[0] for k, v in params.items()}
        missing = [k for k in AUTHORIZE_REQUIRED if not p.get(k)]
        if missing:
            raise ProtocolError("invalid_request", f"paramètre manquant : {', '.join(missing)}")
        client = self.clients.get(p["client_id"])
        if client is None:
            raise ProtocolError("invalid_client", "client_id inconnu")
        if p["redirect_uri"] not in client.redirect_uris:
            raise ProtocolError("invalid_request", "redirect_uri différente de celle déclarée pour ce client")
        if p["response_type"] != "code":
            raise ProtocolError("unsupported_response_type", "seul response_type=code est accepté")
        scopes = frozenset(p["scope"].split())
        if "openid" not in scopes:
            raise ProtocolError("invalid_scope", "le scope openid est obligatoire")
        if scopes - set(SCOPES):
            raise ProtocolError("invalid_scope", f"scope inconnu : {', '.join(sorted(scopes - set(SCOPES)))}")
        for name in ("state", "nonce"):
            if len(p[name]) < MIN_STATE_NONCE:
                raise ProtocolError("invalid_request", f"{name} trop court ({MIN_STATE_NONCE} caractères minimum)")
        if p["code_challenge_method"] != "S256":
            raise ProtocolError("invalid_request", "code_challenge_method doit valoir S256")
        if not 43 <= len(p["code_challenge"]) <= 128:
            raise ProtocolError("invalid_request", "code_challenge invalide")
        acr_values = p.get("acr_values", "").split()
        if "claims" in p:
            try:
                claims = json.loads(p["claims"])
                acr = (claims.get("id_token") or {}).get("acr") or {}
                acr_values += [v for v in acr.get("values", [acr.get("value")]) if isinstance(v, str)]
            except (ValueError, AttributeError):
                raise ProtocolError("invalid_request", "claims n'est pas un objet JSON valide") from None
        return _AuthRequest(client_id=client.client_id, redirect_uri=p["redirect_uri"], scopes=scopes,
                            state=p["state"], nonce=p["nonce"], code_challenge=p["code_challenge"],
                            login_hint=p.get("login_hint"), acr_values=tuple(acr_values), created=self.clock())

    def open_interaction(self, request: _AuthRequest) -> str:
        """Keep the request while the person picks an agent; returns the interaction id."""
        interaction = secrets.token_urlsafe(16)
        with self._state_lock:
            now = self.clock()
            for k in [k for k, r in self._interactions.items() if now - r.created > INTERACTION_SECONDS]:
                del self._interactions[k]
            self._interactions[interaction] = request
        return interaction

    def take_interaction(self, interaction: str) -> _AuthRequest | None:
        """The pending request of an interaction id (then forgotten), None when unknown or stale."""
        with self._state_lock:
            request = self._interactions.pop(interaction, None)
        if request is None or self.clock() - request.created > INTERACTION_SECONDS:
            return None
        return request

    def agent_by_email(self, email: str | None) -> DemoAgent | None:
        """The demo agent with this e-mail (case-insensitive), if any."""
        wanted = (email or "").strip().lower()
        return next((a for a in self.agents.values() if a.email.lower() == wanted), None)

    def issue_code(self, request: _AuthRequest, agent: DemoAgent) -> str:
        """A fresh authorization code for ``agent``; returns the redirect to the client."""
        code = secrets.token_urlsafe(32)
        with self._state_lock:
            self._codes[code] = _Code(request, agent, self.clock())
        return f"{request.redirect_uri}?{urlencode({'code': code, 'state': request.state})}"

    # ------------------------------------------------------------------ token
    def token(self, form: dict[str, list[str]], basic: tuple[str, str] | None, forgery: str | None) -> dict[str, Any]:
        """Exchange a code (see the module docstring); ProtocolError on any failure."""
        f = {k: v[0] for k, v in form.items()}
        if basic is not None and ("client_secret" in f):
            raise ProtocolError("invalid_request", "one client authentication method at a time")
        client_id, client_secret = basic if basic is not None else (f.get("client_id"), f.get("client_secret"))
        client = self.clients.get(client_id or "")
        if client is None or not secrets.compare_digest((client_secret or "").encode(),
                                                        client.client_secret.encode()):
            raise ProtocolError("invalid_client", "client authentication failed", 401)
        if f.get("grant_type") != "authorization_code":
            raise ProtocolError("unsupported_grant_type", "only authorization_code is supported")
        code_value = f.get("code") or ""
        with self._state_lock:
            code = self._codes.pop(code_value, None)
            if code is None:
                if code_value in self._spent:
                    revoked = self._spent[code_value]
                    if revoked is not None:
                        self._tokens.pop(revoked, None)
                    raise ProtocolError("invalid_grant", "code already used")
                raise ProtocolError("invalid_grant", "unknown code")
            self._spent[code_value] = None
        if self.clock() - code.issued > CODE_SECONDS:
            raise ProtocolError("invalid_grant", "code expired")
        if code.request.client_id != client.client_id:
            raise ProtocolError("invalid_grant", "code issued to another client")
        if f.get("redirect_uri") != code.request.redirect_uri:
            raise ProtocolError("invalid_grant", "redirect_uri differs from the authorization request's")
        verifier = f.get("code_verifier") or ""
        if not 43 <= len(verifier) <= 128 or not secrets.compare_digest(s256(verifier), code.request.code_challenge):
            raise ProtocolError("invalid_grant", "PKCE verification failed")
        now = self.clock()
        access_token = secrets.token_urlsafe(32)
        with self._state_lock:
            self._tokens[access_token] = _AccessToken(code.agent, client.client_id, code.request.scopes,
                                                      now + ACCESS_TOKEN_SECONDS)
            self._spent[code_value] = access_token
        agent = code.agent
        claims = {"iss": self.issuer, "aud": client.client_id, "sub": agent.sub, "iat": int(now),
                  "exp": int(now) + ID_TOKEN_SECONDS, "auth_time": int(code.issued), "nonce": code.request.nonce,
                  "acr": _acr(agent.acr, code.request.acr_values), "amr": list(agent.amr), "idp_id": agent.idp_id}
        if forgery == "id_token_other_audience":
            claims["aud"] = "another-service-provider"
        elif forgery == "id_token_other_issuer":
            claims["iss"] = self.url + "/another-issuer"
        elif forgery == "id_token_other_nonce":
            claims["nonce"] = secrets.token_urlsafe(32)
        elif forgery == "id_token_expired":
            claims["iat"], claims["exp"] = int(now) - 600, int(now) - 300
        id_token = self._sign(claims, other_key=forgery == "id_token_other_key")
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": ACCESS_TOKEN_SECONDS,
                "id_token": id_token, "scope": " ".join(sorted(code.request.scopes))}

    # ------------------------------------------------------------------ userinfo
    def userinfo(self, authorization: str, forgery: str | None) -> str:
        """The signed userinfo JWT for a Bearer token; ProtocolError (401) when the token is not valid."""
        scheme, _, value = authorization.partition(" ")
        with self._state_lock:
            token = self._tokens.get(value) if scheme.lower() == "bearer" else None
        if token is None or self.clock() > token.expires:
            raise ProtocolError("invalid_token", "access token unknown, revoked or expired", 401)
        agent = token.agent
        claims: dict[str, Any] = {"iss": self.issuer, "aud": token.client_id, "iat": int(self.clock()),
                                  "sub": agent.sub, "idp_id": agent.idp_id}
        claims.update({c: getattr(agent, c) for c in CLAIM_SCOPES if c in token.scopes})
        if forgery == "userinfo_other_sub":
            claims["sub"] = secrets.token_hex(32)
        if forgery == "userinfo_unsigned":
            return jwt.encode(claims, None, algorithm="none")
        return self._sign(claims, other_key=forgery == "userinfo_other_key")

    # ------------------------------------------------------------------ session/end
    def end_session(self, query: str) -> str:
        """Check a logout request; returns the redirect back to the client."""
        params = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(params) - END_SESSION_PARAMS)
        if unknown:
            raise ProtocolError("invalid_request", f"paramètre inconnu : {', '.join(unknown)}")
        p = {k: v[0] for k, v in params.items()}
        missing = [k for k in sorted(END_SESSION_PARAMS) if not p.get(k)]
        if missing:
            raise ProtocolError("invalid_request", f"paramètre manquant : {', '.join(missing)}")
        try:
            # an expired id_token still names the session to end
            hint = jwt.decode(p["id_token_hint"], self._key.public_key(), algorithms=[ALGORITHM],
                              issuer=self.issuer, options={"verify_exp": False, "verify_aud": False})
        except jwt.InvalidTokenError:
            raise ProtocolError("invalid_request", "id_token_hint invalide") from None
        client = self.clients.get(hint.get("aud", ""))
        if client is None or p["post_logout_redirect_uri"] not in client.post_logout_redirect_uris:
            raise ProtocolError("invalid_request", "post_logout_redirect_uri différente de celle déclarée")
        with self._state_lock:
            self.ended_sessions.append(hint["sub"])
        return f"{p['post_logout_redirect_uri']}?{urlencode({'state': p['state']})}"


def _page(title: str, body: str) -> bytes:
    return ("<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)} – fournisseur d'identité de démonstration</title>"
            "<style>body{font:1rem/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;"
            "color:#1b1b1b}fieldset{border:1px solid #666;padding:1rem}label{display:block;padding:.25rem 0}"
            "button{font:inherit;padding:.5rem 1rem;margin-top:1rem;background:#1f4e79;color:#fff;border:0}"
            "button:focus,input:focus{outline:3px solid #b35900;outline-offset:2px}</style></head>"
            f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>").encode()


class _Handler(SimulatorHandler):
    simulator: OIDCProvider
    json_type = "application/json;charset=utf-8"
    html_page = _page("Maintenance", "<p>Le service est momentanément indisponible.</p>")
    html_type = "text/html;charset=utf-8"
    fault_errors: ClassVar[dict[str, tuple[int, bytes]]] = {
        "500": (500, compact_json({"error": "server_error", "error_description": "internal error"})),
        "429": (429, compact_json({"error": "temporarily_unavailable", "error_description": "too many requests"})),
        "401": (401, compact_json({"error": "invalid_client", "error_description": "client authentication failed"})),
    }

    def log_message(self, format: str, *args: Any) -> None:
        # request lines carry codes, states and id_token_hint in their query: log the path only
        self.simulator.logger.debug("%s: %s %s", self.simulator.label, self.command, urlsplit(self.path).path)

    def _route(self) -> tuple[str | None, str]:
        parts = urlsplit(self.path)
        path = parts.path
        if not path.startswith(ISSUER_PATH + "/"):
            return None, parts.query
        return path[len(ISSUER_PATH) + 1:], parts.query

    def _fault(self, endpoint: str) -> tuple[bool, str | None]:
        """(answered, forgery): a shared fault is answered here; a forgery is returned to apply."""
        fault = self.simulator._take_fault((endpoint,))
        if fault is None:
            return False, None
        if fault.kind in FORGERIES:
            return False, fault.kind
        return self._fail(fault, (endpoint,), b'{"error":'), None

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, compact_json(body), headers={"Cache-Control": "no-store", **(headers or {})})

    def _error_page(self, endpoint: str, e: ProtocolError) -> None:
        self._log((endpoint,), e.status)
        body = (f"<p>La demande de connexion est refusée.</p><p>Code d'erreur : <code>Y000400</code> "
                f"(<code>{html.escape(e.error)}</code>)</p><p>{html.escape(e.description)}</p>")
        self._send(e.status, _page("Erreur", body), content_type=self.html_type)

    def _redirect(self, endpoint: str, location: str) -> None:
        self._log((endpoint,), 303)
        self._send(303, b"", content_type=self.html_type, headers={"Location": location, "Cache-Control": "no-store"})

    def do_GET(self) -> None:
        endpoint, query = self._route()
        provider = self.simulator
        if endpoint == ".well-known/openid-configuration":
            self._serve(("discovery",), compact_json(provider.discovery()))
        elif endpoint == "jwks":
            self._serve(("jwks",), compact_json(provider.jwks()))
        elif endpoint == "authorize":
            answered, _ = self._fault("authorize")
            if not answered:
                self._authorize(query)
        elif endpoint == "userinfo":
            answered, forgery = self._fault("userinfo")
            if answered:
                return
            try:
                body = provider.userinfo(self.headers.get("Authorization", ""), forgery)
            except ProtocolError as e:
                self._log(("userinfo",), e.status)
                self._json(e.status, {"error": e.error, "error_description": e.description},
                           headers={"WWW-Authenticate": f'Bearer error="{e.error}"'})
                return
            self._log(("userinfo",), 200)
            self._send(200, body.encode(), content_type="application/jwt", headers={"Cache-Control": "no-store"})
        elif endpoint == "session/end":
            answered, _ = self._fault("session/end")
            if answered:
                return
            try:
                self._redirect("session/end", provider.end_session(query))
            except ProtocolError as e:
                self._error_page("session/end", e)
        else:
            self._log(("not-found",), 404)
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        endpoint, _ = self._route()
        raw = self._body()
        provider = self.simulator
        form = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        if endpoint == "token":
            answered, forgery = self._fault("token")
            if answered:
                return
            basic = None
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                try:
                    user, _, pwd = base64.b64decode(auth[6:], validate=True).decode().partition(":")
                    basic = (user, pwd)
                except ValueError:
                    basic = ("", "")
            try:
                body = provider.token(form, basic, forgery)
            except ProtocolError as e:
                self._log(("token",), e.status)
                headers = {"WWW-Authenticate": "Basic"} if e.status == 401 and basic is not None else None
                self._json(e.status, {"error": e.error, "error_description": e.description}, headers=headers)
                return
            self._log(("token",), 200)
            self._json(200, body)
        elif endpoint and endpoint.startswith("interaction/") and endpoint.endswith("/login"):
            request = provider.take_interaction(endpoint.split("/")[1])
            agent = provider.agents.get((form.get("agent") or [""])[0])
            if request is None or agent is None:
                self._error_page("authorize", ProtocolError(
                    "invalid_request", "demande de connexion expirée ou agent inconnu : recommencez depuis le service"))
                return
            self._redirect("authorize", provider.issue_code(request, agent))
        else:
            self._log(("not-found",), 404)
            self._json(404, {"error": "not_found"})

    def _authorize(self, query: str) -> None:
        provider = self.simulator
        try:
            request = provider.authorization_request(query)
        except ProtocolError as e:
            self._error_page("authorize", e)
            return
        hinted = provider.agent_by_email(request.login_hint)
        if hinted is not None:
            self._redirect("authorize", provider.issue_code(request, hinted))
            return
        interaction = provider.open_interaction(request)
        choices = "".join(
            f"<label><input type=\"radio\" name=\"agent\" value=\"{html.escape(a.key)}\" required> "
            f"{html.escape(a.given_name)} {html.escape(a.usual_name)} — {html.escape(a.description)} "
            f"<small>({html.escape(a.email)})</small></label>"
            for a in provider.agents.values())
        body = (f"<p>Fournisseur d'identité de démonstration : il joue ProConnect pour le bac à sable. "
                f"Aucun mot de passe n'est demandé.</p>"
                f"<form method=\"post\" action=\"{ISSUER_PATH}/interaction/{interaction}/login\">"
                f"<fieldset><legend>Se connecter en tant que</legend>{choices}</fieldset>"
                f"<button type=\"submit\">Se connecter</button></form>")
        self._log(("authorize",), 200)
        self._send(200, _page("Choisir un agent de démonstration", body), content_type=self.html_type,
                   headers={"Cache-Control": "no-store"})


OIDCProvider.handler = _Handler
