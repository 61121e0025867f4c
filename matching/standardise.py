"""Locale-aware identity standardisation: person records in, comparison columns added.

All the work happens in one DuckDB SQL statement over the Arrow table (vectorised; no Python
loop per row). Placeholder values (``01/01/1900``, ``INCONNU``, a CCAS domiciliation address, a
generic mailbox, ...) become null so that they never count as agreement; the list is data
(``placeholders.json``) that a data engineer can extend. Values shared by implausibly many
people are found in the data itself (:func:`matching.placeholders.null_implausible_values`).

Locales (:mod:`matching.locale`). Every row is standardised under FR, BE or NEUTRAL rules: the
row's own ``country`` when it names one, else its source's locale (``locales`` setting, else
``default_locale``, else detected from the source's data). FR and BE are the French / Belgian rules
below (they differ in postcode and national phone forms); NEUTRAL applies no national assumption:
no abbreviation expansion (``st`` stays ST, ``dr`` DR), no postcode padding (postcodes kept as
letters and digits), phones as digits (E.164 only when written with ``+`` or ``00``), and only the
placeholders that are placeholders anywhere (``placeholders.json``, key ``neutral``). Names are
upper case without accents in every locale. The locale chosen per source is in the output's schema
metadata (:func:`standardise_report`) and per row in ``locale_std``.

Columns added (all nullable):

==================  =========================================================================
first_name_std      first prénom, upper, no accents, compound kept and written without spaces
first_name_key      first part of the first prénom (JEAN for Jean-Pierre): a blocking key that
                    a compound prénom written in full by one silo and cut by another share
given_names_std     all prénoms, upper, no accents, separators unified to one space
birth_name_std      nom de naissance ("née X" written inside a name field is split out)
usage_name_std      nom d'usage ("épouse Y" written inside a name field is split out)
surname_std         the name the person goes by: usage name, else birth name (compact key)
surnames_std        list of compact keys of birth and usage names, with and without particles
sex_std             F or M
birth_date_std      the birth date when day, month and year are all known and not presumed
birth_year          year of birth (null for placeholder dates)
birth_month         month (null when unknown or presumed, e.g. YYYY-01-01)
birth_day           day (null when unknown or presumed)
email_std           lower-cased, trimmed, valid e-mail that is not a generic mailbox
phone_std           E.164 (+33…, +32…); NEUTRAL: digits, or E.164 when written +CC / 00CC
address_std         upper, no accents, abbreviations expanded (bd → BOULEVARD), bis/ter unified
                    (NEUTRAL: upper, no accents, punctuation to spaces; nothing expanded)
postcode_std        5-digit French / 4-digit Belgian postcode (NEUTRAL: letters and digits)
==================  =========================================================================

Added columns (not in :data:`STANDARD_COLUMNS`, which the model reads):

==================  =========================================================================
locale_std          FR, BE or NEUTRAL: the rules this row was standardised under
house_number_std    the house number of the address line with its suffix unified: 12, 12B
                    (12 bis, 12B, 12 b), 12C (12 ter), 12D (12 quater); box / flat / floor
                    numbers left out (bte 3, bus 3, b 3, apt 5, 3e étage); the leading number,
                    else the last one (Rue de la Loi 16)
street_key          the street name without its number, its street-type word in French, Dutch
                    or English (rue, avenue, chaussée, straat, laan, steenweg, street, road, ...,
                    as a leading word, a trailing word or a Dutch suffix: Wetstraat → WET,
                    Waversesteenweg → WAVER) and its articles (de, la, du, van, het, the, ...),
                    written without spaces: Avenue Louise → LOUISE, Louizalaan → LOUIZA
street_skeleton     a spelling-insensitive form of street_key: a final S of the name dropped
                    (plural, Dutch genitive), then its consonants, voiced and unvoiced ones
                    merged (D/T, V/W/F, B/P, G/K/C/Q, Z/S), doubles collapsed: LOUISE / LOUIZA
                    → LS, WAVRE / WAVER → FR, LOUVAIN / LEUVEN → LFN, GAND / GENT → KNT; null
                    with fewer than two distinct consonants (LOI)
==================  =========================================================================

Brussels streets written in French in one file and in Dutch in another share street_skeleton when
one name is a spelling of the other (Louise / Louiza, Wavre / Waver, Tervueren / Tervuren,
Flagey, Anspach); a translated name (Rue de la Loi / Wetstraat, Rue Neuve / Nieuwstraat, Rue
Haute / Hoogstraat) shares nothing but the postcode and the house number, so compare addresses by
levels: same postcode + street_key + house_number_std; same postcode + street_skeleton +
house_number_std; same postcode + street_key or street_skeleton; same postcode + house_number_std
(a translated street, or another street at the same number); same postcode. Without a street
dictionary, two different streets of one postcode may share a skeleton (short names: LS is Louise,
Lys or Alice), which is why the skeleton level should require the house number too.

Limits of the address keys: a line with no house number but a number in the street name (Rue du
8 Mai 1945) gets that number; an Australian unit / number (4/12 Smith St) gives the unit; a
complement before the street (Résidence Les Pins, 12 rue X) stays in street_key; one street
type is removed per line (the first word, else the last, else a Dutch suffix), so "Rue" and
"Avenue" of one name (Rue Louise / Avenue Louise) share a key. Address lines are standardised
once per distinct line and locale and joined back (a household shares its line).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from matching import resources
from matching.locale import BE, FR, NEUTRAL, LocaleChoice, choose_locales, country_locale
from schemas.contract import PERSON_RECORD, arrow_type

log = logging.getLogger(__name__)

DEFAULT_PLACEHOLDERS = Path(__file__).with_name("placeholders.json")

STANDARD_COLUMNS = (
    "first_name_std",
    "first_name_key",
    "given_names_std",
    "birth_name_std",
    "usage_name_std",
    "surname_std",
    "surnames_std",
    "sex_std",
    "birth_date_std",
    "birth_year",
    "birth_month",
    "birth_day",
    "email_std",
    "phone_std",
    "address_std",
    "postcode_std",
)

# Columns standardise() adds besides STANDARD_COLUMNS (see the module docstring).
EXTRA_COLUMNS = ("locale_std", "house_number_std", "street_key", "street_skeleton")

# Schema metadata key of standardise()'s report (see standardise_report()).
REPORT_KEY = b"matching.standardise"

# Street-type and common abbreviations in French / Belgian address lines (whole words only).
ADDRESS_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "BOULEVARD": ("BD", "BLD", "BLVD", "BVD", "BOUL", "BOULV"),
    "AVENUE": ("AV", "AVE", "AVN", "AVEN"),
    "RUE": ("R",),
    "CHEMIN": ("CH", "CHE", "CHEM", "CHM"),
    "PLACE": ("PL", "PLA"),
    "IMPASSE": ("IMP",),
    "ALLEE": ("ALL", "AL"),
    "ROUTE": ("RTE",),
    "FAUBOURG": ("FBG", "FG"),
    "SQUARE": ("SQ",),
    "COURS": ("CRS",),
    "QUAI": ("QU", "QAI"),
    "RESIDENCE": ("RES", "RESID", "RSD"),
    "PROMENADE": ("PROM",),
    "HAMEAU": ("HAM",),
    "CHAUSSEE": ("CHAU", "CHS", "CHSSE"),
    "LOTISSEMENT": ("LOT", "LOTIS"),
    "PASSAGE": ("PAS", "PASS"),
    "SAINT": ("ST",),
    "SAINTE": ("STE",),
    "GENERAL": ("GAL", "GEN"),
    "MARECHAL": ("MAL", "MCH"),
    "PRESIDENT": ("PDT", "PRES"),
    "DOCTEUR": ("DR",),
    "BATIMENT": ("BAT", "BT", "BTM"),
    "APPARTEMENT": ("APT", "APPT"),
}

# Leading particles stripped to build the particle-insensitive surname key.
NAME_PARTICLES = (
    "DE", "DU", "DES", "D", "LE", "LA", "LES", "L", "VAN", "VON", "DER", "DEN", "TER", "TEN",
    "VANDER", "VANDEN", "DI", "DA", "DEL", "DELLA", "DOS", "DAS",
)

# Street-type words removed from street_key: first word of the line (French style) ...
STREET_TYPES_LEADING = (
    "RUE", "AVENUE", "BOULEVARD", "CHAUSSEE", "PLACE", "QUAI", "IMPASSE", "SQUARE", "CHEMIN", "ALLEE",
    "ROUTE", "COURS", "PASSAGE", "PROMENADE", "GALERIE", "SENTIER", "RUELLE", "VENELLE", "PARVIS", "CLOS",
    "CITE", "RESIDENCE", "HAMEAU", "LOTISSEMENT", "FAUBOURG", "DREVE", "VOIE", "ESPLANADE", "RONDPOINT",
    "MAIL", "TRAVERSE", "CARREFOUR", "VILLA", "PARC", "AV", "AVE", "BD", "BLD", "BLVD", "CH", "PL", "IMP",
    "CHEE", "RTE", "SQ", "FBG",
)
# ... or last word (English, Dutch or German style, and Dutch words written apart) ...
STREET_TYPES_TRAILING = (
    "STREET", "ST", "ROAD", "RD", "AVENUE", "AVE", "AV", "DRIVE", "DR", "LANE", "LN", "COURT", "CT",
    "CRESCENT", "CRES", "TERRACE", "TCE", "CLOSE", "CL", "PLACE", "PL", "PARADE", "PDE", "HIGHWAY", "HWY",
    "CIRCUIT", "CCT", "GROVE", "WAY", "BOULEVARD", "BLVD", "SQUARE", "SQ", "ROW", "WALK", "MEWS", "GARDENS",
    "STRAAT", "LAAN", "STEENWEG", "STWG", "PLEIN", "KAAI", "KADE", "GANG", "WEG", "DREEF", "STEEG", "PARK", "HOF",
    "STRASSE", "STR", "GASSE", "PLATZ",
)
# ... or a Dutch suffix of the last word (Wetstraat, Louizalaan; the -se of Waversesteenweg), also
# abbreviated (Meunierstr., Hapln., Neerstalsestwg.).
STREET_SUFFIXES_NL = (
    "SESTEENWEG", "SESTWG", "STEENWEG", "STWG", "STRAAT", "STR", "LAAN", "LN", "PLEIN", "KAAI", "KADE", "DREEF",
    "STEEG", "GANG", "WEG", "PARK", "SQUARE",
)
# Articles and prepositions left out of street_key (French, Dutch, English).
STREET_STOPWORDS = (
    "DE", "DU", "DES", "LA", "LE", "LES", "AU", "AUX", "ET", "SUR", "SOUS", "EN", "VAN", "DER", "DEN", "HET",
    "TER", "TEN", "OP", "THE", "OF", "AND",
)
# Words before a number that is not the house number (box, flat, floor, building; a Belgian
# box is also written "b": 12 b 24 is box 24 of number 12, not 12 bis).
_UNIT_WORDS = (
    "B|BT|BTE|BOITE|BUS|BOX|APT|APPT|APPARTEMENT|APARTMENT|UNIT|FLAT|ETAGE|ETG|BAT|BATIMENT|BLOC|ESC|ESCALIER|"
    "PORTE|SUITE|LOGEMENT|LGT|CHAMBRE|CASE|BP|CS|CEDEX"
)

# Words that, written inside a name field, separate a usage name from a birth name.
_NEE = "NEE"
_SPOUSE = "EPOUSE|EPSE|EP|VEUVE|VVE"


@cache
def _load_placeholders_cached(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return {k: v for k, v in data.items() if not k.startswith("_")}


def load_placeholders(path: str | Path | None = None) -> dict[str, Any]:
    """The placeholder lists (``placeholders.json`` by default), keyed by kind; the French /
    Belgian lists at the top level, the NEUTRAL locale's under ``"neutral"``."""
    data = dict(_load_placeholders_cached(str(path or DEFAULT_PLACEHOLDERS)))
    data["neutral"] = dict(data.get("neutral", {}))
    return data


def _norm_text(expr: str, keep_digits: bool = False) -> str:
    """SQL: upper case, ligatures expanded, accents removed, anything else -> one space."""
    allowed = "A-Z0-9" if keep_digits else "A-Z"
    up = f"upper({expr})"
    for src, dst in (("Œ", "OE"), ("Æ", "AE"), ("ẞ", "SS"), ("ß", "SS")):
        up = f"replace({up}, '{src}', '{dst}')"
    return (
        f"nullif(trim(regexp_replace(strip_accents({up}), '[^{allowed}]+', ' ', 'g')), '')"
    )


def _address_expanded_sql(a: str) -> str:
    """SQL: a normalised address line with the French / Belgian rules (bis / ter, abbreviations)."""
    # 12B / 12 B / 12BIS -> 12 BIS (and TER, QUATER)
    a = f"regexp_replace({a}, '\\b(\\d+) ?(BIS|B)\\b', '\\1 BIS', 'g')"
    a = f"regexp_replace({a}, '\\b(\\d+) ?(TER|T)\\b', '\\1 TER', 'g')"
    a = f"regexp_replace({a}, '\\b(\\d+) ?(QUATER|Q)\\b', '\\1 QUATER', 'g')"
    # abbreviations: one map lookup per word (26 regexp passes were 10x slower)
    return _expand_words(a, f"string_split({a}, ' ')", as_string=True)


def _expand_words(a: str, words: str, as_string: bool = False) -> str:
    lst = f"list_transform({words}, lambda w: coalesce(map_extract_value(MAP($abbrev_from, $abbrev_to), w), w))"
    return f"array_to_string({lst}, ' ')" if as_string else lst


def _compact(expr: str) -> str:
    return f"nullif(replace({expr}, ' ', ''), '')"


def _core(expr: str) -> str:
    particles = "|".join(NAME_PARTICLES)
    stripped = f"regexp_replace({expr}, '^(({particles}) )+', '')"
    return f"coalesce({_compact(stripped)}, {_compact(expr)})"


def _ph(kind: str, x: str) -> str:
    """SQL: ``x`` is in the placeholder list ``kind`` of the row's locale."""
    return f"(CASE WHEN _loc = '{NEUTRAL}' THEN list_contains($n_{kind}, {x}) ELSE list_contains(${kind}, {x}) END)"


def _ph_regex(kind: str, x_national: str, x_neutral: str | None = None) -> str:
    """SQL: ``x`` matches the placeholder patterns ``kind`` of the row's locale (constant patterns)."""
    return (f"(CASE WHEN _loc = '{NEUTRAL}' THEN coalesce(regexp_matches({x_neutral or x_national}, $n_{kind}), false) "
            f"ELSE coalesce(regexp_matches({x_national}, ${kind}), false) END)")


def _sql_words(words: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{w}'" for w in words) + "]"


def _street_sql() -> str:
    """SQL (a CTE body over ``addr_std``, one row per distinct address line and locale): house
    number and street keys from ``_addr_n``."""
    num = "([0-9]+)(?:\\s?(BIS|TER|QUATER)\\b|([A-Z])\\b|\\s([A-Z])$|\\s([BC])\\b)?"
    suffix = "(?:" + "|".join(STREET_SUFFIXES_NL) + ")"
    return f"""
    SELECT *,
        CASE WHEN ascii(_h) BETWEEN 48 AND 57 THEN _h
             ELSE nullif(regexp_extract(_h, '^.*\\b([0-9]{{1,4}}(?:[A-Z]|\\s|$).*)$', 1), '') END AS _h_tail,
        -- the words of the street name: no numbers (12, 12B), bis / ter, single letters (R., L', D')
        string_split_regex(trim(regexp_replace(_h, '\\b([0-9]+[A-Z]*|BIS|TER|QUATER|[A-Z])\\b', ' ', 'g')), ' +')
            AS _tok0
    FROM (
        SELECT *,
            -- box / flat / floor numbers are not the house number
            trim(regexp_replace(_addr_n, '\\b(?:({_UNIT_WORDS}) ?[0-9]+[A-Z]?|[0-9]+ ?(?:E|EME|ER|ERE)? ETAGE)\\b',
                                ' ', 'g')) AS _h
        FROM addr_std WHERE address_std IS NOT NULL
    )
), street2 AS (
    SELECT *,
        regexp_extract(_h_tail, '^{num}', ['n', 'w', 'l1', 'l2', 'l3']) AS _hn,
        CASE WHEN _loc = '{NEUTRAL}' THEN _tok0 ELSE {_expand_words('', '_tok0')} END AS _tok1
    FROM street
), street3 AS (
    SELECT *,
        CASE WHEN len(_tok1) > 1 AND list_contains({_sql_words(STREET_TYPES_LEADING)}, _tok1[1]) THEN _tok1[2:]
             WHEN len(_tok1) > 1 AND list_contains({_sql_words(STREET_TYPES_TRAILING)}, _tok1[-1])
                 THEN list_slice(_tok1, 1, len(_tok1) - 1)
             ELSE _tok1 END AS _tok2
    FROM street2
), street4 AS (
    SELECT *,
        nullif(array_to_string(list_transform(
            list_filter(_tok2, lambda w: NOT list_contains({_sql_words(STREET_STOPWORDS)}, w)),
            lambda w: CASE WHEN w IN ('SAINT', 'SAINTE', 'SINT', 'ST', 'STE') THEN 'ST' ELSE w END), ''), '') AS _k0
    FROM street3
), street5 AS (
    SELECT *, _street_key,
        -- a final S of the written name (plural, Dutch genitive) dropped; vowels and H deleted
        string_split(translate(replace(replace(
            CASE WHEN ends_with(_street_key, 'S') THEN left(_street_key, -1) ELSE _street_key END,
            'PH', 'F'), 'IJ', 'I'), 'CQZVWDBGJAEIOUYH', 'KKSFFTPKI'), '') AS _sk_chars
    FROM (
        SELECT *,
            CASE WHEN length(_k0) > 6 AND regexp_matches(_k0, '{suffix}$')
                 THEN regexp_replace(_k0, '^([A-Z]{{3,}}?){suffix}$', '\\1') ELSE _k0 END AS _street_key
        FROM street4
    )
)"""


def _standardise_sql(columns: list[str]) -> str:
    def name_ok(x: str) -> str:
        return f"(NOT {_ph('names', x)} AND NOT regexp_matches({x}, '^X+$'))"

    def clean_name(col: str) -> str:
        # on a column normalised in the CTE before: the CASE per locale would otherwise repeat
        # the normalisation in each branch
        return f"CASE WHEN {name_ok(col)} THEN {col} END"

    # birth date parts from the text form, so that a VARCHAR 'YYYY-00-00' is handled as well
    bd_txt = "CAST(birth_date AS VARCHAR)"
    return f"""
WITH loc AS (
    SELECT *,
        coalesce(map_extract_value(MAP($country_keys, $country_locales), country),
                 map_extract_value(MAP($source_keys, $source_locales), coalesce(source_system, '')),
                 '{NEUTRAL}') AS _loc
    FROM input
),
-- address lines are standardised once per distinct line and locale (a household shares its line)
addr AS (
    SELECT *,
        CASE WHEN _loc = '{NEUTRAL}' THEN _addr_n ELSE {_address_expanded_sql('_addr_n')} END AS _address
    FROM (
        SELECT address_line, _loc, {_norm_text('address_line', keep_digits=True)} AS _addr_n
        FROM (SELECT DISTINCT address_line, _loc FROM loc WHERE address_line IS NOT NULL)
    )
),
addr_std AS (
    SELECT *,
        CASE
            WHEN _address IS NULL OR {_ph('addresses', '_address')} OR {_ph_regex('address_regex', '_address')}
            THEN NULL ELSE _address END AS address_std
    FROM addr
),
street AS ({_street_sql()},
street_out AS (
    SELECT address_line, _loc,
        CASE WHEN _hn.n <> '' THEN
            nullif(ltrim(_hn.n, '0'), '') || CASE coalesce(nullif(_hn.w, ''), nullif(_hn.l1, ''), nullif(_hn.l2, ''),
                                                      nullif(_hn.l3, ''), '')
                WHEN 'BIS' THEN 'B' WHEN 'TER' THEN 'C' WHEN 'QUATER' THEN 'D'
                ELSE coalesce(nullif(_hn.w, ''), nullif(_hn.l1, ''), nullif(_hn.l2, ''), nullif(_hn.l3, ''), '') END
            END AS house_number_std,
        nullif(_street_key, '') AS street_key,
        CASE WHEN len(list_distinct(_sk_chars)) >= 2 THEN array_to_string(
            list_filter(_sk_chars, lambda c, i: i = 1 OR c <> _sk_chars[i - 1]), '') END AS _skeleton
    FROM street5
),
addresses AS (
    SELECT a.address_line, a._loc, a.address_std, s.house_number_std, s.street_key, s._skeleton
    FROM addr_std a LEFT JOIN street_out s ON a.address_line = s.address_line AND a._loc = s._loc
),
norm AS (
    SELECT *,
        {_norm_text('given_names')} AS _given_n,
        {_norm_text('usage_name')} AS _usage_n,
        {_norm_text('birth_name')} AS _birth_n
    FROM loc
),
base AS (
    SELECT *,
        {clean_name('_given_n')} AS _given,
        {_norm_text("string_split_regex(trim(given_names), '[ ,;/]+')[1]")} AS _first,
        {clean_name('_usage_n')} AS _usage_raw,
        {clean_name('_birth_n')} AS _birth_raw,
        {bd_txt} AS _bd,
        lower(trim(email)) AS _email,
        trim(phone) AS _phone_raw,
        regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g') AS _digits,
        regexp_replace(coalesce(postcode, ''), '[^0-9]', '', 'g') AS _pc,
        regexp_replace(upper(coalesce(postcode, '')), '[^A-Z0-9]', '', 'g') AS _pca
    FROM norm
),
names AS (
    SELECT *,
        -- "MARTIN NEE DUPONT" in a usage-name field: usage MARTIN, birth DUPONT;
        -- "DUPONT EPOUSE MARTIN": birth DUPONT, usage MARTIN. (contains() first: cheap filter)
        CASE WHEN contains(_usage_raw, 'NEE ') THEN
             regexp_extract(_usage_raw, '^(.*?) ?\\b{_NEE} (.+)$', ['before', 'after']) END AS _u_nee,
        CASE WHEN regexp_matches(_usage_raw, ' ({_SPOUSE}) ') THEN
             regexp_extract(_usage_raw, '^(.+) ({_SPOUSE}) (.+)$', ['before', 'w', 'after']) END AS _u_sp,
        CASE WHEN contains(_birth_raw, 'NEE ') THEN
             regexp_extract(_birth_raw, '^(.*?) ?\\b{_NEE} (.+)$', ['before', 'after']) END AS _b_nee,
        CASE WHEN regexp_matches(_birth_raw, ' ({_SPOUSE}) ') THEN
             regexp_extract(_birth_raw, '^(.+) ({_SPOUSE}) (.+)$', ['before', 'w', 'after']) END AS _b_sp
    FROM base
),
split AS (
    SELECT *,
        CASE WHEN _u_nee.after <> '' THEN nullif(_u_nee.before, '')
             WHEN _u_sp.after <> '' THEN _u_sp.after
             ELSE _usage_raw END AS _usage_from_usage,
        CASE WHEN _u_nee.after <> '' THEN _u_nee.after
             WHEN _u_sp.after <> '' THEN _u_sp.before END AS _birth_from_usage,
        CASE WHEN _b_nee.after <> '' THEN _b_nee.after
             WHEN _b_sp.after <> '' THEN _b_sp.before
             ELSE _birth_raw END AS _birth_from_birth,
        CASE WHEN _b_nee.after <> '' THEN nullif(_b_nee.before, '')
             WHEN _b_sp.after <> '' THEN _b_sp.after END AS _usage_from_birth,
        try_cast(substr(_bd, 1, 4) AS INTEGER) AS _y,
        try_cast(substr(_bd, 6, 2) AS INTEGER) AS _m,
        try_cast(substr(_bd, 9, 2) AS INTEGER) AS _d,
        CASE
            WHEN _email IS NULL OR NOT regexp_matches(_email, '^[^@\\s]+@[^@\\s]+\\.[a-z]{{2,}}$') THEN NULL
            WHEN {_ph('email_local_parts', "split_part(_email, '@', 1)")} THEN NULL
            WHEN {_ph('email_domains', "split_part(_email, '@', 2)")} THEN NULL
            WHEN {_ph('emails', '_email')} THEN NULL
            ELSE _email END AS email_std,
        CASE
            WHEN _loc = '{NEUTRAL}' THEN CASE WHEN regexp_matches(_pca, '[0-9]') THEN _pca END
            WHEN _loc = '{BE}' AND length(_pc) = 4 THEN _pc
            WHEN length(_pc) = 5 THEN _pc
            WHEN _loc = '{FR}' AND length(_pc) = 4 THEN '0' || _pc  -- leading zero lost in a spreadsheet
            END AS _postcode,
        -- international digits (country code first) when the number was written +CC or 00CC
        CASE WHEN starts_with(_phone_raw, '+') THEN _digits
             WHEN starts_with(_digits, '00') THEN substr(_digits, 3) END AS _intl
    FROM names
),
phones AS (
    SELECT *,
        CASE
            WHEN _intl IS NOT NULL THEN
                CASE
                    WHEN starts_with(_intl, '33') AND length(ltrim(substr(_intl, 3), '0')) = 9
                        THEN '+33' || ltrim(substr(_intl, 3), '0')
                    WHEN starts_with(_intl, '32') AND length(ltrim(substr(_intl, 3), '0')) IN (8, 9)
                        THEN '+32' || ltrim(substr(_intl, 3), '0')
                    WHEN NOT starts_with(_intl, '33') AND NOT starts_with(_intl, '32')
                         AND length(_intl) BETWEEN 8 AND 15 AND NOT starts_with(_intl, '0')
                        THEN '+' || _intl
                END
            WHEN _loc = '{NEUTRAL}' THEN
                -- no national form assumed: the digits as written
                CASE WHEN length(_digits) BETWEEN 6 AND 15 THEN _digits END
            WHEN _loc = '{BE}' THEN
                CASE
                    WHEN starts_with(_digits, '0') AND length(_digits) IN (9, 10) THEN '+32' || substr(_digits, 2)
                    WHEN starts_with(_digits, '32') AND length(_digits) IN (10, 11) THEN '+32' || substr(_digits, 3)
                    WHEN NOT starts_with(_digits, '0') AND length(_digits) IN (8, 9) THEN '+32' || _digits
                END
            ELSE
                CASE
                    WHEN starts_with(_digits, '0') AND length(_digits) = 10 THEN '+33' || substr(_digits, 2)
                    WHEN starts_with(_digits, '330') AND length(_digits) = 12 THEN '+33' || substr(_digits, 4)
                    WHEN starts_with(_digits, '33') AND length(_digits) = 11 THEN '+33' || substr(_digits, 3)
                    -- 6 12 34 56 78: the leading zero was lost (a number stored as an integer)
                    WHEN NOT starts_with(_digits, '0') AND length(_digits) = 9 THEN '+33' || _digits
                END
        END AS _phone
    FROM split
),
final AS (
    SELECT *,
        CASE WHEN {_ph('dates', '_bd')} OR _y IS NULL OR _y < 1800 THEN NULL ELSE _y END AS _yy,
        coalesce(_usage_from_usage, _usage_from_birth) AS usage_name_std,
        coalesce(_birth_from_birth, _birth_from_usage) AS birth_name_std
    FROM phones
),
dates AS (
    SELECT *,
        CASE WHEN _yy IS NULL OR _m IS NULL OR _m NOT BETWEEN 1 AND 12
                  OR coalesce(birth_date_precision, 'day') = 'year'
                  OR {_ph('presumed_day_month', 'substr(_bd, 6, 5)')}
             THEN NULL ELSE _m END AS _mm
    FROM final
)
SELECT
    {", ".join(f'"{c}"' for c in columns if c != "__pos")},
    CASE WHEN _given IS NULL OR _first IS NULL OR NOT {name_ok('_first')} THEN NULL
         ELSE replace(_first, ' ', '') END AS first_name_std,
    CASE WHEN _given IS NULL OR _first IS NULL OR NOT {name_ok('_first')} THEN NULL
         ELSE split_part(_first, ' ', 1) END AS first_name_key,
    _given AS given_names_std,
    birth_name_std,
    usage_name_std,
    coalesce({_compact('usage_name_std')}, {_compact('birth_name_std')}) AS surname_std,
    nullif(list_sort(list_distinct(list_filter([
        {_compact('birth_name_std')}, {_core('birth_name_std')},
        {_compact('usage_name_std')}, {_core('usage_name_std')}
    ], lambda x: x IS NOT NULL))), []) AS surnames_std,
    CASE WHEN upper(trim(sex)) IN ('F', 'FEMME', 'FEMININ', 'FÉMININ', '2', 'MME', 'MLLE', 'FEMALE', 'WOMAN', 'W',
                                   'MRS', 'MS', 'MISS', 'V', 'VROUW') THEN 'F'
         WHEN upper(trim(sex)) IN ('M', 'H', 'HOMME', 'MASCULIN', '1', 'M.', 'MALE', 'MAN', 'MR') THEN 'M' END
        AS sex_std,
    CASE WHEN _mm IS NOT NULL AND coalesce(birth_date_precision, 'day') = 'day' AND _d BETWEEN 1 AND 31
         THEN try_cast(make_date(_yy, _mm, _d) AS DATE) END AS birth_date_std,
    _yy AS birth_year,
    _mm AS birth_month,
    CASE WHEN _mm IS NOT NULL AND coalesce(birth_date_precision, 'day') = 'day' AND _d BETWEEN 1 AND 31
         THEN _d END AS birth_day,
    email_std,
    CASE WHEN _phone IS NULL OR {_ph('phones', '_phone')}
              OR {_ph_regex('phone_regex', 'substr(_phone, 4)', "ltrim(_phone, '+')")}
         THEN NULL ELSE _phone END AS phone_std,
    address_std,
    CASE WHEN {_ph('postcodes', '_postcode')} OR {_ph_regex('postcode_regex', '_postcode')} THEN NULL
         ELSE _postcode END AS postcode_std,
    _loc AS locale_std,
    house_number_std,
    street_key,
    _skeleton
FROM dates LEFT JOIN addresses USING (address_line, _loc)
ORDER BY __pos
"""


def _alternation(patterns: list[str]) -> str | None:
    return "|".join(f"(?:{p})" for p in patterns) or None


def _complete(person_records: pa.Table) -> pa.Table:
    """Add any missing canonical person_record column as nulls (fixtures, partial silos)."""
    table = person_records
    for col in PERSON_RECORD.columns:
        if col.name not in table.column_names:
            table = table.append_column(col.name, pa.nulls(table.num_rows, arrow_type(col.type)))
    return table


_LIST_KINDS = (
    "names", "dates", "presumed_day_month", "phones",
    "email_local_parts", "email_domains", "emails", "addresses", "postcodes",
)
_LOWER_KINDS = ("emails", "email_local_parts", "email_domains")


def _list_params(ph: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key in _LIST_KINDS:
        values = [str(v) for v in ph.get(key, [])]
        if key == "names":
            values = [v.upper() for v in values]
        elif key in _LOWER_KINDS:
            values = [v.lower() for v in values]
        params[prefix + key] = values
    params[prefix + "address_regex"] = _alternation(ph.get("address_patterns", []))
    params[prefix + "phone_regex"] = _alternation(ph.get("phone_national_patterns", []))
    params[prefix + "postcode_regex"] = _alternation(ph.get("postcode_patterns", []))
    return params


def standardise(
    person_records: pa.Table,
    *,
    placeholders: dict[str, Any] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    locales: Mapping[str, str] | None = None,
    default_locale: str | None = None,
) -> pa.Table:
    """Return ``person_records`` with the comparison columns of this module added.

    Every input column is kept (extra columns such as a ground-truth ``person_id`` pass
    through); missing canonical columns are added as nulls. ``placeholders`` overrides the
    default lists of ``placeholders.json`` (see :func:`load_placeholders`).

    ``locales`` maps a ``source_system`` to FR, BE or NEUTRAL; ``default_locale`` applies to the
    sources it does not name; a source neither names is detected from its rows
    (:func:`matching.locale.choose_locales`). A row whose ``country`` names a country uses that
    country's rules whatever its source's locale. The locale chosen per source (with how and
    why) is in the output's schema metadata: :func:`standardise_report`.
    """
    table = _complete(person_records)
    # the hash joins DuckDB plans for the placeholder lists do not keep row order: restore it
    table = table.append_column("__pos", pa.array(range(table.num_rows), pa.int64()))
    ph = load_placeholders() if placeholders is None else placeholders
    neutral = ph.get("neutral") or load_placeholders().get("neutral", {})
    params = {**_list_params(ph), **_list_params(neutral, "n_")}
    own = con is None
    db = resources.connect() if con is None else con
    try:
        choices = choose_locales(table, locales, default_locale, con=db)
        countries = [c for c in pc.unique(table["country"]).to_pylist() if c is not None]
        country_map = {c: loc for c in countries if (loc := country_locale(c)) is not None}
        db.register("input", table)
        # Parameters of type VARCHAR[]: an empty Python list would bind as an untyped list.
        list_keys = {k for k, v in params.items() if isinstance(v, list)}
        list_keys |= {"country_keys", "country_locales", "source_keys", "source_locales"}
        sql = re.sub(r"\$([a-z_]+)", lambda m: f"CAST(${m[1]} AS VARCHAR[])" if m[1] in list_keys else m[0],
                     _standardise_sql(table.column_names))
        params["country_keys"] = list(country_map)
        params["country_locales"] = list(country_map.values())
        params["source_keys"] = list(choices)
        params["source_locales"] = [c.locale for c in choices.values()]
        params["abbrev_from"] = [a for abbrevs in ADDRESS_ABBREVIATIONS.values() for a in abbrevs]
        params["abbrev_to"] = [full for full, abbrevs in ADDRESS_ABBREVIATIONS.items() for _ in abbrevs]
        out = db.sql(sql, params=params).to_arrow_table()
        db.unregister("input")
    finally:
        if own:
            db.close()
    out = out.rename_columns([("street_skeleton" if c == "_skeleton" else c) for c in out.column_names])
    report = {"locales": {src: c.as_dict() for src, c in choices.items()}}
    log.info("standardised %d person records; locales: %s", out.num_rows,
             ", ".join(f"{src or '(no source)'}={c.locale} ({c.how})" for src, c in choices.items()))
    return with_report(out, report)


def with_report(table: pa.Table, report: Mapping[str, Any]) -> pa.Table:
    """``table`` with ``report`` merged into its standardisation report (schema metadata)."""
    merged = {**standardise_report(table), **report}
    meta = dict(table.schema.metadata or {})
    meta[REPORT_KEY] = json.dumps(merged, default=str).encode()
    return table.replace_schema_metadata(meta)


def standardise_report(table: pa.Table) -> dict[str, Any]:
    """What standardisation recorded on ``table``: ``locales`` (per source: locale, how it was
    chosen — setting / default / detected —, why and the evidence read) and, after
    :func:`matching.resolve.prepare`, ``placeholders_nulled`` (values nulled per field because
    the data showed them shared by implausibly many people). ``{}`` when none."""
    raw = (table.schema.metadata or {}).get(REPORT_KEY)
    return json.loads(raw) if raw else {}


def source_locales(table: pa.Table) -> dict[str, str]:
    """The locale used per source (``source_system`` -> FR / BE / NEUTRAL) on a standardised table."""
    return {src: c["locale"] for src, c in standardise_report(table).get("locales", {}).items()}


__all__ = [
    "BE", "EXTRA_COLUMNS", "FR", "NEUTRAL", "STANDARD_COLUMNS", "LocaleChoice", "load_placeholders",
    "source_locales", "standardise", "standardise_report", "with_report",
]
