"""Visualizations of a study: PNG per model type (matplotlib), one HTML page (plotly).

Thin wrappers over :mod:`optuna.visualization` and :mod:`optuna.visualization.matplotlib`:
optimization history, parameter importances, parallel coordinates, slice, contour of the
two most important parameters, intermediate values (learning curves, pruned trials
included) and the timeline of trials. A plot that cannot be drawn (too few trials, a
single parameter) is skipped with the reason, never an error. The importance plot shows
the study's stored fANOVA numbers, the ones the report's text quotes.

The interactive plots of all model types share one self-contained HTML page: plotly.js
(about 5 MB) is inlined once per study, and the page renders where relative scripts do
not load (MLflow's artifact preview shows HTML from memory, in a sandbox).
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from optuna.distributions import IntDistribution  # noqa: E402
from optuna.importance import BaseImportanceEvaluator  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from hpolab.layout import atomic_path  # noqa: E402
from hpolab.reporting.charts import integer_ticks  # noqa: E402
from hpolab.reporting.results import (  # noqa: E402
    MIN_TRIALS_FOR_IMPORTANCE,
    param_importance,
    ranked_importance,
)

PLOTS = (
    "optimization_history",
    "param_importances",
    "parallel_coordinate",
    "slice",
    "contour",
    "intermediate_values",
    "timeline",
)
TITLES = {
    "optimization_history": "Optimization history",
    "param_importances": "Parameter importance (fANOVA)",
    "parallel_coordinate": "Parallel coordinates",
    "slice": "Slice",
    "contour": "Contour of the two most important parameters",
    "intermediate_values": "Learning curves (pruned trials stop early)",
    "timeline": "Timeline of trials",
}
# Above this many trials the learning curves' legend (one entry each) is left out.
MAX_LEGEND = 12


@dataclass
class PlotSet:
    """What :func:`build_plots` wrote, and what it skipped and why."""

    directory: Path
    png: dict[str, Path] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class PageSection:
    """One model type's part of the study's HTML page."""

    model_type: str
    study: optuna.Study
    metric: str
    importance: dict[str, float]


class _GivenImportance(BaseImportanceEvaluator):
    """An importance "evaluator" that returns numbers computed before.

    Optuna's importance plots evaluate afresh (PED-ANOVA by default); handing them the
    study's stored fANOVA numbers keeps the plots, the report's chart and its text equal.
    """

    def __init__(self, values: dict[str, float]) -> None:
        self._ranked = ranked_importance({"values": values})

    def evaluate(
        self,
        study: optuna.Study,
        params: list[str] | None = None,
        *,
        target: Callable[[optuna.trial.FrozenTrial], float] | None = None,
    ) -> dict[str, float]:
        return {k: v for k, v in self._ranked if params is None or k in params}


def build_plots(
    study: optuna.Study,
    out_dir: Path,
    *,
    metric: str,
    importance: dict[str, float] | None = None,
) -> PlotSet:
    """Draw every plot of ``study`` into ``out_dir`` as ``<name>.png``.

    ``importance`` (parameter -> fANOVA importance, the ``values`` of
    :func:`~hpolab.reporting.results.param_importance`) is what the importance plot shows
    and chooses the two parameters of the contour plot; without it, it is computed here.
    With too few trials for an importance there is no importance plot.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    result = PlotSet(out_dir)
    if importance is None:
        importance = param_importance(study).get("values") or {}
    reasons = _reasons(study, importance)
    for name in PLOTS:
        if name in reasons:
            result.skipped[name] = reasons[name]
            continue
        try:
            kwargs = _kwargs(study, name, metric, importance)
            figure = _figure(study, name, kwargs, metric)
            result.png[name] = _save_png(figure, out_dir / f"{name}.png")
        except (ValueError, RuntimeError, TypeError) as exc:
            result.skipped[name] = f"not drawable: {str(exc).splitlines()[0][:160]}"
        finally:
            plt.close("all")
    return result


def plot_figure(
    study: optuna.Study, name: str, *, metric: str, importance: dict[str, float]
) -> Figure:
    """The matplotlib figure of plot ``name`` (one of :data:`PLOTS`) as it is saved."""
    return _figure(study, name, _kwargs(study, name, metric, importance), metric)


def _searched(study: optuna.Study) -> list[str]:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted({p for t in complete for p in t.params})


def _kwargs(
    study: optuna.Study, name: str, metric: str, importance: dict[str, float]
) -> dict[str, Any]:
    """Arguments of Optuna's plot function: the parameters (most important first), the
    objective's name, the stored importances."""
    ranked = [k for k, _ in ranked_importance({"values": importance})]
    # Parameters without an importance (none computed yet) follow, by name.
    params = ranked + [p for p in _searched(study) if p not in ranked]
    kwargs: dict[str, Any] = {}
    if name in ("contour", "slice", "parallel_coordinate"):
        kwargs["params"] = params[:2] if name == "contour" else params[:8]
    if name in ("optimization_history", "contour", "slice", "parallel_coordinate"):
        kwargs["target_name"] = metric
    if name == "param_importances":
        kwargs["evaluator"] = _GivenImportance(importance)
        kwargs["target_name"] = metric
    return kwargs


def _reasons(study: optuna.Study, importance: dict[str, float]) -> dict[str, str]:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    params = _searched(study)
    reasons: dict[str, str] = {}
    if not complete:
        return {name: "no complete trial yet" for name in PLOTS}
    if len(complete) < 2 or not params:
        for name in ("param_importances", "parallel_coordinate", "slice", "contour"):
            reasons[name] = "needs at least 2 complete trials with searched parameters"
    if not importance:
        # The report's text says the same, so no chart contradicts it.
        reasons["param_importances"] = (
            f"{len(complete)} complete trials; at least {MIN_TRIALS_FOR_IMPORTANCE} are "
            "needed to estimate parameter importance"
            if len(complete) < MIN_TRIALS_FOR_IMPORTANCE
            else "no parameter importance for this search space"
        )
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


def _figure(study: optuna.Study, name: str, kwargs: dict[str, Any], metric: str) -> Figure:
    from optuna.visualization import matplotlib as mpl_vis

    drawn = _call(mpl_vis, name, study, kwargs)
    # Functions return an Axes, or an array of Axes for multi-panel plots (slice, contour).
    first = drawn.flat[0] if hasattr(drawn, "flat") else drawn
    figure = first.figure
    width, height = figure.get_size_inches()
    figure.set_size_inches(max(width, 8), max(height, 5))
    if name == "intermediate_values":
        _learning_curves(first, metric)
    if name == "param_importances":
        first.set_title("Parameter importance (fANOVA)")
    _integer_axes(figure, study, name)
    _lay_out(figure)
    return figure


def _learning_curves(ax: Axes, metric: str) -> None:
    # Steps are epochs here, and the values are the objective metric.
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"Learning curves of all trials ({metric}; pruned ones stop early)")
    legend = ax.get_legend()
    if legend is not None and len(legend.get_texts()) > MAX_LEGEND:
        # One entry per trial runs off the figure; the curves speak without it.
        legend.remove()


def _integer_axes(figure: Figure, study: optuna.Study, name: str) -> None:
    """Whole-number ticks on axes of counts (trials, epochs) and integer parameters."""
    integers = {"Trial", "epoch"} | {
        p
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        for p, d in t.distributions.items()
        if isinstance(d, IntDistribution) and not d.log
    }
    if name in ("timeline", "parallel_coordinate"):
        return  # times, and several scales sharing one axis
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_label().get_text() in integers and axis.get_scale() == "linear":
                integer_ticks(axis)


def _lay_out(figure: Figure) -> None:
    """Tight layout of the panels, with a colour bar in its own strip at the right.

    Optuna adds the colour bar of a multi-panel plot (slice) beside the panels, outside
    the grid tight_layout arranges: laid out together, the bar ends up over the last panel.
    """
    # Only bars made beside a set of panels; one made in the grid (contour of two
    # parameters, parallel coordinates) is already laid out with its panel.
    bars = [ax for ax in figure.axes if hasattr(ax, "_colorbar") and ax.get_subplotspec() is None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # colour bar axes cannot take part in tight_layout
        figure.tight_layout(rect=(0, 0, 0.88, 1) if bars else (0, 0, 1, 1))
    panels = [ax for ax in figure.axes if ax not in bars and ax.get_visible()]
    if not bars or not panels:
        return
    bottom = min(ax.get_position().y0 for ax in panels)
    top = max(ax.get_position().y1 for ax in panels)
    for i, bar in enumerate(bars):
        bar.set_position((0.9 + 0.05 * i, bottom, 0.018, top - bottom))


def _save_png(figure: Figure, target: Path) -> Path:
    with atomic_path(target, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    return target


def build_page(target: Path, study_name: str, sections: Sequence[PageSection]) -> Path:
    """Write the interactive plots of every model type into one self-contained page.

    A plot that cannot be drawn is listed with the reason, as in :func:`build_plots`.
    """
    parts: list[str] = []
    with_script = True  # plotly.js goes into the first figure only
    for section in sections:
        body, with_script = _page_section(section, with_script)
        parts.append(body)
    links = " · ".join(
        f'<a href="#{html.escape(s.model_type)}">{html.escape(s.model_type)}</a>' for s in sections
    )
    title = html.escape(f"{study_name}: visualizations")
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head>\n<body><h1>{title}</h1><p>{links}</p>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, suffix=".html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;color:#222}"
    "h2{border-bottom:1px solid #bbb;margin-top:2em}.skipped{color:#666}"
)


def _page_section(section: PageSection, with_script: bool) -> tuple[str, bool]:
    """One model type's figures as HTML, and whether plotly.js is still to be included."""
    from optuna import visualization as plotly_vis

    study, mt = section.study, html.escape(section.model_type)
    reasons = _reasons(study, section.importance)
    out = [f'<section id="{mt}"><h2>{mt} ({html.escape(section.metric)})</h2>']
    for name in PLOTS:
        if name not in reasons:
            try:
                kwargs = _kwargs(study, name, section.metric, section.importance)
                figure = _call(plotly_vis, name, study, kwargs)
            except (ValueError, RuntimeError, TypeError) as exc:
                reasons[name] = f"not drawable: {str(exc).splitlines()[0][:160]}"
                continue
            div = figure.to_html(full_html=False, include_plotlyjs=with_script)
            out.append(f"<h3>{TITLES[name]}</h3>{div}")
            with_script = False
    if reasons:
        items = "".join(
            f"<li>{TITLES[n]}: {html.escape(r)}</li>" for n, r in reasons.items() if n in TITLES
        )
        out.append(f'<p class="skipped">Not drawn:</p><ul class="skipped">{items}</ul>')
    out.append("</section>")
    return "".join(out), with_script
