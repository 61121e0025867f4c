"""A few defects of the kind real silos deliver, seeded into a built sandbox (for the demo).

Real exports are never clean: an impossible date typed into a spreadsheet, a row cut short, a
social-security number pasted into the wrong column, a malformed e-mail in a portal. The demo
shows what the hub does with each (quarantined with a reason, the rest loaded, the counts adding
up). The defective rows are not part of the ground truth.
"""

from __future__ import annotations

import csv
import json
import logging
from datetime import date
from pathlib import Path

log = logging.getLogger(__name__)

# A syntactically valid, fictional NIR (key = 97 - n mod 97): it must never be stored.
FICTIONAL_NIR = "1 85 05 78 006 084 91"


def belgian_national_number(birth: date, order: int, compact: bool = False) -> str:
    """A Belgian national register number (rijksregisternummer / numéro national) with a valid key:
    YY.MM.DD-XXX.CC, CC = 97 - (YYMMDDXXX mod 97), with a 2 in front of the nine digits for
    births from 2000. ``order`` is odd for men, even for women. ``compact``: the 11 digits alone."""
    if not 1 <= order <= 998:
        raise ValueError("the order number is 001-998")
    base = f"{birth:%y%m%d}{order:03d}"
    key = 97 - int(("2" if birth.year >= 2000 else "") + base) % 97
    if compact:
        return f"{base}{key:02d}"
    return f"{base[0:2]}.{base[2:4]}.{base[4:6]}-{base[6:9]}.{key:02d}"


# Fictional Belgian numbers with a valid key (one born before 2000, one after): never stored either.
FICTIONAL_NATIONAL_NUMBERS = (belgian_national_number(date(1985, 7, 30), 33),
                              belgian_national_number(date(2004, 2, 27), 122, compact=True))


def inject_defects(root: Path, country: str = "FR") -> dict[str, int]:
    """Append defective rows to the associations export and spoil one family-portal e-mail.

    ``country`` "BE" (a Brussels sandbox): Belgian names, and a national register number pasted into
    the phone field of one row and into the address of another (in place of the NIR).
    Returns the number of defects per silo. Idempotent on a freshly built sandbox only.
    """
    root = Path(root)
    dirigeants = root / "associations" / "dirigeants.csv"
    with open(dirigeants, encoding="cp1252", newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    header, body = rows[0], rows[1:]
    next_id = max(int(r[0]) for r in body) + 1
    rna = body[0][1]
    template = dict(zip(header, body[0], strict=True))

    def row(**changes: str) -> list[str]:
        return [changes.get(c, template[c]) for c in header]

    if country.upper() == "BE":
        born, compact = FICTIONAL_NATIONAL_NUMBERS
        bad = [
            row(id=str(next_id), nom="JANSSENS", prenom="Lotte", date_naissance="31/02/1985"),  # impossible date
            [str(next_id + 1), rna, "Secrétaire", "M.", "VAN DEN BOSSCHE"],  # a row cut short
            row(id=str(next_id + 2), nom="EL AMRANI", prenom="Karim", telephone=born),  # national number as phone
            row(id=str(next_id + 3), nom="Peeters", prenom="Jan",
                adresse=f"Rue Haute 12 (NN {compact})"),  # pasted into the address
        ]
    else:
        bad = [
            row(id=str(next_id), nom="ROUSSEL", prenom="Adèle", date_naissance="31/02/1985"),  # impossible date
            [str(next_id + 1), rna, "Secrétaire", "M.", "PERRIN"],  # a row cut short
            row(id=str(next_id + 2), nom="GARNIER", prenom="Hugo", telephone=FICTIONAL_NIR),  # NIR in a field
        ]
    with open(dirigeants, "a", encoding="cp1252", newline="") as fh:
        csv.writer(fh, delimiter=";", lineterminator="\r\n").writerows(bad)

    responsables = root / "family" / "responsables.json"
    people = json.loads(responsables.read_text(encoding="utf-8"))
    target = next(p for p in people if p.get("email"))
    target["email"] = target["email"].replace("@", "@@", 1)  # a malformed e-mail the quality gate rejects
    responsables.write_text(json.dumps(people, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    log.info("sandbox: %d defective association rows and 1 malformed family e-mail seeded", len(bad))
    return {"associations": len(bad), "family": 1}
