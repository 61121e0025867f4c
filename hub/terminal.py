"""What every `hub` command shares: the consoles, who is at the keyboard, the settings option."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import click
from rich.console import Console

from hub.settings import Settings, SettingsError, load_settings

# Piped output (CI logs, `| less`, a file) gets a wide page for tables rather than rich's 80-column
# default, and messages are never wrapped or cut to a width: a log keeps every word of them.
console = Console(width=None if sys.stdout.isatty() else 160, soft_wrap=not sys.stdout.isatty())
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160, soft_wrap=not sys.stderr.isatty())

config_option = click.option("--config", type=click.Path(path_type=Path),
                             help="Settings file (default: $HUB_CONFIG, var/hub.toml).")


def agent() -> str:
    """Who reads or decides: the agent's login (HUB_READER overrides, e.g. behind a shared account).
    Recorded in the access log and with every identity decision."""
    return os.environ.get("HUB_READER") or getpass.getuser()


def settings_or_exit(config: Path | None) -> Settings:
    """The settings, or a one-line error naming the file and exit status 2."""
    try:
        return load_settings(config)
    except SettingsError as e:
        err.print(f"[red]settings:[/red] {e}")
        sys.exit(2)
