"""`hub serve`: the agent desk (JSON API and pages) on one uvicorn process."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from hub.terminal import config_option, console, err, settings_or_exit

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port.")
@click.option("--demo", is_flag=True, help="After `hub demo`: sign in through a local OpenID Connect provider "
              "(port + 1) with the demo agents instead of [desk]. Never for real agents.")
@config_option
def serve(host: str, port: int, demo: bool, config: Path | None) -> None:
    """The agent desk: search a citizen, the 360° view, the JSON API (/api/v1, described at /openapi.json).

    One process: sign-in sessions live in its memory. Sign-in by OpenID Connect from the settings'
    [desk] section (docs/desk.md), or with --demo through the sandbox's local provider."""
    from contextlib import ExitStack

    import uvicorn

    from hub.desk.app import create_app
    from schemas.register import RegisterError

    settings = settings_or_exit(config)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    with ExitStack() as stack:
        oidc = None
        if demo:
            from hub.demo import desk_hint, desk_sign_in

            oidc = stack.enter_context(desk_sign_in(settings.var_dir, f"http://{shown}:{port}", port=port + 1))
        try:
            app = create_app(settings, oidc_config=oidc)
        except (RegisterError, ValueError) as e:
            err.print(f"[red]desk not started:[/red] {e}")
            sys.exit(2)
        console.print(f"Bureau des agents : http://{shown}:{port}/  (API : http://{shown}:{port}/api/v1, "
                      f"description : http://{shown}:{port}/openapi.json) — Ctrl-C pour arrêter", soft_wrap=True)
        if demo:
            for line in desk_hint(port)[1:]:
                console.print(line, soft_wrap=True, markup=False, highlight=False)
        # no access log: request lines carry search text (names, birth dates) in their query strings
        uvicorn.run(app, host=host, port=port, workers=1, access_log=False, log_level="warning")
