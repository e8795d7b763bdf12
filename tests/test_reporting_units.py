"""Unit tests of the report's written analysis and PDF, on plain data (no study)."""

from __future__ import annotations

import re

from hpolab.reporting.report import ModelSection, analysis, build_report


def _section(values: list[float], **kw) -> ModelSection:
    trials = [{"number": i, "state": "complete", "value": v} for i, v in enumerate(values)] + [
        {"number": len(values), "state": "pruned", "value": None}
    ]
    best = min(range(len(values)), key=values.__getitem__)
    return ModelSection(
        model_type=kw.pop("model_type", "mlp"),
        metric="val_loss",
        direction="minimize",
        n_trials_target=len(trials),
        space={
            "units": {"type": "categorical", "choices": [8, 16]},
            "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        },
        trials=trials,
        best_value=values[best],
        best_trial=best,
        best_params={"units": 16, "lr": 0.00123456},
        **kw,
    )


def test_analysis_says_converged_or_still_improving_and_names_the_top_parameter():
    early = _section(
        [0.5, 0.2, 0.4, 0.45, 0.41, 0.39, 0.42, 0.5],
        importance={"values": {"lr": 0.8, "units": 0.2}},
    )
    late = _section([0.5, 0.45, 0.4, 0.3, 0.2], model_type="cnn1d")
    notes = analysis([early, late])
    assert "lr mattered most (80%" in notes[0]
    assert "looks converged" in notes[0] and "budget looks sufficient" in notes[0]
    assert "still improving" in notes[1] and "larger --n-trials" in notes[1]
    assert "1 of 9 trials were pruned" in notes[0]
    assert notes[-1].startswith("Across model types, mlp is best")


def test_report_pages_for_regression_with_residuals(tmp_path):
    section = _section(
        [0.5, 0.3, 0.4],
        test_metrics={"rmse": 1.5, "r2": 0.8},
        test_outputs={"y_true": [1.0, 2.0, 3.0], "y_pred": [1.1, 1.8, 3.3]},
    )
    path = tmp_path / "r.pdf"
    pages = build_report(path, "reg", {"data": "builtin:diabetes"}, [section])
    data = path.read_bytes()
    # Summary, then the model's space, best configuration and test split packed together.
    assert pages == 2
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 2
    assert not list(tmp_path.glob(".*tmp*"))
