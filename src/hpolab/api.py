"""Python API: ``run_study`` and ``load_final_model``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpolab.config import StudyConfig, load_config
from hpolab.layout import Layout

if TYPE_CHECKING:
    import numpy as np

    from hpolab.progress import Reporter
    from hpolab.search.run import StudyResult


def run_study(
    config: str | os.PathLike[str] | Mapping[str, Any] | StudyConfig | None = None,
    *,
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
            for the built-in default study.
        root: directory holding ``hpo_studies/``, ``hpo_results/``, ``models/`` and
            ``mlruns/`` (default: ``$HPOLAB_ROOT`` or the current directory).
        reset: delete the stored study, its results, models and MLflow runs first.
        quiet: no progress output.
        track: mirror trials in MLflow (default ``True``).
        reporter: where progress goes (default: a terminal display, or none if ``quiet``).
        worker_index: this process's index in a planned pool of workers (shown in MLflow).
        finish: ``False`` only searches, leaving final models and results to another worker.
        overrides: ``study_name``, ``n_trials``, ``timeout``, ``sampler``, ``pruner``,
            ``seed``, ``metric``, ``storage``, ``workers``, ``tracking_uri``, ``data``,
            ``target``, ``task``, ``epochs``, or
            a dotted path such as ``**{"training.batch_size": 64}``.

    Example:
        >>> result = hpolab.run_study("configs/leak_mlp.yaml", n_trials=10)  # doctest: +SKIP
        >>> result.best_params["mlp"]  # doctest: +SKIP
    """
    from hpolab.interrupts import stops_as_interrupts
    from hpolab.progress import QuietReporter, RichReporter

    cfg = load_config(config, **overrides)
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
    from hpolab.training.saving import load_model

    given = Path(os.fspath(study)).expanduser()
    fetched = given.is_dir() and any(given.glob("final_model_*.json"))
    if fetched or os.sep in os.fspath(study) or given.suffix in (".keras", ".json", ".skops"):
        record = read_fetched(given, model_type)
        model = load_model(record.model_path, trust=trust)
        return FinalModel(model=model, metadata=record.sidecar.to_dict(), path=record.model_path)
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
    model = load_model(record.model_path, trust=trust)
    return FinalModel(model=model, metadata=record.sidecar.to_dict(), path=record.model_path)
