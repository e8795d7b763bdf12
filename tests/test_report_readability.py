"""The study and run reports read right: the drawn figures are inspected, not mocked."""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pytest
from matplotlib.ticker import MaxNLocator

from hpolab.reporting.charts import text_colour
from hpolab.reporting.plots import build_plots, plot_figure
from hpolab.reporting.report import ModelSection, analysis, build_report, report_figures
from hpolab.reporting.results import param_importance
from hpolab.reporting.run_report import build_run_report, run_figures

optuna.logging.set_verbosity(optuna.logging.WARNING)
IMPORTANCE_AXIS = "explained variance"


def _study(n_trials: int) -> optuna.Study:
    """A small real study: an int, a log float, a float and a categorical parameter, with
    four reported epochs per trial."""

    def objective(trial: optuna.Trial) -> float:
        units = trial.suggest_int("units", 16, 128, step=16)
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        act = trial.suggest_categorical("act", ["relu", "tanh"])
        value = 0.0
        for epoch in range(1, 5):
            value = (math.log10(lr) + 2.5) ** 2 + 0.2 * dropout + 0.002 * units / epoch
            value += 0.05 if act == "tanh" else 0.0
            trial.report(value, epoch)
        return value

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(objective, n_trials=n_trials)
    return study


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    return _study(12)


@pytest.fixture(scope="module")
def plots(study, tmp_path_factory):
    """Every plot of ``study``, drawn with the importances computed by the plots."""
    return build_plots(study, tmp_path_factory.mktemp("vis"), metric="val_loss")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _section(**kw) -> ModelSection:
    values = [0.5, 0.3, 0.4, 0.35, 0.45, 0.32]
    defaults = {
        "model_type": "mlp",
        "metric": "val_loss",
        "direction": "minimize",
        "n_trials_target": len(values),
        "space": {
            "units": {"type": "int", "low": 16.0, "high": 128.0, "step": 16.0},
            "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        },
        "trials": [{"number": i, "state": "complete", "value": v} for i, v in enumerate(values)],
        "best_value": 0.3,
        "best_trial": 1,
        "best_params": {"units": 32.0, "lr": 0.00123456},
    }
    return ModelSection(**{**defaults, **kw})


def _importance_axes(figures) -> list:
    return [ax for f in figures for ax in f.axes if IMPORTANCE_AXIS in ax.get_xlabel()]


def _cell_texts(figures) -> list[str]:
    return [
        cell.get_text().get_text()
        for f in figures
        for ax in f.axes
        for table in ax.tables
        for cell in table.get_celld().values()
    ]


def test_importance_text_and_chart_rank_parameters_alike():
    # PED-ANOVA disagrees with fANOVA on purpose: the chart must follow the text's numbers.
    importance = {
        "values": {"lr": 0.2, "units": 0.5, "dropout": 0.3},
        "ped_anova": {"lr": 0.7, "units": 0.1, "dropout": 0.2},
    }
    section = _section(importance=importance)
    note = analysis([section])[0]
    assert "units mattered most (50%" in note and "then dropout, lr)" in note
    (chart,) = _importance_axes(report_figures("s", {}, [section]))
    top_down = [t.get_text() for t in chart.get_yticklabels()][::-1]
    widths = [bar.get_width() for bar in chart.patches][::-1]
    assert top_down == ["units", "dropout", "lr"]
    assert widths == pytest.approx([0.5, 0.3, 0.2])
    said = [note.index(name) for name in top_down]
    assert said == sorted(said)  # the text names them in the chart's order


def test_the_importance_plot_shows_the_stored_numbers(study):
    given = {"act": 0.6, "dropout": 0.25, "lr": 0.1, "units": 0.05}
    ax = plot_figure(study, "param_importances", metric="val_loss", importance=given).axes[0]
    top_down = [t.get_text() for t in ax.get_yticklabels()][::-1]
    assert top_down == ["act", "dropout", "lr", "units"]
    widths = sorted((bar.get_width() for bar in ax.patches), reverse=True)
    assert widths == pytest.approx([0.6, 0.25, 0.1, 0.05])


def test_contour_uses_the_two_most_important_parameters(study, plots):
    given = {"units": 0.6, "dropout": 0.3, "lr": 0.08, "act": 0.02}
    ax = plot_figure(study, "contour", metric="val_loss", importance=given).axes[0]
    assert {ax.get_xlabel(), ax.get_ylabel()} == {"units", "dropout"}
    # Without numbers given, the plots compute the same ones the report quotes.
    assert "contour" in plots.png
    stored = param_importance(study)["values"]
    top_two = sorted(stored, key=lambda k: -stored[k])[:2]
    ax = plot_figure(study, "contour", metric="val_loss", importance=stored).axes[0]
    assert {ax.get_xlabel(), ax.get_ylabel()} == set(top_two)


def test_no_importance_chart_where_the_text_says_too_few_trials(tmp_path):
    few = _study(3)
    importance = param_importance(few)
    plots = build_plots(few, tmp_path / "vis", metric="val_loss")
    assert "param_importances" not in plots.png
    assert "at least 5" in plots.skipped["param_importances"]
    # A chart left from an earlier drawing is not put in the report either.
    stale = tmp_path / "vis" / "param_importances.png"
    plt.imsave(stale, np.zeros((20, 30, 3)))
    section = _section(importance=importance, plots={"param_importances": stale, **plots.png})
    figures = report_figures("s", {}, [section])
    assert "at least 5 are needed" in analysis([section])[0]
    assert not _importance_axes(figures)
    titles = [ax.get_title() for f in figures for ax in f.axes if ax.images]
    assert len(titles) == len(plots.png) and not any("importances" in t for t in titles)


def test_confusion_matrix_numbers_contrast_with_their_cells():
    # A narrow range: the smallest count (90) is the lightest cell, nearly white.
    matrix = [[100, 90], [95, 98]]
    section = _section(test_outputs={"confusion_matrix": matrix, "classes": ["a", "b"]})
    (ax,) = [ax for f in report_figures("s", {}, [section]) for ax in f.axes if ax.images]
    image = ax.images[0]
    colours = {t.get_text(): t.get_color() for t in ax.texts}
    assert colours["90"] == "black" and colours["100"] == "white"
    for text in ax.texts:
        cell = image.cmap(image.norm(float(text.get_text())))
        luminance = 0.2126 * cell[0] + 0.7152 * cell[1] + 0.0722 * cell[2]
        assert abs(luminance - (0.0 if text.get_color() == "black" else 1.0)) > 0.4
    assert text_colour((1.0, 1.0, 1.0)) == "black" and text_colour((0.0, 0.1, 0.3)) == "white"


def test_slice_colour_bar_is_beside_the_panels_not_over_one(study):
    figure = plot_figure(study, "slice", metric="val_loss", importance={})
    bars = [ax for ax in figure.axes if hasattr(ax, "_colorbar")]
    panels = [ax for ax in figure.axes if ax not in bars]
    assert len(bars) == 1 and len(panels) == 4
    figure.canvas.draw()
    right_of_panels = max(ax.get_position().x1 for ax in panels)
    assert bars[0].get_position().x0 > right_of_panels


def _whole_numbers(axis) -> list[float]:
    low, high = axis.get_view_interval()
    return [t for t in axis.get_ticklocs() if low <= t <= high]


def test_integer_parameters_epochs_and_trials_have_whole_number_ticks(study):
    curves = plot_figure(study, "intermediate_values", metric="val_loss", importance={})
    history = plot_figure(study, "optimization_history", metric="val_loss", importance={})
    slices = plot_figure(study, "slice", metric="val_loss", importance={})
    (units,) = [ax for ax in slices.axes if ax.get_xlabel() == "units"]
    for axis in (curves.axes[0].xaxis, history.axes[0].xaxis, units.xaxis):
        assert isinstance(axis.get_major_locator(), MaxNLocator)
        ticks = _whole_numbers(axis)
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
    # Tables: an int range and an int value stored as floats read as integers.
    cells = _cell_texts(report_figures("s", {}, [_section()]))
    assert "int 16 .. 128 step 16" in cells and "32" in cells
    assert not any(re.search(r"\b(16|32|128)\.0\b", c) for c in cells)


def test_small_blocks_share_a_page_instead_of_starting_one(study, plots, tmp_path):
    section = _section(
        importance=param_importance(study),
        test_metrics={"rmse": 1.5},
        test_outputs={"y_true": [1.0, 2.0, 3.0], "y_pred": [1.1, 1.8, 3.3]},
        plots=dict(plots.png),
    )
    figures = report_figures("s", {"data": "x.csv"}, [section])
    for figure in figures[:-1]:
        # Lowest content of the page: each page but the last is filled past its middle.
        lowest = [ax.get_position().y0 for ax in figure.axes]
        lowest += [t.get_position()[1] for t in figure.texts]
        assert min(lowest) < 0.5
    # Summary, space and best configuration, importance and the test split share pages.
    small = _section(
        test_metrics={"rmse": 1.5},
        test_outputs={"y_true": [1.0, 2.0, 3.0], "y_pred": [1.1, 1.8, 3.3]},
    )
    path = tmp_path / "r.pdf"
    assert build_report(path, "s", {"data": "x.csv"}, [small]) == 2
    assert len(re.findall(rb"/Type\s*/Page\b", path.read_bytes())) == 2


def _run(schedule: str, history_lr: list[float] | None = None) -> tuple[dict, dict]:
    n = 6
    history = {
        "loss": [1 / (e + 1) for e in range(n)],
        "val_loss": [1.1 / (e + 1) for e in range(n)],
    }
    if history_lr is not None:
        history["learning_rate"] = history_lr
    info = {
        "run_name": "r",
        "model_type": "mlp",
        "data": {"summary": "4 features"},
        "parameter_count": 10,
        "input_shape": [4],
        "training_seconds": 1.0,
        "epochs_run": n,
        "params_source": "--set",
        "params": {"units": 8},
        "training": {"epochs": n, "learning_rate": 0.01, "lr_schedule": schedule, "patience": 3},
        "metric": "val_loss",
        "direction": "minimize",
        "best_epoch": n,
        "best_value": history["val_loss"][-1],
        "test_metrics": {"rmse": 0.5},
        "test_outputs": {"y_true": [1.0, 2.0], "y_pred": [1.1, 1.9]},
    }
    return info, history


def _lr_axes(figures) -> list:
    return [ax for _, f in figures for ax in f.axes if ax.get_ylabel() == "learning rate"]


def test_run_report_draws_the_learning_rate_of_a_schedule():
    (ax,) = _lr_axes(run_figures(*_run("cosine")))
    epochs, rates = ax.lines[0].get_data()
    assert epochs[0] == 0 and epochs[-1] == 6
    assert rates[0] == pytest.approx(0.01) and rates[-1] == pytest.approx(0.0, abs=1e-9)
    assert all(np.diff(rates) <= 1e-12)  # cosine decay only falls
    assert not _lr_axes(run_figures(*_run("constant")))


def test_run_report_draws_a_recorded_learning_rate_and_whole_epochs(tmp_path):
    recorded = [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    figures = run_figures(*_run("constant", recorded))
    (ax,) = _lr_axes(figures)
    assert list(ax.lines[0].get_ydata()) == recorded
    curves = dict(figures)["training_curves"]
    for panel in curves.axes:
        ticks = _whole_numbers(panel.xaxis)
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
    pdf = tmp_path / "report.pdf"
    pages, pngs = build_run_report(pdf, *_run("linear"))
    assert pages == 4 == len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))
    assert [p.name for p in pngs][1] == "training_curves.png"
    assert Path(pngs[1]).is_file()
