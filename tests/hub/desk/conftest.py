"""Sign-in fixtures for the desk's tests: the local OpenID Connect provider (a real server on
127.0.0.1 playing ProConnect), the hub's agents file for its demo agents, the desk's OIDC config,
and ``signed_in(client, agent_key)`` running the whole code flow over HTTP.

Any desk app works with them: build it, call ``hub.desk.auth.install(app, oidc_config, clock=clock)``
(or let the app factory do it with ``oidc_config``), wrap it in ``TestClient(app)`` (base URL
``http://testserver``, the redirect base registered with the provider) and sign in::

    def test_x(desk_client, signed_in):
        signed_in(desk_client, "accueil")
        assert desk_client.get("/moi").status_code == 200
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from hub.desk.auth import Agent, OIDCConfig, current_agent, install
from sandbox.oidc_provider import ClientRegistration, DemoAgent, OIDCProvider, hub_agents_toml, load_demo_agents

SignedIn = Annotated[Agent, Depends(current_agent)]

BASE = "http://testserver"  # TestClient's base URL: the desk's redirect base in these tests
CLIENT_ID = "hub-bureau-des-agents"
CLIENT_SECRET = "secret-de-test-du-client"  # the local provider's, not any real client's


@dataclass
class Clock:
    """A clock the test moves by hand (aware datetimes), for session expiry without sleeping."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def demo_agents() -> dict[str, DemoAgent]:
    """The sandbox's demo agents (sandbox/desk_agents.toml), by key."""
    return load_demo_agents()


@pytest.fixture
def oidc_provider(demo_agents) -> Iterator[OIDCProvider]:
    """The local ProConnect on an ephemeral port, with the desk registered as a client; stopped after."""
    client = ClientRegistration(CLIENT_ID, CLIENT_SECRET, redirect_uris=(f"{BASE}/auth/callback",),
                                post_logout_redirect_uris=(f"{BASE}/deconnexion/retour",))
    with OIDCProvider(demo_agents, [client]) as provider:
        yield provider


@pytest.fixture
def agents_file(tmp_path, demo_agents) -> Path:
    """The hub's agents file giving every demo agent its habilitation."""
    path = tmp_path / "agents.toml"
    path.write_text(hub_agents_toml(demo_agents.values()), encoding="utf-8")
    return path


@pytest.fixture
def oidc_config(oidc_provider, agents_file) -> OIDCConfig:
    """The desk's sign-in settings pointing at the local provider."""
    return OIDCConfig(issuer=oidc_provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                      redirect_base=BASE, agents_file=agents_file)


@pytest.fixture
def clock() -> Clock:
    """The desk's clock, moved by hand."""
    return Clock(datetime(2026, 12, 14, 9, 0, tzinfo=UTC))


def minimal_desk_app(config: OIDCConfig, clock: Clock) -> FastAPI:
    """A desk reduced to sign-in and two protected routes (the real app is hub.desk.app's)."""
    app = FastAPI()
    install(app, config, clock=clock)

    @app.get("/moi")
    async def moi(agent: SignedIn) -> dict[str, str]:
        return {"sub": agent.sub, "idp": agent.idp, "display_name": agent.display_name, "email": agent.email,
                "collectivite": agent.collectivite, "service": agent.service, "role": agent.role,
                "login": agent.login}

    @app.get("/dossiers/{ref}")
    async def dossier(ref: str, agent: SignedIn) -> dict[str, str]:
        return {"ref": ref, "service": agent.service}

    return app


@pytest.fixture
def desk_client(oidc_config, clock) -> Iterator[TestClient]:
    """A TestClient on the minimal desk app."""
    with TestClient(minimal_desk_app(oidc_config, clock)) as client:
        yield client


def provider_step(provider: OIDCProvider, authorize_url: str, agent_key: str, *, via: str = "form") -> httpx.Response:
    """What the person does at the provider: pick ``agent_key`` on the page (``via="form"``, as a
    browser) or name them by ``login_hint``; returns the provider's redirect to the callback."""
    with httpx.Client(follow_redirects=False) as browser:
        if via == "login_hint":
            return browser.get(f"{authorize_url}&{urlencode({'login_hint': provider.agents[agent_key].email})}")
        page = browser.get(authorize_url)
        assert page.status_code == 200, page.text
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action, "no agent-choice form on the provider's page"
        return browser.post(provider.url + action.group(1), data={"agent": agent_key})


@pytest.fixture
def signed_in(oidc_provider) -> Callable[..., httpx.Response]:
    """``signed_in(client, agent_key, next="/", via="form")``: the whole code flow over HTTP for a
    demo agent; returns the desk's answer to the callback (303 to ``next`` when signed in)."""

    def sign_in(client: TestClient, agent_key: str, next: str = "/", via: str = "form") -> httpx.Response:
        start = client.get("/connexion", params={"next": next}, follow_redirects=False)
        assert start.status_code == 303, start.text
        back = provider_step(oidc_provider, start.headers["location"], agent_key, via=via)
        assert back.status_code == 303, back.text
        return client.get(back.headers["location"], follow_redirects=False)

    return sign_in
