"""What the CLI prints: run reports and the citizen view, for a terminal."""

from __future__ import annotations

import json
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
    rel = r.get("release")
    if rel:
        sizes = rel.get("size_histogram") or {}
        sizes = json.loads(sizes) if isinstance(sizes, str) else sizes
        hist = ", ".join(f"{k}: {v:,}" for k, v in sizes.items())
        console.print(
            f"Release: {rel['new_citizens']:,} new, {rel['merged_citizens']:,} merged, "
            f"{rel['split_citizens']:,} split, {rel['unchanged_citizens']:,} unchanged citizens; "
            f"largest citizen {rel['largest_after']} records "
            f"(records per citizen: {hist})"
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


_LEVEL = {0: "déclaratif", 1: "justificatif", 2: "FranceConnect"}
_IDENTITY_ROWS = (("prénoms", "given_names"), ("nom d'usage", "usage_name"), ("nom de naissance", "birth_name"),
                  ("sexe", "sex"), ("né(e) le", "birth_date"), ("e-mail", "email"), ("téléphone", "phone"),
                  ("adresse", "address_line"), ("code postal", "postcode"), ("commune", "city"))


def _money(value: Any, currency: str | None) -> str:
    return f"{value} {currency or ''}".strip() if value is not None else ""


def print_citizen(console: Console, view: dict[str, Any]) -> None:
    """The 360° view, readable in a terminal: identity with provenance, conflicts, foyer, timeline,
    deadlines, unpaid invoices, linked records and the silos' discrepancies."""
    ident, prov = view["citizen"], view.get("provenance", {})
    console.print(f"[bold]{ident['citizen_id']}[/bold]  {ident.get('given_names') or ''} "
                  f"{ident.get('usage_name') or ''}  — connu(e) de {', '.join(ident.get('source_systems') or [])}")
    t = Table("attribut", "valeur", "preuve", "source", "observé le", "règle", title="Identité", box=None)
    for label, key in _IDENTITY_ROWS:
        if ident.get(key) is None:
            continue
        p = prov.get(key, {})
        value = fr_date(ident[key]) if key == "birth_date" else str(ident[key])
        flag = " [yellow]⚠ divergence[/yellow]" if p.get("conflict") else ""
        t.add_row(label, value + flag, _LEVEL.get(p.get("certification_level"), ""), p.get("source_system") or "",
                  fr_date(p.get("observed_at")), p.get("rule") or "")
    console.print(t)
    for c in view.get("conflicts", []):
        others = "; ".join(f"{o['source_system']}: {o['value']}" for o in c["others"])
        console.print(f"  [yellow]divergence[/yellow] {c['attribute']}: retenu {c['golden_value']} "
                      f"({c['golden_source_system']}); autres : {others}")

    for f in view.get("foyers", []):
        where = " ".join(str(f[k]) for k in ("address_line", "postcode", "city") if f.get(k))
        console.print(f"\n[bold]Foyer[/bold] {f['household_id']} ({where}) — rôle : {f['role']}; "
                      f"sources : {', '.join(f['source_households']) or 'adresse partagée'}")
        for m in f["members"]:
            minor = " (mineur)" if m.get("is_minor") else ""
            console.print(f"  {m['role']:<12} {m['citizen_id']}  {m.get('given_names') or ''} "
                          f"{m.get('usage_name') or ''}  {fr_date(m.get('birth_date'))}{minor}")
    for o in view.get("organisations", []):
        console.print(f"Organisation : {o.get('name')} (RNA {o.get('rna') or '—'}), {o.get('role')}")

    tl = Table("date", "silo", "type", "service", "libellé", "statut", "échéance", "montant", "alerte",
               title="Parcours (timeline)", box=None)
    for i in view.get("interactions", []):
        alert = ""
        if i.get("overdue"):
            alert = "[red]en retard[/red]" + (f" (silence = {i['silence']})" if i.get("silence") else "")
        elif i.get("due_soon"):
            alert = "[yellow]< 15 jours[/yellow]"
        tl.add_row(fr_date(i.get("opened_at")), i.get("source_system") or "", i.get("kind") or "",
                   i.get("service") or "", i.get("title") or "", i.get("status") or "",
                   fr_date(i.get("deadline") or i.get("due_at")), _money(i.get("amount"), i.get("currency")), alert)
    console.print(tl)
    by_key = {i["interaction_key"]: i for i in view.get("interactions", [])}
    for key in view.get("deadlines", []):
        i = by_key[key]
        console.print(f"  échéance légale {fr_date(i['deadline'])} : {i.get('title') or key} ({i['source_system']}), "
                      f"silence vaut {i.get('silence')}" + (" — [red]dépassée[/red]" if i.get("overdue") else ""))
    unpaid = view.get("unpaid") or {}
    if unpaid.get("count"):
        totals = ", ".join(f"{v} {k}" for k, v in unpaid["totals"].items())
        console.print(f"  [bold]{unpaid['count']} facture(s) impayée(s)[/bold] : {totals}")

    r = Table("record", "silo", "rôle", "nom", "né(e) le", "preuve", "probabilité", title="Fiches sources",
              box=None)
    for rec in view.get("records", []):
        r.add_row(rec["record_key"], rec["source_system"], rec.get("role") or "",
                  f"{rec.get('given_names') or ''} {rec.get('usage_name') or rec.get('birth_name') or ''}",
                  fr_date(rec.get("birth_date")), _LEVEL.get(rec.get("certification_level"), ""),
                  f"{rec.get('match_probability', 1):.3f}")
    console.print(r)
    if view.get("discrepancies"):
        d = Table("silo", "record", "attribut", "valeur du silo", "valeur retenue", title="À corriger dans les silos",
                  box=None)
        for x in view["discrepancies"]:
            d.add_row(x["source_system"], x["record_key"], x["attribute"], x.get("silo_value") or "",
                      x.get("golden_value") or "")
        console.print(d)


def print_prefill(console: Console, data: dict[str, Any]) -> None:
    """A once-only read: the attributes the service may prefill, with proof level, source and date."""
    console.print(f"[bold]{data['citizen_id']}[/bold] pour {data['service']} ({data['purpose']})")
    t = Table("attribut", "valeur", "preuve", "source", "observé le", "à confirmer", box=None)
    for attr, a in data["attributes"].items():
        confirm = "oui" if a.get("conflict") or a.get("rule") == "fallback" else ""
        t.add_row(attr, str(a["value"]), _LEVEL.get(a.get("certification_level"), ""), a.get("source_system") or "",
                  fr_date(a.get("observed_at")), confirm)
    console.print(t)
