"""``hpolab compare A B ...``: studies side by side."""

from __future__ import annotations

import argparse

from hpolab.cli.common import add_store_options, console, duration, fmt, print_json, subcommand


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "compare",
        "compare studies side by side",
        "Best value, trials (complete / pruned / failed) and time spent of each model type "
        "of two or more studies.",
        "examples:\n  hpolab compare leak_v1 leak_v2\n  hpolab compare leak_v1 leak_v2 --json",
    )
    parser.add_argument("studies", nargs="+", help="two or more study names")
    add_store_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from hpolab.operations import compare

    rows = compare(args.studies, args.root, args.storage)
    if args.json:
        print_json(rows)
        return 0
    table = Table(title="studies compared")
    for column in ("study", "model type", "best", "metric", "trials", "c/p/f", "time spent"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["study"],
            r["model_type"],
            fmt(r["best_value"]),
            f"{r['metric']} ({r['direction']})",
            str(r["trials"]),
            f"{r['complete']}/{r['pruned']}/{r['failed']}",
            duration(r["seconds_spent"]),
        )
    console().print(table)
    return 0
