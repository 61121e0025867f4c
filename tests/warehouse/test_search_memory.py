"""The desk's search in memory on a published DuckDB snapshot (warehouse.search_memory) answers
exactly what the SQL search answers on the same release: hits, order, scores, total, capped —
for every kind of query, scope, exclusion and page; and a new publication is read once it
replaces the old one, the old release's arrays let go with its last reader."""

from __future__ import annotations

import gc
import weakref
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from bench.desk_search import load, queries, synthesize
from schemas.contract import CITIZEN, arrow_schema
from warehouse import search as search_module
from warehouse.engine import Warehouse
from warehouse.search import QueryError, Scope, build_index, search
from warehouse.search_memory import memory_index
from warehouse.snapshot import publish

ALL_FIELDS = frozenset({"given_names", "birth_name", "usage_name", "birth_date", "email", "phone", "postcode", "city"})
SCOPES = {
    "everything": Scope(fields=ALL_FIELDS),
    "finance": Scope(fields=ALL_FIELDS, source_systems=frozenset({"finance"})),
    "family+associations": Scope(fields=ALL_FIELDS, source_systems=frozenset({"family", "associations"})),
    "names only": Scope(fields=frozenset({"given_names", "usage_name"})),
}
PAGES = [(20, 0), (5, 5), (3, 40)]


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[str, pa.Table]:
    """A generated population (bench/desk_search.py's: sandbox records, a golden release from the
    truth) indexed and published; its URL and citizens."""
    path = tmp_path_factory.mktemp("memory") / "hub.duckdb"
    url = f"duckdb:///{path}"
    records, links, citizens = synthesize(6000, 11)
    load(url, records, links, citizens)
    with Warehouse(url) as wh:
        build_index(wh)
    publish(url)
    return url, citizens


def _texts(citizens: pa.Table) -> list[str]:
    """Queries of every kind: the bench's (name, typo, name + date, e-mail, phone, surname alone) and
    prefixes, single letters, name + postcode, a swapped and an impossible date, a common prénom."""
    out = [text for _, text, _ in queries(citizens, 150, 3)]
    rows = citizens.filter(pc.is_valid(citizens["usage_name"])).slice(0, 400).to_pylist()
    for n, c in enumerate(rows[::10]):
        given, usage = (c["given_names"] or "x").split()[0], c["usage_name"]
        out += [given[:2], f"{given[:3]} {usage[:1]}", f"{usage} {c['postcode']}", usage[:4]]
        if c["birth_date"]:
            d = c["birth_date"]
            out += [f"{usage} {d.month:02d}/{d.day:02d}/{d.year}", f"{given} {d:%d/%m/%Y}"]
        if n % 5 == 0:
            out += [f"{usage} 31/02/1990", "marie", "m", "le", f"{given} {given}"]
    return list(dict.fromkeys(out))


def _outcome(wh: Warehouse, text: str, scope: Scope, limit: int, offset: int) -> object:
    try:
        return search(wh, text, scope=scope, limit=limit, offset=offset)
    except QueryError as e:
        return str(e)


@pytest.mark.parametrize("max_candidates", [search_module.MAX_CANDIDATES, 40])
def test_the_search_in_memory_answers_what_the_sql_answers(published, monkeypatch, max_candidates: int) -> None:
    url, citizens = published
    monkeypatch.setattr(search_module, "MAX_CANDIDATES", max_candidates)
    texts = _texts(citizens)
    compared = hits = capped = excluded = 0
    with Warehouse(url) as writer, Warehouse.reader(url) as reader:
        assert memory_index(writer) is None and memory_index(reader) is not None  # SQL vs arrays
        for n, text in enumerate(texts):
            for name, scope in SCOPES.items():
                pages = PAGES if n % 4 == 0 else PAGES[:1]
                for limit, offset in pages:
                    sql = _outcome(writer, text, scope, limit, offset)
                    assert _outcome(reader, text, scope, limit, offset) == sql, (text, name, limit, offset)
                    compared += 1
                    if isinstance(sql, search_module.Page):
                        hits += bool(sql.hits)
                        capped += sql.capped
                if name == "everything" and n % 3 == 0:
                    first = _outcome(writer, text, scope, 20, 0)
                    if isinstance(first, search_module.Page) and first.hits:
                        # some of the hits left out, an id unknown, one longer than any indexed
                        out = Scope(fields=scope.fields, exclude=frozenset(
                            [h.citizen_id for h in first.hits[::3]] + ["C-UNKNOWN", "C" * 80]))
                        sql = _outcome(writer, text, out, 20, 0)
                        assert _outcome(reader, text, out, 20, 0) == sql, (text, "excluded")
                        excluded += 1
        assert _outcome(reader, "martin", SCOPES["everything"], 20, 10_000) == _outcome(
            writer, "martin", SCOPES["everything"], 20, 10_000)  # past the last page: the total still given
    assert compared > 1500 and hits > 600 and excluded > 30
    assert capped > (50 if max_candidates == 40 else -1)  # the small cap is reached, and compared


def _add_citizen(url: str, cid: str, usage: str) -> None:
    with Warehouse(url) as wh:
        wh.write(CITIZEN, pa.Table.from_pylist([{
            "citizen_id": cid, "given_names": "Oriane", "birth_name": None, "usage_name": usage, "sex": None,
            "birth_date": date(1990, 5, 6), "email": None, "phone": None, "address_line": None,
            "postcode": "69001", "city": "Lyon", "record_count": 1, "source_systems": "finance",
            "updated_at": datetime(2026, 12, 1, tzinfo=UTC)}], schema=arrow_schema(CITIZEN)))
        build_index(wh)
    publish(url)


def test_a_new_publication_is_read_once_it_replaces_the_old_one(tmp_path) -> None:
    url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    records, links, citizens = synthesize(300, 5)
    load(url, records, links, citizens)
    _add_citizen(url, "C00000000000AAAA1", "Quenderwick")
    everything = SCOPES["everything"]
    old = Warehouse.reader(url)
    try:
        assert [h.citizen_id for h in search(old, "quenderwick", scope=everything).hits] == ["C00000000000AAAA1"]
        old_index = weakref.ref(memory_index(old))
        with Warehouse.reader(url) as same:  # a second reader of that release shares its arrays
            assert memory_index(same) is old_index()
        _add_citizen(url, "C00000000000AAAA2", "Quenderwick")
        assert old.stale()
        with Warehouse.reader(url) as new:
            assert memory_index(new) is not old_index()
            assert sorted(h.citizen_id for h in search(new, "quenderwick", scope=everything).hits) == [
                "C00000000000AAAA1", "C00000000000AAAA2"]
            assert search(new, "quendervick oriane", scope=everything).total == 2  # one typo
        # the old reader still reads the release it opened
        assert [h.citizen_id for h in search(old, "quenderwick", scope=everything).hits] == ["C00000000000AAAA1"]
    finally:
        old.close()
    gc.collect()
    assert old_index() is None  # let go with its release's last reader
