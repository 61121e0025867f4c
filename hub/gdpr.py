"""`hub gdpr …`: the DPO's commands. The register of processing first: export it, check it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.markup import escape

from hub.terminal import config_option, console, err

_register_option = click.option(
    "--register", "register_path", type=click.Path(path_type=Path),
    help="Register of processing (default: $HUB_REGISTER, else schemas/register.toml).")
_no_warehouse = click.option(
    "--no-warehouse", is_flag=True,
    help="Check the register against the canonical contract only, not against the warehouse's tables.")


@click.group()
def gdpr() -> None:
    """The DPO's toolkit: the register of processing (Art. 30) and what reads it."""


def _checked_register(register_path: Path | None, config: Path | None, no_warehouse: bool):
    """The register, validated and checked by the completeness guard (the contract, and the
    configured warehouse unless ``no_warehouse``); exits 2 on an invalid register or settings, 3 on
    personal data the register does not map."""
    from hub.settings import SettingsError, load_settings
    from schemas.register import RegisterError, load_register
    from warehouse.register_guard import UnmappedPersonalData, check

    try:
        register = load_register(register_path)
    except RegisterError as e:
        err.print(f"[red]register:[/red] {escape(str(e))}", soft_wrap=True)
        sys.exit(2)
    wh = None
    if not no_warehouse:
        try:
            settings = load_settings(config)
        except SettingsError as e:
            if config is not None or os.environ.get("HUB_CONFIG"):
                err.print(f"[red]settings:[/red] {escape(str(e))}")
                sys.exit(2)
            settings = None
            err.print("no settings file: the register is checked against the canonical contract only "
                      "(--config to check a warehouse)")
        if settings is not None:
            url = settings.warehouse_url
            if url.startswith("duckdb:///") and not Path(url.split("duckdb:///", 1)[1]).exists():
                err.print(f"no warehouse at {url} yet: the register is checked against the canonical contract only")
            else:
                from warehouse.engine import Warehouse

                wh = Warehouse(url)
    try:
        check(wh, register)
    except UnmappedPersonalData as e:
        err.print(f"[red]completeness guard:[/red] {escape(str(e))}", soft_wrap=True)
        sys.exit(3)
    finally:
        if wh is not None:
            wh.close()
    return register


@gdpr.command("register")
@click.option("--format", "fmt", type=click.Choice(["csv", "md", "html"]), default="html", show_default=True,
              help="csv: one row per processing × data category (CNIL model columns, ';', UTF-8); md; html: a "
                   "readable page in French.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="File to write.")
@_register_option
@_no_warehouse
@config_option
def gdpr_register(fmt: str, out: Path, register_path: Path | None, no_warehouse: bool, config: Path | None) -> None:
    """Export the register of processing (Art. 30). Refused when the warehouse holds personal data
    the register does not map (the message names the tables and columns)."""
    from schemas.register_export import render

    register = _checked_register(register_path, config, no_warehouse)
    text = render(register, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8")
    rows = sum(len(p.data) for p in register.processings)
    console.print(f"{len(register.processings)} processings ({rows} data categories) written to {out}")


@gdpr.command("check")
@_register_option
@_no_warehouse
@config_option
def gdpr_check(register_path: Path | None, no_warehouse: bool, config: Path | None) -> None:
    """Validate the register and run the completeness guard on the warehouse, as the pipeline does."""
    register = _checked_register(register_path, config, no_warehouse)
    console.print(f"register {register.path}: {len(register.processings)} processings, every personal table "
                  "and column mapped")


# the register of rights requests and the access export (hub/gdpr_dsr.py)
def _add_dsr_commands() -> None:
    from hub.gdpr_dsr import access_command, request_group

    gdpr.add_command(request_group)
    gdpr.add_command(access_command)


_add_dsr_commands()


# erasure, rectification, objection, retention purge, access-log check (hub/gdpr_ops.py)
def _add_ops_commands() -> None:
    from hub.gdpr_ops import COMMANDS

    for command in COMMANDS:
        gdpr.add_command(command)


_add_ops_commands()
