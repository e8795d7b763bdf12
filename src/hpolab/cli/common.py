"""Shared CLI plumbing: quiet libraries, one-line errors, exit codes, table cells."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# Set by --verbose; inherited by worker processes, which then keep library logging too.
VERBOSE_ENV = "HPOLAB_VERBOSE"


def quiet_libraries(verbose: bool = False) -> None:
    """Silence TensorFlow's start-up chatter before it is imported, unless ``verbose``.

    Called before any command imports TensorFlow; idempotent. ``--verbose`` leaves every
    library as it is, for debugging an installation; it is passed on to the workers a
    study starts (``--workers N``) through ``HPOLAB_VERBOSE``.
    """
    if verbose or os.environ.get(VERBOSE_ENV) == "1":
        os.environ[VERBOSE_ENV] = "1"
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # TensorFlow's retracing notices and MLflow's schema-migration INFO lines are noise
    # for a user watching a study; warnings that matter still come through.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # Recent TensorFlow logs its oneDNN notice through absl, which ignores
    # TF_CPP_MIN_LOG_LEVEL: the import itself is filtered instead (see native_noise).
    from hpolab.cli.native_noise import filter_import

    filter_import("tensorflow")


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: keep the libraries' own start-up and info logging."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's and other libraries' start-up and info logging",
    )


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2) instead of usage dumps."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def add_root_option(parser: argparse.ArgumentParser) -> None:
    """``--root`` (and ``--verbose``, which every command with a workspace takes)."""
    add_verbose_option(parser)
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


def duration_short(seconds: float | None) -> str:
    """A trial's duration: ``1.67s`` under a minute, else as :func:`duration`."""
    if seconds is not None and seconds < 60:
        return f"{seconds:.3g}s"
    return duration(seconds)


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


# Column kinds of table(): how a cell behaves when 80 columns are not enough.
#   key:  a name (study, model type): folded onto more lines, never cut to "…";
#   num:  a number, count or duration: right-aligned, never wrapped;
#   word: one short word (a state): never wrapped;
#   text: a long value (parameters, metrics): folded.
_KINDS: dict[str, dict[str, object]] = {
    "key": {"overflow": "fold"},
    "num": {"justify": "right", "no_wrap": True},
    "word": {"no_wrap": True},
    "text": {"overflow": "fold"},
}


def table(  # noqa: ANN201 - returns a rich Table; rich is imported lazily
    title: str, columns: Sequence[tuple[str, str]], caption: str | None = None
):
    """A rich table readable at 80 columns: ``(header, kind)`` per column (see ``_KINDS``).

    Headers are short and never wrapped; ``caption`` is a legend below the table.
    """
    from rich.table import Table

    out = Table(title=title, caption=caption, caption_justify="left")
    for header, kind in columns:
        kind_options: dict[str, Any] = _KINDS[kind]
        out.add_column(header, header_style="bold", min_width=len(header), **kind_options)
    return out


def done_of(done: int, planned: int) -> str:
    """``done/planned`` trials, never more done than planned.

    Failed trials that were run again, or a budget lowered on resume, would otherwise
    show as ``21/20``; the exact counts per state are in ``--json``.
    """
    return f"{min(done, planned)}/{planned}"


def direction_word(direction: str) -> str:
    """``min`` or ``max``: the direction in a narrow cell."""
    return {"minimize": "min", "maximize": "max"}.get(direction, direction)
