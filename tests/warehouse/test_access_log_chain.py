"""The access log as CNIL deliberation 2021-122 asks: every row chained, an edit detected (DuckDB and
PostgreSQL), UPDATE / DELETE refused on PostgreSQL, the retention purge re-anchors the chain."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from tests.logged import log_query
from warehouse import access_log
from warehouse.access_log import BrokenChain, Entry, append, purge_before, verify
from warehouse.engine import Warehouse

HUB = str(Path(sys.executable).parent / "hub")


def _entries(n: int, at: datetime | None = None) -> list[Entry]:
    return [Entry(reader=f"agent{i % 3}", citizen_id=f"C{i:04d}", purpose="accueil et orientation des usagers",
                  operation=("read", "export", "update")[i % 3], fields=("citizen.email",),
                  recipient="la personne concernée" if i % 3 == 1 else None, at=at) for i in range(n)]


def test_chain_verifies_and_an_edited_row_is_named(warehouse_url):
    with Warehouse(warehouse_url) as wh:
        append(wh, _entries(5))
        append(wh, _entries(3))
        assert verify(wh) == 8
        with access_log.opened(wh) as lw:  # the log's store: its own file on DuckDB
            if lw.kind == "postgres":  # the trigger stands in the way: edit as the owner would, trigger off
                lw.execute("ALTER TABLE ops.access_log DISABLE TRIGGER access_log_append_only")
            lw.execute("UPDATE ops.access_log SET purpose = 'autre chose' WHERE seq = 4")
        with pytest.raises(BrokenChain) as e:
            verify(wh)
        assert e.value.seq == 4 and "edited" in str(e.value)


def test_a_removed_row_breaks_the_chain_at_the_next_one(tmp_path):
    with Warehouse(f"duckdb:///{tmp_path / 'hub.duckdb'}") as wh:
        append(wh, _entries(4))
        log_query(wh, "execute", "DELETE FROM ops.access_log WHERE seq = 2")
        with pytest.raises(BrokenChain) as e:
            verify(wh)
        assert e.value.seq == 3


def test_postgres_refuses_update_and_delete_of_the_log(postgres_url):
    import psycopg

    with Warehouse(postgres_url) as wh:
        append(wh, _entries(2))
        for sql in ("UPDATE ops.access_log SET reader = 'x'", "DELETE FROM ops.access_log",
                    "TRUNCATE ops.access_log"):
            with pytest.raises(psycopg.Error, match="append-only"):
                wh.execute(sql)
        assert verify(wh) == 2


def test_purge_removes_old_rows_and_the_chain_still_verifies(warehouse_url):
    old = datetime.now(UTC) - timedelta(days=400)
    with Warehouse(warehouse_url) as wh:
        append(wh, _entries(4, at=old))
        append(wh, _entries(3))
        assert purge_before(wh, datetime.now(UTC) - timedelta(days=365), dry_run=True) == 4
        assert purge_before(wh, datetime.now(UTC) - timedelta(days=365)) == 4
        assert log_query(wh, "scalar", "SELECT count(*) FROM ops.access_log") == 3
        assert verify(wh) == 3
        append(wh, _entries(1))
        assert verify(wh) == 4
        # an anchor edited to hide a purge is detected
        with access_log.opened(wh) as lw:
            if lw.kind == "postgres":
                lw.execute("ALTER TABLE ops.access_log DISABLE TRIGGER access_log_append_only")
            lw.execute("UPDATE ops.access_log_anchor SET purged_rows = 1")
        with pytest.raises(BrokenChain, match="anchor"):
            verify(wh)


def test_verify_log_command_exits_non_zero_naming_the_row(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    url = f"duckdb:///{var / 'hub.duckdb'}"
    config = var / "hub.toml"
    config.write_text(f'[hub]\nvar_dir = "{var}"\n\n[warehouse]\nurl = "{url}"\n', encoding="utf-8")
    with Warehouse(url) as wh:
        append(wh, _entries(3))
    ok = subprocess.run([HUB, "gdpr", "verify-log", "--config", str(config)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "3 row(s), hash chain intact" in ok.stdout
    with Warehouse(url) as wh:
        log_query(wh, "execute", "UPDATE ops.access_log SET citizen_id = 'C9999' WHERE seq = 2")
    bad = subprocess.run([HUB, "gdpr", "verify-log", "--config", str(config)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "seq 2" in bad.stderr


def test_a_log_written_before_the_chain_is_chained_once(warehouse_url):
    with Warehouse(warehouse_url) as wh:
        wh.execute("CREATE SCHEMA ops")
        wh.execute("CREATE TABLE ops.access_log (read_at TIMESTAMPTZ NOT NULL, reader TEXT NOT NULL, "
                   "purpose TEXT NOT NULL, channel TEXT NOT NULL, citizen_id TEXT NOT NULL, fields TEXT NOT NULL)")
        for i in range(3):
            wh.execute("INSERT INTO ops.access_log VALUES (:t, 'agent', 'accueil', 'cli', :c, '[]')",
                       {"t": datetime(2026, 1, 1 + i, tzinfo=UTC), "c": f"C{i}"})
        append(wh, _entries(2))
        assert verify(wh) == 5
        # on DuckDB the older log, kept in the warehouse, was chained there and moved to the log's own file
        chained = log_query(wh, "rows", "SELECT citizen_id FROM ops.access_log ORDER BY seq")
        assert [r[0] for r in chained][:3] == ["C0", "C1", "C2"]


def test_an_identity_decision_and_its_revocation_are_logged_as_updates(warehouse_url):
    from schemas.contract import PERSON_RECORD, arrow_schema
    from warehouse.decisions import record_decision, revoke_decision

    with Warehouse(warehouse_url) as wh:
        # a decision names records the warehouse holds
        keys = ("finance:tiers/1", "family:responsable/2")
        wh.write(PERSON_RECORD, pa.Table.from_pylist(
            [{"record_key": k, "source_system": k.split(":")[0], "source_id": k.split(":")[1], "role": "usager",
              "certification_level": 0} for k in keys], schema=arrow_schema(PERSON_RECORD)))
        did = record_decision(wh, "must_link", decided_by="agent.a", reason="même personne (pièce vue)",
                              record_keys=("finance:tiers/1", "family:responsable/2"), citizen_id="C1")
        revoke_decision(wh, did, revoked_by="agent.b", reason="erreur")
        rows = log_query(wh, "rows", "SELECT reader, citizen_id, operation, fields FROM ops.access_log ORDER BY seq")
        assert verify(wh) == 2
    assert [(r[0], r[1], r[2]) for r in rows] == [("agent.a", "C1", "update"), ("agent.b", "C1", "update")]
    assert "même personne" not in str(rows)


def test_desk_columns_join_an_older_log_and_enter_the_chain_where_filled(warehouse_url):
    with Warehouse(warehouse_url) as wh:
        # a log as it was before the desk's collectivite / service columns: chained rows without them
        wh.execute("CREATE SCHEMA ops")
        wh.execute("CREATE TABLE ops.access_log (read_at TIMESTAMPTZ NOT NULL, reader TEXT NOT NULL, "
                   "purpose TEXT NOT NULL, channel TEXT NOT NULL, citizen_id TEXT NOT NULL, fields TEXT NOT NULL, "
                   "operation TEXT, recipient TEXT, seq BIGINT, prev_hash TEXT, row_hash TEXT)")
        from warehouse.access_log import GENESIS, row_hash

        prev = GENESIS
        for i in range(2):
            row = {"seq": i + 1, "read_at": datetime(2026, 1, 1 + i, tzinfo=UTC), "reader": "agent",
                   "purpose": "accueil", "channel": "cli", "citizen_id": f"C{i}", "fields": "[]",
                   "operation": "read", "recipient": None}
            h = row_hash(prev, row)
            wh.execute("INSERT INTO ops.access_log VALUES (:read_at, :reader, :purpose, :channel, :citizen_id, "
                       ":fields, :operation, :recipient, :seq, :p, :h)", {**row, "p": prev, "h": h})
            prev = h
        append(wh, [Entry(reader="marie@mairie.fr", citizen_id="C9", purpose="accueil", channel="api",
                          collectivite="commune-a", service="accueil-usager", fields=("given_names",))])
        assert verify(wh) == 3
        assert log_query(wh, "rows", "SELECT collectivite, service FROM ops.access_log ORDER BY seq") == [
            (None, None), (None, None), ("commune-a", "accueil-usager")]
        with access_log.opened(wh) as lw:
            if lw.kind == "postgres":
                lw.execute("ALTER TABLE ops.access_log DISABLE TRIGGER access_log_append_only")
            lw.execute("UPDATE ops.access_log SET service = 'facturation' WHERE seq = 3")
        with pytest.raises(BrokenChain) as e:
            verify(wh)
        assert e.value.seq == 3


def test_postgres_log_made_on_first_append_is_indexed_by_seq_and_citizen(postgres_url):
    """A warehouse not built by the migrations (which create them: 0006): the log the first append
    creates gets the same indexes, so an append's look at the chain's end is not a scan of the log."""
    with Warehouse(postgres_url) as wh:
        append(wh, _entries(50))
        names = {r[0] for r in wh.rows("SELECT indexname FROM pg_indexes WHERE schemaname = 'ops' "
                                       "AND tablename = 'access_log'")}
        assert {"ix_access_log_seq", "ix_access_log_citizen_id"} <= names
        wh.execute("SET enable_seqscan = off")  # 50 rows: show the plan the index allows at any size
        plan = "\n".join(r[0] for r in wh.rows(
            "EXPLAIN SELECT seq, row_hash FROM ops.access_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1"))
        assert "ix_access_log_seq" in plan


def test_an_append_of_thousands_of_rows_is_written_whole_and_chained(warehouse_url):
    """One append (an export listing many citizens) larger than one INSERT may carry."""
    with Warehouse(warehouse_url) as wh:
        append(wh, _entries(6000))  # 78,000 values: past one PostgreSQL statement
        assert log_query(wh, "scalar", "SELECT count(DISTINCT seq) FROM ops.access_log") == 6000
        assert verify(wh) == 6000
