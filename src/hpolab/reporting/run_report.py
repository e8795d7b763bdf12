"""Report of a manual training run: PDF (matplotlib only) plus the same figures as PNG.

Pages: summary (model, data, hyperparameters, written analysis), training curves, test
results (confusion matrix and per-class precision / recall / F1, or predicted vs true and
residuals), and a sampled table of the history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hpolab.layout import atomic_path
from hpolab.reporting.report import A4, _page, _table, _test_page, _text, plt

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

    figures = [
        ("summary", _summary_page(info, history)),
        ("training_curves", _curves_page(info, history)),
        ("test_results", _results_page(info)),
        ("history_table", _history_page(history)),
    ]
    pngs = []
    with (
        plt.style.context("default"),
        atomic_path(path, suffix=".pdf") as tmp,
        PdfPages(tmp) as pdf,
    ):
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


def _summary_page(info: dict[str, Any], history: dict[str, list[float]]) -> Any:
    figure, ax = _page(f"Training run: {info['run_name']}")
    ax.axis("off")
    y = _text(ax, 1.0, f"{info['model_type']} on {info['data']['summary']}")
    y = _text(
        ax,
        y,
        f"{info['parameter_count']:,} parameters; input shape {tuple(info['input_shape'])}; "
        f"trained {info['training_seconds']:.1f} s over {info['epochs_run']} epochs"
        + (
            f" (resumed at epoch {info['resumed_from_epoch']})"
            if info.get("resumed_from_epoch")
            else ""
        )
        + f"; parameters from {info['params_source']}.",
        size=9,
    )
    y = _text(ax, y, "Hyperparameters", size=12, weight="bold")
    rows = [[k, _fmt(v)] for k, v in info["params"].items()] or [
        ["(model parameters)", f"{info['model_type']} builder defaults"]
    ]
    # learning_rate may be both a model parameter and a training key: one row, not two.
    rows += [[k, _fmt(v)] for k, v in info["training"].items() if k not in info["params"]]
    y = _table(ax, y, ["parameter", "value"], rows, 0.024 * (len(rows) + 1), [0.35, 0.65])
    y = _text(ax, y, "Test split", size=12, weight="bold")
    y = _text(ax, y, ", ".join(f"{k} {v:.4g}" for k, v in info["test_metrics"].items()))
    y = _text(ax, y, "Analysis", size=12, weight="bold")
    for note in run_analysis(info, history):
        y = _text(ax, y, f"- {note}", size=9.5)
    return figure


def _curves_page(info: dict[str, Any], history: dict[str, list[float]]) -> Any:
    names = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in history]
    figure = plt.figure(figsize=A4)
    figure.suptitle("Training curves (train vs validation)", x=0.06, ha="left", weight="bold")
    rows = max(len(names), 1)
    for i, name in enumerate(names):
        ax = figure.add_subplot(rows, 1, i + 1)
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        ax.axvline(info["best_epoch"], color="grey", linestyle="--", linewidth=1)
        ax.set_ylabel(name)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    figure.axes[-1].set_xlabel("epoch (dashed: best epoch)")
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    return figure


def _results_page(info: dict[str, Any]) -> Any:
    from hpolab.reporting.report import ModelSection

    section = ModelSection(
        model_type=info["model_type"],
        metric=info["metric"],
        direction=info["direction"],
        n_trials_target=0,
        space={},
        trials=[],
        test_metrics=info["test_metrics"],
        test_outputs=info.get("test_outputs") or {},
    )
    figure = _test_page(section)
    outputs = info.get("test_outputs") or {}
    if "confusion_matrix" in outputs:
        classes = [str(c) for c in (outputs.get("classes") or [])]
        rows = [
            [name, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", str(n)]
            for name, (p, r, f, n) in zip(
                classes, per_class_scores(np.asarray(outputs["confusion_matrix"])), strict=False
            )
        ]
        ax = figure.add_axes((0.1, 0.05, 0.8, 0.3))
        ax.axis("off")
        _table(
            ax,
            1.0,
            ["class", "precision", "recall", "F1", "support"],
            rows,
            min(0.9, 0.1 * (len(rows) + 1)),
        )
    return figure


def _history_page(history: dict[str, list[float]]) -> Any:
    figure, ax = _page("Training history (sampled)")
    ax.axis("off")
    keys = [k for k in history if k != "learning_rate"]
    n = max((len(v) for v in history.values()), default=0)
    picks = (
        sorted(set(np.linspace(0, n - 1, min(n, HISTORY_ROWS)).round().astype(int))) if n else []
    )
    rows = [
        [str(i + 1)] + [_fmt(history[k][i]) if i < len(history[k]) else "-" for k in keys]
        for i in picks
    ]
    _table(ax, 1.0, ["epoch", *keys], rows, min(0.95, 0.03 * (len(rows) + 1)))
    return figure


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
