"""Who may use the agent desk: the hub's agents file, mapping a signed-in person to a habilitation.

ProConnect says who someone is (``sub``, per identity provider ``idp_id``); the authority says what
they may do here. The agents file (TOML, path from settings ``[desk] agents_file``) lists one
``[[agent]]`` per person::

    [[agent]]
    sub = "5f1c2a7e…"            # the identifier ProConnect gives for this person and this hub
    idp = "7f3d1c2b-…"           # the identity provider's idp_id
    collectivite = "commune"     # one of the register's [collectivites]
    service = "accueil-usager"   # one of the register's [services.*]
    role = "agent"               # agent, dpo or admin

A person missing from the file is refused at sign-in. The file is read again when it changes, so
taking a line out ends that person's sessions at their next request.
"""

from __future__ import annotations

import logging
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.register import Register

log = logging.getLogger(__name__)

ROLES = ("agent", "dpo", "admin")
FIELDS = ("sub", "idp", "collectivite", "service", "role")


class AgentsFileError(ValueError):
    """The agents file is missing or wrong; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class Habilitation:
    """What the hub lets one person (``sub`` at identity provider ``idp``) do."""

    sub: str
    idp: str
    collectivite: str
    service: str
    role: str


def parse_agents(data: dict[str, Any], *, where: str, register: Register | None = None
                 ) -> dict[tuple[str, str], Habilitation]:
    """The habilitations of an agents file's content, keyed on (sub, idp); checked against
    ``register`` (collectivité and service ids) when given."""
    unknown_sections = sorted(set(data) - {"agent"})
    if unknown_sections:
        raise AgentsFileError(f"{where}: unknown section(s) {', '.join(unknown_sections)}: only [[agent]] entries")
    entries = data.get("agent", [])
    if not isinstance(entries, list):
        raise AgentsFileError(f"{where}: `agent` must be an array of tables ([[agent]])")
    out: dict[tuple[str, str], Habilitation] = {}
    for n, entry in enumerate(entries, start=1):
        at = f"{where}: [[agent]] #{n}"
        extra = sorted(set(entry) - set(FIELDS))
        if extra:
            raise AgentsFileError(f"{at}: unknown field(s) {', '.join(extra)} (expected {', '.join(FIELDS)})")
        for f in FIELDS:
            if not isinstance(entry.get(f), str) or not entry[f].strip():
                raise AgentsFileError(f"{at}: `{f}` is required (a non-empty string)")
        h = Habilitation(**{f: entry[f].strip() for f in FIELDS})
        if h.role not in ROLES:
            raise AgentsFileError(f"{at}: role {h.role!r} is not one of {', '.join(ROLES)}")
        if register is not None:
            if h.collectivite not in register.collectivites:
                raise AgentsFileError(f"{at}: collectivite {h.collectivite!r} is not one of the register's "
                                      f"[collectivites] ({', '.join(register.collectivites)})")
            if h.service not in register.services:
                raise AgentsFileError(f"{at}: service {h.service!r} is not one of the register's [services] "
                                      f"({', '.join(register.services)})")
        if (h.sub, h.idp) in out:
            raise AgentsFileError(f"{at}: this sub and idp are already listed; one entry per person")
        out[(h.sub, h.idp)] = h
    return out


def load_agents(path: Path | str, register: Register | None = None) -> dict[tuple[str, str], Habilitation]:
    """Read and check an agents file (see the module docstring)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AgentsFileError(f"no agents file at {p} (settings [desk] agents_file; docs/desk.md)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise AgentsFileError(f"{p}: not valid TOML ({e})") from None
    return parse_agents(data, where=str(p), register=register)


class AgentDirectory:
    """The agents file, read again whenever it changes on disk (its modification time or size).

    A file made wrong while the desk runs lets nobody in until it is fixed (an entry taken out by an
    edit that broke the file must not stay in force); the error is logged.
    """

    def __init__(self, path: Path | str, register: Register | None = None):
        self.path = Path(path)
        self.register = register
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._agents = load_agents(self.path, register)

    def _stat(self) -> tuple[int, int]:
        st = self.path.stat()
        return st.st_mtime_ns, st.st_size

    def lookup(self, sub: str, idp: str) -> Habilitation | None:
        """The habilitation of (sub, idp), None when the person is not listed."""
        with self._lock:
            try:
                stamp = self._stat()
            except FileNotFoundError:
                log.error("the agents file %s is gone: nobody may sign in", self.path)
                self._agents, self._stamp = {}, (0, 0)
                return None
            if stamp != self._stamp:
                try:
                    self._agents = load_agents(self.path, self.register)
                    log.info("agents file %s read again: %d agents", self.path, len(self._agents))
                except AgentsFileError as e:
                    log.error("agents file changed and is wrong, nobody may sign in until it is fixed: %s", e)
                    self._agents = {}
                self._stamp = stamp
            return self._agents.get((sub, idp))
