"""Shared fixtures: real engines, servers and a headless browser.

Server tests skip with a reason when the server is absent, except under CI (CI=true), where a
missing server fails the test: the suite must prove it ran them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

import connectors  # noqa: F401  (dlt's environment, as in every hub process)

PG_HOST = os.environ.get("HUB_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("HUB_TEST_PG_PORT", "5432"))
MARIADB_HOST = os.environ.get("HUB_TEST_MARIADB_HOST", "127.0.0.1")
MARIADB_PORT = int(os.environ.get("HUB_TEST_MARIADB_PORT", "3306"))


def _unavailable(what: str, error: Exception) -> None:
    reason = f"{what} is not reachable ({type(error).__name__}: {error})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; under CI a server test may not be skipped")
    pytest.skip(reason)


def _pg_connect(dbname: str = "postgres"):
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname=dbname,
                           autocommit=True, connect_timeout=3)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    try:
        admin = _pg_connect()
    except Exception as e:
        _unavailable(f"PostgreSQL on {PG_HOST}:{PG_PORT}", e)
    name = f"hub_test_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with _pg_connect() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database, dropped afterwards."""
    import pymysql

    try:
        con = pymysql.connect(host=MARIADB_HOST, port=MARIADB_PORT, user="root", password="",
                              connect_timeout=3, autocommit=True)
    except Exception as e:
        _unavailable(f"MariaDB on {MARIADB_HOST}:{MARIADB_PORT}", e)
    name = f"hub_test_{uuid.uuid4().hex[:10]}"
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield f"mysql+pymysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{name}"
    finally:
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        con.close()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request, tmp_path) -> str:
    """Every warehouse test runs on both engines: an empty DuckDB file, or an empty PG database."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'hub.duckdb'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's, driven by playwright; tests/browser.py), one per test process.
    Absent, it skips with how to install it, and fails under CI like a server."""
    from tests.browser import CHROMIUM_ARGS, BrowserUnavailable, chromium_path

    try:
        path = chromium_path()
    except BrowserUnavailable as e:
        _unavailable("headless Chromium", e)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
