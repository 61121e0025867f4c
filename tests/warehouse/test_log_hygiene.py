"""No personal value reaches the logs, whatever the warehouse layers (and the libraries under them) log."""

from __future__ import annotations

import logging

import pytest

from tests.golden import publish_hand_made
from warehouse.citizen_view import search, show
from warehouse.engine import Warehouse
from warehouse.staging import build_canonical

PERSONAL = ["Dupont", "DUPONT", "Marie", "Élodie", "Lefèvre", "Léa", "Hugo", "marie.dupont@example.fr",
            "Marie.Dupont@Example.fr", "+33612345678", "1982-04-12", "12/04/1982", "rue des Lilas",
            "not-an-email", "1850-01-01"]


def test_no_personal_value_in_logs(family_raw: Warehouse, models, gate, golden_tables,
                                   caplog: pytest.LogCaptureFixture) -> None:
    # Bad rows make the gate produce failures, the path most likely to echo a value.
    family_raw.execute("INSERT INTO raw_family.members VALUES ('X1', 'FAM9', 'enfant', 'Dupont', NULL, 'Léa', "
                       "'F', '1850-01-01', 'not-an-email')")
    caplog.set_level(logging.DEBUG)
    counts = build_canonical(family_raw, models, "run-1", gate=gate)
    links, citizens = golden_tables()
    publish_hand_made(family_raw, "res-1", links=links, citizens=citizens,
                       run_row={"model_version": "m", "records": 7, "pairs_scored": 1, "citizens": 4,
                                "threshold": 0.9})
    assert search(family_raw, "marie dupont 12/04/1982", reader="agent", purpose="guichet-unique")
    assert show(family_raw, "C-MARIE", reader="agent", purpose="guichet-unique") is not None

    assert sum(c.quarantined for c in counts) >= 2  # the bad member and its household row
    assert caplog.records, "the layers log their counts"
    leaked = {v for r in caplog.records for v in PERSONAL if v in r.getMessage()}
    assert leaked == set()
