"""Every hub process runs dlt without telemetry (no pipeline run is reported outside the authority)
and without leaving copies of the loaded rows on disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# A fresh interpreter with none of the variables set: importing the hub's connectors must be enough.
_PROBE = """
import connectors
import dlt
import pyarrow as pa
from dlt.common.runtime import anon_tracker, telemetry

p = dlt.pipeline(pipeline_name="probe", destination=dlt.destinations.duckdb("probe.duckdb"),
                 dataset_name="raw_probe", pipelines_dir="pipelines")
p.run(dlt.resource(pa.table({"id": [1]}), name="t"), loader_file_format="parquet")
print(telemetry.is_telemetry_started(), anon_tracker._ANON_TRACKER_ENDPOINT)
"""


_BARE_ENV = {k: v for k, v in os.environ.items()
             if k not in ("RUNTIME__DLTHUB_TELEMETRY", "PROVIDERS__ENABLE_AIRFLOW_SECRETS",
                          "LOAD__DELETE_COMPLETED_JOBS")}


def test_a_pipeline_run_after_importing_connectors_starts_no_telemetry(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=_BARE_ENV, capture_output=True,
                         text=True, timeout=300, check=True)
    started, endpoint = out.stdout.split()[-2:]
    assert started == "True"  # dlt did initialise its telemetry machinery for the run...
    assert endpoint == "None"  # ...but no tracker endpoint: nothing is sent


def test_a_loaded_package_keeps_no_copy_of_the_rows(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=_BARE_ENV, capture_output=True, text=True,
                   timeout=300, check=True)
    loaded = tmp_path / "pipelines" / "probe" / "load" / "loaded"
    assert [p.name for p in loaded.iterdir()]  # the package is recorded as loaded...
    assert not [p for p in loaded.rglob("*") if p.suffix in (".parquet", ".jsonl", ".csv", ".gz")]  # ...its rows gone
