"""The associations silo: three CSV files exported from an office tool.

``;``-separated, cp1252, CRLF, header row, dates ``dd/mm/yyyy``, decimal comma with a space (or
no-break space) thousands separator; fields holding ``;``, quotes or line breaks are quoted the
way Excel / LibreOffice do (double quotes, inner quotes doubled). Layout in docs/silos.md.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from sandbox.observations import _REF_S, Observations

log = logging.getLogger(__name__)

ENCODING = "cp1252"
FILES = ("associations.csv", "dirigeants.csv", "demandes_subvention.csv")
ASSOCIATION_COLUMNS = ("rna", "siret", "nom", "adresse", "code_postal", "commune", "date_creation")
DIRIGEANT_COLUMNS = ("id", "rna", "fonction", "civilite", "nom", "prenom", "date_naissance", "email",
                     "telephone", "adresse", "code_postal", "commune", "date_maj")
DEMANDE_COLUMNS = ("numero", "rna", "dirigeant_id", "objet", "montant_demande", "montant_accorde",
                   "date_depot", "date_decision", "statut")
_OBJETS = ("Fonctionnement annuel", "Fête de quartier", "Achat de matériel", "Stage d'été; sorties",
           "Rénovation du local", "Tournoi régional", "Festival \"Les Canuts\"", "Aide à l'emploi",
           "Projet éducatif", "Déplacement compétition")


def fr_date(d: date | None) -> str:
    """``dd/mm/yyyy`` (empty for None)."""
    return "" if d is None else d.strftime("%d/%m/%Y")


def fr_amount(cents: int, nbsp: bool = False) -> str:
    """``1 234,50``: decimal comma, thousands separated by a space (or a no-break space)."""
    sep = "\xa0" if nbsp else " "
    units = f"{cents // 100:,}".replace(",", sep)
    return f"{units},{cents % 100:02d}"


def association_tables(obs: Observations) -> dict[str, list[dict[str, str]]]:
    """The three files' rows as strings, exactly as written (no ground truth)."""
    rng = np.random.default_rng([obs.seed, 4])
    a = obs.associations.to_pylist()
    rna_of = [row["rna"] for row in a]
    associations = [
        {"rna": r["rna"], "siret": r["siret"] or "", "nom": r["nom"], "adresse": r["adresse"],
         "code_postal": r["code_postal"], "commune": r["commune"], "date_creation": fr_date(r["date_creation"])}
        for r in a
    ]
    d = obs.dirigeants.drop_columns(["person_id"]).to_pylist()
    dirigeants = [
        {"id": str(r["id"]), "rna": rna_of[r["association"]], "fonction": r["fonction"], "civilite": r["civilite"],
         "nom": r["nom"], "prenom": r["prenom"], "date_naissance": fr_date(r["date_naissance"]),
         "email": r["email"] or "", "telephone": r["telephone"] or "", "adresse": r["adresse"],
         "code_postal": r["code_postal"], "commune": r["commune"], "date_maj": fr_date(r["date_maj"])}
        for r in d
    ]
    # Who files for each association: its first dirigeant (usually the président).
    filer: dict[int, int] = {}
    for r in d:
        filer.setdefault(r["association"], r["id"])

    demandes: list[dict[str, str]] = []
    today = _REF_S.astype("datetime64[D]").astype(date)
    n_a = len(a)
    per = rng.choice([0, 1, 2], size=n_a, p=[0.25, 0.55, 0.2])
    for i in range(n_a):
        for _ in range(int(per[i])):
            age_days = int(rng.integers(3, 540))
            depot = date.fromordinal(today.toordinal() - age_days)
            asked = int(rng.integers(200, 40_000)) * 100 + int(rng.choice([0, 50]))
            r = rng.random()
            if age_days < 30:
                statut = "déposée" if r < 0.6 else "en instruction"
            elif age_days < 120:
                # Some requests sit "en instruction" past the two-month deadline (silence vaut acceptation).
                statut = "en instruction" if r < 0.45 else ("accordée" if r < 0.8 else "refusée")
            else:
                statut = "en instruction" if r < 0.08 else ("accordée" if r < 0.75 else "refusée")
            decided = statut in ("accordée", "refusée")
            decision = date.fromordinal(depot.toordinal() + int(rng.integers(20, min(age_days, 110) + 21)))
            if decided and decision > today:
                decision = today
            granted = int(asked * rng.choice([1.0, 0.8, 0.5])) // 100 * 100 if statut == "accordée" else 0
            demandes.append({
                "numero": f"SUB-{depot.year}-{len(demandes) + 1:05d}", "rna": rna_of[i],
                "dirigeant_id": str(filer[i]), "objet": _OBJETS[int(rng.integers(0, len(_OBJETS)))],
                "montant_demande": fr_amount(asked, nbsp=bool(rng.random() < 0.3)),
                "montant_accorde": fr_amount(granted) if decided else "",
                "date_depot": fr_date(depot), "date_decision": fr_date(decision) if decided else "",
                "statut": statut,
            })
    return {"associations.csv": associations, "dirigeants.csv": dirigeants,
            "demandes_subvention.csv": demandes}


def best_fit(value: Any) -> Any:
    """A text as a Windows office tool saves it in cp1252: letters the code page lacks (Polish ź,
    Romanian ș, Turkish ğ / ı) written as their closest Latin letter ("best fit"), else "?"."""
    if not isinstance(value, str):
        return value
    try:
        value.encode(ENCODING)
        return value
    except UnicodeEncodeError:
        from sandbox.population import ascii_fold

        out = []
        for ch in value:
            try:
                ch.encode(ENCODING)
                out.append(ch)
            except UnicodeEncodeError:
                out.append(ascii_fold(ch) or "?")
        return "".join(out)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> int:
    """Write one office-tool CSV; returns the number of data rows."""
    n = 0
    with open(path, "w", encoding=ENCODING, newline="") as fh:
        writer = csv.writer(fh, delimiter=";", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([best_fit(row[c]) for c in columns])
            n += 1
    return n


def write_associations(folder: Path, tables: dict[str, list[dict[str, str]]]) -> dict[str, int]:
    """The three CSV files in ``folder``; returns data rows per file."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = {"associations.csv": ASSOCIATION_COLUMNS, "dirigeants.csv": DIRIGEANT_COLUMNS,
               "demandes_subvention.csv": DEMANDE_COLUMNS}
    counts = {name: write_csv(folder / name, columns[name], tables[name]) for name in FILES}
    log.info("associations: wrote %s", counts)
    return counts


