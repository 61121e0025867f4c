"""The desk's pool of reader connections: a preload that fails lets the next one run, and a reader
given back after the desk closed is closed, not kept."""

from __future__ import annotations

import importlib
import threading

import pytest

from hub.desk import deps


class _Reader:
    snapshot = "published.duckdb"

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def stale(self) -> bool:
        return False


def test_a_failed_preload_lets_the_next_one_run(monkeypatch) -> None:
    opened = []

    def reader(url: str) -> _Reader:
        opened.append(url)
        if len(opened) == 1:
            raise OSError("the warehouse's file is unreadable")
        return _Reader()

    loaded = threading.Event()
    monkeypatch.setattr(deps.Warehouse, "reader", staticmethod(reader))
    monkeypatch.setattr(importlib.import_module("warehouse.search"), "prepare", lambda wh: loaded.set())
    pool = deps.WarehousePool("duckdb:///hub.duckdb")
    pool.prepare()
    for _ in range(200):  # the first preload fails in its thread, then gives its turn back
        if pool._preparing.acquire(blocking=False):
            pool._preparing.release()
            break
        threading.Event().wait(0.01)
    pool.prepare()
    assert loaded.wait(5), "the second preload did not run"
    for _ in range(200):
        if pool._idle.qsize():
            break
        threading.Event().wait(0.01)
    assert len(opened) == 2 and pool._idle.qsize() == 1


def test_a_reader_given_back_after_the_desk_closed_is_closed(monkeypatch) -> None:
    pool = deps.WarehousePool("duckdb:///hub.duckdb")
    kept, late = _Reader(), _Reader()
    pool.put(kept, healthy=True)
    pool.close()
    pool.put(late, healthy=True)
    assert kept.closed and late.closed and pool._idle.qsize() == 0


@pytest.mark.parametrize("healthy", [True, False])
def test_a_reader_is_kept_only_when_healthy(healthy: bool) -> None:
    pool = deps.WarehousePool("duckdb:///hub.duckdb")
    r = _Reader()
    pool.put(r, healthy=healthy)
    assert pool._idle.qsize() == int(healthy) and r.closed is (not healthy)


def _threads(url: str, tmp_path, settings=None) -> int:
    import anyio.to_thread
    from fastapi.testclient import TestClient

    from hub.desk.app import create_app
    from hub.desk.auth import OIDCConfig

    oidc = OIDCConfig(issuer="http://127.0.0.1:9/none", client_id="hub", client_secret="x",
                      redirect_base="http://127.0.0.1:8000", agents_file=tmp_path / "agents.toml")
    app = create_app(settings, warehouse_url=url, oidc_config=oidc)
    with TestClient(app) as client:  # the lifespan runs
        return client.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)


def test_the_desk_works_on_two_requests_at_once_on_duckdb_and_anyios_default_on_postgres(tmp_path) -> None:
    from types import SimpleNamespace

    (tmp_path / "agents.toml").write_text("", encoding="utf-8")

    duckdb_url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    assert _threads(duckdb_url, tmp_path) == 2
    assert _threads("postgresql://nobody@127.0.0.1:1/none", tmp_path) == 40  # anyio's default, untouched
    settings = SimpleNamespace(desk={"threads": 6}, desk_warehouse_url=duckdb_url, dpo_warehouse_url=None,
                               warehouse_url=duckdb_url)
    assert _threads(duckdb_url, tmp_path, settings) == 6


@pytest.mark.parametrize("bad", [0, -1, "4", 2.5, True])
def test_a_wrong_threads_setting_names_it(bad) -> None:
    from hub.desk.app import request_threads

    with pytest.raises(ValueError, match=r"\[desk\] threads"):
        request_threads("duckdb:///hub.duckdb", bad)
