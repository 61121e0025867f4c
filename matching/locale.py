"""Which national rules standardisation applies to a source: FR, BE or NEUTRAL.

A locale is chosen per source (``source_system``):

1. an explicit setting wins: ``locales={"finance": "FR", "crm": "BE"}``, then ``default_locale``
   (a deployment-wide setting) for every source the mapping does not name;
2. otherwise it is detected from the source's own rows (:func:`detect_locale`);
3. detection falls back to NEUTRAL when the evidence is thin or contradicts itself.

Whatever the source's locale, a row whose ``country`` column names a country uses that country's
rules (a French address in a Brussels file, a foreign address in a French one): FR for France,
BE for Belgium, NEUTRAL for any other country. A source's locale therefore governs the rows that
do not say where they are.

Detection (per source, on the rows with no country of their own; shares of the non-empty values):

==================  ========================================================================
signal              reads as
==================  ========================================================================
country column      filled on at least half the rows and 90 % one class: that locale, decided
street words        French-only words (RUE, CHEMIN, ALLEE, CHAUSSEE, ...): FR or BE; Dutch
                    street words (…STRAAT, …LAAN, …STEENWEG, …PLEIN): BE; English, German
                    (…STRASSE, …PLATZ), Spanish, Italian, Portuguese street words: NEUTRAL;
                    read when 70 % of the lines with a street word agree
phones, +CC / 00CC  +33: FR; +32: BE; any other country code: NEUTRAL
postcode shape      5 digits: FR or a foreign country (not BE); 4 digits: BE, or FR with the
                    leading zero lost, or foreign; letters (SW1A 1AA, 1012 AB): NEUTRAL
national phones     10 digits 0[1-35-9]…: FR or foreign, pointing to FR only when a fifth of
                    them are mobiles (06 / 07); 9 digits 0…: BE (or foreign); other shapes
                    (10 digits not starting 0, 11 digits, ...): NEUTRAL
==================  ========================================================================

The locales every signal allows are intersected: an empty intersection (say 4-digit postcodes,
French-shaped phones and English street words: Australia) is NEUTRAL. FR or BE is then chosen
only with positive evidence: a *strong* signal (street words, international phone prefixes)
pointing to it, or both *weak* signals (postcode shape, national phone shape) agreeing on it.
5-digit postcodes and national phones alone are not enough: Germany and the United States
have 5-digit postcodes too.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from matching import resources

log = logging.getLogger(__name__)

FR, BE, NEUTRAL = "FR", "BE", "NEUTRAL"
LOCALES = (FR, BE, NEUTRAL)

# Values of the country column (upper case, accents removed) read as France / Belgium.
FR_COUNTRY = ("FR", "FRA", "FRANCE", "FX", "FRANCE METROPOLITAINE", "REPUBLIQUE FRANCAISE")
BE_COUNTRY = ("BE", "BEL", "BELGIQUE", "BELGIE", "BELGIUM", "BELGIEN", "BELGIO", "BELGICA")

# Detection thresholds (shares of the non-empty values of a signal).
COUNTRY_COVERAGE = 0.5  # the country column decides when filled on at least this share of rows
COUNTRY_DOMINANT = 0.9  # ... and this share of the filled values is one class
SIGNAL_DOMINANT = 0.7  # a signal reads as a class when this share of its values is that class
POSTCODE_DOMINANT = 0.8
FR_MOBILE_SHARE = 0.2  # French-shaped national phones count for France when this share are mobiles
DUTCH_SHARE = 0.05  # Dutch street words in this share of recognised lines: Belgium
DETECTION_SAMPLE = 20_000  # rows read per source (a deterministic sample) for the other signals

_FR_STREET = (
    "RUE|CHEMIN|ALLEE|IMPASSE|CHAUSSEE|QUAI|RESIDENCE|HAMEAU|FAUBOURG|SENTIER|LIEU DIT|CITE|"
    "BD|AV|CHEE|RTE|IMP|VENELLE|RUELLE|VOIE|DREVE|PARVIS|LOTISSEMENT"
)
# Dutch street types are written as a suffix (Wetstraat, Louizalaan); PLEIN alone is French too
_NL_STREET = (
    "[A-Z]{2}(STRAAT|STR|STEENWEG|STWG|LAAN|PLEIN|DREEF|KAAI|STEEG|WEG)\\b|\\b(STRAAT|STEENWEG|LAAN|DREEF|KAAI|STEEG)\\b"
)
# German street types are written as a suffix too (Hauptstraße, Marktplatz)
_OTHER_STREET_SUFFIX = "[A-Z]{2}(STRASSE|GASSE|PLATZ|DAMM|UFER)\\b"
_OTHER_STREET = (
    "STREET|ROAD|DRIVE|LANE|COURT|CRESCENT|TERRACE|CLOSE|PARADE|HIGHWAY|CIRCUIT|GROVE|"
    "STRASSE|STR|GASSE|PLATZ|CALLE|AVENIDA|CARRER|CARRERA|VIA|VIALE|PIAZZA|RUA|TRAVESSA"
)
# English abbreviations that are also French ones (ST = saint, DR = docteur, AVE / BLVD written
# before the name in France): English only as the line's last word
_OTHER_STREET_LAST = "ST|RD|DR|LN|CT|CRES|TCE|PDE|HWY|CCT|PL|WAY|AVE|BLVD|CL"


@dataclass(frozen=True)
class LocaleChoice:
    """The locale used for one source, how it was chosen and the evidence read."""

    locale: str
    how: str  # "setting", "default", "detected"
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"locale": self.locale, "how": self.how, "reason": self.reason, "evidence": self.evidence}


def normalise_locale(value: str) -> str:
    """``'fr'``, ``'FR'``, ``'be'``, ``'neutral'``, ``'none'``, ``'other'`` -> FR / BE / NEUTRAL."""
    v = str(value).strip().upper()
    if v in (FR, "FRA", "FRANCE"):
        return FR
    if v in (BE, "BEL", "BELGIUM", "BELGIQUE"):
        return BE
    if v in (NEUTRAL, "NONE", "OTHER", "GENERIC", "INTL", "INTERNATIONAL", ""):
        return NEUTRAL
    raise ValueError(f"unknown locale {value!r}: expected FR, BE or NEUTRAL")


def country_locale(value: str | None) -> str | None:
    """The locale a row's own ``country`` value names: FR / BE for France / Belgium (ISO codes
    or names), NEUTRAL for any other country written in letters (an ISO code or a name); None
    for an empty or unreadable value (digits, one letter), which takes the source's locale."""
    if value is None:
        return None
    folded = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode().upper()
    c = " ".join(re.sub("[^A-Z0-9]+", " ", folded).split())
    if c in FR_COUNTRY:
        return FR
    if c in BE_COUNTRY:
        return BE
    if len(c) >= 2 and not re.search("[0-9]", c):
        return NEUTRAL
    return None


def _country_sql() -> str:
    """Rows per source and country value."""
    return "SELECT coalesce(source_system, '') AS src, country, count(*) AS n FROM input GROUP BY ALL"


def _features_sql() -> str:
    """The counts detection reads, per source, on a deterministic sample (about
    :data:`DETECTION_SAMPLE` rows) of its rows with no country of their own."""
    addr = ("trim(regexp_replace(strip_accents(replace(replace(upper(address_line), 'ß', 'SS'), 'ẞ', 'SS')), "
            "'[^A-Z0-9]+', ' ', 'g'))")
    pca = "regexp_replace(upper(coalesce(postcode, '')), '[^A-Z0-9]', '', 'g')"
    digits = "regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g')"
    return f"""
WITH r AS (
    SELECT coalesce(source_system, '') AS src, {addr} AS _a, {pca} AS _pc, trim(coalesce(phone, '')) AS _ph,
        {digits} AS _d
    FROM input
    WHERE list_contains($sources, coalesce(source_system, ''))
      AND (country IS NULL OR list_contains($no_country, country))
      AND hash(record_key, address_line, postcode, phone) % 1000000
          < coalesce(map_extract_value(MAP($sources, $rates), coalesce(source_system, '')), 0)
), f AS (
    SELECT *,
        CASE WHEN starts_with(_ph, '+') THEN _d
             WHEN starts_with(_d, '00') THEN substr(_d, 3) END AS _intl,
        regexp_matches(_a, '\\b({_FR_STREET})\\b') AS _w_fr,
        regexp_matches(_a, '{_NL_STREET}') AS _w_nl,
        regexp_matches(_a, '\\b({_OTHER_STREET})\\b') OR regexp_matches(_a, '\\b({_OTHER_STREET_LAST})$')
            OR regexp_matches(_a, '{_OTHER_STREET_SUFFIX}') AS _w_other
    FROM r
)
SELECT src,
    count(*) AS n_sampled,
    count(*) FILTER (WHERE (_w_fr OR _w_nl OR _w_other)) AS street_n,
    count(*) FILTER (WHERE _w_fr AND NOT _w_other) AS street_fr,
    count(*) FILTER (WHERE _w_nl AND NOT _w_other) AS street_nl,
    count(*) FILTER (WHERE _w_other AND NOT _w_fr AND NOT _w_nl) AS street_other,
    count(*) FILTER (WHERE length(_intl) >= 8) AS intl_n,
    count(*) FILTER (WHERE length(_intl) >= 8 AND starts_with(_intl, '33')) AS intl_33,
    count(*) FILTER (WHERE length(_intl) >= 8 AND starts_with(_intl, '32')) AS intl_32,
    count(*) FILTER (WHERE _intl IS NULL AND length(_d) >= 8
                     AND NOT regexp_matches(_d, '^(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$')) AS nat_n,
    count(*) FILTER (WHERE _intl IS NULL
                     AND regexp_matches(_d, '^(0[1-35-9][0-9]{{8}}|[1-35-9][0-9]{{8}})$')
                     AND NOT regexp_matches(_d, '^(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$')) AS nat_fr,
    count(*) FILTER (WHERE _intl IS NULL AND regexp_matches(_d, '^0?[67][0-9]{{8}}$')) AS nat_fr_mobile,
    count(*) FILTER (WHERE _intl IS NULL AND regexp_matches(_d, '^0[1-9][0-9]{{7}}$'))
        AS nat_be,
    count(*) FILTER (WHERE _intl IS NULL AND regexp_matches(_d, '^0?4[0-9]{{8}}$'))
        AS nat_ambiguous,
    count(*) FILTER (WHERE _pc <> '' AND regexp_matches(_pc, '[0-9]')
                     AND NOT regexp_matches(_pc, '^(0+|9+)$')) AS pc_n,
    count(*) FILTER (WHERE regexp_matches(_pc, '^[0-9]{{5}}$')
                     AND NOT regexp_matches(_pc, '^(0+|9+)$')) AS pc_5,
    count(*) FILTER (WHERE regexp_matches(_pc, '^[0-9]{{4}}$')
                     AND NOT regexp_matches(_pc, '^(0+|9+)$')) AS pc_4,
    count(*) FILTER (WHERE regexp_matches(_pc, '[A-Z]') AND regexp_matches(_pc, '[0-9]'))
        AS pc_alpha
FROM f
GROUP BY src
"""


def _share(num: int, den: int) -> float:
    return num / den if den else 0.0


def _by_country(f: Mapping[str, int]) -> LocaleChoice | None:
    """The locale the country column decides, when most rows fill it and they agree."""
    if f["n_country"] and _share(f["n_country"], f["n_rows"]) >= COUNTRY_COVERAGE:
        ev = {"rows": f["n_rows"], "country": {FR: f["country_fr"], BE: f["country_be"], NEUTRAL: f["country_other"]}}
        for loc, key in ((FR, "country_fr"), (BE, "country_be"), (NEUTRAL, "country_other")):
            if _share(f[key], f["n_country"]) >= COUNTRY_DOMINANT:
                return LocaleChoice(loc, "detected", f"country column: {loc}", ev)
    return None


def decide(f: Mapping[str, int]) -> LocaleChoice:
    """The locale a source's detection counts point to (country column first)."""
    by_country = _by_country(f)
    if by_country is not None:
        return by_country
    ev: dict[str, Any] = {"rows": f["n_rows"], "sampled": f.get("n_sampled", f["n_rows"])}
    all_ = frozenset(LOCALES)
    allowed: dict[str, frozenset[str]] = {}  # signal -> locales it allows
    strong: dict[str, frozenset[str]] = {}  # strong signal -> locales it points to
    weak: dict[str, str] = {}  # weak signal -> the one national locale it points to
    if f["street_n"]:
        nl, fr_ = _share(f["street_nl"], f["street_n"]), _share(f["street_fr"], f["street_n"])
        other = _share(f["street_other"], f["street_n"])
        ev["street_words"] = {"lines": f["street_n"], "fr": round(fr_, 3), "nl": round(nl, 3),
                              "other": round(other, 3)}
        if nl >= DUTCH_SHARE and nl + fr_ >= SIGNAL_DOMINANT:
            allowed["street_words"] = strong["street_words"] = frozenset({BE})
        elif fr_ >= SIGNAL_DOMINANT:
            allowed["street_words"] = strong["street_words"] = frozenset({FR, BE})
        elif other >= SIGNAL_DOMINANT:
            allowed["street_words"] = frozenset({NEUTRAL})
    if f["intl_n"]:
        s33, s32 = _share(f["intl_33"], f["intl_n"]), _share(f["intl_32"], f["intl_n"])
        ev["phones_international"] = {"phones": f["intl_n"], "+33": round(s33, 3), "+32": round(s32, 3)}
        if s33 >= SIGNAL_DOMINANT:
            allowed["phones_international"] = strong["phones_international"] = frozenset({FR})
        elif s32 >= SIGNAL_DOMINANT:
            allowed["phones_international"] = strong["phones_international"] = frozenset({BE})
        elif s33 + s32 >= SIGNAL_DOMINANT:
            allowed["phones_international"] = strong["phones_international"] = frozenset({FR, BE})
        elif 1 - s33 - s32 >= SIGNAL_DOMINANT:
            allowed["phones_international"] = frozenset({NEUTRAL})
    if f["pc_n"]:
        p5, p4 = _share(f["pc_5"], f["pc_n"]), _share(f["pc_4"], f["pc_n"])
        pa_ = _share(f["pc_alpha"], f["pc_n"])
        ev["postcodes"] = {"postcodes": f["pc_n"], "5_digits": round(p5, 3), "4_digits": round(p4, 3),
                           "letters": round(pa_, 3)}
        if p5 >= POSTCODE_DOMINANT:
            allowed["postcodes"] = frozenset({FR, NEUTRAL})
            weak["postcodes"] = FR
        elif p4 >= POSTCODE_DOMINANT:
            weak["postcodes"] = BE  # FR with a lost leading zero stays allowed
        elif pa_ >= 0.5:
            allowed["postcodes"] = frozenset({NEUTRAL})
    nat_classified = f["nat_n"] - f["nat_ambiguous"]
    if nat_classified > 0:
        sfr, sbe = _share(f["nat_fr"], nat_classified), _share(f["nat_be"], nat_classified)
        ev["phones_national"] = {"phones": f["nat_n"], "fr_shape": round(sfr, 3), "be_shape": round(sbe, 3),
                                 "ambiguous": f["nat_ambiguous"]}
        if sfr >= SIGNAL_DOMINANT:
            allowed["phones_national"] = frozenset({FR, NEUTRAL})
            # the French plan: 10 digits, and mobiles (06 / 07) among them; 10-digit landlines
            # alone are German or Australian as well
            if _share(f["nat_fr_mobile"], f["nat_fr"]) >= FR_MOBILE_SHARE:
                weak["phones_national"] = FR
        elif sbe >= SIGNAL_DOMINANT:
            allowed["phones_national"] = frozenset({BE, NEUTRAL})
            weak["phones_national"] = BE
        elif 1 - sfr - sbe >= SIGNAL_DOMINANT:
            allowed["phones_national"] = frozenset({NEUTRAL})
    possible = all_
    for s in allowed.values():
        possible = possible & s
    ev["allowed"] = {k: sorted(v) for k, v in allowed.items()}
    if not possible:
        return LocaleChoice(NEUTRAL, "detected", "conflicting evidence", ev)
    national = [loc for loc in (FR, BE) if loc in possible]
    supported = [loc for loc in national if any(loc in s for s in strong.values())]
    if not supported:
        supported = [loc for loc in national if sum(1 for w in weak.values() if w == loc) >= 2]
        if not supported:
            why = "no evidence" if not allowed and not weak else "no clear national evidence"
            return LocaleChoice(NEUTRAL, "detected", why, ev)
    if len(supported) == 1:
        return LocaleChoice(supported[0], "detected", "evidence: " + ", ".join(sorted(allowed) or sorted(weak)), ev)
    # French words, no Dutch: FR or BE, told apart by the postcode / phone shapes when present
    votes = {loc: sum(1 for w in weak.values() if w == loc) for loc in supported}
    best = max(supported, key=lambda loc: (votes[loc], loc == FR))
    return LocaleChoice(best, "detected", "French street words; " + (
        "postcode / phone shapes" if votes[best] else "nothing tells FR from BE: FR"), ev)


def detect_locales(person_records: pa.Table, con: duckdb.DuckDBPyConnection | None = None) -> dict[str, LocaleChoice]:
    """Detect the locale of every source of ``person_records`` (keyed by ``source_system``; ''
    for rows without one). Needs ``source_system``, ``country``, ``address_line``, ``postcode``
    and ``phone`` columns (null columns are fine)."""
    db = resources.connect() if con is None else con
    out: dict[str, LocaleChoice] = {}
    try:
        db.register("input", person_records)
        counts: dict[str, dict[str, Any]] = {}
        for src, country, n in db.sql(_country_sql()).fetchall():
            c = counts.setdefault(src, {"src": src, "n_rows": 0, "n_country": 0, "country_fr": 0, "country_be": 0,
                                        "country_other": 0, "no_country_values": []})
            loc = country_locale(country)
            c["n_rows"] += n
            if loc is None:
                if country is not None:
                    c["no_country_values"].append(country)
                continue
            c["n_country"] += n
            c[{FR: "country_fr", BE: "country_be", NEUTRAL: "country_other"}[loc]] += n
        undecided = []
        for src, c in counts.items():
            choice = _by_country(c)
            if choice is None:
                undecided.append(src)
            else:
                out[src] = choice
        if undecided:
            # a deterministic sample (hash of the record key) of about DETECTION_SAMPLE rows per source
            rates = [min(1_000_000, round(1_000_000 * DETECTION_SAMPLE
                                          / max(1, counts[s]["n_rows"] - counts[s]["n_country"])))
                     for s in undecided]
            no_country = sorted({str(v) for s in undecided for v in (counts[s]["no_country_values"] or [])})
            rel = db.sql(_features_sql(), params={"sources": undecided, "rates": rates, "no_country": no_country})
            feats = {r[0]: dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()}
            empty = dict.fromkeys(rel.columns, 0)
            for s in undecided:
                out[s] = decide({**counts[s], **empty, **feats.get(s, {})})
        db.unregister("input")
    finally:
        if con is None:
            db.close()
    return out


def choose_locales(
    person_records: pa.Table,
    locales: Mapping[str, str] | None = None,
    default_locale: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> dict[str, LocaleChoice]:
    """The locale of every source of ``person_records``: the explicit setting, else the default,
    else detected. Sources named in ``locales`` but absent from the data are left out."""
    explicit = {k: normalise_locale(v) for k, v in (locales or {}).items()}
    default = normalise_locale(default_locale) if default_locale is not None else None
    if "source_system" in person_records.column_names:
        sources = sorted({s or "" for s in person_records.column("source_system").unique().to_pylist()})
    else:
        sources = [""]
    out: dict[str, LocaleChoice] = {}
    for s in sources:
        if s in explicit:
            out[s] = LocaleChoice(explicit[s], "setting", f"locales[{s!r}]")
        elif default is not None:
            out[s] = LocaleChoice(default, "default", "default_locale")
    undecided = [s for s in sources if s not in out]
    if undecided:
        table = person_records
        if len(undecided) < len(sources):
            import pyarrow.compute as pc

            keys = pc.fill_null(table["source_system"], "")
            table = table.filter(pc.is_in(keys, pa.array(undecided, pa.string())))
        out.update(detect_locales(table, con))
    for s, c in out.items():
        log.info("source %r: locale %s (%s%s)", s, c.locale, c.how, f": {c.reason}" if c.reason else "")
    return out
