"""scikit-learn baselines: ``random_forest``, ``svm``, ``gradient_boosting``.

They take the same ``(params, input_shape, task, n_outputs)`` as the Keras builders and
return an unfitted estimator; multichannel windows and spectrograms are flattened by the
training code (:mod:`hpolab.training.baselines`). A baseline in the same study as a
network answers the question "does the network earn its cost?".
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator


def _seed(params: dict[str, Any]) -> int:
    return int(params.get("random_state", 0))


def build_random_forest(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> BaseEstimator:
    """A random forest of ``n_estimators`` trees (``max_depth`` None = grown fully)."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestClassifier if task == "classification" else RandomForestRegressor
    depth = params.get("max_depth")
    return cls(
        n_estimators=int(params.get("n_estimators", 200)),
        max_depth=None if depth in (None, 0) else int(depth),
        min_samples_leaf=int(params.get("min_samples_leaf", 1)),
        max_features=params.get("max_features", "sqrt"),
        n_jobs=int(params.get("n_jobs", -1)),
        random_state=_seed(params),
    )


def build_svm(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> BaseEstimator:
    """A support-vector machine (RBF kernel by default) with probability outputs."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC, SVR

    common = {
        "C": float(params.get("C", 1.0)),
        "kernel": params.get("kernel", "rbf"),
        "gamma": params.get("gamma", "scale"),
    }
    if task == "classification":
        # Probabilities make log loss and AUC comparable with the networks' outputs;
        # scikit-learn's calibration wrapper replaces SVC(probability=True) from 1.9 on.
        return CalibratedClassifierCV(SVC(random_state=_seed(params), **common), ensemble=False)
    return SVR(epsilon=float(params.get("epsilon", 0.1)), **common)


def build_gradient_boosting(
    params: dict[str, Any], *, input_shape: tuple[int, ...], task: str, n_outputs: int
) -> BaseEstimator:
    """Histogram gradient boosting: fast on thousands of features, no scaling needed."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = (
        HistGradientBoostingClassifier
        if task == "classification"
        else HistGradientBoostingRegressor
    )
    depth = params.get("max_depth")
    return cls(
        learning_rate=float(params.get("learning_rate", 0.1)),
        max_iter=int(params.get("max_iter", 100)),
        max_depth=None if depth in (None, 0) else int(depth),
        min_samples_leaf=int(params.get("min_samples_leaf", 20)),
        l2_regularization=float(params.get("l2_regularization", 0.0)),
        random_state=_seed(params),
    )
