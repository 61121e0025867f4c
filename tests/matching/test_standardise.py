"""Each standardisation rule, one readable case per rule."""

from __future__ import annotations

from datetime import date

import pytest

from matching.standardise import load_placeholders, standardise
from tests.matching.conftest import make_records


def _std(**fields):
    # one row is no evidence of a locale (detection says NEUTRAL): these are the French rules
    return standardise(make_records(fields), default_locale="FR").to_pylist()[0]


CASES = [
    ({"given_names": "Jean-Pierre Marie"}, "first_name_std", "JEANPIERRE"),
    ({"given_names": "Jean-Pierre Marie"}, "first_name_key", "JEAN"),
    ({"given_names": "jean pierre"}, "first_name_key", "JEAN"),
    ({"given_names": "Marie-Ève"}, "first_name_key", "MARIE"),
    ({"given_names": "Gabrielle"}, "first_name_key", "GABRIELLE"),
    ({"given_names": "X"}, "first_name_key", None),
    ({"given_names": "Jean--Pierre"}, "given_names_std", "JEAN PIERRE"),
    ({"given_names": "jean pierre"}, "given_names_std", "JEAN PIERRE"),
    ({"given_names": "Hélène, Françoise"}, "given_names_std", "HELENE FRANCOISE"),
    ({"given_names": "Hélène, Françoise"}, "first_name_std", "HELENE"),
    ({"given_names": "Œdipe"}, "first_name_std", "OEDIPE"),
    ({"given_names": "Lætitia"}, "first_name_std", "LAETITIA"),
    ({"usage_name": "D'Artagnan"}, "surname_std", "DARTAGNAN"),
    ({"usage_name": "d’Artagnan"}, "surname_std", "DARTAGNAN"),
    ({"usage_name": "Le Gall"}, "surnames_std", ["GALL", "LEGALL"]),
    ({"usage_name": "de la Fontaine"}, "surnames_std", ["DELAFONTAINE", "FONTAINE"]),
    ({"usage_name": "Van der Berg"}, "surnames_std", ["BERG", "VANDERBERG"]),
    ({"usage_name": "Martin née Dupont"}, "usage_name_std", "MARTIN"),
    ({"usage_name": "Martin née Dupont"}, "birth_name_std", "DUPONT"),
    ({"birth_name": "Dupont épouse Martin"}, "birth_name_std", "DUPONT"),
    ({"birth_name": "Dupont ép. Martin"}, "usage_name_std", "MARTIN"),
    ({"birth_name": "Dupont", "usage_name": "Martin"}, "surnames_std", ["DUPONT", "MARTIN"]),
    ({"birth_name": "Dupont", "usage_name": "Martin"}, "surname_std", "MARTIN"),
    ({"birth_date": date(1985, 7, 14)}, "birth_date_std", date(1985, 7, 14)),
    ({"birth_date": date(1985, 1, 1)}, "birth_date_std", None),
    ({"birth_date": date(1985, 1, 1)}, "birth_year", 1985),
    ({"birth_date": date(1985, 1, 1)}, "birth_month", None),
    ({"birth_date": date(1900, 1, 1)}, "birth_year", None),
    ({"birth_date": date(1985, 7, 1), "birth_date_precision": "month"}, "birth_month", 7),
    ({"birth_date": date(1985, 7, 1), "birth_date_precision": "month"}, "birth_day", None),
    ({"birth_date": date(1985, 7, 1), "birth_date_precision": "year"}, "birth_month", None),
    ({"phone": "06 12 34 56 78"}, "phone_std", "+33612345678"),
    ({"phone": "+33 6 12 34 56 78"}, "phone_std", "+33612345678"),
    ({"phone": "+33 (0)6 12 34 56 78"}, "phone_std", "+33612345678"),
    ({"phone": "0033612345678"}, "phone_std", "+33612345678"),
    ({"phone": "612345678"}, "phone_std", "+33612345678"),
    ({"phone": "06.12.34.56.78"}, "phone_std", "+33612345678"),
    ({"phone": "+32 470 12 34 56"}, "phone_std", "+32470123456"),
    ({"phone": "0470 12 34 56", "country": "BE"}, "phone_std", "+32470123456"),
    ({"phone": "02 123 45 67", "country": "BE"}, "phone_std", "+3221234567"),
    ({"phone": "00 00 00 00 00"}, "phone_std", None),
    ({"phone": "12"}, "phone_std", None),
    ({"email": "  Jean.Martin@Gmail.COM "}, "email_std", "jean.martin@gmail.com"),
    ({"email": "jean.martin@gmail"}, "email_std", None),
    ({"email": "contact@ville-exemple.fr"}, "email_std", None),
    ({"email": "mairie@ville-exemple.fr"}, "email_std", None),
    ({"email": "noreply@ville-exemple.fr"}, "email_std", None),
    ({"address_line": "12 bd Victor-Hugo"}, "address_std", "12 BOULEVARD VICTOR HUGO"),
    ({"address_line": "3, av. des Champs"}, "address_std", "3 AVENUE DES CHAMPS"),
    ({"address_line": "5 r. de la Paix"}, "address_std", "5 RUE DE LA PAIX"),
    ({"address_line": "8 ch. des Vignes"}, "address_std", "8 CHEMIN DES VIGNES"),
    ({"address_line": "1 pl. Bellecour"}, "address_std", "1 PLACE BELLECOUR"),
    ({"address_line": "12B rue des Lilas"}, "address_std", "12 BIS RUE DES LILAS"),
    ({"address_line": "12 bis rue des Lilas"}, "address_std", "12 BIS RUE DES LILAS"),
    ({"address_line": "7 ter, allée des Pins"}, "address_std", "7 TER ALLEE DES PINS"),
    ({"address_line": "CCAS de Lyon, 12 rue X"}, "address_std", None),
    ({"address_line": "Domiciliation CCAS"}, "address_std", None),
    ({"postcode": "6000"}, "postcode_std", "06000"),
    ({"postcode": "1050", "country": "BE"}, "postcode_std", "1050"),
    ({"postcode": "00000"}, "postcode_std", None),
    ({"sex": "f"}, "sex_std", "F"),
    ({"sex": "H"}, "sex_std", "M"),
]


@pytest.fixture(scope="module")
def standardised_cases():
    # one standardise call for every case: the rules are per row, and this keeps the suite fast
    return standardise(make_records(*(fields for fields, _, _ in CASES))).to_pylist()


@pytest.mark.parametrize(
    ("index", "column", "expected"),
    [(i, column, expected) for i, (_, column, expected) in enumerate(CASES)],
    ids=[f"{column}<-{'/'.join(str(v) for v in fields.values())}" for fields, column, _ in CASES],
)
def test_standardisation_rule(standardised_cases, index, column, expected):
    assert standardised_cases[index][column] == expected


@pytest.mark.parametrize("placeholder", ["INCONNU", "X", "XXX", "NEANT", "Inconnue"])
def test_placeholder_names_are_no_evidence(placeholder):
    row = _std(given_names=placeholder, usage_name=placeholder, birth_name=placeholder)
    assert (row["first_name_std"], row["usage_name_std"], row["birth_name_std"], row["surnames_std"]) == (
        None, None, None, None,
    )


def test_placeholder_list_is_data_a_data_engineer_extends():
    switchboard = "+33472100000"
    assert _std(phone="04 72 10 00 00")["phone_std"] == switchboard
    ph = load_placeholders()
    ph["phones"] = [*ph["phones"], switchboard]
    out = standardise(make_records({"phone": "04 72 10 00 00"}), placeholders=ph, default_locale="FR")
    assert out["phone_std"].to_pylist() == [None]


def test_keeps_every_input_column_and_row_order():
    table = make_records({"given_names": "Anne"}, {"given_names": "Marc"})
    table = table.append_column("person_id", __import__("pyarrow").array([7, 8]))
    out = standardise(table)
    assert out.column_names[: table.num_columns] == table.column_names
    assert out["person_id"].to_pylist() == [7, 8]
    assert out["first_name_std"].to_pylist() == ["ANNE", "MARC"]
