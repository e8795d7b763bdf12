"""``hpolab delete STUDY``: remove a study and everything made from it."""

from __future__ import annotations

import argparse
import sys

from hpolab.cli.common import add_store_options, console, subcommand


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "delete",
        "delete a study and its outputs",
        "Delete a study's Optuna storage, results, final models, MLflow runs and registered "
        "model. Asks first unless --yes.",
        "examples:\n  hpolab delete leak_v1 --yes",
    )
    parser.add_argument("study", help="study name")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask")
    add_store_options(parser, json_output=False)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpolab.cli.common import quiet_libraries
    from hpolab.errors import ConfigError
    from hpolab.layout import Layout
    from hpolab.operations import delete
    from hpolab.progress import RichReporter
    from hpolab.search.catalog import open_stored

    quiet_libraries(args.verbose)
    open_stored(Layout.from_root(args.root), args.study, args.storage)  # unknown: clear error
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError("--yes: deleting a study needs confirmation; add --yes")
        answer = input(f"delete study {args.study!r}, its results, models and MLflow runs? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            console().print("nothing deleted")
            return 1
    delete(args.study, args.root, args.storage, reporter=RichReporter())
    return 0
