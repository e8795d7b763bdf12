"""Report of a manual training run: PDF (matplotlib only) plus the same figures as PNG.

Pages: summary (model, data, hyperparameters, written analysis), training curves (and
the learning rate when a schedule changes it), test results (confusion matrix and
per-class precision / recall / F1, or predicted vs true and residuals), and a sampled
table of the history.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from hpolab.layout import atomic_path  # noqa: E402
from hpolab.reporting import charts  # noqa: E402
from hpolab.reporting.pages import A4, PageFlow  # noqa: E402

HISTORY_ROWS = 25


def run_analysis(info: dict[str, Any], history: dict[str, list[float]]) -> list[str]:
    """Short written analysis drawn from the numbers of the run."""
    notes: list[str] = []
    metric, direction = info["metric"], info["direction"]
    values = history.get(metric, [])
    n = len(values)
    if not n:
        return ["No epoch finished, so there is nothing to analyse."]
    best = int(info["best_epoch"])
    notes.append(
        f"Best {metric} {info['best_value']:.4g} at epoch {best} of {n}"
        + (
            f" (training stopped early; patience {info['training']['patience']})."
            if n < int(info["training"]["epochs"])
            else "."
        )
    )
    notes.extend(_fit_diagnosis(history, best, n, direction, metric))
    confused = _most_confused(info.get("test_outputs") or {})
    if confused:
        notes.append(confused)
    notes.append(_next_steps(history, best, n, info))
    return notes


def _fit_diagnosis(
    history: dict[str, list[float]], best: int, n: int, direction: str, metric: str
) -> list[str]:
    notes = []
    loss, val_loss = history.get("loss", []), history.get("val_loss", [])
    if len(val_loss) == n and n >= 3 and best < n:
        rise = val_loss[-1] - min(val_loss)
        fell = loss[best - 1] - loss[-1] if len(loss) == n else 0.0
        if rise > 0.05 * abs(min(val_loss)) and fell > 0:
            notes.append(
                f"Overfitting after epoch {best}: training loss kept falling "
                f"({loss[best - 1]:.4g} -> {loss[-1]:.4g}) while validation loss rose "
                f"({min(val_loss):.4g} -> {val_loss[-1]:.4g})."
            )
    train_acc, val_acc = history.get("accuracy", []), history.get("val_accuracy", [])
    if train_acc and val_acc and len(train_acc) >= best and len(val_acc) >= best:
        gap = train_acc[best - 1] - val_acc[best - 1]
        if gap > 0.1:
            notes.append(
                f"Train accuracy {train_acc[best - 1]:.3f} vs validation {val_acc[best - 1]:.3f} "
                "at the best epoch: the model memorises part of the training data."
            )
        elif max(train_acc) < 0.75:
            notes.append(
                f"Training accuracy stays below {max(train_acc):.2f}: the model underfits; "
                "more capacity or a higher learning rate may help."
            )
    values = history.get(metric, [])
    if best == n and n >= 3:
        recent = values[-3:]
        improving = recent[-1] < recent[0] if direction == "minimize" else recent[-1] > recent[0]
        if improving:
            notes.append(f"{metric} was still improving at the last epoch: not converged yet.")
    if not notes:
        notes.append("No clear over- or under-fitting in the curves.")
    return notes


def _most_confused(outputs: dict[str, Any]) -> str | None:
    if "confusion_matrix" not in outputs:
        return None
    matrix = np.asarray(outputs["confusion_matrix"], dtype=float)
    classes = [str(c) for c in (outputs.get("classes") or range(len(matrix)))]
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    if off.sum() == 0:
        return "No test sample was misclassified."
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    share = off[i, j] / max(matrix[i].sum(), 1)
    return (
        f"Most confused: true {classes[i]} predicted as {classes[j]} "
        f"({int(off[i, j])} test samples, {share:.0%} of {classes[i]})."
    )


def _next_steps(history: dict[str, list[float]], best: int, n: int, info: dict[str, Any]) -> str:
    epochs = int(info["training"]["epochs"])
    if best == n and n == epochs:
        return "Next: train longer (raise epochs) or raise the learning rate."
    if best < n / 2:
        return (
            "Next: regularise (dropout, smaller model, class weights) or lower the learning "
            "rate; the best epoch came early."
        )
    return "Next: run a study around these parameters (hpolab run) to tune them further."


def per_class_scores(matrix: np.ndarray) -> list[tuple[float, float, float, int]]:
    """(precision, recall, F1, support) per class from a confusion matrix."""
    matrix = np.asarray(matrix, dtype=float)
    rows = []
    for k in range(len(matrix)):
        tp = matrix[k, k]
        precision = tp / matrix[:, k].sum() if matrix[:, k].sum() else 0.0
        recall = tp / matrix[k].sum() if matrix[k].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((precision, recall, f1, int(matrix[k].sum())))
    return rows


def build_run_report(
    path: Path, info: dict[str, Any], history: dict[str, list[float]]
) -> tuple[int, list[Path]]:
    """Write ``report.pdf`` (atomically) and the figures as PNG beside it.

    Returns the number of pages and the PNG files.
    """
    from matplotlib.backends.backend_pdf import PdfPages

    pngs = []
    with (
        plt.style.context("default"),
        atomic_path(path, suffix=".pdf") as tmp,
        PdfPages(tmp) as pdf,
    ):
        figures = run_figures(info, history)
        for name, figure in figures:
            pdf.savefig(figure)
            png = path.parent / f"{name}.png"
            with atomic_path(png, suffix=".png") as tmp_png:
                figure.savefig(tmp_png, dpi=90, format="png")
            pngs.append(png)
            plt.close(figure)
        meta = pdf.infodict()
        meta["Title"] = f"hpolab training run: {info['run_name']}"
        meta["Creator"] = "hpolab"
    return len(figures), pngs


def run_figures(info: dict[str, Any], history: dict[str, list[float]]) -> list[tuple[str, Figure]]:
    """The report's pages as (PNG name, figure), in order (the caller closes them).

    A page whose content runs over gets a second figure, ``<name>_2``.
    """
    pages = [
        ("summary", _summary_page(info, history)),
        ("training_curves", [_curves_page(info, history)]),
        ("test_results", _results_page(info)),
        ("history_table", _history_page(history)),
    ]
    return [
        (name if i == 0 else f"{name}_{i + 1}", figure)
        for name, figures in pages
        for i, figure in enumerate(figures)
    ]


def _summary_page(info: dict[str, Any], history: dict[str, list[float]]) -> list[Figure]:
    flow = PageFlow()
    flow.new_page(f"Training run: {info['run_name']}")
    flow.text(f"{info['model_type']} on {info['data']['summary']}")
    resumed = info.get("resumed_from_epoch")
    flow.text(
        f"{info['parameter_count']:,} parameters; input shape {tuple(info['input_shape'])}; "
        f"trained {info['training_seconds']:.1f} s over {info['epochs_run']} epochs"
        + (f" (resumed at epoch {resumed})" if resumed else "")
        + f"; parameters from {info['params_source']}.",
        size=9,
    )
    flow.heading("Hyperparameters")
    rows = [[k, _fmt(v)] for k, v in info["params"].items()] or [
        ["(model parameters)", f"{info['model_type']} builder defaults"]
    ]
    # learning_rate may be both a model parameter and a training key: one row, not two.
    rows += [[k, _fmt(v)] for k, v in info["training"].items() if k not in info["params"]]
    flow.table(["parameter", "value"], rows, [0.35, 0.65])
    flow.heading("Test split")
    flow.text(", ".join(f"{k} {v:.4g}" for k, v in info["test_metrics"].items()))
    flow.heading("Analysis")
    for note in run_analysis(info, history):
        flow.text(f"- {note}")
    return flow.figures


def learning_rate_curve(
    info: dict[str, Any], history: dict[str, list[float]]
) -> tuple[list[float], list[float], str] | None:
    """(epochs, rates, label) of the run's learning rate; None when it stays constant.

    A recorded ``learning_rate`` series is shown as it is (one value per epoch end);
    otherwise the schedule of the run's settings is drawn from epoch 0 to the last one
    trained.
    """
    recorded = history.get("learning_rate")
    if recorded:
        return [float(e) for e in range(1, len(recorded) + 1)], list(recorded), "recorded"
    training = info.get("training") or {}
    kind = training.get("lr_schedule") or "constant"
    if kind == "constant" and not training.get("warmup_epochs"):
        return None
    # Options given in optimizer steps (initial_lr, decay_steps, ...) would need the
    # batches per epoch: rather no curve than a wrong one.
    if any(k not in _EPOCH_OPTIONS for k in training.get("lr_schedule_options") or {}):
        return None
    # The epochs the run trained: early stopping may end it before the schedule does.
    epochs = max(int(info.get("epochs_run") or training.get("epochs") or 1), 1)
    at = np.linspace(0.0, float(epochs), 20 * epochs + 1)
    rates = planned_learning_rate(at, training)
    return at.tolist(), rates.tolist(), f"{kind} schedule (planned)"


# Schedule options the planned curve follows (the others are counted in optimizer steps).
_EPOCH_OPTIONS = ("warmup_start", "decay_rate", "power")


def planned_learning_rate(epochs: np.ndarray, training: dict[str, Any]) -> np.ndarray:
    """The scheduled rate after ``epochs`` (fractions too) of training.

    The formulas of :class:`hpolab.training.optimizers.WarmupDecaySchedule` (linear
    warmup over ``warmup_epochs``, then the decay over the remaining epochs down to
    ``min_learning_rate``), counted in epochs instead of optimizer steps, so the report
    needs neither Keras nor the number of batches per epoch.
    """
    options = training.get("lr_schedule_options") or {}
    base = float(training.get("learning_rate") or 1e-3)
    floor = float(training.get("min_learning_rate") or 0.0)
    kind = training.get("lr_schedule") or "constant"
    warmup = float(training.get("warmup_epochs") or 0)
    span = max(float(training.get("epochs") or 1) - warmup, 1e-9)
    progress = np.clip((epochs - warmup) / span, 0.0, 1.0)
    if kind == "linear":
        rate = base - (base - floor) * progress
    elif kind == "cosine":
        rate = floor + (base - floor) * 0.5 * (1.0 + np.cos(math.pi * progress))
    elif kind == "polynomial":
        rate = floor + (base - floor) * (1.0 - progress) ** float(options.get("power", 1.0))
    elif kind in ("exponential", "warmup"):
        decay = float(options.get("decay_rate", 0.5))
        rate = np.maximum(base * decay ** (np.maximum(epochs - warmup, 0.0) / span), floor)
    else:
        rate = np.full_like(epochs, base, dtype=float)
    if warmup:
        start = float(options.get("warmup_start", 0.0))
        warm = start + (base - start) * np.minimum(epochs / warmup, 1.0)
        rate = np.where(epochs < warmup, warm, rate)
    return rate


def _curves_page(info: dict[str, Any], history: dict[str, list[float]]) -> Figure:
    names = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in history]
    lr = learning_rate_curve(info, history)
    figure = Figure(figsize=A4)  # not kept open by pyplot
    figure.suptitle("Training curves (train vs validation)", x=0.06, ha="left", weight="bold")
    rows = max(len(names) + (lr is not None), 1)
    for i, name in enumerate(names):
        ax = figure.add_subplot(rows, 1, i + 1)
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        _epoch_axes(ax, info, name)
    if lr is not None:
        _lr_axes(figure.add_subplot(rows, 1, rows), info, lr)
    if figure.axes:
        figure.axes[-1].set_xlabel("epoch (dashed: best epoch)")
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    return figure


def _epoch_axes(ax: Axes, info: dict[str, Any], ylabel: str) -> None:
    """Best-epoch marker, whole-epoch ticks, label, legend and grid of one panel."""
    ax.axvline(info["best_epoch"], color="grey", linestyle="--", linewidth=1)
    charts.integer_ticks(ax.xaxis)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def _lr_axes(ax: Axes, info: dict[str, Any], curve: tuple[list[float], list[float], str]) -> None:
    epochs, rates, label = curve
    recorded = label == "recorded"
    ax.plot(epochs, rates, marker="o" if recorded else None, markersize=3, label=label)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    _epoch_axes(ax, info, "learning rate")


def _results_page(info: dict[str, Any]) -> list[Figure]:
    flow = PageFlow()
    flow.new_page(f"{info['model_type']}: final model on the test split")
    outputs = info.get("test_outputs") or {}
    charts.draw_test_split(flow, info["test_metrics"], outputs)
    if "confusion_matrix" in outputs:
        classes = [charts.number(c, integer=True) for c in (outputs.get("classes") or [])]
        rows = [
            [name, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", str(n)]
            for name, (p, r, f, n) in zip(
                classes, per_class_scores(np.asarray(outputs["confusion_matrix"])), strict=False
            )
        ]
        flow.table(["class", "precision", "recall", "F1", "support"], rows)
    return flow.figures


def _history_page(history: dict[str, list[float]]) -> list[Figure]:
    flow = PageFlow()
    flow.new_page("Training history (sampled)")
    keys = [k for k in history if k != "learning_rate"]
    n = max((len(v) for v in history.values()), default=0)
    picks = (
        sorted(set(np.linspace(0, n - 1, min(n, HISTORY_ROWS)).round().astype(int))) if n else []
    )
    rows = [
        [str(i + 1)] + [_fmt(history[k][i]) if i < len(history[k]) else "-" for k in keys]
        for i in picks
    ]
    flow.table(["epoch", *keys], rows, row_height=0.03)
    return flow.figures


def _fmt(value: Any) -> str:
    return charts.number(value)
