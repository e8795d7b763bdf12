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
