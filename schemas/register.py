"""The register of processing (GDPR Art. 30) as data: what everything else reads.

A consolidated citizen record is lawful only as a set of declared processings, so the register is
configuration, not paperwork: each processing names its controller, purpose, legal basis, the
people and data it concerns with their retention, the warehouse columns holding that data,
recipients, transfers, security measures, DPIA, and which services (of which collectivités) may
search and read which attributes and interaction kinds for it (the desk), or prefill (the
once-only forms). The fields follow the CNIL's register model.

The register itself is a TOML file an authority edits (``schemas/register.toml`` by default,
``$HUB_REGISTER`` or an explicit path otherwise). :func:`load_register` validates it on load: a
missing or invalid value is a :class:`RegisterError` naming the processing and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

from schemas.contract import ALL_TABLES, CITIZEN, INTERACTION_KINDS, Table

DEFAULT_PATH = Path(__file__).with_name("register.toml")

# GDPR Art. 6(1): the lawful bases, as the French text names them.
ART6: dict[str, str] = {
    "a": "consentement",
    "b": "exécution d'un contrat",
    "c": "obligation légale",
    "d": "sauvegarde des intérêts vitaux",
    "e": "mission d'intérêt public",
    "f": "intérêts légitimes",
}

# GDPR Art. 9(2): the exceptions allowing special categories of data.
ART9: dict[str, str] = {
    "a": "consentement explicite",
    "b": "obligations en matière de droit du travail, de la sécurité sociale et de la protection sociale",
    "c": "sauvegarde des intérêts vitaux",
    "d": "activités légitimes d'une fondation, association ou autre organisme à but non lucratif",
    "e": "données manifestement rendues publiques par la personne",
    "f": "constatation, exercice ou défense d'un droit en justice",
    "g": "motif d'intérêt public important",
    "h": "médecine préventive, prise en charge sanitaire ou sociale",
    "i": "intérêt public dans le domaine de la santé publique",
    "j": "archivage dans l'intérêt public, recherche scientifique ou historique, statistiques",
}

# Special categories of Art. 9(1) (and Art. 10), as the register names them.
SPECIAL_CATEGORIES: dict[str, str] = {
    "origine": "origine raciale ou ethnique",
    "opinions": "opinions politiques",
    "religion": "convictions religieuses ou philosophiques",
    "syndicat": "appartenance syndicale",
    "genetique": "données génétiques",
    "biometrie": "données biométriques aux fins d'identifier une personne",
    "sante": "données concernant la santé",
    "vie_sexuelle": "vie sexuelle ou orientation sexuelle",
    "infractions": "condamnations pénales et infractions (art. 10)",
}

# Data categories, after the CNIL's register model (plus contact details and dealings with the
# administration, which every processing here has and which the model folds into "identité").
DATA_CATEGORIES: dict[str, str] = {
    "identite": "État civil, identité, données d'identification",
    "coordonnees": "Coordonnées (adresse postale, courriel, téléphone)",
    "vie_personnelle": "Vie personnelle (situation familiale, foyer)",
    "vie_professionnelle": "Vie professionnelle, scolarité, fonctions",
    "economique": "Informations d'ordre économique et financier",
    "demarches": "Demandes, dossiers et échanges avec l'administration",
    "connexion": "Données de connexion et journaux",
    "localisation": "Données de localisation",
}

# When a retention period starts (the purge will read the code; the export prints the label).
START_EVENTS: dict[str, str] = {
    "collecte": "collecte ou création de l'enregistrement",
    "cloture": "clôture du dossier ou de la demande",
    "emission": "émission de la pièce (facture, titre)",
    "fin_exercice": "fin de l'exercice comptable",
    "fin_relation": "fin de la relation avec la personne (dernier enregistrement supprimé de la source)",
    "fin_inscription": "fin de l'inscription ou de la scolarité",
    "fin_mandat": "fin du mandat ou de la fonction",
    "consultation": "consultation (rien n'est conservé au-delà)",
}

END_ACTIONS: dict[str, str] = {
    "suppression": "suppression",
    "archivage": "archivage intermédiaire puis tri par les archives",
    "anonymisation": "anonymisation",
}

KINDS = ("hub", "source")
_DURATION = re.compile(r"^\s*(\d+)\s*(jour|jours|mois|an|ans)\s*$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_TABLE = re.compile(rf"^{_IDENT}\.{_IDENT}$")
CONTRACT_TABLES: dict[str, Table] = {f"{t.schema}.{t.name}": t for t in ALL_TABLES}
GOLDEN_ATTRIBUTES = tuple(c.name for c in CITIZEN.columns if c.personal)
ALL = "*"


class RegisterError(ValueError):
    """The register file is invalid: every problem, each naming the processing and the field."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.problems = problems
        super().__init__(f"register of processing {path}: " + "; ".join(problems))


# ------------------------------------------------------------------------------------------ model
class UnknownPurpose(ValueError):
    """A read's purpose that is none of the register's processings (free text is refused)."""


def _purpose_key(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class Party:
    """A controller, a DPO, a joint controller: who, where, how to reach them."""

    name: str
    address: str = ""
    email: str = ""
    phone: str = ""

    @property
    def contact(self) -> str:
        return " — ".join(x for x in (self.email, self.phone) if x)


@dataclass(frozen=True)
class LegalBasis:
    article: str  # the letter of Art. 6(1): a..f
    reference: str = ""  # the text: law, code article, deliberation

    @property
    def code(self) -> str:
        return f"6-1-{self.article}"

    @property
    def label(self) -> str:
        return ART6[self.article]

    @property
    def text(self) -> str:
        """E.g. ``mission d'intérêt public (art. 6-1-e), Code de l'éducation L.131-6``."""
        base = f"{self.label} (art. {self.code})"
        return f"{base}, {self.reference}" if self.reference else base


@dataclass(frozen=True)
class SpecialCategory:
    category: str  # key of SPECIAL_CATEGORIES
    condition: str  # the letter of Art. 9(2)
    reference: str = ""

    @property
    def text(self) -> str:
        base = f"{SPECIAL_CATEGORIES[self.category]} — {ART9[self.condition]} (art. 9-2-{self.condition})"
        return f"{base}, {self.reference}" if self.reference else base


@dataclass(frozen=True)
class Retention:
    duration: str  # as written: "5 ans", "13 mois", "0 jour"
    amount: int
    unit: str  # days, months or years
    start: str  # key of START_EVENTS
    extended_by_activity: bool
    at_end: str  # key of END_ACTIONS
    note: str = ""

    @property
    def text(self) -> str:
        """One French sentence: duration, start, extension, what happens at the end."""
        # "0 jour": kept only until the start event itself (as long as the source holds the record)
        start = START_EVENTS[self.start]
        parts = [f"jusqu'à : {start}" if self.amount == 0 else f"{self.duration} à compter de : {start}"]
        if self.extended_by_activity:
            parts.append("prolongée par toute activité récente")
        parts.append(f"puis {END_ACTIONS[self.at_end]}")
        s = ", ".join(parts)
        return f"{s} ({self.note})" if self.note else s


@dataclass(frozen=True)
class DataCategory:
    category: str  # key of DATA_CATEGORIES
    label: str
    description: str
    columns: Mapping[str, tuple[str, ...]]  # "schema.table" -> personal columns
    retention: Retention


@dataclass(frozen=True)
class Recipients:
    internal: tuple[str, ...] = ()
    external: tuple[str, ...] = ()
    processors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transfer:
    recipient: str
    country: str
    safeguard: str
    documentation: str = ""


@dataclass(frozen=True)
class Dpia:
    required: bool
    reference: str = ""


@dataclass(frozen=True)
class Access:
    """Which services (of which collectivités) may search / read / prefill what, for this processing."""

    services: tuple[str, ...]
    collectivites: tuple[str, ...] = (ALL,)
    search: bool = False
    read: tuple[str, ...] = ()  # golden.citizen attributes shown in the desk
    interaction_kinds: tuple[str, ...] = ()  # interaction kinds shown in the desk
    prefill: tuple[str, ...] = ()  # golden.citizen attributes a form may prefill (once-only)


@dataclass(frozen=True)
class Service:
    id: str
    label: str
    collectivite: str


@dataclass(frozen=True)
class Processing:
    id: str
    name: str
    kind: str  # hub (the hub's own) or source (a silo's processing, loaded as raw_<system>)
    source_system: str | None
    controller: Party
    dpo: Party
    joint_controllers: tuple[Party, ...]
    purpose: str
    sub_purposes: tuple[str, ...]
    legal_basis: LegalBasis
    special_categories: tuple[SpecialCategory, ...]
    data_subjects: tuple[str, ...]
    data: tuple[DataCategory, ...]
    recipients: Recipients
    transfers: tuple[Transfer, ...]
    security: tuple[str, ...]
    dpia: Dpia
    created: date
    updated: date
    not_personal: Mapping[str, tuple[str, ...]]  # "schema.table" -> columns, or ("*",): the rest
    access: tuple[Access, ...] = ()
    # the access export names the agents who consulted the person's record for this processing (CJEU
    # C-579/21: their identity is owed only where needed to check the lawfulness of the reads)
    disclose_readers: bool = False

    def columns(self) -> dict[str, set[str]]:
        """"schema.table" -> the personal columns this processing maps there."""
        out: dict[str, set[str]] = {}
        for d in self.data:
            for table, cols in d.columns.items():
                out.setdefault(table, set()).update(cols)
        return out


@dataclass(frozen=True)
class Register:
    path: Path
    controller: Party
    dpo: Party
    collectivites: Mapping[str, str]
    services: Mapping[str, Service]
    processings: tuple[Processing, ...]
    updated: date | None = None
    _by_id: dict[str, Processing] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update({p.id: p for p in self.processings})

    def processing(self, processing_id: str) -> Processing:
        try:
            return self._by_id[processing_id]
        except KeyError:
            raise KeyError(f"no processing {processing_id!r} in the register "
                           f"(one of {', '.join(sorted(self._by_id))})") from None

    def processing_for(self, purpose: str) -> Processing:
        """The processing a read is for, named by its id or by its purpose text (case and spacing
        aside). Anything else is free text: :class:`UnknownPurpose`, listing the valid ones."""
        key = _purpose_key(purpose or "")
        for p in self.processings:
            if key in (_purpose_key(p.id), _purpose_key(p.purpose)):
                return p
        valid = "; ".join(f"{p.id} ({p.purpose})" for p in self.processings)
        raise UnknownPurpose(f"unknown purpose {purpose!r}: a purpose is one of the register's processings "
                             f"({self.path}), by id or purpose text: {valid}")

    def personal_columns(self) -> dict[str, dict[str, list[str]]]:
        """"schema.table" -> column -> ids of the processings mapping it as personal data."""
        out: dict[str, dict[str, list[str]]] = {}
        for p in self.processings:
            for table, cols in p.columns().items():
                for c in cols:
                    out.setdefault(table, {}).setdefault(c, []).append(p.id)
        return out

    def not_personal(self) -> dict[str, set[str]]:
        """"schema.table" -> columns declared not personal ("*": every column not mapped as personal)."""
        out: dict[str, set[str]] = {}
        for p in self.processings:
            for table, cols in p.not_personal.items():
                out.setdefault(table, set()).update(cols)
        return out

    def access_for(self, service: str, collectivite: str | None = None) -> list[tuple[Processing, Access]]:
        """What a service (of a collectivité, when given) may do, processing by processing: the
        rules the desk enforces. Empty for an unknown service: it reads nothing."""
        return [(p, a) for p in self.processings for a in p.access if service in a.services
                and (collectivite is None or ALL in a.collectivites or collectivite in a.collectivites)]

    def prefill_services(self) -> dict[str, tuple[Processing, Access]]:
        """Service id -> (the processing it prefills for, its access rule)."""
        return {s: (p, a) for p in self.processings for a in p.access if a.prefill for s in a.services}


# ------------------------------------------------------------------------------------------ loading
def register_path(path: Path | str | None = None) -> Path:
    """The register file: ``path``, else ``$HUB_REGISTER``, else the one shipped in ``schemas/``."""
    return Path(path or os.environ.get("HUB_REGISTER") or DEFAULT_PATH)


def load_register(path: Path | str | None = None) -> Register:
    """Read and validate the register; :class:`RegisterError` lists every problem found."""
    p = register_path(path)
    try:
        stat = p.stat()
    except FileNotFoundError:
        raise RegisterError(p, ["file not found"]) from None
    return _load_cached(str(p.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int, _size: int) -> Register:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise RegisterError(path, [f"not valid TOML: {e}"]) from None
    return parse_register(data, path=Path(path))


def parse_register(data: Mapping[str, Any], *, path: Path | str = "<register>") -> Register:
    """A register from its parsed TOML; :class:`RegisterError` lists every problem found."""
    v = _Validator()
    controller = v.party(data.get("controller"), "controller", required=True)
    dpo = v.party(data.get("dpo"), "dpo", required=True)
    collectivites = v.mapping_of_str(data.get("collectivites"), "collectivites")
    services: dict[str, Service] = {}
    for sid, spec in (v.table(data.get("services"), "services") or {}).items():
        where = f"services.{sid}"
        if not _ID.match(sid):
            v.error(where, "a service id is lower-case letters, digits and dashes")
        spec = v.table(spec, where) or {}
        coll = v.string(spec.get("collectivite"), f"{where}.collectivite", required=True)
        if coll and coll not in collectivites:
            v.error(f"{where}.collectivite", f"{coll!r} is not one of [collectivites]")
        services[sid] = Service(sid, v.string(spec.get("label"), f"{where}.label", required=True), coll)
    raw = data.get("processing")
    if not isinstance(raw, list) or not raw:
        v.error("processing", "the register needs at least one [[processing]] entry")
        raw = []
    processings = []
    for i, spec in enumerate(raw):
        pid = spec.get("id") if isinstance(spec, dict) else None
        where = f"processing {pid!r}" if isinstance(pid, str) and pid else f"processing #{i + 1}"
        if not isinstance(spec, dict):
            v.error(where, "must be a table")
            continue
        processings.append(v.processing(spec, where, controller, dpo, collectivites, services))
    ids = [p.id for p in processings]
    for dup in sorted({x for x in ids if ids.count(x) > 1}):
        v.error(f"processing {dup!r}", "id used by more than one processing")
    purposes = [p.purpose for p in processings]
    for dup in sorted({x for x in purposes if purposes.count(x) > 1}):
        v.error("processing.purpose", f"purpose {dup!r} is declared by more than one processing")
    prefill_owner: dict[str, str] = {}
    for p in processings:
        for a in p.access:
            if a.prefill:
                for s in a.services:
                    if s in prefill_owner and prefill_owner[s] != p.id:
                        v.error(f"processing {p.id!r}.access",
                                f"service {s!r} already prefills for processing {prefill_owner[s]!r}")
                    prefill_owner[s] = p.id
    _check_not_personal_overlap(v, processings)
    updated = data.get("updated")
    if updated is not None and not isinstance(updated, date):
        v.error("updated", "must be a date (YYYY-MM-DD)")
        updated = None
    if v.problems:
        raise RegisterError(path, v.problems)
    return Register(Path(path), controller, dpo, collectivites, services, tuple(processings), updated)


def _check_not_personal_overlap(v: _Validator, processings: list[Processing]) -> None:
    personal: dict[str, set[str]] = {}
    for p in processings:
        for t, cols in p.columns().items():
            personal.setdefault(t, set()).update(cols)
    for p in processings:
        for t, cols in p.not_personal.items():
            both = sorted(set(cols) & personal.get(t, set()))
            if both:
                v.error(f"processing {p.id!r}.not_personal.{t}",
                        f"column(s) {', '.join(both)} are also mapped as personal data")


class _Validator:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # -------------------------------------------------------------------- scalars
    def string(self, value: Any, where: str, *, required: bool = False) -> str:
        if value is None or value == "":
            if required:
                self.error(where, "missing")
            return ""
        if not isinstance(value, str):
            self.error(where, "must be text")
            return ""
        return value.strip()

    def strings(self, value: Any, where: str, *, required: bool = False) -> tuple[str, ...]:
        if value is None or value == []:
            if required:
                self.error(where, "missing (a non-empty list)")
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
            self.error(where, "must be a list of non-empty texts")
            return ()
        return tuple(x.strip() for x in value)

    def boolean(self, value: Any, where: str, *, default: bool | None = None) -> bool:
        if value is None and default is not None:
            return default
        if not isinstance(value, bool):
            self.error(where, "missing (true or false)" if value is None else "must be true or false")
            return False
        return value

    def day(self, value: Any, where: str) -> date:
        if not isinstance(value, date):
            self.error(where, "missing (a date, YYYY-MM-DD)" if value is None else "must be a date (YYYY-MM-DD)")
            return date.min
        return value

    def choice(self, value: Any, where: str, choices: Mapping[str, str] | tuple[str, ...]) -> str:
        if value is None or value == "":
            self.error(where, f"missing (one of {', '.join(choices)})")
            return ""
        if value not in choices:
            self.error(where, f"{value!r} is not one of {', '.join(choices)}")
            return ""
        return str(value)

    def table(self, value: Any, where: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(where, "must be a table")
            return None
        return value

    def mapping_of_str(self, value: Any, where: str) -> dict[str, str]:
        out = {}
        for k, x in (self.table(value, where) or {}).items():
            out[k] = self.string(x, f"{where}.{k}", required=True)
        return out

    def party(self, value: Any, where: str, *, required: bool = False, default: Party | None = None) -> Party:
        spec = self.table(value, where)
        if spec is None:
            if required:
                self.error(where, "missing (name, address, email, phone)")
            return default or Party("")
        return Party(
            name=self.string(spec.get("name"), f"{where}.name", required=True),
            address=self.string(spec.get("address"), f"{where}.address", required=required),
            email=self.string(spec.get("email"), f"{where}.email", required=required),
            phone=self.string(spec.get("phone"), f"{where}.phone"),
        )

    # -------------------------------------------------------------------- structures
    def retention(self, value: Any, where: str) -> Retention:
        spec = self.table(value, where)
        if spec is None:
            self.error(where, "missing (duration, start, extended_by_activity, at_end)")
            spec = {}
        duration = spec.get("duration")
        amount, unit = 0, "days"
        if duration is None or duration == "":
            self.error(f"{where}.duration", "missing (e.g. \"5 ans\", \"13 mois\", \"30 jours\")")
        elif not isinstance(duration, str) or not (m := _DURATION.match(duration)):
            self.error(f"{where}.duration", f"{duration!r} is not a duration like \"5 ans\", \"13 mois\", \"30 jours\"")
        else:
            amount = int(m.group(1))
            unit = {"jour": "days", "jours": "days", "mois": "months", "an": "years", "ans": "years"}[m.group(2)]
        return Retention(
            duration=str(duration or "").strip(),
            amount=amount,
            unit=unit,
            start=self.choice(spec.get("start"), f"{where}.start", START_EVENTS),
            extended_by_activity=self.boolean(spec.get("extended_by_activity"), f"{where}.extended_by_activity"),
            at_end=self.choice(spec.get("at_end"), f"{where}.at_end", END_ACTIONS),
            note=self.string(spec.get("note"), f"{where}.note"),
        )

    def columns(self, value: Any, where: str) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for table, cols in (self.table(value, where) or {}).items():
            at = f"{where}.{table}"
            if not _TABLE.match(table):
                self.error(at, "a table is named schema.table")
                continue
            names = self.strings(cols, at, required=True)
            for c in names:
                if not re.fullmatch(_IDENT, c):
                    self.error(at, f"{c!r} is not a column name")
            contract = CONTRACT_TABLES.get(table)
            if contract is not None:
                unknown = [c for c in names if c not in contract.column_names]
                if unknown:
                    self.error(at, f"column(s) {', '.join(unknown)} not in the contract's {table}")
            out[table] = names
        return out

    def not_personal(self, value: Any, where: str) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for table, cols in (self.table(value, where) or {}).items():
            at = f"{where}.{table}"
            if not _TABLE.match(table):
                self.error(at, "a table is named schema.table")
                continue
            contract = CONTRACT_TABLES.get(table)
            if cols == ALL:
                if contract is not None and any(c.personal for c in contract.columns):
                    self.error(at, f"\"*\" is not allowed: the contract marks personal columns in {table}")
                out[table] = (ALL,)
                continue
            names = self.strings(cols, at, required=True)
            if contract is not None:
                personal = [c for c in names if c in contract.column_names and contract.column(c).personal]
                if personal:
                    self.error(at, f"the contract marks {', '.join(personal)} as personal data")
            out[table] = names
        return out

    def access(self, value: Any, where: str, collectivites: Mapping[str, str],
               services: Mapping[str, Service]) -> tuple[Access, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error(where, "must be a list of [[processing.access]] tables")
            return ()
        out = []
        for i, spec in enumerate(value):
            at = f"{where}[{i}]"
            if not isinstance(spec, dict):
                self.error(at, "must be a table")
                continue
            svc = self.strings(spec.get("services"), f"{at}.services", required=True)
            for s in svc:
                if s not in services:
                    self.error(f"{at}.services", f"{s!r} is not one of [services]")
            coll = self.strings(spec.get("collectivites"), f"{at}.collectivites") or (ALL,)
            for c in coll:
                if c != ALL and c not in collectivites:
                    self.error(f"{at}.collectivites", f"{c!r} is not one of [collectivites] (or \"*\")")
            attrs = {}
            for key in ("read", "prefill"):
                attrs[key] = self.strings(spec.get(key), f"{at}.{key}")
                bad = [a for a in attrs[key] if a not in GOLDEN_ATTRIBUTES]
                if bad:
                    self.error(f"{at}.{key}", f"{', '.join(bad)} not among the golden attributes "
                                              f"({', '.join(GOLDEN_ATTRIBUTES)})")
            kinds = self.strings(spec.get("interaction_kinds"), f"{at}.interaction_kinds")
            bad = [k for k in kinds if k not in INTERACTION_KINDS]
            if bad:
                self.error(f"{at}.interaction_kinds", f"{', '.join(bad)} not among {', '.join(INTERACTION_KINDS)}")
            search = self.boolean(spec.get("search"), f"{at}.search", default=False)
            if not (search or attrs["read"] or kinds or attrs["prefill"]):
                self.error(at, "grants nothing (search, read, interaction_kinds or prefill)")
            out.append(Access(svc, coll, search, attrs["read"], kinds, attrs["prefill"]))
        return tuple(out)

    def processing(self, spec: Mapping[str, Any], where: str, controller: Party, dpo: Party,
                   collectivites: Mapping[str, str], services: Mapping[str, Service]) -> Processing:
        pid = self.string(spec.get("id"), f"{where}.id", required=True)
        if pid and not _ID.match(pid):
            self.error(f"{where}.id", "lower-case letters, digits and dashes")
        kind = self.choice(spec.get("kind"), f"{where}.kind", KINDS)
        source_system = self.string(spec.get("source_system"), f"{where}.source_system", required=kind == "source")
        lb = self.table(spec.get("legal_basis"), f"{where}.legal_basis")
        if lb is None:
            self.error(f"{where}.legal_basis", "missing (article = \"a\"..\"f\" of Art. 6(1), reference = the text)")
            lb = {}
        article = str(lb.get("article", "")).strip().lower().removeprefix("6-1-").removeprefix("6(1)(").rstrip(")")
        if article not in ART6:
            self.error(f"{where}.legal_basis.article",
                       f"{lb.get('article')!r} is not a lawful basis of GDPR Art. 6(1) (one of a, b, c, d, e, f)")
        legal_basis = LegalBasis(article if article in ART6 else "e",
                                 self.string(lb.get("reference"), f"{where}.legal_basis.reference"))
        special = []
        for i, sc in enumerate(spec.get("special_categories") or []):
            at = f"{where}.special_categories[{i}]"
            sc = self.table(sc, at) or {}
            cat = self.choice(sc.get("category"), f"{at}.category", SPECIAL_CATEGORIES)
            cond = str(sc.get("condition", "")).strip().lower().removeprefix("9-2-")
            if cond not in ART9:
                self.error(f"{at}.condition", f"{sc.get('condition')!r} is not an exception of GDPR Art. 9(2) (a..j)")
            if cat and cond in ART9:
                special.append(SpecialCategory(cat, cond, self.string(sc.get("reference"), f"{at}.reference")))
        data = []
        raw_data = spec.get("data")
        if not isinstance(raw_data, list) or not raw_data:
            self.error(f"{where}.data", "missing: at least one [[processing.data]] category with its retention")
            raw_data = []
        for i, d in enumerate(raw_data):
            at = f"{where}.data[{i}]"
            d = self.table(d, at) or {}
            cat = self.choice(d.get("category"), f"{at}.category", DATA_CATEGORIES)
            data.append(DataCategory(
                category=cat,
                label=self.string(d.get("label"), f"{at}.label") or DATA_CATEGORIES.get(cat, ""),
                description=self.string(d.get("description"), f"{at}.description", required=True),
                columns=self.columns(d.get("columns"), f"{at}.columns"),
                retention=self.retention(d.get("retention"), f"{at}.retention"),
            ))
        rec = self.table(spec.get("recipients"), f"{where}.recipients")
        if rec is None:
            self.error(f"{where}.recipients", "missing (internal, external, processors)")
            rec = {}
        recipients = Recipients(*(self.strings(rec.get(k), f"{where}.recipients.{k}")
                                  for k in ("internal", "external", "processors")))
        if not (recipients.internal or recipients.external or recipients.processors):
            self.error(f"{where}.recipients", "names no recipient")
        transfers = []
        for i, t in enumerate(spec.get("transfers") or []):
            at = f"{where}.transfers[{i}]"
            t = self.table(t, at) or {}
            transfers.append(Transfer(*(self.string(t.get(k), f"{at}.{k}", required=k != "documentation")
                                        for k in ("recipient", "country", "safeguard", "documentation"))))
        dp = self.table(spec.get("dpia"), f"{where}.dpia")
        if dp is None:
            self.error(f"{where}.dpia", "missing (required = true/false, reference)")
            dp = {}
        dpia = Dpia(self.boolean(dp.get("required"), f"{where}.dpia.required"),
                    self.string(dp.get("reference"), f"{where}.dpia.reference"))
        if dpia.required and not dpia.reference:
            self.error(f"{where}.dpia.reference", "missing: a required DPIA needs its reference")
        created = self.day(spec.get("created"), f"{where}.created")
        updated = self.day(spec.get("updated"), f"{where}.updated")
        if created != date.min and updated != date.min and updated < created:
            self.error(f"{where}.updated", "earlier than created")
        return Processing(
            id=pid,
            name=self.string(spec.get("name"), f"{where}.name", required=True),
            kind=kind,
            source_system=source_system or None,
            controller=self.party(spec.get("controller"), f"{where}.controller", default=controller),
            dpo=self.party(spec.get("dpo"), f"{where}.dpo", default=dpo),
            joint_controllers=tuple(self.party(j, f"{where}.joint_controllers[{i}]")
                                    for i, j in enumerate(spec.get("joint_controllers") or [])),
            purpose=self.string(spec.get("purpose"), f"{where}.purpose", required=True),
            sub_purposes=self.strings(spec.get("sub_purposes"), f"{where}.sub_purposes"),
            legal_basis=legal_basis,
            special_categories=tuple(special),
            data_subjects=self.strings(spec.get("data_subjects"), f"{where}.data_subjects", required=True),
            data=tuple(data),
            recipients=recipients,
            transfers=tuple(transfers),
            security=self.strings(spec.get("security"), f"{where}.security", required=True),
            dpia=dpia,
            created=created,
            updated=updated,
            not_personal=self.not_personal(spec.get("not_personal"), f"{where}.not_personal"),
            access=self.access(spec.get("access"), f"{where}.access", collectivites, services),
            disclose_readers=self.boolean(spec.get("disclose_readers"), f"{where}.disclose_readers", default=False),
        )
