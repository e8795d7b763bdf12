"""Which rows train, validate and test: a random split by default, or the user's own.

A user's split comes from separate sources (``data.validation`` / ``data.test``: files or
loaders with the same columns) or from a column naming each row's part
(``data.split_column``: ``train``, ``validation`` or ``test``). A part neither gives is
carved at random from the training rows by ``val_size`` / ``test_size``. The parts are
part of the data's fingerprint, so a changed split refuses to resume a study.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.model_selection import train_test_split

from hpolab.errors import DataError

if TYPE_CHECKING:
    from hpolab.config import DataSection

PARTS = ("train", "validation", "test")
# Rows a part is carved from when the user's split does not give it.
UNDECIDED = ""


def check_parts(parts: np.ndarray, column: str) -> np.ndarray:
    """The values of a split column, checked (``val`` and ``valid`` read as validation)."""
    aliases = {"val": "validation", "valid": "validation", "training": "train"}
    cleaned = np.array([aliases.get(p.strip().lower(), p.strip().lower()) for p in parts])
    unknown = sorted(set(cleaned) - set(PARTS))
    if unknown:
        raise DataError(
            f"data.split_column: column {column!r} has {unknown[0]!r}; each row's part must "
            "be train, validation or test"
        )
    if not np.any(cleaned == "train"):
        raise DataError(f"data.split_column: no row of column {column!r} is marked train")
    return cleaned


def split_indices(
    parts: np.ndarray, y: np.ndarray, task: str, cfg: DataSection
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation / test row indices of a user's split: rows marked with a part
    keep it; missing parts are carved from the undecided (or else the training) rows,
    stratified for classification when possible."""
    parts = np.asarray(parts, dtype=object).copy()
    pool_name = UNDECIDED if np.any(parts == UNDECIDED) else "train"
    carve = [p for p in ("test", "validation") if not np.any(parts == p)]
    sizes = {"test": cfg.test_size, "validation": cfg.val_size}
    share = 1.0  # of the pool still undecided, as a fraction of the whole pool
    for part in carve:
        pool = np.flatnonzero(parts == pool_name)
        fraction = sizes[part] / share
        if not 0 < fraction < 1:
            raise DataError(
                f"data.val_size/test_size: {sizes[part]} of the training rows leaves nothing "
                "to train on"
            )
        taken = _take(pool, y, task, fraction, cfg.seed, part)
        parts[taken] = part
        share -= sizes[part]
    parts[parts == UNDECIDED] = "train"
    train, val, test = (np.flatnonzero(parts == p) for p in PARTS)
    for name, rows in zip(("train", "validation", "test"), (train, val, test), strict=True):
        if len(rows) == 0:
            raise DataError(f"data: the {name} part has no rows")
    return train, val, test


def _take(
    pool: np.ndarray, y: np.ndarray, task: str, fraction: float, seed: int, part: str
) -> np.ndarray:
    labels = y[pool]
    balanced = task == "classification" and len(pool) and np.bincount(labels).min() >= 3
    stratify = labels if balanced else None
    try:
        _, taken = train_test_split(pool, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise DataError(
            f"data.val_size/test_size: cannot carve the {part} rows from {len(pool)}: {exc}"
        ) from None
    return taken


def parts_digest(parts: np.ndarray | None) -> str:
    """Text of a user's split for the data fingerprint (empty for the random split)."""
    if parts is None:
        return ""
    import hashlib

    joined = "\n".join(str(p) for p in parts).encode()
    return "|parts:" + hashlib.sha256(joined).hexdigest()[:16]
