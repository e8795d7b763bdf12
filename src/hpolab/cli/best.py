"""``hpolab best STUDY``: best configuration per model type, and its final model."""

from __future__ import annotations

import argparse

from hpolab.cli.common import add_store_options, console, fmt, print_json, subcommand


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "best",
        "best trial and parameters of a study",
        "The best value, trial number and parameters per model type, with the final "
        "model's path and test metrics when it has been retrained.",
        "examples:\n  hpolab best leak_v1\n  hpolab best leak_v1 --model-type cnn1d --json",
    )
    parser.add_argument("study", help="study name")
    parser.add_argument("--model-type", metavar="NAME", help="only this model type")
    add_store_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpolab.operations import best
    from hpolab.reporting.summary import baseline_warning

    found = best(args.study, args.model_type, args.root, args.storage)
    if args.json:
        print_json(found)
        return 0
    out = console()
    for mt, b in found.items():
        # soft_wrap: paths and long values stay whole (the terminal wraps them, copyable).
        out.print(
            f"[bold]{mt}[/]: best {b['metric']} {fmt(b['best_value'])} "
            f"({b['direction']}) at trial {fmt(b['best_trial'])}",
            soft_wrap=True,
        )
        for key, value in b["params"].items():
            out.print(f"  {key} = {value}", soft_wrap=True, markup=False)
        if b["final_model"]:
            tests = ", ".join(f"{k} {v:.4g}" for k, v in b["test_metrics"].items())
            out.print(
                f"  final model: {b['final_model']} (trial {b['final_model_trial']})",
                soft_wrap=True,
                markup=False,
            )
            out.print(f"  test: {tests}", soft_wrap=True)
            warning = baseline_warning(mt, b.get("baseline"))
            if warning:
                out.print(f"  [yellow]warning:[/] {warning}", soft_wrap=True)
        else:
            out.print(
                f"  no final model yet: hpolab retrain {args.study} --model-type {mt}",
                soft_wrap=True,
            )
    return 0
