"""The one training core: seeding, Keras clean-up, compile and the only ``model.fit``.

Every front-end (study trial, cross-validation fold, final retrain, manual run,
``ModelTrainer``, cached estimators) trains through :func:`fit_arrays`; those with a
:class:`~hpolab.data.Dataset` go through :func:`fit_model` (or :func:`build_and_fit`, which
also seeds and builds the model from the registry). They differ only in the hooks and
callbacks they pass.

Training never sees an Optuna trial or an MLflow run: callers pass *epoch hooks*, plain
functions ``hook(epoch, logs) -> bool`` called after each epoch with every metric;
a hook returning ``True`` stops training (the pruner uses this).
"""

from __future__ import annotations

import gc
import itertools
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from hpolab.config import TRAINING_KEYS, TrainingSection
from hpolab.data.dataset import Dataset
from hpolab.errors import ConfigError, TrialFailed
from hpolab.training.baselines import fit_estimator, is_estimator
from hpolab.training.callbacks import (
    BestSoFar,
    ResumableEarlyStopping,
    build_callbacks,
    keras_mode,
)
from hpolab.training.losses import (
    CUSTOM_LOSSES,
    balanced_class_weights,
    class_indices,
    get_loss_function,
)
from hpolab.training.metrics import compute_metrics
from hpolab.training.optimizers import (
    SCHEDULE_OPTIONS,
    accepts,
    get_learning_rate_schedule,
    get_optimizer,
)
from hpolab.training.result import NAN_LOSS_MESSAGE, EpochHook, TrainResult, fit_targets
from hpolab.training.saving import check_round_trip


def limit_threads(intra_op: int, inter_op: int = 1) -> bool:
    """Cap TensorFlow's thread pools so that local worker processes share the cores.

    Must run before TensorFlow's first operation in the process (its pools are fixed
    then); returns False if it was too late. The environment variables TensorFlow also
    reads leave extra threads spinning, measurably slower with two workers on two cores.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:
        return False
    return True


def seed_everything(seed: int | None) -> None:
    """Seed Python, NumPy and the backend (weights, dropout, shuffling); ``None``: no-op."""
    if seed is not None:
        keras.utils.set_random_seed(int(seed))


_CLEARS = itertools.count(1)
FULL_COLLECT_EVERY = 10


def clear_keras() -> None:
    """Drop Keras' global state once a model is no longer needed.

    Without it every model's graph stays in memory and a long study grows (TensorFlow's
    registry of custom gradients too: :func:`_forget_custom_gradients`). A full garbage
    collection frees little that reference counting has not and costs ~0.2 s with
    TensorFlow's objects in the heap (milliseconds while a search holds them frozen): it
    runs every tenth call (memory stays flat: ``benchmarks/flat_cost.py``).
    """
    keras.backend.clear_session(free_memory=False)
    _forget_custom_gradients()
    if next(_CLEARS) % FULL_COLLECT_EVERY == 0:
        gc.collect()


def _forget_custom_gradients() -> None:
    """Drop the gradient functions TensorFlow registered while tracing the models just
    cleared.

    Each trace of a ``tf.custom_gradient`` (Keras' training step makes two) adds an entry
    named ``CustomGradient-<n>`` to TensorFlow's global gradient registry and never removes
    it; the entry's closure holds the traced graph, so every trial leaked its whole train
    function (~4 MB, and a heap that garbage collections walk ever longer). The gradients
    of the cleared models' traced steps are already built: nothing looks them up again.
    The registry is TensorFlow's private state: without it (another TensorFlow, another
    backend) nothing is dropped.
    """
    if keras.backend.backend() != "tensorflow":
        return
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "gradient_registry", None), "_registry", None)
    if isinstance(registry, dict):
        for name in [k for k in registry if str(k).startswith("CustomGradient-")]:
            del registry[name]


def training_params(params: dict[str, Any], defaults: TrainingSection) -> dict[str, Any]:
    """Training settings: config defaults overridden by searched/fixed ``params``."""
    merged: dict[str, Any] = defaults.model_dump()
    merged.update({k: v for k, v in params.items() if k in TRAINING_KEYS})
    return merged


def compile_model(
    model: keras.Model,
    task: str,
    hp: dict[str, Any],
    labels: np.ndarray | None = None,
    steps_per_epoch: int | None = None,
    classes: Sequence[Any] | None = None,
) -> None:
    """Compile ``model`` with the optimizer, learning-rate schedule, loss and metrics in ``hp``.

    ``labels`` (training class indices) serve ``class_weights: balanced``, ``classes``
    (labels in index order) a loss option naming a class by label;
    ``steps_per_epoch`` turns epoch counts of the schedule into optimizer steps.

    Raises:
        ConfigError: an unknown loss, optimizer, schedule, metric or option of one of them.
    """
    loss = hp.get("loss", "auto")
    if loss == "auto":
        loss = "sparse_categorical_crossentropy" if task == "classification" else "mse"
    if loss in CUSTOM_LOSSES and task != "classification":
        raise ConfigError(f"training.loss: {loss!r} is for classification; use mse or mae")
    n_classes = int(model.output_shape[-1]) if task == "classification" else None
    options = dict(hp.get("loss_options") or {})
    # Class indices meet one-hot Keras losses in the form they take; regression values
    # meet every Keras loss as it is.
    one_hot = task == "classification"
    loss_fn = get_loss_function(loss, labels, n_classes, classes, one_hot=one_hot, **options)
    model.compile(
        optimizer=make_optimizer(hp, steps_per_epoch),
        loss=loss_fn,
        metrics=_metrics(hp.get("metrics"), task),
    )


def _metrics(names: Sequence[str] | None, task: str) -> list[Any]:
    """Keras metrics to compile: ``names`` checked, or accuracy for classification."""
    if names is None:
        return ["accuracy"] if task == "classification" else []
    for name in names:
        try:
            keras.metrics.get(name)
        except (ValueError, TypeError):
            raise ConfigError(
                f"training.metrics: unknown Keras metric {name!r}; e.g. accuracy, auc, mae"
            ) from None
    return list(names)


def make_optimizer(
    hp: dict[str, Any], steps_per_epoch: int | None = None
) -> keras.optimizers.Optimizer:
    """The optimizer of ``hp`` (default adam) at ``learning_rate``, with its schedule.

    ``lr_schedule`` other than ``constant`` needs ``steps_per_epoch``: the warmup lasts
    ``warmup_epochs`` and the decay the remaining epochs, down to ``min_learning_rate``;
    ``lr_schedule_options`` (in steps) override those. ``optimizer_options`` are the
    optimizer's own arguments; searched ``momentum`` / ``nesterov`` / ``weight_decay`` go
    to the optimizers that take them (a space may pair them with several optimizers).
    """
    lr: Any = float(hp.get("learning_rate", 1e-3))
    kind = hp.get("lr_schedule", "constant") or "constant"
    warmup_epochs = int(hp.get("warmup_epochs", 0) or 0)
    given = dict(hp.get("lr_schedule_options") or {})
    if kind != "constant" or warmup_epochs or given:
        lr = get_learning_rate_schedule(
            kind, lr, {**_epoch_schedule(hp, steps_per_epoch, given), **given}
        )
    name = hp.get("optimizer", "adam")
    searched = {
        k: hp[k]
        for k in ("weight_decay", "momentum", "nesterov")
        if hp.get(k) is not None and accepts(name, k)
    }
    options = dict(hp.get("optimizer_options") or {})
    both = sorted(set(searched) & set(options))
    if both:
        raise ConfigError(
            f"training.optimizer_options.{both[0]}: also a searched or training parameter; keep one"
        )
    return get_optimizer(name, lr, **searched, **options)


def _epoch_schedule(
    hp: dict[str, Any], steps_per_epoch: int | None, given: dict[str, Any]
) -> dict[str, Any]:
    """Schedule steps from the epoch settings, leaving out what ``given`` sets itself."""
    steps = max(int(steps_per_epoch or 1), 1)
    warmup = int(given.get("warmup_steps", int(hp.get("warmup_epochs", 0) or 0) * steps))
    total = max(int(hp.get("epochs", 1)) * steps, warmup + 1)
    derived = {
        "warmup_steps": warmup,
        "decay_steps": total - warmup,
        "floor": float(hp.get("min_learning_rate", 0.0) or 0.0),
    }
    overridden = {
        "decay_steps": ("decay_steps", "total_steps"),
        "floor": ("floor", "min_lr", "min_learning_rate"),
        "warmup_steps": ("warmup_steps",),
    }
    kind = hp.get("lr_schedule", "constant") or "constant"
    used = SCHEDULE_OPTIONS.get(kind, ())
    return {k: v for k, v in derived.items() if k in used and not set(overridden[k]) & set(given)}


class StopOnNaN(keras.callbacks.Callback):
    """Stop at the first non-finite batch loss, silently (the caller reports it once)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True


class _EpochBridge(keras.callbacks.Callback):
    """Validates once per epoch and calls the epoch hooks.

    One forward pass over the validation rows gives every ``val_`` value: the loss and the
    compiled Keras metrics (what Keras's own validation pass logs) and hpolab's metrics
    (accuracy, f1_macro, auc / rmse, mae, r2). Keras's pass followed by a prediction did
    the work twice, with two more traced functions per model.
    """

    def __init__(
        self, data: Dataset | None, hooks: Sequence[EpochHook], keras_metrics: bool = True
    ) -> None:
        super().__init__()
        self._data = data
        self._y_fit = None if data is None else fit_targets(data, data.y_val)
        self._keras_metrics = keras_metrics
        self._hooks = list(hooks)
        self.stopped_by_hook = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs if logs is not None else {}
        if self._data is not None:
            logs.update(validation_logs(self.model, self._data, self._y_fit, self._keras_metrics))
        plain = {k: float(v) for k, v in logs.items() if k != "learning_rate"}
        for hook in self._hooks:
            if hook(epoch + 1, plain):
                self.stopped_by_hook = True
                self.model.stop_training = True


VALIDATION_CHUNK = 4096


def forward(model: keras.Model, X: np.ndarray) -> np.ndarray:
    """The model's outputs for ``X`` in inference mode, as NumPy.

    Direct calls in chunks: for the validation rows of a trial, this is faster than
    ``model.predict``, which traces a function for every new model.
    """
    parts = [
        keras.ops.convert_to_numpy(model(X[i : i + VALIDATION_CHUNK], training=False))
        for i in range(0, len(X), VALIDATION_CHUNK)
    ]
    return np.concatenate(parts) if parts else np.empty((0,))


def validation_logs(
    model: keras.Model,
    data: Dataset,
    y_fit: np.ndarray | None = None,
    keras_metrics: bool = True,
) -> dict[str, float]:
    """Every ``val_`` value of the model on ``data``'s validation rows, from one pass.

    ``keras_metrics=False``: the model was compiled with the default metrics (accuracy for
    classification, none for regression), which hpolab's own metrics already give.
    """
    y_fit = fit_targets(data, data.y_val) if y_fit is None else y_fit
    raw = forward(model, data.X_val)
    loss = model.compute_loss(x=None, y=y_fit, y_pred=raw, training=False)
    # The compiled metrics' state is reset before each epoch and by Keras's own validation
    # pass alike; the training values are already in this epoch's logs.
    logs: dict[str, float] = {}
    if keras_metrics:
        model.reset_metrics()
        logs.update(
            (f"val_{k}", float(v))
            for k, v in model.compute_metrics(None, y_fit, raw).items()
            if k != "loss"
        )
    logs["val_loss"] = float(loss)
    for name, value in compute_metrics(data.task, data.y_val, raw, data.target_scaler).items():
        logs[f"val_{name}"] = value
    return logs


def fit_arrays(
    model: keras.Model,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
    initial_epoch: int = 0,
    class_weight: dict[int, float] | None = None,
) -> tuple[dict[str, list[float]], float]:
    """Fit a compiled Keras model: the one place ``model.fit`` is called.

    Training stops at the first non-finite batch loss. Returns the per-epoch history and
    the seconds spent.

    Raises:
        TrialFailed: the loss became NaN or infinite.
    """
    start = time.perf_counter()
    build_state(model, X, y)
    batches = training_batches(X, y, int(batch_size), class_weight)
    history = model.fit(
        X if batches is None else batches,
        y if batches is None else None,
        validation_data=validation,
        initial_epoch=initial_epoch,
        epochs=int(epochs),
        batch_size=int(batch_size) if batches is None else None,
        callbacks=[StopOnNaN(), *callbacks],
        verbose=verbose,
        shuffle=batches is None,  # the pipeline shuffles itself
        class_weight=class_weight if batches is None else None,  # or in the pipeline
    )
    seconds = time.perf_counter() - start
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    losses = hist.get("loss", [])
    if not losses or not all(math.isfinite(v) for v in losses):
        raise TrialFailed(NAN_LOSS_MESSAGE)
    return hist, seconds


def training_batches(
    X: Any, y: Any, batch_size: int, class_weight: dict[int, float] | None = None
) -> Any:
    """The training rows as a ``tf.data`` pipeline: shuffled row indices, one gather per
    batch (every row once per epoch, a new order each epoch, the last batch partial).

    Keras's own pipeline for arrays starts each epoch with an iterator of several traced
    functions: it made an epoch of the race's model 1.45x as long, 46 ms against 32 ms
    (``benchmarks/epoch_cost.py``, one thread). The order follows the seed like Keras's.
    ``class_weight`` becomes per-row weights as Keras gives them (1 for a class it does
    not name). ``None`` (Keras takes the arrays itself): another backend, or inputs that
    are not arrays.
    """
    if keras.backend.backend() != "tensorflow":
        return None
    if not (isinstance(X, np.ndarray) and isinstance(y, np.ndarray)) or len(X) == 0:
        return None
    import tensorflow as tf

    columns = [_floatx(X), _floatx(y)]
    if class_weight:
        classes = np.argmax(y, axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1)
        weights = [class_weight.get(int(c), 1.0) for c in np.round(classes).astype(int)]
        columns.append(np.asarray(weights, dtype=keras.backend.floatx()))
    tensors = tuple(tf.constant(column) for column in columns)
    rows = tf.data.Dataset.range(len(X)).shuffle(len(X), reshuffle_each_iteration=True)
    return rows.batch(batch_size).map(lambda i: tuple(tf.gather(t, i) for t in tensors))


def _floatx(values: np.ndarray) -> np.ndarray:
    """Floating values in Keras's float type (what Keras's own array pipeline feeds)."""
    if np.issubdtype(values.dtype, np.floating):
        return values.astype(keras.backend.floatx(), copy=False)
    return values


def build_state(model: keras.Model, X: np.ndarray, y: np.ndarray) -> None:
    """Create the optimizer's and compiled metrics' variables before ``fit`` traces.

    Without a distribution strategy, Keras creates them inside the first trace of its
    train step, and TensorFlow then traces the step a second time without them: about
    0.24 s per new model here (``benchmarks/epoch_cost.py``), a fifth of a small trial.
    Keras's own symbolic build (what ``fit`` runs under a distribution strategy) creates
    them without computing anything, so the training itself is unchanged. Where it is
    missing or fails (a model that cannot be built symbolically), ``fit`` builds as before.
    """
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is None or not model.built or len(X) == 0:
        return
    try:
        symbolic_build(data_batch=(X[:1], y[:1], None))
    except Exception:  # only a speed-up: fit builds the rest itself, as before
        return


def early_stopping(
    monitor: str,
    direction: str,
    patience: int,
    resume: BestSoFar | None = None,
    initial_epoch: int = 0,
) -> ResumableEarlyStopping:
    """Early stopping on ``monitor`` with the best weights restored (resumable)."""
    return ResumableEarlyStopping(
        monitor=monitor,
        mode=keras_mode(direction),
        patience=int(patience),
        restore_best_weights=True,
        resume=resume,
        initial_epoch=initial_epoch,
    )


def fit_model(
    model: keras.Model,
    data: Dataset,
    hp: dict[str, Any],
    *,
    monitor: str,
    direction: str,
    hooks: Sequence[EpochHook] = (),
    use_validation: bool = True,
    verbose: int = 0,
    run_dir: Path | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    initial_epoch: int = 0,
    compile: bool = True,
    resume_best: BestSoFar | None = None,
    history_before: dict[str, list[float]] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` with early stopping on ``monitor``.

    With ``use_validation=False`` (retraining the best configuration) the model is fit on
    train + validation for exactly ``hp["epochs"]`` epochs, without early stopping.
    A resumed manual run passes a model loaded from its checkpoint with ``compile=False``
    (its optimizer state and schedule step come with it) and ``initial_epoch``, the number
    of epochs already done; ``hp["epochs"]`` stays the total. ``resume_best`` (best value,
    epoch and weights before the stop) lets early stopping continue its count and restore
    the best weights of the whole run. ``history_before`` (the metrics of the epochs
    already done) makes the result cover the whole run; without ``resume_best``, early
    stopping then continues from the best epoch of that history.

    A scikit-learn estimator (a baseline) is fit in one call instead; see
    :func:`hpolab.training.baselines.fit_estimator`.

    Raises:
        TrialFailed: the loss became NaN or infinite.
    """
    if is_estimator(model):
        return fit_estimator(
            model, data, monitor=monitor, hooks=hooks, use_validation=use_validation
        )
    batch_size = int(hp["batch_size"])
    # The validation rows are evaluated by the epoch bridge, once (see _EpochBridge).
    X_fit, y_fit = _fit_split(data, use_validation)
    if compile:
        compile_model(
            model,
            data.task,
            hp,
            labels=data.y_train if data.task == "classification" else None,
            steps_per_epoch=math.ceil(len(X_fit) / batch_size),
            classes=data.classes,
        )
    bridge = _EpochBridge(
        data if use_validation else None, hooks, keras_metrics=hp.get("metrics") is not None
    )
    callbacks: list[keras.callbacks.Callback] = [bridge]
    history_before = history_before or {}
    if use_validation:
        if resume_best is None and history_before:
            resume_best = best_in_history(model, history_before, monitor, direction)
        callbacks.extend(_watching(hp, run_dir, monitor, direction, resume_best, initial_epoch))
    if history_before and _was_done(hp, initial_epoch, resume_best, use_validation):
        return _result(history_before, monitor, direction, 0.0, bridge)
    hist, seconds = fit_arrays(
        model,
        X_fit,
        y_fit,
        epochs=hp["epochs"],
        batch_size=batch_size,
        callbacks=[*callbacks, *extra_callbacks],
        verbose=verbose,
        initial_epoch=initial_epoch,
        class_weight=class_weights(hp.get("class_weight"), data),
    )
    hist = {k: [*history_before.get(k, []), *v] for k, v in hist.items()}
    return _result(hist, monitor if use_validation else "loss", direction, seconds, bridge)


def _watching(
    hp: dict[str, Any],
    run_dir: Path | None,
    monitor: str,
    direction: str,
    resume_best: BestSoFar | None,
    initial_epoch: int,
) -> list[keras.callbacks.Callback]:
    """Callbacks that watch the validation metric: the configured ones, early stopping."""
    callbacks = build_callbacks(
        hp.get("callbacks") or {}, run_dir, monitor=monitor, direction=direction
    )
    if hp.get("early_stopping", True):
        callbacks.append(
            early_stopping(monitor, direction, hp["patience"], resume_best, initial_epoch)
        )
    return callbacks


def _was_done(
    hp: dict[str, Any], initial_epoch: int, best: BestSoFar | None, use_validation: bool
) -> bool:
    """Whether a training stopped after ``initial_epoch`` epochs had already finished:
    its last epoch was done, or early stopping ended it at that epoch."""
    if initial_epoch >= int(hp["epochs"]):
        return True
    stopping = use_validation and hp.get("early_stopping", True) and best is not None
    return bool(stopping and best is not None and initial_epoch - best.epoch >= int(hp["patience"]))


def best_in_history(
    model: keras.Model, history: dict[str, list[float]], monitor: str, direction: str
) -> BestSoFar | None:
    """Early stopping's state after ``history``: its best value and epoch (the model's
    current weights stand in for the best ones, which a trial never keeps)."""
    values = history.get(monitor) or []
    if not values or all(math.isnan(v) for v in values):
        return None
    pick = np.nanargmin if direction == "minimize" else np.nanargmax
    best = int(pick(values))
    return BestSoFar(float(values[best]), best + 1, model.get_weights())


def build_and_fit(
    model_type: str,
    params: dict[str, Any],
    data: Dataset,
    hp: dict[str, Any],
    *,
    seed: int | None,
    monitor: str,
    direction: str,
    **fit_options: Any,
) -> tuple[Any, TrainResult]:
    """Seed, build ``model_type`` from the registry with ``params`` and train it on ``data``.

    ``fit_options`` are those of :func:`fit_model` (hooks, ``use_validation``, ...).
    Returns the trained model and the result; the caller calls :func:`clear_keras` once
    it no longer needs the model.
    """
    from hpolab.models import build_model

    seed_everything(seed)
    model = build_model(model_type, params, data.input_shape, data.task, data.n_outputs)
    result = fit_model(model, data, hp, monitor=monitor, direction=direction, **fit_options)
    return model, result


def check_builds(
    model_type: str,
    data: Dataset,
    training: Sequence[dict[str, Any]] = (),
    params: dict[str, Any] | None = None,
    round_trip: str | None = None,
) -> None:
    """Build ``model_type`` with ``params`` (default: its defaults) for ``data``, compile
    it with each of ``training`` (training settings) and drop it. ``round_trip`` (a config
    field): also save and load the model back, as a final model is.

    A builder that cannot take the data's shape (``cnn2d`` on tabular data), or a loss,
    optimizer, schedule or metric that does not exist, fails here, before a study stores
    anything.
    """
    from hpolab.models import build_model

    model = build_model(model_type, params or {}, data.input_shape, data.task, data.n_outputs)
    if not is_estimator(model):
        for hp in training:
            _check_training(model, data, hp)
        if round_trip is not None:
            check_round_trip(model, round_trip)
    clear_keras()


def _check_training(model: keras.Model, data: Dataset, hp: dict[str, Any]) -> None:
    """Compile ``model`` with ``hp`` and evaluate it on two samples: a loss or metric that
    does not fit the labels fails here, as one error line instead of mid-study."""
    labels = data.y_train if data.task == "classification" else None
    compile_model(model, data.task, hp, labels, steps_per_epoch=1, classes=data.classes)
    class_weights(hp.get("class_weight"), data)
    callbacks = {k: v for k, v in (hp.get("callbacks") or {}).items() if k not in _WRITING}
    build_callbacks(callbacks, None, monitor="val_loss", direction="minimize")
    try:
        model.test_on_batch(data.X_train[:2], fit_targets(data, data.y_train[:2]))
    except Exception as exc:  # TensorFlow's shape errors are long; their first line says it
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"training: loss {hp.get('loss', 'auto')!r} with metrics {hp.get('metrics')} "
            f"does not fit this {data.task} data: {first[:200]}"
        ) from None


# Callbacks that write files: checked by the config, built only with a run folder.
_WRITING = ("checkpoint", "metrics_log", "tensorboard")


def _fit_split(data: Dataset, use_validation: bool) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets to fit on: the training rows, or train + validation."""
    y_train = fit_targets(data, data.y_train)
    if use_validation:
        return data.X_train, y_train
    X = np.concatenate([data.X_train, data.X_val])
    return X, np.concatenate([y_train, fit_targets(data, data.y_val)])


def _result(
    hist: dict[str, list[float]], monitor: str, direction: str, seconds: float, bridge: _EpochBridge
) -> TrainResult:
    values = hist.get(monitor)
    if not values:
        raise TrialFailed(f"metric {monitor!r} was not produced by training")
    pick = np.nanargmin if monitor == "loss" or direction == "minimize" else np.nanargmax
    best_index = 0 if np.all(np.isnan(values)) else int(pick(values))
    best_metrics = {k: v[best_index] for k, v in hist.items() if len(v) > best_index}
    return TrainResult(
        history=hist,
        epochs_run=len(values),
        best_epoch=best_index + 1,
        best_value=float(values[best_index]),
        monitor=monitor,
        seconds=seconds,
        stopped_by_hook=bridge.stopped_by_hook,
        best_metrics=best_metrics,
    )


def class_weights(setting: Any, data: Dataset) -> dict[int, float] | None:
    """Keras ``class_weight`` from ``"balanced"`` or ``{label: weight}`` (classification)."""
    if not setting or data.task != "classification" or data.classes is None:
        return None
    n_classes = len(data.classes)
    if setting == "balanced":
        return dict(enumerate(balanced_class_weights(data.y_train, n_classes)))
    if not isinstance(setting, dict):
        raise ConfigError("training.class_weight: use 'balanced' or {label: weight}")
    index = class_indices(list(setting), data.classes, n_classes)
    weights = {code: 1.0 for code in range(n_classes)}
    for key, weight in setting.items():
        weights[index[key]] = float(weight)
    return weights
