"""FastAPI dependencies of the desk: the warehouse reader, the register, the signed-in agent and
their permissions.

:func:`warehouse` is the ONLY place the desk opens the warehouse, so the reader of issue #15 (a
published snapshot that a run never blocks, on DuckDB) can be swapped in here alone.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from hub.desk.access import Permissions, permissions
from hub.desk.errors import DeskError
from schemas.register import Register
from warehouse.engine import NoRelease, Warehouse, WarehouseBusy

log = logging.getLogger(__name__)

POOL_SIZE = 8


class WarehousePool:
    """A few open warehouse connections reused across requests (opening one per request costs more
    than a search). A connection that failed mid-request is closed, not reused."""

    def __init__(self, url: str, size: int = POOL_SIZE):
        self.url = url
        self._idle: queue.LifoQueue[Warehouse] = queue.LifoQueue(maxsize=size)

    def get(self) -> Warehouse:
        while True:
            try:
                wh = self._idle.get_nowait()
            except queue.Empty:
                return Warehouse.reader(self.url)  # the published release: a run never blocks it
            if not wh.stale():
                return wh
            wh.close()  # a newer release was published since it opened

    def put(self, wh: Warehouse, *, healthy: bool) -> None:
        if healthy:
            try:
                self._idle.put_nowait(wh)
                return
            except queue.Full:
                pass
        wh.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


@dataclass
class DeskState:
    """What the app holds for its requests: where the warehouse is, the register, the pool."""

    warehouse_url: str
    register: Register
    pool: WarehousePool = field(init=False)

    def __post_init__(self) -> None:
        self.pool = WarehousePool(self.warehouse_url)


def desk_state(request: Request) -> DeskState:
    return request.app.state.desk


def warehouse(state: Annotated[DeskState, Depends(desk_state)]) -> Iterator[Warehouse]:
    """The warehouse for one request (from the pool; given back when the response is done)."""
    try:
        wh = state.pool.get()
    except NoRelease:
        raise DeskError(503, "aucune_publication", "Aucune publication n'est encore disponible : le hub n'a pas "
                        "terminé sa première exécution.") from None
    healthy = False
    try:
        yield wh
        healthy = True
    finally:
        if wh.kind == "postgres" and healthy:
            healthy = not wh.connection.closed and wh.connection.info.transaction_status == 0
        state.pool.put(wh, healthy=healthy)


def writer(state: Annotated[DeskState, Depends(desk_state)]) -> Iterator[Warehouse]:
    """A writer's connection for one request that records something (a flagged merge): opened and
    closed around it, since on DuckDB a run may need the file (503 while a run holds it)."""
    try:
        wh = Warehouse(state.warehouse_url)
    except WarehouseBusy:
        raise DeskError(503, "entrepot_occupe", "Une mise à jour du hub est en cours : réessayez dans un "
                        "instant.") from None
    try:
        yield wh
    finally:
        wh.close()


def register(state: Annotated[DeskState, Depends(desk_state)]) -> Register:
    """The register of processing, loaded once when the app was made."""
    return state.register


async def current_agent(request: Request) -> Any:
    """The signed-in agent (``hub.desk.auth.Agent``); 401 without a valid session."""
    if not hasattr(request.app.state, "desk_auth"):  # no sign-in configured: nobody is signed in
        raise HTTPException(status_code=401, detail="Connexion requise.")
    from hub.desk.auth import current_agent as session_agent

    return await session_agent(request)


def agent_permissions(agent: Annotated[Any, Depends(current_agent)],
                      reg: Annotated[Register, Depends(register)]) -> Permissions:
    """The signed-in agent's permissions from the register."""
    return permissions(agent, reg)
