"""A synthetic commune with ground truth, and the simulated silos seeded from it.

``build_sandbox(root, people, seed)`` writes everything under ``root`` (``country="BE"``: a
Brussels population, see :func:`sandbox.population.generate_population`):

- ``finance.sqlite`` (or the database at ``finance_url``): tables tiers, factures, paiements;
- ``family/<collection>.json``: the family portal's data, served by ``Sandbox.family_portal()``;
- ``associations/*.csv``: the office-tool export;
- ``salesforce/<Object>.json``: the Salesforce org's Account, Contact, Case, served by
  ``Sandbox.salesforce()``;
- ``servicenow/<table>.json``: the ServiceNow instance's sys_user, incident, sys_audit_delete,
  served by ``Sandbox.servicenow()``;
- ``truth.parquet``: record_key → person_id (and household_id) for every person record emitted.

The formats are documented in docs/silos.md.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq

from sandbox.associations_export import association_tables, write_associations
from sandbox.demarches import DemarchesServer, demarches_data, write_demarches
from sandbox.family_portal import DEFAULT_TOKEN, FamilyPortal, family_collections, write_family
from sandbox.finance_db import finance_tables, write_finance
from sandbox.observations import Observations, observe, person_records, to_person_records
from sandbox.population import Population, generate_population
from sandbox.salesforce import SalesforceOrg, salesforce_objects, write_salesforce
from sandbox.servicenow import ServiceNowInstance, servicenow_tables, write_servicenow

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TOKEN",
    "FamilyPortal",
    "Observations",
    "Population",
    "SalesforceOrg",
    "Sandbox",
    "ServiceNowInstance",
    "build_sandbox",
    "generate_population",
    "load_truth",
    "observe",
    "open_sandbox",
    "person_records",
    "serve_family_portal",
    "serve_salesforce",
    "serve_servicenow",
    "to_person_records",
    "truth_table",
]

TRUTH_FILE = "truth.parquet"
MANIFEST_FILE = "sandbox.json"


@dataclass(frozen=True)
class Sandbox:
    """Where a built sandbox lives, and how much each silo holds."""

    root: Path
    people: int
    seed: int
    finance_url: str
    family_dir: Path
    associations_dir: Path
    truth_path: Path
    # person records per silo: finance, family, associations, salesforce, servicenow, demarches
    person_records: dict[str, int] = field(default_factory=dict)
    # rows per silo table / collection / file, e.g. "finance.tiers", "family.enfants", "associations.dirigeants.csv"
    rows: dict[str, int] = field(default_factory=dict)
    country: str = "FR"  # "FR": a commune of the Métropole de Lyon; "BE": the Brussels-Capital region

    @property
    def counts(self) -> dict[str, int]:
        """People in the commune and person records per silo (for reports)."""
        return {"people": self.people, **self.person_records}

    def family_portal(self, token: str = DEFAULT_TOKEN, port: int = 0) -> FamilyPortal:
        """A started family portal serving this sandbox's data on 127.0.0.1 (``port`` 0: any free
        port); stop it, or use it in a ``with`` block."""
        return FamilyPortal(self.family_dir, token=token, port=port).start()

    @property
    def salesforce_dir(self) -> Path:
        return self.root / "salesforce"

    @property
    def servicenow_dir(self) -> Path:
        return self.root / "servicenow"

    def salesforce(self, port: int = 0, **kwargs: Any) -> SalesforceOrg:
        """A started Salesforce org serving this sandbox's Contacts, Accounts and Cases on 127.0.0.1
        (``kwargs``: client_id, client_secret, username, password, batch_size)."""
        return SalesforceOrg(self.salesforce_dir, port=port, **kwargs).start()

    @property
    def demarches_dir(self) -> Path:
        return self.root / "demarches"

    def demarches(self, port: int = 0, **kwargs: Any) -> DemarchesServer:
        """A started Démarches simplifiées GraphQL API serving this sandbox's dossiers on 127.0.0.1
        (``kwargs``: token)."""
        return DemarchesServer(self.demarches_dir, port=port, **kwargs).start()

    def servicenow(self, port: int = 0, **kwargs: Any) -> ServiceNowInstance:
        """A started ServiceNow instance serving this sandbox's users and incidents on 127.0.0.1
        (``kwargs``: username, password, client_id, client_secret)."""
        return ServiceNowInstance(self.servicenow_dir, port=port, **kwargs).start()


def truth_table(obs: Observations) -> pa.Table:
    """record_key → person_id, household_id for every person record of the silos."""
    t = obs.finance_tiers
    fin = pa.table({"record_key": [f"finance:tiers/{i}" for i in t.column("id").to_pylist()],
                    "person_id": t.column("person_id"), "household_id": t.column("household_id")})
    parts = [fin]
    for entity, t in (("responsable", obs.family_responsables), ("enfant", obs.family_enfants)):
        parts.append(pa.table({"record_key": [f"family:{entity}/{i}" for i in t.column("id").to_pylist()],
                               "person_id": t.column("person_id"), "household_id": t.column("household_id")}))
    d = obs.dirigeants
    parts.append(pa.table({
        "record_key": [f"associations:dirigeant/{i}" for i in d.column("id").to_pylist()],
        "person_id": d.column("person_id"),
        "household_id": pa.array([None] * d.num_rows, type=pa.int64()),
    }))
    for prefix, t, key in (("salesforce:contact/", obs.salesforce_contacts, "Id"),
                           ("servicenow:sys_user/", obs.servicenow_users, "sys_id")):
        if t is not None:
            parts.append(pa.table({"record_key": [prefix + i for i in t.column(key).to_pylist()],
                                   "person_id": t.column("person_id"), "household_id": t.column("household_id")}))
    return pa.concat_tables(parts)


def build_sandbox(root: Path, people: int, seed: int = 42, finance_url: str | None = None,
                  country: str = "FR") -> Sandbox:
    """Generate the commune (``country`` "BE": Brussels) and write the six silos and the truth under
    ``root``."""
    started = time.perf_counter()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    pop = generate_population(people, seed, country=country)
    obs = observe(pop, seed)
    url = finance_url or f"sqlite:///{(root / 'finance.sqlite').resolve()}"
    rows: dict[str, int] = {}
    rows.update({f"finance.{k}": v for k, v in write_finance(url, finance_tables(obs)).items()})
    family_dir = root / "family"
    rows.update({f"family.{k}": v for k, v in write_family(family_dir, family_collections(obs)).items()})
    assoc_dir = root / "associations"
    rows.update({f"associations.{k}": v for k, v in write_associations(assoc_dir, association_tables(obs)).items()})
    sf = write_salesforce(root / "salesforce", salesforce_objects(obs))
    rows.update({f"salesforce.{k}": v for k, v in sf.items()})
    sn = write_servicenow(root / "servicenow", servicenow_tables(obs))
    rows.update({f"servicenow.{k}": v for k, v in sn.items()})
    ds = demarches_data(pop, obs)
    rows.update({f"demarches.{k}": v for k, v in write_demarches(root / "demarches", ds).items()})
    truth = truth_table(obs)
    truth = pa.concat_tables([truth, ds.truth.select(truth.column_names).cast(truth.schema)])
    truth_path = root / TRUTH_FILE
    pq.write_table(truth, truth_path)
    records = {
        "finance": obs.finance_tiers.num_rows,
        "family": obs.family_responsables.num_rows + obs.family_enfants.num_rows,
        "associations": obs.dirigeants.num_rows,
        "salesforce": obs.salesforce_contacts.num_rows if obs.salesforce_contacts is not None else 0,
        "servicenow": obs.servicenow_users.num_rows if obs.servicenow_users is not None else 0,
        "demarches": ds.truth.num_rows,
    }
    sb = Sandbox(root=root, people=people, seed=seed, finance_url=url, family_dir=family_dir,
                 associations_dir=assoc_dir, truth_path=truth_path, person_records=records, rows=rows,
                 country=pop.country)
    _write_manifest(sb)
    log.info("sandbox: %d people, %d person records built in %.1f s", people, truth.num_rows,
             time.perf_counter() - started)
    return sb


def _write_manifest(sb: Sandbox) -> None:
    # The finance URL is kept so open_sandbox() can point at the database again; a password in it
    # is not written to disk (open_sandbox then needs finance_url passed again).
    url = sb.finance_url
    parsed = urlsplit(url)
    if parsed.password:
        url = url.replace(f":{parsed.password}@", ":***@", 1)
    manifest = {"people": sb.people, "seed": sb.seed, "finance_url": url,
                "person_records": sb.person_records, "rows": sb.rows}
    if sb.country != "FR":  # a French sandbox's files stay byte for byte what they were
        manifest["country"] = sb.country
    (sb.root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


def open_sandbox(root: Path, finance_url: str | None = None) -> Sandbox:
    """The :class:`Sandbox` that :func:`build_sandbox` wrote under ``root`` (without rebuilding it)."""
    root = Path(root)
    manifest = json.loads((root / MANIFEST_FILE).read_text(encoding="utf-8"))
    return Sandbox(root=root, people=manifest["people"], seed=manifest["seed"],
                   finance_url=finance_url or manifest["finance_url"], family_dir=root / "family",
                   associations_dir=root / "associations", truth_path=root / TRUTH_FILE,
                   person_records=manifest["person_records"], rows=manifest["rows"],
                   country=manifest.get("country", "FR"))


def serve_salesforce(root: Path, port: int = 0, **kwargs: Any) -> SalesforceOrg:
    """A started Salesforce org over the sandbox built under ``root``."""
    return SalesforceOrg(Path(root) / "salesforce", port=port, **kwargs).start()


def serve_servicenow(root: Path, port: int = 0, **kwargs: Any) -> ServiceNowInstance:
    """A started ServiceNow instance over the sandbox built under ``root``."""
    return ServiceNowInstance(Path(root) / "servicenow", port=port, **kwargs).start()


def serve_family_portal(root: Path, token: str = DEFAULT_TOKEN, port: int = 0) -> FamilyPortal:
    """A started family portal over the sandbox built under ``root``."""
    return FamilyPortal(Path(root) / "family", token=token, port=port).start()


def load_truth(root: Path) -> pa.Table:
    """The ground truth written by :func:`build_sandbox`: record_key, person_id, household_id."""
    return pq.read_table(Path(root) / TRUTH_FILE)


