import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# What the DAG files need to parse: two sources, one with its own schedule. Parsing never connects.
PARSE_SETTINGS = """\
[warehouse]
url = "duckdb:///{var}/hub.duckdb"

[hub]
var_dir = "{var}"

[sources.finance]
kind = "finance"
url = "sqlite:///{var}/finance.sqlite"
schedule = "0 2 * * *"

[sources.family]
kind = "family"
base_url = "http://127.0.0.1:9"
token_env = "HUB_FAMILY_TOKEN"

[sources.archives]
kind = "associations"
drop_dir = "{var}/drop"
schedule = "manual"
"""


def make_airflow_env(tmp: Path) -> dict[str, str]:
    """Environment for an Airflow subprocess: the repository's airflow.cfg and DAG folder, with a
    throw-away metadata database under ``tmp`` (Airflow reads its config once per process), and
    hub settings naming three sources (HUB_CONFIG; a test that runs a sandbox points it elsewhere)."""
    home = tmp / "airflow"
    (home / "var" / "airflow").mkdir(parents=True, exist_ok=True)
    settings = tmp / "parse-hub.toml"
    settings.write_text(PARSE_SETTINGS.format(var=tmp / "var"), encoding="utf-8")
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "HUB_CONFIG": str(settings),
    })
    return env


@pytest.fixture
def airflow_env(tmp_path) -> dict[str, str]:
    """See :func:`make_airflow_env`."""
    return make_airflow_env(tmp_path)


@pytest.fixture(scope="module")
def module_airflow_env(tmp_path_factory) -> dict[str, str]:
    """:func:`make_airflow_env` shared by a module's tests."""
    return make_airflow_env(tmp_path_factory.mktemp("airflow-env"))
