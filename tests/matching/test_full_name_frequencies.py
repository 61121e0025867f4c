"""The full name's term frequency: measured on the other names, never below the name's own (issue 11).

Where prénoms run with names (communities), a full name is more common than its prénom's and its
name's frequencies multiplied; where they are independent, it is not, and the weight stays Splink's.
"""

from __future__ import annotations

import itertools

import duckdb
import pyarrow as pa
import pytest

from matching import model as mdl


def _names(pairs: list[tuple[str, str]]) -> pa.Table:
    return pa.table({"first_name_std": [f for f, _ in pairs], "surname_std": [s for _, s in pairs]})


def _frequencies(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[float, float]]:
    """(prénom, name) -> (the full name's tf, the name's share of the records)."""
    tf = mdl.full_name_frequencies(_names(pairs))
    names = [s for _, s in pairs]
    out = {}
    for key, value in zip(tf["full_name_std"].to_pylist(), tf["tf_full_name_std"].to_pylist(), strict=True):
        f, s = key.split("|")
        out[f, s] = (value, names.count(s) / len(names))
    return out


# prénoms two keying errors apart or more (one apart is a variant, see full_name_frequencies)
PRENOMS_A = ["ANNA", "BORIS", "CELIA", "DENIS", "EMMA", "FELIX", "GINA", "HUGO", "IRIS", "JULES"]
PRENOMS_B = ["KEMAL", "LEYLA", "MURAT", "NESRIN", "OZAN", "PINAR", "RECEP", "SELIN", "TARIK", "UMUT"]
NAMES_A = [f"NA{i}" for i in range(20)]
NAMES_B = [f"NB{i}" for i in range(20)]


def test_independent_prenoms_and_names_keep_the_name_frequency():
    # every prénom with every name: knowing the name says nothing about the prénom
    pairs = list(itertools.product(PRENOMS_A + PRENOMS_B, NAMES_A + NAMES_B))
    freq = _frequencies(pairs)
    assert len(freq) == len(pairs)
    for tf, name_share in freq.values():
        assert tf == pytest.approx(name_share)


def test_prenoms_running_with_names_make_a_full_name_more_common():
    # two communities: A prénoms only with A names, B with B; a prénom is then twice as common
    # among its community's names as overall
    pairs = list(itertools.product(PRENOMS_A, NAMES_A)) + list(itertools.product(PRENOMS_B, NAMES_B))
    freq = _frequencies(pairs)
    for tf, name_share in freq.values():
        assert 1.5 * name_share < tf <= 2 * name_share


def test_a_names_own_records_are_no_evidence():
    # one prénom keyed twice with one rare name, every other name with independent prénoms: the
    # combination's own records do not make it common
    pairs = [*itertools.product(PRENOMS_A, NAMES_A), ("KEMAL", "RARE"), ("KEMAL", "RARE"), ("BORIS", "RARE")]
    freq = _frequencies(pairs)
    tf, name_share = freq["KEMAL", "RARE"]
    assert tf == pytest.approx(name_share)


def test_a_keying_variant_under_the_same_name_is_no_evidence():
    # JOHN and JHON under one name are one person keyed twice, wherever they occur: the variant
    # does not make JOHN a prénom of the name's community
    pairs = list(itertools.product(PRENOMS_A + PRENOMS_B, NAMES_A + NAMES_B))
    pairs += [(f, s) for s in NAMES_A for f in ("JOHN", "JHON")] + [("JOHN", "SMITH"), ("JHON", "SMITH")]
    tf, name_share = _frequencies(pairs)["JOHN", "SMITH"]
    assert tf == pytest.approx(name_share)


def test_the_linker_weighs_the_full_name_level_on_these_frequencies():
    from matching.resolve import prepare
    from tests.matching.test_generality import foreign_file

    mi = mdl.model_input(prepare(foreign_file(200).drop(["person_id"])))
    model = mdl.settings(mdl.profile(mi))
    levels = {lv.get("label_for_charts"): lv for c in model["comparisons"] if c["output_column_name"] == "surname"
              for lv in c["comparison_levels"]}
    assert levels["exact, same prénom"]["tf_adjustment_column"] == mdl.FULL_NAME
    with duckdb.connect() as con:
        lk = mdl.linker(con, mi, model)
        used = lk.table_management.compute_tf_table(mdl.FULL_NAME).as_pandas_dataframe()
    expected = mdl.full_name_frequencies(mi).to_pandas()
    merged = used.merge(expected, on=mdl.FULL_NAME, suffixes=("_used", "_measured"))
    assert len(merged) == len(expected) > 0
    # (two parallel DuckDB sums of the same figures differ in the last bits)
    assert merged[f"tf_{mdl.FULL_NAME}_used"].tolist() == pytest.approx(merged[f"tf_{mdl.FULL_NAME}_measured"].tolist())


def test_the_full_name_level_weighs_the_name_agreement_as_the_exact_level_does():
    # one agreement (the same name) on two frequencies: trained apart, the "exact" level's m would be
    # the share of matches whose names agree and prénoms differ, counting a prénom difference twice
    from matching.resolve import prepare
    from tests.matching.test_generality import foreign_file

    model = mdl.train(prepare(foreign_file(300).drop(["person_id"])))
    surname = next(c for c in model["comparisons"] if c["output_column_name"] == "surname")
    levels = {lv.get("label_for_charts"): lv for lv in surname["comparison_levels"]}
    same, exact, shared = levels["exact, same prénom"], levels["exact"], levels["birth / usage name shared"]
    assert same["m_probability"] == exact["m_probability"] > shared["m_probability"]
    assert same["u_probability"] == exact["u_probability"]
    assert (same["tf_adjustment_column"], exact["tf_adjustment_column"]) == (mdl.FULL_NAME, "surname_std")


def _communities(repeat: int) -> list[tuple[str, str]]:
    # two communities (A prénoms with A names, B with B), each full name carried `repeat` times
    return (list(itertools.product(PRENOMS_A, NAMES_A)) + list(itertools.product(PRENOMS_B, NAMES_B))) * repeat


def test_sampled_counts_keep_what_the_frequencies_measure(monkeypatch):
    # 4,000 records: co-occurrences counted beside ~1,000 of them, each lift averaged over 8 of a
    # name's 50 records; community names still twice as common, independent ones at the name's share
    monkeypatch.setattr(mdl, "FULL_NAME_COOCCURRENCE_SAMPLE", 1_000)
    monkeypatch.setattr(mdl, "FULL_NAME_NAME_SAMPLE", 8)
    for tf, name_share in _frequencies(_communities(5)).values():
        assert 1.5 * name_share < tf <= 2 * name_share
    independent = list(itertools.product(PRENOMS_A + PRENOMS_B, NAMES_A + NAMES_B)) * 3
    for tf, name_share in _frequencies(independent).values():
        assert name_share <= tf < 1.1 * name_share


def test_the_samples_are_the_same_whatever_the_row_order(monkeypatch):
    # the samples are drawn by a hash of each record, not by its position: same records, same figures
    pairs = _communities(5) + list(itertools.product(PRENOMS_A, NAMES_B))
    exact = mdl.full_name_frequencies(_names(pairs)).sort_by(mdl.FULL_NAME)
    monkeypatch.setattr(mdl, "FULL_NAME_COOCCURRENCE_SAMPLE", 1_000)
    monkeypatch.setattr(mdl, "FULL_NAME_NAME_SAMPLE", 8)
    first = mdl.full_name_frequencies(_names(pairs)).sort_by(mdl.FULL_NAME)
    again = mdl.full_name_frequencies(_names(pairs[::-1])).sort_by(mdl.FULL_NAME)
    values = [t[f"tf_{mdl.FULL_NAME}"].to_pylist() for t in (first, again, exact)]
    assert first[mdl.FULL_NAME].equals(again[mdl.FULL_NAME]) and first[mdl.FULL_NAME].equals(exact[mdl.FULL_NAME])
    # (two parallel DuckDB sums of the same figures differ in the last bits)
    assert values[0] == pytest.approx(values[1], rel=1e-12)
    assert values[0] != pytest.approx(values[2], rel=1e-6)  # the samples were drawn (4,200 records)
