"""Signing in with a real browser: headless Chromium goes from the desk (served by uvicorn on
``localhost``) to the local ProConnect (on ``127.0.0.1``, another site, so the SameSite=Lax cookies
are put to the test), picks an agent on the provider's page, comes back signed in, and signs out
through the provider."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn

from hub.desk.auth import OIDCConfig
from sandbox.oidc_provider import ClientRegistration, OIDCProvider
from tests.browser import AXE, BLOCKING_IMPACTS, SCREENSHOTS
from tests.hub.desk.signin import CLIENT_ID, CLIENT_SECRET, minimal_desk_app

pytestmark = pytest.mark.browser


@pytest.fixture
def served_desk(demo_agents, agents_file, clock) -> Iterator[tuple[str, OIDCProvider]]:
    """The minimal desk under uvicorn on localhost and a provider that knows its URLs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    desk = f"http://localhost:{sock.getsockname()[1]}"
    registration = ClientRegistration(CLIENT_ID, CLIENT_SECRET, (f"{desk}/auth/callback",),
                                      (f"{desk}/deconnexion/retour",))
    with OIDCProvider(demo_agents, [registration]) as provider:
        config = OIDCConfig(issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redirect_base=desk, agents_file=agents_file)
        server = uvicorn.Server(uvicorn.Config(minimal_desk_app(config, clock), log_level="warning"))
        thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        thread.start()
        try:
            while not server.started:
                threading.Event().wait(0.02)
            yield desk, provider
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


def serious_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [v["id"] for v in result["violations"] if v["impact"] in BLOCKING_IMPACTS]


def test_sign_in_and_out_in_chromium(browser, served_desk, demo_agents):
    desk, provider = served_desk
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    try:
        page.goto(f"{desk}/connexion?next=/moi")
        assert page.url.startswith(provider.issuer + "/authorize?")
        assert page.evaluate("document.documentElement.lang") == "fr"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "desk-oidc-provider-choice.png"), full_page=True)
        assert serious_violations(page) == []
        page.get_by_label("Sophie Le Goff", exact=False).check()  # the finance agent
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url(f"{desk}/moi")
        me = page.evaluate("JSON.parse(document.body.innerText)")
        assert (me["sub"], me["service"]) == (demo_agents["finances"].sub, "facturation")
        cookie = next(c for c in context.cookies(desk) if c["name"] == "hub_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert page.evaluate("document.cookie") == ""  # no script can read the session

        page.goto(f"{desk}/deconnexion")
        page.wait_for_url(f"{desk}/deconnexion/retour?state=*")
        assert "déconnecté" in page.inner_text("main") and serious_violations(page) == []
        assert provider.ended_sessions == [demo_agents["finances"].sub]
        assert page.goto(f"{desk}/moi").status == 401
    finally:
        context.close()
