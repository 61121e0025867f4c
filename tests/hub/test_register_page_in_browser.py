"""`hub gdpr register --format html` rendered in headless Chromium: a French page, readable on a desk
screen and on a phone, with no serious or critical axe-core violation; the screenshots are kept in
var/test-output/screenshots/."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hub.cli import main
from schemas.register import load_register
from tests.browser import render

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def register_page(tmp_path_factory):
    out = tmp_path_factory.mktemp("registre") / "registre.html"
    result = CliRunner().invoke(main, ["gdpr", "register", "--format", "html", "--out", str(out), "--no-warehouse"],
                                env={"HUB_CONFIG": "", "HUB_REGISTER": ""})
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("name, width", [("registre", 1280), ("registre-mobile", 390)], ids=["desk", "phone"])
def test_the_register_page_renders_in_french_readable_and_accessible(browser, register_page, name, width):
    page = render(browser, register_page, name, width=width)
    assert page.lang == "fr"
    assert page.title.startswith("Registre des activités de traitement")
    assert page.headings[0] == "Registre des activités de traitement"
    assert {"Sommaire", "Données traitées et durées de conservation"} <= set(page.headings)
    for processing in load_register().processings:
        assert processing.name in page.headings, processing.id
    assert page.violations == [], page.violations
    assert page.font_px >= 14
    assert page.overflow_px <= 0, f"the page scrolls sideways by {page.overflow_px}px at {width}px"
    assert page.screenshot.stat().st_size > 10_000
    assert page.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
