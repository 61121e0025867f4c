"""The marts' data dictionary, generated from ``schemas/marts.py``: one entry per column of every
``marts`` table with its meaning, its type on DuckDB and on PostgreSQL, its source, and whether it
is personal data (and how it is protected). Markdown, CSV (French spreadsheet: ``;``, BOM added
by the writer) or a self-contained HTML page."""

from __future__ import annotations

import csv
import io
from html import escape

from schemas.contract import SQL_TYPES, Table
from schemas.marts import AGGREGATE, EVENT, MARTS, MIN_CELL, NONE, PSEUDONYMISED, QUASI, MartColumn, mart_of

PRIVACY_FR = {
    PSEUDONYMISED: "donnée personnelle pseudonymisée (empreinte à clé, une clé par mart)",
    QUASI: "donnée personnelle pseudonymisée, attribut généralisé (quasi-identifiant)",
    EVENT: "donnée personnelle pseudonymisée (ligne d'une personne sous pseudonyme)",
    AGGREGATE: f"non personnelle : agrégat d'au moins {MIN_CELL} personnes ou masqué",
    NONE: "non personnelle",
}
HEADERS = ["mart", "table", "column", "meaning", "type (logical)", "DuckDB", "PostgreSQL", "nullable", "source",
           "personal", "privacy"]


def entries() -> list[dict[str, str]]:
    """One dict per column of every marts table, in table and column order."""
    out = []
    for mart in MARTS:
        for table in mart.tables:
            for c in table.columns:
                privacy = c.privacy if isinstance(c, MartColumn) else NONE
                out.append({
                    "mart": mart.name, "table": f"{table.schema}.{table.name}", "column": c.name,
                    "meaning": c.meaning, "type (logical)": c.type, "DuckDB": SQL_TYPES[c.type][0],
                    "PostgreSQL": SQL_TYPES[c.type][1], "nullable": "yes" if c.nullable else "no",
                    "source": c.source if isinstance(c, MartColumn) else "",
                    "personal": "yes" if c.personal else "no", "privacy": PRIVACY_FR[privacy],
                })
    return out


def _tables() -> list[Table]:
    return [t for m in MARTS for t in m.tables]


def render(fmt: str, *, level: int = 1) -> str:
    """The dictionary as ``md``, ``csv`` or ``html``; ``level``: the Markdown heading level of its title."""
    rows = entries()
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=HEADERS, delimiter=";", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "md":
        h = "#" * level
        lines = [f"{h} Data dictionary of the BI marts (schema `marts`)", "",
                 "Generated from `schemas/marts.py` (`hub warehouse dictionary --format md`). "
                 f"No published aggregate cell counts fewer than {MIN_CELL} people.", ""]
        for t in _tables():
            mart = mart_of(t)
            key = " (pseudonym key: the `" + mart.name + "` mart's own)" if mart.keyed else " (no pseudonym)"
            lines += [f"{h}# marts.{t.name}", "", f"{t.meaning}{key}", "",
                      "| column | type (DuckDB / PostgreSQL) | meaning | source | personal |",
                      "|---|---|---|---|---|"]
            for r in (r for r in rows if r["table"] == f"marts.{t.name}"):
                cell = [f"`{r['column']}`", f"{r['DuckDB']} / {r['PostgreSQL']}", r["meaning"], r["source"],
                        r["privacy"] if r["personal"] == "yes" else "no"]
                lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cell) + " |")
            lines.append("")
        return "\n".join(lines)
    if fmt == "html":
        parts = ['<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
                 '<meta name="viewport" content="width=device-width, initial-scale=1">'
                 "<title>Dictionnaire des données des marts</title><style>"
                 "body{font-family:system-ui,Arial,sans-serif;color:#1b1b1b;max-width:80rem;margin:auto;padding:1rem}"
                 "table{border-collapse:collapse;width:100%;margin-bottom:2rem}caption{text-align:left;font-weight:600}"
                 "th,td{border:1px solid #767676;padding:.3rem .5rem;text-align:left;vertical-align:top}"
                 "th{background:#e8edf5}.defile{overflow-x:auto}</style></head><body>"
                 "<h1>Dictionnaire des données des marts</h1>"
                 f"<p>Schéma <code>marts</code>. Aucun agrégat publié ne compte moins de {MIN_CELL} personnes.</p>"]
        for t in _tables():
            parts.append(f'<h2 id="{t.name}">marts.{escape(t.name)}</h2><p>{escape(t.meaning)}</p>'
                         f'<div class="defile" role="region" tabindex="0" aria-label="Colonnes de {t.name}"><table>'
                         f"<caption>Colonnes de marts.{escape(t.name)}</caption><thead><tr>"
                         + "".join(f'<th scope="col">{h}</th>' for h in
                                   ("Colonne", "Type DuckDB", "Type PostgreSQL", "Signification", "Source",
                                    "Données personnelles"))
                         + "</tr></thead><tbody>")
            for r in (r for r in rows if r["table"] == f"marts.{t.name}"):
                parts.append(f'<tr><th scope="row"><code>{escape(r["column"])}</code></th><td>{r["DuckDB"]}</td>'
                             f'<td>{r["PostgreSQL"]}</td><td>{escape(r["meaning"])}</td><td>{escape(r["source"])}'
                             f'</td><td>{escape(r["privacy"])}</td></tr>')
            parts.append("</tbody></table></div>")
        parts.append("</body></html>\n")
        return "".join(parts)
    raise ValueError(f"unknown dictionary format {fmt!r} (md, csv or html)")
