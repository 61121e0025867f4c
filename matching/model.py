"""The Splink model as data: settings in code, trained parameters saved as versioned JSON.

One ``dedupe_only`` model over the union of every silo's standardised person records
(``source_system`` is a column). Comparisons, blocking rules and settings are written with Splink's
own tools (comparison-level library, ``CustomComparison``, ``block_on``, ``SettingsCreator``), so
that Splink writes their SQL for the backend that runs them: DuckDB for training and scoring here,
Spark in :mod:`matching.spark` (:func:`trained_settings`). The model JSON keeps the DuckDB SQL.

The model is shaped by the data it is given, not by one deployment's habits: :func:`profile`
measures how much of each field the sources fill; :func:`settings` keeps the comparisons and
blocking rules whose fields are filled and :func:`train` picks the training rules that find pairs
in these records (a rule that finds none is replaced by the next candidate, never a crash).

Household guard (see docs in :mod:`matching.resolve`): the first-name "different" level (no
common initial, not swapped with the name, no shared prénom) has a fixed, very small m
probability, so that a different prénom outweighs a shared surname, address, phone, e-mail and
even a shared birth date (twins). A prénom written another way (an initial, a nickname sharing the
initial, the name columns swapped) has levels of its own, trained like the others.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from matching import resources

log = logging.getLogger(__name__)

SEED = 42
U_MAX_PAIRS = 2_000_000
# Training reads at most this many records (a uniform, seeded sample of the population, see
# training_sample); the model is then used to score every record, and reused by incremental runs.
TRAIN_SAMPLE = 300_000
# The m probability of "first names disagree" among true matches: fixed, never trained, so a
# different prénom always weighs about -20 bits whatever the household shares.
FIRST_NAME_DISAGREE_M = 1e-6
# Other disagreement levels get a fixed m from domain knowledge rather than EM, which, on a
# population of households, either drives them to 0 (a veto: one different e-mail would
# separate a person from themself) or inflates them (parent and child namesakes look like
# "the same person with another birth date").
DISAGREE_M = {
    "surname": 0.03,  # a married name known to one silo, the birth name to the other
    "birth_date": 0.02,  # keying errors beyond one digit or a swap
    "email": 0.15,  # people give different addresses to different services
    "phone": 0.1,  # two different mobiles: a change of number
    "sex": 0.01,  # keying error
}
# After EM, no level's m or u goes below this (a level unseen in training is not a veto).
PROBABILITY_FLOOR = 1e-3
# Lower u floors for the "exact" level of personal identifiers: two random records share an
# e-mail or phone far more rarely than 1 in 1,000 (switchboards and shared mailboxes are nulled
# first, see matching.placeholders.null_implausible_values), and the general floor capped a shared
# e-mail / phone at ~10 bits, leaving same-name records with one common contact unlinked.
U_FLOOR_EXACT = {"email": 1e-5, "phone": 1e-5}

# Mobile numbers (E.164): two different mobiles disagree, a landline and a mobile do not.
MOBILE_RE = r"^\+33[67]|^\+324"

# A prénom + name combination carried by at most this many records is blocked on without a
# postcode or a birth year (see model_input).
RARE_NAME_MAX = 100

# Columns the model reads (from matching.standardise) and carries into predictions.
MODEL_COLUMNS = (
    "record_key",
    "source_system",
    "first_name_std",
    "first_name_key",
    "given_names_std",
    "surname_std",
    "surnames_std",
    "sex_std",
    "birth_date_std",
    "birth_year",
    "birth_month",
    "birth_day",
    "email_std",
    "phone_std",
    "address_std",
    "postcode_std",
    "house_number_std",
    "street_key",
    "street_skeleton",
)
# ... and carries besides (model_input): the town, the rare-name blocking key, the prénoms as a list
# and the full name (prénom|name, whose term frequency full_name_frequencies measures).


def comparison_creators(*, households: bool = True, full_name: bool = True) -> list[Any]:
    """The comparisons, as Splink comparison creators: ``CustomComparison``\\ s of levels from
    Splink's comparison-level library, so that Splink writes each level's SQL for the backend of
    the linker that reads them (DuckDB here, Spark in :mod:`matching.spark`) — one definition, no
    SQL of ours to translate. A level the library cannot say is a ``CustomLevel`` written in DuckDB
    SQL (``base_dialect_str="duckdb"``: Splink translates it), or, for Jaro-Winkler across two
    columns, :class:`matching.splink_levels.ColumnsReversedJaroWinklerLevel`.

    The level labels are read by :mod:`matching.resolve` (the guards) and by :func:`trained_settings`:
    renaming one is a model change. ``households``: the disagreement levels get their fixed m (the
    household guard, see :func:`settings`); without, EM estimates them like the others.
    ``full_name=False``: without the surname's "exact, same prénom" level (what :func:`train`
    estimates; the level is added after, see :func:`_add_full_name_level`).
    """
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import ColumnExpression

    from matching.splink_levels import ColumnsReversedJaroWinklerLevel

    def level(creator: Any, label: str, **config: Any) -> Any:
        return creator.configure(label_for_charts=label, **config)

    def null(col: str) -> Any:
        return level(cll.NullLevel(col), "null")

    def exact(col: str, *, tf: bool = False) -> Any:
        return cll.ExactMatchLevel(col, term_frequency_adjustments=tf)

    def duckdb_sql(condition: str) -> Any:
        return cll.CustomLevel(condition, base_dialect_str="duckdb")

    def different(m: float | None = None, label: str = "different") -> Any:
        fixed = {"m_probability": m, "fix_m_probability": True} if households and m is not None else {}
        return level(cll.ElseLevel(), label, **fixed)

    def initial(col: str, chars: int) -> Any:
        return cll.ExactMatchLevel(ColumnExpression(col).substr(1, chars))

    def swapped() -> Any:  # both names, swapped: one export wrote each in the other's column
        return level(cll.And(ColumnsReversedJaroWinklerLevel("first_name_std", "surname_std", 0.8),
                             ColumnsReversedJaroWinklerLevel("surname_std", "first_name_std", 0.8)), "names swapped")

    def crossed() -> Any:  # one of the names written in the other's column
        return level(cll.Or(cll.ColumnsReversedLevel("first_name_std", "surname_std"),
                            cll.ColumnsReversedLevel("surname_std", "first_name_std")), "name in the other column")

    def same_street_line() -> Any:  # the same street line, in the same postcode when both give one
        return cll.And(exact("address_std"), duckdb_sql('NOT coalesce("postcode_std_l" <> "postcode_std_r", false)'))

    first_name = cl.CustomComparison(
        output_column_name="first_name",
        comparison_description="first prénom; a typo, a cut compound, similar and other prénoms as weaker levels",
        comparison_levels=[
            null("first_name_std"),
            level(exact("first_name_std", tf=True), "exact"),
            # a keying error: one letter substituted, missed, doubled or two swapped (ERCI, PIERRRE);
            # the library's "<= 1" is exactly 1 here, the exact level above having taken 0
            level(cll.DamerauLevenshteinLevel("first_name_std", 1), "one edit"),
            # JEAN vs JEAN-PIERRE: a compound prénom cut by one silo. Only at a separator the
            # other silo wrote: GABRIEL / GABRIELLE or JEAN / JEANNE are not a cut compound.
            level(cll.Or(cll.ColumnsReversedLevel("first_name_key", "first_name_std"),
                         cll.ColumnsReversedLevel("first_name_std", "first_name_key")), "compound cut"),
            # similar spellings (STEPHANIE / STEFANIE), but also different prénoms (MARIE / MARTINE)
            level(cll.JaroWinklerLevel("first_name_std", 0.92), "jw >= 0.92"),
            level(cll.JaroWinklerLevel("first_name_std", 0.85), "jw >= 0.85"),
            # MARIE ANNE vs ANNE MARIE; weak: siblings and twins share middle prénoms too
            level(cll.ArrayIntersectLevel("given_names_list", 1), "another prénom shared"),
            swapped(),
            crossed(),
            # G. / GERARD: an initial; ALLY / ALYSSA, TOM / THOMAS: a short form sharing the initial
            level(cll.And(initial("first_name_std", 1),
                          duckdb_sql('length("first_name_std_l") = 1 OR length("first_name_std_r") = 1')), "initial"),
            level(initial("first_name_std", 1), "same initial"),
            different(FIRST_NAME_DISAGREE_M),
        ],
    )
    surname = cl.CustomComparison(
        output_column_name="surname",
        comparison_description="birth and usage names, compared both ways",
        comparison_levels=[
            null("surnames_std"),
            # the same name and the same prénom: weighed by how often this prénom goes with this
            # name in these records (full_name_frequencies), not as if prénom and name were drawn
            # independently, which overstates a combination's rarity where names run in communities
            *([level(exact("full_name_std", tf=True), "exact, same prénom")] if full_name else []),
            level(exact("surname_std", tf=True), "exact"),
            level(cll.ArrayIntersectLevel("surnames_std", 1), "birth / usage name shared"),
            level(cll.JaroWinklerLevel("surname_std", 0.92), "jw >= 0.92"),
            level(cll.JaroWinklerLevel("surname_std", 0.8), "jw >= 0.8"),
            swapped(),
            crossed(),
            different(DISAGREE_M["surname"]),
        ],
    )
    dob = cl.CustomComparison(
        output_column_name="birth_date",
        comparison_description="birth date; presumed dates (YYYY-01-01) compare on year only",
        comparison_levels=[
            null("birth_year"),
            level(exact("birth_date_std"), "exact"),
            level(cll.And(exact("birth_year"), cll.ColumnsReversedLevel("birth_month", "birth_day"),
                          cll.ColumnsReversedLevel("birth_day", "birth_month")), "day and month swapped"),
            # or two adjacent digits swapped: a keying error
            level(duckdb_sql("damerau_levenshtein(strftime(\"birth_date_std_l\", '%Y%m%d'), "
                             "strftime(\"birth_date_std_r\", '%Y%m%d')) = 1"), "one digit differs"),
            level(cll.And(exact("birth_year"), exact("birth_month")), "same year-month"),
            level(cll.And(exact("birth_year"), cll.NullLevel("birth_month")), "same year, day-month unknown"),
            different(DISAGREE_M["birth_date"]),
        ],
    )
    email = cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[null("email_std"), level(exact("email_std"), "exact"), different(DISAGREE_M["email"])],
    )
    phone = cl.CustomComparison(
        output_column_name="phone",
        comparison_levels=[
            null("phone_std"),
            level(exact("phone_std"), "exact"),
            # a landline here and a mobile there is no disagreement: people have both
            level(duckdb_sql(f"NOT (regexp_matches(\"phone_std_l\", '{MOBILE_RE}') "
                             f"AND regexp_matches(\"phone_std_r\", '{MOBILE_RE}'))"), "not two mobiles"),
            different(DISAGREE_M["phone"], "two different mobiles"),
        ],
    )
    address = cl.CustomComparison(
        output_column_name="address",
        comparison_description="street line: number and street, in the same postcode where that matters",
        comparison_levels=[
            null("address_std"),
            level(same_street_line(), "exact"),
            # the same street and number, its type word in another language (Avenue Louise 12 /
            # Louizalaan 12) or spelt another way (matching.standardise: street_key, street_skeleton)
            level(cll.And(exact("house_number_std"), cll.Or(exact("street_key"), exact("street_skeleton"))),
                  "same street and number"),
            level(cll.JaroWinklerLevel("address_std", 0.9), "similar street"),
            # a street whose name is translated (Rue de la Loi 16 / Wetstraat 16), or another street
            # at the same number: EM weighs it on the data
            level(cll.And(exact("postcode_std"), exact("house_number_std")), "same postcode and number"),
            different(),
        ],
    )
    town = cl.CustomComparison(
        output_column_name="town",
        comparison_description="postcode and town",
        comparison_levels=[
            # not compared: nothing to compare, or the same street line, which the address
            # comparison counts whole (a town shared by two records at one address is no more evidence)
            level(cll.Or(cll.And(cll.NullLevel("postcode_std"), cll.NullLevel("city_std")), same_street_line()),
                  "null", is_null_level=True),
            level(cll.And(exact("postcode_std"), duckdb_sql('NOT coalesce("city_std_l" <> "city_std_r", false)')),
                  "exact"),
            level(exact("postcode_std"), "same postcode"),
            level(exact("city_std"), "same town"),
            # a postcode keyed with one digit wrong or two swapped (the same postcode is taken above)
            level(cll.DamerauLevenshteinLevel("postcode_std", 1), "postcode one edit"),
            level(initial("postcode_std", 2), "same postcode area"),
            different(),
        ],
    )
    sex = cl.CustomComparison(
        output_column_name="sex",
        comparison_levels=[null("sex_std"), level(exact("sex_std"), "exact"), different(DISAGREE_M["sex"])],
    )
    return [first_name, surname, dob, email, phone, address, town, sex]


def comparisons(*, households: bool = True) -> list[dict[str, Any]]:
    """The comparison definitions as Splink dicts in DuckDB SQL (:func:`comparison_creators`)."""
    return [c.create_comparison_dict("duckdb") for c in comparison_creators(households=households)]


# Blocking rules for predictions, each with the model-input columns it needs (recall measured in
# bench/resolution.py), as the columns it blocks on (Splink's ``block_on``) and the array columns
# it explodes, or, where the two records' columns cross, a DuckDB SQL rule (Splink translates it
# for another backend). A rule whose columns no source fills is left out (see settings()).
_BLOCKING_RULES: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("rare_name_key",), {}),
    # Same prénom and name alone makes blocks that grow with the square of the population
    # (thousands of MARIE MARTIN in a métropole): always add a postcode or a birth year.
    # The prénom is its first part (JEAN for JEAN-PIERRE): one silo keeps a compound prénom
    # whole, another cuts it.
    (("first_name_key", "surnames_std", "postcode_std"), {"arrays_to_explode": ["surnames_std"]}),
    (("first_name_key", "surnames_std", "birth_year"), {"arrays_to_explode": ["surnames_std"]}),
    (("birth_date_std", "first_name_key"), {}),
    (("birth_date_std", "surname_std"), {}),
    # a surname change (marriage) with no birth date: same prénom at the same street line
    (("first_name_key", "address_std"), {}),
    # a typo in the prénom with no birth date: same name at the same street line
    (("surnames_std", "address_std"), {"arrays_to_explode": ["surnames_std"]}),
    (("phone_std",), {}),
    (("email_std",), {}),
    (("birth_date_std", "postcode_std"), {}),
    # the prénom and name columns swapped by one export (block_on compares a column with itself)
    (("first_name_std", "surname_std"),
     {"sql": 'l."first_name_std" = r."surname_std" AND l."surname_std" = r."first_name_std"'}),
    # a postcode keyed wrong, no birth date: the same name on the same street line is caught above;
    # the same prénom, name and town (blocks stay small: a town's namesakes)
    (("first_name_key", "surname_std", "city_std"), {}),
)


# Broader rules, for records that the rules above miss (a typo in the name and a postcode keyed
# wrong, no birth date): each is used when the pairs it makes in these records stay within
# BROAD_RULE_PAIRS (they do in a file of thousands, seldom in a city of a million).
BROAD_BLOCKING: tuple[tuple[str, ...], ...] = (
    ("first_name_std", "postcode_std"),
    ("surname_std", "postcode_std"),
    ("birth_date_std",),
    ("address_std",),
    ("first_name_std", "city_std"),
    ("surname_std", "city_std"),
    ("first_name_std", "surname_std"),
    ("surname_std",),
)
BROAD_RULE_PAIRS = (1_000_000, 5)  # at most max(1M, 5 per record) pairs per rule


def _rule_creator(cols: Sequence[str], spec: dict[str, Any]) -> Any:
    from splink import block_on
    from splink.blocking_rule_library import CustomRule

    if "sql" in spec:
        return CustomRule(spec["sql"], sql_dialect="duckdb")
    return block_on(*cols, arrays_to_explode=spec.get("arrays_to_explode"))


def blocking_rule_creators(profile: FieldProfile | None = None) -> list[Any]:
    """Blocking rules for predictions (Splink rule creators): those whose columns the sources fill,
    then the broad rules whose pairs stay within the budget (without a profile: the first list only)."""
    rules = [_rule_creator(cols, spec) for cols, spec in _BLOCKING_RULES if profile is None or profile.fills(*cols)]
    if profile is not None:
        budget = max(BROAD_RULE_PAIRS[0], BROAD_RULE_PAIRS[1] * profile.records)
        rules += [_rule_creator(cols, {}) for cols in BROAD_BLOCKING
                  if profile.fills(*cols) and 0 < profile.rule_pairs.get(cols, budget + 1) <= budget]
    return rules


def blocking_rules(profile: FieldProfile | None = None) -> list[dict[str, Any]]:
    """:func:`blocking_rule_creators` as Splink rule dicts in DuckDB SQL."""
    return [_rule_dict(r.create_blocking_rule_dict("duckdb")) for r in blocking_rule_creators(profile)]


def _rule_dict(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rule.items() if v is not None}  # no "arrays_to_explode": None


# Candidate rules for EM, in order of preference, as the columns they block on. Each leaves the
# comparisons it does not use free to be estimated, and stays household-sized at a million records
# (prénom + name alone would not: see blocking_rules). train() keeps the first ones that find pairs.
EM_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("first_name_std", "surname_std", "postcode_std"),
    ("birth_date_std",),
    ("phone_std", "postcode_std"),
    ("email_std",),
    ("phone_std",),
    ("surname_std", "birth_year"),
    ("first_name_std", "surname_std", "address_std"),
    ("first_name_std", "surname_std", "city_std"),
    ("postcode_std", "birth_year"),
    ("first_name_std", "surname_std"),
    # where nothing above leaves the names free (no birth date, e-mail or phone): the place alone
    ("address_std",),
    ("postcode_std",),
    ("city_std",),
)
EM_RULES_MAX = 3
# A training rule must find at least this many pairs (fewer teach EM nothing) and at most this many
# (EM reads every pair of its rule on every iteration).
EM_MIN_PAIRS = 20
EM_MAX_PAIRS = 30_000_000

# Deterministic rules (with their assumed recall) to estimate the prior: prénom and name plus one
# personal identifier, the first ones the data can count.
DETERMINISTIC_CANDIDATES: tuple[tuple[str, ...], ...] = (
    ("first_name_std", "surname_std", "birth_date_std"),
    ("first_name_std", "surname_std", "email_std"),
    ("first_name_std", "surname_std", "phone_std"),
    ("first_name_std", "surname_std", "address_std"),
    ("first_name_std", "surname_std", "postcode_std"),
)
DETERMINISTIC_RECALL = 0.8
# When no deterministic rule finds a pair: the prior a dedupe of n records starts from (each
# record has one duplicate among the others, on average a tenth of one).
FALLBACK_DUPLICATES_PER_RECORD = 0.1


def columns_read(comparison: dict[str, Any]) -> set[str]:
    """The input columns a comparison's levels read (``"x_l"`` / ``"x_r"`` in their SQL)."""
    sql = " ".join(lv["sql_condition"] for lv in comparison["comparison_levels"])
    return set(re.findall(r'"(\w+)_[lr]"', sql))


def _rule_sql(cols: Sequence[str]) -> str:
    return " AND ".join(f'l."{c}" = r."{c}"' for c in cols)


# Which model-input columns a comparison reads to have anything to compare.
COMPARISON_FIELDS: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name_std",),
    "surname": ("surname_std",),
    "birth_date": ("birth_year",),
    "email": ("email_std",),
    "phone": ("phone_std",),
    "address": ("address_std",),
    "town": ("postcode_std", "city_std"),  # either
    "sex": ("sex_std",),
}
# A field is used when at least this many records carry it and two of them share a value.
MIN_FILLED = 10
# Records show households when at least this share of them lives with someone of their name, of
# another initial, born two or more years apart (34 % in the sandbox; a file of people alone, with
# the errors of its keying, 0-0.3 %).
HOUSEHOLD_MIN_SHARE = 0.02
# ... or when at least this share of records holds a family role (parent, enfant): the sources say
# they know families (a family portal's children carry no address to share with their parents).
FAMILY_ROLE_MIN_SHARE = 0.01
FAMILY_ROLES = ("parent", "enfant")


@dataclass(frozen=True)
class FieldProfile:
    """How much of each model field the sources fill: what the model is built from.

    ``fields``: column -> (records carrying it, distinct values, records sharing their value
    with another). ``by_source``: source_system -> column -> share of its records carrying it.
    """

    records: int
    fields: dict[str, tuple[int, int, int]]
    by_source: dict[str, dict[str, float]]
    # share of records living with someone of their name but another initial, born years apart (a
    # parent, a child, a sibling): the households the guards protect (see households())
    housemate_share: float = 0.0
    # share of records holding a family role (FAMILY_ROLES)
    family_role_share: float = 0.0
    # pairs each broad blocking rule (BROAD_BLOCKING) makes in these records
    rule_pairs: dict[tuple[str, ...], int] = field(default_factory=dict)

    def households(self) -> bool:
        """Whether these records show household structure (:data:`HOUSEHOLD_MIN_SHARE`,
        :data:`FAMILY_ROLE_MIN_SHARE`)."""
        return self.housemate_share >= HOUSEHOLD_MIN_SHARE or self.family_role_share >= FAMILY_ROLE_MIN_SHARE

    def usable(self, column: str) -> bool:
        filled, _distinct, shared = self.fields.get(column, (0, 0, 0))
        return filled >= MIN_FILLED and shared >= 2

    def fills(self, *columns: str) -> bool:
        return all(self.usable(c) for c in columns)

    def comparisons_used(self) -> list[str]:
        used = [name for name, cols in COMPARISON_FIELDS.items() if any(self.usable(c) for c in cols)]
        if not used:  # a handful of records (a first load of one small silo): whatever they carry
            used = [name for name, cols in COMPARISON_FIELDS.items()
                    if any(self.fields.get(c, (0, 0, 0))[0] for c in cols)]
        return used

    def left_out(self) -> dict[str, str]:
        """Comparisons left out, with why (for the run report)."""
        out = {}
        used = set(self.comparisons_used())
        for name, cols in COMPARISON_FIELDS.items():
            if name not in used:
                filled = max(self.fields.get(c, (0, 0, 0))[0] for c in cols)
                out[name] = (f"no source fills {' or '.join(cols)}" if filled == 0 else
                             f"{filled} record(s) carry {' or '.join(cols)}, too few shared values to learn from")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "housemate_share": round(self.housemate_share, 4),
                "family_role_share": round(self.family_role_share, 4),
                "households": self.households(),
                "fields": {c: {"filled": f, "distinct": d, "shared": sh} for c, (f, d, sh) in self.fields.items()},
                "by_source": self.by_source}


PROFILE_COLUMNS = ("first_name_std", "first_name_key", "surname_std", "surnames_std", "sex_std", "birth_date_std",
                   "birth_year", "email_std", "phone_std", "address_std", "postcode_std", "city_std",
                   "rare_name_key")


def profile(model_in: pa.Table) -> FieldProfile:
    """Coverage and cardinality of each model field, overall and per source (one DuckDB pass)."""
    cols = [c for c in PROFILE_COLUMNS if c in model_in.column_names]
    cols_all = set(model_in.column_names)
    con = resources.connect()
    try:
        con.register("mi", model_in)
        fields: dict[str, tuple[int, int, int]] = {}
        for c in cols:
            key = f'to_json("{c}")' if c == "surnames_std" else f'"{c}"'
            filled, distinct, shared = con.sql(
                f"""SELECT coalesce(sum(n), 0), count(*), coalesce(sum(n) FILTER (WHERE n > 1), 0)
                    FROM (SELECT {key} AS v, count(*) AS n FROM mi WHERE "{c}" IS NOT NULL GROUP BY 1)"""
            ).fetchall()[0]
            fields[c] = (int(filled), int(distinct), int(shared))
        shares = ", ".join(f'avg(("{c}" IS NOT NULL)::INT) AS "{c}"' for c in cols)
        rel = con.sql(f"SELECT source_system, {shares} FROM mi GROUP BY 1 ORDER BY 1")
        by_source = {row[0]: {c: round(float(v), 4) for c, v in zip(cols, row[1:], strict=True)}
                     for row in rel.fetchall()}
        housemates = 0
        if {"surname_std", "first_name_std", "birth_year", "address_std"} <= set(cols):
            housemates = con.sql(
                """SELECT count(DISTINCT a.record_key) FROM mi a JOIN mi b
                   ON a.surname_std = b.surname_std AND a.address_std = b.address_std
                   AND a.record_key <> b.record_key
                   WHERE left(a.first_name_std, 1) <> left(b.first_name_std, 1)
                     AND abs(a.birth_year - b.birth_year) >= 2"""
            ).fetchall()[0][0]
        rule_pairs = {cols: _pairs(con, cols) for cols in BROAD_BLOCKING if set(cols) <= set(cols_all)}
        family = 0.0
        if "role" in cols_all and model_in.num_rows:
            family = con.sql("SELECT avg(list_contains($roles, role)::INT) FROM mi",
                             params={"roles": list(FAMILY_ROLES)}).fetchall()[0][0] or 0.0
    finally:
        con.close()
    return FieldProfile(records=model_in.num_rows, fields=fields, by_source=by_source,
                        housemate_share=housemates / model_in.num_rows if model_in.num_rows else 0.0,
                        family_role_share=float(family), rule_pairs=rule_pairs)


def settings_creator(profile: FieldProfile | None = None, *, full_name: bool = True) -> Any:
    """Untrained settings (a Splink ``SettingsCreator``, for any backend): every comparison and
    blocking rule, or with ``profile`` those whose fields the sources fill. Records without
    households (:meth:`FieldProfile.households`) leave the disagreement levels' m to EM."""
    from splink import SettingsCreator

    used = None if profile is None else set(profile.comparisons_used())
    households = profile is None or profile.households()
    chosen = [c for c in comparison_creators(households=households, full_name=full_name)
              if used is None or c.create_output_column_name() in used]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_key",
        comparisons=chosen,
        blocking_rules_to_generate_predictions=blocking_rule_creators(profile),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=["source_system"],
        em_convergence=0.001,
        max_iterations=20,
    )


def settings(profile: FieldProfile | None = None, *, full_name: bool = True) -> dict[str, Any]:
    """:func:`settings_creator` as a Splink settings dict in DuckDB SQL (what :func:`train` starts
    from, with ``full_name=False``)."""
    out = {k: v for k, v in settings_creator(profile, full_name=full_name).create_settings_dict("duckdb").items()
           if v is not None}
    rules = out["blocking_rules_to_generate_predictions"]
    out["blocking_rules_to_generate_predictions"] = [_rule_dict(r) for r in rules]
    return out


# What a trained level carries onto the same definition for another backend (trained_settings).
_TRAINED_LEVEL_KEYS = ("m_probability", "u_probability", "fix_m_probability", "fix_u_probability",
                       "tf_adjustment_column", "tf_adjustment_weight", "tf_minimum_u_value")


def trained_settings(model_json: dict[str, Any]) -> Any:
    """A trained model as a Splink ``SettingsCreator``, for a linker on any backend: this module's
    definitions of the model's comparisons (:func:`comparison_creators`) and blocking rules, with
    the model's settings and trained parameters — the prior; each level's m and u, by comparison
    name and level label; its term-frequency settings. The linker writes the SQL for its backend
    (a model trained on DuckDB, scored on Spark by :mod:`matching.spark`).

    Raises ``ValueError`` when a comparison of the model is not this version's definition (its
    levels' labels or SQL differ: a model trained by an earlier version of the hub), which
    :func:`linker` still scores on DuckDB from its own SQL. A blocking rule that is not one of
    this module's is kept as a DuckDB SQL rule, which Splink translates.
    """
    import dataclasses

    from splink import SettingsCreator
    from splink.blocking_rule_library import CustomRule

    definitions = {c.create_output_column_name(): c for c in comparison_creators()}
    chosen = []
    for trained in model_json["comparisons"]:
        name = trained["output_column_name"]
        if name not in definitions:
            raise ValueError(f"the model's comparison {name!r} is not defined by this version: retrain the model")
        creator = definitions[name]
        defined = creator.create_comparison_dict("duckdb")["comparison_levels"]
        if ([(lv["label_for_charts"], lv["sql_condition"]) for lv in defined]
                != [(lv.get("label_for_charts"), lv["sql_condition"]) for lv in trained["comparison_levels"]]):
            raise ValueError(f"the model's comparison {name!r} differs from this version's definition "
                             "(levels or their SQL): retrain the model, or score it on DuckDB")
        for level, trained_level in zip(creator.create_comparison_levels(), trained["comparison_levels"], strict=True):
            level.configure(**{k: trained_level.get(k) for k in _TRAINED_LEVEL_KEYS})
        chosen.append(creator)
    known = {}
    for cols, spec in (*_BLOCKING_RULES, *((cols, {}) for cols in BROAD_BLOCKING)):
        rule = _rule_creator(cols, spec)
        known[json.dumps(_rule_dict(rule.create_blocking_rule_dict("duckdb")), sort_keys=True)] = rule
    rules = []
    for trained_rule in model_json["blocking_rules_to_generate_predictions"]:
        key = json.dumps(_rule_dict({"sql_dialect": "duckdb", **trained_rule}), sort_keys=True)
        rules.append(known.get(key) or CustomRule(trained_rule["blocking_rule"],
                                                  sql_dialect=trained_rule.get("sql_dialect", "duckdb"),
                                                  arrays_to_explode=trained_rule.get("arrays_to_explode")))
    fields = {f.name for f in dataclasses.fields(SettingsCreator)} - {
        "comparisons", "blocking_rules_to_generate_predictions", "linker_uid"}
    return SettingsCreator(comparisons=chosen, blocking_rules_to_generate_predictions=rules,
                           **{k: v for k, v in model_json.items() if k in fields})


def household_guard(model: dict[str, Any]) -> bool:
    """Whether a model was built for records with households: its first-name disagreement has the
    fixed weight of the household guard (:func:`settings`); the guards of :mod:`matching.resolve`
    then refuse firmly different prénoms, birth dates and twins. Without households those are
    weighed as EM learnt them, like any disagreement."""
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] == "first_name":
            return any(lv.get("fix_m_probability") for lv in comparison["comparison_levels"])
    return True


def model_input(standardised: pa.Table) -> pa.Table:
    """The columns the model reads, from a :func:`matching.standardise.standardise` output.

    Adds ``rare_name_key`` (prénom|name when at most :data:`RARE_NAME_MAX` records carry that
    combination, else null): a blocking key that compares every record of an uncommon name
    while common names are blocked with a postcode or a birth year; ``full_name_std`` (prénom|name,
    the surname comparison's "exact, same prénom" level) and its term frequency in these records
    (``full_name_tf``, :func:`full_name_frequencies`: measured once, for training and scoring); ``city_std`` (the town,
    upper, without accents or punctuation) when the standardised table has no such column; and
    ``given_names_list`` (``given_names_std`` split at its spaces: the prénoms, as a list Splink's
    array levels compare on any backend). A table that already is a model input (it has
    ``rare_name_key``) is returned as it is.
    """
    if "rare_name_key" in standardised.column_names:
        return standardised
    # in Arrow: a DuckDB window count over the name pairs took ~6x longer on 100k records
    table = standardised.select(list(MODEL_COLUMNS))
    names = pc.binary_join_element_wise(table["first_name_std"], table["surname_std"], "|")
    counts = pc.value_counts(names)
    rare = pc.filter(counts.field("values"), pc.less_equal(counts.field("counts"), RARE_NAME_MAX))
    key = pc.if_else(pc.is_in(names, value_set=rare), names, pa.scalar(None, pa.string()))
    table = table.append_column("rare_name_key", key)
    table = table.append_column("full_name_std", names)
    table = _with_full_name_tf(table)
    table = table.append_column("given_names_list", pc.split_pattern(table["given_names_std"], " "))
    table = table.append_column("city_std", _city_key(standardised))
    role = standardised["role"] if "role" in standardised.column_names else pa.nulls(table.num_rows, pa.string())
    return table.append_column("role", role)


def _city_key(standardised: pa.Table) -> pa.Array:
    if "city_std" in standardised.column_names:
        return standardised["city_std"]
    if "city" not in standardised.column_names:
        return pa.nulls(standardised.num_rows, pa.string())
    city = pc.utf8_upper(pc.utf8_normalize(standardised["city"].cast(pa.string()), "NFKD"))
    city = pc.replace_substring_regex(city, r"[^A-Z0-9]+", " ")
    city = pc.utf8_trim_whitespace(city)
    return pc.if_else(pc.equal(city, ""), pa.scalar(None, pa.string()), city)


def training_sample(model_in: pa.Table, size: int | None = TRAIN_SAMPLE, *, seed: int = SEED) -> pa.Table:
    """``model_in`` (a :func:`model_input`) when it holds at most ``size`` records (or ``size`` is
    None), else a uniform sample of ``size`` of its records, seeded (same input, same sample).

    What training estimates does not depend on the population's size: u and the m probabilities
    are shares of pairs, and the prior (pairs that match among all pairs) is kept by a uniform
    sample of records, which keeps a fraction f of the records, f² of the pairs and f² of the
    matching ones. ``rare_name_key`` stays the whole population's (the model input is built first).
    The rule and the figures behind :data:`TRAIN_SAMPLE` are in docs/scale.md.
    """
    if size is None or model_in.num_rows <= size:
        return model_in
    import numpy as np

    picked = np.sort(np.random.default_rng(seed).choice(model_in.num_rows, size=size, replace=False))
    return model_in.take(pa.array(picked))


def _pairs(con: duckdb.DuckDBPyConnection, cols: Sequence[str]) -> int:
    """Record pairs (l < r) a conjunction of equalities on ``cols`` makes in table ``mi``."""
    keys = ", ".join(f'"{c}"' for c in cols)
    nonnull = " AND ".join(f'"{c}" IS NOT NULL' for c in cols)
    return int(con.sql(f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM "
                       f"(SELECT count(*) AS n FROM mi WHERE {nonnull} GROUP BY {keys})").fetchall()[0][0])


@dataclass(frozen=True)
class TrainingPlan:
    """The rules :func:`train` uses on these records, and the candidates it passed over (with why)."""

    deterministic_rules: tuple[str, ...]
    em_rules: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (rule, reason)
    # rules that find pairs but were not needed: tried in order when one of em_rules fails
    spare_rules: tuple[str, ...] = ()


def training_plan(model_in: pa.Table, prof: FieldProfile) -> TrainingPlan:
    """Choose the prior's deterministic rules and the EM rules from the pairs each finds here.

    EM rules: the candidates in order, kept when they find between :data:`EM_MIN_PAIRS` and
    :data:`EM_MAX_PAIRS` pairs, up to :data:`EM_RULES_MAX`, and past that only while a comparison
    has not been left free by any kept rule (its m would stay untrained).
    """
    used = set(prof.comparisons_used())
    skipped: list[tuple[str, str]] = []
    con = resources.connect()
    try:
        con.register("mi", model_in.select([c for c in model_in.column_names if c != "surnames_std"]))
        deterministic = []
        for cols in DETERMINISTIC_CANDIDATES:
            if prof.fills(*cols) and len(deterministic) < 2 and _pairs(con, cols) > 0:
                deterministic.append(_rule_sql(cols))
        # what each comparison reads: Splink leaves a comparison untrained by a rule that reads any of it
        reads = {c["output_column_name"]: columns_read(c) for c in comparisons()}
        em: list[str] = []
        spares: list[str] = []
        untrained = set(used)
        for cols in EM_CANDIDATES:
            rule = _rule_sql(cols)
            if not prof.fills(*cols):
                skipped.append((rule, "a field no source fills"))
                continue
            n = _pairs(con, cols)
            if n < EM_MIN_PAIRS or n > EM_MAX_PAIRS:
                skipped.append((rule, f"{n:,} pairs"))
                continue
            frees = {name for name in used if not reads[name] & set(cols)}
            if not frees:  # every comparison is in the rule: nothing left for EM to estimate
                skipped.append((rule, "leaves no comparison to estimate"))
                continue
            if len(em) >= EM_RULES_MAX and not frees & untrained:
                spares.append(rule)
                continue
            em.append(rule)
            untrained -= frees
    finally:
        con.close()
    return TrainingPlan(tuple(deterministic), tuple(em), tuple(skipped), tuple(spares))


def train(standardised: pa.Table, *, seed: int = SEED, u_max_pairs: float = U_MAX_PAIRS,
          profile_: FieldProfile | None = None) -> dict[str, Any]:
    """Train the model on standardised, live records (or their :func:`model_input`); return the
    model JSON (a dict).

    The comparisons, blocking and training rules come from the fields these records fill
    (:func:`profile`, :func:`training_plan`). Reproducible: the prior is counted by deterministic
    rules, u is sampled with ``seed``, m is estimated by EM on the planned rules. A comparison no
    rule could train keeps Splink's starting m values (floored, see :func:`_floor_probabilities`).
    """
    from splink.internals.exceptions import SplinkException

    mi = model_input(standardised)
    prof = profile_ or profile(mi)
    for name, why in prof.left_out().items():
        log.warning("matching: comparison %r left out: %s", name, why)
    plan = training_plan(mi, prof)
    untrained = settings(prof, full_name=False)
    if not plan.deterministic_rules:
        log.warning("matching: no deterministic rule finds a pair; prior set to %.2g duplicates per record",
                    FALLBACK_DUPLICATES_PER_RECORD)
        # the population's size (the profile's), not the sample's: the prior is a share of its pairs
        untrained["probability_two_random_records_match"] = _fallback_prior(prof.records)
    with resources.connect() as con:
        lk = linker(con, mi, untrained)
        if plan.deterministic_rules:
            lk.training.estimate_probability_two_random_records_match(
                list(plan.deterministic_rules), recall=DETERMINISTIC_RECALL)
        lk.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
        model = lk.misc.save_model_to_json()
    spares = list(plan.spare_rules)
    for i, rule in enumerate(plan.em_rules):
        for attempt in [rule, *spares]:
            if attempt in spares:
                spares.remove(attempt)
            try:
                model = _em_step(mi, model, attempt)
                break
            except (SplinkException, ValueError) as e:
                # EM can drive a level's m to 0 on some data (Splink then refuses the value): the
                # rule is replaced by the next spare one, never a crash; the model stays as it was
                log.warning("matching: training rule %d failed (%s); trying another", i, type(e).__name__)
    model.pop("linker_uid", None)
    _floor_probabilities(model)
    _add_full_name_level(model)
    _round_probabilities(model)
    log.info("trained the matching model on %d records (version %s; comparisons %s; EM rules %d)",
             mi.num_rows, model_version(model), ", ".join(prof.comparisons_used()), len(plan.em_rules))
    return model


def _em_step(model_in: pa.Table, model: dict[str, Any], rule: str) -> dict[str, Any]:
    """``model`` with m estimated by EM on the pairs of ``rule`` (a fresh linker: a failed session
    may leave Splink's settings without the comparisons it set aside)."""
    with resources.connect() as con:
        lk = linker(con, model_in, model)
        lk.training.estimate_parameters_using_expectation_maximisation(rule)
        return lk.misc.save_model_to_json()


def _fallback_prior(n: int) -> float:
    pairs = max(n * (n - 1) / 2, 1)
    return min(0.5, max(1e-9, FALLBACK_DUPLICATES_PER_RECORD * n / pairs))


def linker(con: duckdb.DuckDBPyConnection, table: pa.Table, model: dict[str, Any]) -> Any:
    """A Splink linker over ``table`` (standardised records) in connection ``con``, with the
    full-name term frequencies of these records registered (:func:`register_term_frequencies`)."""
    from splink import Linker

    db_api = resources.splink_api(con)
    mi = model_input(table)
    sdf = db_api.register(mi, dataset_display_name="person_records")
    lk = Linker(sdf, copy.deepcopy(model), log_level=None)
    register_term_frequencies(lk, db_api, mi, model)
    return lk


# How many co-occurrences (records of a prénom beside records of a name) the lift of a full name
# is taken as when the records show none: a prénom seen a handful of times beside a few names
# (a keying variant sharing its surname with the right spelling) is not a community.
FULL_NAME_PSEUDO_COUNT = 2.0
FULL_NAME = "full_name_std"
# The bounds that keep the full names' frequencies linear in the records (docs/scale.md): the
# co-occurrences of prénoms are counted beside a uniform sample of about this many records (all
# of them up to this size) ...
FULL_NAME_COOCCURRENCE_SAMPLE = 300_000
# ... and a full name's lift is averaged over at most this many of its name's other records (a
# uniform sample of the name's records; every one of them when the name has no more).
FULL_NAME_NAME_SAMPLE = 64


def full_name_frequencies(model_in: pa.Table) -> pa.Table:
    """The term frequency of each full name (prénom|name) of ``model_in``, for the surname
    comparison's "exact, same prénom" level: ``full_name_std``, ``tf_full_name_std``.

    Splink adds a prénom's and a name's term-frequency weights, as if prénoms were given
    independently of names. Where names run in communities (a region's Turkish, Congolese,
    Portuguese families), a prénom of the community is far more common among the community's
    names than overall, and two namesakes look rarer than they are. The frequency of the
    combination cannot be read from its own records (two records of one name are as often one
    person as two), so it is measured on the *other* names: for a name ``s`` and a prénom ``f``,
    the other prénoms ``f'`` that ``s`` carries (not one keying error away from ``f``: JHON beside
    JOHN SMITH is most often the same person keyed twice), and how often ``f`` is the prénom of a
    record sharing its name with an ``f'`` record, elsewhere than ``s`` — against how often it
    would be if prénoms and names were independent (``f``'s share of the records other than
    ``f'``'s). That ratio (the lift, averaged over ``s``'s other records, shrunk towards 1 by
    :data:`FULL_NAME_PSEUDO_COUNT`
    co-occurrences) multiplies the name's own frequency (its share of the records with a name,
    as Splink counts ``surname_std``), never divides it: where prénoms and names are independent,
    the weight of a full name stays the sum of its two parts'.

    Counted exactly, this pairs every two prénoms of each name: a cost that grows faster than the
    records (a name carries more distinct prénoms in a larger population). Two uniform samples,
    drawn by a hash of each record (same records, same samples), bound it: the ``f'`` records
    whose name-mates are counted are a sample of about :data:`FULL_NAME_COOCCURRENCE_SAMPLE`
    records (a ratio of co-occurrences over a uniform sample of records; with fewer records counted,
    the pseudo-count shrinks a rare pair's lift further towards 1, never away from it), and a full
    name's lift is averaged over at most :data:`FULL_NAME_NAME_SAMPLE` of its name's records (an
    average over a uniform sample of them). Up to those sizes every record is counted.
    """
    c = FULL_NAME_PSEUDO_COUNT
    con = resources.connect()
    try:
        con.register("mi_fn", model_in.select(["first_name_std", "surname_std"]))
        for name, sql in (
            ("cnt", """SELECT first_name_std AS f, surname_std AS s, count(*) AS n FROM mi_fn
                       WHERE first_name_std IS NOT NULL AND surname_std IS NOT NULL GROUP BY 1, 2"""),
            ("ns", "SELECT s, sum(n) AS ns FROM cnt GROUP BY 1"),
            ("nf", "SELECT f, sum(n) AS nf FROM cnt GROUP BY 1"),
            # every record (the records of one full name are alike: numbered i), with a hash
            ("rec", "SELECT f, s, hash(f, s, i) AS h FROM (SELECT f, s, unnest(range(n)) AS i FROM cnt)"),
            # the records whose name-mates are counted: a uniform sample (all, up to its size) ...
            ("g", f"""SELECT f, s, count(*) AS g FROM rec
                      WHERE h % 1000000 < 1000000.0 * {FULL_NAME_COOCCURRENCE_SAMPLE} / (SELECT sum(n) FROM cnt)
                      GROUP BY 1, 2"""),
            # ... and, per name, the records a lift is averaged over
            ("averaged", f"""SELECT f, s, count(*) AS w FROM (
                          SELECT f, s, row_number() OVER (PARTITION BY s ORDER BY h, f) AS r FROM rec)
                        WHERE r <= {FULL_NAME_NAME_SAMPLE} GROUP BY 1, 2"""),
            # prénoms one keying error apart (Damerau-Levenshtein 1): every such pair shares a string
            # with one character deleted (or none) from each, the candidates then checked
            ("deletions", """SELECT f, f AS k FROM nf UNION ALL
                       SELECT f, substr(f, 1, i - 1) || substr(f, i + 1) FROM
                           (SELECT f, unnest(range(1, length(f) + 1)) AS i FROM nf)"""),
            ("variant", """SELECT DISTINCT a.f AS f1, b.f FROM deletions a JOIN deletions b USING (k)
                           WHERE a.f <> b.f AND damerau_levenshtein(a.f, b.f) <= 1"""),
            # per prénom f': its counted records' name-mates (another record of the same name) ...
            ("mates", "SELECT g.f, sum(g.g * (ns.ns - 1)) AS m FROM g JOIN ns USING (s) GROUP BY 1"),
            # ... and those whose prénom is f
            ("hits", """SELECT a.f AS f1, b.f, sum(a.g * b.n) AS h
                        FROM g a JOIN cnt b USING (s) WHERE a.f <> b.f GROUP BY 1, 2"""),
            # the other prénoms f' of each name, with what the lift reads of them
            ("other", """SELECT o.s, o.f AS f1, o.w, coalesce(g.g, 0) AS g, coalesce(m.m, 0) AS m, nf.nf AS nf1
                         FROM averaged o LEFT JOIN g USING (f, s) LEFT JOIN mates m USING (f) JOIN nf USING (f)"""),
            # for each full name (f, s): the other prénoms f' of s (not a keying variant of f, which
            # under the same name is most often the same person's record), their co-occurrences without s
            # (a mate is another record than the f' one: f's share among them is nf(f) / (N - nf(f')))
            ("lift", f"""SELECT c.f, c.s, sum(o.w * (coalesce(h.h, 0) - o.g * c.n + {c})
                                    / ((o.m - o.g * (ns.ns - 1)) * nf.nf / (t.total - o.nf1) + {c})) / sum(o.w) AS lift
                         FROM cnt c JOIN other o ON o.s = c.s AND o.f1 <> c.f
                         ANTI JOIN variant v ON v.f1 = o.f1 AND v.f = c.f
                         LEFT JOIN hits h ON h.f1 = o.f1 AND h.f = c.f
                         JOIN ns ON ns.s = c.s JOIN nf ON nf.f = c.f
                         CROSS JOIN (SELECT sum(n) AS total FROM cnt) t
                         GROUP BY 1, 2"""),
        ):
            con.execute(f"CREATE TEMP TABLE {name} AS {sql}")
        return con.sql(
            f"""
            WITH ps AS (SELECT surname_std AS s, count(*) / sum(count(*)) OVER () AS ps FROM mi_fn
                        WHERE surname_std IS NOT NULL GROUP BY 1)
            SELECT cnt.f || '|' || cnt.s AS {FULL_NAME},
                   ps.ps * greatest(coalesce(lift.lift, 1.0), 1.0) AS tf_{FULL_NAME}
            FROM cnt JOIN ps USING (s) LEFT JOIN lift USING (f, s)
            """
        ).to_arrow_table()
    finally:
        con.close()


def _with_full_name_tf(table: pa.Table) -> pa.Table:
    """``table`` (a model input) with ``full_name_tf``: its full name's term frequency."""
    tf = full_name_frequencies(table)
    at = pc.index_in(table[FULL_NAME], value_set=tf[FULL_NAME])  # row order kept
    return table.append_column("full_name_tf", pc.take(tf[f"tf_{FULL_NAME}"], at))


def register_term_frequencies(lk: Any, db_api: Any, model_in: pa.Table, model: dict[str, Any]) -> None:
    """Register the full-name term frequencies of ``model_in`` (its ``full_name_tf``, see
    :func:`full_name_frequencies`) in linker ``lk`` (any backend's ``db_api``) when ``model``
    adjusts a level on them; Splink counts the other term frequencies itself."""
    if FULL_NAME not in {lv.get("tf_adjustment_column") for c in model["comparisons"]
                         for lv in c["comparison_levels"]}:
        return
    import uuid

    con = resources.connect()
    try:
        con.register("mi_tf", model_in.select([FULL_NAME, "full_name_tf"]))
        lookup = con.sql(f"""SELECT {FULL_NAME}, any_value(full_name_tf) AS tf_{FULL_NAME} FROM mi_tf
                             WHERE {FULL_NAME} IS NOT NULL GROUP BY 1""").to_arrow_table()
    finally:
        con.close()
    table = db_api.register(lookup, dataset_display_name=f"__hub_tf_{FULL_NAME}_{uuid.uuid4().hex[:8]}")
    lk.table_management.register_term_frequency_lookup(table, FULL_NAME)


def _floor_probabilities(model: dict[str, Any]) -> None:
    """Raise m / u probabilities below :data:`PROBABILITY_FLOOR` (or missing) to it, in place.

    Fixed m probabilities are left alone; the others of the comparison are rescaled so that
    the m (u) probabilities still sum to 1.
    """
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        u_exact_floor = U_FLOOR_EXACT.get(comparison["output_column_name"], PROBABILITY_FLOOR)
        for key, fixed_key in (("m_probability", "fix_m_probability"), ("u_probability", "fix_u_probability")):
            fixed = [lv for lv in levels if lv.get(fixed_key)]
            free = [lv for lv in levels if not lv.get(fixed_key)]
            for lv in free:
                floor = (u_exact_floor if key == "u_probability" and lv.get("label_for_charts") == "exact"
                         else PROBABILITY_FLOOR)
                if lv.get(key) is None or lv[key] < floor:
                    lv[key] = floor
            budget = 1.0 - sum(lv[key] for lv in fixed)
            total = sum(lv[key] for lv in free)
            if total > 0 and budget > 0:
                for lv in free:
                    lv[key] = lv[key] * budget / total


def _add_full_name_level(model: dict[str, Any]) -> None:
    """Add the surname's "exact, same prénom" level to a trained model, with the m and u of its
    "exact" level, in place.

    The two levels are one agreement (the same name), told apart only to weigh it on another term
    frequency (:func:`full_name_frequencies`): the model is trained without the level and both
    carry the name agreement's m and u. (Trained apart, the "exact" level's m would be the share of
    true matches whose names agree *and prénoms differ*, and a prénom written another way would
    count twice; its m no longer sum to 1 with the other levels', a match weight reads each
    level's own.)
    """
    defined = {c["output_column_name"]: c for c in comparisons()}
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] != "surname":
            continue
        levels = comparison["comparison_levels"]
        labels = [lv.get("label_for_charts") for lv in levels]
        if "exact, same prénom" in labels or "exact" not in labels:
            return
        new = next(lv for lv in defined["surname"]["comparison_levels"]
                   if lv.get("label_for_charts") == "exact, same prénom")
        exact = levels[labels.index("exact")]
        new = {**new, **{k: exact[k] for k in ("m_probability", "u_probability") if k in exact}}
        levels.insert(labels.index("exact"), new)


SIGNIFICANT_DIGITS = 10


def _round_probabilities(model: dict[str, Any]) -> None:
    """Round trained probabilities to :data:`SIGNIFICANT_DIGITS`, in place.

    DuckDB aggregates in parallel, so two trainings on the same rows differ in the last bits
    (~1e-16): rounded, the same input gives the same model JSON and version every run.
    """
    def r(x: float) -> float:
        return float(f"{x:.{SIGNIFICANT_DIGITS}g}")

    if model.get("probability_two_random_records_match") is not None:
        model["probability_two_random_records_match"] = r(model["probability_two_random_records_match"])
    for comparison in model["comparisons"]:
        for lv in comparison["comparison_levels"]:
            for key in ("m_probability", "u_probability"):
                if isinstance(lv.get(key), float):
                    lv[key] = r(lv[key])


def model_version(model_json: dict[str, Any]) -> str:
    """A short content hash of the model (settings and trained parameters) and of what shapes its
    input outside the JSON (:data:`RARE_NAME_MAX`, which decides the ``rare_name_key`` its blocking
    rules read): changing either is a different model."""
    body = {k: v for k, v in model_json.items() if k != "linker_uid"}
    body["hub_model_input"] = {"rare_name_max": RARE_NAME_MAX, "full_name_pseudo_count": FULL_NAME_PSEUDO_COUNT,
                               "full_name_samples": [FULL_NAME_COOCCURRENCE_SAMPLE, FULL_NAME_NAME_SAMPLE]}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    return f"m-{digest[:12]}"


def save_model(model_json: dict[str, Any], path: str | Path) -> Path:
    """Write the model JSON (stable key order, so the file diff shows what changed)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(model_json, indent=1, sort_keys=True), encoding="utf-8")
    return p


def load_model(path: str | Path) -> dict[str, Any]:
    """Read a model JSON written by :func:`save_model` (or Splink's ``save_model_to_json``)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
