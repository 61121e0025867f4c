"""The warehouse: engine (DuckDB or PostgreSQL from one URL), layered models, golden tables, quarantine.

The main functions are re-exported lazily: importing ``warehouse.engine`` stays cheap (the
quality gate pulls in Great Expectations, which takes seconds to import).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Warehouse": "warehouse.engine",
    "build_canonical": "warehouse.staging",
    "StageCount": "warehouse.staging",
    "QualityGate": "warehouse.quality",
    "core_person_records": "warehouse.golden",
    "read_inputs": "warehouse.resolution",
    "publish_release": "warehouse.resolution",
    "search": "warehouse.citizen_view",
    "show": "warehouse.citizen_view",
    "record_source_runs": "warehouse.ops",
    "record_quarantine": "warehouse.ops",
    "reconciliation": "warehouse.ops",
    "quarantine_summary": "warehouse.ops",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'warehouse' has no attribute {name!r}")
