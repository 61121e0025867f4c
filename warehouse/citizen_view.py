"""The citizen read model: find a citizen, show the 360° view, prefill a form. Every read is logged.

Used by the ``hub`` CLI and the agent desk / API. Both functions take the ``reader`` (who) and
the ``purpose`` (why: one of the register's processings, see :func:`check_read`) and append one
``ops.access_log`` row per citizen returned: the log holds field names, never values, and never
the search text.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from schemas.contract import (
    CERTIFICATION_LEVELS,
    CITIZEN,
    CITIZEN_ATTRIBUTE,
    CITIZEN_LINK,
    DISCREPANCY,
    HOUSEHOLD,
    HOUSEHOLD_MEMBER,
    HOUSEHOLD_MEMBERSHIP,
    INTERACTION,
    ORGANISATION,
    ORGANISATION_ROLE,
    PERSON_RECORD,
    Table,
)
from warehouse.engine import Warehouse, bind_list, qualified
from warehouse.timeline import annotate

if TYPE_CHECKING:
    from schemas.register import Processing, Register

log = logging.getLogger(__name__)

# Accent folding, identical in Python and SQL (translate() exists in DuckDB and PostgreSQL).
_FOLD_FROM = "àáâãäåāăąçćčďèéêëēėęěìíîïīįłñńňòóôõöøōőŕřśšşťùúûüūůűųýÿžźż’'-"
_FOLD_TO = "aaaaaaaaacccdeeeeeeeeiiiiiilnnnoooooooorrssstuuuuuuuuyyzzz   "
_FOLD_TABLE = str.maketrans(_FOLD_FROM, _FOLD_TO)
_LIGATURES = (("œ", "oe"), ("æ", "ae"), ("ß", "ss"))

SEARCH_FIELDS = ("citizen_id", "given_names", "birth_name", "usage_name", "birth_date", "city", "source_systems")
IDENTITY_FIELDS = tuple(c for c in CITIZEN.column_names)
SHOW_SECTIONS = ("provenance", "conflicts", "records", "households", "foyers", "organisations", "interactions",
                 "deadlines", "unpaid", "discrepancies")

_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_EMAIL_TERM = re.compile(r"[^\s@,;]+@[^\s@,;]+")
_DATE_TERM = re.compile(r"(?<![\d/-])(?:\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2})(?![\d/-])")
_PHONE_TERM = re.compile(r"(?<![\w+])(?:\+|00)?\d[\d .()-]{4,}\d(?!\w)")


def fold(text: str) -> str:
    """Lower case, accents and ligatures removed, apostrophes and hyphens as spaces."""
    out = text.lower().translate(_FOLD_TABLE)
    for lig, plain in _LIGATURES:
        out = out.replace(lig, plain)
    return out


def _fold_sql(expr: str) -> str:
    sql = f"translate(lower({expr}), :fold_from, :fold_to)"
    for lig, plain in _LIGATURES:
        sql = f"replace({sql}, '{lig}', '{plain}')"
    return sql


def _date(token: str) -> date | None:
    m = _DMY.match(token)
    try:
        if m:
            return date(int(m[3]), int(m[2]), int(m[1]))
        m = _ISO.match(token)
        if m:
            return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
    return None


def _phones(token: str) -> list[str]:
    """E.164 candidates for a typed number (national numbers tried as French and Belgian)."""
    digits = re.sub(r"\D", "", token)
    if token.strip().startswith("+"):
        return [f"+{digits}"]
    if digits.startswith("00"):
        return [f"+{digits[2:]}"]
    if digits.startswith("0"):
        return [f"+33{digits[1:]}", f"+32{digits[1:]}"]
    return [f"+{digits}"]


def _criteria(text: str) -> tuple[list[str], dict[str, Any]] | None:
    """Per-record SQL conditions (ANDed) with their parameters; None when the text has nothing usable.

    The conditions refer to columns of an alias ``r`` that has the person columns
    (given_names, birth_name, usage_name, birth_date, email, phone).
    """
    conds: list[str] = []
    params: dict[str, Any] = {}
    rest = text
    for n, term in enumerate(_EMAIL_TERM.findall(rest)):
        conds.append(f"lower(r.email) = :e{n}")
        params[f"e{n}"] = term.lower()
    rest = _EMAIL_TERM.sub(" ", rest)
    for n, term in enumerate(_DATE_TERM.findall(rest)):
        d = _date(term)
        if d is None:
            conds.append("1 = 0")  # an impossible date finds no one
        else:
            conds.append(f"r.birth_date = :d{n}")
            params[f"d{n}"] = d
    rest = _DATE_TERM.sub(" ", rest)
    for n, term in enumerate(_PHONE_TERM.findall(rest)):
        sql, p = bind_list(f"p{n}_", _phones(term))
        conds.append(f"r.phone IN ({sql})")
        params.update(p)
    rest = _PHONE_TERM.sub(" ", rest)
    names = re.findall(r"[a-z0-9]+", fold(rest))
    haystack = _fold_sql(
        "' ' || coalesce(r.given_names, '') || ' ' || coalesce(r.birth_name, '') || ' ' "
        "|| coalesce(r.usage_name, '') || ' '"
    )
    if names:
        params |= {"fold_from": _FOLD_FROM, "fold_to": _FOLD_TO}
    for i, name in enumerate(names):
        conds.append(f"{haystack} LIKE :n{i}")
        params[f"n{i}"] = f"% {name}%"  # a word starting with the token
    return (conds, params) if conds else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _jsonable(v) for k, v in row.items()}


def _systems(value: str | None) -> list[str]:
    return [s for s in (value or "").split(",") if s]


def _present(wh: Warehouse) -> set[str]:
    """The golden and core tables of ``wh``; a DuckDB reader's published snapshot never changes, so
    its answer is kept on the connection (a catalog query costs more than the citizen's own reads)."""
    return wh.memo("golden_core_tables", lambda: {f"{a}.{b}" for a, b in wh.rows(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ('golden', 'core')")})


def _exists(wh: Warehouse, *tables: Table) -> bool:
    return all(wh.table_exists(t.schema, t.name) for t in tables)


def _log_reads(wh: Warehouse, citizen_ids: list[str], fields: list[str], *, reader: str, purpose: str,
               channel: str) -> None:
    if not citizen_ids:
        return
    from warehouse.access_log import Entry, append

    # hash-chained (warehouse/access_log.py): an edited row is detectable
    append(wh, [Entry(reader=reader, citizen_id=c, purpose=purpose, operation="read", channel=channel,
                      fields=tuple(fields)) for c in citizen_ids])
    log.info("access logged: %d citizen read(s) by a reader for purpose %s via %s", len(citizen_ids), purpose,
             channel)


def _objected(wh: Warehouse, citizen_ids: list[str], purpose: str) -> set[str]:
    """The citizens among ``citizen_ids`` who objected to the processing read for (``purpose``: the
    register's purpose or processing id): that processing's reads do not see them."""
    from warehouse.gdpr_rights import objected

    return objected(wh, citizen_ids, purpose)


def check_read(reader: str, purpose: str, register: Register | None = None) -> Processing:
    """Who and why of a citizen read, checked before anything is read: a reader, and a purpose that
    is one of the register's processings (its id or its purpose text; free text is refused with
    :class:`schemas.register.UnknownPurpose` listing the valid ones). Returns that processing: its
    purpose text is what the access log records. The CLI and the desk call it up front; every read
    function here calls it again."""
    from schemas.register import load_register

    if not (reader and reader.strip()) or not (purpose and purpose.strip()):
        raise ValueError("a citizen read needs a reader and a purpose (they go to the access log)")
    return (register or load_register()).processing_for(purpose)


def search(wh: Warehouse, text: str, *, limit: int = 20, reader: str, purpose: str,
           channel: str = "cli") -> list[dict[str, Any]]:
    """Citizens matching every term of ``text``, at most ``limit``, ordered by name.

    Terms: a birth date (``dd/mm/yyyy`` or ``yyyy-mm-dd``), an e-mail (exact, case-insensitive),
    a phone number (typed nationally or +E.164), and name tokens (each must start a word of a
    given, birth or usage name; accents and case ignored). Terms are matched against every
    linked source record and the golden record, so a birth name known to one silo finds the
    citizen. Each result: ``citizen_id``, ``given_names``, ``birth_name``, ``usage_name``,
    ``birth_date`` (ISO), ``city``, ``source_systems`` (list). One access-log row per result.
    """
    purpose = check_read(reader, purpose).purpose
    criteria = _criteria(text)
    if criteria is None or not _exists(wh, CITIZEN):
        return []
    conds, params = criteria
    where = " AND ".join(conds)
    candidates = f"SELECT r.citizen_id FROM {qualified(CITIZEN)} r WHERE {where}"
    if _exists(wh, CITIZEN_LINK, PERSON_RECORD):
        candidates += (
            f" UNION SELECT l.citizen_id FROM {qualified(CITIZEN_LINK)} l "
            f"JOIN {qualified(PERSON_RECORD)} r ON r.record_key = l.record_key WHERE {where}"
        )
    cols = ", ".join(f"c.{c}" for c in SEARCH_FIELDS)
    rows = wh.dicts(
        f"SELECT {cols} FROM {qualified(CITIZEN)} c WHERE c.citizen_id IN ({candidates}) "
        "ORDER BY c.usage_name, c.given_names, c.citizen_id LIMIT :limit",
        {**params, "limit": int(limit)},
    )
    results = [_clean(r) | {"source_systems": _systems(r["source_systems"])} for r in rows]
    hidden = _objected(wh, [r["citizen_id"] for r in results], purpose)  # Art. 21: hidden from that processing
    results = [r for r in results if r["citizen_id"] not in hidden]
    _log_reads(wh, [r["citizen_id"] for r in results], [f"citizen.{f}" for f in SEARCH_FIELDS],
               reader=reader, purpose=purpose, channel=channel)
    return results


def show(wh: Warehouse, citizen_id: str, *, reader: str, purpose: str, channel: str = "cli",
         now: datetime | None = None) -> dict | None:
    """The 360° view of one citizen, or ``None`` when the id is unknown. Logged in ``ops.access_log``.

    ``now`` (default: the current time) dates the deadline flags and the minors. Structure
    (JSON Schema: ``schemas/citizen_view.schema.json``; every value JSON-serialisable: dates and
    timestamps ISO 8601, money as a string)::

        {
          "citizen": {citizen_id, given_names, birth_name, usage_name, sex, birth_date, email, phone,
                      address_line, postcode, city, record_count, source_systems: [str], updated_at},
          "provenance": {  # per golden attribute: where the value came from and why it won
            <attribute>: {record_key, source_system, certification_level, certification, observed_at,
                          rule, conflict, candidates}},
          "conflicts": [  # attributes the silos disagree on, with each differing silo value
            {attribute, golden_value, golden_source_system,
             others: [{source_system, record_key, value}]}],
          "records": [  # every linked source record, by silo then key
            {record_key, source_system, source_id, role, given_names, birth_name, usage_name, sex,
             birth_date, birth_date_precision, email, phone,
             address: {address_line, postcode, city, country}, certification_level,
             match_probability, match_weight, explanation (per-comparison bits, or the decision),
             linked_via (the record at the other end of that edge), deleted_at}],
          "households": [  # each silo grouping one of the records belongs to, as the silo has it
            {household_id, source_system, role,  # role of this citizen in it
             members: [{record_key, citizen_id (null when unresolved), role}]}],  # the others
          "foyers": [  # the resolved foyers (silo groupings merged), this citizen's role in each
            {household_id, role, evidence, source_households: [str], address_line, postcode, city,
             members: [{citizen_id, given_names, usage_name, birth_date, role, is_minor, valid_from,
                        valid_to}]}],  # every member, this citizen included
          "organisations": [
            {organisation_key, name, rna, siren, role, valid_from, valid_to, record_key}],
          "interactions": [  # the timeline across silos, by opened_at
            {interaction_key, source_system, record_key, kind, service, title, status, opened_at,
             closed_at, due_at, amount, currency, channel, foyer (the foyer a co-responsable's bill
             comes through; null for the citizen's own),
             pending, deadline, silence (acceptation | rejet | null), basis, overdue, due_soon}],
          "deadlines": [interaction_key, ...],  # pending requests, nearest legal deadline first
          "unpaid": {count, totals: {currency: amount}, invoices: [interaction_key]},
          "discrepancies": [  # this citizen's source records that differ from the golden value
            {source_system, record_key, attribute, silo_value, golden_value, golden_source_system}],
        }
    """
    purpose = check_read(reader, purpose).purpose
    result = view(wh, citizen_id, purpose=purpose, now=now)
    if result is None:
        return None
    _log_reads(wh, [citizen_id], [f"citizen.{f}" for f in IDENTITY_FIELDS] + list(SHOW_SECTIONS),
               reader=reader, purpose=purpose, channel=channel)
    return result


def view(wh: Warehouse, citizen_id: str, *, purpose: str, now: datetime | None = None) -> dict | None:
    """The 360° view of :func:`show`, unchecked and unlogged: for callers that check the read, cut the
    view to what the reader may see and log what they show (the agent desk). ``None`` when the id is
    unknown or the citizen objected to ``purpose`` (a register purpose text or processing id)."""
    now = now or datetime.now(UTC)
    present = _present(wh)  # which tables exist, in one query

    def have(*tables: Table) -> bool:
        return all(f"{t.schema}.{t.name}" in present for t in tables)

    if not have(CITIZEN):
        return None
    found = wh.dicts(f"SELECT * FROM {qualified(CITIZEN)} WHERE citizen_id = :c", {"c": citizen_id})
    if not found or _objected(wh, [citizen_id], purpose):
        return None
    citizen = _clean(found[0])
    citizen["source_systems"] = _systems(citizen["source_systems"])
    has_links = have(CITIZEN_LINK)
    provenance = _provenance(wh, citizen_id) if have(CITIZEN_ATTRIBUTE) else {}
    discrepancies = _discrepancies(wh, citizen_id) if have(DISCREPANCY) else []
    interactions = _interactions(wh, citizen_id) if has_links and have(INTERACTION) else []
    if has_links and have(INTERACTION, HOUSEHOLD_MEMBER):
        seen = {i["interaction_key"] for i in interactions}
        interactions += [i for i in _foyer_bills(wh, citizen_id) if i["interaction_key"] not in seen]
    tl = annotate(interactions, now=now)
    out: dict[str, Any] = {
        "citizen": citizen,
        "provenance": provenance,
        "conflicts": _conflicts(citizen, provenance, discrepancies),
        "records": _records(wh, citizen_id) if has_links and have(PERSON_RECORD) else [],
        "households": _households(wh, citizen_id) if has_links and have(HOUSEHOLD_MEMBERSHIP) else [],
        "foyers": _foyers(wh, citizen_id, now) if have(HOUSEHOLD, HOUSEHOLD_MEMBER) else [],
        "organisations": _organisations(wh, citizen_id, have(ORGANISATION)) if has_links and have(ORGANISATION_ROLE)
        else [],
        "interactions": [_clean(e) for e in tl["events"]],
        "deadlines": [e["interaction_key"] for e in tl["deadlines"]],
        "unpaid": {"count": tl["unpaid"]["count"],
                   "totals": {k: str(v) for k, v in tl["unpaid"]["totals"].items()},
                   "invoices": tl["unpaid"]["invoices"]},
        "discrepancies": [{k: v for k, v in d.items() if k != "citizen_id"} for d in discrepancies],
    }
    return out


def prefill(wh: Warehouse, citizen_id: str, *, service: str, reader: str, channel: str = "cli") -> dict | None:
    """Once-only read: the citizen's current attributes a service's form may prefill, with proof.

    Only the attributes ``schemas.purposes.SERVICES[service]`` lists are returned (KeyError for
    an unknown service); the read is logged with the service's purpose. ``None`` when the
    citizen is unknown. Structure::

        {citizen_id, service, purpose, legal_basis,
         attributes: {<attribute>: {value, certification_level, certification, source_system,
                                    record_key, observed_at, rule, conflict}}}

    An attribute the hub does not know is absent; ``conflict`` tells the form to ask the citizen
    to confirm; ``rule`` ``fallback`` marks an inferred value (e.g. a birth name no silo holds).
    """
    from schemas.purposes import service as service_entry

    entry = service_entry(service)
    check_read(reader, entry["purpose"])
    if not _exists(wh, CITIZEN):
        return None
    found = wh.dicts(f"SELECT * FROM {qualified(CITIZEN)} WHERE citizen_id = :c", {"c": citizen_id})
    if not found or _objected(wh, [citizen_id], entry["purpose"]):
        return None
    allowed = list(entry["attributes"])
    golden = _clean(found[0])
    provenance = _provenance(wh, citizen_id) if _exists(wh, CITIZEN_ATTRIBUTE) else {}
    attributes = {}
    for attr in allowed:
        if golden.get(attr) is None:
            continue
        p = provenance.get(attr, {})
        attributes[attr] = {"value": golden[attr], **{k: p.get(k) for k in (
            "certification_level", "certification", "source_system", "record_key", "observed_at", "rule",
            "conflict")}}
    _log_reads(wh, [citizen_id], [f"citizen.{a}" for a in allowed], reader=reader, purpose=entry["purpose"],
               channel=channel)
    return {"citizen_id": citizen_id, "service": service, "purpose": entry["purpose"],
            "legal_basis": entry["legal_basis"], "attributes": attributes}


def worklist(wh: Warehouse, source_system: str, *, attribute: str | None = None, limit: int = 100,
             reader: str, purpose: str, channel: str = "cli") -> list[dict[str, Any]]:
    """A silo's discrepancy worklist: its records whose value differs from the golden one.

    Ordered by attribute then record key, at most ``limit`` rows, each with ``source_system,
    record_key, citizen_id, attribute, silo_value, golden_value, golden_record_key,
    golden_source_system, golden_certification_level``. One access-log row per citizen listed.
    """
    purpose = check_read(reader, purpose).purpose
    if not _exists(wh, DISCREPANCY):
        return []
    cond, params = "source_system = :s", {"s": source_system, "limit": int(limit)}
    if attribute:
        cond += " AND attribute = :a"
        params["a"] = attribute
    rows = [_clean(r) for r in wh.dicts(
        f"SELECT * FROM {qualified(DISCREPANCY)} WHERE {cond} ORDER BY attribute, record_key LIMIT :limit", params)]
    citizens = sorted({r["citizen_id"] for r in rows})
    _log_reads(wh, citizens, [f"discrepancy.{c}" for c in DISCREPANCY.column_names], reader=reader,
               purpose=purpose, channel=channel)
    return rows


def _provenance(wh: Warehouse, citizen_id: str) -> dict[str, dict[str, Any]]:
    rows = wh.dicts(
        "SELECT attribute, record_key, source_system, certification_level, observed_at, rule, conflict, candidates "
        f"FROM {qualified(CITIZEN_ATTRIBUTE)} WHERE citizen_id = :c ORDER BY attribute", {"c": citizen_id})
    out = {}
    for r in rows:
        r = _clean(r)
        attr = r.pop("attribute")
        r["certification"] = CERTIFICATION_LEVELS.get(r["certification_level"])
        r["conflict"] = bool(r["conflict"])
        out[attr] = r
    return out


def _discrepancies(wh: Warehouse, citizen_id: str) -> list[dict[str, Any]]:
    rows = wh.dicts(
        "SELECT source_system, record_key, citizen_id, attribute, silo_value, golden_value, golden_source_system "
        f"FROM {qualified(DISCREPANCY)} WHERE citizen_id = :c ORDER BY attribute, source_system, record_key",
        {"c": citizen_id})
    return [_clean(r) for r in rows]


_ADDRESS_PARTS = ("address_line", "postcode", "city")


def _conflicts(citizen: dict[str, Any], provenance: dict[str, dict[str, Any]],
               discrepancies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for attr in ("usage_name", "birth_name", "birth_date", "email", "phone", "address"):
        source = provenance.get("address_line" if attr == "address" else attr)
        if not source or not source["conflict"]:
            continue
        golden = (", ".join(str(citizen[p]) for p in _ADDRESS_PARTS if citizen.get(p)) if attr == "address"
                  else citizen.get(attr))
        others = [{"source_system": d["source_system"], "record_key": d["record_key"], "value": d["silo_value"]}
                  for d in discrepancies if d["attribute"] == attr]
        out.append({"attribute": attr, "golden_value": golden, "golden_source_system": source["source_system"],
                    "others": others})
    return out


def _foyers(wh: Warehouse, citizen_id: str, now: datetime) -> list[dict[str, Any]]:
    h, m, c = qualified(HOUSEHOLD), qualified(HOUSEHOLD_MEMBER), qualified(CITIZEN)
    heads = wh.dicts(
        f"SELECT h.household_id, own.role, h.evidence, h.source_households, h.address_line, h.postcode, h.city "
        f"FROM {h} h JOIN {m} own ON own.household_id = h.household_id WHERE own.citizen_id = :c "
        "ORDER BY h.household_id", {"c": citizen_id})
    if not heads:
        return []
    members = wh.dicts(
        f"SELECT m.household_id, m.citizen_id, c.given_names, c.usage_name, c.birth_date, m.role, m.is_minor, "
        f"m.valid_from, m.valid_to FROM {m} m LEFT JOIN {c} c ON c.citizen_id = m.citizen_id "
        f"WHERE m.household_id IN (SELECT household_id FROM {m} WHERE citizen_id = :c) "
        "ORDER BY m.household_id, CASE m.role WHEN 'responsable' THEN 0 WHEN 'conjoint' THEN 1 ELSE 2 END, "
        "c.birth_date, m.citizen_id", {"c": citizen_id})
    today = now.date()
    out = []
    for head in heads:
        f = _clean(head)
        f["source_households"] = _systems(f["source_households"])
        f["members"] = []
        for r in members:
            if r["household_id"] != head["household_id"]:
                continue
            # minors as of the reading date (the stored flag is as of the build)
            born = r["birth_date"]
            minor = None if born is None else _add_years(born, 18) > today
            f["members"].append(_clean({k: v for k, v in r.items() if k != "household_id"} | {"is_minor": minor}))
        out.append(f)
    return out


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def _records(wh: Warehouse, citizen_id: str) -> list[dict[str, Any]]:
    rows = wh.dicts(
        "SELECT p.record_key, p.source_system, p.source_id, p.role, p.given_names, p.birth_name, "
        "p.usage_name, p.sex, p.birth_date, p.birth_date_precision, p.email, p.phone, p.address_line, "
        "p.postcode, p.city, p.country, p.certification_level, l.match_probability, l.match_weight, "
        "CAST(l.explanation AS TEXT) AS explanation, l.linked_via, p.deleted_at "
        f"FROM {qualified(CITIZEN_LINK)} l JOIN {qualified(PERSON_RECORD)} p ON p.record_key = l.record_key "
        "WHERE l.citizen_id = :c ORDER BY p.source_system, p.record_key",
        {"c": citizen_id},
    )
    out = []
    for r in rows:
        r = _clean(r)
        address = {k: r.pop(k) for k in ("address_line", "postcode", "city", "country")}
        r["explanation"] = json.loads(r["explanation"]) if r["explanation"] else None
        out.append(r | {"address": address})
    return out


def _households(wh: Warehouse, citizen_id: str) -> list[dict[str, Any]]:
    hm, cl = qualified(HOUSEHOLD_MEMBERSHIP), qualified(CITIZEN_LINK)
    own = wh.dicts(
        f"SELECT m.household_id, m.source_system, m.role, m.record_key FROM {hm} m "
        f"JOIN {cl} l ON l.record_key = m.record_key WHERE l.citizen_id = :c "
        "ORDER BY m.source_system, m.household_id, m.record_key",
        {"c": citizen_id},
    )
    if not own:
        return []
    members = wh.dicts(
        f"SELECT m.household_id, m.record_key, m.role, l.citizen_id FROM {hm} m "
        f"LEFT JOIN {cl} l ON l.record_key = m.record_key "
        f"WHERE m.household_id IN (SELECT m2.household_id FROM {hm} m2 JOIN {cl} l2 "
        "ON l2.record_key = m2.record_key WHERE l2.citizen_id = :c) ORDER BY m.household_id, m.role, m.record_key",
        {"c": citizen_id},
    )
    own_keys = {r["record_key"] for r in own}
    households: dict[str, dict[str, Any]] = {}
    for r in own:
        households.setdefault(r["household_id"], {
            "household_id": r["household_id"], "source_system": r["source_system"], "role": r["role"],
            "members": [],
        })
    for m in members:
        if m["record_key"] in own_keys:
            continue
        households[m["household_id"]]["members"].append(
            {"record_key": m["record_key"], "citizen_id": m["citizen_id"], "role": m["role"]}
        )
    return list(households.values())


def _organisations(wh: Warehouse, citizen_id: str, with_names: bool) -> list[dict[str, Any]]:
    org_join = (f"LEFT JOIN {qualified(ORGANISATION)} o ON o.organisation_key = r.organisation_key "
                if with_names else "")
    org_cols = "o.name, o.rna, o.siren" if org_join else "NULL AS name, NULL AS rna, NULL AS siren"
    rows = wh.dicts(
        f"SELECT r.organisation_key, {org_cols}, r.role, r.valid_from, r.valid_to, r.record_key "
        f"FROM {qualified(ORGANISATION_ROLE)} r JOIN {qualified(CITIZEN_LINK)} l ON l.record_key = r.record_key "
        f"{org_join}WHERE l.citizen_id = :c ORDER BY r.organisation_key, r.role",
        {"c": citizen_id},
    )
    return [_clean(r) for r in rows]


_INTERACTION_COLS = ("i.interaction_key, i.source_system, i.record_key, i.kind, i.service, i.title, i.status, "
                     "i.opened_at, i.closed_at, i.due_at, i.amount, i.currency, i.channel")
# A foyer's bills are owed by each of its responsables, whichever one a silo bills.
FOYER_BILL_KINDS = ("facture", "paiement")
_FOYER_HEADS = ("responsable", "conjoint")


def _interactions(wh: Warehouse, citizen_id: str) -> list[dict[str, Any]]:
    rows = wh.dicts(
        f"SELECT {_INTERACTION_COLS}, CAST(NULL AS TEXT) AS foyer "
        f"FROM {qualified(INTERACTION)} i JOIN {qualified(CITIZEN_LINK)} l ON l.record_key = i.record_key "
        "WHERE l.citizen_id = :c ORDER BY i.opened_at, i.interaction_key",
        {"c": citizen_id},
    )
    return [_clean(r) for r in rows]


def _foyer_bills(wh: Warehouse, citizen_id: str) -> list[dict[str, Any]]:
    """Invoices and payments of the other responsables of the foyers this citizen heads, each with the
    ``foyer`` it comes through (a co-parent sees what the foyer owes, whichever parent the silo bills)."""
    m = qualified(HOUSEHOLD_MEMBER)
    kinds, kp = bind_list("k", FOYER_BILL_KINDS)
    own_roles, op = bind_list("own", _FOYER_HEADS)
    other_roles, xp = bind_list("other", _FOYER_HEADS)
    rows = wh.dicts(
        f"SELECT {_INTERACTION_COLS}, min(other.household_id) AS foyer "
        f"FROM {m} own JOIN {m} other ON other.household_id = own.household_id AND other.citizen_id <> own.citizen_id "
        f"JOIN {qualified(CITIZEN_LINK)} l ON l.citizen_id = other.citizen_id "
        f"JOIN {qualified(INTERACTION)} i ON i.record_key = l.record_key "
        f"WHERE own.citizen_id = :c AND own.role IN ({own_roles}) AND other.role IN ({other_roles}) "
        f"AND own.valid_to IS NULL AND other.valid_to IS NULL AND i.kind IN ({kinds}) "
        f"GROUP BY {_INTERACTION_COLS} ORDER BY i.opened_at, i.interaction_key",
        {"c": citizen_id, **kp, **op, **xp},
    )
    return [_clean(r) for r in rows]
