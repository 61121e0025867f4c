"""The synthetic commune: people and households with ground truth, from one seed.

Everything is vectorised with numpy; per-row Python only builds strings. The territory is the
Métropole de Lyon (real INSEE codes and postcodes). The population is the truth: what each
silo sees of it (with noise) is in :mod:`sandbox.observations`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa

from sandbox import names as N

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


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """Normalised Zipf-like weights for ranks 1..n."""
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return w / w.sum()


def ascii_fold(text: str) -> str:
    """Drop accents (é → e, ç → c, œ kept as oe)."""
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
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


def generate_population(people: int, seed: int, surnames: str = "france") -> Population:
    """A commune of ``people`` persons living in households, deterministic for a given seed.

    ``surnames`` picks the surname pool: "france" (French frequencies, the default) or "dense"
    (a namesake-heavy stress case, see :data:`SURNAME_POOLS`).
    """
    if people <= 0:
        raise ValueError("people must be positive")
    if surnames not in SURNAME_POOLS:
        raise ValueError(f"surnames must be one of {SURNAME_POOLS}, not {surnames!r}")
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
    given = _given_names(rng, female)
    # A twin never carries the same first prénom as the other twin: redraw until different.
    for _ in range(5):
        first = np.array([g.split(" ", 1)[0] for g in given[twin]], dtype=object)
        prev_first = np.array([g.split(" ", 1)[0] for g in given[np.flatnonzero(twin) - 1]], dtype=object)
        clash_idx = np.flatnonzero(twin)[first == prev_first]
        if len(clash_idx) == 0:
            break
        given[clash_idx] = _given_names(rng, female[clash_idx])

    birth_name = _surnames(rng, people, surnames)
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
    takes = mw & (choice < 0.72)
    double = mw & (choice >= 0.72) & (choice < 0.82)
    usage_name[wife[takes]] = birth_name[husband[takes]]
    usage_name[wife[double]] = birth_name[husband[double]] + "-" + birth_name[wife[double]]
    # Widows and divorced mothers often keep a former husband's name.
    former = ((kind == 1) | (kind == 5)) & head_female & (rng.random(n_h) < 0.45)
    former_name = _surnames(rng, n_h, surnames)
    usage_name[head_idx[former]] = former_name[former]

    # Children's surname, one per family.
    kid_surname = _surnames(rng, n_h, surnames)  # the absent father's, by default (single parents)
    r = rng.random(n_h)
    father_line = hetero & (r < 0.82)
    kid_surname[father_line] = birth_name[husband[father_line]]
    dbl = hetero & (r >= 0.82) & (r < 0.89)
    kid_surname[dbl] = birth_name[husband[dbl]] + "-" + birth_name[wife[dbl]]
    dbl_space = hetero & (r >= 0.89) & (r < 0.91)
    kid_surname[dbl_space] = birth_name[husband[dbl_space]] + " " + birth_name[wife[dbl_space]]
    mother_line = hetero & (r >= 0.91)
    kid_surname[mother_line] = birth_name[wife[mother_line]]
    kid_surname[same_sex] = birth_name[head_idx[same_sex]]
    solo = kind == 5
    kid_surname[solo & former] = former_name[solo & former]
    mother_only = solo & ~former & (rng.random(n_h) < 0.4)
    kid_surname[mother_only] = birth_name[head_idx[mother_only]]
    birth_name[kids] = kid_surname[hh[kids]]
    usage_name[kids] = birth_name[kids]

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

    line, commune = _addresses(rng, n_h)
    moved = rng.random(n_h) < 0.15
    prev_line, prev_commune = _addresses(rng, n_h)
    # Most moves stay in the same commune.
    same_commune = rng.random(n_h) < 0.6
    prev_commune = np.where(same_commune, commune, prev_commune)
    moved_on = _REF - rng.integers(30, 3 * 365, size=n_h).astype("timedelta64[D]")

    # ---------------------------------------------------------------- contacts
    mobile = np.where(rng.random(people) < 0.5, 600_000_000, 700_000_000) + _unique_numbers(
        rng, people, 0, 100_000_000
    )
    age_years = age_days / year
    has_mobile = np.where(is_adult, rng.random(people) < 0.90, (age_years >= 12) & (rng.random(people) < 0.6))
    landline_h = rng.random(n_h) < 0.22
    landline = 400_000_000 + _unique_numbers(rng, n_h, 72_000_000, 79_000_000)
    phone = np.full(people, None, dtype=object)
    phone[has_mobile] = np.array([f"+33{m}" for m in mobile[has_mobile]], dtype=object)
    use_landline = ~has_mobile & landline_h[hh] & is_adult
    phone[use_landline] = np.array([f"+33{x}" for x in landline[hh[use_landline]]], dtype=object)

    has_email = np.where(is_adult, rng.random(people) < 0.87, (age_years >= 14) & (rng.random(people) < 0.4))
    pattern = rng.integers(0, 5, size=people)
    domains = np.array(N.EMAIL_DOMAINS, dtype=object)
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
            "postcode": pa.array(_COMMUNE_POSTCODE[commune[hh]], type=pa.string()),
            "city": pa.array(_COMMUNE_NAME[commune[hh]], type=pa.string()),
            "city_code": pa.array(_COMMUNE_CODE[commune[hh]], type=pa.string()),
            "previous_address_line": _masked(prev_line[hh], prev_ok),
            "previous_postcode": _masked(_COMMUNE_POSTCODE[prev_commune[hh]], prev_ok),
            "previous_city": _masked(_COMMUNE_NAME[prev_commune[hh]], prev_ok),
            "previous_city_code": _masked(_COMMUNE_CODE[prev_commune[hh]], prev_ok),
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
            "postcode": pa.array(_COMMUNE_POSTCODE[commune], type=pa.string()),
            "city": pa.array(_COMMUNE_NAME[commune], type=pa.string()),
            "city_code": pa.array(_COMMUNE_CODE[commune], type=pa.string()),
            "moved_on": pa.array(moved_on.astype("datetime64[D]"), type=pa.date32(), mask=~moved),
            "previous_address_line": _masked(prev_line, moved),
            "previous_postcode": _masked(_COMMUNE_POSTCODE[prev_commune], moved),
            "previous_city": _masked(_COMMUNE_NAME[prev_commune], moved),
            "previous_city_code": _masked(_COMMUNE_CODE[prev_commune], moved),
            "landline": pa.array(np.array([f"+33{x}" for x in landline], dtype=object), type=pa.string(),
                                 mask=~landline_h),
        }
    )
    return Population(persons=persons, households=households, seed=seed)
