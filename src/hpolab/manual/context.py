"""A manual run in progress (what the training steps share) and its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpolab.layout import Layout, RunFolder
from hpolab.manual.spec import RunSpec
from hpolab.progress import Reporter

if TYPE_CHECKING:
    from hpolab.data import Dataset
    from hpolab.tracking import TrialRun


@dataclass
class RunContext:
    """A run in progress: what it trains, where it writes and where it stands."""

    spec: RunSpec
    data: Dataset
    folder: RunFolder
    layout: Layout
    reporter: Reporter
    hp: dict[str, Any]  # training settings: config defaults overridden by params
    checkpoint: Path | None = None  # the epoch checkpoint a resume continues from
    initial_epoch: int = 0  # epochs done before this process started
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds_before: float = 0.0  # training time of the epochs before a stop
    tracking: TrialRun | None = None  # the MLflow run; None without MLflow

    @property
    def run_name(self) -> str:
        return self.folder.name

    @property
    def metric(self) -> str:
        """The validation metric of early stopping and the best model."""
        return self.spec.cfg.study.metric

    @property
    def direction(self) -> str:
        """``minimize`` or ``maximize``, as the study config resolves it for the metric."""
        return self.spec.cfg.study.resolved_direction

    @property
    def total_epochs(self) -> int:
        return int(self.hp["epochs"])

    @property
    def metric_values(self) -> list[float]:
        """The metric of every epoch so far."""
        return self.history.get(self.metric, [])

    def best_value(self) -> float | None:
        """The best finite metric value so far (``None`` before any)."""
        finite = [v for v in self.metric_values if v == v]  # NaN != NaN
        if not finite:
            return None
        return min(finite) if self.direction == "minimize" else max(finite)


@dataclass
class RunResult:
    """Where a finished run's files are and what it scored."""

    run_name: str
    run_dir: Path
    final_model: Path
    model_info: dict[str, Any]
    report: Path | None
    report_pages: int
    resumed_from_epoch: int = 0
