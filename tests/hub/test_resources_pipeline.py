"""``[resources]``: every DuckDB connection a whole `hub run` opens has the settings' memory
limit, threads and spill directory (the warehouse's, matching's, Splink's)."""

from __future__ import annotations

import dataclasses
import logging
import sys

import duckdb
import pytest

from hub.demo import running_sandbox
from hub.pipeline import run
from hub.settings import SettingsError, settings_from_dict

pytestmark = pytest.mark.slow


def test_every_duckdb_connection_of_a_run_has_the_settings_limits(tmp_path, monkeypatch, caplog):
    with running_sandbox(tmp_path / "var", people=300, seed=5,
                         warehouse_url=f"duckdb:///{tmp_path / 'hub.duckdb'}") as sr:
        spill = tmp_path / "spill"
        settings = dataclasses.replace(sr.settings, resources={"memory_limit": "200MB", "threads": 1,
                                                               "temp_dir": str(spill)})
        callers: list[str] = []
        real = duckdb.connect

        def spy(*args, **kwargs):
            callers.append(sys._getframe(1).f_code.co_filename)
            return real(*args, **kwargs)

        monkeypatch.setattr(duckdb, "connect", spy)
        caplog.set_level(logging.DEBUG, logger="matching.resources")
        report = run(settings)
    assert report.status == "ok" and report.resolution["citizens"] > 0
    # connections are opened by the factory that applies the limits, or by Splink's DuckDB API for
    # itself (its side connection, limited by matching.resources.splink_api)...
    where = {"/".join(c.rsplit("/", 2)[-2:]) for c in callers}
    assert where == {"matching/resources.py", "internals/database_api.py"}, where
    # ...and every one of them reads the limits back from DuckDB
    opened = [r for r in caplog.records if r.name == "matching.resources"]
    assert len(opened) == len(callers) >= 10  # the warehouse's per step, matching's per stage
    assert {r.args[:2] for r in opened} == {("190.7 MiB", 1)}
    assert all(str(r.args[2]).startswith(str(spill.resolve()) + "/") for r in opened)
    # the resolution's parts are timed, for bench/pipeline.py
    assert {"read", "compute", "publish", "marts", "snapshot", "compute: standardise", "compute: train",
            "compute: predict", "compute: cluster", "compute: ids", "compute: survivorship",
            "compute: foyers"} <= set(report.resolution["timings"])


@pytest.mark.parametrize(("resources", "says"), [
    ({"memory_limit": "lots"}, "memory_limit must be a size"),
    ({"memory_limit": 6}, "memory_limit must be a size"),
    ({"threads": 0}, "threads must be a whole number above 0"),
    ({"threads": "2"}, "threads must be a whole number above 0"),
    ({"temp_dir": ""}, "temp_dir must be a directory path"),
    ({"memory": "6GB"}, "unknown key(s) memory"),
], ids=["size-word", "size-number", "no-threads", "threads-text", "empty-temp-dir", "unknown-key"])
def test_wrong_resources_settings_name_the_section_and_key(resources, says):
    with pytest.raises(SettingsError, match=r"\[resources\]") as e:
        settings_from_dict({"resources": resources})
    assert says in str(e.value)


def test_resources_default_to_duckdb_defaults_and_a_spill_directory_under_var(tmp_path):
    settings = settings_from_dict({"hub": {"var_dir": str(tmp_path)}})
    limits = settings.duckdb_limits()
    assert (limits.memory_limit, limits.threads, limits.temp_directory) == (None, None, tmp_path / "tmp" / "duckdb")
    limits = settings_from_dict({"resources": {"memory_limit": "6GB", "threads": 2}}).duckdb_limits()
    assert (limits.memory_limit, limits.threads) == ("6GB", 2)
