"""Need-to-know: what a signed-in agent may search, read and see, from the register of processing.

The register's ``[[processing.access]]`` entries say which services (of which collectivités) may
search and read which ``golden.citizen`` attributes and see which interaction kinds, for which
processing. :func:`permissions` gathers them for one agent; the API cuts every response to them and
refuses every endpoint they do not open. The templates never decide.

A read is made for one purpose: the agent names one of the processings granting them desk access,
and :meth:`Permissions.for_purpose` narrows the permissions to that processing alone (an agent of
the school service reading for the family portal sees what the family portal's processing grants,
nothing its other processings grant).

Silos: a processing of a silo (``kind = "source"``) covers that silo's records and interactions
only; a processing of the hub (``kind = "hub"``, e.g. the guichet unique) covers every silo.

Roles come from the hub's agents file, beside the service: ``agent`` (reads through the register),
``dpo`` (also the access log of a citizen: who looked at them), ``admin`` (also the operations
summary: runs, review-queue counts). A role opens endpoints; citizen data still needs the register.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from schemas.register import Processing, Register

ROLES = ("agent", "dpo", "admin")
ALL_SYSTEMS = None  # source_systems of a hub processing: every silo


class AgentLike(Protocol):
    """What the permissions need of an agent (``hub.desk.auth.Agent`` has it)."""

    service: str
    collectivite: str
    role: str


class PurposeRefused(PermissionError):
    """The purpose named is not one of the processings granting this agent desk access."""

    def __init__(self, purpose: str, valid: tuple[Processing, ...]):
        self.purpose = purpose
        self.valid = valid
        super().__init__("finalité refusée")


@dataclass(frozen=True)
class Permissions:
    """What one agent may do in the desk (for all their purposes, or narrowed to one by
    :meth:`for_purpose`)."""

    collectivite: str
    service: str
    role: str
    searchable: bool
    readable: frozenset[str]  # golden.citizen attributes
    interaction_kinds: frozenset[str]
    purposes: tuple[Processing, ...]  # the processings granting desk access, register order
    source_systems: frozenset[str] | None  # silos covered; None: every silo (a hub processing)
    once_only: frozenset[str] = frozenset()  # attributes the service's forms may prefill

    @property
    def reads_citizens(self) -> bool:
        """Whether any citizen data is open to this agent."""
        return bool(self.purposes)

    def covers(self, source_system: str | None) -> bool:
        """Whether records and interactions of ``source_system`` are covered."""
        return self.source_systems is None or (source_system or "") in self.source_systems

    def purpose(self, text: str | None) -> Processing:
        """The processing named by ``text`` (its id or purpose text, case and spacing aside) among
        this agent's purposes; :class:`PurposeRefused` otherwise. With one purpose only, an empty
        ``text`` chooses it."""
        key = " ".join((text or "").split()).casefold()
        if not key and len(self.purposes) == 1:
            return self.purposes[0]
        for p in self.purposes:
            if key in (p.id.casefold(), " ".join(p.purpose.split()).casefold()):
                return p
        raise PurposeRefused(text or "", self.purposes)

    def for_purpose(self, processing: Processing) -> Permissions:
        """These permissions narrowed to what ``processing`` grants this agent."""
        grants = [a for a in processing.access if self.service in a.services
                  and ("*" in a.collectivites or self.collectivite in a.collectivites)]
        return replace(
            self,
            searchable=any(a.search for a in grants),
            readable=frozenset(x for a in grants for x in a.read),
            interaction_kinds=frozenset(k for a in grants for k in a.interaction_kinds),
            purposes=(processing,),
            source_systems=_systems([processing]),
        )


def _systems(processings: list[Processing]) -> frozenset[str] | None:
    if any(p.kind != "source" or not p.source_system for p in processings):
        return ALL_SYSTEMS
    return frozenset(p.source_system for p in processings if p.source_system)


def permissions(agent: AgentLike, register: Register) -> Permissions:
    """The agent's permissions from ``register.access_for(agent.service, agent.collectivite)``.

    Only processings granting search, read or interaction kinds are purposes of the desk; those
    granting prefill only give the once-only attributes shown on a citizen page."""
    grants = register.access_for(agent.service, agent.collectivite)
    desk = [(p, a) for p, a in grants if a.search or a.read or a.interaction_kinds]
    purposes: list[Processing] = []
    for p, _ in desk:
        if p not in purposes:
            purposes.append(p)
    return Permissions(
        collectivite=agent.collectivite,
        service=agent.service,
        role=agent.role if agent.role in ROLES else "agent",
        searchable=any(a.search for _, a in desk),
        readable=frozenset(x for _, a in desk for x in a.read),
        interaction_kinds=frozenset(k for _, a in desk for k in a.interaction_kinds),
        purposes=tuple(purposes),
        source_systems=_systems(purposes) if purposes else frozenset(),
        once_only=frozenset(x for _, a in grants for x in a.prefill),
    )
