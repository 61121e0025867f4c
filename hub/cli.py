"""The `hub` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from hub.report import fr_date
from hub.terminal import agent, config_option, console, err, purpose_or_exit, settings_or_exit

# `hub run` when another run is writing to the warehouse: sysexits' EX_TEMPFAIL (try again later)
RUN_LOCKED_EXIT = 75


class _Hub(click.Group):
    """The command group: a warehouse another process holds, or nothing published yet, is one clear
    sentence and exit 75 / 1 (hub/readers.py), never an engine's traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        from hub.readers import friendly_errors

        with friendly_errors():
            return super().invoke(ctx)


@click.group(cls=_Hub)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level (never personal data).")
def main(verbose: bool) -> None:
    """Citizen data hub: silos in, golden citizen records out."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # dlt, GE and Splink are chatty (dlt warns at every run about schema hints the connectors set on
    # purpose); the terminal is for the hub's own progress and report. -v shows their warnings.
    # dlt configures its own logger from RUNTIME__LOG_LEVEL.
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING" if verbose else "ERROR")
    for noisy in ("dlt", "great_expectations", "splink"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)
    if not verbose:
        # pyspark (installed for the Spark backend) warns about pandas 3 whenever great_expectations
        # imports it, in every command, although no command runs Spark
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark\.")


# ------------------------------------------------------------------------------------------ progress
class _Steps:
    """A live progress display: one line per pipeline step with its outcome. When the output is not
    a terminal (a log, a pipe), each step's outcome is printed once, whole, as a plain line: a live
    display would cut long messages to its width."""

    def __init__(self) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.live = console.is_terminal
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description:<24}"),
                                 TextColumn("{task.fields[msg]}"), TimeElapsedColumn(), console=console)
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Steps:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def __call__(self, step: str, msg: str) -> None:
        if not self.live:
            if msg != "running":
                console.print(f"  {step:<24} {msg}", soft_wrap=True, markup=False, highlight=False)
            return
        if step not in self.tasks:
            self.tasks[step] = self.progress.add_task(step, total=1, msg=msg)
        done = msg != "running"
        self.progress.update(self.tasks[step], msg=msg, completed=1 if done else 0)


# ------------------------------------------------------------------------------------------ demo / run
@main.command()
@click.option("--people", default=10_000, show_default=True, help="Size of the sandbox commune.")
@click.option("--seed", default=42, show_default=True, help="Seed of the synthetic population.")
@click.option("--var", "var_dir", default="var", show_default=True, type=click.Path(path_type=Path),
              help="Where the sandbox, the warehouse and dlt's state go.")
@click.option("--with-demarches", is_flag=True, help="Also run the Démarches simplifiées silo (a sixth source).")
@click.option("--country", type=click.Choice(["fr", "be"], case_sensitive=False), default="fr", show_default=True,
              help="Sandbox mode: a French commune (fr) or the Brussels-Capital region, bilingual FR / NL (be).")
def demo(people: int, seed: int, var_dir: Path, with_demarches: bool, country: str) -> None:
    """Generate a commune, start its simulated silos, run the whole job, report what it found."""
    from hub.demo import COUNTRY_LABELS
    from hub.demo import demo as run_demo
    from hub.report import print_demo

    with _Steps() as steps:
        result = run_demo(var_dir, people, seed, progress=steps, with_demarches=with_demarches,
                          warehouse_url=os.environ.get("HUB_WAREHOUSE_URL"), country=country.upper())
    console.print(f"\nSandbox mode: {result.country}, {COUNTRY_LABELS[result.country]}")
    print_demo(console, result)
    from hub.demo import desk_hint

    console.print()
    for line in desk_hint():  # the desk is not started here: `hub demo` ends (make demo waits for it)
        console.print(line, soft_wrap=True, markup=False, highlight=False)


@main.command()
@config_option
@click.option("--confirm-release", is_flag=True,
              help="Publish even if the release guard finds the release abnormal (a jump in merges, a huge citizen).")
@click.option("--incremental/--batch", default=None,
              help="Resolve only new and changed records against the published citizens (default: the "
                   "[matching] incremental setting), or recompute everything.")
def run(config: Path | None, confirm_release: bool, incremental: bool | None) -> None:
    """Run the pipeline on the configured sources: ingest, canonical layer, resolution, golden."""
    from hub.pipeline import NothingToResolve
    from hub.pipeline import run as run_pipeline
    from hub.report import print_run
    from hub.runlock import RunLocked
    from warehouse.resolution import ReleaseRefused

    settings = settings_or_exit(config)
    try:
        with _Steps() as steps:
            report = run_pipeline(settings, progress=steps, confirm_release=confirm_release or None,
                                  incremental=incremental)
    except NothingToResolve as e:
        err.print(f"[red]run stopped:[/red] {escape(str(e))}")
        sys.exit(1)
    except ReleaseRefused as e:
        err.print(f"[red]release refused:[/red] {e}")
        err.print("The previous publication stays in place. Check `hub review releases`, then rerun with "
                  "--confirm-release (or `hub review confirm-release RUN`) if the change is expected.")
        sys.exit(3)
    except RunLocked as e:
        err.print(f"[red]run not started:[/red] {escape(str(e))}")
        sys.exit(RUN_LOCKED_EXIT)
    print_run(console, settings, report)
    if report.failed:
        sys.exit(1)


# ------------------------------------------------------------------------------------------ citizen
@main.group()
def citizen() -> None:
    """Find a citizen and see the 360° view (every read is recorded in the access log)."""


_PURPOSE_HELP = ("Why you are reading: one of the register's processings, by id or purpose text (`hub gdpr "
                 "register --format md` lists them; anything else is refused). Recorded in the access log with "
                 "your account.")
_purpose = click.option("--purpose", default="guichet-unique", show_default=True, help=_PURPOSE_HELP)


@citizen.command("search")
@click.argument("text")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_purpose
@config_option
def citizen_search(text: str, limit: int, as_json: bool, purpose: str, config: Path | None) -> None:
    """Search citizens by name, birth date (dd/mm/yyyy), e-mail or phone."""
    from hub.readers import reader
    from warehouse.citizen_view import search

    purpose = purpose_or_exit(purpose)
    settings = settings_or_exit(config)
    with reader(settings) as wh:
        hits = search(wh, text, limit=limit, reader=agent(), purpose=purpose)
    if as_json:
        click.echo(json.dumps(hits, ensure_ascii=False, indent=2, default=str))
        return
    if not hits:
        console.print("No citizen matches.")
        return
    t = Table("citizen_id", "prénoms", "nom", "né(e) le", "commune", "silos", box=None)
    for h in hits:
        t.add_row(h["citizen_id"], h.get("given_names") or "", _name(h), fr_date(h.get("birth_date")),
                  h.get("city") or "", ", ".join(h.get("source_systems") or []))
    console.print(t)


@citizen.command("show")
@click.argument("citizen_id")
@click.option("--json", "as_json", is_flag=True, help="Print the view as JSON.")
@_purpose
@config_option
def citizen_show(citizen_id: str, as_json: bool, purpose: str, config: Path | None) -> None:
    """The 360° view of one citizen: identity, linked records, household, roles, timeline."""
    from hub.readers import reader
    from hub.report import print_citizen
    from warehouse.citizen_view import show

    purpose = purpose_or_exit(purpose)
    settings = settings_or_exit(config)
    with reader(settings) as wh:
        view = show(wh, citizen_id, reader=agent(), purpose=purpose)
    if view is None:
        err.print(f"No citizen {citizen_id}.")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(view, ensure_ascii=False, indent=2, default=str))
        return
    print_citizen(console, view)


@citizen.command("prefill")
@click.argument("citizen_id")
@click.option("--service", required=True, help="The asking service (see schemas/register.toml); it reads only "
              "the attributes its purpose allows, and that purpose goes to the access log.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@config_option
def citizen_prefill(citizen_id: str, service: str, as_json: bool, config: Path | None) -> None:
    """Once-only read: the attributes a service's form may prefill, with proof level, source and date."""
    from hub.readers import reader
    from warehouse.citizen_view import prefill

    settings = settings_or_exit(config)
    with reader(settings) as wh:
        try:
            data = prefill(wh, citizen_id, service=service, reader=agent())
        except KeyError as e:
            err.print(f"[red]{e.args[0]}[/red]")
            sys.exit(2)
    if data is None:
        err.print(f"No citizen {citizen_id}.")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        return
    from hub.report import print_prefill

    print_prefill(console, data)


@citizen.command("worklist")
@click.argument("source_system")
@click.option("--attribute", help="Only this attribute (usage_name, birth_name, birth_date, email, phone, address).")
@click.option("--limit", default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--purpose", default="referentiel-usagers", show_default=True, help=_PURPOSE_HELP)
@config_option
def citizen_worklist(source_system: str, attribute: str | None, limit: int, as_json: bool, purpose: str,
                     config: Path | None) -> None:
    """A silo's records whose value differs from the golden one: what its agents should fix."""
    from hub.readers import reader
    from warehouse.citizen_view import worklist

    purpose = purpose_or_exit(purpose)
    settings = settings_or_exit(config)
    with reader(settings) as wh:
        rows = worklist(wh, source_system, attribute=attribute, limit=limit, reader=agent(), purpose=purpose)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        console.print(f"Nothing to fix in {source_system}.")
        return
    t = Table("record", "citoyen", "attribut", "valeur du silo", "valeur retenue", "source retenue", box=None)
    for r in rows:
        t.add_row(r["record_key"], r["citizen_id"], r["attribute"], r["silo_value"] or "", r["golden_value"] or "",
                  r["golden_source_system"])
    console.print(t)


def _name(h: dict) -> str:
    usage, birth = h.get("usage_name"), h.get("birth_name")
    if birth and usage and birth != usage:
        return f"{usage} (naissance : {birth})"
    return usage or birth or ""


# ------------------------------------------------------------------------------------------ sandbox
@main.group()
def sandbox() -> None:
    """The simulated silos used by the demo and the tests."""


@sandbox.command("serve")
@click.option("--port", default=8765, show_default=True, help="First port: family portal; +1 Salesforce, "
              "+2 ServiceNow, +3 Démarches simplifiées.")
@click.option("--with-demarches", is_flag=True, help="Also serve the Démarches simplifiées API.")
@config_option
def sandbox_serve(port: int, with_demarches: bool, config: Path | None) -> None:
    """Serve the sandbox's simulated silos after `hub demo`, and point the settings at them, so that
    `hub run` (or the Airflow DAG) can run again on the same commune."""
    import time
    from contextlib import ExitStack

    from hub.demo import built_sandbox, start_simulators

    settings = settings_or_exit(config)
    if settings.sandbox_root is None:
        err.print("these settings are not the sandbox's (no [hub] sandbox_root)")
        sys.exit(2)
    sb = built_sandbox(settings.sandbox_root)
    path = settings.config_path or Path(os.environ.get("HUB_CONFIG") or "var/hub.toml")
    # start_simulators writes var_dir/hub.toml afresh: keep what the user's files hold besides the
    # simulators' addresses (their sections, sources, keys and comments)
    written = settings.var_dir / "hub.toml"
    before = {p: p.read_text(encoding="utf-8") for p in {path, written} if p.exists()}
    with ExitStack() as stack:
        sr = start_simulators(stack, sb, settings.var_dir, warehouse_url=settings.warehouse_url, base_port=port,
                              with_demarches=with_demarches)
        _keep_user_settings(path, written, before)
        for s in sr.settings.sources:
            url = s.params.get("base_url") or s.params.get("login_url") or s.params.get("instance_url")
            if url:
                console.print(f"{s.name:<12} {url}", soft_wrap=True)
        console.print(f"settings updated in {path} (your own sections and sources kept). In another shell, "
                      "before `hub run`:", soft_wrap=True)
        for line in _exports(sr.settings, path):
            console.print(f"  {line}", soft_wrap=True, highlight=False, markup=False)
        console.print("Ctrl-C to stop")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def _keep_user_settings(path: Path, written: Path, before: dict[Path, str]) -> None:
    """Merge the simulators' settings (just written to ``written``) into the user's file ``path``,
    as it was before; a file the user did not point at gets its own text back."""
    import tomllib

    from hub.settings import merge_settings_text

    fresh = tomllib.loads(written.read_text(encoding="utf-8"))
    updates = {k: fresh[k] for k in ("sources", "hub", "matching") if k in fresh}
    if path in before:
        path.write_text(merge_settings_text(before[path], updates), encoding="utf-8")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(written.read_text(encoding="utf-8"), encoding="utf-8")
    if written.resolve() != path.resolve() and written in before:
        written.write_text(before[written], encoding="utf-8")


def _exports(settings: Any, path: Path) -> list[str]:
    """The shell lines `hub run` needs: the settings file and every ``*_env`` variable the sources
    name, with the simulators' values (sandbox credentials, not secrets of any real system)."""
    import shlex

    lines = [f"export HUB_CONFIG={shlex.quote(str(path.resolve()))}"]
    seen = set()
    for s in settings.sources:
        for k, var in sorted(s.params.items()):
            if k.endswith("_env") and var not in seen and os.environ.get(var):
                seen.add(var)
                lines.append(f"export {var}={shlex.quote(os.environ[var])}")
    return lines


from hub.review import decide, review  # noqa: E402  (registered last: their own module)

main.add_command(review)
main.add_command(decide)

from hub.gdpr import gdpr  # noqa: E402  (the DPO's commands, in their own module)

main.add_command(gdpr)

from hub.status import status_command  # noqa: E402  (last runs, failures, stale sources)

main.add_command(status_command)

from hub.warehouse_cli import warehouse  # noqa: E402  (schema, roles and row security, in their own module)

main.add_command(warehouse)

from hub.restitutions import dictionary, report  # noqa: E402  (états report; the marts' data dictionary)

main.add_command(report)
warehouse.add_command(dictionary)

from hub.serve import serve  # noqa: E402  (the agent desk, in its own module)

main.add_command(serve)

if __name__ == "__main__":
    main()
