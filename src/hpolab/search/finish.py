"""After a model type's search: its summary, its final model, plots, the parent run's summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from hpolab.config import StudyConfig
from hpolab.data import Dataset
from hpolab.final_models import FinalModelRecord, FinalModelStore
from hpolab.layout import Layout
from hpolab.progress import Reporter
from hpolab.reporting import ModelTypeSummary, param_importance, study_markdown
from hpolab.reporting.plots import PageSection, PlotSet, build_page, build_plots
from hpolab.search.budget import stopped_early
from hpolab.search.catalog import best_trial, trial_rows
from hpolab.search.space import SearchSpace
from hpolab.tracking import StudyTracker

if TYPE_CHECKING:
    # Retraining loads Keras; plots and summaries do not need it.
    from hpolab.search.retrain import FinalModelInfo


def summarize(
    cfg: StudyConfig, model_type: str, study: optuna.Study, space: SearchSpace
) -> ModelTypeSummary:
    """The results summary of ``model_type``: best trial, states, importance, every trial."""
    rows = trial_rows(study, space)
    best = best_trial(study)
    return ModelTypeSummary(
        study=cfg.study.name,
        model_type=model_type,
        metric=cfg.study.metric,
        direction=cfg.study.resolved_direction,
        sampler=cfg.study.sampler,
        pruner=cfg.study.pruner,
        best_value=None if best is None else best.value,
        best_trial=None if best is None else best.number,
        best_params={} if best is None else space.replay(best.params),
        best_val_metrics={} if best is None else best.user_attrs.get("val_metrics", {}),
        n_trials=len(rows),
        states=ModelTypeSummary.count_states(rows),
        param_importance=param_importance(study, cfg.study.seed),
        trials=rows,
        stopped_early=stopped_early(study),
    )


def final_model(
    cfg: StudyConfig,
    model_type: str,
    study: optuna.Study,
    space: SearchSpace,
    data: Dataset,
    layout: Layout,
    tracker: StudyTracker | None,
    parent_id: str | None,
    reporter: Reporter,
    trial: optuna.trial.FrozenTrial | None = None,
    force: bool = False,
) -> FinalModelInfo | None:
    """Retrain ``trial`` (default: the best) into the final model, unless it is up to date."""
    from hpolab.search.retrain import FinalModelInfo, existing_final, retrain_best

    best = trial or best_trial(study)
    if best is None:
        reporter.message(f"{model_type}: no complete trial, so no final model")
        return None
    store = FinalModelStore(layout)
    reuse = None if force else existing_final(store, cfg.study.name, model_type, best.number)
    if reuse is not None:
        reporter.message(f"{model_type}: final model of trial {best.number} is up to date")
        if tracker is not None and parent_id is not None and not reuse.registered_version:
            # A process killed while logging it left it unlogged or half logged.
            record = store.read(cfg.study.name, model_type)
            version = _log_final(
                cfg.study.name,
                model_type,
                record,
                best.number,
                tracker,
                parent_id,
                store,
                resume=True,
            )
            # Not "reused" any more: the run gets this run's results file like a new one.
            return dataclasses.replace(
                reuse,
                mlflow_run_id=record.sidecar.mlflow_run_id,
                registered_version=version,
                reused=False,
            )
        return reuse
    reporter.message(
        f"{model_type}: retraining trial {best.number} on train+validation "
        f"({best.user_attrs.get('best_epoch', cfg.training.epochs)} epochs)"
    )
    record = retrain_best(cfg, model_type, study, space, data, store, best)
    version = None
    if tracker is not None and parent_id is not None:
        version = _log_final(
            cfg.study.name, model_type, record, best.number, tracker, parent_id, store
        )
    return FinalModelInfo(
        record.model_path,
        record.sidecar_path,
        record.sidecar.test_metrics,
        best.number,
        record.sidecar.mlflow_run_id,
        record.sidecar.retrain_seconds,
        registered_version=version,
        baseline=record.sidecar.baseline,
    )


def _log_final(
    name: str,
    model_type: str,
    record: FinalModelRecord,
    trial_number: int,
    tracker: StudyTracker,
    parent_id: str,
    store: FinalModelStore,
    resume: bool = False,
) -> str | None:
    """Log and register the final model of ``record``, and note the run in its sidecar.

    ``resume``: complete the logging a killed process left half done (exactly once).
    Returns the registered version.
    """
    log = tracker.complete_final_model if resume else tracker.log_final_model
    sidecar = record.sidecar
    sidecar.mlflow_run_id, version = log(
        parent_id,
        model_type,
        (record.model_path, record.sidecar_path),
        sidecar.params,
        sidecar.test_metrics,
        trial_number,
    )
    sidecar.registered_model = {"name": tracker.registered_name(model_type), "version": version}
    if version is not None:
        sidecar.registered_model["alias"] = "champion"
    store.rewrite(record)
    return version


def draw_plots(
    layout: Layout,
    name: str,
    model_type: str,
    study: optuna.Study,
    metric: str,
    importance: dict[str, float],
    tracker: StudyTracker | None,
    parent_id: str | None,
) -> PlotSet:
    """Draw one model type's visualizations and log them to the study's parent run."""
    directory = layout.visualizations_dir(name, model_type)
    # Interactive pages of older versions (one per plot, and a plotly.js beside them) are
    # replaced by the study's page; they would be logged with the folder otherwise.
    for old in [*directory.glob("*.html"), directory / "plotly.min.js"]:
        old.unlink(missing_ok=True)
    plots = build_plots(study, directory, metric=metric, importance=importance)
    if tracker is not None and parent_id is not None and plots.png:
        tracker.log_artifacts(parent_id, plots.directory, f"visualizations/{model_type}")
    return plots


def draw_page(
    layout: Layout,
    name: str,
    sections: list[PageSection],
    tracker: StudyTracker | None,
    parent_id: str | None,
) -> Path:
    """Write the study's interactive plots page and log it to the parent run."""
    page = build_page(layout.plots_page(name), name, sections)
    if tracker is not None and parent_id is not None:
        tracker.log_artifact(parent_id, page, "visualizations")
    return page


def log_parent_summary(
    tracker: StudyTracker,
    parent_id: str,
    summaries: dict[str, ModelTypeSummary],
    layout: Layout,
    study: str,
) -> None:
    """Best values, description and results files on the parent run, which then ends."""
    metrics: dict[str, Any] = {}
    for mt, summary in summaries.items():
        if summary.best_value is not None:
            metrics[f"best_{summary.metric}_{mt}"] = summary.best_value
        metrics[f"n_trials_{mt}"] = summary.n_trials
    tracker.log_summary(parent_id, metrics)
    tracker.set_description(parent_id, study_markdown(summaries))
    tracker.log_artifact(parent_id, layout.combined_results_file(study), "results")
    for mt in summaries:
        path = layout.results_file(study, mt)
        if path.exists():
            tracker.log_artifact(parent_id, path, "results")
    tracker.finish_parent(parent_id)
