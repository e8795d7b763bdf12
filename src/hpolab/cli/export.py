"""``hpolab export``: a trained model as .keras, .h5, SavedModel and TFLite, verified."""

from __future__ import annotations

import argparse
from pathlib import Path

from hpolab.cli.common import add_store_options, print_json, subcommand


def register(sub: argparse._SubParsersAction) -> None:
    parser = subcommand(
        sub,
        "export",
        "export a model for serving (.keras, .h5, SavedModel, TFLite)",
        "Export the final model of a manual run (--run), of a study (--study, "
        "--model-type) or a .keras file to --dest in each --format. Every export is loaded "
        "back and its predictions compared with the original model on a batch of inputs; "
        "a format the model cannot take (TFLite for LSTMs) is reported as skipped. The "
        "exports hold the network only: the model's sidecar (feature scaling, labels) is "
        "copied next to them as <model>.json, and the caller standardizes inputs with it.",
        "examples:\n  hpolab export --run cnn_baseline --dest ./deploy\n"
        "  hpolab export --study leak_v1 --model-type cnn1d --dest ./serving "
        "--format savedmodel,tflite\n"
        "  hpolab export models/manual_runs/cnn_baseline/final_model_cnn1d.keras --dest out",
    )
    parser.add_argument("model", nargs="?", help="a .keras file (or use --run / --study)")
    parser.add_argument("--run", metavar="NAME", help="a manual run (train_nn_model.py)")
    parser.add_argument("--study", metavar="NAME", help="a study's final model")
    parser.add_argument("--model-type", metavar="NAME", help="model type of --study")
    parser.add_argument("--dest", metavar="DIR", required=True, help="destination folder")
    parser.add_argument(
        "--format",
        default="keras,h5,savedmodel,tflite",
        help="comma-separated: keras, h5, savedmodel, tflite (default: all)",
    )
    add_store_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from hpolab.cli.common import quiet_libraries

    quiet_libraries(args.verbose)
    from hpolab.errors import ConfigError
    from hpolab.operations import export

    chosen = [x for x in (args.model, args.run, args.study) if x]
    if len(chosen) != 1:
        raise ConfigError("export: give exactly one of a .keras file, --run or --study")
    results = export(
        Path(args.dest),
        model_file=args.model,
        run=args.run,
        study=args.study,
        model_type=args.model_type,
        formats=args.format,
        root=args.root,
        storage=args.storage,
    )
    if args.json:
        from hpolab.training.export import export_summary

        print_json(export_summary(results))
    else:
        for result in results:
            print(("ok       " if result.ok else "skipped  ") + result.describe())
        print(_inputs_note(results))
    failed = [r for r in results if not r.ok and not r.skipped]
    return 1 if failed else 0


def _inputs_note(results: list) -> str:
    """What the exports expect: they hold the network only, not the data's scaling."""
    metadata = next((r.metadata for r in results if r.metadata), None)
    if metadata is None:
        return "inputs   every export takes the inputs the model was trained on, as given"
    return (
        f"inputs   every export takes standardized features: apply the feature_scaler of "
        f"{metadata} first and map outputs to its classes (hpolab.load_final_model and the "
        "MLflow model take raw rows)"
    )
