"""``hpolab compare A B ...``: studies side by side."""

from __future__ import annotations

import argparse

from hpolab.cli.common import (
    add_store_options,
    console,
    direction_word,
    done_of,
    duration,
    fmt,
    print_json,
    subcommand,
    table,
)


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
    from hpolab.operations import compare

    rows = compare(args.studies, args.root, args.storage)
    if args.json:
        print_json(rows)
        return 0
    side_by_side = table(
        "studies compared",
        [
            ("study", "key"),
            ("model", "key"),
            ("best", "num"),
            ("metric", "text"),
            ("trials", "num"),
            ("c/p/f", "num"),
            ("spent", "num"),
        ],
        caption="c/p/f: complete/pruned/failed",
    )
    for r in rows:
        side_by_side.add_row(
            r["study"],
            r["model_type"],
            fmt(r["best_value"]),
            f"{r['metric']} ({direction_word(r['direction'])})",
            done_of(r["trials"], r["n_trials_target"]),
            f"{r['complete']}/{r['pruned']}/{r['failed']}",
            duration(r["seconds_spent"]),
        )
    console().print(side_by_side)
    return 0
