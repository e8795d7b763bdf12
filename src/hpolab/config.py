"""Study configuration: pydantic models, YAML loading, overrides and precise errors.

A study config has four sections::

    study:    name, metric, direction, n_trials, timeout, sampler, pruner, seed, storage
    data:     source, target, task, val_size, test_size
    training: epochs, batch_size, patience, loss, optimizer, learning_rate
    models:   {<model_type>: {search_space: {...}, param_grid: {...}}}

Everything is validated here, once; the rest of hpolab trusts the typed objects.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from hpolab.errors import ConfigError, unknown_key
from hpolab.layout import check_name

SAMPLERS = ("grid", "random", "tpe", "gp", "cmaes")
PRUNERS = ("none", "median", "hyperband")
TASKS = ("classification", "regression")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
CLASSIFICATION_METRICS = {
    "val_loss": "minimize",
    "val_accuracy": "maximize",
    "val_f1_macro": "maximize",
    "val_auc": "maximize",
}
REGRESSION_METRICS = {
    "val_loss": "minimize",
    "val_rmse": "minimize",
    "val_mae": "minimize",
    "val_r2": "maximize",
}
METRICS = {**CLASSIFICATION_METRICS, **REGRESSION_METRICS}
# Score-like metric names (higher is better); every other metric is a loss or an error.
_SCORES = ("accuracy", "auc", "r2", "f1", "f1_macro")


def metric_direction(metric: str) -> str:
    """``minimize`` or ``maximize``: the one rule every front-end uses.

    Study metrics come from :data:`METRICS`; other names (``val_mse``, ``test_accuracy``,
    ``rmse``) are maximized when they end in a score's name, minimized otherwise.
    """
    if metric in METRICS:
        return METRICS[metric]
    return "maximize" if metric.endswith(_SCORES) else "minimize"


# Parameters that configure training rather than the architecture; any model accepts them.
TRAINING_KEYS = (
    "epochs",
    "batch_size",
    "patience",
    "loss",
    "optimizer",
    "learning_rate",
    "momentum",
    "weight_decay",
    "nesterov",
    "lr_schedule",
    "warmup_epochs",
    "min_learning_rate",
)
# Preprocessing settings a search space may vary (they override data.spectrogram).
PREPROCESSING_KEYS = ("frame_length", "frame_step")
# Callbacks a config can switch on (hpolab.training.callbacks).
CALLBACK_KEYS = ("checkpoint", "reduce_lr_on_plateau", "metrics_log", "tensorboard")
# Settings of reduce_lr_on_plateau (Keras' ReduceLROnPlateau arguments; PlateauSettings).
PLATEAU_KEYS = ("factor", "patience", "min_lr", "cooldown", "min_delta")
# hpolab's own losses (hpolab.training.losses), all for classification.
CLASSIFICATION_LOSSES = (
    "focal",
    "focal_loss",
    "weighted_categorical_crossentropy",
    "weighted_crossentropy",
    "cost_sensitive",
    "leak_aware",
    "leak_aware_loss",
)
# Losses that take per-class weights as an option (class_weights goes to them).
WEIGHTED_LOSSES = ("weighted_categorical_crossentropy", "weighted_crossentropy")
# A grid larger than this is almost certainly a mistake (a float range without a step).
MAX_GRID_POINTS = 100_000

Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ParamSpec(_Strict):
    """One hyperparameter: a distribution, a fixed value, and an optional condition.

    Short forms are accepted: a list is a categorical, a bare scalar is a fixed value and
    ``{low, high}`` is an int or float range depending on the bounds.
    """

    type: Literal["int", "float", "categorical", "fixed"]
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: list[Any] | None = None
    value: Any = None
    when: dict[str, Any] | None = Field(
        default=None,
        description="Only sample this parameter when other parameters take these values.",
    )

    @model_validator(mode="before")
    @classmethod
    def _expand_short_forms(cls, raw: Any) -> Any:
        if isinstance(raw, list):
            return {"type": "categorical", "choices": raw}
        if not isinstance(raw, Mapping):
            return {"type": "fixed", "value": raw}
        if "type" in raw:
            return raw
        data = dict(raw)
        if "choices" in data:
            data["type"] = "categorical"
        elif "value" in data:
            data["type"] = "fixed"
        elif "low" in data or "high" in data:
            bounds = [data.get("low"), data.get("high"), data.get("step")]
            is_int = all(isinstance(b, int) and not isinstance(b, bool) for b in bounds[:2]) and (
                bounds[2] is None or isinstance(bounds[2], int)
            )
            data["type"] = "int" if is_int else "float"
        return data

    @field_validator("choices")
    @classmethod
    def _choices_json_safe(cls, choices: list[Any] | None) -> list[Any] | None:
        if choices is None:
            return None
        if not choices:
            raise ValueError("choices must not be empty")
        for choice in choices:
            try:
                json.dumps(choice)
            except (TypeError, ValueError):
                raise ValueError(f"choice {choice!r} is not JSON-serializable") from None
        return choices

    @model_validator(mode="after")
    def _check_consistency(self) -> ParamSpec:
        if self.type in ("int", "float"):
            if self.low is None or self.high is None:
                raise ValueError(f"a {self.type} range needs both 'low' and 'high'")
            if self.low > self.high:
                raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
            if self.log and self.low <= 0:
                raise ValueError(f"a log range needs low > 0 (got low={self.low}); use log: false")
            if self.step is not None and self.step <= 0:
                raise ValueError(f"step must be > 0 (got {self.step})")
            if self.type == "float" and self.log and self.step is not None:
                raise ValueError("a float range cannot have both 'step' and 'log: true'")
            if self.type == "int":
                for name in ("low", "high", "step"):
                    bound = getattr(self, name)
                    if bound is not None and not float(bound).is_integer():
                        raise ValueError(f"{name} of an int range must be an integer (got {bound})")
                if self.log and self.step not in (None, 1):
                    raise ValueError("an int range with log: true must have step 1")
        elif self.type == "categorical" and self.choices is None:
            raise ValueError("a categorical parameter needs 'choices'")
        for name in ("low", "high", "step", "choices"):
            if self.type == "fixed" and getattr(self, name) is not None:
                raise ValueError(f"a fixed parameter takes only 'value', not '{name}'")
        return self

    def grid_values(self) -> list[Any]:
        """The finite list of values this parameter takes in grid search."""
        if self.type == "categorical":
            return list(self.choices or [])
        if self.type == "fixed":
            return [self.value]
        assert self.low is not None and self.high is not None
        if self.type == "int":
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            raise ValueError(
                "grid search needs finite values: give this float range a 'step' or use choices"
            )
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]


class StopEarlySection(_Strict):
    """End a model type's search before its budget once the best value has stopped improving."""

    patience: int = Field(
        default=10, ge=1, description="finished trials (complete or pruned) without a new best"
    )
    min_trials: int = Field(default=10, ge=1, description="finished trials before the rule applies")
    min_delta: float = Field(
        default=0.0, ge=0, description="a smaller gain than this over the best is not a new best"
    )


class StudySection(_Strict):
    """What to optimize and how."""

    name: str = "default"
    metric: str = "val_loss"
    direction: Literal["minimize", "maximize"] | None = None
    n_trials: int = Field(default=20, ge=1)
    timeout: float | None = Field(default=None, gt=0, description="seconds per model type")
    sampler: Literal["grid", "random", "tpe", "gp", "cmaes"] = "tpe"
    pruner: Literal["none", "median", "hyperband"] = "median"
    startup_trials: int | Literal["auto"] = Field(
        default="auto",
        description="random trials before tpe or gp model the space: auto (a quarter of "
        "n_trials, 3 to 10) or a number",
    )
    first_trial: Literal["random", "center"] = Field(
        default="random",
        description="the study's first trial: random (the sampler's own), or center: the "
        "middle of every numeric range (log ranges in log space)",
    )
    pruner_warmup: int | None = Field(
        default=None,
        ge=0,
        description="epochs a trial trains before the pruner may stop it (folds when "
        "cross-validating): median default 2 (1 fold); hyperband: its minimum resource, "
        "default 1",
    )
    seed: int | None = 42
    storage: str | None = None
    workers: int = Field(
        default=1, ge=1, le=64, description="worker processes on this machine (--workers)"
    )
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI shared by all workers (default: <root>/mlruns)",
    )
    heartbeat_interval: int = Field(default=10, ge=1)
    grace_period: int | None = Field(default=None, ge=1)
    max_retries: int = Field(default=3, ge=0)
    plots: bool = Field(default=True, description="draw the visualizations after the search")
    code_path: str | None = Field(
        default=None,
        description="folder the user's modules (models.<type>.builder, a data loader) are "
        "imported from; default: the config's folder, then the working directory",
    )
    stop_early: StopEarlySection | None = Field(
        default=None,
        description="end the search once the best value has stopped improving: true for the "
        "defaults, or {patience, min_trials, min_delta}; off by default (the budget decides)",
    )
    trial_checkpoints: int | Literal["auto", "off"] = Field(
        default="auto",
        description="how often a Keras trial saves its resume checkpoint: auto (when "
        "training since the last save took 100x a save, at most 1% of the time), every N "
        "epochs, or off",
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        try:
            return check_name(name, "study.name")
        except ConfigError as exc:
            raise ValueError(str(exc).split(": ", 1)[1]) from None

    @field_validator("tracking_uri")
    @classmethod
    def _looks_like_a_uri(cls, uri: str | None) -> str | None:
        if uri is not None and "://" not in uri and not uri.startswith("databricks"):
            raise ValueError(
                f"{uri!r} is not a tracking URI; give http://host:5000 (mlflow server), "
                "postgresql://user@host:5432/db or sqlite:////path/to/mlflow.db"
            )
        return uri

    @field_validator("stop_early", mode="before")
    @classmethod
    def _stop_early_switch(cls, value: Any) -> Any:
        # ``stop_early: true`` takes the defaults, ``false`` turns the rule off.
        if isinstance(value, bool):
            return {} if value else None
        if value is not None and not isinstance(value, (dict, StopEarlySection)):
            raise ValueError("give true, false or a mapping {patience, min_trials, min_delta}")
        return value

    @field_validator("startup_trials")
    @classmethod
    def _some_startup_trials(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 1:
            raise ValueError("give auto or a number of trials of at least 1")
        return value

    @field_validator("trial_checkpoints", mode="before")
    @classmethod
    def _checkpoint_setting(cls, value: Any) -> Any:
        # YAML reads a bare off/on as a boolean.
        if isinstance(value, bool):
            return "auto" if value else "off"
        if isinstance(value, int) and value < 1:
            raise ValueError("give auto, off or a number of epochs of at least 1")
        return value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
        return metric

    @property
    def resolved_direction(self) -> str:
        return self.direction or metric_direction(self.metric)

    @property
    def resolved_startup_trials(self) -> int:
        """Random trials before a model-based sampler takes over (see ``startup_trials``)."""
        if self.startup_trials == "auto":
            return min(10, max(3, self.n_trials // 4))
        return self.startup_trials

    @property
    def center_first(self) -> bool:
        """Whether trial 0 tries the middle of the space (see ``first_trial``)."""
        return self.first_trial == "center"

    @model_validator(mode="after")
    def _first_trial_fits_the_sampler(self) -> StudySection:
        if self.first_trial == "center" and self.sampler == "grid":
            raise ValueError(
                "first_trial: a grid search visits its own points; remove first_trial: "
                "center or choose another sampler"
            )
        if self.pruner_warmup is not None and self.pruner == "none":
            raise ValueError(
                "pruner_warmup: there is no pruner to warm up (pruner: none); remove "
                "pruner_warmup or choose pruner: median or hyperband"
            )
        if self.pruner_warmup == 0 and self.pruner == "hyperband":
            raise ValueError(
                "pruner_warmup: hyperband's minimum resource is at least 1 epoch; give 1 or more"
            )
        return self

    def resolved_pruner_warmup(self, cross_validating: bool) -> int | None:
        """Steps (epochs, or folds) before the pruner may stop a trial; ``None``: the
        pruner's default (see :func:`hpolab.search.samplers.make_pruner`)."""
        if self.pruner_warmup is None and cross_validating:
            return 1
        return self.pruner_warmup


class WindowSection(_Strict):
    """Cut a recording (rows = time samples, columns = channels) into windows."""

    length: int = Field(ge=2, description="samples per window")
    hop: int | None = Field(default=None, ge=1, description="samples between window starts")
    label: Literal["majority", "last"] = "majority"


class SpectrogramSection(_Strict):
    """STFT log-magnitude spectrograms of each window (``tf.signal.stft``)."""

    frame_length: int = Field(default=32, ge=2)
    frame_step: int = Field(default=8, ge=1)
    fft_length: int | None = Field(default=None, ge=2)
    log: bool = True


class CVSection(_Strict):
    """Cross-validation as the objective: the trial's value is the mean over folds."""

    method: Literal["stratified_kfold", "kfold", "time_series"] = "stratified_kfold"
    n_splits: int = Field(default=3, ge=2, le=20)


class DataSection(_Strict):
    """Where the data comes from and how it is split."""

    source: str = "builtin:leak"
    target: str | None = None
    task: Literal["classification", "regression"] | None = None
    val_size: float = Field(default=0.2, gt=0, lt=1)
    test_size: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0
    options: dict[str, Any] = Field(
        default_factory=dict, description="built-in dataset options, e.g. n_samples"
    )
    windows: WindowSection | None = None
    spectrogram: SpectrogramSection | None = None
    cache: bool = Field(default=True, description="keep preprocessed arrays (spectrograms) on disk")
    validation: str | None = Field(
        default=None,
        description="the validation rows: a file or a module:function loader with the "
        "source's columns (default: a random val_size of the source)",
    )
    test: str | None = Field(
        default=None, description="the test rows, as validation (default: random test_size)"
    )
    split_column: str | None = Field(
        default=None,
        description="a column naming each row's part: train, validation or test",
    )
    cv: CVSection | None = None

    @model_validator(mode="after")
    def _splits_fit(self) -> DataSection:
        if self.split_column is not None and (self.validation or self.test):
            raise ValueError(
                "split_column and validation/test sources both say which rows are which; keep one"
            )
        if self.val_size + self.test_size >= 0.9:
            raise ValueError(
                f"val_size + test_size = {self.val_size + self.test_size:.2f} leaves too little "
                "training data; keep their sum below 0.9"
            )
        return self


class TrainingSection(_Strict):
    """Training defaults; any of them can also be a searched parameter of a model."""

    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=32, ge=1)
    patience: int = Field(default=5, ge=1)
    loss: str = "auto"
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float = Field(default=1e-3, gt=0)
    loss_options: dict[str, Any] = Field(
        default_factory=dict,
        description="arguments of the loss, e.g. {gamma: 2} for focal, "
        "{class_weights: balanced} for weighted_categorical_crossentropy",
    )
    optimizer_options: dict[str, Any] = Field(
        default_factory=dict,
        description="arguments of the Keras optimizer, e.g. {beta_1: 0.9, beta_2: 0.999}",
    )
    lr_schedule: Literal["constant", "linear", "cosine", "exponential", "polynomial", "warmup"] = (
        "constant"
    )
    warmup_epochs: int = Field(default=0, ge=0)
    min_learning_rate: float = Field(default=0.0, ge=0)
    lr_schedule_options: dict[str, Any] = Field(
        default_factory=dict,
        description="schedule settings in optimizer steps: warmup_steps, decay_steps, "
        "decay_rate, initial_lr, min_lr, power (they override the epoch-based defaults)",
    )
    class_weight: Literal["balanced"] | dict[str | int, float] | None = Field(
        default=None, description="classification: 'balanced' or {label or class index: weight}"
    )
    metrics: list[str] | None = Field(
        default=None,
        description="Keras metrics computed while training (default: accuracy for "
        "classification); the study's own metrics are always computed",
    )
    early_stopping: bool = Field(
        default=True, description="stop after 'patience' epochs without improvement"
    )
    monitor: str | None = Field(
        default=None,
        description="metric early stopping, checkpoints and reduce-on-plateau watch "
        "(default and, in a study, always: study.metric)",
    )
    callbacks: dict[str, Any] = Field(
        default_factory=dict,
        description="checkpoint: true, reduce_lr_on_plateau: true | {factor, patience, "
        "min_lr}, metrics_log: csv | json, tensorboard: true",
    )
    verbose: int = Field(default=0, ge=0, le=2)

    @model_validator(mode="before")
    @classmethod
    def _guide_keys(cls, raw: Any) -> Any:
        return translate_guide_keys(raw) if isinstance(raw, Mapping) else raw

    @field_validator("callbacks")
    @classmethod
    def _known_callbacks(cls, callbacks: dict[str, Any]) -> dict[str, Any]:
        for key in callbacks:
            if key not in CALLBACK_KEYS:
                close = difflib.get_close_matches(key, CALLBACK_KEYS, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(f"unknown callback {key!r}; {hint}use {', '.join(CALLBACK_KEYS)}")
        if callbacks.get("metrics_log") not in (None, False, "csv", "json"):
            raise ValueError("metrics_log must be csv or json")
        for key in ("checkpoint", "tensorboard"):
            if not isinstance(callbacks.get(key, False), bool):
                raise ValueError(f"{key} must be true or false (got {callbacks[key]!r})")
        plateau = callbacks.get("reduce_lr_on_plateau", False)
        if isinstance(plateau, Mapping):
            for key in plateau:
                if key not in PLATEAU_KEYS:
                    error = unknown_key("reduce_lr_on_plateau", key, PLATEAU_KEYS, "setting")
                    raise ValueError(str(error))
            try:
                settings = PlateauSettings.model_validate(plateau)
            except ValidationError as exc:
                raise ValueError(f"reduce_lr_on_plateau: {format_validation_error(exc)}") from None
            callbacks["reduce_lr_on_plateau"] = settings.model_dump(exclude_unset=True)
        elif not isinstance(plateau, bool):
            raise ValueError(
                f"reduce_lr_on_plateau must be true, false or {{{', '.join(PLATEAU_KEYS)}}} "
                f"(got {plateau!r})"
            )
        return callbacks


class PlateauSettings(_Strict):
    """``training.callbacks.reduce_lr_on_plateau`` settings (Keras' ReduceLROnPlateau)."""

    factor: float = Field(default=0.5, gt=0, lt=1)
    patience: int = Field(default=2, ge=0)
    min_lr: float = Field(default=1e-6, ge=0)
    cooldown: int = Field(default=0, ge=0)
    min_delta: float = Field(default=1e-4, ge=0)


# Keys of the training design guide and the hpolab key each one becomes.
GUIDE_TRAINING_KEYS = {
    "loss_config": "loss_options",
    "optimizer_config": "optimizer_options",
    "lr_schedule_config": "lr_schedule_options",
}
GUIDE_CALLBACK_KEYS = {
    "early_stopping": "early_stopping",
    "early_stopping_patience": "patience",
    "early_stopping_monitor": "monitor",
    "checkpoint_monitor": "monitor",
    "reduce_lr_monitor": "monitor",
    "model_checkpoint": "callbacks.checkpoint",
    "reduce_lr_factor": "callbacks.reduce_lr_on_plateau.factor",
    "reduce_lr_patience": "callbacks.reduce_lr_on_plateau.patience",
    "reduce_lr_min_lr": "callbacks.reduce_lr_on_plateau.min_lr",
}


def translate_guide_keys(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A training section written with the design guide's keys, in hpolab's keys.

    ``loss_config`` is ``loss_options``, ``callbacks.early_stopping_patience`` is
    ``patience``, ``class_weights`` goes to the loss when it is a weighted loss and to
    ``class_weight`` otherwise (see the README's table). Giving a key under both names
    is an error, so nothing is silently dropped.
    """
    data = dict(raw)
    for guide, own in GUIDE_TRAINING_KEYS.items():
        if guide in data:
            _move(data, guide, own, data.pop(guide))
    if "class_weights" in data:
        weights = data.pop("class_weights")
        if data.get("loss") in WEIGHTED_LOSSES:
            options = dict(data.get("loss_options") or {})
            _move(options, "class_weights", "class_weights", weights, into="loss_options")
            data["loss_options"] = options
        else:
            _move(data, "class_weights", "class_weight", weights)
    callbacks = data.get("callbacks")
    if isinstance(callbacks, Mapping):
        data["callbacks"] = _translate_callbacks(data, dict(callbacks))
    return data


def _translate_callbacks(data: dict[str, Any], callbacks: dict[str, Any]) -> dict[str, Any]:
    plateau = callbacks.get("reduce_lr_on_plateau")
    settings = [k for k in callbacks if GUIDE_CALLBACK_KEYS.get(k, "").count(".") == 2]
    if plateau is True and settings:  # reduce_lr_factor etc. become its settings
        callbacks["reduce_lr_on_plateau"] = plateau = {}
    monitors = {v for k, v in callbacks.items() if GUIDE_CALLBACK_KEYS.get(k) == "monitor"}
    if len(monitors) > 1:
        raise ValueError(
            f"callbacks: the monitors differ ({', '.join(sorted(map(str, monitors)))}); "
            "hpolab watches one metric for early stopping, checkpoints and the plateau"
        )
    for guide, own in GUIDE_CALLBACK_KEYS.items():
        if guide not in callbacks:
            continue
        value = callbacks.pop(guide)
        path = own.split(".")
        if own == "monitor" and data.get("monitor") == value:
            continue  # the same monitor named by another callback
        if path[0] != "callbacks":
            _move(data, f"callbacks.{guide}", own, value)
            continue
        if len(path) == 2:
            _move(callbacks, guide, path[1], value, into="callbacks")
            continue
        if not isinstance(plateau, dict):
            raise ValueError(f"callbacks.{guide}: set reduce_lr_on_plateau: true to use it")
        _move(plateau, guide, path[2], value, into="callbacks.reduce_lr_on_plateau")
    return callbacks


def _move(target: dict[str, Any], guide: str, own: str, value: Any, into: str = "") -> None:
    """Set ``target[own] = value`` unless hpolab's own key is already there."""
    if own in target and target[own] not in (None, {}) and guide != own:
        where = f"{into}." if into else ""
        raise ValueError(f"{guide} and {where}{own} are the same setting; keep one")
    target[own] = value


class ModelSpec(_Strict):
    """The search space of one model type, and the builder of a model of the user's own."""

    search_space: dict[str, ParamSpec] = Field(default_factory=dict)
    param_grid: dict[str, list[Any]] = Field(default_factory=dict)
    builder: Any = Field(
        default=None,
        description="module:function building the user's own Keras model: "
        "build(params, input_shape, n_outputs, task) or build(hp); from Python, a callable",
    )

    @field_validator("builder")
    @classmethod
    def _builder_form(cls, value: Any) -> Any:
        from hpolab.user_code import is_function_path

        if value is None or callable(value) or is_function_path(value):
            return value
        raise ValueError(f"{value!r} is not 'module:function' (e.g. my_models:build)")

    @field_serializer("builder", when_used="json")
    def _builder_text(self, value: Any) -> Any:
        from hpolab.user_code import describe_callable

        return describe_callable(value) if callable(value) else value

    @model_validator(mode="after")
    def _merge_grid(self) -> ModelSpec:
        both = set(self.search_space) & set(self.param_grid)
        if both:
            raise ValueError(
                f"{', '.join(sorted(both))} given in both search_space and param_grid; keep one"
            )
        for name, values in self.param_grid.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"param_grid.{name} must be a non-empty list of values")
        return self

    def params(self) -> dict[str, ParamSpec]:
        """The full space: ``search_space`` plus ``param_grid`` entries as categoricals."""
        merged = dict(self.search_space)
        for name, values in self.param_grid.items():
            merged[name] = ParamSpec(type="categorical", choices=values)
        return merged


class StudyConfig(_Strict):
    """A whole study, validated."""

    study: StudySection = Field(default_factory=StudySection)
    data: DataSection = Field(default_factory=DataSection)
    training: TrainingSection = Field(default_factory=TrainingSection)
    models: dict[str, ModelSpec] = Field(default_factory=lambda: {"mlp": ModelSpec()})
    # The metric is the default study's, kept while its dataset was replaced (--data): it
    # then follows the task of the new data (see for_task) instead of being an error.
    _default_metric: bool = PrivateAttr(default=False)

    @model_validator(mode="before")
    @classmethod
    def _top_level_class_weights(cls, raw: Any) -> Any:
        # The design guide puts class_weights at the top level; it is a training setting.
        if isinstance(raw, Mapping) and "class_weights" in raw:
            raw = dict(raw)
            training = dict(raw.get("training") or {})
            if "class_weights" in training:
                raise ValueError("class_weights is given at the top level and in training")
            training["class_weights"] = raw.pop("class_weights")
            raw["training"] = training
        return raw

    @model_validator(mode="after")
    def _training_fits_the_study(self) -> StudyConfig:
        for model_type, spec in self.models.items():
            both = sorted(set(spec.params()) & set(self.training.optimizer_options))
            if both:
                raise ValueError(
                    f"models.{model_type}: {both[0]!r} is searched and set in "
                    "training.optimizer_options; keep one"
                )
        monitor = self.training.monitor
        if monitor is not None and monitor != self.study.metric:
            raise ValueError(
                f"training.monitor: {monitor!r} differs from study.metric "
                f"{self.study.metric!r}; a study stops, checkpoints and reduces the rate on "
                "its metric: set study.metric or drop the monitor"
            )
        return self

    @field_validator("models")
    @classmethod
    def _models_known(cls, models: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        from hpolab.models.registry import available_models

        if not models:
            raise ValueError("at least one model type is needed")
        known = available_models()
        for name, spec in models.items():
            if spec.builder is not None and name in known:
                raise ValueError(
                    f"{name}: a builder of your own needs a name of its own; {name!r} is "
                    "hpolab's model type"
                )
            if spec.builder is None and name not in known:
                raise ValueError(
                    f"unknown model type {name!r}; available: {', '.join(known)}, or give "
                    f"models.{name}.builder: module:function for a model of your own"
                )
        return models

    @model_validator(mode="after")
    def _check_spaces(self) -> StudyConfig:
        from hpolab.models.registry import accepted_params, default_search_space

        for model_type, spec in self.models.items():
            if spec.builder is not None:
                continue  # the user's builder takes what its space names (checked at start)
            if not spec.search_space and not spec.param_grid:
                # A model named without a space searches its builder's default space.
                spec.search_space = {
                    name: ParamSpec.model_validate(value)
                    for name, value in default_search_space(model_type).items()
                }
            space = spec.params()
            accepted = set(accepted_params(model_type)) | set(TRAINING_KEYS)
            if self.data.spectrogram is not None:
                accepted |= set(PREPROCESSING_KEYS)
            for name, param in space.items():
                if name not in accepted:
                    close = difflib.get_close_matches(name, sorted(accepted), n=1)
                    hint = (
                        f"did you mean {close[0]!r}?"
                        if close
                        else (f"{model_type} accepts {', '.join(sorted(accepted))}")
                    )
                    raise ValueError(f"models.{model_type}: unknown parameter {name!r}; {hint}")
                for parent, wanted in (param.when or {}).items():
                    if parent not in space:
                        raise ValueError(
                            f"models.{model_type}.search_space.{name}.when refers to unknown "
                            f"parameter {parent!r}"
                        )
                    if parent == name:
                        raise ValueError(
                            f"models.{model_type}.search_space.{name}.when is circular"
                        )
                    del wanted
            if self.study.sampler == "grid":
                total = 1
                for name, param in space.items():
                    try:
                        total *= len(param.grid_values())
                    except ValueError as exc:
                        raise ValueError(
                            f"models.{model_type}.search_space.{name}: {exc}"
                        ) from None
                if total > MAX_GRID_POINTS:
                    raise ValueError(
                        f"models.{model_type}: the grid has {total} points (limit "
                        f"{MAX_GRID_POINTS}); use fewer values or another sampler"
                    )
        return self

    def for_task(self, task: str) -> StudyConfig:
        """This config checked against the data's task (the default metric adapted to it)."""
        cfg = self
        if self._default_metric and task != "classification":
            cfg = load_config(self, metric="val_rmse")
        cfg.check_task(task)
        return cfg

    def check_task(self, task: str) -> None:
        """Raise :class:`ConfigError` if the metric does not fit ``task``."""
        allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
        if self.study.metric not in allowed:
            raise ConfigError(
                f"study.metric: {self.study.metric!r} does not apply to {task}; "
                f"choose one of {', '.join(allowed)}"
            )
        if task != "classification" and self.training.loss in CLASSIFICATION_LOSSES:
            raise ConfigError(
                f"training.loss: {self.training.loss!r} is a classification loss and the task "
                "is regression; use auto, mse or mae"
            )


# CLI flag / keyword -> dotted config path.
OVERRIDE_PATHS = {
    "study_name": "study.name",
    "n_trials": "study.n_trials",
    "timeout": "study.timeout",
    "stop_early": "study.stop_early.patience",
    "sampler": "study.sampler",
    "pruner": "study.pruner",
    "seed": "study.seed",
    "metric": "study.metric",
    "storage": "study.storage",
    "workers": "study.workers",
    "tracking_uri": "study.tracking_uri",
    "plots": "study.plots",
    "data": "data.source",
    "target": "data.target",
    "task": "data.task",
    "epochs": "training.epochs",
    "models": "models",
}


def default_config_text() -> str:
    """The YAML text of the built-in default study."""
    return resources.files("hpolab.defaults").joinpath("default_study.yaml").read_text("utf-8")


def load_config(
    source: str | Path | Mapping[str, Any] | StudyConfig | None = None,
    **overrides: Any,
) -> StudyConfig:
    """Load and validate a study config.

    Args:
        source: a YAML path, a mapping, a ``StudyConfig`` or ``None`` for the default study.
        overrides: values keyed as in :data:`OVERRIDE_PATHS` (``n_trials=30``) or by dotted
            path (``{"training.epochs": 5}``); ``None`` values are ignored.

    Raises:
        ConfigError: one line naming the field, the bad value and the fix.
    """
    origin = "default study"
    if isinstance(source, StudyConfig):
        raw: dict[str, Any] = source.model_dump(exclude_unset=True)
    elif source is None:
        raw = _parse_yaml(default_config_text(), origin)
    elif isinstance(source, Mapping):
        raw = _plain_copy(source)
        origin = "config"
    else:
        path = Path(source)
        origin = str(path)
        if not path.is_file():
            raise ConfigError(f"--config: file {str(path)!r} does not exist")
        raw = _parse_yaml(path.read_text(encoding="utf-8"), origin)
        _default_code_path(raw, path)
    replaced_source = overrides.get("data") not in (None, raw.get("data", {}).get("source"))
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "models":
            raw["models"] = _select_models(raw.get("models"), value)
            continue
        if key == "data" and value != raw.get("data", {}).get("source"):
            # Options describe the built-in dataset being replaced, not the new source; so
            # does the default study's spectrogram of its sensor windows.
            raw.get("data", {}).pop("options", None)
            if source is None:
                raw.get("data", {}).pop("spectrogram", None)
        dotted = OVERRIDE_PATHS.get(key, key)
        if "." not in dotted and dotted != "models":
            raise ConfigError(f"unknown override {key!r}; known: {', '.join(OVERRIDE_PATHS)}")
        _set_dotted(raw, dotted, value)
    try:
        cfg = StudyConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: {format_validation_error(exc)}") from None
    metric_given = overrides.get("metric") is not None or "study.metric" in overrides
    if isinstance(source, StudyConfig):
        cfg._default_metric = source._default_metric and not metric_given
    elif source is None:
        cfg._default_metric = replaced_source and not metric_given
    return cfg


def _plain_copy(source: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-plain copy of a config mapping; builder functions are kept as they are."""
    models = source.get("models")
    builders = {}
    if isinstance(models, Mapping):
        builders = {
            name: spec["builder"]
            for name, spec in models.items()
            if isinstance(spec, Mapping) and callable(spec.get("builder"))
        }
    plain = {**source}
    if builders:
        plain["models"] = {
            name: {k: v for k, v in spec.items() if not (k == "builder" and name in builders)}
            if isinstance(spec, Mapping)
            else spec
            for name, spec in models.items()  # type: ignore[union-attr]
        }
    try:
        raw = json.loads(json.dumps(plain))
    except TypeError as exc:
        raise ConfigError(f"config: {exc}; give files, loaders or data=") from None
    for name, builder in builders.items():
        raw["models"][name]["builder"] = builder
    return raw


def _default_code_path(raw: Any, path: Path) -> None:
    """User modules named by a config file are found beside it unless it says otherwise."""
    from hpolab.user_code import is_function_path

    if not isinstance(raw, dict):
        return
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    models = raw.get("models") if isinstance(raw.get("models"), dict) else {}
    named = [data.get(k) for k in ("source", "validation", "test")] + [
        m.get("builder") for m in models.values() if isinstance(m, dict)
    ]
    study = raw.setdefault("study", {}) if isinstance(raw.get("study", {}), dict) else {}
    given = study.get("code_path")
    if isinstance(given, str) and given and not Path(given).expanduser().is_absolute():
        study["code_path"] = str((path.resolve().parent / given).resolve())  # beside it
    elif any(is_function_path(n) for n in named) and not given:
        study["code_path"] = str(path.resolve().parent)


def _select_models(models: Any, wanted: str | list[str]) -> dict[str, Any]:
    """Keep only the ``wanted`` model types (comma-separated or a list)."""
    names = [n.strip() for n in wanted.split(",")] if isinstance(wanted, str) else list(wanted)
    names = [n for n in names if n]
    if not names:
        raise ConfigError("--models: give at least one model type, e.g. --models mlp,cnn1d")
    current = models if isinstance(models, dict) else {}
    # A model type not in the config searches its default space.
    return {name: current.get(name) or {} for name in names}


def _parse_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise ConfigError(f"{origin}: YAML syntax error{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: the top level must be a mapping of sections, not {type(data).__name__}"
        )
    return data


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if child is None or isinstance(child, bool):  # an optional section off, or ``true``
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{part}: must be a mapping to set {dotted}")
        node = child
    node[leaf] = value


def format_validation_error(exc: ValidationError) -> str:
    """Turn pydantic's error list into one readable line."""
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"] if not _is_union_tag(p)]
        field = ".".join(loc) or "config"
        if error["type"] == "extra_forbidden":
            parts.append(_unknown_key_message(loc))
            continue
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] not in ("value_error", "assertion_error") and "input" in error:
            shown = error["input"]
            if not isinstance(shown, dict | list):
                message += f" (got {shown!r})"
        parts.append(f"{field}: {message}")
    return "; ".join(dict.fromkeys(parts))


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and part.startswith(("function-", "literal["))


def _unknown_key_message(loc: list[str]) -> str:
    field = ".".join(loc)
    key = loc[-1]
    known = _known_keys(loc[:-1])
    hint = ""
    if known:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
    return f"{field}: unknown key{hint}"


def _known_keys(parent: list[str]) -> list[str]:
    sections: dict[str, type[BaseModel]] = {
        "study": StudySection,
        "data": DataSection,
        "training": TrainingSection,
    }
    if not parent:
        return list(StudyConfig.model_fields)
    if len(parent) == 1 and parent[0] in sections:
        return list(sections[parent[0]].model_fields)
    if len(parent) == 2 and parent[0] == "models":
        return list(ModelSpec.model_fields)
    if len(parent) == 4 and parent[0] == "models" and parent[2] == "search_space":
        return list(ParamSpec.model_fields)
    return []
