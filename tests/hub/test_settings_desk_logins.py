"""The desk's logins in the settings: $HUB_DESK_WAREHOUSE_URL / $HUB_DPO_WAREHOUSE_URL, else
``[desk] warehouse_url`` / ``dpo_warehouse_url``, else the warehouse URL (docs/warehouse.md, Logins)."""

from __future__ import annotations

import pytest

from hub.settings import settings_from_dict

WAREHOUSE = "postgresql://hub_pipeline@db/hub"
DESK = "postgresql://hub_desk_app@db/hub"
DPO = "postgresql://hub_dpo_app@db/hub"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for name in ("HUB_WAREHOUSE_URL", "HUB_DESK_WAREHOUSE_URL", "HUB_DPO_WAREHOUSE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_without_desk_logins_the_desk_reads_with_the_warehouse_url():
    s = settings_from_dict({"warehouse": {"url": WAREHOUSE}})
    assert (s.desk_warehouse_url, s.dpo_warehouse_url) == (WAREHOUSE, WAREHOUSE)


def test_the_desk_logins_from_the_file():
    s = settings_from_dict({"warehouse": {"url": WAREHOUSE}, "desk": {"warehouse_url": DESK, "dpo_warehouse_url": DPO}})
    assert (s.warehouse_url, s.desk_warehouse_url, s.dpo_warehouse_url) == (WAREHOUSE, DESK, DPO)
    # the DPO's defaults to the desk's login, not the pipeline's
    desk_only = settings_from_dict({"warehouse": {"url": WAREHOUSE}, "desk": {"warehouse_url": DESK}})
    assert desk_only.dpo_warehouse_url == DESK


def test_the_environment_wins(monkeypatch):
    monkeypatch.setenv("HUB_DESK_WAREHOUSE_URL", "postgresql://other_desk@db/hub")
    monkeypatch.setenv("HUB_DPO_WAREHOUSE_URL", "postgresql://other_dpo@db/hub")
    s = settings_from_dict({"warehouse": {"url": WAREHOUSE}, "desk": {"warehouse_url": DESK, "dpo_warehouse_url": DPO}})
    assert (s.desk_warehouse_url, s.dpo_warehouse_url) == ("postgresql://other_desk@db/hub",
                                                            "postgresql://other_dpo@db/hub")


def test_the_sign_in_settings_accept_the_login_keys(tmp_path, monkeypatch):
    from hub.desk.auth import OIDCConfig

    monkeypatch.setenv("HUB_TEST_DESK_SECRET", "s")
    desk = {"issuer": "https://idp.example", "client_id": "c", "client_secret_env": "HUB_TEST_DESK_SECRET",
            "redirect_base": "https://hub.example", "agents_file": str(tmp_path / "agents.toml"),
            "warehouse_url": DESK, "dpo_warehouse_url": DPO}
    assert OIDCConfig.from_settings(settings_from_dict({"desk": desk})).client_id == "c"
