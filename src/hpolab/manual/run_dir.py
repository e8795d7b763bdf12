"""The run folder: checked against the flags, prepared, and the files a run rewrites as it goes."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from typing import Any

import yaml

from hpolab.errors import ConfigError
from hpolab.layout import Layout, RunFolder, atomic_write_json, atomic_write_text, check_name
from hpolab.manual.spec import RunSpec


def default_run_name(model_type: str) -> str:
    """``<model_type>_<UTC timestamp>``."""
    return f"{model_type}_{dt.datetime.now(dt.timezone.utc):%Y%m%d_%H%M%S}"


def check_run_dir(layout: Layout, run_name: str, overwrite: bool, resume: bool) -> RunFolder:
    """The run folder, checked against the flags (nothing is changed).

    Raises:
        ConfigError: the run exists and neither flag was given, or resume finds no run.
    """
    check_name(run_name, "--run-name")
    folder = layout.training_run(run_name)
    if resume:
        if not folder.state.is_file():
            raise ConfigError(f"--resume: no run {run_name!r} under {folder.path.parent}")
    elif folder.path.exists() and any(folder.path.iterdir()) and not overwrite:
        raise ConfigError(
            f"--run-name: run {run_name!r} already exists ({folder.path}); pass --overwrite "
            "to replace it, --resume to continue it, or choose another name"
        )
    return folder


def prepare_run_dir(layout: Layout, run_name: str, overwrite: bool, resume: bool) -> RunFolder:
    """The run folder: new, emptied (``overwrite``) or kept (``resume``); see check_run_dir."""
    folder = check_run_dir(layout, run_name, overwrite, resume)
    if not resume and overwrite and folder.path.exists():
        shutil.rmtree(folder.path)
        shutil.rmtree(layout.manual_model_dir(run_name), ignore_errors=True)
    folder.path.mkdir(parents=True, exist_ok=True)
    return folder


def read_state(folder: RunFolder) -> dict[str, Any]:
    """``run_state.json`` (empty before the run first wrote it)."""
    if not folder.state.is_file():
        return {}
    return json.loads(folder.state.read_text(encoding="utf-8"))


def write_state(folder: RunFolder, **values: Any) -> dict[str, Any]:
    """Update ``run_state.json`` (status, epochs done, MLflow run id) atomically."""
    state = {**read_state(folder), **values}
    atomic_write_json(folder.state, state)
    return state


def write_config(folder: RunFolder, spec: RunSpec) -> None:
    """Write the effective configuration to ``config.yaml`` (a resume reads it back)."""
    atomic_write_text(folder.config, yaml.safe_dump(spec.effective(), sort_keys=False))


def write_history(folder: RunFolder, history: dict[str, list[float]]) -> None:
    """Rewrite ``training_history.json``: epoch numbers and every metric per epoch."""
    n = max((len(v) for v in history.values()), default=0)
    atomic_write_json(folder.history, {"epochs": list(range(1, n + 1)), "metrics": history})


def read_history(folder: RunFolder, epochs: int) -> dict[str, list[float]]:
    """The history of the first ``epochs`` epochs (later ones belong to no checkpoint)."""
    if not folder.history.is_file():
        return {}
    metrics = json.loads(folder.history.read_text(encoding="utf-8")).get("metrics", {})
    return {k: list(v[:epochs]) for k, v in metrics.items()}
