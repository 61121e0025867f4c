"""The access export's report: one self-contained, accessible French HTML page (C-487/21: intelligible).

No script, font, image or style sheet from elsewhere; ``lang="fr"``; a summary with links; one
section per processing; captioned tables with header cells; colours at 4.5:1 contrast or more.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from html import escape
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;line-height:1.5;color:#1b1b1b;
background:#fff;margin:0 auto;max-width:72rem;padding:1rem 1.5rem}
a{color:#0b4f9c}a:focus,summary:focus{outline:3px solid #b34000;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem}
h1{font-size:1.8rem}h2{font-size:1.4rem;border-bottom:2px solid #0b4f9c;padding-bottom:.2rem;margin-top:2.5rem}
h3{font-size:1.15rem;margin-top:1.5rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}caption{text-align:left;font-weight:600;padding:.3rem 0}
.defile{overflow-x:auto;margin:.5rem 0 1.5rem}.defile table{margin:0}.defile:focus{outline:3px solid #b34000}
.defile caption{position:sticky;left:0;max-width:calc(100vw - 1.5rem)}
th,td{border:1px solid #767676;padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#e8edf5}
.draft{border:3px solid #a30000;background:#fff0f0;color:#5c0000;padding:1rem;margin:1rem 0}
.note{background:#f3f6fa;border-left:4px solid #0b4f9c;padding:.6rem 1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}
td,dd{overflow-wrap:break-word}
@media (max-width:40rem){body{padding:.75rem}dl{grid-template-columns:1fr}dd{margin-bottom:.5rem}}
.redacted{font-style:italic;color:#4a4a4a}
"""

_OPERATIONS = {"create": "création", "read": "consultation", "update": "modification", "delete": "suppression",
               "export": "export"}
_HOUSEHOLD_ROLES = {"responsable": "responsable", "conjoint": "conjoint(e)", "enfant": "enfant", "membre": "membre"}
_ATTRIBUTES = {"given_names": "Prénoms", "birth_name": "Nom de naissance", "usage_name": "Nom d'usage", "sex": "Sexe",
               "birth_date": "Date de naissance", "email": "Courriel", "phone": "Téléphone",
               "address_line": "Adresse", "postcode": "Code postal", "city": "Commune"}
_RULES = {"unanimous": "toutes les fiches concordent", "certification": "la mieux justifiée",
          "source_priority": "le service de référence", "recency": "la plus récente", "frequency": "la plus fréquente",
          "tie_break": "départage", "fallback": "valeur déduite"}


def _e(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return escape(str(value))


def _day(value: Any) -> str:
    if not value:
        return "—"
    try:
        if isinstance(value, str) and "T" in value:
            return datetime.fromisoformat(value).strftime("%d/%m/%Y à %H:%M")
        return (value if isinstance(value, date) else date.fromisoformat(str(value)[:10])).strftime("%d/%m/%Y")
    except ValueError:
        return escape(str(value))


def _money(amount: Any, currency: Any) -> str:
    """``1 500,00 €``: the French way (narrow no-break space between thousands, decimal comma)."""
    if amount is None or amount == "":
        return "—"
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return _e(f"{amount} {currency or ''}".strip())
    digits = f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    unit = {"EUR": "€"}.get(str(currency or ""), str(currency or ""))
    return escape(f"{digits}\u00a0{unit}" if unit else digits)


def _table(caption: str, headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return f"<p>{escape(caption)} : aucune.</p>"
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (f'<div class="defile" role="region" tabindex="0" aria-label="{escape(caption)}">'
            f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "</div>")


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>" if items else "<p>Aucun.</p>"


def _records_rows(entries: list[Mapping[str, Any]]) -> list[list[str]]:
    rows = []
    for r in entries:
        rec = r["record"]
        name = " ".join(x for x in (rec.get("given_names"), rec.get("usage_name")) if x)
        rows.append([_e(rec["source_system"]), _e(rec["record_key"]), _e(rec.get("role")), _e(name),
                     _day(rec.get("birth_date")), _e(r["confidence"]), _e(r["why_linked"])])
    return rows


def render_html(doc: Mapping[str, Any]) -> str:
    """The report of one access export (the document :func:`warehouse.access_export.collect` returns)."""
    ex, citizen = doc["export"], doc["citizen"]
    draft = ex["status"] == "brouillon"
    title = "Copie de vos données personnelles (RGPD, article 15)"
    parts = [f'<a class="skip" href="#contenu">Aller au contenu</a><header><h1>{title}</h1>']
    parts.append(f"<p>Établie le {_day(ex['generated_at'])} par {_e(ex['controller'])}"
                 + (f", en réponse à la demande {_e(ex['request_id'])}" if ex["request_id"] else "") + ".</p>")
    if ex["on_behalf_of_minor"]:
        parts.append('<p class="note">Demande présentée par un représentant légal pour un enfant mineur : '
                     "les données d'autres personnes ont été occultées.</p>")
    parts.append("</header>")
    if draft:
        parts.append(f'<div class="draft" role="alert"><strong>Brouillon — ne pas envoyer.</strong> '
                     f"{len(doc['to_confirm'])} fiche(s) doivent être confirmées ou écartées par le délégué à la "
                     'protection des données (voir <a href="#a-confirmer">Fiches à confirmer</a>).</div>')
    toc = [("identite", "Votre identité retenue"), ("traitements", "Les traitements qui vous concernent"),
           ("fiches", "Vos fiches dans les services"), ("foyers", "Vos foyers"),
           ("demarches", "Vos démarches, factures et inscriptions"), ("consultations", "Qui a consulté votre fiche"),
           ("droits", "Vos droits")]
    if draft:
        toc.insert(3, ("a-confirmer", "Fiches à confirmer"))
    parts.append('<nav aria-label="Sommaire"><h2>Sommaire</h2><ol>'
                 + "".join(f'<li><a href="#{i}">{escape(t)}</a></li>' for i, t in toc) + "</ol></nav>")
    parts.append('<main id="contenu">')

    # identity
    prov = {p["attribute"]: p for p in doc["provenance"]}
    rows = []
    for attr, label in _ATTRIBUTES.items():
        value = citizen.get(attr)
        p = prov.get(attr)
        rows.append([escape(label), _day(value) if attr == "birth_date" else _e(value),
                     _e(p["source_system"]) if p else "—", escape(_RULES.get(p["rule"], p["rule"])) if p else "—"])
    parts.append('<section id="identite"><h2>Votre identité retenue</h2>'
                 f"<p>Le référentiel des usagers vous connaît sous l'identifiant {_e(citizen['citizen_id'])}, "
                 f"à partir de {len(doc['records'])} fiche(s) tenue(s) par les services.</p>"
                 + _table("Identité retenue et service d'où vient chaque valeur",
                          ["Donnée", "Valeur", "Service d'origine", "Pourquoi cette valeur"], rows) + "</section>")

    # processings
    parts.append('<section id="traitements"><h2>Les traitements qui vous concernent</h2>')
    for p in doc["processings"]:
        pid = f"t-{p['id']}"
        parts.append(f'<section aria-labelledby="{pid}"><h3 id="{pid}">{escape(p["name"])}</h3><dl>'
                     f"<dt>Finalité</dt><dd>{escape(p['purpose'])}</dd>"
                     f"<dt>Base légale</dt><dd>{escape(p['legal_basis'])}</dd>"
                     f"<dt>Origine des données</dt><dd>{escape(p['source'])}</dd>"
                     f"<dt>Vos fiches et démarches</dt><dd>{p['records']} fiche(s), {p['interactions']} "
                     "démarche(s) ou pièce(s)</dd>")
        if p["sub_purposes"]:
            parts.append(f"<dt>Sous-finalités</dt><dd>{escape('; '.join(p['sub_purposes']))}</dd>")
        if p["special_categories"]:
            parts.append(f"<dt>Données sensibles</dt><dd>{escape('; '.join(p['special_categories']))}</dd>")
        rec = p["recipients"]
        parts.append(f"<dt>Destinataires internes</dt><dd>{_e(', '.join(rec['internal']))}</dd>"
                     f"<dt>Destinataires externes</dt><dd>{_e(', '.join(rec['external']))}</dd>"
                     f"<dt>Sous-traitants</dt><dd>{_e(', '.join(rec['processors']))}</dd>"
                     "<dt>Transferts hors de l'Union européenne</dt>"
                     f"<dd>{_e('; '.join(p['transfers']) or 'aucun')}</dd>"
                     "</dl>")
        parts.append(_table(f"Données et durées de conservation — {p['name']}",
                            ["Catégorie", "Données", "Durée de conservation"],
                            [[escape(d["category"]), escape(d["description"]), escape(d["retention"])]
                             for d in p["data"]]))
        parts.append("</section>")
    parts.append("</section>")

    if draft:
        parts.append('<section id="a-confirmer"><h2>Fiches à confirmer par le délégué à la protection des données</h2>'
                     "<p>Ces fiches ne figurent pas dans la copie tant que le DPO ne les a pas confirmées "
                     "(<code>--confirm</code>) ou écartées (<code>--exclude</code>).</p>"
                     + _table("Fiches incertaines", ["Service", "Fiche", "Rôle", "Nom", "Naissance", "Confiance",
                                                     "Pourquoi le rapprochement"], _records_rows(doc["to_confirm"]))
                     + "</section>")

    # records
    parts.append('<section id="fiches"><h2>Vos fiches dans les services</h2>'
                 "<p>Chaque fiche a été rattachée à vous par comparaison des données ; la confiance dit à quel point "
                 "le rapprochement est sûr, et la dernière colonne pourquoi.</p>"
                 + _table("Fiches rattachées, confiance et raison du rapprochement",
                          ["Service", "Fiche", "Rôle", "Nom", "Naissance", "Confiance", "Pourquoi le rapprochement"],
                          _records_rows(doc["records"])))
    by_table: dict[str, int] = {}
    for r in doc["raw"]:
        by_table[r["table"]] = by_table.get(r["table"], 0) + 1
    parts.append(_table("Données brutes reçues des services (détail dans les fichiers CSV joints)",
                        ["Table du service", "Lignes"], [[escape(t), str(n)] for t, n in sorted(by_table.items())]))
    if doc["organisations"]:
        parts.append(_table("Fonctions dans des associations ou organisations", ["Organisation", "Fonction", "Depuis",
                                                                                  "Jusqu'au"],
                            [[_e(o.get("organisation_name") or o["organisation_key"]), _e(o["role"]),
                              _day(o.get("valid_from")), _day(o.get("valid_to"))] for o in doc["organisations"]]))
    parts.append("</section>")

    # households
    def members(ms: list[Mapping[str, Any]]) -> str:
        if not ms:
            return "aucun autre membre"
        return (f'{len(ms)} autre(s) membre(s) : ' + ", ".join(escape(_HOUSEHOLD_ROLES.get(m["role"], m["role"]))
                                                             for m in ms)
                + ' <span class="redacted">(identités occultées)</span>')

    parts.append('<section id="foyers"><h2>Vos foyers</h2>'
                 + _table("Foyers tels que les services les enregistrent", ["Service", "Foyer", "Votre rôle",
                                                                           "Autres membres"],
                          [[_e(m["source_system"]), _e(m["household_id"]),
                            _e(_HOUSEHOLD_ROLES.get(m["role"], m["role"])),
                            members(m["other_members"])] for m in doc["households"]])
                 + _table("Foyers reconstitués par le référentiel", ["Foyer", "Votre rôle", "Autres membres"],
                          [[_e(f["household_id"]), _e(_HOUSEHOLD_ROLES.get(f["role"], f["role"])),
                            members(f["other_members"])] for f in doc["foyers"]]) + "</section>")

    # interactions
    parts.append('<section id="demarches"><h2>Vos démarches, factures et inscriptions</h2>'
                 + _table("Démarches, factures, paiements, inscriptions, subventions et tickets",
                          ["Date", "Service", "Nature", "Objet", "État", "Montant"],
                          [[_day(i["opened_at"]), _e(i["service"] or i["source_system"]), _e(i["kind"]),
                            _e(i["title"]), _e(i["status"]),
                            _money(i["amount"], i["currency"])]
                           for i in doc["interactions"]]) + "</section>")

    # consultations
    parts.append('<section id="consultations"><h2>Qui a consulté votre fiche, quand et pourquoi</h2>'
                 "<p>Chaque consultation de votre fiche dans le référentiel est journalisée (CJUE, C-579/21). Le nom "
                 "de l'agent n'est indiqué que lorsque le registre des traitements le prévoit ; sinon, seul le fait "
                 "qu'un agent habilité l'a consultée.</p>"
                 + _table("Consultations et exports de votre fiche",
                          ["Date", "Opération", "Finalité", "Canal", "Destinataire", "Agent"],
                          [[_day(c["at"]), _e(_OPERATIONS.get(c["operation"], c["operation"])),
                            _e(c["processing"] or c["purpose"]), _e(c["channel"]), _e(c["recipient"]),
                            _e(c["agent"] or "un agent habilité")] for c in doc["consultations"]]) + "</section>")

    dpo = ex["dpo"]
    parts.append('<section id="droits"><h2>Vos droits</h2><p>Vous pouvez demander la rectification de données '
                 "inexactes, l'effacement de vos données lorsque la loi le permet, la limitation d'un traitement ou "
                 f"vous y opposer, en écrivant au délégué à la protection des données : {_e(dpo['name'])}, "
                 f"{_e(dpo['email'])}. Vous pouvez aussi adresser une réclamation à la CNIL (www.cnil.fr).</p>"
                 "</section></main>")
    return ('<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{'[Brouillon] ' if draft else ''}{title}</title><style>{_CSS}</style></head><body>"
            + "".join(parts) + "</body></html>\n")
