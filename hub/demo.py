"""`hub demo`: a sandbox commune, its simulated silos running, the whole job, and what it found.

Five silos: finance (a SQL database), associations (a CSV drop) and three real HTTP servers that
run for the duration of the demo: the family portal, a Salesforce org and a ServiceNow instance.
``country`` "FR" (the default) builds a commune of the Métropole de Lyon, "BE" the Brussels-Capital
region (bilingual streets, Belgian names and phones; see :mod:`sandbox.population`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.pipeline import Progress, RunReport, run
from hub.settings import Settings, render_toml, settings_from_dict

FAMILY_TOKEN_ENV = "HUB_FAMILY_TOKEN"
# What each sandbox mode is, as the demo names it
COUNTRY_LABELS = {"FR": "French commune (Métropole de Lyon)", "BE": "Brussels-Capital region (FR / NL)"}
SANDBOX_TOKEN = "sandbox-family-token"  # the simulator's own token: not a secret of any real system
SALESFORCE_SECRET_ENV = "HUB_SALESFORCE_CLIENT_SECRET"
SERVICENOW_PASSWORD_ENV = "HUB_SERVICENOW_PASSWORD"
DEMARCHES_TOKEN_ENV = "HUB_DEMARCHES_TOKEN"


@dataclass
class DemoResult:
    settings: Settings
    report: RunReport
    generate_seconds: float
    accuracy: dict[str, Any]
    sandbox_counts: dict[str, Any]
    country: str = "FR"  # the sandbox mode: "FR" or "BE"


def sandbox_settings(var_dir: Path, sandbox, family_url: str, warehouse_url: str | None = None, *,
                     salesforce_url: str | None = None, servicenow_url: str | None = None,
                     demarches: Any = None) -> Settings:
    """Settings pointing at a built sandbox (and written to var_dir/hub.toml for later commands).
    The Salesforce, ServiceNow and Démarches simplifiées sources are included when their simulators
    are given."""
    from sandbox.salesforce import DEFAULT_CLIENT_ID
    from sandbox.servicenow import DEFAULT_USER

    sources: dict[str, Any] = {
        "finance": {"kind": "finance", "url": sandbox.finance_url},
        "family": {"kind": "family", "base_url": family_url, "token_env": FAMILY_TOKEN_ENV},
        "associations": {"kind": "associations", "drop_dir": str(sandbox.associations_dir)},
    }
    if salesforce_url:
        sources["salesforce"] = {"kind": "salesforce", "login_url": salesforce_url, "client_id": DEFAULT_CLIENT_ID,
                                 "client_secret_env": SALESFORCE_SECRET_ENV}
    if servicenow_url:
        sources["servicenow"] = {"kind": "servicenow", "instance_url": servicenow_url, "username": DEFAULT_USER,
                                 "password_env": SERVICENOW_PASSWORD_ENV}
    if demarches is not None:
        sources["demarches"] = {"kind": "demarches", "base_url": demarches.url,
                                "demarches": list(demarches.demarche_numbers), "token_env": DEMARCHES_TOKEN_ENV}
    data: dict[str, Any] = {
        "hub": {"var_dir": str(var_dir), "sandbox_root": str(sandbox.root)},
        "warehouse": {"url": warehouse_url or f"duckdb:///{var_dir / 'hub.duckdb'}"},
        "sources": sources,
    }
    country = getattr(sandbox, "country", "FR")
    if country != "FR":  # the deployment's country: the identity standardisation follows it
        data["matching"] = {"country": country}
    path = var_dir / "hub.toml"
    path.write_text(render_toml(data), encoding="utf-8")
    return settings_from_dict(data, config_path=path)


@dataclass
class SandboxRun:
    """A built sandbox with its simulators running, and the hub settings that point at them."""

    settings: Settings
    sandbox: Any  # sandbox.Sandbox
    portal: Any  # sandbox.family_portal.FamilyPortal (inject faults, touch records)
    generate_seconds: float
    salesforce: Any = None  # sandbox.salesforce.SalesforceOrg
    servicenow: Any = None  # sandbox.servicenow.ServiceNowInstance
    demarches: Any = None  # sandbox.demarches.DemarchesServer


@contextmanager
def running_sandbox(var_dir: Path, people: int, seed: int, *, warehouse_url: str | None = None,
                    finance_url: str | None = None, fresh: bool = True,
                    with_demarches: bool = False, defects: bool = False,
                    country: str = "FR") -> Iterator[SandboxRun]:
    """Build the sandbox (``country`` "FR" or "BE") under var_dir/sandbox, start its simulators
    (family portal, Salesforce, ServiceNow), yield settings for them."""
    from sandbox import build_sandbox

    var_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        for stale in ("hub.duckdb", "hub.duckdb.wal", "dlt", "sandbox"):
            p = var_dir / stale
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    started = time.perf_counter()
    sb = build_sandbox(var_dir / "sandbox", people=people, seed=seed, finance_url=finance_url, country=country)
    if defects:
        from sandbox.defects import inject_defects

        inject_defects(sb.root, country=sb.country)
    generate_seconds = time.perf_counter() - started
    with ExitStack() as stack:
        yield start_simulators(stack, sb, var_dir, warehouse_url=warehouse_url, with_demarches=with_demarches,
                               generate_seconds=generate_seconds)


def built_sandbox(root: Path) -> Any:
    """The sandbox `hub demo` built under ``root`` (for `hub sandbox serve`: only the demo opens the sandbox)."""
    from sandbox import open_sandbox

    return open_sandbox(root)


def start_simulators(stack: ExitStack, sb: Any, var_dir: Path, *, warehouse_url: str | None = None,
                     base_port: int = 0, with_demarches: bool = False, generate_seconds: float = 0.0) -> SandboxRun:
    """Start a built sandbox's HTTP simulators (stopped when ``stack`` closes) and write the settings
    pointing at them to var_dir/hub.toml. ``base_port`` 0: free ports; else base_port, +1, +2, +3."""
    from sandbox.demarches import DEFAULT_TOKEN as DEMARCHES_TOKEN
    from sandbox.salesforce import DEFAULT_CLIENT_SECRET
    from sandbox.servicenow import DEFAULT_PASSWORD

    def port(i: int) -> int:
        return base_port + i if base_port else 0

    # The simulators' own credentials: not secrets of any real system; real ones come from the environment.
    os.environ.setdefault(FAMILY_TOKEN_ENV, SANDBOX_TOKEN)
    os.environ.setdefault(SALESFORCE_SECRET_ENV, DEFAULT_CLIENT_SECRET)
    os.environ.setdefault(SERVICENOW_PASSWORD_ENV, DEFAULT_PASSWORD)
    os.environ.setdefault(DEMARCHES_TOKEN_ENV, DEMARCHES_TOKEN)
    portal = stack.enter_context(sb.family_portal(token=os.environ[FAMILY_TOKEN_ENV], port=port(0)))
    org = stack.enter_context(sb.salesforce(client_secret=os.environ[SALESFORCE_SECRET_ENV], port=port(1)))
    desk = stack.enter_context(sb.servicenow(password=os.environ[SERVICENOW_PASSWORD_ENV], port=port(2)))
    # Démarches simplifiées is opt-in: its demandeurs (often only a name and an e-mail) still cost
    # the matching ~4 points of recall at 10k people.
    ds = stack.enter_context(sb.demarches(token=os.environ[DEMARCHES_TOKEN_ENV], port=port(3))) \
        if with_demarches else None
    settings = sandbox_settings(var_dir, sb, portal.url, warehouse_url, salesforce_url=org.url,
                                servicenow_url=desk.url, demarches=ds)
    return SandboxRun(settings, sb, portal, generate_seconds, salesforce=org, servicenow=desk, demarches=ds)


def accuracy(settings: Settings, sandbox_root: Path) -> dict[str, Any]:
    """Pairwise precision / recall of the published citizen links against the sandbox's truth."""
    from matching.evaluate import pairwise_scores
    from sandbox import load_truth
    from warehouse.engine import Warehouse

    with Warehouse(settings.warehouse_url) as wh:
        links = wh.arrow("SELECT record_key, citizen_id FROM golden.citizen_link")
    truth = load_truth(sandbox_root)
    return pairwise_scores(links, truth)


def demo(var_dir: Path, people: int, seed: int = 42, *, warehouse_url: str | None = None,
         progress: Progress | None = None, with_demarches: bool = False, country: str = "FR") -> DemoResult:
    """Generate a commune (``country`` "FR") or a Brussels population ("BE"), run its silos, run the
    whole job on them and score it."""
    country = country.upper()
    if country not in COUNTRY_LABELS:
        raise ValueError(f"country must be one of {', '.join(COUNTRY_LABELS)}, not {country!r}")
    say = progress or (lambda step, msg: None)
    mode = "" if country == "FR" else f" ({COUNTRY_LABELS[country]})"
    say("sandbox", f"generating {people:,} people{mode} and their silos")
    # the demo's silos carry a few real-world defects, to show what the hub does with them
    with running_sandbox(var_dir, people, seed, warehouse_url=warehouse_url, with_demarches=with_demarches,
                         defects=True, country=country) as sr:
        say("sandbox", f"{country} sandbox built in {sr.generate_seconds:.1f} s; family portal, Salesforce, "
                       "ServiceNow" + (", Démarches simplifiées" if sr.demarches else "") + " simulators running")
        report = run(sr.settings, progress=progress)
    scores = accuracy(sr.settings, sr.sandbox.root)
    return DemoResult(settings=sr.settings, report=report, generate_seconds=sr.generate_seconds, accuracy=scores,
                      sandbox_counts=dict(sr.sandbox.counts), country=country)


# ------------------------------------------------------------------------------------------ the agent desk
DESK_PORT = 8000  # `hub serve`'s default; the demo's local identity provider listens on the next port
DESK_CLIENT_ID = "hub-bureau-des-agents-demo"
DESK_CLIENT_SECRET = "secret-du-fournisseur-local"  # the local provider's own: not a secret of any real system


def desk_hint(port: int = DESK_PORT) -> list[str]:
    """What `hub demo` says about the agent desk: the command that starts it, its URL and a demo agent
    per role and service (sandbox/desk_agents.toml), to pick on the local provider's page."""
    from sandbox.oidc_provider import load_demo_agents

    lines = [f"Bureau des agents : `hub serve --demo`, puis http://localhost:{port}/ — la connexion passe par un "
             f"fournisseur d'identité local (port {port + 1}) qui joue ProConnect ; choisissez un agent :"]
    for a in load_demo_agents().values():
        if a.desk:
            lines.append(f"  {a.given_name} {a.usual_name} ({a.email}) — {a.description}, rôle {a.desk['role']}")
    return lines


@contextmanager
def desk_sign_in(var_dir: Path, desk_url: str, *, port: int = 0) -> Iterator[Any]:
    """Sign-in for `hub serve --demo`: the local OpenID Connect provider (sandbox.oidc_provider,
    playing ProConnect) on 127.0.0.1:``port`` with the desk at ``desk_url`` registered, and the hub's
    agents file for its demo agents written to var_dir/desk_agents.toml; yields the desk's
    ``OIDCConfig``. The provider stops when the block ends."""
    from hub.desk.auth import OIDCConfig
    from sandbox.oidc_provider import ClientRegistration, OIDCProvider, hub_agents_toml, load_demo_agents

    agents = load_demo_agents()
    path = var_dir / "desk_agents.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(hub_agents_toml(agents.values()), encoding="utf-8")
    client = ClientRegistration(DESK_CLIENT_ID, DESK_CLIENT_SECRET, (f"{desk_url}/auth/callback",),
                                (f"{desk_url}/deconnexion/retour",))
    with OIDCProvider(agents, [client], port=port) as provider:
        yield OIDCConfig(issuer=provider.issuer, client_id=DESK_CLIENT_ID, client_secret=DESK_CLIENT_SECRET,
                         redirect_base=desk_url, agents_file=path)
