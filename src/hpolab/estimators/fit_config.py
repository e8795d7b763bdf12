"""Grids and single configurations for the cached estimators, kept in YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hpolab.errors import ConfigError

_KEYS = ("param_grid", "model_config")


def load_fit_config(path: str | Path) -> dict[str, Any]:
    """Read ``param_grid:`` or ``model_config:`` from a YAML file, as ``fit()`` keywords.

    Example::

        ae.fit(X_train, X_val, **load_fit_config("configs/cached_autoencoder.yaml"))

    Keys inside the grid are checked by ``fit`` against the estimator's known keys.
    """
    source = Path(path)
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with param_grid or model_config")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key {unknown[0]!r}; use param_grid (a search) or model_config"
        )
    if len([k for k in _KEYS if k in raw]) != 1:
        raise ConfigError(f"{source}: give exactly one of param_grid or model_config")
    key = next(k for k in _KEYS if k in raw)
    if not isinstance(raw[key], dict) or not raw[key]:
        raise ConfigError(f"{source}: {key} must be a non-empty mapping of keys to values")
    return {key: raw[key]}
