"""Warehouse.transaction's opening statement: part of the transaction, sent with BEGIN on
PostgreSQL (one round trip), and a failing one leaves the connection usable."""

from __future__ import annotations

import pytest

from warehouse.engine import Warehouse


def test_the_opening_statement_belongs_to_the_transaction(wh: Warehouse) -> None:
    wh.execute("CREATE TABLE opened (n INTEGER)")
    with wh.transaction(opening=("INSERT INTO opened VALUES (:n)", {"n": 1})):
        assert wh.rows("SELECT n FROM opened") == [(1,)]
        with wh.transaction(opening=("INSERT INTO opened VALUES (:n)", {"n": 2})):  # nested: joins it
            pass
    assert wh.rows("SELECT n FROM opened ORDER BY n") == [(1,), (2,)]
    with pytest.raises(RuntimeError), wh.transaction(opening=("INSERT INTO opened VALUES (:n)", {"n": 3})):
        raise RuntimeError("rolled back with the block")
    assert wh.rows("SELECT n FROM opened ORDER BY n") == [(1,), (2,)]


def test_a_failing_opening_statement_rolls_back_and_the_connection_goes_on(wh: Warehouse) -> None:
    with pytest.raises(Exception, match=r"(?i)no_such_table|does not exist"), \
            wh.transaction(opening=("INSERT INTO no_such_table VALUES (:n)", {"n": 1})):
        pytest.fail("the block must not run")
    assert not wh._in_tx
    with wh.transaction():
        assert wh.scalar("SELECT 41 + 1") == 42


@pytest.mark.parametrize("warehouse_url", ["postgres"], indirect=True)
def test_on_postgresql_begin_and_the_opening_statement_travel_together(wh: Warehouse, monkeypatch) -> None:
    """One pipeline for BEGIN and the opening statement: the server answers both at once."""
    con = wh.connection
    sent: list[tuple[str, bool]] = []
    real = type(con).execute
    monkeypatch.setattr(type(con), "execute", lambda self, query, *a, **k: (
        sent.append((str(query), self._pipeline is not None)), real(self, query, *a, **k))[1])
    with wh.transaction(opening=("SELECT set_config('hub.probe', :v, true)", {"v": "x"})):
        assert wh.scalar("SELECT current_setting('hub.probe', true)") == "x"
    assert wh.scalar("SELECT coalesce(current_setting('hub.probe', true), '')") == ""  # transaction-local
    assert sent[:2] == [("BEGIN", True), ("SELECT set_config('hub.probe', %(v)s, true)", True)], sent
    assert not any(in_pipeline for _, in_pipeline in sent[2:])
