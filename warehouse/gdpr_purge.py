"""The retention purge: each processing's retention, from the register, applied to what the hub holds.

For every data category of every processing (``schemas/register.toml``: duration, start event,
whether recent activity extends it), what is past retention is deleted:

- **a silo's people** (raw tables mapped by a category starting at ``fin_relation``,
  ``fin_inscription`` or ``fin_mandat``): a person record the silo deleted (``deleted_at``), whose
  end — the deletion, or the last interaction when activity extends the period — is older than
  the longest retention of the categories mapping its raw table: its raw row (located through the
  staging model, as erasure does) and its canonical rows;
- **a silo's interactions** (raw tables mapped by a category starting at ``emission``,
  ``fin_exercice``, ``cloture``, ``collecte``): the raw row and the canonical interaction once
  ``opened_at`` (emission, collecte), the end of that fiscal year (fin_exercice) or ``closed_at``
  (cloture; ``opened_at`` while open) is older than the duration;
- **quarantine payloads** (``ops.quarantine``) and the **suppression list** (``gdpr.suppression``): their
  category's duration after ``quarantined_at`` / ``created_at``;
- **the access log**: its own retention (processing ``journal-acces``, default one year), purged
  as a prefix of its hash chain and re-anchored (:func:`warehouse.access_log.purge_before`);
- dlt's load packages (rows as loaded) are removed at every purge.

Golden tables follow at the next resolution run (they are rebuilt from the canonical layer).
The report counts rows per table and category, never values. ``dry_run`` counts without deleting.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.contract import (
    HOUSEHOLD_MEMBERSHIP,
    INTERACTION,
    ORGANISATION_ROLE,
    PERSON_RECORD,
    QUARANTINE,
    SUPPRESSION,
)
from warehouse.engine import Warehouse, qualified

log = logging.getLogger(__name__)

PERSON_STARTS = ("fin_relation", "fin_inscription", "fin_mandat")
PIECE_STARTS = ("emission", "fin_exercice", "cloture", "collecte")


@dataclass
class PurgeReport:
    dry_run: bool
    ran_at: str
    purged: list[dict[str, Any]] = field(default_factory=list)  # {table, processing, category, rows, cut}
    files_removed: int = 0

    def add(self, table: str, processing: str, category: str, rows: int, rule: str) -> None:
        if rows:
            self.purged.append({"table": table, "processing": processing, "category": category, "rows": rows,
                                "rule": rule})

    @property
    def total(self) -> int:
        return sum(p["rows"] for p in self.purged)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"total": self.total}


def shift(moment: datetime, amount: int, unit: str, *, back: bool = True) -> datetime:
    """``moment`` minus (or plus) a register duration (days, months or years), calendar-aware."""
    sign = -1 if back else 1
    if unit == "days":
        return moment + sign * timedelta(days=amount)
    months = amount * (12 if unit == "years" else 1)
    total = moment.year * 12 + (moment.month - 1) + sign * months
    year, month = divmod(total, 12)
    month += 1
    last_day = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def _aware(v: Any) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=UTC)
    return None


def _tables_by_category(register: Any) -> list[tuple[Any, Any, str]]:
    return [(p, d, t) for p in register.processings for d in p.data for t in d.columns]


def purge(wh_url: str, *, now: datetime | None = None, dry_run: bool = False, register: Any = None,
          models: Any = None, pipelines_dir: Path | None = None, reader: str = "hub-purge") -> PurgeReport:
    """Apply every retention of the register (see the module's docstring); returns the report."""
    from schemas.register import load_register
    from warehouse import access_log
    from warehouse.gdpr_erase import _delete_raw, _Eraser, _flatten, clean_dlt_files, locate_raw, raw_locators

    now = now or datetime.now(UTC)
    register = register or load_register()
    report = PurgeReport(dry_run, now.isoformat())
    with Warehouse(wh_url) as wh:
        flat = _flatten(models, wh)
        person_locs, _ = raw_locators(wh, flat, "record_key", require="given_names")
        inter_locs, _ = raw_locators(wh, flat, "interaction_key")
        er = _Eraser(wh, _dummy_report())
        mapping = _tables_by_category(register)
        pending: list[tuple[dict[str, list[Any]], list[tuple[Any, str, list[str]]]]] = []

        # ---- a silo's people: the longest retention among the categories mapping the raw table
        person_rule: dict[str, tuple[Any, Any]] = {}
        for p, d, t in mapping:
            if t.startswith("raw_") and d.retention.start in PERSON_STARTS:
                best = person_rule.get(t)
                if best is None or shift(now, d.retention.amount, d.retention.unit) < shift(
                        now, best[1].retention.amount, best[1].retention.unit):
                    person_rule[t] = (p, d)
        has_core = wh.table_exists(PERSON_RECORD.schema, PERSON_RECORD.name)
        for loc in person_locs:
            if loc.table not in person_rule or not has_core:
                continue
            p, d = person_rule[loc.table]
            r = d.retention
            cut = shift(now, r.amount, r.unit)
            system = loc.table.split(".", 1)[0].removeprefix("raw_")
            deleted = wh.rows(f"SELECT record_key, deleted_at FROM {qualified(PERSON_RECORD)} "
                              "WHERE source_system = :s AND deleted_at IS NOT NULL", {"s": system})
            last = {k: _aware(v) for k, v in deleted}
            if r.extended_by_activity and last and wh.table_exists(INTERACTION.schema, INTERACTION.name):
                for k, opened, closed in wh.rows(
                        f"SELECT record_key, max(opened_at), max(closed_at) FROM {qualified(INTERACTION)} "
                        "WHERE source_system = :s GROUP BY record_key", {"s": system}):
                    if k in last:
                        last[k] = max(x for x in (last[k], _aware(opened), _aware(closed)) if x is not None)
            expired = sorted(k for k, end in last.items() if end is not None and end < cut)
            if not expired:
                continue
            located = locate_raw(wh, [loc], expired)
            n = len(located.get(loc.table, []))
            report.add(loc.table, p.id, d.category, n, f"{r.duration} après {r.start}")
            report.add("core.person_record", p.id, d.category, len(expired), f"{r.duration} après {r.start}")
            pending.append((located, [(t, "record_key", expired)
                                      for t in (PERSON_RECORD, HOUSEHOLD_MEMBERSHIP, ORGANISATION_ROLE)]))

        # ---- a silo's pieces (invoices, requests): by their own dates
        piece_rule = {t: (p, d) for p, d, t in mapping if t.startswith("raw_") and d.retention.start in PIECE_STARTS}
        has_inter = wh.table_exists(INTERACTION.schema, INTERACTION.name)
        for loc in inter_locs:
            if loc.table not in piece_rule or not has_inter:
                continue
            p, d = piece_rule[loc.table]
            r = d.retention
            cut = shift(now, r.amount, r.unit)
            system = loc.table.split(".", 1)[0].removeprefix("raw_")
            expired = []
            for key, opened, closed in wh.rows(
                    f"SELECT interaction_key, opened_at, closed_at FROM {qualified(INTERACTION)} "
                    "WHERE source_system = :s", {"s": system}):
                opened, closed = _aware(opened), _aware(closed)
                start = {"emission": opened, "collecte": opened, "cloture": closed or opened,
                         "fin_exercice": datetime(opened.year, 12, 31, 23, 59, 59, tzinfo=UTC) if opened else None
                         }[r.start]
                if start is not None and start < cut:
                    expired.append(key)
            if not expired:
                continue
            located = locate_raw(wh, [loc], expired)
            n = len(located.get(loc.table, []))
            if not n:
                continue
            report.add(loc.table, p.id, d.category, n, f"{r.duration} après {r.start}")
            pending.append((located, [(INTERACTION, "interaction_key", expired)]))

        # everything located first: a model joining another raw table (payments through their invoice)
        # still finds its rows; then deleted
        if not dry_run:
            with wh.transaction():
                for located, core in pending:
                    _delete_raw(er, wh, located, {}, None)
                    for t, column, keys in core:
                        er.delete_in(t.schema, t.name, column, keys)

        # ---- quarantine payloads, the suppression list: their category's duration after they were written
        for table, column in ((QUARANTINE, "quarantined_at"), (SUPPRESSION, "created_at")):
            name = f"{table.schema}.{table.name}"
            rules = [(p, d) for p, d, t in mapping if t == name]
            if not rules or not wh.table_exists(table.schema, table.name):
                continue
            p, d = max(rules, key=lambda pd: now - shift(now, pd[1].retention.amount, pd[1].retention.unit))
            r = d.retention
            cut = shift(now, r.amount, r.unit)
            n = int(wh.scalar(f"SELECT count(*) FROM {qualified(table)} WHERE {column} < :cut", {"cut": cut}) or 0)
            report.add(name, p.id, d.category, n, f"{r.duration} après {r.start}")
            if n and not dry_run:
                wh.execute(f"DELETE FROM {qualified(table)} WHERE {column} < :cut", {"cut": cut})

        # ---- the access log: its own retention, a prefix of the chain, re-anchored
        amount, unit = access_log.retention_interval(register)
        n = access_log.purge_before(wh, shift(now, amount, unit), dry_run=dry_run)
        report.add("ops.access_log", access_log.LOG_PROCESSING, "connexion", n, f"{amount} {unit}")
        if not dry_run and report.purged:
            summary = tuple(f"{p['table']}:{p['rows']}" for p in report.purged)
            access_log.append(wh, [access_log.Entry(reader=reader, citizen_id="*", purpose=_purpose(register),
                                                    operation="delete", channel="purge", fields=summary)])
    if not dry_run:
        report.files_removed = clean_dlt_files(pipelines_dir)
    log.info("retention purge%s: %d row(s) in %d table(s)", " (dry run)" if dry_run else "", report.total,
             len({p["table"] for p in report.purged}))
    return report


def _purpose(register: Any) -> str:
    try:
        return register.processing("droits-rgpd").purpose
    except KeyError:
        return "retention purge"


def _dummy_report():
    from warehouse.gdpr_erase import ErasureReport

    return ErasureReport("purge", "", None, "retention", "hub", datetime.now(UTC).isoformat())


__all__ = ["PurgeReport", "purge", "shift"]
