"""``hpolab trials STUDY``: the trials table, filtered, sorted, or written to CSV."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from hpolab.cli.common import add_store_options, console, fmt, print_json, subcommand


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
    from rich.table import Table

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
    table = Table(title=f"trials of {args.study}")
    for column in ("model type", "#", "state", "value", "epochs", "seconds", "params"):
        table.add_column(column)
    for r in rows:
        params = " ".join(f"{k}={v}" for k, v in r["params"].items())
        table.add_row(
            r["model_type"],
            str(r["number"]),
            r["state"],
            fmt(r["value"]),
            fmt(r["epochs_run"]),
            fmt(r["duration_seconds"], 3),
            params,
        )
    console().print(table)
    return 0
