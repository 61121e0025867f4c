"""`hub warehouse …`: upgrade the warehouse's schema (Alembic on PostgreSQL, offline SQL for a DBA),
apply roles and row security after a register change or a silo's first load."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from hub.terminal import config_option, console, err, settings_or_exit


def _url(config: Path | None, url: str | None) -> str:
    return url or settings_or_exit(config).warehouse_url


@click.group()
def warehouse() -> None:
    """Schéma de l'entrepôt : migrations, rôles et sécurité des lignes (PostgreSQL)."""


@warehouse.command()
@config_option
@click.option("--url", help="Warehouse URL (default: the settings' warehouse).")
@click.option("--sql", "offline", is_flag=True,
              help="Print the upgrade as SQL for a DBA to review (PostgreSQL); nothing is run.")
@click.option("--out", type=click.Path(path_type=Path), help="With --sql: write the script to this file.")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def upgrade(config: Path | None, url: str | None, offline: bool, out: Path | None, revision: str) -> None:
    """Bring the warehouse's schema to the code's: tables, then on PostgreSQL roles, grants, row
    security, views and functions. A warehouse built by the previous release keeps every row."""
    from warehouse.engine import redact
    from warehouse.migrate import upgrade as run_upgrade

    target = _url(config, url)
    try:
        result = run_upgrade(target, sql=offline, revision=revision)
    except (ValueError, RuntimeError, ConnectionError) as e:
        err.print(f"[red]warehouse upgrade:[/red] {escape(str(e))}")
        sys.exit(1)
    if offline and out:
        out.write_text(result, encoding="utf-8")
        console.print(f"SQL written to {out} ({result.count('CREATE POLICY')} policies)")
    elif offline:
        click.echo(result)
    else:
        console.print(f"{escape(redact(target))}: {escape(result)}")


@warehouse.command()
@config_option
@click.option("--url", help="Warehouse URL (default: the settings' warehouse).")
def roles(config: Path | None, url: str | None) -> None:
    """Re-apply roles, grants and row security from the register (after editing its access rules, or
    once a silo's raw tables are loaded): idempotent, one transaction, run by an admin."""
    from schemas.register import RegisterError, load_register
    from warehouse.engine import Warehouse
    from warehouse.roles import apply, roles_from_env

    try:
        register = load_register()
        with Warehouse(_url(config, url)) as wh:
            n = apply(wh, register, roles_from_env())
    except (RegisterError, ValueError, RuntimeError, ConnectionError) as e:
        err.print(f"[red]warehouse roles:[/red] {escape(str(e))}")
        sys.exit(1)
    console.print(f"row security on {n} personal table(s); roles {roles_from_env().prefix}_*")
