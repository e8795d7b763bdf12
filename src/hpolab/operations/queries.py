"""Read-only queries on stored studies: list, status, best, trials, compare."""

from __future__ import annotations

from typing import Any

from hpolab.errors import ConfigError
from hpolab.final_models import FinalModelStore
from hpolab.layout import Layout, Root
from hpolab.search.catalog import (
    best_trial,
    known_studies,
    model_type_status,
    open_stored,
    trial_rows,
)

TRIAL_STATES = ("complete", "pruned", "fail", "running", "waiting")
TRIAL_SORTS = ("number", "value", "duration")


def list_studies(root: Root = None, storage: str | None = None) -> list[dict[str, Any]]:
    """Every study under ``root`` (or in ``storage``) with per-model-type progress."""
    layout = Layout.from_root(root)
    rows = []
    for name, url in known_studies(layout, storage).items():
        stored = open_stored(layout, name, url if storage else None, read_only=True)
        per_model = [model_type_status(stored, mt) for mt in stored.model_types]
        rows.append(
            {
                "study": name,
                "storage": url,
                "model_types": per_model,
                "state": _study_state({m["state"] for m in per_model}),
            }
        )
    return rows


def _study_state(states: set[str]) -> str:
    """A study's state from its model types': running, finished (a search that stopped
    early counts as finished) or incomplete."""
    if "running" in states:
        return "running"
    return "finished" if states <= {"finished", "stopped early"} else "incomplete"


def study_status(name: str, root: Root = None, storage: str | None = None) -> dict[str, Any]:
    """Per model type: trials complete / pruned / failed / running, best so far, ETA."""
    stored = open_stored(Layout.from_root(root), name, storage, read_only=True)
    return {
        "study": name,
        "storage": stored.storage_url,
        "model_types": {mt: model_type_status(stored, mt) for mt in stored.model_types},
    }


def best(
    name: str, model_type: str | None = None, root: Root = None, storage: str | None = None
) -> dict[str, dict[str, Any]]:
    """Best value, trial, parameters and the final model (if any) per model type."""
    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage, read_only=True)
    store = FinalModelStore(layout)
    out: dict[str, dict[str, Any]] = {}
    for mt in stored.check_model_type(model_type):
        trial = best_trial(stored.studies[mt])
        final = store.find(name, mt)  # not retrained yet is a normal state here
        cfg = stored.config(mt)
        out[mt] = {
            "metric": cfg.study.metric,
            "direction": cfg.study.resolved_direction,
            "best_value": None if trial is None else trial.value,
            "best_trial": None if trial is None else trial.number,
            "params": {} if trial is None else stored.space(mt).replay(trial.params),
            "val_metrics": {} if trial is None else trial.user_attrs.get("val_metrics", {}),
            "mlflow_run_id": None if trial is None else trial.user_attrs.get("mlflow_run_id"),
            "final_model": None if final is None else str(final.model_path),
            "final_model_trial": None if final is None else final.sidecar.best_trial,
            "test_metrics": {} if final is None else final.sidecar.test_metrics,
            "baseline": None if final is None else final.sidecar.baseline,
        }
    return out


def trials(
    name: str,
    model_type: str | None = None,
    state: str | None = None,
    sort: str = "number",
    root: Root = None,
    storage: str | None = None,
) -> list[dict[str, Any]]:
    """Trials of a study as rows (``model_type`` added), filtered by state and sorted."""
    if state is not None and state not in TRIAL_STATES:
        raise ConfigError(f"--state: {state!r} is not one of {', '.join(TRIAL_STATES)}")
    if sort not in TRIAL_SORTS:
        raise ConfigError(f"--sort: {sort!r} is not one of {', '.join(TRIAL_SORTS)}")
    stored = open_stored(Layout.from_root(root), name, storage, read_only=True)
    rows = []
    for mt in stored.check_model_type(model_type):
        direction = stored.config(mt).study.resolved_direction
        for row in trial_rows(stored.studies[mt], stored.space(mt)):
            if state is None or row["state"] == state:
                rows.append({"model_type": mt, "direction": direction, **row})
    if sort == "value":
        # Best first, whatever the direction; trials without a value last.
        rows.sort(
            key=lambda r: (
                r["value"] is None,
                (-1 if r["direction"] == "maximize" else 1) * (r["value"] or 0.0),
            )
        )
    elif sort == "duration":
        rows.sort(key=lambda r: -(r["duration_seconds"] or 0.0))
    for row in rows:
        row.pop("direction")
    return rows


def compare(
    names: list[str], root: Root = None, storage: str | None = None
) -> list[dict[str, Any]]:
    """Best values, trial counts and time spent of several studies, side by side."""
    if len(names) < 2:
        raise ConfigError("compare: give at least two study names")
    rows = []
    for name in names:
        status = study_status(name, root, storage)
        for mt, s in status["model_types"].items():
            rows.append(
                {
                    "study": name,
                    "model_type": mt,
                    "metric": s["metric"],
                    "direction": s["direction"],
                    "best_value": s["best_value"],
                    "trials": s["trials_done"],
                    "n_trials_target": s["n_trials_target"],
                    "complete": s["complete"],
                    "pruned": s["pruned"],
                    "failed": s["fail"],
                    "seconds_spent": s["seconds_spent"],
                }
            )
    return rows
