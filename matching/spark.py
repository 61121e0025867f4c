"""Scale-out: the hub's saved model JSON scored by Splink on Spark (the ``spark`` extra, Java 17).

The model is trained on DuckDB (:mod:`matching.model`) and saved as JSON. Splink keeps the DuckDB
SQL of the comparison levels and blocking rules inside that JSON, which Spark cannot run as is
(double-quoted identifiers are strings there; other function names). The comparisons and blocking
rules are Splink creators (comparison-level library, ``block_on``) that Splink writes for the
dialect of the linker using them, so :func:`spark_settings` is the same definitions with the
model's trained parameters (:func:`matching.model.trained_settings`), and the Spark linker writes
their SQL for Spark: no SQL of ours is translated.

:func:`resolve_on_spark` scores the blocked pairs on Spark — the part that grows faster than the
population — and hands the pairs at or above the floor to the hub's own clustering
(:func:`matching.resolve.guarded_edges` and :func:`matching.resolve.cluster`: household guard,
cannot-link repair, human decisions, on DuckDB). It returns the same
:class:`matching.resolve.Resolution` as :func:`matching.resolve.resolve`, with the version of the
model JSON it was given.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from splink import Linker
from splink.backends.spark import SparkAPI, similarity_jar_location

from matching import model as mdl
from matching import resources
from matching.resolve import (
    DEFAULT_THRESHOLD,
    LINK_SCHEMA,
    PAIR_FLOOR,
    PAIR_SCHEMA,
    Resolution,
    clustered,
    ordered_pairs,
    prepare,
    scoring_model,
    store_scored,
)
from matching.sqlengine import to_spark

# Splink names the Spark table after the dataset: it must not be a Spark SQL keyword.
DATASET_NAME = "person_records"


def spark_session(work_dir: str | Path, *, master: str | None = None, cores: int = 2) -> SparkSession:
    """A Spark session ready for Splink: its similarity functions' jar, and a checkpoint directory
    (Splink writes its intermediate tables there) and a warehouse directory in ``work_dir``.

    ``master``: the cluster's master URL (``spark://host:7077``, ``yarn``, ``k8s://…``); default
    ``local[cores]``, this machine. Where a platform builds sessions itself, give it ``spark.jars`` =
    :func:`splink.backends.spark.similarity_jar_location` and a checkpoint directory.
    """
    session = (
        SparkSession.builder.master(master or f"local[{cores}]")
        .appName("citizen-hub-matching")
        .config("spark.jars", similarity_jar_location())
        # Spark's default of 200 shuffle partitions makes every small job pay for 200 tasks
        .config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.default.parallelism", str(cores))
        # the golden build's plans (survivorship's ranking CASEs over every attribute) outgrow the
        # driver's default 1 GB while Spark analyses them (local mode: the driver does the work too)
        .config("spark.driver.memory", "3g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # else Spark creates ./spark-warehouse wherever it is started
        .config("spark.sql.warehouse.dir", str(Path(work_dir, "warehouse").resolve()))
        .getOrCreate()
    )
    session.sparkContext.setCheckpointDir(str(Path(work_dir, "checkpoints").resolve()))
    return session


def spark_settings(model_json: dict[str, Any]) -> Any:
    """The model for a Spark linker: a Splink ``SettingsCreator`` of the hub's definitions with the
    model's trained parameters (:func:`matching.model.trained_settings`); the linker writes its SQL
    in the Spark dialect. Raises ``ValueError`` for a model whose comparisons are not this
    version's definitions (retrain it, or score it on DuckDB)."""
    return mdl.trained_settings(model_json)


def score_on_spark(spark: SparkSession, standardised: pa.Table, model_json: dict[str, Any]) -> DataFrame:
    """Every pair the model's blocking rules make, scored by Splink on Spark.

    ``standardised`` is :func:`matching.resolve.prepare`'s output. Returns a Spark DataFrame: the
    keys (``record_key_l``, ``record_key_r``), ``match_probability``, ``match_weight``, the
    ``gamma_*`` / ``mw_*`` columns the clustering guard and the explanations read, and
    ``model_version`` (of ``model_json``) on every row.
    """
    db_api = SparkAPI(spark_session=spark)
    # a name of its own per call: Splink refuses to register over a table the session holds
    name = f"{DATASET_NAME}_{uuid.uuid4().hex[:8]}"
    model_in = mdl.model_input(standardised)
    records = db_api.register(model_in, dataset_display_name=name)
    linker = Linker(records, spark_settings(scoring_model(model_json)), log_level=None)
    mdl.register_term_frequencies(linker, db_api, model_in, model_json)
    predictions = linker.inference.predict().as_spark_dataframe()
    keep = [c for c in predictions.columns
            if c in ("record_key_l", "record_key_r", "match_probability", "match_weight")
            or c.startswith(("gamma_", "mw_"))]
    return predictions.select(*keep).withColumn("model_version", F.lit(mdl.model_version(model_json)))


def resolve_on_spark(
    spark: SparkSession,
    person_records: pa.Table,
    model_json: dict[str, Any],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    pair_floor: float | None = PAIR_FLOOR,
    must_links: Sequence[tuple[str, str]] = (),
    cannot_links: Sequence[tuple[str, str]] = (),
    locales: dict[str, str] | None = None,
    default_locale: str | None = None,
) -> Resolution:
    """:func:`matching.resolve.resolve` with the pairs scored on Spark, for a trained model.

    Same arguments and result. Only the pairs at or above ``min(pair_floor, threshold)`` (all
    when ``pair_floor`` is None) and the must-linked pairs leave Spark; ``pairs_scored`` counts
    every pair Spark scored.
    """
    version = mdl.model_version(model_json)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    std = prepare(person_records, locales=locales, default_locale=default_locale)
    timings["standardise"] = time.perf_counter() - t0
    if std.num_rows == 0:
        return Resolution(links=LINK_SCHEMA.empty_table(), pairs=PAIR_SCHEMA.empty_table(), model_json=model_json,
                          model_version=version, threshold=threshold, pairs_scored=0, timings=timings)

    t0 = time.perf_counter()
    predictions = score_on_spark(spark, std, model_json)
    pairs_scored = predictions.count()
    if pair_floor is not None:
        keep = F.col("match_probability") >= min(pair_floor, threshold)
        if must_links:
            # a must-link edge keeps its pair's score, however low, as in resolve
            keys = ("record_key_l", "record_key_r")
            pair = F.concat_ws("\t", F.least(*keys), F.greatest(*keys))
            keep = keep | pair.isin([f"{a}\t{b}" for a, b in ordered_pairs(must_links)])
        predictions = predictions.where(keep)
    kept = predictions.toArrow()
    timings["predict"] = time.perf_counter() - t0

    con = resources.connect()
    try:
        con.register("spark_predictions", kept)
        # through Splink's DuckDB API, so that store_scored reads it as it reads a DuckDB prediction
        store_scored(con, [resources.splink_api(con).query_sql("SELECT * FROM spark_predictions")], model_json)
        return clustered(con, std, model_json, threshold=threshold, pair_floor=pair_floor, must_links=must_links,
                         cannot_links=cannot_links, pairs_scored=pairs_scored, timings=timings)
    finally:
        con.close()


class SparkEngine:
    """:class:`matching.sqlengine.Engine` on Spark SQL: the golden build's DuckDB SQL written for
    Spark by :func:`matching.sqlengine.to_spark`.

    Runs in a session of its own (``spark.newSession()``: same cluster, temporary views of its
    own, UTC), so two builds never see each other's tables. A created table is materialised
    (``localCheckpoint``): each step is computed once, as a DuckDB temporary table is, and the
    next step's plan starts from its rows, not from the whole chain of queries before it.
    """

    dialect = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark.newSession()
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        # a checkpoint of a union with a window fails while carrying the plan's constraints over
        # (Spark 4.3: "key not found" in LogicalRDD.rewriteStatsAndConstraints); none is needed
        self.spark.conf.set("spark.sql.constraintPropagation.enabled", "false")
        self._frames: list[DataFrame] = []

    def register(self, name: str, table: pa.Table) -> None:
        frame = self.spark.createDataFrame(table)
        frame.createOrReplaceTempView(name)

    def create(self, name: str, sql: str, params: dict[str, Any] | None = None) -> None:
        frame = self.spark.sql(to_spark(sql, params)).localCheckpoint(eager=True)
        self._frames.append(frame)
        frame.createOrReplaceTempView(name)

    def arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        return self.spark.sql(to_spark(sql, params)).toArrow()

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.spark.sql(to_spark(sql, params)).collect()]

    def close(self) -> None:
        for name in [t.name for t in self.spark.catalog.listTables() if t.isTemporary]:
            self.spark.catalog.dropTempView(name)
        for frame in self._frames:
            frame.unpersist()
        self._frames.clear()
