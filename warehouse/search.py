"""The desk's citizen search: a narrow index of the published release, found in milliseconds.

:func:`build_index` (called at the end of publishing) turns the published release into an
inverted index over every name, birth date, e-mail, phone and postcode known for a citizen — the
golden values *and* every linked live source record's, so a birth name one silo knows finds the
citizen. :func:`search` parses what an agent typed and ranks the citizens it finds;
:func:`resolve_id` reads a typed citizen id (any case, spaces) through the retired-id aliases.

Tables (``schemas.contract``, all rebuilt together in one transaction):

- ``golden.citizen_search`` — one row per citizen: what a result shows (names, birth year,
  commune, silos) and ``systems_mask`` (one bit per silo, ``golden.citizen_search_system``).
  ``citizen_no`` numbers citizens in name order: ties in score list by name without a join.
- ``golden.citizen_search_term`` — the vocabulary: one row per (field, folded key), e.g.
  (usage_name, ``lefloch``), (birth_date, ``1982-04-12``), (email, ``marie.dupont@example.fr``).
- ``golden.citizen_search_posting`` — which citizens hold a term (``term_id``, ``citizen_no``),
  with ``origin_mask`` (which silos hold it; bit 0: the golden record) and ``citizen_mask``
  (every silo knowing the citizen), so the scope filter needs no join.
- ``golden.citizen_search_variant`` — the name terms under their key and each one-letter deletion
  of it (:func:`key_variants`), as 64-bit codes sorted: a word typed with one letter wrong,
  missing, added, or two letters swapped shares one code with the key meant (symmetric deletion,
  as SymSpell does), found by equality.

Names are folded in Python at build and query time alike (:func:`name_keys`,
:func:`parse`): lower case, accents and ligatures off, hyphens and spaces split words, an
apostrophe joins (``FLOC'H`` → ``floch``) and also splits an elided particle (``N'DIAYE`` →
``ndiaye`` and ``diaye``), a name's words are also kept joined (``LE FLOC'H`` → ``lefloch``)
and without their leading particles, and ``st`` / ``ste`` starting a name of several words is
``saint`` / ``sainte``. Prénom and nom match in any order: every name word typed must match
one key of the citizen, exactly, as a prefix (the :data:`PREFIX_TERMS` most common keys), or
one typo away (words of :data:`FUZZY_MIN_LENGTH` letters or more; the :data:`FUZZY_TERMS` most
common keys). Ranking: criteria matched (birth date — a day/month swap counts half —, e-mail,
phone, postcode) first, then the name match (exact > prefix > one typo), then name order. With
criteria and names both typed, a citizen must match every name word and at least one criterion.

Bounded work, whatever is typed: the terms of each word are found first, with how many citizens
hold each; the word holding the fewest postings (or the criteria together, when fewer) drives:
its postings are read best terms first, at most :data:`MAX_CANDIDATES`; the other words and
criteria are then checked for those candidates only — their postings read whole when they are
few (under :data:`PROBE_RATIO` per candidate), else, on PostgreSQL, each candidate's postings
probed by citizen. A query whose driver has more postings than that (« marie » alone at 1M
people) returns its best page and ``Page.capped``: ``total`` is then a lower bound.

Engines:

- **DuckDB**: the tables are stored sorted (terms by key, postings by term, variants by code,
  which begins with the variant's first two letters so a word's variants sit together) and read
  with constant lookups (``= ANY(list)``, key ranges), which prune row groups by their zone maps;
  a join against the postings would scan them all. A reader of the published snapshot (a file
  that cannot change under it) runs no statement: the same lookups and the same ranking over the
  tables as arrays, loaded once per process per release (:mod:`warehouse.search_memory`).
- **PostgreSQL**: B-trees only (no pg_trgm, no unaccent: keys are folded in Python before
  indexing): the vocabulary on ``key COLLATE "C"`` (exact and prefix), the variants on their
  code, the postings on ``(term_id, citizen_no)`` and on ``citizen_no``. The query is one
  PL/pgSQL function, ``golden.search_citizens(...)`` (:data:`SEARCH_FUNCTION_SIGNATURE`),
  ``SECURITY DEFINER`` with ``search_path`` fixed to ``pg_catalog, pg_temp`` (every object
  schema-qualified): the desk's role is granted ``EXECUTE`` on it alone, not ``SELECT`` on the
  index tables (row security would hide their rows). The function intersects the silo mask it
  is given with the session's grants (``ops.granted_systems()``, the transaction's collectivité
  and service): the desk cannot widen it; a session bypassing row security keeps its mask.
  The tables, indexes and function are the migration's (:func:`search_ddl`, migration 0007,
  run by the owner); :func:`build_index` run by the pipeline's writer only empties and refills
  the tables (``TRUNCATE``, ``INSERT``).

Scope: only the fields of ``Scope.fields`` are searched (a term of another field is refused
with a French message naming it); with ``Scope.source_systems``, only citizens one of those
silos knows are returned, keys are matched only when the golden record or one of those silos
holds them, and ``Hit.source_systems`` lists those silos only. A hit's names, birth year and
commune are given only when their field is in ``Scope.fields``. Nothing here writes the access
log: the desk logs what it shows.

Inputs are bounded before any work: at most :data:`MAX_QUERY_CHARS` characters and
:data:`MAX_QUERY_TOKENS` words (:class:`QueryError`, in French).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from matching import resources
from matching.standardise import NAME_PARTICLES
from schemas.contract import (
    CITIZEN,
    CITIZEN_ALIAS,
    CITIZEN_LINK,
    CITIZEN_SEARCH,
    CITIZEN_SEARCH_POSTING,
    CITIZEN_SEARCH_SYSTEM,
    CITIZEN_SEARCH_TERM,
    CITIZEN_SEARCH_VARIANT,
    OBJECTION,
    PERSON_RECORD,
    arrow_schema,
)
from warehouse.engine import Warehouse, bind_list, qualified
from warehouse.roles import ALL_SYSTEMS as _ALL_SYSTEMS
from warehouse.search_memory import MemoryIndex, memory_index

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 200
MAX_QUERY_TOKENS = 12
PREFIX_TERMS = 50  # prefix expansions kept per word (the most common keys)
FUZZY_TERMS = 20  # one-typo expansions kept per word (the most common keys)
FUZZY_MIN_LENGTH = 4  # a shorter word typed is matched exactly or as a prefix only
MAX_CANDIDATES = 2000  # postings of the rarest word (or of the criteria) read at most; then ``Page.capped``
PROBE_RATIO = 8  # another word's postings are read whole below this many per candidate, else probed per citizen
MAX_NAME_WORDS = 8  # words of one name value indexed (a longer value is noise)

NAME_FIELDS = ("given_names", "birth_name", "usage_name")
CRITERIA_FIELDS = ("birth_date", "email", "phone", "postcode")
# French names of the field categories, for the messages
FIELD_LABELS = {"name": "nom ou prénom", "birth_date": "date de naissance", "email": "adresse électronique",
                "phone": "numéro de téléphone", "postcode": "code postal"}

_EXACT, _PREFIX, _TYPO = 1.0, 0.75, 0.4  # a name word's score: exact > prefix > one typo away
_SWAPPED_DATE = 0.5  # a birth date typed with day and month swapped
_PARTICLES = frozenset(p.lower() for p in NAME_PARTICLES)
_SAINTS = {"st": "saint", "ste": "sainte"}
_APOSTROPHES = "'’`´ʼ‘"
_LIGATURES = {"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ł": "l", "ı": "i"}
_NOT_KEY = re.compile(r"[^a-z0-9']+")

_EMAIL = re.compile(r"[^\s@,;<>()]+@[^\s@,;<>()]+")
_DATE = re.compile(r"(?<![\d/.-])(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?![\d/.-])|(?<![\d/.-])(\d{4})-(\d{1,2})-(\d{1,2})"
                   r"(?![\d/.-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\d[\d .()-]{6,}\d(?!\w)")
_POSTCODE = re.compile(r"(?<![\w+])\d{4,5}(?!\w)")
_CITIZEN_ID = re.compile(r"^C[0-9A-F]{16}$")


class QueryError(ValueError):
    """A query that cannot be run as typed (too long, empty, a field the agent may not search);
    the message is French, for the agent, and never repeats the query."""


@dataclass(frozen=True)
class Scope:
    """What the agent may search: ``fields`` (golden.citizen attribute names: given_names,
    birth_name, usage_name, birth_date, email, phone, postcode, city), ``source_systems`` (None:
    every silo), ``exclude`` (citizen ids left out) and ``objecting_to`` (processings: a citizen
    with an objection in force to one of them is left out, art. 21 — read by the search itself, in
    the same statement on PostgreSQL)."""

    fields: frozenset[str]
    source_systems: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()
    objecting_to: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Hit:
    citizen_id: str
    score: float
    given_names: str | None
    birth_name: str | None
    usage_name: str | None
    birth_year: int | None
    city: str | None
    source_systems: tuple[str, ...]


@dataclass(frozen=True)
class Page:
    hits: list[Hit]
    total: int  # every citizen found, not only this page (capped: at least that many)
    truncated: bool  # more results than this page shows (after offset + limit)
    capped: bool = False  # the query matched too many to count: MAX_CANDIDATES were examined


@dataclass
class Query:
    """A parsed query: name words (each a tuple of alternative folded forms) and criteria (each
    a tuple of (field, key, weight) alternatives)."""

    words: list[tuple[str, ...]] = field(default_factory=list)
    criteria: list[tuple[tuple[str, str, float], ...]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- folding
def fold(text: str) -> str:
    """Lower case, ligatures expanded, accents removed; apostrophes kept as ``'``, any other
    character but letters and digits as a space."""
    text = text.lower()
    if text.isascii():  # most names: nothing to expand or strip (the same result, a fifth of the time)
        text = text.replace("`", "'")
    else:
        for lig, plain in _LIGATURES.items():
            text = text.replace(lig, plain)
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        text = "".join("'" if c in _APOSTROPHES else c for c in text)
    return _NOT_KEY.sub(" ", text).strip()


def _words(folded: str) -> list[str]:
    """The words of a folded name, ``st``/``ste`` starting a name of several words as saint/sainte."""
    words = [w for w in folded.split() if w.strip("'")]
    return [_SAINTS.get(w, w) if i == 0 and len(words) > 1 else w for i, w in enumerate(words)]


def _forms(word: str) -> list[str]:
    """A word with its apostrophes removed, plus the part after an elided particle (n'diaye → diaye)."""
    joined = word.replace("'", "")
    out = [joined] if joined else []
    pieces = [p for p in word.split("'") if p]
    if len(pieces) > 1 and len(pieces[0]) <= 2:
        out.append("".join(pieces[1:]))
    return out


def name_keys(value: str | None) -> set[str]:
    """Every key a name value is found by: its words (apostrophes joined, elisions split), its
    words joined, and joined without leading particles.

    >>> sorted(name_keys("LE FLOC'H"))
    ['floch', 'le', 'lefloch']
    """
    if not value:
        return set()
    words = _words(fold(value))[:MAX_NAME_WORDS]
    keys: set[str] = set()
    joined = []
    for w in words:
        forms = _forms(w)
        keys.update(forms)
        if forms:
            joined.append(forms[0])
    if len(joined) > 1:
        keys.add("".join(joined))
        first = 0
        while first < len(joined) - 1 and joined[first] in _PARTICLES:
            first += 1
        if first:
            keys.add("".join(joined[first:]))
    return keys


_blake2b = hashlib.blake2b


def variant_hash(text: str) -> int:
    """A folded key's (or deletion's) 64-bit code, as stored in ``golden.citizen_search_variant``:
    its first two characters in the top bits, then 48 bits of BLAKE2b. A word's variants mostly
    share its first two letters, so they are stored together (DuckDB reads a few row groups)."""
    n = len(text)  # a missing character counts as a space (32)
    head = ((ord(text[0]) & 63 if n else 32) << 6) | (ord(text[1]) & 63 if n > 1 else 32)
    return (head << 48) | int.from_bytes(_blake2b(text.encode(), digest_size=6).digest(), "big")


def deletions(key: str) -> set[str]:
    """The key with one letter deleted, each way (``marie`` → ``arie``, ``mrie``, ``maie``, ``mare``, ``mari``)."""
    return {key[:i] + key[i + 1:] for i in range(len(key))}


def key_variants(key: str) -> set[int]:
    """What a name key is stored under in the variant table: itself (3 letters and more) and its
    deletions (4 letters and more). A word typed with one letter wrong, missing, added or two letters
    swapped shares one of these with the key meant (symmetric deletion, as SymSpell does)."""
    if len(key) < 3:
        return set()
    out = {key}
    if len(key) >= FUZZY_MIN_LENGTH:
        out |= deletions(key)
    return {variant_hash(v) for v in out}


def word_variants(word: str) -> list[int]:
    """What a typed word is looked up by in the variant table (none under FUZZY_MIN_LENGTH letters)."""
    if len(word) < FUZZY_MIN_LENGTH:
        return []
    return sorted({variant_hash(v) for v in {word} | deletions(word)})


def _phone_candidates(term: str) -> list[str]:
    """E.164 candidates for a typed number: a national number is tried as French and Belgian."""
    digits = re.sub(r"\D", "", term)
    if term.strip().startswith("+"):
        return ["+" + digits]
    if digits.startswith("00"):
        return ["+" + digits[2:]]
    if digits.startswith("0"):
        return ["+33" + digits[1:], "+32" + digits[1:]]
    return ["+" + digits]


# ---------------------------------------------------------------------------------------------- parsing
def parse(text: str) -> Query:
    """Criteria and name words of a typed query; :class:`QueryError` when it is too long,
    has too many words or nothing to search. Bounded work: the length is checked first."""
    if not isinstance(text, str):
        raise QueryError("La recherche doit être un texte.")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"La recherche est trop longue : {MAX_QUERY_CHARS} caractères au plus.")
    if len(text.split()) > MAX_QUERY_TOKENS:
        raise QueryError(f"La recherche compte trop de mots : {MAX_QUERY_TOKENS} au plus.")
    q = Query()
    rest = text
    for m in _EMAIL.finditer(rest):
        q.criteria.append((("email", m.group(0).lower().strip(".'\""), 1.0),))
    rest = _EMAIL.sub(" ", rest)
    for m in _DATE.finditer(rest):
        day, month, year = ((m[1], m[2], m[3]) if m[1] else (m[6], m[5], m[4]))
        q.criteria.append(_date_alternatives(int(day), int(month), int(year)))
    rest = _DATE.sub(" ", rest)
    for m in _PHONE.finditer(rest):
        if len(re.sub(r"\D", "", m.group(0))) >= 8:
            q.criteria.append(tuple(("phone", p, 1.0) for p in _phone_candidates(m.group(0))))
    rest = _PHONE.sub(lambda m: " " if len(re.sub(r"\D", "", m.group(0))) >= 8 else m.group(0), rest)
    for m in _POSTCODE.finditer(rest):
        q.criteria.append((("postcode", m.group(0), 1.0),))
    rest = _POSTCODE.sub(" ", rest)
    words = _words(fold(rest))
    pending: list[str] = []  # leading particles waiting for the word they belong to
    for w in words:
        forms = _forms(w)
        if not forms:
            continue
        if forms[0] in _PARTICLES:
            pending.append(forms[0])
            continue
        alts = list(forms)
        for i in range(len(pending)):
            alts.append("".join(pending[i:]) + forms[0])
        pending = []
        q.words.append(tuple(dict.fromkeys(alts)))
    if pending:  # particles typed alone (or last): words of their own ("le" finds LE FLOC'H too)
        q.words.extend((p,) for p in pending)
    if not q.words and not q.criteria:
        raise QueryError("La recherche est vide : saisissez un nom, une date de naissance, une adresse "
                         "électronique, un téléphone ou un code postal.")
    return q


def _date_alternatives(day: int, month: int, year: int) -> tuple[tuple[str, str, float], ...]:
    out = []
    for d, m, w in ((day, month, 1.0), (month, day, _SWAPPED_DATE)):
        try:
            out.append(("birth_date", date(year, m, d).isoformat(), w))
        except ValueError:
            continue
    if not out:  # an impossible date finds no one, but stays a criterion
        out.append(("birth_date", f"invalid:{year}-{month}-{day}", 1.0))
    return tuple(dict.fromkeys(out))


def _check_scope(q: Query, scope: Scope) -> tuple[list[str], list[tuple[tuple[str, str, float], ...]]]:
    """The name fields searched and the criteria, refusing a term of a field outside the scope."""
    name_fields = [f for f in NAME_FIELDS if f in scope.fields]
    if q.words and not name_fields:
        raise QueryError(f"Votre service ne peut pas rechercher par {FIELD_LABELS['name']}.")
    for crit in q.criteria:
        f = crit[0][0]
        if f not in scope.fields:
            raise QueryError(f"Votre service ne peut pas rechercher par {FIELD_LABELS[f]}.")
    return name_fields, q.criteria


# ---------------------------------------------------------------------------------------------- ids
def prepare(wh: Warehouse) -> None:
    """Load what this reader's searches need ahead of the first one: on a DuckDB snapshot, the
    release's search index in memory (:mod:`warehouse.search_memory`, shared by the process's readers
    of that release); nothing elsewhere."""
    memory_index(wh)


def resolve_id(wh: Warehouse, text: str) -> str | None:
    """The published citizen id ``text`` names — any case, spaces anywhere — following retired
    ids through ``golden.citizen_alias``; None when unknown (or retired with all records deleted)."""
    if not isinstance(text, str) or len(text) > MAX_QUERY_CHARS:
        return None
    cid = re.sub(r"\s+", "", text).upper()
    if not cid or len(cid) > 64:
        return None
    has_alias = wh.table_exists(CITIZEN_ALIAS.schema, CITIZEN_ALIAS.name)
    if not wh.table_exists(CITIZEN.schema, CITIZEN.name):
        return None
    seen: set[str] = set()
    while cid and cid not in seen:
        seen.add(cid)
        if wh.scalar(f"SELECT count(*) FROM {qualified(CITIZEN)} WHERE citizen_id = :c", {"c": cid}):
            return cid
        if not has_alias:
            return None
        cid = wh.scalar(f"SELECT new_id FROM {qualified(CITIZEN_ALIAS)} WHERE old_id = :c", {"c": cid})
    return None


def objections_for(wh: Warehouse, processing_ids: Iterable[str]) -> frozenset[str]:
    """Citizens with an objection in force to one of these processings (for ``Scope.exclude``)."""
    ids = tuple(sorted(set(processing_ids)))
    if not ids:
        return frozenset()

    def read() -> frozenset[str]:
        if wh.kind == "postgres":  # one catalog lookup, not information_schema's view (each search asks)
            if not wh.scalar("SELECT to_regclass(:t) IS NOT NULL", {"t": qualified(OBJECTION)}):
                return frozenset()
        elif not wh.table_exists(OBJECTION.schema, OBJECTION.name):
            return frozenset()
        sql, params = bind_list("p", ids)
        return frozenset(r[0] for r in wh.rows(
            f"SELECT citizen_id FROM {qualified(OBJECTION)} WHERE revoked_at IS NULL AND processing_id IN ({sql})",
            params))

    return wh.memo(("objections", ids), read)


# ---------------------------------------------------------------------------------------------- build
_CITIZEN_SQL = ("SELECT citizen_id, given_names, birth_name, usage_name, birth_date, email, phone, postcode, city, "
                "source_systems FROM {citizen}")
_RECORD_SQL = ("SELECT l.citizen_id, r.source_system, r.given_names, r.birth_name, r.usage_name, "
               "CASE WHEN r.birth_date_precision IS NULL OR r.birth_date_precision = 'day' THEN r.birth_date END "
               "AS birth_date, r.email, r.phone, r.postcode, r.country "
               "FROM {link} l JOIN {record} r ON r.record_key = l.record_key WHERE r.deleted_at IS NULL")
_INPUT_SCHEMA = pa.schema([("citizen_id", pa.string()), ("source_system", pa.string()), ("given_names", pa.string()),
                           ("birth_name", pa.string()), ("usage_name", pa.string()), ("birth_date", pa.date32()),
                           ("email", pa.string()), ("phone", pa.string()), ("postcode", pa.string()),
                           ("country", pa.string())])

# Keys of the other fields, in SQL over the long table of values: ISO dates, lower-case e-mails,
# E.164 phones (a national number takes the record's country code, +33 when unknown), postcodes.
_OTHER_KEYS_SQL = r"""
SELECT 'birth_date' AS field, strftime(birth_date, '%Y-%m-%d') AS key, citizen_id, origin FROM v
 WHERE birth_date IS NOT NULL
UNION ALL
SELECT 'email', lower(trim(email)), citizen_id, origin FROM v WHERE contains(email, '@')
UNION ALL
SELECT 'phone', CASE WHEN starts_with(trim(phone), '+') THEN '+' || d
                     WHEN starts_with(d, '00') THEN '+' || d[3:]
                     WHEN starts_with(d, '0') THEN (CASE WHEN upper(country) = 'BE' THEN '+32' ELSE '+33' END) || d[2:]
                     ELSE '+' || d END, citizen_id, origin
  FROM (SELECT *, regexp_replace(phone, '[^0-9]', '', 'g') AS d FROM v WHERE phone IS NOT NULL) WHERE length(d) >= 6
UNION ALL
SELECT 'postcode', upper(replace(trim(postcode), ' ', '')), citizen_id, origin FROM v
 WHERE nullif(trim(postcode), '') IS NOT NULL
"""


def _inputs(wh: Warehouse, citizens: pa.Table) -> pa.Table:
    """The published values the index is built from: the golden rows (source_system null) and
    every live linked record's."""
    n = citizens.num_rows
    parts = [pa.table({
        "citizen_id": citizens["citizen_id"], "source_system": pa.nulls(n, pa.string()),
        **{c: citizens[c] for c in ("given_names", "birth_name", "usage_name", "birth_date", "email", "phone",
                                    "postcode")},
        "country": pa.nulls(n, pa.string())})]
    if wh.table_exists(CITIZEN_LINK.schema, CITIZEN_LINK.name) and wh.table_exists(PERSON_RECORD.schema,
                                                                                   PERSON_RECORD.name):
        parts.append(wh.arrow(_RECORD_SQL.format(link=qualified(CITIZEN_LINK), record=qualified(PERSON_RECORD))))
    return pa.concat_tables([_typed(p, _INPUT_SCHEMA) for p in parts])


def _typed(data: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.table({f.name: (data[f.name].cast(f.type) if data[f.name].type != pa.null()
                              else pa.nulls(data.num_rows, f.type)) for f in schema}, schema=schema)


def _name_keys_table(values: list[str]) -> pa.Table:
    raws, keys = [], []
    for v in values:
        for k in name_keys(v):
            raws.append(v)
            keys.append(k)
    return pa.table({"raw": pa.array(raws, pa.string()), "key": pa.array(keys, pa.string())})


_VARIANT_BATCH = 65_536  # terms whose variants are listed in Python at a time


def _variant_table(terms: pa.Table) -> pa.Table:
    """(variant, term_id, field, citizens) of the name terms, sorted by variant (equality lookups
    read one row group on DuckDB, one B-tree leaf on PostgreSQL). Built a batch of terms at a time,
    each batch's variants as Arrow at once: a Python list of every variant with its term's columns
    beside it was the publication's peak (1.2 GB at 1M people, docs/scale.md)."""
    parts = []
    for batch in terms.select(["term_id", "field", "key", "citizens"]).to_batches(max_chunksize=_VARIANT_BATCH):
        # once per key: a key is a term of several fields (a birth name is most often the usage name too)
        keys = pc.dictionary_encode(batch.column("key"))
        of_key = [key_variants(k) for k in keys.dictionary.to_pylist()]
        variants = [of_key[i] for i in keys.indices.to_pylist()]
        flat = pa.array([v for vs in variants for v in vs], pa.int64())
        row = pa.array([i for i, vs in enumerate(variants) for _ in vs], pa.int64())  # each variant's term
        del variants
        parts.append(pa.table({"variant": flat, "term_id": batch.column("term_id").take(row).cast(pa.int32()),
                               "field": batch.column("field").take(row).cast(pa.string()),
                               "citizens": batch.column("citizens").take(row).cast(pa.int32())}))
    schema = pa.schema([("variant", pa.int64()), ("term_id", pa.int32()), ("field", pa.string()),
                        ("citizens", pa.int32())])
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    return table.sort_by([("variant", "ascending"), ("term_id", "ascending")])


def compute_index(citizens: pa.Table, values: pa.Table) -> dict[str, pa.Table]:
    """The index tables (contract columns, sorted as stored) from the golden citizens (CITIZEN
    columns) and the long table of values (:func:`_inputs`). Pure: no warehouse."""
    con = resources.connect()
    try:
        con.register("cit_in", citizens)
        con.register("v_in", values)
        con.execute("CREATE TEMP TABLE v AS SELECT *, coalesce(source_system, '') AS origin FROM v_in")
        systems = sorted({s for (s,) in con.execute(
            "SELECT DISTINCT unnest(string_split(source_systems, ',')) FROM cit_in UNION "
            "SELECT DISTINCT source_system FROM v WHERE source_system IS NOT NULL").fetchall() if s})
        if len(systems) > 62:
            raise ValueError(f"the search index holds 62 silos at most, {len(systems)} found")
        system_table = pa.table({"source_system": pa.array(systems, pa.string()),
                                 "bit": pa.array(range(1, len(systems) + 1), pa.int32())})
        con.register("sys", system_table)
        raws = [r[0] for r in con.execute(
            "SELECT DISTINCT value FROM (UNPIVOT (SELECT given_names, birth_name, usage_name FROM v) "
            "ON given_names, birth_name, usage_name INTO NAME field VALUE value) WHERE value IS NOT NULL").fetchall()]
        con.register("raw_keys", _name_keys_table(raws))
        con.execute(f"""
            CREATE TEMP TABLE keyed AS
            SELECT n.field, k.key, n.citizen_id, n.origin
              FROM (UNPIVOT (SELECT citizen_id, origin, given_names, birth_name, usage_name FROM v)
                    ON given_names, birth_name, usage_name INTO NAME field VALUE value) n
              JOIN raw_keys k ON k.raw = n.value
            UNION ALL {_OTHER_KEYS_SQL}""")
        con.execute("""
            CREATE TEMP TABLE c AS
            SELECT (row_number() OVER (ORDER BY lower(cit_in.usage_name), lower(cit_in.given_names),
                                       cit_in.citizen_id) - 1)::INTEGER AS citizen_no,
                   cit_in.*, coalesce(m.mask, 0) AS systems_mask
              FROM cit_in LEFT JOIN (
                   SELECT x.citizen_id, bit_or(1::BIGINT << s.bit) AS mask
                     FROM (SELECT citizen_id, unnest(string_split(source_systems, ',')) AS name FROM cit_in) x
                     JOIN sys s ON s.source_system = x.name GROUP BY x.citizen_id) m
                ON m.citizen_id = cit_in.citizen_id""")
        con.execute("""
            CREATE TEMP TABLE p AS
            SELECT k.field, k.key, c.citizen_no, c.systems_mask AS citizen_mask,
                   bit_or(CASE WHEN k.origin = '' THEN 1::BIGINT ELSE (1::BIGINT << s.bit) END) AS origin_mask
              FROM keyed k JOIN c ON c.citizen_id = k.citizen_id LEFT JOIN sys s ON s.source_system = k.origin
             WHERE k.key IS NOT NULL AND k.key <> ''
             GROUP BY ALL""")
        con.execute("""
            CREATE TEMP TABLE t AS
            SELECT (row_number() OVER (ORDER BY key, field) - 1)::INTEGER AS term_id, field, key,
                   count(*)::INTEGER AS citizens
              FROM p GROUP BY field, key""")
        out = {
            "system": system_table,
            "citizen": con.sql("""
                SELECT citizen_no, citizen_id, given_names, birth_name, usage_name,
                       year(birth_date)::INTEGER AS birth_year, city, source_systems, systems_mask
                  FROM c ORDER BY citizen_no""").to_arrow_table(),
            "term": con.sql("""
                SELECT term_id, field, key, citizens FROM t ORDER BY term_id""").to_arrow_table(),
            "posting": con.sql("""
                SELECT t.term_id, p.citizen_no, p.origin_mask, p.citizen_mask
                  FROM p JOIN t ON t.field = p.field AND t.key = p.key ORDER BY t.term_id, p.citizen_no""")
            .to_arrow_table(),
        }
        out["variant"] = _variant_table(con.sql(
            "SELECT term_id, field, key, citizens FROM t WHERE field IN ('given_names', 'birth_name', 'usage_name')"
        ).to_arrow_table())
    finally:
        con.close()
    return out


def build_index(wh: Warehouse) -> int:
    """(Re)build the search index from the published release; returns the citizens indexed.

    Idempotent: the tables are refilled as a whole, in one transaction (joined when the caller
    holds one, e.g. the publication's). Without a published ``golden.citizen`` nothing is done.
    On PostgreSQL the tables, their indexes and ``golden.search_citizens`` are the migration's
    (:func:`search_ddl`, run by the owner): the pipeline's writer role only empties and refills the
    tables (TRUNCATE, INSERT). A warehouse no migration made (``hub run`` by the tables' owner on a
    fresh database) gets them here, from the same definitions, once.
    """
    if not wh.table_exists(CITIZEN.schema, CITIZEN.name):
        return 0
    citizens = wh.arrow(_CITIZEN_SQL.format(citizen=qualified(CITIZEN)))
    full = arrow_schema(CITIZEN)
    citizens = _typed(citizens, pa.schema([full.field(c) for c in citizens.column_names]))
    tables = compute_index(citizens, _inputs(wh, citizens))
    postgres = wh.kind == "postgres"
    targets = [(CITIZEN_SEARCH_SYSTEM, "system"), (CITIZEN_SEARCH, "citizen"), (CITIZEN_SEARCH_TERM, "term"),
               (CITIZEN_SEARCH_POSTING, "posting"), (CITIZEN_SEARCH_VARIANT, "variant")]
    with wh.transaction():
        if postgres and not search_objects_ready(wh):
            _create_search_objects(wh)
        for table, name in targets:
            if postgres:
                # TRUNCATE keeps the grants and indexes, and is transactional on PostgreSQL
                wh.execute(f"TRUNCATE {qualified(table)}")
            else:
                # a fresh table: its row groups hold the new rows in sort order only
                wh.execute(f"DROP TABLE IF EXISTS {qualified(table)}")
                wh.ensure_table(table)
            wh.write(table, tables[name])
        if not postgres:
            wh.execute('DROP TABLE IF EXISTS "golden"."citizen_search_trigram"')  # the previous release's
    if postgres:
        for table, _ in targets:
            # fresh statistics where the role may take them (the owner's; autovacuum's otherwise)
            if wh.scalar("SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c "
                         "WHERE c.oid = CAST(:t AS regclass)", {"t": qualified(table)}):
                wh.execute(f"ANALYZE {qualified(table)}")
    log.info("search index built: %d citizens, %d terms, %d postings", tables["citizen"].num_rows,
             tables["term"].num_rows, tables["posting"].num_rows)
    return tables["citizen"].num_rows


# ---------------------------------------------------------------------------------------------- PostgreSQL
SEARCH_FUNCTION = "golden.search_citizens"
SEARCH_FUNCTION_ARGS = ("p_tok int[], p_alt text[], p_var_tok int[], p_var bigint[], p_crit int[], p_field text[], "
                        "p_key text[], p_weight float8[], p_name_fields text[], p_systems text[], p_exclude text[], "
                        "p_objecting text[], p_limit int, p_offset int")
SEARCH_FUNCTION_SIGNATURE = ("golden.search_citizens(int[], text[], int[], bigint[], int[], text[], text[], "
                             "float8[], text[], text[], text[], text[], int, int)")
_PG_INDEXES = (
    ("citizen_search_term_key", "{term} ((key COLLATE \"C\"), field) INCLUDE (citizens)"),
    ("citizen_search_posting_term", "{posting} (term_id, citizen_no) INCLUDE (origin_mask, citizen_mask)"),
    ("citizen_search_posting_citizen", "{posting} (citizen_no) INCLUDE (term_id, origin_mask, citizen_mask)"),
    ("citizen_search_variant_key", "{variant} (variant) INCLUDE (term_id, field, citizens)"),
    ("citizen_search_citizen_id", "{citizen} (citizen_id)"),
)


def search_ddl() -> list[str]:
    """The PostgreSQL objects of the search, for the migration (run by the owner): the index
    tables (when missing), their B-trees, the previous release's trigram objects dropped, and
    ``golden.search_citizens``. Grants are the migration's (``EXECUTE`` to the desk, ``TRUNCATE``
    to the writer)."""
    from warehouse.metadata import metadata

    names = {"term": qualified(CITIZEN_SEARCH_TERM), "posting": qualified(CITIZEN_SEARCH_POSTING),
             "variant": qualified(CITIZEN_SEARCH_VARIANT), "citizen": qualified(CITIZEN_SEARCH)}
    md = metadata()
    out = []
    for table in (CITIZEN_SEARCH_SYSTEM, CITIZEN_SEARCH, CITIZEN_SEARCH_TERM, CITIZEN_SEARCH_POSTING,
                  CITIZEN_SEARCH_VARIANT):
        from sqlalchemy.dialects import postgresql
        from sqlalchemy.schema import CreateTable

        ddl = str(CreateTable(md.tables[f"{table.schema}.{table.name}"], if_not_exists=True)
                  .compile(dialect=postgresql.dialect()))
        out.append(ddl.strip())
    out += ["DROP INDEX IF EXISTS golden.citizen_search_term_trgm",
            "DROP TABLE IF EXISTS golden.citizen_search_trigram",
            f"ALTER TABLE {names['term']} DROP COLUMN IF EXISTS trigrams",
            "DROP INDEX IF EXISTS golden.citizen_search_posting_term",  # now on (term_id, citizen_no)
            "DROP INDEX IF EXISTS golden.citizen_search_term_key"]  # now covering citizens
    out += [f"CREATE INDEX IF NOT EXISTS {name} ON {spec.format(**names)}" for name, spec in _PG_INDEXES]
    return out + search_function_ddl()


def search_function_ddl() -> list[str]:
    """``golden.search_citizens`` replaced: every earlier signature dropped, this release's created,
    ``EXECUTE`` revoked from PUBLIC (the desk's grant is the security model's)."""
    return ["""DO $$ DECLARE f regprocedure; BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'golden' AND p.proname = 'search_citizens' LOOP
        EXECUTE format('DROP FUNCTION %s', f);
    END LOOP;
END $$""", search_function_sql(), f"REVOKE ALL ON FUNCTION {SEARCH_FUNCTION_SIGNATURE} FROM PUBLIC"]


def search_objects_ready(wh: Warehouse) -> bool:
    """The search tables of this release and ``golden.search_citizens`` of this signature exist."""
    return bool(wh.scalar(f"SELECT to_regprocedure('{SEARCH_FUNCTION_SIGNATURE}') IS NOT NULL "
                          f"AND to_regclass('{qualified(CITIZEN_SEARCH_VARIANT)}') IS NOT NULL"))


def _create_search_objects(wh: Warehouse) -> None:
    """A warehouse no migration made: its owner (the one running ``hub run``) gets the search
    objects from :func:`search_ddl`. A role that does not own the index tables is told to migrate."""
    owns = wh.scalar("SELECT n.nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
                     "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
                     "FROM pg_namespace n WHERE n.nspname = :s", {"s": CITIZEN_SEARCH.schema})
    if owns is False:
        raise RuntimeError("the search index's objects are missing or from an older release: run "
                           "`hub warehouse upgrade` as the warehouse's owner")
    wh.create_schema(CITIZEN_SEARCH.schema)
    for stmt in search_ddl():
        wh.execute(stmt)


def search_function_sql() -> str:
    """``CREATE FUNCTION golden.search_citizens(...)``: the whole PostgreSQL search as one reviewed
    SECURITY DEFINER function, every object schema-qualified. Arguments: the name words'
    alternatives (``p_tok`` word number, ``p_alt`` folded form) and their one-typo variants' hashes
    (``p_var_tok``, ``p_var``), the criteria's alternatives (number, field, key, weight), the name
    fields searched, the silos in scope (null: every silo), citizen ids left out, the processings
    whose objections in force leave a citizen out (art. 21), limit, offset. One call does the
    whole search: the silos' bits and the objections are read here, not in statements of their own.

    The silos' mask is intersected with the session's grants (``ops.granted_systems()``, from the
    transaction's collectivité and service): a caller cannot widen it. A session that bypasses row
    security (the owner, a superuser) reads the tables anyway and keeps the silos it gives.

    Its statements run on generic plans (``plan_cache_mode``): they are shaped to one plan
    (LATERAL index lookups over the few words typed), and planning them afresh at each call (the
    custom plans PostgreSQL otherwise keeps choosing) cost more than a simple search's execution.

    Returns one row per citizen of the page, ``total`` (every citizen found) and ``capped`` (the
    rarest word had more than MAX_CANDIDATES postings: total is a lower bound) on each."""
    term, posting, citizen, variant, system = (
        qualified(CITIZEN_SEARCH_TERM), qualified(CITIZEN_SEARCH_POSTING), qualified(CITIZEN_SEARCH),
        qualified(CITIZEN_SEARCH_VARIANT), qualified(CITIZEN_SEARCH_SYSTEM))
    scope = ("(v_allowed IS NULL OR ((p.origin_mask & v_allowed) <> 0 AND (p.citizen_mask & v_allowed) <> 0))")

    def final(*, others: bool) -> str:
        """The page's statement: the driver's candidates, with (``others``) the other slots'
        postings for them, probed or fetched."""
        lookups = f"""nos AS (SELECT DISTINCT c.citizen_no FROM cand c),
-- each candidate's postings once (MATERIALIZED: the planner would loop over the terms outside)
probes AS MATERIALIZED (
    SELECT c.citizen_no, x.term_id
      FROM nos c CROSS JOIN LATERAL (
           SELECT p.term_id FROM {posting} p
            WHERE v_probe IS NOT NULL AND p.citizen_no = c.citizen_no AND {scope} OFFSET 0) x
),
probed AS (
    SELECT x.citizen_no, t.slot, max(t.s) AS s
      FROM probes x JOIN t ON t.term_id = x.term_id AND t.slot = ANY(v_probe)
     GROUP BY x.citizen_no, t.slot
),
fetched AS (
    SELECT x.citizen_no, t.slot, max(t.s) AS s
      FROM t CROSS JOIN LATERAL (
           SELECT p.citizen_no FROM {posting} p WHERE p.term_id = t.term_id AND {scope} OFFSET 0) x
     WHERE t.slot = ANY(v_fetch) AND x.citizen_no IN (SELECT c.citizen_no FROM nos c)
     GROUP BY x.citizen_no, t.slot
),
""" if others else ""
        matched = ("(SELECT * FROM cand UNION ALL SELECT * FROM probed UNION ALL SELECT * FROM fetched) m" if others
                   else "cand m")
        return f"""WITH t AS (SELECT * FROM unnest(v_slot, v_term, v_s, v_n) AS t(slot, term_id, s, n)),
d AS (SELECT * FROM t WHERE CASE WHEN t.slot < v_words THEN t.slot ELSE -1 END = v_driver
       ORDER BY t.s DESC, t.n, t.term_id OFFSET 0),
raw AS (
    SELECT x.citizen_no, d.slot, d.s
      FROM d CROSS JOIN LATERAL (
           SELECT p.citizen_no FROM {posting} p WHERE p.term_id = d.term_id AND {scope} OFFSET 0) x
     LIMIT {MAX_CANDIDATES}
),
cand AS (SELECT r.citizen_no, r.slot, max(r.s) AS s FROM raw r GROUP BY r.citizen_no, r.slot),
{lookups}per AS (
    SELECT m.citizen_no, count(*) FILTER (WHERE m.slot < v_words) AS n_tok,
           count(*) FILTER (WHERE m.slot >= v_words) AS n_crit,
           coalesce(sum(m.s) FILTER (WHERE m.slot < v_words), 0) AS name_s,
           coalesce(sum(m.s) FILTER (WHERE m.slot >= v_words), 0) AS crit_s
      FROM {matched}
     GROUP BY m.citizen_no
),
hits AS (
    SELECT per.*, count(*) OVER () AS total,
           round((per.crit_s + per.name_s / greatest(v_words, 1))::numeric, 4)::float8 AS score
      FROM per
     WHERE per.n_tok = v_words AND (per.n_crit >= 1 OR v_crits = 0)
       AND per.citizen_no NOT IN (SELECT e.citizen_no FROM {citizen} e WHERE e.citizen_id = ANY(v_exclude))
     ORDER BY per.n_crit DESC, score DESC, per.citizen_no
     LIMIT p_limit OFFSET p_offset
)
SELECT c.citizen_id, h.score, h.n_crit::int, c.given_names, c.birth_name, c.usage_name, c.birth_year, c.city,
       c.source_systems, c.systems_mask, h.total, (SELECT count(*) >= {MAX_CANDIDATES} FROM raw)
  FROM hits h JOIN {citizen} c ON c.citizen_no = h.citizen_no
 ORDER BY h.n_crit DESC, h.score DESC, h.citizen_no;"""

    return f"""
CREATE FUNCTION {SEARCH_FUNCTION}({SEARCH_FUNCTION_ARGS})
RETURNS TABLE (citizen_id text, score float8, criteria int, given_names text, birth_name text, usage_name text,
               birth_year int, city text, source_systems text, systems_mask bigint, total bigint, capped boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $fn$
#variable_conflict use_column
DECLARE
    v_allowed bigint;
    v_granted bigint;
    v_exclude text[] := coalesce(p_exclude, '{{}}');
    v_words int := coalesce(array_length(ARRAY(SELECT DISTINCT x FROM unnest(p_tok) x), 1), 0);
    v_crits int := coalesce(array_length(ARRAY(SELECT DISTINCT x FROM unnest(p_crit) x), 1), 0);
    v_slot int[];
    v_term int[];
    v_s float8[];
    v_n int[];
    v_driver int;
    v_driver_n bigint;
    v_probe int[];
    v_fetch int[];
BEGIN
-- the scope: the silos asked for (bit 0: the golden record's own keys), never wider than the
-- session's grants
IF p_systems IS NOT NULL THEN
    SELECT 1::bigint | coalesce(bit_or(1::bigint << y.bit), 0) INTO v_allowed
      FROM {system} y WHERE y.source_system = ANY(p_systems);
END IF;
IF NOT coalesce((SELECT r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r WHERE r.rolname = session_user),
                false) THEN
    IF NOT EXISTS (SELECT 1 FROM ops.granted_systems() g(s) WHERE g.s = '{_ALL_SYSTEMS}') THEN
        SELECT 1::bigint | coalesce(bit_or(1::bigint << y.bit), 0) INTO v_granted
          FROM {system} y WHERE y.source_system IN (SELECT g.s FROM ops.granted_systems() g(s));
        v_allowed := CASE WHEN v_allowed IS NULL THEN v_granted ELSE v_allowed & v_granted END;
    END IF;
END IF;
-- art. 21: citizens objecting to the processing are not found by it
IF cardinality(p_objecting) > 0 AND to_regclass('{qualified(OBJECTION)}') IS NOT NULL THEN
    v_exclude := v_exclude || ARRAY(SELECT o.citizen_id FROM {qualified(OBJECTION)} o
                                     WHERE o.revoked_at IS NULL AND o.processing_id = ANY(p_objecting));
END IF;
-- 1. the terms each word (slot 0..) and criterion (slot v_words + n) may match: every lookup a
-- LATERAL index scan (OFFSET 0 keeps it a nested loop over the few words typed)
WITH found AS (
    SELECT q.tok AS slot, x.term_id, {_EXACT}::float8 AS s, x.citizens
      FROM unnest(p_tok, p_alt) AS q(tok, alt) CROSS JOIN LATERAL (
           SELECT t.term_id, t.citizens FROM {term} t
            WHERE t.key COLLATE "C" = q.alt AND t.field = ANY(p_name_fields) OFFSET 0) x
    UNION ALL
    SELECT q.tok, x.term_id, {_PREFIX}::float8, x.citizens
      FROM unnest(p_tok, p_alt) AS q(tok, alt) CROSS JOIN LATERAL (
           SELECT t.term_id, t.citizens FROM {term} t
            WHERE t.key COLLATE "C" > q.alt AND t.key COLLATE "C" < q.alt || '{{' AND t.field = ANY(p_name_fields)
            ORDER BY t.citizens DESC, t.term_id LIMIT {PREFIX_TERMS}) x
    UNION ALL
    SELECT z.tok, z.term_id, {_TYPO}::float8, z.citizens FROM (
        SELECT v.tok, x.term_id, x.citizens,
               row_number() OVER (PARTITION BY v.tok ORDER BY x.citizens DESC, x.term_id) AS rn
          FROM (SELECT DISTINCT tok, h FROM unnest(p_var_tok, p_var) AS v(tok, h)) v CROSS JOIN LATERAL (
               SELECT DISTINCT y.term_id, y.citizens FROM {variant} y
                WHERE y.variant = v.h AND y.field = ANY(p_name_fields) OFFSET 0) x) z
     WHERE z.rn <= {FUZZY_TERMS}
    UNION ALL
    SELECT v_words + c.crit, x.term_id, c.w, x.citizens
      FROM unnest(p_crit, p_field, p_key, p_weight) AS c(crit, field, key, w) CROSS JOIN LATERAL (
           SELECT t.term_id, t.citizens FROM {term} t WHERE t.key COLLATE "C" = c.key AND t.field = c.field OFFSET 0) x
), best AS (
    SELECT f.slot, f.term_id, max(f.s) AS s, max(f.citizens) AS n FROM found f GROUP BY f.slot, f.term_id
)
SELECT array_agg(b.slot ORDER BY b.slot, b.s DESC, b.n, b.term_id), array_agg(b.term_id ORDER BY b.slot, b.s DESC, b.n,
       b.term_id), array_agg(b.s ORDER BY b.slot, b.s DESC, b.n, b.term_id),
       array_agg(b.n ORDER BY b.slot, b.s DESC, b.n, b.term_id)
  INTO v_slot, v_term, v_s, v_n FROM best b;
-- a word no term matches, or criteria none matches: nobody
IF v_slot IS NULL
   OR (SELECT count(DISTINCT x) FROM unnest(v_slot) x WHERE x < v_words) < v_words
   OR (v_crits > 0 AND NOT EXISTS (SELECT 1 FROM unnest(v_slot) x WHERE x >= v_words)) THEN
    RETURN;
END IF;
-- 2. the driver: the word (or the criteria, together) holding the fewest postings
SELECT d.grp, d.vol INTO v_driver, v_driver_n FROM (
    SELECT CASE WHEN u.slot < v_words THEN u.slot ELSE -1 END AS grp, sum(u.n) AS vol
      FROM unnest(v_slot, v_n) AS u(slot, n) GROUP BY 1) d
 ORDER BY d.vol, d.grp LIMIT 1;
-- the other slots: read whole when they hold few postings, else probed citizen by citizen
SELECT array_agg(o.slot) FILTER (WHERE o.vol > {PROBE_RATIO} * least(v_driver_n, {MAX_CANDIDATES})),
       array_agg(o.slot) FILTER (WHERE o.vol <= {PROBE_RATIO} * least(v_driver_n, {MAX_CANDIDATES}))
  INTO v_probe, v_fetch
  FROM (SELECT u.slot, sum(u.n) AS vol FROM unnest(v_slot, v_n) AS u(slot, n)
         WHERE CASE WHEN u.slot < v_words THEN u.slot ELSE -1 END <> v_driver GROUP BY u.slot) o;
-- 3. the driver's postings, best terms first, at most MAX_CANDIDATES; the other slots for those
-- citizens (a query of one word, or of criteria alone, has none: a smaller statement to start)
IF v_probe IS NULL AND v_fetch IS NULL THEN
RETURN QUERY
{final(others=False)}
ELSE
RETURN QUERY
{final(others=True)}
END IF;
END
$fn$"""


# ---------------------------------------------------------------------------------------------- search
def search(wh: Warehouse, text: str, *, scope: Scope, limit: int = 20, offset: int = 0) -> Page:
    """Citizens matching what an agent typed, best first (see the module docstring), within ``scope``.

    ``Page.total`` counts every citizen found (``capped``: at least that many, the query is too
    vague to count them all); ``truncated`` says more follow this page.
    :class:`QueryError` (French message) for an over-long, empty or out-of-scope query, or a
    limit / offset out of bounds. Writes no access-log row.
    """
    if not 1 <= limit <= 100 or not 0 <= offset <= 10_000:
        raise QueryError("Pagination invalide : 1 à 100 résultats par page, à partir du rang 0 à 10 000.")
    q = parse(text)
    if not _indexed(wh):
        return Page([], 0, False)
    if _CITIZEN_ID.match(re.sub(r"\s+", "", text).upper()):
        return _by_id(wh, text, scope, offset)
    name_fields, criteria = _check_scope(q, scope)
    if wh.kind == "postgres":  # one statement: the function reads the silos' bits and the objections
        def run(limit: int, offset: int) -> list[dict]:
            return _search_postgres(wh, q, name_fields, criteria, scope, limit, offset)
    else:
        allowed = _allowed_mask(_bits(wh), scope.source_systems)
        exclude = scope.exclude | objections_for(wh, scope.objecting_to)

        def run(limit: int, offset: int) -> list[dict]:
            return _search_duckdb(wh, q, name_fields, criteria, allowed, exclude, limit, offset)
    rows = run(limit, offset)
    capped = bool(rows and rows[0]["capped"])
    if rows:
        total = int(rows[0]["total"])
    elif offset:  # the page asked for lies past the last result
        first = run(1, 0)
        total = int(first[0]["total"]) if first else 0
        capped = bool(first and first[0]["capped"])
    else:
        total = 0
    hits = [_hit(r, scope) for r in rows]
    return Page(hits, total, offset + len(hits) < total, capped)


def _by_id(wh: Warehouse, text: str, scope: Scope, offset: int) -> Page:
    """A citizen id typed in the search box: that citizen (through the aliases), if in scope."""
    cid = resolve_id(wh, text)
    if cid is None or cid in scope.exclude or cid in objections_for(wh, scope.objecting_to):
        return Page([], 0, False)
    allowed = _allowed_mask(_bits(wh), scope.source_systems)
    rows = wh.dicts(f"SELECT citizen_id, given_names, birth_name, usage_name, birth_year, city, source_systems, "
                    f"systems_mask FROM {qualified(CITIZEN_SEARCH)} WHERE citizen_id = :c", {"c": cid})
    rows = [r for r in rows if allowed is None or r["systems_mask"] & allowed]
    hits = [_hit({**r, "score": 1.0}, scope) for r in rows][offset:]
    return Page(hits, len(rows), False)


def _hit(r: dict, scope: Scope) -> Hit:
    shown = scope.fields
    names = [s for s in (r["source_systems"] or "").split(",") if s]
    if scope.source_systems is not None:
        names = [s for s in names if s in scope.source_systems]
    return Hit(citizen_id=r["citizen_id"], score=float(r["score"]),
               given_names=r["given_names"] if "given_names" in shown else None,
               birth_name=r["birth_name"] if "birth_name" in shown else None,
               usage_name=r["usage_name"] if "usage_name" in shown else None,
               birth_year=r["birth_year"] if "birth_date" in shown else None,
               city=r["city"] if "city" in shown else None,
               source_systems=tuple(names))


_INDEXED: set[str] = set()  # PostgreSQL warehouses (URLs) seen with their search objects: they stay


def _indexed(wh: Warehouse) -> bool:
    """An index was built (DuckDB: its tables are in the file read) or, on PostgreSQL, the search
    objects exist (a migrated warehouse has them from the start, empty until the first publication).
    PostgreSQL's answer is kept for the process once true: no statement of its own per search. Its
    tables without this release's function (a warehouse not yet migrated) is an error, not an empty
    page: agents would take "nobody" for an answer."""
    if wh.kind == "postgres":
        if wh.url not in _INDEXED:
            if search_objects_ready(wh):
                _INDEXED.add(wh.url)
            elif wh.scalar(f"SELECT to_regclass('{qualified(CITIZEN_SEARCH_SYSTEM)}') IS NOT NULL"):
                raise RuntimeError("the warehouse's search function is not this release's: run "
                                   "`hub warehouse upgrade` as its owner")
        return wh.url in _INDEXED
    return wh.memo("search_indexed", lambda: wh.table_exists(CITIZEN_SEARCH_SYSTEM.schema, CITIZEN_SEARCH_SYSTEM.name))


def _bits(wh: Warehouse) -> dict[str, int]:
    """The silos' bits in the index (kept by a snapshot reader)."""
    return wh.memo("search_bits", lambda: dict(wh.rows(
        f"SELECT source_system, bit FROM {qualified(CITIZEN_SEARCH_SYSTEM)}")))


def _allowed_mask(bits: dict[str, int], systems: frozenset[str] | None) -> int | None:
    """Bit 0 (the golden record's keys) and the bits of the silos in scope; None: every silo."""
    if systems is None:
        return None
    mask = 1
    for s in systems:
        if s in bits:
            mask |= 1 << bits[s]
    return mask


def _search_postgres(wh: Warehouse, q: Query, name_fields: list[str], criteria: list, scope: Scope,
                     limit: int, offset: int) -> list[dict]:
    toks = [(i, alt) for i, alts in enumerate(q.words) for alt in alts]
    variants = [(i, v) for i, alts in enumerate(q.words) for v in sorted({v for a in alts for v in word_variants(a)})]
    crits = [(i, f, k, w) for i, alts in enumerate(criteria) for f, k, w in alts]
    return wh.dicts(
        f"SELECT * FROM {SEARCH_FUNCTION}(CAST(:tok AS int[]), CAST(:alt AS text[]), CAST(:var_tok AS int[]), "
        "CAST(:var AS bigint[]), CAST(:crit AS int[]), CAST(:field AS text[]), CAST(:key AS text[]), "
        "CAST(:weight AS float8[]), CAST(:fields AS text[]), CAST(:systems AS text[]), CAST(:exclude AS text[]), "
        "CAST(:objecting AS text[]), :limit, :offset)",
        {"tok": [t[0] for t in toks], "alt": [t[1] for t in toks], "var_tok": [v[0] for v in variants],
         "var": [v[1] for v in variants], "crit": [c[0] for c in crits],
         "field": [c[1] for c in crits], "key": [c[2] for c in crits], "weight": [float(c[3]) for c in crits],
         "fields": name_fields, "exclude": sorted(scope.exclude), "objecting": sorted(scope.objecting_to),
         "systems": None if scope.source_systems is None else sorted(scope.source_systems),
         "limit": limit, "offset": offset})


def _terms_duckdb(wh: Warehouse, q: Query, name_fields: list[str], criteria: list, index: MemoryIndex | None = None
                  ) -> dict[int, dict[int, tuple[float, int]]]:
    """slot -> term_id -> (score, citizens): what each word (slot i) and criterion (slot words + n)
    may match. Constant lookups on sorted columns only (each reads the row groups its zone maps
    point at): the words' key ranges, their variants, the criteria's keys — or the same three
    lookups in a snapshot's ``index`` in memory (:mod:`warehouse.search_memory`)."""
    term, variant = qualified(CITIZEN_SEARCH_TERM), qualified(CITIZEN_SEARCH_VARIANT)
    words = len(q.words)
    found: dict[int, dict[int, tuple[float, int]]] = {}

    def keep(slot: int, term_id: int, s: float, n: int) -> None:
        old = found.setdefault(slot, {}).get(term_id)
        if old is None or s > old[0]:
            found[slot][term_id] = (s, n)

    if q.words:
        fields_sql, fparams = bind_list("nf", name_fields)
        params = dict(fparams)
        ranges = []
        for i, alts in enumerate(q.words):
            for j, alt in enumerate(alts):
                p = f"a{i}_{j}"
                params |= {f"{p}lo": alt, f"{p}hi": alt + "{"}
                # the exact key (one row per name field) then the commonest keys it begins
                ranges.append(f"(SELECT term_id, key, citizens FROM {term} WHERE key >= :{p}lo AND key < :{p}hi "
                              f"AND field IN ({fields_sql}) ORDER BY key = :{p}lo DESC, citizens DESC, term_id "
                              f"LIMIT {PREFIX_TERMS + len(NAME_FIELDS)})")
        # exact and prefix: ranges of the vocabulary, sorted by key (one scan each: an OR is not pruned)
        prefixes: dict[int, list[tuple[int, int]]] = {}
        for term_id, key, citizens in (
                wh.rows(" UNION ALL ".join(ranges), params) if index is None else
                index.ranges([a for alts in q.words for a in alts], name_fields, PREFIX_TERMS + len(NAME_FIELDS))):
            for i, alts in enumerate(q.words):
                if key in alts:
                    keep(i, term_id, _EXACT, citizens)
                elif any(key.startswith(a) for a in alts):
                    prefixes.setdefault(i, []).append((-citizens, term_id))
        for i, terms in prefixes.items():
            for minus, term_id in sorted(terms)[:PREFIX_TERMS * len(q.words[i])]:
                keep(i, term_id, _PREFIX, -minus)
        # one typo away: the words' variants, by equality
        of_word = {}
        for i, alts in enumerate(q.words):
            for a in alts:
                for v in word_variants(a):
                    of_word.setdefault(v, set()).add(i)
        if of_word:
            typos: dict[int, dict[int, int]] = {}
            for v, term_id, citizens in (wh.rows(
                    f"SELECT variant, term_id, citizens FROM {variant} WHERE variant = ANY(:v) "
                    f"AND field IN ({fields_sql})", {**fparams, "v": sorted(of_word)}) if index is None else
                    index.variants(sorted(of_word), name_fields)):
                for i in of_word[v]:
                    typos.setdefault(i, {})[term_id] = citizens
            for i, terms in typos.items():
                for term_id, citizens in sorted(terms.items(), key=lambda kv: (-kv[1], kv[0]))[:FUZZY_TERMS]:
                    keep(i, term_id, _TYPO, citizens)
    if criteria:
        wanted: dict[tuple[str, str], tuple[int, float]] = {}
        for n, alts in enumerate(criteria):
            for f, k, w in alts:  # 01/01: the date and its swap are one key, at the higher weight
                if (f, k) not in wanted or w > wanted[(f, k)][1]:
                    wanted[(f, k)] = (n, w)
        keys = sorted({k for _, k in wanted})
        for term_id, fld, key, citizens in (wh.rows(
                f"SELECT term_id, field, key, citizens FROM {term} WHERE key = ANY(:k)", {"k": keys})
                if index is None else index.terms_of_keys(keys)):
            if (fld, key) in wanted:
                n, w = wanted[(fld, key)]
                keep(words + n, term_id, w, citizens)
    return found


def _search_duckdb(wh: Warehouse, q: Query, name_fields: list[str], criteria: list, allowed: int | None,
                   exclude: frozenset[str], limit: int, offset: int) -> list[dict]:
    """The same search as the PostgreSQL function, in a few statements of constant lookups (see
    the module docstring): the terms; the driver's postings (the word, or the criteria, holding the
    fewest), best terms first and at most MAX_CANDIDATES; the other words' and criteria's postings
    for those citizens only; the page's rows. A snapshot reader does the same in memory
    (:mod:`warehouse.search_memory`): no statement at all."""
    posting, citizen = qualified(CITIZEN_SEARCH_POSTING), qualified(CITIZEN_SEARCH)
    words, crits = len(q.words), len(criteria)
    index = memory_index(wh)
    found = _terms_duckdb(wh, q, name_fields, criteria, index)
    if any(i not in found for i in range(words)) or (crits and not any(s >= words for s in found)):
        return []

    def group(slot: int) -> int:
        return slot if slot < words else -1

    volume: dict[int, int] = {}
    for slot, terms in found.items():
        volume[group(slot)] = volume.get(group(slot), 0) + sum(n for _, n in terms.values())
    driver = min(volume, key=lambda g: (volume[g], g))
    # the driver's terms, best first, until MAX_CANDIDATES postings are reached
    ranked = sorted(((s, n, term_id, slot) for slot, terms in found.items() if group(slot) == driver
                     for term_id, (s, n) in terms.items()), key=lambda r: (-r[0], r[1], r[2]))
    taken, reach = [], 0
    for r in ranked:
        if reach >= MAX_CANDIDATES:
            break
        taken.append(r)
        reach += r[1]
    if index is not None:
        return index.rank(found, words, crits, driver, taken, len(ranked), allowed, exclude, limit, offset,
                          MAX_CANDIDATES)
    scope_sql, scope_params = "", {}
    if allowed is not None:
        scope_sql = " AND (origin_mask & :allowed) <> 0 AND (citizen_mask & :allowed) <> 0"
        scope_params = {"allowed": allowed}
    rank = {}
    for k, (_, _, term_id, _) in enumerate(taken):
        rank.setdefault(term_id, k)
    rows = wh.rows(f"SELECT term_id, citizen_no FROM {posting} WHERE term_id = ANY(:d){scope_sql}",
                   {"d": sorted(rank), **scope_params})
    rows.sort(key=lambda r: (rank[r[0]], r[1]))
    capped = len(rows) > MAX_CANDIDATES or len(taken) < len(ranked)
    rows = rows[:MAX_CANDIDATES]
    matched: dict[int, dict[int, float]] = {}  # citizen_no -> slot -> best score
    slots_of: dict[int, list[tuple[int, float]]] = {}
    for slot, terms in found.items():
        for term_id, (s, _) in terms.items():
            slots_of.setdefault(term_id, []).append((slot, s))
    driver_terms = {r[2] for r in taken}
    for term_id, no in rows:
        for slot, s in slots_of[term_id]:
            if group(slot) == driver and term_id in driver_terms:
                m = matched.setdefault(no, {})
                m[slot] = max(m.get(slot, 0.0), s)
    others = sorted({term_id for slot, terms in found.items() if group(slot) != driver for term_id in terms})
    if matched and others:
        # the other words' and criteria's postings (sorted by term: zone maps prune), kept for the
        # candidates only
        more = wh.rows(f"SELECT term_id, citizen_no FROM {posting} WHERE term_id = ANY(:o) "
                       f"AND citizen_no = ANY(:c){scope_sql}", {"o": others, "c": sorted(matched), **scope_params})
        for term_id, no in more:
            m = matched[no]
            for slot, s in slots_of[term_id]:
                if group(slot) != driver:
                    m[slot] = max(m.get(slot, 0.0), s)
    excluded = set(_excluded_nos(wh, citizen, exclude))
    hits = []
    for no, m in matched.items():
        n_tok = sum(1 for slot in m if slot < words)
        n_crit = sum(1 for slot in m if slot >= words)
        if n_tok < words or (crits and not n_crit) or no in excluded:
            continue
        name_s = sum(s for slot, s in m.items() if slot < words)
        crit_s = sum(s for slot, s in m.items() if slot >= words)
        hits.append((-n_crit, -round(crit_s + name_s / max(words, 1), 4), no))
    hits.sort()
    total = len(hits)
    page = hits[offset:offset + limit]
    if not page:
        return []
    shown = {r["citizen_no"]: r for r in wh.dicts(
        f"SELECT citizen_no, citizen_id, given_names, birth_name, usage_name, birth_year, city, source_systems "
        f"FROM {citizen} WHERE citizen_no = ANY(:n)", {"n": [h[2] for h in page]})}
    return [{**shown[no], "criteria": -n_crit, "score": -score, "total": total, "capped": capped}
            for n_crit, score, no in page]


def _excluded_nos(wh: Warehouse, citizen: str, exclude: frozenset[str]) -> list[int]:
    if not exclude:
        return []
    out: list[int] = []
    ids = sorted(exclude)
    for start in range(0, len(ids), 500):
        sql, params = bind_list("e", ids[start:start + 500])
        out += [r[0] for r in wh.rows(f"SELECT citizen_no FROM {citizen} WHERE citizen_id IN ({sql})", params)]
    return out


# ---------------------------------------------------------------------------------------------- erasure
def forget(wh: Warehouse, citizen_id: str, delete: Callable[[str, str, str, dict[str, Any]], int] | None = None
           ) -> int:
    """Remove one citizen from the index at once (GDPR erasure), not at the next publication: their
    row, their postings, and the terms (with their variants) no other citizen holds, so none of
    their keys stays in the warehouse. ``delete(schema, table, where, params)`` does the deleting
    (the erasure passes its own, which keeps a proof per table); returns the rows deleted."""
    if not wh.table_exists(CITIZEN_SEARCH.schema, CITIZEN_SEARCH.name):
        return 0

    def plain(schema: str, table: str, where: str, params: dict[str, Any]) -> int:
        n = int(wh.scalar(f'SELECT count(*) FROM "{schema}"."{table}" WHERE {where}', params) or 0)
        wh.execute(f'DELETE FROM "{schema}"."{table}" WHERE {where}', params)
        return n

    delete = delete or plain
    no = wh.scalar(f"SELECT citizen_no FROM {qualified(CITIZEN_SEARCH)} WHERE citizen_id = :c", {"c": citizen_id})
    if no is None:
        return 0
    terms = [r[0] for r in wh.rows(f"SELECT DISTINCT term_id FROM {qualified(CITIZEN_SEARCH_POSTING)} "
                                   "WHERE citizen_no = :n", {"n": no})]
    n = delete(CITIZEN_SEARCH_POSTING.schema, CITIZEN_SEARCH_POSTING.name, "citizen_no = :n", {"n": no})
    n += delete(CITIZEN_SEARCH.schema, CITIZEN_SEARCH.name, "citizen_no = :n", {"n": no})
    for start in range(0, len(terms), 400):
        sql, params = bind_list("t", terms[start:start + 400])
        orphans = [r[0] for r in wh.rows(
            f"SELECT t.term_id FROM {qualified(CITIZEN_SEARCH_TERM)} t WHERE t.term_id IN ({sql}) AND NOT EXISTS "
            f"(SELECT 1 FROM {qualified(CITIZEN_SEARCH_POSTING)} p WHERE p.term_id = t.term_id)", params)]
        if not orphans:
            continue
        osql, oparams = bind_list("o", orphans)
        for table in (CITIZEN_SEARCH_VARIANT, CITIZEN_SEARCH_TERM):
            if wh.table_exists(table.schema, table.name):
                n += delete(table.schema, table.name, f"term_id IN ({osql})", oparams)
    log.info("search index: one citizen removed (%d rows)", n)
    return n
