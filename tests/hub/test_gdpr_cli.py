"""`hub gdpr register`: the register exported as CSV (CNIL columns in French), Markdown and an
accessible French HTML page, with every processing, every personal column and each legal basis;
refused when the warehouse holds personal data the register does not map."""

from __future__ import annotations

import csv
import io
import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from schemas.register import DEFAULT_PATH, load_register
from warehouse.engine import Warehouse

REGISTER = load_register()


def _export(tmp_path: Path, fmt: str, *extra: str, env: dict[str, str] | None = None):
    out = tmp_path / f"registre.{fmt}"
    result = CliRunner().invoke(main, ["gdpr", "register", "--format", fmt, "--out", str(out), *extra],
                                env={"HUB_CONFIG": "", "HUB_REGISTER": "", **(env or {})})
    return result, out


def _personal_columns() -> list[tuple[str, str]]:
    return sorted({(t, c) for p in REGISTER.processings for t, cols in p.columns().items() for c in cols})


def test_csv_has_one_row_per_processing_and_data_category_under_the_cnil_headings(tmp_path):
    result, out = _export(tmp_path, "csv", "--no-warehouse")
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a French spreadsheet opens UTF-8 with its BOM
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert len(rows) == sum(len(p.data) for p in REGISTER.processings)
    assert {"Finalité principale", "Base légale (art. 6 RGPD)", "Catégories de personnes concernées",
            "Durée de conservation", "Point de départ de la durée", "Prolongée par une activité récente",
            "Sort des données à l'échéance", "Destinataires internes", "Sous-traitants", "Transferts hors UE",
            "Mesures de sécurité", "AIPD requise", "Date de création", "Date de mise à jour"} <= set(rows[0])
    assert {r["Référence du traitement"] for r in rows} == {p.id for p in REGISTER.processings}
    finance = [r for r in rows if r["Référence du traitement"] == "finance-facturation"]
    assert finance[0]["Base légale (art. 6 RGPD)"] == "obligation légale (art. 6-1-c)"
    assert finance[0]["Texte de référence"].startswith("CGCT art. L.1611-5")
    invoices = next(r for r in finance if r["Catégorie de données"] == "Informations d'ordre économique et financier")
    assert (invoices["Durée de conservation"], invoices["Point de départ de la durée"],
            invoices["Sort des données à l'échéance"]) == (
        "10 ans", "fin de l'exercice comptable", "archivage intermédiaire puis tri par les archives")
    assert "raw_finance.factures (id, tiers_id, numero" in invoices["Colonnes de l'entrepôt"]
    crm = next(r for r in rows if r["Référence du traitement"] == "crm-relation-usagers")
    assert "États-Unis" in crm["Transferts hors UE"] and crm["Date de création"] == "15/01/2026"
    columns = " ".join(r["Colonnes de l'entrepôt"] for r in rows)
    for table, column in _personal_columns():
        assert re.search(rf"{re.escape(table)} \([^)]*\b{column}\b", columns), (table, column)


def test_markdown_has_a_section_and_a_data_table_per_processing(tmp_path):
    result, out = _export(tmp_path, "md", "--no-warehouse")
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Registre des activités de traitement")
    for p in REGISTER.processings:
        assert f"## {p.name}" in text
        assert p.legal_basis.text in text
    for table, column in _personal_columns():
        assert re.search(rf"{re.escape(table)} \([^)]*\b{column}\b", text), (table, column)
    assert "| Base légale | mission d'intérêt public (art. 6-1-e), Code de l'éducation L.131-6 |" in text


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.headings: list[tuple[str, str]] = []
        self._heading: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self._heading, self._buf = tag, ""

    def handle_endtag(self, tag):
        if tag == self._heading:
            self.headings.append((tag, self._buf))
            self._heading = None

    def handle_data(self, data):
        self.text.append(data)
        if self._heading:
            self._buf += data


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_html_page_is_french_structured_self_contained_and_readable(tmp_path):
    result, out = _export(tmp_path, "html", "--no-warehouse")
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    tags = [t for t, _ in page.tags]
    assert ("html", {"lang": "fr"}) in page.tags and "title" in tags and "main" in tags
    # headings: one h1, a summary, then one h2 per processing, never skipping a level
    levels = [int(h[1]) for h, _ in page.headings]
    assert levels.count(1) == 1 and all(b - a <= 1 for a, b in itertools.pairwise(levels))
    assert [t for h, t in page.headings if h == "h2"] == ["Sommaire"] + [p.name for p in REGISTER.processings]
    # two tables per processing, each with a caption and header cells scoped
    assert tags.count("table") == 2 * len(REGISTER.processings) == tags.count("caption")
    assert all(a.get("scope") in ("row", "col") for t, a in page.tags if t == "th")
    # nothing loaded from elsewhere: no script, image, stylesheet link or remote URL
    assert not {"script", "img", "link", "iframe"} & set(tags)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    text = " ".join(page.text)
    for label in ("Finalité principale", "Base légale", "Personnes concernées", "Durée de conservation",
                  "Transferts hors UE", "Mesures de sécurité", "Analyse d'impact (AIPD)", "Sous-traitants"):
        assert label in text
    for p in REGISTER.processings:
        assert p.legal_basis.text in text
    # the desk's and the prefill's access rules, in French words
    assert ("Accueil – guichet unique (Commune de Bourg-Exemple) — recherche — consultation : prénoms, "
            "nom de naissance, nom d'usage, sexe, date de naissance") in text
    assert "pré-remplissage : prénoms, nom d'usage, courriel, téléphone" in text
    assert "Durée de conservation" in text and "10 ans (pièces justificatives des comptes publics" in text
    for table, column in _personal_columns():
        assert re.search(rf"{re.escape(table)}</code> : [^<]*\b{column}\b", html), (table, column)
    # every text / background pair of the style sheet meets WCAG AA (4.5:1)
    for fg, bg in (("#1b1b1b", "#ffffff"), ("#ffffff", "#1b1b1b"), ("#0a4b9c", "#ffffff"),
                   ("#0a4b9c", "#e8f0fb"), ("#1b1b1b", "#f0f0f0"), ("#3a3a3a", "#ffffff")):
        assert fg in html and bg in html
        assert _contrast(fg, bg) >= 4.5, (fg, bg)


def test_the_export_is_refused_when_the_warehouse_holds_unmapped_personal_data(tmp_path, warehouse_url):
    with Warehouse(warehouse_url) as wh:
        wh.create_schema("raw_finance")
        wh.execute("CREATE TABLE raw_finance.contacts_urgence (id TEXT, nom TEXT, telephone TEXT)")
    config = tmp_path / "hub.toml"
    config.write_text(f'[hub]\nvar_dir = "{tmp_path}"\n\n[warehouse]\nurl = "{warehouse_url}"\n', encoding="utf-8")
    result, out = _export(tmp_path, "html", "--config", str(config), env={"HUB_WAREHOUSE_URL": ""})
    assert result.exit_code == 3
    assert "raw_finance.contacts_urgence (id, nom, telephone): table not in the register" in result.output
    assert not out.exists()
    with Warehouse(warehouse_url) as wh:
        wh.execute("DROP TABLE raw_finance.contacts_urgence")
    result, out = _export(tmp_path, "html", "--config", str(config), env={"HUB_WAREHOUSE_URL": ""})
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_an_invalid_register_is_refused_naming_the_field(tmp_path):
    bad = tmp_path / "register.toml"
    bad.write_text(DEFAULT_PATH.read_text(encoding="utf-8").replace('article = "c", reference = "CGCT art. L.1611-5',
                                                                    'article = "x", reference = "CGCT art. L.1611-5'),
                   encoding="utf-8")
    result, _ = _export(tmp_path, "csv", "--no-warehouse", "--register", str(bad))
    assert result.exit_code == 2
    assert "'finance-facturation'.legal_basis.article" in " ".join(result.output.split())


@pytest.mark.parametrize("fmt", ["csv", "md", "html"])
def test_check_and_export_read_the_same_register(tmp_path, fmt):
    result = CliRunner().invoke(main, ["gdpr", "check", "--no-warehouse"], env={"HUB_REGISTER": ""})
    assert result.exit_code == 0 and "15 processings" in result.output
    result, out = _export(tmp_path, fmt, "--no-warehouse")
    assert result.exit_code == 0 and out.stat().st_size > 10_000
