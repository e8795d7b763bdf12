"""Run a whole study: every model type searched, resumed if stored, best retrained.

:func:`run_study` is a pipeline of named steps: check everything (nothing written yet),
open the study and its MLflow parent run, search each model type and finish it (summary,
final model, results file), then write the combined results, plots and the parent run's
summary. Each step lives in :mod:`~hpolab.search.setup`, :mod:`~hpolab.search.loop` or
:mod:`~hpolab.search.finish`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import optuna

from hpolab.config import StudyConfig
from hpolab.data import Dataset, load_dataset
from hpolab.layout import Layout
from hpolab.progress import QuietReporter, Reporter
from hpolab.reporting import ModelTypeSummary, write_combined_results, write_results
from hpolab.search.finish import draw_plots, final_model, log_parent_summary, summarize
from hpolab.search.loop import search_trials
from hpolab.search.objective import Objective
from hpolab.search.retrain import FinalModelInfo
from hpolab.search.samplers import make_sampler
from hpolab.search.setup import check_stored, delete_study, open_study, parent_run
from hpolab.search.space import SearchSpace
from hpolab.search.storage import open_storage, redact
from hpolab.tracking import StudyTracker
from hpolab.training.fit import check_builds

# Optuna logs every failed trial with a traceback; failures are reported in one line instead.
optuna.logging.set_verbosity(optuna.logging.ERROR)


@dataclass
class ModelTypeResult:
    """Outcome of one model type of a study."""

    model_type: str
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    states: dict[str, int]
    results_path: Path
    final_model_path: Path | None = None
    sidecar_path: Path | None = None
    test_metrics: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    registered_version: str | None = None


@dataclass
class StudyResult:
    """Outcome of :func:`run_study`: best configurations and where everything is."""

    study: str
    metric: str
    direction: str
    storage_url: str
    tracking_uri: str
    parent_run_id: str | None
    combined_results_path: Path
    models: dict[str, ModelTypeResult]
    seconds: float
    new_trials: int
    mean_overhead_seconds: float | None

    @property
    def best_model_type(self) -> str | None:
        """The model type with the best value."""
        scored = [m for m in self.models.values() if m.best_value is not None]
        if not scored:
            return None
        pick = max if self.direction == "maximize" else min
        return pick(scored, key=lambda m: m.best_value).model_type  # type: ignore[arg-type,return-value]

    @property
    def best_params(self) -> dict[str, dict[str, Any]]:
        return {name: m.best_params for name, m in self.models.items()}

    @property
    def best_values(self) -> dict[str, float | None]:
        return {name: m.best_value for name, m in self.models.items()}


@dataclass
class _Timing:
    """Where this run's search time went, over every model type."""

    new_trials: int = 0
    search: float = 0.0
    training: float = 0.0  # inside model.fit, minus time spent in pruning/tracking hooks

    def overhead_per_trial(self) -> float | None:
        """Mean per-trial time outside training (storage, sampler, MLflow, artifacts)."""
        return (self.search - self.training) / self.new_trials if self.new_trials else None


def run_study(
    cfg: StudyConfig,
    layout: Layout,
    reporter: Reporter | None = None,
    reset: bool = False,
    track: bool = True,
) -> StudyResult:
    """Search every model type of ``cfg``, retrain the best of each, write results."""
    reporter = reporter or QuietReporter()
    started = time.perf_counter()
    name = cfg.study.name
    data = load_dataset(cfg.data, layout.preprocessing_cache_dir)
    cfg = cfg.for_task(data.task)
    spaces = _check_model_types(cfg, data)
    url = cfg.study.storage or layout.default_storage_url(name)
    storage = open_storage(
        url, cfg.study.heartbeat_interval, cfg.study.grace_period, cfg.study.max_retries
    )
    if reset:
        delete_study(name, storage, layout, reporter)
    check_stored(cfg, storage, spaces, data)
    _announce(cfg, data, layout, url, reporter)
    tracker = StudyTracker(layout.tracking_uri, layout.artifacts_dir, name) if track else None
    parent_id = parent_run(cfg, storage, tracker, spaces)
    context = _StudyContext(cfg, data, layout, storage, tracker, parent_id, reporter)
    outcome = context.search_all(spaces)
    context.write_study_results(outcome)
    return StudyResult(
        study=name,
        metric=cfg.study.metric,
        direction=cfg.study.resolved_direction,
        storage_url=url,
        tracking_uri=layout.tracking_uri,
        parent_run_id=parent_id,
        combined_results_path=layout.combined_results_file(name),
        models=outcome.results,
        seconds=time.perf_counter() - started,
        new_trials=outcome.timing.new_trials,
        mean_overhead_seconds=outcome.timing.overhead_per_trial(),
    )


def _check_model_types(cfg: StudyConfig, data: Dataset) -> dict[str, SearchSpace]:
    """Each model type's space, its sampler and its builder checked before anything is stored."""
    spaces = {mt: SearchSpace(spec.params()) for mt, spec in cfg.models.items()}
    for mt, space in spaces.items():
        make_sampler(cfg.study.sampler, space, cfg.study.seed)  # fails early (e.g. gp w/o torch)
        check_builds(mt, data)  # a builder that cannot take this data's shape fails now
    return spaces


def _announce(
    cfg: StudyConfig, data: Dataset, layout: Layout, url: str, reporter: Reporter
) -> None:
    """Say what is about to run: data, preprocessing, inferred task, metric and storage."""
    reporter.message(f"study [bold]{cfg.study.name}[/]: {data.summary()}")
    done = data.info.get("preprocessing")
    if done:
        settings = ", ".join(f"{k} {v}" for k, v in done["settings"].items() if v is not None)
        where = f" (cache {layout.preprocessing_cache_dir})" if cfg.data.cache else ""
        reporter.message(
            f"spectrograms ({settings}): {done['source']} in {done['seconds']:.2f} s{where}"
        )
    if data.info.get("task_inferred"):
        reporter.message(f"task inferred from the target: {data.task} (set data.task to override)")
    reporter.message(
        f"metric {cfg.study.metric} ({cfg.study.resolved_direction}), sampler {cfg.study.sampler}, "
        f"pruner {cfg.study.pruner}, storage {redact(url)}"
    )


@dataclass
class _Outcome:
    """What the search of every model type produced, by model type."""

    studies: dict[str, optuna.Study] = field(default_factory=dict)
    summaries: dict[str, ModelTypeSummary] = field(default_factory=dict)
    results: dict[str, ModelTypeResult] = field(default_factory=dict)
    timing: _Timing = field(default_factory=_Timing)


@dataclass
class _StudyContext:
    """What every step of one study run shares."""

    cfg: StudyConfig
    data: Dataset
    layout: Layout
    storage: Any
    tracker: StudyTracker | None
    parent_id: str | None
    reporter: Reporter

    def search_all(self, spaces: dict[str, SearchSpace]) -> _Outcome:
        """Search and finish each model type in turn; Ctrl-C ends the parent run as KILLED."""
        outcome = _Outcome()
        try:
            for mt, space in spaces.items():
                self.search_model_type(mt, space, outcome)
        except KeyboardInterrupt:
            self.reporter.stop()
            if self.tracker is not None and self.parent_id is not None:
                self.tracker.finish_parent(self.parent_id, status="KILLED")
            raise
        finally:
            self.reporter.stop()
        return outcome

    def search_model_type(self, mt: str, space: SearchSpace, outcome: _Outcome) -> None:
        """Search one model type, then summarize it, retrain its best and write its results."""
        cfg, layout, name = self.cfg, self.layout, self.cfg.study.name
        study = open_study(cfg, self.storage, mt, space, self.data, self.parent_id)
        before = len(study.trials)
        t0 = time.perf_counter()
        objective = Objective(cfg, mt, space, self.data, self.tracker, self.parent_id)
        objective.trial_dir = partial(layout.trial_dir, name, mt)
        search_trials(cfg, study, self.storage, objective, space, self.tracker, self.reporter)
        training = sum(objective.fit_seconds) - objective.hook_seconds
        added = len(study.trials) - before
        outcome.timing.new_trials += added
        outcome.timing.search += time.perf_counter() - t0
        outcome.timing.training += training
        summary = summarize(cfg, mt, study, space)
        # The results file's search time includes the summary (trial rows, importance).
        summary.set_timing(added, time.perf_counter() - t0, training)
        final = final_model(
            cfg, mt, study, space, self.data, layout, self.tracker, self.parent_id, self.reporter
        )
        if final is not None:
            summary.set_final_model(
                str(final.model_path),
                str(final.sidecar_path),
                final.mlflow_run_id,
                final.test_metrics,
            )
        results_path = layout.results_file(name, mt)
        write_results(results_path, summary)
        # A reused final model's run already holds the results of the run that made it.
        if (
            self.tracker is not None
            and final is not None
            and final.mlflow_run_id
            and not final.reused
        ):
            self.tracker.log_artifact(final.mlflow_run_id, results_path, "results")
        outcome.studies[mt], outcome.summaries[mt] = study, summary
        outcome.results[mt] = _model_result(summary, results_path, final)

    def write_study_results(self, outcome: _Outcome) -> None:
        """Combined results, plots of each model type, and the parent run's summary."""
        cfg, name = self.cfg, self.cfg.study.name
        summaries, opened = outcome.summaries, outcome.studies
        write_combined_results(self.layout.combined_results_file(name), name, summaries)
        if cfg.study.plots:
            for mt, study in opened.items():
                importance = summaries[mt].param_importance.get("values", {})
                draw_plots(
                    self.layout,
                    name,
                    mt,
                    study,
                    cfg.study.metric,
                    importance,
                    self.tracker,
                    self.parent_id,
                )
                self.reporter.message(f"{mt}: plots in {self.layout.visualizations_dir(name, mt)}")
        if self.tracker is not None and self.parent_id is not None:
            log_parent_summary(self.tracker, self.parent_id, summaries, self.layout, name)


def _model_result(
    summary: ModelTypeSummary, results_path: Path, final: FinalModelInfo | None
) -> ModelTypeResult:
    return ModelTypeResult(
        model_type=summary.model_type,
        best_value=summary.best_value,
        best_params=summary.best_params,
        best_trial=summary.best_trial,
        states=summary.states,
        results_path=results_path,
        final_model_path=final.model_path if final else None,
        sidecar_path=final.sidecar_path if final else None,
        test_metrics=final.test_metrics if final else {},
        mlflow_run_id=final.mlflow_run_id if final else None,
        registered_version=final.registered_version if final else None,
    )
