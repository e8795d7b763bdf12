"""``train_nn_model.py`` / ``hpolab train``: train one model with a known configuration."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from hpolab.cli.common import Parser, add_root_option, guarded, parse, quiet_libraries

DESCRIPTION = (
    "Train one model with a configuration you already know: from a config file, from the "
    "best trial of a study, or from flags. Everything lands in training/runs/<run>/ "
    "(epoch checkpoints, best_model.keras, final model, training_history.json, "
    "model_info.json, config.yaml, console.log, report.pdf + PNG figures); the final model "
    "is copied to models/manual_runs/<run>/ and the run is logged to MLflow."
)
EPILOG = """examples:
  python train_nn_model.py --config configs/leak_cnn.yaml --model-type cnn1d --run-name cnn_baseline
  python train_nn_model.py --from-study leak_v1 --model-type cnn1d --run-name cnn_from_best
  python train_nn_model.py --data my.csv --target label --model-type mlp \\
      --set learning_rate=3e-4 --set epochs=40
  python train_nn_model.py --run-name cnn_baseline --resume      # continue after a stop
  hpolab export --run cnn_baseline --dest ./deploy                # .keras .h5 SavedModel TFLite

Searched parameters of a config keep the builder's defaults unless set with --set
(or taken from a study with --from-study). A run name that exists is refused unless
--overwrite or --resume is given.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("what to train")
    source.add_argument("--config", metavar="YAML", help="study config (data, training, models)")
    source.add_argument("--from-study", metavar="STUDY", help="best parameters of this study")
    source.add_argument("--model-type", metavar="NAME", help="model type (mlp, cnn1d, ...)")
    source.add_argument("--data", metavar="SOURCE", help="CSV / NPZ path or builtin:<name>")
    source.add_argument("--target", metavar="COLUMN", help="target column of a CSV")
    source.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a training key (epochs=40) or model parameter (filters=64); repeatable",
    )
    source.add_argument("--metric", help="validation metric for early stopping / best model")
    source.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="random seed of weights, dropout and shuffling (default: the config's study.seed, 42)",
    )
    run = parser.add_argument_group("the run")
    run.add_argument("--run-name", metavar="NAME", help="default: <model_type>_<timestamp>")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run")
    run.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    run.add_argument(
        "--experiment", default="manual_runs", help="MLflow experiment (default manual_runs)"
    )
    run.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    run.add_argument("--storage", metavar="URL", help="storage of --from-study outside the root")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    add_root_option(parser)


def run(args: argparse.Namespace) -> int:
    quiet_libraries(args.verbose)
    from hpolab.errors import ConfigError
    from hpolab.layout import Layout
    from hpolab.manual import resolve_spec, train_run
    from hpolab.progress import QuietReporter, RichReporter

    layout = Layout.from_root(args.root)
    if args.resume and not args.run_name:
        raise ConfigError("--resume: name the run to continue (--run-name)")
    if args.resume and (
        args.config or args.from_study or args.set or args.data or args.seed is not None
    ):
        raise ConfigError(
            "--resume: a run continues with its own configuration; drop the "
            "other options or start a new run"
        )
    spec = None
    if not args.resume:
        spec = resolve_spec(
            args.config,
            args.model_type,
            args.from_study,
            args.data,
            args.target,
            args.set,
            args.metric,
            layout,
            args.storage,
            args.seed,
        )
    result = train_run(
        spec,
        run_name=args.run_name,
        root=layout.root,
        overwrite=args.overwrite,
        resume=args.resume,
        experiment=None if args.no_mlflow else args.experiment,
        reporter=QuietReporter() if args.quiet else RichReporter(),
    )
    if not args.quiet:
        print(f"run folder: {result.run_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="train_nn_model.py",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(build_parser(), argv)
    return guarded(lambda: run(args))
