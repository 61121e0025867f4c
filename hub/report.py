"""What the CLI prints: run reports and the citizen view, for a terminal."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

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

    partial = " [red]PARTIAL[/red]: a source failed" if report.status == "partial" else ""
    console.print(f"\n[bold]Run {report.run_id}[/bold] → {redact(settings.warehouse_url)}{partial}")
    for dead in report.aborted:
        console.print(f"run {dead} had been left running by a process that ended (killed?): marked aborted")
    # deleted: rows a full export no longer lists; recovered: an aborted run's rows loaded now (neither read)
    more = [k for k in ("rows_deleted", "rows_recovered") if any(r.get(k) for r in recon)]
    t = Table("stage", "source", "entity", "read", "loaded", "quarantined", "adds up",
              *(k.removeprefix("rows_") for k in more),
              title="Rows per source: extracted from the silo, then through the quality gate", box=None)
    for r in recon:
        t.add_row(r["stage"], r["source_system"], r["entity"], f"{r['rows_read']:,}", f"{r['rows_loaded']:,}",
                  f"{r['rows_quarantined']:,}", "yes" if r["ok"] else "[red]NO[/red]",
                  *(f"{r.get(k, 0):,}" for k in more))
    console.print(t)
    for f in report.failed:
        console.print(f"[red]source failed[/red] {escape(f['error'])}")
        at = f.get("last_good_load")
        console.print(f"  the release uses its data of the last good load ({at:%Y-%m-%d %H:%M})" if at
                      else "  the release holds none of its data (never loaded)")
    # a mapping's `on_error = "null"` notes (reason nulled_<reason>) are on rows that were loaded
    nulled = [r for r in reasons if r["reason_code"].startswith("nulled_")]
    reasons = [r for r in reasons if not r["reason_code"].startswith("nulled_")]
    if reasons:
        q = Table("source", "entity", "stage", "reason", "rows", title="Quarantined rows", box=None)
        for r in reasons:
            q.add_row(r["source_system"], r["entity"], r["stage"], r["reason_code"], f"{r['count']:,}")
        console.print(q)
    else:
        console.print("Quarantined rows: none")
    if nulled:
        n = Table("source", "entity", "reason", "fields", title="Fields set to null (their rows loaded)", box=None)
        for r in nulled:
            n.add_row(r["source_system"], r["entity"], r["reason_code"].removeprefix("nulled_"), f"{r['count']:,}")
        console.print(n)
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
        f"model {r['model_version']}, {r.get('mode', 'batch')} run"
    )
    _print_matching(console, r.get("matching") or {})
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


# the model fields the run report shows per source, with the words a data engineer reads
_REPORT_FIELDS = (("first_name_std", "prénom"), ("surname_std", "nom"), ("birth_date_std", "naissance"),
                  ("sex_std", "sexe"), ("email_std", "e-mail"), ("phone_std", "téléphone"),
                  ("address_std", "adresse"), ("postcode_std", "code postal"), ("city_std", "commune"))


def _print_matching(console: Console, m: dict[str, Any]) -> None:
    """What the matching was built from: each field's coverage per source, the comparisons left out
    and why, each source's locale, values nulled as placeholders, and the pairs the guards refused."""
    prof = m.get("profile") or {}
    by_source = prof.get("by_source") or {}
    if by_source:
        locales = m.get("locales") or {}
        t = Table("source", "locale", *(label for _c, label in _REPORT_FIELDS),
                  title="Matching: share of each source's records carrying each field", box=None)
        for src, shares in sorted(by_source.items()):
            t.add_row(src, str(locales.get(src, "")),
                      *(f"{shares.get(c, 0):.0%}" if shares.get(c) else "·" for c, _label in _REPORT_FIELDS))
        console.print(t)
        households = "yes" if prof.get("households") else "no"
        console.print(f"Households in these records: {households} ({prof.get('housemate_share', 0):.1%} of records "
                      "live with someone of their name born years apart, "
                      f"{prof.get('family_role_share', 0):.1%} hold a family role; household guards "
                      f"{'on' if prof.get('households') else 'off'})")
    for name, why in (m.get("left_out") or {}).items():
        console.print(f"Comparison left out: {name} ({escape(why)})")
    nulled = {f: n for f, n in (m.get("placeholders_nulled") or {}).items() if n}
    if nulled:
        console.print("Values ignored as placeholders (shared by implausibly many people): "
                      + ", ".join(f"{f} {n:,}" for f, n in sorted(nulled.items())))
    vetoes = m.get("vetoes") or {}
    if vetoes:
        console.print("Pairs above the threshold refused by a guard: "
                      + ", ".join(f"{reason.replace('_', ' ')} {n:,}" for reason, n in sorted(vetoes.items())))


def print_demo(console: Console, result) -> None:
    """The run report, plus the sandbox's size and the accuracy against its ground truth."""
    from warehouse.engine import Warehouse

    loaded = {s.name for s in result.settings.sources} | {"people"}
    counts = ", ".join(f"{k} {v:,}" for k, v in result.sandbox_counts.items() if k in loaded)
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


def _x(value: Any) -> str:
    """Silo data inside rich markup: escaped, so a value is never read as markup."""
    return escape("" if value is None else str(value))


def _cells(*values: Any) -> list[Text]:
    """Table cells taken literally (no markup, no :emoji: codes: a household id `family:x` stays so)."""
    return [v if isinstance(v, Text) else Text("" if v is None else str(v)) for v in values]


def _say(console: Console, text: str) -> None:
    console.print(text, emoji=False, highlight=False)


def _money(value: Any, currency: str | None) -> str:
    return f"{value} {currency or ''}".strip() if value is not None else ""


def print_citizen(console: Console, view: dict[str, Any]) -> None:
    """The 360° view, readable in a terminal: identity with provenance, conflicts, foyer, timeline,
    deadlines, unpaid invoices, linked records and the silos' discrepancies."""
    ident, prov = view["citizen"], view.get("provenance", {})
    _say(console, f"[bold]{_x(ident['citizen_id'])}[/bold]  {_x(ident.get('given_names'))} "
                  f"{_x(ident.get('usage_name'))}  — connu(e) de {_x(', '.join(ident.get('source_systems') or []))}")
    t = Table("attribut", "valeur", "preuve", "source", "observé le", "règle", title="Identité", box=None)
    for label, key in _IDENTITY_ROWS:
        if ident.get(key) is None:
            continue
        p = prov.get(key, {})
        value = Text(fr_date(ident[key]) if key == "birth_date" else str(ident[key]))
        if p.get("conflict"):
            value.append(" ⚠ divergence", style="yellow")
        t.add_row(*_cells(label, value, _LEVEL.get(p.get("certification_level"), ""), p.get("source_system"),
                          fr_date(p.get("observed_at")), p.get("rule")))
    console.print(t)
    for c in view.get("conflicts", []):
        others = "; ".join(f"{o['source_system']}: {o['value']}" for o in c["others"])
        _say(console, f"  [yellow]divergence[/yellow] {_x(c['attribute'])}: retenu {_x(c['golden_value'])} "
                      f"({_x(c['golden_source_system'])}); autres : {_x(others)}")

    for f in view.get("foyers", []):
        where = " ".join(str(f[k]) for k in ("address_line", "postcode", "city") if f.get(k))
        sources = ", ".join(f["source_households"]) or "adresse partagée"
        _say(console, f"\n[bold]Foyer[/bold] {_x(f['household_id'])} ({_x(where)}) — rôle : {_x(f['role'])}; "
                      f"sources : {_x(sources)}")
        for m in f["members"]:
            minor = " (mineur)" if m.get("is_minor") else ""
            _say(console, f"  {_x(m['role']):<12} {_x(m['citizen_id'])}  {_x(m.get('given_names'))} "
                          f"{_x(m.get('usage_name'))}  {fr_date(m.get('birth_date'))}{minor}")
    for o in view.get("organisations", []):
        _say(console, f"Organisation : {_x(o.get('name'))} (RNA {_x(o.get('rna') or '—')}), {_x(o.get('role'))}")

    tl = Table("date", "silo", "type", "service", "libellé", "statut", "échéance", "montant", "alerte",
               title="Parcours (timeline)", box=None)
    for i in view.get("interactions", []):
        alert = Text("")
        if i.get("overdue"):
            alert = Text("en retard" + (f" (silence = {i['silence']})" if i.get("silence") else ""), style="red")
        elif i.get("due_soon"):
            alert = Text("< 15 jours", style="yellow")
        tl.add_row(*_cells(fr_date(i.get("opened_at")), i.get("source_system"), i.get("kind"), i.get("service"),
                           i.get("title"), i.get("status"), fr_date(i.get("deadline") or i.get("due_at")),
                           _money(i.get("amount"), i.get("currency")), alert))
    console.print(tl)
    by_key = {i["interaction_key"]: i for i in view.get("interactions", [])}
    for key in view.get("deadlines", []):
        i = by_key[key]
        _say(console, f"  échéance légale {fr_date(i['deadline'])} : {_x(i.get('title') or key)} "
                      f"({_x(i['source_system'])}), silence vaut {_x(i.get('silence'))}"
                      + (" — [red]dépassée[/red]" if i.get("overdue") else ""))
    unpaid = view.get("unpaid") or {}
    if unpaid.get("count"):
        totals = ", ".join(f"{v} {k}" for k, v in unpaid["totals"].items())
        _say(console, f"  [bold]{unpaid['count']} facture(s) impayée(s)[/bold] : {_x(totals)}")

    r = Table("record", "silo", "rôle", "nom", "né(e) le", "preuve", "probabilité", title="Fiches sources",
              box=None)
    for rec in view.get("records", []):
        r.add_row(*_cells(rec["record_key"], rec["source_system"], rec.get("role"),
                          f"{rec.get('given_names') or ''} {rec.get('usage_name') or rec.get('birth_name') or ''}",
                          fr_date(rec.get("birth_date")), _LEVEL.get(rec.get("certification_level"), ""),
                          f"{rec.get('match_probability', 1):.3f}"))
    console.print(r)
    if view.get("discrepancies"):
        d = Table("silo", "record", "attribut", "valeur du silo", "valeur retenue", title="À corriger dans les silos",
                  box=None)
        for x in view["discrepancies"]:
            d.add_row(*_cells(x["source_system"], x["record_key"], x["attribute"], x.get("silo_value"),
                              x.get("golden_value")))
        console.print(d)


def print_prefill(console: Console, data: dict[str, Any]) -> None:
    """A once-only read: the attributes the service may prefill, with proof level, source and date."""
    _say(console, f"[bold]{_x(data['citizen_id'])}[/bold] pour {_x(data['service'])} ({_x(data['purpose'])})")
    t = Table("attribut", "valeur", "preuve", "source", "observé le", "à confirmer", box=None)
    for attr, a in data["attributes"].items():
        confirm = "oui" if a.get("conflict") or a.get("rule") == "fallback" else ""
        t.add_row(*_cells(attr, a["value"], _LEVEL.get(a.get("certification_level"), ""), a.get("source_system"),
                          fr_date(a.get("observed_at")), confirm))
    console.print(t)
