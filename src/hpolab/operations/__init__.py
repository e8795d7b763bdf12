"""Operations on stored studies: list, status, best, trials, fetch, export, retrain, plots,
report, delete, compare. The ``hpolab`` subcommands are thin fronts over these functions.

Every function takes the workspace ``root`` (default ``$HPOLAB_ROOT`` or the current
directory) and an optional ``storage`` URL for studies kept outside it (PostgreSQL).

- :mod:`~hpolab.operations.queries`: read-only queries (list_studies, study_status, best,
  trials, compare);
- :mod:`~hpolab.operations.artifacts`: handing out model files (fetch, export);
- :mod:`~hpolab.operations.actions`: changing a study's files (retrain, plots, report, delete).

None of them imports TensorFlow until it trains, loads or exports a model.
"""

from __future__ import annotations

from hpolab.layout import Root
from hpolab.operations.actions import delete, plots, report, retrain
from hpolab.operations.artifacts import EXPORT_FORMATS, export, fetch
from hpolab.operations.queries import (
    TRIAL_STATES,
    best,
    compare,
    list_studies,
    study_status,
    trials,
)

__all__ = [
    "EXPORT_FORMATS",
    "TRIAL_STATES",
    "Root",
    "best",
    "compare",
    "delete",
    "export",
    "fetch",
    "list_studies",
    "plots",
    "report",
    "retrain",
    "study_status",
    "trials",
]
