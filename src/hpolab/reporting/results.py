"""``hpo_results/<study>/hpo_results_<model_type>.json`` and the combined file."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import optuna

from hpolab.layout import atomic_write_json
from hpolab.reporting.summary import ModelTypeSummary

# Below this many complete trials an importance estimate is mostly noise.
MIN_TRIALS_FOR_IMPORTANCE = 5
# Below this many, the estimates move a lot from one trial to the next.
TRUSTED_TRIALS = 20


def param_importance(study: optuna.Study, seed: int | None = 0) -> dict[str, Any]:
    """Parameter importance by fANOVA (``values``) and PED-ANOVA (``ped_anova``).

    Below :data:`MIN_TRIALS_FOR_IMPORTANCE` complete trials there is none, and below
    :data:`TRUSTED_TRIALS` a ``note`` says the estimates are rough.
    """
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    n = len(complete)
    if n < MIN_TRIALS_FOR_IMPORTANCE:
        return {
            "values": {},
            "ped_anova": {},
            "note": f"{n} complete trials; at least {MIN_TRIALS_FOR_IMPORTANCE} "
            "are needed to estimate parameter importance",
        }
    # Imported here: optuna.importance imports scikit-learn, which commands that only
    # read results (best, status) need not pay for.
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    result: dict[str, Any] = {
        "values": _importance(study, FanovaImportanceEvaluator(seed=seed)),
        "method": "fanova",
        "ped_anova": _importance(study, PedAnovaImportanceEvaluator()),
        "n_complete_trials": n,
    }
    if n < TRUSTED_TRIALS:
        result["note"] = (
            f"only {n} complete trials: importances are rough estimates; "
            f"trust them from about {TRUSTED_TRIALS}"
        )
    if not result["values"]:
        result["note"] = "importance not available for this search space"
    return result


def ranked_importance(importance: dict[str, Any]) -> list[tuple[str, float]]:
    """The fANOVA importances of :func:`param_importance`, most important first.

    The one ordering the written analysis, the report's chart and the importance plot
    all use, so they never rank the parameters differently (ties: by name).
    """
    values = importance.get("values") or {}
    return sorted(((k, float(v)) for k, v in values.items()), key=lambda kv: (-kv[1], kv[0]))


def _importance(study: optuna.Study, evaluator: Any) -> dict[str, float]:
    from optuna.importance import get_param_importances

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PED-ANOVA is marked experimental
            values = get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
    return {k: round(float(v), 6) for k, v in values.items()}


def write_results(path: Path, summary: ModelTypeSummary) -> None:
    """Write one model type's results (best params, value, every trial) atomically."""
    atomic_write_json(path, {"generated_at": _now(), **summary.to_dict()})


def write_combined_results(path: Path, study: str, summaries: dict[str, ModelTypeSummary]) -> None:
    """Write the side-by-side comparison of a study's model types atomically."""
    per_model = {name: s.to_dict() for name, s in summaries.items()}
    direction = next(iter(summaries.values())).direction if summaries else "minimize"
    ranked = sorted(
        (m for m in per_model if per_model[m].get("best_value") is not None),
        key=lambda m: per_model[m]["best_value"],
        reverse=direction == "maximize",
    )
    atomic_write_json(
        path,
        {
            "generated_at": _now(),
            "study": study,
            "best_model_type": ranked[0] if ranked else None,
            "ranking": ranked,
            "model_types": {
                name: {
                    key: info.get(key)
                    for key in (
                        "metric",
                        "direction",
                        "best_value",
                        "best_trial",
                        "best_params",
                        "n_trials",
                        "states",
                        "final_model",
                        "test_metrics",
                    )
                }
                for name, info in per_model.items()
            },
        },
    )


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
