"""The desk's pages in a real browser: headless Chromium signs in through the local ProConnect by
clicking, searches a citizen with a misspelt name, states a purpose, opens the citizen page and
finds the timeline with its deadline flags; axe-core finds no serious or critical violation on each
page visited, the skip link is the first tab stop, nothing scrolls sideways at 1280 and 1024 px.
Screenshots and pages are kept in var/test-output/screenshots/desk-*.

The desk is the real app (hub.desk.app.create_app) under uvicorn on ``localhost``, the provider on
``127.0.0.1`` (another site: the SameSite=Lax cookie is put to the test), the warehouse the
family of tests/hub/desk/cases.py on DuckDB."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
import uvicorn

from hub.desk.app import create_app
from hub.desk.auth import OIDCConfig
from sandbox.oidc_provider import ClientRegistration, OIDCProvider
from schemas.contract import INTERACTION, arrow_schema
from tests.browser import audit
from tests.hub.desk.cases import build_family
from tests.hub.desk.signin import CLIENT_ID, CLIENT_SECRET
from warehouse.engine import Warehouse
from warehouse.snapshot import publish

pytestmark = pytest.mark.browser

DUE_IN_DAYS = 5


@pytest.fixture(scope="module")
def family_url(tmp_path_factory) -> str:
    """The family's warehouse, with one more pending request of Marie's due in a few days (the
    family's own are long overdue)."""
    url = f"duckdb:///{tmp_path_factory.mktemp('desk-browser') / 'hub.duckdb'}"
    build_family(url)
    now = datetime.now(UTC)
    row = {c.name: None for c in INTERACTION.columns} | {
        "interaction_key": "family:D9", "source_system": "family", "source_id": "D9", "record_key": "family:P1",
        "kind": "demande", "service": "urbanisme", "title": "Permis de construire", "status": "ouvert",
        "opened_at": now - timedelta(days=50), "due_at": now + timedelta(days=DUE_IN_DAYS)}
    with Warehouse(url) as wh:
        wh.write(INTERACTION, pa.Table.from_pylist([row], schema=arrow_schema(INTERACTION)))
    publish(url)  # what the desk reads: the published release (DuckDB: its snapshot)
    return url


@pytest.fixture
def desk(family_url, demo_agents, agents_file) -> Iterator[str]:
    """The real desk under uvicorn on localhost (an ephemeral port) and the local provider knowing it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://localhost:{sock.getsockname()[1]}"
    registration = ClientRegistration(CLIENT_ID, CLIENT_SECRET, (f"{url}/auth/callback",),
                                      (f"{url}/deconnexion/retour",))
    with OIDCProvider(demo_agents, [registration]) as provider:
        config = OIDCConfig(issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redirect_base=url, agents_file=agents_file)
        server = uvicorn.Server(uvicorn.Config(create_app(warehouse_url=family_url, oidc_config=config),
                                               log_level="warning"))
        thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
        thread.start()
        try:
            while not server.started:
                threading.Event().wait(0.02)
            yield url
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


def checked(page, name: str, *, widths: tuple[int, ...] = (1280, 1024)) -> list[str]:
    """axe-core, lang, title and no sideways scroll on the page shown, at each width; its headings."""
    headings: list[str] = []
    for width in widths:
        page.set_viewport_size({"width": width, "height": 900})
        seen = audit(page, f"desk-{name}" + ("" if width == 1280 else f"-{width}"))
        assert seen.violations == [], (name, width, seen.violations)
        assert seen.lang == "fr" and seen.title.endswith("Bureau des agents"), (name, seen.lang, seen.title)
        assert seen.overflow_px <= 0, f"{name} scrolls sideways by {seen.overflow_px}px at {width}px"
        assert seen.font_px >= 16
        headings = seen.headings
    page.set_viewport_size({"width": 1280, "height": 900})
    return headings


def test_an_agent_signs_in_finds_a_misspelt_citizen_and_reads_the_timeline(browser, desk):
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        # no session: the page sends the browser to the provider, through /connexion?next=
        page.goto(f"{desk}/recherche")
        assert "/authorize?" in page.url
        page.get_by_label("Camille Martin", exact=False).check()  # the accueil (guichet unique) agent
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url(f"{desk}/recherche")

        assert checked(page, "recherche")[0] == "Rechercher un usager"
        # keyboard: the first tab stop is the skip link, and it leads to the content
        page.keyboard.press("Tab")
        first = page.evaluate("({text: document.activeElement.textContent.trim(), "
                              "href: document.activeElement.getAttribute('href')})")
        assert first == {"text": "Aller au contenu", "href": "#contenu"}
        assert page.locator("a.skip").bounding_box()["y"] >= 0  # shown when focused, not left off-screen
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "contenu"
        page.keyboard.press("Tab")  # the next stop is the search box, its focus ring visible
        ring = page.evaluate("(() => { const e = document.activeElement, s = getComputedStyle(e); "
                             "return {id: e.id, style: s.outlineStyle, width: parseFloat(s.outlineWidth)}; })()")
        assert ring["id"] == "q" and ring["style"] == "solid" and ring["width"] >= 3, ring

        # a misspelt name: DUPONT typed "dupond", prénom after
        page.get_by_label("Nom, prénom, date de naissance", exact=False).fill("dupond marie")
        page.get_by_role("button", name="Rechercher").click()
        page.wait_for_url("**/recherche?*")
        headings = checked(page, "resultats")
        assert "1 résultat pour « dupond marie »" in headings
        page.get_by_role("link", name="Marie Élodie Dupont").click()

        # the purpose is stated before anything is read
        page.wait_for_url("**/usager/C-MARIE?*")
        assert checked(page, "motif")[0] == "Pourquoi consultez-vous cette fiche ?"
        page.get_by_label("Accueil et orientation des usagers", exact=False).check()
        page.get_by_role("button", name="Ouvrir la fiche").click()
        page.wait_for_url("**/usager/C-MARIE?motif=guichet-unique")

        headings = checked(page, "usager")
        assert headings[0].startswith("Marie Élodie Dupont")
        assert {"Identité", "Foyer", "Chronologie et échéances", "Demandes en attente de réponse"} <= set(headings)
        timeline = page.get_by_role("table", name="Échanges avec les services", exact=False)
        assert timeline.get_by_role("row").filter(has_text="Attestation").filter(has_text="en retard").count() == 1
        soon = timeline.get_by_role("row").filter(has_text="Permis de construire")
        assert f"échéance dans {DUE_IN_DAYS} jours" in soon.inner_text()
        # the flags are words with a sign, not a colour alone
        assert page.locator(".drapeau.retard").first.inner_text().strip() == "⚠ en retard"
        # the birth date the family portal holds differently is shown beside the birth date
        born = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Date de naissance"))
        assert "12/04/1982" in born.inner_text() and "04/12/1982" in born.inner_text()
        # no finance data for the guichet unique: no unpaid invoices part
        assert "Factures impayées" not in headings

        # a suspected wrong merge, by the form at the foot of the page (POST with the session's token)
        page.get_by_label("associations:R1", exact=False).check()
        page.get_by_label("Pourquoi ? (obligatoire)").fill("L'usagère ne préside aucune association.")
        page.get_by_role("button", name="Envoyer le signalement").click()
        page.wait_for_url("**/usager/C-MARIE/signaler")
        assert checked(page, "signalement")[0] == "Signalement enregistré"
        assert "associations:R1" in page.inner_text("main")

        page.goto(f"{desk}/accessibilite")
        headings = checked(page, "accessibilite")
        assert headings[0] == "Déclaration d'accessibilité"
        assert "non conforme" in page.inner_text("#etat + p")

        # signed in, without the right: a French 403 page
        answer = page.goto(f"{desk}/dpo/consultations")
        assert answer.status == 403
        assert checked(page, "403")[0] == "Accès refusé"
    finally:
        context.close()


def test_the_dpo_sees_who_looked(browser, desk):
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{desk}/usager/C-MARIE?motif=droits-rgpd")  # a read of the DPO's own, to be listed
        page.get_by_label("Jeanne Kerjean", exact=False).check()
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url(f"{desk}/usager/C-MARIE?motif=droits-rgpd")
        page.get_by_role("link", name="Qui a consulté").click()
        page.wait_for_url(f"{desk}/dpo/consultations")
        page.get_by_label("Identifiant de l'usager").fill("  c-marie ")  # any case, spaces around
        page.get_by_role("button", name="Afficher les consultations").click()
        page.wait_for_url("**/dpo/consultations?usager=*")
        headings = checked(page, "consultations")
        assert headings[0] == "Qui a consulté une fiche ?"
        assert any(h.endswith("de la fiche C-MARIE") for h in headings), headings
        own = page.get_by_role("table").get_by_role("row").filter(has_text="jeanne.kerjean@")
        assert own.filter(has_text="bureau des agents").count() >= 1, page.inner_text("main")
    finally:
        context.close()


def test_the_finance_agent_sees_the_foyer_invoices_and_the_statement_is_public(browser, desk):
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(f"{desk}/accessibilite")  # public: no sign-in asked
        assert page.url == f"{desk}/accessibilite"
        assert page.get_by_role("heading", level=1).inner_text() == "Déclaration d'accessibilité"

        page.goto(f"{desk}/usager/C-JEAN?motif=finance-facturation")
        page.get_by_label("Sophie Le Goff", exact=False).check()  # the finance agent
        page.get_by_role("button", name="Se connecter").click()
        page.wait_for_url(f"{desk}/usager/C-JEAN?motif=finance-facturation")
        headings = checked(page, "usager-finances")
        assert "Factures impayées" in headings and "Foyer" in headings
        # Jean's own bill is paid; the foyer's unpaid canteen bill (billed to Marie) shows on him too
        unpaid = page.get_by_role("table", name="Factures impayées")
        assert unpaid.get_by_role("row").filter(has_text="Cantine mars").count() == 1
        assert "le foyer" in unpaid.inner_text()
    finally:
        context.close()
