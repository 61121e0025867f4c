"""How each silo sees the commune: who is in it, and with which errors.

:func:`observe` turns a :class:`~sandbox.population.Population` into the silos' own person
tables (silo field names, silo-style noise, plus ``person_id``, the ground truth). The renderers
write those tables out in each silo's format; :func:`person_records` maps them to the canonical
``person_record`` columns (what the staging layer is meant to produce), for measuring matching
without going through the connectors.

A Brussels population (``country="BE"``) adds what Belgian silos do: each silo writes a
person's address in French or in Dutch (Rue Haute 12 bte 3 / Hoogstraat 12 bus 3; a person's
two silos may disagree, Dutch speakers' more often in Dutch), attaches, detaches or re-cases the
particles of surnames (Van den Bossche, Vandenbossche, VAN DEN BOSSCHE, van den Bossche), mostly
uses the birth name of a married woman, writes +32 numbers the Belgian ways (0475 12 34 56,
0475/12.34.56, +32 2 512 34 56) and drops the box number now and then. These draws come from
streams of their own: the French silos are unchanged.

Noise, as real silos disagree: nom d'usage vs nom de naissance, first prénom only, accents
dropped, upper case, hyphen vs space in compound names, one-character typos, day/month swaps,
an old address after a move, missing e-mail/phone, phone formats, e-mail case, duplicates of one
person inside a silo. Hard negatives come from the population itself: twins, namesakes,
household members sharing surname, address, landline and sometimes e-mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from sandbox import names_be as NB
from sandbox.population import REFERENCE_DATE, Population, ascii_fold, generate_population
from schemas.contract import PERSON_RECORD, arrow_schema

# Observation noise draws from its own stream, so changing it never reshuffles the population.
_STREAM = 1

REFERENCE_TIME = datetime(REFERENCE_DATE.year, REFERENCE_DATE.month, REFERENCE_DATE.day, 6, 0, tzinfo=UTC)
_REF_S = np.datetime64(REFERENCE_TIME.replace(tzinfo=None).isoformat(), "s")

# Per-silo noise rates (probabilities per record).
FINANCE_HOUSEHOLD_SHARE = 0.40
FINANCE_DUPLICATE_RATE = 0.02
TYPO_RATE = {"finance": 0.04, "family": 0.03, "associations": 0.05, "salesforce": 0.03, "servicenow": 0.03}
DATE_SWAP_RATE = 0.01
DIRIGEANT_SHARE = 0.04
# CRM silos: share of adults who contacted the authority, and duplicates (web forms create them)
SALESFORCE_SHARE = 0.25
SALESFORCE_DUPLICATE_RATE = 0.03
SERVICENOW_SHARE = 0.15
SERVICENOW_DUPLICATE_RATE = 0.02
# Each CRM silo draws from its own stream: adding them left the other silos' data unchanged.
_SALESFORCE_STREAM = 5
_SERVICENOW_STREAM = 6
# Belgian-only noise (address language, particles, birth names, box numbers): its own stream too.
_BE_STREAM = 11
# Brussels: share of records a silo writes in Dutch, for a Dutch-speaking / French-speaking person.
BE_DUTCH_RATE = {"finance": (0.6, 0.05), "family": (0.85, 0.08), "associations": (0.7, 0.05),
                 "salesforce": (0.8, 0.12), "servicenow": (0.7, 0.12)}
# Brussels: share of a married woman's records under her birth name rather than a usage name.
BE_BIRTH_NAME_RATE = {"finance": 0.75, "family": 0.6, "associations": 0.5, "salesforce": 0.35,
                      "servicenow": 0.35}
BE_PARTICLE_RATE = 0.4  # records whose surname particle a silo writes its own way
BE_BOX_DROP_RATE = {"finance": 0.3, "family": 0.1, "associations": 0.25, "salesforce": 0.2, "servicenow": 0.3}

_ABBREVIATIONS = {
    "rue": ("RUE", "RUE", "R"),
    "avenue": ("AVENUE", "AV", "AVE"),
    "boulevard": ("BOULEVARD", "BD", "BLVD"),
    "impasse": ("IMPASSE", "IMP"),
    "allée": ("ALLEE", "ALL"),
    "place": ("PLACE", "PL"),
    "chemin": ("CHEMIN", "CHE", "CH"),
}
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Observations:
    """The silos' person-level tables (silo field names + ``person_id``), before rendering."""

    finance_tiers: pa.Table
    family_familles: pa.Table
    family_responsables: pa.Table
    family_enfants: pa.Table
    associations: pa.Table
    dirigeants: pa.Table
    seed: int
    # Salesforce Contacts (+ AccountId of their household account) and ServiceNow sys_user rows
    salesforce_contacts: pa.Table | None = None
    servicenow_users: pa.Table | None = None
    country: str = "FR"  # of the population observed: "FR" or "BE"


# ---------------------------------------------------------------------------- noise primitives


def typo(text: str, op: int, where: float, letter: int) -> str:
    """One-character edit of ``text``: substitute, delete, transpose or double a letter."""
    if len(text) < 3:
        return text
    pos = 1 + int(where * (len(text) - 2))  # never the first letter: people rarely miss that one
    ch = _LETTERS[letter % 26]
    if ch == text[pos].lower():  # a substitution must change something
        ch = _LETTERS[(letter + 1) % 26]
    if text[pos - 1].isupper() and text[pos].isupper():
        ch = ch.upper()
    if op == 0:
        return text[:pos] + ch + text[pos + 1:]
    if op == 2 and pos + 1 < len(text) and text[pos] != text[pos + 1]:
        return text[:pos] + text[pos + 1] + text[pos] + text[pos + 2:]
    if op in (1, 2):  # delete (also when a transposition would change nothing)
        return text[:pos] + text[pos + 1:]
    return text[:pos] + text[pos] + text[pos:]


def format_phone(e164: str, style: int) -> str:
    """Write a +33 (or +32) number the ways people and forms do."""
    if e164.startswith("+32"):
        return format_phone_be(e164, style)
    national = "0" + e164[3:]
    pairs = " ".join(national[i:i + 2] for i in range(0, 10, 2))
    if style == 0:
        return pairs
    if style == 1:
        return national
    if style == 2:
        return e164
    if style == 3:
        return f"+33 {national[1]} " + " ".join(national[i:i + 2] for i in range(2, 10, 2))
    if style == 4:
        return national[1:]
    return pairs.replace(" ", ".")


def format_phone_be(e164: str, style: int) -> str:
    """Write a +32 number the Belgian ways: 0475 12 34 56, 0475123456, +32475123456,
    +32 475 12 34 56, 0475/12.34.56, 0032 475 12 34 56 (Brussels landlines: 02 512 34 56, ...)."""
    rest = e164[3:]
    zone, sub = (rest[:3], rest[3:]) if rest[0] == "4" else (rest[:1], rest[1:])
    # subscriber groups: xx xx xx for mobiles, xxx xx xx for Brussels
    groups = [sub[i:i + 2] for i in range(0, len(sub), 2)] if len(sub) == 6 else [sub[:3], sub[3:5], sub[5:]]
    if style == 0:
        return f"0{zone} " + " ".join(groups)
    if style == 1:
        return "0" + rest
    if style == 2:
        return e164
    if style == 3:
        return f"+32 {zone} " + " ".join(groups)
    if style == 4:
        return f"0{zone}/" + ".".join(groups)
    return f"0032 {zone} " + " ".join(groups)


_PARTICLES = sorted(NB.PARTICLES, key=len, reverse=True)
_ONE_WORD = {"Van den": "Vanden", "Van der": "Vander", "Van de": "Vande"}
_TWO_WORDS = {v: k for k, v in _ONE_WORD.items()}


def _leading_particle(name: str) -> str | None:
    """The particle a surname starts with as the register writes it (Van den, De, El), if any."""
    for p in _PARTICLES:
        if name.startswith(p + " ") and len(name) > len(p) + 1:
            return p
    return None


def particle_variant(name: str, kind: int) -> str:
    """A surname's particle the way another silo writes it: 0 attached (Vandenbossche), 1 the other
    Dutch form (Vanden Bossche ↔ Van den Bossche; others capitalised: De La Fuente), 2 lower case
    (van den Bossche), 3 every word capitalised (Van Den Bossche)."""
    p = _leading_particle(name)
    if p is None:
        return name
    rest = name[len(p) + 1:]
    if kind == 0:
        first, _, more = rest.partition(" ")
        return p[0] + p[1:].replace(" ", "").lower() + first.lower() + (" " + more if more else "")
    if kind == 1 and p in _ONE_WORD:
        return f"{_ONE_WORD[p]} {rest}"
    if kind == 1 and p in _TWO_WORDS:
        return f"{_TWO_WORDS[p]} {rest}"
    if kind == 2:
        return f"{p.lower()} {rest}"
    return " ".join(w[:1].upper() + w[1:] for w in p.split(" ")) + " " + rest


def _particle_noise(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Particles attached, detached or re-cased on BE_PARTICLE_RATE of the names."""
    out = values.copy()
    n = len(out)
    hit = rng.random(n) < BE_PARTICLE_RATE
    kind = rng.integers(0, 4, size=n)
    for i in np.flatnonzero(hit):
        if out[i] is not None:
            out[i] = particle_variant(out[i], int(kind[i]))
    return out


def _apply(values: np.ndarray, mask: np.ndarray, fn) -> None:
    """values[mask] = fn(value) for non-null values, in place."""
    for i in np.flatnonzero(mask):
        v = values[i]
        if v is not None:
            values[i] = fn(v)


def _noisy_names(rng: np.random.Generator, values: np.ndarray, *, upper: float, fold: float,
                 swap_sep: float, lower: float = 0.0, particles: np.random.Generator | None = None) -> np.ndarray:
    """Case, accent and compound-separator noise on a column of names; with ``particles`` (a
    Brussels silo's own stream) surname particles written that silo's way too, never hyphenated."""
    out = values.copy() if particles is None else _particle_noise(particles, values)
    n = len(out)
    _apply(out, rng.random(n) < fold, ascii_fold)
    r = rng.random(n)
    if particles is None:
        _apply(out, r < swap_sep, lambda s: s.replace("-", " ") if "-" in s else s.replace(" ", "-"))
    else:
        _apply(out, r < swap_sep, lambda s: s.replace("-", " ") if "-" in s
               else s if _leading_particle(s) or _leading_particle(s.title()) else s.replace(" ", "-"))
    r = rng.random(n)
    _apply(out, r < upper, str.upper)
    _apply(out, (r >= upper) & (r < upper + lower), str.lower)
    return out


def _typos(rng: np.random.Generator, given: np.ndarray, surname: np.ndarray, rate: float,
           eligible: np.ndarray | None = None) -> None:
    """One typo in either the prénom or the nom of ``rate`` of the (eligible) records, in place."""
    n = len(given)
    hit = rng.random(n) < rate
    if eligible is not None:
        hit &= eligible
    on_given = rng.random(n) < 0.5
    op = rng.integers(0, 4, size=n)
    where = rng.random(n)
    letter = rng.integers(0, 26, size=n)
    for i in np.flatnonzero(hit):
        target = given if on_given[i] else surname
        if target[i] is not None:
            target[i] = typo(target[i], int(op[i]), float(where[i]), int(letter[i]))


def _phones(rng: np.random.Generator, e164: np.ndarray, present: float, styles: list[float]) -> np.ndarray:
    n = len(e164)
    keep = rng.random(n) < present
    style = rng.choice(len(styles), size=n, p=np.array(styles) / sum(styles))
    out = np.full(n, None, dtype=object)
    for i in np.flatnonzero(keep):
        if e164[i] is not None:
            out[i] = format_phone(e164[i], int(style[i]))
    return out


def _emails(rng: np.random.Generator, email: np.ndarray, present: float, recase: float) -> np.ndarray:
    n = len(email)
    out = np.where(rng.random(n) < present, email, None)
    r = rng.random(n)
    _apply(out, r < recase * 0.5, str.upper)
    _apply(out, (r >= recase * 0.5) & (r < recase),
           lambda e: ".".join(p.capitalize() for p in e.split("@")[0].split(".")) + "@" + e.split("@")[1])
    return out


def _swap_day_month(rng: np.random.Generator, dates: np.ndarray, rate: float) -> np.ndarray:
    """Swap day and month on ``rate`` of the dates where the result is still a valid, different date."""
    d = dates.astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    m = (d.astype("datetime64[M]") - y).astype(np.int64) + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    swap = (rng.random(len(d)) < rate) & (day <= 12) & (day != m)
    out = d.copy()
    out[swap] = (y[swap] + (day[swap] - 1).astype("timedelta64[M]")).astype("datetime64[D]") + (
        m[swap] - 1
    ).astype("timedelta64[D]")
    return out


def _first_given(values: np.ndarray) -> np.ndarray:
    return np.array([v.split(" ", 1)[0] for v in values], dtype=object)


def _finance_address(line: str, variant: int) -> str:
    parts = line.split(" ")
    k = 2 if len(parts) > 2 and parts[1] == "bis" else 1
    forms = _ABBREVIATIONS.get(parts[k])
    if forms:
        parts[k] = forms[variant % len(forms)]
    return ascii_fold(" ".join(parts)).upper()


_BE_STREET_FORMS = {
    "RUE": ("RUE", "RUE", "R."), "AVENUE": ("AVENUE", "AV.", "AV"), "BOULEVARD": ("BOULEVARD", "BD", "BLD"),
    "CHAUSSEE": ("CHAUSSEE", "CHAUSSEE", "CH."), "PLACE": ("PLACE", "PL.", "PL"),
}
_BE_SUFFIX_FORMS = (("STEENWEG", ("STEENWEG", "STWG", "STEENWG")), ("STRAAT", ("STRAAT", "STR.", "STR")),
                    ("LAAN", ("LAAN", "LAAN", "LN")))
_BE_BOX_FORMS = {"BTE": ("BTE", "BOITE", "B"), "BUS": ("BUS", "BUS", "B")}


def _finance_address_be(line: str, variant: int) -> str:
    """A Brussels street line as an old finance system keeps it: upper case, no accents, the street
    type (or the Dutch suffix) and the box word abbreviated one of its ways."""
    words = ascii_fold(line).upper().split(" ")
    forms = _BE_STREET_FORMS.get(words[0])
    if forms:
        words[0] = forms[variant % len(forms)]
    for i, w in enumerate(words):
        if w in _BE_BOX_FORMS:
            words[i] = _BE_BOX_FORMS[w][variant % 3]
            continue
        for suffix, sforms in _BE_SUFFIX_FORMS:
            if w.endswith(suffix):
                words[i] = w[: len(w) - len(suffix)] + sforms[variant % len(sforms)]
                break
    return " ".join(words)


def _timestamps(rng: np.random.Generator, n: int, max_days: int) -> np.ndarray:
    return _REF_S - rng.integers(0, max_days * 86400, size=n).astype("timedelta64[s]")


def _col(persons: pa.Table, name: str) -> np.ndarray:
    return np.array(persons.column(name).to_pylist(), dtype=object)


# ---------------------------------------------------------------------------- the silos


def observe(pop: Population, seed: int | None = None) -> Observations:
    """Each silo's view of the population, with silo-style noise (deterministic for a seed)."""
    seed = pop.seed if seed is None else seed
    rng = np.random.default_rng([seed, _STREAM])
    p = pop.persons
    n = p.num_rows
    hh = p.column("household_id").to_numpy() - 1
    n_h = pop.households.num_rows
    role = _col(p, "household_role")
    is_adult = role != "enfant"
    birth = p.column("birth_date").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    age = (np.datetime64(REFERENCE_DATE.isoformat(), "D") - birth).astype(np.int64) / 365.25
    given = _col(p, "given_names")
    birth_name = _col(p, "birth_name")
    usage_name = _col(p, "usage_name")
    sex = _col(p, "sex")
    email = _col(p, "email")
    phone = _col(p, "phone")
    line = _col(p, "address_line")
    postcode = _col(p, "postcode")
    city = _col(p, "city")
    city_code = _col(p, "city_code")
    prev_line = _col(p, "previous_address_line")
    prev_postcode = _col(p, "previous_postcode")
    prev_city = _col(p, "previous_city")
    prev_city_code = _col(p, "previous_city_code")
    moved = np.array([x is not None for x in prev_line])
    landline_h = np.array(pop.households.column("landline").to_pylist(), dtype=object)
    be = pop.country == "BE"
    # Brussels: the Dutch forms of the addresses, and a stream of its own for the Belgian noise
    rb = np.random.default_rng([seed, _BE_STREAM]) if be else None
    dutch = _Dutch.of(p) if be else None

    def surname_of(silo: str, idx: np.ndarray) -> np.ndarray:
        """The name a silo files a person under: the usage name; in Brussels mostly the birth name."""
        if rb is None:
            return usage_name[idx]
        return np.where((usage_name[idx] != birth_name[idx]) & (rb.random(len(idx)) < BE_BIRTH_NAME_RATE[silo]),
                        birth_name[idx], usage_name[idx])

    # ------------------------------------------------------------ finance: débiteurs
    fin_h = rng.random(n_h) < FINANCE_HOUSEHOLD_SHARE
    both = rng.random(n_h) < 0.5
    pick_second = rng.random(n_h) < 0.35  # sometimes the conjoint is the one invoiced
    member = np.arange(n) - np.searchsorted(hh, hh)  # position inside the household
    in_fin = fin_h[hh] & is_adult & (both[hh] | ((member == 1) == pick_second[hh]))
    # a single adult household with pick_second would select nobody: take the head then
    single_adult_h = np.bincount(hh, weights=is_adult, minlength=n_h) == 1
    in_fin |= fin_h[hh] & single_adult_h[hh] & (member == 0)
    fin_p = np.flatnonzero(in_fin)
    dup = rng.random(len(fin_p)) < FINANCE_DUPLICATE_RATE
    fin_p = np.concatenate([fin_p, fin_p[dup]])
    is_dup = np.concatenate([np.zeros(len(fin_p) - int(dup.sum()), bool), np.ones(int(dup.sum()), bool)])
    order = rng.permutation(len(fin_p))  # tiers ids follow creation order, not households
    fin_p, is_dup = fin_p[order], is_dup[order]
    k = len(fin_p)
    nom = _noisy_names(rng, surname_of("finance", fin_p), upper=1.0, fold=0.6, swap_sep=0.3, particles=rb)
    prenom = _noisy_names(rng, _first_given(given[fin_p]), upper=1.0, fold=0.6, swap_sep=0.3)
    _typos(rng, prenom, nom, TYPO_RATE["finance"])
    differs = birth_name[fin_p] != usage_name[fin_p]
    nom_naissance = np.where(differs & (rng.random(k) < 0.35), birth_name[fin_p], None)
    nom_naissance = _noisy_names(rng, nom_naissance, upper=1.0, fold=0.6, swap_sep=0.2, particles=rb)
    civ = np.where(sex[fin_p] == "F", "Mme", "M.")
    civ = np.where(rng.random(k) < 0.85, civ, None)
    dob = _swap_day_month(rng, birth[fin_p], DATE_SWAP_RATE)
    has_dob = rng.random(k) < 0.35
    # After a move, the finance file often still has the old address (and duplicates are often
    # the same person created again at the new address).
    old = moved[fin_p] & ((rng.random(k) < 0.5) | is_dup)
    use_line = np.where(old, prev_line[fin_p], line[fin_p])
    use_pc = np.where(old, prev_postcode[fin_p], postcode[fin_p])
    use_city = np.where(old, prev_city[fin_p], city[fin_p])
    variant = rng.integers(0, 3, size=k)
    if dutch is not None:
        use_line, use_city = dutch.written(rb, "finance", fin_p, old, use_line, use_city)
    to_line = _finance_address_be if be else _finance_address
    adresse = np.array([to_line(a, int(v)) for a, v in zip(use_line, variant, strict=True)], dtype=object)
    ville = np.array([ascii_fold(c).upper() for c in use_city], dtype=object)
    fin_phone_src = np.where(
        (rng.random(k) < 0.15) & (landline_h[hh[fin_p]] != None), landline_h[hh[fin_p]], phone[fin_p]  # noqa: E711
    )
    telephone = _phones(rng, fin_phone_src, 0.75, [0.45, 0.2, 0.15, 0.05, 0.1, 0.05])
    fin_email = _emails(rng, email[fin_p], 0.4, 0.15)
    groupe = np.where(rng.random(n_h) < 0.7, np.arange(1, n_h + 1), 0)[hh[fin_p]]
    supprime = rng.random(k) < 0.01
    finance_tiers = pa.table(
        {
            "id": pa.array(np.arange(1, k + 1, dtype=np.int64)),
            "civilite": pa.array(civ, type=pa.string()),
            "nom": pa.array(nom, type=pa.string()),
            "nom_naissance": pa.array(nom_naissance, type=pa.string()),
            "prenom": pa.array(prenom, type=pa.string()),
            "date_naissance": pa.array(dob, type=pa.date32(), mask=~has_dob),
            "adresse": pa.array(adresse, type=pa.string()),
            "code_postal": pa.array(use_pc, type=pa.string()),
            "ville": pa.array(ville, type=pa.string()),
            "telephone": pa.array(telephone, type=pa.string()),
            "email": pa.array(fin_email, type=pa.string()),
            "groupe_id": pa.array(groupe, type=pa.int64(), mask=groupe == 0),
            "updated_at": pa.array(_timestamps(rng, k, 3 * 365), type=pa.timestamp("s")),
            "supprime": pa.array(supprime),
            "person_id": pa.array(fin_p + 1, type=pa.int64()),
            "household_id": pa.array(hh[fin_p] + 1, type=pa.int64()),
        }
    )

    # ------------------------------------------------------------ family portal
    child_3_17 = ~is_adult & (age >= 3) & (age < 18)
    fam_h = np.bincount(hh, weights=child_3_17, minlength=n_h) > 0
    fam_ids = np.cumsum(fam_h)  # famille id per household (valid where fam_h)
    resp_p = np.flatnonzero(fam_h[hh] & is_adult)
    enf_p = np.flatnonzero(fam_h[hh] & child_3_17)
    r_n, e_n = len(resp_p), len(enf_p)
    certif = rng.choice(["declaratif", "justificatif", "franceconnect"], size=r_n, p=[0.6, 0.3, 0.1])
    fc = certif == "franceconnect"
    # FranceConnect identities come from the civil register: full prénoms, accents, no typo.
    r_prenoms = np.where((rng.random(r_n) < 0.75) | fc, given[resp_p], _first_given(given[resp_p]))
    r_prenoms = np.where(fc, r_prenoms, _noisy_names(rng, r_prenoms, upper=0.1, fold=0.15, swap_sep=0.1,
                                                     lower=0.02))
    r_nom = np.where(fc, usage_name[resp_p], _noisy_names(rng, surname_of("family", resp_p), upper=0.15,
                                                          fold=0.15, swap_sep=0.15, lower=0.02, particles=rb))
    _typos(rng, r_prenoms, r_nom, TYPO_RATE["family"], ~fc)
    r_differs = birth_name[resp_p] != usage_name[resp_p]
    r_nom_naissance = np.where(r_differs & ((rng.random(r_n) < 0.7) | fc), birth_name[resp_p], None)
    r_dob = np.where(fc, birth[resp_p], _swap_day_month(rng, birth[resp_p], DATE_SWAP_RATE))
    lien = np.where(sex[resp_p] == "F", "mere", "pere")
    lien = np.where(rng.random(r_n) < 0.02, "tuteur", lien)
    r_phone_src = np.where(
        (rng.random(r_n) < 0.1) & (landline_h[hh[resp_p]] != None), landline_h[hh[resp_p]], phone[resp_p]  # noqa: E711
    )
    family_responsables = pa.table(
        {
            "id": pa.array(np.arange(1, r_n + 1, dtype=np.int64)),
            "famille_id": pa.array(fam_ids[hh[resp_p]].astype(np.int64)),
            "lien": pa.array(lien, type=pa.string()),
            "prenoms": pa.array(r_prenoms, type=pa.string()),
            "nom": pa.array(r_nom, type=pa.string()),
            "nom_naissance": pa.array(r_nom_naissance, type=pa.string()),
            "sexe": pa.array(sex[resp_p], type=pa.string()),
            "date_naissance": pa.array(r_dob.astype("datetime64[D]"), type=pa.date32()),
            "email": pa.array(_emails(rng, email[resp_p], 0.92, 0.1), type=pa.string()),
            "telephone": pa.array(_phones(rng, r_phone_src, 0.9, [0.5, 0.3, 0.1, 0.1, 0, 0]), type=pa.string()),
            "certification": pa.array(certif, type=pa.string()),
            "updated_at": pa.array(_timestamps(rng, r_n, 2 * 365), type=pa.timestamp("s")),
            "deleted": pa.array(rng.random(r_n) < 0.01),
            "person_id": pa.array(resp_p + 1, type=pa.int64()),
            "household_id": pa.array(hh[resp_p] + 1, type=pa.int64()),
        }
    )
    e_prenoms = np.where(rng.random(e_n) < 0.6, given[enf_p], _first_given(given[enf_p]))
    e_prenoms = _noisy_names(rng, e_prenoms, upper=0.08, fold=0.1, swap_sep=0.1)
    e_nom = _noisy_names(rng, usage_name[enf_p], upper=0.1, fold=0.1, swap_sep=0.15, particles=rb)
    _typos(rng, e_prenoms, e_nom, TYPO_RATE["family"])
    school_age = np.floor(age[enf_p]).astype(np.int64)
    classes = np.array(["PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2", "6e", "5e", "4e", "3e",
                        "2nde", "1re", "Tle"], dtype=object)
    classe = classes[np.clip(school_age - 3, 0, len(classes) - 1)]
    ecole_kind = np.where(school_age < 6, "École maternelle", np.where(school_age < 11, "École élémentaire",
                          np.where(school_age < 15, "Collège", "Lycée")))
    school_names = np.array(["Jules Ferry", "Jean Macé", "Louis Pasteur", "Victor Hugo", "Marie Curie",
                             "Jean Moulin", "Simone Veil", "Condorcet", "Lamartine", "Les Tilleuls"], dtype=object)
    ecole = ecole_kind.astype(object) + " " + school_names[(hh[enf_p] * 7 + school_age // 5) % len(school_names)]
    if be:  # maternel / primaire / secondaire (kleuter / lager / secundair): M1-M3, P1-P6, S1-S6
        classe = np.array(NB.SCHOOL_CLASSES, dtype=object)[np.clip(school_age - 3, 0, len(NB.SCHOOL_CLASSES) - 1)]
        be_schools = np.array(NB.SCHOOL_NAMES, dtype=object)
        ecole = be_schools[(hh[enf_p] * 7 + school_age // 6) % len(be_schools)]
    family_enfants = pa.table(
        {
            "id": pa.array(np.arange(1, e_n + 1, dtype=np.int64)),
            "famille_id": pa.array(fam_ids[hh[enf_p]].astype(np.int64)),
            "prenoms": pa.array(e_prenoms, type=pa.string()),
            "nom": pa.array(e_nom, type=pa.string()),
            "sexe": pa.array(sex[enf_p], type=pa.string()),
            "date_naissance": pa.array(_swap_day_month(rng, birth[enf_p], DATE_SWAP_RATE), type=pa.date32()),
            "ecole": pa.array(ecole, type=pa.string()),
            "classe": pa.array(classe, type=pa.string()),
            "updated_at": pa.array(_timestamps(rng, e_n, 2 * 365), type=pa.timestamp("s")),
            "deleted": pa.array(rng.random(e_n) < 0.01),
            "person_id": pa.array(enf_p + 1, type=pa.int64()),
            "household_id": pa.array(hh[enf_p] + 1, type=pa.int64()),
        }
    )
    fam_hh = np.flatnonzero(fam_h)
    head = np.searchsorted(hh, fam_hh)  # first member of each household
    f_n = len(fam_hh)
    f_old = moved[head] & (rng.random(f_n) < 0.15)
    f_line = np.where(f_old, prev_line[head], line[head])
    f_city = np.where(f_old, prev_city[head], city[head])
    if dutch is not None:
        f_line, f_city = dutch.written(rb, "family", head, f_old, f_line, f_city)
    family_familles = pa.table(
        {
            "id": pa.array(np.arange(1, f_n + 1, dtype=np.int64)),
            "nom_famille": pa.array([s.upper() for s in usage_name[head]], type=pa.string()),
            "ligne": pa.array(f_line, type=pa.string()),
            "code_postal": pa.array(np.where(f_old, prev_postcode[head], postcode[head]), type=pa.string()),
            "commune": pa.array(f_city, type=pa.string()),
            "code_insee": pa.array(np.where(f_old, prev_city_code[head], city_code[head]), type=pa.string()),
            "quotient_familial": pa.array(rng.gamma(3.0, 330.0, size=f_n).astype(np.int64)),
            "updated_at": pa.array(_timestamps(rng, f_n, 2 * 365), type=pa.timestamp("s")),
            "household_id": pa.array(fam_hh + 1, type=pa.int64()),
        }
    )

    # ------------------------------------------------------------ associations: dirigeants
    adults = np.flatnonzero(is_adult & (age >= 20))
    n_dir = max(6, int(len(adults) * DIRIGEANT_SHARE))
    # Guarantee people known to all three silos: part of the dirigeants are invoiced parents.
    fin_set = np.zeros(n, dtype=bool)
    fin_set[fin_p] = True
    fam_set = np.zeros(n, dtype=bool)
    fam_set[resp_p] = True
    everywhere = np.flatnonzero(fin_set & fam_set)
    n_forced = min(len(everywhere), max(2, n_dir // 6))
    forced = rng.choice(everywhere, size=n_forced, replace=False) if n_forced else np.array([], np.int64)
    rest = np.setdiff1d(adults, forced)
    chosen = np.concatenate([forced, rng.choice(rest, size=n_dir - n_forced, replace=False)])
    chosen = chosen[rng.permutation(len(chosen))]
    # A few people run two associations: same person, two dirigeant rows.
    twice = chosen[rng.random(len(chosen)) < 0.03]
    dir_p = np.concatenate([chosen, twice])
    dir_p = dir_p[rng.permutation(len(dir_p))]
    d_n = len(dir_p)
    sizes = rng.choice([2, 3], size=d_n, p=[0.4, 0.6])
    asso_of = np.repeat(np.arange(d_n), sizes)[:d_n]  # 2-3 dirigeants per association, in order
    a_n = int(asso_of.max()) + 1
    fonction_cycle = np.array(["Président", "Trésorier", "Secrétaire"], dtype=object)
    pos = np.arange(d_n) - np.searchsorted(asso_of, asso_of)
    d_nom = _noisy_names(rng, surname_of("associations", dir_p), upper=0.25, fold=0.3, swap_sep=0.15, lower=0.02,
                         particles=rb)
    d_prenom = np.where(rng.random(d_n) < 0.85, _first_given(given[dir_p]), given[dir_p])
    d_prenom = _noisy_names(rng, d_prenom, upper=0.1, fold=0.3, swap_sep=0.15)
    _typos(rng, d_prenom, d_nom, TYPO_RATE["associations"])
    d_old = moved[dir_p] & (rng.random(d_n) < 0.3)
    d_dob = _swap_day_month(rng, birth[dir_p], DATE_SWAP_RATE)
    d_line = np.where(d_old, prev_line[dir_p], line[dir_p])
    d_city = np.where(d_old, prev_city[dir_p], city[dir_p])
    if dutch is not None:
        d_line, d_city = dutch.written(rb, "associations", dir_p, d_old, d_line, d_city)
    d_has_dob = rng.random(d_n) < 0.5
    dirigeants = pa.table(
        {
            "id": pa.array(np.arange(1, d_n + 1, dtype=np.int64)),
            "association": pa.array(asso_of.astype(np.int64)),
            "fonction": pa.array(fonction_cycle[pos % 3], type=pa.string()),
            "civilite": pa.array(np.where(sex[dir_p] == "F", "Mme", "M."), type=pa.string()),
            "nom": pa.array(d_nom, type=pa.string()),
            "prenom": pa.array(d_prenom, type=pa.string()),
            "date_naissance": pa.array(d_dob, type=pa.date32(), mask=~d_has_dob),
            "email": pa.array(_emails(rng, email[dir_p], 0.8, 0.1), type=pa.string()),
            "telephone": pa.array(_phones(rng, phone[dir_p], 0.8, [0.4, 0.2, 0.1, 0.1, 0.05, 0.15]),
                                  type=pa.string()),
            "adresse": pa.array(d_line, type=pa.string()),
            "code_postal": pa.array(np.where(d_old, prev_postcode[dir_p], postcode[dir_p]), type=pa.string()),
            "commune": pa.array(d_city, type=pa.string()),
            "date_maj": pa.array(_timestamps(rng, d_n, 3 * 365).astype("datetime64[D]"), type=pa.date32()),
            "person_id": pa.array(dir_p + 1, type=pa.int64()),
        }
    )
    associations = _associations(rng, a_n, be=be)
    crm = _CrmInput(is_adult=is_adult & (age >= 18), hh=hh, given=given, birth_name=birth_name,
                    usage_name=usage_name, sex=sex, birth=birth, email=email, phone=phone, line=line,
                    postcode=postcode, city=city, prev_line=prev_line, prev_postcode=prev_postcode,
                    prev_city=prev_city, moved=moved, landline_h=landline_h, dutch=dutch, seed=seed)
    return Observations(
        finance_tiers=finance_tiers,
        family_familles=family_familles,
        family_responsables=family_responsables,
        family_enfants=family_enfants,
        associations=associations,
        dirigeants=dirigeants,
        seed=seed,
        salesforce_contacts=_salesforce_contacts(np.random.default_rng([seed, _SALESFORCE_STREAM]), crm),
        servicenow_users=_servicenow_users(np.random.default_rng([seed, _SERVICENOW_STREAM]), crm),
        country=pop.country,
    )


_BOX = re.compile(r" (?:bte|bus) \d+$")


@dataclass(frozen=True)
class _Dutch:
    """A Brussels population's Dutch address forms (one row per person) and who speaks Dutch."""

    line: np.ndarray
    prev_line: np.ndarray
    city: np.ndarray
    prev_city: np.ndarray
    speaks_dutch: np.ndarray

    @classmethod
    def of(cls, persons: pa.Table) -> _Dutch:
        return cls(_col(persons, "address_line_nl"), _col(persons, "previous_address_line_nl"),
                   _col(persons, "city_nl"), _col(persons, "previous_city_nl"),
                   _col(persons, "language") == "nl")

    def written(self, rng: np.random.Generator, silo: str, idx: np.ndarray, old: np.ndarray,
                line: np.ndarray, city: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The street lines and cities a silo writes for persons ``idx`` (``old``: the address before
        the move): in Dutch for part of its records (most of a Dutch speaker's), the box number
        left out of some."""
        dutch_rate, french_speaker_rate = BE_DUTCH_RATE[silo]
        nl = rng.random(len(idx)) < np.where(self.speaks_dutch[idx], dutch_rate, french_speaker_rate)
        nl &= np.array([v is not None for v in line], dtype=bool)  # no address stays no address
        line = np.where(nl, np.where(old, self.prev_line[idx], self.line[idx]), line)
        city = np.where(nl, np.where(old, self.prev_city[idx], self.city[idx]), city)
        drop = rng.random(len(idx)) < BE_BOX_DROP_RATE[silo]
        line = np.array([_BOX.sub("", v) if d and v is not None else v for v, d in zip(line, drop, strict=True)],
                        dtype=object)
        return line, city


@dataclass(frozen=True)
class _CrmInput:
    """The population columns the CRM silos draw from (numpy object arrays, one row per person)."""

    is_adult: np.ndarray
    hh: np.ndarray
    given: np.ndarray
    birth_name: np.ndarray
    usage_name: np.ndarray
    sex: np.ndarray
    birth: np.ndarray
    email: np.ndarray
    phone: np.ndarray
    line: np.ndarray
    postcode: np.ndarray
    city: np.ndarray
    prev_line: np.ndarray
    prev_postcode: np.ndarray
    prev_city: np.ndarray
    moved: np.ndarray
    landline_h: np.ndarray
    dutch: _Dutch | None = None  # Brussels: the Dutch forms of the addresses
    seed: int = 0

    def belgian_stream(self, stream: int) -> np.random.Generator | None:
        """A CRM silo's own stream for the Belgian noise (None for a French population)."""
        return None if self.dutch is None else np.random.default_rng([self.seed, _BE_STREAM, stream])

    def surname_of(self, rb: np.random.Generator | None, silo: str, idx: np.ndarray) -> np.ndarray:
        """The usage name; in Brussels (``rb`` given) the birth name for part of the married women."""
        if rb is None:
            return self.usage_name[idx]
        kept = (self.usage_name[idx] != self.birth_name[idx]) & (rb.random(len(idx)) < BE_BIRTH_NAME_RATE[silo])
        return np.where(kept, self.birth_name[idx], self.usage_name[idx])


_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SF_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: 3-char key prefix (003 Contact, 001 Account, 500 Case), a pod
    part, the number in base 62, and the real case-safe checksum suffix."""
    digits = ""
    for _ in range(6):
        number, r = divmod(number, 62)
        digits = _BASE62[r] + digits
    base = f"{prefix}5g0000{digits}"
    suffix = ""
    for chunk in range(3):
        flags = sum(1 << i for i, ch in enumerate(base[chunk * 5:chunk * 5 + 5]) if ch.isupper())
        suffix += _SF_SUFFIX[flags]
    return base + suffix


def _sys_ids(rng: np.random.Generator, n: int) -> list[str]:
    """ServiceNow sys_ids: 32 lower-case hex characters, distinct."""
    raw = rng.integers(0, 2**63, size=(n, 2), dtype=np.int64)
    ids = [f"{a:016x}{b:016x}" for a, b in raw.tolist()]
    if len(set(ids)) != n:  # 128 random bits: never in practice, but ids must be unique
        raise ValueError("sys_id collision")
    return ids


def _crm_people(rng: np.random.Generator, c: _CrmInput, share: float, dup_rate: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Which adults a CRM knows (in record-creation order) and which rows are duplicates."""
    adults = np.flatnonzero(c.is_adult)
    chosen = adults[rng.random(len(adults)) < share]
    dup = chosen[rng.random(len(chosen)) < dup_rate]
    people = np.concatenate([chosen, dup])
    is_dup = np.concatenate([np.zeros(len(chosen), bool), np.ones(len(dup), bool)])
    order = rng.permutation(len(people))
    return people[order], is_dup[order]


def _proper(values: np.ndarray) -> np.ndarray:
    """Names as web forms keep them: the case people typed, mostly capitalised."""
    return np.array([v if v is None else v[:1].upper() + v[1:] for v in values], dtype=object)


def _salesforce_contacts(rng: np.random.Generator, c: _CrmInput) -> pa.Table:
    """Contacts of a citizen-relations Salesforce org: first prénom, usage name, e-mail for nearly all,
    mobile and sometimes the household landline, birth date for about half, the mailing address
    (old after a move for some), duplicates created by web forms."""
    p, is_dup = _crm_people(rng, c, SALESFORCE_SHARE, SALESFORCE_DUPLICATE_RATE)
    k = len(p)
    rb = c.belgian_stream(_SALESFORCE_STREAM)
    first = np.where(rng.random(k) < 0.9, _first_given(c.given[p]), c.given[p])
    first = _noisy_names(rng, first, upper=0.03, fold=0.2, swap_sep=0.1, lower=0.03)
    last = _noisy_names(rng, c.surname_of(rb, "salesforce", p), upper=0.25, fold=0.2, swap_sep=0.1, lower=0.02,
                        particles=rb)
    _typos(rng, first, last, TYPO_RATE["salesforce"])
    dob = _swap_day_month(rng, c.birth[p], DATE_SWAP_RATE)
    has_dob = rng.random(k) < 0.45
    mail = _emails(rng, c.email[p], 0.85, 0.1)
    # a duplicate is often the same person writing in again from another address
    mail = np.where(is_dup & (rng.random(k) < 0.5), None, mail)
    mobile = _phones(rng, c.phone[p], 0.7, [0.4, 0.3, 0.2, 0.1, 0, 0])
    landline = c.landline_h[c.hh[p]]
    home = _phones(rng, landline, 0.3, [0.6, 0.3, 0.1, 0, 0, 0])
    old = c.moved[p] & ((rng.random(k) < 0.15) | is_dup)
    no_addr = rng.random(k) < 0.1
    street = np.where(no_addr, None, np.where(old, c.prev_line[p], c.line[p]))
    pc = np.where(no_addr, None, np.where(old, c.prev_postcode[p], c.postcode[p]))
    city = np.where(no_addr, None, np.where(old, c.prev_city[p], c.city[p]))
    if c.dutch is not None:
        street, city = c.dutch.written(rb, "salesforce", p, old, street, city)
    created = _timestamps(rng, k, 4 * 365)
    modstamp = created + (rng.random(k) * (_REF_S - created).astype(np.int64)).astype("timedelta64[s]")
    return pa.table({
        "Id": pa.array([salesforce_id("003", i + 1) for i in range(k)], type=pa.string()),
        "FirstName": pa.array(first, type=pa.string()),
        "LastName": pa.array(_proper(last), type=pa.string()),
        "Birthdate": pa.array(dob, type=pa.date32(), mask=~has_dob),
        "Email": pa.array(mail, type=pa.string()),
        "Phone": pa.array(home, type=pa.string()),
        "MobilePhone": pa.array(mobile, type=pa.string()),
        "MailingStreet": pa.array(street, type=pa.string()),
        "MailingPostalCode": pa.array(pc, type=pa.string()),
        "MailingCity": pa.array(city, type=pa.string()),
        "IsDeleted": pa.array(rng.random(k) < 0.01),
        "CreatedDate": pa.array(created, type=pa.timestamp("s")),
        "SystemModstamp": pa.array(modstamp, type=pa.timestamp("s")),
        "person_id": pa.array(p + 1, type=pa.int64()),
        "household_id": pa.array(c.hh[p] + 1, type=pa.int64()),
    })


def _servicenow_users(rng: np.random.Generator, c: _CrmInput) -> pa.Table:
    """sys_user rows of a service desk open to citizens: first prénom, no birth date, e-mail for
    most, a phone and/or a mobile, the street address (sometimes missing), a few duplicates."""
    p, is_dup = _crm_people(rng, c, SERVICENOW_SHARE, SERVICENOW_DUPLICATE_RATE)
    k = len(p)
    rb = c.belgian_stream(_SERVICENOW_STREAM)
    first = _noisy_names(rng, _first_given(c.given[p]), upper=0.05, fold=0.3, swap_sep=0.1, lower=0.05)
    last = _noisy_names(rng, c.surname_of(rb, "servicenow", p), upper=0.3, fold=0.3, swap_sep=0.1, lower=0.03,
                        particles=rb)
    _typos(rng, first, last, TYPO_RATE["servicenow"])
    mail = _emails(rng, c.email[p], 0.9, 0.15)
    mail = np.where(is_dup & (rng.random(k) < 0.4), None, mail)
    landline = c.landline_h[c.hh[p]]
    phone = _phones(rng, np.where(rng.random(k) < 0.5, landline, c.phone[p]), 0.45,
                    [0.3, 0.2, 0.3, 0.1, 0.05, 0.05])
    mobile = _phones(rng, c.phone[p], 0.6, [0.2, 0.2, 0.5, 0.1, 0, 0])
    old = c.moved[p] & ((rng.random(k) < 0.2) | is_dup)
    no_addr = rng.random(k) < 0.2
    street = np.where(no_addr, None, np.where(old, c.prev_line[p], c.line[p]))
    zip_ = np.where(no_addr, None, np.where(old, c.prev_postcode[p], c.postcode[p]))
    city = np.where(no_addr, None, np.where(old, c.prev_city[p], c.city[p]))
    if c.dutch is not None:
        street, city = c.dutch.written(rb, "servicenow", p, old, street, city)
    city = _noisy_names(rng, city, upper=0.4, fold=0.3, swap_sep=0.0)
    created = _timestamps(rng, k, 5 * 365)
    updated = created + (rng.random(k) * (_REF_S - created).astype(np.int64)).astype("timedelta64[s]")
    return pa.table({
        "sys_id": pa.array(_sys_ids(rng, k), type=pa.string()),
        "user_name": pa.array([f"{ascii_fold(f or 'x').lower().replace(' ', '')}.{ascii_fold(n or 'x').lower()}"
                               .replace(" ", "-") for f, n in zip(first, last, strict=True)], type=pa.string()),
        "first_name": pa.array(first, type=pa.string()),
        "last_name": pa.array(last, type=pa.string()),
        "email": pa.array(mail, type=pa.string()),
        "phone": pa.array(phone, type=pa.string()),
        "mobile_phone": pa.array(mobile, type=pa.string()),
        "street": pa.array(street, type=pa.string()),
        "zip": pa.array(zip_, type=pa.string()),
        "city": pa.array(city, type=pa.string()),
        "active": pa.array(rng.random(k) >= 0.03),
        "sys_created_on": pa.array(created, type=pa.timestamp("s")),
        "sys_updated_on": pa.array(updated, type=pa.timestamp("s")),
        "person_id": pa.array(p + 1, type=pa.int64()),
        "household_id": pa.array(c.hh[p] + 1, type=pa.int64()),
    })


_ASSO_KINDS = ("Association sportive", "Comité des fêtes", "Amicale", "Club", "Association culturelle",
               "Association des parents d'élèves", "Les Amis", "Union", "Collectif", "Cercle")
_ASSO_TOPICS = ("du quartier", "de la Croix-Rousse", "des Brotteaux", "de pétanque", "de judo", "théâtre",
                "des jardins partagés", "de randonnée", "de l'école Jean Macé", "du patrimoine",
                "musique et danse", "de basket", "solidarité; entraide", "\"Les Canuts\"", "des aînés")
_ASSO_TOPICS_BE = ("du quartier", "des Marolles", "de Flagey", "du Parvis", "de mini-foot", "de judo", "théâtre",
                   "des potagers collectifs", "de randonnée", "de l'école n° 1", "du patrimoine bruxellois",
                   "musique et danse", "de basket", "solidarité; entraide", "\"Les Ketjes\"", "des aînés")


def _associations(rng: np.random.Generator, a_n: int, be: bool = False) -> pa.Table:
    """Associations: RNA, optional SIRET, name, address, creation date (Brussels streets and topics
    with ``be``; the identifiers stay the French silo's)."""
    from sandbox.population import (
        _BE_NAME,
        _BE_POSTCODE,
        _COMMUNE_NAME,
        _COMMUNE_POSTCODE,
        _W_COMMUNE,
        _addresses,
        _be_addresses,
    )

    rna = 100_000_000 + rng.choice(900_000_000, size=a_n, replace=False)
    siret = 10_000_000_000_000 + rng.integers(0, 90_000_000_000_000, size=a_n)
    has_siret = rng.random(a_n) < 0.4
    kinds = np.array(_ASSO_KINDS, dtype=object)[rng.integers(0, len(_ASSO_KINDS), size=a_n)]
    topic_list = _ASSO_TOPICS_BE if be else _ASSO_TOPICS
    topics = np.array(topic_list, dtype=object)[rng.integers(0, len(topic_list), size=a_n)]
    topics[0] = "solidarité; entraide"  # every export holds at least one value that needs quoting
    if be:
        line, _, commune = _be_addresses(rng, a_n)
        postcodes, names = _BE_POSTCODE, _BE_NAME
    else:
        line, commune = _addresses(rng, a_n)
        commune = rng.choice(len(_COMMUNE_NAME), size=a_n, p=_W_COMMUNE)
        postcodes, names = _COMMUNE_POSTCODE, _COMMUNE_NAME
    created = np.datetime64("1975-01-01") + rng.integers(0, 50 * 365, size=a_n).astype("timedelta64[D]")
    return pa.table(
        {
            "rna": pa.array([f"W{x:09d}" for x in rna], type=pa.string()),
            "siret": pa.array([f"{x:014d}" for x in siret], type=pa.string(), mask=~has_siret),
            "nom": pa.array(kinds + " " + topics, type=pa.string()),
            "adresse": pa.array(line, type=pa.string()),
            "code_postal": pa.array(postcodes[commune], type=pa.string()),
            "commune": pa.array(names[commune], type=pa.string()),
            "date_creation": pa.array(created, type=pa.date32()),
        }
    )


# ---------------------------------------------------------------------------- canonical view

_CERT = {"declaratif": 0, "justificatif": 1, "franceconnect": 2}


def _canonical(cols: dict[str, pa.Array | list | np.ndarray], n: int) -> pa.Table:
    schema = arrow_schema(PERSON_RECORD).append(pa.field("person_id", pa.int64(), nullable=False))
    arrays = []
    for f in schema:
        v = cols.get(f.name)
        if v is None:
            arrays.append(pa.nulls(n, type=f.type))
        elif isinstance(v, pa.Array | pa.ChunkedArray):
            arrays.append(v.cast(f.type))
        else:
            arrays.append(pa.array(v, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _utc(col: pa.ChunkedArray) -> pa.Array:
    return col.cast(pa.timestamp("s")).cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))


def to_person_records(obs: Observations) -> pa.Table:
    """Canonical ``person_record`` rows (+ ``person_id``) for every person record the silos hold.

    Values stay as the silos wrote them (upper case, phones in the silo's own format): this is
    the staging view before identity standardisation. ``country`` is the population's (FR / BE).
    """
    country = obs.country
    parts = []
    t = obs.finance_tiers
    n = t.num_rows
    ids = [f"tiers/{i}" for i in t.column("id").to_pylist()]
    upd = _utc(t.column("updated_at"))
    sup = t.column("supprime").to_numpy(zero_copy_only=False)
    civ = t.column("civilite").to_pylist()
    parts.append(_canonical({
        "record_key": [f"finance:{s}" for s in ids], "source_system": ["finance"] * n, "source_id": ids,
        "role": ["debiteur"] * n, "given_names": t.column("prenom"), "birth_name": t.column("nom_naissance"),
        "usage_name": t.column("nom"), "sex": [{"M.": "M", "Mme": "F"}.get(c) for c in civ],
        "birth_date": t.column("date_naissance"),
        "birth_date_precision": ["day" if d is not None else None for d in t.column("date_naissance").to_pylist()],
        "email": t.column("email"), "phone": t.column("telephone"), "address_line": t.column("adresse"),
        "postcode": t.column("code_postal"), "city": t.column("ville"), "country": [country] * n,
        "certification_level": [0] * n, "updated_at": upd,
        "deleted_at": pa.array(np.where(sup, np.array(upd.to_pylist(), dtype=object), None),
                               type=pa.timestamp("us", tz="UTC")),
        "person_id": t.column("person_id"),
    }, n))

    fam = obs.family_familles
    fam_by_id = {fid: i for i, fid in enumerate(fam.column("id").to_pylist())}
    for entity, t, role in (("responsable", obs.family_responsables, "parent"),
                            ("enfant", obs.family_enfants, "enfant")):
        n = t.num_rows
        ids = [f"{entity}/{i}" for i in t.column("id").to_pylist()]
        rows = pa.array([fam_by_id[f] for f in t.column("famille_id").to_pylist()], type=pa.int64())
        upd = _utc(t.column("updated_at"))
        deleted = t.column("deleted").to_numpy(zero_copy_only=False)
        cert = ([_CERT[c] for c in t.column("certification").to_pylist()] if "certification" in t.column_names
                else [0] * n)
        parts.append(_canonical({
            "record_key": [f"family:{s}" for s in ids], "source_system": ["family"] * n, "source_id": ids,
            "role": [role] * n, "given_names": t.column("prenoms"),
            "birth_name": t.column("nom_naissance") if "nom_naissance" in t.column_names else None,
            "usage_name": t.column("nom"), "sex": t.column("sexe"), "birth_date": t.column("date_naissance"),
            "birth_date_precision": ["day"] * n,
            "email": t.column("email") if "email" in t.column_names else None,
            "phone": t.column("telephone") if "telephone" in t.column_names else None,
            "address_line": fam.column("ligne").take(rows), "postcode": fam.column("code_postal").take(rows),
            "city": fam.column("commune").take(rows), "city_code": fam.column("code_insee").take(rows),
            "country": [country] * n, "certification_level": cert, "updated_at": upd,
            "deleted_at": pa.array(np.where(deleted, np.array(upd.to_pylist(), dtype=object), None),
                                   type=pa.timestamp("us", tz="UTC")),
            "person_id": t.column("person_id"),
        }, n))

    t = obs.dirigeants
    n = t.num_rows
    ids = [f"dirigeant/{i}" for i in t.column("id").to_pylist()]
    maj = t.column("date_maj").cast(pa.timestamp("s"))
    parts.append(_canonical({
        "record_key": [f"associations:{s}" for s in ids], "source_system": ["associations"] * n,
        "source_id": ids, "role": ["dirigeant"] * n, "given_names": t.column("prenom"),
        "usage_name": t.column("nom"),
        "sex": [{"M.": "M", "Mme": "F"}.get(c) for c in t.column("civilite").to_pylist()],
        "birth_date": t.column("date_naissance"),
        "birth_date_precision": ["day" if d is not None else None for d in t.column("date_naissance").to_pylist()],
        "email": t.column("email"), "phone": t.column("telephone"), "address_line": t.column("adresse"),
        "postcode": t.column("code_postal"), "city": t.column("commune"), "country": [country] * n,
        "certification_level": [0] * n, "updated_at": _utc(maj),
        "person_id": t.column("person_id"),
    }, n))
    if obs.salesforce_contacts is not None:
        parts.append(_salesforce_records(obs.salesforce_contacts, country))
    if obs.servicenow_users is not None:
        parts.append(_servicenow_records(obs.servicenow_users, country))
    return pa.concat_tables(parts)


def _first_present(a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow.compute as pc

    return pc.coalesce(a, b)


def _salesforce_records(t: pa.Table, country: str = "FR") -> pa.Table:
    n = t.num_rows
    ids = [f"contact/{i}" for i in t.column("Id").to_pylist()]
    upd = _utc(t.column("SystemModstamp"))
    deleted = t.column("IsDeleted").to_numpy(zero_copy_only=False)
    return _canonical({
        "record_key": [f"salesforce:{s}" for s in ids], "source_system": ["salesforce"] * n, "source_id": ids,
        "role": ["contact"] * n, "given_names": t.column("FirstName"), "usage_name": t.column("LastName"),
        "birth_date": t.column("Birthdate"),
        "birth_date_precision": ["day" if d is not None else None for d in t.column("Birthdate").to_pylist()],
        "email": t.column("Email"), "phone": _first_present(t.column("MobilePhone"), t.column("Phone")),
        "address_line": t.column("MailingStreet"), "postcode": t.column("MailingPostalCode"),
        "city": t.column("MailingCity"), "country": [country] * n, "certification_level": [0] * n,
        "updated_at": upd,
        "deleted_at": pa.array(np.where(deleted, np.array(upd.to_pylist(), dtype=object), None),
                               type=pa.timestamp("us", tz="UTC")),
        "person_id": t.column("person_id"),
    }, n)


def _servicenow_records(t: pa.Table, country: str = "FR") -> pa.Table:
    n = t.num_rows
    ids = [f"sys_user/{i}" for i in t.column("sys_id").to_pylist()]
    return _canonical({
        "record_key": [f"servicenow:{s}" for s in ids], "source_system": ["servicenow"] * n, "source_id": ids,
        "role": ["compte"] * n, "given_names": t.column("first_name"), "usage_name": t.column("last_name"),
        "email": t.column("email"), "phone": _first_present(t.column("mobile_phone"), t.column("phone")),
        "address_line": t.column("street"), "postcode": t.column("zip"), "city": t.column("city"),
        "country": [country] * n, "certification_level": [0] * n, "updated_at": _utc(t.column("sys_updated_on")),
        "person_id": t.column("person_id"),
    }, n)


def person_records(people: int, seed: int = 42, country: str = "FR") -> pa.Table:
    """Every person record of the five silos for a commune of ``people``: the canonical
    ``person_record`` columns plus ``person_id`` (ground truth), with silo-style noise
    (``country`` "BE": the Brussels sandbox)."""
    return to_person_records(observe(generate_population(people, seed, country=country), seed))
