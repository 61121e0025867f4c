"""The suppression list's keys: normalised so a silo's other spelling still matches, with the name in
every contact key so a family's shared e-mail or phone suppresses nobody else; no key, no load."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pytest

from schemas.contract import PERSON_RECORD, SUPPRESSION, arrow_schema
from warehouse.engine import Warehouse
from warehouse.gdpr_suppression import Suppression, SuppressionKeyMissing, entries, identity_keys, load

KEY = b"k" * 32
ERASED = {"record_key": "finance:tiers/1", "given_names": "Élodie Marie", "usage_name": "Lefèvre",
          "birth_date": date(1984, 3, 12), "email": "E.Lefevre@example.org", "phone": "06 12 34 56 78"}


def _suppression() -> Suppression:
    return Suppression(KEY, frozenset(entries(KEY, [ERASED])))


@pytest.mark.parametrize("record", [
    {"record_key": "family:responsable/9", "given_names": "ELODIE", "usage_name": "LEFEVRE",
     "birth_date": date(1984, 3, 12)},
    {"record_key": "salesforce:contact/3", "given_names": "Elodie", "usage_name": "Lefevre",
     "email": "e.lefevre@example.org "},
    {"record_key": "servicenow:sys_user/7", "given_names": "élodie", "birth_name": "lefèvre",
     "phone": "+33 6 12 34 56 78"},
    {"record_key": "finance:tiers/1"},
], ids=["name-birth-date-other-spelling", "name-email-other-case", "birth-name-phone-e164", "same-record-key"])
def test_the_erased_person_under_another_spelling_is_suppressed(record):
    assert _suppression().matches(record)


@pytest.mark.parametrize("record", [
    {"record_key": "family:enfant/10", "given_names": "Hugo", "usage_name": "Lefèvre",
     "email": "E.Lefevre@example.org", "phone": "0612345678", "birth_date": date(2015, 1, 2)},
    {"record_key": "finance:tiers/2", "given_names": "Élodie", "usage_name": "Lefèvre",
     "birth_date": date(1990, 1, 1)},
], ids=["child-sharing-the-parents-contacts", "namesake-born-another-day"])
def test_others_are_not_suppressed(record):
    assert not _suppression().matches(record)


def test_keys_hold_no_value_in_clear():
    hashes = entries(KEY, [ERASED])
    assert len(hashes) >= 4 and all(len(h) == 64 for h in hashes)
    assert set(hashes.values()) == {kind for kind, _ in identity_keys(ERASED)} == {
        "record", "name_birth", "name_email", "name_phone"}
    assert not any("lefevre" in h.lower() for h in hashes)


def test_a_list_with_entries_and_no_key_stops_the_load(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_SUPPRESSION_KEY", raising=False)
    monkeypatch.delenv("HUB_SUPPRESSION_KEY_FILE", raising=False)
    with Warehouse(f"duckdb:///{tmp_path / 'hub.duckdb'}") as wh:
        assert load(wh, tmp_path) is None  # no list: nothing to filter
        wh.write(SUPPRESSION, pa.Table.from_pylist(
            [{"key_hash": "0" * 64, "key_kind": "record", "erasure_id": "E1", "request_id": None,
              "created_at": datetime.now(UTC)}], schema=arrow_schema(SUPPRESSION)))
        with pytest.raises(SuppressionKeyMissing, match="nothing is loaded"):
            load(wh, tmp_path / "elsewhere")
        monkeypatch.setenv("HUB_SUPPRESSION_KEY", "a key from the secrets store")
        assert load(wh, None) is not None


def test_rows_pointing_at_a_suppressed_record_go_with_it():
    s = _suppression()
    people = pa.Table.from_pylist([ERASED | {"source_system": "finance"}], schema=arrow_schema(PERSON_RECORD))
    assert s.rows(PERSON_RECORD, people) == {0}
    from schemas.contract import INTERACTION

    inter = pa.table({"record_key": ["finance:tiers/1", "finance:tiers/2"]})
    assert s.rows(INTERACTION, inter) == {0}
    assert s.dropped == {"person_record": 1, "interaction": 1}
