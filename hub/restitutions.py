"""`hub report etats`: the états et restitutions page for élus and managers; `hub warehouse dictionary`: the
marts' data dictionary.

The page is one self-contained French HTML file: charts drawn as inline SVG (no script, no font,
no style sheet, nothing fetched), each chart a ``<figure>`` with its caption and the same figures
in a table beside it, ``lang="fr"``, colours at 4.5:1 contrast or more. Its figures are the marts'
aggregates (``warehouse/etats.py``): no identity, no group under 11 people.
"""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import click
from jinja2 import Environment
from markupsafe import Markup

from hub.terminal import config_option, console, err, settings_or_exit
from warehouse.etats import Cell, Etats, Series

BAR = "#0b4f9c"  # 8.3:1 on white
ALERT = "#a30000"  # 7.5:1 on white
TEXT = "#1b1b1b"
_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre")
_CHANNELS = {"web": "en ligne", "email": "courriel", "telephone": "téléphone", "guichet": "guichet",
             "courrier": "courrier"}
_SILENCE = {"acceptation": "silence vaut acceptation", "rejet": "silence vaut rejet", "sans objet": "sans délai légal"}
SECRET = "secret statistique"


# ------------------------------------------------------------------------------------------ formatting
def number(value: Any, digits: int = 0) -> str:
    """``12 345`` / ``17,5``: the French way (narrow no-break space between thousands, decimal comma)."""
    if value is None:
        return "—"
    text = f"{float(value):,.{digits}f}" if digits else f"{round(float(value)):,}"
    return text.replace(",", "\u202f").replace(".", ",")


def euros(value: Any) -> str:
    if value is None:
        return "—"
    return f"{Decimal(str(value)):,.2f}".replace(",", "\u202f").replace(".", ",") + "\u00a0€"


def cell(c: Cell, kind: str = "count") -> str:
    if c.suppressed:
        return SECRET
    if kind == "money":
        return euros(c.value)
    if kind == "days":
        return number(c.value, 1) if c.value is not None and float(c.value) % 1 else number(c.value)
    return number(c.value)


def month_label(month: str) -> str:
    """``2026-03`` -> ``mars 2026``."""
    try:
        year, m = month.split("-")
        return f"{_MONTHS[int(m) - 1]} {year}"
    except (ValueError, IndexError):
        return month


def label(series: Series, value: str) -> str:
    if series.label == "Mois":
        return month_label(value)
    if series.label == "Canal":
        return _CHANNELS.get(value, value)
    if series.label == "Silos":
        return f"{value} silo{'s' if value != '1' else ''}"
    return value


# ------------------------------------------------------------------------------------------ charts
def bar_chart(series: Series, measure: str, *, ident: str, colour: str = BAR, kind: str = "count") -> Markup:
    """Horizontal bars, one per published value of ``measure`` (suppressed ones are listed in the
    table only), as an SVG image whose title and description say what it shows."""
    rows = [(label(series, k), cells[measure]) for k, cells in series.rows]
    shown = [(lab, c.value) for lab, c in rows if not c.suppressed and c.value is not None]
    width, left, bar_h, gap = 640, 230, 18, 8
    height = max(1, len(shown)) * (bar_h + gap) + 10
    top = max((float(v) for _, v in shown), default=1.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{ident}-t {ident}-d" '
             f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
             f'<title id="{ident}-t">{escape(series.title)} : {escape(series.measures[measure])}</title>',
             f'<desc id="{ident}-d">{len(shown)} barres ; les valeurs exactes sont dans le tableau qui suit.</desc>']
    for i, (lab, v) in enumerate(shown):
        y = 5 + i * (bar_h + gap)
        w = max(1.0, (width - left - 90) * float(v) / top)
        text = euros(v) if kind == "money" else number(v, 1 if kind == "days" else 0)
        short = lab if len(lab) <= 32 else lab[:31] + "…"
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" font-size="13" fill="{TEXT}">'
                     f"{escape(short)}</text>")
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 13}" font-size="13" fill="{TEXT}">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(series: Series, measure: str, *, ident: str) -> Markup:
    """Vertical bars over time (months in order), SVG; values in the table that follows."""
    shown = [(k, c[measure].value) for k, c in series.rows if not c[measure].suppressed and c[measure].value]
    width, height, bottom, left = 720, 240, 50, 40
    n = max(1, len(shown))
    step = (width - left - 10) / n
    top = max((float(v) for _, v in shown), default=1.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{ident}-t {ident}-d" '
             f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
             f'<title id="{ident}-t">{escape(series.title)}</title>',
             f'<desc id="{ident}-d">{len(shown)} mois ; les valeurs exactes sont dans le tableau qui suit.</desc>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 5}" y2="{height - bottom}" stroke="{TEXT}"/>',
             f'<text x="{left - 4}" y="16" text-anchor="end" font-size="12" fill="{TEXT}">{number(top)}</text>']
    for i, (month, v) in enumerate(shown):
        h = (height - bottom - 20) * float(v) / top
        x = left + i * step + step * 0.15
        parts.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                     f'fill="{BAR}"/>')
        if n <= 14 or i % 3 == 0:
            year, m = month.split("-")
            parts.append(f'<text x="{x + step * 0.35:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                         f'font-size="11" fill="{TEXT}">{escape(_MONTHS[int(m) - 1][:4])}.</text>')
            parts.append(f'<text x="{x + step * 0.35:.1f}" y="{height - bottom + 30}" text-anchor="middle" '
                         f'font-size="11" fill="{TEXT}">{year}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


# ------------------------------------------------------------------------------------------ page
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;line-height:1.5;color:#1b1b1b;
background:#fff;margin:0 auto;max-width:72rem;padding:1rem 1.5rem;font-size:16px}
a{color:#0b4f9c}a:focus{outline:3px solid #b34000;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}
h1{font-size:1.8rem}h2{font-size:1.4rem;border-bottom:2px solid #0b4f9c;padding-bottom:.2rem;margin-top:2.5rem}
.chiffres{display:grid;grid-template-columns:repeat(auto-fit,minmax(13rem,1fr));gap:1rem;padding:0;list-style:none}
.chiffres li{border:1px solid #767676;border-left:6px solid #0b4f9c;padding:.6rem .8rem}
.chiffres .v{display:block;font-size:1.6rem;font-weight:700}.chiffres .alerte{border-left-color:#a30000}
figure{margin:1rem 0 .5rem}figure svg{max-width:46rem;display:block}figcaption{font-weight:600;margin-bottom:.3rem}
.defile{overflow-x:auto;margin:.5rem 0 1.5rem}.defile:focus{outline:3px solid #b34000}
table{border-collapse:collapse;width:100%}caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #767676;padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#e8edf5}
td.n{text-align:right;white-space:nowrap}
.note{background:#f3f6fa;border-left:4px solid #0b4f9c;padding:.6rem 1rem}
@media (max-width:40rem){body{padding:.75rem}}
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title><style>{{ css }}</style></head><body>
<a class="skip" href="#contenu">Aller au contenu</a>
<header><h1>{{ title }}</h1>
<p>Situation au {{ built }}{% if e.run_id %} (exécution {{ e.run_id }}){% endif %}. Tous les chiffres sont des
agrégats : aucun groupe de moins de {{ e.min_cell }} personnes n'est publié (« {{ secret }} »).</p>
<nav aria-label="Sommaire"><ul>
{% for id, h in sections %}<li><a href="#{{ id }}">{{ h }}</a></li>{% endfor %}</ul></nav>
</header>
<main id="contenu">
<section id="essentiel"><h2>L'essentiel</h2>
<ul class="chiffres">
{% for text, value, alert in key_figures %}<li{% if alert %} class="alerte"{% endif %}>
<span class="v">{{ value }}</span> {{ text }}</li>{% endfor %}
</ul></section>
{% for s in sections_body %}
<section id="{{ s.id }}"><h2>{{ s.heading }}</h2>{% if s.intro %}<p>{{ s.intro }}</p>{% endif %}
{% for fig in s.figures %}
<figure aria-labelledby="{{ fig.id }}-c"><figcaption id="{{ fig.id }}-c">{{ fig.caption }}</figcaption>
{{ fig.svg }}</figure>
{% endfor %}
{% for t in s.tables %}
<div class="defile" role="region" tabindex="0" aria-label="{{ t.caption }}"><table><caption>{{ t.caption }}</caption>
<thead><tr>{% for h in t.headers %}<th scope="col">{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in t.rows %}<tr><th scope="row">{{ row[0] }}</th>
{% for v in row[1:] %}<td class="n">{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></div>
{% endfor %}
</section>
{% endfor %}
<section id="methode"><h2>Méthode</h2>
<p class="note">Chiffres tirés des tables agrégées du schéma <code>marts</code> de l'entrepôt, reconstruites à chaque
exécution du hub. Une case qui compterait moins de {{ e.min_cell }} personnes est masquée (« {{ secret }} »), ainsi
qu'une seconde case lorsque le total permettrait de retrouver la première par soustraction. Délais : du dépôt à la
clôture, en jours calendaires. Échéance : le délai légal de réponse (CRPA L.231-1 : le silence de l'administration
vaut acceptation au bout de deux mois, sauf exceptions comme les demandes à caractère financier, L.231-4).</p>
</section>
</main></body></html>
"""


def _table(series: Series, kinds: dict[str, str]) -> dict[str, Any]:
    rows = [[label(series, k)] + [cell(cells[m], kinds.get(m, "count")) for m in series.measures]
            for k, cells in series.rows]
    return {"caption": f"{series.title} (tableau)", "headers": [series.label, *series.measures.values()],
            "rows": rows}


def render_etats(e: Etats) -> str:
    """The états page (French HTML, self-contained) of the figures ``e``."""
    t = e.totals
    built = e.built_at.strftime("%d/%m/%Y à %H:%M (UTC)") if isinstance(e.built_at, datetime) else "—"
    key_figures = [
        ("demandes reçues", cell(t["requests"]), False),
        ("délai médian de traitement (jours)", cell(t["median_days"], "days"), False),
        ("demandes en attente", cell(t["pending"]), False),
        ("demandes en attente dont l'échéance légale est dépassée", cell(t["overdue"]), True),
        ("demandes où le silence vaudra acceptation dans les 15 jours", cell(t["at_risk_acceptation"]), True),
        ("impayés (factures émises non réglées)", cell(t["unpaid_amount"], "money"), True),
        ("usagers connus de plusieurs silos", cell(t["multi_silo"]), False),
        ("doublons retrouvés entre silos", cell(t["duplicates"]), False),
    ]
    days = {"median_days": "days", "p90_days": "days"}
    sections = [
        {"id": "activite", "heading": "Activité : les demandes reçues",
         "intro": (f"{cell(t['requests'])} demandes (démarches, tickets, inscriptions, subventions, rendez-vous) "
                   f"de {cell(t['requesters'])} usagers."),
         "figures": [
             {"id": "g-service", "caption": "Demandes par service", "svg": bar_chart(
                 e.requests_by_service, "requests", ident="g-service")},
             {"id": "g-canal", "caption": "Demandes par canal", "svg": bar_chart(
                 e.requests_by_channel, "requests", ident="g-canal")},
             {"id": "g-mois", "caption": "Demandes par mois de dépôt", "svg": column_chart(
                 e.requests_by_month, "requests", ident="g-mois")}],
         "tables": [_table(e.requests_by_service, {}), _table(e.requests_by_channel, {}),
                    _table(e.requests_by_month, {})]},
        {"id": "delais", "heading": "Délais de traitement",
         "intro": (f"{cell(t['closed'])} demandes closes : délai médian {cell(t['median_days'], 'days')} jours, "
                   f"9 sur 10 traitées en moins de {cell(t['p90_days'], 'days')} jours."),
         "figures": [{"id": "g-delais", "caption": "Délai médian de traitement par service (jours)",
                      "svg": bar_chart(e.delays_by_service, "median_days", ident="g-delais", kind="days")}],
         "tables": [_table(e.delays_by_service, days)]},
        {"id": "echeances", "heading": "Échéances légales : silence vaut acceptation",
         "intro": (f"{cell(t['pending'])} demandes en attente de réponse ; {cell(t['overdue'])} ont dépassé leur "
                   f"échéance légale, dont {cell(t['overdue_acceptation'])} où le silence vaut acceptation ; "
                   f"{cell(t['at_risk_acceptation'])} seront acceptées tacitement dans les 15 jours sans réponse."),
         "figures": [{"id": "g-echeances", "caption": "Demandes dont l'échéance légale est dépassée, par service",
                      "svg": bar_chart(e.deadlines_by_service, "depasse", ident="g-echeances", colour=ALERT)}],
         "tables": [_table(e.deadlines_by_service, {})]},
        {"id": "impayes", "heading": "Impayés",
         "intro": (f"{cell(t['unpaid_invoices'])} factures non réglées pour {cell(t['unpaid_amount'], 'money')}, "
                   f"dont {cell(t['overdue_amount'], 'money')} échus."),
         "figures": [{"id": "g-impayes", "caption": "Montant impayé par service",
                      "svg": bar_chart(e.unpaid_by_service, "amount", ident="g-impayes", kind="money")}],
         "tables": [_table(e.unpaid_by_service, {"amount": "money"})]},
        {"id": "decloisonnement", "heading": "Décloisonnement : ce que le hub rapproche",
         "intro": (f"{cell(t['citizens'])} usagers à partir de {cell(t['records'])} fiches des silos : "
                   f"{cell(t['multi_silo'])} usagers sont connus de plusieurs silos, {cell(t['duplicates'])} fiches "
                   f"étaient des doublons d'une personne déjà connue ailleurs ; {cell(t['conflicts_settled'])} "
                   f"divergences entre silos ont été arbitrées dans la fiche de référence et "
                   f"{cell(t['open_discrepancies'])} fiches restent à corriger dans les silos."),
         "figures": [{"id": "g-silos", "caption": "Usagers selon le nombre de silos qui les connaissent",
                      "svg": bar_chart(e.desilo_by_silos, "people", ident="g-silos")}],
         "tables": [_table(e.desilo_by_silos, {}),
                    {"caption": "Usagers connus de deux silos à la fois (la diagonale : connus du silo)",
                     "headers": ["Silo", "Autre silo", "Usagers"],
                     "rows": [[a, b, cell(c)] for a, b, c in e.overlap]}]},
    ]
    env = Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(
        title="États et restitutions du hub usagers", css=Markup(_CSS), built=built, e=e, secret=SECRET,
        key_figures=key_figures, sections=[(s["id"], s["heading"]) for s in sections] + [("methode", "Méthode")],
        sections_body=sections)


# ------------------------------------------------------------------------------------------ CLI
@click.group()
def report() -> None:
    """Restitutions: the états report for élus and managers."""


@report.command("etats")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write etats.html into (created when missing).")
@config_option
def report_etats(out_dir: Path, config: Path | None) -> None:
    """États et restitutions: activity, delays, legal deadlines, unpaid invoices, de-siloing (French HTML
    with charts, from the marts' aggregates: no identity, no group under 11 people)."""
    from hub.readers import reader
    from warehouse.etats import compute_etats

    settings = settings_or_exit(config)
    # it only reads the marts: the published release, as `hub citizen` does, so it works during a run
    with reader(settings) as wh:
        try:
            figures = compute_etats(wh)
        except LookupError as e:
            err.print(f"[red]{e}[/red]")
            sys.exit(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "etats.html"
    path.write_text(render_etats(figures), encoding="utf-8")
    console.print(f"États et restitutions : {path}", soft_wrap=True, highlight=False)


@click.command("dictionary")
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "html"]), default="md", show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
def dictionary(fmt: str, out: Path | None) -> None:
    """The marts' data dictionary, from schemas/marts.py: every column's meaning, type on DuckDB and
    PostgreSQL, source, and whether it is personal (pseudonymised) or aggregate."""
    from schemas.marts_dictionary import render

    text = render(fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8")
        console.print(f"Dictionnaire des marts : {out}", soft_wrap=True, highlight=False)
