"""Small sandboxes shared by the sandbox tests (built once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import FamilyPortal, Observations, Population, generate_population, observe
from sandbox.family_portal import family_collections, write_family

PEOPLE = 2_000
SEED = 7


@pytest.fixture(scope="session")
def population() -> Population:
    return generate_population(PEOPLE, SEED)


@pytest.fixture(scope="session")
def observations(population: Population) -> Observations:
    return observe(population, SEED)


@pytest.fixture(scope="session")
def family_dir(observations: Observations, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("family")
    write_family(folder, family_collections(observations))
    return folder


@pytest.fixture
def portal(family_dir: Path) -> Iterator[FamilyPortal]:
    """A fresh server per test (touch/delete/faults never leak between tests)."""
    with FamilyPortal(family_dir, token="t0ken") as p:
        yield p
