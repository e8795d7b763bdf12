"""The results summary of one model type of a study, as typed data.

Built once after a model type's search, then written to ``hpo_results_<model_type>.json``,
combined across model types, logged to the parent run and shown in its description.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ModelTypeSummary:
    """Best configuration, states and every trial of one model type."""

    study: str
    model_type: str
    metric: str
    direction: str
    sampler: str
    pruner: str
    best_value: float | None
    best_trial: int | None
    best_params: dict[str, Any]
    best_val_metrics: dict[str, float]
    n_trials: int
    states: dict[str, int]
    param_importance: dict[str, Any]
    trials: list[dict[str, Any]]
    last_run_timing: dict[str, Any] = field(default_factory=dict)
    final_model: dict[str, Any] | None = None
    test_metrics: dict[str, float] | None = None
    baseline: dict[str, Any] | None = None
    # Why the search ended before its budget (``study.stop_early``), if it did.
    stopped_early: str | None = None

    @staticmethod
    def count_states(rows: list[dict[str, Any]]) -> dict[str, int]:
        """``{state: count}`` of trial rows, in the order states first appear."""
        states: dict[str, int] = {}
        for row in rows:
            states[row["state"]] = states.get(row["state"], 0) + 1
        return states

    def set_timing(
        self, new_trials: int, search: float, training: float, summary: float = 0.0
    ) -> None:
        """This run's time split: the trials' search vs training (the rest of the search is
        the trials' bookkeeping), and the once-per-study election and summary after it."""
        self.last_run_timing = {
            "new_trials": new_trials,
            "search_seconds": round(search, 3),
            "training_seconds": round(training, 3),
            "bookkeeping_seconds": round(search - training, 3),
            "summary_seconds": round(summary, 3),
        }

    def set_final_model(
        self,
        model: str,
        sidecar: str,
        mlflow_run_id: str | None,
        test_metrics: dict[str, float],
        baseline: dict[str, Any] | None = None,
    ) -> None:
        self.final_model = {"model": model, "sidecar": sidecar, "mlflow_run_id": mlflow_run_id}
        self.test_metrics = test_metrics
        self.baseline = baseline

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (no ``final_model`` / ``test_metrics`` / ``baseline`` keys without a
        final model)."""
        raw = asdict(self)
        if self.final_model is None:
            del raw["final_model"], raw["test_metrics"], raw["baseline"]
        elif self.baseline is None:
            del raw["baseline"]
        return raw


def baseline_warning(model_type: str, comparison: dict[str, Any] | None) -> str | None:
    """One line saying that ``model_type``'s final model is no better than a trivial one."""
    if not comparison or comparison.get("beats_baseline", True):
        return None
    return (
        f"{model_type}: the final model does not beat a {comparison['baseline']} baseline "
        f"on the test split ({comparison['metric']} {comparison['model_value']:.4g} vs "
        f"{comparison['baseline_value']:.4g}): it has learned nothing useful; widen the "
        "search, train longer or check the features"
    )


def best_mark_legend(metric: str, direction: str) -> str:
    """What the ``*`` beside a model type means, e.g. ``the model type with the lowest
    val_loss``."""
    extreme = "highest" if direction == "maximize" else "lowest"
    return f"the model type with the {extreme} {metric}"


def best_model_type(summaries: dict[str, ModelTypeSummary]) -> str | None:
    """The model type with the best value (in its direction); ``None`` if none has one."""
    scored = {mt: s for mt, s in summaries.items() if s.best_value is not None}
    if not scored:
        return None
    pick = max if next(iter(scored.values())).direction == "maximize" else min
    return pick(scored, key=lambda mt: scored[mt].best_value)  # type: ignore[arg-type,return-value]


def study_markdown(summaries: dict[str, ModelTypeSummary]) -> str:
    """A short markdown summary of a study, shown as the parent run's description.

    With more than one model type, ``*`` marks the best one and a legend line says so.
    """
    lines = [
        "| model type | best | trial | trials | complete / pruned / failed | test metrics |",
        "|---|---|---|---|---|---|",
    ]
    marked = best_model_type(summaries) if len(summaries) > 1 else None
    for mt, s in summaries.items():
        counts = " / ".join(str(s.states.get(k, 0)) for k in ("complete", "pruned", "fail"))
        tests = ", ".join(f"{k} {v:.4g}" for k, v in (s.test_metrics or {}).items())
        best = "-" if s.best_value is None else f"{s.best_value:.5g}"
        name = f"{mt} \\*" if mt == marked else mt  # escaped: a bare * starts emphasis
        lines.append(f"| {name} | {best} | {s.best_trial} | {s.n_trials} | {counts} | {tests} |")
    first = next(iter(summaries.values()), None)
    metric, direction = (first.metric, first.direction) if first else ("", "")
    header = f"**{metric}** ({direction}), best per model type:"
    text = header + "\n\n" + "\n".join(lines)
    if marked is not None:
        text += f"\n\n\\* {best_mark_legend(metric, direction)}"
    warnings = [w for mt, s in summaries.items() if (w := baseline_warning(mt, s.baseline))]
    if warnings:
        text += "\n\n" + "\n".join(f"**Warning:** {w}." for w in warnings)
    stops = [
        f"{mt}: stopped early: {s.stopped_early}." for mt, s in summaries.items() if s.stopped_early
    ]
    if stops:
        text += "\n\n" + "\n".join(stops)
    return text
