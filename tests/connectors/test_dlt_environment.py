"""Every hub process runs dlt without telemetry: no pipeline run is reported outside the authority."""

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


def test_a_pipeline_run_after_importing_connectors_starts_no_telemetry(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RUNTIME__DLTHUB_TELEMETRY",
                                                             "PROVIDERS__ENABLE_AIRFLOW_SECRETS")}
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    started, endpoint = out.stdout.split()[-2:]
    assert started == "True"  # dlt did initialise its telemetry machinery for the run...
    assert endpoint == "None"  # ...but no tracker endpoint: nothing is sent
