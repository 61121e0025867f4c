"""FastAPI dependencies of the desk: the warehouse reader, the register, the signed-in agent and
their permissions.

:class:`Reader` (the dependency :func:`reader`) is the ONLY place the desk opens the warehouse for
reading, so the reader of issue #15 (a published snapshot that a run never blocks, on DuckDB) can be
swapped in here alone.

On PostgreSQL the desk reads through its own logins (docs/warehouse.md, *Logins*): the desk
reader role's for agents, the DPO role's for the DPO, and each request is one transaction whose
context (``warehouse.roles.session_context``: the agent's collectivité and service, transaction-local)
row security filters every read by. An endpoint opens it in its own body, ``with read() as wh:``:
the transaction, and the access-log rows it appended, commit before the response leaves, in the
one worker thread FastAPI runs a plain ``def`` endpoint in. (A generator dependency that opened it
cost two more hand-offs to the thread pool per request, each a wake-up of another thread under the
GIL: a quarter of the desk's time under 8 concurrent searches.)
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from hub.desk.access import Permissions, permissions
from hub.desk.errors import DeskError
from schemas.register import Register
from warehouse.engine import NoRelease, Warehouse, WarehouseBusy
from warehouse.roles import session_context

log = logging.getLogger(__name__)

POOL_SIZE = 8


class WarehousePool:
    """A few open warehouse connections reused across requests (opening one per request costs more
    than a search). A connection that failed mid-request is closed, not reused."""

    def __init__(self, url: str, size: int = POOL_SIZE):
        self.url = url
        self._idle: queue.LifoQueue[Warehouse] = queue.LifoQueue(maxsize=size)
        self._checked = False
        self._preparing = threading.Lock()  # one preparation at a time
        self._closed = False

    def get(self) -> Warehouse:
        while True:
            try:
                wh = self._idle.get_nowait()
            except queue.Empty:
                wh = Warehouse.reader(self.url)  # the published release: a run never blocks it
                if not self._checked:
                    self._checked = True
                    _warn_unless_row_secured(wh)
                return wh
            if not wh.stale():
                return wh
            wh.close()  # a newer release was published since it opened
            self.prepare()

    def prepare(self) -> None:
        """Load the release's search index in the background (DuckDB: 3.4 s at 1M people), so that
        the first search after the desk starts or after a publication does not wait for it; the
        searches made meanwhile wait for the same load, not for another. Called when the desk starts
        and when a pooled reader finds a newer release."""
        if self._preparing.acquire(blocking=False):
            threading.Thread(target=self._prepare, name="search-prepare", daemon=True).start()

    def _prepare(self) -> None:
        from warehouse.search import prepare

        wh = None
        try:
            wh = Warehouse.reader(self.url)
            if wh.snapshot is not None:  # a DuckDB snapshot (PostgreSQL has nothing to load)
                prepare(wh)
                # a pooled reader keeps the release's instance, and its index, open
                wh, ready = None, wh
                self.put(ready, healthy=True)
        except NoRelease:
            pass  # nothing published yet: the first search after the first publication loads it
        except Exception as e:  # the first search loads it (and fails there, with its answer)
            log.warning("desk: the search index could not be loaded ahead (%s)", type(e).__name__)
        finally:
            if wh is not None:
                wh.close()
            self._preparing.release()

    def put(self, wh: Warehouse, *, healthy: bool) -> None:
        if healthy and not self._closed:
            try:
                self._idle.put_nowait(wh)
                return
            except queue.Full:
                pass
        wh.close()

    def close(self) -> None:
        self._closed = True  # a reader given back after (a request, a preload finishing) is closed
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _warn_unless_row_secured(wh: Warehouse) -> None:
    """Log, once per pool, when the desk's PostgreSQL login is not held by row security (a superuser,
    a BYPASSRLS role or a table owner: a single-user setup or a test), since only the register's
    checks in Python then cut what an agent sees."""
    if wh.kind != "postgres":
        return
    row = wh.rows("SELECT rolsuper OR rolbypassrls, rolname FROM pg_roles WHERE rolname = current_user")
    if row and row[0][0]:
        log.warning("desk: the warehouse login %s bypasses row security; give the desk its own login "
                    "(docs/warehouse.md, Logins)", row[0][1])


@dataclass
class DeskState:
    """What the app holds for its requests: where the warehouse is, the register, the pools.

    ``warehouse_url`` is the agents' reads (the desk reader login on PostgreSQL), ``dpo_url`` the
    DPO's (the DPO login: the access log's readers, every silo), ``writer_url`` the flags' writes
    (review queue); the last two default to ``warehouse_url``."""

    warehouse_url: str
    register: Register
    dpo_url: str | None = None
    writer_url: str | None = None
    pool: WarehousePool = field(init=False)
    dpo_pool: WarehousePool = field(init=False)

    def __post_init__(self) -> None:
        self.dpo_url = self.dpo_url or self.warehouse_url
        self.writer_url = self.writer_url or self.warehouse_url
        self.pool = WarehousePool(self.warehouse_url)
        self.dpo_pool = self.pool if self.dpo_url == self.warehouse_url else WarehousePool(self.dpo_url)

    def pool_for(self, role: str) -> WarehousePool:
        """The DPO's pool for the DPO, the desk reader's for everyone else."""
        return self.dpo_pool if role == "dpo" else self.pool

    def close(self) -> None:
        self.pool.close()
        if self.dpo_pool is not self.pool:
            self.dpo_pool.close()


async def desk_state(request: Request) -> DeskState:
    return request.app.state.desk


async def current_agent(request: Request) -> Any:
    """The signed-in agent (``hub.desk.auth.Agent``); 401 without a valid session."""
    if not hasattr(request.app.state, "desk_auth"):  # no sign-in configured: nobody is signed in
        raise HTTPException(status_code=401, detail="Connexion requise.")
    from hub.desk.auth import current_agent as session_agent

    return await session_agent(request)


async def register(state: Annotated[DeskState, Depends(desk_state)]) -> Register:
    """The register of processing, loaded once when the app was made."""
    return state.register


async def agent_permissions(agent: Annotated[Any, Depends(current_agent)],
                      reg: Annotated[Register, Depends(register)]) -> Permissions:
    """The signed-in agent's permissions from the register."""
    return permissions(agent, reg)


@dataclass(frozen=True)
class Reader:
    """The warehouse for one signed-in agent's request, opened by the endpoint: ``with read() as wh``."""

    state: DeskState
    perms: Permissions
    collectivite: str
    service: str

    @contextmanager
    def __call__(self) -> Iterator[Warehouse]:
        """A connection from the pool of the agent's login (given back after). On PostgreSQL one
        transaction acting for the agent's collectivité and service: row security shows their
        grants' rows only."""
        pool = self.state.pool_for(self.perms.role)
        try:
            wh = pool.get()
        except NoRelease:
            raise DeskError(503, "aucune_publication", "Aucune publication n'est encore disponible : le hub n'a "
                            "pas terminé sa première exécution.") from None
        healthy = False
        try:
            if wh.kind == "postgres":
                with session_context(wh, collectivite=self.collectivite, service=self.service):
                    yield wh
            else:
                yield wh
            healthy = True
        except DeskError:  # an answer of ours (400, 403, 404): the connection is as good as before
            healthy = True
            raise
        finally:
            if wh.kind == "postgres" and healthy:
                healthy = not wh.connection.closed and wh.connection.info.transaction_status == 0
            pool.put(wh, healthy=healthy)


async def reader(state: Annotated[DeskState, Depends(desk_state)], agent: Annotated[Any, Depends(current_agent)],
                 perms: Annotated[Permissions, Depends(agent_permissions)]) -> Reader:
    """The signed-in agent's :class:`Reader` (nothing opened yet)."""
    return Reader(state, perms, agent.collectivite, agent.service)


def writer(state: Annotated[DeskState, Depends(desk_state)]) -> Iterator[Warehouse]:
    """A writer's connection for one request that records something (a flagged merge): opened and
    closed around it, since on DuckDB a run may need the file (503 while a run holds it)."""
    try:
        wh = Warehouse(state.writer_url)
    except WarehouseBusy:
        raise DeskError(503, "entrepot_occupe", "Une mise à jour du hub est en cours : réessayez dans un "
                        "instant.") from None
    try:
        yield wh
    finally:
        wh.close()
