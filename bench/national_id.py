"""Benchmark: the national-id screen's recall, false positives and throughput, beside the old screen.

    .venv/bin/python bench/national_id.py [--non-ids 1000000] [--ids 100000] [--seed 1]

Generates realistic values that are *not* national ids (French and Belgian phone numbers in every
way they are written, IBANs, SIRET / SIREN, VAT numbers, invoice numbers, addresses with postcodes
and house numbers, dates and timestamps, amounts, free-text comments mixing them) and values that
*are* (French NIRs and Belgian national numbers, with a valid key, a wrong key or none, every
separator, Corsica, temporary numbers, alone or inside a sentence, an e-mail, a name), and record
ids (ServiceNow sys_ids, UUIDs, Salesforce ids) among the non-ids. Prints, per
kind, the share the screen catches (recall on ids, false positives on non-ids), then rows/s of
``connectors.identifiers.national_id_rows`` and of the screen it replaced (check key required,
space / dot separators only; kept below) on the same column, in the same process. Every id caught
must also be masked by ``mask_national_ids`` (what quarantine payloads go through): checked here.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.identifiers import MASK, digit_counts, mask_national_ids, national_id_mask, national_id_rows

NBSP, NNBSP = "\u00a0", "\u202f"


# ---------------------------------------------------------------------------- ids
def nir_key(body: str) -> str:
    digits = body.upper().replace("2A", "19").replace("2B", "18")
    return f"{97 - int(digits) % 97:02d}"


def nir_body(rnd: random.Random) -> list[str]:
    sex = rnd.choice("1212121234783")  # mostly 1 / 2, some temporary numbers
    month = rnd.choice([f"{rnd.randint(1, 12):02d}"] * 8 + [f"{rnd.randint(20, 42)}", f"{rnd.randint(50, 99)}"])
    dep = rnd.choice([f"{rnd.randint(1, 95):02d}"] * 9 + ["2A", "2B", "99", "97"])
    commune = f"{rnd.randint(1, 990):03d}"
    if dep == "97":
        dep, commune = "97", f"{rnd.randint(1, 8)}{rnd.randint(1, 99):02d}"
    return [sex, f"{rnd.randint(0, 99):02d}", month, dep, commune, f"{rnd.randint(1, 999):03d}"]


def be_parts(rnd: random.Random) -> tuple[list[str], str]:
    year = rnd.randint(1930, 2024)
    month = rnd.randint(1, 12) + rnd.choice([0] * 8 + [20, 40])
    if rnd.random() < 0.02:
        month = 0
    day = rnd.randint(1, 28)
    parts = [f"{year % 100:02d}", f"{month:02d}", f"{day:02d}", f"{rnd.randint(1, 998):03d}"]
    n = int(("2" if year >= 2000 else "") + "".join(parts))
    return parts, f"{97 - n % 97:02d}"


SEPS = [" ", ".", "-", "/", NBSP, NNBSP, ""]


def wrong(key: str) -> str:
    return f"{(int(key) + 1 + random.randint(0, 90)) % 97 or 1:02d}"


def nir_form(rnd: random.Random) -> tuple[str, str]:
    parts = nir_body(rnd)
    key = nir_key("".join(parts))
    kind = rnd.choice(["valid", "valid", "wrong_key", "no_key"])
    if kind == "wrong_key":
        key = wrong(key)
    sep = rnd.choice(SEPS)
    groups = parts + ([key] if kind != "no_key" else [])
    if rnd.random() < 0.15:  # key apart, the rest run together: 1841275115423 57
        value = "".join(parts) + (f" {key}" if kind != "no_key" else "")
        label = f"nir_{kind}_key_apart"
    else:
        value = sep.join(groups)
        label = f"nir_{kind}_sep_{_sep_name(sep)}"
    return value, label


def be_form(rnd: random.Random) -> tuple[str, str]:
    parts, key = be_parts(rnd)
    kind = rnd.choice(["valid", "valid", "wrong_key"])
    if kind == "wrong_key":
        key = wrong(key)
    style = rnd.choice(["official", "plain", "sep", "sep"])
    if style == "official":
        value = f"{parts[0]}.{parts[1]}.{parts[2]}-{parts[3]}.{key}"
    elif style == "plain":
        value = "".join(parts) + key
    else:
        sep = rnd.choice(SEPS[:-1])
        value = sep.join([*parts, key]) if rnd.random() < 0.5 else f"{''.join(parts[:3])}{sep}{parts[3]}{sep}{key}"
    return value, f"be_{kind}_{style}"


def _sep_name(sep: str) -> str:
    return {" ": "space", ".": "dot", "-": "dash", "/": "slash", NBSP: "nbsp", NNBSP: "nnbsp", "": "none"}[sep]


CONTEXTS: list[tuple[str, Callable[[str, random.Random], str]]] = [
    ("alone", lambda v, r: v),
    ("sentence", lambda v, r: f"NIR {v} à vérifier" if r.random() < 0.5 else f"n° de registre national : {v}, vu"),
    ("email", lambda v, r: f"{v.replace(' ', '')}@free.fr"),
    ("name", lambda v, r: f"Jean {v}"),
    ("city", lambda v, r: f"Paris {v}"),
    ("padded", lambda v, r: f"  {v} "),
]


def ids(n: int, rnd: random.Random) -> tuple[list[str], list[str]]:
    values, labels = [], []
    for _ in range(n):
        value, label = nir_form(rnd) if rnd.random() < 0.6 else be_form(rnd)
        ctx, wrap = rnd.choice(CONTEXTS)
        values.append(wrap(value, rnd))
        labels.append(f"{label} / {ctx}")
    return values, labels


# ---------------------------------------------------------------------------- non-ids
def d(rnd: random.Random, k: int) -> str:
    return "".join(rnd.choice("0123456789") for _ in range(k))


def fr_phone(rnd: random.Random) -> str:
    lead = rnd.choice("1234567896677")
    rest = [d(rnd, 2) for _ in range(4)]
    sep = rnd.choice([" ", ".", "-", "", NBSP])
    return rnd.choice([
        f"0{lead}{sep}{sep.join(rest)}", f"+33 {lead} {' '.join(rest)}", f"+33{lead}{''.join(rest)}",
        f"0033 {lead} {' '.join(rest)}", f"0033{lead}{''.join(rest)}", f"33{lead}{''.join(rest)}",
        f"+33 (0){lead} {' '.join(rest)}", f"Tél. : 0{lead} {' '.join(rest)} / 0{rnd.choice('67')} {d(rnd, 2)} "
        f"{d(rnd, 2)} {d(rnd, 2)} {d(rnd, 2)}",
    ])


def be_phone(rnd: random.Random) -> str:
    mobile = f"4{rnd.choice('56789')}{d(rnd, 1)}"
    a, b, c = d(rnd, 2), d(rnd, 2), d(rnd, 2)
    zone = rnd.choice(["2", "3", "9", "10", "50", "64"])
    return rnd.choice([
        f"+32 {mobile} {a} {b} {c}", f"0{mobile} {a} {b} {c}", f"0{mobile}/{a}.{b}.{c}", f"32{mobile}{a}{b}{c}",
        f"0032{mobile}{a}{b}{c}", f"+32{mobile}{a}{b}{c}", f"0032 {mobile} {a} {b} {c}",
        f"+32 {zone} {d(rnd, 7 - len(zone) + 1)}", f"0{zone} {d(rnd, 3)} {a} {b}", f"0{zone}/{d(rnd, 3)}.{a}.{b}",
        f"32{zone}{d(rnd, 8 - len(zone))}",
    ])


def iban(rnd: random.Random) -> str:
    if rnd.random() < 0.6:
        raw = f"FR{d(rnd, 2)}{d(rnd, 10)}{rnd.choice(['', 'A'])}{d(rnd, 11 if rnd.random() < .5 else 10)}{d(rnd, 2)}"
    else:
        raw = f"BE{d(rnd, 2)}{d(rnd, 12)}"
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4)) if rnd.random() < 0.6 else raw


def siret(rnd: random.Random) -> str:
    s = d(rnd, 14)
    return rnd.choice([s, f"{s[:3]} {s[3:6]} {s[6:9]} {s[9:]}", s[:9], f"{s[:3]} {s[3:6]} {s[6:9]}",
                       f"SIRET {s}", f"FR{d(rnd, 2)}{s[:9]}", f"BE0{d(rnd, 9)}",
                       f"BE 0{d(rnd, 3)}.{d(rnd, 3)}.{d(rnd, 3)}", f"W{d(rnd, 9)}"])


def invoice(rnd: random.Random) -> str:
    y = rnd.randint(2015, 2026)
    return rnd.choice([
        f"FAC-{y}-{d(rnd, 6)}", f"{y}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{d(rnd, 6)}", f"F{y}-{d(rnd, 6)}",
        f"{y}/{d(rnd, 6)}", f"INV-{y}-{rnd.randint(1, 12):02d}-{d(rnd, 6)}", f"Facture n° {y}{d(rnd, 6)}",
        f"{y}{d(rnd, 7)}", f"Titre {y}-{d(rnd, 3)}-{d(rnd, 5)}", f"Réf. {y}{rnd.randint(1, 12):02d}{d(rnd, 5)}",
        f"{y}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{rnd.randint(0, 23):02d}{rnd.randint(0, 59):02d}"
        f"{rnd.randint(0, 59):02d}",
    ])


STREETS = ["rue des Lilas", "avenue Jean Jaurès", "boulevard Voltaire", "Rue Neuve", "Chaussée d'Ixelles",
           "Avenue Louise", "Kerkstraat", "place de la Mairie"]
CITIES = [("75011", "Paris"), ("13001", "Marseille"), ("69003", "Lyon"), ("1000", "Bruxelles"), ("1050", "Ixelles"),
          ("1030", "Schaerbeek"), ("97400", "Saint-Denis"), ("20000", "Ajaccio")]


def address(rnd: random.Random) -> str:
    pc_, city = rnd.choice(CITIES)
    n = rnd.randint(1, 250)
    return rnd.choice([
        f"{n} {rnd.choice(STREETS)} {pc_} {city}", f"{rnd.choice(STREETS)} {n} {pc_} {city}",
        f"{rnd.choice(STREETS)} {n} bte {rnd.randint(1, 40)}, {pc_} {city}",
        f"{n} {rnd.choice(STREETS)}, BP {d(rnd, 4)} {pc_} {city} CEDEX {rnd.randint(1, 20)}",
        f"{pc_} {city}", f"{n}, {n + 2} {rnd.choice(STREETS)}",
        f"Résidence Les Pins bât. {rnd.randint(1, 9)} appt {d(rnd, 3)} {pc_}",
    ])


def date(rnd: random.Random) -> str:
    y, m, dd = rnd.randint(1920, 2026), rnd.randint(1, 12), rnd.randint(1, 28)
    h, mi, s = rnd.randint(0, 23), rnd.randint(0, 59), rnd.randint(0, 59)
    return rnd.choice([
        f"{dd:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{dd:02d}", f"{y}-{m:02d}-{dd:02d}T{h:02d}:{mi:02d}:{s:02d}Z",
        f"{dd:02d}/{m:02d}/{y} {h:02d}:{mi:02d}", f"{dd:02d}.{m:02d}.{y}", f"{y}{m:02d}{dd:02d}",
        f"du {dd:02d}/{m:02d}/{y} au {rnd.randint(1, 28):02d}/{m:02d}/{y}", f"{dd:02d}/{m:02d}/{y} {pc_of(rnd)}",
        f"{dd:02d} {m:02d} {y} {d(rnd, 3)}",
    ])


def pc_of(rnd: random.Random) -> str:
    return rnd.choice(CITIES)[0]


def amount(rnd: random.Random) -> str:
    v = rnd.randint(0, 10**9)
    return rnd.choice([f"{v:,}".replace(",", " ") + f",{d(rnd, 2)} €", f"{v}.{d(rnd, 2)}", f"{v:,}".replace(",", NNBSP)
                       + f",{d(rnd, 2)}", f"{rnd.randint(1, 999)},{d(rnd, 2)} EUR"])


def comment(rnd: random.Random) -> str:
    parts = [fr_phone, be_phone, invoice, date, address, amount, iban, siret]
    a, b = rnd.sample(parts, 2)
    return rnd.choice([
        f"Appel du {date(rnd)} au {fr_phone(rnd)}, facture {invoice(rnd)} de {amount(rnd)}",
        f"Rappeler le {be_phone(rnd)} ; dossier {invoice(rnd)}",
        f"{a(rnd)} {b(rnd)}", f"Virement {amount(rnd)} sur {iban(rnd)} le {date(rnd)}",
        f"Subvention {rnd.randint(2015, 2026)} : {amount(rnd)}, SIRET {siret(rnd)}",
    ])


def record_id(rnd: random.Random) -> str:
    """Ids systems give their records: ServiceNow sys_ids and hashes (32 hex), UUIDs, Salesforce ids."""
    hexa = "".join(rnd.choice("0123456789abcdef") for _ in range(32))
    alnum = "".join(rnd.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") for _ in range(12))
    return rnd.choice([hexa, f"{hexa[:8]}-{hexa[8:12]}-4{hexa[13:16]}-a{hexa[17:20]}-{hexa[20:]}",
                       f"003{rnd.randint(0, 9)}g{'0' * 5}{alnum[:9]}", f"{d(rnd, 11)}{hexa[:21]}"])


NON_IDS: list[tuple[str, Callable[[random.Random], str]]] = [
    ("record_id", record_id), ("phone_fr", fr_phone), ("phone_be", be_phone), ("iban", iban),
    ("siret_siren_vat_rna", siret),
    ("invoice", invoice), ("address_postcode", address), ("date", date), ("amount", amount), ("comment", comment),
]


def non_ids(n: int, rnd: random.Random) -> tuple[list[str], list[str]]:
    values, labels = [], []
    for i in range(n):
        label, make = NON_IDS[i % len(NON_IDS)]
        values.append(make(rnd))
        labels.append(label)
    return values, labels


# ---------------------------------------------------------------------------- the old screen
# As it was before this change (connectors/base.py, 2026-12): check key required, [ .] separators.
_OLD_NIR = re.compile(
    r"(?<![0-9A-Za-z+])([1-478])[ .]?(\d{2})[ .]?(0[1-9]|1[0-2]|[2-9]\d)[ .]?(\d{2}|2[ABab])"
    r"[ .]?(\d{3})[ .]?(\d{3})[ .]?(\d{2})(?!\d)")
_OLD_BE = re.compile(r"(?<![0-9+])(\d{2})[ .]?(\d{2})[ .]?(\d{2})[ .-]?(\d{3})[ .-]?(\d{2})(?!\d)")
_OLD_PREFILTER = (
    r"(^|[^0-9A-Za-z+])[1-478][ .]?\d{2}[ .]?\d{2}[ .]?(\d{2}|2[ABab])[ .]?\d{3}[ .]?\d{3}[ .]?\d{2}($|\D)"
    r"|(^|[^0-9+])\d{2}[ .]?\d{2}[ .]?\d{2}[ .-]?\d{3}[ .-]?\d{2}($|\D)")


def _old_nir_ok(m: re.Match[str]) -> bool:
    sex, yy, mm, dep, com, order, key = m.groups()
    return int(key) == 97 - int(sex + yy + mm + dep.upper().replace("2A", "19").replace("2B", "18") + com + order) % 97


def _old_be_ok(m: re.Match[str]) -> bool:
    yy, mm, dd, order, key = m.groups()
    month, day = int(mm), int(dd)
    if not (month <= 12 or 20 <= month <= 32 or 40 <= month <= 52) or day > 31:
        return False
    base = int(yy + mm + dd + order)
    return int(key) in (97 - base % 97, 97 - (2_000_000_000 + base) % 97)


def _old_contains(text: str) -> bool:
    return any(_old_nir_ok(m) for m in _OLD_NIR.finditer(text)) or any(_old_be_ok(m) for m in _OLD_BE.finditer(text))


def old_national_id_rows(table: pa.Table) -> dict[int, str]:
    found: dict[int, str] = {}
    for name in table.column_names:
        col = table.column(name)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        start = 0
        for chunk in col.chunks:
            candidates = np.flatnonzero(digit_counts(chunk) >= 11)
            if len(candidates):
                values = chunk.take(pa.array(candidates))
                hits = np.flatnonzero(pc.fill_null(pc.match_substring_regex(values, _OLD_PREFILTER), False)
                                      .to_numpy(zero_copy_only=False))
                for j, v in zip(hits, values.take(pa.array(hits)).to_pylist(), strict=True):
                    i = start + int(candidates[j])
                    if v is not None and i not in found and _old_contains(v):
                        found[i] = name
            start += len(chunk)
    return found


# ---------------------------------------------------------------------------- report
def rates(mask: np.ndarray, labels: list[str]) -> list[tuple[str, int, int]]:
    total, hit = Counter(labels), Counter(lab for lab, m in zip(labels, mask, strict=True) if m)
    return sorted((lab, hit[lab], total[lab]) for lab in total)


def timed(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--non-ids", type=int, default=1_000_000)
    ap.add_argument("--ids", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--show", type=int, default=0, help="print this many missed ids and false positives")
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    random.seed(args.seed)
    t0 = time.perf_counter()
    id_values, id_labels = ids(args.ids, rnd)
    non_values, non_labels = non_ids(args.non_ids, rnd)
    print(f"{args.ids:,} ids and {args.non_ids:,} non-ids generated in {time.perf_counter() - t0:.1f} s")

    new_ids = national_id_mask(pa.array(id_values))
    new_non = national_id_mask(pa.array(non_values))
    old_ids_found = old_national_id_rows(pa.table({"v": id_values}))
    old_non_found = old_national_id_rows(pa.table({"v": non_values}))
    old_ids = np.zeros(len(id_values), bool)
    old_ids[list(old_ids_found)] = True
    old_non = np.zeros(len(non_values), bool)
    old_non[list(old_non_found)] = True

    print(f"\nRecall on ids: new {new_ids.mean():.4%}, old {old_ids.mean():.4%}")
    by_kind: dict[str, list[int]] = {}
    for lab, m, o in zip(id_labels, new_ids, old_ids, strict=True):
        form, ctx = lab.split(" / ")
        for k in (f"  form    {form}", f"  context {ctx}"):
            acc = by_kind.setdefault(k, [0, 0, 0])
            acc[0] += 1
            acc[1] += int(m)
            acc[2] += int(o)
    for k, (n, m, o) in sorted(by_kind.items()):
        print(f"{k:<40} {n:>7,}  new {m / n:8.4%}  old {o / n:8.4%}")
    print(f"\nFalse positives on non-ids: new {new_non.mean():.4%} ({int(new_non.sum()):,} of {len(non_values):,}), "
          f"old {old_non.mean():.4%} ({int(old_non.sum()):,})")
    olds = dict(((lab, n) for lab, n, _ in rates(old_non, non_labels)))
    for lab, n, total in rates(new_non, non_labels):
        print(f"  {lab:<22} {total:>9,}  new {n / total:8.4%} ({n:,})  old {olds[lab] / total:8.4%} ({olds[lab]:,})")

    # every id the screen catches is also masked out of a quarantine payload
    unmasked = sum(1 for v, m in zip(id_values, new_ids, strict=True) if m and MASK not in mask_national_ids(v))
    print(f"\nCaught ids not masked by mask_national_ids: {unmasked}")
    if args.show:
        missed = [v for v, m in zip(id_values, new_ids, strict=True) if not m][:args.show]
        fps = [(lab, v) for v, lab, m in zip(non_values, non_labels, new_non, strict=True) if m][:args.show]
        print("missed:", missed)
        print("false positives:", fps)

    rows = id_values + non_values
    order = np.random.default_rng(args.seed).permutation(len(rows))
    table = pa.table({"v": pa.array(rows).take(pa.array(order))})
    new_t = timed(lambda: national_id_rows(table))
    old_t = timed(lambda: old_national_id_rows(table))
    n = table.num_rows
    print(f"\nThroughput on one column of {n:,} values ({args.ids / n:.1%} ids; best of 3): "
          f"new {n / new_t:,.0f} rows/s ({new_t:.2f} s), old {n / old_t:,.0f} rows/s ({old_t:.2f} s)")
    clean = pa.table({"v": pa.array(non_values)})
    new_c = timed(lambda: national_id_rows(clean))
    old_c = timed(lambda: old_national_id_rows(clean))
    print(f"Throughput on the {len(non_values):,} non-ids alone: new {len(non_values) / new_c:,.0f} rows/s, "
          f"old {len(non_values) / old_c:,.0f} rows/s")


if __name__ == "__main__":
    main()
