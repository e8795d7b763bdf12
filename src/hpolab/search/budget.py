"""The budget of a study: which trials use it up (shared by the search and ``status``)."""

from __future__ import annotations

from typing import Any

# By name: the catalog passes Optuna's trials or the SQLite reader's (same state names).
_COUNTED = ("COMPLETE", "PRUNED", "RUNNING")


def counted_trials(study: Any) -> int:
    """Trials that use up the budget: finished, running, or failed on their own.

    A configuration that fails (its loss diverges, its builder raises) records its
    ``error`` and counts; a trial failed because its worker died (killed, host lost) has
    none and does not, re-queued or not: crashes never eat into the budget.
    """
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return sum(
        1
        for t in trials
        if t.state.name in _COUNTED
        or (t.state.name == "FAIL" and t.number not in retried and "error" in t.user_attrs)
    )
