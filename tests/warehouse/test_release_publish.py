"""Write-audit-publish on both engines: a release is published whole or not at all.

* a release failing mid-publish (a key broken while it is built, its audit failing, or a key broken
  after the golden tables were switched) leaves the previous release, queue, aliases and reports
  exactly as they were (content hash of every golden and ops table);
* a refused release leaves its report and nothing else;
* on PostgreSQL, a reader on another connection during publishes sees the old or the new release,
  never a mix.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from matching.release import Release, ReleaseGuard, compute_release
from schemas.contract import (
    CITIZEN,
    CITIZEN_ALIAS,
    CITIZEN_ATTRIBUTE,
    CITIZEN_LINK,
    DISCREPANCY,
    HOUSEHOLD,
    HOUSEHOLD_MEMBER,
    PERSON_RECORD,
    REVIEW_QUEUE,
    arrow_schema,
)
from tests.golden import resolve_and_publish
from tests.warehouse.test_resolution import LAX, _records
from warehouse import decisions as store
from warehouse.engine import Warehouse
from warehouse.resolution import NEXT_SCHEMA, ReleaseAuditFailed, ReleaseRefused, _next, publish_release, read_inputs

SCHEMAS = ("golden", NEXT_SCHEMA, "ops")


@pytest.fixture(scope="module")
def model() -> dict:
    from matching.model import train
    from matching.resolve import prepare
    from sandbox.observations import person_records

    return train(prepare(person_records(1_000, seed=7)))


def content_hash(wh: Warehouse, *, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    """Per table of the golden, build and ops schemas: a hash of its rows (in any order)."""
    tables = wh.rows("SELECT table_schema, table_name FROM information_schema.tables "
                     "WHERE table_schema IN ('golden', 'golden_next', 'ops') ORDER BY 1, 2")
    out = {}
    for schema, name in tables:
        if f"{schema}.{name}" in leave_out:
            continue
        rows = sorted(repr(r) for r in wh.rows(f'SELECT * FROM "{schema}"."{name}"'))
        out[f"{schema}.{name}"] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


@pytest.fixture
def published(warehouse_url: str, model: dict, tmp_path) -> tuple[Warehouse, Release]:
    """A warehouse with one release published (a queue and a report), and the next run's release,
    which merges the lone debtor into Nathalie (one id retired)."""
    with Warehouse(warehouse_url) as wh:
        wh.write(PERSON_RECORD, _records())
        resolve_and_publish(wh, "r1", model_dir=tmp_path, model_json=model, guard=LAX, review_band=(0.0, 1.1))
        store.record_decision(wh, "must_link", record_keys=("finance:t9", "family:r1"), decided_by="a", reason="r")
        nxt = compute_release(read_inputs(wh), "r2", now=datetime.now(UTC), model_json=model, guard=LAX,
                              review_band=(0.0, 1.1))
        assert nxt.aliases.num_rows == 1 and nxt.review_queue.num_rows > 0
        yield wh, nxt


def _duplicated(table: pa.Table) -> pa.Table:
    return pa.concat_tables([table, table.slice(0, 1)])


BROKEN = {
    "a key broken while building": lambda r: replace(r, citizens=_duplicated(r.citizens)),
    "the audit fails": lambda r: replace(r, citizens=r.citizens.slice(1)),
    "a key broken after the switch": lambda r: replace(r, aliases=_duplicated(r.aliases)),
}


@pytest.mark.parametrize("breakage", list(BROKEN))
def test_a_release_failing_mid_publish_leaves_everything_as_it_was(published, breakage: str) -> None:
    wh, release = published
    before = content_hash(wh)
    assert before["golden.review_queue"] and before["golden.resolution_release"]
    # a broken key: each engine raises its own integrity error
    with pytest.raises(ReleaseAuditFailed if breakage == "the audit fails" else Exception):
        publish_release(wh, BROKEN[breakage](release))
    assert content_hash(wh) == before
    publish_release(wh, release)  # the same release, whole, publishes
    assert content_hash(wh) != before
    assert wh.scalar("SELECT count(*) FROM golden.citizen_alias") == 1
    assert {r[0] for r in wh.rows("SELECT DISTINCT run_id FROM golden.citizen_link")} == {"r2"}


def test_a_refused_release_leaves_only_its_report(published, model) -> None:
    wh, _ = published
    before = content_hash(wh)
    strict = ReleaseGuard(min_citizens=0, max_merged_share=0.1)
    refused = compute_release(read_inputs(wh), "r2", now=datetime.now(UTC), model_json=model, guard=strict)
    assert refused.refused and refused.citizens.num_rows == 0
    with pytest.raises(ReleaseRefused, match="1 citizens merged"):
        publish_release(wh, refused)
    after = content_hash(wh)
    assert {k: v for k, v in after.items() if k != "golden.resolution_release"} == {
        k: v for k, v in before.items() if k != "golden.resolution_release"}
    assert [(r["run_id"], r["status"]) for r in store.releases(wh)] == [("r2", "refused"), ("r1", "accepted")]


# ------------------------------------------------------------------------------------------ readers
def _synthetic(run_id: str, people: int) -> Release:
    """A release of ``people`` citizens of two records each, every id naming the run."""
    now = datetime.now(UTC)
    keys = [f"silo:{i}" for i in range(2 * people)]
    cids = [f"C-{run_id}-{i // 2}" for i in range(2 * people)]
    links = pa.table({"record_key": keys, "citizen_id": cids, "match_probability": [0.9] * len(keys),
                      "model_version": ["m"] * len(keys), "run_id": [run_id] * len(keys),
                      "match_weight": [None] * len(keys), "explanation": [None] * len(keys),
                      "linked_via": [None] * len(keys)}).cast(arrow_schema(CITIZEN_LINK))
    citizens = pa.Table.from_pylist(
        [{"citizen_id": f"C-{run_id}-{i}", "record_count": 2, "source_systems": "silo", "updated_at": now}
         for i in range(people)], schema=arrow_schema(CITIZEN))
    empty = {"attributes": CITIZEN_ATTRIBUTE, "discrepancies": DISCREPANCY, "households": HOUSEHOLD,
             "members": HOUSEHOLD_MEMBER, "review_queue": REVIEW_QUEUE, "aliases": CITIZEN_ALIAS}
    return Release(run_id=run_id, status="accepted", links=links, citizens=citizens, model_json={},
                   report={"run_id": run_id, "citizens_after": people, "size_histogram": "{}", "status": "accepted",
                           "recorded_at": now, **{k: 0 for k in (
                               "citizens_before", "new_citizens", "merged_citizens", "split_citizens",
                               "unchanged_citizens", "retired_ids", "largest_before", "largest_after",
                               "decisions_applied", "must_links_refused", "review_queued")}},
                   run={"run_id": run_id, "model_version": "m", "records": 2 * people, "pairs_scored": 0,
                        "citizens": people, "threshold": 0.6, "finished_at": now},
                   **{name: arrow_schema(table).empty_table() for name, table in empty.items()})


def test_readers_on_postgres_see_the_old_or_the_new_release_never_a_mix(postgres_url: str) -> None:
    sizes = {"A": 20_000, "B": 15_000}
    releases = {name: _synthetic(name, n) for name, n in sizes.items()}
    with Warehouse(postgres_url) as wh:
        publish_release(wh, releases["A"])
    seen: list[tuple] = []
    done = threading.Event()

    def read() -> None:
        with Warehouse(postgres_url) as reader:
            while not done.is_set():
                # one statement: one snapshot
                seen.append(reader.rows(
                    """SELECT (SELECT count(DISTINCT run_id) FROM golden.citizen_link),
                              (SELECT min(run_id) FROM golden.citizen_link),
                              (SELECT count(*) FROM golden.citizen),
                              (SELECT count(*) FROM golden.citizen_link l WHERE NOT EXISTS
                                  (SELECT 1 FROM golden.citizen c WHERE c.citizen_id = l.citizen_id)),
                              (SELECT max(run_id) FROM golden.resolution_run WHERE run_id IN ('A', 'B')
                                  AND citizens = (SELECT count(*) FROM golden.citizen))""")[0])

    thread = threading.Thread(target=read)
    thread.start()
    try:
        with Warehouse(postgres_url) as wh:
            for name in "BABAB":
                publish_release(wh, releases[name])
    finally:
        done.set()
        thread.join()
    assert len(seen) > 10
    for runs, run, citizens, orphans, run_row in seen:
        assert (runs, orphans) == (1, 0)
        assert citizens == sizes[run] and run_row == run
    assert {s[1] for s in seen} == {"A", "B"}  # the reads did straddle publishes


def _built_tables(wh: Warehouse) -> list[tuple[str, str]]:
    """Tables of a release being built (golden._next_* on DuckDB, golden_next.* on PostgreSQL)."""
    return wh.rows("SELECT table_schema, table_name FROM information_schema.tables "
                   "WHERE table_schema = 'golden_next' OR (table_schema = 'golden' AND table_name LIKE '\\_next\\_%' "
                   "ESCAPE '\\') ORDER BY 1, 2")


def test_a_failure_in_the_switch_leaves_the_previous_release_and_no_built_table(published, monkeypatch) -> None:
    wh, release = published
    before = content_hash(wh)
    seen: list[list[tuple[str, str]]] = []

    def failing_index(w: Warehouse) -> int:  # last step of the switch's transaction
        seen.append(_built_tables(w))
        raise RuntimeError("search index build failed")

    monkeypatch.setattr("warehouse.resolution.build_search_index", failing_index)
    with pytest.raises(RuntimeError, match="search index build failed"):
        publish_release(wh, release)
    # the switch had begun (the built tables were written, then switched in), and it all rolled back
    assert seen and (seen[0] == [] if wh.kind == "duckdb" else seen[0])
    assert content_hash(wh) == before
    assert _built_tables(wh) == []


def test_an_interrupted_publication_leaves_nothing_in_the_next(published) -> None:
    wh, release = published
    # what a publication killed after building its tables left: built tables with a foreign row
    wh.write(_next(wh, CITIZEN), release.citizens.slice(0, 1).set_column(
        0, "citizen_id", pa.array(["C-stale"], pa.string())))
    assert _built_tables(wh)
    publish_release(wh, release)
    assert _built_tables(wh) == []
    assert not wh.scalar("SELECT count(*) FROM golden.citizen WHERE citizen_id = 'C-stale'")
    assert wh.scalar("SELECT count(*) FROM golden.citizen") == release.citizens.num_rows
