"""Steps shared by the connector tests of the HTTP silo simulators (Salesforce, ServiceNow): a
DuckDB destination, a load through an injected fault, a load that a fatal fault makes fail.
Each test keeps its own assertions; these only drive the simulator and the connector."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from connectors.base import SourceError
from sandbox.http_simulator import CollectionSimulator


@contextmanager
def duck_destination(tmp_path: Path) -> Iterator[Any]:
    """A DuckDB dlt destination, for tests of the HTTP side (the engine-specific ones use ``destination``)."""
    from warehouse.engine import Warehouse

    with Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}") as wh:
        yield wh.dlt_destination()


def served(sim: CollectionSimulator, resource: str, page: int) -> list[int]:
    """The statuses ``sim`` answered for ``resource`` page ``page``, in order."""
    return [s for r, p, s in sim.request_log if r == resource and p == page]


def load_through_fault(sim: CollectionSimulator, load: Callable[[], Any], kind: str, resource: str, page: int,
                       **fault: Any) -> tuple[Any, list[int], float]:
    """Inject ``kind`` on ``resource`` / ``page`` and load: the result, the statuses served for that
    page and the seconds the load took."""
    sim.inject(kind, collection=resource, page=page, **fault)
    started = time.perf_counter()
    result = load()
    return result, served(sim, resource, page), time.perf_counter() - started


def fatal_fault_error(sim: CollectionSimulator, load: Callable[[], Any], kind: str, resource: str,
                      new_record: dict[str, Any], caplog: pytest.LogCaptureFixture) -> SourceError:
    """Add ``new_record`` to ``resource``, make its first page fail with ``kind`` (more times than
    any retry) and load: the :class:`SourceError` raised, with the logs captured at DEBUG."""
    sim.add(resource, **new_record)
    sim.inject(kind, collection=resource, page=1, count=5)
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as err:
        load()
    return err.value
