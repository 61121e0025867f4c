"""Locale-aware standardisation: FR / BE / NEUTRAL chosen per source, foreign rows left alone,
Brussels streets written in French and in Dutch compared as one."""

from __future__ import annotations

import pytest

from matching.locale import BE, FR, NEUTRAL, choose_locales
from matching.standardise import EXTRA_COLUMNS, STANDARD_COLUMNS, source_locales, standardise, standardise_report
from tests.matching.conftest import make_records

FRENCH = [
    {"address_line": "12 rue des Lilas", "postcode": "69003", "phone": "06 12 34 56 78"},
    {"address_line": "3, av. des Champs", "postcode": "69008", "phone": "+33 4 72 10 20 30"},
    {"address_line": "8 ch. des Vignes", "postcode": "69100", "phone": "07 11 22 33 44"},
    {"address_line": "5 allée des Pins", "postcode": "69200", "phone": "04 78 12 34 56"},
]
BELGIAN = [
    {"address_line": "Rue de la Loi 16", "postcode": "1040", "phone": "02 123 45 67"},
    {"address_line": "Wetstraat 16", "postcode": "1040", "phone": "+32 470 12 34 56"},
    {"address_line": "Chaussée de Wavre 1000", "postcode": "1050", "phone": "0470 98 76 54"},
    {"address_line": "Louizalaan 12", "postcode": "1050", "phone": "02 987 65 43"},
]
AUSTRALIAN = [
    {"address_line": "12 St Kilda Rd", "postcode": "3004", "phone": "03 9123 4567"},
    {"address_line": "4 Dr Smith St", "postcode": "2000", "phone": "0412 345 678"},
    {"address_line": "7 Wattle Crescent", "postcode": "2600", "phone": "02 6123 4567"},
    {"address_line": "21 Ocean Dr", "postcode": "4217", "phone": "07 5512 3456"},
]
AMERICAN = [
    {"address_line": "123 Main St", "postcode": "90210", "phone": "(555) 123-4567"},
    {"address_line": "45 Elm Street Apt 3", "postcode": "10001", "phone": "555.987.6543"},
    {"address_line": "9 Oak Dr", "postcode": "60614", "phone": "+1 312 555 0199"},
]
GERMAN = [  # 5-digit postcodes like France's, German street words
    {"address_line": "Hauptstraße 12", "postcode": "10115", "phone": "030 1234567"},
    {"address_line": "Birkenweg 3", "postcode": "80331", "phone": "089 7654321"},
    {"address_line": "Am Markt 7", "postcode": "50667", "phone": "0221 998877"},
]
DUTCH = [  # Dutch street words like Brussels', Dutch postcodes
    {"address_line": "Kerkstraat 12", "postcode": "1012 AB", "phone": "020 123 4567"},
    {"address_line": "Stationsplein 3", "postcode": "3511 ED", "phone": "030 765 4321"},
]


def _source(name: str, rows: list[dict], **extra) -> list[dict]:
    return [{**r, **extra, "source_system": name, "source_id": f"{name}{i}"} for i, r in enumerate(rows)]


def _all_sources() -> list[dict]:
    return (_source("mairie", FRENCH) + _source("crm", BELGIAN) + _source("febrl", AUSTRALIAN)
            + _source("agency", AMERICAN) + _source("names_only", [{"given_names": "Ann"}, {"given_names": "Bob"}])
            + _source("amt", GERMAN) + _source("gemeente", DUTCH))


def test_detection_reads_each_source():
    choices = choose_locales(make_records(*_all_sources()))
    assert {s: c.locale for s, c in choices.items()} == {
        "mairie": FR, "crm": BE, "febrl": NEUTRAL, "agency": NEUTRAL, "names_only": NEUTRAL,
        "amt": NEUTRAL, "gemeente": NEUTRAL,
    }
    assert all(c.how == "detected" for c in choices.values())
    assert choices["names_only"].reason == "no evidence"


def test_country_column_decides_when_most_rows_fill_it():
    # 4-digit postcodes alone would say Belgium; the country column says France (a lost zero)
    rows = _source("etat_civil", [{"postcode": "6000", "country": "FR"}, {"postcode": "6300", "country": "FR"}])
    out = standardise(make_records(*rows))
    assert source_locales(out) == {"etat_civil": FR}
    assert out["postcode_std"].to_pylist() == ["06000", "06300"]


def test_explicit_setting_wins_over_detection_and_default():
    records = make_records(*_all_sources())
    out = standardise(records, locales={"febrl": "fr", "mairie": "NEUTRAL"}, default_locale="BE")
    report = standardise_report(out)["locales"]
    assert {s: (c["locale"], c["how"]) for s, c in report.items()} == {
        "mairie": (NEUTRAL, "setting"), "febrl": (FR, "setting"),
        "crm": (BE, "default"), "agency": (BE, "default"), "names_only": (BE, "default"),
        "amt": (BE, "default"), "gemeente": (BE, "default"),
    }
    febrl = [r for r in out.to_pylist() if r["source_system"] == "febrl"]
    assert febrl[0]["address_std"] == "12 SAINT KILDA RD"  # French rules, because the setting says so


def test_unknown_locale_is_refused():
    with pytest.raises(ValueError, match="unknown locale"):
        standardise(make_records({"given_names": "Ann"}), default_locale="US")


def test_foreign_rows_are_untouched_by_french_rules():
    rows = {r["source_id"]: r for r in standardise(make_records(*_source("febrl", AUSTRALIAN),
                                                               *_source("agency", AMERICAN))).to_pylist()}
    assert rows["febrl0"]["address_std"] == "12 ST KILDA RD"
    assert rows["febrl1"]["address_std"] == "4 DR SMITH ST"
    assert rows["febrl0"]["postcode_std"] == "3004"  # no leading zero added
    assert rows["febrl0"]["phone_std"] == "0391234567"  # digits, no +33
    assert rows["agency0"]["phone_std"] == "5551234567"
    assert rows["agency2"]["phone_std"] == "+13125550199"  # E.164 when written with its country code
    assert rows["agency0"]["postcode_std"] == "90210"
    assert {r["locale_std"] for r in rows.values()} == {NEUTRAL}


def test_neutral_keeps_what_is_a_placeholder_only_in_french_data():
    rows = [{"given_names": "NC", "usage_name": "M", "phone": "0600000000"},  # initials; a number elsewhere
            {"given_names": "Test", "usage_name": "Inconnu", "email": "noreply@town.example.au",
             "postcode": "SW1A 1AA"}]
    out = standardise(make_records(*rows), default_locale="NEUTRAL").to_pylist()
    assert (out[0]["first_name_std"], out[0]["surname_std"], out[0]["phone_std"]) == ("NC", "M", "0600000000")
    # placeholders in any language
    assert (out[1]["first_name_std"], out[1]["surname_std"], out[1]["email_std"]) == (None, None, None)
    assert out[1]["postcode_std"] == "SW1A1AA"
    fr = standardise(make_records(*rows), default_locale="FR").to_pylist()
    assert (fr[0]["first_name_std"], fr[0]["surname_std"], fr[0]["phone_std"]) == (None, None, None)


def test_a_row_country_overrides_its_source_locale():
    rows = _source("mairie", [*FRENCH, {"address_line": "12 St Kilda Rd", "postcode": "3004", "country": "AU"},
                              {"address_line": "Rue Haute 5", "postcode": "1000", "phone": "02 123 45 67",
                               "country": "Belgique"}])
    out = standardise(make_records(*rows)).to_pylist()
    assert source_locales(standardise(make_records(*rows))) == {"mairie": FR}
    assert [r["locale_std"] for r in out] == [FR, FR, FR, FR, NEUTRAL, BE]
    assert (out[4]["address_std"], out[4]["postcode_std"]) == ("12 ST KILDA RD", "3004")
    assert (out[5]["postcode_std"], out[5]["phone_std"]) == ("1000", "+3221234567")


def test_french_and_belgian_rows_keep_their_rules():
    out = {r["source_id"]: r for r in standardise(make_records(*_source("mairie", FRENCH),
                                                              *_source("crm", BELGIAN))).to_pylist()}
    assert out["mairie1"]["address_std"] == "3 AVENUE DES CHAMPS"
    assert out["mairie0"]["phone_std"] == "+33612345678"
    assert out["crm0"]["phone_std"] == "+3221234567"
    assert out["crm2"]["phone_std"] == "+32470987654"
    assert out["crm0"]["postcode_std"] == "1040"


def test_output_columns_are_the_standard_ones_plus_the_added_ones():
    records = make_records(*_source("mairie", FRENCH))
    out = standardise(records)
    assert out.column_names == [*records.column_names, *STANDARD_COLUMNS, *EXTRA_COLUMNS]


BRUSSELS_PAIRS = [
    ("Avenue Louise 54", "Louizalaan 54"),
    ("Chaussée de Wavre 1000", "Waversesteenweg 1000"),
    ("Chaussée de Louvain 12", "Leuvensesteenweg 12"),
    ("Chaussée de Gand 3", "Gentsesteenweg 3"),
    ("Chaussée de Ninove 7", "Ninoofsesteenweg 7"),
    ("Avenue de Tervueren 100", "Tervurenlaan 100"),
    ("Place Flagey 18", "Flageyplein 18"),
    ("Boulevard Anspach 1", "Anspachlaan 1"),
    ("Chaussée d'Alsemberg 200", "Alsembergsesteenweg 200"),
    ("Quai aux Briques 4", "Baksteenkaai 4"),  # translated: only postcode + number agree
    ("Rue de la Loi 16", "Wetstraat 16"),  # translated: only postcode + number agree
]


@pytest.mark.parametrize(("fr", "nl"), BRUSSELS_PAIRS, ids=[p[0] for p in BRUSSELS_PAIRS])
def test_brussels_french_and_dutch_street_names_meet(fr, nl):
    rows = _source("crm", [{"address_line": fr, "postcode": "1000"}, {"address_line": nl, "postcode": "1000"}])
    a, b = standardise(make_records(*rows)).to_pylist()
    assert a["locale_std"] == b["locale_std"] == BE
    assert a["house_number_std"] == b["house_number_std"] is not None
    translated = fr.startswith(("Rue de la Loi", "Quai aux Briques"))
    assert (a["street_skeleton"] == b["street_skeleton"] and a["street_skeleton"] is not None) is not translated


@pytest.mark.parametrize(("line", "number", "key"), [
    ("12 bis rue des Lilas", "12B", "LILAS"),
    ("12B rue des Lilas", "12B", "LILAS"),
    ("12 b, rue des Lilas", "12B", "LILAS"),
    ("7 ter allée des Pins", "7C", "PINS"),
    ("Rue de la Loi 16 bte 3", "16", "LOI"),
    ("Wetstraat 16 bus 3", "16", "WET"),
    ("Avenue du 11 Novembre 25", "25", "11NOVEMBRE".replace("11", "")),
    ("Apt 5, 12 rue Victor Hugo", "12", "VICTORHUGO"),
    ("12 rue Victor Hugo, 3e étage", "12", "VICTORHUGO"),
    ("5 r. de l'Église", "5", "EGLISE"),
    ("12 rue Saint-Jean", "12", "STJEAN"),
    ("12 rue St Jean", "12", "STJEAN"),
    ("45 Elm Street Apt 3", "45", "ELM"),
])
def test_house_number_and_street_key(line, number, key):
    row = standardise(make_records({"address_line": line}), default_locale="BE").to_pylist()[0]
    assert (row["house_number_std"], row["street_key"]) == (number, key)


def test_placeholder_address_has_no_street_keys():
    row = standardise(make_records({"address_line": "CCAS de Lyon, 12 rue X"}), default_locale="FR").to_pylist()[0]
    assert (row["address_std"], row["house_number_std"], row["street_key"], row["street_skeleton"]) == (
        None, None, None, None)
