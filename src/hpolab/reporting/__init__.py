"""Results files and summaries, parameter importance, plots and reports.

Names are loaded on first use: ``hpolab best`` reads one helper of
:mod:`~hpolab.reporting.summary` and must not pay for Optuna (imported by ``results``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "ModelTypeSummary": "summary",
    "study_markdown": "summary",
    "param_importance": "results",
    "write_combined_results": "results",
    "write_results": "results",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
