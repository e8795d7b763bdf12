"""``hpolab studies``: every study under the root with its progress."""

from __future__ import annotations

import argparse

from hpolab.cli.common import (
    add_store_options,
    console,
    direction_word,
    done_of,
    fmt,
    print_json,
    subcommand,
    table,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "studies",
        "list the studies under the root",
        "Every study under the root (hpo_studies/*.db) or in --storage: model types, trials "
        "done / planned, best value and state (finished, stopped early, incomplete, running).",
        "examples:\n  hpolab studies\n  hpolab studies --json\n"
        "  hpolab studies --storage postgresql://postgres@127.0.0.1:5432/test",
    )
    add_store_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpolab.operations import list_studies

    rows = list_studies(args.root, args.storage)
    if args.json:
        print_json(rows)
        return 0
    out = console()
    if not rows:
        out.print("no studies yet; run_hpo.py creates one")
        return 0
    listing = table(
        "studies",
        [
            ("study", "key"),
            ("model", "key"),
            ("trials", "num"),
            ("best", "num"),
            ("metric", "text"),
            ("state", "word"),
        ],
    )
    for row in rows:
        for i, m in enumerate(row["model_types"]):
            listing.add_row(
                row["study"] if i == 0 else "",
                m["model_type"],
                done_of(m["trials_done"], m["n_trials_target"]),
                fmt(m["best_value"]),
                f"{m['metric']} ({direction_word(m['direction'])})",
                m["state"],
            )
    out.print(listing)
    return 0
