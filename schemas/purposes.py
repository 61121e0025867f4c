"""Once-only reads ("Dites-le-nous une fois"): which golden attributes each service may prefill.

Data minimisation (GDPR Art. 5-1-c): a service reads only the attributes its processing needs.
The source of truth is the register of processing (``schemas/register.toml``): a service may
prefill what a ``[[processing.access]]`` rule with ``prefill`` grants it, for that processing's
purpose (recorded in the access log) and legal basis. This module is the view the prefill reads;
an unknown service reads nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from schemas.register import load_register

IDENTITY = ("given_names", "birth_name", "usage_name", "sex", "birth_date")
CONTACT = ("email", "phone")
ADDRESS = ("address_line", "postcode", "city")


def _entries() -> dict[str, dict[str, Any]]:
    register = load_register()
    return {
        name: {
            "purpose": processing.purpose,
            "legal_basis": processing.legal_basis.text,
            "attributes": access.prefill,
            "processing": processing.id,
            "collectivites": access.collectivites,
            "label": register.services[name].label,
        }
        for name, (processing, access) in register.prefill_services().items()
    }


class _Services(Mapping[str, dict[str, Any]]):
    """service -> {purpose, legal_basis, attributes, processing, collectivites, label}, read from the
    register each time (so an edited register applies without a restart)."""

    def __getitem__(self, name: str) -> dict[str, Any]:
        return _entries()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(_entries())

    def __len__(self) -> int:
        return len(_entries())


SERVICES: Mapping[str, dict[str, Any]] = _Services()


def service(name: str) -> dict[str, Any]:
    """The service's entry; KeyError naming the known services when it has none."""
    entries = _entries()
    try:
        return entries[name]
    except KeyError:
        raise KeyError(f"unknown service {name!r} (one of {', '.join(sorted(entries))})") from None
