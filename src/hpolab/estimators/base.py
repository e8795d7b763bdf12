"""``CachedEstimator``: a Keras estimator whose grid search runs once and then loads from disk.

``fit`` looks for a complete, intact cache made from the same data and the same grid; if
there is one it loads it and trains nothing. Otherwise it searches the grid (every point an
Optuna trial, see :mod:`hpolab.search.grid`), keeps the weights of the best configuration
(they are saved when found, never retrained) and writes the cache atomically.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal

import keras
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split

from hpolab.config import TRAINING_KEYS, metric_direction
from hpolab.data.dataset import Scaler
from hpolab.data.fingerprint import fingerprint_arrays
from hpolab.errors import CacheMismatchError, ConfigError, DataError, TrialFailed
from hpolab.estimators.artifacts import ModelArtifacts
from hpolab.estimators.values import normalize_value, training_defaults
from hpolab.layout import Layout, check_name, file_sha256
from hpolab.search.grid import GridTrial, grid_points, run_grid_search
from hpolab.training.fit import (
    clear_keras,
    early_stopping,
    fit_arrays,
    make_optimizer,
    seed_everything,
)


class CacheWarning(UserWarning):
    """A cache was found but not used (incomplete, damaged, or made from other inputs)."""


@dataclass
class PreparedData:
    """Arrays as the network sees them, plus what a cache must remember about them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    fingerprint: str = ""
    scalers: dict[str, Scaler] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    # Validation targets in original units, for metrics that must not see scaling.
    y_val_raw: np.ndarray | None = None


def to_json_value(value: Any) -> Any:
    """``value`` with tuples (and numpy scalars) turned into JSON types."""
    if isinstance(value, (tuple, list)):
        return [to_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value


def _has_tuple(value: Any) -> bool:
    if isinstance(value, tuple):
        return True
    return isinstance(value, list) and any(_has_tuple(v) for v in value)


def as_2d_float(X: Any, name: str) -> np.ndarray:
    """``X`` as a finite float32 array with samples on the first axis, else a DataError."""
    try:
        array = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{name}: expected a numeric array, got {type(X).__name__}") from None
    if array.ndim < 2 or len(array) == 0:
        raise DataError(f"{name}: expected shape (n_samples, n_features), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise DataError(f"{name}: contains NaN or infinite values; clean or impute them first")
    return array


class CachedEstimator(BaseEstimator, ABC):
    """Base class: grid search once, then load from ``model_dir`` / ``{cache_prefix}_*``.

    Subclasses set ``DEFAULT_CONFIG`` (every key a configuration may have, with its default)
    and ``DEFAULT_PARAM_GRID`` (what ``fit()`` searches when given neither ``param_grid``
    nor ``model_config``), and implement ``_prepare`` and ``_build``.

    Parameters:
        pretrained_model: a fitted estimator this one builds on (see ``ResidualRegressor``).
        model_dir: folder of the cache files; default ``models/cached/`` under the hpolab
            root (``$HPOLAB_ROOT`` or the current directory).
        cache_prefix: file name prefix of the cache; default the class name in lower case.
        verbose: 0 silent, 1 one line per configuration, 2 also Keras' epoch lines.
        metric: validation metric that picks the best configuration (default ``METRIC``).
        on_mismatch: a cache made from other data or another grid is ``"retrain"``-ed
            with a :class:`CacheWarning`, or ``"error"`` raises :class:`CacheMismatchError`.
        validation_fraction: share of ``X_train`` held out when ``X_val`` is ``None``.
        random_state: seed of weight initialisation, shuffling and the validation split.
    """

    DEFAULT_CONFIG: ClassVar[dict[str, Any]] = {}
    DEFAULT_PARAM_GRID: ClassVar[dict[str, list[Any]]] = {}
    METRIC: ClassVar[str] = "val_loss"
    NEEDS_TARGET: ClassVar[bool] = False

    def __init__(
        self,
        pretrained_model: CachedEstimator | None = None,
        model_dir: str | Path | None = None,
        cache_prefix: str | None = None,
        verbose: int = 0,
        metric: str | None = None,
        on_mismatch: Literal["retrain", "error"] = "retrain",
        validation_fraction: float = 0.2,
        random_state: int = 0,
    ) -> None:
        self.pretrained_model = pretrained_model
        self.model_dir = model_dir
        self.cache_prefix = cache_prefix
        self.verbose = verbose
        self.metric = metric
        self.on_mismatch = on_mismatch
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    # ----------------------------------------------------------------- subclass hooks
    def _config_keys(self) -> set[str]:
        """Keys a configuration may set: the defaults plus every training key."""
        return set(self.DEFAULT_CONFIG) | set(TRAINING_KEYS)

    @abstractmethod
    def _prepare(
        self,
        X_train: np.ndarray,
        X_val: np.ndarray,
        y_train: np.ndarray | None,
        y_val: np.ndarray | None,
    ) -> PreparedData:
        """Scale and encode the validated arrays into what the network sees."""

    @abstractmethod
    def _build(self, config: dict[str, Any], data: PreparedData) -> keras.Model:
        """An uncompiled Keras model for one configuration."""

    def _fingerprint_extra(self, y_train: np.ndarray | None) -> str:
        """What besides the arrays decides the prepared data (e.g. a pretrained model)."""
        return ""

    def _loss(self, data: PreparedData) -> str:
        return "mse"

    def _val_metrics(self, model: keras.Model, data: PreparedData) -> dict[str, float]:
        """Extra validation metrics of a trained model (``val_loss`` is added by the base)."""
        return {}

    def _restore(self, state: dict[str, Any]) -> None:
        """Hook for subclasses to rebuild derived attributes after fit or load."""

    # ----------------------------------------------------------------- public API
    @property
    def artifacts(self) -> ModelArtifacts:
        """The :class:`ModelArtifacts` this estimator reads and writes."""
        model_dir = (
            Path(self.model_dir).expanduser()
            if self.model_dir is not None
            else Layout.from_root().cached_models_dir
        )
        prefix = self.cache_prefix or type(self).__name__.lower()
        return ModelArtifacts(model_dir.resolve(), check_name(prefix, "cache_prefix"))

    def fit(
        self,
        X_train: Any,
        X_val: Any = None,
        y_train: Any = None,
        y_val: Any = None,
        param_grid: Mapping[str, Sequence[Any]] | None = None,
        model_config: Mapping[str, Any] | None = None,
        reset_experiment: bool = False,
        *,
        reset: bool | None = None,
    ) -> CachedEstimator:
        """Load the cached best model, or grid-search, keep the best and cache it.

        Args:
            X_train, X_val: training and validation inputs; with ``X_val=None`` a
                ``validation_fraction`` of ``X_train`` is held out.
            y_train, y_val: targets, for estimators that predict one.
            param_grid: ``{key: [values]}`` to search (model or training keys); default
                ``DEFAULT_PARAM_GRID``.
            model_config: one configuration to train, no search; exclusive with
                ``param_grid``.
            reset_experiment: delete the cache and train again (``reset=`` is an alias).

        ``fit(X, y)`` as scikit-learn tools call it works too: a 1-D second argument with
        one value per sample is the target, and a validation split is held out.
        """
        start = time.perf_counter()
        X_val, y_train = _sklearn_call_style(X_train, X_val, y_train)
        if reset is not None:
            reset_experiment = bool(reset_experiment or reset)
        grid, mode = self.resolve_grid(param_grid, model_config)
        artifacts = self.artifacts
        inputs = self._check_inputs(X_train, X_val, y_train, y_val)
        # The fingerprint is taken from the inputs alone, so a cached fit prepares nothing.
        fingerprint = fingerprint_arrays(*inputs, prefix=self._fingerprint_extra(inputs[2]))
        signature = self._signature(grid)
        if reset_experiment:
            removed = artifacts.remove()
            if removed:
                self._log(f"reset: removed {len(removed)} cached file(s) in {artifacts.model_dir}")
        elif self._try_load(artifacts, fingerprint, signature):
            self.fit_seconds_ = time.perf_counter() - start
            return self
        data = self._prepare(*inputs)
        data.fingerprint = fingerprint
        with _tensorflow_warnings_off():
            self._search(grid, mode, data, artifacts, signature)
        self.fit_seconds_ = time.perf_counter() - start
        self._log(
            f"done in {self.fit_seconds_:.1f} s; cache: {artifacts.model_dir}/{artifacts.prefix}_*"
        )
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    # ----------------------------------------------------------------- inputs
    def resolve_grid(
        self,
        param_grid: Mapping[str, Sequence[Any]] | None = None,
        model_config: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, list[Any]], str]:
        """The grid ``fit`` would search and its mode (``"grid"`` or ``"single"``), checked.

        Values are converted to the type of their key's default (see
        :meth:`_normalize_config`), so ``"3"`` and ``3`` are one configuration and one cache.

        Raises:
            ConfigError: both given, an unknown key, a grid value that is not a list, or a
                value that does not convert to its default's type.
        """
        if param_grid is not None and model_config is not None:
            raise ConfigError(
                "fit: give either param_grid (a search) or model_config (one configuration), "
                "not both"
            )
        if model_config is not None:
            self._check_keys(model_config, "model_config")
            config = self._normalize_config(model_config, "model_config")
            grid = {k: [v] for k, v in config.items()}
            mode = "single"
        else:
            raw = self.DEFAULT_PARAM_GRID if param_grid is None else param_grid
            self._check_keys(raw, "param_grid")
            grid = {}
            for key, values in raw.items():
                if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                    raise ConfigError(
                        f"param_grid.{key}: expected a list of values, got {values!r}; "
                        f"write {key}: [{values!r}]"
                    )
                if len(values) == 0:
                    raise ConfigError(f"param_grid.{key}: the list of values is empty")
                grid[key] = _unique(
                    [self._normalize_value(key, v, f"param_grid.{key}") for v in values]
                )
            mode = "grid"
        if not grid:
            # A search needs one parameter; searching the default epochs changes nothing.
            grid = {"epochs": [self.DEFAULT_CONFIG.get("epochs", 20)]}
        return grid, mode

    def _check_keys(self, given: Mapping[str, Any], field_name: str) -> None:
        known = self._config_keys()
        for key in given:
            if key not in known:
                import difflib

                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ConfigError(
                    f"{field_name}: unknown key {key!r} for {type(self).__name__}; {hint}"
                    f"known keys: {', '.join(sorted(known))}"
                )

    def _type_defaults(self) -> dict[str, tuple[Any, str]]:
        """Per key, the value whose type a given value is converted to, and its name in
        messages: ``DEFAULT_CONFIG`` first, then the training keys' defaults."""
        found = {key: (value, "default") for key, value in training_defaults().items()}
        found.update((key, (value, "default")) for key, value in self.DEFAULT_CONFIG.items())
        return found

    def _normalize_value(self, key: str, value: Any, field_name: str) -> Any:
        """``value`` of ``key`` converted to its default's type (see ``_normalize_config``)."""
        reference, shown = self._type_defaults().get(key, (None, "default"))
        return normalize_value(value, reference, field_name, shown)

    def _normalize_config(
        self, config: Mapping[str, Any], field_name: str = "model_config"
    ) -> dict[str, Any]:
        """``config`` with every value converted to the type of its key's default.

        An int default takes ints, integral floats (``3.0``) and numeric strings (``"3"``);
        a float default takes ints, floats and numeric strings; a bool default takes bools
        and ``"true"``/``"false"``; a str default only strings; a list of numbers is
        converted element by element. A ``None`` default (or a key without one) takes
        anything. The converted values are what is searched, cached and compared.

        Raises:
            ConfigError: ``model_config.latent_dim: 'abc' is not an integer (default 8)``.
        """
        return {
            key: self._normalize_value(key, value, f"{field_name}.{key}")
            for key, value in config.items()
        }

    def _check_inputs(
        self, X_train: Any, X_val: Any, y_train: Any, y_val: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Validated arrays; with ``X_val=None`` a validation split is held out."""
        X_train = as_2d_float(X_train, "X_train")
        if self.NEEDS_TARGET and y_train is None:
            raise DataError(f"y_train: {type(self).__name__} predicts a target; pass y_train")
        if y_train is not None:
            y_train = np.asarray(y_train)
            if len(y_train) != len(X_train):
                raise DataError(
                    f"y_train: {len(y_train)} targets for {len(X_train)} samples of X_train"
                )
        if X_val is None:
            if y_val is not None:
                raise DataError("y_val: given without X_val; pass both or neither")
            X_train, X_val, y_train, y_val = self._holdout(X_train, y_train)
        else:
            X_val = as_2d_float(X_val, "X_val")
            if X_val.shape[1:] != X_train.shape[1:]:
                raise DataError(
                    f"X_val: shape {X_val.shape[1:]} per sample differs from X_train's "
                    f"{X_train.shape[1:]}"
                )
            if self.NEEDS_TARGET and y_val is None:
                raise DataError("y_val: pass the validation targets (or X_val=None to hold out)")
            if y_val is not None:
                y_val = np.asarray(y_val)
                if len(y_val) != len(X_val):
                    raise DataError(
                        f"y_val: {len(y_val)} targets for {len(X_val)} samples of X_val"
                    )
        return X_train, X_val, y_train, y_val

    def _holdout(
        self, X: np.ndarray, y: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError("validation_fraction: must be between 0 and 1 (exclusive)")
        if y is None:
            X_train, X_val = train_test_split(
                X, test_size=self.validation_fraction, random_state=self.random_state
            )
            return X_train, X_val, None, None
        X_train, X_val, y_train, y_val = train_test_split(
            X, y, test_size=self.validation_fraction, random_state=self.random_state
        )
        return X_train, X_val, y_train, y_val

    def _signature(self, grid: dict[str, list[Any]]) -> str:
        """What makes two searches the same search (besides the data)."""
        return json.dumps(
            {
                "estimator": type(self).__name__,
                "defaults": to_json_value(self.DEFAULT_CONFIG),
                "grid": to_json_value(grid),
                "metric": self._metric(),
                "random_state": self.random_state,
            },
            sort_keys=True,
        )

    def _metric(self) -> str:
        return self.metric or self.METRIC

    # ----------------------------------------------------------------- cache
    def _try_load(self, artifacts: ModelArtifacts, fingerprint: str, signature: str) -> bool:
        status = artifacts.inspect()
        if not status.valid:
            if status.any_present:
                self._warn(
                    f"cache {artifacts.prefix!r} in {artifacts.model_dir} is incomplete "
                    f"({'; '.join(status.problems)}); training again"
                )
            return False
        cache = status.manifest["cache"]
        changed = [
            what
            for what, same in (
                ("training data", cache.get("fingerprint") == fingerprint),
                ("grid or settings", cache.get("signature") == signature),
            )
            if not same
        ]
        if changed:
            message = (
                f"cache {artifacts.prefix!r} in {artifacts.model_dir} was made from other "
                f"{' and '.join(changed)}"
            )
            if self.on_mismatch == "error":
                raise CacheMismatchError(
                    f"{message}; pass reset_experiment=True to retrain, or another cache_prefix"
                )
            self._warn(f"{message}; training again (on_mismatch='error' refuses instead)")
            return False
        try:
            model = keras.saving.load_model(artifacts.model, safe_mode=True, compile=False)
        except Exception as exc:  # any load failure means the cache cannot be used
            self._warn(
                f"cache {artifacts.prefix!r}: the model does not load ({exc}); training again"
            )
            return False
        self._adopt(model, status.manifest, self._read_scalers(artifacts), artifacts, cached=True)
        self._log(
            f"loaded from cache {artifacts.model_dir}/{artifacts.prefix}_* "
            f"({self._metric()} {self.best_score_:.6g}, made {cache.get('created', '?')}); "
            "nothing trained"
        )
        return True

    def _read_scalers(self, artifacts: ModelArtifacts) -> dict[str, Scaler]:
        if not artifacts.scaler.exists():
            return {}
        raw = json.loads(artifacts.scaler.read_text(encoding="utf-8"))
        return {name: Scaler.from_dict(stats) for name, stats in raw.items()}

    def _adopt(
        self,
        model: keras.Model,
        manifest: dict[str, Any],
        scalers: dict[str, Scaler],
        artifacts: ModelArtifacts,
        *,
        cached: bool,
    ) -> None:
        cache = manifest["cache"]
        tuple_keys = set(cache.get("tuple_keys", []))
        self.model_ = model
        self.best_config_ = {
            k: _to_tuples(v) if k in tuple_keys else v for k, v in manifest["config"].items()
        }
        metrics = json.loads(artifacts.metrics.read_text(encoding="utf-8"))
        self.metrics_ = metrics
        self.best_score_ = float(metrics["best_score"])
        self.grid_results_ = json.loads(artifacts.grid_results.read_text(encoding="utf-8"))
        self.scalers_ = scalers
        self.state_ = dict(cache.get("state", {}))
        self.fingerprint_ = cache["fingerprint"]
        self.model_sha256_ = cache["files"][artifacts.model.name]
        self.from_cache_ = cached
        if cached:
            self.n_configs_trained_ = 0
        self.artifacts_ = artifacts
        self._restore(self.state_)

    # ----------------------------------------------------------------- search
    def _search(
        self,
        grid: dict[str, list[Any]],
        mode: str,
        data: PreparedData,
        artifacts: ModelArtifacts,
        signature: str,
    ) -> None:
        metric = self._metric()
        direction = metric_direction(metric)
        n_points = len(grid_points(grid))
        what = "1 configuration" if mode == "single" else f"grid search: {n_points} configurations"
        self._log(f"{what} over {', '.join(sorted(grid))}, best by {metric}")
        artifacts.model_dir.mkdir(parents=True, exist_ok=True)
        best_file = artifacts.model_dir / f".{artifacts.prefix}_best.partial.keras"
        best: dict[str, Any] = {}
        results: list[dict[str, Any]] = []
        self.n_configs_trained_ = 0

        def evaluate(index: int, params: dict[str, Any]) -> tuple[float, dict[str, Any]]:
            config = {**self.DEFAULT_CONFIG, **params}
            outcome = self._train_config(config, data)
            self.n_configs_trained_ += 1
            value = outcome["metrics"].get(metric)
            if value is None:
                raise ConfigError(
                    f"metric: {metric!r} is not measured by {type(self).__name__}; "
                    f"use one of {', '.join(sorted(outcome['metrics']))}"
                )
            improved = not best or (
                value < best["value"] if direction == "minimize" else value > best["value"]
            )
            if improved:
                # Keep the winning weights now, so they are never retrained by accident.
                outcome["model"].save(best_file)
                best.update(value=value, index=index, config=config, outcome=outcome)
            results.append(_result_row(index, config, outcome))
            self._log(
                f"  {index + 1}/{n_points} {_describe(params)} -> {metric} {value:.6g} "
                f"({outcome['seconds']:.1f} s){'  *best*' if improved else ''}"
            )
            del outcome["model"]
            return value, {"metrics": outcome["metrics"], "seconds": outcome["seconds"]}

        def on_trial(trial: GridTrial) -> None:
            if trial.state != "failed":
                return
            error = trial.attrs.get("error")
            config = to_json_value({**self.DEFAULT_CONFIG, **trial.params})
            results.append(
                {"index": trial.number, "config": config, "state": "failed", "error": error}
            )
            self._log(f"  {trial.number + 1}/{n_points} {_describe(trial.params)} failed: {error}")

        try:
            run_grid_search(
                grid,
                evaluate,
                direction=direction,
                storage=artifacts.search_storage,
                study_name=artifacts.prefix,
                on_trial=on_trial,
            )
            if not best:
                raise TrialFailed(
                    f"{type(self).__name__}: every configuration failed; see grid_results_ "
                    "(lower the learning rate?)"
                )
            self._save(best, best_file, results, data, artifacts, signature, metric, direction)
        finally:
            best_file.unlink(missing_ok=True)
            clear_keras()

    def _train_config(self, config: dict[str, Any], data: PreparedData) -> dict[str, Any]:
        """Train one configuration; return the model with its validation metrics."""
        clear_keras()
        seed_everything(self.random_state)
        model = self._build(config, data)
        model.compile(optimizer=make_optimizer(config), loss=self._loss(data))
        history, seconds = fit_arrays(
            model,
            data.x_train,
            data.y_train,
            epochs=int(config.get("epochs", 20)),
            batch_size=int(config.get("batch_size", 32)),
            validation=(data.x_val, data.y_val),
            callbacks=[early_stopping("val_loss", "minimize", int(config.get("patience", 5)))],
            verbose=2 if self.verbose >= 2 else 0,
        )
        losses = history["loss"]
        val_losses = history.get("val_loss", [])
        val_loss = float(model.evaluate(data.x_val, data.y_val, batch_size=1024, verbose=0))
        metrics = {"val_loss": val_loss, **self._val_metrics(model, data)}
        return {
            "model": model,
            "metrics": {k: float(v) for k, v in metrics.items()},
            "epochs_run": len(losses),
            "best_epoch": int(np.argmin(val_losses)) + 1 if val_losses else len(losses),
            "history": history,
            "seconds": seconds,
        }

    def _save(
        self,
        best: dict[str, Any],
        best_file: Path,
        results: list[dict[str, Any]],
        data: PreparedData,
        artifacts: ModelArtifacts,
        signature: str,
        metric: str,
        direction: str,
    ) -> None:
        config = best["config"]
        tuple_keys = sorted(k for k, v in config.items() if _has_tuple(v))
        outcome = best["outcome"]
        metrics = {
            "metric": metric,
            "direction": direction,
            "best_score": best["value"],
            "best_index": best["index"],
            "val": outcome["metrics"],
            "epochs_run": outcome["epochs_run"],
            "best_epoch": outcome["best_epoch"],
            "history": outcome["history"],
        }
        scalers = {name: s.to_dict() for name, s in data.scalers.items()} or None
        cache = {
            "estimator": type(self).__name__,
            "fingerprint": data.fingerprint,
            "signature": signature,
            "tuple_keys": tuple_keys,
            "state": to_json_value(data.state),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "n_configs": len(results),
            "keras_version": keras.__version__,
        }
        artifacts.write(
            model_file=best_file,
            config=to_json_value(config),
            metrics=metrics,
            grid_results=sorted(results, key=lambda r: r["index"]),
            scaler=scalers,
            cache=cache,
        )
        model = keras.saving.load_model(artifacts.model, safe_mode=True, compile=False)
        manifest = json.loads(artifacts.config.read_text(encoding="utf-8"))
        self._adopt(model, manifest, data.scalers, artifacts, cached=False)
        self._log(f"best: {_describe(best['config'])} -> {metric} {best['value']:.6g}")

    # ----------------------------------------------------------------- helpers
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    def _log(self, text: str) -> None:
        if self.verbose >= 1:
            prefix = self.cache_prefix or type(self).__name__.lower()
            print(f"[{prefix}] {text}", file=sys.stdout, flush=True)

    def _warn(self, text: str) -> None:
        warnings.warn(text, CacheWarning, stacklevel=4)

    def model_file_digest(self) -> str:
        """SHA-256 of the saved model: identifies the fitted weights (for dependants)."""
        self._check_fitted()
        return (
            self.model_sha256_
            if hasattr(self, "model_sha256_")
            else file_sha256(self.artifacts_.model)
        )


def _sklearn_call_style(X_train: Any, X_val: Any, y_train: Any) -> tuple[Any, Any]:
    """Read ``fit(X, y)``, as scikit-learn tools call it, as ``fit(X, y_train=y)``.

    A 1-D second argument with one value per training sample cannot be validation inputs
    (those have the samples' shape), so it is the target and a validation split is held out.
    """
    if X_val is None or y_train is not None:
        return X_val, y_train
    second, first = np.asarray(X_val), np.asarray(X_train)
    if second.ndim == 1 and first.ndim >= 2 and len(second) == len(first):
        return None, second
    return X_val, y_train


def _unique(values: list[Any]) -> list[Any]:
    """``values`` without repeats (``["3", 3]`` converts to ``[3, 3]``: one point to train)."""
    seen: set[str] = set()
    kept = []
    for value in values:
        key = json.dumps(to_json_value(value), sort_keys=True, default=repr)
        if key not in seen:
            seen.add(key)
            kept.append(value)
    return kept


def _result_row(index: int, config: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    """One configuration's entry of ``grid_results_``."""
    return {
        "index": index,
        "config": to_json_value(config),
        "metrics": outcome["metrics"],
        "epochs_run": outcome["epochs_run"],
        "best_epoch": outcome["best_epoch"],
        "seconds": round(outcome["seconds"], 3),
        "state": "complete",
    }


def _describe(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(params.items())) or "(defaults)"


@contextmanager
def _tensorflow_warnings_off() -> Iterator[None]:
    # Every configuration is a new model, so TensorFlow warns about "retracing" after a
    # few; that is expected here and would break the promise that verbose=0 prints nothing.
    logger = logging.getLogger("tensorflow")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)
