"""The access export (GDPR Art. 15): from one identity to every record of every silo, in a zip.

From a rights request, a citizen id or an identity (name + birth date, e-mail, phone), through
the golden record (``golden.citizen_link``) to each linked canonical record (``core.*``) and the
rows of the silos' raw tables (``raw_<system>``) they were built from. The raw rows are found
through the staging models themselves: each model says how a raw row becomes a ``record_key``
(``'family:enfant/' || CAST(e.id AS VARCHAR)``), so the same expression, run backwards over
the raw tables, finds the rows behind the person's keys — for every source, declarative or
code, without a key list to keep in step.

The zip holds ``acces.json`` (validated by ``schemas/access_export.schema.json``), one CSV per
source (``sources/<system>.csv``: every raw and canonical value, one line per field) and
``rapport.html``, a self-contained French report: per processing of the register the data, its
purposes, legal basis, recipients, retention and where the data came from (Art. 15(1)(g)); each
record's match confidence and why it was linked, in words; the dates and purposes of every
consultation of the person's record (CJEU C-579/21; the agents' names only where the register
says so).

Records linked with a probability inside the review band (``matching.resolve.REVIEW_BAND``) and
records of other citizens the review queue pairs with the person's are **not** exported: they
are listed for the DPO (``to_confirm``), and the export stays a draft until each is confirmed
(``confirm``) or set aside (``exclude``). Other people's data in shared records (the other
parent, siblings, a family invoice) is redacted. The export is refused while the warehouse holds
personal data the register does not map, and it is written to the access log (operation
``export``, who, purpose, recipient).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import zipfile
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from schemas.contract import (
    ACCESS_LOG,
    CITIZEN,
    CITIZEN_ALIAS,
    CITIZEN_ATTRIBUTE,
    CITIZEN_LINK,
    HOUSEHOLD,
    HOUSEHOLD_MEMBER,
    HOUSEHOLD_MEMBERSHIP,
    INTERACTION,
    ORGANISATION,
    ORGANISATION_ROLE,
    PERSON_RECORD,
    REVIEW_QUEUE,
    Table,
)
from schemas.register import Processing, Register
from warehouse.engine import Warehouse, bind_list, qualified

log = logging.getLogger(__name__)
# the warehouse's tables during one export (read once: information_schema is slow to ask 40 times)
_present: ContextVar[set[str] | None] = ContextVar("_present", default=None)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "access_export.schema.json"
GDPR_PROCESSING = "droits-rgpd"
LOG_PROCESSING = "journal-acces"
HUB_PROCESSING = "referentiel-usagers"
REDACTED = "[occulté : donnée d'une autre personne]"
# canonical tables whose staging models tie raw rows to a person's record_key
_KEYED_TABLES = ("person_record", "household_membership", "interaction", "organisation_role")
_IDENTITY_COLUMNS = ("given_names", "birth_name", "usage_name", "email", "phone")

COMPARISONS_FR = {
    "first_name": "le prénom", "surname": "le nom", "birth_date": "la date de naissance",
    "email": "l'adresse électronique", "phone": "le téléphone", "address": "l'adresse", "sex": "le sexe",
}
SYSTEM_LABELS = {
    "finance": "service finances (facturation)", "family": "portail famille (éducation, enfance)",
    "associations": "service vie associative", "salesforce": "centre de relation usagers (CRM)",
    "servicenow": "support des services en ligne", "demarches": "démarches en ligne",
}
ROLE_LABELS = {"usager": "usager", "parent": "parent", "enfant": "enfant", "debiteur": "débiteur",
               "dirigeant": "dirigeant d'association", "contact": "contact", "demandeur": "demandeur",
               "compte": "titulaire d'un compte", "personne": "personne"}


class ExportError(RuntimeError):
    """The export cannot be made as asked (the message carries ids, never personal data)."""


@dataclass
class Subject:
    """Who the export is about, and on whose request."""

    citizen_id: str
    request_id: str | None = None
    on_behalf_of_minor: bool = False
    requester_citizen_id: str | None = None
    aliases: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ values
def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in row.items()}


def _exists(wh: Warehouse, *tables: Table) -> bool:
    present = _present.get()
    if present is not None:
        return all(f"{t.schema}.{t.name}" in present for t in tables)
    return all(wh.table_exists(t.schema, t.name) for t in tables)


def _table_set(wh: Warehouse) -> set[str]:
    """Every table of the warehouse as "schema.table", read once per export."""
    return {f"{s}.{t}" for s, t in wh.rows("SELECT table_schema, table_name FROM information_schema.tables "
                                            "WHERE table_catalog = current_database()")}


# ------------------------------------------------------------------------------------------ subject
def find_subject(wh: Warehouse, target: str, *, reader: str, purpose: str) -> Subject:
    """The citizen an export is about: a request id (``DSR-…``: its citizen, else a search on the
    identity it gives), a citizen id (a retired one follows its alias), or identity text as
    ``hub citizen search`` reads it. Exactly one citizen must match."""
    from warehouse import dsr

    target = target.strip()
    if target.upper().startswith("DSR-"):
        req = dsr.get(wh, target)
        if req["kind"] != "access":
            raise ExportError(f"request {target} is a {req['kind']} request, not an access request")
        if req["status"] in ("refuse",):
            raise ExportError(f"request {target} was refused")
        if req["identity_check"] == "en_attente":
            raise ExportError(f"request {target}: the identity is not checked yet (hub gdpr request update "
                              "--identity-check)")
        citizen = req["citizen_id"]
        if not citizen:
            terms = [t for t in (req["subject_email"], req["subject_phone"]) if t]
            if req["subject_birth_date"]:
                terms.append(f"{req['subject_name']} {req['subject_birth_date']:%d/%m/%Y}")
            found: set[str] = set()
            for text in terms:
                found |= _search(wh, text, reader=reader, purpose=purpose)
            if len(found) != 1:
                raise ExportError(f"request {target}: {len(found)} citizens match the identity given; record "
                                  "the right one (hub gdpr request update --citizen)")
            citizen = found.pop()
        subject = Subject(_current_id(wh, citizen), request_id=target,
                          on_behalf_of_minor=bool(req["on_behalf_of_minor"]),
                          requester_citizen_id=req["requester_citizen_id"])
    elif _exists(wh, CITIZEN) and (wh.scalar(f"SELECT count(*) FROM {qualified(CITIZEN)} WHERE citizen_id = :c",
                                             {"c": target}) or _is_alias(wh, target)):
        subject = Subject(_current_id(wh, target))
    else:
        found = _search(wh, target, reader=reader, purpose=purpose)
        if len(found) != 1:
            raise ExportError(f"{len(found)} citizens match the identity given: give a citizen id")
        subject = Subject(found.pop())
    subject.aliases = _aliases(wh, subject.citizen_id)
    return subject


def _search(wh: Warehouse, text: str, *, reader: str, purpose: str) -> set[str]:
    from warehouse.citizen_view import search

    return {r["citizen_id"] for r in search(wh, text, limit=5, reader=reader, purpose=purpose, channel="gdpr")}


def _is_alias(wh: Warehouse, cid: str) -> bool:
    return _exists(wh, CITIZEN_ALIAS) and bool(
        wh.scalar(f"SELECT count(*) FROM {qualified(CITIZEN_ALIAS)} WHERE old_id = :c", {"c": cid}))


def _current_id(wh: Warehouse, cid: str) -> str:
    seen = {cid}
    while _exists(wh, CITIZEN_ALIAS):
        nxt = wh.scalar(f"SELECT new_id FROM {qualified(CITIZEN_ALIAS)} WHERE old_id = :c", {"c": cid})
        if not nxt or nxt in seen:
            break
        seen.add(nxt)
        cid = nxt
    if not wh.scalar(f"SELECT count(*) FROM {qualified(CITIZEN)} WHERE citizen_id = :c", {"c": cid}):
        raise ExportError(f"no citizen {cid} in the last publication")
    return cid


def _aliases(wh: Warehouse, cid: str) -> list[str]:
    if not _exists(wh, CITIZEN_ALIAS):
        return []
    out: list[str] = []
    frontier = [cid]
    while frontier:
        sql, params = bind_list("a", frontier)
        frontier = [r[0] for r in wh.rows(f"SELECT old_id FROM {qualified(CITIZEN_ALIAS)} WHERE new_id IN ({sql})",
                                          params) if r[0] not in out and r[0] != cid]
        out += frontier
    return sorted(out)


# ------------------------------------------------------------------------------------------ raw rows
@dataclass(frozen=True)
class RawQuery:
    """How to read, from one raw table, the rows a staging model turns into given record keys."""

    model: str
    table: str  # schema.table
    key_sql: str  # the model's record_key expression
    from_sql: str  # the model's FROM / JOIN clause
    alias: str


@lru_cache(maxsize=256)
def raw_queries(model: str, sql: str, dialect: str) -> tuple[RawQuery, ...]:
    """The raw tables a staging model reads, each with the model's ``record_key`` expression (per
    branch of a UNION), in ``dialect`` (duckdb or postgres). Empty when it has no record_key."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    leaves = [tree] if isinstance(tree, exp.Select) else [
        s for s in tree.find_all(exp.Select) if s.find_ancestor(exp.Subquery, exp.Exists) is None]
    if not leaves:
        return ()
    names = [p.alias_or_name for p in leaves[0].expressions]
    if "record_key" not in names:
        return ()
    pos = names.index("record_key")
    out = []
    for leaf in leaves:
        key = leaf.expressions[pos]
        key = key.this if isinstance(key, exp.Alias) else key
        frm = leaf.args.get("from") or leaf.args.get("from_")
        if frm is None:
            continue
        joins = leaf.args.get("joins") or []
        from_sql = "FROM " + frm.this.sql(dialect=dialect) + "".join(" " + j.sql(dialect=dialect) for j in joins)
        for t in [frm.this] + [j.this for j in joins]:
            if isinstance(t, exp.Table) and t.db:
                out.append(RawQuery(model, f"{t.db}.{t.name}", key.sql(dialect=dialect), from_sql, t.alias_or_name))
    return tuple(out)


def _raw_rows(wh: Warehouse, models: Mapping[str, list[tuple[str, str]]], keys: list[str],
              register: Register) -> list[dict[str, Any]]:
    """Every raw row behind the keys: {table, record_key, model, row}, once per (table, row)."""
    if not keys:
        return []
    dialect = "duckdb" if wh.kind == "duckdb" else "postgres"
    personal = register.personal_columns()
    in_keys, params = bind_list("k", keys)
    seen: set[tuple[str, str]] = set()
    out = []
    for table in _KEYED_TABLES:
        for model, sql in models.get(table, []):
            for q in raw_queries(model, sql, dialect):
                schema, name = q.table.split(".", 1)
                if not schema.startswith("raw_") or q.table not in personal:
                    continue  # a table the register holds nothing personal in (a démarche's definition)
                if not _exists(wh, Table(name, schema, "", ())):
                    continue
                rows = wh.dicts(f'SELECT DISTINCT "{q.alias}".*, {q.key_sql} AS "__hub_record_key" {q.from_sql} '
                                f"WHERE {q.key_sql} IN ({in_keys})", params)
                for r in rows:
                    key = r.pop("__hub_record_key")
                    r = {k: v for k, v in r.items() if not k.startswith("_dlt_")}
                    if all(v is None for v in r.values()):
                        continue  # a LEFT JOIN that found nothing
                    ident = json.dumps(_clean(r), sort_keys=True, default=str)
                    if (q.table, ident) in seen:
                        continue
                    seen.add((q.table, ident))
                    out.append({"table": q.table, "record_key": key, "model": model, "row": _clean(r)})
    return sorted(out, key=lambda x: (x["table"], x["record_key"], json.dumps(x["row"], sort_keys=True)))


# ------------------------------------------------------------------------------------------ redaction
class Redactor:
    """Replaces other people's identity values (names, e-mails, phones, birth dates) in shared rows.

    A value the person (or, for a minor, the requesting parent) also holds is theirs too and stays.
    """

    def __init__(self, others: Iterable[Mapping[str, Any]], own: Iterable[Mapping[str, Any]]):
        own = list(own)
        own_values, own_tokens = self._values(own)
        # a word of the person's own record (their street, their commune) is theirs, whoever else bears it
        for r in own:
            for v in r.values():
                if isinstance(v, str):
                    own_tokens |= {t.lower() for t in re.findall(r"\w{3,}", v)}
        other_values, other_tokens = self._values(others)
        self.values = other_values - own_values
        tokens = sorted(other_tokens - own_tokens, key=len, reverse=True)
        self.pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in tokens) + r")(?!\w)",
                                  re.IGNORECASE) if tokens else None
        self.count = 0

    @staticmethod
    def _values(rows: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[str]]:
        values: set[str] = set()
        tokens: set[str] = set()
        for r in rows:
            for c in _IDENTITY_COLUMNS:
                v = r.get(c)
                if v:
                    values.add(str(v).strip().lower())
                    if c in ("given_names", "birth_name", "usage_name"):
                        tokens |= {t.lower() for t in re.findall(r"\w{3,}", str(v))}
            if r.get("birth_date"):
                values.add(_jsonable(r["birth_date"])[:10])
            if r.get("phone"):
                digits = re.sub(r"\D", "", str(r["phone"]))
                if len(digits) >= 9:
                    values.add(digits[-9:])
        return values, tokens

    def text(self, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        low = value.strip().lower()
        digits = re.sub(r"\D", "", low)
        if low in self.values or (low[:10] in self.values and re.match(r"\d{4}-\d{2}-\d{2}", low)) or (
                len(digits) >= 9 and digits[-9:] in self.values and re.fullmatch(r"[\d\s+().-]+", low)):
            self.count += 1
            return REDACTED
        if self.pattern is not None:
            new, n = self.pattern.subn(REDACTED, value)
            if n:
                self.count += n
                return new
        return value

    def row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self.text(v) for k, v in row.items()}


# ------------------------------------------------------------------------------------------ explanation
def explain(link: Mapping[str, Any]) -> str:
    """Why a record was linked to the person, in French words."""
    prob = link.get("match_probability")
    raw = link.get("explanation")
    if raw is None and (prob is None or prob >= 1.0) and not link.get("linked_via"):
        return "seule fiche de cette personne dans ce service : rattachée sans comparaison"
    try:
        parts = json.loads(raw) if isinstance(raw, str) else (raw or {})
    except ValueError:
        parts = {}
    if not isinstance(parts, dict):
        parts = {}
    if "decision" in parts:
        return "rattachée par la décision d'un agent (rapprochement manuel vérifié)"
    agree = [(k, v) for k, v in parts.items() if isinstance(v, int | float) and v > 0]
    differ = [(k, v) for k, v in parts.items() if isinstance(v, int | float) and v < 0]
    words = []
    if agree:
        words.append("concordent : " + ", ".join(
            f"{COMPARISONS_FR.get(k, k)} ({'fortement' if v >= 5 else 'faiblement' if v < 2 else 'nettement'})"
            for k, v in sorted(agree, key=lambda x: -x[1])))
    if differ:
        words.append("diffèrent : " + ", ".join(COMPARISONS_FR.get(k, k)
                                               for k, _ in sorted(differ, key=lambda x: x[1])))
    via = link.get("linked_via")
    sentence = "; ".join(words) if words else "rapprochement par le modèle"
    if via:
        sentence += f" — comparée à la fiche {via}"
    return sentence[0].upper() + sentence[1:]


def confidence_fr(prob: float | None) -> str:
    if prob is None:
        return "inconnue"
    pct = f"{prob * 100:.1f}".replace(".", ",")
    return f"{pct} %"


# ------------------------------------------------------------------------------------------ collect
def _in(column: str, prefix: str, values: Iterable[str]) -> tuple[str, dict[str, Any]]:
    sql, params = bind_list(prefix, list(values))
    return f"{column} IN ({sql})", params


def collect(wh: Warehouse, subject: Subject, *, register: Register,
            models: Mapping[str, list[tuple[str, str]]], confirm: Iterable[str] = (),
            exclude: Iterable[str] = (), now: datetime | None = None) -> dict[str, Any]:
    """The export's content (the JSON document, before the zip); see the module docstring."""
    from matching.resolve import REVIEW_BAND

    now = now or datetime.now(UTC)
    token = _present.set(_table_set(wh))
    try:
        return _collect(wh, subject, register=register, models=models, confirm=confirm, exclude=exclude, now=now,
                        review_band=REVIEW_BAND)
    finally:
        _present.reset(token)


def _collect(wh: Warehouse, subject: Subject, *, register: Register, models: Mapping[str, list[tuple[str, str]]],
             confirm: Iterable[str], exclude: Iterable[str], now: datetime,
             review_band: tuple[float, float]) -> dict[str, Any]:
    confirm, exclude = set(confirm), set(exclude)
    cid = subject.citizen_id
    ids = [cid, *subject.aliases]
    citizen = _clean(wh.dicts(f"SELECT * FROM {qualified(CITIZEN)} WHERE citizen_id = :c", {"c": cid})[0])
    low, high = review_band
    links = wh.dicts(
        "SELECT l.record_key, l.match_probability, l.match_weight, l.explanation, l.linked_via, l.model_version, "
        f"p.* FROM {qualified(CITIZEN_LINK)} l JOIN {qualified(PERSON_RECORD)} p ON p.record_key = l.record_key "
        "WHERE l.citizen_id = :c ORDER BY p.source_system, l.record_key", {"c": cid})
    records, to_confirm = [], []
    for r in links:
        r = _clean(r)
        prob = r["match_probability"]
        entry = {"record": {k: r[k] for k in PERSON_RECORD.column_names},
                 "match_probability": prob, "match_weight": r["match_weight"],
                 "explanation": r["explanation"], "linked_via": r["linked_via"],
                 "why_linked": explain(r), "confidence": confidence_fr(prob)}
        if r["record_key"] in exclude:
            continue
        uncertain = prob is not None and low <= prob < high
        if uncertain and r["record_key"] not in confirm:
            to_confirm.append(entry | {"reason": "rattachée avec une probabilité dans la zone d'incertitude "
                                                 f"({confidence_fr(low)} – {confidence_fr(high)})",
                                       "linked": True})
        else:
            records.append(entry | {"confirmed_by_dpo": uncertain})
    # records of other citizens the review queue pairs with the person's: maybe theirs too
    if _exists(wh, REVIEW_QUEUE):
        cond_l, p_l = _in("q.citizen_id_l", "cl", ids)
        cond_r, p_r = _in("q.citizen_id_r", "cr", ids)
        pairs = wh.dicts(
            "SELECT q.record_key_l, q.record_key_r, q.citizen_id_l, q.citizen_id_r, q.match_probability, "
            f"q.explanation FROM {qualified(REVIEW_QUEUE)} q WHERE ({cond_l}) <> ({cond_r})", p_l | p_r)
        own_ids = set(ids)
        candidates: dict[str, dict[str, Any]] = {}
        for q in pairs:
            other, mine = ((q["record_key_r"], q["record_key_l"]) if q["citizen_id_l"] in own_ids
                           else (q["record_key_l"], q["record_key_r"]))
            if other in exclude:
                continue
            best = candidates.get(other)
            if best is None or q["match_probability"] > best["match_probability"]:
                candidates[other] = {"match_probability": q["match_probability"], "explanation": q["explanation"],
                                     "linked_via": mine}
        if candidates:
            cond, params = _in("record_key", "o", candidates)
            for p in wh.dicts(f"SELECT * FROM {qualified(PERSON_RECORD)} WHERE {cond} ORDER BY record_key", params):
                p = _clean(p)
                c = candidates[p["record_key"]]
                entry = {"record": p, "match_probability": c["match_probability"], "match_weight": None,
                         "explanation": c["explanation"], "linked_via": c["linked_via"],
                         "why_linked": explain(c), "confidence": confidence_fr(c["match_probability"])}
                if p["record_key"] in confirm:
                    records.append(entry | {"confirmed_by_dpo": True})
                else:
                    to_confirm.append(entry | {"reason": "fiche d'une autre personne du hub que le modèle hésite à "
                                                         "rapprocher (file de revue)", "linked": False})
    records, to_confirm = _contact_only(wh, records, to_confirm, ids, confirm=confirm, exclude=exclude)
    keys = [r["record"]["record_key"] for r in records]
    own_rows = [r["record"] for r in records]

    # households as the silos group people, and the hub's foyers: the person's place, the others by role only
    memberships, others_keys = [], set()
    if keys and _exists(wh, HOUSEHOLD_MEMBERSHIP):
        cond, params = _in("m.record_key", "k", keys)
        own = wh.dicts(f"SELECT * FROM {qualified(HOUSEHOLD_MEMBERSHIP)} m WHERE {cond} ORDER BY household_id", params)
        if own:
            hcond, hparams = _in("household_id", "h", sorted({m["household_id"] for m in own}))
            all_members = wh.dicts(f"SELECT household_id, record_key, role FROM {qualified(HOUSEHOLD_MEMBERSHIP)} "
                                   f"WHERE {hcond}", hparams)
            for m in own:
                rest = [x for x in all_members
                        if x["household_id"] == m["household_id"] and x["record_key"] not in keys]
                others_keys |= {x["record_key"] for x in rest}
                memberships.append(_clean(m) | {"other_members": [
                    {"role": x["role"], "redacted": True} for x in sorted(rest, key=lambda x: x["role"])]})
    foyers, other_citizens = [], set()
    if _exists(wh, HOUSEHOLD, HOUSEHOLD_MEMBER):
        cond, params = _in("own.citizen_id", "c", ids)
        heads = wh.dicts(f"SELECT h.household_id, own.role, own.valid_from, own.valid_to, h.members, h.minors, "
                         f"h.evidence FROM {qualified(HOUSEHOLD)} h JOIN {qualified(HOUSEHOLD_MEMBER)} own "
                         f"ON own.household_id = h.household_id WHERE {cond} ORDER BY h.household_id", params)
        for h in heads:
            members = wh.dicts(f"SELECT citizen_id, role, is_minor FROM {qualified(HOUSEHOLD_MEMBER)} "
                               "WHERE household_id = :h", {"h": h["household_id"]})
            rest = [m for m in members if m["citizen_id"] not in ids]
            other_citizens |= {m["citizen_id"] for m in rest}
            foyers.append(_clean(h) | {"other_members": [
                {"role": m["role"], "is_minor": m["is_minor"], "redacted": True}
                for m in sorted(rest, key=lambda m: m["role"])]})
    if subject.on_behalf_of_minor:
        _check_minor(citizen, subject, foyers, other_citizens, now)

    # other people's identity values, to redact from shared rows
    others: list[dict[str, Any]] = []
    if others_keys:
        cond, params = _in("record_key", "x", sorted(others_keys))
        others += wh.dicts(f"SELECT * FROM {qualified(PERSON_RECORD)} WHERE {cond}", params)
    if other_citizens and _exists(wh, CITIZEN_LINK):
        cond, params = _in("l.citizen_id", "y", sorted(other_citizens))
        others += wh.dicts(f"SELECT p.* FROM {qualified(CITIZEN_LINK)} l JOIN {qualified(PERSON_RECORD)} p "
                           f"ON p.record_key = l.record_key WHERE {cond}", params)
    own_values = list(own_rows)
    if subject.on_behalf_of_minor and subject.requester_citizen_id:
        own_values += [r for r in others if _citizen_of(wh, r["record_key"]) == subject.requester_citizen_id]
    redactor = Redactor([o for o in others if o not in own_values], own_values)

    interactions = []
    if keys and _exists(wh, INTERACTION):
        cond, params = _in("record_key", "k", keys)
        for i in wh.dicts(f"SELECT * FROM {qualified(INTERACTION)} WHERE {cond} ORDER BY opened_at, interaction_key",
                          params):
            i = _clean(i)
            i["title"], i["details"] = redactor.text(i["title"]), redactor.text(i["details"])
            interactions.append(i)
    organisations = []
    if keys and _exists(wh, ORGANISATION_ROLE):
        cond, params = _in("r.record_key", "k", keys)
        join = (f"LEFT JOIN {qualified(ORGANISATION)} o ON o.organisation_key = r.organisation_key"
                if _exists(wh, ORGANISATION) else "")
        cols = "o.name AS organisation_name" if join else "NULL AS organisation_name"
        organisations = [_clean(r) for r in wh.dicts(
            f"SELECT r.*, {cols} FROM {qualified(ORGANISATION_ROLE)} r {join} WHERE {cond} "
            "ORDER BY r.organisation_key, r.role", params)]
    raw = [r | {"row": redactor.row(r["row"])} for r in _raw_rows(wh, models, keys, register)]
    provenance = []
    if _exists(wh, CITIZEN_ATTRIBUTE):
        provenance = [_clean(r) for r in wh.dicts(
            "SELECT attribute, value, record_key, source_system, certification_level, rule "
            f"FROM {qualified(CITIZEN_ATTRIBUTE)} WHERE citizen_id = :c ORDER BY attribute", {"c": cid})]
    consultations = _consultations(wh, ids, register)
    systems = sorted({r["record"]["source_system"] for r in records})
    doc = {
        "export": {
            "generated_at": now.isoformat(), "request_id": subject.request_id, "citizen_id": cid,
            "aliases": subject.aliases, "on_behalf_of_minor": subject.on_behalf_of_minor,
            "status": "brouillon" if to_confirm else "final", "controller": register.controller.name,
            "dpo": {"name": register.dpo.name, "email": register.dpo.email},
            "redacted_values": redactor.count,
        },
        "citizen": citizen,
        "provenance": provenance,
        "records": records,
        "to_confirm": to_confirm,
        "raw": raw,
        "households": memberships,
        "foyers": foyers,
        "interactions": interactions,
        "organisations": organisations,
        "consultations": consultations,
        "processings": _processings(register, systems, consultations, records, interactions),
    }
    return doc


def _contact_only(wh: Warehouse, records: list[dict[str, Any]], to_confirm: list[dict[str, Any]], ids: list[str],
                  *, confirm: set[str], exclude: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Records that carry no name, only an e-mail or a phone the person's records give (a dossier filed
    for an organisation under its applicant's e-mail): matching compares people by name, so it leaves
    them apart, yet they are data about whoever holds that contact (Art. 15). Exported when no other
    citizen's records give that contact; listed for the DPO to confirm when someone else's do."""
    emails = sorted({r["record"]["email"].strip().lower() for r in records if r["record"].get("email")})
    phones = sorted({r["record"]["phone"] for r in records if r["record"].get("phone")})
    if not (emails or phones) or not _exists(wh, CITIZEN_LINK):
        return records, to_confirm
    taken = {r["record"]["record_key"] for r in records} | exclude
    e_sql, e_params = bind_list("ce", emails or [""])
    p_sql, p_params = bind_list("cp", phones or [""])
    own, own_params = _in("l.citizen_id", "ci", ids)
    contact = f"(lower(trim(p.email)) IN ({e_sql}) OR p.phone IN ({p_sql}))"
    nameless = "p.given_names IS NULL AND p.birth_name IS NULL AND p.usage_name IS NULL"
    params = e_params | p_params | own_params
    found = wh.dicts(f"SELECT p.* FROM {qualified(PERSON_RECORD)} p JOIN {qualified(CITIZEN_LINK)} l "
                     f"ON l.record_key = p.record_key WHERE {nameless} AND {contact} AND NOT ({own}) "
                     "ORDER BY p.record_key", params)
    found = [_clean(p) for p in found if p["record_key"] not in taken]
    if not found:
        return records, to_confirm
    # the contacts some other citizen's named records give too: whose they are is for the DPO to say
    shared: set[str] = set()
    others = (f"SELECT p.email, p.phone FROM {qualified(PERSON_RECORD)} p JOIN {qualified(CITIZEN_LINK)} l "
              f"ON l.record_key = p.record_key WHERE NOT ({nameless}) AND {contact} AND NOT ({own})")
    for email, phone in wh.rows(others, params):
        shared |= {v for v in ((email or "").strip().lower(), phone) if v}
    # a nameless record the review queue offered (the same e-mail) is decided here instead
    moved = {p["record_key"] for p in found}
    records, to_confirm = list(records), [r for r in to_confirm if r["record"]["record_key"] not in moved]
    for p in found:
        value = (p.get("email") or "").strip().lower() if p.get("email") else p.get("phone")
        what = "adresse électronique" if p.get("email") else "numéro de téléphone"
        entry = {"record": p, "match_probability": None, "match_weight": None, "explanation": None,
                 "linked_via": None, "confidence": confidence_fr(None),
                 "why_linked": f"Fiche sans nom, identifiée par la seule {what} que donnent les fiches de la personne"}
        if value in shared and p["record_key"] not in confirm:
            to_confirm.append(entry | {"reason": f"fiche sans nom portant une {what} que donnent aussi les fiches "
                                                 "d'une autre personne", "linked": False})
        else:
            records.append(entry | {"confirmed_by_dpo": p["record_key"] in confirm})
    return records, to_confirm


def _citizen_of(wh: Warehouse, record_key: str) -> str | None:
    return wh.scalar(f"SELECT citizen_id FROM {qualified(CITIZEN_LINK)} WHERE record_key = :k", {"k": record_key})


def _check_minor(citizen: Mapping[str, Any], subject: Subject, foyers: list[dict[str, Any]],
                 other_citizens: set[str], now: datetime) -> None:
    born = citizen.get("birth_date")
    if born:
        b = date.fromisoformat(born)
        today = now.date()
        age = today.year - b.year - ((today.month, today.day) < (b.month, b.day))
        if age >= 18:
            raise ExportError(f"citizen {subject.citizen_id} is not a minor: a parent cannot ask on their behalf")
    if subject.requester_citizen_id and subject.requester_citizen_id not in other_citizens:
        raise ExportError(f"request {subject.request_id}: the requesting parent {subject.requester_citizen_id} "
                          f"shares no foyer with citizen {subject.citizen_id}")


def _consultations(wh: Warehouse, ids: list[str], register: Register) -> list[dict[str, Any]]:
    """Every logged access to the person's record: date, operation, purpose, channel, recipient; the
    agent only where the processing the purpose belongs to says so (``disclose_readers``)."""
    from warehouse.access_log import opened

    with opened(wh) as lw:  # on DuckDB the log has its own file
        if not lw.table_exists(ACCESS_LOG.schema, ACCESS_LOG.name):
            return []
        have = set(lw.columns_of(ACCESS_LOG.schema, ACCESS_LOG.name))
        extra = ", ".join(c for c in ("operation", "recipient") if c in have)
        cond, params = _in("citizen_id", "c", ids)
        rows = lw.dicts(f"SELECT read_at, reader, purpose, channel{', ' + extra if extra else ''} "
                        f"FROM {qualified(ACCESS_LOG)} WHERE {cond} ORDER BY read_at", params)
    by_purpose = {p.purpose: p for p in register.processings} | {p.id: p for p in register.processings}
    out = []
    for r in rows:
        p = by_purpose.get(r["purpose"])
        out.append({
            "at": _jsonable(r["read_at"]), "operation": r.get("operation") or "read", "purpose": r["purpose"],
            "processing_id": p.id if p else None, "processing": p.name if p else None,
            "channel": r["channel"], "recipient": r.get("recipient"),
            "agent": r["reader"] if p is not None and p.disclose_readers else None,
        })
    return out


def _processings(register: Register, systems: list[str], consultations: list[dict[str, Any]],
                 records: list[dict[str, Any]], interactions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The register's processings that concern the person: their silos', the hub's, the ones their
    record was consulted for, and the handling of this request."""
    concerned: list[Processing] = []
    for p in register.processings:
        if p.kind == "source" and p.source_system in systems:
            concerned.append(p)
    wanted = {HUB_PROCESSING, GDPR_PROCESSING} | {c["processing_id"] for c in consultations if c["processing_id"]}
    if consultations:
        wanted.add(LOG_PROCESSING)
    concerned += [p for p in register.processings if p.kind == "hub" and p.id in wanted]
    out = []
    for p in concerned:
        if p.kind == "source":
            origin = (f"collectées par le {SYSTEM_LABELS.get(p.source_system or '', p.source_system)} auprès de "
                      "vous ou de votre foyer (formulaires, guichet, portail)")
            n_rec = sum(1 for r in records if r["record"]["source_system"] == p.source_system)
            n_int = sum(1 for i in interactions if i["source_system"] == p.source_system)
        else:
            origin = ("issues des fichiers des services de la collectivité : "
                      + ", ".join(SYSTEM_LABELS.get(s, s) for s in systems) if systems else "le hub lui-même")
            if p.id == LOG_PROCESSING:
                origin = "produites par le hub à chaque consultation de votre fiche"
            if p.id == GDPR_PROCESSING:
                origin = "fournies par vous avec votre demande"
            n_rec, n_int = (len(records), len(interactions)) if p.id == HUB_PROCESSING else (0, 0)
        out.append({
            "id": p.id, "name": p.name, "purpose": p.purpose, "sub_purposes": list(p.sub_purposes),
            "legal_basis": p.legal_basis.text,
            "special_categories": [s.text for s in p.special_categories],
            "data": [{"category": d.label, "description": d.description, "retention": d.retention.text}
                     for d in p.data],
            "recipients": {"internal": list(p.recipients.internal), "external": list(p.recipients.external),
                           "processors": list(p.recipients.processors)},
            "transfers": [f"{t.recipient} ({t.country}) : {t.safeguard}" for t in p.transfers],
            "source": origin, "records": n_rec, "interactions": n_int,
        })
    return out


# ------------------------------------------------------------------------------------------ outputs
@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate(doc: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when the document does not follow the schema."""
    _validator().validate(doc)


def source_csvs(doc: Mapping[str, Any]) -> dict[str, str]:
    """One CSV per source (``;``, UTF-8 with BOM): level, table, record key, row, field, value."""
    per: dict[str, list[list[str]]] = {}

    def add(system: str, level: str, table: str, record_key: str, row_id: str, row: Mapping[str, Any]) -> None:
        lines = per.setdefault(system, [])
        for k, v in row.items():
            lines.append([level, table, record_key, row_id, k, "" if v is None else str(v)])

    for r in doc["records"]:
        rec = r["record"]
        add(rec["source_system"], "canonique", "core.person_record", rec["record_key"], rec["record_key"], rec)
    for i in doc["interactions"]:
        add(i["source_system"], "canonique", "core.interaction", i["record_key"], i["interaction_key"], i)
    for m in doc["households"]:
        add(m["source_system"], "canonique", "core.household_membership", m["record_key"], m["household_id"],
            {k: v for k, v in m.items() if k != "other_members"} | {"autres_membres": len(m["other_members"])})
    for o in doc["organisations"]:
        system = o["record_key"].split(":", 1)[0]
        add(system, "canonique", "core.organisation_role", o["record_key"], o["organisation_key"], o)
    for n, r in enumerate(doc["raw"], 1):
        system = r["table"].split(".", 1)[0].removeprefix("raw_")
        add(system, "brut", r["table"], r["record_key"], f"{r['table']}#{n}", r["row"])
    out = {}
    for system, lines in sorted(per.items()):
        buf = io.StringIO()
        w = csv.writer(buf, delimiter=";", lineterminator="\r\n")
        w.writerow(["niveau", "table", "fiche", "ligne", "champ", "valeur"])
        w.writerows(lines)
        out[system] = "\ufeff" + buf.getvalue()
    return out


def write_zip(doc: Mapping[str, Any], out: Path) -> str:
    """Write the zip (JSON, CSVs, HTML report); returns its sha256 (the proof kept with the request)."""
    from warehouse.access_report import render_html

    validate(doc)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    # fixed timestamps: the same export gives the same bytes
    stamp = (2026, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        def put(name: str, text: str) -> None:
            z.writestr(zipfile.ZipInfo(name, stamp), text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)

        put("acces.json", json.dumps(doc, ensure_ascii=False, indent=2))
        for system, text in source_csvs(doc).items():
            put(f"sources/{system}.csv", text)
        put("rapport.html", render_html(doc))
        put("LISEZMOI.txt", _readme(doc))
    tmp.replace(out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def _readme(doc: Mapping[str, Any]) -> str:
    lines = ["Copie de vos données (RGPD art. 15)", "",
             "rapport.html : le rapport lisible (ouvrez-le dans un navigateur).",
             "acces.json : les mêmes données, lisibles par une machine (schéma : access_export.schema.json).",
             "sources/<service>.csv : toutes les valeurs de chaque service, une ligne par champ "
             "(séparateur ';', UTF-8)."]
    if doc["to_confirm"]:
        lines += ["", f"BROUILLON : {len(doc['to_confirm'])} fiche(s) à confirmer par le DPO avant tout envoi."]
    return "\r\n".join(lines) + "\r\n"


# ------------------------------------------------------------------------------------------ the whole
@dataclass
class ExportResult:
    path: Path
    citizen_id: str
    request_id: str | None
    records: int
    raw_rows: int
    to_confirm: int
    redacted_values: int
    sha256: str
    document: dict[str, Any]

    @property
    def draft(self) -> bool:
        return self.to_confirm > 0


def export_access(wh: Warehouse, target: str, out: Path, *, reader: str,
                  models: Mapping[str, list[tuple[str, str]]], register: Register | None = None,
                  recipient: str | None = None, confirm: Iterable[str] = (), exclude: Iterable[str] = (),
                  on_behalf_of_minor: bool | None = None, requester_citizen_id: str | None = None,
                  now: datetime | None = None) -> ExportResult:
    """Run the completeness guard, find the person, collect, write the zip, log the export.

    ``target``: a request id, a citizen id or identity text. ``models``: the configured sources'
    staging models (``connectors.registry.staging_models``). ``recipient``: who the export goes
    to (default: the person, or their legal representative for a minor). The access log gets one
    ``export`` row (purpose: the register's rights-handling processing); a request gets an
    ``export`` event with the zip's sha256.
    """
    from warehouse import access_log, dsr
    from warehouse.register_guard import check

    register = check(wh, register)  # refuses before anything is read
    purpose = register.processing(GDPR_PROCESSING).purpose
    subject = find_subject(wh, target, reader=reader, purpose=purpose)
    if on_behalf_of_minor is not None:
        subject.on_behalf_of_minor = subject.on_behalf_of_minor or on_behalf_of_minor
    if requester_citizen_id:
        subject.requester_citizen_id = requester_citizen_id
    now = now or datetime.now(UTC)
    doc = collect(wh, subject, register=register, models=models, confirm=confirm, exclude=exclude, now=now)
    digest = write_zip(doc, out)
    if recipient is None:
        recipient = ("représentant légal de la personne (parent d'un mineur)" if subject.on_behalf_of_minor
                     else "la personne concernée")
    fields = ["citizen", "records", "raw", "households", "foyers", "interactions", "organisations", "consultations",
              "processings"]
    if subject.on_behalf_of_minor:
        fields.append("on_behalf_of_minor")
    access_log.append(wh, [access_log.Entry(reader=reader, citizen_id=subject.citizen_id, purpose=purpose,
                                            operation="export", channel="gdpr-export", fields=tuple(fields),
                                            recipient=recipient, at=now)])
    if subject.request_id:
        req = dsr.get(wh, subject.request_id)
        if not req["citizen_id"] and req["status"] in dsr.OPEN_STATUSES:
            dsr.update(wh, subject.request_id, reader, citizen_id=subject.citizen_id, now=now)
        dsr.add_event(wh, subject.request_id, "export", reader, proof=out.name, proof_sha256=digest,
                      detail=("brouillon : " if doc["to_confirm"] else "")
                      + f"export d'accès, {len(doc['records'])} fiche(s), destinataire : {recipient}"
                      + (" (demande d'un parent pour un mineur)" if subject.on_behalf_of_minor else ""))
    # the request id only: even the citizen id stays out of the logs (the access log has it)
    log.info("access export%s: %d record(s), %d raw row(s), %d to confirm",
             f" for {subject.request_id}" if subject.request_id else "", len(doc["records"]), len(doc["raw"]),
             len(doc["to_confirm"]))
    return ExportResult(out, subject.citizen_id, subject.request_id, len(doc["records"]), len(doc["raw"]),
                        len(doc["to_confirm"]), doc["export"]["redacted_values"], digest, doc)
