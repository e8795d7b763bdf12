"""Visualizations of one model type's Optuna study: PNG (matplotlib) and HTML (plotly).

Thin wrappers over :mod:`optuna.visualization` and :mod:`optuna.visualization.matplotlib`:
optimization history, parameter importances, parallel coordinates, slice, contour of the
two most important parameters, intermediate values (learning curves, pruned trials
included) and the timeline of trials. A plot that cannot be drawn (too few trials, a
single parameter) is skipped with the reason, never an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from hpolab.layout import atomic_path  # noqa: E402

PLOTS = (
    "optimization_history",
    "param_importances",
    "parallel_coordinate",
    "slice",
    "contour",
    "intermediate_values",
    "timeline",
)


@dataclass
class PlotSet:
    """What :func:`build_plots` wrote, and what it skipped and why."""

    directory: Path
    png: dict[str, Path] = field(default_factory=dict)
    html: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def build_plots(
    study: optuna.Study,
    out_dir: Path,
    *,
    metric: str,
    importance: dict[str, float] | None = None,
    html: bool = True,
) -> PlotSet:
    """Draw every plot of ``study`` into ``out_dir`` (``<name>.png`` and ``<name>.html``).

    ``importance`` (parameter -> importance) chooses the two parameters of the contour
    plot; without it the first two parameters are used.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    result = PlotSet(out_dir)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    params = sorted({p for t in complete for p in t.params})
    ranked = sorted(params, key=lambda p: -(importance or {}).get(p, 0.0))
    reasons = _reasons(study, complete, params)
    for name in PLOTS:
        if name in reasons:
            result.skipped[name] = reasons[name]
            continue
        kwargs: dict[str, Any] = {}
        if name in ("contour", "slice", "parallel_coordinate"):
            kwargs["params"] = ranked[:2] if name == "contour" else ranked[:8]
        if name in ("optimization_history", "contour", "slice", "parallel_coordinate"):
            kwargs["target_name"] = metric
        try:
            result.png[name] = _png(study, name, out_dir / f"{name}.png", kwargs, metric)
            if html:
                result.html[name] = _html(study, name, out_dir / f"{name}.html", kwargs)
        except (ValueError, RuntimeError, TypeError) as exc:
            result.skipped[name] = f"not drawable: {str(exc).splitlines()[0][:160]}"
        finally:
            plt.close("all")
    return result


def _reasons(
    study: optuna.Study, complete: list[optuna.trial.FrozenTrial], params: list[str]
) -> dict[str, str]:
    reasons: dict[str, str] = {}
    if not complete:
        return {name: "no complete trial yet" for name in PLOTS}
    if len(complete) < 2 or not params:
        for name in ("param_importances", "parallel_coordinate", "slice", "contour"):
            reasons[name] = "needs at least 2 complete trials with searched parameters"
    if len(params) < 2:
        reasons["contour"] = "needs two searched parameters"
    if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        reasons["intermediate_values"] = "no per-epoch values were reported"
    return reasons


def _call(module: Any, name: str, study: optuna.Study, kwargs: dict[str, Any]) -> Any:
    func: Callable[..., Any] = getattr(module, f"plot_{name}")
    with warnings.catch_warnings():
        # Optuna marks its matplotlib backend experimental and warns per call.
        warnings.simplefilter("ignore")
        return func(study, **kwargs)


def _png(study: optuna.Study, name: str, target: Path, kwargs: dict[str, Any], metric: str) -> Path:
    from optuna.visualization import matplotlib as mpl_vis

    drawn = _call(mpl_vis, name, study, kwargs)
    # Functions return an Axes, or an array of Axes for multi-panel plots (slice, contour).
    first = drawn.flat[0] if hasattr(drawn, "flat") else drawn
    if name == "intermediate_values":
        # Steps are epochs here, and the values are the objective metric.
        first.set_xlabel("epoch")
        first.set_ylabel(metric)
        first.set_title(f"Learning curves of all trials ({metric}; pruned ones stop early)")
    figure = first.figure
    width, height = figure.get_size_inches()
    figure.set_size_inches(max(width, 8), max(height, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # colorbar axes of contour plots can't be laid out
        figure.tight_layout()
    with atomic_path(target, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    return target


def _html(study: optuna.Study, name: str, target: Path, kwargs: dict[str, Any]) -> Path:
    from optuna import visualization as plotly_vis

    figure = _call(plotly_vis, name, study, kwargs)
    with atomic_path(target, suffix=".html") as tmp:
        # One plotly.js beside the pages instead of 3.5 MB inside each; works offline.
        figure.write_html(tmp, include_plotlyjs="directory", full_html=True)
    return target
