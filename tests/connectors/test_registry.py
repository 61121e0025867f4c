"""Every registered connector can be configured from settings alone, with secrets from the environment."""

from pathlib import Path

import pytest
from dlt.extract.decorators import DltSourceFactoryWrapper

from connectors.base import SourceError
from connectors.registry import SYSTEMS, staging_models


def test_every_connector_has_configure_a_dlt_source_and_staging():
    for name, module in SYSTEMS.items():
        assert callable(module.configure) and isinstance(module.source, DltSourceFactoryWrapper), name
        assert not hasattr(module, "load"), name  # the one runner runs every source
        assert module.STAGING or callable(getattr(module, "source_staging", None)), name
        for paths in module.STAGING.values():
            assert all(p.stem.startswith(f"stg_{name}__") and p.is_file() for p in paths), name
    assert set(staging_models()) <= {"person_record", "household_membership", "interaction", "organisation",
                                     "organisation_role"}


def test_secrets_are_asked_for_by_key_not_read_from_the_settings():
    asked: list[str] = []

    def secret(key: str) -> str:
        asked.append(key)
        return "from-env"

    fam = SYSTEMS["family"].configure({"base_url": "http://127.0.0.1:9", "token_env": "X"}, secret)
    assert fam == {"base_url": "http://127.0.0.1:9", "token": "from-env"} and asked == ["token"]
    fin = SYSTEMS["finance"].configure({"url": "postgresql+psycopg://hub@db.local/finance", "password_env": "P"},
                                       secret)
    assert fin["source_url"] == "postgresql+psycopg://hub:from-env@db.local/finance"
    assert SYSTEMS["finance"].configure({"url": "sqlite:///f.sqlite"}, secret) == {"source_url": "sqlite:///f.sqlite"}
    assert SYSTEMS["associations"].configure({"drop_dir": "drops/assoc"}, secret) == {
        "drop_dir": Path("drops/assoc"), "encoding": "auto", "export": "full"}
    assert SYSTEMS["associations"].configure({"drop_dir": "d", "encoding": "cp1252", "export": "incremental"},
                                             secret) == {"drop_dir": Path("d"), "encoding": "cp1252",
                                                         "export": "incremental"}
    with pytest.raises(SourceError, match='export must be "full" or "incremental", not \'weekly\''):
        SYSTEMS["associations"].configure({"drop_dir": "d", "export": "weekly"}, secret)


def test_missing_setting_names_the_key():
    with pytest.raises(KeyError, match="base_url"):
        SYSTEMS["family"].configure({}, lambda k: "x")


def test_a_files_source_brings_the_staging_generated_from_its_mapping():
    from connectors.files import EXAMPLES

    models = staging_models([("files", {"mapping": EXAMPLES / "scdl_subventions.toml"}), ("finance", {})])
    names = {table: [n for n, _ in entries] for table, entries in models.items()}
    assert any(n.startswith("stg_finance__") for n in names["person_record"])
    assert [n for n in names["organisation"] if not n.startswith("stg_finance__")]
