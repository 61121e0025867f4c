"""The quality gate's rules as code: one Great Expectations 1.24 suite per canonical table.

Derived from the contract where the contract says it (non-nullable columns, keys, the role /
kind / household-role vocabularies, certification levels); the remaining rules (date ranges,
shapes of e-mails, postcodes, codes) are written here, once, each with a human ``reason`` in
the expectation's ``meta``. The gate (``warehouse.quality``) quarantines every row an
expectation flags, with the expectation's type as the reason code and the reason text from
``meta`` — which names the field and the rule, never the value.

Rules that span tables (an interaction's ``record_key`` exists in ``person_record``) are not
expressible in a suite validating one dataframe: the gate checks them in SQL/Arrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.row_conditions import Column as Col

from schemas.contract import (
    CANONICAL_TABLES,
    CERTIFICATION_LEVELS,
    HOUSEHOLD_MEMBERSHIP,
    HOUSEHOLD_ROLES,
    INTERACTION,
    INTERACTION_KINDS,
    ORGANISATION,
    ORGANISATION_ROLE,
    PERSON_RECORD,
    ROLES,
    Table,
)

EARLIEST_BIRTH_DATE = date(1900, 1, 1)
SEXES = ("F", "M")
BIRTH_DATE_PRECISIONS = ("day", "month", "year")

# Shapes. Deliberately simple: they catch garbage (a phone in the e-mail field, a truncated
# postcode), not every RFC corner case.
EMAIL_SHAPE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
FR_POSTCODE = r"^[0-9]{5}$"
BE_POSTCODE = r"^[1-9][0-9]{3}$"
ANY_POSTCODE = r"^[0-9]{4,5}$"  # organisations carry no country: French or Belgian shape
# A postcode whose country nobody gave: any country's shape (US 12345-6789, UK SW1A 1AA, NL 1234 AB, ...)
UNKNOWN_COUNTRY_POSTCODE = r"^[0-9A-Za-z][0-9A-Za-z -]{1,9}$"
COUNTRY_CODE = r"^[A-Z]{2}$"  # ISO 3166-1 alpha-2
COG_CODE = r"^(?:[0-9]{5}|2[AB][0-9]{3})$"  # INSEE COG commune code (Corsica: 2A / 2B); Belgian NIS too
CURRENCY_CODE = r"^[A-Z]{3}$"  # ISO 4217 shape
RNA = r"^W[0-9]{9}$"
SIREN = r"^[0-9]{9}$"
SIRET = r"^[0-9]{14}$"
KEY_SHAPE = r"^[^:\s]+:\S"  # `<source_system>:<source_id>`


def _meta(reason: str) -> dict[str, str]:
    return {"reason": reason}


def _not_null(table: Table) -> list[Expectation]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column=c.name, meta=_meta(f"{c.name} is required but missing"))
        for c in table.columns
        if not c.nullable
    ]


def _unique_key(table: Table) -> list[Expectation]:
    if not table.key:
        return []
    reason = f"the key ({', '.join(table.key)}) appears on more than one row"
    if len(table.key) == 1:
        return [gxe.ExpectColumnValuesToBeUnique(column=table.key[0], meta=_meta(reason))]
    return [gxe.ExpectCompoundColumnsToBeUnique(column_list=list(table.key), meta=_meta(reason))]


def _in_set(column: str, values: tuple | list) -> Expectation:
    allowed = ", ".join(str(v) for v in values)
    return gxe.ExpectColumnValuesToBeInSet(
        column=column, value_set=list(values), meta=_meta(f"{column} is not one of: {allowed}")
    )


def _shape(column: str, regex: str, what: str, **kwargs) -> Expectation:
    return gxe.ExpectColumnValuesToMatchRegex(
        column=column, regex=regex, meta=_meta(f"{column} is not {what}"), **kwargs
    )


def _not_before(later: str, earlier: str) -> Expectation:
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=later,
        column_B=earlier,
        or_equal=True,
        ignore_row_if="either_value_is_missing",
        meta=_meta(f"{later} is before {earlier}"),
    )


def _person_record(today: date) -> list[Expectation]:
    return [
        _shape("record_key", KEY_SHAPE, "of the form <source_system>:<source_id>"),
        _in_set("role", ROLES),
        _in_set("sex", SEXES),
        gxe.ExpectColumnValuesToBeBetween(
            column="birth_date",
            min_value=EARLIEST_BIRTH_DATE,
            max_value=today,
            meta=_meta(f"birth_date is before {EARLIEST_BIRTH_DATE.isoformat()} or in the future"),
        ),
        _in_set("birth_date_precision", BIRTH_DATE_PRECISIONS),
        _in_set("certification_level", sorted(CERTIFICATION_LEVELS)),
        _shape("email", EMAIL_SHAPE, "shaped like an e-mail address"),
        # checked against the address's country only where a silo gives it: a file of another country
        # that does not say so is not French (matching detects each source's locale from its data)
        _shape("postcode", FR_POSTCODE, "a 5-digit French postcode", row_condition=Col(name="country") == "FR"),
        _shape("postcode", UNKNOWN_COUNTRY_POSTCODE, "a postcode (letters, digits, spaces)",
               row_condition=Col(name="country").is_null()),
        _shape("postcode", BE_POSTCODE, "a 4-digit Belgian postcode", row_condition=Col(name="country") == "BE"),
        _shape("country", COUNTRY_CODE, "an ISO 3166 alpha-2 code"),
        _shape("birth_country_code", COUNTRY_CODE, "an ISO 3166 alpha-2 code"),
        _shape("birth_place_code", COG_CODE, "a 5-character commune code"),
        _shape("city_code", COG_CODE, "a 5-character commune code"),
    ]


def _household_membership(today: date) -> list[Expectation]:
    return [
        _shape("household_id", KEY_SHAPE, "of the form <source_system>:<grouping id>"),
        _in_set("role", HOUSEHOLD_ROLES),
        _not_before("valid_to", "valid_from"),
    ]


def _interaction(today: date) -> list[Expectation]:
    return [
        _shape("interaction_key", KEY_SHAPE, "of the form <source_system>:<source_id>"),
        _in_set("kind", INTERACTION_KINDS),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, meta=_meta("amount is negative")),
        _shape("currency", CURRENCY_CODE, "an ISO 4217 currency code"),
        _not_before("closed_at", "opened_at"),
        gxe.ExpectColumnValuesToBeJsonParseable(column="details", meta=_meta("details is not valid JSON")),
    ]


def _organisation(today: date) -> list[Expectation]:
    return [
        _shape("organisation_key", KEY_SHAPE, "of the form <source_system>:<source_id>"),
        _shape("rna", RNA, "an RNA number (W and 9 digits)"),
        _shape("siren", SIREN, "a 9-digit SIREN"),
        _shape("siret", SIRET, "a 14-digit SIRET"),
        _shape("postcode", ANY_POSTCODE, "a 4- or 5-digit postcode"),
    ]


def _organisation_role(today: date) -> list[Expectation]:
    return [_not_before("valid_to", "valid_from")]


_TABLE_RULES = {
    PERSON_RECORD.name: _person_record,
    HOUSEHOLD_MEMBERSHIP.name: _household_membership,
    INTERACTION.name: _interaction,
    ORGANISATION.name: _organisation,
    ORGANISATION_ROLE.name: _organisation_role,
}


def suite_for(table: Table, *, today: date) -> gx.ExpectationSuite:
    """The expectation suite for one canonical table; ``today`` bounds dates that cannot be future."""
    expectations = _not_null(table) + _unique_key(table) + _TABLE_RULES[table.name](today)
    return gx.ExpectationSuite(name=table.name, expectations=expectations)


def suites(today: date) -> dict[str, gx.ExpectationSuite]:
    """One suite per canonical table, by table name."""
    return {t.name: suite_for(t, today=today) for t in CANONICAL_TABLES}


def expectation_column(kwargs: Mapping[str, Any]) -> str | None:
    """The field an expectation's kwargs check: its column, the first of a pair, or a list joined by commas."""
    for name in ("column", "column_A"):
        value = kwargs.get(name)
        if isinstance(value, str):
            return value
    columns = kwargs.get("column_list")
    return ",".join(columns) if columns else None
