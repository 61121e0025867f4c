"""Training on a sample of the records: the sample itself, and what a sample-trained model resolves."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from matching import model as mdl
from matching.evaluate import pairwise_scores
from matching.resolve import prepare, resolve


@pytest.fixture(scope="module")
def model_in(sandbox_records):
    return mdl.model_input(prepare(sandbox_records))


def test_a_population_within_the_size_is_trained_on_whole(model_in):
    assert mdl.training_sample(model_in, model_in.num_rows) is model_in
    assert mdl.training_sample(model_in, None) is model_in


def test_the_sample_is_seeded_uniform_and_keeps_the_populations_rare_name_key(model_in):
    size = model_in.num_rows // 3
    sample = mdl.training_sample(model_in, size)
    assert sample.num_rows == size
    assert sample.equals(mdl.training_sample(model_in, size))  # same input, same sample
    assert not sample.equals(mdl.training_sample(model_in, size, seed=mdl.SEED + 1))
    keys = sample["record_key"].to_pylist()
    assert len(set(keys)) == size and keys == sorted(keys)  # distinct records, in the input's order
    # every sampled row is the population's row as it was (rare_name_key counted on every record,
    # not recomputed on the sample where more names would look rare)
    whole = {r["record_key"]: r for r in model_in.to_pylist()}
    assert all(whole[r["record_key"]] == r for r in sample.to_pylist())
    # uniform: spread over the whole key range, not a head or a tail
    positions = pc.index_in(sample["record_key"], model_in["record_key"]).to_pylist()
    assert min(positions) < model_in.num_rows // 10 and max(positions) > model_in.num_rows * 9 // 10


def test_a_model_trained_on_half_the_records_resolves_all_of_them(sandbox_records, resolution):
    truth = sandbox_records.filter(pc.is_null(sandbox_records["deleted_at"])).select(["record_key", "person_id"])
    half = resolution.links.num_rows // 2
    sampled = resolve(sandbox_records, train_sample=half)
    assert sampled.model_version != resolution.model_version  # another training, not the same model
    assert sampled.links.num_rows == resolution.links.num_rows  # every live record scored and linked
    full, part = pairwise_scores(resolution.links, truth), pairwise_scores(sampled.links, truth)
    assert part["tp"] > 100
    assert part["precision"] >= 0.99 and part["recall"] >= 0.95
    # a quarter of the matching pairs to learn from, and (nearly) the same links
    assert abs(part["recall"] - full["recall"]) <= 0.01
    assert abs(part["precision"] - full["precision"]) <= 0.005
