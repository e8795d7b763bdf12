"""Plain data every training front-end shares: the result of a fit and the epoch-hook type.

:class:`MappingResult` lets a result dataclass also be read as a mapping
(``result["mean"]``), as the dict results of scikit-learn style code are.

Kept apart from :mod:`hpolab.training.fit` so the scikit-learn path
(:mod:`hpolab.training.baselines`) and the Keras path share them without importing
each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from hpolab.data.dataset import Dataset

EpochHook = Callable[[int, dict[str, float]], bool | None]
"""``hook(epoch, logs) -> bool``: called after each epoch (1-based) with every metric;
returning ``True`` stops training (the pruner uses this)."""

NAN_LOSS_MESSAGE = "the training loss became NaN or infinite; lower the learning rate"


class MappingResult:
    """Read-only mapping access to a result object: ``result["mean"]`` is ``result.mean``.

    A subclass names its keys in ``mapping_keys`` (fields and properties alike), so code
    written against dict results (``results["best_params"]``, ``dict(results)``) works on
    the typed result unchanged.
    """

    mapping_keys: ClassVar[tuple[str, ...]] = ()

    def __getitem__(self, key: str) -> Any:
        if key not in self.mapping_keys:
            known = ", ".join(self.mapping_keys)
            raise KeyError(f"{type(self).__name__} has no key {key!r}; known keys: {known}")
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.mapping_keys

    def __iter__(self) -> Iterator[str]:
        return iter(self.mapping_keys)

    def __len__(self) -> int:
        return len(self.mapping_keys)

    def keys(self) -> list[str]:
        """The keys, in their declared order."""
        return list(self.mapping_keys)

    def values(self) -> list[Any]:
        """The values, in key order."""
        return [getattr(self, key) for key in self.mapping_keys]

    def items(self) -> list[tuple[str, Any]]:
        """``(key, value)`` pairs, in key order."""
        return [(key, getattr(self, key)) for key in self.mapping_keys]

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is not a key."""
        return getattr(self, key) if key in self.mapping_keys else default


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
