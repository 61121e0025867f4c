"""The identity step's storage: read what a resolution needs, publish the release it returns.

Two functions, around the pure step :func:`matching.release.compute_release`:

* :func:`read_inputs` reads the canonical records, the previous publication (links, foyers, review
  queue, last run), the decisions and corrections in force and the retired ids, in one go;
* :func:`publish_release` publishes a release (write-audit-publish): the new golden tables are
  written beside the live ones, with the contract's keys (:func:`_next`: on DuckDB
  ``golden._next_<table>``, on PostgreSQL schema ``golden_next``), each in a transaction of its own
  so that DuckDB writes them to its file as it goes (spilling, not holding them in memory); audited
  (:func:`_audit`: every link points at a citizen of the release, every citizen and foyer member at
  what the release holds, the report counts what was written); then switched into the live tables
  in ONE transaction, with the aliases, the run row, the release report and the search index.
  Readers see the previous release until that commit, then the new one; a failure anywhere leaves
  the previous publication, and the built tables are dropped whatever happens (and at the start,
  if an interrupted publication left any).

A release the guard refused (:class:`matching.release.Release`, ``status == "refused"``) leaves no
trace but its report: :func:`publish_release` stores the report row alone and raises
:class:`ReleaseRefused`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pyarrow as pa

from matching.release import Release, ResolutionInputs
from schemas.contract import (
    CITIZEN,
    CITIZEN_ALIAS,
    CITIZEN_LINK,
    HOUSEHOLD,
    HOUSEHOLD_MEMBER,
    RESOLUTION_RELEASE,
    RESOLUTION_RUN,
    REVIEW_QUEUE,
    SQL_TYPES,
    Table,
    arrow_schema,
)
from warehouse import decisions as store
from warehouse.engine import Warehouse, bind_list, qualified
from warehouse.golden import core_memberships, core_person_records, rectifications
from warehouse.search import build_index as build_search_index

log = logging.getLogger(__name__)

NEXT_SCHEMA = "golden_next"  # PostgreSQL: where a release is built and audited before its switch
NEXT_PREFIX = "_next_"  # DuckDB: golden._next_<table> is built and audited, then renamed into place
# Columns a warehouse created before explanations existed gets added (contract: CITIZEN_LINK).
_LINK_COLUMNS_ADDED = (("match_weight", "double"), ("explanation", "json"), ("linked_via", "text"))
_LINK_DETAILS = ("match_probability", "match_weight", "explanation", "linked_via")


class ReleaseRefused(RuntimeError):
    """The release guard refused to publish the run; the previous publication is untouched."""

    def __init__(self, run_id: str, verdict: str | None):
        self.run_id, self.verdict = run_id, verdict
        super().__init__(f"run {run_id}: release refused, the previous publication stays in place: {verdict}")


class ReleaseAuditFailed(RuntimeError):
    """A release failed the audit before its switch: nothing of it was published."""


def read_inputs(wh: Warehouse, *, incremental: bool = False) -> ResolutionInputs:
    """What :func:`matching.release.compute_release` is handed, read from the warehouse.

    ``incremental``: the published links are read with their match columns too (kept as they are
    for the citizens an incremental run does not touch); a batch run needs their ids only.
    """
    previous = None
    if wh.table_exists(CITIZEN_LINK.schema, CITIZEN_LINK.name):
        have = set(wh.columns_of(CITIZEN_LINK.schema, CITIZEN_LINK.name))
        cols = ["record_key", "citizen_id", "run_id"] + (
            [c for c in _LINK_DETAILS if c in have] if incremental else [])
        sql = ", ".join(f'CAST("{c}" AS TEXT) AS "{c}"' if c == "explanation" else f'"{c}"' for c in cols)
        data = wh.arrow(f"SELECT {sql} FROM {qualified(CITIZEN_LINK)} ORDER BY record_key")
        if data.num_rows:
            previous = data.cast(pa.schema([arrow_schema(CITIZEN_LINK).field(c) for c in cols]))
    households = None
    if wh.table_exists(HOUSEHOLD_MEMBER.schema, HOUSEHOLD_MEMBER.name):
        households = wh.arrow(f"SELECT household_id, citizen_id FROM {qualified(HOUSEHOLD_MEMBER)} "
                              "ORDER BY household_id, citizen_id")
    return ResolutionInputs(
        records=core_person_records(wh), memberships=core_memberships(wh), decisions=tuple(store.decisions(wh)),
        previous_links=previous, previous_run=_last_run(wh), previous_households=households,
        review_queue=tuple(store.review_queue(wh)), retired=frozenset(store.retired_ids(wh)),
        rectifications=rectifications(wh), pending_confirmation=store.pending_confirmation(wh),
    )


def publish_release(wh: Warehouse, release: Release) -> None:
    """Publish ``release`` in one transaction (write, audit, switch), or store the report of a
    refused one and raise :class:`ReleaseRefused`.

    Replaced as a whole: links, citizens, their provenance, the discrepancy worklists, foyers and
    the review queue. Appended: the aliases (an id retired again replaces its row), the run row
    and the release report (a run published twice keeps one of each). Raises
    :class:`ReleaseAuditFailed` (naming the check) when the release does not hold together; any
    failure leaves the warehouse as it was.
    """
    report = pa.Table.from_pylist([{c: release.report.get(c) for c in RESOLUTION_RELEASE.column_names}],
                                  schema=arrow_schema(RESOLUTION_RELEASE))
    by_run = ("run_id = :r", {"r": release.run_id})
    if release.refused:
        wh.write(RESOLUTION_RELEASE, report, delete_where=by_run)
        raise ReleaseRefused(release.run_id, release.report.get("guard_message"))
    run = pa.Table.from_pylist([{c: release.run.get(c) for c in RESOLUTION_RUN.column_names}],
                               schema=arrow_schema(RESOLUTION_RUN))
    tables = release.tables()
    aliases = tables.pop(CITIZEN_ALIAS)
    _drop_next(wh, tables)  # what an interrupted publication may have left
    try:
        # Built outside the switch's transaction: DuckDB holds what a transaction appends (and its
        # keys' index entries) in memory until the commit, past its memory limit; written in a
        # transaction each, the tables go to the file as they are written.
        for table, data in tables.items():
            wh.write(_next(wh, table), data)
        _audit(wh, release)
        with wh.transaction():
            _add_link_columns(wh)
            for table in tables:
                _switch(wh, table)
            _retire(wh, aliases)
            wh.write(RESOLUTION_RUN, run, delete_where=by_run)
            wh.write(RESOLUTION_RELEASE, report, delete_where=by_run)
            build_search_index(wh)  # the desk's search index of this release, in the same transaction
    finally:
        _drop_next(wh, tables)
    log.info("published resolution run %s: %d links, %d citizens, %d foyers, %d discrepancies, %d queued, "
             "%d ids retired", release.run_id, release.links.num_rows, release.citizens.num_rows,
             release.households.num_rows, release.discrepancies.num_rows, release.review_queue.num_rows,
             aliases.num_rows)


def _next(wh: Warehouse, table: Table) -> Table:
    """Where a release's table is built and audited before the switch (same columns, same key):
    on DuckDB beside the live table, ``golden._next_<table>``, which the switch renames into place;
    on PostgreSQL ``golden_next.<table>``, which the switch copies into the live table (whose
    grants, row security and indexes stay) — a schema the readers' roles are granted nothing on."""
    if wh.kind == "duckdb":
        return replace(table, name=f"{NEXT_PREFIX}{table.name}")
    return replace(table, schema=NEXT_SCHEMA)


def _switch(wh: Warehouse, table: Table) -> None:
    """Inside the publishing transaction: the built table becomes the live one."""
    built = qualified(_next(wh, table))
    if wh.kind == "duckdb":
        # A rename: no row is copied inside the transaction. (A DELETE and an INSERT … SELECT of
        # the release held both tables' key indexes in memory until the commit: past DuckDB's
        # limit at 3.6M people, where it cannot spill them.)
        wh.execute(f"DROP TABLE IF EXISTS {qualified(table)}")
        wh.execute(f'ALTER TABLE {built} RENAME TO "{table.name}"')
        return
    cols = ", ".join(f'"{c}"' for c in table.column_names)
    wh.ensure_table(table)
    wh.execute(f"DELETE FROM {qualified(table)}")
    wh.execute(f"INSERT INTO {qualified(table)} ({cols}) SELECT {cols} FROM {built}")


def _drop_next(wh: Warehouse, tables: dict[Table, pa.Table]) -> None:
    """Drop the built tables (each in a transaction of its own)."""
    for table in tables:
        wh.execute(f"DROP TABLE IF EXISTS {qualified(_next(wh, table))}")
    if wh.kind != "duckdb":
        wh.execute(f'DROP SCHEMA IF EXISTS "{NEXT_SCHEMA}"')


# (what is checked, SQL counting the rows that break it) on the built tables
def _audits(wh: Warehouse) -> tuple[tuple[str, str], ...]:
    link, citizen, member, household, queue = (qualified(_next(wh, t)) for t in (
        CITIZEN_LINK, CITIZEN, HOUSEHOLD_MEMBER, HOUSEHOLD, REVIEW_QUEUE))
    return (
        ("links pointing at no citizen of the release",
         f"SELECT count(*) FROM {link} l WHERE l.citizen_id NOT IN (SELECT citizen_id FROM {citizen})"),
        ("citizens without any link",
         f"SELECT count(*) FROM {citizen} c WHERE c.citizen_id NOT IN (SELECT citizen_id FROM {link})"),
        ("foyer members who are no citizen of the release",
         f"SELECT count(*) FROM {member} m WHERE m.citizen_id NOT IN (SELECT citizen_id FROM {citizen}) "
         f"OR m.household_id NOT IN (SELECT household_id FROM {household})"),
        ("review-queue pairs naming a record the release does not link",
         f"SELECT count(*) FROM {queue} q WHERE q.record_key_l NOT IN (SELECT record_key FROM {link}) "
         f"OR q.record_key_r NOT IN (SELECT record_key FROM {link})"),
    )


def _audit(wh: Warehouse, release: Release) -> None:
    """The staged release holds together, and is what its report says (keys are the tables' own)."""
    broken = [f"{n:,} {what}" for what, sql in _audits(wh) if (n := int(wh.scalar(sql)))]
    citizens = int(wh.scalar(f"SELECT count(*) FROM {qualified(_next(wh, CITIZEN))}"))
    for name, expected in (("the release report", release.report.get("citizens_after")),
                           ("the run row", release.run.get("citizens"))):
        if expected != citizens:
            broken.append(f"{name} counts {expected} citizens, {citizens:,} were written")
    if broken:
        raise ReleaseAuditFailed(f"run {release.run_id}: release not published, it failed its audit: "
                                 + "; ".join(broken))


def _retire(wh: Warehouse, aliases: pa.Table) -> None:
    """Append retired ids; an id retired again (it came back, then left) replaces its row."""
    wh.ensure_table(CITIZEN_ALIAS)
    ids = aliases["old_id"].to_pylist()
    for i in range(0, len(ids), 500):
        binds, params = bind_list("k", ids[i:i + 500])
        wh.execute(f"DELETE FROM {qualified(CITIZEN_ALIAS)} WHERE old_id IN ({binds})", params)
    wh.write(CITIZEN_ALIAS, aliases)


def _last_run(wh: Warehouse) -> dict[str, Any] | None:
    """The last published resolution run (run_id, model_version, finished_at), None before any."""
    if not wh.table_exists(RESOLUTION_RUN.schema, RESOLUTION_RUN.name):
        return None
    rows = wh.dicts(f"SELECT run_id, model_version, finished_at FROM {qualified(RESOLUTION_RUN)} "
                    "ORDER BY finished_at DESC, run_id DESC LIMIT 1")
    return rows[0] if rows else None


def _add_link_columns(wh: Warehouse) -> None:
    """Add the explanation columns to a ``golden.citizen_link`` created before they existed (on
    PostgreSQL: on DuckDB the switch replaces the table by one with the contract's columns)."""
    if wh.kind == "duckdb" or not wh.table_exists(CITIZEN_LINK.schema, CITIZEN_LINK.name):
        return
    have = set(wh.columns_of(CITIZEN_LINK.schema, CITIZEN_LINK.name))
    col = 0 if wh.kind == "duckdb" else 1
    for name, logical in _LINK_COLUMNS_ADDED:
        if name not in have:
            wh.execute(f'ALTER TABLE {qualified(CITIZEN_LINK)} ADD COLUMN "{name}" {SQL_TYPES[logical][col]}')
