"""What every `hub` command shares: the consoles, who is at the keyboard, the settings option."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from hub.settings import Settings, SettingsError, load_settings

# Piped output (CI logs, `| less`, a file) gets a wide page for tables rather than rich's 80-column
# default, and messages are never wrapped or cut to a width: a log keeps every word of them.
console = Console(width=None if sys.stdout.isatty() else 160, soft_wrap=not sys.stdout.isatty())
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160, soft_wrap=not sys.stderr.isatty())

config_option = click.option("--config", type=click.Path(path_type=Path),
                             help="Settings file (default: $HUB_CONFIG, var/hub.toml).")


def agent() -> str:
    """Who reads or decides: the operating-system account the command runs as, which signed in. A
    name in ``HUB_READER`` (an agent behind a shared account) is only declared: recorded beside the
    account, never instead of it. Recorded in the access log and with every identity decision."""
    from warehouse.access_log import signed_in_reader

    return signed_in_reader(os.environ.get("HUB_READER"))


def purpose_or_exit(purpose: str) -> str:
    """The register's processing a ``--purpose`` names (id or purpose text), as its purpose text; a
    free-text purpose exits 2 with the list of valid ones. The check the reads themselves make."""
    from schemas.register import RegisterError, UnknownPurpose
    from warehouse.citizen_view import check_read

    try:
        return check_read(agent(), purpose).purpose
    except (UnknownPurpose, RegisterError) as e:
        err.print(f"[red]purpose:[/red] {escape(str(e))}", soft_wrap=True)
        sys.exit(2)


def settings_or_exit(config: Path | None) -> Settings:
    """The settings, or a one-line error naming the file and exit status 2."""
    try:
        return load_settings(config)
    except SettingsError as e:
        err.print(f"[red]settings:[/red] {e}")
        sys.exit(2)
