"""French organisation identifiers, checked column-wise on Arrow arrays: RNA, SIREN, SIRET.

Every validator takes a string array (nulls allowed) and returns a boolean array of the same
length: true where the value is a valid identifier, false where it is not, null where the input
is null (an empty identifier is a matter for ``required``, not for the format check). Values are
compared as given: callers trim first when the source pads them.

- SIREN: 9 digits whose Luhn sum is a multiple of 10.
- SIRET: 14 digits (SIREN + NIC) whose Luhn sum is a multiple of 10, except La Poste's
  establishments (SIREN 356000000), numbered beyond what Luhn allows: for them the plain sum of
  the 14 digits must be a multiple of 5 (INSEE's rule).
- RNA: ``W`` + 9 digits (Corsican associations carry 2A / 2B in place of the département's two
  first digits); with ``allow_old`` also the pre-2010 préfecture dossier numbers that associations
  created before the RNA kept (9 or 10 digits, 2A / 2B allowed): those carry no check digit.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import digit_counts, string_buffers

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
