"""``model_info.json`` of a manual run: model, params, data, timing, test results, versions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from hpolab.manual.context import RunContext
from hpolab.training.evaluation import rounded, test_split_outputs
from hpolab.training.saving import library_versions

# The training settings a report shows (hp holds every training key).
SHOWN_TRAINING = (
    "epochs",
    "batch_size",
    "optimizer",
    "learning_rate",
    "loss",
    "lr_schedule",
    "warmup_epochs",
    "min_learning_rate",
    "lr_schedule_options",
    "patience",
)


def model_info(
    run: RunContext,
    model: Any,
    seconds: float,
    test_metrics: dict[str, float],
    final_path: Path,
) -> dict[str, Any]:
    """What ``model_info.json`` says about the finished run (the report reads it too)."""
    data, values = run.data, run.metric_values
    best = run.best_value()
    best_index = values.index(best) if best is not None else 0
    return {
        "run_name": run.run_name,
        "model_type": run.spec.model_type,
        "params": run.spec.params,
        "params_source": run.spec.source,
        "training": {k: run.hp.get(k) for k in SHOWN_TRAINING},
        "metric": run.metric,
        "direction": run.direction,
        "best_epoch": best_index + 1,
        "best_value": values[best_index] if values else None,
        "epochs_run": len(values),
        "resumed_from_epoch": run.initial_epoch or None,
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
        "test_metrics": rounded(test_metrics),
        "test_outputs": test_split_outputs(model, data),
        "files": {"final_model": final_path.name, "best_model": run.folder.best_model.name},
        "mlflow_run_id": run.tracking.run_id if run.tracking is not None else None,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
