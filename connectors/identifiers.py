"""Identifiers checked column-wise on Arrow arrays: the ones a source may carry (RNA, SIREN, SIRET)
and the ones it may not (French NIR, Belgian national register number, and any number the
deployment forbids in its settings).

Organisation identifiers: every validator takes a string array (nulls allowed) and returns a boolean
array of the same length: true where the value is a valid identifier, false where it is not, null
where the input is null (an empty identifier is a matter for ``required``, not for the format check).
Values are compared as given: callers trim first when the source pads them.

- SIREN: 9 digits whose Luhn sum is a multiple of 10.
- SIRET: 14 digits (SIREN + NIC) whose Luhn sum is a multiple of 10, except La Poste's
  establishments (SIREN 356000000), numbered beyond what Luhn allows: for them the plain sum of
  the 14 digits must be a multiple of 5 (INSEE's rule).
- RNA: ``W`` + 9 digits (Corsican associations carry 2A / 2B in place of the département's two
  first digits); with ``allow_old`` also the pre-2010 préfecture dossier numbers that associations
  created before the RNA kept (9 or 10 digits, 2A / 2B allowed): those carry no check digit.

National ids (see "national ids" below): found by their *shape*, with or without a valid check key,
whatever separates their groups, anywhere inside a text value; :func:`national_id_rows` says which
rows of a table carry one, :func:`mask_national_ids` blanks them out of a text.
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


# ---------------------------------------------------------------------------- string buffers
def string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's value offsets (``len + 1``, starting at 0) and its UTF-8 bytes (a numpy view,
    no copy): lets a check look at every value in one numpy pass instead of one call per value."""
    _, offsets_buf, data_buf = arr.buffers()[:3]
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(offsets_buf, width)[arr.offset: arr.offset + len(arr) + 1].astype(np.int64) \
        if len(arr) else np.zeros(1, np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buf, np.uint8)[start:end] if data_buf is not None and end > start \
        else np.zeros(0, np.uint8)
    return offsets - start, data


def digit_counts(arr: pa.Array) -> np.ndarray:
    """How many ASCII digits each value of a string array holds (a null counts what its slot holds,
    normally nothing)."""
    offsets, data = string_buffers(arr)
    counts = np.zeros(len(offsets) - 1, np.int64)
    starts = offsets[:-1]
    filled = offsets[1:] > starts
    if filled.any():
        # one sum per non-empty value: between two non-empty starts lie only that value's bytes
        # (summed as int32, 3-4x faster than int64: no single value holds 2**31 digits)
        counts[filled] = np.add.reduceat((data - 48) < 10, starts[filled], dtype=np.int32)
    return counts


# ---------------------------------------------------------------------------- organisations
LA_POSTE_SIREN = "356000000"

RNA_PATTERN = r"^[Ww](\d{2}|2[ABab])\d{7}$"
RNA_OLD_PATTERN = r"^(\d{2}|2[ABab])\d{7,8}$"

Strings = pa.Array | pa.ChunkedArray


def _as_array(values: Strings) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.string())
    return values


def _null_mask(values: pa.Array) -> np.ndarray:
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _digit_matrix(values: pa.Array, width: int) -> np.ndarray:
    """The digits of strings all exactly ``width`` ASCII digits long, as an (n, width) uint8 matrix."""
    values = values.cast(pa.large_string()) if pa.types.is_string(values.type) else values
    if len(values) == 0:
        return np.zeros((0, width), np.uint8)
    offsets = np.frombuffer(values.buffers()[1], np.int64)[values.offset: values.offset + len(values) + 1]
    data = np.frombuffer(values.buffers()[2], np.uint8)[offsets[0]: offsets[-1]]
    return data.reshape(-1, width) - ord("0")


_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], np.uint8)  # 2d, minus 9 above 9


def _luhn_ok(digits: np.ndarray) -> np.ndarray:
    """Luhn over each row: from the right, every second digit doubled (minus 9 above 9)."""
    width = digits.shape[1]
    doubled = np.zeros(width, bool)
    doubled[width - 2::-2] = True  # second from the right, then every other one
    total = _DOUBLED[digits[:, doubled]].sum(axis=1, dtype=np.int64) + digits[:, ~doubled].sum(axis=1, dtype=np.int64)
    return total % 10 == 0


def _fixed_digits_valid(values: Strings, width: int, la_poste: bool) -> pa.Array:
    arr = _as_array(values)
    offsets, _ = string_buffers(arr)
    # exactly `width` bytes, all of them digits (one numpy pass, no per-value regex)
    shaped = (np.diff(offsets) == width) & (digit_counts(arr) == width) & ~_null_mask(arr)
    candidates = arr.filter(pa.array(shaped))
    digits = _digit_matrix(candidates, width)
    ok = _luhn_ok(digits)
    if la_poste and len(candidates):
        poste = pc.starts_with(candidates, LA_POSTE_SIREN).to_numpy(zero_copy_only=False)
        ok = np.where(poste, digits.sum(axis=1, dtype=np.int64) % 5 == 0, ok)
    out = np.zeros(len(arr), bool)
    out[shaped] = ok
    return pc.if_else(pc.is_null(arr), pa.scalar(None, pa.bool_()), pa.array(out))


def siren_valid(values: Strings) -> pa.Array:
    """True where the value is a SIREN: 9 digits, Luhn."""
    return _fixed_digits_valid(values, 9, la_poste=False)


def siret_valid(values: Strings) -> pa.Array:
    """True where the value is a SIRET: 14 digits, Luhn, or La Poste's digit-sum rule."""
    return _fixed_digits_valid(values, 14, la_poste=True)


def rna_valid(values: Strings, allow_old: bool = False) -> pa.Array:
    """True where the value is an RNA number (``W`` + 9 digits); with ``allow_old`` also a pre-2010
    préfecture dossier number."""
    arr = _as_array(values)
    ok = pc.match_substring_regex(arr, RNA_PATTERN)
    if allow_old:
        ok = pc.or_(ok, pc.match_substring_regex(arr, RNA_OLD_PATTERN))
    return ok


# name in a mapping file -> (validator, quarantine reason code, human reason)
CHECKS = {
    "siren": (siren_valid, "bad_siren", "not a SIREN (9 digits, Luhn check)"),
    "siret": (siret_valid, "bad_siret", "not a SIRET (14 digits, Luhn check)"),
    "rna": (rna_valid, "bad_rna", "not an RNA number (W + 9 digits)"),
    "rna_or_old": (lambda v: rna_valid(v, allow_old=True), "bad_rna",
                   "not an RNA number (W + 9 digits) nor a pre-2010 préfecture number"),
}


# ---------------------------------------------------------------------------- national ids
# What the law forbids storing: the French NIR (numéro de sécurité sociale) and the Belgian national
# register number. Both are caught by shape, not only with a valid key: a number typed with a wrong
# key, without its key, or with other separators is still the person's number.
#
# NIR: sex 1 / 2 (3, 4, 7, 8: temporary numbers), year, month (01-12; 20-42 and 50-99 where INSEE
# records no real month), département (01-99, 2A / 2B), commune (3 digits), order (3 digits), then
# an optional 2-digit key: 13 or 15 digits (Corsica: 11 or 13 digits around 2A / 2B), written with
# a separator at each of its places (1 84 12 75 115 423 57) or with none (its key run on or apart).
# Belgian number: YYMMDD (month +20 / +40 for bis numbers, 00 when unknown; day 00-31), 3 digits
# of order, 2 check digits (97 - number mod 97, with a leading 2 for births from 2000): 11 digits,
# written as people write it: 85.07.30-033.61 (a separator at each of the four places), 850730 033
# 61, 850730-03361, 850730033 61 or 85073003361. Eleven digits are a loose shape: dates followed by
# a postcode or a number (09/2018 13001) would pass if separators could fall anywhere.
# A separator is one space, no-break or narrow no-break space, thin space, dot, dash or slash, or a
# spaced " - " / " / " / " . "; never inside a group.
#
# Where a value is only shaped like a national id and is far more likely something else, the key
# must be valid: digits glued to a letter on either side (VAT numbers FR12345678901, references like
# INV2024…; inside a long hexadecimal token, a ServiceNow sys_id or a hash, not even then);
# eleven bare digits that read as a French phone number without its + (33[1-9]…) or as a dated
# reference (20[12]x…: 2024…); nine digits, a dot and two (an amount: 632424356.73). Eleven bare
# digits that read as a Belgian mobile without its + (324[5-9]…) are never taken, nor is a value
# preceded by + (a phone number) or by a digit (part of a longer number: IBAN, SIRET, an invoice).
_SEP_CHARS = " .\\-/\u00a0\u202f\u2009"
_S = f"(?:[{_SEP_CHARS}]| [-./] )?"  # one optional separator between groups
_S1 = f"(?:[{_SEP_CHARS}]| [-./] )"  # one separator, present
_S1_NODOT = f"(?:[{_SEP_CHARS.replace('.', '')}]| [-./] )"
_NIR_MONTH = r"(?:0[1-9]|1[0-2]|[23]\d|4[0-2]|[5-9]\d)"
_NIR_DEP = r"(?:0[1-9]|[13-9]\d|2[0-9AaBb])"
# a NIR is written with a separator at each of its places (1 84 12 75 115 423 57, mixed ones too),
# or with none (1841275115423, its key run on or apart)
_NIR_KEYLESS = (rf"(?:[1-478]{_S1}\d\d{_S1}{_NIR_MONTH}{_S1}{_NIR_DEP}{_S1}\d{{3}}{_S1}\d{{3}}"
                rf"|[1-478]\d\d{_NIR_MONTH}{_NIR_DEP}\d{{6}})")
_NIR = (rf"(?:[1-478]{_S1}\d\d{_S1}{_NIR_MONTH}{_S1}{_NIR_DEP}{_S1}\d{{3}}{_S1}\d{{3}}(?:{_S1}\d\d)?"
        rf"|[1-478]\d\d{_NIR_MONTH}{_NIR_DEP}\d{{6}}(?:{_S}\d\d)?)")
_BE_MONTH = r"(?:0\d|1[0-2]|2\d|3[0-2]|4\d|5[0-2])"
_BE_DAY = r"(?:[0-2]\d|3[01])"


def _be_layouts(bare: str, key_apart: str) -> str:
    """The Belgian layouts, with ``bare`` for the eleven-digit one and ``key_apart``'s separator."""
    yy, mm, dd = r"\d\d", _BE_MONTH, _BE_DAY
    return (f"(?:{yy}{_S1}{mm}{_S1}{dd}{_S1}\\d{{3}}{_S1}\\d\\d"  # 85.07.30-033.61
            f"|{yy}{mm}{dd}{_S1}\\d{{3}}{_S1}\\d\\d"  # 850730 033 61
            f"|{yy}{mm}{dd}{_S1}\\d{{5}}"  # 850730-03361
            f"|{yy}{mm}{dd}\\d{{3}}{key_apart}\\d\\d"  # 850730033 61
            f"|{bare})")


_BE = _be_layouts(rf"\d\d{_BE_MONTH}{_BE_DAY}\d{{5}}", _S1)
# the same minus eleven bare digits starting 324[5-9], 33[1-9] or 20[12] and nine digits.two
_BE_STRONG = _be_layouts(
    rf"(?:(?:[0145-9]\d|2[1-9]|3[014-9]){_BE_MONTH}|20(?:0\d|3[0-2]|4\d|5[0-2])"
    rf"|32(?:0\d|1[0-2]|2\d|3[0-2]|4[0-4]|5[0-2])|330\d){_BE_DAY}\d{{5}}", _S1_NODOT)
# RE2 (Arrow) has no look-around: boundaries are matched as characters, which is the same test for
# "does the value contain one". LOOSE finds every shape; STRONG the ones taken without a key check.
# Nor is a national id a piece of a longer chain of groups (phone numbers, dates, amounts, IBANs:
# 0033 6 41 44 52 08 09 102 02 51): nothing like "<digit><separator>" right before it, nor
# "<separator><digit>" right after.
_LEFT = f"(?:^|[^0-9+{_SEP_CHARS}]|(?:^|[^0-9])[{_SEP_CHARS}])"
_RIGHT = f"(?:$|[^0-9{_SEP_CHARS}]|[{_SEP_CHARS}](?:$|[^0-9]))"
_LEFT_STRONG = f"(?:^|[^0-9A-Za-z+{_SEP_CHARS}]|(?:^|[^0-9])[{_SEP_CHARS}])"
_RIGHT_STRONG = f"(?:$|[^0-9A-Za-z{_SEP_CHARS}]|[{_SEP_CHARS}](?:$|[^0-9]))"
_LOOSE = rf"{_LEFT}(?:{_NIR}|{_BE}){_RIGHT}"
_STRONG = rf"{_LEFT_STRONG}(?:{_NIR}|{_BE_STRONG}){_RIGHT_STRONG}"
# Python (masking, and the few values LOOSE takes but STRONG does not): one match per candidate
_PY_LEFT = rf"(?<![0-9+])(?<![0-9][{_SEP_CHARS}])"
_PY_RIGHT = rf"(?![0-9])(?![{_SEP_CHARS}][0-9])"
_NIR_PY = re.compile(f"{_PY_LEFT}{_NIR}{_PY_RIGHT}")
_NIR_PY_KEYLESS = re.compile(f"{_NIR_KEYLESS}{_PY_RIGHT}")  # tried where the match with its key fails
_BE_PY = re.compile(f"{_PY_LEFT}{_BE}{_PY_RIGHT}")
_BE_WEAK_BARE = re.compile(r"33[1-9]|20[12]")
_BE_MOBILE = ("3245", "3246", "3247", "3248", "3249")
_AMOUNT = re.compile(r"\d{9}\.\d\d")
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# A Belgian number has 11 digits, a NIR 13 (Corsica: 11, around 2A / 2B) or 15: fewer cannot hold one.
MIN_ID_DIGITS = 11
MASK = "[identifiant national masqué]"


def _nir_key_ok(chars: str) -> bool:
    """``chars``: the NIR without its separators (13 or 15 characters)."""
    if len(chars) != 15:
        return False
    body = chars[:13].upper().replace("2A", "19").replace("2B", "18")
    return int(chars[13:]) == 97 - int(body) % 97


def _be_key_ok(digits: str) -> bool:
    base = int(digits[:9])
    return int(digits[9:]) in (97 - base % 97, 97 - (2_000_000_000 + base) % 97)


_HEX = frozenset("0123456789abcdefABCDEF")
_ALNUM = _ASCII_LETTERS | frozenset("0123456789")


def _glued(text: str, m: re.Match[str]) -> bool:
    """Whether the match touches an ASCII letter on either side (part of a reference, a VAT number,
    a record id): then only a valid key makes it a national id."""
    start, end = m.span()
    return (start > 0 and text[start - 1] in _ASCII_LETTERS) or (end < len(text) and text[end] in _ASCII_LETTERS)


def _in_hash(text: str, m: re.Match[str]) -> bool:
    """Whether the match lies inside a long hexadecimal token (a ServiceNow sys_id, an MD5): never an id."""
    start, end = m.span()
    while start > 0 and text[start - 1] in _ALNUM:
        start -= 1
    while end < len(text) and text[end] in _ALNUM:
        end += 1
    return end - start >= 16 and all(c in _HEX for c in text[start:end])


def _spans_of(rx: re.Pattern[str], text: str, accept: Any,
              keyless: re.Pattern[str] | None = None) -> Iterator[tuple[int, int]]:
    """Accepted matches, trying every start (RE2 asks whether *some* match passes): where a match
    with its key is refused, the same number without it (``keyless``) is tried at the same place."""
    pos = 0
    while (m := rx.search(text, pos)) is not None:
        if not accept(m, text) and keyless is not None:
            m = keyless.match(text, m.start()) or m
        if accept(m, text):
            yield m.span()
            pos = m.end()
        else:
            pos = m.start() + 1


def _nir_spans(text: str) -> Iterator[tuple[int, int]]:
    return _spans_of(_NIR_PY, text, _nir_accept, _NIR_PY_KEYLESS)


def _be_spans(text: str) -> Iterator[tuple[int, int]]:
    return _spans_of(_BE_PY, text, _be_accept)


def _nir_accept(m: re.Match[str], text: str) -> bool:
    if not _glued(text, m):
        return True
    return _nir_key_ok(re.sub(r"[^0-9A-Za-z]", "", m.group())) and not _in_hash(text, m)


def _be_accept(m: re.Match[str], text: str) -> bool:
    found = m.group()
    digits = re.sub(r"\D", "", found)
    bare = len(found) == 11
    if bare and found.startswith(_BE_MOBILE):
        # a Belgian mobile in E.164 without its +: one in 97 has a "valid key"; the only numbers
        # lost are bis numbers of people born in 1932 written without a separator
        return False
    likely_else = (bare and _BE_WEAK_BARE.match(found) is not None) or _AMOUNT.fullmatch(found)
    if not _glued(text, m) and not likely_else:
        return True
    return _be_key_ok(digits) and not _in_hash(text, m)


# ---------------------------------------------------------------------------- the deployment's own
@dataclass(frozen=True)
class ForbiddenPattern:
    """A number the deployment forbids storing (``[privacy] forbidden_id_patterns``): ``regex`` in
    the syntax both RE2 (Arrow) and Python accept (no look-around, no back-references); a value
    containing a match is treated as a national id. ``min_digits``: values with fewer ASCII digits
    are not searched (a cheap pre-filter; 0 searches every value)."""

    name: str
    regex: str
    min_digits: int = 0


@dataclass(frozen=True)
class ForbiddenIds:
    """What the deployment adds to the built-in screen: patterns, and column names never read."""

    patterns: tuple[ForbiddenPattern, ...] = ()
    columns: frozenset[str] = frozenset()


_policy = ForbiddenIds()


def column_key(name: str) -> str:
    """A column name as compared with the forbidden names: accents dropped, lower case, every run
    of other characters as one ``_`` (``N° Sécu`` → ``n_secu``, ``Soc-Sec ID`` → ``soc_sec_id``)."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^0-9a-z]+", "_", plain.lower()).strip("_")


def forbidden_ids_from_settings(section: Any, where: str = "[privacy]") -> ForbiddenIds:
    """The ``[privacy]`` settings table as a :class:`ForbiddenIds`: ``forbidden_id_columns`` (a list
    of column names) and ``forbidden_id_patterns`` (a list of ``{ name, regex, min_digits? }``).
    Raises ValueError naming the key for anything else, a regex that RE2 or Python refuses, or one
    that matches an empty text (it would set every row aside)."""
    if section is None:
        return ForbiddenIds()
    if not isinstance(section, dict):
        raise ValueError(f"{where} must be a table")
    unknown = sorted(set(section) - {"forbidden_id_columns", "forbidden_id_patterns"})
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r} (forbidden_id_columns, forbidden_id_patterns)")
    columns = section.get("forbidden_id_columns", [])
    if not isinstance(columns, list) or not all(isinstance(c, str) and column_key(c) for c in columns):
        raise ValueError(f"{where}.forbidden_id_columns must be a list of column names")
    patterns = []
    for i, spec in enumerate(section.get("forbidden_id_patterns", [])):
        at = f"{where}.forbidden_id_patterns[{i}]"
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
                or not isinstance(spec.get("regex"), str) or not spec["regex"]:
            raise ValueError(f"{at} must be {{ name = \"…\", regex = \"…\" }}")
        extra = sorted(set(spec) - {"name", "regex", "min_digits"})
        if extra:
            raise ValueError(f"{at}: unknown key {extra[0]!r} (name, regex, min_digits)")
        min_digits = spec.get("min_digits", 0)
        if not isinstance(min_digits, int) or isinstance(min_digits, bool) or min_digits < 0:
            raise ValueError(f"{at}.min_digits must be a whole number ≥ 0")
        try:
            rx = re.compile(spec["regex"])
        except re.error:
            raise ValueError(f"{at} ({spec['name']}): the regex does not compile") from None
        try:
            pc.match_substring_regex(pa.array(["x"]), spec["regex"])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise ValueError(f"{at} ({spec['name']}): the regex is not RE2 syntax "
                             "(no look-around, no back-references)") from None
        if rx.search("") is not None:
            raise ValueError(f"{at} ({spec['name']}): the regex matches an empty text")
        patterns.append(ForbiddenPattern(spec["name"], spec["regex"], min_digits))
    return ForbiddenIds(tuple(patterns), frozenset(column_key(c) for c in columns))


def set_forbidden_ids(policy: ForbiddenIds) -> ForbiddenIds:
    """Install the deployment's forbidden ids for this process (the settings loader does); returns
    the previous ones."""
    global _policy
    previous, _policy = _policy, policy
    return previous


def forbidden_ids() -> ForbiddenIds:
    """The forbidden ids in force in this process."""
    return _policy


@contextlib.contextmanager
def using_forbidden_ids(policy: ForbiddenIds) -> Iterator[None]:
    """Within the block, ``policy`` is in force (tests, one-off runs)."""
    previous = set_forbidden_ids(policy)
    try:
        yield
    finally:
        set_forbidden_ids(previous)


@functools.lru_cache(maxsize=8)
def _compiled(policy: ForbiddenIds) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p.regex) for p in policy.patterns)


# ---------------------------------------------------------------------------- columns
# Columns that carry a French NIR or a Belgian national register number by name: never read.
NATIONAL_ID_COLUMNS = frozenset({
    "nir", "nir_cle", "insee_nir", "numero_securite_sociale", "num_secu", "no_secu", "numero_secu",
    "securite_sociale", "numero_ss", "num_ss", "nss", "matricule_secu", "n_secu", "n_ss",
    "niss", "insz", "rrn", "numero_national", "registre_national", "numero_registre_national",
    "rijksregisternummer", "numero_niss", "numero_de_securite_sociale", "numero_rijksregister",
})
# Names that look like another country's personal number: not dropped on a guess (``tax_id`` may be
# a company's), but a frozen contract never suggests mapping them (see :func:`looks_like_id_column`).
_ID_NAME_TOKENS = frozenset({"ssn", "nino", "bsn", "pesel", "ahv", "avs", "personnummer", "cpr", "nif",
                             "curp", "nid", "dni", "sin", "ppsn", "amka", "egn", "oib"})
_ID_NAME_PARTS = ("social_security", "soc_sec", "securite_sociale", "national_insurance", "national_id",
                  "national_register", "registre_national", "rijksregister", "burgerservice",
                  "sozialversicherung", "codice_fiscale", "identity_number", "citizen_number")


def is_national_id_column(name: str) -> bool:
    """A column never read or stored: a built-in national-id name, or one the settings forbid
    (compared by :func:`column_key`)."""
    key = column_key(name)
    return key in NATIONAL_ID_COLUMNS or key in _policy.columns


def looks_like_id_column(name: str) -> bool:
    """Whether a column not forbidden by name still looks like a personal identification number."""
    key = column_key(name)
    return bool(set(key.split("_")) & _ID_NAME_TOKENS) or any(part in key for part in _ID_NAME_PARTS)


# ---------------------------------------------------------------------------- values
def national_id_spans(text: str) -> list[tuple[int, int]]:
    """Positions of national ids (built-in shapes and the settings' patterns) in a text, sorted."""
    spans = list(_nir_spans(text)) + list(_be_spans(text))
    for rx in _compiled(_policy):
        spans += [m.span() for m in rx.finditer(text) if m.end() > m.start()]
    return sorted(spans)


def contains_national_id(text: str) -> bool:
    return bool(national_id_spans(text))


def mask_national_ids(text: str) -> str:
    """The text with every national id replaced by a fixed mask (overlapping ones as one)."""
    out, last = [], 0
    for start, end in national_id_spans(text):
        if end <= last:
            continue
        out.append(text[last:max(start, last)])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


def _mask_of(values: pa.Array, rx: str, todo: np.ndarray) -> np.ndarray:
    """Where ``rx`` is found among the values ``todo`` (a boolean mask of the same length)."""
    out = np.zeros(len(values), bool)
    idx = np.flatnonzero(todo)
    if len(idx):
        sub = values.take(pa.array(idx)) if len(idx) < len(values) else values
        hit = pc.fill_null(pc.match_substring_regex(sub, rx), False).to_numpy(zero_copy_only=False)
        out[idx[np.asarray(hit, bool)]] = True
    return out


def national_id_mask(values: pa.Array) -> np.ndarray:
    """Which values of a string array carry a national id (numpy booleans; null is false).

    Values with fewer than 11 ASCII digits are ruled out in one numpy pass; the rest go through one
    RE2 search for every shape, and its hits through a second for the shapes taken without a key
    check. Only the values between the two (glued to a letter, phone-like) are checked in Python,
    where the key decides. The settings' patterns are one RE2 search each."""
    if len(values) == 0:
        return np.zeros(0, bool)
    offsets, _ = string_buffers(values)
    present = ~np.asarray(values.is_null().to_numpy(zero_copy_only=False), bool)
    long_enough = np.diff(offsets) >= MIN_ID_DIGITS  # bytes bound digits: most columns stop here
    digits = digit_counts(values) if long_enough.any() or _policy.patterns else np.zeros(len(values), np.int64)
    candidates = present & long_enough & (digits >= MIN_ID_DIGITS)
    found = np.zeros(len(values), bool)
    if candidates.any():
        loose = _mask_of(values, _LOOSE, candidates)
        if loose.any():
            found = _mask_of(values, _STRONG, loose)
            weak = np.flatnonzero(loose & ~found)
            if len(weak):
                for i, v in zip(weak, values.take(pa.array(weak)).to_pylist(), strict=True):
                    found[i] = any(True for _ in _nir_spans(v)) or any(True for _ in _be_spans(v))
    for p in _policy.patterns:
        todo = present & ~found & (digits >= p.min_digits)
        if todo.any():
            found |= _mask_of(values, p.regex, todo)
    return found


def _as_text(col: pa.Array) -> pa.Array | None:
    """A column's values as text where they could hold a national id: strings as they are, integers
    of 11 digits or more as their decimal text (a NIR kept in a BIGINT), anything else None."""
    t = col.type
    if pa.types.is_dictionary(t):
        col, t = col.dictionary_decode(), t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col
    if pa.types.is_string_view(t):  # another layout of the same text (DuckDB's Arrow export)
        return col.cast(pa.large_string())
    if pa.types.is_integer(t) and len(col):
        big = pc.fill_null(pc.greater_equal(pc.abs(col.cast(pa.int64(), safe=False)), 10**10), False)
        if pc.any(big).as_py():
            return pc.if_else(big, col.cast(pa.string()), pa.scalar(None, pa.string()))
    return None


def national_id_rows(table: pa.Table) -> dict[int, str]:
    """Row index -> the first column (in column order) carrying a national id, for every row that
    carries one in a text or integer column (see :func:`national_id_mask`)."""
    found: dict[int, str] = {}
    for name in table.column_names:
        start = 0
        for chunk in table.column(name).chunks:
            text = _as_text(chunk)
            if text is not None and len(text):
                for i in np.flatnonzero(national_id_mask(text)):
                    found.setdefault(start + int(i), name)
            start += len(chunk)
    return found


def drop_columns_of(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that are never read (:func:`is_national_id_column`)."""
    return [n for n in names if is_national_id_column(n)]
