"""Once-only reads ("Dites-le-nous une fois"): which golden attributes each service may prefill.

Data minimisation (GDPR Art. 5-1-c): a service reads only the attributes its processing needs.
Each entry: the processing purpose (as recorded in the access log and the register), its legal
basis, and the golden attributes (``golden.citizen`` columns) the service's forms may prefill.
A data engineer or the DPO edits this list; an unknown service reads nothing.
"""

from __future__ import annotations

from typing import Any

IDENTITY = ("given_names", "birth_name", "usage_name", "sex", "birth_date")
CONTACT = ("email", "phone")
ADDRESS = ("address_line", "postcode", "city")

SERVICES: dict[str, dict[str, Any]] = {
    "inscription-scolaire": {
        "purpose": "inscription scolaire et périscolaire",
        "legal_basis": "mission d'intérêt public (art. 6-1-e), Code de l'éducation L.131-6",
        "attributes": IDENTITY + CONTACT + ADDRESS,
    },
    "facturation": {
        "purpose": "facturation des services publics locaux",
        "legal_basis": "obligation légale (art. 6-1-c), CGCT L.1611-5",
        "attributes": ("given_names", "usage_name", *CONTACT, *ADDRESS),
    },
    "subvention-association": {
        "purpose": "instruction des demandes de subvention",
        "legal_basis": "mission d'intérêt public (art. 6-1-e), loi 2000-321 art. 9-1",
        "attributes": ("given_names", "usage_name", *CONTACT),
    },
    "etat-civil": {
        "purpose": "délivrance d'actes d'état civil",
        "legal_basis": "obligation légale (art. 6-1-c), Code civil art. 34 s.",
        "attributes": IDENTITY + ADDRESS,
    },
    "accueil-usager": {
        "purpose": "accueil et orientation des usagers",
        "legal_basis": "mission d'intérêt public (art. 6-1-e)",
        "attributes": ("given_names", "usage_name", *CONTACT),
    },
}


def service(name: str) -> dict[str, Any]:
    """The service's entry; KeyError naming the known services when it has none."""
    try:
        return SERVICES[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r} (one of {', '.join(sorted(SERVICES))})") from None
