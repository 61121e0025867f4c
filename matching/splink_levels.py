"""A comparison level Splink's library lacks, written the way the library writes its own.

Splink's level creators (:mod:`splink.comparison_level_library`) produce their SQL for the dialect
of the linker that uses them (DuckDB, Spark…), from the dialect's own function names and identifier
quoting: one definition, no SQL text to translate. The library compares a column with the same
column of the other record (``JaroWinklerLevel``), or one column with another by equality
(``ColumnsReversedLevel``); :class:`ColumnsReversedJaroWinklerLevel` is the two together.

Imported by :func:`matching.model.comparison_creators` only (Splink is imported on first use).
"""

from __future__ import annotations

from splink import ColumnExpression
from splink.internals.comparison_level_creator import ComparisonLevelCreator
from splink.internals.dialects import SplinkDialect


class ColumnsReversedJaroWinklerLevel(ComparisonLevelCreator):
    """``jaro_winkler(col_1_l, col_2_r) >= threshold``: one record's ``col_1`` against the other
    record's ``col_2`` (a prénom written in the name column), with the Jaro-Winkler function of the
    linker's dialect (DuckDB ``jaro_winkler_similarity``, the ``jaro_winkler`` of Splink's Spark jar)."""

    def __init__(self, col_name_1: str | ColumnExpression, col_name_2: str | ColumnExpression, threshold: float):
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
        self.col_expression_1 = ColumnExpression.instantiate_if_str(col_name_1)
        self.col_expression_2 = ColumnExpression.instantiate_if_str(col_name_2)
        self.threshold = threshold

    def create_sql(self, sql_dialect: SplinkDialect) -> str:
        self.col_expression_1.sql_dialect = sql_dialect
        self.col_expression_2.sql_dialect = sql_dialect
        jw = sql_dialect.jaro_winkler_function_name
        return f"{jw}({self.col_expression_1.name_l}, {self.col_expression_2.name_r}) >= {self.threshold}"

    def create_label_for_charts(self) -> str:
        return (f"Jaro-Winkler similarity of {self.col_expression_1.label} and the other record's "
                f"{self.col_expression_2.label} >= {self.threshold}")
