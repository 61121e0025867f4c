"""The local ProConnect speaks the protocol as ProConnect documents it for a service provider, and
refuses what ProConnect refuses: checked over HTTP at its endpoints, without the desk."""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from sandbox.oidc_provider import s256
from tests.hub.desk.signin import BASE, CLIENT_ID, CLIENT_SECRET

REDIRECT = f"{BASE}/auth/callback"


def request_params(**overrides: str | None) -> dict[str, str]:
    verifier = secrets.token_urlsafe(64)
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
              "scope": "openid given_name usual_name email uid siret", "state": secrets.token_urlsafe(32),
              "nonce": secrets.token_urlsafe(32), "code_challenge": s256(verifier), "code_challenge_method": "S256",
              "verifier": verifier}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def authorize(provider, agent_key: str = "accueil", **overrides: str | None) -> tuple[str, dict[str, str]]:
    """A code for ``agent_key`` (by login_hint) and the request's parameters (with the verifier)."""
    params = request_params(**overrides)
    query = {k: v for k, v in params.items() if k != "verifier"}
    r = httpx.get(f"{provider.issuer}/authorize?{urlencode(query)}&"
                  f"{urlencode({'login_hint': provider.agents[agent_key].email})}")
    assert r.status_code == 303, r.text
    back = parse_qs(urlsplit(r.headers["location"]).query)
    assert back["state"] == [params["state"]]
    return back["code"][0], params


def exchange(provider, code: str, verifier: str, *, basic: bool = False, **form: str) -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    if basic:
        return httpx.post(f"{provider.issuer}/token", data={**data, **form}, auth=(CLIENT_ID, CLIENT_SECRET))
    return httpx.post(f"{provider.issuer}/token",
                      data={**data, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form})


def verified(provider, token: str) -> dict:
    key = jwt.PyJWKClient(f"{provider.issuer}/jwks").get_signing_key_from_jwt(token)
    return jwt.decode(token, key, algorithms=["RS256"], audience=CLIENT_ID, issuer=provider.issuer)


def test_discovery_names_every_endpoint_under_the_issuer(oidc_provider):
    doc = httpx.get(f"{oidc_provider.issuer}/.well-known/openid-configuration").json()
    assert doc["issuer"] == oidc_provider.issuer and doc["issuer"].endswith("/api/v2")
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "end_session_endpoint",
                 "jwks_uri"):
        assert doc[name].startswith(oidc_provider.issuer + "/")
    assert doc["code_challenge_methods_supported"] == ["S256"] and doc["response_types_supported"] == ["code"]
    keys = httpx.get(doc["jwks_uri"]).json()["keys"]
    assert [(k["kty"], k["use"], k["alg"]) for k in keys] == [("RSA", "sig", "RS256")] and keys[0]["kid"]
    assert "d" not in keys[0]  # the public half only


def test_tokens_carry_what_proconnect_gives(oidc_provider, demo_agents):
    code, params = authorize(oidc_provider, "dpo")
    body = exchange(oidc_provider, code, params["verifier"], basic=True).json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 60
    claims = verified(oidc_provider, body["id_token"])
    a = demo_agents["dpo"]
    assert {k: claims[k] for k in ("sub", "nonce", "idp_id", "amr")} == {
        "sub": a.sub, "nonce": params["nonce"], "idp_id": a.idp_id, "amr": ["pwd", "mfa"]}
    assert claims["exp"] - claims["iat"] == 60 and claims["acr"] == "eidas2"
    r = httpx.get(f"{oidc_provider.issuer}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert r.headers["content-type"] == "application/jwt"
    info = verified(oidc_provider, r.text)
    assert {k: info[k] for k in ("sub", "given_name", "usual_name", "email", "uid", "siret", "idp_id")} == {
        "sub": a.sub, "given_name": a.given_name, "usual_name": a.usual_name, "email": a.email, "uid": a.uid,
        "siret": a.siret, "idp_id": a.idp_id}


def test_userinfo_gives_the_claims_of_the_scopes_granted_only(oidc_provider):
    code, params = authorize(oidc_provider, scope="openid email")
    token = exchange(oidc_provider, code, params["verifier"]).json()["access_token"]
    info = verified(oidc_provider, httpx.get(f"{oidc_provider.issuer}/userinfo",
                                             headers={"Authorization": f"Bearer {token}"}).text)
    assert set(info) == {"iss", "aud", "iat", "sub", "idp_id", "email"}


@pytest.mark.parametrize("asked, agent, answered", [
    ("eidas1", "dpo", "eidas1"), ("eidas2 eidas3", "accueil", "eidas1"), (None, "dpo", "eidas2"),
], ids=["lower-asked", "higher-asked-not-reached", "none-asked"])
def test_acr_answers_the_level_asked_when_reached(oidc_provider, asked, agent, answered):
    code, params = authorize(oidc_provider, agent, acr_values=asked)
    body = exchange(oidc_provider, code, params["verifier"]).json()
    assert verified(oidc_provider, body["id_token"])["acr"] == answered


@pytest.mark.parametrize("change, named", [
    ({"prompt": "login", "foo": "bar"}, "paramètre inconnu : foo"),
    ({"response_mode": "form_post"}, "paramètre inconnu : response_mode"),
    ({"state": None}, "paramètre manquant : state"),
    ({"state": "s" * 31}, "state trop court"),
    ({"nonce": "n" * 31}, "nonce trop court"),
    ({"code_challenge": None, "code_challenge_method": None}, "code_challenge"),
    ({"code_challenge_method": "plain"}, "S256"),
    ({"scope": "given_name email"}, "openid est obligatoire"),
    ({"scope": "openid profile"}, "scope inconnu : profile"),
    ({"client_id": "un-autre-service"}, "client_id inconnu"),
    ({"redirect_uri": REDIRECT + "/"}, "redirect_uri"),
    ({"redirect_uri": "https://evil.example/auth/callback"}, "redirect_uri"),
    ({"response_type": "token"}, "response_type=code"),
    ({"claims": "{pas du json"}, "claims"),
], ids=["unknown-parameter", "response-mode", "no-state", "short-state", "short-nonce", "no-pkce", "pkce-plain",
        "no-openid", "unknown-scope", "unknown-client", "trailing-slash", "other-redirect", "implicit-flow",
        "bad-claims"])
def test_authorize_refuses_what_proconnect_refuses(oidc_provider, change, named):
    query = {k: v for k, v in request_params(**change).items() if k != "verifier"}
    r = httpx.get(f"{oidc_provider.issuer}/authorize?{urlencode(query)}")
    assert r.status_code == 400 and "location" not in r.headers  # never sent back to an unchecked URI
    assert 'lang="fr"' in r.text and "Y000400" in r.text and named in r.text


def test_repeated_parameter_is_refused(oidc_provider):
    query = urlencode({k: v for k, v in request_params().items() if k != "verifier"})
    r = httpx.get(f"{oidc_provider.issuer}/authorize?{query}&state={'z' * 40}")
    assert r.status_code == 400 and "répété : state" in r.text


def test_state_and_nonce_of_32_characters_are_enough(oidc_provider):
    code, _ = authorize(oidc_provider, state="s" * 32, nonce="n" * 32)
    assert code


def test_agent_choice_page_signs_the_chosen_agent_in_once(oidc_provider):
    params = request_params()
    query = {k: v for k, v in params.items() if k != "verifier"}
    page = httpx.get(f"{oidc_provider.issuer}/authorize?{urlencode(query)}")
    assert page.status_code == 200 and 'lang="fr"' in page.text and "<legend>" in page.text
    assert page.text.count('type="radio" name="agent"') == len(oidc_provider.agents)
    action = page.text.split('action="', 1)[1].split('"', 1)[0]
    chosen = httpx.post(oidc_provider.url + action, data={"agent": "finances"})
    assert chosen.status_code == 303
    code = parse_qs(urlsplit(chosen.headers["location"]).query)["code"][0]
    body = exchange(oidc_provider, code, params["verifier"]).json()
    assert verified(oidc_provider, body["id_token"])["sub"] == oidc_provider.agents["finances"].sub
    again = httpx.post(oidc_provider.url + action, data={"agent": "admin"})
    assert again.status_code == 400  # the page's request is spent


def test_wrong_pkce_verifier_is_refused_and_burns_the_code(oidc_provider):
    code, params = authorize(oidc_provider)
    r = exchange(oidc_provider, code, secrets.token_urlsafe(64))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant" and "PKCE" in r.json()["error_description"]
    assert exchange(oidc_provider, code, params["verifier"]).json()["error"] == "invalid_grant"


def test_replayed_code_is_refused_and_revokes_its_access_token(oidc_provider):
    code, params = authorize(oidc_provider)
    token = exchange(oidc_provider, code, params["verifier"]).json()["access_token"]
    replay = exchange(oidc_provider, code, params["verifier"])
    assert replay.status_code == 400 and replay.json() == {"error": "invalid_grant",
                                                           "error_description": "code already used"}
    r = httpx.get(f"{oidc_provider.issuer}/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("seconds, status", [(29, 200), (31, 400)], ids=["within-30s", "after-30s"])
def test_code_is_valid_30_seconds(oidc_provider, seconds, status):
    code, params = authorize(oidc_provider)
    oidc_provider.clock = lambda: time.time() + seconds
    r = exchange(oidc_provider, code, params["verifier"])
    assert r.status_code == status
    if status == 400:
        assert r.json()["error_description"] == "code expired"


def test_access_token_is_valid_60_seconds(oidc_provider):
    code, params = authorize(oidc_provider)
    token = exchange(oidc_provider, code, params["verifier"]).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{oidc_provider.issuer}/userinfo", headers=headers).status_code == 200
    oidc_provider.clock = lambda: time.time() + 61
    assert httpx.get(f"{oidc_provider.issuer}/userinfo", headers=headers).status_code == 401


@pytest.mark.parametrize("form, basic, status, error", [
    ({"client_secret": "pas-le-bon"}, False, 401, "invalid_client"),
    ({"client_secret": CLIENT_SECRET}, True, 400, "invalid_request"),
    ({"redirect_uri": REDIRECT + "/"}, False, 400, "invalid_grant"),
    ({"grant_type": "client_credentials"}, False, 400, "unsupported_grant_type"),
], ids=["wrong-secret", "two-auth-methods", "other-redirect-uri", "other-grant"])
def test_token_refusals(oidc_provider, form, basic, status, error):
    code, params = authorize(oidc_provider)
    r = exchange(oidc_provider, code, params["verifier"], basic=basic, **form)
    assert r.status_code == status and r.json()["error"] == error


def test_session_end_goes_back_with_the_state_to_a_registered_uri_only(oidc_provider, demo_agents):
    code, params = authorize(oidc_provider)
    id_token = exchange(oidc_provider, code, params["verifier"]).json()["id_token"]
    end = f"{oidc_provider.issuer}/session/end"
    good = {"id_token_hint": id_token, "state": "e" * 40, "post_logout_redirect_uri": f"{BASE}/deconnexion/retour"}
    for bad in ({**good, "post_logout_redirect_uri": "https://evil.example/"}, {**good, "id_token_hint": "x.y.z"},
                {**good, "extra": "1"}, {k: v for k, v in good.items() if k != "state"}):
        r = httpx.get(f"{end}?{urlencode(bad)}")
        assert r.status_code == 400 and "location" not in r.headers
    assert oidc_provider.ended_sessions == []
    r = httpx.get(f"{end}?{urlencode(good)}")
    assert r.status_code == 303 and r.headers["location"] == f"{BASE}/deconnexion/retour?state={'e' * 40}"
    assert oidc_provider.ended_sessions == [demo_agents["accueil"].sub]


def test_forgeries_need_a_known_endpoint(oidc_provider):
    with pytest.raises(ValueError, match="endpoint"):
        oidc_provider.inject("500")
