"""``hpolab plots STUDY``: (re)build the visualizations."""

from __future__ import annotations

import argparse

from hpolab.cli.common import add_store_options, console, print_json, subcommand


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "plots",
        "draw a study's visualizations",
        "Optimization history, parameter importances, parallel coordinates, slice, contour of "
        "the two most important parameters, intermediate values (learning curves, pruned "
        "trials included) and timeline, as PNG and interactive HTML in "
        "hpo_results/<study>/<model_type>_visualizations/, logged to the study's MLflow run.",
        "examples:\n  hpolab plots leak_v1\n  hpolab plots leak_v1 --model-type cnn1d",
    )
    parser.add_argument("study", help="study name")
    parser.add_argument("--model-type", metavar="NAME", help="only this model type")
    parser.add_argument("--no-mlflow", action="store_true", help="do not log them to MLflow")
    add_store_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpolab.cli.common import quiet_libraries
    from hpolab.operations import plots

    quiet_libraries(args.verbose)
    drawn = plots(args.study, args.model_type, args.root, args.storage, track=not args.no_mlflow)
    if args.json:
        print_json(drawn)
        return 0
    out = console()
    for mt, d in drawn.items():
        out.print(f"{mt}: {len(d['png'])} plots in {d['directory']}", soft_wrap=True)
        for name, reason in d["skipped"].items():
            out.print(f"  skipped {name}: {reason}")
    pages = {d["page"] for d in drawn.values()}
    for page in sorted(pages):
        out.print(f"interactive plots of every model type: {page}", soft_wrap=True)
    return 0
