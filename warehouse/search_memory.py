"""The desk's search on a published DuckDB snapshot, in memory: the index tables as arrays.

A snapshot reader's file cannot change under it, so the search's tables
(``golden.citizen_search*``, :mod:`warehouse.search`) are read once per process per release
(:meth:`warehouse.engine.Warehouse.shared`: kept by the process's one DuckDB instance on that
release, let go with it) into NumPy and Arrow arrays, and each search is answered from them with
binary searches and slices — no SQL statement per search (each cost 0.3–1 ms before it read a row).
The semantics are :func:`warehouse.search._search_duckdb`'s, to the row: the same terms (that
function's term stage runs over :class:`MemoryIndex`'s three lookups instead of its three
statements), the same driver, cap, scope masks, exclusions, scores and order.

Arrays (no Python object per row):

- the vocabulary in key order (as stored: ``term_id`` numbers terms by key, then field): the keys
  as one Arrow string buffer (:class:`_Keys`, bisected), field codes, term ids, citizens; the name
  terms again apart (a prefix's range holds no e-mail or phone);
- the variants: sorted int64 codes with their term, field and citizens;
- the postings in CSR: ``offsets[term_id]`` into ``citizen_no`` and ``origin_mask`` (the smallest
  unsigned type holding the silos' bits); ``citizen_mask`` is the citizen's ``systems_mask`` (the
  index builds it so; checked at load, else kept per posting);
- the citizens (``golden.citizen_search``) as an Arrow table, ``take`` by row for a page, their
  masks by ``citizen_no``, and their ids sorted (exclusions by binary search).
"""

from __future__ import annotations

import bisect
import logging
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.contract import CITIZEN_SEARCH, CITIZEN_SEARCH_POSTING, CITIZEN_SEARCH_TERM, CITIZEN_SEARCH_VARIANT
from warehouse.engine import Warehouse, qualified

log = logging.getLogger(__name__)

_NAME_FIELDS = ("given_names", "birth_name", "usage_name")  # warehouse.search.NAME_FIELDS (not imported: a cycle)
_WHOLE_RATIO = 4  # another term's postings are read whole up to this many per candidate, else probed by candidate
_PAGE_COLUMNS = ("citizen_no", "citizen_id", "given_names", "birth_name", "usage_name", "birth_year", "city",
                 "source_systems")


class _Keys:
    """Sorted strings of an Arrow column, as UTF-8 bytes, for :mod:`bisect` (byte order is DuckDB's
    order of text): one buffer and its offsets, no Python string per row."""

    def __init__(self, column: pa.ChunkedArray | pa.Array):
        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        arr = arr.cast(pa.large_binary())
        _, offsets, data = arr.buffers()
        self._off = np.frombuffer(offsets, np.int64)[arr.offset:arr.offset + len(arr) + 1]
        self._data = memoryview(data) if data is not None else memoryview(b"")
        self._n = len(arr)
        self.nbytes = self._off.nbytes + (data.size if data is not None else 0)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> bytes:
        return self._data[self._off[i]:self._off[i + 1]].tobytes()


def _smallest_unsigned(values: np.ndarray) -> np.ndarray:
    top = int(values.max()) if len(values) else 0
    for t in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(t).max:
            return values.astype(t)
    return values.astype(np.int64)


class MemoryIndex:
    """One published release's search tables as arrays (see the module docstring)."""

    def __init__(self, wh: Warehouse):
        started = time.perf_counter()
        term = wh.arrow(f"SELECT term_id, field, key, citizens FROM {qualified(CITIZEN_SEARCH_TERM)} "
                        "ORDER BY key, field")
        fields = term["field"].combine_chunks().dictionary_encode()
        self.field_names: tuple[str, ...] = tuple(fields.dictionary.to_pylist())
        self.term_field = fields.indices.to_numpy().astype(np.int8)
        self.term_id = term["term_id"].to_numpy().astype(np.int32)
        self.term_citizens = term["citizens"].to_numpy().astype(np.int32)
        self.keys = _Keys(term["key"])
        name_codes = [i for i, f in enumerate(self.field_names) if f in _NAME_FIELDS]
        self.name_rows = np.flatnonzero(np.isin(self.term_field, name_codes)).astype(np.int32)
        self.name_keys = _Keys(term["key"].take(pa.array(self.name_rows)))
        del term, fields

        variant = wh.arrow(f"SELECT variant, term_id, field, citizens FROM {qualified(CITIZEN_SEARCH_VARIANT)} "
                           "ORDER BY variant, term_id")
        self.variant = variant["variant"].to_numpy()
        self.variant_term = variant["term_id"].to_numpy().astype(np.int32)
        self.variant_field = self._codes(variant["field"])
        self.variant_citizens = variant["citizens"].to_numpy().astype(np.int32)
        del variant

        citizen = wh.arrow(f"SELECT {', '.join(_PAGE_COLUMNS)}, systems_mask FROM {qualified(CITIZEN_SEARCH)} "
                           "ORDER BY citizen_no")
        nos = citizen["citizen_no"].to_numpy().astype(np.int64)
        size = int(nos[-1]) + 1 if len(nos) else 0
        self.citizens = citizen.select(list(_PAGE_COLUMNS)).combine_chunks()  # take: one chunk, no concatenation
        self.citizen_nos = nos.astype(np.int32)  # sorted: row of a citizen_no by binary search
        self.citizen_mask = np.zeros(size, np.int64)
        self.citizen_mask[nos] = citizen["systems_mask"].to_numpy()
        ids = citizen["citizen_id"].cast(pa.binary()).to_numpy(zero_copy_only=False)
        width = max((len(i) for i in ids), default=1)
        ids = np.array(ids, dtype=f"S{width}")
        order = np.argsort(ids, kind="stable")
        self.ids_sorted, self.ids_no = ids[order], self.citizen_nos[order]
        del citizen, ids, order

        posting = wh.arrow(f"SELECT term_id, citizen_no, origin_mask, citizen_mask "
                           f"FROM {qualified(CITIZEN_SEARCH_POSTING)} ORDER BY term_id, citizen_no")
        p_term = posting["term_id"].to_numpy()
        self.posting_no = posting["citizen_no"].to_numpy().astype(np.int32)
        self.origin_mask = _smallest_unsigned(posting["origin_mask"].to_numpy())
        cmask = posting["citizen_mask"].to_numpy()
        # the index gives each posting its citizen's systems_mask: kept once per citizen when so
        self.posting_cmask = None if np.array_equal(cmask, self.citizen_mask[self.posting_no]) else cmask
        top = max(int(p_term[-1]) if len(p_term) else -1, int(self.term_id.max()) if len(self.term_id) else -1)
        self.offsets = np.searchsorted(p_term, np.arange(top + 2)).astype(np.int64)
        del posting, p_term, cmask
        self.load_seconds = time.perf_counter() - started
        log.info("search index in memory: %d terms, %d postings, %d citizens, %.1f MB, %.2f s",
                 len(self.term_id), len(self.posting_no), len(self.citizen_nos), self.nbytes / 1e6,
                 self.load_seconds)

    def _codes(self, column: pa.ChunkedArray) -> np.ndarray:
        """A field column as the vocabulary's field codes."""
        idx = pc.index_in(column, value_set=pa.array(self.field_names, pa.string()))
        return idx.fill_null(-1).to_numpy().astype(np.int8)

    @property
    def nbytes(self) -> int:
        arrays = (self.term_field, self.term_id, self.term_citizens, self.name_rows, self.variant, self.variant_term,
                  self.variant_field, self.variant_citizens, self.citizen_nos, self.citizen_mask, self.ids_sorted,
                  self.ids_no, self.posting_no, self.origin_mask, self.offsets)
        extra = self.posting_cmask.nbytes if self.posting_cmask is not None else 0
        return sum(a.nbytes for a in arrays) + extra + self.keys.nbytes + self.name_keys.nbytes + self.citizens.nbytes

    def _field_codes(self, fields: list[str]) -> np.ndarray:
        return np.array([i for i, f in enumerate(self.field_names) if f in fields], np.int8)

    # ------------------------------------------------------------------ the term stage's lookups
    def ranges(self, alts: list[str], name_fields: list[str], limit: int) -> list[tuple[int, str, int]]:
        """(term_id, key, citizens) of each alternative's range of name keys [alt, alt + '{') in
        ``name_fields``: the exact key's terms first, then by citizens (descending), term_id; at most
        ``limit`` per alternative, concatenated (a term in two ranges twice), as the SQL gives them."""
        codes = self._field_codes(name_fields)
        out: list[tuple[int, str, int]] = []
        for alt in alts:
            a = alt.encode()
            lo = bisect.bisect_left(self.name_keys, a)
            hi = bisect.bisect_left(self.name_keys, a + b"{", lo)
            if lo == hi:
                continue
            exact_hi = bisect.bisect_right(self.name_keys, a, lo, hi)
            rows = self.name_rows[lo:hi]
            keep = np.isin(self.term_field[rows], codes)
            exact = np.zeros(hi - lo, bool)
            exact[:exact_hi - lo] = True
            rows, exact = rows[keep], exact[keep]
            if not len(rows):
                continue
            citizens = self.term_citizens[rows].astype(np.int64)
            # one sortable code per row: exact first, then citizens descending, then term_id
            code = ((~exact).astype(np.int64) << 62) | ((2**31 - 1 - citizens) << 31) | self.term_id[rows]
            if len(code) > limit:
                part = np.argpartition(code, limit - 1)[:limit]
                rows, code = rows[part], code[part]
            rows = rows[np.argsort(code)]
            out += [(int(t), self.keys[int(r)].decode(), int(n)) for t, r, n in
                    zip(self.term_id[rows], rows, self.term_citizens[rows], strict=True)]
        return out

    def variants(self, codes: list[int], name_fields: list[str]) -> list[tuple[int, int, int]]:
        """(variant, term_id, citizens) of the variant codes, in ``name_fields``."""
        v = np.asarray(codes, np.int64)
        lo, hi = np.searchsorted(self.variant, v, "left"), np.searchsorted(self.variant, v, "right")
        if not (hi > lo).any():
            return []
        idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True) if b > a])
        idx = idx[np.isin(self.variant_field[idx], self._field_codes(name_fields))]
        return list(zip(self.variant[idx].tolist(), self.variant_term[idx].tolist(),
                        self.variant_citizens[idx].tolist(), strict=True))

    def terms_of_keys(self, keys: list[str]) -> list[tuple[int, str, str, int]]:
        """(term_id, field, key, citizens) of every term whose key is one of ``keys`` (any field)."""
        out = []
        for k in keys:
            b = k.encode()
            lo = bisect.bisect_left(self.keys, b)
            hi = bisect.bisect_right(self.keys, b, lo)
            out += [(int(self.term_id[r]), self.field_names[self.term_field[r]], k, int(self.term_citizens[r]))
                    for r in range(lo, hi)]
        return out

    # ------------------------------------------------------------------ the postings stage
    def _scoped(self, lo: int, hi: int, allowed: int | None) -> np.ndarray:
        """Positions lo..hi of the postings kept by the silo mask (all when None)."""
        pos = np.arange(lo, hi)
        if allowed is None:
            return pos
        cmask = (self.posting_cmask[lo:hi] if self.posting_cmask is not None
                 else self.citizen_mask[self.posting_no[lo:hi]])
        keep = ((self.origin_mask[lo:hi].astype(np.int64) & allowed) != 0) & ((cmask & allowed) != 0)
        return pos[keep]

    def _postings(self, term_id: int) -> tuple[int, int]:
        if term_id + 1 >= len(self.offsets):
            return 0, 0
        return int(self.offsets[term_id]), int(self.offsets[term_id + 1])

    def rank(self, found: dict[int, dict[int, tuple[float, int]]], words: int, crits: int, driver: int,
             taken: list[tuple[float, int, int, int]], ranked_count: int, allowed: int | None,
             exclude: frozenset[str], limit: int, offset: int, max_candidates: int) -> list[dict[str, Any]]:
        """The page's rows as :func:`warehouse.search._search_duckdb` returns them, from the terms
        ``found`` per slot, the ``driver`` group and its ``taken`` terms (best first)."""
        def group(slot: int) -> int:
            return slot if slot < words else -1

        slots_of: dict[int, list[tuple[int, float]]] = {}
        for slot, terms in found.items():
            for term_id, (s, _) in terms.items():
                slots_of.setdefault(term_id, []).append((slot, s))
        # the driver's postings, best terms first, each term's by citizen_no: at most max_candidates
        parts, count = [], 0
        for term_id in dict.fromkeys(r[2] for r in taken):
            pos = self._scoped(*self._postings(term_id), allowed)
            parts.append((term_id, pos))
            count += len(pos)
            if count > max_candidates:
                break
        capped = count > max_candidates or len(taken) < ranked_count
        if count > max_candidates:
            term_id, pos = parts[-1]
            parts[-1] = (term_id, pos[:len(pos) - (count - max_candidates)])
        if not any(len(p) for _, p in parts):
            return []
        cands = np.unique(np.concatenate([self.posting_no[p] for _, p in parts]))
        score = np.zeros((len(cands), words + crits))
        for term_id, pos in parts:
            at = np.searchsorted(cands, self.posting_no[pos])
            for slot, s in slots_of[term_id]:
                if group(slot) == driver:
                    score[at, slot] = np.maximum(score[at, slot], s)
        # the other words' and criteria's postings, for the candidates only: a term with few
        # postings read whole (all such terms' at once), one with many probed by candidate
        pairs = [(term_id, slot, s) for term_id, slots in slots_of.items() for slot, s in slots
                 if group(slot) != driver]
        if pairs:
            bounds = np.array([self._postings(t) for t, _, _ in pairs], np.int64).reshape(-1, 2)
            sizes = bounds[:, 1] - bounds[:, 0]
            whole = sizes <= _WHOLE_RATIO * len(cands)
            pos_parts, at_parts, pair_parts = [], [], []
            if whole.any():
                k = np.flatnonzero(whole)
                n = sizes[k]
                pair = np.repeat(k, n)  # each posting's pair
                pos = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + np.repeat(bounds[k, 0], n)
                nos = self.posting_no[pos]
                at = np.searchsorted(cands, nos)
                hit = at < len(cands)
                hit[hit] = cands[at[hit]] == nos[hit]
                pos_parts.append(pos[hit]), at_parts.append(at[hit]), pair_parts.append(pair[hit])
            for k in np.flatnonzero(~whole):
                lo, hi = int(bounds[k, 0]), int(bounds[k, 1])
                nos = self.posting_no[lo:hi]
                p = np.searchsorted(nos, cands)
                hit = p < len(nos)
                hit[hit] = nos[p[hit]] == cands[hit]
                at = np.flatnonzero(hit)
                pos_parts.append(lo + p[hit]), at_parts.append(at), pair_parts.append(np.full(len(at), k))
            pos, at, pair = (np.concatenate(pos_parts), np.concatenate(at_parts), np.concatenate(pair_parts))
            if allowed is not None and len(pos):
                cmask = self.posting_cmask[pos] if self.posting_cmask is not None else self.citizen_mask[cands[at]]
                keep = ((self.origin_mask[pos].astype(np.int64) & allowed) != 0) & ((cmask & allowed) != 0)
                at, pair = at[keep], pair[keep]
            slot_of = np.array([slot for _, slot, _ in pairs], np.int64)
            s_of = np.array([s for _, _, s in pairs], np.float64)
            np.maximum.at(score, (at, slot_of[pair]), s_of[pair])
        n_tok = (score[:, :words] > 0).sum(axis=1)
        n_crit = (score[:, words:] > 0).sum(axis=1)
        ok = n_tok == words
        if crits:
            ok &= n_crit > 0
        if exclude:
            ok &= ~np.isin(cands, self._excluded_nos(exclude))
        cands, n_crit, score = cands[ok], n_crit[ok], score[ok]
        total = len(cands)
        raw = score[:, words:].sum(axis=1) + score[:, :words].sum(axis=1) / max(words, 1)
        values, inverse = np.unique(raw, return_inverse=True)
        rounded = np.array([round(float(v), 4) for v in values])[inverse.reshape(-1)]  # Python's rounding, as SQL path
        order = np.lexsort((cands, -rounded, -n_crit))[offset:offset + limit]
        if not len(order):
            return []
        rows = self.citizens.take(pa.array(np.searchsorted(self.citizen_nos, cands[order]))).to_pylist()
        return [{**r, "criteria": int(c), "score": float(s), "total": total, "capped": capped}
                for r, c, s in zip(rows, n_crit[order], rounded[order], strict=True)]

    def _excluded_nos(self, exclude: frozenset[str]) -> np.ndarray:
        """The citizen_no of the ids left out that the index holds (an id longer than any held is not)."""
        width = self.ids_sorted.dtype.itemsize
        ids = np.array([b for b in (i.encode() for i in exclude) if len(b) <= width], dtype=self.ids_sorted.dtype)
        at = np.searchsorted(self.ids_sorted, ids)
        hit = at < len(self.ids_sorted)
        hit[hit] = self.ids_sorted[at[hit]] == ids[hit]
        return self.ids_no[at[hit]]


def memory_index(wh: Warehouse) -> MemoryIndex | None:
    """The in-memory index of the release a DuckDB snapshot reader reads (loaded by the first search
    of the process on that release); None for any other connection (a writer's: SQL)."""
    if wh.kind != "duckdb" or wh.snapshot is None:
        return None
    return wh.shared("search_memory_index", lambda: MemoryIndex(wh))
