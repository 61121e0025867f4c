import pytest

from hub.settings import SettingsError, load_settings, render_toml, secret, settings_from_dict

SAMPLE = {
    "warehouse": {"url": "duckdb:///var/x.duckdb"},
    "sources": {
        "finance": {"kind": "finance", "url": "sqlite:///f.sqlite"},
        "family": {"kind": "family", "base_url": "http://127.0.0.1:1", "token_env": "T_ENV"},
    },
}


def test_settings_round_trip_through_toml(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_WAREHOUSE_URL", raising=False)
    p = tmp_path / "hub.toml"
    p.write_text(render_toml(SAMPLE), encoding="utf-8")
    s = load_settings(p)
    assert s.warehouse_url == "duckdb:///var/x.duckdb"
    assert [(x.name, x.kind) for x in s.sources] == [("finance", "finance"), ("family", "family")]
    assert s.source("family").params == {"base_url": "http://127.0.0.1:1", "token_env": "T_ENV"}


def test_environment_overrides_the_warehouse_url(monkeypatch):
    monkeypatch.setenv("HUB_WAREHOUSE_URL", "postgresql://u@h/db")
    assert settings_from_dict(SAMPLE).warehouse_url == "postgresql://u@h/db"


def test_missing_file_and_missing_kind_are_clear_errors(tmp_path):
    with pytest.raises(SettingsError, match=r"no settings file at .*nope\.toml"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(SettingsError, match=r"\[sources.crm\] needs a `kind`"):
        settings_from_dict({"sources": {"crm": {"url": "x"}}})


def test_secrets_come_from_the_environment_and_are_never_in_messages(monkeypatch):
    params = SAMPLE["sources"]["family"]
    monkeypatch.delenv("T_ENV", raising=False)
    with pytest.raises(SettingsError, match="T_ENV"):
        secret(params, "token", "family")
    monkeypatch.setenv("T_ENV", "s3cr3t")
    assert secret(params, "token", "family") == "s3cr3t"
    with pytest.raises(SettingsError) as e:
        secret({"token": "inline"}, "token", "family")
    assert "inline" not in str(e.value)
