"""``hpolab status STUDY``: trials per state, best so far and ETA per model type."""

from __future__ import annotations

import argparse

from hpolab.cli.common import add_store_options, console, duration, fmt, print_json, subcommand


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "status",
        "progress of one study",
        "Per model type: complete / pruned / failed / running trials, the best value so far, "
        "time spent and an ETA for the planned trials (mean trial time x trials left).",
        "examples:\n  hpolab status leak_v1\n  hpolab status leak_v1 --json",
    )
    parser.add_argument("study", help="study name")
    add_store_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from hpolab.operations import study_status

    status = study_status(args.study, args.root, args.storage)
    if args.json:
        print_json(status)
        return 0
    table = Table(title=f"study {args.study}")
    columns = (
        "model type",
        "done/planned",
        "complete",
        "pruned",
        "failed",
        "running",
        "best",
        "best trial",
        "spent",
        "ETA",
        "state",
    )
    for column in columns:
        table.add_column(column)
    for mt, s in status["model_types"].items():
        table.add_row(
            mt,
            f"{s['trials_done']}/{s['n_trials_target']}",
            str(s["complete"]),
            str(s["pruned"]),
            str(s["fail"]),
            str(s["running"]),
            f"{fmt(s['best_value'])} ({s['metric']})",
            fmt(s["best_trial"]),
            duration(s["seconds_spent"]),
            duration(s["eta_seconds"]) if s["state"] != "finished" else "-",
            s["state"],
        )
    out = console()
    out.print(table)
    out.print(f"storage: {status['storage']}", soft_wrap=True)
    return 0
