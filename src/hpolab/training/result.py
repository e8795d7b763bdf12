"""Plain data every training front-end shares: the result of a fit and the epoch-hook type.

Kept apart from :mod:`hpolab.training.fit` so the scikit-learn path
(:mod:`hpolab.training.baselines`) and the Keras path share them without importing
each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hpolab.data.dataset import Dataset

EpochHook = Callable[[int, dict[str, float]], bool | None]
"""``hook(epoch, logs) -> bool``: called after each epoch (1-based) with every metric;
returning ``True`` stops training (the pruner uses this)."""

NAN_LOSS_MESSAGE = "the training loss became NaN or infinite; lower the learning rate"


@dataclass
class TrainResult:
    """What one training run produced, as plain data."""

    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int  # 1-based
    best_value: float
    monitor: str
    seconds: float
    stopped_by_hook: bool = False
    best_metrics: dict[str, float] = field(default_factory=dict)


def fit_targets(data: Dataset, y: np.ndarray) -> np.ndarray:
    """Targets as the model is fit on them: regression targets standardized."""
    if data.target_scaler is None:
        return y
    return data.target_scaler.transform(np.asarray(y, dtype=np.float64)[:, None]).reshape(-1)
