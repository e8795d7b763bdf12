"""``hpolab status STUDY``: trials per state, best so far and ETA per model type."""

from __future__ import annotations

import argparse
from typing import Any

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
    from hpolab.operations import study_status

    status = study_status(args.study, args.root, args.storage)
    if args.json:
        print_json(status)
        return 0
    out = console()
    out.print(status_table(args.study, status["model_types"]))
    out.print(f"storage: {status['storage']}", soft_wrap=True)
    return 0


def status_table(study: str, model_types: dict[str, dict[str, Any]]):  # noqa: ANN201 - rich
    """Per model type: trials done / planned, counts per state, best, time, ETA, state."""
    objectives = {(s["metric"], s["direction"]) for s in model_types.values()}
    # One objective for the study (the usual case) goes in the title, not in every row.
    shared = next(iter(objectives)) if len(objectives) == 1 else None
    title = f"study {study}" + (f": {shared[0]} ({shared[1]})" if shared else "")
    out = table(
        title,
        [
            ("model", "key"),
            ("done", "num"),
            ("c/p/f/r", "num"),
            ("best", "num" if shared else "text"),
            ("trial", "num"),
            ("spent", "num"),
            ("ETA", "num"),
            ("state", "word"),
        ],
        caption="c/p/f/r: complete/pruned/failed/running",
    )
    for mt, s in model_types.items():
        best = fmt(s["best_value"])
        out.add_row(
            mt,
            done_of(s["trials_done"], s["n_trials_target"]),
            f"{s['complete']}/{s['pruned']}/{s['fail']}/{s['running']}",
            best if shared else f"{best} {s['metric']} ({direction_word(s['direction'])})",
            fmt(s["best_trial"]),
            duration(s["seconds_spent"]),
            duration(s["eta_seconds"]) if s["state"] in ("running", "incomplete") else "-",
            s["state"],
        )
    return out
