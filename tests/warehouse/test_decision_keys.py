"""A decision names records the warehouse holds: an unknown record key is refused with a message
naming it, nothing is stored (it would stay in force and never apply). On both engines, and
through `hub decide must-link`."""

from __future__ import annotations

import pyarrow as pa
import pytest
from click.testing import CliRunner

from hub.cli import main
from schemas.contract import PERSON_RECORD, arrow_schema
from warehouse import decisions as store
from warehouse.engine import Warehouse

KNOWN = ("finance:tiers/1", "family:responsable/2", "associations:dirigeant/3")


def _records(wh: Warehouse) -> None:
    wh.write(PERSON_RECORD, pa.Table.from_pylist(
        [{"record_key": k, "source_system": k.split(":")[0], "source_id": k.split(":")[1], "role": "usager",
          "certification_level": 0} for k in KNOWN], schema=arrow_schema(PERSON_RECORD)))


@pytest.mark.parametrize("kind", ["must_link", "cannot_link"])
def test_a_pair_decision_on_an_unknown_record_is_refused(warehouse_url, kind):
    with Warehouse(warehouse_url) as wh:
        _records(wh)
        with pytest.raises(store.DecisionError, match=r"no record finance:tiers/99 in the warehouse"):
            store.record_decision(wh, kind, record_keys=("finance:tiers/99", KNOWN[1]), decided_by="a", reason="r")
        assert store.decisions(wh) == []
        # known keys are accepted
        store.record_decision(wh, kind, record_keys=KNOWN[:2], decided_by="a", reason="r")
        assert len(store.decisions(wh)) == 1


def test_both_unknown_keys_are_named_and_an_empty_warehouse_knows_none(warehouse_url):
    with Warehouse(warehouse_url) as wh:
        with pytest.raises(store.DecisionError, match=r"no record x:1, y:2 in the warehouse"):
            store.record_decision(wh, "must_link", record_keys=("x:1", "y:2"), decided_by="a", reason="r")


def test_hub_decide_must_link_refuses_an_unknown_key(tmp_path):
    url = f"duckdb:///{tmp_path / 'hub.duckdb'}"
    with Warehouse(url) as wh:
        _records(wh)
    config = tmp_path / "hub.toml"
    config.write_text(f'[hub]\nvar_dir = "{tmp_path}"\n\n[warehouse]\nurl = "{url}"\n', encoding="utf-8")
    runner = CliRunner()
    bad = runner.invoke(main, ["decide", "must-link", KNOWN[0], "finance:tiers/1O", "--reason", "même personne",
                               "--config", str(config)])
    assert bad.exit_code == 1
    assert "refused" in bad.output and "no record finance:tiers/1O" in " ".join(bad.output.split())
    good = runner.invoke(main, ["decide", "must-link", KNOWN[0], KNOWN[2], "--reason", "même personne",
                                "--config", str(config)])
    assert good.exit_code == 0, good.output
    with Warehouse(url) as wh:
        assert [(d["record_key_l"], d["record_key_r"]) for d in store.decisions(wh)] == [
            tuple(sorted((KNOWN[0], KNOWN[2])))]
