"""The ``hpolab`` command: subcommands over the Python API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hpolab.cli import (
    best,
    compare,
    delete,
    export,
    fetch,
    plots,
    proxy,
    report,
    retrain,
    status,
    studies,
    trials,
    ui,
    worker,
)
from hpolab.cli import cache as cache_cmd
from hpolab.cli import run as run_cmd
from hpolab.cli import train as train_cmd
from hpolab.cli.common import Parser, guarded, parse, quiet_libraries
from hpolab.version import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="hpolab", description="Hyperparameter optimization of Keras models.")
    parser.add_argument("--version", action="version", version=f"hpolab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    run_parser = sub.add_parser(
        "run",
        help="launch or resume a study (same as run_hpo.py)",
        description=run_cmd.DESCRIPTION,
        epilog=run_cmd.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run_cmd.add_arguments(run_parser)
    run_parser.set_defaults(handler=run_cmd.run)
    train_parser = sub.add_parser(
        "train",
        help="train one model with a known configuration (same as train_nn_model.py)",
        description=train_cmd.DESCRIPTION,
        epilog=train_cmd.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train_cmd.add_arguments(train_parser)
    train_parser.set_defaults(handler=train_cmd.run)
    for module in (
        studies,
        status,
        best,
        trials,
        fetch,
        export,
        retrain,
        plots,
        report,
        ui,
        delete,
        compare,
        worker,
        proxy,
    ):
        module.register(sub)
    cache_parser = sub.add_parser(
        "cache",
        help="list, show or clear cached estimators (hpolab.estimators)",
        description=cache_cmd.DESCRIPTION,
        epilog=cache_cmd.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cache_cmd.add_arguments(cache_parser)
    cache_parser.set_defaults(handler=cache_cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    # Before a handler imports anything: libraries that talk while imported stay quiet.
    quiet_libraries(getattr(args, "verbose", False))
    return guarded(lambda: args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
