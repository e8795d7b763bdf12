"""``hpolab report STUDY``: the PDF study report."""

from __future__ import annotations

import argparse

from hpolab.cli.common import add_store_options, console, print_json, subcommand


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "report",
        "write a study's PDF report",
        "hpo_results/<study>/<study>_report.pdf: setup, search space, best configuration per "
        "model type, comparison table, parameter importance, the final models' test metrics "
        "with confusion matrix or residuals, the visualizations, and a written analysis "
        "(which parameters mattered, convergence, whether the budget looks sufficient).",
        "examples:\n  hpolab report leak_v1\n  hpolab report leak_v1 --redraw",
    )
    parser.add_argument("study", help="study name")
    parser.add_argument("--redraw", action="store_true", help="redraw the plots first")
    add_store_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpolab.cli.common import quiet_libraries
    from hpolab.operations import report

    quiet_libraries(args.verbose)
    done = report(args.study, args.root, args.storage, redraw=args.redraw)
    if args.json:
        print_json(done)
    else:
        console().print(f"wrote {done['report']} ({done['pages']} pages)", soft_wrap=True)
    return 0
