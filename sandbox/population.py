"""The synthetic commune: people and households with ground truth, from one seed.

Everything is vectorised with numpy; per-row Python only builds strings. The territory is the
Métropole de Lyon (real INSEE codes and postcodes) by default, or with ``country="BE"`` the
Brussels-Capital region (NIS codes, 4-digit postcodes, streets under a French and a Dutch name,
the region's communities, +32 phones; see :mod:`sandbox.names_be`). The population is the truth:
what each silo sees of it (with noise) is in :mod:`sandbox.observations`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from sandbox import names as N
from sandbox import names_be as NB

# The silos' "today": the school year 2026-2027 is under way. Fixed so outputs depend on the seed only.
REFERENCE_DATE = date(2026, 10, 1)
_REF = np.datetime64(REFERENCE_DATE.isoformat(), "D")

HOUSEHOLD_KINDS = ("single", "senior_single", "couple", "senior_couple", "couple_kids", "single_parent")
_KIND_P = np.array([0.22, 0.15, 0.14, 0.12, 0.27, 0.10])
_KIND_ADULTS = np.array([1, 1, 2, 2, 2, 1])


@dataclass(frozen=True)
class Population:
    """The truth: one row per person, one row per household (Arrow tables)."""

    persons: pa.Table
    households: pa.Table
    seed: int
    # "FR" (Lyon) or "BE" (Brussels): a Belgian population carries Dutch address columns too
    country: str = "FR"


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """Normalised Zipf-like weights for ranks 1..n."""
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return w / w.sum()


# Letters NFKD does not decompose (Polish ł, Turkish dotless ı, ø, ß): written as ASCII forms do.
_UNDECOMPOSED = str.maketrans({"ł": "l", "Ł": "L", "ı": "i", "ø": "o", "Ø": "O", "ß": "ss", "đ": "d", "Đ": "D"})


def ascii_fold(text: str) -> str:
    """Drop accents (é → e, ç → c, ł → l, œ kept as oe)."""
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    text = text.translate(_UNDECOMPOSED)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


_MALE = np.array(N.MALE_GIVEN_NAMES, dtype=object)
_FEMALE = np.array(N.FEMALE_GIVEN_NAMES, dtype=object)
_SURNAMES = np.array(N.SURNAMES, dtype=object)
_W_MALE = zipf_weights(len(_MALE), 0.9)
_W_FEMALE = zipf_weights(len(_FEMALE), 0.9)
# Surnames are drawn with French frequencies: Martin about 0.36 % of people, Bernard 0.16 %,
# Dupont (26th) 0.08 % (INSEE birth records as Géopatronyme reports them), then a tail falling as
# 1 / rank down to about 1.3 million surnames. The "dense" pool is the former sandbox's stress
# case: only the listed surnames, Martin 9.7 % of people (a namesake for nearly everyone).
SURNAME_COUNT = 1_300_000
SURNAME_POOLS = ("france", "dense")


def _surname_weights(pool: str) -> np.ndarray:
    head = len(_SURNAMES)
    if pool == "dense":
        return zipf_weights(head, 0.8)
    rank = np.arange(1, SURNAME_COUNT + 1, dtype=np.float64)
    w = 0.0016 * (rank / 2) ** -0.27
    w[0] = 0.0036
    w[head:] = w[head - 1] * head / rank[head:]
    return w / w.sum()


_W_SURNAME = {pool: _surname_weights(pool) for pool in SURNAME_POOLS}
_COMMUNE_CODE = np.array([c[0] for c in N.COMMUNES], dtype=object)
_COMMUNE_POSTCODE = np.array([c[1] for c in N.COMMUNES], dtype=object)
_COMMUNE_NAME = np.array([c[2] for c in N.COMMUNES], dtype=object)
_W_COMMUNE = np.array([c[3] for c in N.COMMUNES], dtype=np.float64)
_W_COMMUNE /= _W_COMMUNE.sum()


def surname(rank: int) -> str:
    """The surname of a frequency rank (0 = Martin): the listed ones, then the built tail."""
    if rank < len(_SURNAMES):
        return _SURNAMES[rank]
    i = rank - len(_SURNAMES)
    parts = []
    for values in (N.SURNAME_ROOTS, N.SURNAME_ENDINGS, N.SURNAME_MIDDLES, N.SURNAME_PARTICLES):
        i, k = divmod(i, len(values))
        parts.append(values[k])
    root, ending, middle, particle = parts
    name = f"{particle}{root}{middle}{ending}"
    return f"{name}-{surname(len(_SURNAMES) + i - 1)}" if i else name


def _surnames(rng: np.random.Generator, n: int, pool: str) -> np.ndarray:
    w = _W_SURNAME[pool]
    ranks = rng.choice(len(w), size=n, p=w)
    uniq, inverse = np.unique(ranks, return_inverse=True)
    return np.array([surname(int(r)) for r in uniq], dtype=object)[inverse]


def _given_names(rng: np.random.Generator, female: np.ndarray) -> np.ndarray:
    """1-3 ordered prénoms per person, space-separated, never the same prénom twice."""
    n = len(female)
    count = rng.choice([1, 2, 3], size=n, p=[0.30, 0.45, 0.25])
    picks = []
    for _ in range(3):
        idx_m = rng.choice(len(_MALE), size=n, p=_W_MALE)
        idx_f = rng.choice(len(_FEMALE), size=n, p=_W_FEMALE)
        picks.append((idx_m, idx_f))
    # Second and third prénoms must differ from the earlier ones: shift the index on a clash.
    for k in (1, 2):
        for s in (0, 1):
            size = len(_MALE) if s == 0 else len(_FEMALE)
            for j in range(k):
                clash = picks[k][s] == picks[j][s]
                picks[k][s][clash] = (picks[k][s][clash] + 1 + j) % size
            for j in range(k):  # a shift may land on the other earlier prénom; shift once more
                clash = picks[k][s] == picks[j][s]
                picks[k][s][clash] = (picks[k][s][clash] + 3) % size
    cols = [np.where(female, _FEMALE[f], _MALE[m]) for m, f in picks]
    out = cols[0].copy()
    two = count >= 2
    out[two] = out[two] + " " + cols[1][two]
    three = count >= 3
    out[three] = out[three] + " " + cols[2][three]
    return out


def _addresses(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n street lines and commune indexes."""
    commune = rng.choice(len(_COMMUNE_CODE), size=n, p=_W_COMMUNE)
    # Small house numbers are more common than large ones.
    number = np.exp(rng.uniform(0, np.log(180), size=n)).astype(np.int64)
    bis = rng.random(n) < 0.03
    types = np.array([t for t, _ in N.STREET_TYPES], dtype=object)
    tp = np.array([p for _, p in N.STREET_TYPES])
    stype = types[rng.choice(len(types), size=n, p=tp / tp.sum())]
    sname = np.array(N.STREET_NAMES, dtype=object)[rng.integers(0, len(N.STREET_NAMES), size=n)]
    lines = np.array(
        [f"{num}{' bis' if b else ''} {t} {s}" for num, b, t, s in zip(number, bis, stype, sname, strict=True)],
        dtype=object,
    )
    return lines, commune


def _unique_numbers(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    """n distinct integers in [low, high) (resampling the rare collisions)."""
    values = rng.integers(low, high, size=n)
    for _ in range(20):
        _, first = np.unique(values, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            break
        values[dup] = rng.integers(low, high, size=int(dup.sum()))
    return values


def _email_local(given: str, surname: str, pattern: int, year: int) -> str:
    first = ascii_fold(given.split(" ")[0]).lower().replace("'", "")
    last = ascii_fold(surname).lower().replace(" ", "").replace("'", "")
    if pattern == 0:
        return f"{first}.{last}"
    if pattern == 1:
        return f"{first}{last}"
    if pattern == 2:
        return f"{first[0]}.{last}"
    if pattern == 3:
        return f"{first}.{last}{year % 100:02d}"
    return f"{last}.{first}"


# ---------------------------------------------------------------------------- Brussels (country="BE")
COUNTRIES = ("FR", "BE")

_BE_NIS = np.array([c[0] for c in NB.COMMUNES], dtype=object)
_BE_POSTCODE = np.array([c[1] for c in NB.COMMUNES], dtype=object)
_BE_NAME = np.array([c[2] for c in NB.COMMUNES], dtype=object)
_BE_NAME_NL = np.array([c[3] for c in NB.COMMUNES], dtype=object)
_W_BE_COMMUNE = np.array([c[4] for c in NB.COMMUNES], dtype=np.float64)
_W_BE_COMMUNE /= _W_BE_COMMUNE.sum()
_BE_COMMUNITY = tuple(c[0] for c in NB.COMMUNITIES)
_BE_COMMUNITY_COUNTRY = np.array([c[2] for c in NB.COMMUNITIES], dtype=object)
_W_BE_COMMUNITY = np.array([c[1] for c in NB.COMMUNITIES], dtype=np.float64)
_W_BE_COMMUNITY /= _W_BE_COMMUNITY.sum()
_BE_BELGIAN = np.array([NB.COMMUNITIES[i][2] == "BE" for i in range(len(NB.COMMUNITIES))])
_BE_NL = _BE_COMMUNITY.index("nl")
_BE_FX = _BE_COMMUNITY.index("fx")  # French origin: France's own prénoms and surname frequencies
# Each community's surnames: the listed head takes this share of its people (flattish weights:
# Peeters, the most common Belgian surname, is ~0.3 % of Belgians), a built tail falling as 1 / rank
# the rest.
_BE_HEAD_SHARE = {"fr": 0.07, "nl": 0.10, "ma": 0.10, "tr": 0.20, "cd": 0.10, "it": 0.12, "es": 0.20,
                  "pt": 0.25, "pl": 0.12, "ro": 0.15}


def _be_given_pools() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    pools = {}
    for key in _BE_COMMUNITY:
        if key == "fx":
            male, female = _MALE, _FEMALE
        else:
            male = np.array(NB.MALE_GIVEN_NAMES[key], dtype=object)
            female = np.array(NB.FEMALE_GIVEN_NAMES[key], dtype=object)
        exponent = 0.9 if key == "fx" else 0.7  # shorter lists than France's: flatter weights
        pools[key] = (male, zipf_weights(len(male), exponent), female, zipf_weights(len(female), exponent))
    return pools


def _be_surname_pools() -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """community → (head surnames, weights over head + built tail ranks)."""
    pools = {}
    for key, share in _BE_HEAD_SHARE.items():
        head = NB.SURNAMES[key]
        prefixes, roots, endings = NB.SURNAME_PARTS[key]
        tail = len(prefixes) * len(roots) * len(endings) * len(NB.SURNAME_MIDDLES)
        w_tail = 1.0 / np.arange(len(head) + 1, len(head) + tail + 1, dtype=np.float64) ** 0.9
        w = np.concatenate([zipf_weights(len(head), 0.6) * share, w_tail / w_tail.sum() * (1 - share)])
        pools[key] = (head, w / w.sum())
    return pools


_BE_GIVEN = _be_given_pools()
_BE_SURNAME = _be_surname_pools()


def be_surname(community: str, rank: int) -> str:
    """The Brussels surname of a community and frequency rank: its listed ones, then its built tail."""
    head = NB.SURNAMES[community]
    if rank < len(head):
        return head[rank]
    i = rank - len(head)
    prefixes, roots, endings = NB.SURNAME_PARTS[community]
    i, r = divmod(i, len(roots))
    i, e = divmod(i, len(endings))
    p, m = divmod(i, len(NB.SURNAME_MIDDLES))
    prefix, root, middle, ending = prefixes[p], roots[r], NB.SURNAME_MIDDLES[m], endings[e]
    if prefix and not prefix.endswith((" ", "'")):  # a glued prefix: Ver + Hoeck → Verhoeck
        root = root.lower()
    return f"{prefix}{root}{middle}{ending}"


def _feminine(name: str) -> str:
    """Polish surnames agree with the bearer: Kowalski → Kowalska, Zawadzki → Zawadzka."""
    parts = name.split(" ")
    for i, part in enumerate(parts):
        sub = part.split("-")
        for j, w in enumerate(sub):
            if w.endswith(("ski", "cki", "dzki")):
                sub[j] = w[:-1] + "a"
        parts[i] = "-".join(sub)
    return " ".join(parts)


def _be_given_names(rng: np.random.Generator, female: np.ndarray, community: np.ndarray) -> np.ndarray:
    """1-3 prénoms per person from the person's community lists, never the same prénom twice."""
    n = len(female)
    count = rng.choice([1, 2, 3], size=n, p=[0.35, 0.45, 0.20])
    cols = [np.empty(n, dtype=object) for _ in range(3)]
    for ci, key in enumerate(_BE_COMMUNITY):
        m = community == ci
        k = int(m.sum())
        if not k:
            continue
        male, w_male, fem, w_fem = _BE_GIVEN[key]
        for j in range(3):
            im = rng.choice(len(male), size=k, p=w_male)
            jf = rng.choice(len(fem), size=k, p=w_fem)
            cols[j][m] = np.where(female[m], fem[jf], male[im])
    out = cols[0].copy()
    add2 = (count >= 2) & (cols[1] != cols[0])
    out[add2] = out[add2] + " " + cols[1][add2]
    add3 = (count >= 3) & (cols[2] != cols[0]) & (cols[2] != cols[1])
    out[add3] = out[add3] + " " + cols[2][add3]
    return out


def _be_surnames(rng: np.random.Generator, community: np.ndarray) -> np.ndarray:
    """One surname per person, drawn with the frequencies of the person's community."""
    out = np.empty(len(community), dtype=object)
    for ci, key in enumerate(_BE_COMMUNITY):
        m = community == ci
        k = int(m.sum())
        if not k:
            continue
        if key == "fx":
            out[m] = _surnames(rng, k, "france")
            continue
        _, w = _BE_SURNAME[key]
        ranks = rng.choice(len(w), size=k, p=w)
        uniq, inverse = np.unique(ranks, return_inverse=True)
        out[m] = np.array([be_surname(key, int(r)) for r in uniq], dtype=object)[inverse]
    return out


def _nl_street(name: str, suffix: str) -> str:
    # Dutch names glue the type to the name and drop the French accents on capitals (Emile Maxlaan)
    return name.replace("É", "E").replace("È", "E") + suffix


def _be_streets() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every street as (French name, Dutch name, postcode, weight): the real pairs (each
    postcode they run through), then the built ones, each in a few communes."""
    fr, nl, pc, w = [], [], [], []
    for f, d, codes in NB.STREET_PAIRS:
        for c in codes:
            fr.append(f), nl.append(d), pc.append(c), w.append(3.0)  # main streets: more people
    layout = np.random.default_rng(2026)  # the street map is fixed, whatever the population's seed
    postcodes = sorted(set(_BE_POSTCODE))
    for person in NB.STREET_PEOPLE:
        for fr_type, nl_suffix, tw in NB.STREET_TYPES:
            if tw < 0.1 and layout.random() > 0.5:
                continue
            for c in layout.choice(postcodes, size=NB.BUILT_STREET_POSTCODES, replace=False):
                fr.append(f"{fr_type} {person}"), nl.append(_nl_street(person, nl_suffix)), pc.append(str(c))
                w.append(tw * 2.5)
    return (np.array(fr, dtype=object), np.array(nl, dtype=object), np.array(pc, dtype=object),
            np.array(w, dtype=np.float64))


_BE_STREET_FR, _BE_STREET_NL, _BE_STREET_PC, _W_BE_STREET = _be_streets()
_BE_STREETS_OF = {pc: np.flatnonzero(_BE_STREET_PC == pc) for pc in set(_BE_POSTCODE)}


def _be_addresses(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n street lines in French and in Dutch (Rue Haute 12 bte 3 / Hoogstraat 12 bus 3) and
    commune indexes into :data:`sandbox.names_be.COMMUNES`."""
    commune = rng.choice(len(_BE_POSTCODE), size=n, p=_W_BE_COMMUNE)
    street = np.empty(n, dtype=np.int64)
    for ci in range(len(_BE_POSTCODE)):
        m = commune == ci
        k = int(m.sum())
        if k:
            idx = _BE_STREETS_OF[_BE_POSTCODE[ci]]
            w = _W_BE_STREET[idx]
            street[m] = idx[rng.choice(len(idx), size=k, p=w / w.sum())]
    number = np.exp(rng.uniform(0, np.log(250), size=n)).astype(np.int64)
    letter = np.where(rng.random(n) < 0.03, np.array(["A", "B"], dtype=object)[rng.integers(0, 2, size=n)], "")
    # Brussels is a city of flats: a box number (boîte / bus) for a good part of the households.
    box = np.where(rng.random(n) < 0.35, rng.integers(1, 25, size=n), 0)
    fr = np.array([f"{s} {num}{x}" + (f" bte {b}" if b else "")
                   for s, num, x, b in zip(_BE_STREET_FR[street], number, letter, box, strict=True)], dtype=object)
    nl = np.array([f"{s} {num}{x}" + (f" bus {b}" if b else "")
                   for s, num, x, b in zip(_BE_STREET_NL[street], number, letter, box, strict=True)], dtype=object)
    return fr, nl, commune


def generate_population(people: int, seed: int, surnames: str = "france", country: str = "FR") -> Population:
    """A commune of ``people`` persons living in households, deterministic for a given seed.

    ``surnames`` picks the surname pool: "france" (French frequencies, the default) or "dense"
    (a namesake-heavy stress case, see :data:`SURNAME_POOLS`).

    ``country`` "BE" makes it the Brussels-Capital region instead of the Métropole de Lyon: each
    household belongs to one of the region's communities (names drawn from its lists, a partner
    from another one now and then), streets under a French and a Dutch name
    (``address_line`` / ``address_line_nl``, ``city`` / ``city_nl``, the same for the previous
    address), 4-digit postcodes, NIS commune codes (``city_code``, ``birth_place_code``), +32
    phones, and a usage name far rarer than in France (Belgian women keep their birth name); each
    person also carries ``community`` and ``language`` (fr / nl: which language the silos mostly
    write to them in). The households, twins, namesakes, moves and ground truth work as in France.
    The French default is unchanged by this option: same seed, same population.
    """
    if people <= 0:
        raise ValueError("people must be positive")
    if surnames not in SURNAME_POOLS:
        raise ValueError(f"surnames must be one of {SURNAME_POOLS}, not {surnames!r}")
    country = country.upper()
    if country not in COUNTRIES:
        raise ValueError(f"country must be one of {COUNTRIES}, not {country!r}")
    be = country == "BE"
    if be and surnames != "france":
        raise ValueError("the Brussels population has its own surname pools (surnames='dense' is French only)")
    rng = np.random.default_rng(seed)

    # ---------------------------------------------------------------- households and members
    n_h = people // 2 + 16  # mean household size is > 2, so this always covers `people`
    kind = rng.choice(len(HOUSEHOLD_KINDS), size=n_h, p=_KIND_P)
    n_adults = _KIND_ADULTS[kind]
    n_kids = np.zeros(n_h, dtype=np.int64)
    ck = kind == 4
    n_kids[ck] = rng.choice([1, 2, 3, 4], size=int(ck.sum()), p=[0.38, 0.42, 0.15, 0.05])
    sp = kind == 5
    n_kids[sp] = rng.choice([1, 2, 3], size=int(sp.sum()), p=[0.55, 0.33, 0.12])
    size = n_adults + n_kids
    ends = np.cumsum(size)
    n_h = int(np.searchsorted(ends, people) + 1)
    kind, n_adults, n_kids, size = kind[:n_h], n_adults[:n_h], n_kids[:n_h], size[:n_h].copy()
    size[-1] -= int(size.sum() - people)  # cut the last household (children go first, adults stay)
    n_kids[-1] = max(0, size[-1] - n_adults[-1])
    n_adults[-1] = size[-1] - n_kids[-1]

    hh = np.repeat(np.arange(n_h), size)
    starts = np.concatenate(([0], np.cumsum(size)[:-1]))
    member = np.arange(people) - starts[hh]
    is_adult = member < n_adults[hh]
    kid_rank = np.where(is_adult, -1, member - n_adults[hh])

    # ---------------------------------------------------------------- sex
    female = rng.random(people) < 0.5
    couple_h = n_adults == 2
    same_sex = couple_h & (rng.random(n_h) < 0.03)
    head_female = rng.random(n_h) < 0.5
    head_female[kind == 1] = rng.random(int((kind == 1).sum())) < 0.68  # widows outlive widowers
    head_female[kind == 5] = rng.random(int((kind == 5).sum())) < 0.85  # single parents: mostly mothers
    first_adult = is_adult & (member == 0)
    second_adult = is_adult & (member == 1)
    female[first_adult] = head_female[hh[first_adult]]
    female[second_adult] = np.where(same_sex[hh[second_adult]], head_female[hh[second_adult]],
                                    ~head_female[hh[second_adult]])

    # ---------------------------------------------------------------- ages and birth dates
    year = 365.25
    head_age = np.empty(n_h)
    lo_hi = {0: (19, 64), 1: (65, 97), 2: (22, 64), 3: (65, 92)}
    for k, (lo, hi) in lo_hi.items():
        m = kind == k
        head_age[m] = rng.uniform(lo, hi, size=int(m.sum()))
    with_kids = (kind == 4) | (kind == 5)
    eldest = rng.uniform(0, 23, size=n_h)
    parent_gap = rng.uniform(20, 42, size=n_h)
    head_age[with_kids] = eldest[with_kids] + parent_gap[with_kids]
    spouse_age = np.clip(head_age + rng.normal(-1.5, 3.5, size=n_h), 18, 100)

    age_days = np.empty(people)
    age_days[first_adult] = head_age[hh[first_adult]] * year
    age_days[second_adult] = spouse_age[hh[second_adult]] * year
    # Children: eldest first, each next one 1-6 years younger; ~2.5 % of later births are twins.
    kid_age = np.zeros((n_h, 4))
    kid_age[:, 0] = eldest * year
    twin_of_previous = np.zeros((n_h, 4), dtype=bool)
    for k in range(1, 4):
        gap = rng.uniform(1, 6, size=n_h) * year
        younger = kid_age[:, k - 1] - gap
        shrunk = kid_age[:, k - 1] * rng.uniform(0.1, 0.9, size=n_h)
        kid_age[:, k] = np.where(younger > 0, younger, shrunk)
        twins = rng.random(n_h) < 0.025
        twin_of_previous[:, k] = twins
        kid_age[twins, k] = kid_age[twins, k - 1]
    kids = ~is_adult
    age_days[kids] = kid_age[hh[kids], kid_rank[kids]]
    age_days = np.floor(age_days).astype(np.int64)
    birth = _REF - age_days.astype("timedelta64[D]")
    twin = np.zeros(people, dtype=bool)
    twin[kids] = twin_of_previous[hh[kids], kid_rank[kids]]
    # the elder twin is a twin too
    twin_next = np.zeros(people, dtype=bool)
    twin_next[:-1] = twin[1:] & (hh[1:] == hh[:-1])
    is_twin = twin | twin_next

    # ---------------------------------------------------------------- names
    if be:
        # One community per household, a partner from another one in some couples.
        h_comm = rng.choice(len(_BE_COMMUNITY), size=n_h, p=_W_BE_COMMUNITY)
        community = h_comm[hh]
        mixed = second_adult & (rng.random(people) < 0.15)
        community[mixed] = rng.choice(len(_BE_COMMUNITY), size=int(mixed.sum()), p=_W_BE_COMMUNITY)
        # Children's prénoms come from either parent's side.
        from_spouse = kids & (n_adults[hh] == 2) & (rng.random(people) < 0.3)
        community[from_spouse] = community[starts[hh[from_spouse]] + 1]
        given = _be_given_names(rng, female, community)
    else:
        given = _given_names(rng, female)
    # A twin never carries the same first prénom as the other twin: redraw until different.
    for _ in range(5):
        first = np.array([g.split(" ", 1)[0] for g in given[twin]], dtype=object)
        prev_first = np.array([g.split(" ", 1)[0] for g in given[np.flatnonzero(twin) - 1]], dtype=object)
        clash_idx = np.flatnonzero(twin)[first == prev_first]
        if len(clash_idx) == 0:
            break
        given[clash_idx] = (_be_given_names(rng, female[clash_idx], community[clash_idx]) if be
                            else _given_names(rng, female[clash_idx]))

    birth_name = _be_surnames(rng, community) if be else _surnames(rng, people, surnames)
    usage_name = birth_name.copy()
    married = np.zeros(n_h, dtype=bool)
    married[(kind == 2) | (kind == 4)] = rng.random(int(((kind == 2) | (kind == 4)).sum())) < 0.55
    married[kind == 3] = rng.random(int((kind == 3).sum())) < 0.85
    married &= couple_h

    # head / spouse index per household (-1 when absent)
    head_idx = starts
    spouse_idx = np.where(couple_h & (size >= 2), starts + 1, -1)
    hetero = couple_h & ~same_sex & (spouse_idx >= 0)
    wife = np.where(head_female, head_idx, spouse_idx)
    husband = np.where(head_female, spouse_idx, head_idx)

    # Married women: most take the husband's name as nom d'usage, some a double name.
    mw = hetero & married
    choice = rng.random(n_h)
    # Belgium: a wife keeps her birth name in the registers; some (older) women still go by the
    # husband's name, a few by a double one.
    take_rate = np.where(kind == 3, 0.25, 0.06) if be else 0.72
    double_rate = 0.03 if be else 0.10
    takes = mw & (choice < take_rate)
    double = mw & (choice >= take_rate) & (choice < take_rate + double_rate)
    usage_name[wife[takes]] = birth_name[husband[takes]]
    usage_name[wife[double]] = birth_name[husband[double]] + "-" + birth_name[wife[double]]
    # Widows and divorced mothers often keep a former husband's name.
    former = ((kind == 1) | (kind == 5)) & head_female & (rng.random(n_h) < (0.10 if be else 0.45))
    former_name = _be_surnames(rng, h_comm) if be else _surnames(rng, n_h, surnames)
    usage_name[head_idx[former]] = former_name[former]

    # Children's surname, one per family.
    # the absent father's, by default (single parents)
    kid_surname = _be_surnames(rng, h_comm) if be else _surnames(rng, n_h, surnames)
    r = rng.random(n_h)
    # Belgium (law of 2014): the father's name still for most, a double name without hyphen for some.
    cuts = (0.90, 0.91, 0.96) if be else (0.82, 0.89, 0.91)
    father_line = hetero & (r < cuts[0])
    kid_surname[father_line] = birth_name[husband[father_line]]
    dbl = hetero & (r >= cuts[0]) & (r < cuts[1])
    kid_surname[dbl] = birth_name[husband[dbl]] + "-" + birth_name[wife[dbl]]
    dbl_space = hetero & (r >= cuts[1]) & (r < cuts[2])
    kid_surname[dbl_space] = birth_name[husband[dbl_space]] + " " + birth_name[wife[dbl_space]]
    mother_line = hetero & (r >= cuts[2])
    kid_surname[mother_line] = birth_name[wife[mother_line]]
    kid_surname[same_sex] = birth_name[head_idx[same_sex]]
    solo = kind == 5
    kid_surname[solo & former] = former_name[solo & former]
    mother_only = solo & ~former & (rng.random(n_h) < 0.4)
    kid_surname[mother_only] = birth_name[head_idx[mother_only]]
    birth_name[kids] = kid_surname[hh[kids]]
    usage_name[kids] = birth_name[kids]
    if be:
        fem = np.flatnonzero(female)
        birth_name[fem] = np.array([_feminine(x) for x in birth_name[fem]], dtype=object)
        usage_name[fem] = np.array([_feminine(x) for x in usage_name[fem]], dtype=object)

    # ---------------------------------------------------------------- places
    origin = rng.random(people)
    local = np.where(is_adult, origin < 0.40, origin < 0.85)
    french = ~local & np.where(is_adult, origin < 0.82, origin < 0.97)
    bp = np.empty(people, dtype=object)
    bp[local] = _COMMUNE_CODE[rng.choice(len(_COMMUNE_CODE), size=int(local.sum()), p=_W_COMMUNE)]
    other = np.array(N.OTHER_FRENCH_BIRTHPLACES, dtype=object)
    bp[french] = other[rng.integers(0, len(other), size=int(french.sum()))]
    abroad = ~local & ~french
    foreign_idx = rng.integers(0, len(N.FOREIGN_BIRTHPLACES), size=int(abroad.sum()))
    bp[abroad] = np.array([c for c, _ in N.FOREIGN_BIRTHPLACES], dtype=object)[foreign_idx]
    bcountry = np.full(people, "FR", dtype=object)
    bcountry[abroad] = np.array([c for _, c in N.FOREIGN_BIRTHPLACES], dtype=object)[foreign_idx]
    if be:
        # Born in the region, elsewhere in Belgium, or (for most first-generation adults of the
        # communities of foreign origin) in the community's country: no Belgian code then.
        belgian = _BE_BELGIAN[community]
        abroad = np.where(is_adult, np.where(belgian, origin < 0.04, origin < 0.65),
                          np.where(belgian, origin < 0.02, origin < 0.12))
        local = ~abroad & np.where(is_adult, origin < 0.75, origin < 0.97)
        bp = np.full(people, None, dtype=object)
        bp[local] = _BE_NIS[rng.choice(len(_BE_NIS), size=int(local.sum()), p=_W_BE_COMMUNE)]
        elsewhere = ~abroad & ~local
        others = np.array(NB.BELGIAN_BIRTHPLACES, dtype=object)
        bp[elsewhere] = others[rng.integers(0, len(others), size=int(elsewhere.sum()))]
        bcountry = np.where(abroad, _BE_COMMUNITY_COUNTRY[community], "BE").astype(object)
        bcountry[abroad & belgian] = "FR"  # Belgians born abroad: mostly next door

    if be:
        line, line_nl, commune = _be_addresses(rng, n_h)
    else:
        line, commune = _addresses(rng, n_h)
    moved = rng.random(n_h) < 0.15
    if be:
        prev_line, prev_line_nl, prev_commune = _be_addresses(rng, n_h)
    else:
        prev_line, prev_commune = _addresses(rng, n_h)
    # Most moves stay in the same commune.
    same_commune = rng.random(n_h) < 0.6
    prev_commune = np.where(same_commune, commune, prev_commune)
    moved_on = _REF - rng.integers(30, 3 * 365, size=n_h).astype("timedelta64[D]")

    # ---------------------------------------------------------------- contacts
    if be:  # Belgian mobiles 0460-0499 (+32 4xx xx xx xx), Brussels landlines 02 (+32 2 xxx xx xx)
        mobile = 460_000_000 + _unique_numbers(rng, people, 0, 40_000_000)
    else:
        mobile = np.where(rng.random(people) < 0.5, 600_000_000, 700_000_000) + _unique_numbers(
            rng, people, 0, 100_000_000
        )
    cc = "+32" if be else "+33"
    age_years = age_days / year
    has_mobile = np.where(is_adult, rng.random(people) < 0.90, (age_years >= 12) & (rng.random(people) < 0.6))
    landline_h = rng.random(n_h) < 0.22
    landline = (20_000_000 + _unique_numbers(rng, n_h, 1_000_000, 9_999_999) if be
                else 400_000_000 + _unique_numbers(rng, n_h, 72_000_000, 79_000_000))
    phone = np.full(people, None, dtype=object)
    phone[has_mobile] = np.array([f"{cc}{m}" for m in mobile[has_mobile]], dtype=object)
    use_landline = ~has_mobile & landline_h[hh] & is_adult
    phone[use_landline] = np.array([f"{cc}{x}" for x in landline[hh[use_landline]]], dtype=object)

    has_email = np.where(is_adult, rng.random(people) < 0.87, (age_years >= 14) & (rng.random(people) < 0.4))
    pattern = rng.integers(0, 5, size=people)
    domains = np.array(NB.EMAIL_DOMAINS if be else N.EMAIL_DOMAINS, dtype=object)
    domain = domains[rng.choice(len(domains), size=people, p=zipf_weights(len(domains), 1.0))]
    byear = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    email = np.full(people, None, dtype=object)
    idx = np.flatnonzero(has_email)
    locals_ = [_email_local(given[i], usage_name[i], int(pattern[i]), int(byear[i])) for i in idx]
    # Distinct people never share a mailbox by accident: number the repeats.
    seen: dict[str, int] = {}
    for i, loc in zip(idx, locals_, strict=True):
        addr = f"{loc}@{domain[i]}"
        n_seen = seen.get(addr, 0)
        seen[addr] = n_seen + 1
        email[i] = addr if n_seen == 0 else f"{loc}{n_seen + 1}@{domain[i]}"
    # Some couples share one family mailbox.
    share = couple_h & (spouse_idx >= 0) & (rng.random(n_h) < 0.10)
    share &= np.array([email[h] is not None for h in head_idx])
    email[spouse_idx[share]] = email[head_idx[share]]

    # ---------------------------------------------------------------- tables
    role = np.where(member == 0, "responsable", np.where(is_adult, "conjoint", "enfant"))
    prev_ok = moved[hh] & (birth < moved_on[hh])
    kinds = np.array(HOUSEHOLD_KINDS, dtype=object)

    def _masked(values: np.ndarray, mask: np.ndarray) -> pa.Array:
        return pa.array(values, type=pa.string(), mask=~mask)

    pcs, names, codes = (_BE_POSTCODE, _BE_NAME, _BE_NIS) if be else (_COMMUNE_POSTCODE, _COMMUNE_NAME, _COMMUNE_CODE)
    persons = pa.table(
        {
            "person_id": pa.array(np.arange(1, people + 1, dtype=np.int64)),
            "sex": pa.array(np.where(female, "F", "M"), type=pa.string()),
            "given_names": pa.array(given, type=pa.string()),
            "birth_name": pa.array(birth_name, type=pa.string()),
            "usage_name": pa.array(usage_name, type=pa.string()),
            "birth_date": pa.array(birth.astype("datetime64[D]"), type=pa.date32()),
            "birth_place_code": pa.array(bp, type=pa.string()),
            "birth_country_code": pa.array(bcountry, type=pa.string()),
            "email": pa.array(email, type=pa.string()),
            "phone": pa.array(phone, type=pa.string()),
            "address_line": pa.array(line[hh], type=pa.string()),
            "postcode": pa.array(pcs[commune[hh]], type=pa.string()),
            "city": pa.array(names[commune[hh]], type=pa.string()),
            "city_code": pa.array(codes[commune[hh]], type=pa.string()),
            "previous_address_line": _masked(prev_line[hh], prev_ok),
            "previous_postcode": _masked(pcs[prev_commune[hh]], prev_ok),
            "previous_city": _masked(names[prev_commune[hh]], prev_ok),
            "previous_city_code": _masked(codes[prev_commune[hh]], prev_ok),
            "household_id": pa.array(hh.astype(np.int64) + 1),
            "household_role": pa.array(role, type=pa.string()),
            "is_twin": pa.array(is_twin),
        }
    )
    households = pa.table(
        {
            "household_id": pa.array(np.arange(1, n_h + 1, dtype=np.int64)),
            "kind": pa.array(kinds[kind], type=pa.string()),
            "married": pa.array(married),
            "adults": pa.array(n_adults.astype(np.int32)),
            "children": pa.array(n_kids.astype(np.int32)),
            "address_line": pa.array(line, type=pa.string()),
            "postcode": pa.array(pcs[commune], type=pa.string()),
            "city": pa.array(names[commune], type=pa.string()),
            "city_code": pa.array(codes[commune], type=pa.string()),
            "moved_on": pa.array(moved_on.astype("datetime64[D]"), type=pa.date32(), mask=~moved),
            "previous_address_line": _masked(prev_line, moved),
            "previous_postcode": _masked(pcs[prev_commune], moved),
            "previous_city": _masked(names[prev_commune], moved),
            "previous_city_code": _masked(codes[prev_commune], moved),
            "landline": pa.array(np.array([f"{cc}{x}" for x in landline], dtype=object), type=pa.string(),
                                 mask=~landline_h),
        }
    )
    if be:
        # Dutch forms of the same addresses, the household's language and each person's community
        language = np.where(h_comm == _BE_NL, rng.random(n_h) < 0.9, rng.random(n_h) < 0.06)
        lang = np.where(language, "nl", "fr").astype(object)
        nl_cols = {
            "address_line_nl": pa.array(line_nl, type=pa.string()),
            "city_nl": pa.array(_BE_NAME_NL[commune], type=pa.string()),
            "previous_address_line_nl": _masked(prev_line_nl, moved),
            "previous_city_nl": _masked(_BE_NAME_NL[prev_commune], moved),
            "language": pa.array(lang, type=pa.string()),
        }
        for name, col in nl_cols.items():
            households = households.append_column(name, col)
        per_person = {
            "address_line_nl": pa.array(line_nl[hh], type=pa.string()),
            "city_nl": pa.array(_BE_NAME_NL[commune[hh]], type=pa.string()),
            "previous_address_line_nl": _masked(prev_line_nl[hh], prev_ok),
            "previous_city_nl": _masked(_BE_NAME_NL[prev_commune[hh]], prev_ok),
            "language": pa.array(lang[hh], type=pa.string()),
            "community": pa.array(np.array(_BE_COMMUNITY, dtype=object)[community], type=pa.string()),
        }
        for name, col in per_person.items():
            persons = persons.append_column(name, col)
    return Population(persons=persons, households=households, seed=seed, country=country)
