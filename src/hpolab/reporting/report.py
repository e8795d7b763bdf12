"""The PDF study report (matplotlib only) and the written analysis behind it.

``build_report`` takes plain data per model type (see :class:`ModelSection`), so it can be
tested without a study; :func:`hpolab.operations.report` gathers that data from storage.
The blocks of the report flow down the pages (see :class:`~hpolab.reporting.pages.PageFlow`):
a model type's search space, importance, test results and plots follow one another and a
new page starts only when the next block does not fit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hpolab.layout import atomic_path  # noqa: E402
from hpolab.reporting import charts  # noqa: E402
from hpolab.reporting.pages import MUTED, PageFlow  # noqa: E402
from hpolab.reporting.results import ranked_importance  # noqa: E402
from hpolab.reporting.summary import baseline_warning  # noqa: E402

# The report draws the importance chart itself, from the numbers its text quotes.
DRAWN_IN_REPORT = ("param_importances",)


@dataclass
class ModelSection:
    """Everything the report says about one model type, as plain data."""

    model_type: str
    metric: str
    direction: str
    n_trials_target: int
    space: dict[str, Any]
    trials: list[dict[str, Any]]
    best_value: float | None = None
    best_trial: int | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    importance: dict[str, Any] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    test_outputs: dict[str, Any] = field(default_factory=dict)
    plots: dict[str, Path] = field(default_factory=dict)
    # The final model's test score beside a trivial model's (majority class / mean).
    baseline: dict[str, Any] | None = None

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t["state"] == state)


def analysis(sections: list[ModelSection]) -> list[str]:
    """Short paragraphs derived from the numbers: importance, convergence, budget, winner."""
    notes: list[str] = []
    for s in sections:
        notes.append(f"{s.model_type}: " + " ".join(_model_notes(s)))
    ranked = [s for s in sections if s.best_value is not None]
    if len(ranked) > 1:
        maximize = ranked[0].direction == "maximize"
        ranked.sort(key=lambda s: s.best_value, reverse=maximize)  # type: ignore[arg-type,return-value]
        a, b = ranked[0], ranked[1]
        notes.append(
            f"Across model types, {a.model_type} is best ({a.metric} {a.best_value:.4g} vs "
            f"{b.best_value:.4g} for {b.model_type})."
        )
    return notes


def importance_notes(importance: dict[str, Any]) -> list[str]:
    """What the text says about parameter importance: the ranking, then any caveat."""
    out: list[str] = []
    ranked = ranked_importance(importance)
    if ranked:
        (top, share), rest = ranked[0], [k for k, v in ranked[1:3] if v > 0.1]
        out.append(
            f"{top} mattered most ({share:.0%} of the explained variance by fANOVA"
            + (f"; then {', '.join(rest)})." if rest else ").")
        )
    if importance.get("note"):
        note = importance["note"].rstrip(".")
        out.append(note[:1].upper() + note[1:] + ".")
    return out


def _model_notes(s: ModelSection) -> list[str]:
    complete = [t for t in s.trials if t["state"] == "complete" and t["value"] is not None]
    if not complete:
        return ["no complete trial yet, so nothing can be concluded."]
    out = importance_notes(s.importance)
    sign = -1 if s.direction == "maximize" else 1
    ordered = sorted(complete, key=lambda t: t["number"])
    best_index = min(range(len(ordered)), key=lambda i: sign * ordered[i]["value"])
    since = len(ordered) - 1 - best_index
    converged = len(ordered) >= 4 and since >= max(3, len(ordered) // 3)
    if converged:
        out.append(
            f"The best value came at complete trial {best_index + 1} of {len(ordered)} and "
            f"has not improved in the {since} since: the search looks converged."
        )
    else:
        out.append(
            f"The best value came at complete trial {best_index + 1} of {len(ordered)}, "
            f"{since} before the end: the search was still improving."
        )
    pruned, failed = s.count("pruned"), s.count("fail")
    total = len(s.trials)
    if pruned:
        out.append(f"{pruned} of {total} trials were pruned, saving their remaining epochs.")
    if failed:
        out.append(f"{failed} trials failed (see the trials table for the errors).")
    if total < s.n_trials_target:
        out.append(f"Only {total} of the {s.n_trials_target} planned trials have run.")
    elif converged:
        out.append("The budget looks sufficient.")
    else:
        out.append("The budget looks too small: resume with a larger --n-trials.")
    return out + _baseline_notes(s)


def _baseline_notes(s: ModelSection) -> list[str]:
    """Whether the final model beats a trivial one on the test split (warning if not)."""
    b = s.baseline
    if not b:
        return []
    warning = baseline_warning(s.model_type, b)
    if warning:
        return [f"Warning: {warning.split(': ', 1)[1]}."]
    return [
        f"On the test split the final model beats a {b['baseline']} baseline "
        f"({b['metric']} {b['model_value']:.4g} vs {b['baseline_value']:.4g})."
    ]


def build_report(
    path: Path, study: str, setup: dict[str, Any], sections: list[ModelSection]
) -> int:
    """Write the PDF report to ``path`` atomically; return its number of pages."""
    # Optuna's plots switch matplotlib to the ggplot style globally; the report's own
    # pages (tables, confusion matrix) read better in the default one.
    with (
        plt.style.context("default"),
        atomic_path(path, suffix=".pdf") as tmp,
        PdfPages(tmp) as pdf,
    ):
        figures = report_figures(study, setup, sections)
        for figure in figures:
            pdf.savefig(figure)
            plt.close(figure)
        info = pdf.infodict()
        info["Title"] = f"hpolab study report: {study}"
        info["Creator"] = "hpolab"
    return len(figures)


def report_figures(study: str, setup: dict[str, Any], sections: list[ModelSection]) -> list[Figure]:
    """The report's pages as matplotlib figures, in order (the caller closes them)."""
    flow = PageFlow()
    _summary(flow, study, setup, sections)
    for s in sections:
        flow.heading(f"{s.model_type}: search space and best configuration", 0.3, size=14)
        _model_blocks(flow, s)
        _importance_block(flow, s)
        if s.test_outputs:
            # Kept with the first chart below it: the matrix, or predicted vs true.
            first = 0.46 if "confusion_matrix" in s.test_outputs else 0.37
            flow.heading(f"{s.model_type}: final model on the test split", first)
            charts.draw_test_split(flow, s.test_metrics, s.test_outputs)
        for name, png in s.plots.items():
            if name not in DRAWN_IN_REPORT:
                flow.image(png, f"{s.model_type}: {name.replace('_', ' ')}")
    return flow.figures


def _summary(
    flow: PageFlow, study: str, setup: dict[str, Any], sections: list[ModelSection]
) -> None:
    flow.new_page(f"Study report: {study}")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    flow.text(f"Generated {now}.", size=8.5, color=MUTED)
    flow.heading("Setup")
    for key, value in setup.items():
        flow.text(f"{key}: {value}", size=9)
    flow.heading("Best per model type")
    header = ["model type", "best", "trial", "trials", "c / p / f", "test metrics"]
    rows = [
        [
            s.model_type,
            "-" if s.best_value is None else f"{s.best_value:.4g}",
            str(s.best_trial),
            f"{len(s.trials)}/{s.n_trials_target}",
            f"{s.count('complete')}/{s.count('pruned')}/{s.count('fail')}",
            ", ".join(f"{k} {v:.3g}" for k, v in s.test_metrics.items()) or "-",
        ]
        for s in sections
    ]
    flow.table(header, rows, [0.13, 0.09, 0.06, 0.07, 0.1, 0.55], row_height=0.03)
    flow.text("c / p / f: complete / pruned / failed trials.", size=8, color=MUTED)
    flow.heading("Analysis")
    for note in analysis(sections):
        flow.text(note)


def _model_blocks(flow: PageFlow, s: ModelSection) -> None:
    best = "-" if s.best_value is None else format(s.best_value, ".5g")
    flow.text(f"Objective {s.metric} ({s.direction}); best {best} at trial {s.best_trial}.")
    flow.heading("Search space")
    flow.table(["parameter", "values"], [[k, describe_spec(v)] for k, v in s.space.items()])
    flow.heading("Best configuration")
    rows = [[k, _param_value(v, s.space.get(k))] for k, v in s.best_params.items()]
    flow.table(["parameter", "value"], rows)


def _importance_block(flow: PageFlow, s: ModelSection) -> None:
    """The importance sentence and, when there are enough trials, the chart of the same
    numbers in the same order; with too few trials only the sentence that says so."""
    ranked = ranked_importance(s.importance)
    notes = importance_notes(s.importance)
    if not notes:
        return
    flow.heading("Parameter importance", 0.1 + 0.025 * len(ranked))
    for note in notes:
        flow.text(note)
    if not ranked:
        return
    ax = flow.axes(0.09 + 0.028 * len(ranked), left=0.25, width=0.62, pad=(0.045, 0.025))
    charts.importance_bars(ax, ranked)
    ped = s.importance.get("ped_anova") or {}
    if ped:
        # Same order as the chart, so the two estimates can be compared line by line.
        second = ", ".join(f"{k} {ped.get(k, 0.0):.0%}" for k, _ in ranked)
        flow.text(f"PED-ANOVA, a second estimate, in the same order: {second}.", 8, color=MUTED)


def _param_value(value: Any, spec: dict[str, Any] | None) -> str:
    return charts.number(value, integer=(spec or {}).get("type") == "int")


def describe_spec(spec: dict[str, Any]) -> str:
    """One line of the search space table: choices, fixed value or range."""
    kind = spec.get("type")
    if kind == "categorical":
        text = ", ".join(str(c) for c in spec.get("choices") or [])
    elif kind == "fixed":
        text = f"fixed {spec.get('value')}"
    else:
        # Bounds are stored as floats; an integer range reads 16 .. 128, not 16.0 .. 128.0.
        def num(v: Any) -> str:
            return charts.number(v, integer=kind == "int")

        text = f"{kind} {num(spec.get('low'))} .. {num(spec.get('high'))}"
        if spec.get("step"):
            text += f" step {num(spec['step'])}"
        if spec.get("log"):
            text += " (log)"
    if spec.get("when"):
        text += f"  when {spec['when']}"
    return text if len(text) < 90 else text[:87] + "..."
