"""What the CLI prints: run reports and the citizen view, for a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from hub.pipeline import RunReport
from hub.settings import Settings


def print_run(console: Console, settings: Settings, report: RunReport) -> None:
    """Rows per source (read = loaded + quarantined), quarantine reasons, canonical and golden counts."""
    from warehouse.engine import Warehouse, redact
    from warehouse.ops import quarantine_summary, reconciliation

    with Warehouse(settings.warehouse_url) as wh:
        recon = reconciliation(wh, report.run_id)
        reasons = quarantine_summary(wh, report.run_id)
        layer = {
            t: wh.scalar(f"SELECT count(*) FROM core.{t}")
            for t in ("person_record", "household_membership", "interaction", "organisation_role")
        }
        cross = wh.scalar("SELECT count(*) FROM golden.citizen WHERE source_systems LIKE '%,%'")

    console.print(f"\n[bold]Run {report.run_id}[/bold] → {redact(settings.warehouse_url)}")
    t = Table("source", "entity", "read", "loaded", "quarantined", "adds up", title="Sources", box=None)
    for r in recon:
        t.add_row(r["source_system"], r["entity"], f"{r['rows_read']:,}", f"{r['rows_loaded']:,}",
                  f"{r['rows_quarantined']:,}", "yes" if r["ok"] else "[red]NO[/red]")
    console.print(t)
    for f in report.failed:
        console.print(f"[red]source failed[/red] {f['error']}")
    if reasons:
        q = Table("source", "entity", "stage", "reason", "rows", title="Quarantined rows", box=None)
        for r in reasons:
            q.add_row(r["source_system"], r["entity"], r["stage"], r["reason_code"], f"{r['count']:,}")
        console.print(q)
    else:
        console.print("Quarantined rows: none")
    c = report.canonical
    console.print(
        f"Canonical layer: {layer['person_record']:,} person records, {layer['interaction']:,} interactions, "
        f"{layer['household_membership']:,} household memberships, {layer['organisation_role']:,} "
        f"organisation roles ({c.get('quarantined', 0):,} rows quarantined by the quality gate)"
    )
    r = report.resolution
    console.print(
        f"Resolution: {r['records']:,} records → [bold]{r['citizens']:,} citizens[/bold] "
        f"({cross:,} known to more than one silo); {r['pairs_scored']:,} pairs scored; "
        f"model {r['model_version']}"
    )
    steps = ", ".join(f"{s['source']} {s['seconds']} s" for s in report.ingested)
    console.print(
        f"Pipeline time: {report.seconds} s (ingest: {steps}; canonical {c.get('seconds')} s; "
        f"resolution {r.get('seconds')} s)"
    )


def print_demo(console: Console, result) -> None:
    """The run report, plus the sandbox's size and the accuracy against its ground truth."""
    from warehouse.engine import Warehouse

    counts = ", ".join(f"{k} {v:,}" for k, v in result.sandbox_counts.items())
    console.print(f"\nSandbox: {counts} (generated in {result.generate_seconds:.1f} s)")
    print_run(console, result.settings, result.report)
    a = result.accuracy
    console.print(
        f"Accuracy against the sandbox's ground truth: pairwise precision [bold]{a['precision']:.4f}[/bold], "
        f"recall [bold]{a['recall']:.4f}[/bold], F1 {a['f1']:.4f} "
        f"(true pairs found {a['tp']:,}, wrong pairs {a['fp']:,}, missed pairs {a['fn']:,})"
    )
    with Warehouse(result.settings.warehouse_url) as wh:
        example = wh.scalar(
            "SELECT l.citizen_id FROM golden.citizen_link l JOIN core.person_record p USING (record_key) "
            "WHERE p.source_system IN ('finance', 'family', 'associations') "
            "GROUP BY l.citizen_id HAVING count(DISTINCT p.source_system) = 3 "
            "AND sum(CASE WHEN p.role = 'parent' THEN 1 ELSE 0 END) > 0 ORDER BY l.citizen_id LIMIT 1"
        )
    if example:
        console.print(f"\nA parent known to finance, the family portal and an association: "
                      f"[bold]hub citizen show {example}[/bold]")


def fr_date(value: Any) -> str:
    """ISO date or timestamp → dd/mm/yyyy (what French agents read); empty for null."""
    if not value:
        return ""
    s = str(value)[:10]
    return f"{s[8:10]}/{s[5:7]}/{s[0:4]}" if len(s) == 10 and s[4] == "-" else s


def print_citizen(console: Console, view: dict[str, Any]) -> None:
    """The 360° view, readable in a terminal."""
    ident = view["citizen"]
    console.print(f"[bold]{ident['citizen_id']}[/bold]  {ident.get('given_names') or ''} "
                  f"{ident.get('usage_name') or ''}"
                  + (f" (naissance : {ident['birth_name']})" if ident.get("birth_name") and
                     ident.get("birth_name") != ident.get("usage_name") else ""))
    for label, key in (("né(e) le", "birth_date"), ("sexe", "sex"), ("e-mail", "email"), ("téléphone", "phone")):
        if ident.get(key):
            value = fr_date(ident[key]) if key == "birth_date" else ident[key]
            console.print(f"  {label:<10} {value}")
    addr = " ".join(str(ident[k]) for k in ("address_line", "postcode", "city") if ident.get(k))
    if addr:
        console.print(f"  {'adresse':<10} {addr}")

    t = Table("record", "silo", "rôle", "nom", "né(e) le", "probabilité", title="Source records", box=None)
    for r in view.get("records", []):
        t.add_row(r["record_key"], r["source_system"], r.get("role") or "",
                  f"{r.get('given_names') or ''} {r.get('usage_name') or r.get('birth_name') or ''}",
                  fr_date(r.get("birth_date")), f"{r.get('match_probability', 1):.3f}")
    console.print(t)

    for h in view.get("households", []):
        members = ", ".join(f"{m.get('citizen_id')} ({m.get('role')})" for m in h.get("members", []))
        console.print(f"Foyer {h['household_id']} ({h['source_system']}), rôle {h['role']}; autres membres : {members}")
    for o in view.get("organisations", []):
        console.print(f"Organisation: {o.get('name')} (RNA {o.get('rna') or '—'}), {o.get('role')}")

    tl = Table("date", "silo", "type", "service", "libellé", "statut", "échéance", "montant",
               title="Timeline", box=None)
    for i in view.get("interactions", []):
        amount = f"{i['amount']} {i.get('currency') or ''}" if i.get("amount") is not None else ""
        tl.add_row(fr_date(i.get("opened_at")), i.get("source_system") or "", i.get("kind") or "",
                   i.get("service") or "", i.get("title") or "", i.get("status") or "",
                   fr_date(i.get("due_at")), amount)
    console.print(tl)
