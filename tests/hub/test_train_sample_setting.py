"""``[matching] train_sample``: how many records a model trained by a run reads."""

from __future__ import annotations

import pytest

from hub.pipeline import _train_sample
from hub.settings import SettingsError, settings_from_dict
from matching.model import TRAIN_SAMPLE


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(None, TRAIN_SAMPLE, id="absent-default"),
    pytest.param(50_000, 50_000, id="a-number"),
    pytest.param(0, None, id="zero-all-records"),
    pytest.param(False, None, id="false-all-records"),
])
def test_the_training_size_comes_from_the_settings(value, expected):
    matching = {} if value is None else {"train_sample": value}
    assert _train_sample(settings_from_dict({"matching": matching})) == expected


@pytest.mark.parametrize("value", [pytest.param(-1, id="negative"), pytest.param("300k", id="text"),
                                   pytest.param(True, id="true"), pytest.param(0.5, id="a-share")])
def test_a_wrong_training_size_names_the_key(value):
    with pytest.raises(SettingsError, match=r"\[matching\] train_sample"):
        _train_sample(settings_from_dict({"matching": {"train_sample": value}}))
