"""The API tests' desk: the family warehouse (tests/hub/desk/cases.py) built once per module on
DuckDB and on PostgreSQL, the real app (hub.desk.app.create_app) with sign-in through the local
OpenID Connect provider (a real server), and one client per demo agent, signed in over HTTP once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.desk.app import create_app
from hub.desk.auth import OIDCConfig
from sandbox.oidc_provider import ClientRegistration, OIDCProvider, hub_agents_toml, load_demo_agents
from tests.conftest import PG_HOST, PG_PORT, _pg_connect, _unavailable
from tests.hub.desk.cases import build_family
from tests.hub.desk.signin import BASE, CLIENT_ID, CLIENT_SECRET, sign_in


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def desk_url(request, tmp_path_factory) -> Iterator[str]:
    """The family's warehouse, built once per module and engine (a test module may narrow the
    engines with ``@pytest.mark.parametrize("desk_url", ["duckdb"], indirect=True)``)."""
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path_factory.mktemp('desk') / 'hub.duckdb'}"
        build_family(url)
        yield url
        return
    try:
        admin = _pg_connect()
    except Exception as e:
        _unavailable("PostgreSQL", e)
    name = f"hub_test_desk_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    try:
        build_family(url)
        yield url
    finally:
        with _pg_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def provider() -> Iterator[OIDCProvider]:
    """The local ProConnect, for the whole module."""
    client = ClientRegistration(CLIENT_ID, CLIENT_SECRET, redirect_uris=(f"{BASE}/auth/callback",),
                                post_logout_redirect_uris=(f"{BASE}/deconnexion/retour",))
    with OIDCProvider(load_demo_agents(), [client]) as p:
        yield p


@pytest.fixture(scope="module")
def desk_app(desk_url, provider, tmp_path_factory):
    """The real desk app on the family's warehouse, signing in through the local provider."""
    agents: Path = tmp_path_factory.mktemp("agents") / "agents.toml"
    agents.write_text(hub_agents_toml(load_demo_agents().values()), encoding="utf-8")
    config = OIDCConfig(issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                        redirect_base=BASE, agents_file=agents)
    return create_app(warehouse_url=desk_url, oidc_config=config)


@pytest.fixture(scope="module")
def client_for(desk_app, provider) -> Iterator[Callable[[str | None], TestClient]]:
    """``client_for(agent_key)``: a client signed in as that demo agent over the real code flow
    (once per module and agent); ``client_for(None)``: a client nobody signed in on."""
    clients: dict[str | None, TestClient] = {}

    def get(key: str | None) -> TestClient:
        if key not in clients:
            c = TestClient(desk_app, raise_server_exceptions=False)
            c.__enter__()
            if key is not None:
                answer = sign_in(c, provider, key)
                assert answer.status_code == 303, answer.text
            clients[key] = c
        return clients[key]

    yield get
    for c in clients.values():
        c.__exit__(None, None, None)
