"""``hpo_results/<study>/hpo_results_<model_type>.json`` and the combined file."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.importance import FanovaImportanceEvaluator, get_param_importances

from hpolab.layout import atomic_write_json

# Below this many complete trials an importance estimate is mostly noise.
MIN_TRIALS_FOR_IMPORTANCE = 5


def param_importance(study: optuna.Study, seed: int | None = 0) -> dict[str, Any]:
    """fANOVA importance of each parameter, or a note saying why there is none."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return {
            "values": {},
            "note": f"{len(complete)} complete trials; at least {MIN_TRIALS_FOR_IMPORTANCE} "
            "are needed to estimate parameter importance",
        }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))
    except (RuntimeError, ValueError) as exc:
        return {"values": {}, "note": f"importance not available: {exc}"}
    return {"values": {k: round(float(v), 6) for k, v in values.items()}, "method": "fanova"}


def write_results(path: Path, summary: dict[str, Any]) -> None:
    """Write one model type's results (best params, value, every trial) atomically."""
    atomic_write_json(path, {"generated_at": _now(), **summary})


def write_combined_results(path: Path, study: str, per_model: dict[str, dict[str, Any]]) -> None:
    """Write the side-by-side comparison of a study's model types atomically."""
    direction = next(iter(per_model.values()), {}).get("direction", "minimize")
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
