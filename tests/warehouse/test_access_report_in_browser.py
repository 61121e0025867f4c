"""The access export's HTML report (rapport.html in the zip) rendered in headless Chromium: French,
readable on a desk screen and on a phone, no serious or critical axe-core violation, for a final
copy and for a draft awaiting the DPO; the screenshots are kept in var/test-output/screenshots/."""

from __future__ import annotations

import json
import zipfile

import pytest

from tests.browser import render
from tests.warehouse.test_access_export import _export
from warehouse.citizen_view import show

pytestmark = pytest.mark.browser


@pytest.fixture
def warehouse_url(tmp_path) -> str:
    # the page is the same on both engines (test_access_export checks them): DuckDB only
    return f"duckdb:///{tmp_path / 'hub.duckdb'}"


def _report(family_hub, tmp_path, name: str, **kw):
    result = _export(family_hub, "C-MARIE", tmp_path, f"{name}.zip", **kw)
    page = tmp_path / f"{name}.html"
    with zipfile.ZipFile(result.path) as z:
        page.write_bytes(z.read("rapport.html"))
    return result, page


def _readable(page, width: int) -> None:
    assert page.lang == "fr"
    assert page.violations == [], page.violations
    assert page.font_px >= 14
    assert page.overflow_px <= 0, f"the page scrolls sideways by {page.overflow_px}px at {width}px"
    assert page.screenshot.stat().st_size > 10_000
    assert page.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name, width", [("rapport-acces", 1280), ("rapport-acces-mobile", 390)],
                         ids=["desk", "phone"])
def test_the_access_report_renders_in_french_readable_and_accessible(browser, family_hub, tmp_path, name, width):
    # a consultation, for the report's table of them
    show(family_hub, "C-MARIE", reader="agent.accueil", purpose="accueil et orientation des usagers")
    result, html = _report(family_hub, tmp_path, name)
    assert not result.draft
    page = render(browser, html, name, width=width)
    assert page.title == "Copie de vos données personnelles (RGPD, article 15)"
    assert page.headings[0] == "Copie de vos données personnelles (RGPD, article 15)"
    assert {"Sommaire", "Votre identité retenue", "Les traitements qui vous concernent", "Vos fiches dans les services",
            "Vos foyers", "Vos démarches, factures et inscriptions", "Qui a consulté votre fiche, quand et pourquoi",
            "Vos droits"} <= set(page.headings)
    assert {p["name"] for p in result.document["processings"]} <= set(page.headings)
    _readable(page, width)


def test_a_draft_report_renders_its_warning_readable_and_accessible(browser, family_hub, tmp_path):
    family_hub.execute("UPDATE golden.citizen_link SET match_probability = 0.7, linked_via = 'finance:T1', "
                       "explanation = :e WHERE record_key = 'assoc:R1'",
                       {"e": json.dumps({"first_name": 6.2, "birth_date": 7.4, "email": 3.1, "address": -1.5})})
    result, html = _report(family_hub, tmp_path, "rapport-acces-brouillon")
    assert result.draft
    page = render(browser, html, "rapport-acces-brouillon")
    assert page.title.startswith("[Brouillon]")
    assert "Fiches à confirmer par le délégué à la protection des données" in page.headings
    _readable(page, 1280)
