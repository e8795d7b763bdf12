"""Python API: ``run_study`` and ``load_final_model``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpolab.config import StudyConfig, load_config
from hpolab.errors import ConfigError
from hpolab.layout import Layout

if TYPE_CHECKING:
    import numpy as np

    from hpolab.progress import Reporter
    from hpolab.search.run import StudyResult


def run_study(
    config: str | os.PathLike[str] | Mapping[str, Any] | StudyConfig | None = None,
    *,
    data: Any = None,
    root: str | os.PathLike[str] | None = None,
    reset: bool = False,
    quiet: bool = False,
    track: bool = True,
    reporter: Reporter | None = None,
    worker_index: int | None = None,
    finish: bool = True,
    **overrides: Any,
) -> StudyResult:
    """Run (or resume) a study and return its best configurations and final models.

    Several processes may run the same study on a shared storage (``storage=``): they
    share the budget and one of them retrains the final models. ``workers=N`` starts N
    local worker processes and finishes the study in this one.

    Args:
        config: a YAML path, a mapping, a :class:`~hpolab.config.StudyConfig`, or ``None``
            for the built-in default study. In a mapping, ``models.<name>.builder`` may be
            a function (``build(hp)`` or ``build(params, input_shape, n_outputs, task)``)
            and ``data`` may be in-memory data, as for ``data=``.
        data: in-memory data instead of ``data.source``: ``(X, y)`` arrays,
            ``{"X": X, "y": y}`` (with ``"validation"`` / ``"test"`` data too), or a
            pandas DataFrame holding the ``data.target`` column; a path or source name
            sets ``data.source`` (as ``--data``).
        root: directory holding ``hpo_studies/``, ``hpo_results/``, ``models/`` and
            ``mlruns/`` (default: ``$HPOLAB_ROOT`` or the current directory).
        reset: delete the stored study, its results, models and MLflow runs first.
        quiet: no progress output.
        track: mirror trials in MLflow (default ``True``).
        reporter: where progress goes (default: a terminal display, or none if ``quiet``).
        worker_index: this process's index in a planned pool of workers (shown in MLflow).
        finish: ``False`` only searches, leaving final models and results to another worker.
        overrides: ``study_name``, ``n_trials``, ``timeout``, ``stop_early`` (a patience),
            ``sampler``, ``pruner``,
            ``seed``, ``metric``, ``storage``, ``workers``, ``tracking_uri``, ``data``,
            ``target``, ``task``, ``epochs``, or
            a dotted path such as ``**{"training.batch_size": 64}``.

    Example:
        >>> result = hpolab.run_study("configs/leak_mlp.yaml", n_trials=10)  # doctest: +SKIP
        >>> result.best_params["mlp"]  # doctest: +SKIP
    """
    from hpolab.interrupts import stops_as_interrupts
    from hpolab.progress import QuietReporter, RichReporter

    if isinstance(data, (str, os.PathLike)):  # a data source's path or name, as --data
        overrides["data"], data = os.fspath(data), None
    cfg = load_config(_with_memory_data(config, data), **overrides)
    # The search imports TensorFlow: only once the config is known to be valid, so a
    # config error is reported at once.
    from hpolab.search.run import run_study as _run

    if reporter is None:
        reporter = QuietReporter() if quiet else RichReporter()
    # Ctrl-C (a notebook's interrupt too) and SIGTERM stop the study between storage
    # writes: the trial is re-queued and continues from its checkpoint next time.
    with stops_as_interrupts():
        return _run(
            cfg,
            Layout.from_root(root),
            reporter=reporter,
            reset=reset,
            track=track,
            worker_index=worker_index,
            finish=finish,
        )


def _with_memory_data(config: Any, data: Any) -> Any:
    """``config`` with in-memory data (from ``data=`` or its ``data`` key) registered as a
    ``memory:<digest>`` source; the digest keeps a resumed study's source the same."""
    inline = None
    if isinstance(config, Mapping):
        given = config.get("data")
        if _is_in_memory(given):
            inline = given
    if data is None and inline is None:
        return config
    if data is not None and inline is not None:
        raise ConfigError("data: given both as data= and in the config's data; keep one")
    from hpolab.data.user import register_memory

    held = data if data is not None else inline
    section: dict[str, Any] = {}
    if isinstance(held, Mapping) and "X" in held:
        section = {k: v for k, v in held.items() if k not in ("X", "y")}
        held = {"X": held["X"], "y": held.get("y")}
    section["source"] = register_memory(_digest(held), held)
    for part in ("validation", "test"):  # KerasTuner's validation_data, in memory too
        if _is_in_memory(section.get(part)):
            section[part] = register_memory(_digest(section[part]), section[part])
    raw = dict(config) if isinstance(config, Mapping) else {}
    if config is not None and not isinstance(config, Mapping):
        raise ConfigError("data=: pass in-memory data with a config mapping (or none)")
    base = raw.get("data") if isinstance(raw.get("data"), Mapping) and inline is None else {}
    raw["data"] = {**dict(base or {}), **section}
    return raw


def _is_in_memory(value: Any) -> bool:
    if value is None or isinstance(value, (str, os.PathLike)):
        return False
    if hasattr(value, "columns") or isinstance(value, tuple):
        return True
    return isinstance(value, Mapping) and "X" in value


def _digest(held: Any) -> str:
    """A short digest of in-memory data, as its source name."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    if hasattr(held, "columns"):
        import pandas as pd

        digest.update(",".join(map(str, held.columns)).encode())
        digest.update(pd.util.hash_pandas_object(held, index=False).to_numpy().tobytes())
    else:
        pairs = held.items() if isinstance(held, Mapping) else enumerate(held)
        for _, array in pairs:
            digest.update(np.ascontiguousarray(np.asarray(array)).tobytes())
    return digest.hexdigest()[:16]


@dataclass
class FinalModel:
    """A retrained final model with the metadata needed to use it."""

    model: Any  # keras.Model, or a scikit-learn estimator for baselines
    metadata: dict[str, Any]
    path: Path

    @property
    def task(self) -> str:
        return str(self.metadata["preprocessing"]["task"])

    @property
    def classes(self) -> list[Any] | None:
        return self.metadata["preprocessing"].get("classes")

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Prepare raw inputs as in training: spectrogram (if the study used one), scaling."""
        from hpolab.data.dataset import Scaler

        prep = self.metadata["preprocessing"]
        if prep.get("spectrogram"):
            from hpolab.data.signals import SpectrogramSpec, compute_spectrogram

            X = compute_spectrogram(X, SpectrogramSpec(**prep["spectrogram"]))
        return Scaler.from_dict(prep["feature_scaler"]).transform(X)

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """Model outputs for raw (unscaled) features: probabilities or scaled values."""
        from hpolab.training.evaluation import predict_model

        return predict_model(self.model, self.transform(X))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities for raw features (classification only)."""
        if self.task != "classification":
            raise TypeError("predict_proba is only available for classification models")
        return self.predict_raw(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels (original encoding) or regression values in the target's units."""
        import numpy as np

        from hpolab.data.dataset import Scaler

        raw = self.predict_raw(X)
        if self.task == "classification":
            return np.asarray(self.classes, dtype=object)[raw.argmax(axis=1)]
        target = self.metadata["preprocessing"].get("target_scaler")
        values = raw.reshape(-1, 1)
        return (
            Scaler.from_dict(target).inverse(values).reshape(-1) if target else values.reshape(-1)
        )


def load_final_model(
    study: str | os.PathLike[str],
    model_type: str | None = None,
    root: str | os.PathLike[str] | None = None,
    trust: bool = False,
) -> FinalModel:
    """Load the final model of ``study`` (and ``model_type``) saved under ``root``, or
    one copied out with ``hpolab fetch``: ``study`` is then its folder, model file or
    sidecar (a path with a ``/``, or an existing folder or file).

    The model is checked against the checksum in its sidecar JSON, so a model and
    metadata from different runs are never paired, and loaded without running code from
    the file: Keras with ``safe_mode=True``, scikit-learn baselines from skops files with
    scikit-learn's own types only. ``trust=True`` also loads other types and pickles
    (``.joblib`` of older versions): only for files you made or trust.

    Raises:
        FinalModelError: no such final model, or its files do not match.
    """
    from hpolab.final_models import FinalModelError, FinalModelStore, read_fetched

    given = Path(os.fspath(study)).expanduser()
    fetched = given.is_dir() and any(given.glob("final_model_*.json"))
    if fetched or os.sep in os.fspath(study) or given.suffix in (".keras", ".json", ".skops"):
        return _load(read_fetched(given, model_type), trust)
    study = os.fspath(study)
    store = FinalModelStore(Layout.from_root(root))
    available = store.model_types(study)
    folder = store.layout.final_model_dir(study)
    if not available:
        raise FinalModelError(f"study {study!r}: no final model under {folder}")
    if model_type is None:
        if len(available) > 1:
            raise FinalModelError(
                f"study {study!r} has final models for {', '.join(available)}; pass model_type"
            )
        model_type = available[0]
    if model_type not in available:
        raise FinalModelError(
            f"study {study!r} has no final model for {model_type!r}; "
            f"available: {', '.join(available)}"
        )
    record = store.read(study, model_type)
    return _load(record, trust)


def _load(record: Any, trust: bool) -> FinalModel:
    """Load a record's model; a model of the user's gets its module imported first when
    trusted (it registers the custom Keras objects), else says how."""
    from hpolab.final_models import FinalModelError
    from hpolab.training.saving import load_model

    builder = record.sidecar.builder or {}
    module = str(builder.get("source", "")).partition(":")[0]
    if trust and module and module not in sys.modules:
        from hpolab.user_code import import_function

        import_function("builder", builder["source"], builder.get("code_path"))
    try:
        model = load_model(record.model_path, trust=trust)
    except FinalModelError:
        raise
    except Exception as exc:  # Keras: an unknown class, layer or function
        if not module:
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise FinalModelError(
            f"{record.model_path.name}: {first}; its custom objects are registered by module "
            f"{module!r}: import it first, or pass trust=True to import it from "
            f"{builder.get('code_path') or 'the working directory'}"
        ) from None
    return FinalModel(model=model, metadata=record.sidecar.to_dict(), path=record.model_path)
