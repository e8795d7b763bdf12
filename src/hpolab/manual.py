"""Manual training runs (``train_nn_model.py`` / ``hpolab train``): one known configuration.

A run trains with the same code as study trials (:func:`hpolab.training.fit.fit_model`)
and keeps everything in ``training/runs/<run>/``:

``checkpoints/epoch_<n>.keras``   the last few epochs (weights + optimizer state), for resume
``best_model.keras``              the best validation epoch
``final_model_<type>.keras``      the model at the end (best weights restored)
``training_history.json``         every epoch's metrics (rewritten after each epoch)
``model_info.json``               type, params, size, data, timing, test metrics, versions
``config.yaml``                   the effective configuration
``console.log``                   what the run printed
``report.pdf`` + ``*.png``        the run report

The final model is also copied to ``models/manual_runs/<run>/`` with ``model_info.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import yaml

from hpolab.config import TRAINING_KEYS, StudyConfig, TrainingSection, load_config
from hpolab.errors import ConfigError, StudyNotFoundError
from hpolab.layout import Layout, atomic_write_json, atomic_write_text, check_name
from hpolab.progress import QuietReporter, Reporter

if TYPE_CHECKING:
    from hpolab.data import Dataset
    from hpolab.training.callbacks import BestSoFar

KEEP_CHECKPOINTS = 3
STATE_FILE = "run_state.json"


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
            "seed": self.cfg.study.seed,
            "data": self.cfg.data.model_dump(exclude_none=True),
            "training": self.cfg.training.model_dump(),
        }


@dataclass
class RunResult:
    """Where a finished run's files are and what it scored."""

    run_name: str
    run_dir: Path
    final_model: Path
    model_info: dict[str, Any]
    report: Path | None
    report_pages: int
    resumed_from_epoch: int = 0


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
    """
    layout = layout or Layout.from_root()
    if from_study is not None and config is not None:
        raise ConfigError("--from-study and --config both give a configuration; use one")
    if from_study is not None:
        cfg, model_type, params, source = _from_study(layout, from_study, model_type, storage)
        unset: list[str] = []
    else:
        cfg = load_config(config, data=data, target=target)
        model_type = model_type or _only_model_type(cfg)
        params, unset = _fixed_params(cfg, model_type)
        source = f"config {config}" if config else "defaults"
    if from_study is not None and (data or target):
        cfg = load_config(cfg, data=data, target=target)
    overrides = _parse_sets(sets or [])
    training = {k: v for k, v in overrides.items() if k in TrainingSection.model_fields}
    model_params = {k: v for k, v in overrides.items() if k not in TrainingSection.model_fields}
    if training:
        cfg = load_config(cfg, **{f"training.{k}": v for k, v in training.items()})
    if metric is not None:
        cfg = load_config(cfg, metric=metric)
    if seed is not None:
        cfg = load_config(cfg, seed=seed)
    from hpolab.models.registry import is_keras

    if not is_keras(model_type):
        raise ConfigError(
            f"--model-type: {model_type} is a scikit-learn baseline; manual runs train "
            "Keras models epoch by epoch (run a study to fit a baseline)"
        )
    _check_params(model_type, model_params, cfg)
    params = {**params, **model_params}
    unset = [name for name in unset if name not in params]
    return RunSpec(cfg, model_type, params, source, unset)


def _from_study(
    layout: Layout, name: str, model_type: str | None, storage: str | None
) -> tuple[StudyConfig, str, dict[str, Any], str]:
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


def _check_params(model_type: str, params: dict[str, Any], cfg: StudyConfig) -> None:
    import difflib

    from hpolab.config import PREPROCESSING_KEYS
    from hpolab.models.registry import accepted_params

    accepted = set(accepted_params(model_type)) | set(TRAINING_KEYS)
    if cfg.data.spectrogram is not None:
        accepted |= set(PREPROCESSING_KEYS)
    for name in params:
        if name not in accepted:
            close = difflib.get_close_matches(name, sorted(accepted), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use {', '.join(sorted(accepted))}"
            raise ConfigError(f"--set: {model_type} has no parameter {name!r}; {hint}")


def default_run_name(model_type: str) -> str:
    """``<model_type>_<UTC timestamp>``."""
    return f"{model_type}_{dt.datetime.now(dt.timezone.utc):%Y%m%d_%H%M%S}"


def check_run_dir(layout: Layout, run_name: str, overwrite: bool, resume: bool) -> Path:
    """The run folder, checked against the flags (nothing is changed).

    Raises:
        ConfigError: the run exists and neither flag was given, or resume finds no run.
    """
    check_name(run_name, "--run-name")
    run_dir = layout.training_run_dir(run_name)
    if resume:
        if not (run_dir / STATE_FILE).is_file():
            raise ConfigError(f"--resume: no run {run_name!r} under {run_dir.parent}")
    elif run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise ConfigError(
            f"--run-name: run {run_name!r} already exists ({run_dir}); pass --overwrite "
            "to replace it, --resume to continue it, or choose another name"
        )
    return run_dir


def prepare_run_dir(layout: Layout, run_name: str, overwrite: bool, resume: bool) -> Path:
    """The run folder: new, emptied (``overwrite``) or kept (``resume``); see check_run_dir."""
    run_dir = check_run_dir(layout, run_name, overwrite, resume)
    if not resume and overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
        shutil.rmtree(layout.manual_model_dir(run_name), ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def train_run(
    spec: RunSpec | None,
    run_name: str | None = None,
    root: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    experiment: str | None = "manual_runs",
    reporter: Reporter | None = None,
) -> RunResult:
    """Train ``spec`` into a run folder (or continue it), report, export, track.

    With ``resume=True`` the run continues with the configuration it started with
    (``spec`` may be ``None``) from its last epoch checkpoint.
    """
    reporter = reporter or QuietReporter()
    layout = Layout.from_root(root)
    if spec is None and not (resume and run_name):
        raise ConfigError("train_run: give a spec, or resume=True with the run_name")
    run_name = run_name or default_run_name(spec.model_type)  # type: ignore[union-attr]
    run_dir = check_run_dir(layout, run_name, overwrite, resume)
    if resume:
        spec = saved_spec(run_dir)
    assert spec is not None
    from hpolab.data import load_dataset

    # The data is loaded and checked before the run folder is touched, so bad data or a
    # metric that does not fit it leaves an existing run (and its name) as it was.
    data = load_dataset(spec.cfg.data, layout.preprocessing_cache_dir).for_params(spec.params)
    spec.cfg = spec.cfg.for_task(data.task)
    run_dir = prepare_run_dir(layout, run_name, overwrite, resume)
    with _tee(run_dir / "console.log", append=resume) as log:
        reporter = _LoggedReporter(reporter, log)
        reporter.message(f"run [bold]{run_name}[/]: {spec.model_type} ({spec.source}) -> {run_dir}")
        if spec.unset:
            reporter.message(
                f"searched in the config, left at the builder's defaults: {', '.join(spec.unset)}"
                " (set them with --set name=value or use --from-study)"
            )
        return _train(spec, data, run_name, run_dir, layout, resume, experiment, reporter)


def saved_spec(run_dir: Path) -> RunSpec:
    """The spec a run was started with (its ``config.yaml``): a resume never changes it."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"--resume: no run {run_dir.name!r} under {run_dir.parent}")
    saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg = load_config(
        {
            "study": {"metric": saved["metric"], "seed": saved.get("seed")},
            "data": saved["data"],
            "training": saved["training"],
            "models": {saved["model_type"]: {}},
        }
    )
    return RunSpec(cfg, saved["model_type"], saved["params"], saved["params_source"])


def write_state(run_dir: Path, **values: Any) -> dict[str, Any]:
    """Update ``run_state.json`` (status, epochs done, MLflow run id) atomically."""
    path = run_dir / STATE_FILE
    state = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    state.update(values)
    atomic_write_json(path, state)
    return state


def write_config(run_dir: Path, spec: RunSpec) -> None:
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(spec.effective(), sort_keys=False))


class _Tee:
    def __init__(self, stream: TextIO, log: TextIO) -> None:
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class _LoggedReporter:
    """Forwards messages to the user's reporter and writes them, plain, to the log.

    The reporter's console was made before the log existed, so it does not go through
    the stdout copy; its messages are logged here instead.
    """

    def __init__(self, inner: Reporter, log: TextIO) -> None:
        self.inner, self.log = inner, log

    def message(self, text: str) -> None:
        from rich.text import Text

        self.log.write(Text.from_markup(text).plain + "\n")
        self.log.flush()
        self.inner.message(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextlib.contextmanager
def _tee(path: Path, append: bool) -> Iterator[TextIO]:
    """Copy stdout and stderr to ``path`` while the run works."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as log:
        if append:
            log.write(f"\n--- resumed {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC\n")
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(out, log), _Tee(err, log)  # type: ignore[assignment]
        try:
            yield log
        finally:
            sys.stdout, sys.stderr = out, err


def _train(
    spec: RunSpec,
    data: Dataset,
    run_name: str,
    run_dir: Path,
    layout: Layout,
    resume: bool,
    experiment: str | None,
    reporter: Reporter,
) -> RunResult:
    import keras

    from hpolab.models import build_model
    from hpolab.training.callbacks import RollingCheckpoint, checkpoint_epoch, checkpoints
    from hpolab.training.evaluation import evaluate_model, test_predictions
    from hpolab.training.fit import fit_model, seed_everything, training_params
    from hpolab.training.saving import library_versions, load_model

    cfg = spec.cfg
    reporter.message(data.summary())
    hp = training_params(spec.params, cfg.training)
    metric, direction = cfg.study.metric, cfg.study.resolved_direction
    total_epochs = int(hp["epochs"])
    history: dict[str, list[float]] = {}
    state = json.loads((run_dir / STATE_FILE).read_text()) if resume else {}
    if state.get("status") == "complete":
        raise ConfigError(
            f"--resume: run {run_name!r} is already complete; use --overwrite to train it again"
        )
    ckpts = checkpoints(run_dir / "checkpoints")
    initial_epoch = checkpoint_epoch(ckpts[-1]) if (resume and ckpts) else 0
    # Same seed, same run: weights, dropout and shuffling. A resumed run reseeds per
    # epoch reached, as the generator state inside the killed process is gone.
    seed_everything(None if cfg.study.seed is None else cfg.study.seed + initial_epoch)
    if initial_epoch:
        model = load_model(ckpts[-1])  # optimizer state and schedule step included
        history = _read_history(run_dir, initial_epoch)
        reporter.message(
            f"resuming from epoch {initial_epoch} of {total_epochs} ({ckpts[-1].name})"
        )
    else:
        write_config(run_dir, spec)
        model = build_model(
            spec.model_type, spec.params, data.input_shape, data.task, data.n_outputs
        )
    state = write_state(
        run_dir,
        status="running",
        run_name=run_name,
        model_type=spec.model_type,
        epochs_done=initial_epoch,
        total_epochs=total_epochs,
    )
    run = _tracking_run(layout, experiment, run_name, state, spec, hp)
    if run is not None:
        write_state(run_dir, mlflow_run_id=run.run_id)

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        atomic_write_json(run_dir / "training_history.json", _history_json(history))
        shown = ", ".join(
            f"{k} {v:.4g}" for k, v in logs.items() if k in ("loss", "val_loss", metric)
        )
        reporter.message(f"epoch {epoch}/{total_epochs}: {shown}")
        if run is not None:
            run.log_epoch(epoch, logs)

    previous_best = _best_value(history.get(metric, []), direction)
    best_checkpoint = keras.callbacks.ModelCheckpoint(
        run_dir / "best_model.keras",
        monitor=metric,
        mode="min" if direction == "minimize" else "max",
        save_best_only=True,
        initial_value_threshold=previous_best,
    )
    before = float(state.get("train_seconds", 0.0))  # time of the epochs before a stop
    start = time.perf_counter()
    rolling = RollingCheckpoint(
        run_dir / "checkpoints",
        KEEP_CHECKPOINTS,
        on_saved=lambda epoch: write_state(
            run_dir, epochs_done=epoch, train_seconds=before + elapsed(start)
        ),
    )
    try:
        fit_model(
            model,
            data,
            hp,
            monitor=metric,
            direction=direction,
            hooks=[on_epoch],
            verbose=0,
            run_dir=run_dir,
            extra_callbacks=[best_checkpoint, rolling],
            initial_epoch=initial_epoch,
            compile=not initial_epoch,
            resume_best=_best_so_far(run_dir, history.get(metric, []), previous_best),
        )
    except BaseException as exc:
        if run is not None and not isinstance(exc, KeyboardInterrupt):
            run.end("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    seconds = before + elapsed(start)
    final_path = run_dir / f"final_model_{spec.model_type}.keras"
    from hpolab.layout import atomic_save

    atomic_save(final_path, lambda tmp: model.save(tmp), suffix=".keras")
    test_metrics = evaluate_model(model, data, data.X_test, data.y_test)
    values = history.get(metric, [])
    best_index = values.index(_best_value(values, direction)) if values else 0
    info = {
        "run_name": run_name,
        "model_type": spec.model_type,
        "params": spec.params,
        "params_source": spec.source,
        "training": {
            k: hp[k]
            for k in (
                "epochs",
                "batch_size",
                "optimizer",
                "learning_rate",
                "loss",
                "lr_schedule",
                "patience",
            )
        },
        "metric": metric,
        "direction": direction,
        "best_epoch": best_index + 1,
        "best_value": values[best_index] if values else None,
        "epochs_run": len(values),
        "resumed_from_epoch": initial_epoch or None,
        "parameter_count": int(model.count_params()),
        "input_shape": list(data.input_shape),
        "task": data.task,
        "classes": data.classes,
        "data": {
            "source": data.source,
            "target": data.target,
            "fingerprint": data.fingerprint,
            "summary": data.summary(),
        },
        "preprocessing": data.preprocessing(),
        "training_seconds": round(seconds, 2),
        "test_metrics": {k: round(float(v), 6) for k, v in test_metrics.items()},
        "test_outputs": test_predictions(model, data),
        "files": {"final_model": final_path.name, "best_model": "best_model.keras"},
        "mlflow_run_id": run.run_id if run is not None else None,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
    atomic_write_json(run_dir / "model_info.json", info)
    from hpolab.reporting.run_report import build_run_report

    report = run_dir / "report.pdf"
    pages, pngs = build_run_report(report, info, history)
    reporter.message(f"report: {report} ({pages} pages)")
    export_dir = layout.manual_model_dir(run_name)
    export_dir.mkdir(parents=True, exist_ok=True)
    for path in (final_path, run_dir / "model_info.json"):
        shutil.copy2(path, export_dir / path.name)
    if run is not None:
        for path in [
            report,
            final_path,
            run_dir / "model_info.json",
            run_dir / "training_history.json",
            run_dir / "config.yaml",
            *pngs,
        ]:
            run.log_artifact(path)
        run.end("complete", info["best_value"], attrs={"best_epoch": info["best_epoch"]})
    write_state(run_dir, status="complete", train_seconds=round(seconds, 2))
    reporter.message(
        f"test: {', '.join(f'{k} {v:.4g}' for k, v in test_metrics.items())}; "
        f"final model: {export_dir / final_path.name}"
    )
    return RunResult(run_name, run_dir, final_path, info, report, pages, initial_epoch)


def _tracking_run(
    layout: Layout,
    experiment: str | None,
    run_name: str,
    state: dict[str, Any],
    spec: RunSpec,
    hp: dict[str, Any],
) -> Any:
    if not experiment:
        return None
    from hpolab.tracking import StudyTracker

    tracker = StudyTracker(layout.tracking_uri, layout.artifacts_dir, experiment)
    if state.get("mlflow_run_id"):
        resumed = tracker.resume_run(state["mlflow_run_id"])
        if resumed is not None:
            return resumed
    params = {
        "model_type": spec.model_type,
        **spec.params,
        **{k: hp[k] for k in TRAINING_KEYS if k in hp},
    }
    return tracker.start_run(run_name, params, role="manual")


def _best_so_far(run_dir: Path, values: list[float], best: float | None) -> BestSoFar | None:
    """Early stopping's state before a stop: best value, its epoch, best_model.keras weights."""
    from hpolab.training.callbacks import BestSoFar
    from hpolab.training.saving import load_model

    path = run_dir / "best_model.keras"
    if best is None or not path.is_file():
        return None
    return BestSoFar(best, values.index(best) + 1, load_model(path).get_weights())


def _best_value(values: list[float], direction: str) -> float | None:
    finite = [v for v in values if v == v]
    if not finite:
        return None
    return min(finite) if direction == "minimize" else max(finite)


def _history_json(history: dict[str, list[float]]) -> dict[str, Any]:
    n = max((len(v) for v in history.values()), default=0)
    return {"epochs": list(range(1, n + 1)), "metrics": history}


def _read_history(run_dir: Path, epochs: int) -> dict[str, list[float]]:
    """The history of the first ``epochs`` epochs (later ones belong to no checkpoint)."""
    path = run_dir / "training_history.json"
    if not path.is_file():
        return {}
    metrics = json.loads(path.read_text(encoding="utf-8")).get("metrics", {})
    return {k: list(v[:epochs]) for k, v in metrics.items()}


def elapsed(start: float) -> float:
    return round(time.perf_counter() - start, 2)
