"""``hpolab trials STUDY``: the trials table, filtered, sorted, or written to CSV."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from hpolab.cli.common import (
    add_store_options,
    console,
    duration_short,
    fmt,
    print_json,
    subcommand,
    table,
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "trials",
        "list the trials of a study",
        "Every trial with its model type, state, value, parameters, epochs and duration.",
        "examples:\n  hpolab trials leak_v1\n"
        "  hpolab trials leak_v1 --state complete --sort value\n"
        "  hpolab trials leak_v1 --model-type cnn1d --csv trials.csv",
    )
    parser.add_argument("study", help="study name")
    parser.add_argument("--model-type", metavar="NAME", help="only this model type")
    parser.add_argument("--state", help="complete, pruned, fail, running or waiting (default: all)")
    parser.add_argument(
        "--sort", default="number", help="number (default), value (best first) or duration"
    )
    parser.add_argument("--csv", metavar="FILE", help="write the table to a CSV file")
    add_store_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpolab.operations import trials

    rows = trials(args.study, args.model_type, args.state, args.sort, args.root, args.storage)
    if args.csv:
        path = Path(args.csv)
        columns = [
            "model_type",
            "number",
            "state",
            "value",
            "params",
            "epochs_run",
            "best_epoch",
            "duration_seconds",
            "mlflow_run_id",
            "error",
        ]
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "params": json.dumps(row["params"])})
        console().print(f"wrote {len(rows)} trials to {path}")
        return 0
    if args.json:
        print_json(rows)
        return 0
    console().print(trials_table(args.study, rows))
    return 0


def trials_table(study: str, rows: list[dict[str, Any]]):  # noqa: ANN201 - rich
    """One row per trial; its parameters one per line, long values folded."""
    out = table(
        f"trials of {study}",
        [
            ("model", "key"),
            ("#", "num"),
            ("state", "word"),
            ("value", "num"),
            ("epochs", "num"),
            ("time", "num"),
            ("params", "text"),
        ],
    )
    for r in rows:
        out.add_row(
            r["model_type"],
            str(r["number"]),
            r["state"],
            fmt(r["value"]),
            fmt(r["epochs_run"]),
            duration_short(r["duration_seconds"]),
            # Rounded like the other cells; --csv and --json keep the exact values.
            "\n".join(f"{k}={fmt(v)}" for k, v in r["params"].items()),
        )
    return out
