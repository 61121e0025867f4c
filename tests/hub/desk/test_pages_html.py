"""The desk's pages as HTML, without a browser: the real app (hub.desk.app.create_app) on the family's
warehouse (tests/hub/desk/cases.py, DuckDB), agents signed in through the local ProConnect.

- every text parameter of every page, and a silo's own values, rendered inert for 111 XSS payloads
  (tests/cases/desk/xss_payloads.txt): no script, no event handler, no ``javascript:`` URL, no
  element or attribute the page does not write itself;
- a page shows exactly what the JSON API returns for the same agent and purpose;
- one access-log row per citizen page (channel ``desk``), none for the purpose choice;
- no session: a page sends the browser to the sign-in and back; POST forms need the session's token;
  refusals are French pages.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from fastapi.testclient import TestClient

from hub.desk.app import create_app
from hub.desk.auth import OIDCConfig
from sandbox.oidc_provider import ClientRegistration, OIDCProvider, hub_agents_toml, load_demo_agents
from tests.hub.desk.cases import build_family
from tests.hub.desk.signin import BASE, CLIENT_ID, CLIENT_SECRET, sign_in
from warehouse.access_log_store import opened
from warehouse.engine import Warehouse
from warehouse.snapshot import publish

PAYLOADS = [line for line in (Path(__file__).parents[2] / "cases" / "desk" / "xss_payloads.txt")
            .read_text(encoding="utf-8").splitlines() if line and not line.startswith("# ")]
HTML = {"accept": "text/html"}
# a silo's own values, as a family portal could hold them
STORED = '<img src=x onerror=alert("stocké")>'
STREET = '"><svg onload=alert("rue")>'



@pytest.fixture(scope="module")
def family_url(tmp_path_factory) -> str:
    url = f"duckdb:///{tmp_path_factory.mktemp('desk-pages') / 'hub.duckdb'}"
    build_family(url)
    with Warehouse(url) as wh:  # silo values are data too: a request title and a street as typed there
        wh.execute("UPDATE core.interaction SET title = :t WHERE interaction_key = 'family:D3'", {"t": STORED})
        wh.execute("UPDATE golden.citizen SET address_line = :t WHERE citizen_id = 'C-MARIE'", {"t": STREET})
    publish(url)  # what the desk reads: the published release (DuckDB: its snapshot)
    return url


@pytest.fixture(scope="module")
def provider() -> Iterator[OIDCProvider]:
    client = ClientRegistration(CLIENT_ID, CLIENT_SECRET, redirect_uris=(f"{BASE}/auth/callback",),
                                post_logout_redirect_uris=(f"{BASE}/deconnexion/retour",))
    with OIDCProvider(load_demo_agents(), [client]) as p:
        yield p


@pytest.fixture(scope="module")
def app(family_url, provider, tmp_path_factory):
    agents = tmp_path_factory.mktemp("agents") / "agents.toml"
    agents.write_text(hub_agents_toml(load_demo_agents().values()), encoding="utf-8")
    return create_app(warehouse_url=family_url, oidc_config=OIDCConfig(
        issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_base=BASE,
        agents_file=agents))


@pytest.fixture(scope="module")
def client_for(app, provider) -> Iterator:
    """``client_for(agent_key)``: a client signed in as that demo agent (once per module)."""
    clients: dict[str | None, TestClient] = {}

    def get(key: str | None) -> TestClient:
        if key not in clients:
            c = TestClient(app, headers=HTML, raise_server_exceptions=False, follow_redirects=False)
            c.__enter__()
            if key is not None:
                assert sign_in(c, provider, key).status_code == 303
            clients[key] = c
        return clients[key]

    yield get
    for c in clients.values():
        c.__exit__(None, None, None)


# ------------------------------------------------------------------------------------------ inert HTML
# what the pages write themselves: any other element or attribute came from an input
TAGS = {"html", "head", "meta", "title", "link", "body", "a", "header", "div", "p", "span", "strong", "form",
        "input", "button", "nav", "ul", "li", "main", "footer", "h1", "h2", "h3", "label", "select", "option",
        "table", "caption", "thead", "tbody", "tr", "th", "td", "code", "section", "fieldset", "legend", "textarea",
        "ol", "dl", "dt", "dd"}
ATTRIBUTES = {"lang", "charset", "name", "content", "rel", "href", "class", "id", "tabindex", "method", "action",
              "type", "value", "aria-label", "aria-labelledby", "aria-describedby", "aria-current", "aria-hidden",
              "aria-invalid", "role", "for", "maxlength", "autocomplete", "spellcheck", "selected", "checked",
              "required", "scope"}


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name in ("href", "action", "src", "formaction") and value is not None:
                self.urls.append(value)


def assert_inert(html: str, where: str) -> None:
    """No markup of the input's making: only the pages' own elements and attributes, no script, no
    event handler, only local or mailto URLs."""
    parsed = _Elements()
    parsed.feed(html)
    assert parsed.tags <= TAGS, (where, parsed.tags - TAGS)
    assert parsed.attributes <= ATTRIBUTES, (where, parsed.attributes - ATTRIBUTES)
    assert "<script" not in html.lower(), where
    for url in parsed.urls:
        assert url.startswith(("/", "#", "mailto:")), (where, url)


def _id(payload: str) -> str:
    return f"{PAYLOADS.index(payload):03d}"


@pytest.mark.parametrize("payload", PAYLOADS, ids=_id)
def test_a_payload_in_any_text_parameter_is_rendered_inert(client_for, payload):
    agent, dpo = client_for("accueil"), client_for("dpo")
    answers = {
        "recherche q": agent.get("/recherche", params={"q": payload}),
        "recherche motif": agent.get("/recherche", params={"q": "dupont", "motif": payload}),
        "usager id": agent.get(f"/usager/{quote(payload, safe='')}"),
        "usager id lu": agent.get(f"/usager/{quote(payload, safe='')}", params={"motif": "guichet-unique"}),
        "usager motif": agent.get("/usager/C-MARIE", params={"motif": payload}),
        "usager suggere": agent.get("/usager/C-MARIE", params={"suggere": payload}),
        "dpo usager": dpo.get("/dpo/consultations", params={"usager": payload}),
        "page inconnue": agent.get(f"/{quote(payload, safe='')}"),
    }
    token = _csrf(agent, "C-MARIE")
    for field in ("motif", "fiche", "raison"):
        form = {"csrf": token, "motif": "guichet-unique", "fiche": "finance:T1", "raison": "homonyme"} | {
            field: payload}
        answers[f"signaler {field}"] = agent.post("/usager/C-MARIE/signaler", data=form)
    for where, answer in answers.items():
        assert answer.status_code < 500, (where, answer.status_code)
        if answer.is_redirect:  # a trailing slash the router drops: a redirect within the desk
            assert answer.headers["location"].startswith((BASE + "/", "/")), (where, answer.headers)
            continue
        assert answer.headers["content-type"].startswith("text/html"), (where, answer.headers)
        assert_inert(answer.text, where)
    # the search box gives the text back as typed, as text
    box = re.search(r'<input type="search" id="q" name="q" value="([^"]*)"', answers["recherche q"].text)
    assert box and _unescape(box.group(1)) == payload


def _unescape(value: str) -> str:
    return html.unescape(value)


def _csrf(client: TestClient, citizen_id: str) -> str:
    page = client.get(f"/usager/{citizen_id}", params={"motif": "guichet-unique"})
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text).group(1)


def test_a_silo_value_holding_markup_is_shown_as_text(client_for):
    page = client_for("accueil").get("/usager/C-MARIE", params={"motif": "guichet-unique"})
    assert page.status_code == 200
    assert_inert(page.text, "usager")
    def escaped(value: str) -> str:
        return value.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
    assert page.text.count(escaped(STORED)) == 2  # the request's title: pending requests and timeline
    assert page.text.count(escaped(STREET)) == 1


# ------------------------------------------------------------------------------------------ same as the API
def _texts(html: str) -> str:
    return _unescape(re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("agent, purpose, invoices", [("accueil", "guichet-unique", False),
                                                      ("ecole", "famille-portail", True),
                                                      ("finances", "finance-facturation", True)],
                         ids=["accueil", "ecole", "finances"])
def test_the_page_shows_what_the_api_returns_for_that_purpose(client_for, agent, purpose, invoices):
    client = client_for(agent)
    data = client.get("/api/v1/citizens/C-MARIE", params={"purpose": purpose},
                      headers={"accept": "application/json"}).json()
    page = client.get("/usager/C-MARIE", params={"motif": purpose})
    assert page.status_code == 200
    identity = re.search(r'<table class="identite">.*?</table>', page.text, re.S).group(0)
    rows = re.findall(r'<th scope="row">([^<]+)</th>', identity)
    assert [_unescape(r) for r in rows] == [a["label"] for a in data["identity"]]
    text = _texts(page.text)
    shown = {e["title"] for e in data["timeline"]}
    for title in ("Cantine mars", "Eau 2023", "Garderie 2023-2024", "Fête du parc", STORED):
        assert (title in text) == (title in shown), (agent, title)
    records = set(re.findall(r"<code>([a-z]+:[A-Z0-9]+)</code>", page.text))
    assert {r["record_key"] for r in data["records"]} <= records
    assert ("Factures impayées" in text) == invoices


# ------------------------------------------------------------------------------------------ access log
def _log_rows(url: str) -> list[dict]:
    with Warehouse(url) as wh, opened(wh) as log:  # on DuckDB the log has a file of its own
        if not log.table_exists("ops", "access_log"):
            return []
        return log.dicts("SELECT reader, citizen_id, channel, purpose, service FROM ops.access_log ORDER BY seq")


def test_one_access_log_row_per_citizen_page_none_for_the_purpose_choice(client_for, family_url):
    client = client_for("ecole")
    before = len(_log_rows(family_url))
    assert client.get("/usager/C-LEA").status_code == 200  # the purpose choice: nothing read
    assert len(_log_rows(family_url)) == before
    for _ in range(3):
        assert client.get("/usager/C-LEA", params={"motif": "famille-portail"}).status_code == 200
    new = _log_rows(family_url)[before:]
    assert len(new) == 3
    assert {(r["citizen_id"], r["channel"], r["service"]) for r in new} == {("C-LEA", "desk", "inscription-scolaire")}
    assert all(r["reader"].startswith("yanis.benali@") for r in new)


# ------------------------------------------------------------------------------------------ sessions, refusals
@pytest.mark.parametrize("path", ["/", "/recherche?q=dupont&motif=guichet-unique", "/usager/C-MARIE?motif=x",
                                  "/dpo/consultations?usager=C-MARIE"],
                         ids=["accueil", "recherche", "usager", "dpo"])
def test_without_a_session_a_page_sends_the_browser_to_sign_in_and_back(client_for, path):
    answer = client_for(None).get(path)
    assert answer.status_code == 303
    location = answer.headers["location"]
    assert location.startswith("/connexion?next=")
    assert unquote(location.removeprefix("/connexion?next=")) == path


def test_without_a_session_nothing_is_posted(client_for, family_url):
    answer = client_for(None).post("/usager/C-MARIE/signaler",
                                   data={"motif": "guichet-unique", "fiche": "finance:T1", "raison": "x"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/connexion?next=")


@pytest.mark.parametrize("token", ["", "0" * 64, "other-session"], ids=["none", "forged", "other-session"])
def test_a_form_without_this_sessions_token_is_refused(client_for, family_url, token):
    client = client_for("accueil")
    if token == "other-session":  # a token valid for another agent's session
        other = client_for("associations")
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', other.get("/recherche").text).group(1)
    with Warehouse(family_url) as wh:
        queued = wh.scalar("SELECT count(*) FROM golden.review_queue") if wh.table_exists("golden", "review_queue") \
            else 0
    answer = client.post("/usager/C-MARIE/signaler", data={"csrf": token, "motif": "guichet-unique",
                                                          "fiche": "family:P1", "raison": "homonyme"})
    assert answer.status_code == 403
    assert "Accès refusé" in answer.text and 'lang="fr"' in answer.text
    with Warehouse(family_url) as wh:
        after = wh.scalar("SELECT count(*) FROM golden.review_queue") if wh.table_exists("golden", "review_queue") \
            else 0
    assert after == queued


def test_a_flag_with_the_token_lands_in_the_review_queue(client_for, family_url):
    client = client_for("finances")
    page = client.get("/usager/C-JEAN", params={"motif": "finance-facturation"})
    assert page.status_code == 200
    # Jean has one finance record: no merge this purpose could flag
    assert 'action="/usager/C-JEAN/signaler"' not in page.text
    client = client_for("accueil")
    answer = client.post("/usager/C-JEAN/signaler", data={
        "csrf": _csrf(client, "C-JEAN"), "motif": "guichet-unique", "fiche": "family:P2",
        "raison": "Ce n'est pas le même Jean Dupont."})
    assert answer.status_code == 201 and "Signalement enregistré" in answer.text
    with Warehouse(family_url) as wh:
        pairs = wh.rows("SELECT record_key_l, record_key_r FROM golden.review_queue")
    assert ("family:P2", "finance:T2") in [tuple(p) for p in pairs]


@pytest.mark.parametrize("agent, path, status, text", [
    ("ecole", "/dpo/consultations", 403, "Réservé au délégué à la protection des données."),
    ("ecole", "/usager/C-MARIE?motif=finance-facturation", 403, "Finalité refusée"),
    ("accueil", "/usager/C-INCONNU?motif=guichet-unique", 404, "Aucun usager ne porte cet identifiant"),
    ("accueil", "/nulle-part", 404, "Page introuvable"),
    ("accueil", "/recherche?debut=-1", 422, "Un des paramètres de la demande n&#39;est pas valide."),
], ids=["dpo-page", "purpose-refused", "unknown-citizen", "unknown-page", "bad-offset"])
def test_refusals_are_french_pages(client_for, agent, path, status, text):
    answer = client_for(agent).get(path)
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    assert 'lang="fr"' in answer.text and text in answer.text
    assert answer.headers["cache-control"] == "no-store"


def test_results_come_by_pages_with_the_total_and_next_links(client_for, monkeypatch):
    from hub.desk import pages

    monkeypatch.setattr(pages, "PAGE_SIZE", 3)  # the family is four Duponts: two pages of three
    client = client_for("accueil")
    first = client.get("/recherche", params={"q": "dupont"})
    assert first.status_code == 200
    assert "4 résultats pour « dupont »" in first.text and "Résultats 1 à 3 sur 4" in first.text
    assert len(re.findall(r'<a href="/usager/C-', first.text)) == 3
    following = re.search(r'<a class="bouton" href="([^"]+)">Résultats suivants</a>', first.text)
    assert following and "Résultats précédents" not in first.text
    second = client.get(html.unescape(following.group(1)))
    assert "Résultats 4 à 4 sur 4" in second.text
    assert len(re.findall(r'<a href="/usager/C-', second.text)) == 1
    assert "Résultats suivants" not in second.text and "Résultats précédents" in second.text
    shown = set(re.findall(r'<a href="/usager/(C-[A-Z]+)', first.text + second.text))
    assert shown == {"C-MARIE", "C-JEAN", "C-LEA", "C-HUGO"}
