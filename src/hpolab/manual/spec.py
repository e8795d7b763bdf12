"""What a manual run trains: the spec, from a config file, a study's best trial or flags."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hpolab.config import (
    PREPROCESSING_KEYS,
    TRAINING_KEYS,
    StudyConfig,
    TrainingSection,
    load_config,
)
from hpolab.errors import ConfigError, StudyNotFoundError
from hpolab.layout import Layout, RunFolder


@dataclass
class RunSpec:
    """What a manual run trains: data and training config, model type, fixed params."""

    cfg: StudyConfig
    model_type: str
    params: dict[str, Any]
    source: str  # where the params came from, for the log and model_info
    unset: list[str] = field(default_factory=list)  # searched params left at defaults

    def effective(self) -> dict[str, Any]:
        """The configuration as written to ``config.yaml``."""
        return {
            "model_type": self.model_type,
            "params": self.params,
            "params_source": self.source,
            "metric": self.cfg.study.metric,
            "direction": self.cfg.study.direction,
            "seed": self.cfg.study.seed,
            "data": self.cfg.data.model_dump(exclude_none=True),
            "training": self.cfg.training.model_dump(),
        }


def resolve_spec(
    config: str | Path | None = None,
    model_type: str | None = None,
    from_study: str | None = None,
    data: str | None = None,
    target: str | None = None,
    sets: list[str] | None = None,
    metric: str | None = None,
    layout: Layout | None = None,
    storage: str | None = None,
    seed: int | None = None,
) -> RunSpec:
    """Build the run's configuration from a config file, a study's best trial or flags.

    ``sets`` are ``key=value`` strings (YAML values): training keys (``epochs=40``) go to
    the training section, other keys are model parameters (``filters=64``).

    Raises:
        ConfigError: conflicting sources, an unknown parameter, a bad ``--set`` or a
            scikit-learn model type.
        StudyNotFoundError: ``from_study`` names no study, or one without a complete trial.
    """
    layout = layout or Layout.from_root()
    if from_study is not None and config is not None:
        raise ConfigError("--from-study and --config both give a configuration; use one")
    if from_study is not None:
        cfg, model_type, params, source = _from_study(layout, from_study, model_type, storage)
        unset: list[str] = []
        if data or target:
            cfg = load_config(cfg, data=data, target=target)
    else:
        cfg = load_config(config, data=data, target=target)
        model_type = model_type or _only_model_type(cfg)
        params, unset = _fixed_params(cfg, model_type)
        source = f"config {config}" if config else "defaults"
    overrides = _parse_sets(sets or [])
    model_params = {k: v for k, v in overrides.items() if k not in TrainingSection.model_fields}
    cfg = _override(cfg, overrides, metric, seed)
    _check_keras(model_type)
    _check_params(model_type, model_params, cfg)
    params = {**params, **model_params}
    unset = [name for name in unset if name not in params]
    return RunSpec(cfg, model_type, params, source, unset)


def saved_spec(folder: RunFolder) -> RunSpec:
    """The spec a run was started with (its ``config.yaml``): a resume never changes it."""
    if not folder.config.is_file():
        raise ConfigError(f"--resume: no run {folder.name!r} under {folder.path.parent}")
    saved = yaml.safe_load(folder.config.read_text(encoding="utf-8"))
    cfg = load_config(
        {
            "study": {
                "metric": saved["metric"],
                "direction": saved.get("direction"),
                "seed": saved.get("seed"),
            },
            "data": saved["data"],
            "training": saved["training"],
            "models": {saved["model_type"]: {}},
        }
    )
    return RunSpec(cfg, saved["model_type"], saved["params"], saved["params_source"])


def _override(
    cfg: StudyConfig, overrides: dict[str, Any], metric: str | None, seed: int | None
) -> StudyConfig:
    """``cfg`` with the training keys of ``--set``, ``--metric`` and ``--seed`` applied."""
    training = {k: v for k, v in overrides.items() if k in TrainingSection.model_fields}
    if training:
        cfg = load_config(cfg, **{f"training.{k}": v for k, v in training.items()})
    if metric is not None:
        cfg = load_config(cfg, metric=metric)
    if seed is not None:
        cfg = load_config(cfg, seed=seed)
    return cfg


def _from_study(
    layout: Layout, name: str, model_type: str | None, storage: str | None
) -> tuple[StudyConfig, str, dict[str, Any], str]:
    """Config, model type, best params and their source from a stored study."""
    from hpolab.search.catalog import best_trial, open_stored

    stored = open_stored(layout, name, storage)
    if model_type is None:
        if len(stored.model_types) != 1:
            raise ConfigError(
                f"--model-type: study {name!r} has {', '.join(stored.model_types)}; name one"
            )
        model_type = stored.model_types[0]
    stored.check_model_type(model_type)
    best = best_trial(stored.studies[model_type])
    if best is None:
        raise StudyNotFoundError(f"study {name!r} has no complete {model_type} trial yet")
    params = stored.space(model_type).replay(best.params)
    cfg = stored.config(model_type)
    # The study stopped early at the trial's best epoch; a manual run uses the study's
    # epoch budget with early stopping, as the trial did.
    return cfg, model_type, params, f"study {name}, {model_type} trial {best.number}"


def _only_model_type(cfg: StudyConfig) -> str:
    if len(cfg.models) == 1:
        return next(iter(cfg.models))
    raise ConfigError(
        f"--model-type: the config has {', '.join(cfg.models)}; name the one to train"
    )


def _fixed_params(cfg: StudyConfig, model_type: str) -> tuple[dict[str, Any], list[str]]:
    """Fixed values of the model's space; searched ones are listed (builder defaults)."""
    from hpolab.models.registry import model_info

    model_info(model_type)  # unknown model type: one clear error
    spec = cfg.models.get(model_type)
    if spec is None:
        return {}, []
    fixed, searched = {}, []
    for name, param in spec.params().items():
        if param.type == "fixed":
            fixed[name] = param.value
        elif param.type == "categorical" and param.choices and len(param.choices) == 1:
            fixed[name] = param.choices[0]
        else:
            searched.append(name)
    return fixed, searched


def _parse_sets(sets: list[str]) -> dict[str, Any]:
    """``key=value`` strings as a dict, values read as YAML (``[8]``, ``3e-4``, ``true``)."""
    values: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set: {item!r} is not key=value (e.g. --set learning_rate=3e-4)")
        try:
            values[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: cannot read value {raw!r}") from None
    return values


def _check_keras(model_type: str) -> None:
    from hpolab.models.registry import is_keras

    if not is_keras(model_type):
        raise ConfigError(
            f"--model-type: {model_type} is a scikit-learn baseline; manual runs train "
            "Keras models epoch by epoch (run a study to fit a baseline)"
        )


def _check_params(model_type: str, params: dict[str, Any], cfg: StudyConfig) -> None:
    """Refuse a model parameter the builder does not take, with the closest name."""
    from hpolab.models.registry import accepted_params

    accepted = set(accepted_params(model_type)) | set(TRAINING_KEYS)
    if cfg.data.spectrogram is not None:
        accepted |= set(PREPROCESSING_KEYS)
    for name in params:
        if name not in accepted:
            close = difflib.get_close_matches(name, sorted(accepted), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use {', '.join(sorted(accepted))}"
            raise ConfigError(f"--set: {model_type} has no parameter {name!r}; {hint}")
