"""Split, encode and scale raw data into a :class:`Dataset`.

Scaling statistics come from the training split only and travel with the final model
(see :meth:`Scaler.to_dict`), so the model sees the same transform in production.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from hpolab.config import DataSection
from hpolab.data.sources import load_source
from hpolab.errors import DataError

# Integer targets with at most this many distinct values are treated as classes.
MAX_INFERRED_CLASSES = 20
MIN_SAMPLES = 10


@dataclass
class Scaler:
    """Standardization ``(x - mean) / scale``; per feature (2-D) or per channel (3-D)."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> Scaler:
        axes = tuple(range(X.ndim - 1))
        mean = X.mean(axis=axes)
        scale = X.std(axis=axes)
        # Constant features would divide by zero; leave them centred but unscaled.
        scale = np.where(scale < 1e-12, 1.0, scale)
        return cls(mean.astype(np.float64), scale.astype(np.float64))

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def inverse(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) * self.scale + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scaler:
        return cls(np.asarray(data["mean"], dtype=np.float64), np.asarray(data["scale"]))


@dataclass
class Dataset:
    """Train/validation/test arrays ready for training, plus what is needed to reuse them."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    feature_scaler: Scaler
    target_scaler: Scaler | None
    classes: list[Any] | None
    feature_names: list[str]
    fingerprint: str
    source: str
    target: str | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.X_train.shape[1:])

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.classes is not None else 1

    def preprocessing(self) -> dict[str, Any]:
        """What a consumer of the final model needs to prepare inputs and read outputs."""
        return {
            "task": self.task,
            "input_shape": list(self.input_shape),
            "feature_names": self.feature_names,
            "feature_scaler": self.feature_scaler.to_dict(),
            "target_scaler": self.target_scaler.to_dict() if self.target_scaler else None,
            "classes": self.classes,
        }

    def summary(self) -> str:
        kind = f"{len(self.classes)} classes" if self.classes is not None else "regression"
        return (
            f"{self.source}: {len(self.X_train)}/{len(self.X_val)}/{len(self.X_test)} "
            f"train/val/test samples, input shape {self.input_shape}, {kind}"
        )


def load_dataset(cfg: DataSection) -> Dataset:
    """Load, encode, split and scale the data described by ``cfg``.

    Raises:
        DataError: naming the field (``data.source``, ``data.target``, ...) and the fix.
    """
    X, y_raw, names, builtin_task = load_source(cfg.source, cfg.target, dict(cfg.options))
    if len(X) < MIN_SAMPLES:
        raise DataError(f"data.source: only {len(X)} samples; at least {MIN_SAMPLES} are needed")
    task = cfg.task or builtin_task or infer_task(y_raw)
    classes: list[Any] | None = None
    if task == "classification":
        y, classes = encode_labels(y_raw)
    else:
        try:
            y = np.asarray(y_raw, dtype=np.float64)
        except ValueError:
            raise DataError(
                f"data.task: target {cfg.target or 'y'!r} has non-numeric values, so it cannot "
                "be a regression target; set data.task: classification"
            ) from None
    splits = _split(X, y, task, cfg)
    X_train, X_val, X_test, y_train, y_val, y_test = splits
    feature_scaler = Scaler.fit(X_train)
    target_scaler = Scaler.fit(y_train[:, None]) if task == "regression" else None
    fingerprint = _fingerprint(X, y, cfg)
    return Dataset(
        X_train=feature_scaler.transform(X_train),
        y_train=y_train,
        X_val=feature_scaler.transform(X_val),
        y_val=y_val,
        X_test=feature_scaler.transform(X_test),
        y_test=y_test,
        task=task,
        feature_scaler=feature_scaler,
        target_scaler=target_scaler,
        classes=classes,
        feature_names=names,
        fingerprint=fingerprint,
        source=cfg.source,
        target=cfg.target,
        info={"n_samples": len(X), "task_inferred": cfg.task is None and builtin_task is None},
    )


def infer_task(y: np.ndarray) -> str:
    """``classification`` for labels and few distinct integers, else ``regression``."""
    if y.dtype.kind in "USOb":
        return "classification"
    if y.dtype.kind in "iu" and len(np.unique(y)) <= MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


def encode_labels(y_raw: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """Labels as integer codes 0..k-1, and the sorted classes they stand for."""
    classes, encoded = np.unique(y_raw, return_inverse=True)
    if len(classes) < 2:
        raise DataError(
            f"data.target: only one class ({classes[0]!r}) in the target; classification needs two"
        )
    return encoded.astype(np.int64), [c.item() if hasattr(c, "item") else c for c in classes]


def _split(X: np.ndarray, y: np.ndarray, task: str, cfg: DataSection) -> list[np.ndarray]:
    stratify = y if task == "classification" and np.bincount(y).min() >= 3 else None
    try:
        X_rest, X_test, y_rest, y_test = train_test_split(
            X, y, test_size=cfg.test_size, random_state=cfg.seed, stratify=stratify
        )
        val_fraction = cfg.val_size / (1.0 - cfg.test_size)
        stratify_rest = y_rest if stratify is not None else None
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest, y_rest, test_size=val_fraction, random_state=cfg.seed, stratify=stratify_rest
        )
    except ValueError as exc:
        raise DataError(f"data.val_size/test_size: cannot split {len(X)} samples: {exc}") from None
    return [X_train, X_val, X_test, y_train, y_val, y_test]


def _fingerprint(X: np.ndarray, y: np.ndarray, cfg: DataSection) -> str:
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(X), np.ascontiguousarray(y)):
        digest.update(str(array.shape).encode())
        digest.update(str(array.dtype).encode())
        digest.update(array.tobytes())
    digest.update(f"{cfg.val_size}|{cfg.test_size}|{cfg.seed}".encode())
    return digest.hexdigest()[:16]
