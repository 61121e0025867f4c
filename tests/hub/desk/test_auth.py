"""Sign-in to the desk through the local ProConnect, over real HTTP: the code flow, every check the
service provider owes, the agents file, session expiry and logout."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from hub.desk.agents import AgentsFileError, load_agents
from hub.desk.auth import LOGIN_COOKIE, SCOPES, SESSION_COOKIE, OIDCConfig, local_path
from hub.settings import SettingsError, settings_from_dict
from sandbox.oidc_provider import hub_agents_toml
from schemas.register import load_register
from tests.hub.desk.signin import BASE, CLIENT_ID, minimal_desk_app, provider_step


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def start(client: TestClient) -> str:
    r = client.get("/connexion", follow_redirects=False)
    assert r.status_code == 303
    return r.headers["location"]


def session_count(client: TestClient) -> int:
    return len(client.app.state.desk_auth.sessions)


# ------------------------------------------------------------------------------------------ the flow
@pytest.mark.parametrize("via", ["form", "login_hint"])
def test_code_flow_signs_the_agent_in(desk_client, signed_in, demo_agents, via):
    r = signed_in(desk_client, "ecole", next="/dossiers/42", via=via)
    assert r.status_code == 303 and r.headers["location"] == "/dossiers/42"
    me = desk_client.get("/moi")
    assert me.status_code == 200
    a = demo_agents["ecole"]
    assert me.json() == {"sub": a.sub, "idp": a.idp_id, "display_name": f"{a.given_name} {a.usual_name}",
                         "email": a.email, "collectivite": "commune", "service": "inscription-scolaire",
                         "role": "agent", "login": f"{a.email} ({a.idp_id}:{a.sub})"}
    assert desk_client.get("/dossiers/42").json() == {"ref": "42", "service": "inscription-scolaire"}


@pytest.mark.parametrize("key", ["accueil", "ecole", "finances", "associations", "relation", "support", "ccas",
                                 "dpo", "admin", "accueil-ccas"])
def test_every_demo_agent_gets_the_habilitation_of_the_agents_file(desk_client, signed_in, demo_agents, key):
    assert signed_in(desk_client, key, via="login_hint").status_code == 303
    me = desk_client.get("/moi").json()
    assert (me["sub"], me["idp"]) == (demo_agents[key].sub, demo_agents[key].idp_id)
    assert {k: me[k] for k in ("collectivite", "service", "role")} == dict(demo_agents[key].desk)


def test_demo_agents_cover_every_reading_service_of_the_register(demo_agents):
    register = load_register()
    habilitations = {(a.desk["collectivite"], a.desk["service"], a.desk["role"]) for a in demo_agents.values()}
    services = {s for _, s, _ in habilitations}
    readers = {s for p in register.processings for acc in p.access if acc.search or acc.read for s in acc.services}
    assert readers <= services, f"no demo agent for {sorted(readers - services)}"
    assert {r for _, _, r in habilitations} == {"agent", "dpo", "admin"}
    assert len({c for c, _, _ in habilitations}) >= 2


def test_session_cookie_is_a_random_id_httponly_samesite_lax(desk_client, signed_in):
    r = signed_in(desk_client, "accueil")
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}="))
    attributes = {p.strip().split("=")[0].lower() for p in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite"} <= attributes and "secure" not in attributes  # http://testserver
    assert "samesite=lax" in cookie.lower()
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 43 and "." not in value  # an id, not a signed payload carrying data
    store = desk_client.app.state.desk_auth.sessions
    assert value not in store._entries  # kept under a hash: memory holds no usable cookie


def test_cookies_are_secure_when_the_desk_is_served_over_https(oidc_config):
    assert replace(oidc_config, redirect_base="https://hub.example.fr").secure_cookies
    assert not replace(oidc_config, redirect_base="https://hub.example.fr", cookie_secure=False).secure_cookies
    assert not oidc_config.secure_cookies


def test_authorization_request_is_what_proconnect_expects(desk_client, oidc_config):
    first, second = query(start(desk_client)), query(start(desk_client))
    for q in (first, second):
        assert len(q["state"]) >= 32 and len(q["nonce"]) >= 32
        assert q["scope"] == SCOPES == "openid given_name usual_name email uid siret"
        assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
        assert q["redirect_uri"] == f"{BASE}/auth/callback"
        assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
        assert q["acr_values"] == "eidas1"
        assert json.loads(q["claims"])["id_token"]["acr"] == {"essential": True, "values": ["eidas1"]}
    assert first["state"] != second["state"] and first["nonce"] != second["nonce"]
    assert first["code_challenge"] != second["code_challenge"]


def test_discovery_is_fetched_once(desk_client, signed_in, oidc_provider):
    for key in ("accueil", "dpo"):
        assert signed_in(desk_client, key, via="login_hint").status_code == 303
    assert [e for e in oidc_provider.request_log if e[0] == "discovery"] == [("discovery", 200)]


@pytest.mark.parametrize("target, expected", [
    ("/usagers/C123?onglet=factures", "/usagers/C123?onglet=factures"),
    ("https://evil.example/", "/"), ("//evil.example/x", "/"), ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"), ("", "/"), (None, "/"), ("/a\r\nSet-Cookie: x=1", "/"),
], ids=["local", "absolute-url", "scheme-relative", "backslash", "javascript", "empty", "none", "crlf"])
def test_next_is_a_local_path_only(target, expected):
    assert local_path(target) == expected


def test_next_elsewhere_lands_on_the_home_page(desk_client, signed_in):
    assert signed_in(desk_client, "accueil", next="https://evil.example/").headers["location"] == "/"


# ------------------------------------------------------------------------------------------ refusals
def test_state_mismatch_is_refused(desk_client, oidc_provider):
    back = provider_step(oidc_provider, start(desk_client), "accueil").headers["location"]
    q = query(back)
    forged = f"{BASE}/auth/callback?code={q['code']}&state={'x' * 43}"
    r = desk_client.get(forged, follow_redirects=False)
    assert r.status_code == 400 and "state" in r.json()["detail"]
    assert desk_client.get("/moi").status_code == 401 and session_count(desk_client) == 0
    assert not [e for e in oidc_provider.request_log if e[0] == "token"]  # the code was never exchanged


def test_callback_from_another_browser_is_refused(desk_client, oidc_provider, oidc_config, clock):
    back = provider_step(oidc_provider, start(desk_client), "accueil").headers["location"]
    with TestClient(minimal_desk_app(oidc_config, clock)) as other:
        r = other.get(back, follow_redirects=False)
    assert r.status_code == 400 and "navigateur" in r.json()["detail"]


def test_provider_error_is_refused(desk_client):
    state = query(start(desk_client))["state"]
    r = desk_client.get(f"/auth/callback?error=access_denied&state={state}", follow_redirects=False)
    assert r.status_code == 400 and "access_denied" in r.json()["detail"]


@pytest.mark.parametrize("forgery", [
    "id_token_other_nonce", "id_token_other_key", "id_token_other_audience", "id_token_other_issuer",
    "id_token_expired", "userinfo_unsigned", "userinfo_other_key", "userinfo_other_sub",
])
def test_forged_tokens_are_refused(desk_client, signed_in, oidc_provider, forgery):
    oidc_provider.inject(forgery)
    r = signed_in(desk_client, "accueil")
    assert r.status_code == 400, r.text
    assert "refusé" in r.json()["detail"]
    assert desk_client.get("/moi").status_code == 401 and session_count(desk_client) == 0
    # the provider did answer the forged token (the refusal is the desk's)
    endpoint = "token" if forgery.startswith("id_token") else "userinfo"
    assert (endpoint, 200) in oidc_provider.request_log
    assert signed_in(desk_client, "accueil").status_code == 303  # and an honest sign-in still works


def test_expired_code_is_refused(desk_client, oidc_provider):
    back = provider_step(oidc_provider, start(desk_client), "accueil").headers["location"]
    oidc_provider.clock = lambda: time.time() + 31
    r = desk_client.get(back, follow_redirects=False)
    assert r.status_code == 400 and "invalid_grant" in r.json()["detail"]
    assert ("token", 400) in oidc_provider.request_log and session_count(desk_client) == 0


def test_replayed_callback_is_refused(desk_client, oidc_provider):
    back = provider_step(oidc_provider, start(desk_client), "accueil").headers["location"]
    assert desk_client.get(back, follow_redirects=False).status_code == 303
    desk_client.cookies.clear()
    desk_client.cookies.set(LOGIN_COOKIE, "stale")
    assert desk_client.get(back, follow_redirects=False).status_code == 400


def test_unknown_agent_is_forbidden(desk_client, signed_in, agents_file, demo_agents):
    agents_file.write_text(hub_agents_toml(a for k, a in demo_agents.items() if k != "finances"), encoding="utf-8")
    r = signed_in(desk_client, "finances")
    assert r.status_code == 403
    detail = r.json()["detail"]
    assert "Votre compte n'est pas habilité" in detail and demo_agents["finances"].sub in detail
    assert demo_agents["finances"].email not in detail
    assert desk_client.get("/moi").status_code == 401 and session_count(desk_client) == 0


def test_level_of_authentication_below_the_one_asked_is_refused(oidc_config, clock, signed_in):
    config = replace(oidc_config, acr_values="eidas2 eidas3")
    with TestClient(minimal_desk_app(config, clock)) as client:
        r = signed_in(client, "accueil")  # signed in with a password only (eidas1)
        assert r.status_code == 403 and "niveau d'authentification" in r.json()["detail"]
        assert client.get("/moi").status_code == 401
        assert signed_in(client, "dpo").status_code == 303  # two factors (eidas2)
        assert client.get("/moi").json()["role"] == "dpo"


def test_a_new_sign_in_gets_a_new_session_id(desk_client, signed_in):
    signed_in(desk_client, "accueil")
    first = desk_client.cookies.get(SESSION_COOKIE)
    signed_in(desk_client, "dpo")
    assert desk_client.cookies.get(SESSION_COOKIE) != first
    assert session_count(desk_client) == 1  # the former one is gone, not just forgotten by the browser


# ------------------------------------------------------------------------------------------ sessions
def test_every_protected_route_answers_401_without_a_session(desk_client, signed_in):
    public = {"/connexion", "/auth/callback", "/deconnexion", "/deconnexion/retour"}
    protected = [r.path.replace("{ref}", "x") for r in desk_client.app.routes
                 if isinstance(r, APIRoute) and r.path not in public and r.include_in_schema]
    assert protected == ["/moi", "/dossiers/x"]
    for path in protected:
        assert desk_client.get(path).status_code == 401, path
    desk_client.cookies.set(SESSION_COOKIE, "not-a-session-id")
    for path in protected:
        assert desk_client.get(path).status_code == 401, path


def test_session_expires_when_idle(desk_client, signed_in, clock):
    signed_in(desk_client, "accueil")
    for _ in range(3):
        clock.advance(minutes=29)
        assert desk_client.get("/moi").status_code == 200  # each request restarts the idle time
    clock.advance(minutes=30, seconds=1)
    assert desk_client.get("/moi").status_code == 401
    assert session_count(desk_client) == 0


def test_session_expires_after_its_maximum_length_even_in_use(desk_client, signed_in, clock):
    signed_in(desk_client, "accueil")
    for _ in range(29):  # 9 h 40 of steady use
        clock.advance(minutes=20)
        assert desk_client.get("/moi").status_code == 200
    clock.advance(minutes=20, seconds=1)
    assert desk_client.get("/moi").status_code == 401


def test_leaving_the_agents_file_ends_the_session_and_a_new_role_applies_at_once(
        desk_client, signed_in, agents_file, demo_agents):
    signed_in(desk_client, "accueil")
    text = hub_agents_toml(demo_agents.values())
    agents_file.write_text(text.replace('service = "accueil-usager"\nrole = "agent"',
                                        'service = "facturation"\nrole = "agent"', 1), encoding="utf-8")
    assert desk_client.get("/moi").json()["service"] == "facturation"
    agents_file.write_text(hub_agents_toml(a for k, a in demo_agents.items() if k != "accueil"), encoding="utf-8")
    assert desk_client.get("/moi").status_code == 401
    agents_file.write_text(text, encoding="utf-8")
    assert desk_client.get("/moi").status_code == 401  # back in the file: a new sign-in is needed


def test_a_broken_agents_file_lets_nobody_in(desk_client, signed_in, agents_file):
    signed_in(desk_client, "accueil")
    agents_file.write_text(agents_file.read_text(encoding="utf-8") + "\n[[agent]]\nsub = 'x'\n", encoding="utf-8")
    assert desk_client.get("/moi").status_code == 401
    assert signed_in(desk_client, "dpo").status_code == 403


def test_logout_ends_the_session_here_and_at_the_provider(desk_client, signed_in, oidc_provider, demo_agents):
    signed_in(desk_client, "dpo")
    r = desk_client.post("/deconnexion", follow_redirects=False)
    assert r.status_code == 303
    to = r.headers["location"]
    assert to.startswith(oidc_provider.issuer + "/session/end?")
    q = query(to)
    assert set(q) == {"id_token_hint", "state", "post_logout_redirect_uri"}
    assert q["post_logout_redirect_uri"] == f"{BASE}/deconnexion/retour" and len(q["state"]) >= 32
    assert desk_client.get("/moi").status_code == 401 and session_count(desk_client) == 0
    back = httpx.get(to, follow_redirects=False)
    assert back.status_code == 303 and oidc_provider.ended_sessions == [demo_agents["dpo"].sub]
    done = desk_client.get(back.headers["location"])
    assert done.status_code == 200 and "déconnecté" in done.text and 'lang="fr"' in done.text


def test_logout_return_with_another_state_is_refused(desk_client, signed_in):
    signed_in(desk_client, "accueil")
    desk_client.get("/deconnexion", follow_redirects=False)
    r = desk_client.get(f"/deconnexion/retour?state={'y' * 43}")
    assert r.status_code == 400


def test_no_token_code_name_or_email_in_the_logs(desk_client, signed_in, oidc_provider, demo_agents, caplog):
    caplog.set_level(logging.DEBUG)
    back = provider_step(oidc_provider, start(desk_client), "accueil")
    code = query(back.headers["location"])["code"]
    desk_client.get(back.headers["location"], follow_redirects=False)
    desk_client.get("/deconnexion", follow_redirects=False)
    oidc_provider.inject("userinfo_other_sub")
    signed_in(desk_client, "finances")
    # everything but the test's own HTTP clients (the browser, TestClient), which print the URLs they get
    text = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "signed in" in text and "POST /api/v2/token" in text  # the desk, the provider and urllib3 did log
    a = demo_agents["accueil"]
    for secret in (code, a.email, a.given_name, a.usual_name, "eyJ", oidc_provider.clients[CLIENT_ID].client_secret):
        assert secret not in text


# ------------------------------------------------------------------------------------------ files and settings
@pytest.mark.parametrize("entry, message", [
    ('sub = "s"\nidp = "i"\ncollectivite = "commune"\nservice = "accueil-usager"\nrole = "chef"', "role 'chef'"),
    ('sub = "s"\nidp = "i"\ncollectivite = "mairie"\nservice = "accueil-usager"\nrole = "agent"', "'mairie'"),
    ('sub = "s"\nidp = "i"\ncollectivite = "commune"\nservice = "cantine"\nrole = "agent"', "'cantine'"),
    ('sub = "s"\ncollectivite = "commune"\nservice = "accueil-usager"\nrole = "agent"', "`idp` is required"),
    ('sub = "s"\nidp = "i"\ncollectivite = "commune"\nservice = "accueil-usager"\nrole = "agent"\nmail = "x"',
     "unknown field(s) mail"),
], ids=["role", "collectivite", "service", "missing-idp", "unknown-field"])
def test_agents_file_errors_name_the_file_and_entry(tmp_path, entry, message):
    path = tmp_path / "agents.toml"
    good = '[[agent]]\nsub = "a"\nidp = "i"\ncollectivite = "commune"\nservice = "dpo"\nrole = "dpo"\n'
    path.write_text(f"{good}\n[[agent]]\n{entry}\n", encoding="utf-8")
    with pytest.raises(AgentsFileError) as e:
        load_agents(path, load_register())
    assert str(path) in str(e.value) and "[[agent]] #2" in str(e.value) and message in str(e.value)


def test_agents_file_lists_a_person_once(tmp_path):
    path = tmp_path / "agents.toml"
    entry = '[[agent]]\nsub = "a"\nidp = "i"\ncollectivite = "commune"\nservice = "dpo"\nrole = "dpo"\n'
    path.write_text(entry + entry.replace('"dpo"', '"admin"', 1), encoding="utf-8")
    with pytest.raises(AgentsFileError, match="already listed"):
        load_agents(path)


def test_config_from_settings(monkeypatch, tmp_path):
    desk = {"issuer": "https://fca.integ01.dev-agentconnect.fr/api/v2/", "client_id": "abc",
            "client_secret_env": "HUB_TEST_DESK_SECRET", "redirect_base": "https://hub.example.fr/",
            "agents_file": str(tmp_path / "agents.toml"), "session_idle_minutes": 15}
    monkeypatch.delenv("HUB_TEST_DESK_SECRET", raising=False)
    with pytest.raises(SettingsError, match="HUB_TEST_DESK_SECRET"):
        OIDCConfig.from_settings(settings_from_dict({"desk": desk}))
    monkeypatch.setenv("HUB_TEST_DESK_SECRET", "s3cret")
    config = OIDCConfig.from_settings(settings_from_dict({"desk": desk}))
    assert config.issuer == "https://fca.integ01.dev-agentconnect.fr/api/v2"
    assert config.redirect_uri == "https://hub.example.fr/auth/callback"
    assert config.post_logout_redirect_uri == "https://hub.example.fr/deconnexion/retour"
    assert config.session_idle_minutes == 15 and config.session_max_hours == 10 and config.secure_cookies
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize("change, message", [
    ({"issuer": "http://proconnect.example/api/v2"}, "https URL"),
    ({"redirect_base": "http://hub.example.fr"}, "https URL"),
    ({"session_idle_minutes": "30"}, "whole number"),
    ({"client_secret": "s3cret"}, "unknown key(s) client_secret"),
    ({"client_id": ""}, "client_id"),
], ids=["http-issuer", "http-redirect-base", "minutes-as-text", "secret-in-file", "no-client-id"])
def test_config_errors_name_the_key(monkeypatch, change, message):
    monkeypatch.setenv("HUB_TEST_DESK_SECRET", "s3cret")
    desk = {"issuer": "https://fca.integ01.dev-agentconnect.fr/api/v2", "client_id": "abc",
            "client_secret_env": "HUB_TEST_DESK_SECRET", "redirect_base": "https://hub.example.fr",
            "agents_file": "agents.toml", **change}
    with pytest.raises(SettingsError) as e:
        OIDCConfig.from_settings(settings_from_dict({"desk": desk}))
    assert "[desk]" in str(e.value) and message in str(e.value)


def test_provider_unreachable_is_said_in_french(oidc_config, clock):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nobody listens there
    config = replace(oidc_config, issuer=f"http://127.0.0.1:{port}/api/v2")
    with TestClient(minimal_desk_app(config, clock)) as client:
        r = client.get("/connexion", follow_redirects=False)
    assert r.status_code == 503 and r.json()["detail"].startswith("Connexion impossible : le service d'identification")
