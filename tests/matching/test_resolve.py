"""Resolution on the sandbox population (accuracy) and on hand-made households (guards)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from matching.evaluate import pairwise_scores
from matching.model import load_model, model_version, save_model, train
from matching.resolve import LINK_SCHEMA, prepare, resolve
from tests.matching.conftest import make_records


def test_accuracy_on_the_sandbox(sandbox_records, resolution):
    truth = sandbox_records.filter(pc.is_null(sandbox_records["deleted_at"]))
    scores = pairwise_scores(resolution.links, truth.select(["record_key", "person_id"]))
    assert scores["tp"] > 100  # the sample holds enough duplicates to mean something
    assert scores["precision"] >= 0.99
    assert scores["recall"] >= 0.95


def test_deleted_records_are_not_resolved(sandbox_records, resolution):
    deleted = set(sandbox_records.filter(pc.is_valid(sandbox_records["deleted_at"]))["record_key"].to_pylist())
    assert deleted
    assert not deleted & set(resolution.links["record_key"].to_pylist())
    assert resolution.links.num_rows == sandbox_records.num_rows - len(deleted)


def test_links_carry_the_best_probability_and_singletons_one(resolution):
    links = resolution.links
    sizes = pc.value_counts(links["cluster_id"])
    single = {s["values"] for s in sizes.to_pylist() if s["counts"] == 1}
    for row in links.to_pylist():
        if row["cluster_id"] in single:
            assert row["match_probability"] == 1.0
        else:
            assert resolution.threshold <= row["match_probability"] <= 1.0


def test_training_is_reproducible_and_the_version_is_a_content_hash(sandbox_records, resolution, tmp_path):
    again = train(prepare(sandbox_records))
    assert model_version(again) == resolution.model_version
    path = save_model(again, tmp_path / "model.json")
    assert model_version(load_model(path)) == resolution.model_version
    changed = {**again, "probability_two_random_records_match": 0.5}
    assert model_version(changed) != resolution.model_version


def test_the_version_changes_with_the_rare_name_threshold(resolution, monkeypatch):
    import matching.model as mdl

    monkeypatch.setattr(mdl, "RARE_NAME_MAX", mdl.RARE_NAME_MAX + 1)  # the same JSON, other blocking input
    assert model_version(resolution.model_json) != resolution.model_version


def test_a_given_model_is_used_as_is(sandbox_records, resolution):
    again = resolve(sandbox_records, model_json=resolution.model_json)
    assert again.model_version == resolution.model_version
    assert again.links.equals(resolution.links)


def _household() -> pa.Table:
    shared = {"usage_name": "Lefebvre", "address_line": "95 impasse de Créqui", "postcode": "69003",
              "phone": "04 78 00 11 22", "email": "famille.lefebvre@free.fr",
              "updated_at": datetime(2026, 1, 1, tzinfo=UTC)}
    return make_records(
        # twins: same birth date, same everything but the prénom
        {**shared, "source_system": "family", "source_id": "e1", "role": "enfant",
         "given_names": "Nathalie Marie", "birth_date": date(2017, 2, 13), "sex": "F"},
        {**shared, "source_system": "family", "source_id": "e2", "role": "enfant",
         "given_names": "Catherine Marie", "birth_date": date(2017, 2, 13), "sex": "F"},
        # the mother, known to finance without birth date or prénom beyond the first
        {**shared, "source_system": "family", "source_id": "r1", "role": "parent",
         "given_names": "Nathalie", "birth_date": date(1984, 5, 2), "sex": "F"},
        {**shared, "source_system": "finance", "source_id": "t1", "role": "debiteur",
         "given_names": "NATHALIE", "usage_name": "LEFEBVRE"},
        # a household record with no prénom: only shared evidence
        {**shared, "source_system": "finance", "source_id": "t2", "role": "debiteur",
         "given_names": None},
        # elsewhere in the commune, another Catherine: a prénom people have, not a keying error
        {"source_system": "finance", "source_id": "t9", "role": "debiteur", "given_names": "Catherine",
         "usage_name": "Morel", "birth_date": date(1962, 8, 30), "postcode": "69008"},
    )


def test_household_members_are_not_merged(resolution):
    links = resolve(_household(), model_json=resolution.model_json).links
    cluster = dict(zip(links["record_key"].to_pylist(), links["cluster_id"].to_pylist(), strict=True))
    # twins apart, though birth date, surname, address, phone and e-mail agree: two prénoms that
    # other records carry too are two people, not a keying error
    assert cluster["family:e1"] != cluster["family:e2"]
    # the mother's finance record joins the mother, not her namesake daughter (a minor)
    assert cluster["finance:t1"] == cluster["family:r1"] != cluster["family:e1"]
    # shared evidence alone links nobody
    assert sum(v == cluster["finance:t2"] for v in cluster.values()) == 1


def test_nothing_to_resolve_gives_empty_links():
    res = resolve(make_records().slice(0, 0))
    assert (res.links.num_rows, res.pairs.num_rows, res.pairs_scored) == (0, 0, 0)
    assert res.links.schema.equals(LINK_SCHEMA)


def test_last_bit_noise_of_parallel_training_does_not_change_the_version(resolution):
    """DuckDB's parallel sums make two trainings on 10k rows differ by ~1e-16: rounded, one version."""
    import copy

    from matching.model import _round_probabilities

    noisy = copy.deepcopy(resolution.model_json)
    level = next(lv for c in noisy["comparisons"] for lv in c["comparison_levels"]
                 if isinstance(lv.get("m_probability"), float))
    level["m_probability"] = level["m_probability"] * (1 + 3e-16)
    _round_probabilities(noisy)
    assert model_version(noisy) == resolution.model_version
    level["m_probability"] = level["m_probability"] * 1.001  # a real change still shows
    assert model_version(noisy) != resolution.model_version


def _twins(first: str, second: str, sex_first: str, sex_second: str) -> pa.Table:
    shared = {"source_system": "family", "role": "enfant", "usage_name": "Brun", "birth_date": date(2019, 5, 3),
              "address_line": "3 rue des Sablons", "postcode": "69120"}
    # two other people of the commune carry the same prénoms: names people have, not keying errors
    elsewhere = {"source_system": "finance", "role": "debiteur", "usage_name": "Morel", "postcode": "69008"}
    return make_records({**shared, "source_id": "e1", "given_names": first, "sex": sex_first},
                        {**shared, "source_id": "e2", "given_names": second, "sex": sex_second},
                        {**elsewhere, "source_id": "t1", "given_names": first, "birth_date": date(1961, 1, 9)},
                        {**elsewhere, "source_id": "t2", "given_names": second, "birth_date": date(1958, 7, 2)})


def _apart(links: pa.Table, a: str, b: str) -> bool:
    cluster = dict(zip(links["record_key"].to_pylist(), links["cluster_id"].to_pylist(), strict=True))
    return cluster[a] != cluster[b]


def test_similar_looking_prenoms_do_not_join_twins(resolution):
    # MARIE / MARTINE: jaro-winkler 0.93, two letters apart; LOUIS / LOUISE: one letter, sexes differ;
    # GABRIEL / GABRIELLE: not a compound prénom cut by a silo
    for first, second, s1, s2 in (("Marie", "Martine", "F", "F"), ("Louis", "Louise", "M", "F"),
                                  ("Léa", "Léo", "F", "M"), ("Gabriel", "Gabrielle", "M", "F")):
        links = resolve(_twins(first, second, s1, s2), model_json=resolution.model_json).links
        assert _apart(links, "family:e1", "family:e2"), (first, second)


def test_an_in_file_duplicate_with_a_prenom_typo_joins(resolution):
    # NICHOHLAS / NICHOLAS, SOHPIE / SOPHIE on one file, same name, birth date and address: a double
    # entry (the typo is carried by no other record), not twins
    for first, typo, sex in (("Nicholas", "Nichohlas", "M"), ("Sophie", "Sohpie", "F")):
        links = resolve(_twins(first, typo, sex, sex).filter(pc.field("source_id") != "t2"),
                        model_json=resolution.model_json).links
        assert not _apart(links, "family:e1", "family:e2"), typo


def test_one_silo_holding_two_prenoms_born_the_same_day_holds_twins(resolution):
    # MARIE and MARIE-ANNE, MARIE and MARIA on one family file, born the same day: twins, though
    # a cut compound or a keying error between two silos is one person
    for other in ("Marie-Anne Chloé", "Maria Emma", "Marine"):
        twins = resolve(_twins("Marie", other, "F", "F"), model_json=resolution.model_json).links
        assert _apart(twins, "family:e1", "family:e2"), other
    shared = {"usage_name": "Brun", "birth_date": date(1990, 5, 3), "address_line": "3 rue des Sablons",
              "postcode": "69120", "sex": "F"}
    across = make_records({**shared, "source_system": "family", "role": "parent", "source_id": "r2",
                           "given_names": "Marie-Anne Chloé"},
                          {**shared, "source_system": "finance", "role": "debiteur", "source_id": "t1",
                           "given_names": "MARIE"})
    links = resolve(across, model_json=resolution.model_json).links
    assert pc.count_distinct(links["cluster_id"]).as_py() == 1


def test_a_child_is_not_the_service_desk_account_of_a_namesake_parent(resolution):
    # JEAN CASTONES, 8, on the family file; a ServiceNow account JEAN CASTONES at the same address
    # and phone (his father's): an account needs the age of digital consent (15); at 16 it is his
    shared = {"given_names": "Jean", "usage_name": "Castones", "address_line": "32 rue des Tilleuls",
              "postcode": "69330", "phone": "06 12 34 56 78", "updated_at": datetime(2026, 1, 1, tzinfo=UTC)}
    child = {**shared, "source_system": "family", "role": "enfant", "source_id": "e1",
             "birth_date": date(2017, 9, 7), "sex": "M"}
    for born, apart in ((date(2017, 9, 7), True), (date(2009, 9, 7), False)):
        both = make_records({**child, "birth_date": born},
                            {**shared, "source_system": "servicenow", "role": "compte", "source_id": "u1"})
        links = resolve(both, model_json=resolution.model_json).links
        assert (pc.count_distinct(links["cluster_id"]).as_py() == 2) is apart, born


def test_a_one_letter_typo_or_a_cut_compound_prenom_still_joins(resolution):
    shared = {"usage_name": "Klein", "birth_date": date(1981, 4, 12), "email": "eric.klein@example.org",
              "address_line": "2 boulevard de l'Église", "postcode": "69150"}
    # LÉA / LKA: a typo in a short prénom, too far for jaro-winkler, is one keying error
    for first, second in (("Éric", "Erci"), ("Jean-Marc", "Jean"), ("Léa", "Lka")):
        both = make_records({**shared, "source_system": "family", "role": "parent", "given_names": first},
                            {**shared, "source_system": "finance", "given_names": second})
        links = resolve(both, model_json=resolution.model_json).links
        assert pc.count_distinct(links["cluster_id"]).as_py() == 1, (first, second)


def test_a_typo_in_the_cut_part_of_a_compound_prenom_is_no_conflict(resolution):
    # NICOLAS-JEAN / NICOLAS / NCIOLAS: one person; the typo is one edit from the compound's first part
    shared = {"usage_name": "Girard", "birth_date": date(1974, 3, 9), "sex": "M", "phone": "06 11 22 33 44",
              "address_line": "8 rue Ampère", "postcode": "69002"}
    three = make_records({**shared, "source_system": "family", "role": "parent", "given_names": "Nicolas-Jean"},
                         {**shared, "source_system": "finance", "given_names": "Nicolas"},
                         {**shared, "source_system": "salesforce", "role": "contact", "given_names": "Nciolas"})
    links = resolve(three, model_json=resolution.model_json).links
    assert pc.count_distinct(links["cluster_id"]).as_py() == 1


def test_twins_keyed_with_a_swapped_day_and_month_stay_apart(resolution):
    # ROMY NATHALIE MARIE and MARIE CHRISTINE on one family file, born 12/04 and 04/12 of one year
    # (a day and month swapped by the agent) and sharing the prénom MARIE: still twins
    twins = _twins("Romy Nathalie Marie", "Marie Christine", "F", "F")
    dates = pa.array([date(2020, 4, 12), date(2020, 12, 4), *twins["birth_date"].to_pylist()[2:]], pa.date32())
    twins = twins.set_column(twins.schema.get_field_index("birth_date"), "birth_date", dates)
    links = resolve(twins, model_json=resolution.model_json).links
    assert _apart(links, "family:e1", "family:e2")
