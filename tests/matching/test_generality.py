"""The model adapts to the records it is given: fields nobody fills, training rules that find no
pairs, files without households, a prénom written another way, missing dates (issue 11)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from matching import model as mdl
from matching.evaluate import pairwise_scores
from matching.identity import assign_citizen_ids
from matching.resolve import prepare, resolve

from .conftest import make_records

GIVEN = ["olivia", "jack", "charlotte", "william", "amelia", "noah", "isla", "oliver", "mia", "thomas",
         "grace", "james", "chloe", "lucas", "emily", "henry", "sophie", "ethan", "ruby", "liam"]
FAMILY = ["smith", "jones", "williams", "brown", "wilson", "taylor", "johnson", "white", "martin",
          "anderson", "thompson", "nguyen", "thomas", "walker", "harris", "lee", "ryan", "robinson",
          "kelly", "king", "davis", "wright", "evans", "roberts", "green", "hall", "wood", "jackson",
          "clarke", "patel", "khan", "lewis", "james", "phillips", "mason", "mitchell", "rose", "davies",
          "rodriguez", "cox", "alexander", "morgan", "moore", "mills", "murray", "fraser", "hughes"]
STREETS = ["station street", "church street", "park road", "high street", "victoria street", "george street",
           "king street", "queen street", "railway parade", "william street", "short street", "hill street"]


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]  # two letters swapped


def foreign_file(n: int = 600, seed: int = 7, *, dob: bool = True, postcode: bool = True) -> pa.Table:
    """A single foreign file of people living alone, a third of them keyed twice, most with a typo in
    one field (FEBRL-like): no phone, no e-mail, no sex, no role words, no update date."""
    rng = random.Random(seed)
    rows = []
    for p in range(n):
        person = {
            "given_names": rng.choice(GIVEN), "usage_name": rng.choice(FAMILY) + rng.choice(["", "s", "e", "son"]),
            "birth_date": date(1930, 1, 1) + timedelta(days=rng.randrange(70 * 365)) if dob else None,
            "address_line": f"{rng.randrange(1, 300)} {rng.choice(STREETS)}",
            "postcode": str(rng.randrange(2000, 7000)) if postcode else None, "city": "springfield",
        }
        copies = [person]
        if p % 3 == 0:  # keyed twice: as it was, or with a typo in one field
            dup = dict(person)
            field = rng.choice(["given_names", "usage_name", "address_line", None])
            if field:
                dup[field] = _typo(rng, dup[field])
            copies.append(dup)
        for k, rec in enumerate(copies):
            rows.append({**rec, "source_system": "people", "source_id": f"{p}-{k}", "role": "personne",
                         "updated_at": None, "person_id": str(p)})
    table = make_records(*rows)
    return table.append_column("person_id", pa.array([r["person_id"] for r in rows]))


def _scores(records: pa.Table, **kwargs) -> dict:
    res = resolve(records.drop(["person_id"]), **kwargs)
    return pairwise_scores(assign_citizen_ids(res.links), records.select(["record_key", "person_id"]))


@pytest.mark.parametrize("dob, postcode, recall", [(True, True, 0.95), (False, True, 0.95), (True, False, 0.95),
                                                   (False, False, 0.8)],
                         ids=["all fields", "no birth date", "no postcode", "names and street only"])
def test_a_file_missing_fields_trains_and_finds_its_duplicates(dob, postcode, recall):
    records = foreign_file(dob=dob, postcode=postcode)
    prof = mdl.profile(mdl.model_input(prepare(records.drop(["person_id"]))))
    left_out = prof.left_out()
    # nobody fills phone, e-mail or sex: left out with a reason, never trained on nothing
    assert {"phone", "email", "sex"} <= set(left_out) and "no source fills" in left_out["phone"]
    assert ("birth_date" in left_out) is not dob
    scores = _scores(records)
    # one town, 20 prénoms: a typo in the name with only the street line besides is weak evidence
    assert scores["precision"] >= 0.99 and scores["recall"] >= recall, scores


def test_a_training_rule_that_finds_no_pairs_is_replaced_not_fatal():
    records = foreign_file(n=300).drop(["person_id"])
    # everyone has a phone, nobody shares one: the phone rules find no pairs
    phones = pa.array([f"+6140{i:07d}" for i in range(records.num_rows)])
    records = records.set_column(records.schema.get_field_index("phone"), "phone", phones)
    mi = mdl.model_input(prepare(records))
    plan = mdl.training_plan(mi, mdl.profile(mi))
    assert plan.em_rules and not any("phone_std" in rule for rule in plan.em_rules)
    assert any("phone_std" in rule for rule, _why in plan.skipped)
    assert resolve(records).links.num_rows == records.num_rows


def test_a_file_of_people_alone_shows_no_households_and_the_sandbox_does(sandbox_records):
    alone = mdl.profile(mdl.model_input(prepare(foreign_file().drop(["person_id"]))))
    commune = mdl.profile(mdl.model_input(prepare(sandbox_records)))
    assert not alone.households() and commune.households()
    # the household guard's fixed disagreement weights only where there are households
    assert not mdl.household_guard(mdl.settings(alone)) and mdl.household_guard(mdl.settings(commune))


def test_a_missing_update_date_changes_nothing(resolution):
    # JEAN CASTONES, 8, on the family file, and a finance débiteur JEAN CASTONES at the same address:
    # with or without the date the débiteur was recorded, an 8-year-old is no débiteur
    shared = {"given_names": "Jean", "usage_name": "Castones", "address_line": "32 rue des Tilleuls",
              "postcode": "69330", "phone": "06 12 34 56 78"}
    for updated in (datetime(2026, 1, 1, tzinfo=UTC), None):
        both = make_records({**shared, "source_system": "family", "role": "enfant", "source_id": "e1",
                             "birth_date": date(2017, 9, 7), "updated_at": updated},
                            {**shared, "source_system": "finance", "role": "debiteur", "source_id": "t1",
                             "updated_at": updated})
        res = resolve(both, model_json=resolution.model_json)
        assert pc.count_distinct(res.links["cluster_id"]).as_py() == 2, updated
        assert res.vetoes.get("too_young_for_role") == 1


def _pair(resolution, a: dict, b: dict) -> bool:
    links = resolve(make_records(a, b), model_json=resolution.model_json).links
    return pc.count_distinct(links["cluster_id"]).as_py() == 1


def test_a_prenom_written_another_way_joins_on_strong_shared_evidence(resolution):
    home = {"usage_name": "Lemaire", "address_line": "12 rue des Acacias", "postcode": "69100",
            "birth_date": date(1958, 2, 3)}
    family = {**home, "source_system": "family", "role": "parent", "given_names": "Gérard"}
    # an initial at the same address and birth date
    assert _pair(resolution, family, {**home, "source_system": "finance", "given_names": "G."})
    # the prénom and name columns swapped by one export
    assert _pair(resolution, family, {**home, "source_system": "finance", "given_names": "LEMAIRE",
                                      "usage_name": "GERARD"})
    # the usual second prénom, same e-mail and street, no birth date on one side
    contact = {"email": "g.lemaire@free.fr", "address_line": "12 rue des Acacias", "postcode": "69100",
               "usage_name": "Lemaire"}
    assert _pair(resolution, {**contact, "source_system": "family", "role": "parent",
                              "given_names": "Jean Gérard", "birth_date": date(1958, 2, 3)},
                 {**contact, "source_system": "salesforce", "role": "contact", "given_names": "Gérard"})


def test_a_missing_birth_date_is_not_neutral_between_namesakes(sandbox_records, resolution):
    # two MARIE-ADÉLAÏDE QUERTENMONT born years apart: the name is two people's; a third with no birth
    # date and nothing else shared joins neither, though the name is rare in the commune
    name = {"given_names": "Marie-Adélaïde", "usage_name": "Quertenmont", "postcode": "69003"}
    three = make_records(
        {**name, "source_system": "family", "role": "parent", "source_id": "a", "birth_date": date(1971, 6, 2)},
        {**name, "source_system": "finance", "source_id": "b", "birth_date": date(1990, 11, 23)},
        {**name, "source_system": "salesforce", "role": "contact", "source_id": "c"},
    )
    commune = pa.concat_tables([sandbox_records.select(three.column_names), three])
    res = resolve(commune, model_json=resolution.model_json)
    cluster = dict(zip(res.links["record_key"].to_pylist(), res.links["cluster_id"].to_pylist(), strict=True))
    assert len({cluster["family:a"], cluster["finance:b"], cluster["salesforce:c"]}) == 3
    assert res.vetoes.get("namesake_without_birth_date", 0) >= 1
    explained = {(p["record_key_l"], p["record_key_r"]) for p in res.pairs.to_pylist()
                 if "namesake_without_birth_date" in (p["explanation"] or "")}
    assert explained & {("family:a", "salesforce:c"), ("finance:b", "salesforce:c")}, "the refused pair says why"
    # with one birth date only among them, the name is one person's: the record without joins
    two = commune.filter(pc.field("record_key") != "finance:b")
    links = resolve(two, model_json=resolution.model_json).links
    cluster = dict(zip(links["record_key"].to_pylist(), links["cluster_id"].to_pylist(), strict=True))
    assert cluster["family:a"] == cluster["salesforce:c"]


def test_a_handful_of_records_from_one_small_silo_resolves():
    # a first load where only a small associations export has arrived: too few records to learn
    # which fields matter, the model uses whatever they carry
    few = make_records(*[{"source_system": "associations", "source_id": str(i), "role": "dirigeant",
                          "given_names": g, "usage_name": n, "postcode": "69003"}
                         for i, (g, n) in enumerate([("Anne", "Morel"), ("Paul", "Roux"), ("Anne", "Morel"),
                                                     ("Luc", "Faure"), ("Eva", "Blanc")])])
    res = resolve(few)
    assert res.links.num_rows == 5 and pc.count_distinct(res.links["cluster_id"]).as_py() in (4, 5)
