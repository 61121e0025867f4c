"""One package per source system kind: a dlt source and the mapping of its fields to the contract.

Importing this package sets the dlt settings every process running a hub pipeline needs (before
dlt first reads its configuration):

* no usage telemetry: dlt reports each pipeline run to dltHub by default; an authority's data hub
  calls no one outside its network;
* no lookup of every dlt config key in Airflow Variables (on whenever Airflow is installed, ~10 s
  per process): connectors get their secrets as arguments from the hub's settings.
"""

import os

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")
