"""Raw data sources: built-in datasets, CSV and NPZ files.

Each loader returns ``(X, y, feature_names, default_task)`` with ``y`` as given in the
file (labels may be strings); encoding, splitting and scaling happen in ``dataset``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hpolab.errors import DataError

RawData = tuple[np.ndarray, np.ndarray, list[str], str | None]


def make_leak_dataset(
    n_samples: int = 1000,
    timesteps: int = 128,
    channels: int = 3,
    leak_fraction: float = 0.5,
    noise: float = 1.0,
    seed: int = 7,
) -> RawData:
    """Synthetic vibration windows from a pipe with or without a leak.

    Every window holds machinery hum (two harmonics at random phase) and broadband noise
    on each channel. A leak adds a narrow-band hiss around a frequency that drifts from
    window to window, strongest on the channel nearest the leak and weaker on the others,
    so the classes overlap at low leak amplitude and the task is not trivial. Generated
    deterministically from ``seed``; nothing is downloaded.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(timesteps) / timesteps
    y = (rng.random(n_samples) < leak_fraction).astype(np.int64)
    X = np.empty((n_samples, timesteps, channels), dtype=np.float32)
    for i in range(n_samples):
        hum_freq = rng.uniform(3.0, 6.0)
        window = np.empty((timesteps, channels))
        for c in range(channels):
            phase = rng.uniform(0, 2 * math.pi)
            hum = np.sin(2 * math.pi * hum_freq * t + phase) + 0.5 * np.sin(
                4 * math.pi * hum_freq * t + phase
            )
            window[:, c] = hum * rng.uniform(0.5, 1.5) + noise * rng.normal(size=timesteps)
        if y[i]:
            nearest = rng.integers(channels)
            leak_freq = rng.uniform(20.0, 40.0)
            amplitude = rng.uniform(0.4, 1.4)
            envelope = 1.0 + 0.3 * np.sin(2 * math.pi * rng.uniform(0.5, 2.0) * t)
            for c in range(channels):
                attenuation = 1.0 if c == nearest else rng.uniform(0.2, 0.5)
                hiss = np.sin(2 * math.pi * leak_freq * t + rng.uniform(0, 2 * math.pi))
                window[:, c] += amplitude * attenuation * envelope * hiss
        X[i] = window
    names = [f"ch{c}" for c in range(channels)]
    labels = np.where(y == 1, "leak", "no_leak")
    return X, labels, names, "classification"


def _sklearn_loader(name: str) -> Callable[..., RawData]:
    def load(**options: Any) -> RawData:
        from sklearn import datasets

        if options:
            raise DataError(f"data.options: built-in dataset {name!r} takes no options")
        bunch = getattr(datasets, f"load_{name}")()
        task = "regression" if name == "diabetes" else "classification"
        names = [str(n) for n in getattr(bunch, "feature_names", [])] or [
            f"x{i}" for i in range(bunch.data.shape[1])
        ]
        return bunch.data.astype(np.float32), bunch.target, names, task

    return load


BUILTIN_DATASETS: dict[str, Callable[..., RawData]] = {
    "leak": make_leak_dataset,
    "digits": _sklearn_loader("digits"),
    "breast_cancer": _sklearn_loader("breast_cancer"),
    "diabetes": _sklearn_loader("diabetes"),
}


def load_table(
    field: str,
    source: str,
    target: str | None,
    options: dict[str, Any],
    code_path: str | None = None,
    part_column: str | None = None,
) -> tuple[RawData, np.ndarray | None]:
    """Load ``source`` as :func:`load_source` does, also from a ``module:function`` loader
    or in-memory data, and each row's part when ``part_column`` names a column."""
    from hpolab.data.user import call_loader, memory_data, to_raw
    from hpolab.user_code import import_function, is_function_path

    if source.startswith("memory:"):
        return to_raw(field, memory_data(source), target, part_column)
    if is_function_path(source) and not Path(source).expanduser().exists():
        loader = import_function(field, source, code_path)
        return to_raw(field, call_loader(field, loader, options), target, part_column)
    if part_column is not None:
        if not source.lower().endswith(".csv"):
            raise DataError(
                f"data.split_column: needs a CSV file, a DataFrame or a loader returning one, "
                f"not {source!r}"
            )
        return _load_csv(Path(source).expanduser(), target, part_column, field)
    try:
        return load_source(source, target, options), None
    except DataError as exc:
        if field == "data.source":
            raise
        raise DataError(str(exc).replace("data.source", field, 1)) from None


def load_source(source: str, target: str | None, options: dict[str, Any]) -> RawData:
    """Load ``source`` (``builtin:<name>``, a ``.csv`` or a ``.npz`` path)."""
    if source.startswith("builtin:"):
        name = source.removeprefix("builtin:")
        if name not in BUILTIN_DATASETS:
            raise DataError(
                f"data.source: unknown built-in dataset {name!r}; available: "
                + ", ".join(f"builtin:{n}" for n in BUILTIN_DATASETS)
            )
        try:
            return BUILTIN_DATASETS[name](**options)
        except TypeError as exc:
            raise DataError(f"data.options: {exc}") from None
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(
            f"data.source: file {source!r} does not exist; give a .csv or .npz path or "
            f"builtin:<name> ({', '.join(BUILTIN_DATASETS)})"
        )
    if options:
        raise DataError("data.options: only built-in datasets take options")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _load_csv(path, target)[0]
    if suffix == ".npz":
        return _load_npz(path, target)
    raise DataError(f"data.source: {path.name!r} is neither .csv nor .npz")


def _load_csv(
    path: Path, target: str | None, part_column: str | None = None, field: str = "data.source"
) -> tuple[RawData, np.ndarray | None]:
    """A CSV's features, target and names; the ``part_column`` apart, as text."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError:
        raise DataError(f"data.source: {path.name} is not UTF-8 text") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"data.source: {path.name} is empty")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise DataError(f"data.source: {path.name} has a header but no data rows")
    if target is None:
        raise DataError(
            f"data.target: required for CSV files; columns of {path.name}: {', '.join(header)}"
        )
    if target not in header:
        raise DataError(
            f"data.target: column {target!r} not found in {path.name}; columns: "
            + ", ".join(header)
        )
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(
                f"data.source: {path.name} line {number} has {len(row)} fields, "
                f"the header has {len(header)}"
            )
    if part_column is not None and part_column not in header:
        raise DataError(
            f"data.split_column: column {part_column!r} not found in {path.name}; columns: "
            + ", ".join(header)
        )
    t_index = header.index(target)
    p_index = header.index(part_column) if part_column is not None else -1
    feature_idx = [i for i in range(len(header)) if i not in (t_index, p_index)]
    if not feature_idx:
        raise DataError(f"data.source: {path.name} has no feature columns besides {target!r}")
    X = np.empty((len(body), len(feature_idx)), dtype=np.float32)
    for j, col in enumerate(feature_idx):
        for r, row in enumerate(body):
            cell = row[col].strip()
            try:
                X[r, j] = float(cell)
            except ValueError:
                raise DataError(
                    f"data.source: column {header[col]!r} of {path.name} is not numeric "
                    f"(line {r + 2}: {cell!r}); encode it as numbers or drop the column"
                ) from None
    if not np.all(np.isfinite(X)):
        bad = header[feature_idx[int(np.argwhere(~np.isfinite(X))[0][1])]]
        raise DataError(
            f"data.source: column {bad!r} of {path.name} has missing or infinite values"
        )
    labels = np.array([row[t_index].strip() for row in body])
    if np.any(labels == ""):
        raise DataError(f"data.target: column {target!r} of {path.name} has empty values")
    parts = None if p_index < 0 else np.array([row[p_index] for row in body])
    return (X, _numeric_if_possible(labels), [header[i] for i in feature_idx], None), parts


def _numeric_if_possible(labels: np.ndarray) -> np.ndarray:
    try:
        values = labels.astype(np.float64)
    except ValueError:
        return labels
    if np.all(values == np.round(values)):
        return values.astype(np.int64)
    return values


def _load_npz(path: Path, target: str | None) -> RawData:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"data.source: cannot read {path.name}: {exc}") from None
    keys = list(archive.keys())
    if not keys:
        raise DataError(f"data.source: {path.name} holds no arrays")
    target = target or "y"
    if target not in keys:
        raise DataError(
            f"data.target: array {target!r} not found in {path.name}; arrays: {', '.join(keys)}"
        )
    y = archive[target]
    if "X" in keys:
        X = archive["X"]
        names = [f"x{i}" for i in range(int(np.prod(X.shape[1:])))] if X.ndim == 2 else []
    else:
        cols = [k for k in keys if k != target]
        X = np.column_stack([archive[k] for k in cols]) if cols else np.empty((len(y), 0))
        names = cols
    if X.ndim < 2 or X.shape[0] == 0 or np.prod(X.shape[1:]) == 0:
        raise DataError(f"data.source: {path.name} has no samples or no features")
    if X.shape[0] != len(y):
        raise DataError(f"data.source: {path.name} has {X.shape[0]} samples but {len(y)} targets")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"data.source: features in {path.name} are not numeric ({X.dtype})")
    if not np.all(np.isfinite(X)):
        raise DataError(f"data.source: features in {path.name} have missing or infinite values")
    if y.dtype.kind in "US":
        y = y.astype(str)
    return X.astype(np.float32), y, names, None
