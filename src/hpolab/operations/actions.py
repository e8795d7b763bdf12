"""Operations that change a study's files: retrain, plots, report, delete."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpolab.errors import ConfigError, StudyMismatchError, StudyNotFoundError
from hpolab.final_models import FinalModelStore
from hpolab.layout import Layout, Root
from hpolab.progress import QuietReporter, Reporter
from hpolab.search.catalog import StoredStudy, best_trial, open_stored, trial_rows

if TYPE_CHECKING:
    import optuna

    from hpolab.config import StudyConfig
    from hpolab.data import Dataset
    from hpolab.reporting.report import ModelSection


def retrain(
    name: str,
    model_type: str | None = None,
    trial: int | None = None,
    root: Root = None,
    storage: str | None = None,
    track: bool = True,
    reporter: Reporter | None = None,
) -> dict[str, dict[str, Any]]:
    """Retrain the best trial (or trial number ``trial``) into the final model, again."""
    # Training imports (TensorFlow, MLflow) only once a retrain is asked for.
    from hpolab.search.finish import final_model
    from hpolab.tracking import StudyTracker

    reporter = reporter or QuietReporter()
    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    chosen = stored.check_model_type(model_type)
    if trial is not None and len(chosen) != 1:
        raise ConfigError(
            "--trial: name the model type too (--model-type), trial numbers are per model type"
        )
    out: dict[str, dict[str, Any]] = {}
    for mt in chosen:
        frozen = _pick_trial(stored, mt, trial)
        data = _load_unchanged_data(stored, mt, layout)
        tracker = StudyTracker(layout.tracking_uri, layout.artifacts_dir, name) if track else None
        parent = stored.meta(mt).get("mlflow_parent_run_id") if track else None
        info = final_model(
            stored.config(mt),
            mt,
            stored.studies[mt],
            stored.space(mt),
            data,
            layout,
            tracker,
            parent,
            reporter,
            trial=frozen,
            force=True,
        )
        assert info is not None  # a trial is given and force=True: it always retrains
        out[mt] = {
            "trial": frozen.number,
            "model": str(info.model_path),
            "sidecar": str(info.sidecar_path),
            "test_metrics": info.test_metrics,
            "seconds": round(info.seconds, 2),
            "mlflow_run_id": info.mlflow_run_id,
        }
    return out


def _load_unchanged_data(stored: StoredStudy, mt: str, layout: Layout) -> Dataset:
    """The study's data, refused if it changed since the study ran (same fingerprint)."""
    from hpolab.data import load_dataset
    from hpolab.models.custom import register_config

    cfg = stored.config(mt)
    register_config(cfg)  # a model of the user's is rebuilt by its builder
    data = load_dataset(cfg.data, layout.preprocessing_cache_dir, cfg.study.code_path)
    stored_fp = stored.meta(mt).get("data_fingerprint")
    if stored_fp and stored_fp != data.fingerprint:
        raise StudyMismatchError(
            f"data: {cfg.data.source} has changed since study {stored.name!r} ran "
            f"(fingerprint {stored_fp} -> {data.fingerprint}); retraining would not "
            "reproduce its trials"
        )
    return data


def _pick_trial(stored: StoredStudy, mt: str, number: int | None) -> optuna.trial.FrozenTrial:
    """The best complete trial of ``mt``, or complete trial ``number``."""
    from optuna.trial import TrialState

    study = stored.studies[mt]
    if number is None:
        frozen = best_trial(study)
        if frozen is None:
            raise StudyNotFoundError(f"study {stored.name!r} ({mt}) has no complete trial yet")
        return frozen
    complete = {
        t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    }
    if number not in complete:
        shown = ", ".join(str(n) for n in sorted(complete)[:20]) or "none"
        raise ConfigError(
            f"--trial: trial {number} of {stored.name!r} ({mt}) is not a complete trial; "
            f"complete trials: {shown}"
        )
    return complete[number]


def plots(
    name: str,
    model_type: str | None = None,
    root: Root = None,
    storage: str | None = None,
    track: bool = True,
) -> dict[str, dict[str, Any]]:
    """(Re)build the visualizations of each model type and the study's interactive page
    (every model type); log them to the parent run."""
    from hpolab.reporting.plots import PageSection
    from hpolab.reporting.results import param_importance
    from hpolab.search.finish import draw_page, draw_plots
    from hpolab.tracking import StudyTracker

    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    out: dict[str, dict[str, Any]] = {}
    sections: list[PageSection] = []
    parent = tracker = None
    for mt in stored.model_types:
        cfg = stored.config(mt)
        study = stored.studies[mt]
        importance = param_importance(study, cfg.study.seed).get("values", {})
        sections.append(PageSection(mt, study, cfg.study.metric, importance))
        parent = stored.meta(mt).get("mlflow_parent_run_id") if track else None
        # A tracker creates the MLflow store and experiment; without a parent run in an
        # existing store there is nothing to log to, so none is made.
        tracker = (
            StudyTracker(layout.tracking_uri, layout.artifacts_dir, name)
            if parent and layout.tracking_db.exists()
            else None
        )
        if mt not in stored.check_model_type(model_type):
            continue
        drawn = draw_plots(layout, name, mt, study, cfg.study.metric, importance, tracker, parent)
        out[mt] = {
            "directory": str(drawn.directory),
            "png": {k: str(v) for k, v in drawn.png.items()},
            "skipped": drawn.skipped,
        }
    page = draw_page(layout, name, sections, tracker, parent)
    for drawn_mt in out.values():
        drawn_mt["page"] = str(page)
    return out


def report(
    name: str, root: Root = None, storage: str | None = None, redraw: bool = False
) -> dict[str, Any]:
    """Write ``hpo_results/<study>/<study>_report.pdf``; draw missing plots first."""
    from hpolab.reporting.report import build_report

    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    store = FinalModelStore(layout)
    sections = []
    for mt in stored.model_types:
        plot_dir = layout.visualizations_dir(name, mt)
        if redraw or not any(plot_dir.glob("*.png")):
            plots(name, mt, root=layout.root, storage=storage, track=False)
        sections.append(_report_section(stored, mt, store, plot_dir))
    path = layout.report_file(name)
    pages = build_report(path, name, _report_setup(stored.config(), stored), sections)
    return {"report": str(path), "pages": pages}


def _report_section(
    stored: StoredStudy, mt: str, store: FinalModelStore, plot_dir: Path
) -> ModelSection:
    """One model type's pages of the report: space, trials, best, test results, plots."""
    from hpolab.reporting.report import ModelSection
    from hpolab.reporting.results import param_importance

    cfg = stored.config(mt)
    study = stored.studies[mt]
    space = stored.space(mt)
    trial = best_trial(study)
    final = store.find(stored.name, mt)  # a study without a final model still gets a report
    return ModelSection(
        model_type=mt,
        metric=cfg.study.metric,
        direction=cfg.study.resolved_direction,
        n_trials_target=cfg.study.n_trials,
        space={k: v.model_dump(exclude_defaults=True) for k, v in space.params.items()},
        trials=trial_rows(study, space),
        best_value=None if trial is None else trial.value,
        best_trial=None if trial is None else trial.number,
        best_params={} if trial is None else space.replay(trial.params),
        importance=param_importance(study, cfg.study.seed),
        test_metrics={} if final is None else final.sidecar.test_metrics,
        test_outputs={} if final is None else final.sidecar.test_outputs,
        baseline=None if final is None else final.sidecar.baseline,
        plots={p.stem: p for p in sorted(plot_dir.glob("*.png"), key=_plot_order)},
    )


def _report_setup(cfg: StudyConfig, stored: StoredStudy) -> dict[str, str]:
    """The report's summary page: data, objective, search, training, storage."""
    return {
        "data": f"{cfg.data.source} (target {cfg.data.target or '-'}, "
        f"task {cfg.data.task or 'inferred'})",
        "objective": f"{cfg.study.metric} ({cfg.study.resolved_direction})",
        "search": f"sampler {cfg.study.sampler}, pruner {cfg.study.pruner}, "
        f"{cfg.study.n_trials} trials per model type, seed {cfg.study.seed}",
        "training": f"up to {cfg.training.epochs} epochs, batch {cfg.training.batch_size}, "
        f"patience {cfg.training.patience}, optimizer {cfg.training.optimizer}",
        "storage": stored.storage_url,
    }


def _plot_order(path: Path) -> int:
    """Position of a plot in the report: the order of ``PLOTS``, unknown plots last."""
    from hpolab.reporting.plots import PLOTS

    return PLOTS.index(path.stem) if path.stem in PLOTS else len(PLOTS)


def delete(
    name: str, root: Root = None, storage: str | None = None, reporter: Reporter | None = None
) -> list[str]:
    """Delete a study: Optuna storage, results, final models, MLflow runs and model."""
    from hpolab.search.setup import delete_study

    layout = Layout.from_root(root)
    stored = open_stored(layout, name, storage)
    removed = delete_study(name, stored.storage, layout, reporter or QuietReporter(), "delete")
    # Release SQLite's file handle before the file is removed.
    stored.storage.engine.dispose()
    db = layout.study_db(name)
    if storage is None and db.exists():
        db.unlink()
        removed.append(str(db))
        # SQLite's write-ahead log and its index: a stale log must not meet a new file.
        for side in ("-wal", "-shm"):
            db.with_name(db.name + side).unlink(missing_ok=True)
    return removed
