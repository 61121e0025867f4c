"""The register of processing, exported for people: CSV (the CNIL model's columns, in French),
Markdown, and a self-contained, accessible HTML page in French.

CSV: one row per processing × data category, ``;``-separated, UTF-8 with a byte-order mark (what a
French spreadsheet opens as is). Every text comes from the register; nothing here reads the
warehouse.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from html import escape

from schemas.register import (
    ALL,
    END_ACTIONS,
    START_EVENTS,
    Access,
    DataCategory,
    Processing,
    Register,
)

FORMATS = ("csv", "md", "html")

# The CNIL register model's headings (plus the hub's own: warehouse columns and services' access).
CSV_COLUMNS = (
    "Référence du traitement",
    "Nom du traitement",
    "Nature du traitement",
    "Système source",
    "Responsable du traitement",
    "Adresse du responsable",
    "Contact du responsable",
    "Responsables conjoints",
    "Délégué à la protection des données",
    "Contact du délégué",
    "Finalité principale",
    "Sous-finalités",
    "Base légale (art. 6 RGPD)",
    "Texte de référence",
    "Données sensibles (art. 9 RGPD)",
    "Catégories de personnes concernées",
    "Catégorie de données",
    "Description des données",
    "Colonnes de l'entrepôt",
    "Durée de conservation",
    "Point de départ de la durée",
    "Prolongée par une activité récente",
    "Sort des données à l'échéance",
    "Précisions sur la conservation",
    "Destinataires internes",
    "Organismes externes destinataires",
    "Sous-traitants",
    "Transferts hors UE",
    "Mesures de sécurité",
    "AIPD requise",
    "Référence de l'AIPD",
    "Accès des services",
    "Date de création",
    "Date de mise à jour",
)

# golden attributes, as a French reader knows them
ATTRIBUTE_LABELS = {
    "given_names": "prénoms", "birth_name": "nom de naissance", "usage_name": "nom d'usage", "sex": "sexe",
    "birth_date": "date de naissance", "email": "courriel", "phone": "téléphone", "address_line": "adresse",
    "postcode": "code postal", "city": "commune",
}

KIND_LABELS = {"hub": "traitement du hub", "source": "traitement d'un service (données reçues de son logiciel)"}


def fr_day(d: date | None) -> str:
    return d.strftime("%d/%m/%Y") if d and d != date.min else ""


def yes_no(flag: bool) -> str:
    return "oui" if flag else "non"


def _join(items: Iterable[str], sep: str = " ; ") -> str:
    return sep.join(x for x in items if x)


def columns_text(d: DataCategory) -> str:
    return _join(f"{t} ({', '.join(cols)})" for t, cols in d.columns.items())


def transfers_text(p: Processing) -> str:
    if not p.transfers:
        return "aucun"
    return _join(f"{t.recipient} — {t.country} — garanties : {t.safeguard}"
                 + (f" — documentation : {t.documentation}" if t.documentation else "") for t in p.transfers)


def _attributes(names: Iterable[str]) -> str:
    return ", ".join(ATTRIBUTE_LABELS.get(n, n) for n in names)


def access_text(a: Access, register: Register) -> str:
    services = ", ".join(register.services[s].label if s in register.services else s for s in a.services)
    coll = ("toutes les collectivités" if ALL in a.collectivites
            else ", ".join(register.collectivites.get(c, c) for c in a.collectivites))
    parts = [f"{services} ({coll})"]
    if a.search:
        parts.append("recherche")
    if a.read:
        parts.append("consultation : " + _attributes(a.read))
    if a.interaction_kinds:
        parts.append("interactions : " + ", ".join(a.interaction_kinds))
    if a.prefill:
        parts.append("pré-remplissage : " + _attributes(a.prefill))
    return " — ".join(parts)


def special_text(p: Processing) -> str:
    return _join(s.text for s in p.special_categories) or "aucune"


def dpia_text(p: Processing) -> str:
    return f"oui ({p.dpia.reference})" if p.dpia.required else "non"


# ------------------------------------------------------------------------------------------ CSV
def csv_rows(register: Register) -> list[dict[str, str]]:
    """One dict per processing × data category, keyed by :data:`CSV_COLUMNS`."""
    rows = []
    for p in register.processings:
        common = {
            "Référence du traitement": p.id,
            "Nom du traitement": p.name,
            "Nature du traitement": KIND_LABELS[p.kind],
            "Système source": p.source_system or "",
            "Responsable du traitement": p.controller.name,
            "Adresse du responsable": p.controller.address,
            "Contact du responsable": p.controller.contact,
            "Responsables conjoints": _join(j.name for j in p.joint_controllers),
            "Délégué à la protection des données": p.dpo.name,
            "Contact du délégué": _join((p.dpo.address, p.dpo.contact), " — "),
            "Finalité principale": p.purpose,
            "Sous-finalités": _join(p.sub_purposes),
            "Base légale (art. 6 RGPD)": f"{p.legal_basis.label} (art. {p.legal_basis.code})",
            "Texte de référence": p.legal_basis.reference,
            "Données sensibles (art. 9 RGPD)": special_text(p),
            "Catégories de personnes concernées": _join(p.data_subjects),
            "Destinataires internes": _join(p.recipients.internal),
            "Organismes externes destinataires": _join(p.recipients.external),
            "Sous-traitants": _join(p.recipients.processors),
            "Transferts hors UE": transfers_text(p),
            "Mesures de sécurité": _join(p.security),
            "AIPD requise": yes_no(p.dpia.required),
            "Référence de l'AIPD": p.dpia.reference,
            "Accès des services": _join(access_text(a, register) for a in p.access),
            "Date de création": fr_day(p.created),
            "Date de mise à jour": fr_day(p.updated),
        }
        for d in p.data:
            r = d.retention
            rows.append(common | {
                "Catégorie de données": d.label,
                "Description des données": d.description,
                "Colonnes de l'entrepôt": columns_text(d),
                "Durée de conservation": r.duration,
                "Point de départ de la durée": START_EVENTS[r.start],
                "Prolongée par une activité récente": yes_no(r.extended_by_activity),
                "Sort des données à l'échéance": END_ACTIONS[r.at_end],
                "Précisions sur la conservation": r.note,
            })
    return rows


def to_csv(register: Register) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, delimiter=";", lineterminator="\r\n")
    w.writeheader()
    w.writerows(csv_rows(register))
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ shared
def _fields(p: Processing, register: Register) -> list[tuple[str, list[str]]]:
    """(French label, lines) of a processing's register fields, in the CNIL model's order."""
    return [
        ("Référence", [p.id]),
        ("Nature", [KIND_LABELS[p.kind] + (f" — système source : {p.source_system}" if p.source_system else "")]),
        ("Responsable du traitement", [_join((p.controller.name, p.controller.address, p.controller.contact), " — ")]),
        ("Responsables conjoints", [j.name for j in p.joint_controllers] or ["aucun"]),
        ("Délégué à la protection des données", [_join((p.dpo.name, p.dpo.address, p.dpo.contact), " — ")]),
        ("Finalité principale", [p.purpose]),
        ("Sous-finalités", list(p.sub_purposes) or ["—"]),
        ("Base légale", [p.legal_basis.text]),
        ("Données sensibles (art. 9)", [s.text for s in p.special_categories] or ["aucune"]),
        ("Personnes concernées", list(p.data_subjects)),
        ("Destinataires internes", list(p.recipients.internal) or ["aucun"]),
        ("Organismes externes destinataires", list(p.recipients.external) or ["aucun"]),
        ("Sous-traitants", list(p.recipients.processors) or ["aucun"]),
        ("Transferts hors UE", transfers_text(p).split(" ; ")),
        ("Mesures de sécurité", list(p.security)),
        ("Analyse d'impact (AIPD)", [dpia_text(p)]),
        ("Accès des services",
         [access_text(a, register) for a in p.access] or ["aucun accès par le bureau des agents"]),
        ("Création / mise à jour", [f"créé le {fr_day(p.created)}, mis à jour le {fr_day(p.updated)}"]),
    ]


DATA_HEADINGS = ("Catégorie de données", "Description", "Colonnes de l'entrepôt", "Durée de conservation",
                 "Point de départ", "Prolongée par l'activité", "À l'échéance")


def _data_cells(d: DataCategory) -> tuple[str, ...]:
    r = d.retention
    duration = r.duration + (f" ({r.note})" if r.note else "")
    return (d.label, d.description, columns_text(d) or "aucune colonne pour l'instant", duration,
            START_EVENTS[r.start], yes_no(r.extended_by_activity), END_ACTIONS[r.at_end])


# ------------------------------------------------------------------------------------------ Markdown
def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(register: Register) -> str:
    out = ["# Registre des activités de traitement", "",
           f"Responsable : {register.controller.name} — {register.controller.address}  ",
           f"Délégué à la protection des données : {register.dpo.name} — {register.dpo.contact}  ",
           f"{len(register.processings)} traitements"
           + (f", registre mis à jour le {fr_day(register.updated)}" if register.updated else "") + ".", ""]
    for p in register.processings:
        out += [f"## {_md(p.name)}", "", "| Rubrique | Contenu |", "|---|---|"]
        out += [f"| {label} | {'<br>'.join(_md(x) for x in lines)} |" for label, lines in _fields(p, register)]
        out += ["", "| " + " | ".join(DATA_HEADINGS) + " |", "|" + "---|" * len(DATA_HEADINGS)]
        out += ["| " + " | ".join(_md(c) for c in _data_cells(d)) + " |" for d in p.data]
        out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------ HTML
_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; font-size: 1rem;
       line-height: 1.5; color: #1b1b1b; background: #ffffff; margin: 0; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.9rem; margin: 0 0 .5rem; }
h2 { font-size: 1.4rem; margin: 2.5rem 0 .75rem; padding-top: .5rem; border-top: 3px solid #1b1b1b; }
h3 { font-size: 1.1rem; margin: 1.25rem 0 .5rem; }
a { color: #0a4b9c; text-decoration: underline; }
a:focus, a:hover { outline: 3px solid #0a4b9c; outline-offset: 2px; background: #e8f0fb; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #ffffff; padding: .5rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
/* a wide table scrolls inside its own region on a narrow screen; the page never scrolls sideways */
.defile { overflow-x: auto; margin: .5rem 0 1rem; }
.defile table { margin: 0; }
.defile:focus { outline: 3px solid #0a4b9c; outline-offset: 2px; }
.defile caption { position: sticky; left: 0; max-width: calc(100vw - 2rem); }
td { overflow-wrap: break-word; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border: 1px solid #6a6a6a; padding: .4rem .6rem; vertical-align: top; text-align: left; }
thead th { background: #1b1b1b; color: #ffffff; }
tbody th { background: #f0f0f0; width: 16rem; font-weight: 600; }
ul { margin: 0; padding-left: 1.1rem; }
@media (max-width: 40rem) { main { padding: .75rem; } tbody th { width: auto; } }
code { font-family: ui-monospace, "Cascadia Mono", Consolas, monospace; font-size: .92em; }
.meta { color: #3a3a3a; }
@media print { a { color: #000; } h2 { break-before: page; } }
"""


def _cell(lines: list[str]) -> str:
    if len(lines) == 1:
        return escape(lines[0])
    return "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in lines) + "</ul>"


def _columns_html(d: DataCategory) -> str:
    if not d.columns:
        return "aucune colonne pour l'instant"
    return "<ul>" + "".join(f"<li><code>{escape(t)}</code> : {escape(', '.join(cols))}</li>"
                            for t, cols in d.columns.items()) + "</ul>"


def _region(label: str) -> str:
    # focusable and named, so that a keyboard can scroll it (WCAG 2.1.1; axe scrollable-region-focusable)
    return f'<div class="defile" role="region" tabindex="0" aria-label="{escape(label)}">'


def to_html(register: Register) -> str:
    c = register.controller
    parts = [
        "<!DOCTYPE html>",
        '<html lang="fr">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Registre des activités de traitement — {escape(c.name)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        '<a class="skip" href="#contenu">Aller au contenu</a>',
        '<main id="contenu">',
        "<h1>Registre des activités de traitement</h1>",
        f'<p class="meta">Article 30 du RGPD. Responsable du traitement : {escape(c.name)}, '
        f"{escape(c.address)} ({escape(c.contact)}). Délégué à la protection des données : "
        f"{escape(register.dpo.name)} ({escape(register.dpo.contact)}).</p>",
        f'<p class="meta">{len(register.processings)} traitements'
        + (f", registre mis à jour le {fr_day(register.updated)}" if register.updated else "") + ".</p>",
        '<nav aria-labelledby="sommaire"><h2 id="sommaire">Sommaire</h2><ul>',
    ]
    parts += [f'<li><a href="#t-{escape(p.id)}">{escape(p.name)}</a></li>' for p in register.processings]
    parts.append("</ul></nav>")
    for p in register.processings:
        pid = escape(p.id)
        parts += [f'<section aria-labelledby="t-{pid}">', f'<h2 id="t-{pid}">{escape(p.name)}</h2>',
                  _region(f"Fiche du traitement « {p.name} »"), "<table>",
                  f"<caption>Fiche du traitement « {escape(p.name)} »</caption>", "<tbody>"]
        parts += [f'<tr><th scope="row">{escape(label)}</th><td>{_cell(lines)}</td></tr>'
                  for label, lines in _fields(p, register)]
        parts += ["</tbody>", "</table>", "</div>", "<h3>Données traitées et durées de conservation</h3>",
                  _region(f"Catégories de données du traitement « {p.name} »"), "<table>",
                  f"<caption>Catégories de données du traitement « {escape(p.name)} »</caption>",
                  "<thead><tr>" + "".join(f'<th scope="col">{escape(h)}</th>' for h in DATA_HEADINGS) + "</tr></thead>",
                  "<tbody>"]
        for d in p.data:
            cells = list(_data_cells(d))
            row = [f'<th scope="row">{escape(cells[0])}</th>', f"<td>{escape(cells[1])}</td>",
                   f"<td>{_columns_html(d)}</td>"] + [f"<td>{escape(x)}</td>" for x in cells[3:]]
            parts.append("<tr>" + "".join(row) + "</tr>")
        parts += ["</tbody>", "</table>", "</div>", "</section>"]
    parts += ["</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def render(register: Register, fmt: str) -> str:
    """The register in ``csv``, ``md`` or ``html``."""
    if fmt == "csv":
        return to_csv(register)
    if fmt == "md":
        return to_markdown(register)
    if fmt == "html":
        return to_html(register)
    raise ValueError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")

