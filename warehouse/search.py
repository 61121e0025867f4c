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
- ``golden.citizen_search_trigram`` (DuckDB only) — the name terms' trigrams, as integers.

Names are folded in Python at build and query time alike (:func:`name_keys`,
:func:`parse`): lower case, accents and ligatures off, hyphens and spaces split words, an
apostrophe joins (``FLOC'H`` → ``floch``) and also splits an elided particle (``N'DIAYE`` →
``ndiaye`` and ``diaye``), a name's words are also kept joined (``LE FLOC'H`` → ``lefloch``)
and without their leading particles, and ``st`` / ``ste`` starting a name of several words is
``saint`` / ``sainte``. Prénom and nom match in any order: every name word typed must match
one key of the citizen, exactly, as a prefix, or by trigram similarity (≥ :data:`SIMILARITY`,
as ``pg_trgm`` computes it: one typo in a 6-letter name scores 0.4). Ranking: criteria matched
(birth date — a day/month swap counts half —, e-mail, phone, postcode) first, then the name
match (exact > prefix > fuzzy), then name order. With criteria and names both typed, a citizen
must match every name word and at least one criterion.

Engines:

- **DuckDB**: the index is read with constant lookups only, so the scans prune row groups on
  sorted integer columns (terms by key, postings by ``term_id``, trigrams by code): a few
  milliseconds per query; a hash join against the postings would scan them all.
- **PostgreSQL**: ``pg_trgm`` (``CREATE EXTENSION IF NOT EXISTS``, in ``public`` when not there
  yet) gives a GIN trigram index on the name terms; a B-tree on ``key COLLATE "C"`` serves
  exact and prefix lookups and one on ``term_id`` (covering the posting) the postings. Folding
  is done in Python at build time, so no ``unaccent`` wrapper is needed: the index is on
  pre-folded text. The query is one SQL function, ``golden.search_citizens(...)``, declared
  ``SECURITY DEFINER`` with ``search_path`` fixed to ``pg_catalog, pg_temp`` (every object
  schema-qualified): under row security, non-leakproof operators (``%``, ``LIKE``) cannot use
  their indexes, so the desk's role is granted ``EXECUTE`` on this function alone
  (``GRANT EXECUTE ON FUNCTION golden.search_citizens(int[], text[], int[], text[], text[],
  float8[], text[], bigint, text[], int, int) TO <desk role>``; revoke it from ``PUBLIC``),
  not ``SELECT`` on the index tables. The function applies the scope it is given (name fields,
  silo mask, citizens left out): the caller — the desk, after its need-to-know check — is
  trusted for it, as for the arguments of any reviewed definer function.

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

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pyarrow as pa

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
    CITIZEN_SEARCH_TRIGRAM,
    OBJECTION,
    PERSON_RECORD,
    arrow_schema,
)
from warehouse.engine import Warehouse, bind_list, qualified

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 200
MAX_QUERY_TOKENS = 12
SIMILARITY = 0.3  # pg_trgm's default threshold: one typo in a 6-letter name scores 0.4
PREFIX_TERMS = 50  # prefix expansions kept per word (the most common keys)
FUZZY_TERMS = 20  # fuzzy expansions kept per word (the most similar keys)
MAX_NAME_WORDS = 8  # words of one name value indexed (a longer value is noise)

NAME_FIELDS = ("given_names", "birth_name", "usage_name")
CRITERIA_FIELDS = ("birth_date", "email", "phone", "postcode")
# French names of the field categories, for the messages
FIELD_LABELS = {"name": "nom ou prénom", "birth_date": "date de naissance", "email": "adresse électronique",
                "phone": "numéro de téléphone", "postcode": "code postal"}

_EXACT, _PREFIX, _FUZZY = 1.0, 0.75, 0.5  # a name word's score: exact > prefix > fuzzy (x similarity)
_SWAPPED_DATE = 0.5  # a birth date typed with day and month swapped
_SWAPPED_LETTERS = 0.4  # a name word typed with two adjacent letters swapped (as a fuzzy match of 0.8)
_PARTICLES = frozenset(p.lower() for p in NAME_PARTICLES)
_SAINTS = {"st": "saint", "ste": "sainte"}
_APOSTROPHES = "'’`´ʼ‘"
_LIGATURES = {"œ": "oe", "æ": "ae", "ß": "ss", "ø": "o", "đ": "d", "ł": "l", "ı": "i"}
_TRIGRAM_ALPHABET = " abcdefghijklmnopqrstuvwxyz0123456789"
_TRIGRAM_CODE = {c: i for i, c in enumerate(_TRIGRAM_ALPHABET)}

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
    every silo) and ``exclude`` (citizen ids left out, e.g. :func:`objections_for` the read's
    processing)."""

    fields: frozenset[str]
    source_systems: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()


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
    total: int  # every citizen found, not only this page
    truncated: bool  # more results than this page shows (after offset + limit)


@dataclass
class Query:
    """A parsed query: name words (each a tuple of alternative folded forms) and criteria (each
    a tuple of (field, key, weight) alternatives)."""

    words: list[tuple[str, ...]] = field(default_factory=list)
    criteria: list[tuple[tuple[str, str, float], ...]] = field(default_factory=list)
    # per word: its forms with two adjacent letters swapped (mraie -> marie), matched exactly: a
    # transposition shares too few trigrams with the word meant
    swaps: list[tuple[str, ...]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- folding
def fold(text: str) -> str:
    """Lower case, ligatures expanded, accents removed; apostrophes kept as ``'``, any other
    character but letters and digits as a space."""
    text = text.lower()
    for lig, plain in _LIGATURES.items():
        text = text.replace(lig, plain)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = "".join("'" if c in _APOSTROPHES else c for c in text)
    return re.sub(r"[^a-z0-9']+", " ", text).strip()


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


def trigrams(key: str) -> list[int]:
    """The distinct trigrams of a folded key, as pg_trgm pads a word ("  key "), coded as integers."""
    padded = f"  {key} "
    return sorted({_TRIGRAM_CODE[padded[i]] * 1369 + _TRIGRAM_CODE[padded[i + 1]] * 37 + _TRIGRAM_CODE[padded[i + 2]]
                   for i in range(len(padded) - 2)})


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
    q.swaps = [_swaps(alts[0]) for alts in q.words]
    if not q.words and not q.criteria:
        raise QueryError("La recherche est vide : saisissez un nom, une date de naissance, une adresse "
                         "électronique, un téléphone ou un code postal.")
    return q


def _swaps(word: str) -> tuple[str, ...]:
    if len(word) < 4:
        return ()
    out = {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1) if word[i] != word[i + 1]}
    return tuple(sorted(out - {word}))


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
    ids = sorted(set(processing_ids))
    if not ids or not wh.table_exists(OBJECTION.schema, OBJECTION.name):
        return frozenset()
    sql, params = bind_list("p", ids)
    return frozenset(r[0] for r in wh.rows(
        f"SELECT citizen_id FROM {qualified(OBJECTION)} WHERE revoked_at IS NULL AND processing_id IN ({sql})",
        params))


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


def _trigram_table(keys: list[str]) -> pa.Table:
    out_key, out_tri, out_n = [], [], []
    for k in keys:
        tri = trigrams(k)
        out_key.extend([k] * len(tri))
        out_tri.extend(tri)
        out_n.extend([len(tri)] * len(tri))
    return pa.table({"key": pa.array(out_key, pa.string()), "trigram": pa.array(out_tri, pa.int32()),
                     "trigrams": pa.array(out_n, pa.int32())})


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
        name_keys_ = [r[0] for r in con.execute(
            "SELECT DISTINCT key FROM t WHERE field IN ('given_names', 'birth_name', 'usage_name')").fetchall()]
        con.register("tri", _trigram_table(name_keys_))
        out = {
            "system": system_table,
            "citizen": con.sql("""
                SELECT citizen_no, citizen_id, given_names, birth_name, usage_name,
                       year(birth_date)::INTEGER AS birth_year, city, source_systems, systems_mask
                  FROM c ORDER BY citizen_no""").to_arrow_table(),
            "term": con.sql("""
                SELECT t.term_id, t.field, t.key, coalesce(n.trigrams, 0)::INTEGER AS trigrams, t.citizens
                  FROM t LEFT JOIN (SELECT DISTINCT key, trigrams FROM tri) n
                    ON n.key = t.key AND t.field IN ('given_names', 'birth_name', 'usage_name')
                 ORDER BY t.term_id""").to_arrow_table(),
            "posting": con.sql("""
                SELECT t.term_id, p.citizen_no, p.origin_mask, p.citizen_mask
                  FROM p JOIN t ON t.field = p.field AND t.key = p.key ORDER BY t.term_id, p.citizen_no""")
            .to_arrow_table(),
            "trigram": con.sql("""
                SELECT tri.trigram, t.term_id, tri.trigrams, t.field
                  FROM tri JOIN t ON t.key = tri.key AND t.field IN ('given_names', 'birth_name', 'usage_name')
                 ORDER BY tri.trigram, t.term_id""").to_arrow_table(),
        }
    finally:
        con.close()
    return out


def build_index(wh: Warehouse) -> int:
    """(Re)build the search index from the published release; returns the citizens indexed.

    Idempotent: the tables are replaced as a whole, in one transaction (joined when the caller
    holds one, e.g. the publication's). Without a published ``golden.citizen`` nothing is done.
    """
    if not wh.table_exists(CITIZEN.schema, CITIZEN.name):
        return 0
    citizens = wh.arrow(_CITIZEN_SQL.format(citizen=qualified(CITIZEN)))
    full = arrow_schema(CITIZEN)
    citizens = _typed(citizens, pa.schema([full.field(c) for c in citizens.column_names]))
    tables = compute_index(citizens, _inputs(wh, citizens))
    postgres = wh.kind == "postgres"
    targets = [(CITIZEN_SEARCH_SYSTEM, "system"), (CITIZEN_SEARCH, "citizen"), (CITIZEN_SEARCH_TERM, "term"),
               (CITIZEN_SEARCH_POSTING, "posting")]
    if not postgres:
        targets.append((CITIZEN_SEARCH_TRIGRAM, "trigram"))
    with wh.transaction():
        for table, name in targets:
            if postgres:
                # TRUNCATE keeps the grants and indexes; transactional on PostgreSQL
                wh.ensure_table(table)
                wh.execute(f"TRUNCATE {qualified(table)}")
            else:
                # a fresh table: its row groups hold the new rows in sort order only
                wh.execute(f"DROP TABLE IF EXISTS {qualified(table)}")
                wh.ensure_table(table)
            wh.write(table, tables[name])
        if postgres:
            _postgres_objects(wh)
    log.info("search index built: %d citizens, %d terms, %d postings", tables["citizen"].num_rows,
             tables["term"].num_rows, tables["posting"].num_rows)
    return tables["citizen"].num_rows


# ---------------------------------------------------------------------------------------------- PostgreSQL
_NAME_FIELDS_SQL = "('given_names', 'birth_name', 'usage_name')"
_PG_INDEXES = (
    ("citizen_search_term_key", "{term} ((key COLLATE \"C\"), field)"),
    ("citizen_search_term_trgm", "{term} USING gin (key {trgm}.gin_trgm_ops) WHERE field IN " + _NAME_FIELDS_SQL),
    ("citizen_search_posting_term", "{posting} (term_id) INCLUDE (citizen_no, origin_mask, citizen_mask)"),
    ("citizen_search_citizen_id", "{citizen} (citizen_id)"),
)
SEARCH_FUNCTION = "golden.search_citizens"
SEARCH_FUNCTION_ARGS = ("p_tok int[], p_alt text[], p_swap_tok int[], p_swap text[], p_crit int[], p_field text[], "
                        "p_key text[], p_weight float8[], p_name_fields text[], p_allowed bigint, p_exclude text[], "
                        "p_limit int, p_offset int")


def search_function_sql(trgm_schema: str) -> str:
    """``CREATE OR REPLACE FUNCTION golden.search_citizens(...)``: the whole PostgreSQL search as
    one reviewed SECURITY DEFINER function (every object schema-qualified; ``trgm_schema`` is
    where pg_trgm lives). Arguments: the name words' alternatives (``p_tok`` word number,
    ``p_alt`` folded form), their letter swaps (matched exactly), the criteria's alternatives
    (number, field, key, weight), the name fields searched, the silo mask (null: every silo),
    citizen ids left out, limit, offset.
    Returns one row per citizen of the page, ``total`` (every citizen found) on each."""
    s = _ident_sql(trgm_schema)
    term, posting, citizen = (qualified(CITIZEN_SEARCH_TERM), qualified(CITIZEN_SEARCH_POSTING),
                              qualified(CITIZEN_SEARCH))
    return f"""
CREATE OR REPLACE FUNCTION {SEARCH_FUNCTION}({SEARCH_FUNCTION_ARGS})
RETURNS TABLE (citizen_id text, score float8, criteria int, given_names text, birth_name text, usage_name text,
               birth_year int, city text, source_systems text, systems_mask bigint, total bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET pg_trgm.similarity_threshold = {SIMILARITY}
AS $fn$
#variable_conflict use_column
BEGIN
-- PL/pgSQL plans the statement with the call's arguments (a custom plan: the few words typed make
-- nested loops of index scans); a LANGUAGE sql function or a generic plan guesses their number
-- and chose scans and hash joins costing 40-80 ms at 1M records instead of 1-5 ms
RETURN QUERY
WITH q AS (SELECT * FROM unnest(p_tok, p_alt) AS q(tok, alt)),
crit AS (SELECT * FROM unnest(p_crit, p_field, p_key, p_weight) AS c(crit, field, key, w)),
-- every lookup is a LATERAL subquery with OFFSET 0, so that it stays a nested loop over the few
-- words typed, each an index scan (the planner cannot know how few rows unnest() gives)
words AS (
    SELECT q.tok, x.term_id, {_EXACT}::float8 AS s
      FROM q CROSS JOIN LATERAL (
           SELECT t.term_id FROM {term} t
            WHERE t.key COLLATE "C" = q.alt AND t.field = ANY(p_name_fields) OFFSET 0) x
    UNION ALL
    SELECT q.tok, x.term_id, {_PREFIX}::float8
      FROM q CROSS JOIN LATERAL (
           SELECT t.term_id FROM {term} t
            WHERE t.key COLLATE "C" > q.alt AND t.key COLLATE "C" < q.alt || '{{' AND t.field = ANY(p_name_fields)
            ORDER BY t.citizens DESC, t.term_id LIMIT {PREFIX_TERMS}) x
    UNION ALL
    SELECT w.tok, x.term_id, {_SWAPPED_LETTERS}::float8
      FROM unnest(p_swap_tok, p_swap) AS w(tok, alt) CROSS JOIN LATERAL (
           SELECT t.term_id FROM {term} t
            WHERE t.key COLLATE "C" = w.alt AND t.field = ANY(p_name_fields) OFFSET 0) x
    UNION ALL
    SELECT q.tok, x.term_id, {_FUZZY} * x.sim
      FROM q CROSS JOIN LATERAL (
           SELECT t.term_id, {s}.similarity(t.key, q.alt)::float8 AS sim FROM {term} t
            WHERE length(q.alt) >= 3 AND t.key OPERATOR({s}.%) q.alt AND t.field IN {_NAME_FIELDS_SQL}
              AND t.field = ANY(p_name_fields)
            ORDER BY sim DESC, t.term_id LIMIT {FUZZY_TERMS}) x
),
crits AS (
    SELECT c.crit, x.term_id, c.w AS s
      FROM crit c CROSS JOIN LATERAL (
           SELECT t.term_id FROM {term} t WHERE t.key COLLATE "C" = c.key AND t.field = c.field OFFSET 0) x
),
terms AS (
    SELECT term_id, tok, -1 AS crit, max(s) AS s FROM words GROUP BY term_id, tok
    UNION ALL
    SELECT term_id, -1, crit, max(s) FROM crits GROUP BY term_id, crit
),
matched AS (
    SELECT x.citizen_no, t.tok, t.crit, max(t.s) AS s
      FROM terms t CROSS JOIN LATERAL (
           SELECT p.citizen_no FROM {posting} p
            WHERE p.term_id = t.term_id
              AND (p_allowed IS NULL OR ((p.origin_mask & p_allowed) <> 0 AND (p.citizen_mask & p_allowed) <> 0))
           OFFSET 0) x
     GROUP BY x.citizen_no, t.tok, t.crit
),
per AS (
    SELECT m.citizen_no, count(*) FILTER (WHERE m.tok >= 0) AS n_tok, count(*) FILTER (WHERE m.crit >= 0) AS n_crit,
           coalesce(sum(m.s) FILTER (WHERE m.tok >= 0), 0) AS name_s, coalesce(sum(m.s) FILTER (WHERE m.crit >= 0), 0)
           AS crit_s
      FROM matched m GROUP BY m.citizen_no
),
found AS (
    SELECT per.*, count(*) OVER () AS total,
           round((per.crit_s + per.name_s / greatest((SELECT count(DISTINCT tok) FROM q), 1))::numeric, 4)::float8
           AS score
      FROM per
     WHERE per.n_tok = (SELECT count(DISTINCT tok) FROM q)
       AND (per.n_crit >= 1 OR NOT EXISTS (SELECT 1 FROM crit))
       AND per.citizen_no NOT IN (SELECT e.citizen_no FROM {citizen} e WHERE e.citizen_id = ANY(p_exclude))
     ORDER BY per.n_crit DESC, score DESC, per.citizen_no
     LIMIT p_limit OFFSET p_offset
)
SELECT c.citizen_id, f.score, f.n_crit::int, c.given_names, c.birth_name, c.usage_name, c.birth_year, c.city,
       c.source_systems, c.systems_mask, f.total
  FROM found f JOIN {citizen} c ON c.citizen_no = f.citizen_no
 ORDER BY f.n_crit DESC, f.score DESC, f.citizen_no;
END
$fn$"""


def _ident_sql(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def _postgres_objects(wh: Warehouse) -> None:
    """pg_trgm, the indexes and the search function, each created when missing (the function is
    replaced only by its owner: a migration may own it), then fresh statistics."""
    schema = _trgm_schema(wh)
    if schema is None:
        wh.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        schema = _trgm_schema(wh) or "public"
    names = {"term": qualified(CITIZEN_SEARCH_TERM), "posting": qualified(CITIZEN_SEARCH_POSTING),
             "citizen": qualified(CITIZEN_SEARCH), "trgm": _ident_sql(schema)}
    have = {r[0] for r in wh.rows("SELECT indexname FROM pg_indexes WHERE schemaname = :s",
                                  {"s": CITIZEN_SEARCH.schema})}
    for name, spec in _PG_INDEXES:
        if name not in have:
            wh.execute(f"CREATE INDEX {name} ON {spec.format(**names)}")
    owner = wh.scalar("SELECT pg_get_userbyid(p.proowner) = current_user FROM pg_proc p "
                      "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'golden' "
                      "AND p.proname = 'search_citizens'")
    if owner is None or owner:
        wh.execute(search_function_sql(schema))
    for table in (CITIZEN_SEARCH, CITIZEN_SEARCH_TERM, CITIZEN_SEARCH_POSTING):
        wh.execute(f"ANALYZE {qualified(table)}")


def _trgm_schema(wh: Warehouse) -> str | None:
    return wh.scalar("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                     "WHERE e.extname = 'pg_trgm'")


# ---------------------------------------------------------------------------------------------- search
def search(wh: Warehouse, text: str, *, scope: Scope, limit: int = 20, offset: int = 0) -> Page:
    """Citizens matching what an agent typed, best first (see the module docstring), within ``scope``.

    ``Page.total`` counts every citizen found; ``truncated`` says more follow this page.
    :class:`QueryError` (French message) for an over-long, empty or out-of-scope query, or a
    limit / offset out of bounds. Writes no access-log row.
    """
    if not 1 <= limit <= 100 or not 0 <= offset <= 10_000:
        raise QueryError("Pagination invalide : 1 à 100 résultats par page, à partir du rang 0 à 10 000.")
    q = parse(text)
    systems = _bits(wh)
    if systems is None:
        return Page([], 0, False)
    allowed = _allowed_mask(systems, scope.source_systems)
    if _CITIZEN_ID.match(re.sub(r"\s+", "", text).upper()):
        return _by_id(wh, text, scope, allowed, offset)
    name_fields, criteria = _check_scope(q, scope)
    run = _search_postgres if wh.kind == "postgres" else _search_duckdb
    rows = run(wh, q, name_fields, criteria, allowed, scope.exclude, limit, offset)
    if rows:
        total = int(rows[0]["total"])
    elif offset:  # the page asked for lies past the last result
        first = run(wh, q, name_fields, criteria, allowed, scope.exclude, 1, 0)
        total = int(first[0]["total"]) if first else 0
    else:
        total = 0
    hits = [_hit(r, scope) for r in rows]
    return Page(hits, total, offset + len(hits) < total)


def _by_id(wh: Warehouse, text: str, scope: Scope, allowed: int | None, offset: int) -> Page:
    """A citizen id typed in the search box: that citizen (through the aliases), if in scope."""
    cid = resolve_id(wh, text)
    if cid is None or cid in scope.exclude:
        return Page([], 0, False)
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


def _bits(wh: Warehouse) -> dict[str, int] | None:
    """The silos' bits in the index; None when no index was built (one query on the fast path)."""
    try:
        return dict(wh.rows(f"SELECT source_system, bit FROM {qualified(CITIZEN_SEARCH_SYSTEM)}"))
    except Exception:
        if wh.table_exists(CITIZEN_SEARCH_SYSTEM.schema, CITIZEN_SEARCH_SYSTEM.name):
            raise
        return None


def _allowed_mask(bits: dict[str, int], systems: frozenset[str] | None) -> int | None:
    """Bit 0 (the golden record's keys) and the bits of the silos in scope; None: every silo."""
    if systems is None:
        return None
    mask = 1
    for s in systems:
        if s in bits:
            mask |= 1 << bits[s]
    return mask


def _search_postgres(wh: Warehouse, q: Query, name_fields: list[str], criteria: list, allowed: int | None,
                     exclude: frozenset[str], limit: int, offset: int) -> list[dict]:
    toks = [(i, alt) for i, alts in enumerate(q.words) for alt in alts]
    swaps = [(i, alt) for i, alts in enumerate(q.swaps) for alt in alts]
    crits = [(i, f, k, w) for i, alts in enumerate(criteria) for f, k, w in alts]
    return wh.dicts(
        f"SELECT * FROM {SEARCH_FUNCTION}(:tok, :alt, CAST(:swap_tok AS int[]), CAST(:swap AS text[]), "
        "CAST(:crit AS int[]), CAST(:field AS text[]), CAST(:key AS text[]), CAST(:weight AS float8[]), "
        "CAST(:fields AS text[]), CAST(:allowed AS bigint), CAST(:exclude AS text[]), :limit, :offset)",
        {"tok": [t[0] for t in toks], "alt": [t[1] for t in toks], "swap_tok": [t[0] for t in swaps],
         "swap": [t[1] for t in swaps], "crit": [c[0] for c in crits],
         "field": [c[1] for c in crits], "key": [c[2] for c in crits], "weight": [float(c[3]) for c in crits],
         "fields": name_fields, "allowed": allowed, "exclude": sorted(exclude), "limit": limit, "offset": offset})


def _search_duckdb(wh: Warehouse, q: Query, name_fields: list[str], criteria: list, allowed: int | None,
                   exclude: frozenset[str], limit: int, offset: int) -> list[dict]:
    """The same search as the PostgreSQL function, in three statements of constant lookups (see
    the module docstring: each scan prunes row groups of a sorted column): the terms, the
    citizens ranked, the page's rows."""
    term, posting, trigram, citizen = (qualified(CITIZEN_SEARCH_TERM), qualified(CITIZEN_SEARCH_POSTING),
                                       qualified(CITIZEN_SEARCH_TRIGRAM), qualified(CITIZEN_SEARCH))
    fields_sql, fparams = bind_list("nf", name_fields)
    params = dict(fparams) if q.words else {}
    parts = []
    for i, alts in enumerate(q.words):
        for j, alt in enumerate(alts):
            p = f"a{i}_{j}"
            params |= {f"{p}lo": alt, f"{p}hi": alt + "{", f"{p}i": i}
            # exact and prefix: one range of the vocabulary, sorted by key
            parts.append(f"SELECT 'w' AS kind, :{p}i AS n, term_id, key, citizens, 0.0 AS sim FROM {term} "
                         f"WHERE key >= :{p}lo AND key < :{p}hi AND field IN ({fields_sql})")
            if len(alt) >= 3:
                codes = trigrams(alt)
                codes_sql, cparams = bind_list(f"{p}g", codes)
                params |= {**cparams, f"{p}nq": len(codes)}
                parts.append(f"""(SELECT 'f', :{p}i, term_id, NULL, NULL,
                                   count(*) / (:{p}nq + any_value(trigrams) - count(*)) AS sim
                              FROM {trigram} WHERE trigram IN ({codes_sql}) AND field IN ({fields_sql})
                             GROUP BY term_id HAVING sim >= {SIMILARITY} ORDER BY sim DESC, term_id
                             LIMIT {FUZZY_TERMS})""")
    for i, alts in enumerate(q.swaps):
        if alts:
            swaps_sql, sparams = bind_list(f"s{i}_", alts)
            params |= {**sparams, f"s{i}i": i}
            parts.append(f"SELECT 's', :s{i}i, term_id, NULL, NULL, NULL FROM {term} "
                         f"WHERE key IN ({swaps_sql}) AND field IN ({fields_sql})")
    for i, alts in enumerate(criteria):
        for j, (f, k, _) in enumerate(alts):
            p = f"c{i}_{j}"
            params |= {f"{p}k": k, f"{p}f": f, f"{p}i": i * 100 + j}
            parts.append(f"SELECT 'c', :{p}i, term_id, NULL, NULL, NULL FROM {term} "
                         f"WHERE key = :{p}k AND field = :{p}f")
    scored: dict[tuple[int, int, int], float] = {}  # (term_id, word or -1, criterion or -1) -> score

    def keep(term_id: int, tok: int, crit: int, s: float) -> None:
        scored[(term_id, tok, crit)] = max(scored.get((term_id, tok, crit), 0.0), s)

    prefixes: dict[int, list[tuple[int, int]]] = {}
    alts_of = {i: set(alts) for i, alts in enumerate(q.words)}
    for kind, n, term_id, key, citizens, sim in wh.rows(" UNION ALL ".join(parts), params):
        if kind == "w" and key in alts_of[n]:
            keep(term_id, n, -1, _EXACT)
        elif kind == "w":
            prefixes.setdefault(n, []).append((-citizens, term_id))
        elif kind == "f":
            keep(term_id, n, -1, _FUZZY * float(sim))
        elif kind == "s":
            keep(term_id, n, -1, _SWAPPED_LETTERS)
        else:
            keep(term_id, -1, n // 100, criteria[n // 100][n % 100][2])
    for n, found in prefixes.items():
        for _, term_id in sorted(found)[:PREFIX_TERMS * len(q.words[n])]:
            keep(term_id, n, -1, _PREFIX)
    if not scored:
        return []
    values = ", ".join(f"(:t{n}, :w{n}, :c{n}, :s{n})" for n in range(len(scored)))
    params = {}
    for n, ((term_id, tok, crit), s) in enumerate(scored.items()):
        params |= {f"t{n}": term_id, f"w{n}": tok, f"c{n}": crit, f"s{n}": s}
    ids_sql, id_params = bind_list("id", sorted({k[0] for k in scored}))
    scope_sql = ""
    if allowed is not None:
        scope_sql = "AND (p.origin_mask & :allowed) <> 0 AND (p.citizen_mask & :allowed) <> 0"
        params["allowed"] = allowed
    excluded = _excluded_nos(wh, citizen, exclude)
    excl_sql, excl_params = bind_list("x", excluded)
    found = wh.rows(f"""
        WITH q(term_id, tok, crit, s) AS (VALUES {values}),
        matched AS (
            SELECT p.citizen_no, q.tok, q.crit, max(q.s) AS s
              FROM {posting} p JOIN q ON q.term_id = p.term_id
             WHERE p.term_id IN ({ids_sql}) {scope_sql}
             GROUP BY p.citizen_no, q.tok, q.crit),
        per AS (
            SELECT citizen_no, count(*) FILTER (WHERE tok >= 0) AS n_tok, count(*) FILTER (WHERE crit >= 0) AS n_crit,
                   coalesce(sum(s) FILTER (WHERE tok >= 0), 0) AS name_s,
                   coalesce(sum(s) FILTER (WHERE crit >= 0), 0) AS crit_s
              FROM matched GROUP BY citizen_no)
        SELECT citizen_no, n_crit, round(crit_s + name_s / greatest(:ntok, 1), 4) AS score, count(*) OVER () AS total
          FROM per
         WHERE n_tok = :ntok AND (n_crit >= 1 OR :ncrit = 0)
               {f"AND citizen_no NOT IN ({excl_sql})" if excluded else ""}
         ORDER BY n_crit DESC, score DESC, citizen_no
         LIMIT :limit OFFSET :offset""",
        {**params, **id_params, **excl_params, "ntok": len(q.words), "ncrit": len(criteria), "limit": limit,
         "offset": offset})
    if not found:
        return []
    nos_sql, nos_params = bind_list("n", [r[0] for r in found])
    shown = {r["citizen_no"]: r for r in wh.dicts(
        f"SELECT citizen_no, citizen_id, given_names, birth_name, usage_name, birth_year, city, source_systems "
        f"FROM {citizen} WHERE citizen_no IN ({nos_sql})", nos_params)}
    return [{**shown[no], "criteria": n_crit, "score": score, "total": total} for no, n_crit, score, total in found]


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
    row, their postings, and the terms (with their trigrams) no other citizen holds, so none of
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
        for table in (CITIZEN_SEARCH_TRIGRAM, CITIZEN_SEARCH_TERM):
            if wh.table_exists(table.schema, table.name):
                n += delete(table.schema, table.name, f"term_id IN ({osql})", oparams)
    log.info("search index: one citizen removed (%d rows)", n)
    return n
