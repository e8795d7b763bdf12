"""Shared CLI plumbing: quiet TensorFlow, one-line errors, exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def quiet_libraries() -> None:
    """Silence TensorFlow's C++ start-up chatter before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # TensorFlow's retracing notices and MLflow's schema-migration INFO lines are noise
    # for a user watching a study; warnings that matter still come through.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2) instead of usage dumps."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def add_root_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="workspace holding hpo_studies/, hpo_results/, models/ and mlruns/ "
        "(default: $HPOLAB_ROOT or the current directory)",
    )


def guarded(run: Callable[[], int]) -> int:
    """Run ``run``; turn hpolab errors and Ctrl-C into a message and an exit code."""
    from hpolab.errors import HpolabError

    try:
        return run()
    except HpolabError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(
            "\ninterrupted: finished trials are saved and the interrupted one is queued again; "
            "run the same command to resume\n"
        )
        return EXIT_INTERRUPTED


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    return parser.parse_args(list(argv) if argv is not None else None)


def add_store_options(parser: argparse.ArgumentParser, json_output: bool = True) -> None:
    """``--root``, ``--storage`` (and ``--json``): where studies live, how to print."""
    add_root_option(parser)
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="SQLAlchemy URL of a study kept outside the root (e.g. PostgreSQL)",
    )
    if json_output:
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def print_json(data: object) -> None:
    """Machine-readable output on stdout."""
    import json

    print(json.dumps(data, indent=2, default=str))


def console():  # noqa: ANN201 - rich is imported lazily
    """A rich console on stdout."""
    from rich.console import Console

    return Console()


def fmt(value: object, digits: int = 5) -> str:
    """A number for a table cell; ``-`` for nothing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def duration(seconds: float | None) -> str:
    """``1h02m``, ``3m05s`` or ``12s``."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def subcommand(
    sub: argparse._SubParsersAction,
    name: str,
    help_text: str,
    description: str,
    epilog: str = "",
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` with a readable description and examples."""
    return sub.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
