"""The generic top-level names (connectors, warehouse, ...) must be this repository's, not another
installed distribution's: `pip install` of some third-party `schemas` must never shadow ours."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["schemas", "connectors", "matching", "warehouse", "hub", "sandbox"]


@pytest.mark.parametrize("name", PACKAGES)
def test_top_level_package_resolves_to_this_repository(name):
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().parent == REPO / name


def test_packages_resolve_from_another_directory(tmp_path):
    """Imported from elsewhere (as Airflow workers do), the names still point here: the install is real."""
    code = "import sys, importlib; print('\\n'.join(importlib.import_module(n).__file__ for n in sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", code, *PACKAGES], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.split()
    assert [Path(p).resolve().parent for p in out] == [REPO / n for n in PACKAGES]


def test_hub_command_is_installed():
    hub = Path(sys.executable).parent / "hub"
    out = subprocess.run([str(hub), "--help"], check=True, capture_output=True, text=True).stdout
    assert "demo" in out and "citizen" in out
