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

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from hub.desk.auth import OIDCConfig
from sandbox.oidc_provider import ClientRegistration, DemoAgent, OIDCProvider, hub_agents_toml, load_demo_agents
from tests.hub.desk.signin import BASE, CLIENT_ID, CLIENT_SECRET, Clock, minimal_desk_app, sign_in


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


@pytest.fixture
def desk_client(oidc_config, clock) -> Iterator[TestClient]:
    """A TestClient on the minimal desk app."""
    with TestClient(minimal_desk_app(oidc_config, clock)) as client:
        yield client


@pytest.fixture
def signed_in(oidc_provider) -> Callable[..., httpx.Response]:
    """``signed_in(client, agent_key, next="/", via="form")``: the whole code flow over HTTP for a
    demo agent (tests.hub.desk.signin.sign_in); returns the desk's answer to the callback (303 to
    ``next`` when signed in)."""

    def signed(client: TestClient, agent_key: str, next: str = "/", via: str = "form") -> httpx.Response:
        return sign_in(client, oidc_provider, agent_key, next=next, via=via)

    return signed
