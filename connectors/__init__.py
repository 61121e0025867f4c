"""One package per source system kind: a dlt source and the mapping of its fields to the contract.

Importing this package sets the dlt settings every process running a hub pipeline needs (before
dlt first reads its configuration):

* no usage telemetry: dlt reports each pipeline run to dltHub by default; an authority's data hub
  calls no one outside its network;
* no lookup of every dlt config key in Airflow Variables (on whenever Airflow is installed, ~10 s
  per process): connectors get their secrets as arguments from the hub's settings;
* no copy of the loaded rows left on disk: dlt keeps each load package's files (the source rows,
  personal data) under the pipelines directory once loaded, unless told to delete them; the
  warehouse holds the data, and an erasure there must not leave copies behind.
"""

import os

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")
os.environ.setdefault("LOAD__DELETE_COMPLETED_JOBS", "true")
