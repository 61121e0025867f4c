"""Pages rendered in headless Chromium: Debian's chromium driven by playwright, checked with axe-core.

`make test` installs both (the Makefile's `browser` step): chromium with apt, axe-core with npm into
var/node (git-ignored, never committed). `playwright install` is not used: it downloads its own
browser build from a CDN, which CI cannot reach.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
AXE = Path(os.environ.get("HUB_TEST_AXE", REPO / "var" / "node" / "node_modules" / "axe-core" / "axe.min.js"))
AXE_VERSION = "4.14."  # the Makefile's AXE_VERSION: the reference engine's rules change between minor versions
SCREENSHOTS = REPO / "var" / "test-output" / "screenshots"
# no network, no background services: the page is a local file and must render from it alone
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
BLOCKING_IMPACTS = ("serious", "critical")


class BrowserUnavailable(Exception):
    """Chromium, playwright or axe-core is not installed here."""


def chromium_path() -> str:
    """Debian's chromium (or $HUB_TEST_CHROMIUM), else BrowserUnavailable saying how to install it."""
    path = os.environ.get("HUB_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        raise BrowserUnavailable(f"Chromium is not installed at {path} (`make test` installs Debian's chromium "
                                 "with apt when run as root)")
    if not AXE.is_file():
        raise BrowserUnavailable(f"axe-core is not installed at {AXE} (`make test` installs it with npm)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        raise BrowserUnavailable(f"playwright is not installed ({e}); install the dev extra") from e
    return path


@dataclass
class Rendered:
    lang: str
    title: str
    headings: list[str]  # h1..h3 texts, in order
    violations: list[dict[str, Any]]  # axe violations of impact serious or critical
    overflow_px: int  # how far the page is wider than the window (a horizontal scroll bar)
    font_px: float  # the body text's computed size
    screenshot: Path


def render(browser: Any, html: Path, name: str, width: int = 1280) -> Rendered:
    """Open ``html`` in a French-locale page, run axe-core on it and keep a full-page screenshot as
    var/test-output/screenshots/<name>.png (and the page as <name>.html)."""
    page = browser.new_page(locale="fr-FR", viewport={"width": width, "height": 900})
    try:
        page.goto(html.resolve().as_uri(), wait_until="load")
        return audit(page, name)
    finally:
        page.close()


def audit(page: Any, name: str) -> Rendered:
    """Check the page a browser tab shows now (a file, or a live page of a running server): axe-core
    on it, its facts, and a full-page screenshot kept as var/test-output/screenshots/<name>.png with
    the page's HTML beside it as <name>.html."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if not page.evaluate("() => 'axe' in window"):  # the same page checked again (another width) has it
        (SCREENSHOTS / f"{name}.html").write_text(page.content(), encoding="utf-8")  # before axe's script
        page.add_script_tag(path=str(AXE))
    version = page.evaluate("() => axe.version")
    assert version.startswith(AXE_VERSION), f"axe-core {version} in {AXE}, not {AXE_VERSION}x: run `make browser`"
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    violations = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                   "nodes": [n["target"] for n in v["nodes"][:5]]}
                  for v in result["violations"] if v["impact"] in BLOCKING_IMPACTS]
    facts = page.evaluate("""() => ({
        lang: document.documentElement.lang,
        title: document.title,
        headings: [...document.querySelectorAll('h1, h2, h3')].map(h => h.textContent.trim()),
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        font: parseFloat(getComputedStyle(document.body).fontSize),
    })""")
    shot = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    return Rendered(lang=facts["lang"], title=facts["title"], headings=facts["headings"], violations=violations,
                    overflow_px=int(facts["overflow"]), font_px=float(facts["font"]), screenshot=shot)
