"""The national-id screen (connectors.identifiers): every way a NIR or a Belgian national number is
written is caught in every kind of text field, with or without a valid key, and masked out of
quarantine payloads; phones, IBANs, SIRET, invoice numbers, addresses and dates are not; the
settings' [privacy] patterns and column names extend it, in every connector's guard."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pytest

from connectors.base import Collector, Guard, payload_json
from connectors.identifiers import (
    MASK,
    ForbiddenIds,
    column_key,
    contains_national_id,
    forbidden_ids,
    forbidden_ids_from_settings,
    is_national_id_column,
    looks_like_id_column,
    mask_national_ids,
    national_id_mask,
    national_id_rows,
    using_forbidden_ids,
)
from hub.settings import SettingsError, settings_from_dict

NBSP, NNBSP = "\u00a0", "\u202f"


def nir_key(body: str) -> str:
    return f"{97 - int(body.upper().replace('2A', '19').replace('2B', '18')) % 97:02d}"


def be_key(body: str, born_2000: bool = False) -> str:
    return f"{97 - int(('2' if born_2000 else '') + body) % 97:02d}"


BODY = ["1", "84", "12", "75", "115", "423"]  # the NIR: its key would be 66; 57 is wrong
assert nir_key("".join(BODY)) != "57"
VALID = nir_key("".join(BODY))

NIR_FORMS = {
    "issue_wrong_key_spaces": "1 84 12 75 115 423 57",
    "issue_wrong_key_plain": "184127511542357",
    "issue_13_digits": "1841275115423",
    "issue_dashes": "1-84-12-75-115-423-57",
    "issue_no_break_spaces": NBSP.join([*BODY, "57"]),
    "valid_spaces": " ".join([*BODY, VALID]),
    "valid_dots": ".".join([*BODY, VALID]),
    "valid_slashes": "/".join([*BODY, VALID]),
    "narrow_no_break_spaces": NNBSP.join([*BODY, "57"]),
    "mixed_separators": "1.84.12.75.115.423-57",
    "spaced_dash_before_key": "1 84 12 75 115 423 - 57",
    "key_apart": "1841275115423 57",
    "13_digits_spaced": " ".join(BODY),
    "13_digits_dotted": ".".join(BODY),
    "corsica_2A": "2 69 09 2A 123 456 " + nir_key("269092A123456"),
    "corsica_2B_plain_wrong_key": "171022B04512301",
    "corsica_13": "171022B045123",
    "temporary_sex_3": "3 84 12 75 115 423 10",
    "temporary_sex_7_plain": "784127511542399",
    "temporary_sex_8_13": "8841275115423",
    "insee_month_20": "1 84 20 75 115 423 11",
    "insee_month_42": "2 84 42 99 115 423",
    "insee_month_63": "263639911542311",
    "overseas_97": "1 84 12 97 415 423 12",
}
BE_FORMS = {
    "official_valid": "85.07.30-033." + be_key("850730033"),
    "official_wrong_key": "85.07.30-033.01",
    "plain_valid": "850730033" + be_key("850730033"),
    "plain_wrong_key": "85073003301",
    "born_2000_valid": "05.07.30-033." + be_key("050730033", born_2000=True),
    "born_2000_plain_wrong_key": "05073003301",
    "bis_month_plus_20": "85 27 30 033 01",
    "bis_month_plus_40": "85/47/30/033/01",
    "unknown_month": "85.00.00-033.01",
    "spaced": "850730 033 01",
    "dashed_order": "850730-033-01",
    "no_break_spaces": NBSP.join(["850730", "033", "01"]),
    "narrow_no_break_spaces": NNBSP.join(["85", "07", "30", "033", "01"]),
    "key_apart": "850730033 01",
    "order_and_key_run_on": "850730-03301",
    "phone_like_with_valid_key": "331012033" + be_key("331012033"),
    "dated_with_valid_key": "201012033" + be_key("201012033", born_2000=True),
}
FORMS = {**{f"nir_{k}": v for k, v in NIR_FORMS.items()}, **{f"be_{k}": v for k, v in BE_FORMS.items()}}

# where a number turns up: a whole field, or inside one (the given name, e-mail, phone, city,
# subsidy subject, and a comment)
FIELDS = {
    "given_name": lambda v: f"Jean {v}",
    "email": lambda v: f"{v.replace(' ', '').replace(NBSP, '').replace(NNBSP, '')}@free.fr",
    "phone": lambda v: v,
    "city": lambda v: f"{v} Paris",
    "subsidy_subject": lambda v: f"Subvention 2026, NIR {v} à vérifier",
    "comment": lambda v: f"NIR {v}. Rappeler.",
}


@pytest.mark.parametrize("value", list(FORMS.values()), ids=list(FORMS))
def test_every_form_is_caught_in_every_field_kind(value):
    table = pa.table({name: [make(value) if name == field else "rien à signaler" for field in FIELDS]
                      for name, make in FIELDS.items()})
    # row i carries the number in field i only: each is found, in that field
    assert national_id_rows(table) == {i: name for i, name in enumerate(FIELDS)}
    for make in FIELDS.values():
        text = make(value)
        masked = mask_national_ids(text)
        assert MASK in masked
        # nothing of the number's digits survives the mask
        digits = re.sub(r"\D", "", value)
        assert digits not in re.sub(r"\D", "", masked)


NON_IDS = {
    "phone_fr_e164": "+33 6 12 34 56 78",
    "phone_fr": "06 12 34 56 78",
    "phone_fr_plain": "0612345678",
    "phone_fr_dots": "06.12.34.56.78",
    "phone_fr_0033": "0033 6 12 34 56 78",
    "phone_fr_0033_plain": "0033612345678",
    "phone_fr_e164_plain": "+33612345678",
    "phone_fr_no_plus": "33612345678",
    "phone_fr_landline_no_plus": "33112345678",
    "phone_fr_two": "06 12 34 56 78 / 01 84 12 75 11",
    "phone_fr_trunk": "+33 (0)1 84 12 75 11",
    "phone_be_mobile": "+32 471 23 45 67",
    "phone_be_mobile_plain": "+32471234567",
    "phone_be_mobile_no_plus": "32471234567",
    "phone_be_mobile_no_plus_valid_key": "324712033" + be_key("324712033"),
    "phone_be_mobile_0032": "0032 471 23 45 67",
    "phone_be_mobile_0032_plain": "0032471234567",
    "phone_be_national": "0471 23 45 67",
    "phone_be_slashes": "0471/23.45.67",
    "phone_be_brussels": "02 512 34 56",
    "phone_be_brussels_e164": "+32 2 512 34 56",
    "phone_chain_then_numbers": "0033 6 41 44 52 08 09 102 02 51",
    "iban_fr": "FR76 3000 6000 0112 3456 7890 189",
    "iban_fr_plain": "FR7630006000011234567890189",
    "iban_be": "BE68 5390 0754 7034",
    "iban_be_plain": "BE68539007547034",
    "siret": "73282932000074",
    "siret_spaced": "732 829 320 00074",
    "siren": "732 829 320",
    "vat_fr": "FR12345678901",
    "vat_be": "BE0123.456.789",
    "rna": "W751000001",
    "invoice_dashed": "FAC-2024-000123",
    "invoice_dated": "20240315000123",
    "invoice_year_seq": "F2024-000123",
    "invoice_dated_11": "Réf. 20240308460",
    "invoice_year_7": "20223000654",
    "timestamp_digits": "20240315103000",
    "postcode_house": "12 rue des Lilas 75011 Paris",
    "postcode_house_be": "Rue Neuve 123 bte 4, 1000 Bruxelles",
    "date_then_postcode": "25/09/2018 13001",
    "month_then_postcode": "né en 09/2018 13001 Marseille",
    "dates": "du 12/03/1984 au 15/03/2024",
    "iso_timestamp": "2026-01-05T09:00:00Z",
    "amount": "1 234 567,89 €",
    "amount_dot": "632424356.73",
    "amounts_chain": "064 107 50 32 384\u202f726\u202f933,01",
    "numbers_chain": "Facture n° 2016586985 639 080 812 75206",
    "servicenow_sys_id": "68060036771e4180376baab4d339e85f",
    "servicenow_sys_id_valid_key": "7257510145474e40727e3991b683f679",
    "salesforce_id": "0035g00000ABCdeAAB",
}


@pytest.mark.parametrize("value", list(NON_IDS.values()), ids=list(NON_IDS))
def test_lookalikes_are_not_caught(value):
    assert not contains_national_id(value)
    assert not national_id_mask(pa.array([value])).any()
    assert mask_national_ids(value) == value


def test_the_vectorised_screen_and_the_mask_agree():
    # a row the column-wise screen sets aside is one whose payload the mask cleans, and the reverse
    values = [*FORMS.values(), *NON_IDS.values(), *(f"x{v}" for v in FORMS.values()),
              *(f"{v}x" for v in FORMS.values()), *(f"{v} 5" for v in FORMS.values()),
              *(f"+{v}" for v in FORMS.values()), *(f"{v}e4180376baab4d339e85f" for v in FORMS.values()), None, ""]
    flagged = national_id_mask(pa.array(values))
    assert flagged.tolist() == [v is not None and contains_national_id(v) for v in values]


def test_glued_to_a_letter_needs_a_valid_key():
    good = "".join(BODY) + VALID
    assert contains_national_id(f"dupont{good}@free.fr")
    assert not contains_national_id("dupont184127511542357@free.fr")  # wrong key: a reference, maybe
    assert contains_national_id("dupont 184127511542357@free.fr")
    assert contains_national_id(f"{good}xyz") and not contains_national_id("184127511542357xyz")
    assert not contains_national_id(f"{good}abcdef")  # a long hexadecimal token: a hash, a sys_id


def test_integer_and_every_text_layout_are_screened():
    t = pa.table({"id": pa.array([1, 2, 3], pa.int64()),
                  "matricule": pa.array([184127511542357, 12345678901234, None], pa.int64())})
    assert national_id_rows(t) == {0: "matricule"}
    text = pa.array(["a", "x 184127511542357", None])
    t = pa.table({"view": text.cast(pa.string_view()), "dict": text.dictionary_encode(),
                  "large": text.cast(pa.large_string())})
    assert national_id_rows(t) == {1: "view"}
    assert national_id_rows(t.select(["dict"])) == {1: "dict"}
    assert national_id_rows(t.select(["large"])) == {1: "large"}


def test_quarantine_payloads_are_masked_whatever_the_form():
    for value in FORMS.values():
        payload = json.loads(payload_json({"prenom": f"Jean {value}", "n": 1}))
        assert payload["n"] == 1 and MASK in payload["prenom"]
        assert value not in json.dumps(payload, ensure_ascii=False)
        raw = json.loads(payload_json(f"12;Jean;{value};Paris"))["_raw"]
        assert value not in raw and raw.startswith("12;Jean;")


def test_guard_quarantines_masks_and_drops_forbidden_columns():
    collector = Collector("r1", "crm", ["contacts"])
    page = pa.table({"id": ["c1", "1 84 12 75 115 423 57", "c3"], "ssn": ["123-45-6789"] * 3,
                     "note": ["ok", "ok", "SSN 987-65-4321 given"], "city": ["Paris", "Lyon", "Lille"]})
    guard = Guard(collector, "contacts", locate=lambda row: f"contacts:id={row['id']}")
    with using_forbidden_ids(forbidden_ids_from_settings({
            "forbidden_id_columns": ["SSN"],
            "forbidden_id_patterns": [{"name": "us_ssn", "regex": r"\b\d{3}-\d{2}-\d{4}\b"}]})):
        out = guard(page)
    assert out.column_names == ["id", "note", "city"] and out.column("id").to_pylist() == ["c1"]
    rows = collector.result().quarantine.to_pylist()
    assert [(r["reason_code"], r["field"]) for r in rows] == [("national_id", "id"), ("national_id", "note")]
    stored = json.dumps(rows, default=str, ensure_ascii=False)
    for secret in ("1 84 12 75 115 423 57", "123-45-6789", "987-65-4321"):
        assert secret not in stored
    assert rows[0]["locator"] == f"contacts:id={MASK}"


# ------------------------------------------------------------------ the settings
def test_privacy_settings_extend_the_screen_and_are_checked():
    before = forbidden_ids()
    try:
        s = settings_from_dict({"privacy": {
            "forbidden_id_columns": ["soc_sec_id", "Rijksregisternummer", "N° Sécu"],
            "forbidden_id_patterns": [{"name": "us_ssn", "regex": r"\b\d{3}-\d{2}-\d{4}\b", "min_digits": 9}]}})
        assert forbidden_ids() == s.privacy
        assert is_national_id_column("Soc Sec ID") and is_national_id_column("n_secu")
        assert contains_national_id("SSN 123-45-6789.") and not contains_national_id("tel 123-456-7890")
        assert national_id_mask(pa.array(["a 123-45-6789", "12-34", None])).tolist() == [True, False, False]
        settings_from_dict({})  # a later settings file without [privacy] takes them back
        assert not is_national_id_column("soc_sec_id") and not contains_national_id("SSN 123-45-6789.")
    finally:
        settings_from_dict({})
        assert forbidden_ids() == before == ForbiddenIds()


@pytest.mark.parametrize(("privacy", "message"), [
    ({"forbidden_id_colums": []}, "unknown key 'forbidden_id_colums'"),
    ({"forbidden_id_columns": "ssn"}, "must be a list of column names"),
    ({"forbidden_id_patterns": [{"name": "x"}]}, "forbidden_id_patterns[0] must be"),
    ({"forbidden_id_patterns": [{"name": "x", "regex": r"(?<!\d)\d{9}"}]}, "not RE2 syntax"),
    ({"forbidden_id_patterns": [{"name": "x", "regex": "(unclosed"}]}, "does not compile"),
    ({"forbidden_id_patterns": [{"name": "x", "regex": r"\d*"}]}, "matches an empty text"),
    ({"forbidden_id_patterns": [{"name": "x", "regex": r"\d{9}", "min_digits": -1}]}, "min_digits"),
], ids=["typo", "not_a_list", "no_regex", "look_behind", "bad_regex", "empty_match", "min_digits"])
def test_bad_privacy_settings_are_refused_naming_the_key(privacy, message):
    with pytest.raises(SettingsError) as err:
        settings_from_dict({"privacy": privacy})
    assert message in str(err.value) and "[privacy]" in str(err.value)
    assert forbidden_ids() == ForbiddenIds()


def test_column_names_are_compared_loosely():
    assert column_key(" N° de Sécurité-Sociale ") == "n_de_securite_sociale"
    assert is_national_id_column("NIR") and is_national_id_column("Numéro de sécurité sociale")
    assert is_national_id_column("Rijksregisternummer") and not is_national_id_column("nom")
    assert looks_like_id_column("soc_sec_id") and looks_like_id_column("Patient SSN")
    assert not looks_like_id_column("session") and not looks_like_id_column("siret")
