"""Survivorship rules as data: which value of a citizen's linked records becomes the golden one.

For each golden attribute, the candidates are the linked records holding a usable value (not
empty, not a placeholder: ``matching/placeholders.json``). They are ranked by the criteria of
``order``, best first; the smallest record key always closes the ranking so a tie
resolves the same way on every run (the ``tie_break`` rule). Criteria:

- ``certification``: the record's proof level (0 declaratif < 1 justificatif < 2 franceconnect);
- ``source_priority``: the attribute's ``source_priority`` list, first silo best (silos not
  listed come after, all equal);
- ``recency``: the record's ``updated_at``, newest first;
- ``frequency``: how many of the citizen's records hold the same value (compared standardised).

``conflict``: disagreement on this attribute is flagged on the golden record (current values
that silos should agree on). ``worklist``: records whose value differs from the golden one go to
their silo's discrepancy worklist. ``fallback``: when no record holds the attribute, the
named attribute stands in for it (a birth name is not written by silos that only hold one name);
such a value ranks below any record that holds the attribute itself, and its rule says
``fallback``.

A data engineer edits this file (or passes another mapping to ``matching.survivorship.golden``).
"""

from __future__ import annotations

from typing import Any

CRITERIA = ("certification", "source_priority", "recency", "frequency")
DEFAULT_ORDER = CRITERIA

# Silos ordered by how well they keep the postal address: the family portal checks it with each
# school-year file (quotient familial), CRMs are updated by the citizen, finance keeps the
# address a debtor had when first invoiced.
_ADDRESS_SOURCES = ["family", "demarches", "salesforce", "servicenow", "associations", "finance"]
# Identity as written by the silo closest to a civil-status document.
_IDENTITY_SOURCES = ["family", "demarches", "associations", "finance", "salesforce", "servicenow"]

RULES: dict[str, dict[str, Any]] = {
    "given_names": {"order": DEFAULT_ORDER, "source_priority": _IDENTITY_SOURCES, "conflict": False,
                    "worklist": False},
    "birth_name": {"order": DEFAULT_ORDER, "source_priority": _IDENTITY_SOURCES, "conflict": False,
                   "worklist": True, "fallback": "usage_name"},
    "usage_name": {"order": DEFAULT_ORDER, "source_priority": _IDENTITY_SOURCES, "conflict": True,
                   "worklist": True},
    "sex": {"order": DEFAULT_ORDER, "source_priority": _IDENTITY_SOURCES, "conflict": False, "worklist": False},
    "birth_date": {"order": DEFAULT_ORDER, "source_priority": _IDENTITY_SOURCES, "conflict": False,
                   "worklist": True},
    "email": {"order": DEFAULT_ORDER, "source_priority": ["family", "demarches", "salesforce", "servicenow",
                                                          "associations", "finance"],
              "conflict": True, "worklist": True},
    "phone": {"order": DEFAULT_ORDER, "source_priority": ["family", "demarches", "salesforce", "servicenow",
                                                          "associations", "finance"],
              "conflict": True, "worklist": True},
    # street line, postcode and commune survive as one block from one record
    "address": {"order": DEFAULT_ORDER, "source_priority": _ADDRESS_SOURCES, "conflict": True,
                "worklist": True},
}


def validate(rules: dict[str, dict[str, Any]]) -> None:
    """Raise ValueError when a rule set names an unknown attribute or criterion."""
    unknown = set(rules) - set(RULES)
    if unknown:
        raise ValueError(f"survivorship rules: unknown attribute(s) {sorted(unknown)}")
    for attr, rule in rules.items():
        bad = [c for c in rule.get("order", DEFAULT_ORDER) if c not in CRITERIA]
        if bad:
            raise ValueError(f"survivorship rules for {attr}: unknown criteria {bad} (one of {CRITERIA})")
        if "fallback" in rule and rule["fallback"] not in RULES:
            raise ValueError(f"survivorship rules for {attr}: unknown fallback attribute")
