"""The Splink model as data: settings in code, trained parameters saved as versioned JSON.

One ``dedupe_only`` model over the union of every silo's standardised person records
(``source_system`` is a column). Comparisons are written for French / Belgian data in raw
DuckDB SQL so that the model JSON reads as what it does.

Household guard (see docs in :mod:`matching.resolve`): the first-name "else" level has a fixed,
very small m probability, so that a different prénom outweighs a shared surname, address,
phone, e-mail and even a shared birth date (twins).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

SEED = 42
U_MAX_PAIRS = 2_000_000
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
# first, see matching.resolve.null_shared_contacts), and the general floor capped a shared
# e-mail / phone at ~10 bits, leaving same-name records with one common contact unlinked.
U_FLOOR_EXACT = {"email": 1e-5, "phone": 1e-5}

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
)


def _level(sql: str, label: str, **extra: Any) -> dict[str, Any]:
    return {"sql_condition": sql, "label_for_charts": label, **extra}


def _null(*cols: str, any_side: bool = True) -> dict[str, Any]:
    cond = " OR ".join(f'"{c}_l" IS NULL OR "{c}_r" IS NULL' for c in cols)
    return _level(cond, "null", is_null_level=True)


def comparisons() -> list[dict[str, Any]]:
    """The comparison definitions (Splink dicts, DuckDB SQL)."""
    first_name = {
        "output_column_name": "first_name",
        "comparison_description": "first prénom; a typo, a cut compound, similar and other prénoms as weaker levels",
        "comparison_levels": [
            _null("first_name_std"),
            _level('"first_name_std_l" = "first_name_std_r"', "exact",
                   tf_adjustment_column="first_name_std", tf_adjustment_weight=1.0),
            # a keying error: one letter substituted, missed, doubled or two swapped (ERCI, PIERRRE)
            _level('damerau_levenshtein("first_name_std_l", "first_name_std_r") = 1', "one edit"),
            # JEAN vs JEAN-PIERRE: a compound prénom cut by one silo. Only at a separator the
            # other silo wrote: GABRIEL / GABRIELLE or JEAN / JEANNE are not a cut compound.
            _level('"first_name_key_l" = "first_name_std_r" OR "first_name_key_r" = "first_name_std_l"',
                   "compound cut"),
            # similar spellings (STEPHANIE / STEFANIE), but also different prénoms (MARIE / MARTINE)
            _level('jaro_winkler_similarity("first_name_std_l", "first_name_std_r") >= 0.92', "jw >= 0.92"),
            _level('jaro_winkler_similarity("first_name_std_l", "first_name_std_r") >= 0.85', "jw >= 0.85"),
            # MARIE ANNE vs ANNE MARIE; weak: siblings and twins share middle prénoms too
            _level("list_has_any(string_split(\"given_names_std_l\", ' '), "
                   "string_split(\"given_names_std_r\", ' '))", "another prénom shared"),
            _level("ELSE", "different",
                   m_probability=FIRST_NAME_DISAGREE_M, fix_m_probability=True),
        ],
    }
    surname = {
        "output_column_name": "surname",
        "comparison_description": "birth and usage names, compared both ways",
        "comparison_levels": [
            _null("surnames_std"),
            _level('"surname_std_l" = "surname_std_r"', "exact",
                   tf_adjustment_column="surname_std", tf_adjustment_weight=1.0),
            _level('list_has_any("surnames_std_l", "surnames_std_r")', "birth / usage name shared"),
            _level('jaro_winkler_similarity("surname_std_l", "surname_std_r") >= 0.92', "jw >= 0.92"),
            _level('jaro_winkler_similarity("surname_std_l", "surname_std_r") >= 0.8', "jw >= 0.8"),
            _level("ELSE", "different", m_probability=DISAGREE_M["surname"], fix_m_probability=True),
        ],
    }
    dob = {
        "output_column_name": "birth_date",
        "comparison_description": "birth date; presumed dates (YYYY-01-01) compare on year only",
        "comparison_levels": [
            _null("birth_year"),
            _level('"birth_date_std_l" = "birth_date_std_r"', "exact"),
            _level(
                '"birth_year_l" = "birth_year_r" AND "birth_month_l" = "birth_day_r" '
                'AND "birth_day_l" = "birth_month_r"',
                "day and month swapped",
            ),
            _level(
                "levenshtein(strftime(\"birth_date_std_l\", '%Y%m%d'), "
                "strftime(\"birth_date_std_r\", '%Y%m%d')) = 1",
                "one digit differs",
            ),
            _level('"birth_year_l" = "birth_year_r" AND "birth_month_l" = "birth_month_r"', "same year-month"),
            _level(
                '"birth_year_l" = "birth_year_r" AND ("birth_month_l" IS NULL OR "birth_month_r" IS NULL)',
                "same year, day-month unknown",
            ),
            _level("ELSE", "different", m_probability=DISAGREE_M["birth_date"], fix_m_probability=True),
        ],
    }
    email = {
        "output_column_name": "email",
        "comparison_levels": [
            _null("email_std"),
            _level('"email_std_l" = "email_std_r"', "exact"),
            _level("ELSE", "different", m_probability=DISAGREE_M["email"], fix_m_probability=True),
        ],
    }
    phone = {
        "output_column_name": "phone",
        "comparison_levels": [
            _null("phone_std"),
            _level('"phone_std_l" = "phone_std_r"', "exact"),
            # a landline here and a mobile there is no disagreement: people have both
            _level("NOT (regexp_matches(\"phone_std_l\", '^\\+33[67]') "
                   "AND regexp_matches(\"phone_std_r\", '^\\+33[67]'))", "not two mobiles"),
            _level("ELSE", "two different mobiles", m_probability=DISAGREE_M["phone"], fix_m_probability=True),
        ],
    }
    address = {
        "output_column_name": "address",
        "comparison_description": "street line and French / Belgian postcode",
        "comparison_levels": [
            _null("postcode_std"),
            _level('"address_std_l" = "address_std_r" AND "postcode_std_l" = "postcode_std_r"', "exact"),
            _level(
                '"postcode_std_l" = "postcode_std_r" '
                'AND jaro_winkler_similarity("address_std_l", "address_std_r") >= 0.9',
                "same postcode, similar street",
            ),
            _level('"postcode_std_l" = "postcode_std_r"', "same postcode"),
            _level('left("postcode_std_l", 2) = left("postcode_std_r", 2)', "same département"),
            _level("ELSE", "different"),
        ],
    }
    sex = {
        "output_column_name": "sex",
        "comparison_levels": [
            _null("sex_std"),
            _level('"sex_std_l" = "sex_std_r"', "exact"),
            _level("ELSE", "different", m_probability=DISAGREE_M["sex"], fix_m_probability=True),
        ],
    }
    return [first_name, surname, dob, email, phone, address, sex]


def blocking_rules() -> list[dict[str, Any]]:
    """Blocking rules for predictions (recall measured in bench/resolution.py)."""
    return [
        {"blocking_rule": 'l."rare_name_key" = r."rare_name_key"'},
        # Same prénom and name alone makes blocks that grow with the square of the population
        # (thousands of MARIE MARTIN in a métropole): always add a postcode or a birth year.
        # The prénom is its first part (JEAN for JEAN-PIERRE): one silo keeps a compound prénom
        # whole, another cuts it.
        {"blocking_rule": 'l."first_name_key" = r."first_name_key" AND l."surnames_std" = r."surnames_std" '
                          'AND l."postcode_std" = r."postcode_std"',
         "arrays_to_explode": ["surnames_std"]},
        {"blocking_rule": 'l."first_name_key" = r."first_name_key" AND l."surnames_std" = r."surnames_std" '
                          'AND l."birth_year" = r."birth_year"',
         "arrays_to_explode": ["surnames_std"]},
        {"blocking_rule": 'l."birth_date_std" = r."birth_date_std" AND l."first_name_key" = r."first_name_key"'},
        {"blocking_rule": 'l."birth_date_std" = r."birth_date_std" AND l."surname_std" = r."surname_std"'},
        # a surname change (marriage) with no birth date: same prénom at the same street line
        {"blocking_rule": 'l."first_name_key" = r."first_name_key" AND l."address_std" = r."address_std"'},
        # a typo in the prénom with no birth date: same name at the same street line
        {"blocking_rule": 'l."surnames_std" = r."surnames_std" AND l."address_std" = r."address_std"',
         "arrays_to_explode": ["surnames_std"]},
        {"blocking_rule": 'l."phone_std" = r."phone_std"'},
        {"blocking_rule": 'l."email_std" = r."email_std"'},
        {"blocking_rule": 'l."birth_date_std" = r."birth_date_std" AND l."postcode_std" = r."postcode_std"'},
    ]


# Rules for EM: each leaves the comparisons it does not use free to be estimated. Each stays
# household-sized at a million records (prénom + name alone would not: see blocking_rules).
EM_BLOCKING_RULES = (
    'l."first_name_std" = r."first_name_std" AND l."surname_std" = r."surname_std" '
    'AND l."postcode_std" = r."postcode_std"',
    'l."birth_date_std" = r."birth_date_std"',
    'l."phone_std" = r."phone_std" AND l."postcode_std" = r."postcode_std"',
)

# Deterministic rules (with their assumed recall) to estimate the prior.
DETERMINISTIC_RULES = (
    'l."first_name_std" = r."first_name_std" AND l."surname_std" = r."surname_std" '
    'AND l."birth_date_std" = r."birth_date_std"',
    'l."first_name_std" = r."first_name_std" AND l."surname_std" = r."surname_std" '
    'AND l."email_std" = r."email_std"',
)
DETERMINISTIC_RECALL = 0.8


def settings() -> dict[str, Any]:
    """Untrained Splink settings."""
    return {
        "link_type": "dedupe_only",
        "unique_id_column_name": "record_key",
        "comparisons": comparisons(),
        "blocking_rules_to_generate_predictions": blocking_rules(),
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
        "additional_columns_to_retain": ["source_system"],
        "em_convergence": 0.001,
        "max_iterations": 20,
    }


def model_input(standardised: pa.Table) -> pa.Table:
    """The columns the model reads, from a :func:`matching.standardise.standardise` output.

    Adds ``rare_name_key`` (prénom|name when at most :data:`RARE_NAME_MAX` records carry that
    combination, else null): a blocking key that compares every record of an uncommon name
    while common names are blocked with a postcode or a birth year. A table that already is a
    model input (it has ``rare_name_key``) is returned as it is.
    """
    if "rare_name_key" in standardised.column_names:
        return standardised
    # in Arrow: a DuckDB window count over the name pairs took ~6x longer on 100k records
    table = standardised.select(list(MODEL_COLUMNS))
    names = pc.binary_join_element_wise(table["first_name_std"], table["surname_std"], "|")
    counts = pc.value_counts(names)
    rare = pc.filter(counts.field("values"), pc.less_equal(counts.field("counts"), RARE_NAME_MAX))
    key = pc.if_else(pc.is_in(names, value_set=rare), names, pa.scalar(None, pa.string()))
    return table.append_column("rare_name_key", key)


def linker(con: duckdb.DuckDBPyConnection, table: pa.Table, model: dict[str, Any]) -> Any:
    """A Splink linker over ``table`` (standardised records) in connection ``con``."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register(model_input(table), dataset_display_name="person_records")
    return Linker(sdf, copy.deepcopy(model), log_level=None)


def train(standardised: pa.Table, *, seed: int = SEED, u_max_pairs: float = U_MAX_PAIRS) -> dict[str, Any]:
    """Train the model on standardised, live records (or their :func:`model_input`); return the
    model JSON (a dict).

    Reproducible: the prior is counted by deterministic rules, u is sampled with ``seed``, m is
    estimated by EM on fixed blocking rules.
    """
    con = duckdb.connect()
    try:
        lk = linker(con, standardised, settings())
        lk.training.estimate_probability_two_random_records_match(
            list(DETERMINISTIC_RULES), recall=DETERMINISTIC_RECALL
        )
        lk.training.estimate_u_using_random_sampling(max_pairs=u_max_pairs, seed=seed)
        for rule in EM_BLOCKING_RULES:
            lk.training.estimate_parameters_using_expectation_maximisation(rule)
        model = lk.misc.save_model_to_json()
    finally:
        con.close()
    model.pop("linker_uid", None)
    _floor_probabilities(model)
    _round_probabilities(model)
    log.info("trained the matching model on %d records (version %s)", standardised.num_rows,
             model_version(model))
    return model


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
    body["hub_model_input"] = {"rare_name_max": RARE_NAME_MAX}
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
