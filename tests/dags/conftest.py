import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def airflow_env(tmp_path) -> dict[str, str]:
    """Environment for an Airflow subprocess: the repository's airflow.cfg and DAG folder, with a
    throw-away metadata database under tmp_path (Airflow reads its config once per process)."""
    home = tmp_path / "airflow"
    (home / "var" / "airflow").mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    })
    return env
