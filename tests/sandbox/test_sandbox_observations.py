"""How the silos see the commune: coverage, record keys, noise rates, hard negatives."""

from __future__ import annotations

import re
from collections import Counter

import pyarrow as pa
import pytest

from sandbox import Observations, Population, person_records, to_person_records
from sandbox.observations import format_phone, typo
from sandbox.population import REFERENCE_DATE, ascii_fold
from schemas.contract import PERSON_RECORD

KEY_PATTERNS = {
    "finance": r"finance:tiers/\d+",
    "family": r"family:(responsable|enfant)/\d+",
    "associations": r"associations:dirigeant/\d+",
    "salesforce": r"salesforce:contact/003[0-9A-Za-z]{15}",
    "servicenow": r"servicenow:sys_user/[0-9a-f]{32}",
}


@pytest.fixture(scope="module")
def records(observations: Observations) -> pa.Table:
    return to_person_records(observations)


@pytest.fixture(scope="module")
def truth(population: Population) -> dict[int, dict]:
    return {r["person_id"]: r for r in population.persons.to_pylist()}


def _norm(name: str | None) -> str | None:
    return None if name is None else ascii_fold(name).upper().replace("-", " ")


def test_person_records_have_the_contract_columns_plus_person_id(records: pa.Table):
    assert records.column_names == [*PERSON_RECORD.column_names, "person_id"]
    keys = records.column("record_key").to_pylist()
    assert len(keys) == len(set(keys))
    for system, key, source_id in zip(records.column("source_system").to_pylist(), keys,
                                      records.column("source_id").to_pylist(), strict=True):
        assert re.fullmatch(KEY_PATTERNS[system], key)
        assert key == f"{system}:{source_id}"
    assert records.column("updated_at").type == pa.timestamp("us", tz="UTC")


def test_person_records_are_deterministic():
    a, b, c = person_records(400, seed=1), person_records(400, seed=1), person_records(400, seed=2)
    assert a.equals(b)
    assert not a.equals(c)


def test_finance_covers_about_forty_percent_of_households(observations: Observations, population: Population):
    share = len(set(observations.finance_tiers.column("household_id").to_pylist())) / population.households.num_rows
    assert 0.33 < share < 0.47
    per_household = Counter(observations.finance_tiers.column("household_id").to_pylist())
    persons_per_h = Counter((h, p) for h, p in zip(observations.finance_tiers.column("household_id").to_pylist(),
                                                   observations.finance_tiers.column("person_id").to_pylist(),
                                                   strict=True))
    assert max(len({p for (h2, p) in persons_per_h if h2 == h}) for h in per_household) == 2


def test_family_portal_holds_households_with_children_3_to_17(observations: Observations, population: Population):
    persons = population.persons.to_pylist()
    age = {r["person_id"]: (REFERENCE_DATE - r["birth_date"]).days / 365.25 for r in persons}
    kids_3_17 = {r["person_id"] for r in persons if r["household_role"] == "enfant" and 3 <= age[r["person_id"]] < 18}
    homes = {r["household_id"] for r in persons if r["person_id"] in kids_3_17}
    adults = {r["person_id"] for r in persons if r["household_id"] in homes and r["household_role"] != "enfant"}
    assert set(observations.family_enfants.column("person_id").to_pylist()) == kids_3_17
    assert set(observations.family_responsables.column("person_id").to_pylist()) == adults


def test_associations_have_two_or_three_dirigeants_and_some_parents_are_everywhere(observations: Observations):
    sizes = Counter(observations.dirigeants.column("association").to_pylist())
    assert set(list(sizes.values())[:-1]) <= {2, 3}  # the last association may be cut short
    fin = set(observations.finance_tiers.column("person_id").to_pylist())
    fam = set(observations.family_responsables.column("person_id").to_pylist())
    d = set(observations.dirigeants.column("person_id").to_pylist())
    assert len(fin & fam & d) >= 2


def test_finance_writes_upper_case_first_prenom_and_duplicates_some_people(observations: Observations, truth):
    t = observations.finance_tiers.to_pylist()
    assert all(r["nom"] == r["nom"].upper() and r["prenom"] == r["prenom"].upper() for r in t)
    dup = Counter(r["person_id"] for r in t)
    rate = sum(n - 1 for n in dup.values()) / len(t)
    assert 0.005 < rate < 0.05
    # first prénom only: never more prénoms than the truth's first (modulo hyphen/space)
    firsts = sum(_norm(r["prenom"]) == _norm(truth[r["person_id"]]["given_names"].split(" ")[0]) for r in t)
    assert firsts / len(t) > 0.9


def test_name_typo_rate_is_a_few_percent(observations: Observations, truth):
    t = observations.finance_tiers.to_pylist()
    wrong = sum(_norm(r["nom"]) != _norm(truth[r["person_id"]]["usage_name"])
                or _norm(r["prenom"]) != _norm(truth[r["person_id"]]["given_names"].split(" ")[0]) for r in t)
    assert 0.01 < wrong / len(t) < 0.09


def test_birth_dates_mostly_exact_some_day_month_swapped(observations: Observations, truth):
    rows = observations.family_responsables.to_pylist() + observations.family_enfants.to_pylist()
    off = [(r["date_naissance"], truth[r["person_id"]]["birth_date"]) for r in rows
           if r["date_naissance"] != truth[r["person_id"]]["birth_date"]]
    assert len(off) / len(rows) < 0.02
    assert all((seen.day, seen.month) == (real.month, real.day) for seen, real in off)


def test_phones_come_in_several_formats(observations: Observations):
    phones = [p for p in observations.finance_tiers.column("telephone").to_pylist() if p]
    kinds = {("pairs" if re.fullmatch(r"0\d( \d\d){4}", p) else "e164" if re.fullmatch(r"\+33\d{9}", p)
              else "nine" if re.fullmatch(r"[1-9]\d{8}", p) else "other") for p in phones}
    assert {"pairs", "e164", "nine"} <= kinds
    assert 0.5 < len(phones) / observations.finance_tiers.num_rows < 0.95


def test_an_old_address_survives_in_some_silo_after_a_move(observations: Observations, truth):
    stale = [r for r in observations.finance_tiers.to_pylist()
             if truth[r["person_id"]]["previous_address_line"]
             and r["code_postal"] == truth[r["person_id"]]["previous_postcode"]
             and ascii_fold(truth[r["person_id"]]["previous_address_line"].split(" ")[-1]).upper() in r["adresse"]]
    assert stale


def test_married_women_appear_under_both_names(records: pa.Table, truth):
    rows = records.to_pylist()
    differ = [r for r in rows if truth[r["person_id"]]["birth_name"] != truth[r["person_id"]]["usage_name"]]
    assert any(r["birth_name"] is not None for r in differ)
    assert any(r["birth_name"] is None for r in differ)


def test_twins_are_hard_negatives_in_the_family_portal(observations: Observations, population: Population):
    twins = set(population.persons.filter(population.persons.column("is_twin")).column("person_id").to_pylist())
    kids = [r for r in observations.family_enfants.to_pylist() if r["person_id"] in twins]
    by_family = Counter((r["famille_id"], r["date_naissance"]) for r in kids)
    assert any(n >= 2 for n in by_family.values())


@pytest.mark.parametrize(("style", "expected"), [(0, "06 12 34 56 78"), (1, "0612345678"), (2, "+33612345678"),
                                                 (3, "+33 6 12 34 56 78"), (4, "612345678"), (5, "06.12.34.56.78")],
                         ids=["pairs", "national", "e164", "e164-spaced", "nine-digits", "dots"])
def test_format_phone(style: int, expected: str):
    assert format_phone("+33612345678", style) == expected


@pytest.mark.parametrize("op", [0, 1, 2, 3], ids=["substitute", "delete", "transpose", "double"])
def test_typo_changes_one_character_and_keeps_the_first(op: int):
    out = typo("Lefebvre", op, 0.5, 1)
    assert out != "Lefebvre" and out[0] == "L" and abs(len(out) - 8) <= 1

