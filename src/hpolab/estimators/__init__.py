"""Cached grid-search estimators for notebooks and scripts.

``fit`` runs a grid search once, saves the best model and its artifacts, and on the next
call with the same data and grid loads them instead of training::

    from hpolab.estimators import Autoencoder
    ae = Autoencoder(verbose=1, cache_prefix="ae_v1")
    ae.fit(X_train, X_val)   # grid search, saves models/cached/ae_v1_*
    ae.fit(X_train, X_val)   # loads, trains nothing

Names are imported on first use, so ``hpolab.estimators.artifacts`` (used by the
``hpolab cache`` command) does not pay for importing Keras.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Autoencoder": "hpolab.estimators.autoencoder",
    "CacheMismatchError": "hpolab.errors",
    "CacheStatus": "hpolab.estimators.artifacts",
    "CacheWarning": "hpolab.estimators.base",
    "CachedEstimator": "hpolab.estimators.base",
    "KerasEstimator": "hpolab.estimators.supervised",
    "ModelArtifacts": "hpolab.estimators.artifacts",
    "ResidualRegressor": "hpolab.estimators.supervised",
    "load_fit_config": "hpolab.estimators.fit_config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hpolab.estimators' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
