"""The budget of a study: which trials use it up (shared by the search and ``status``)."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

_FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def counted_trials(study: optuna.Study) -> int:
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
        if t.state in (*_FINISHED_STATES, TrialState.RUNNING)
        or (t.state == TrialState.FAIL and t.number not in retried and "error" in t.user_attrs)
    )
