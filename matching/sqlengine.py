"""One SQL text for two engines: the golden build's steps run on DuckDB or on Spark SQL.

Citizen ids (:mod:`matching.identity`), survivorship (:mod:`matching.survivorship`) and foyers
(:mod:`matching.households`) generate their SQL once, from their rules, in DuckDB's dialect, and
hand it to an engine:

* :class:`DuckDBEngine` runs it as written, on a connection of :func:`matching.resources.connect`;
* :class:`matching.spark.SparkEngine` runs it on Spark SQL after :func:`to_spark`, which has
  sqlglot (Splink's own SQL translator) write it in Spark's dialect.

An engine knows five things: register an Arrow table under a name, create a temporary table from
a query, run a query into Arrow or into Python rows, close. Query parameters are written ``$name``
(DuckDB binds them; :func:`to_spark` writes them as typed literals: they are dates and times of
ours, never input).
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from matching import resources


class Engine(Protocol):
    """Where the golden build's SQL runs (:class:`DuckDBEngine`, :class:`matching.spark.SparkEngine`)."""

    dialect: str

    def register(self, name: str, table: pa.Table) -> None:
        """Make ``table`` readable as ``name``."""

    def create(self, name: str, sql: str, params: dict[str, Any] | None = None) -> None:
        """A temporary table ``name`` holding the result of ``sql``."""

    def arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """The result of ``sql`` as an Arrow table, in the query's order."""

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """The result of ``sql`` as Python tuples, in the query's order."""

    def close(self) -> None:
        """Release what the engine holds."""


class DuckDBEngine:
    """The SQL as written, on an in-memory DuckDB connection with the job's limits (UTC)."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.con = con if con is not None else resources.connect()
        self.con.execute("SET TimeZone = 'UTC'")

    def register(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def create(self, name: str, sql: str, params: dict[str, Any] | None = None) -> None:
        self.con.execute(f"CREATE TEMP TABLE {name} AS {sql}", params)

    def arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        return self.con.sql(sql, params=params).to_arrow_table()

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.sql(sql, params=params).fetchall()

    def close(self) -> None:
        self.con.close()


# --------------------------------------------------------------------------- DuckDB SQL -> Spark SQL
# Spark's widest integer is 64 bits: survivorship's 128-bit ranking keys become DECIMAL(38, 0)
# (exact up to 10^38 > 2^126), and the bit operations on them the arithmetic they stand for.
_WIDE = exp.DataType.build("DECIMAL(38, 0)")


def _accent_table() -> tuple[str, str]:
    """(from, to) of Spark's ``translate`` for DuckDB's ``strip_accents``: every Latin letter of
    U+00C0..U+024F and U+1E00..U+1EFF that decomposes into a base letter and combining marks."""
    src, dst = [], []
    for cp in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if len(base) == 1 and base != ch:
            src.append(ch)
            dst.append(base)
    return "".join(src), "".join(dst)


_ACCENTS = _accent_table()


def _power_of_two(node: exp.Expression) -> exp.Expression:
    if not (isinstance(node, exp.Literal) and not node.is_string):
        raise ValueError(f"to_spark: a shift by a constant only, not {node.sql()}")
    return exp.cast(exp.Literal.number(2 ** int(node.this)), _WIDE)


def _literal(value: Any) -> exp.Expression:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("to_spark: a timestamp parameter must be timezone-aware")
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("TIMESTAMP"))
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    if isinstance(value, bool) or value is None:
        return exp.Boolean(this=value) if value is not None else exp.Null()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    raise TypeError(f"to_spark: no literal for a parameter of type {type(value).__name__}")


def to_spark(sql: str, params: dict[str, Any] | None = None) -> str:
    """``sql`` (DuckDB's dialect) written for Spark SQL by sqlglot, with what sqlglot leaves to us:

    128-bit integers as ``DECIMAL(38, 0)``, ``x << n`` / ``x >> n`` / ``x & (2^n - 1)`` as
    ``x * 2^n`` / ``x DIV 2^n`` / ``x % 2^n`` (non-negative keys only, as survivorship's are),
    ``strip_accents`` as a ``translate`` of the accented Latin letters, ``$name`` parameters as
    literals. Anything sqlglot cannot write for Spark raises rather than running differently.
    """
    params = params or {}

    def wide(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.DataType) and node.this in (exp.DataType.Type.INT128, exp.DataType.Type.UINT128):
            return _WIDE.copy()
        return node

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.BitwiseLeftShift):
            return exp.Mul(this=exp.cast(node.this, _WIDE), expression=_power_of_two(node.expression))
        if isinstance(node, exp.BitwiseRightShift):
            return exp.IntDiv(this=node.this, expression=_power_of_two(node.expression))
        if isinstance(node, exp.BitwiseAnd):
            mask = node.expression
            n = int(mask.this) + 1 if isinstance(mask, exp.Literal) and not mask.is_string else 0
            if n <= 1 or n & (n - 1):
                raise ValueError(f"to_spark: only a low-bits mask (2^n - 1) is rewritten, not {mask.sql()}")
            return exp.Mod(this=node.this, expression=exp.cast(exp.Literal.number(n), _WIDE))
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "strip_accents":
            return exp.func("translate", *node.expressions, exp.Literal.string(_ACCENTS[0]),
                            exp.Literal.string(_ACCENTS[1]))
        if isinstance(node, exp.Placeholder | exp.Parameter):
            name = str(node.this if isinstance(node.this, str) else node.name)
            if name not in params:
                raise KeyError(f"to_spark: no value for parameter ${name}")
            return _literal(params[name])
        return node

    # a rewritten node's children are not visited again: types first, then the rest
    tree = sqlglot.parse_one(sql, read="duckdb").transform(wide).transform(fix)
    return tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)
