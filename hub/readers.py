"""Readers and writers of the warehouse side by side: how every `hub` command opens it.

* A **reader** (``hub citizen …``, ``hub review list``, the desk) opens the last published release
  (:meth:`warehouse.engine.Warehouse.reader`): on DuckDB a snapshot a run never blocks nor is
  blocked by; on PostgreSQL the database.
* A **writer** other than a run (``hub decide``, ``hub gdpr erase``…) takes the run lock first, so
  during a run it stops at once with a clear message (exit 75) instead of an engine error, and once
  it has committed publishes the snapshot again, so readers see what it changed (an erased citizen
  leaves the readers' copy too).
* Whatever a command opens, DuckDB's lock errors never reach the user raw: :func:`friendly_errors`
  turns them, and the run lock's, into one sentence and exit status 75 (EX_TEMPFAIL: retry later).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.markup import escape

from hub.terminal import err

BUSY_EXIT = 75  # sysexits' EX_TEMPFAIL: the same as `hub run` when another run holds the lock


def reader(settings: Any) -> Any:
    """A read-only warehouse on the last published release (close it, or use it in ``with``).

    A DuckDB warehouse written before snapshots existed (an upgrade) is published once, here, under
    the run lock as a writer would; during a run that is not possible and the reader is told why."""
    from warehouse.engine import NoRelease, Warehouse

    url = settings.warehouse_url
    try:
        return Warehouse.reader(url)
    except NoRelease:
        main = Path(url.split("duckdb:///", 1)[1]) if url.startswith("duckdb:///") else None
        if main is None or not main.exists():
            raise
    from hub import runlock
    from warehouse.snapshot import publish

    with runlock.hold(settings, f"publish_{datetime.now(UTC):%Y%m%dT%H%M%S}", what="first publication"):
        publish(url)
    return Warehouse.reader(url)


@contextmanager
def writer(settings: Any, what: str, *, publish: bool = True) -> Iterator[Any]:
    """The warehouse for a write that is not a run (``what``: the command, e.g. ``hub decide``):
    under the run lock, then published for readers once committed (on DuckDB). ``publish=False``
    for writes no reader reads (the DPO's register of rights requests)."""
    from hub import runlock
    from warehouse.engine import Warehouse
    from warehouse.snapshot import publish as publish_snapshot

    run_id = f"{what.replace(' ', '-')}_{datetime.now(UTC):%Y%m%dT%H%M%S}"
    with runlock.hold(settings, run_id, what=what):
        with Warehouse(settings.warehouse_url) as wh:
            yield wh
        if publish:
            publish_snapshot(settings.warehouse_url)


def busy_message(e: BaseException) -> str | None:
    """One sentence for a warehouse another process holds, a missing publication or an access log
    that cannot be written; None for any other error."""
    from hub.runlock import RunLocked
    from warehouse.access_log import AccessLogUnavailable
    from warehouse.engine import NoRelease, WarehouseBusy

    if isinstance(e, RunLocked):
        h = e.holder
        who = " ".join(str(x) for x in (h.get("run_id"), f"({h['what']})" if h.get("what") else None,
                                         f"pid {h['pid']}" if h.get("pid") else None) if x)
        since = f", started {h['started']}" if h.get("started") else ""
        return (f"a run is in progress ({who or 'holder unknown'}{since}): nothing was changed; retry when "
                "it has finished (`hub status` shows it)")
    if isinstance(e, (WarehouseBusy, NoRelease, AccessLogUnavailable)):
        return str(e)
    return None


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Around a command: the errors of :func:`busy_message` as one line on stderr and exit 75 (1
    when nothing is published yet: retrying will not help until a run publishes)."""
    from warehouse.engine import NoRelease

    try:
        yield
    except Exception as e:
        msg = busy_message(e)
        if msg is None:
            raise
        err.print(f"[red]{'not available' if isinstance(e, NoRelease) else 'busy'}:[/red] {escape(msg)}",
                  soft_wrap=True)
        sys.exit(1 if isinstance(e, NoRelease) else BUSY_EXIT)
