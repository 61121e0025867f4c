"""États et restitutions: the figures managers and élus ask for, read from the marts' aggregates only.

Workload (requests per service, channel and month), processing delays (median and 90th
percentile), pending requests at risk of *silence vaut acceptation* or past their deadline,
unpaid invoices, and how much the hub de-silos (citizens known to several silos, duplicates found
across silos, disagreements settled, records still to correct). Every figure comes from a
``marts.agg_*`` table, so the report carries no identity and inherits the aggregates' small-cell
rule: a suppressed cell is a :class:`Cell` with ``value=None`` and ``suppressed=True``, never a
number; no figure here is computed by subtracting one published cell from another unless both
are published.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.marts import ALL, MIN_CELL
from warehouse.engine import Warehouse


@dataclass(frozen=True)
class Cell:
    """One published figure, or a suppressed one (``value`` None)."""

    value: Any
    suppressed: bool = False

    @classmethod
    def of(cls, row: dict[str, Any] | None, column: str) -> Cell:
        if row is None:
            return cls(0)  # no row: nobody in that group
        return cls(row[column], bool(row["suppressed"]))


@dataclass
class Series:
    """A labelled series (one chart and its table): label -> cells by measure."""

    title: str
    label: str  # what the labels are (service, canal, mois)
    measures: dict[str, str]  # column -> French heading
    rows: list[tuple[str, dict[str, Cell]]] = field(default_factory=list)


@dataclass
class Etats:
    built_at: datetime | None
    run_id: str | None
    min_cell: int
    totals: dict[str, Cell]
    requests_by_service: Series
    requests_by_channel: Series
    requests_by_month: Series
    delays_by_service: Series
    deadlines_by_service: Series
    unpaid_by_service: Series
    desilo_by_silos: Series
    overlap: list[tuple[str, str, Cell]]


def _rows(wh: Warehouse, table: str) -> list[dict[str, Any]]:
    return wh.dicts(f"SELECT * FROM marts.{table}")


def _pick(rows: list[dict[str, Any]], **where: str) -> dict[str, Any] | None:
    return next((r for r in rows if all(r[k] == v for k, v in where.items())), None)


def _series(title: str, label: str, measures: dict[str, str], rows: list[dict[str, Any]], key: str,
            **where: str) -> Series:
    """Rows of one margin of a cube: ``key`` varies (not '*'), the ``where`` dimensions fixed."""
    picked = [r for r in rows if r[key] != ALL and all(r[k] == v for k, v in where.items())]
    sort = next(iter(measures))
    if key in ("month", "silo_count"):
        picked.sort(key=lambda r: r[key])
    else:  # biggest first; suppressed cells last, by label
        picked.sort(key=lambda r: (r["suppressed"], -(r[sort] or 0), r[key]))
    return Series(title, label, measures, [(r[key], {m: Cell.of(r, m) for m in measures}) for r in picked])


def compute_etats(wh: Warehouse) -> Etats:
    """The report's figures from ``marts.agg_*`` (built by :func:`warehouse.marts.build_marts`)."""
    if not wh.table_exists("marts", "mart_build"):
        raise LookupError("no marts in this warehouse yet: run the pipeline (hub run) first")
    build = wh.dicts("SELECT run_id, built_at FROM marts.mart_build ORDER BY table_name LIMIT 1")
    requests = _rows(wh, "agg_requests")
    delays = _rows(wh, "agg_processing_delay")
    deadlines = _rows(wh, "agg_deadlines")
    unpaid = _rows(wh, "agg_unpaid")
    desilo = _rows(wh, "agg_desilo")
    overlap = _rows(wh, "agg_silo_overlap")

    everything = _pick(requests, service=ALL, channel=ALL, month=ALL)
    all_desilo = _pick(desilo, silo_count=ALL)
    single = _pick(desilo, silo_count="1")
    totals = {
        "requests": Cell.of(everything, "requests"),
        "requesters": Cell.of(everything, "people"),
        "closed": Cell.of(_pick(delays, service=ALL, month=ALL), "closed_requests"),
        "median_days": Cell.of(_pick(delays, service=ALL, month=ALL), "median_days"),
        "p90_days": Cell.of(_pick(delays, service=ALL, month=ALL), "p90_days"),
        "pending": Cell.of(_pick(deadlines, service=ALL, silence=ALL, deadline_state=ALL), "requests"),
        "overdue": Cell.of(_pick(deadlines, service=ALL, silence=ALL, deadline_state="depasse"), "requests"),
        "at_risk_acceptation": Cell.of(_pick(deadlines, service=ALL, silence="acceptation", deadline_state="proche"),
                                       "requests"),
        "overdue_acceptation": Cell.of(_pick(deadlines, service=ALL, silence="acceptation",
                                             deadline_state="depasse"), "requests"),
        "citizens": Cell.of(all_desilo, "people"),
        "records": Cell.of(all_desilo, "records"),
        "conflicts_settled": Cell.of(all_desilo, "conflicting_attributes"),
        "open_discrepancies": Cell.of(all_desilo, "open_discrepancies"),
    }
    # derived only from published figures
    if all_desilo and single and not all_desilo["suppressed"] and not single["suppressed"]:
        totals["multi_silo"] = Cell(all_desilo["people"] - single["people"])
        totals["duplicates"] = Cell(all_desilo["records"] - all_desilo["people"])
    else:
        totals["multi_silo"] = Cell(None, True)
        totals["duplicates"] = Cell(None, True)
    unpaid_eur = [r for r in unpaid if r["currency"] == "EUR"]
    totals["unpaid_invoices"] = Cell.of(_pick(unpaid_eur, service=ALL, due_state=ALL), "invoices")
    totals["unpaid_amount"] = Cell.of(_pick(unpaid_eur, service=ALL, due_state=ALL), "amount")
    totals["overdue_amount"] = Cell.of(_pick(unpaid_eur, service=ALL, due_state="echue"), "amount")

    deadline_rows = []
    for r in deadlines:
        if r["service"] == ALL or r["silence"] != ALL or r["deadline_state"] != ALL:
            continue
        cells = {"requests": Cell.of(r, "requests")}
        for state in ("depasse", "proche"):
            cells[state] = Cell.of(_pick(deadlines, service=r["service"], silence=ALL, deadline_state=state),
                                   "requests")
        deadline_rows.append((r["service"], cells))
    deadline_rows.sort(key=lambda x: (x[1]["requests"].suppressed, -(x[1]["requests"].value or 0), x[0]))

    return Etats(
        built_at=build[0]["built_at"] if build else None,
        run_id=build[0]["run_id"] if build else None,
        min_cell=MIN_CELL,
        totals=totals,
        requests_by_service=_series("Demandes par service", "Service", {"requests": "Demandes", "people": "Usagers"},
                                    requests, "service", channel=ALL, month=ALL),
        requests_by_channel=_series("Demandes par canal", "Canal", {"requests": "Demandes", "people": "Usagers"},
                                    requests, "channel", service=ALL, month=ALL),
        requests_by_month=_series("Demandes par mois", "Mois", {"requests": "Demandes", "people": "Usagers"},
                                  requests, "month", service=ALL, channel=ALL),
        delays_by_service=_series("Délais de traitement par service", "Service",
                                  {"closed_requests": "Demandes closes", "median_days": "Délai médian (jours)",
                                   "p90_days": "9 demandes sur 10 en moins de (jours)"}, delays, "service",
                                  month=ALL),
        deadlines_by_service=Series("Demandes en attente et échéances par service", "Service",
                                    {"requests": "En attente", "proche": "Échéance sous 15 jours",
                                     "depasse": "Échéance dépassée"}, deadline_rows),
        unpaid_by_service=_series("Impayés par service", "Service",
                                  {"amount": "Montant impayé", "invoices": "Factures", "people": "Usagers"},
                                  unpaid_eur, "service", due_state=ALL),
        desilo_by_silos=_series("Usagers selon le nombre de silos qui les connaissent", "Silos",
                                {"people": "Usagers", "records": "Fiches sources"}, desilo, "silo_count"),
        overlap=[(r["silo_a"], r["silo_b"], Cell.of(r, "people")) for r in
                 sorted(overlap, key=lambda r: (r["silo_a"], r["silo_b"]))],
    )
