"""``hpolab retrain STUDY``: retrain the best (or a chosen) trial into the final model."""

from __future__ import annotations

import argparse

from hpolab.cli.common import add_store_options, console, print_json, subcommand


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "retrain",
        "retrain the final model of a study",
        "Retrain the best trial (or --trial N) of each model type on train+validation, "
        "evaluate it on the test split, save it to models/hpo_derived/<study>/ and log and "
        "register it in MLflow, replacing the previous final model.",
        "examples:\n  hpolab retrain leak_v1\n"
        "  hpolab retrain leak_v1 --model-type cnn1d --trial 17",
    )
    parser.add_argument("study", help="study name")
    parser.add_argument("--model-type", metavar="NAME", help="only this model type")
    parser.add_argument("--trial", type=int, metavar="N", help="this complete trial, not the best")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    add_store_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpolab.cli.common import quiet_libraries
    from hpolab.operations import retrain
    from hpolab.progress import QuietReporter, RichReporter

    quiet_libraries(args.verbose)
    reporter = QuietReporter() if args.json else RichReporter()
    done = retrain(
        args.study,
        args.model_type,
        args.trial,
        args.root,
        args.storage,
        track=not args.no_mlflow,
        reporter=reporter,
    )
    if args.json:
        print_json(done)
        return 0
    out = console()
    for mt, info in done.items():
        tests = ", ".join(f"{k} {v:.4g}" for k, v in info["test_metrics"].items())
        out.print(f"{mt}: trial {info['trial']} retrained in {info['seconds']}s; test {tests}")
        out.print(f"  {info['model']}", soft_wrap=True)
    return 0
