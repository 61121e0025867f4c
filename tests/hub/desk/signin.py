"""Signing in to a desk app through the local OpenID Connect provider, over real HTTP (the
fixtures in conftest.py wire these to a running provider)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

import httpx
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from hub.desk.auth import Agent, OIDCConfig, current_agent, install
from sandbox.oidc_provider import OIDCProvider

BASE = "http://testserver"  # TestClient's base URL: the desk's redirect base in these tests
CLIENT_ID = "hub-bureau-des-agents"
CLIENT_SECRET = "secret-de-test-du-client"  # the local provider's, not any real client's

SignedIn = Annotated[Agent, Depends(current_agent)]


@dataclass
class Clock:
    """A clock the test moves by hand (aware datetimes), for session expiry without sleeping."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


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


def sign_in(client: TestClient, provider: OIDCProvider, agent_key: str, next: str = "/",
            via: str = "form") -> httpx.Response:
    """The whole code flow for a demo agent: /connexion, the provider's page (or login_hint), the
    callback; returns the desk's answer to the callback (303 to ``next`` when signed in)."""
    start = client.get("/connexion", params={"next": next}, follow_redirects=False)
    assert start.status_code == 303, start.text
    back = provider_step(provider, start.headers["location"], agent_key, via=via)
    assert back.status_code == 303, back.text
    return client.get(back.headers["location"], follow_redirects=False)
