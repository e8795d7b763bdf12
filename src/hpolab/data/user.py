"""Data of the user's own: a loader named ``module:function``, or arrays and DataFrames
handed over from Python.

A loader returns ``(X, y)`` arrays, a ``{"X": ..., "y": ...}`` mapping, or a pandas
DataFrame holding the target column (``data.target``). Python callers register in-memory
data under a ``memory:<name>`` source (:func:`register_memory`); it lives as long as the
process, so worker processes of a pool cannot read it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hpolab.errors import DataError

# (X, raw labels, feature names, the task a built-in dataset states), as sources return.
RawData = tuple[np.ndarray, np.ndarray, list[str], str | None]

_MEMORY: dict[str, Any] = {}


def register_memory(name: str, data: Any) -> str:
    """Keep ``data`` (arrays, a mapping of them, a DataFrame) as source ``memory:<name>``."""
    _MEMORY[name] = data
    return f"memory:{name}"


def memory_data(source: str) -> Any:
    """What :func:`register_memory` kept for ``source``."""
    name = source.removeprefix("memory:")
    if name not in _MEMORY:
        raise DataError(
            f"data.source: {source!r} is in-memory data of another process; pass the data "
            "again (hpolab.run_study(..., data=...)) or use a file or a loader"
        )
    return _MEMORY[name]


def call_loader(field: str, loader: Callable[..., Any], options: Mapping[str, Any]) -> Any:
    """Call the user's loader with ``data.options`` as keyword arguments."""
    try:
        return loader(**options)
    except DataError:
        raise
    except Exception as exc:  # the user's code: any error is the loader's
        raise DataError(f"{field}: the loader raised {type(exc).__name__}: {exc}") from None


def to_raw(
    field: str, data: Any, target: str | None, part_column: str | None = None
) -> tuple[RawData, np.ndarray | None]:
    """``data`` as (X, y, names, None), and each row's part if ``part_column`` is given."""
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        return _from_frame(field, data, target, part_column)
    if part_column is not None:
        raise DataError(
            f"data.split_column: {part_column!r} needs a table (CSV or DataFrame), not arrays"
        )
    if isinstance(data, Mapping):
        if "X" not in data or "y" not in data:
            raise DataError(f"{field}: a mapping of data needs keys 'X' and 'y'")
        X, y = data["X"], data["y"]
    elif isinstance(data, tuple) and len(data) == 2:
        X, y = data
    else:
        raise DataError(
            f"{field}: got {type(data).__name__}; give (X, y) arrays, "
            "{'X': X, 'y': y}, or a DataFrame with the target column"
        )
    return _arrays(field, X, y), None


def _arrays(field: str, X: Any, y: Any) -> RawData:
    try:
        X = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{field}: X is not numeric; encode the features as numbers") from None
    y = np.asarray(y)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim < 2 or len(X) == 0:
        raise DataError(f"{field}: X has no samples (shape {X.shape})")
    if y.ndim != 1 or len(y) != len(X):
        raise DataError(f"{field}: y must have one value per row of X ({len(X)}), not {y.shape}")
    if not np.all(np.isfinite(X)):
        raise DataError(f"{field}: X has missing or infinite values")
    if y.dtype.kind == "O":
        y = y.astype(str)
    names = [f"x{i}" for i in range(X.shape[1])] if X.ndim == 2 else []
    return X, y, names, None


def _from_frame(
    field: str, frame: Any, target: str | None, part_column: str | None
) -> tuple[RawData, np.ndarray | None]:
    columns = [str(c) for c in frame.columns]
    if target is None:
        raise DataError(f"data.target: required for a DataFrame; columns: {', '.join(columns)}")
    missing = [c for c in (target, part_column) if c is not None and c not in columns]
    if missing:
        raise DataError(
            f"data.{'target' if missing[0] == target else 'split_column'}: column "
            f"{missing[0]!r} not found; columns: {', '.join(columns)}"
        )
    features = [c for c in columns if c not in (target, part_column)]
    if not features:
        raise DataError(f"{field}: no feature columns besides {target!r}")
    try:
        X = frame[features].to_numpy(dtype=np.float32)
    except (TypeError, ValueError):
        bad = next(c for c in features if frame[c].dtype.kind not in "biuf")
        raise DataError(
            f"{field}: column {bad!r} is not numeric; encode it as numbers or drop it"
        ) from None
    y = frame[target].to_numpy()
    if not np.all(np.isfinite(X)):
        raise DataError(f"{field}: the features have missing or infinite values")
    if y.dtype.kind == "O":
        y = y.astype(str)
    parts = None if part_column is None else frame[part_column].astype(str).to_numpy()
    return (X, y, features, None), parts
