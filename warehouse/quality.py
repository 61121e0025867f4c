"""The quality gate: which staged rows may enter the core tables, and why the others may not.

Three kinds of check, each producing per-row :class:`Failure` records (a row position, the field,
a stable reason code, a human reason that never contains the value):

- the Great Expectations suite of the table (``schemas.quality``), run on a pandas dataframe
  through one ephemeral context built once per run; reason code = the expectation type
  (``expect_column_values_to_be_in_set`` ...);
- lineage: a row must belong to the silo its staging model is named after (``source_system_mismatch``)
  and its own key must carry that silo's prefix (``key_prefix_mismatch``) — the core tables are
  rebuilt per silo, so a row claiming another silo would be deleted by the wrong rebuild;
- references across tables, which one dataframe cannot express: an interaction's, membership's or
  organisation role's ``record_key`` must exist in ``core.person_record`` and a role's
  ``organisation_key`` in ``core.organisation`` (``reference_not_found``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from schemas.contract import HOUSEHOLD_MEMBERSHIP, INTERACTION, ORGANISATION, ORGANISATION_ROLE, PERSON_RECORD, Table
from schemas.quality import expectation_column, suites
from warehouse.engine import Warehouse, qualified

log = logging.getLogger(__name__)

ROW = "_row"  # positional index given to GE, so duplicated or null keys still point at one row
CHUNK_ROWS = 250_000  # rows validated at a time by the expectations about each row on its own
# expectations about the whole table (the others are about each row alone)
WHOLE_TABLE = frozenset({"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"})

SOURCE_SYSTEM_MISMATCH = "source_system_mismatch"
KEY_PREFIX_MISMATCH = "key_prefix_mismatch"
REFERENCE_NOT_FOUND = "reference_not_found"

# (column, referenced table, referenced column)
REFERENCES: dict[str, tuple[tuple[str, Table, str], ...]] = {
    HOUSEHOLD_MEMBERSHIP.name: (("record_key", PERSON_RECORD, "record_key"),),
    INTERACTION.name: (("record_key", PERSON_RECORD, "record_key"),),
    ORGANISATION_ROLE.name: (
        ("record_key", PERSON_RECORD, "record_key"),
        ("organisation_key", ORGANISATION, "organisation_key"),
    ),
}

# The column a table's own key lives in, which must start with `<source_system>:`.
OWN_KEY = {
    PERSON_RECORD.name: "record_key",
    HOUSEHOLD_MEMBERSHIP.name: "household_id",
    INTERACTION.name: "interaction_key",
    ORGANISATION.name: "organisation_key",
    ORGANISATION_ROLE.name: "organisation_key",
}


class QualityGateError(RuntimeError):
    """The gate itself could not run (not: some rows failed it)."""


@dataclass(frozen=True)
class Failure:
    """One row failing one check."""

    row: int  # position in the staged table
    field: str | None
    reason_code: str
    reason: str


def system_of_rows(table: Table, data: pa.Table) -> pa.ChunkedArray:
    """The silo each row claims: its ``source_system``, or the prefix of its organisation key."""
    if "source_system" in table.column_names:
        return data.column("source_system")
    keys = data.column(OWN_KEY[table.name])
    return pc.list_element(pc.split_pattern(keys, ":", max_splits=1), 0)


class QualityGate:
    """Great Expectations validation of staged canonical tables. Build once per run, reuse per table."""

    def __init__(self, today: date | None = None):
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )
        from great_expectations.execution_engine import pandas_execution_engine

        # GE fingerprints every pandas batch by hashing all of it (batch metadata we never read):
        # 1.8 s per load at 1M person records, loaded twice per validation. Off.
        pandas_execution_engine.HASH_THRESHOLD = 0

        self.today = today or datetime.now(UTC).date()
        # In-memory, no usage statistics sent anywhere, no progress bars on stderr.
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        )
        self._context = gx.get_context(mode="ephemeral", project_config=config)
        source = self._context.data_sources.add_pandas("staging")
        self._count: dict[str, int] = {}
        # per table: (part, suite, batch definition); "rows": the expectations about each row on its
        # own, run a chunk of rows at a time; "keys": the key's uniqueness, run on the key columns of
        # the whole table at once (a duplicate may sit in any two chunks)
        self._parts: dict[str, list[tuple[str, Any, Any]]] = {}
        for name, suite in suites(self.today).items():
            self._count[name] = len(suite.expectations)
            self._parts[name] = []
            for part in ("rows", "keys"):
                chosen = [e for e in suite.expectations if (e.expectation_type in WHOLE_TABLE) == (part == "keys")]
                if not chosen:
                    continue
                asset = f"{name}__{part}"
                self._parts[name].append((
                    part, self._context.suites.add(gx.ExpectationSuite(name=asset, expectations=chosen)),
                    source.add_dataframe_asset(asset).add_batch_definition_whole_dataframe("all")))

    def expectations(self, table: Table) -> int:
        return self._count[table.name]

    def validate(self, table: Table, data: pa.Table) -> list[Failure]:
        """Failures of the table's GE suite on a whole table: :meth:`validate_rows` and
        :meth:`validate_keys` on every row."""
        if data.num_rows == 0:
            return []
        keys = data.select(list(table.key)).append_column(ROW, pa.array(range(data.num_rows), pa.int64()))
        return self.validate_rows(table, data) + self.validate_keys(table, keys)

    def validate_rows(self, table: Table, data: pa.Table, start: int = 0) -> list[Failure]:
        """Failures of the expectations about each row on its own, one per (row, expectation)
        flagged, ``data``'s rows being at positions ``start``, ``start + 1``… of the staged table.
        They run on :data:`CHUNK_ROWS` rows at a time (a pandas copy of a chunk, not of the table:
        1 GB more at 1M people for the interactions otherwise)."""
        failures: list[Failure] = []
        for part, suite, batch_definition in self._parts[table.name]:
            if part != "rows":
                continue
            for at in range(0, data.num_rows, CHUNK_ROWS):
                # the frame is the callee's alone: dropped as soon as it is validated
                failures.extend(self._failures(table, suite, batch_definition,
                                               _frame(data, table.column_names, at, CHUNK_ROWS, start)))
        return failures

    def validate_keys(self, table: Table, keys: pa.Table) -> list[Failure]:
        """Failures of the key's uniqueness. ``keys``: the key columns and each row's position
        (:data:`ROW`) — of every row, or of every row sharing its key with another (what a
        database's ``count(*) OVER (PARTITION BY key) > 1`` selects: a row's uniqueness depends only
        on the rows with the same key, so the verdict is the same as on the whole table)."""
        failures: list[Failure] = []
        if keys.num_rows == 0:
            return failures
        for part, suite, batch_definition in self._parts[table.name]:
            if part == "keys":
                failures.extend(self._failures(table, suite, batch_definition, keys.to_pandas()))
        return failures

    def _failures(self, table: Table, suite: Any, batch_definition: Any, frame: Any) -> list[Failure]:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        try:
            result = batch.validate(
                suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]})
        finally:
            _forget(batch)
        del frame, batch
        failures: list[Failure] = []
        for r in result.results:
            cfg = r.expectation_config
            if r.exception_info.get("raised_exception"):
                # The message may quote data: name the expectation, not the message.
                raise QualityGateError(
                    f"{table.name}: expectation {cfg.type} on {expectation_column(cfg.kwargs)} could not run"
                )
            if r.success:
                continue
            index = r.result.get("unexpected_index_list") or []
            if len(index) != r.result.get("unexpected_count", len(index)):
                raise QualityGateError(f"{table.name}: expectation {cfg.type} did not list every failing row")
            field = expectation_column(cfg.kwargs)
            reason = (cfg.meta or {}).get("reason", cfg.type)
            failures.extend(Failure(int(i[ROW]), field, cfg.type, reason) for i in index)
        return failures


def _frame(data: pa.Table, columns: list[str], at: int, length: int, start: int) -> Any:
    """Rows ``at`` to ``at + length`` of ``columns`` as a pandas frame, with their positions in the
    staged table (``data`` beginning at ``start``) as :data:`ROW`."""
    chunk = data.slice(at, length).select(columns)
    first = start + at
    return chunk.append_column(ROW, pa.array(range(first, first + chunk.num_rows), pa.int64())).to_pandas()


def _forget(batch: Any) -> None:
    """Drop GE's references to a validated batch's dataframe. The execution engine caches every batch
    it loads (``BatchManager``: the batch and its data), and GE keeps the ephemeral context in a
    module-level project manager, so without this each table's last dataframe outlives the gate and
    the step — 2.1 GB held through the whole resolution at 1M people (docs/scale.md)."""
    manager = batch.data.execution_engine.batch_manager
    manager.batch_data_cache.pop(batch.id, None)
    manager.reset_batch_cache()


def lineage_failures(table: Table, data: pa.Table, model_systems: Sequence[str]) -> list[Failure]:
    """Rows whose silo or own-key prefix disagrees with the staging model that produced them."""
    if data.num_rows == 0:
        return []
    expected = pa.array(model_systems, pa.string())
    claimed = system_of_rows(table, data)
    failures: list[Failure] = []
    field = "source_system" if "source_system" in table.column_names else OWN_KEY[table.name]
    bad = pc.fill_null(pc.not_equal(claimed, expected), False)
    failures.extend(
        Failure(i, field, SOURCE_SYSTEM_MISMATCH, f"{field} names another silo than the staging model")
        for i in pc.indices_nonzero(bad).to_pylist()
    )
    key = OWN_KEY[table.name]
    keys = data.column(key).combine_chunks()
    wrong_prefix = pa.array([False] * data.num_rows)
    for system in set(model_systems):
        of_system = pc.equal(expected, system)
        prefixed = pc.fill_null(pc.starts_with(keys, f"{system}:"), True)  # null keys: the not-null rule
        wrong_prefix = pc.or_(wrong_prefix, pc.and_(of_system, pc.invert(prefixed)))
    failures.extend(
        Failure(i, key, KEY_PREFIX_MISMATCH, f"{key} does not start with the silo of its staging model")
        for i in pc.indices_nonzero(wrong_prefix).to_pylist()
    )
    return failures


def reference_failures(wh: Warehouse, table: Table, staged: str) -> list[Failure]:
    """Rows pointing at a person or organisation the core tables do not hold. ``staged``: a
    relation of the staged rows with their positions as :data:`ROW`; the look-up runs in the
    warehouse, so neither side is held in Python (only the failing positions come back)."""
    failures: list[Failure] = []
    for column, target, target_column in REFERENCES.get(table.name, ()):
        missing = wh.rows(
            f'SELECT s."{ROW}" FROM {staged} s WHERE s."{column}" IS NOT NULL AND NOT EXISTS '
            f'(SELECT 1 FROM {qualified(target)} t '
            f'WHERE t."{target_column}" = CAST(s."{column}" AS VARCHAR)) ORDER BY 1')
        failures.extend(
            Failure(r[0], column, REFERENCE_NOT_FOUND, f"{column} is not in {target.schema}.{target.name}")
            for r in missing
        )
    return failures
