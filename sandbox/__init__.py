"""A synthetic commune with ground truth, and the simulated silos seeded from it.

``build_sandbox(root, people, seed)`` writes everything under ``root``:

- ``finance.sqlite`` (or the database at ``finance_url``): tables tiers, factures, paiements;
- ``family/<collection>.json``: the family portal's data, served by ``Sandbox.family_portal()``;
- ``associations/*.csv``: the office-tool export;
- ``truth.parquet``: record_key → person_id (and household_id) for every person record emitted.

The formats are documented in docs/silos.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sandbox.associations_export import association_tables, write_associations
from sandbox.family_portal import DEFAULT_TOKEN, FamilyPortal, family_collections, serve_family_portal, write_family
from sandbox.finance_db import finance_tables, write_finance
from sandbox.observations import Observations, observe, person_records, to_person_records
from sandbox.population import Population, generate_population

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TOKEN",
    "FamilyPortal",
    "Observations",
    "Population",
    "Sandbox",
    "build_sandbox",
    "generate_population",
    "load_truth",
    "observe",
    "person_records",
    "serve_family_portal",
    "to_person_records",
    "truth_table",
]

TRUTH_FILE = "truth.parquet"


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
    # person records per silo: finance, family, associations
    person_records: dict[str, int] = field(default_factory=dict)
    # rows per silo table / collection / file, e.g. "finance.tiers", "family.enfants", "associations.dirigeants.csv"
    rows: dict[str, int] = field(default_factory=dict)

    def family_portal(self, token: str = DEFAULT_TOKEN) -> FamilyPortal:
        """A started family portal serving this sandbox's data (stop it, or use ``with``)."""
        return serve_family_portal(self.family_dir, token=token)


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
    return pa.concat_tables(parts)


def build_sandbox(root: Path, people: int, seed: int = 42, finance_url: str | None = None) -> Sandbox:
    """Generate the commune and write the three silos and the truth under ``root``."""
    started = time.perf_counter()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    pop = generate_population(people, seed)
    obs = observe(pop, seed)
    url = finance_url or f"sqlite:///{(root / 'finance.sqlite').resolve()}"
    rows: dict[str, int] = {}
    rows.update({f"finance.{k}": v for k, v in write_finance(url, finance_tables(obs)).items()})
    family_dir = root / "family"
    rows.update({f"family.{k}": v for k, v in write_family(family_dir, family_collections(obs)).items()})
    assoc_dir = root / "associations"
    rows.update({f"associations.{k}": v for k, v in write_associations(assoc_dir, association_tables(obs)).items()})
    truth = truth_table(obs)
    truth_path = root / TRUTH_FILE
    pq.write_table(truth, truth_path)
    records = {
        "finance": obs.finance_tiers.num_rows,
        "family": obs.family_responsables.num_rows + obs.family_enfants.num_rows,
        "associations": obs.dirigeants.num_rows,
    }
    log.info("sandbox: %d people, %d person records built in %.1f s", people, truth.num_rows,
             time.perf_counter() - started)
    return Sandbox(root=root, people=people, seed=seed, finance_url=url, family_dir=family_dir,
                   associations_dir=assoc_dir, truth_path=truth_path, person_records=records, rows=rows)


def load_truth(root: Path) -> pa.Table:
    """The ground truth written by :func:`build_sandbox`: record_key, person_id, household_id."""
    return pq.read_table(Path(root) / TRUTH_FILE)


