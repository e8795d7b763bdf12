"""The PDF study report (matplotlib only) and the written analysis behind it.

``build_report`` takes plain data per model type (see :class:`ModelSection`), so it can be
tested without a study; :func:`hpolab.operations.report` gathers that data from storage.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from hpolab.layout import atomic_path  # noqa: E402

A4 = (8.27, 11.69)


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


def _model_notes(s: ModelSection) -> list[str]:
    out: list[str] = []
    complete = [t for t in s.trials if t["state"] == "complete" and t["value"] is not None]
    if not complete:
        return ["no complete trial yet, so nothing can be concluded."]
    values = s.importance.get("values") or {}
    if values:
        top, share = max(values.items(), key=lambda kv: kv[1])
        rest = [k for k, v in sorted(values.items(), key=lambda kv: -kv[1])[1:3] if v > 0.1]
        out.append(
            f"{top} mattered most ({share:.0%} of the explained variance by fANOVA"
            + (f"; then {', '.join(rest)})." if rest else ").")
        )
    if s.importance.get("note"):
        note = s.importance["note"].rstrip(".")
        out.append(note[:1].upper() + note[1:] + ".")
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
    return out


def build_report(
    path: Path, study: str, setup: dict[str, Any], sections: list[ModelSection]
) -> int:
    """Write the PDF report to ``path`` atomically; return its number of pages."""
    pages = 0
    # Optuna's plots switch matplotlib to the ggplot style globally; the report's own
    # pages (tables, confusion matrix) read better in the default one.
    with (
        plt.style.context("default"),
        atomic_path(path, suffix=".pdf") as tmp,
        PdfPages(tmp) as pdf,
    ):
        for figure in _pages(study, setup, sections):
            pdf.savefig(figure)
            plt.close(figure)
            pages += 1
        info = pdf.infodict()
        info["Title"] = f"hpolab study report: {study}"
        info["Creator"] = "hpolab"
    return pages


def _pages(study: str, setup: dict[str, Any], sections: list[ModelSection]) -> Any:
    yield _summary_page(study, setup, sections)
    for s in sections:
        yield _model_page(s)
        if s.test_outputs:
            yield _test_page(s)
        plots = list(s.plots.items())
        for i in range(0, len(plots), 2):
            yield _plots_page(s.model_type, plots[i : i + 2])


def _page(title: str) -> tuple[Any, Any]:
    figure = plt.figure(figsize=A4)
    figure.text(0.06, 0.965, title, fontsize=15, weight="bold", va="top")
    return figure, figure.add_axes((0.06, 0.04, 0.88, 0.88))


def _text(ax: Any, y: float, text: str, width: int = 95, size: float = 9.5, **kw: Any) -> float:
    """Write wrapped ``text`` from height ``y`` (axes fraction) down; return the next y."""
    lines = [line for para in text.split("\n") for line in (textwrap.wrap(para, width) or [""])]
    for line in lines:
        ax.text(0, y, line, fontsize=size, va="top", family="DejaVu Sans", **kw)
        y -= 0.0175 * size / 9.5
    return y - 0.008


def _table(
    ax: Any,
    y: float,
    header: list[str],
    rows: list[list[str]],
    height: float,
    widths: list[float] | None = None,
) -> float:
    if not rows:
        return _text(ax, y, "(none)")
    table = ax.table(
        cellText=rows,
        colLabels=header,
        colWidths=widths,
        bbox=(0, y - height, 1, height),
        cellLoc="left",
        colLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    for (row, _), cell in table.get_celld().items():
        if row == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8eef7")
    return y - height - 0.03


def _summary_page(study: str, setup: dict[str, Any], sections: list[ModelSection]) -> Any:
    figure, ax = _page(f"Study report: {study}")
    ax.axis("off")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    y = _text(ax, 1.0, f"Generated {now}.", size=8.5, color="#555555")
    y = _text(ax, y, "Setup", size=12, weight="bold")
    for key, value in setup.items():
        y = _text(ax, y, f"{key}: {value}", size=9)
    y = _text(ax, y - 0.01, "Best per model type", size=12, weight="bold")
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
    widths = [0.13, 0.09, 0.06, 0.07, 0.1, 0.55]
    y = _table(ax, y, header, rows, 0.035 * (len(rows) + 1), widths)
    y = _text(ax, y, "c / p / f: complete / pruned / failed trials.", size=8, color="#555555")
    y = _text(ax, y, "Analysis", size=12, weight="bold")
    for note in analysis(sections):
        y = _text(ax, y, note, size=9.5)
    return figure


def _model_page(s: ModelSection) -> Any:
    figure, ax = _page(f"{s.model_type}: search space and best configuration")
    ax.axis("off")
    y = _text(
        ax,
        1.0,
        f"Objective {s.metric} ({s.direction}); best "
        f"{'-' if s.best_value is None else format(s.best_value, '.5g')} at trial {s.best_trial}.",
    )
    y = _text(ax, y, "Search space", size=12, weight="bold")
    space_rows = [[name, _describe_spec(spec)] for name, spec in s.space.items()]
    y = _table(ax, y, ["parameter", "values"], space_rows, 0.028 * (len(space_rows) + 1))
    y = _text(ax, y, "Best configuration", size=12, weight="bold")
    best_rows = [
        [k, f"{v:.4g}" if isinstance(v, float) else str(v)] for k, v in s.best_params.items()
    ]
    y = _table(ax, y, ["parameter", "value"], best_rows, 0.028 * (len(best_rows) + 1))
    values = s.importance.get("values") or {}
    ped = s.importance.get("ped_anova") or {}
    if values and y > 0.3:
        names = sorted(values, key=lambda k: values[k])
        bars = figure.add_axes((0.25, 0.06, 0.65, min(0.3, y * 0.8)))
        positions = np.arange(len(names))
        bars.barh(positions - 0.2, [values[n] for n in names], height=0.4, label="fANOVA")
        bars.barh(positions + 0.2, [ped.get(n, 0.0) for n in names], height=0.4, label="PED-ANOVA")
        bars.set_yticks(positions, names)
        bars.set_xlabel("importance")
        bars.set_title("Parameter importance", fontsize=10)
        bars.legend(fontsize=8)
    elif s.importance.get("note"):
        _text(ax, y, f"Parameter importance: {s.importance['note']}")
    return figure


def _test_page(s: ModelSection) -> Any:
    figure = plt.figure(figsize=A4)
    figure.text(
        0.06,
        0.965,
        f"{s.model_type}: final model on the test split",
        fontsize=15,
        weight="bold",
        va="top",
    )
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in s.test_metrics.items())
    figure.text(0.06, 0.93, metrics, fontsize=9.5, va="top")
    out = s.test_outputs
    if "confusion_matrix" in out:
        matrix = np.asarray(out["confusion_matrix"])
        classes = [str(c) for c in (out.get("classes") or range(len(matrix)))]
        ax = figure.add_axes((0.15, 0.45, 0.7, 0.42))
        ax.imshow(matrix, cmap="Blues")
        ax.grid(False)
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("Confusion matrix (test)")
        limit = matrix.max() / 2 if matrix.size else 0
        if len(classes) <= 12:
            for (i, j), v in np.ndenumerate(matrix):
                ax.text(
                    j,
                    i,
                    str(v),
                    ha="center",
                    va="center",
                    color="white" if v > limit else "black",
                    fontsize=8,
                )
    elif "y_true" in out:
        y_true, y_pred = np.asarray(out["y_true"]), np.asarray(out["y_pred"])
        ax = figure.add_axes((0.12, 0.52, 0.76, 0.36))
        ax.scatter(y_true, y_pred, s=8, alpha=0.6)
        low, high = float(min(y_true.min(), y_pred.min())), float(max(y_true.max(), y_pred.max()))
        ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        ax.set_title("Predicted vs true (test)")
        res = figure.add_axes((0.12, 0.08, 0.76, 0.34))
        res.scatter(y_pred, y_true - y_pred, s=8, alpha=0.6)
        res.axhline(0, color="grey", linestyle="--", linewidth=1)
        res.set_xlabel("predicted")
        res.set_ylabel("residual (true - predicted)")
        res.set_title("Residuals")
    return figure


def _plots_page(model_type: str, plots: list[tuple[str, Path]]) -> Any:
    figure = plt.figure(figsize=A4)
    figure.text(0.06, 0.965, f"{model_type}: visualizations", fontsize=15, weight="bold", va="top")
    for i, (name, png) in enumerate(plots):
        ax = figure.add_axes((0.04, 0.5 - i * 0.46, 0.92, 0.42))
        ax.imshow(plt.imread(png))
        ax.set_title(name.replace("_", " "), fontsize=10)
        ax.axis("off")
    return figure


def _describe_spec(spec: dict[str, Any]) -> str:
    kind = spec.get("type")
    if kind == "categorical":
        text = ", ".join(str(c) for c in spec.get("choices") or [])
    elif kind == "fixed":
        text = f"fixed {spec.get('value')}"
    else:
        low, high = spec.get("low"), spec.get("high")
        text = f"{kind} {low} .. {high}"
        if spec.get("step"):
            text += f" step {spec['step']}"
        if spec.get("log"):
            text += " (log)"
    if spec.get("when"):
        text += f"  when {spec['when']}"
    return text if len(text) < 90 else text[:87] + "..."
