"""`hub gdpr erase | rectify | object | purge | verify-log`: the DPO's commands that change data.

Each writes its own access-log row (who: the signed-in account, ``hub.terminal.agent``); none
prints a personal value: the erasure report and the purge report hold counts, hashes and
references only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape

from hub.terminal import agent, config_option, console, err, settings_or_exit


def _models(settings):
    from connectors.registry import staging_models

    return staging_models([(s.name, s.kind, s.params) for s in settings.sources])


@click.command("erase")
@click.argument("citizen_id")
@click.option("--request", "request_id", help="The rights request (hub gdpr request …) this answers.")
@click.option("--reason", required=True, help="Why (the Art. 17(1) ground), for the report.")
@click.option("--no-compact", is_flag=True, help="Skip rewriting the DuckDB file (bytes may remain in free blocks).")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the erasure report (JSON) here.")
@config_option
def erase_command(citizen_id: str, request_id: str | None, reason: str, no_compact: bool, report_path: Path | None,
                  config: Path | None) -> None:
    """Erase a citizen everywhere (GDPR Art. 17): golden, canonical, raw, quarantine, dlt files, exports;
    keep what a law requires (listed with its legal basis); suppression list; per-silo worklists."""
    from hub.pipeline import new_run_id
    from hub.runlock import hold
    from warehouse.gdpr_erase import ErasureError, erase
    from warehouse.marts import keys_from_settings

    settings = settings_or_exit(config)
    if request_id:
        _check_request(settings, request_id, "erasure")
    try:
        # the DuckDB file is rewritten and swapped, the readers' snapshot published again: no pipeline
        # run may write meanwhile (a run in progress: RunLocked, exit 75 through hub.readers)
        with hold(settings, new_run_id(), what="gdpr erase"):
            report = erase(settings.warehouse_url, citizen_id, reason=reason, decided_by=agent(),
                           request_id=request_id, models=_models(settings), var_dir=settings.var_dir,
                           pipelines_dir=settings.pipelines_dir, exports_dir=settings.var_dir / "exports",
                           compact_file=not no_compact,
                           marts_keys=keys_from_settings(settings.marts, settings.var_dir))
    except ErasureError as e:
        err.print(f"[red]erase:[/red] {escape(str(e))}")
        sys.exit(1)
    if report_path:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(report.to_json(), encoding="utf-8")
    if request_id:
        _request_event(settings, request_id, "erasure",
                       f"{report.records} record(s) erased, report {report.erasure_id}", report.to_json(),
                       f"{report.erasure_id}.json")
    tables = sorted({p.table for p in report.proof})
    console.print(f"erasure {report.erasure_id}: {report.records} record(s) of {citizen_id} erased from "
                  f"{len(tables)} table(s); {report.suppression_entries} suppression hash(es); "
                  f"{report.files_removed} file(s) removed; {report.seconds} s")
    for r in report.retained:
        console.print(f"  kept {r['table']} ({r['rows'] if r['rows'] is not None else 'references'}): "
                      f"{r['legal_basis']} — {r['retention']}", soft_wrap=True)
    for system, items in sorted(report.worklists.items()):
        console.print(f"  silo {system} must delete: {', '.join(i['source_id'] for i in items)}")
    console.print(f"  recipients to notify (Art. 19): {', '.join(r['processing'] for r in report.recipients)}")
    if report.raw_not_located:
        console.print(f"  [yellow]raw rows not located for models:[/yellow] {', '.join(report.raw_not_located)}")
    console.print(f"  report: {settings.var_dir / 'gdpr' / 'erasures' / (report.erasure_id + '.json')}")


def _check_request(settings, request_id: str, kind: str) -> None:
    """Refuse an unknown request, or one of another kind."""
    from hub.readers import writer
    from warehouse import dsr

    with writer(settings, "gdpr request", publish=False) as wh:
        try:
            req = dsr.get(wh, request_id)
        except dsr.RequestError as e:
            err.print(f"[red]request:[/red] {escape(str(e))}")
            sys.exit(1)
    if req["kind"] != kind:
        err.print(f"[red]request:[/red] {request_id} is of kind {req['kind']}, not {kind}")
        sys.exit(1)


def _request_event(settings, request_id: str, event: str, detail: str, proof_text: str, proof_name: str) -> None:
    """The request's history gets the step, with the proof's sha256."""
    import hashlib

    from hub.readers import writer
    from warehouse import dsr

    with writer(settings, "gdpr request", publish=False) as wh:
        dsr.add_event(wh, request_id, event, agent(), detail=detail, proof=proof_name,
                      proof_sha256=hashlib.sha256(proof_text.encode("utf-8")).hexdigest())


@click.command("rectify")
@click.argument("citizen_id")
@click.option("--attribute", required=True, help="Golden attribute (given_names, birth_date, email, …).")
@click.option("--value", required=True, help="The corrected value (dates YYYY-MM-DD).")
@click.option("--proof-level", type=click.IntRange(0, 2), required=True,
              help="0 declaratif, 1 document checked by an agent, 2 FranceConnect / authentic source.")
@click.option("--proof", required=True, help="What proved it (kept with the correction).")
@click.option("--request", "request_id", help="The rights request this answers.")
@config_option
def rectify_command(citizen_id: str, attribute: str, value: str, proof_level: int, proof: str,
                    request_id: str | None, config: Path | None) -> None:
    """Record a correction (GDPR Art. 16): it wins over silo values of lower proof on every run, and
    the silos holding another value see it on their discrepancy worklists."""
    from hub.readers import writer
    from warehouse.gdpr_rights import RightsError, rectify

    settings = settings_or_exit(config)
    if request_id:
        _check_request(settings, request_id, "rectification")
    with writer(settings, "gdpr rectify") as wh:
        try:
            rid = rectify(wh, citizen_id, attribute, value, proof_level=proof_level, proof=proof,
                          decided_by=agent(), request_id=request_id)
        except RightsError as e:
            err.print(f"[red]rectify:[/red] {escape(str(e))}")
            sys.exit(1)
        silos = wh.rows("SELECT DISTINCT source_system FROM golden.discrepancy WHERE citizen_id = :c "
                        "AND attribute = :a ORDER BY 1", {"c": citizen_id, "a": attribute})
    if request_id:
        _request_event(settings, request_id, "rectification", f"{attribute} corrected ({rid}, proof level "
                       f"{proof_level})", rid, rid)
    console.print(f"rectification {rid}: {attribute} of {citizen_id} corrected (proof level {proof_level}); "
                  f"silos to fix: {', '.join(s[0] for s in silos) or 'none'}")


@click.command("object")
@click.argument("citizen_id")
@click.option("--processing", "processing_id", required=True, help="The register's processing id objected to.")
@click.option("--request", "request_id", help="The rights request this answers.")
@config_option
def object_command(citizen_id: str, processing_id: str, request_id: str | None, config: Path | None) -> None:
    """Record an objection (GDPR Art. 21): that processing's reads no longer return the person."""
    from hub.readers import writer
    from warehouse.gdpr_rights import RightsError, object_to

    settings = settings_or_exit(config)
    if request_id:
        _check_request(settings, request_id, "objection")
    with writer(settings, "gdpr object") as wh:
        try:
            object_to(wh, citizen_id, processing_id, decided_by=agent(), request_id=request_id)
        except RightsError as e:
            err.print(f"[red]object:[/red] {escape(str(e))}")
            sys.exit(1)
    if request_id:
        _request_event(settings, request_id, "objection", f"objection to {processing_id} recorded", processing_id,
                       processing_id)
    console.print(f"objection recorded: {citizen_id} hidden from processing {processing_id}")


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what is past retention, delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@config_option
def purge_command(dry_run: bool, as_json: bool, config: Path | None) -> None:
    """Apply every retention of the register; prints what was purged (counts per table and category)."""
    settings_or_exit(config)
    report = run_purge(config, dry_run=dry_run, reader=agent())  # during a run: exit 75 (hub.readers)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    verb = "would purge" if dry_run else "purged"
    console.print(f"retention purge: {verb} {report['total']} row(s)")
    for p in report["purged"]:
        console.print(f"  {p['table']:<40} {p['processing']:<28} {p['category']:<14} {p['rows']:>8}  {p['rule']}")
    if report.get("report"):
        console.print(f"  report: {report['report']}")


@click.command("verify-log")
@config_option
def verify_log_command(config: Path | None) -> None:
    """Check the access log's hash chain; exit 1 naming the first broken row."""
    from hub.readers import reader
    from warehouse.access_log import BrokenChain, verify

    settings = settings_or_exit(config)
    with reader(settings) as wh:  # the log is read beside the published release, never blocking a run
        try:
            n = verify(wh)
        except BrokenChain as e:
            err.print(f"[red]access log:[/red] {escape(str(e))}")
            sys.exit(1)
    console.print(f"access log: {n} row(s), hash chain intact")


COMMANDS = (erase_command, rectify_command, object_command, purge_command, verify_log_command)


def run_purge(config: str | Path | None, *, dry_run: bool = False, reader: str = "hub-purge") -> dict:
    """The retention purge for a settings file, under the hub's run lock (the DAG's task): the
    report as a dict of counts per table and category (no values)."""
    from hub.pipeline import new_run_id
    from hub.runlock import hold
    from hub.settings import load_settings
    from warehouse.gdpr_purge import purge
    from warehouse.snapshot import publish

    settings = load_settings(Path(config) if config else None)
    with hold(settings, new_run_id(), what="gdpr purge"):
        report = purge(settings.warehouse_url, dry_run=dry_run, models=_models(settings),
                       pipelines_dir=settings.pipelines_dir, reader=reader)
        if not dry_run:
            publish(settings.warehouse_url)  # what is past retention leaves the readers' copy too
    out = report.as_dict()
    if not dry_run:  # kept for the DPO's accountability: counts only
        path = Path(settings.var_dir) / "gdpr" / "purges" / f"purge-{report.ran_at[:19].replace(':', '')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
        out["report"] = str(path)
    return out


def run_erase(config: str | Path | None, citizen_id: str, *, reason: str, actor: str,
              request_id: str | None = None) -> dict:
    """An erasure for a settings file under the hub's run lock (the DAG's task); the request, when
    given, must be an erasure request and gets the step. Returns counts and ids only (no values)."""
    from hub.pipeline import new_run_id
    from hub.runlock import hold
    from hub.settings import load_settings
    from warehouse.gdpr_erase import erase
    from warehouse.marts import keys_from_settings

    settings = load_settings(Path(config) if config else None)
    if request_id:
        from warehouse import dsr
        from warehouse.engine import Warehouse

        with Warehouse(settings.warehouse_url) as wh:
            kind = dsr.get(wh, request_id)["kind"]
        if kind != "erasure":
            raise ValueError(f"{request_id} is of kind {kind}, not erasure")
    with hold(settings, new_run_id(), what="gdpr erase"):
        report = erase(settings.warehouse_url, citizen_id, reason=reason, decided_by=actor, request_id=request_id,
                       models=_models(settings), var_dir=settings.var_dir, pipelines_dir=settings.pipelines_dir,
                       exports_dir=settings.var_dir / "exports",
                       marts_keys=keys_from_settings(settings.marts, settings.var_dir))
    if request_id:
        import hashlib

        from warehouse import dsr
        from warehouse.engine import Warehouse

        with Warehouse(settings.warehouse_url) as wh:
            dsr.add_event(wh, request_id, "erasure", actor, detail=f"{report.records} record(s) erased, report "
                          f"{report.erasure_id}", proof=f"{report.erasure_id}.json",
                          proof_sha256=hashlib.sha256(report.to_json().encode("utf-8")).hexdigest())
    return {"erasure_id": report.erasure_id, "records": report.records,
            "tables": len({p.table for p in report.proof}), "retained": len(report.retained),
            "silos": sorted(report.worklists), "files_removed": report.files_removed, "seconds": report.seconds}
