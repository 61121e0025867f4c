"""`hub serve --demo` after `hub demo`: the desk and the local identity provider start together, an agent
picked on the provider's page lands signed in on the search page; `hub demo`'s hint names a demo agent
per role and per service."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from hub.demo import desk_hint
from sandbox.oidc_provider import load_demo_agents
from tests.hub.desk.cases import build_family
from warehouse.snapshot import publish

REPO = Path(__file__).resolve().parents[3]


def _free_pair() -> int:
    """A port whose next one is free too (the desk and its provider)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture
def served(tmp_path):
    url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    build_family(url)
    publish(url)  # what the desk reads: the published release (DuckDB: its snapshot)
    config = tmp_path / "hub.toml"
    config.write_text(f'[hub]\nvar_dir = "{tmp_path / "var"}"\n\n[warehouse]\nurl = "{url}"\n', encoding="utf-8")
    port = _free_pair()
    env = {**os.environ, "HUB_CONFIG": "", "HUB_WAREHOUSE_URL": ""}
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve", "--demo", "--port", str(port),
                             "--config", str(config)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://localhost:{port}/accessibilite", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.3)
        else:
            pytest.fail("hub serve --demo did not answer within 90 s")
        yield port, tmp_path / "var"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_hub_serve_demo_signs_an_agent_in_through_the_local_provider(served):
    port, var = served
    desk = httpx.Client(base_url=f"http://localhost:{port}", headers={"accept": "text/html"}, timeout=30)
    start = desk.get("/recherche")
    assert start.status_code == 303 and start.headers["location"] == "/connexion?next=%2Frecherche"
    to_provider = desk.get(start.headers["location"])
    authorize = to_provider.headers["location"]
    assert authorize.startswith(f"http://127.0.0.1:{port + 1}/")  # the provider on the next port
    with httpx.Client(timeout=30) as browser:
        choice = browser.get(authorize)
        action = re.search(r'<form method="post" action="([^"]+)"', choice.text).group(1)
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize))
        back = browser.post(origin + action, data={"agent": "accueil"})
    landed = desk.get(back.headers["location"])
    assert (landed.status_code, landed.headers["location"]) == (303, "/recherche")
    page = desk.get("/recherche", params={"q": "dupond marie"})
    assert page.status_code == 200 and "Camille Martin" in page.text and "C-MARIE" in page.text
    assert "[[agent]]" in (var / "desk_agents.toml").read_text(encoding="utf-8")


def test_the_demo_names_a_demo_agent_per_role_and_service():
    lines = desk_hint(8000)
    assert "hub serve --demo" in lines[0] and "http://localhost:8000/" in lines[0]
    agents = [a for a in load_demo_agents().values() if a.desk]
    assert len(lines) == 1 + len(agents)
    for a in agents:
        line = next(x for x in lines[1:] if a.email in x)
        assert f"rôle {a.desk['role']}" in line
    assert {a.desk["role"] for a in agents} == {"agent", "dpo", "admin"}
