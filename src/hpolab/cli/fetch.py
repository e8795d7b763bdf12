"""``hpolab fetch STUDY --dest DIR``: take the final model and its sidecar away."""

from __future__ import annotations

import argparse

from hpolab.cli.common import add_store_options, console, print_json, subcommand


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "fetch",
        "copy or export a study's final model",
        "Copy the retrained final model and its JSON sidecar (parameters, scaler, label "
        "encoding, test metrics) to --dest, as .keras (default), .h5, a TensorFlow "
        "SavedModel for serving or .tflite; exports are reloaded and their predictions checked.",
        "examples:\n  hpolab fetch leak_v1 --model-type cnn1d --dest ./deploy\n"
        "  hpolab fetch leak_v1 --dest ./serving --format savedmodel",
    )
    parser.add_argument("study", help="study name")
    parser.add_argument("--model-type", metavar="NAME", help="only this model type")
    parser.add_argument("--dest", metavar="DIR", required=True, help="destination folder")
    parser.add_argument(
        "--format",
        default="keras",
        help="keras (default), savedmodel, h5 or tflite",
    )
    add_store_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpolab.cli.common import quiet_libraries
    from hpolab.operations import fetch

    quiet_libraries(args.verbose)
    files = fetch(args.study, args.dest, args.model_type, args.format, args.root, args.storage)
    if args.json:
        print_json([str(f) for f in files])
        return 0
    out = console()
    for path in files:
        out.print(f"wrote {path}", soft_wrap=True)
    return 0
