"""``run_hpo.py`` / ``hpolab run``: launch or resume a study."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from hpolab.cli.common import Parser, add_root_option, guarded, parse, quiet_libraries
from hpolab.interrupts import stops_as_interrupts

DESCRIPTION = """\
Launch or resume a hyperparameter study.

With no arguments, runs the built-in default study (synthetic leak / no-leak sensor
windows, mlp and cnn1d, a few minutes on 2 CPU cores). Running the same command again
resumes the study up to --n-trials per model type; trials left running by a killed
process are marked failed and their parameters re-queued, and a re-queued Keras trial
continues from its last checkpoint (study.trial_checkpoints: auto, every N epochs, off).
Ctrl-C or SIGTERM stop a study the same way (exit 130).
"""

EPILOG = """\
examples:
  run_hpo.py
  run_hpo.py --config configs/leak_mlp.yaml --study-name leak_v1 --n-trials 30 --sampler tpe
  run_hpo.py --config configs/leak_mlp.yaml --study-name leak_v1 --n-trials 50   # resume
  run_hpo.py --data my.csv --target label --study-name mine --sampler random
  run_hpo.py --config configs/grid_mlp.yaml --storage postgresql://postgres@127.0.0.1:5432/test
  run_hpo.py --config configs/leak_spectrogram.yaml    # cnn1d vs resnet on spectrograms
  run_hpo.py --config configs/leak_cv.yaml             # cross-validation as the objective
  run_hpo.py --data builtin:breast_cancer --models mlp,random_forest,svm
  run_hpo.py --config configs/own_model.yaml            # your own Keras model, build(hp)
  run_hpo.py --config configs/parallel.yaml --workers 2    # 2 processes on one study
  hpolab worker --config configs/parallel.yaml --storage postgresql://user@db:5432/hpo \
      --tracking-uri http://mlflow:5000                   # on each machine

model types: mlp, cnn1d, lstm, resnet, cnn2d, autoencoder, ensemble (Keras);
random_forest, svm, gradient_boosting (scikit-learn baselines); or a model of your own:
models.<name>.builder: module:function, build(hp) or build(params, input_shape,
n_outputs, task); data.source may be a module:function loader too

outputs (under --root): hpo_studies/<study>.db, hpo_results/<study>/,
models/hpo_derived/<study>/final_model_<model_type>.keras (.skops for baselines, + .json),
mlruns/, cache/preprocessed/ (spectrograms)
"""


def build_parser(prog: str = "run_hpo.py") -> argparse.ArgumentParser:
    parser = Parser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="YAML", help="study config (default: built-in study)")
    group = parser.add_argument_group("overrides of config values")
    group.add_argument("--study-name", metavar="NAME", help="study.name")
    group.add_argument("--n-trials", type=int, metavar="N", help="study.n_trials (per model type)")
    group.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="study.timeout per model type"
    )
    group.add_argument(
        "--stop-early",
        type=int,
        metavar="PATIENCE",
        help="study.stop_early.patience: end a model type's search after PATIENCE finished "
        "trials without a new best",
    )
    group.add_argument(
        "--sampler",
        metavar="NAME",
        help="grid, random, tpe (default), gp or cmaes (study.first_trial: center makes the "
        "first trial try the middle of every numeric range)",
    )
    group.add_argument(
        "--pruner",
        metavar="NAME",
        help="none, median (default) or hyperband (study.pruner_warmup: epochs a trial "
        "trains before it may be pruned; median 2, hyperband 1)",
    )
    group.add_argument("--seed", type=int, help="study.seed")
    group.add_argument(
        "--metric", help="study.metric, e.g. val_loss, val_accuracy, val_f1_macro, val_rmse"
    )
    group.add_argument(
        "--data", metavar="SOURCE", help="data.source: a .csv/.npz path or builtin:<name>"
    )
    group.add_argument("--target", metavar="COLUMN", help="data.target column")
    group.add_argument("--task", metavar="TASK", help="data.task: classification or regression")
    group.add_argument(
        "--models", metavar="LIST", help="model types to search, comma-separated (e.g. mlp,cnn1d)"
    )
    group.add_argument("--epochs", type=int, metavar="N", help="training.epochs")
    group.add_argument(
        "--storage",
        metavar="URL",
        help="SQLAlchemy URL (default sqlite:///<root>/hpo_studies/<study>.db), "
        "redis://host:6379 or grpc://host:13000 (hpolab storage-proxy)",
    )
    group.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="study.workers: worker processes on this machine sharing the study (default 1)",
    )
    group.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="study.tracking_uri: one MLflow for every worker, e.g. http://mlflow:5000 or "
        "postgresql://... (default $MLFLOW_TRACKING_URI, else <root>/mlruns)",
    )
    add_root_option(parser)
    parser.add_argument(
        "--reset",
        action="store_true",
        help="delete the stored study, its results, models and MLflow runs first",
    )
    parser.add_argument(
        "--no-mlflow", action="store_true", help="do not mirror the study in MLflow"
    )
    parser.add_argument(
        "--no-plots",
        action="store_true",
        help="skip the visualizations at the end (hpolab plots draws them later)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress output or summary")


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hpolab worker``: which worker of a planned pool, search only."""
    add_arguments(parser)
    group = parser.add_argument_group("worker")
    group.add_argument(
        "--worker-index",
        type=int,
        metavar="I",
        help="this worker's index in a planned pool (e.g. $JOB_COMPLETION_INDEX); shown in "
        "MLflow and the trial attributes",
    )
    group.add_argument(
        "--no-finish",
        action="store_true",
        help="only search: leave the final models and results to another worker",
    )


def run(args: argparse.Namespace) -> int:
    joining = hasattr(args, "worker_index")  # hpolab worker
    if joining and args.reset:
        from hpolab.errors import ConfigError

        raise ConfigError(
            "--reset: a worker joins a study that others share and must not delete it; "
            "reset with run_hpo.py --reset or hpolab delete first"
        )
    if joining and args.workers is None:
        args.workers = 1  # one process per `hpolab worker`, whatever the config's pool size
    quiet_libraries(args.verbose)
    # A service stop (SIGTERM) ends the study like Ctrl-C: trial re-queued, runs ended;
    # neither lands inside a storage write.
    with stops_as_interrupts():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from hpolab.api import run_study
    from hpolab.layout import Layout
    from hpolab.progress import QuietReporter, RichReporter

    reporter = QuietReporter() if args.quiet else RichReporter()
    result = run_study(
        args.config,
        root=args.root,
        reset=args.reset,
        track=not args.no_mlflow,
        reporter=reporter,
        worker_index=getattr(args, "worker_index", None),
        finish=not getattr(args, "no_finish", False),
        workers=args.workers,
        tracking_uri=args.tracking_uri,
        study_name=args.study_name,
        n_trials=args.n_trials,
        timeout=args.timeout,
        stop_early=args.stop_early,
        sampler=args.sampler,
        pruner=args.pruner,
        seed=args.seed,
        metric=args.metric,
        data=args.data,
        target=args.target,
        task=args.task,
        epochs=args.epochs,
        models=args.models,
        storage=args.storage,
        plots=False if args.no_plots else None,
    )
    if not args.quiet:
        print_summary(result, Layout.from_root(args.root), reporter)  # type: ignore[arg-type]
    return 0


def print_summary(result, layout, reporter) -> None:  # noqa: ANN001 - rich objects
    from hpolab.reporting.summary import baseline_warning

    console = reporter.console
    console.print(summary_table(result))
    for name, m in result.models.items():
        warning = baseline_warning(name, m.baseline)
        if warning:
            console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        if m.stopped_early:
            console.print(f"{name}: stopped early: {m.stopped_early}", soft_wrap=True)
    rel = _relative
    others = result.study_new_trials - result.new_trials
    shared = f" (and {others} by other workers)" if others > 0 else ""
    console.print(
        f"new trials this run: {result.new_trials}{shared} in {result.seconds:.0f}s", end=""
    )
    if result.mean_overhead_seconds is not None:
        console.print(
            f" (mean per-trial time outside training: {result.mean_overhead_seconds:.2f}s)"
        )
    else:
        console.print()
    if result.finished_by:
        console.print(f"finishing:    {result.finished_by} writes the final models and results")
    console.print(f"results:      {rel(result.combined_results_path)}")
    finals = [m.final_model_path for m in result.models.values() if m.final_model_path]
    if finals:
        console.print(f"final models: {rel(finals[0].parent)}/")
    console.print(f"storage:      {result.storage_url}")
    if result.tracking_uri.startswith(("http://", "https://")):
        console.print(f"MLflow UI:    {result.tracking_uri}", soft_wrap=True)
    else:
        console.print(
            f"MLflow UI:    mlflow ui --backend-store-uri {result.tracking_uri}", soft_wrap=True
        )
    root = "" if layout.root == Path.cwd().resolve() else f" --root {layout.root}"
    console.print(
        f"next:         hpolab status {result.study}{root}; hpolab report {result.study}{root}; "
        f"hpolab ui{root}",
        soft_wrap=True,
    )


def summary_table(result):  # noqa: ANN001, ANN201 - a StudyResult; a rich table
    """Best value, trial, state counts and test metrics per model type; ``*`` the best."""
    from hpolab.cli.common import table
    from hpolab.reporting.summary import best_mark_legend

    # With one model type a mark would say nothing.
    marked = result.best_model_type if len(result.models) > 1 else None
    legend = "c/p/f: complete/pruned/failed"
    if marked is not None:
        legend += f"; * {best_mark_legend(result.metric, result.direction)}"
    out = table(
        f"study {result.study}: best {result.metric} ({result.direction})",
        [
            ("model", "key"),
            ("best", "num"),
            ("trial", "num"),
            ("c/p/f", "num"),
            ("test metrics", "text"),
        ],
        caption=legend,
    )
    for name, m in result.models.items():
        states = "/".join(str(m.states.get(s, 0)) for s in ("complete", "pruned", "fail"))
        tests = ", ".join(f"{k} {v:.4g}" for k, v in m.test_metrics.items())
        best = "-" if m.best_value is None else f"{m.best_value:.4g}"
        out.add_row(name + (" *" if name == marked else ""), best, str(m.best_trial), states, tests)
    return out


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None, prog: str = "run_hpo.py") -> int:
    parser = build_parser(prog)
    args = parse(parser, argv)
    return guarded(lambda: run(args))
