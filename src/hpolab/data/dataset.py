"""Split, encode and scale raw data into a :class:`Dataset`.

Scaling statistics come from the training split only and travel with the final model
(see :meth:`Scaler.to_dict`), so the model sees the same transform in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from hpolab.config import PREPROCESSING_KEYS, DataSection
from hpolab.data.fingerprint import fingerprint_arrays
from hpolab.data.signals import SpectrogramCache, SpectrogramSpec, make_windows
from hpolab.data.sources import load_table
from hpolab.data.splits import UNDECIDED, check_parts, parts_digest, split_indices
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
    def fit(cls, X: np.ndarray, keep_axes: int = 1) -> Scaler:
        """Statistics over samples and every axis but the last ``keep_axes``.

        Spectrograms keep two, (bins, channels): each frequency bin of each channel is
        standardized on its own, as log-magnitudes differ by orders between bins.
        """
        axes = tuple(range(X.ndim - keep_axes))
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
    # Rebuilds the dataset with other preprocessing settings (searched frame_length, ...).
    prepare: Callable[[dict[str, Any]], Dataset] | None = field(
        default=None, repr=False, compare=False
    )

    def for_params(self, params: dict[str, Any]) -> Dataset:
        """This dataset, or its variant for the preprocessing settings in ``params``."""
        overrides = {k: params[k] for k in PREPROCESSING_KEYS if k in params}
        if not overrides or self.prepare is None:
            return self
        return self.prepare(overrides)

    def tf_dataset(self, split: str = "train", batch_size: int = 32, shuffle: bool | None = None):
        """``tf.data.Dataset`` of ``(X, y)`` for ``split`` (train / val / test), batched.

        The training split is shuffled unless ``shuffle=False``.
        """
        from hpolab.data.signals import make_tf_dataset

        if split not in ("train", "val", "test"):
            raise DataError(f"split: use train, val or test, not {split!r}")
        X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
        shuffle = split == "train" if shuffle is None else shuffle
        return make_tf_dataset(X, y, batch_size=batch_size, shuffle=shuffle)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.X_train.shape[1:])

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.classes is not None else 1

    def preprocessing(self) -> dict[str, Any]:
        """What a consumer of the final model needs to prepare inputs and read outputs."""
        prep = self.info.get("preprocessing") or {}
        return {
            "task": self.task,
            "input_shape": list(self.input_shape),
            "feature_names": self.feature_names,
            "feature_scaler": self.feature_scaler.to_dict(),
            "target_scaler": self.target_scaler.to_dict() if self.target_scaler else None,
            "classes": self.classes,
            # Windows given to the model are turned into these spectrograms first.
            "spectrogram": prep.get("settings"),
            # The shape of one raw input row (a window before its spectrogram).
            "raw_input_shape": prep.get("raw_input_shape") or list(self.input_shape),
        }

    def summary(self) -> str:
        kind = f"{len(self.classes)} classes" if self.classes is not None else "regression"
        return (
            f"{self.source}: {len(self.X_train)}/{len(self.X_val)}/{len(self.X_test)} "
            f"train/val/test samples, input shape {self.input_shape}, {kind}"
        )


def _load_parts(
    cfg: DataSection, code_path: str | None
) -> tuple[np.ndarray, np.ndarray, list[str], str | None, np.ndarray | None]:
    """The source's rows, then those of ``data.validation`` / ``data.test``, and each row's
    part (None for the random split)."""
    (X, y, names, task), parts = load_table(
        "data.source", cfg.source, cfg.target, dict(cfg.options), code_path, cfg.split_column
    )
    if parts is not None:
        parts = check_parts(parts, str(cfg.split_column))
    extra = [(k, getattr(cfg, k)) for k in ("validation", "test") if getattr(cfg, k)]
    if not extra:
        return X, y, names, task, parts
    Xs, ys, marks = [X], [y], [np.full(len(X), UNDECIDED, dtype=object)]
    for part, source in extra:
        (Xp, yp, names_p, _), _ = load_table(f"data.{part}", source, cfg.target, {}, code_path)
        if Xp.shape[1:] != X.shape[1:] or (names and names_p and names_p != names):
            raise DataError(
                f"data.{part}: {source!r} has columns {names_p or list(Xp.shape[1:])}, the "
                f"source has {names or list(X.shape[1:])}; they must be the same"
            )
        Xs.append(Xp.astype(X.dtype))
        ys.append(yp)
        marks.append(np.full(len(Xp), part, dtype=object))
    y_all = np.concatenate([np.asarray(v) for v in ys])
    return np.concatenate(Xs), y_all, names, task, np.concatenate(marks)


def load_dataset(
    cfg: DataSection, cache_dir: Path | None = None, code_path: str | None = None
) -> Dataset:
    """Load, window, encode, split, preprocess and scale the data described by ``cfg``.

    ``cache_dir`` keeps spectrograms on disk (``data.cache``); without it they are
    computed once per process. ``code_path``: where a ``module:function`` loader is found.

    Raises:
        DataError: naming the field (``data.source``, ``data.target``, ...) and the fix.
    """
    X, y_raw, names, builtin_task, parts = _load_parts(cfg, code_path)
    if cfg.windows is not None:
        if parts is not None:
            raise DataError("data.windows: windows cannot keep a split of rows; drop one")
        X, y_raw, names = _windows(X, y_raw, names, cfg)
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
    if parts is None:
        train, val, test = _split(len(X), y, task, cfg)
    else:
        train, val, test = split_indices(parts, y, task, cfg)
    base = Dataset(
        X_train=X[train],
        y_train=y[train],
        X_val=X[val],
        y_val=y[val],
        X_test=X[test],
        y_test=y[test],
        task=task,
        feature_scaler=Scaler.fit(X[train]),
        target_scaler=Scaler.fit(y[train][:, None]) if task == "regression" else None,
        classes=classes,
        feature_names=names,
        fingerprint=_fingerprint(X, y, cfg, parts),
        source=cfg.source,
        target=cfg.target,
        info={"n_samples": len(X), "task_inferred": cfg.task is None and builtin_task is None},
    )
    if cfg.spectrogram is None:
        return _scaled(base, base.X_train, base.X_val, base.X_test)
    preparer = _SpectrogramPreparer(
        base, X, (train, val, test), cfg, SpectrogramCache(cache_dir if cfg.cache else None)
    )
    return preparer({})


class _SpectrogramPreparer:
    """Builds (and remembers) the spectrogram dataset of each STFT setting."""

    def __init__(
        self,
        base: Dataset,
        X: np.ndarray,
        splits: tuple[np.ndarray, np.ndarray, np.ndarray],
        cfg: DataSection,
        cache: SpectrogramCache,
    ) -> None:
        assert cfg.spectrogram is not None
        self.base, self.X, self.splits, self.cache = base, X, splits, cache
        self.defaults = cfg.spectrogram.model_dump()
        self.x_digest = fingerprint_arrays(X, length=64)
        self.variants: dict[SpectrogramSpec, Dataset] = {}

    def __call__(self, overrides: dict[str, Any]) -> Dataset:
        start = time.perf_counter()
        spec = SpectrogramSpec(**{**self.defaults, **overrides})
        known = self.variants.get(spec)
        if known is not None:
            known.info["preprocessing"] = {
                **known.info["preprocessing"],
                "source": "memory",
                "seconds": round(time.perf_counter() - start, 6),
            }
            return known
        done = self.cache.get(self.X, spec, self.x_digest)
        train, val, test = self.splits
        data = _scaled(self.base, done.array[train], done.array[val], done.array[test], keep_axes=2)
        data.feature_names = [f"{name}_stft" for name in self.base.feature_names]
        data.info = {
            **self.base.info,
            "preprocessing": {
                "kind": "spectrogram",
                "settings": spec.__dict__.copy(),
                "raw_input_shape": [int(d) for d in self.X.shape[1:]],
                "source": done.source,
                "seconds": round(done.seconds, 4),
                "cache_key": done.key,
            },
        }
        data.prepare = self
        self.variants[spec] = data
        return data


def _windows(
    X: np.ndarray, y_raw: np.ndarray, names: list[str], cfg: DataSection
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    assert cfg.windows is not None
    if X.ndim != 2:
        raise DataError(
            f"data.windows: the source is already windowed (shape {X.shape}); drop data.windows"
        )
    win = cfg.windows
    Xw, yw = make_windows(X, y_raw, win.length, win.hop, win.label)
    return Xw, yw, names


def _scaled(
    base: Dataset, X_train: np.ndarray, X_val: np.ndarray, X_test: np.ndarray, keep_axes: int = 1
) -> Dataset:
    """A copy of ``base`` with these inputs standardized on the training split."""
    scaler = Scaler.fit(X_train, keep_axes)
    return Dataset(
        **{
            **base.__dict__,
            "X_train": scaler.transform(X_train),
            "X_val": scaler.transform(X_val),
            "X_test": scaler.transform(X_test),
            "feature_scaler": scaler,
            "info": dict(base.info),
        }
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


def _split(
    n: int, y: np.ndarray, task: str, cfg: DataSection
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation / test indices (stratified for classification when possible)."""
    index = np.arange(n)
    stratify = y if task == "classification" and np.bincount(y).min() >= 3 else None
    try:
        rest, test = train_test_split(
            index, test_size=cfg.test_size, random_state=cfg.seed, stratify=stratify
        )
        val_fraction = cfg.val_size / (1.0 - cfg.test_size)
        stratify_rest = y[rest] if stratify is not None else None
        train, val = train_test_split(
            rest, test_size=val_fraction, random_state=cfg.seed, stratify=stratify_rest
        )
    except ValueError as exc:
        raise DataError(f"data.val_size/test_size: cannot split {n} samples: {exc}") from None
    return train, val, test


def _fingerprint(
    X: np.ndarray, y: np.ndarray, cfg: DataSection, parts: np.ndarray | None = None
) -> str:
    # Windowing and spectrogram settings change what the model sees; searched overrides
    # do not (they are the trial's params). A user's split is part of the data.
    extra = f"{cfg.val_size}|{cfg.test_size}|{cfg.seed}" + "".join(
        section.model_dump_json() for section in (cfg.windows, cfg.spectrogram) if section
    )
    extra += parts_digest(parts)
    return fingerprint_arrays(X, y, extra=extra)
