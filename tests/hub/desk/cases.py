"""A small warehouse for the desk's API tests: the Dupont family of tests/warehouse/conftest.py, with
its silos named as the register names them (finance, family, associations) so each service's
processing covers its own silo, resolved by survivorship and published as a run publishes.

Marie (C-MARIE: finance, family, associations) and Jean (C-JEAN: finance, family) head one foyer
with Léa and Hugo; finance bills Marie 45.50 € unpaid (F100) and Jean a paid water bill (F101);
the family portal holds a pending request of Marie (D3) and the children's enrolments; the
associations silo a subsidy request of Marie's association (S1). A retired id, C-ANCIEN, leads to
C-JEAN. Marie's birth date differs between silos (the family portal has 04/12 for 12/04).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from schemas.contract import CANONICAL_TABLES, CITIZEN_ALIAS, CITIZEN_LINK, arrow_schema, arrow_type
from warehouse.engine import Warehouse

ALIAS = ("C-ANCIEN", "C-JEAN")
CITIZENS = {
    "C-MARIE": ["finance:T1", "family:P1", "associations:R1"],
    "C-JEAN": ["finance:T2", "family:P2"],
    "C-LEA": ["family:E1"],
    "C-HUGO": ["family:E2"],
}


def _registered(sql: str) -> str:
    """The test family's associations silo under the register's name for it."""
    return sql.replace("'assoc:'", "'associations:'").replace("'assoc'", "'associations'")


def build_family(url: str) -> None:
    """Load, resolve (by hand: the links above) and publish the family into the warehouse at ``url``."""
    from matching.survivorship import survive
    from tests.golden import publish_hand_made
    from tests.warehouse.conftest import RAW_SQL, family_models
    from warehouse.golden import core_person_records
    from warehouse.search import build_index
    from warehouse.snapshot import publish

    with Warehouse(url) as wh:
        for sql in RAW_SQL:
            wh.execute(sql)
        # a birth date the silos disagree on, day and month swapped: shown beside the birth date
        wh.execute("UPDATE raw_family.members SET naissance = DATE '1982-12-04' WHERE id = 'P1'")
        tables = {t.name: t for t in CANONICAL_TABLES}
        for name, entries in family_models().items():
            for i, (_, sql) in enumerate(entries):
                wh.write(tables[name], wh.arrow(_registered(sql)), replace=i == 0)
        keys = [r for rs in CITIZENS.values() for r in rs]
        links = pa.table({"record_key": keys, "citizen_id": [c for c, rs in CITIZENS.items() for _ in rs],
                          "match_probability": [0.97 if len(rs) > 1 else 1.0 for rs in CITIZENS.values() for _ in rs],
                          "model_version": ["m"] * len(keys)})
        for col in CITIZEN_LINK.columns:
            if col.name not in links.column_names and col.name != "run_id":
                links = links.append_column(col.name, pa.nulls(links.num_rows, arrow_type(col.type)))
        now = datetime(2026, 6, 1, tzinfo=UTC)
        golden = survive(core_person_records(wh), links, now=now)
        publish_hand_made(wh, "res-1", links=links, citizens=golden,
                          run_row={"model_version": "m", "records": len(keys), "pairs_scored": 0,
                                   "citizens": golden.num_rows, "threshold": 0.9, "finished_at": now})
        # the link of each merged record to the first one, as Splink's clustering leaves it
        for rs in CITIZENS.values():
            for r in rs[1:]:
                wh.execute("UPDATE golden.citizen_link SET linked_via = :v, match_weight = 12.5, "
                           "explanation = :e WHERE record_key = :r",
                           {"v": rs[0], "r": r, "e": '{"first_name": 9.1, "birth_date": 3.4}'})
        wh.write(CITIZEN_ALIAS, pa.Table.from_pylist(
            [{"old_id": ALIAS[0], "new_id": ALIAS[1], "retired_at": now, "run_id": "res-0"}],
            schema=arrow_schema(CITIZEN_ALIAS)))
        build_index(wh)
    publish(url)  # DuckDB: the snapshot the desk reads (nothing to do on PostgreSQL)

