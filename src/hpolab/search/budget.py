"""The budget of a study: which trials use it up (shared by the search and ``status``)."""

from __future__ import annotations

from collections.abc import Container
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpolab.config import StopEarlySection

# By name: the catalog passes Optuna's trials or the SQLite reader's (same state names).
_COUNTED = ("COMPLETE", "PRUNED", "RUNNING")
_FINISHED = ("COMPLETE", "PRUNED")


class TrialsRead:
    """A study's trials read once, for several questions: each question put to the study
    reads its storage again (milliseconds apiece). ``trials``: a read to reuse."""

    def __init__(self, study: Any, trials: list[Any] | None = None) -> None:
        self.study_name = study.study_name
        self.direction = study.direction
        self._trials = study.get_trials(deepcopy=False) if trials is None else trials

    def get_trials(self, deepcopy: bool = False, states: Container[Any] | None = None) -> list[Any]:
        """As ``Study.get_trials``, from the read."""
        return [t for t in self._trials if states is None or t.state in states]

    def trial(self, trial_id: int) -> Any | None:
        """The trial of storage id ``trial_id`` in the read (None: not in it)."""
        return next((t for t in self._trials if t._trial_id == trial_id), None)

    @property
    def best_value(self) -> float:
        """As ``Study.best_value``: ValueError while no trial is complete."""
        values = [t.value for t in self._trials if t.state.name == "COMPLETE"]
        values = [v for v in values if v is not None]
        if not values:
            raise ValueError("no trial is complete yet")
        return max(values) if self.direction.name == "MAXIMIZE" else min(values)


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


# The study attribute that records why a search ended before its budget.
STOPPED_EARLY = "stopped_early"


def stopped_early(study: Any) -> str | None:
    """Why the search of ``study`` ended before its budget (``study.stop_early``), if it did."""
    return study.user_attrs.get(STOPPED_EARLY)


def stagnation(study: Any, direction: str, rule: StopEarlySection) -> str | None:
    """The reason to end the search, once ``rule.patience`` finished trials in a row
    (complete or pruned, in trial order) have not improved the best value by more than
    ``rule.min_delta``; None while it may still improve.

    A rule of our own rather than Optuna's terminator (deprecated since Optuna 4.9, and it
    counts complete trials only: with pruning, half the trials would not count).
    """
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.name in _FINISHED]
    if len(finished) < rule.min_trials:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    best, best_at = None, -1
    for i, t in enumerate(sorted(finished, key=lambda t: t.number)):
        if t.state.name != "COMPLETE":
            continue
        if best is None or sign * (t.value - best.value) > rule.min_delta:
            best, best_at = t, i
    since = len(finished) - 1 - best_at
    if best is None or since < rule.patience:
        return None
    if rule.min_delta > 0:
        return (
            f"no gain above min_delta {rule.min_delta:g} over trial {best.number}'s "
            f"{best.value:.6g} in the last {since} finished trials (patience {rule.patience})"
        )
    return (
        f"no new best in the last {since} finished trials (patience {rule.patience}); "
        f"best {best.value:.6g} at trial {best.number}"
    )
