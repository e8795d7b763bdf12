"""Charts the reports draw themselves: importance bars, confusion matrix, predictions,
and the test results block built from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never open a window

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.axis import Axis  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from hpolab.reporting.pages import PageFlow  # noqa: E402

# Beyond this many classes the numbers would not fit in the cells.
MAX_ANNOTATED_CLASSES = 12
# Cells lighter than this (relative luminance, 0..1) get black numbers, darker ones white.
LIGHT_CELL = 0.5


def integer_ticks(axis: Axis) -> None:
    """Ticks at whole numbers only (epochs, trial numbers, integer parameters)."""
    # "auto": as many ticks as the axis has room for, so long ranges do not crowd.
    axis.set_major_locator(MaxNLocator(nbins="auto", integer=True))


def importance_bars(ax: Axes, ranked: Sequence[tuple[str, float]], method: str = "fANOVA") -> None:
    """Horizontal bars of ``ranked`` (most important first), the first on top, each
    labelled with its share; untitled, as the heading above it names it."""
    names = [name for name, _ in ranked][::-1]
    values = [value for _, value in ranked][::-1]
    positions = np.arange(len(names))
    bars = ax.barh(positions, values, height=0.6, color="#4c72b0")
    ax.set_yticks(positions, names)
    ax.bar_label(bars, labels=[f"{v:.0%}" for v in values], padding=3, fontsize=8)
    ax.set_xlim(0, max([*values, 0.01]) * 1.15)
    ax.set_xlabel(f"share of the explained variance ({method})", fontsize=8.5)
    ax.tick_params(labelsize=8)


def text_colour(rgba: Sequence[float]) -> str:
    """Black on a light background, white on a dark one (relative luminance, BT.709)."""
    red, green, blue = rgba[:3]
    luminance = 0.2126 * red + 0.7152 * green + 0.0722 * blue
    return "black" if luminance > LIGHT_CELL else "white"


def confusion_matrix(ax: Axes, matrix: Any, classes: Sequence[str]) -> None:
    """The matrix as a heat map; counts written in a colour that reads on their cell."""
    matrix = np.asarray(matrix)
    image = ax.imshow(matrix, cmap="Blues")
    ax.grid(False)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test)", fontsize=10)
    if len(classes) > MAX_ANNOTATED_CLASSES:
        return
    for (i, j), value in np.ndenumerate(matrix):
        # The cell's own colour decides, so the rule holds whatever the colour scale's range.
        cell = image.cmap(image.norm(value))
        ax.text(j, i, _count(value), ha="center", va="center", fontsize=8, color=text_colour(cell))


def predicted_vs_true(ax: Axes, y_true: Any, y_pred: Any) -> None:
    """Scatter of predictions against the truth, with the diagonal of perfect ones."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    ax.scatter(y_true, y_pred, s=8, alpha=0.6)
    low = float(min(y_true.min(), y_pred.min()))
    high = float(max(y_true.max(), y_pred.max()))
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title("Predicted vs true (test)", fontsize=10)


def residuals(ax: Axes, y_true: Any, y_pred: Any) -> None:
    """Residuals (true - predicted) against the prediction."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    ax.scatter(y_pred, y_true - y_pred, s=8, alpha=0.6)
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("predicted")
    ax.set_ylabel("residual (true - predicted)")
    ax.set_title("Residuals", fontsize=10)


def draw_test_split(flow: PageFlow, metrics: dict[str, float], outputs: dict[str, Any]) -> None:
    """Test metrics and the confusion matrix (classification) or predicted vs true and
    residuals (regression)."""
    flow.text(", ".join(f"{k} {v:.4g}" for k, v in metrics.items()) or "-")
    if "confusion_matrix" in outputs:
        matrix = outputs["confusion_matrix"]
        classes = [number(c, integer=True) for c in (outputs.get("classes") or range(len(matrix)))]
        confusion_matrix(flow.axes(0.42, left=0.2, width=0.6, pad=(0.07, 0.03)), matrix, classes)
    elif "y_true" in outputs:
        predicted_vs_true(flow.axes(0.33), outputs["y_true"], outputs["y_pred"])
        residuals(flow.axes(0.3), outputs["y_true"], outputs["y_pred"])


def number(value: Any, integer: bool = False) -> str:
    """A parameter value as people write it: ``32`` (not ``32.0``), ``0.001234``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return str(value)
    if isinstance(value, int | np.integer) or (integer and float(value).is_integer()):
        return str(int(value))
    return f"{float(value):.4g}"


def _count(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else f"{float(value):.3g}"
